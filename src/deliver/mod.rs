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
use manifest::{Manifest, ManifestEncryption, ManifestPart};

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
        let encryption = self.cfg.encryption.as_ref().filter(|_| obj.size > 0);
        let mut done = self.ledger.parts(d.id)?;
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
            if !self.ledger.restart_parts(d.id, self.owner, encryption.is_some(), now())? {
                return Err(Stop::Lost);
            }
            done.clear();
        }
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

        if let Some(enc) = encryption {
            return self.holding(d.id, self.attempt_encrypted(d, enc, part_size, &name)).await?;
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
            let last = idx == count;
            if last {
                whole_sha = whole.take().map(ResumableSha256::finalize_hex);
            }
            let hash_state = if last { None } else { whole.as_ref().and_then(ResumableSha256::save) };
            let out = PartOut { idx, count, offset, len, sha256: part_sha, hash_state, whole_sha: whole_sha.clone() };
            self.send_part(d, &name, None, &file, out).await?;
            drop(file);
            self.progress.inc(len);
        }

        let sha = whole_sha.ok_or_else(|| Stop::Failed("the whole-object SHA-256 was not recorded".into()))?;
        let manifest = self.send_manifest(d, part_size, &name, &sha, None).await?;
        self.finish(d, &sha, manifest, count).await
    }

    /// Sends one part from its file and records it.
    async fn send_part(
        &self,
        d: &Delivery,
        name: &str,
        encrypted: Option<&str>,
        file: &tempfile::NamedTempFile,
        out: PartOut,
    ) -> Result<(), Stop> {
        let obj = &d.object;
        let PartOut { idx, count, offset, len, sha256, hash_state, whole_sha } = out;
        let stored = encrypted.unwrap_or(name);
        let file_name = if count == 1 { stored.to_string() } else { part_file_name(stored, idx, count) };
        let caption = document_caption(&CaptionInfo {
            bucket: &obj.bucket,
            key: &obj.key,
            etag: &obj.etag,
            size: obj.size,
            last_modified: obj.last_modified_ms.map(rfc3339_ms),
            part: (count > 1).then_some((idx, count, offset, len)),
            base_name: stored,
            sha256: &sha256,
            decrypts_to: encrypted.map(|_| name),
        });
        let sent = self.holding(d.id, self.sink.send_file(file.path(), &file_name, &caption)).await??;
        let part = Part {
            idx,
            offset,
            size: len,
            sha256,
            hash_state,
            file_name,
            message_id: sent.message_id,
            file_id: Some(sent.file_id),
            file_unique_id: Some(sent.file_unique_id),
            sent_at: now(),
        };
        if !self.ledger.record_part(d.id, self.owner, self.lease_until(), &part, whole_sha.as_deref())? {
            return Err(Stop::Lost);
        }
        self.progress.inc(len);
        Ok(())
    }

    /// Sends the manifest of a multi-part delivery; `None` for a single part.
    async fn send_manifest(
        &self,
        d: &Delivery,
        part_size: u64,
        name: &str,
        sha: &str,
        encryption: Option<ManifestEncryption>,
    ) -> Result<Option<(i64, String)>, Stop> {
        let obj = &d.object;
        let parts = self.ledger.parts(d.id)?;
        if parts.len() < 2 {
            return Ok(None);
        }
        let stored = if encryption.is_some() { format!("{name}{}", crate::crypt::SUFFIX) } else { name.to_string() };
        let decrypts_to = encryption.is_some().then_some(name);
        let manifest = build_manifest(d, part_size, name, sha, &parts, encryption);
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Stop::Failed(format!("cannot encode the manifest: {e}")))?;
        let caption =
            manifest_caption(&obj.bucket, &obj.key, parts.len() as u32, manifest.size, sha, &stored, decrypts_to);
        let sent = self.holding(d.id, self.sink.send_bytes(json, &format!("{name}.tgploy.json"), &caption)).await??;
        Ok(Some((sent.message_id, sent.file_id)))
    }

    /// Streams the whole object through an age encryptor, cut into parts of the stored
    /// stream as they fill; always from the first part (see [`crate::crypt`]).
    async fn attempt_encrypted(
        &self,
        d: &Delivery,
        enc: &crate::crypt::Encryption,
        part_size: u64,
        name: &str,
    ) -> Result<Outcome, Stop> {
        let obj = &d.object;
        let failed = |what: &str, e: std::io::Error| Stop::Failed(format!("cannot {what}: {e}"));
        let stored = format!("{name}{}", crate::crypt::SUFFIX);
        let mut windows = Windows { source: self.source, obj, window: part_size, next: 0, remaining: 0, body: None };
        let splitter = Splitter::new(self.tmp_dir, part_size);
        let ready_parts = splitter.ready.clone();
        let written = splitter.written.clone();
        let mut writer = Some(enc.wrap(splitter).map_err(|e| failed("encrypt", e))?);
        // The header is written now; its size varies, the payload's does not.
        let stored_size =
            written.load(std::sync::atomic::Ordering::SeqCst) + crate::crypt::Encryption::payload_size(obj.size);
        let count = part_count(stored_size, part_size);
        let gone = || Stop::Failed("the encryptor was finished twice".into());
        let mut plain = Sha256::new();
        let mut received = 0u64;
        let mut idx = 0u32;
        loop {
            if self.shutdown.requested().is_some() {
                return Err(Stop::Interrupted);
            }
            let chunk = windows.next_chunk().await?;
            let ready = match &chunk {
                Some((chunk, window_done)) => {
                    received += chunk.len() as u64;
                    if received > obj.size {
                        return Err(Stop::Failed(format!(
                            "S3 sent more than the {} bytes of {}/{}",
                            obj.size, obj.bucket, obj.key
                        )));
                    }
                    plain.update(chunk);
                    writer.as_mut().ok_or_else(gone)?.write_all(chunk).map_err(|e| self.part_file_error(e))?;
                    // Parts go out between S3 responses, never while one is half read.
                    if *window_done { take(&ready_parts) } else { Vec::new() }
                }
                None => Vec::new(),
            };
            let (ready, finished) = match chunk {
                Some(_) => (ready, None),
                None => {
                    let mut splitter = writer.take().ok_or_else(gone)?.finish().map_err(|e| self.part_file_error(e))?;
                    let mut ready = splitter.take_ready();
                    ready.extend(splitter.close().map_err(|e| self.part_file_error(e))?);
                    (ready, Some(splitter))
                }
            };
            for (file, sha256, len, whole_sha) in ready {
                idx += 1;
                if idx > count {
                    return Err(Stop::Failed(format!("the encrypted stream grew past its {count} parts")));
                }
                let offset = u64::from(idx - 1) * part_size;
                let out = PartOut { idx, count, offset, len, sha256, hash_state: None, whole_sha };
                self.send_part(d, name, Some(&stored), &file, out).await?;
            }
            let Some(splitter) = finished else { continue };
            if received != obj.size || splitter.total != stored_size || idx != count {
                return Err(Stop::Failed(format!(
                    "S3 sent {received} of {} bytes of {}/{} ({} of {stored_size} bytes encrypted)",
                    obj.size, obj.bucket, obj.key, splitter.total
                )));
            }
            let sha = splitter.whole_sha.clone().unwrap_or_default();
            let encryption = ManifestEncryption {
                scheme: crate::crypt::SCHEME.into(),
                recipients: enc.recipients().to_vec(),
                plaintext_size: obj.size,
                plaintext_sha256: hex::encode(plain.finalize()),
            };
            let manifest = self.send_manifest(d, part_size, name, &sha, Some(encryption)).await?;
            return self.finish(d, &sha, manifest, count).await;
        }
    }

    fn part_file_error(&self, e: std::io::Error) -> Stop {
        Stop::Failed(format!("cannot write a part file in {}: {e}", self.tmp_dir.display()))
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
        check_etag(body.etag.as_deref(), obj)?;
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

/// Reads an object as consecutive ranged GETs of `window` bytes, so that no S3 response
/// stays open, idle, while parts upload to Telegram.
struct Windows<'a> {
    source: &'a S3Source,
    obj: &'a crate::ledger::ObjectVersion,
    window: u64,
    /// The first byte of the next window.
    next: u64,
    /// Bytes still expected from the current response.
    remaining: u64,
    body: Option<crate::source::Body>,
}

impl Windows<'_> {
    /// The next chunk, and whether it completes its window's response.
    async fn next_chunk(&mut self) -> Result<Option<(bytes::Bytes, bool)>, Stop> {
        let obj = self.obj;
        loop {
            let body = match &mut self.body {
                Some(body) => body,
                None => {
                    if self.next >= obj.size {
                        return Ok(None);
                    }
                    let len = self.window.min(obj.size - self.next);
                    let body = self.source.get(&obj.bucket, &obj.key, self.next, len, obj.size).await?;
                    check_etag(body.etag.as_deref(), obj)?;
                    self.next += len;
                    self.remaining = len;
                    self.body.insert(body)
                }
            };
            match body.next_chunk().await? {
                Some(chunk) => {
                    let n = chunk.len() as u64;
                    if n > self.remaining {
                        return Err(Stop::Failed(format!(
                            "S3 sent more than asked for at offset {} of {}/{}",
                            self.next - self.remaining,
                            obj.bucket,
                            obj.key
                        )));
                    }
                    self.remaining -= n;
                    let done = self.remaining == 0;
                    if done {
                        self.body = None;
                    }
                    return Ok(Some((chunk, done)));
                }
                None if self.remaining > 0 => {
                    return Err(Stop::Failed(format!(
                        "S3 ended a response {} bytes short at offset {} of {}/{}",
                        self.remaining,
                        self.next - self.remaining,
                        obj.bucket,
                        obj.key
                    )));
                }
                None => self.body = None,
            }
        }
    }
}

/// A part's file, checked and ready to send.
struct PartOut {
    idx: u32,
    count: u32,
    offset: u64,
    len: u64,
    sha256: String,
    /// The whole stream's hash state after this part (plain streams only).
    hash_state: Option<Vec<u8>>,
    /// The whole stream's SHA-256, with the last part.
    whole_sha: Option<String>,
}

/// The version being read must still be the one listed.
fn check_etag(etag: Option<&str>, obj: &crate::ledger::ObjectVersion) -> Result<(), Stop> {
    match etag {
        Some(etag) if etag != obj.etag => Err(Stop::Gone(format!(
            "the object changed since it was listed (ETag now {etag}); its new version is delivered by a later sync"
        ))),
        _ => Ok(()),
    }
}

/// A part file ready to send: the file, its SHA-256, its length, and the whole stream's
/// SHA-256 when it is the last.
type ReadyPart = (tempfile::NamedTempFile, String, u64, Option<String>);

fn lock(ready: &std::sync::Mutex<Vec<ReadyPart>>) -> std::sync::MutexGuard<'_, Vec<ReadyPart>> {
    ready.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn take(ready: &std::sync::Mutex<Vec<ReadyPart>>) -> Vec<ReadyPart> {
    std::mem::take(&mut *lock(ready))
}

/// Cuts a stream written into it into part files of `part_size` bytes.
struct Splitter<'a> {
    dir: &'a Path,
    part_size: u64,
    current: Option<(tempfile::NamedTempFile, Sha256, u64)>,
    /// Shared, because the encryptor owns the splitter while the stream is written.
    ready: std::sync::Arc<std::sync::Mutex<Vec<ReadyPart>>>,
    whole: Sha256,
    total: u64,
    /// `total`, readable while the encryptor owns the splitter.
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
    whole_sha: Option<String>,
}

impl<'a> Splitter<'a> {
    fn new(dir: &'a Path, part_size: u64) -> Self {
        Splitter {
            dir,
            part_size,
            current: None,
            ready: Default::default(),
            whole: Sha256::new(),
            total: 0,
            written: Default::default(),
            whole_sha: None,
        }
    }

    fn take_ready(&mut self) -> Vec<ReadyPart> {
        take(&self.ready)
    }

    fn seal(&mut self) -> std::io::Result<()> {
        if let Some((mut file, hash, len)) = self.current.take() {
            file.flush()?;
            lock(&self.ready).push((file, hex::encode(hash.finalize()), len, None));
        }
        Ok(())
    }

    /// Seals the last part; returns the parts not taken yet, the last one carrying the
    /// whole stream's SHA-256.
    fn close(&mut self) -> std::io::Result<Vec<ReadyPart>> {
        self.seal()?;
        let sha = hex::encode(std::mem::take(&mut self.whole).finalize());
        if let Some(last) = lock(&self.ready).last_mut() {
            last.3 = Some(sha.clone());
        }
        self.whole_sha = Some(sha);
        Ok(self.take_ready())
    }
}

impl Write for Splitter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.is_none() {
            let file = tempfile::Builder::new().prefix("part-").tempfile_in(self.dir)?;
            self.current = Some((file, Sha256::new(), 0));
        }
        let Some((file, hash, len)) = self.current.as_mut() else { return Ok(0) };
        let room = (self.part_size - *len).min(buf.len() as u64) as usize;
        file.write_all(&buf[..room])?;
        hash.update(&buf[..room]);
        self.whole.update(&buf[..room]);
        *len += room as u64;
        self.total += room as u64;
        self.written.store(self.total, std::sync::atomic::Ordering::SeqCst);
        if *len == self.part_size {
            self.seal()?;
        }
        Ok(room)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
            })
            .collect(),
        created_at: rfc3339(now()),
        tgploy_version: env!("CARGO_PKG_VERSION").into(),
        encryption,
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
