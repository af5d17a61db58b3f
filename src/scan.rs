//! A bucket's listing compared with the ledger, page by page: `sync` records the new
//! versions as pending, `buckets enable --from-now` records what is there as skipped, a
//! dry run only returns them.
//!
//! A listing page (at most 1,000 keys, in the UTF-8 byte order S3 lists them in) is
//! compared with the ledger's versions of the same key range and recorded in one
//! transaction, so memory follows the page, not the bucket, however many objects the
//! ledger holds. The next page is fetched meanwhile.

use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use crate::alongside::alongside;
use crate::error::Error;
use crate::filter::Filter;
use crate::ledger::{Ledger, ObjectVersion, State};
use crate::source::{ListedObject, S3Source, SourceError};
use crate::time::now;

/// HEAD requests in flight at once while learning ETags.
const HEAD_CONCURRENCY: usize = 8;

/// What listing one bucket found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Objects listed.
    pub(crate) objects: u64,
    /// Versions (passing the filter) not in the ledger before.
    pub(crate) new: u64,
    /// Those versions, when the scan recorded nothing (a dry run).
    pub(crate) unrecorded: Vec<ObjectVersion>,
}

/// Why a bucket could not be scanned.
#[derive(Debug)]
pub enum ScanError {
    /// S3 failed (listing the bucket, or a HEAD for an ETag).
    Source(SourceError),
    /// The ledger failed.
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
    // Back in the listing's order (S3 lists keys in byte order), however the HEADs came
    // back: deliveries are recorded, and made, in key order.
    versions.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok(versions)
}
