//! A `sync` run: discover buckets, list them, record new object versions, deliver every
//! pending one.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::alert;
use crate::config::Config;
use crate::deliver::{Courier, Outcome};
use crate::error::{Error, Result, Service};
use crate::filter::Filter;
use crate::ledger::{Bucket, Ledger, ObjectVersion, Run, State};
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::sink::TelegramSink;
use crate::source::{ListedObject, S3Source, SourceError};
use crate::time::now;

/// How long a claim lasts without renewal; renewed every third of it while sending.
pub const LEASE: Duration = Duration::from_secs(10 * 60);
/// HEAD requests in flight at once while learning ETags.
const HEAD_CONCURRENCY: usize = 8;
/// Deliveries in a row that could not reach Telegram before the run stops trying.
const MAX_UNREACHABLE_IN_A_ROW: u32 = 3;

#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Only these buckets (all enabled ones when empty).
    pub buckets: Vec<String>,
    /// List what would be sent; send nothing, write nothing.
    pub dry_run: bool,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BucketReport {
    pub name: String,
    pub objects: u64,
    pub new_versions: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Item {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailedItem {
    pub id: i64,
    pub bucket: String,
    pub key: String,
    pub error: String,
    /// Failed for the last allowed time: no more automatic retries.
    pub dead: bool,
}

/// What a run's deliveries came to (shared by `sync` and `retry`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryReport {
    pub sent: u64,
    pub sent_bytes: u64,
    /// Documents sent (parts, whole objects, empty-object messages; not manifests).
    pub parts: u64,
    pub failed: Vec<FailedItem>,
    /// Versions deleted or overwritten on S3 before they could be delivered (skipped).
    pub vanished: u64,
    /// Failed deliveries in the ledger waiting for `retry` after this run.
    pub waiting_for_retry: u64,
    /// Dead deliveries in the ledger after this run.
    pub dead: u64,
    /// Why the run stopped before delivering everything, if it did.
    pub stopped: Option<String>,
    /// The signal that stopped the run (SIGINT, SIGTERM), if one did.
    pub interrupted: Option<String>,
}

/// What a `sync` did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub dry_run: bool,
    pub buckets: Vec<BucketReport>,
    /// With `--dry-run`: what would be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_send: Option<Vec<Item>>,
    #[serde(flatten)]
    pub deliveries: DeliveryReport,
}

impl SyncReport {
    /// True when something needs the operator's attention (exit code 1).
    pub fn has_failures(&self) -> bool {
        !self.deliveries.failed.is_empty() || self.buckets.iter().any(|b| b.error.is_some())
    }
}

/// Runs `sync`, records the run in the ledger, raises alerts for what went wrong and
/// sends queued alerts (none of that on a dry run).
pub async fn run(cfg: &Config, ledger: &Ledger, opts: &SyncOptions, shutdown: &Shutdown) -> Result<SyncReport> {
    let started = now();
    let result = run_inner(cfg, ledger, opts, shutdown).await;
    if opts.dry_run {
        return result;
    }
    finish_run(cfg, ledger, "sync", started, result.as_ref().map(|r| &r.deliveries)).await;
    result
}

/// Records a finished `sync` or `retry`, raises alerts for services it could not reach,
/// and flushes the alert queue.
pub async fn finish_run(
    cfg: &Config,
    ledger: &Ledger,
    kind: &str,
    started: i64,
    result: Result<&DeliveryReport, &Error>,
) {
    let (sent, failed, bytes, error) = match result {
        Ok(r) => (r.sent, r.failed.len() as u64, r.sent_bytes, r.stopped.clone().or(r.interrupted.clone())),
        Err(e) => (0, 0, 0, Some(e.to_string())),
    };
    let run = Run { kind: kind.into(), started_at: started, finished_at: now(), sent, failed, bytes, error };
    if let Err(e) = ledger.record_run(&run) {
        tracing::warn!("cannot record the run in the ledger: {e}");
    }
    let unreachable = match result {
        Err(Error::Unreachable { service, endpoint, reason }) => {
            Some((service.to_string(), format!("cannot reach {service} at {endpoint}: {reason}")))
        }
        Ok(r) => r.stopped.as_ref().map(|s| ("a service".to_string(), s.clone())),
        Err(_) => None,
    };
    if let Some((service, error)) = unreachable
        && let Err(e) = alert::raise(ledger, cfg, alert::Subject::Unreachable(&service), &error)
    {
        tracing::warn!("cannot queue an alert: {e}");
    }
    alert::flush_if_possible(ledger, cfg).await;
}

async fn run_inner(cfg: &Config, ledger: &Ledger, opts: &SyncOptions, shutdown: &Shutdown) -> Result<SyncReport> {
    let source = S3Source::new(&cfg.require_s3()?);
    if !opts.dry_run {
        // Fail on missing Telegram settings before any work, not after listing.
        cfg.require_telegram()?;
    }
    let mut report = SyncReport { dry_run: opts.dry_run, ..SyncReport::default() };
    let selected = select_buckets(cfg, ledger, &source, &opts.buckets, opts.dry_run).await?;

    let mut would_send = Vec::new();
    for bucket in &selected {
        match find_new_versions(cfg, ledger, &source, bucket, opts.dry_run).await {
            Ok((objects, new)) => {
                report.buckets.push(BucketReport {
                    name: bucket.clone(),
                    objects,
                    new_versions: new.len() as u64,
                    error: None,
                });
                if opts.dry_run {
                    would_send.extend(new.into_iter().map(|v| Item {
                        bucket: v.bucket,
                        key: v.key,
                        etag: v.etag,
                        size: v.size,
                    }));
                } else {
                    ledger.insert_versions(&new, State::Pending, now())?;
                    ledger.bucket_listed(bucket, now(), None)?;
                }
            }
            Err(SourceError::Unreachable { endpoint, reason }) => {
                return Err(Error::Unreachable { service: Service::S3, endpoint, reason });
            }
            Err(e) => {
                let error = e.to_string();
                tracing::error!("cannot list bucket {bucket}: {error}");
                if !opts.dry_run {
                    ledger.bucket_listed(bucket, now(), Some(&error))?;
                    alert::raise(ledger, cfg, alert::Subject::Bucket(bucket), &error)?;
                }
                report.buckets.push(BucketReport {
                    name: bucket.clone(),
                    objects: 0,
                    new_versions: 0,
                    error: Some(error),
                });
            }
        }
    }

    if opts.dry_run {
        // Deliveries already waiting in the ledger (from an earlier run or a webhook)
        // would go out too.
        let listed: HashSet<(String, String, String)> =
            would_send.iter().map(|i| (i.bucket.clone(), i.key.clone(), i.etag.clone())).collect();
        for id in ledger.claimable(&selected, now())? {
            if let Some(d) = ledger.delivery(id)? {
                let o = d.object;
                if !listed.contains(&(o.bucket.clone(), o.key.clone(), o.etag.clone())) {
                    would_send.push(Item { bucket: o.bucket, key: o.key, etag: o.etag, size: o.size });
                }
            }
        }
        report.would_send = Some(would_send);
        let (counts, _) = ledger.counts()?;
        report.deliveries.waiting_for_retry = counts.failed;
        report.deliveries.dead = counts.dead;
        return Ok(report);
    }

    take_over_dead_runs(ledger)?;
    let ids = ledger.claimable(&selected, now())?;
    let batch = Batch { cfg, ledger, source: &source, retrying: false, progress: opts.progress, shutdown };
    batch.deliver(&ids, &mut report.deliveries).await?;
    Ok(report)
}

/// Resumes deliveries whose owner died on this host without waiting for the lease.
pub fn take_over_dead_runs(ledger: &Ledger) -> Result<()> {
    for (id, owner) in ledger.leases()? {
        if crate::owner::is_dead(&owner) {
            tracing::info!("delivery {id}: its run ({owner}) is gone; resuming it");
            ledger.expire_lease(id, &owner)?;
        }
    }
    Ok(())
}

/// A run's deliveries: the ids it works, one after another, with what they share.
pub struct Batch<'a> {
    pub cfg: &'a Config,
    pub ledger: &'a Ledger,
    pub source: &'a S3Source,
    /// The ids are failed deliveries (`retry`), not pending ones (`sync`).
    pub retrying: bool,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
    pub shutdown: &'a Shutdown,
}

impl Batch<'_> {
    /// Delivers `ids`, then counts what waits in the ledger.
    pub async fn deliver(&self, ids: &[i64], report: &mut DeliveryReport) -> Result<()> {
        if !ids.is_empty() {
            self.deliver_ids(ids, report).await?;
        }
        let (counts, _) = self.ledger.counts()?;
        report.waiting_for_retry = counts.failed;
        report.dead = counts.dead;
        Ok(())
    }

    async fn deliver_ids(&self, ids: &[i64], report: &mut DeliveryReport) -> Result<()> {
        let Batch { cfg, ledger, source, retrying, progress, shutdown } = *self;
        let sink = TelegramSink::new(&cfg.require_telegram()?)?;
        sink.check().await?;
        let tmp = private_tmp_dir(cfg)?;
        let mut total = 0;
        for id in ids {
            if let Some(d) = ledger.delivery(*id)? {
                total += d.object.size;
            }
        }
        let progress = Progress::bytes(total, progress);
        let courier = Courier {
            cfg,
            ledger,
            source,
            sink: &sink,
            tmp_dir: tmp.path(),
            owner: crate::owner::this_process(),
            lease: LEASE,
            progress: &progress,
            retrying,
            shutdown,
        };
        let mut unreachable_in_a_row = 0;
        for &id in ids {
            if let Some(sig) = shutdown.requested() {
                report.interrupted = Some(signal_name(sig).to_string());
                break;
            }
            let Some(outcome) = courier.deliver(id).await? else { continue };
            match outcome {
                Outcome::Sent { bytes, parts } => {
                    unreachable_in_a_row = 0;
                    report.sent += 1;
                    report.sent_bytes += bytes;
                    report.parts += u64::from(parts);
                }
                Outcome::Failed { error, unreachable, dead } => {
                    if let Some(d) = ledger.delivery(id)? {
                        report.failed.push(FailedItem {
                            id,
                            bucket: d.object.bucket,
                            key: d.object.key,
                            error: error.clone(),
                            dead,
                        });
                    }
                    if unreachable {
                        unreachable_in_a_row += 1;
                        if unreachable_in_a_row >= MAX_UNREACHABLE_IN_A_ROW {
                            report.stopped = Some(format!(
                                "stopped after {unreachable_in_a_row} deliveries in a row could not reach their service: {error}"
                            ));
                            break;
                        }
                    } else {
                        unreachable_in_a_row = 0;
                    }
                }
                Outcome::Interrupted => {
                    report.interrupted = shutdown.requested().map(|s| signal_name(s).to_string());
                    break;
                }
                Outcome::Gone { .. } => report.vanished += 1,
                Outcome::Lost => {}
            }
        }
        progress.finish();
        Ok(())
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        crate::shutdown::SIGINT => "SIGINT",
        crate::shutdown::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// A private directory for part files, removed when dropped.
pub fn private_tmp_dir(cfg: &Config) -> Result<tempfile::TempDir> {
    let base: PathBuf = cfg.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut builder = tempfile::Builder::new();
    builder.prefix("tgploy-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    builder.tempdir_in(&base).map_err(|e| {
        Error::config(format!(
            "cannot create a temporary directory in {}: {e}; set `tmp_dir` (TGPLOY_TMP_DIR) to a writable directory",
            base.display()
        ))
    })
}

/// The buckets to sync: discovered ones recorded, then the enabled ones (or those named).
async fn select_buckets(
    cfg: &Config,
    ledger: &Ledger,
    source: &S3Source,
    wanted: &[String],
    dry_run: bool,
) -> Result<Vec<String>> {
    let names = source.list_buckets().await?;
    let mut buckets: Vec<Bucket> = Vec::new();
    for name in &names {
        let bucket = if dry_run {
            ledger.bucket(name)?.unwrap_or(Bucket {
                name: name.clone(),
                enabled: cfg.enable_new_buckets,
                discovered_at: now(),
                last_listed_at: None,
                last_error: None,
            })
        } else {
            let known = ledger.bucket(name)?.is_some();
            let b = ledger.discover_bucket(name, cfg.enable_new_buckets, now())?;
            if !known {
                tracing::info!(
                    "discovered bucket {name} ({})",
                    if b.enabled { "enabled" } else { "disabled: enable it with `tgploy buckets enable`" }
                );
            }
            b
        };
        buckets.push(bucket);
    }
    for w in wanted {
        match buckets.iter().find(|b| &b.name == w) {
            None => {
                return Err(Error::config(format!(
                    "no bucket named `{w}` at {} (it has: {})",
                    source.endpoint(),
                    if names.is_empty() { "no buckets".to_string() } else { names.join(", ") }
                )));
            }
            Some(b) if !b.enabled => {
                return Err(Error::config(format!(
                    "bucket `{w}` is disabled; enable it with `tgploy buckets enable {}`",
                    crate::shell::quote(w)
                )));
            }
            Some(_) => {}
        }
    }
    Ok(buckets
        .into_iter()
        .filter(|b| b.enabled && (wanted.is_empty() || wanted.contains(&b.name)))
        .map(|b| b.name)
        .collect())
}

/// Lists a bucket and returns (objects listed, versions not yet in the ledger), learning
/// missing ETags with HEAD (and remembering them unless `dry_run`).
pub async fn find_new_versions(
    cfg: &Config,
    ledger: &Ledger,
    source: &S3Source,
    bucket: &str,
    dry_run: bool,
) -> Result<(u64, Vec<ObjectVersion>), SourceError> {
    let ledger_error = |e: Error| SourceError::Other(e.to_string());
    let filter = Filter::new(cfg.filter_for(bucket)).map_err(ledger_error)?;
    let listed = source.list_objects(bucket).await?;
    let count = listed.len() as u64;
    let versions = resolve_etags(ledger, source, bucket, listed, &filter, dry_run).await?;
    let known = ledger.known_versions(bucket).map_err(ledger_error)?;
    let new = versions.into_iter().filter(|v| !known.contains(&(v.key.clone(), v.etag.clone()))).collect();
    Ok((count, new))
}

/// Turns listed objects that pass the filter into versions, with ETags from the
/// listing, the cache, or HEAD.
pub async fn resolve_etags(
    ledger: &Ledger,
    source: &S3Source,
    bucket: &str,
    listed: Vec<ListedObject>,
    filter: &Filter,
    dry_run: bool,
) -> Result<Vec<ObjectVersion>, SourceError> {
    let ledger_error = |e: Error| SourceError::Other(e.to_string());
    let cache = if listed.iter().any(|o| o.etag.is_none()) {
        ledger.etag_cache(bucket).map_err(ledger_error)?
    } else {
        Default::default()
    };
    let mut versions = Vec::with_capacity(listed.len());
    let mut unknown = Vec::new();
    for obj in listed {
        if !filter.matches(&obj.key, obj.size) {
            continue;
        }
        let cached = match (&obj.etag, obj.last_modified_ms) {
            (Some(etag), _) => Some(etag.clone()),
            (None, Some(mtime)) => cache
                .get(&obj.key)
                .filter(|(size, m, _)| *size == obj.size && *m == mtime)
                .map(|(_, _, etag)| etag.clone()),
            (None, None) => None,
        };
        match cached {
            Some(etag) => versions.push(ObjectVersion {
                bucket: bucket.to_string(),
                key: obj.key,
                etag,
                size: obj.size,
                last_modified_ms: obj.last_modified_ms,
            }),
            None => unknown.push(obj),
        }
    }
    if unknown.is_empty() {
        return Ok(versions);
    }
    tracing::debug!("{bucket}: {} objects listed without a known ETag; asking HEAD", unknown.len());
    let heads: Vec<Option<(ObjectVersion, bool)>> = futures_util::stream::iter(unknown)
        .map(|obj| async move {
            let head = match source.head(bucket, &obj.key).await {
                Ok(head) => head,
                // Deleted since the listing: nothing to deliver.
                Err(SourceError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            // The cache is keyed on what listings show. Where HEAD disagrees with the
            // listing the object changed in between: trust HEAD, remember nothing.
            let same_second = match (obj.last_modified_ms, head.last_modified_ms) {
                (Some(a), Some(b)) => a.div_euclid(1000) == b.div_euclid(1000),
                _ => false,
            };
            let consistent = head.size == obj.size && same_second;
            Ok::<_, SourceError>(Some((
                ObjectVersion {
                    bucket: bucket.to_string(),
                    key: obj.key,
                    etag: head.etag,
                    size: head.size,
                    last_modified_ms: if consistent { obj.last_modified_ms } else { head.last_modified_ms },
                },
                consistent,
            )))
        })
        .buffer_unordered(HEAD_CONCURRENCY)
        .try_collect()
        .await?;
    let learned: Vec<ObjectVersion> = heads.iter().flatten().filter(|(_, ok)| *ok).map(|(v, _)| v.clone()).collect();
    if !dry_run {
        ledger.remember_etags(&learned).map_err(ledger_error)?;
    }
    versions.extend(heads.into_iter().flatten().map(|(v, _)| v));
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn part_files_live_in_a_private_directory() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let base_path = base.path().display().to_string();
        let cfg = Config::load_with(&crate::config::Overrides::default(), &|name| {
            (name == crate::config::env::TMP_DIR).then(|| base_path.clone())
        })
        .unwrap();
        let dir = private_tmp_dir(&cfg).unwrap();
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
        let part = tempfile::Builder::new().prefix("part-").tempfile_in(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(part.path()).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
