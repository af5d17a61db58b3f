//! Buckets: their delivered counts, and switching them on (optionally from now on) and
//! off. `tgploy buckets` and the dashboard both call this.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, FilterConfig};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ledger::{Bucket, Counts, Ledger, State};
use crate::scan::scan_bucket;
use crate::source::S3Source;
use crate::time::{now, rfc3339};

/// A bucket as `tgploy buckets list` shows it.
#[derive(Debug, Serialize)]
pub struct BucketRow {
    /// The bucket's name.
    pub name: String,
    /// Whether `sync` delivers its new object versions.
    pub enabled: bool,
    /// False for buckets in the ledger that the server no longer lists.
    pub on_server: bool,
    /// Object versions delivered.
    pub delivered: u64,
    /// Bytes delivered: the sum of those versions' sizes on S3.
    pub delivered_bytes: u64,
    /// Deliveries still to go out: pending, or claimed by a run under way.
    pub pending: u64,
    /// Failed deliveries waiting for `retry`.
    pub failed: u64,
    /// Deliveries that failed too often and wait for an operator (`retry --dead`).
    pub dead: u64,
    pub(crate) skipped: u64,
    pub(crate) last_listed_at: Option<String>,
    /// When the bucket was last listed without error, in Unix seconds; `None` if never. Not in the JSON
    /// (`last_listed_at` carries it as RFC 3339).
    #[serde(skip)]
    pub listed_at: Option<i64>,
    pub(crate) last_error: Option<String>,
}

/// `tgploy buckets list`: the buckets on the server (new ones recorded, as `sync` would)
/// and those the ledger knows, with their counts. Also returns the endpoint asked.
pub async fn list(cfg: &Config, ledger: &Arc<Ledger>) -> Result<(Vec<BucketRow>, String)> {
    let source = S3Source::new(&cfg.require_s3()?);
    let on_server = source.list_buckets().await?;
    let (names, enable_new) = (on_server.clone(), cfg.enable_new_buckets);
    let (summaries, _) = Ledger::blocking(ledger, move |l| {
        for name in &names {
            l.discover_bucket(name, enable_new, now())?;
        }
        summaries(l)
    })
    .await?;
    let rows = summaries
        .into_iter()
        .map(|Summary { bucket: b, counts: c }| BucketRow {
            on_server: on_server.contains(&b.name),
            enabled: b.enabled,
            delivered: c.sent,
            delivered_bytes: c.sent_bytes,
            pending: c.waiting(),
            failed: c.failed,
            dead: c.dead,
            skipped: c.skipped,
            last_listed_at: b.last_listed_at.map(rfc3339),
            listed_at: b.last_listed_at,
            last_error: b.last_error,
            name: b.name,
        })
        .collect();
    Ok((rows, source.endpoint().to_string()))
}

/// A known bucket with its deliveries counted by state.
#[derive(Debug, Clone)]
pub struct Summary {
    pub(crate) bucket: Bucket,
    pub(crate) counts: Counts,
}

/// Every bucket in the ledger with its counts, by name; and the totals.
pub(crate) fn summaries(ledger: &Ledger) -> Result<(Vec<Summary>, Counts)> {
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
        return Err(Error::usage(format!("no bucket named `{name}` at {}", source.endpoint())));
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

/// `tgploy buckets disable`: disabling reduces protection, so once a second factor is
/// enrolled it needs a code (`otp`, or asked on a terminal).
pub async fn disable_with_code(cfg: &Config, ledger: &Arc<Ledger>, otp: Option<&str>, name: &str) -> Result<()> {
    let (otp, action) = (otp.map(str::to_string), format!("disable bucket {name}"));
    Ledger::blocking(ledger, move |l| crate::totp::require(l, otp.as_deref(), &action)).await?;
    disable(ledger, || Ok(S3Source::new(&cfg.require_s3()?)), name).await
}

/// Disables a bucket: `sync` no longer delivers its objects. A bucket the ledger does not
/// know yet must exist on the server (asked through `source`, only then).
pub(crate) async fn disable(ledger: &Arc<Ledger>, source: impl FnOnce() -> Result<S3Source>, name: &str) -> Result<()> {
    let known = {
        let name = name.to_string();
        Ledger::blocking(ledger, move |l| l.bucket(&name)).await?.is_some()
    };
    if !known {
        let source = source()?;
        if !source.list_buckets().await?.iter().any(|b| b == name) {
            return Err(Error::usage(format!("no bucket named `{name}` at {}", source.endpoint())));
        }
    }
    let name = name.to_string();
    Ledger::blocking(ledger, move |l| l.set_bucket_enabled(&name, false, now())).await
}
