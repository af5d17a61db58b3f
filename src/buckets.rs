//! Buckets: their delivered counts, and switching them on (optionally from now on) and
//! off. `tgploy buckets` and the dashboard both call this.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::FilterConfig;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ledger::{Bucket, Counts, Ledger, State};
use crate::source::S3Source;
use crate::sync::scan_bucket;
use crate::time::now;

/// A known bucket with its deliveries counted by state.
#[derive(Debug, Clone)]
pub struct Summary {
    pub bucket: Bucket,
    pub counts: Counts,
}

/// Every bucket in the ledger with its counts, by name; and the totals.
pub fn summaries(ledger: &Ledger) -> Result<(Vec<Summary>, Counts)> {
    let (total, mut per_bucket): (Counts, HashMap<String, Counts>) = ledger.counts()?;
    let rows = ledger
        .buckets()?
        .into_iter()
        .map(|bucket| Summary { counts: per_bucket.remove(&bucket.name).unwrap_or_default(), bucket })
        .collect();
    Ok((rows, total))
}

/// Enables a bucket. With `from_now`, its current objects are recorded as skipped first,
/// so that only objects created or overwritten from now on are delivered. S3 is asked
/// (through `source`) whether a bucket the ledger does not know exists, and for the
/// objects to skip. Returns how many objects were skipped.
pub async fn enable(
    ledger: &Arc<Ledger>,
    source: impl FnOnce() -> Result<S3Source>,
    name: &str,
    from_now: bool,
) -> Result<u64> {
    let set_enabled =
        |name: String| async move { Ledger::blocking(ledger, move |l| l.set_bucket_enabled(&name, true, now())).await };
    let known = {
        let name = name.to_string();
        Ledger::blocking(ledger, move |l| l.bucket(&name)).await?.is_some()
    };
    if !from_now && known {
        set_enabled(name.to_string()).await?;
        return Ok(0);
    }
    let source = source()?;
    if !source.list_buckets().await?.iter().any(|b| b == name) {
        return Err(Error::config(format!("no bucket named `{name}` at {}", source.endpoint())));
    }
    let mut skipped = 0;
    if from_now {
        // Recorded before the bucket is enabled, so a sync running meanwhile does not
        // start on the objects being skipped. Page by page, like a sync.
        let all = Filter::new(&FilterConfig::default())?;
        skipped = scan_bucket(ledger, &source, name, &all, Some(State::Skipped)).await?.objects;
    }
    set_enabled(name.to_string()).await?;
    Ok(skipped)
}

/// Disables a bucket: `sync` no longer delivers its objects. A bucket the ledger does not
/// know yet must exist on the server (asked through `source`, only then).
pub async fn disable(ledger: &Arc<Ledger>, source: impl FnOnce() -> Result<S3Source>, name: &str) -> Result<()> {
    let known = {
        let name = name.to_string();
        Ledger::blocking(ledger, move |l| l.bucket(&name)).await?.is_some()
    };
    if !known {
        let source = source()?;
        if !source.list_buckets().await?.iter().any(|b| b == name) {
            return Err(Error::config(format!("no bucket named `{name}` at {}", source.endpoint())));
        }
    }
    let name = name.to_string();
    Ledger::blocking(ledger, move |l| l.set_bucket_enabled(&name, false, now())).await
}
