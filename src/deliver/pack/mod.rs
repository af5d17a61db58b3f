//! Packs: small objects due together for one destination travel as one document, a
//! plain tar, so that a bucket of small objects goes at the speed of bytes rather than of
//! Telegram's ~20 messages a minute.
//!
//! A pack holds the objects under `BUCKET/KEY` (each name escaped as `restore --all`
//! writes it, so that no key can climb out of the directory it is extracted into), then
//! an index, [`INDEX_NAME`]: each member's bucket, key, ETag, size, SHA-256,
//! last-modified time, path, and where its bytes lie in the tar. With encryption on, the
//! whole tar goes through age as one stream (`age -d -i KEY pack.tar.age | tar -x`):
//! names and the index are inside the encryption, as a single object's bytes are. A pack
//! is at most one part in size and at most `pack.max_members` objects; a lone small
//! object travels as itself.
//!
//! A pack is claimed as a unit ([`crate::ledger::Ledger::claim_all`]) and recorded as a
//! unit once Telegram accepts it ([`crate::ledger::Ledger::record_pack`]). A member that
//! cannot be read from S3 leaves the pack: it fails (or is skipped, when it vanished)
//! on its own, and the others go on.

mod archive;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;

use super::courier::{Courier, Outcome};
use super::parts::check_etag;
use super::stop::Stop;
use crate::config::Config;
use crate::error::{Result, Service};
use crate::ledger::{Delivery, ObjectVersion, Pack, PackCandidate, PackMember};
use crate::sink::caption::{PackCaption, pack_caption};
use crate::source::SourceError;
use crate::time::now;
use archive::{BLOCK, Built, Read, build};
pub(crate) use archive::{INDEX_NAME, Index, IndexMember, member_path, read_index};

/// Objects read from S3 at once while a pack is built (each at most
/// `pack.max_object_size` in memory).
const READ_AHEAD: usize = 8;

/// What a batch's deliveries become: deliveries sent alone, and packs.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Grouping {
    pub(crate) alone: Vec<i64>,
    pub(crate) packs: Vec<Vec<i64>>,
}

/// The most bytes a member can take in a pack besides its own, padded: its ustar header,
/// a pax header (a header block and the path's record, at most three bytes a byte once
/// escaped), the padding to a block, and its entry in the index (JSON escapes a byte to
/// at most six).
fn member_overhead(bucket: &str, key: &str) -> u64 {
    let (b, k) = (bucket.len() as u64, key.len() as u64);
    let path = 3 * (b + k) + 64;
    let pax = BLOCK + (path + 32).div_ceil(BLOCK) * BLOCK;
    let index = 400 + 6 * (b + k) + path;
    BLOCK + pax + BLOCK + index
}

/// What age adds to a stream of `size` bytes, at most: its header (a stanza per
/// recipient, generously) and a 16-byte tag per 64 KiB chunk.
fn age_overhead(size: u64, recipients: usize) -> u64 {
    1024 + 512 * recipients as u64 + 16 * (size / (64 * 1024) + 1)
}

/// Groups a batch's deliveries (in the batch's order): objects below
/// `pack.max_object_size` (and not empty, and not started already) that go to the same
/// destination are packed together, at most one part (with what the tar, the index and
/// encryption add) and `pack.max_members` objects a pack; a group of one goes alone, as
/// does everything else.
pub(crate) fn group(cfg: &Config, candidates: &[PackCandidate]) -> Grouping {
    let mut grouping = Grouping::default();
    let limit = cfg.pack_max_object_size;
    let recipients = cfg.encryption.as_ref().map_or(0, |e| e.recipients().len());
    let encryption = if cfg.encryption.is_some() { age_overhead(cfg.part_size, recipients) } else { 0 };
    // Room in a document: the part size, less the end of the tar and age's overhead.
    let room = cfg.part_size.saturating_sub(encryption).saturating_sub(4 * BLOCK);
    let mut by_destination: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for c in candidates {
        let cost = c.size.div_ceil(BLOCK) * BLOCK + member_overhead(&c.bucket, &c.key);
        // A bucket named like the index would make a directory of the index's name; an
        // object below the threshold that no pack could hold (parts smaller than the
        // threshold) goes alone, rather than as a group of one that splits the others.
        let packable =
            limit > 0 && c.size > 0 && c.size < limit && cost <= room && !c.started && c.bucket != INDEX_NAME;
        match cfg.destination_for(&c.bucket).ok().filter(|_| packable) {
            Some(d) => by_destination.entry(d.to_string()).or_default().push((c.id, cost)),
            None => grouping.alone.push(c.id),
        }
    }
    for (_, members) in by_destination {
        let mut groups: Vec<(Vec<(i64, u64)>, u64)> = vec![(Vec::new(), 0)];
        for (id, cost) in members {
            let Some((current, used)) = groups.last_mut() else { continue };
            if !current.is_empty() && (*used + cost > room || current.len() >= cfg.pack_max_members) {
                groups.push((vec![(id, cost)], cost));
            } else {
                current.push((id, cost));
                *used += cost;
            }
        }
        // A last group of one would go alone for want of company: it takes the last
        // member of the pack before it, when that leaves the pack two or more.
        if let [.., (before, before_used), (last, last_used)] = groups.as_mut_slice()
            && last.len() == 1
            && before.len() >= 3
            && let Some(&(id, cost)) = before.last()
            && *last_used + cost <= room
        {
            before.pop();
            *before_used -= cost;
            last.insert(0, (id, cost));
            *last_used += cost;
        }
        for (group, _) in groups {
            seal(&mut grouping, group.into_iter().map(|(id, _)| id).collect());
        }
    }
    grouping
}

fn seal(grouping: &mut Grouping, members: Vec<i64>) {
    match members.len() {
        0 => {}
        1 => grouping.alone.extend(members),
        _ => grouping.packs.push(members),
    }
}

impl Courier<'_> {
    /// Delivers the deliveries `ids` as one pack. Members another run holds are left
    /// out; when fewer than two can be claimed (or fewer than two could be read), those
    /// go alone. An `Err` ends the run, as for one delivery.
    pub(super) async fn deliver_pack(
        &self,
        ids: Vec<i64>,
        retrying: bool,
    ) -> Result<Vec<(i64, ObjectVersion, Outcome)>> {
        let claimed = self.claiming(retrying, move |l, terms| l.claim_all(&ids, terms)).await?;
        if claimed.len() < 2 {
            return self.alone(claimed, retrying).await;
        }
        let held: Vec<i64> = claimed.iter().map(|d| d.id).collect();
        let attempt = self.holding_all(&held, self.attempt_pack(claimed.clone())).await;
        self.settle_pack(claimed, attempt, retrying).await
    }

    /// Gives back claimed deliveries and delivers each on its own.
    async fn alone(&self, claimed: Vec<Delivery>, retrying: bool) -> Result<Vec<(i64, ObjectVersion, Outcome)>> {
        let mut outcomes = Vec::new();
        for d in claimed {
            let id = d.id;
            self.ledger(move |l, owner| l.release(id, owner, now())).await?;
            if let Some((obj, outcome)) = self.deliver(id, retrying).await? {
                outcomes.push((id, obj, outcome));
            }
        }
        Ok(outcomes)
    }

    /// Keeps every member's lease alive while `fut` runs; a member whose claim another
    /// run took is simply not recorded at the end.
    async fn holding_all<T>(&self, ids: &[i64], fut: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(fut);
        let mut tick = tokio::time::interval((self.lease / 3).max(Duration::from_secs(1)));
        tick.tick().await;
        loop {
            tokio::select! {
                v = &mut fut => return v,
                _ = tick.tick() => {
                    let (ids, until) = (ids.to_vec(), self.lease_until());
                    if let Err(e) = self.ledger(move |l, owner| l.renew_leases(&ids, owner, until)).await {
                        tracing::warn!("cannot renew the leases of a pack: {e}");
                    }
                }
            }
        }
    }

    /// Reads the members, builds the pack and sends it. What each member came to is in
    /// the outcomes of the ones that left the pack; the pack's own fate is the result.
    async fn attempt_pack(&self, claimed: Vec<Delivery>) -> PackAttempt {
        let mut left = Vec::new();
        let mut read = Vec::new();
        // Members S3 could not serve (5xx, or no answer) since the last it served.
        let mut unserved: Vec<(Delivery, SourceError)> = Vec::new();
        let mut reads = futures_util::stream::iter(claimed)
            .map(|d| async move {
                let bytes = self.read_member(&d.object).await;
                (d, bytes)
            })
            .buffered(READ_AHEAD);
        while let Some((d, bytes)) = reads.next().await {
            match bytes {
                Ok(bytes) => {
                    // S3 serves the others: what it could not serve was that object's
                    // trouble, which fails on its own and is retried.
                    left.extend(unserved.drain(..).map(object_trouble));
                    read.push(Read { delivery: d, bytes });
                }
                Err(Stop::Source(e)) if e.is_unavailable() => {
                    if unserved.len() + 1 >= READ_AHEAD {
                        // S3 is gone: every claim is given back, the run stops.
                        return PackAttempt::Outage { service: Service::S3, error: e.to_string(), left };
                    }
                    unserved.push((d, e));
                }
                Err(stop) => left.push((d, stop)),
            }
            if self.shutdown.requested().is_some() {
                return PackAttempt::Interrupted { left };
            }
        }
        // The last members S3 did not serve: S3 going away (an outage for them, no
        // attempt counted, the run stops once the pack of the others is settled), or
        // those objects' trouble. Whether S3 still answers for their bucket says which,
        // whatever order the members came in.
        if let Some((first, _)) = unserved.first() {
            if self.s3_answers(&first.object.bucket).await {
                left.extend(unserved.into_iter().map(object_trouble));
            } else {
                left.extend(unserved.into_iter().map(|(d, e)| (d, Stop::Source(e))));
            }
        }
        if read.len() < 2 {
            return PackAttempt::TooFew { read: read.into_iter().map(|r| r.delivery).collect(), left };
        }
        let encryption = self.cfg.encryption.clone();
        let tmp_dir = self.tmp_dir.to_path_buf();
        let built = tokio::task::spawn_blocking(move || build(&tmp_dir, read, encryption.as_ref())).await;
        let built = match built {
            Ok(Ok(built)) => built,
            Ok(Err(e)) => return PackAttempt::Failed { error: e, left },
            Err(e) => return PackAttempt::Failed { error: format!("a pack task failed: {e}"), left },
        };
        if built.size > self.cfg.part_size {
            // Never more than a part in one document: the estimate was short (it is not
            // meant to be); each member goes alone.
            tracing::warn!("a pack came to {} bytes, over the part size: its objects go alone", built.size);
            let read = built.members.into_iter().map(|(d, _)| d).collect();
            return PackAttempt::TooFew { read, left };
        }
        let first = &built.members[0].0;
        let target = match self.target(first) {
            Ok(t) => t,
            Err(stop) => return PackAttempt::Stopped { stop, built, left },
        };
        let caption = pack_caption(&PackCaption {
            file_name: &built.file_name,
            members: &built.index.members,
            bytes: built.members.iter().map(|(_, m)| m.size).sum(),
            sha256: &built.sha256,
            encrypted: self.cfg.encryption.is_some(),
        });
        match self.sink.send_file(&target, built.file.path(), &built.file_name, &caption).await {
            Ok(sent) => PackAttempt::Sent { sent, built, left },
            Err(e) => PackAttempt::Stopped { stop: Stop::Sink(e), built, left },
        }
    }

    /// One member's bytes, whole, from S3 (still the version claimed).
    async fn read_member(&self, obj: &ObjectVersion) -> std::result::Result<Vec<u8>, Stop> {
        let mut body = self.source.get(&obj.bucket, &obj.key, &obj.etag, 0, obj.size, obj.size).await?;
        check_etag(body.etag.as_deref(), obj)?;
        let mut bytes = Vec::with_capacity(obj.size as usize);
        while let Some(chunk) = body.next_chunk().await? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > obj.size {
                break;
            }
        }
        if bytes.len() as u64 != obj.size {
            return Err(Stop::Failed(format!(
                "S3 sent {} bytes of {}/{}, which is {} bytes long",
                bytes.len(),
                obj.bucket,
                obj.key,
                obj.size
            )));
        }
        Ok(bytes)
    }

    /// Records what the attempt came to: the pack and its members, or each member's
    /// failure; members that left the pack are settled on their own.
    async fn settle_pack(
        &self,
        claimed: Vec<Delivery>,
        attempt: PackAttempt,
        retrying: bool,
    ) -> Result<Vec<(i64, ObjectVersion, Outcome)>> {
        let mut outcomes = Vec::new();
        let left = match attempt {
            PackAttempt::Sent { sent, built, left } => {
                let pack = Pack {
                    id: 0,
                    file_name: built.file_name.clone(),
                    size: built.size,
                    sha256: built.sha256.clone(),
                    tar_size: built.tar_size,
                    encrypted: self.cfg.encryption.is_some(),
                    members: built.members.len() as u32,
                    message_id: sent.message_id,
                    file_id: sent.file_id.clone(),
                    file_unique_id: Some(sent.file_unique_id.clone()),
                    bot_id: Some(sent.bot_id),
                    chat: Some(sent.landed.chat.to_string()),
                    topic: sent.landed.topic,
                    sent_at: now(),
                };
                let members: Vec<PackMember> = built.members.iter().map(|(_, m)| m.clone()).collect();
                let recorded = self.ledger(move |l, owner| l.record_pack(&pack, &members, owner)).await?;
                crate::metrics::count(crate::metrics::PACKS_SENT, &[], 1.0);
                crate::metrics::count(crate::metrics::PACK_MEMBERS_SENT, &[], recorded.len() as f64);
                tracing::info!("sent pack {} ({} objects, {} bytes)", built.file_name, recorded.len(), built.size);
                for (d, m) in built.members {
                    let outcome = if recorded.contains(&d.id) {
                        self.progress.inc(m.size);
                        Outcome::Packed { bytes: m.size, pack: built.file_name.clone() }
                    } else {
                        Outcome::Lost
                    };
                    outcomes.push((d.id, d.object, outcome));
                }
                left
            }
            PackAttempt::Stopped { stop, built, left } => {
                for (d, _) in built.members {
                    outcomes.push(self.settle_one(d, clone_stop(&stop)).await?);
                }
                left
            }
            PackAttempt::Outage { service, error, left } => {
                let settled: BTreeSet<i64> = left.iter().map(|(d, _)| d.id).collect();
                for d in claimed.into_iter().filter(|d| !settled.contains(&d.id)) {
                    let id = d.id;
                    self.ledger(move |l, owner| l.release(id, owner, now())).await?;
                    outcomes.push((id, d.object, Outcome::Outage { service, error: error.clone() }));
                }
                left
            }
            PackAttempt::Interrupted { left } => {
                let settled: BTreeSet<i64> = left.iter().map(|(d, _)| d.id).collect();
                for d in claimed.into_iter().filter(|d| !settled.contains(&d.id)) {
                    let id = d.id;
                    self.ledger(move |l, owner| l.release(id, owner, now())).await?;
                    outcomes.push((id, d.object, Outcome::Interrupted));
                }
                left
            }
            PackAttempt::TooFew { read, left } => {
                outcomes.extend(self.alone(read, retrying).await?);
                left
            }
            PackAttempt::Failed { error, left } => {
                let settled: BTreeSet<i64> = left.iter().map(|(d, _)| d.id).collect();
                for d in claimed.into_iter().filter(|d| !settled.contains(&d.id)) {
                    outcomes.push(self.settle_one(d, Stop::Failed(error.clone())).await?);
                }
                left
            }
        };
        // Members that could not be read: each on its own, as one delivery's stop.
        for (d, stop) in left {
            outcomes.push(self.settle_one(d, stop).await?);
        }
        Ok(outcomes)
    }
}

/// A member S3 could not serve while it served others: that object's failure, which
/// counts an attempt and is retried on its own.
fn object_trouble((d, e): (Delivery, SourceError)) -> (Delivery, Stop) {
    let why = format!("{e} (while S3 served other objects)");
    (d, Stop::Failed(why))
}

/// How a pack's attempt ended.
enum PackAttempt {
    /// Telegram accepted the pack.
    Sent {
        sent: crate::sink::SentDocument,
        built: Built,
        left: Vec<(Delivery, Stop)>,
    },
    /// The pack was built but not accepted: every member stops this way.
    Stopped {
        stop: Stop,
        built: Built,
        left: Vec<(Delivery, Stop)>,
    },
    /// S3 went away while members were read: every claim is given back.
    Outage {
        service: Service,
        error: String,
        left: Vec<(Delivery, Stop)>,
    },
    Interrupted {
        left: Vec<(Delivery, Stop)>,
    },
    /// Fewer than two members could be read: they go alone.
    TooFew {
        read: Vec<Delivery>,
        left: Vec<(Delivery, Stop)>,
    },
    /// The pack could not be written here.
    Failed {
        error: String,
        left: Vec<(Delivery, Stop)>,
    },
}

/// A stop for each member of a pack that stopped as a whole.
fn clone_stop(stop: &Stop) -> Stop {
    match stop {
        Stop::Sink(e) => Stop::Sink(e.clone()),
        Stop::Lost => Stop::Lost,
        Stop::Interrupted => Stop::Interrupted,
        other => Stop::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(part_size: u64, max_object: u64, max_members: usize) -> Config {
        let overrides = crate::config::Overrides::default();
        let env = move |name: &str| match name {
            "TELEGRAM_BACKUP_CHAT_ID" => Some("-100123".to_string()),
            "TGPLOY_PART_SIZE" => Some(part_size.to_string()),
            "TGPLOY_PACK_MAX_OBJECT_SIZE" => Some(max_object.to_string()),
            "TGPLOY_PACK_MAX_MEMBERS" => Some(max_members.to_string()),
            "TELEGRAM_API_URL" => Some("http://127.0.0.1:1".to_string()),
            _ => None,
        };
        Config::load_with(&overrides, &env).unwrap()
    }

    #[test]
    fn small_objects_are_grouped_by_destination_up_to_the_part_size_and_the_member_count() {
        let c = cfg(64 * 1024, 8 * 1024, 3);
        let cand = |id: i64, size: u64, started: bool| PackCandidate {
            id,
            bucket: "b".into(),
            key: format!("k{id}"),
            size,
            started,
        };
        let cands: Vec<PackCandidate> = vec![
            cand(1, 100, false),
            cand(2, 100, false),
            cand(3, 9 * 1024, false), // too big for a pack
            cand(4, 0, false),        // empty: a text message
            cand(5, 100, true),       // started: resumes alone
            cand(6, 100, false),
            cand(7, 100, false),
        ];
        let g = group(&c, &cands);
        // Three a pack; the one left over takes the last of the pack before it.
        assert_eq!(g.packs, [vec![1, 2], vec![6, 7]]);
        let mut alone = g.alone.clone();
        alone.sort();
        assert_eq!(alone, [3, 4, 5]);
        let off = cfg(64 * 1024, 0, 3);
        assert!(group(&off, &cands).packs.is_empty(), "0 turns packing off");
    }

    #[test]
    fn an_object_below_the_threshold_that_no_pack_holds_goes_alone_without_splitting_the_others() {
        // Parts of 64 KiB, a threshold of 1 MiB: an object of 128 KiB is "small" but no
        // pack can hold it. Wherever it comes in the batch, the others pack together.
        let c = cfg(64 * 1024, 1 << 20, 1000);
        for at in [0, 10, 20, 21] {
            let mut cands: Vec<PackCandidate> = (1..=21)
                .map(|id| PackCandidate {
                    id,
                    bucket: "b".into(),
                    key: format!("k{id:02}"),
                    size: 2000,
                    started: false,
                })
                .collect();
            let big = PackCandidate { id: 99, bucket: "b".into(), key: "big".into(), size: 128 << 10, started: false };
            cands.insert(at, big);
            let g = group(&c, &cands);
            assert_eq!(g.alone, [99], "the big one at {at}");
            let mut packed: Vec<i64> = g.packs.iter().flatten().copied().collect();
            packed.sort();
            assert_eq!(packed, (1..=21).collect::<Vec<_>>(), "the big one at {at}");
            assert!(g.packs.iter().all(|p| p.len() >= 2), "{:?}", g.packs);
        }
    }
}
