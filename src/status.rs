//! `status`: what the ledger says about buckets, deliveries, the retry queue and the last
//! sync; and `status --check`, the same reduced to problems for monitoring.

use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::error::Result;
use crate::freshness::{self, WatchStatus};
use crate::ledger::{Counts, Ledger, RunRecord, State};
use crate::run::RunKind;
use crate::time::{ago, rfc3339};

/// Everything `status` shows.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The ledger file's path.
    pub ledger: String,
    /// The latest `sync` run; `None` if there was none.
    pub last_sync: Option<RunView>,
    /// The latest `sync` run that ended without an error; `None` if there was none.
    pub last_successful_sync: Option<RunView>,
    /// Deliveries by state over every bucket.
    pub totals: Counts,
    /// Every bucket the ledger knows, by name.
    pub buckets: Vec<BucketStatus>,
    /// Failed and dead deliveries, with what `retry --id` needs.
    pub failures: Vec<FailureView>,
    /// Alerts in the outbox still waiting to be sent to the admin chat.
    pub unsent_alerts: u64,
    /// The freshness watches (`expect_every`): the newest object of each and its age.
    pub watches: Vec<WatchStatus>,
}

/// A failed or dead delivery, as `status` lists it.
#[derive(Debug, Serialize)]
pub struct FailureView {
    /// The delivery's id, for `retry --id`.
    pub id: i64,
    /// The bucket of its object.
    pub bucket: String,
    /// Its object's key.
    pub key: String,
    /// `failed` (waiting for `retry`) or `dead` (failed too often).
    pub state: &'static str,
    /// Attempts made so far.
    pub attempts: u32,
    /// When `retry` tries it next, RFC 3339 in UTC; `None` when nothing is scheduled (a dead delivery).
    pub next_attempt_at: Option<String>,
    /// The error of its last attempt.
    pub last_error: Option<String>,
}

/// A finished run, as `status` shows it.
#[derive(Debug, Serialize)]
pub struct RunView {
    pub(crate) started_at: String,
    /// When it ended, RFC 3339 in UTC.
    pub finished_at: String,
    /// Objects it delivered.
    pub sent: u64,
    /// Deliveries that failed in it.
    pub failed: u64,
    pub(crate) bytes: u64,
    /// Why it did not finish everything; `None` for a run that did.
    pub error: Option<String>,
    /// When it ended, in Unix seconds. Not in the JSON (`finished_at` carries it).
    #[serde(skip)]
    pub finished_at_unix: i64,
}

impl From<&RunRecord> for RunView {
    fn from(r: &RunRecord) -> Self {
        RunView {
            started_at: rfc3339(r.started_at),
            finished_at: rfc3339(r.finished_at),
            sent: r.sent,
            failed: r.failed,
            bytes: r.bytes,
            error: r.error.clone(),
            finished_at_unix: r.finished_at,
        }
    }
}

/// A bucket with its deliveries counted by state, as `status` shows it.
#[derive(Debug, Serialize)]
pub struct BucketStatus {
    /// The bucket's name.
    pub name: String,
    /// Whether `sync` delivers its new object versions.
    pub enabled: bool,
    /// Its deliveries by state (flattened into the bucket's JSON object).
    #[serde(flatten)]
    pub counts: Counts,
    pub(crate) last_listed_at: Option<String>,
    /// The error of its last listing; `None` when that listing succeeded.
    pub last_error: Option<String>,
    /// When it was last listed without error, in Unix seconds; `None` if never. Not in the JSON
    /// (`last_listed_at` carries it as RFC 3339).
    #[serde(skip)]
    pub last_listed_unix: Option<i64>,
}

/// Reads what `status` shows.
pub fn gather(ledger: &Ledger, cfg: &Config, now: i64) -> Result<Status> {
    let (summaries, totals) = crate::buckets::summaries(ledger)?;
    let (last, last_ok) = ledger.last_runs(RunKind::Sync.as_str())?;
    let buckets = summaries
        .into_iter()
        .map(|crate::buckets::Summary { bucket: b, counts }| BucketStatus {
            counts,
            name: b.name,
            enabled: b.enabled,
            last_listed_at: b.last_listed_at.map(rfc3339),
            last_listed_unix: b.last_listed_at,
            last_error: b.last_error,
        })
        .collect();
    let mut failures = Vec::new();
    for state in [State::Dead, State::Failed] {
        for d in ledger.deliveries_in(state)? {
            failures.push(FailureView {
                id: d.id,
                bucket: d.object.bucket,
                key: d.object.key,
                state: d.state.as_str(),
                attempts: d.attempts,
                next_attempt_at: d.next_attempt_at.map(rfc3339),
                last_error: d.last_error,
            });
        }
    }
    Ok(Status {
        ledger: ledger.path().display().to_string(),
        last_sync: last.as_ref().map(RunView::from),
        last_successful_sync: last_ok.as_ref().map(RunView::from),
        totals,
        buckets,
        failures,
        unsent_alerts: ledger.unsent_alert_count()?,
        watches: freshness::check(ledger, cfg, now)?,
    })
}

/// What `status --check` found: the problems, or the age of the last successful sync.
#[derive(Debug)]
pub struct Health {
    /// One line per problem found; empty when all is well.
    pub problems: Vec<String>,
    /// `5m ago`, when there is a successful sync.
    pub last_ok_age: Option<String>,
}

/// `status --check`: a successful sync younger than `max_age`, no dead delivery, and no
/// overdue freshness watch.
pub fn check(ledger: &Ledger, cfg: &Config, max_age: Duration, now: i64) -> Result<Health> {
    let mut problems = Vec::new();
    let (_, last_ok) = ledger.last_runs(RunKind::Sync.as_str())?;
    let max_age_text = humantime::format_duration(max_age).to_string();
    match &last_ok {
        None => problems.push("no successful sync yet".to_string()),
        Some(run) if now - run.finished_at > max_age.as_secs() as i64 => problems.push(format!(
            "last successful sync was {} at {} (older than {max_age_text})",
            ago(run.finished_at, now),
            rfc3339(run.finished_at)
        )),
        Some(_) => {}
    }
    let dead = ledger.deliveries_in(State::Dead)?;
    if let Some(first) = dead.first() {
        problems.push(format!(
            "{} dead deliveries (first: {}/{}); see `tgploy status`, fix the cause, run `tgploy retry --dead`",
            dead.len(),
            first.object.bucket,
            first.object.key
        ));
    }
    problems.extend(freshness::check(ledger, cfg, now)?.iter().filter(|w| w.overdue).map(WatchStatus::problem));
    Ok(Health { problems, last_ok_age: last_ok.map(|r| ago(r.finished_at, now)) })
}
