//! One delivery: claim, attempt, record. An object version goes out as parts (or one
//! document, or a text message for an empty object) and a manifest, under a claim in the
//! ledger that a lease keeps alive.
//!
//! Each part is fetched with a ranged GET (`If-Match` its ETag), streamed through two
//! SHA-256 hashers (the part's and the whole stream's) into a private temporary file of
//! at most `part_size` bytes ([`super::parts`]), uploaded from that file, recorded in the
//! ledger as soon as Telegram accepts it, then deleted. A delivery that died after part
//! k resumes at part k+1 with the hash state stored beside part k.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::hash::ResumableSha256;
use super::layout::{EMPTY_SHA256, base_name, part_count, part_file_name};
use super::manifest::{self, Manifest, ManifestEncryption, ManifestPart};
use super::parts::{EncryptedReader, PlainReader, ReadyPart};
use super::stop::Stop;
use crate::alert;
use crate::alongside::alongside;
use crate::config::{ChatRef, Config, Destination};
use crate::error::{Result, Service};
use crate::ledger::{ClaimTerms, Delivery, Ledger, ObjectVersion, Part, State};
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::sink::caption::{CaptionInfo, document_caption, empty_object_message, manifest_caption};
use crate::sink::{Addressee, TelegramSink};
use crate::source::{S3Source, SourceError};
use crate::time::{now, rfc3339, rfc3339_ms};

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every part (and the manifest) accepted.
    Sent { bytes: u64, parts: u32 },
    /// Recorded as failed, to be retried on the backoff schedule, or `dead` after the
    /// last allowed attempt (an alert is queued).
    Failed { error: String, dead: bool },
    /// S3 or Telegram is down (no answer, 5xx, or a flood wait longer than the run
    /// waits): the claim was released, no attempt counted; the run stops.
    Outage { service: Service, error: String },
    /// Another run took the delivery over (our lease ran out); it carries on.
    Lost,
    /// A signal asked the run to stop; the claim was released, accepted parts kept.
    Interrupted,
    /// Sent as a member of a pack (`pack`, the document's name) of `bytes` bytes.
    Packed { bytes: u64, pack: String },
    /// The version vanished from S3 before it was delivered; recorded as skipped.
    Gone { reason: String },
}

/// Delivers claimed object versions; shared by the deliveries of one run.
pub(super) struct Courier<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) ledger: &'a Arc<Ledger>,
    pub(crate) source: &'a S3Source,
    pub(crate) sink: &'a TelegramSink,
    /// A private directory for part files.
    pub(crate) tmp_dir: &'a Path,
    pub(crate) owner: &'a str,
    pub(crate) lease: Duration,
    pub(crate) progress: &'a Progress,
    pub(crate) shutdown: &'a Shutdown,
}

impl Courier<'_> {
    pub(super) fn lease_until(&self) -> i64 {
        now() + self.lease.as_secs() as i64
    }

    /// Runs a ledger call on the blocking pool with this run's owner name.
    pub(super) async fn ledger<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Ledger, &str) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let owner = self.owner.to_string();
        Ledger::blocking(self.ledger, move |l| f(l, &owner)).await
    }

    /// Runs `claim` with this run's terms: its owner, a fresh lease, the part size, and
    /// each bucket's destination as configured now for the claim to fix. Where a delivery
    /// goes is fixed by its first accepted part (`Ledger::claim`): a bucket's new
    /// destination changes where new versions go, and where one with no part accepted yet
    /// goes, not where a started one is.
    pub(super) async fn claiming<R, F>(&self, retrying: bool, claim: F) -> Result<R>
    where
        F: FnOnce(&Ledger, &ClaimTerms<'_>) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (lease_until, part_size, routes) = (self.lease_until(), self.cfg.part_size, self.cfg.clone());
        let destination_of = move |bucket: &str| match routes.destination_for(bucket) {
            Ok(d) => (d.chat.to_string(), d.topic),
            Err(_) => (String::new(), None),
        };
        self.ledger(move |l, owner| {
            let destination_of = &destination_of;
            claim(l, &ClaimTerms { owner, lease_until, part_size, destination_of, now: now(), failed: retrying })
        })
        .await
    }

    /// Whether S3 answers for `bucket` (any answer, a refusal included): what tells an
    /// object S3 cannot serve from S3 being down.
    pub(super) async fn s3_answers(&self, bucket: &str) -> bool {
        !matches!(self.source.probe_bucket(bucket).await, Err(e) if e.is_unavailable())
    }

    /// Claims and delivers one delivery. `None` when another run holds it. An `Err` is
    /// for what ends the whole run (the ledger failing, a configuration error); the claim
    /// is released first.
    pub(crate) async fn deliver(&self, id: i64, retrying: bool) -> Result<Option<(ObjectVersion, Outcome)>> {
        let claimed = self.claiming(retrying, move |l, terms| l.claim(id, terms)).await?;
        let Some(delivery) = claimed else { return Ok(None) };
        let obj = delivery.object.clone();
        let label = format!("{}/{}", obj.bucket, obj.key);
        let counted = AtomicU64::new(0);
        let result = match self.holding(id, self.attempt(&delivery, &counted)).await {
            // One object S3 cannot serve (a bad disk under it) while S3 answers: that
            // object's failure, counted and retried on the backoff schedule, rather than
            // an outage that would stop every run at it.
            Err(Stop::Source(e)) if e.is_unavailable() && self.s3_answers(&obj.bucket).await => {
                Err(Stop::Failed(format!("{e} (while S3 served other objects)")))
            }
            result => result,
        };
        if !matches!(result, Ok(Outcome::Sent { .. })) {
            // What this attempt did not deliver leaves the progress bar's total.
            self.progress.forget(obj.size.saturating_sub(counted.load(Ordering::Relaxed)));
        }
        Ok(Some((obj, self.settle(id, &label, result).await?)))
    }

    /// Records what an attempt at delivery `id` (`label`) came to, and says so: what
    /// ends the whole run (the ledger failing, a configuration error) is the `Err`, after
    /// the claim was given back.
    pub(super) async fn settle(&self, id: i64, label: &str, result: Result<Outcome, Stop>) -> Result<Outcome> {
        let release = || self.ledger(move |l, owner| l.release(id, owner, now()));
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(Stop::Lost) => {
                tracing::warn!("{label}: another run took this delivery over; leaving it to that run");
                Outcome::Lost
            }
            Err(Stop::Interrupted) => {
                release().await?;
                tracing::info!("{label}: stopped on request; the next run resumes it");
                Outcome::Interrupted
            }
            Err(Stop::Ledger(e)) => {
                let _ = release().await;
                return Err(e);
            }
            Err(Stop::Sink(e)) if e.is_config() => {
                release().await?;
                return Err(e.into());
            }
            // An outage is not this delivery's fault: no attempt is counted, and the run
            // stops rather than failing every delivery after it.
            Err(Stop::Sink(e)) if e.is_outage() => {
                release().await?;
                Outcome::Outage { service: Service::Telegram, error: e.to_string() }
            }
            Err(Stop::Source(e @ SourceError::Unreachable { .. })) => {
                release().await?;
                Outcome::Outage { service: Service::S3, error: e.to_string() }
            }
            Err(Stop::Gone(reason)) => {
                tracing::warn!("{label}: {reason}; recorded as skipped");
                let why = reason.clone();
                if !self.ledger(move |l, owner| l.mark_skipped(id, owner, &why, now())).await? {
                    Outcome::Lost
                } else {
                    Outcome::Gone { reason }
                }
            }
            Err(stop) => self.failed(id, label, stop).await?,
        };
        Ok(outcome)
    }

    /// Settles a member that left its pack, or whose pack stopped: as one delivery's
    /// stop, with what it did not deliver taken off the progress.
    pub(super) async fn settle_one(&self, d: Delivery, stop: Stop) -> Result<(i64, ObjectVersion, Outcome)> {
        self.progress.forget(d.object.size);
        let label = format!("{}/{}", d.object.bucket, d.object.key);
        let outcome = self.settle(d.id, &label, Err(stop)).await?;
        Ok((d.id, d.object, outcome))
    }

    /// Where the parts of `d` go: the destination its claim fixed, named in errors
    /// by the setting that chose it. Only the default chat's failures stop a run.
    pub(super) fn target(&self, d: &Delivery) -> Result<Addressee, Stop> {
        let bucket = &d.object.bucket;
        let own = self.cfg.buckets.get(bucket);
        let chat: ChatRef = d
            .chat
            .as_deref()
            .ok_or_else(|| Stop::Failed("the ledger has no destination for this delivery".into()))?
            .parse()
            .map_err(Stop::Failed)?;
        let dest = Destination { chat, topic: d.topic };
        let current = self.cfg.destination_for(bucket).ok();
        let setting = match (own.and_then(|b| b.chat.as_ref()), own.and_then(|b| b.topic), dest.topic) {
            _ if current.as_ref() != Some(&dest) => {
                "the destination this delivery started with (the configuration changed since)".to_string()
            }
            (Some(_), Some(_), _) => format!("buckets.{bucket}.chat_id` and `buckets.{bucket}.topic_id"),
            (Some(_), None, _) => format!("buckets.{bucket}.chat_id"),
            (None, Some(_), _) => format!("buckets.{bucket}.topic_id"),
            (None, None, Some(_)) => "telegram.backup_chat_id` and `telegram.backup_topic_id".to_string(),
            (None, None, None) => "telegram.backup_chat_id".to_string(),
        };
        let fatal = own.and_then(|b| b.chat.as_ref()).is_none() && current.as_ref() == Some(&dest);
        Ok(Addressee::new(&dest, setting, fatal))
    }

    /// Records a failed attempt (or a dead delivery, with an alert).
    async fn failed(&self, id: i64, label: &str, stop: Stop) -> Result<Outcome> {
        let error = match stop {
            Stop::Source(e) => e.to_string(),
            Stop::Sink(e) => e.to_string(),
            Stop::Failed(e) => e,
            Stop::Gone(e) => e,
            Stop::Lost | Stop::Interrupted => "stopped".to_string(),
            Stop::Ledger(e) => e.to_string(),
        };
        let error = self.sink.redact(&error);
        let (why, cfg) = (error.clone(), self.cfg.clone());
        let max_attempts = cfg.max_attempts;
        let marked = self
            .ledger(move |l, owner| {
                let Some(d) = l.mark_failed(id, owner, &why, max_attempts, now())? else { return Ok(None) };
                if d.state == State::Dead {
                    alert::raise(l, &cfg, alert::Subject::Dead(&d), &why)?;
                }
                Ok(Some(d))
            })
            .await?;
        let Some(d) = marked else { return Ok(Outcome::Lost) };
        let dead = d.state == State::Dead;
        if dead {
            tracing::error!("{label}: delivery is dead after {} attempts: {error}", d.attempts);
        } else {
            tracing::warn!(
                "{label}: delivery failed (attempt {}), next attempt at {}: {error}",
                d.attempts,
                d.next_attempt_at.map(rfc3339).unwrap_or_default()
            );
        }
        Ok(Outcome::Failed { error, dead })
    }

    /// Runs `fut` while keeping the lease alive; stops if the claim is lost.
    async fn holding<T>(&self, id: i64, fut: impl Future<Output = Result<T, Stop>>) -> Result<T, Stop> {
        tokio::pin!(fut);
        let mut tick = tokio::time::interval((self.lease / 3).max(Duration::from_secs(1)));
        tick.tick().await;
        loop {
            tokio::select! {
                v = &mut fut => return v,
                _ = tick.tick() => {
                    let until = self.lease_until();
                    if !self.ledger(move |l, owner| l.renew_lease(id, owner, until)).await? {
                        return Err(Stop::Lost);
                    }
                }
            }
        }
    }

    async fn attempt(&self, d: &Delivery, counted: &AtomicU64) -> Result<Outcome, Stop> {
        let obj = &d.object;
        let id = d.id;
        let part_size = d.part_size.unwrap_or(self.cfg.part_size);
        let name = base_name(&obj.key);
        let encryption = self.cfg.encryption.as_ref().filter(|_| obj.size > 0);
        let mut done = self.ledger(move |l, _| l.parts(id)).await?;
        // An encrypted stream cannot resume (its header is random), and a stream must not
        // switch between plain and encrypted half-way: start again from the first part.
        if d.encrypted != encryption.is_some() || (d.encrypted && !done.is_empty()) {
            if !done.is_empty() {
                tracing::info!(
                    "{}/{}: restarting from the first part; the {} part(s) sent before are superseded",
                    obj.bucket,
                    obj.key,
                    done.len()
                );
            }
            let encrypted = encryption.is_some();
            if !self.ledger(move |l, owner| l.restart_parts(id, owner, encrypted, now())).await? {
                return Err(Stop::Lost);
            }
            done.clear();
        }
        for (i, p) in done.iter().enumerate() {
            if p.idx as usize != i + 1 {
                return Err(Stop::Failed(format!("ledger has a gap in the parts of delivery {id} at part {}", i + 1)));
            }
        }

        if obj.size == 0 {
            return self.send_empty(d, &name).await;
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let (count, stored, reader) = match encryption {
            Some(enc) => {
                let reader = EncryptedReader::new(self.source, obj, self.tmp_dir, part_size, enc)?;
                let stored = format!("{name}{}", crate::crypt::SUFFIX);
                let count = reader.count;
                (count, Some(stored), futures_util::future::Either::Left(reader.read_into(tx)))
            }
            None => {
                let count = part_count(obj.size, part_size);
                let whole = match done.last() {
                    None => ResumableSha256::new(),
                    Some(last) => {
                        let saved = last.hash_state.as_deref().and_then(ResumableSha256::resume);
                        match saved {
                            Some(h) if h.len() == last.offset + last.size && last.idx < count => h,
                            _ => {
                                return Err(Stop::Failed(format!(
                                    "cannot resume delivery {id} after part {}: its hash state is missing",
                                    last.idx
                                )));
                            }
                        }
                    }
                };
                if !done.is_empty() {
                    tracing::info!("{}/{}: resuming at part {} of {count}", obj.bucket, obj.key, done.len() + 1);
                    let resumed: u64 = done.iter().map(|p| p.size).sum();
                    counted.fetch_add(resumed, Ordering::Relaxed);
                    self.progress.inc(resumed);
                }
                let first = done.len() as u32 + 1;
                let reader =
                    PlainReader { source: self.source, obj, tmp_dir: self.tmp_dir, part_size, count, first, whole };
                (count, None, futures_util::future::Either::Right(reader.read_into(tx)))
            }
        };
        // Part k+1 is read while part k uploads; the reader ends when the uploads stop
        // taking its parts (this future returns, dropping the receiver).
        let uploads = async {
            let mut last = None;
            while let Some(part) = rx.recv().await {
                let part = part?;
                if self.shutdown.requested().is_some() {
                    return Err(Stop::Interrupted);
                }
                let len = part.len;
                last = self.send_part(d, &name, stored.as_deref(), count, part).await?;
                if stored.is_none() {
                    counted.fetch_add(len, Ordering::Relaxed);
                    self.progress.inc(len);
                }
            }
            last.ok_or_else(|| Stop::Failed(format!("the parts of {}/{} ended early", obj.bucket, obj.key)))
        };
        let (sha, encryption) = alongside(uploads, reader).await?;
        if stored.is_some() {
            counted.fetch_add(obj.size, Ordering::Relaxed);
            self.progress.inc(obj.size);
        }
        if count == 1 {
            return Ok(self.sent(d, 1));
        }
        let plaintext = encryption.as_ref().map(|e| e.plaintext_sha256.clone());
        let manifest = self.send_manifest(d, part_size, &name, &sha, encryption).await?;
        let manifest = (manifest.message_id, manifest.file_id, manifest.bot_id);
        let sent = self
            .ledger(move |l, owner| {
                l.mark_sent(id, owner, &sha, Some((manifest.0, &manifest.1, manifest.2)), plaintext.as_deref(), now())
            })
            .await?;
        if !sent {
            return Err(Stop::Lost);
        }
        Ok(self.sent(d, count))
    }

    fn sent(&self, d: &Delivery, parts: u32) -> Outcome {
        tracing::info!(
            "sent {}/{} ({} bytes, {parts} part{})",
            d.object.bucket,
            d.object.key,
            d.object.size,
            if parts == 1 { "" } else { "s" }
        );
        Outcome::Sent { bytes: d.object.size, parts }
    }

    /// An empty object: Telegram takes no empty documents, so a text message stands in.
    async fn send_empty(&self, d: &Delivery, name: &str) -> Result<Outcome, Stop> {
        let obj = &d.object;
        let modified = obj.last_modified_ms.map(rfc3339_ms);
        let text = empty_object_message(&obj.bucket, &obj.key, &obj.etag, modified.as_deref());
        let sent = self.sink.send_text(&self.target(d)?, &text).await?;
        let part = Part {
            idx: 1,
            offset: 0,
            size: 0,
            sha256: EMPTY_SHA256.into(),
            hash_state: None,
            file_name: name.to_string(),
            message_id: sent.message_id,
            file_id: None,
            file_unique_id: None,
            sent_at: now(),
            bot_id: Some(sent.bot_id),
            // Where Telegram says it put the message (the sink checked it is where asked).
            chat: Some(sent.landed.chat.to_string()),
            topic: sent.landed.topic,
        };
        let id = d.id;
        if !self.ledger(move |l, owner| l.finish_single(id, owner, &part, EMPTY_SHA256, None)).await? {
            return Err(Stop::Lost);
        }
        Ok(self.sent(d, 1))
    }

    /// Sends one part from its file and records it (a single part finishes the delivery
    /// in the same transaction). Returns the whole stream's digest with the last part.
    async fn send_part(
        &self,
        d: &Delivery,
        name: &str,
        encrypted: Option<&str>,
        count: u32,
        ready: ReadyPart,
    ) -> Result<Option<(String, Option<ManifestEncryption>)>, Stop> {
        let obj = &d.object;
        let idx = ready.idx;
        let offset = u64::from(idx - 1) * d.part_size.unwrap_or(self.cfg.part_size);
        let stored = encrypted.unwrap_or(name);
        let file_name = if count == 1 { stored.to_string() } else { part_file_name(stored, idx, count) };
        let caption = document_caption(&CaptionInfo {
            bucket: &obj.bucket,
            key: &obj.key,
            etag: &obj.etag,
            size: obj.size,
            last_modified: obj.last_modified_ms.map(rfc3339_ms),
            part: (count > 1).then_some((idx, count, offset, ready.len)),
            base_name: stored,
            sha256: &ready.sha256,
            decrypts_to: encrypted.map(|_| name),
        });
        let started = std::time::Instant::now();
        let sent = self.sink.send_file(&self.target(d)?, ready.file.path(), &file_name, &caption).await?;
        tracing::debug!("{}/{}: uploaded part {idx} in {:.2?}", obj.bucket, obj.key, started.elapsed());
        let whole = ready.last.as_ref().map(|(sha, _)| sha.clone());
        let plaintext = ready.last.as_ref().and_then(|(_, e)| e.as_ref()).map(|e| e.plaintext_sha256.clone());
        let part = Part {
            idx,
            offset,
            size: ready.len,
            sha256: ready.sha256.clone(),
            hash_state: ready.hash_state.clone(),
            file_name,
            message_id: sent.message_id,
            file_id: Some(sent.file_id),
            file_unique_id: Some(sent.file_unique_id),
            sent_at: now(),
            bot_id: Some(sent.bot_id),
            // Where Telegram says it put the message (the sink checked it is where asked).
            chat: Some(sent.landed.chat.to_string()),
            topic: sent.landed.topic,
        };
        let (id, until) = (d.id, self.lease_until());
        let held = match (count, whole) {
            (1, Some(sha)) => {
                self.ledger(move |l, owner| l.finish_single(id, owner, &part, &sha, plaintext.as_deref())).await?
            }
            (_, whole) => self.ledger(move |l, owner| l.record_part(id, owner, until, &part, whole.as_deref())).await?,
        };
        if !held {
            return Err(Stop::Lost);
        }
        crate::metrics::count(crate::metrics::PARTS_SENT, &[], 1.0);
        Ok(ready.last)
    }

    /// Sends the manifest of a multi-part delivery.
    async fn send_manifest(
        &self,
        d: &Delivery,
        part_size: u64,
        name: &str,
        sha: &str,
        encryption: Option<ManifestEncryption>,
    ) -> Result<crate::sink::SentDocument, Stop> {
        let obj = &d.object;
        let id = d.id;
        let parts = self.ledger(move |l, _| l.parts(id)).await?;
        let stored = if encryption.is_some() { format!("{name}{}", crate::crypt::SUFFIX) } else { name.to_string() };
        let decrypts_to = encryption.is_some().then_some(name);
        let manifest = build_manifest(d, part_size, name, sha, &parts, encryption);
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Stop::Failed(format!("cannot encode the manifest: {e}")))?;
        let caption =
            manifest_caption(&obj.bucket, &obj.key, parts.len() as u32, manifest.size, sha, &stored, decrypts_to);
        Ok(self.sink.send_bytes(&self.target(d)?, json, &format!("{name}.tgploy.json"), &caption).await?)
    }
}

fn build_manifest(
    d: &Delivery,
    part_size: u64,
    name: &str,
    sha: &str,
    parts: &[Part],
    encryption: Option<ManifestEncryption>,
) -> Manifest {
    let obj = &d.object;
    Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        bucket: obj.bucket.clone(),
        key: obj.key.clone(),
        etag: obj.etag.clone(),
        size: parts.iter().map(|p| p.size).sum(),
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
                bot_id: p.bot_id,
            })
            .collect(),
        created_at: rfc3339(now()),
        tgploy_version: env!("CARGO_PKG_VERSION").into(),
        encryption,
    }
}
