//! `restore --all`: everything delivered (or a bucket's, a prefix's; as of a moment) back
//! at once, into a directory or into S3, `--jobs` downloads in flight across objects.
//!
//! Objects are taken from the ledger a page at a time, in (bucket, key) order, and
//! restored `--jobs` at a time through one [`Downloader`], so memory follows the pages
//! and the buffers, temporary disk `--jobs` + 1 parts (and the tars of up to twice
//! `--jobs` packs: a pack's members are written out while the next packs download). Each object ends one way: restored,
//! already there (checked by size and SHA-256, or by the SHA-256 in its S3 metadata),
//! or failed with its reason while the others go on. Telegram or S3 going away, or a
//! signal, stops the run: what was finished stays finished, and a rerun goes on from
//! there (it finds the finished objects already there).

mod dir;
mod pack;
mod report;
mod s3;
mod select;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;

use super::{Downloader, ObjectError, Plan};
use crate::config::Config;
use crate::crypt;
use crate::deliver::manifest::Manifest;
use crate::error::{Error, Result};
use crate::ledger::{Delivery, Ledger, Selection};
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::source::S3Source;
use crate::time::rfc3339_ms;
pub use report::{AllReport, ObjectOutcome, ObjectReport};
use select::{Item, restorable};

/// Objects read from the ledger at a time.
const PAGE: u32 = 500;

/// `--as-of`: a moment, or how long ago.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// At this moment.
    At(SystemTime),
    /// This long before now.
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
pub enum RestoreTo {
    /// `DIR/BUCKET/KEY`.
    Dir(PathBuf),
    /// The configured S3 endpoint, under the original bucket and key.
    S3,
}

/// What `restore --all` asks for.
#[derive(Debug, Clone)]
pub struct AllRequest {
    /// Only these buckets (every bucket when empty).
    pub buckets: Vec<String>,
    /// Only keys starting with this prefix.
    pub prefix: Option<String>,
    /// Per key, the newest version last modified at or before this moment; `None` for the latest
    /// delivered version.
    pub as_of: Option<AsOf>,
    /// Parts downloaded at once, across objects and within one (0 counts as 1).
    pub jobs: usize,
    /// Where the objects go.
    pub destination: RestoreTo,
    /// An age identity file: encrypted objects come back decrypted.
    pub identity: Option<PathBuf>,
    /// Only report what would be restored; download nothing.
    pub dry_run: bool,
    /// Replace what is there and differs.
    pub force: bool,
    /// A line per object on stderr.
    pub verbose: bool,
    /// A second-factor code, needed once one is enrolled.
    pub otp: Option<String>,
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
        RestoreTo::Dir(dir) => dir.display().to_string(),
        RestoreTo::S3 => cfg.require_s3()?.endpoint,
    };
    if let Some(path) = &req.identity {
        crypt::read_identities(path).map_err(Error::local)?;
    } else if req.destination == RestoreTo::S3 && encrypted > 0 {
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
        let mut items = std::pin::pin!(restorable(ledger, &selection));
        while let Some(item) = items.next().await {
            let members = match item? {
                Item::Object(d) => vec![*d],
                Item::Pack(id) => {
                    let selection = selection.clone();
                    Ledger::blocking(ledger, move |l| l.restorable_members(&selection, id)).await?
                }
            };
            report.objects.extend(members.iter().map(|d| object_report(d, ObjectOutcome::WouldRestore, None, None)));
        }
        report.objects.sort_by(|a, b| (&a.bucket, &a.key).cmp(&(&b.bucket, &b.key)));
        return Ok(report);
    }

    let target = match &req.destination {
        RestoreTo::Dir(dir) => {
            crate::private_files::create_dir(dir)
                .map_err(|e| Error::local(format!("cannot create {}: {e}; choose another --out", dir.display())))?;
            Place::Dir(dir.clone())
        }
        RestoreTo::S3 => Place::S3 { source: S3Source::new(&cfg.require_s3()?), buckets: Default::default() },
    };
    let downloader = Downloader::for_config(cfg, req.jobs)?;
    let progress = Progress::objects(bytes, selected, true);
    let shutdown = Shutdown::new();
    shutdown.listen();
    let cleaned = Arc::default();
    let writers = Arc::new(tokio::sync::Semaphore::new(req.jobs.max(1)));
    let work = Work {
        ledger,
        req,
        downloader: &downloader,
        progress: &progress,
        shutdown: &shutdown,
        target,
        cleaned,
        writers,
    };

    let items = std::pin::pin!(restorable(ledger, &selection));
    // Set when no further object may start: the run is stopping.
    let stopping = AtomicBool::new(false);
    // Downloads are `--jobs` at a time (the downloader's limit). Objects are too; packs
    // may be twice as many, so that the members of the packs downloaded are written out
    // while the next packs download.
    let jobs = req.jobs.max(1);
    let objects = tokio::sync::Semaphore::new(jobs);
    let mut finished = items
        .map(|item| {
            let (work, stopping, selection, objects) = (&work, &stopping, &selection, &objects);
            async move {
                let item = item?;
                if stopping.load(Ordering::SeqCst) {
                    return Ok(Vec::new());
                }
                match item {
                    Item::Object(d) => {
                        let _turn = objects
                            .acquire()
                            .await
                            .map_err(|_| Error::Internal("the object limiter was closed".into()))?;
                        if stopping.load(Ordering::SeqCst) {
                            return Ok(Vec::new());
                        }
                        let result = work.restore(&d).await;
                        Ok(vec![(*d, result)])
                    }
                    Item::Pack(id) => work.restore_pack(id, selection).await,
                }
            }
        })
        .buffer_unordered(jobs * 2);
    while let Some(result) = finished.next().await {
        let done = match result {
            Ok(done) => done,
            Err(e) => {
                stopping.store(true, Ordering::SeqCst);
                report.stop.get_or_insert(e);
                continue;
            }
        };
        for (d, result) in done {
            match result {
                Ok((outcome, target)) => {
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
                Err(ObjectError::Object(why)) => {
                    let why = downloader.sink().redact(&why);
                    progress.println(&format!("tgploy: cannot restore {}/{}: {why}", d.object.bucket, d.object.key));
                    report.failed += 1;
                    report.objects.push(object_report(&d, ObjectOutcome::Failed, None, Some(why)));
                }
                Err(ObjectError::Run(e)) => {
                    // Not this object's fault: it is left for the rerun, like those not begun.
                    stopping.store(true, Ordering::SeqCst);
                    report.stop.get_or_insert(e);
                }
            }
            progress.object_done();
        }
    }
    drop(finished);
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
    /// Directories cleared of what an interrupted run left there, once each.
    cleaned: Arc<std::sync::Mutex<HashSet<PathBuf>>>,
    /// Turns of the threads that write packs' members into files, `--jobs` of them.
    writers: Arc<tokio::sync::Semaphore>,
}

/// How an object ended well, and where it is.
type Restored = (ObjectOutcome, Option<String>);
/// An object and how it ended.
type Done = (Delivery, std::result::Result<Restored, ObjectError>);

impl Work<'_> {
    /// Restores one object.
    async fn restore(&self, d: &Delivery) -> std::result::Result<Restored, ObjectError> {
        let plan = self.plan(d).await?;
        let stored = plan.size;
        let result = match &self.target {
            Place::Dir(dir) => self.to_dir(dir, d, &plan).await,
            Place::S3 { source, buckets } => self.to_s3(source, buckets, d, plan).await,
        };
        if !matches!(result, Ok((ObjectOutcome::Restored, _))) {
            // What was not downloaded leaves the bar's total (roughly, for a failure).
            self.progress.forget(stored);
        }
        result
    }

    /// The object's plan, with the original's SHA-256 for an encrypted object that comes
    /// back decrypted (from the ledger, or from its manifest in the chat).
    async fn plan(&self, d: &Delivery) -> std::result::Result<Plan, ObjectError> {
        let id = d.id;
        let pack_id = d.pack_id;
        let (parts, pack) = Ledger::blocking(self.ledger, move |l| {
            Ok((l.parts(id)?, pack_id.map(|p| l.pack(p)).transpose()?.flatten()))
        })
        .await
        .map_err(ObjectError::Run)?;
        let mut plan = Plan::from_delivery(d, &parts, pack.as_ref()).map_err(|e| ObjectError::Object(e.to_string()))?;
        if d.encrypted && pack.is_none() && self.req.identity.is_some() {
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
}
