//! `restore --all`: everything delivered (or a bucket's, a prefix's; as of a moment) back
//! at once, into a directory or into S3, `--jobs` downloads in flight across objects.
//!
//! Objects are taken from the ledger a page at a time, in (bucket, key) order, and
//! restored `--jobs` at a time through one [`Downloader`], so memory follows the pages
//! and the buffers, temporary disk `--jobs` + 1 parts. Each object ends one way: restored,
//! already there (checked by size and SHA-256, or by the SHA-256 in its S3 metadata),
//! or failed with its reason while the others go on. Telegram or S3 going away, or a
//! signal, stops the run: what was finished stays finished, and a rerun goes on from
//! there (it finds the finished objects already there).

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde::Serialize;
use sha2::Digest;

use super::fetch::PartCheck;
use super::join::{JoinError, Output, hash_file, remove_stale_partials, write_stream};
use super::paths::{create_dirs, object_path};
use super::{Downloader, ObjectError, Plan, Target, fetch_into};
use crate::config::Config;
use crate::crypt;
use crate::deliver::manifest::Manifest;
use crate::error::{Error, Result};
use crate::ledger::{Delivery, Ledger, Selection};
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::sink::TelegramSink;
use crate::source::upload::Upload;
use crate::source::{S3Source, SourceError};
use crate::time::{now, rfc3339_ms};

/// Objects read from the ledger at a time.
const PAGE: u32 = 500;

/// `--as-of`: a moment, or how long ago.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    At(SystemTime),
    Ago(Duration),
}

impl AsOf {
    fn unix_ms(self) -> i64 {
        let at = match self {
            AsOf::At(t) => t,
            AsOf::Ago(d) => SystemTime::now().checked_sub(d).unwrap_or(UNIX_EPOCH),
        };
        at.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// Where the objects go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `DIR/BUCKET/KEY`.
    Dir(PathBuf),
    /// The configured S3 endpoint, under the original bucket and key.
    S3,
}

/// What `restore --all` asks for.
#[derive(Debug, Clone)]
pub struct AllRequest {
    pub buckets: Vec<String>,
    pub prefix: Option<String>,
    pub as_of: Option<AsOf>,
    pub jobs: usize,
    pub destination: Destination,
    /// An age identity file: encrypted objects come back decrypted.
    pub identity: Option<PathBuf>,
    pub dry_run: bool,
    /// Replace what is there and differs.
    pub force: bool,
    /// A line per object on stderr.
    pub verbose: bool,
    pub otp: Option<String>,
}

/// How one object ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectOutcome {
    /// A dry run: it would be restored.
    WouldRestore,
    Restored,
    /// The same object (size and SHA-256) was there already.
    AlreadyThere,
    Failed,
}

/// One object of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectReport {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub size: u64,
    pub last_modified: Option<String>,
    pub encrypted: bool,
    pub outcome: ObjectOutcome,
    /// Where it went: a path, or `s3://BUCKET/KEY`.
    pub target: Option<String>,
    pub error: Option<String>,
}

/// What `restore --all` did (or, with `--dry-run`, would do).
#[derive(Debug, Serialize)]
pub struct AllReport {
    pub dry_run: bool,
    pub destination: String,
    pub as_of: Option<String>,
    /// Objects selected, and the bytes of their stored streams.
    pub selected: u64,
    pub bytes: u64,
    pub restored: u64,
    pub already_there: u64,
    pub failed: u64,
    pub objects: Vec<ObjectReport>,
    /// Why the run stopped before every object was done, if it did.
    pub stopped: Option<String>,
    #[serde(skip)]
    stop: Option<Error>,
}

impl AllReport {
    /// One line for people.
    pub fn summary(&self) -> String {
        if self.dry_run {
            return format!(
                "dry run: would restore {} objects ({}) to {}\n",
                self.selected,
                crate::units::human_size(self.bytes),
                self.destination
            );
        }
        let mut out = format!(
            "restored {} of {} objects to {}; {} already there; {} failed\n",
            self.restored, self.selected, self.destination, self.already_there, self.failed
        );
        if let Some(why) = &self.stopped {
            out.push_str(&format!("stopped: {why}; run it again to go on\n"));
        }
        out
    }

    /// The exit status: 0 when everything came back, 1 when some objects failed, the
    /// stopping error (4 unreachable, 130/143 a signal) when the run stopped.
    pub fn verdict(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            return Err(stop);
        }
        if self.failed > 0 {
            return Err(Error::Failed(format!(
                "{} of {} objects could not be restored (named above); the others were",
                self.failed, self.selected
            )));
        }
        Ok(())
    }
}

/// Restores every object the request selects.
pub async fn restore_all(cfg: &Config, ledger: &Arc<Ledger>, req: &AllRequest) -> Result<AllReport> {
    // Restoring reveals backups: once a second factor is enrolled it needs a code.
    let otp = req.otp.clone();
    Ledger::blocking(ledger, move |l| crate::totp::require(l, otp.as_deref(), "restore")).await?;
    let selection =
        Selection { buckets: req.buckets.clone(), prefix: req.prefix.clone(), as_of_ms: req.as_of.map(AsOf::unix_ms) };
    let (selected, bytes, encrypted) = {
        let selection = selection.clone();
        Ledger::blocking(ledger, move |l| l.restorable_summary(&selection)).await?
    };
    let destination = match &req.destination {
        Destination::Dir(dir) => dir.display().to_string(),
        Destination::S3 => cfg.require_s3()?.endpoint,
    };
    if let Some(path) = &req.identity {
        crypt::read_identities(path).map_err(Error::local)?;
    } else if req.destination == Destination::S3 && encrypted > 0 {
        return Err(Error::usage(format!(
            "{encrypted} of the {selected} objects are encrypted, and S3 gets the original bytes back: give the age \
             identity with --identity FILE (nothing was downloaded)"
        )));
    }
    let mut report = AllReport {
        dry_run: req.dry_run,
        destination,
        as_of: selection.as_of_ms.map(rfc3339_ms),
        selected,
        bytes,
        restored: 0,
        already_there: 0,
        failed: 0,
        objects: Vec::new(),
        stopped: None,
        stop: None,
    };
    if req.dry_run {
        let mut objects = std::pin::pin!(restorable(ledger, &selection));
        while let Some(d) = objects.next().await {
            report.objects.push(object_report(&d?, ObjectOutcome::WouldRestore, None, None));
        }
        return Ok(report);
    }

    let target = match &req.destination {
        Destination::Dir(dir) => {
            crate::private::create_dir(dir)
                .map_err(|e| Error::local(format!("cannot create {}: {e}; choose another --out", dir.display())))?;
            Place::Dir(dir.clone())
        }
        Destination::S3 => Place::S3 { source: S3Source::new(&cfg.require_s3()?), buckets: Default::default() },
    };
    let sink = TelegramSink::downloader(&cfg.require_bot_tokens()?, &cfg.api_url, 0)?;
    let downloader = Downloader::new(sink, req.jobs, cfg.tmp_dir.as_deref())?;
    let progress = Progress::objects(bytes, selected, true);
    let shutdown = Shutdown::new();
    shutdown.listen();
    let work = Work { ledger, req, downloader: &downloader, progress: &progress, shutdown: &shutdown, target };

    let pages = std::pin::pin!(restorable(ledger, &selection));
    // Set when no further object may start: the run is stopping.
    let stopping = AtomicBool::new(false);
    let mut done = pages
        .map(|delivery| {
            let (work, stopping) = (&work, &stopping);
            async move {
                let d = delivery?;
                if stopping.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                Ok(Some(work.restore(&d).await.map(|(outcome, target)| (d, outcome, target))))
            }
        })
        .buffer_unordered(req.jobs.max(1));
    while let Some(result) = done.next().await {
        match result {
            Err(e) => {
                stopping.store(true, Ordering::SeqCst);
                report.stop.get_or_insert(e);
            }
            Ok(None) => {}
            Ok(Some(Ok((d, outcome, target)))) => {
                match outcome {
                    ObjectOutcome::Restored => report.restored += 1,
                    _ => report.already_there += 1,
                }
                if req.verbose {
                    let what = if outcome == ObjectOutcome::Restored { "restored" } else { "already there:" };
                    progress.println(&format!(
                        "tgploy: {what} {}/{} → {}",
                        d.object.bucket,
                        d.object.key,
                        target.as_deref().unwrap_or("")
                    ));
                }
                report.objects.push(object_report(&d, outcome, target, None));
            }
            Ok(Some(Err((d, ObjectError::Object(why))))) => {
                let why = downloader.sink().redact(&why);
                progress.println(&format!("tgploy: cannot restore {}/{}: {why}", d.object.bucket, d.object.key));
                report.failed += 1;
                report.objects.push(object_report(&d, ObjectOutcome::Failed, None, Some(why)));
            }
            Ok(Some(Err((_, ObjectError::Run(e))))) => {
                // Not this object's fault: it is left for the rerun, like those not begun.
                stopping.store(true, Ordering::SeqCst);
                report.stop.get_or_insert(e);
            }
        }
        progress.object_done();
    }
    drop(done);
    progress.finish();
    if let Some(signal) = shutdown.requested() {
        report.stop = Some(Error::Interrupted { signal });
    }
    report.stopped = report.stop.as_ref().map(|e| downloader.sink().redact(&e.to_string()));
    report.objects.sort_by(|a, b| (&a.bucket, &a.key).cmp(&(&b.bucket, &b.key)));
    Ok(report)
}

fn object_report(d: &Delivery, outcome: ObjectOutcome, target: Option<String>, error: Option<String>) -> ObjectReport {
    ObjectReport {
        bucket: d.object.bucket.clone(),
        key: d.object.key.clone(),
        etag: d.object.etag.clone(),
        size: d.object.size,
        last_modified: d.object.last_modified_ms.map(rfc3339_ms),
        encrypted: d.encrypted,
        outcome,
        target,
        error,
    }
}

/// Where objects go, with what that needs.
enum Place {
    Dir(PathBuf),
    S3 {
        source: S3Source,
        /// The server's buckets, once asked (with those created since).
        buckets: tokio::sync::Mutex<Option<HashSet<String>>>,
    },
}

/// What every object of the run shares.
struct Work<'a> {
    ledger: &'a Arc<Ledger>,
    req: &'a AllRequest,
    downloader: &'a Downloader,
    progress: &'a Progress,
    shutdown: &'a Shutdown,
    target: Place,
}

type Restored = (ObjectOutcome, Option<String>);

impl Work<'_> {
    /// Restores one object; its failure is returned with it.
    async fn restore(&self, d: &Delivery) -> std::result::Result<Restored, (Delivery, ObjectError)> {
        let plan = match self.plan(d).await {
            Ok(plan) => plan,
            Err(e) => return Err((d.clone(), e)),
        };
        let stored = plan.size;
        let result = match &self.target {
            Place::Dir(dir) => self.to_dir(dir, d, &plan).await,
            Place::S3 { source, buckets } => self.to_s3(source, buckets, d, plan).await,
        };
        if !matches!(result, Ok((ObjectOutcome::Restored, _))) {
            // What was not downloaded leaves the bar's total (roughly, for a failure).
            self.progress.forget(stored);
        }
        result.map_err(|e| (d.clone(), e))
    }

    /// The object's plan, with the original's SHA-256 for an encrypted object that comes
    /// back decrypted (from the ledger, or from its manifest in the chat).
    async fn plan(&self, d: &Delivery) -> std::result::Result<Plan, ObjectError> {
        let id = d.id;
        let parts = Ledger::blocking(self.ledger, move |l| l.parts(id)).await.map_err(ObjectError::Run)?;
        let mut plan = Plan::from_delivery(d, &parts).map_err(|e| ObjectError::Object(e.to_string()))?;
        if d.encrypted && self.req.identity.is_some() {
            plan.plaintext = match (&d.plaintext_sha256, &d.manifest_file_id) {
                (Some(sha), _) => Some((d.object.size, sha.clone())),
                (None, Some(manifest)) => self.plaintext_from_manifest(d.manifest_bot_id, manifest).await?,
                (None, None) => None,
            };
        }
        Ok(plan)
    }

    async fn plaintext_from_manifest(
        &self,
        bot_id: Option<i64>,
        file_id: &str,
    ) -> std::result::Result<Option<(u64, String)>, ObjectError> {
        let sink = self.downloader.sink();
        let fail = |e: crate::sink::SinkError| {
            if e.is_outage() { ObjectError::Run(e.into()) } else { ObjectError::Object(format!("its manifest: {e}")) }
        };
        let file = sink.locate(bot_id, file_id).await.map_err(fail)?;
        let mut json = Vec::new();
        sink.fetch(&file, |chunk| {
            json.extend_from_slice(chunk);
            Ok(())
        })
        .await
        .map_err(fail)?;
        let manifest: Manifest = serde_json::from_slice(&json)
            .map_err(|e| ObjectError::Object(format!("its manifest does not read: {e}")))?;
        Ok(manifest.encryption.map(|e| (e.plaintext_size, e.plaintext_sha256)))
    }

    /// Size and SHA-256 of what this object becomes at its destination: the original,
    /// or the age file when it stays encrypted. `None` when not known before decrypting.
    fn expected(&self, plan: &Plan) -> Option<(u64, String)> {
        match (plan.encrypted, self.req.identity.is_some()) {
            (true, true) => plan.plaintext.clone(),
            _ => Some((plan.size, plan.sha256.clone())),
        }
    }

    async fn to_dir(&self, dir: &Path, d: &Delivery, plan: &Plan) -> std::result::Result<Restored, ObjectError> {
        let o = &d.object;
        let suffix = if plan.encrypted && self.req.identity.is_none() { crypt::SUFFIX } else { "" };
        let path = object_path(dir, &o.bucket, &o.key, suffix)
            .ok_or_else(|| ObjectError::Object("its path would be longer than the filesystem takes".into()))?;
        let shown = path.display().to_string();
        let expected = self.expected(plan);
        let (check_dir, check_path) = (dir.to_path_buf(), path.clone());
        let present = tokio::task::spawn_blocking(move || -> std::result::Result<Presence, String> {
            create_dirs(&check_dir, &check_path)?;
            remove_stale_partials(&check_path);
            presence(&check_path, expected.as_ref())
        })
        .await
        .map_err(|e| ObjectError::Run(Error::Internal(format!("a file task failed: {e}"))))?
        .map_err(ObjectError::Object)?;
        match present {
            Presence::Absent => {}
            Presence::Same => return Ok((ObjectOutcome::AlreadyThere, Some(shown))),
            Presence::Differs(why) if !self.req.force => {
                return Err(ObjectError::Object(format!("{shown} {why}; --force replaces it")));
            }
            Presence::Differs(_) => {}
        }
        let target = Target::File { path, overwrite: true };
        let out = Output::open(&target).map_err(|e| ObjectError::Object(e.to_string()))?;
        let (joined, identity) = (plan.clone(), self.req.identity.clone());
        let (out, written) = fetch_into(self.downloader, plan, self.progress, self.shutdown, move |pieces| {
            let mut out = out;
            let written = out.write(pieces, &joined, identity.as_deref());
            (out, written)
        })
        .await?;
        written.map_err(join_error)?;
        out.commit().map_err(|e| ObjectError::Object(e.to_string()))?;
        Ok((ObjectOutcome::Restored, Some(shown)))
    }

    async fn to_s3(
        &self,
        source: &S3Source,
        buckets: &tokio::sync::Mutex<Option<HashSet<String>>>,
        d: &Delivery,
        mut plan: Plan,
    ) -> std::result::Result<Restored, ObjectError> {
        let o = &d.object;
        let shown = format!("s3://{}/{}", o.bucket, o.key);
        let s3 = |e: SourceError| match e {
            SourceError::Unreachable { .. } | SourceError::Denied { .. } => ObjectError::Run(e.into()),
            e => ObjectError::Object(e.to_string()),
        };
        if self.expected(&plan).is_none() {
            // An encrypted object delivered before tgploy recorded the original's SHA-256,
            // in one part: decrypting it once tells it, before the upload that needs it.
            plan.plaintext = Some(self.learn_plaintext(&plan).await?);
        }
        let Some((_, sha)) = self.expected(&plan) else {
            return Err(ObjectError::Object("the original's SHA-256 is unknown".into()));
        };
        {
            let mut known = buckets.lock().await;
            if known.is_none() {
                *known = Some(source.list_buckets().await.map_err(s3)?.into_iter().collect());
            }
            if let Some(known) = known.as_mut()
                && !known.contains(&o.bucket)
            {
                source.create_bucket(&o.bucket).await.map_err(s3)?;
                tracing::info!("created bucket {} at {}", o.bucket, source.endpoint());
                known.insert(o.bucket.clone());
            }
        }
        if let Some(there) = source.stat(&o.bucket, &o.key).await.map_err(s3)? {
            if there.sha256.as_deref() == Some(sha.as_str()) || there.etag == o.etag {
                self.learn(d, &there.etag, there.last_modified_ms).await?;
                return Ok((ObjectOutcome::AlreadyThere, Some(shown)));
            }
            if !self.req.force {
                return Err(ObjectError::Object(format!(
                    "{shown} exists and differs (ETag {}); --force replaces it",
                    there.etag
                )));
            }
        }
        let mut upload = Upload::new(source, &o.bucket, &o.key, &sha);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
        let (joined, identity) = (plan.clone(), self.req.identity.clone());
        let consume = fetch_into(self.downloader, &plan, self.progress, self.shutdown, move |pieces| {
            let mut out = BufWriter::with_capacity(1 << 20, Channel(tx));
            write_stream(pieces, &mut out, &joined, identity.as_deref())
        });
        let feed = async {
            while let Some(chunk) = rx.recv().await {
                upload.write(&chunk).await?;
            }
            Ok::<_, SourceError>(())
        };
        let (written, fed) = tokio::join!(consume, feed);
        let outcome = match (written, fed) {
            (_, Err(e)) => Err(s3(e)),
            (Err(e), _) => Err(e),
            (Ok(Err(e)), _) => Err(join_error(e)),
            (Ok(Ok(_)), Ok(())) => Ok(()),
        };
        if let Err(e) = outcome {
            upload.abort().await;
            return Err(e);
        }
        let etag = upload.finish().await.map_err(s3)?;
        let there = source.stat(&o.bucket, &o.key).await.map_err(s3)?;
        let (etag, modified) = match there {
            Some(s) => (s.etag, s.last_modified_ms),
            None => (etag, None),
        };
        self.learn(d, &etag, modified).await?;
        Ok((ObjectOutcome::Restored, Some(shown)))
    }

    /// The original's size and SHA-256 of an encrypted object, decrypted once, kept
    /// nowhere.
    async fn learn_plaintext(&self, plan: &Plan) -> std::result::Result<(u64, String), ObjectError> {
        let (joined, identity) = (plan.clone(), self.req.identity.clone());
        let written = fetch_into(self.downloader, plan, self.progress, self.shutdown, move |pieces| {
            write_stream(pieces, &mut std::io::sink(), &joined, identity.as_deref())
        })
        .await?;
        // The bar counts this download once more: it is work done.
        written.map_err(join_error)
    }

    /// Records the version now in S3 as delivered, so the next `sync` sends nothing.
    async fn learn(&self, d: &Delivery, etag: &str, modified: Option<i64>) -> std::result::Result<(), ObjectError> {
        let (d, etag) = (d.clone(), etag.to_string());
        Ledger::blocking(self.ledger, move |l| l.record_restored(&d, &etag, modified, now()))
            .await
            .map(|_| ())
            .map_err(ObjectError::Run)
    }
}

fn join_error(e: JoinError) -> ObjectError {
    match e {
        // A wrong identity fails every encrypted object alike: stop, say so.
        JoinError::WrongIdentity(m) => ObjectError::Run(Error::usage(m)),
        JoinError::Data(m) => ObjectError::Object(m),
    }
}

/// The selected objects, read from the ledger a page at a time, as one stream; an error
/// reading a page ends it.
fn restorable<'a>(
    ledger: &'a Arc<Ledger>,
    selection: &'a Selection,
) -> impl futures_util::Stream<Item = Result<Delivery>> + 'a {
    futures_util::stream::unfold(Some(None::<(String, String)>), move |after| async move {
        let after = after?;
        let (selection, from) = (selection.clone(), after.clone());
        let page = Ledger::blocking(ledger, move |l| {
            l.restorable_page(&selection, from.as_ref().map(|(b, k)| (b.as_str(), k.as_str())), PAGE)
        })
        .await;
        match page {
            Ok(page) if page.is_empty() => None,
            Ok(page) => {
                let next = page.last().map(|d| (d.object.bucket.clone(), d.object.key.clone()));
                Some((futures_util::stream::iter(page.into_iter().map(Ok).collect::<Vec<_>>()), Some(next)))
            }
            Err(e) => Some((futures_util::stream::iter(vec![Err(e)]), None)),
        }
    })
    .flatten()
}

/// Feeds what the writer thread writes to the async upload.
struct Channel(tokio::sync::mpsc::Sender<Vec<u8>>);

impl Write for Channel {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(buf.to_vec())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What is at an object's path already.
enum Presence {
    Absent,
    /// The same size and SHA-256.
    Same,
    Differs(String),
}

fn presence(path: &Path, expected: Option<&(u64, String)>) -> std::result::Result<Presence, String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Presence::Absent),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let Some((size, sha)) = expected else {
        return Ok(Presence::Differs("exists, and cannot be checked without downloading the object".into()));
    };
    if meta.len() != *size {
        return Ok(Presence::Differs(format!("exists with {} bytes, not {size}", meta.len())));
    }
    let mut check = PartCheck::new();
    hash_file(path, &mut check).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if &hex::encode(check.hasher.finalize()) == sha {
        Ok(Presence::Same)
    } else {
        Ok(Presence::Differs("exists with other content".into()))
    }
}
