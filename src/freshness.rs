//! Freshness: notice when the backups themselves stop.
//!
//! A watch (`expect_every` in `[buckets.NAME]`) says how often a new object version is
//! expected in a bucket, or under a prefix of it. The newest version the ledger knows
//! there (by its S3 last-modified time) is what the watch compares: when it is older
//! than the period plus a grace (a tenth of the period unless `expect_grace` says), the
//! watch is overdue. `sync` alerts while it is (once per `alert_interval`) and sends a
//! recovery note when a new version arrives; `status --check`, `status`, the heartbeat,
//! the dashboard and the metrics show every watch.

use std::time::Duration;

use serde::Serialize;

use crate::alert;
use crate::config::Config;
use crate::error::Result;
use crate::ledger::{Ledger, Newest};
use crate::time::{rfc3339, span};

/// A watch: a bucket (and a key prefix of it, "" for all of it) and how often something
/// new is expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    pub(crate) every: Duration,
    pub(crate) grace: Duration,
}

impl Watch {
    /// `bucket/prefix`, as messages name it.
    pub(crate) fn place(&self) -> String {
        format!("{}/{}", self.bucket, self.prefix)
    }

    /// How old the newest version may be before the watch is overdue.
    pub(crate) fn limit(&self) -> Duration {
        self.every + self.grace
    }
}

/// Every configured watch, by bucket and prefix.
pub fn watches(cfg: &Config) -> Vec<Watch> {
    let mut all = Vec::new();
    for (bucket, own) in &cfg.buckets {
        for (prefix, every) in &own.watches {
            all.push(Watch {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                every: *every,
                grace: own.grace.unwrap_or(*every / 10),
            });
        }
    }
    all
}

/// A watch as it stands now.
#[derive(Debug, Clone, Serialize)]
pub struct WatchStatus {
    /// The bucket watched.
    pub bucket: String,
    /// The key prefix watched (`""` for the whole bucket).
    pub prefix: String,
    /// The period, in seconds.
    pub(crate) every_secs: u64,
    pub(crate) grace_secs: u64,
    /// The newest version there: its key and last-modified time (RFC 3339).
    pub newest_key: Option<String>,
    pub(crate) newest_at: Option<String>,
    #[serde(skip)]
    pub(crate) newest_unix: Option<i64>,
    /// How old the newest version is, in seconds.
    pub(crate) age_secs: Option<i64>,
    /// Whether the newest version is older than the period plus its grace (or there is none).
    pub overdue: bool,
    #[serde(skip)]
    pub(crate) watch: Watch,
}

impl WatchStatus {
    /// One line about an overdue watch: what is missing, since when, what was last seen.
    pub fn problem(&self) -> String {
        let expected = span(self.watch.every.as_secs() as i64);
        match (&self.newest_key, self.newest_unix, self.age_secs) {
            (Some(key), Some(at), Some(age)) => format!(
                "no new backup in {} for {}; expected every {expected}; newest: {key} at {}",
                self.watch.place(),
                span(age),
                rfc3339(at)
            ),
            _ => format!("no backup in {} at all; expected every {expected}", self.watch.place()),
        }
    }

    /// `26 h ago (expected every 24 h)`, for tables.
    pub fn describe(&self) -> String {
        let every = span(self.watch.every.as_secs() as i64);
        match self.age_secs {
            Some(age) => format!("{} ago (expected every {every})", span(age)),
            None => format!("nothing yet (expected every {every})"),
        }
    }
}

/// Every watch's state now, from the ledger.
pub(crate) fn check(ledger: &Ledger, cfg: &Config, now: i64) -> Result<Vec<WatchStatus>> {
    watches(cfg).into_iter().map(|w| status_of(ledger, w, now)).collect()
}

fn status_of(ledger: &Ledger, watch: Watch, now: i64) -> Result<WatchStatus> {
    let newest = ledger.newest_version(&watch.bucket, &watch.prefix)?;
    let newest_unix = newest.as_ref().map(|n| n.modified_ms.div_euclid(1000));
    let age_secs = newest_unix.map(|t| now - t);
    let overdue = age_secs.is_none_or(|age| age > watch.limit().as_secs() as i64);
    Ok(WatchStatus {
        bucket: watch.bucket.clone(),
        prefix: watch.prefix.clone(),
        every_secs: watch.every.as_secs(),
        grace_secs: watch.grace.as_secs(),
        newest_key: newest.map(|Newest { key, .. }| key),
        newest_at: newest_unix.map(rfc3339),
        newest_unix,
        age_secs,
        overdue,
        watch,
    })
}

/// After a `sync` listed `listed`: raises an alert for each of their overdue watches
/// (the alert outbox lets one through per `alert_interval`) and queues a recovery note
/// for each watch that is not overdue any more. Returns the watches' states.
pub(crate) fn alert(ledger: &Ledger, cfg: &Config, listed: &[String], now: i64) -> Result<Vec<WatchStatus>> {
    let mut states = Vec::new();
    for watch in watches(cfg).into_iter().filter(|w| listed.contains(&w.bucket)) {
        let s = status_of(ledger, watch, now)?;
        let place = s.watch.place();
        if s.overdue {
            ledger.watch_overdue(&s.bucket, &s.prefix, now)?;
            alert::raise(ledger, cfg, alert::Subject::Stale(&place), &s.problem())?;
        } else if let Some(since) = ledger.watch_fresh(&s.bucket, &s.prefix)? {
            let text = format!(
                "new backups arrive again in {place}: newest {} at {} (overdue since {})",
                s.newest_key.as_deref().unwrap_or("?"),
                s.newest_at.as_deref().unwrap_or("?"),
                rfc3339(since)
            );
            alert::raise(ledger, cfg, alert::Subject::Fresh(&place), &text)?;
        }
        states.push(s);
    }
    Ok(states)
}
