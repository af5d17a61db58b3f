//! A `sync` run: discover buckets, list the enabled ones page by page ([`crate::scan`]),
//! record new object versions, hand every pending one to the delivery engine.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;

use crate::alert;
use crate::config::Config;
use crate::deliver::{Batch, DeliveryReport, Engine, EngineOptions};
use crate::error::{Error, Result, Service};
use crate::filter::Filter;
use crate::freshness::{self, WatchStatus};
use crate::ledger::{Bucket, Ledger, ObjectVersion, State};
use crate::run::{Run, RunKind, Tallied, Tally};
use crate::scan::{ScanError, scan_bucket};
use crate::shutdown::Shutdown;
use crate::source::{S3Source, SourceError};
use crate::time::now;

/// What `sync` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Only these buckets (all enabled ones when empty).
    pub buckets: Vec<String>,
    /// List what would be sent; send nothing, write nothing.
    pub dry_run: bool,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

/// What listing one bucket found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BucketReport {
    /// The bucket's name.
    pub name: String,
    /// Objects listed (folder markers aside).
    pub objects: u64,
    /// Versions passing the filter that the ledger did not know before.
    pub new_versions: u64,
    /// Why the bucket could not be listed; `None` when it was.
    pub error: Option<String>,
}

/// An object version a dry run would send.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Item {
    /// The bucket it is in.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    pub(crate) etag: String,
    /// The object's size in bytes.
    pub size: u64,
}

impl From<ObjectVersion> for Item {
    fn from(v: ObjectVersion) -> Self {
        Item { bucket: v.bucket, key: v.key, etag: v.etag, size: v.size }
    }
}

/// What a `sync` did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub(crate) dry_run: bool,
    /// Every bucket listed, in order.
    pub buckets: Vec<BucketReport>,
    /// With `--dry-run`: what would be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_send: Option<Vec<Item>>,
    /// The freshness watches of the buckets listed (`expect_every`), overdue or not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watches: Vec<WatchStatus>,
    /// What its deliveries came to (flattened into the JSON).
    #[serde(flatten)]
    pub deliveries: DeliveryReport,
}

impl SyncReport {
    /// The exit status the report calls for (buckets that could not be listed count as
    /// failures).
    pub fn verdict(&self) -> Result<()> {
        self.deliveries.verdict(self.buckets.iter().filter(|b| b.error.is_some()).count())
    }
}

impl Tallied for SyncReport {
    fn tally(&self) -> Tally {
        self.deliveries.tally()
    }
}

/// Runs `sync` as a run of its own: recorded in the ledger, with alerts raised for what
/// went wrong and queued alerts sent (none of that on a dry run, which writes nothing).
pub async fn sync(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    opts: &SyncOptions,
    shutdown: &Arc<Shutdown>,
) -> Result<SyncReport> {
    if opts.dry_run {
        return sync_buckets(cfg, ledger, opts, shutdown, None).await;
    }
    Run::scope(RunKind::Sync, cfg, ledger, async |run| sync_buckets(cfg, ledger, opts, shutdown, Some(run)).await).await
}

/// Lists and records the selected buckets, then delivers what is new, as part of `run`
/// (none on a dry run).
async fn sync_buckets(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    opts: &SyncOptions,
    shutdown: &Arc<Shutdown>,
    run: Option<&Run>,
) -> Result<SyncReport> {
    let source = S3Source::new(&cfg.require_s3()?);
    if !opts.dry_run {
        // Fail on missing Telegram settings before any work, not after listing.
        cfg.require_telegram()?;
    }
    let mut report = SyncReport { dry_run: opts.dry_run, ..SyncReport::default() };
    let selected = select_buckets(cfg, ledger, &source, &opts.buckets, opts.dry_run).await?;

    let mut would_send = Vec::new();
    for bucket in &selected {
        let filter = Filter::new(cfg.filter_for(bucket))?;
        let record = (!opts.dry_run).then_some(State::Pending);
        match scan_bucket(ledger, &source, bucket, &filter, record).await {
            Ok(scan) => {
                report.buckets.push(BucketReport {
                    name: bucket.clone(),
                    objects: scan.objects,
                    new_versions: scan.new,
                    error: None,
                });
                would_send.extend(scan.unrecorded.into_iter().map(Item::from));
            }
            Err(ScanError::Ledger(e)) => return Err(e),
            Err(ScanError::Source(SourceError::Unreachable { endpoint, reason })) => {
                return Err(Error::Unreachable { service: Service::S3, endpoint, reason });
            }
            Err(ScanError::Source(e)) => {
                let error = e.to_string();
                tracing::error!("cannot list bucket {bucket}: {error}");
                if !opts.dry_run {
                    let (name, cfg, why) = (bucket.clone(), cfg.clone(), error.clone());
                    Ledger::blocking(ledger, move |l| {
                        l.bucket_listed(&name, now(), Some(&why))?;
                        alert::raise(l, &cfg, alert::Subject::Bucket(&name), &why)
                    })
                    .await?;
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

    if !opts.dry_run {
        // What the listing recorded says whether the backups themselves keep coming.
        let listed: Vec<String> = report.buckets.iter().filter(|b| b.error.is_none()).map(|b| b.name.clone()).collect();
        let cfg = cfg.clone();
        report.watches = Ledger::blocking(ledger, move |l| freshness::alert(l, &cfg, &listed, now())).await?;
    }

    let Some(run) = run else {
        // Deliveries already waiting in the ledger (from an earlier run or a webhook)
        // would go out too.
        let (waiting, counts) = Ledger::blocking(ledger, move |l| {
            let mut waiting = Vec::new();
            for id in l.claimable(&selected, now())? {
                waiting.extend(l.delivery(id)?.map(|d| d.object));
            }
            Ok((waiting, l.counts()?.0))
        })
        .await?;
        let listed: HashSet<(String, String, String)> =
            would_send.iter().map(|i| (i.bucket.clone(), i.key.clone(), i.etag.clone())).collect();
        for o in waiting {
            if !listed.contains(&(o.bucket.clone(), o.key.clone(), o.etag.clone())) {
                would_send.push(Item::from(o));
            }
        }
        report.would_send = Some(would_send);
        report.deliveries.waiting_for_retry = counts.failed;
        report.deliveries.dead = counts.dead;
        return Ok(report);
    };

    let options = EngineOptions { concurrency: cfg.concurrency, progress: opts.progress };
    let engine = Engine::new(cfg, ledger.clone(), source, shutdown.clone(), options)?;
    run.deliver(&engine, &Batch::Pending { buckets: selected }, &mut report.deliveries).await?;
    Ok(report)
}

/// The buckets to sync: discovered ones recorded, then the enabled ones (or those named).
async fn select_buckets(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    source: &S3Source,
    wanted: &[String],
    dry_run: bool,
) -> Result<Vec<String>> {
    let names = source.list_buckets().await?;
    let (listed, enable_new) = (names.clone(), cfg.enable_new_buckets);
    let buckets: Vec<Bucket> = Ledger::blocking(ledger, move |l| {
        let mut buckets = Vec::new();
        for name in listed {
            let known = l.bucket(&name)?;
            let bucket = match known {
                Some(b) if dry_run => b,
                None if dry_run => {
                    Bucket { name, enabled: enable_new, discovered_at: now(), last_listed_at: None, last_error: None }
                }
                _ => {
                    let b = l.discover_bucket(&name, enable_new, now())?;
                    if known.is_none() {
                        tracing::info!(
                            "discovered bucket {name} ({})",
                            if b.enabled { "enabled" } else { "disabled: enable it with `tgploy buckets enable`" }
                        );
                    }
                    b
                }
            };
            buckets.push(bucket);
        }
        Ok(buckets)
    })
    .await?;
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
