//! A `sync` run: discover buckets, list them page by page, record new object versions,
//! hand every pending one to the delivery engine.
//!
//! A listing page (at most 1,000 keys, in the UTF-8 byte order S3 lists them in) is
//! compared with the ledger's versions of the same key range and recorded in one
//! transaction, so memory follows the page, not the bucket, however many objects the
//! ledger holds.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::alert;
use crate::config::Config;
use crate::deliver::engine::{EngineOptions, finish_run};
use crate::deliver::{DeliveryReport, Engine, alongside};
use crate::error::{Error, Result, Service};
use crate::filter::Filter;
use crate::ledger::{Bucket, Ledger, ObjectVersion, State};
use crate::shutdown::Shutdown;
use crate::source::{ListedObject, S3Source, SourceError};
use crate::time::now;

/// HEAD requests in flight at once while learning ETags.
const HEAD_CONCURRENCY: usize = 8;

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

impl From<ObjectVersion> for Item {
    fn from(v: ObjectVersion) -> Self {
        Item { bucket: v.bucket, key: v.key, etag: v.etag, size: v.size }
    }
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
pub async fn run(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    opts: &SyncOptions,
    shutdown: &Arc<Shutdown>,
) -> Result<SyncReport> {
    let started = now();
    let result = run_inner(cfg, ledger, opts, shutdown).await;
    if opts.dry_run {
        return result;
    }
    finish_run(cfg, ledger, "sync", started, result.as_ref().map(|r| &r.deliveries)).await;
    result
}

async fn run_inner(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    opts: &SyncOptions,
    shutdown: &Arc<Shutdown>,
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

    if opts.dry_run {
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
    }

    let options = EngineOptions { concurrency: cfg.concurrency, progress: opts.progress };
    let engine = Engine::new(cfg, ledger.clone(), source, shutdown.clone(), options)?;
    engine.take_over_dead_runs().await?;
    let ids = Ledger::blocking(ledger, move |l| l.claimable(&selected, now())).await?;
    engine.deliver(ids, false, &mut report.deliveries).await?;
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

/// What listing one bucket found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Objects listed.
    pub objects: u64,
    /// Versions (passing the filter) not in the ledger before.
    pub new: u64,
    /// Those versions, when the scan recorded nothing (a dry run).
    pub unrecorded: Vec<ObjectVersion>,
}

/// Why a bucket could not be scanned.
#[derive(Debug)]
pub enum ScanError {
    Source(SourceError),
    Ledger(Error),
}

impl From<SourceError> for ScanError {
    fn from(e: SourceError) -> Self {
        ScanError::Source(e)
    }
}

impl From<Error> for ScanError {
    fn from(e: Error) -> Self {
        ScanError::Ledger(e)
    }
}

impl From<ScanError> for Error {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Source(e) => e.into(),
            ScanError::Ledger(e) => e,
        }
    }
}

/// Lists a bucket page by page and records each page's versions that pass `filter` and
/// are not in the ledger yet, as `record` (pending for `sync`, skipped for `buckets
/// enable --from-now`), one transaction a page. With `record` `None` nothing is written
/// (a dry run) and the new versions are returned instead. ETags missing from the
/// listing are learned with HEAD and remembered.
pub async fn scan_bucket(
    ledger: &Arc<Ledger>,
    source: &S3Source,
    bucket: &str,
    filter: &Filter,
    record: Option<State>,
) -> Result<Scan, ScanError> {
    let mut scan = Scan::default();
    // The next page is fetched while this one is compared with the ledger: a no-op sync
    // takes about as long as the listing.
    let (pages, mut next) = tokio::sync::mpsc::channel(1);
    let lister = async move {
        let mut listing = source.list_pages(bucket);
        loop {
            let page = listing.next_page().await.transpose();
            let end = !matches!(page, Some(Ok(_)));
            if let Some(page) = page
                && pages.send(page).await.is_err()
            {
                return;
            }
            if end {
                return;
            }
        }
    };
    let compare = async {
        while let Some(page) = next.recv().await {
            let page = page?;
            scan.objects += page.len() as u64;
            // S3 lists keys in order; the range is taken from the page itself all the same.
            let (Some(first), Some(last)) =
                (page.iter().map(|o| &o.key).min().cloned(), page.iter().map(|o| &o.key).max().cloned())
            else {
                continue;
            };
            let versions =
                resolve_etags(ledger, source, bucket, page, filter, record.is_some(), (&first, &last)).await?;
            let name = bucket.to_string();
            let new = Ledger::blocking(ledger, move |l| {
                let known = l.known_versions_between(&name, &first, &last)?;
                let new: Vec<ObjectVersion> =
                    versions.into_iter().filter(|v| !known.contains(&(v.key.clone(), v.etag.clone()))).collect();
                if let Some(state) = record
                    && !new.is_empty()
                {
                    l.insert_versions(&new, state, now())?;
                }
                Ok(new)
            })
            .await?;
            scan.new += new.len() as u64;
            if record.is_none() {
                scan.unrecorded.extend(new);
            }
        }
        Ok::<_, ScanError>(())
    };
    alongside(compare, lister).await?;
    if record.is_some() {
        let name = bucket.to_string();
        Ledger::blocking(ledger, move |l| l.bucket_listed(&name, now(), None)).await?;
    }
    Ok(scan)
}

/// Turns a listing page's objects that pass the filter into versions, with ETags from
/// the listing, the cache (of the page's key range), or HEAD.
async fn resolve_etags(
    ledger: &Arc<Ledger>,
    source: &S3Source,
    bucket: &str,
    listed: Vec<ListedObject>,
    filter: &Filter,
    remember: bool,
    (first, last): (&str, &str),
) -> Result<Vec<ObjectVersion>, ScanError> {
    let cache = if listed.iter().any(|o| o.etag.is_none()) {
        let (name, first, last) = (bucket.to_string(), first.to_string(), last.to_string());
        Ledger::blocking(ledger, move |l| l.etag_cache_between(&name, &first, &last)).await?
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
    if remember {
        Ledger::blocking(ledger, move |l| l.remember_etags(&learned)).await?;
    }
    versions.extend(heads.into_iter().flatten().map(|(v, _)| v));
    Ok(versions)
}
