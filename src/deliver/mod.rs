//! One object version → parts → uploads → manifest, under a claim in the ledger.
//!
//! Each part is fetched with a ranged GET, streamed through two SHA-256 hashers (the
//! part's and the whole stream's) into a private temporary file of at most `part_size`
//! bytes, uploaded from that file, recorded in the ledger as soon as Telegram accepts it,
//! then deleted. Memory stays bounded by the read buffer; disk by one part. A delivery
//! that died after part k resumes at part k+1 with the hash state stored beside part k.

pub mod hash;
pub mod manifest;

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::alert;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ledger::{Delivery, Ledger, Part, State};
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::sink::caption::{CaptionInfo, document_caption, empty_object_message, manifest_caption};
use crate::sink::{Chat, SinkError, TelegramSink};
use crate::source::{S3Source, SourceError};
use crate::time::{now, rfc3339, rfc3339_ms};
use hash::ResumableSha256;
use manifest::{Manifest, ManifestPart};

/// SHA-256 of nothing: what an empty object hashes to.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every part (and the manifest) accepted.
    Sent { bytes: u64, parts: u32 },
    /// Recorded as failed, to be retried on the backoff schedule, or `dead` after the
    /// last allowed attempt (an alert is queued).
    Failed { error: String, unreachable: bool, dead: bool },
    /// Another run took the delivery over (our lease ran out); it carries on.
    Lost,
    /// A signal asked the run to stop; the claim was released, accepted parts kept.
    Interrupted,
    /// The version vanished from S3 before it was delivered; recorded as skipped.
    Gone { reason: String },
}

/// Why one attempt stopped.
#[derive(Debug)]
enum Stop {
    Source(SourceError),
    Sink(SinkError),
    Failed(String),
    /// This version no longer exists on S3 (deleted or overwritten since the listing).
    Gone(String),
    Lost,
    Interrupted,
    Ledger(Error),
}

impl From<SourceError> for Stop {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::NotFound(_) => Stop::Gone("the object was deleted before it could be delivered".into()),
            e => Stop::Source(e),
        }
    }
}

impl From<SinkError> for Stop {
    fn from(e: SinkError) -> Self {
        Stop::Sink(e)
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Ledger(e)
    }
}

/// The name an object is restored under: the last segment of its key.
pub fn base_name(key: &str) -> String {
    let last = key.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
    let clean: String = last.chars().map(|c| if c.is_control() || c == '\\' { '_' } else { c }).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        return "object".to_string();
    }
    // Leave room for `.part0001` and `.tgploy.json` within common 255-byte name limits.
    if clean.len() > 200 {
        let mut end = 200;
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        return clean[..end].to_string();
    }
    clean.to_string()
}

/// How many parts an object of `size` bytes is split into (0 for an empty object).
pub fn part_count(size: u64, part_size: u64) -> u32 {
    size.div_ceil(part_size.max(1)) as u32
}

/// The file name of part `idx` of `count`: `name.part001`, zero-padded to the width of
/// the count (at least three digits) so `cat name.part*` joins them in order.
pub fn part_file_name(name: &str, idx: u32, count: u32) -> String {
    let width = count.to_string().len().max(3);
    format!("{name}.part{idx:0width$}")
}

/// Delivers claimed object versions.
pub struct Courier<'a> {
    pub cfg: &'a Config,
    pub ledger: &'a Ledger,
    pub source: &'a S3Source,
    pub sink: &'a TelegramSink,
    /// A private directory for part files.
    pub tmp_dir: &'a Path,
    pub owner: &'a str,
    pub lease: Duration,
    pub progress: &'a Progress,
    /// Claim failed deliveries (`retry`) rather than pending ones (`sync`).
    pub retrying: bool,
    pub shutdown: &'a Shutdown,
}

impl Courier<'_> {
    fn lease_until(&self) -> i64 {
        now() + self.lease.as_secs() as i64
    }

    /// Claims and delivers one delivery. `None` when another run holds it. An `Err` is
    /// for what ends the whole run (the ledger failing, a configuration error); the claim
    /// is released first.
    pub async fn deliver(&self, id: i64) -> Result<Option<Outcome>> {
        let Some(delivery) =
            self.ledger.claim(id, self.owner, self.lease_until(), self.cfg.part_size, now(), self.retrying)?
        else {
            return Ok(None);
        };
        let label = format!("{}/{}", delivery.object.bucket, delivery.object.key);
        self.progress.set_message(label.clone());
        match self.attempt(&delivery).await {
            Ok(outcome) => Ok(Some(outcome)),
            Err(Stop::Lost) => {
                tracing::warn!("{label}: another run took this delivery over; leaving it to that run");
                Ok(Some(Outcome::Lost))
            }
            Err(Stop::Interrupted) => {
                self.ledger.release(id, self.owner, now())?;
                tracing::info!("{label}: stopped on request; the next run resumes it");
                Ok(Some(Outcome::Interrupted))
            }
            Err(Stop::Ledger(e)) => {
                let _ = self.ledger.release(id, self.owner, now());
                Err(e)
            }
            Err(Stop::Sink(e)) if e.is_config() => {
                self.ledger.release(id, self.owner, now())?;
                Err(e.into())
            }
            // An S3 outage is not this delivery's fault: no attempt is counted, and the
            // run ends (exit 4) rather than failing every delivery after it.
            Err(Stop::Source(e @ SourceError::Unreachable { .. })) => {
                self.ledger.release(id, self.owner, now())?;
                Err(e.into())
            }
            Err(Stop::Gone(reason)) => {
                tracing::warn!("{label}: {reason}; recorded as skipped");
                if !self.ledger.mark_skipped(id, self.owner, &reason, now())? {
                    return Ok(Some(Outcome::Lost));
                }
                Ok(Some(Outcome::Gone { reason }))
            }
            Err(stop) => {
                let (error, unreachable) = match stop {
                    Stop::Source(e) => {
                        let unreachable = matches!(e, SourceError::Unreachable { .. });
                        (e.to_string(), unreachable)
                    }
                    Stop::Sink(e) => (e.to_string(), e.is_unreachable()),
                    Stop::Failed(e) => (e, false),
                    Stop::Gone(_) | Stop::Lost | Stop::Interrupted | Stop::Ledger(_) => {
                        unreachable!("handled above")
                    }
                };
                let error = self.sink.redact(&error);
                let Some(d) = self.ledger.mark_failed(id, self.owner, &error, self.cfg.max_attempts, now())? else {
                    return Ok(Some(Outcome::Lost));
                };
                let dead = d.state == State::Dead;
                if dead {
                    tracing::error!("{label}: delivery is dead after {} attempts: {error}", d.attempts);
                    alert::raise(self.ledger, self.cfg, alert::Subject::Dead(&d), &error)?;
                } else {
                    tracing::warn!(
                        "{label}: delivery failed (attempt {}), next attempt at {}: {error}",
                        d.attempts,
                        d.next_attempt_at.map(rfc3339).unwrap_or_default()
                    );
                }
                Ok(Some(Outcome::Failed { error, unreachable, dead }))
            }
        }
    }

    /// Runs `fut` while keeping the lease alive; stops if the claim is lost.
    async fn holding<T>(&self, id: i64, fut: impl Future<Output = T>) -> Result<T, Stop> {
        tokio::pin!(fut);
        let mut tick = tokio::time::interval((self.lease / 3).max(Duration::from_secs(1)));
        tick.tick().await;
        loop {
            tokio::select! {
                v = &mut fut => return Ok(v),
                _ = tick.tick() => {
                    if !self.ledger.renew_lease(id, self.owner, self.lease_until())? {
                        return Err(Stop::Lost);
                    }
                }
            }
        }
    }

    async fn attempt(&self, d: &Delivery) -> Result<Outcome, Stop> {
        let obj = &d.object;
        let part_size = d.part_size.unwrap_or(self.cfg.part_size);
        let name = base_name(&obj.key);
        let modified = obj.last_modified_ms.map(rfc3339_ms);
        let done = self.ledger.parts(d.id)?;
        for (i, p) in done.iter().enumerate() {
            if p.idx as usize != i + 1 {
                return Err(Stop::Failed(format!(
                    "ledger has a gap in the parts of delivery {} at part {}",
                    d.id,
                    i + 1
                )));
            }
        }

        if obj.size == 0 {
            if done.is_empty() {
                let text = empty_object_message(&obj.bucket, &obj.key, &obj.etag, modified.as_deref());
                let message_id = self.holding(d.id, self.sink.send_text(Chat::Backup, &text)).await??;
                let part = Part {
                    idx: 1,
                    offset: 0,
                    size: 0,
                    sha256: EMPTY_SHA256.into(),
                    hash_state: None,
                    file_name: name.clone(),
                    message_id,
                    file_id: None,
                    file_unique_id: None,
                    sent_at: now(),
                };
                if !self.ledger.record_part(d.id, self.owner, self.lease_until(), &part, Some(EMPTY_SHA256))? {
                    return Err(Stop::Lost);
                }
            }
            return self.finish(d, EMPTY_SHA256, None, 1).await;
        }

        let count = part_count(obj.size, part_size);
        let mut whole = match done.last() {
            None => Some(ResumableSha256::new()),
            Some(last) if last.idx < count => {
                let saved = last.hash_state.as_deref().and_then(ResumableSha256::resume);
                if saved.as_ref().map(|h| h.len()) != Some(last.offset + last.size) {
                    return Err(Stop::Failed(format!(
                        "cannot resume delivery {} after part {}: its hash state is missing",
                        d.id, last.idx
                    )));
                }
                saved
            }
            Some(_) => None,
        };
        if !done.is_empty() {
            tracing::info!("{}/{}: resuming at part {} of {count}", obj.bucket, obj.key, done.len() + 1);
            self.progress.inc(done.iter().map(|p| p.size).sum());
        }

        let mut whole_sha = d.sha256.clone();
        for idx in (done.len() as u32 + 1)..=count {
            if self.shutdown.requested().is_some() {
                return Err(Stop::Interrupted);
            }
            let offset = u64::from(idx - 1) * part_size;
            let len = part_size.min(obj.size - offset);
            let hasher = whole.as_mut().ok_or_else(|| Stop::Failed("hash state lost".into()))?;
            let (file, part_sha) = self.holding(d.id, self.fetch_part(d, offset, len, hasher)).await??;
            let file_name = if count == 1 { name.clone() } else { part_file_name(&name, idx, count) };
            let caption = document_caption(&CaptionInfo {
                bucket: &obj.bucket,
                key: &obj.key,
                etag: &obj.etag,
                size: obj.size,
                last_modified: modified.clone(),
                part: (count > 1).then_some((idx, count, offset, len)),
                base_name: &name,
                sha256: &part_sha,
            });
            let sent = self.holding(d.id, self.sink.send_file(file.path(), &file_name, &caption)).await??;
            let last = idx == count;
            if last {
                whole_sha = whole.take().map(ResumableSha256::finalize_hex);
            }
            let part = Part {
                idx,
                offset,
                size: len,
                sha256: part_sha,
                hash_state: if last { None } else { whole.as_ref().and_then(ResumableSha256::save) },
                file_name,
                message_id: sent.message_id,
                file_id: Some(sent.file_id),
                file_unique_id: Some(sent.file_unique_id),
                sent_at: now(),
            };
            if !self.ledger.record_part(d.id, self.owner, self.lease_until(), &part, whole_sha.as_deref())? {
                return Err(Stop::Lost);
            }
            drop(file);
            self.progress.inc(len);
        }

        let sha = whole_sha.ok_or_else(|| Stop::Failed("the whole-object SHA-256 was not recorded".into()))?;
        let manifest = if count > 1 {
            let parts = self.ledger.parts(d.id)?;
            let manifest = build_manifest(d, part_size, &name, &sha, &parts);
            let json = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| Stop::Failed(format!("cannot encode the manifest: {e}")))?;
            let caption = manifest_caption(&obj.bucket, &obj.key, count, obj.size, &sha, &name);
            let sent =
                self.holding(d.id, self.sink.send_bytes(json, &format!("{name}.tgploy.json"), &caption)).await??;
            Some((sent.message_id, sent.file_id))
        } else {
            None
        };
        self.finish(d, &sha, manifest, count).await
    }

    async fn finish(
        &self,
        d: &Delivery,
        sha: &str,
        manifest: Option<(i64, String)>,
        parts: u32,
    ) -> Result<Outcome, Stop> {
        let manifest = manifest.as_ref().map(|(id, file)| (*id, file.as_str()));
        if !self.ledger.mark_sent(d.id, self.owner, sha, manifest, now())? {
            return Err(Stop::Lost);
        }
        tracing::info!(
            "sent {}/{} ({} bytes, {parts} part{})",
            d.object.bucket,
            d.object.key,
            d.object.size,
            if parts == 1 { "" } else { "s" }
        );
        Ok(Outcome::Sent { bytes: d.object.size, parts })
    }

    /// Streams `len` bytes at `offset` into a private temporary file, hashing them.
    async fn fetch_part(
        &self,
        d: &Delivery,
        offset: u64,
        len: u64,
        whole: &mut ResumableSha256,
    ) -> Result<(tempfile::NamedTempFile, String), Stop> {
        let obj = &d.object;
        let mut body = self.source.get(&obj.bucket, &obj.key, offset, len, obj.size).await?;
        if let Some(etag) = &body.etag
            && etag != &obj.etag
        {
            return Err(Stop::Gone(format!(
                "the object changed since it was listed (ETag now {etag}); its new version is delivered by a later sync"
            )));
        }
        let io =
            |e: std::io::Error| Stop::Failed(format!("cannot write a part file in {}: {e}", self.tmp_dir.display()));
        let mut file = tempfile::Builder::new().prefix("part-").tempfile_in(self.tmp_dir).map_err(io)?;
        let mut part_hash = Sha256::new();
        let mut received = 0u64;
        while let Some(chunk) = body.next_chunk().await? {
            received += chunk.len() as u64;
            if received > len {
                return Err(Stop::Failed(format!(
                    "S3 sent more than the {len} bytes asked for at offset {offset} of {}/{}",
                    obj.bucket, obj.key
                )));
            }
            part_hash.update(&chunk);
            whole.update(&chunk);
            file.write_all(&chunk).map_err(io)?;
        }
        if received != len {
            return Err(Stop::Failed(format!(
                "S3 sent {received} of {len} bytes at offset {offset} of {}/{}",
                obj.bucket, obj.key
            )));
        }
        file.flush().map_err(io)?;
        Ok((file, hex::encode(part_hash.finalize())))
    }
}

fn build_manifest(d: &Delivery, part_size: u64, name: &str, sha: &str, parts: &[Part]) -> Manifest {
    let obj = &d.object;
    Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        bucket: obj.bucket.clone(),
        key: obj.key.clone(),
        etag: obj.etag.clone(),
        size: obj.size,
        last_modified: obj.last_modified_ms.map(rfc3339_ms),
        sha256: sha.into(),
        part_size,
        file_name: name.into(),
        parts: parts
            .iter()
            .map(|p| ManifestPart {
                index: p.idx,
                file_name: p.file_name.clone(),
                offset: p.offset,
                size: p.size,
                sha256: p.sha256.clone(),
                message_id: p.message_id,
                file_id: p.file_id.clone().unwrap_or_default(),
                file_unique_id: p.file_unique_id.clone(),
            })
            .collect(),
        created_at: rfc3339(now()),
        tgploy_version: env!("CARGO_PKG_VERSION").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_counts() {
        assert_eq!(base_name("db/2026/dump.sql.gz"), "dump.sql.gz");
        assert_eq!(base_name("dir/"), "dir");
        assert_eq!(base_name(""), "object");
        assert_eq!(base_name("a/.."), "object");
        assert_eq!(part_count(0, 10), 0);
        assert_eq!(part_count(10, 10), 1);
        assert_eq!(part_count(11, 10), 2);
        assert_eq!(part_file_name("x", 2, 55), "x.part002");
        assert_eq!(part_file_name("x", 2, 1200), "x.part0002");
    }
}
