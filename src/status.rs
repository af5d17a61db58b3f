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
    pub ledger: String,
    pub last_sync: Option<RunView>,
    pub last_successful_sync: Option<RunView>,
    pub totals: Counts,
    pub buckets: Vec<BucketStatus>,
    /// Failed and dead deliveries, with what `retry --id` needs.
    pub failures: Vec<FailureView>,
    pub unsent_alerts: u64,
    /// The freshness watches (`expect_every`): the newest object of each and its age.
    pub watches: Vec<WatchStatus>,
}

#[derive(Debug, Serialize)]
pub struct FailureView {
    pub id: i64,
    pub bucket: String,
    pub key: String,
    pub state: &'static str,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RunView {
    pub(crate) started_at: String,
    pub finished_at: String,
    pub sent: u64,
    pub failed: u64,
    pub(crate) bytes: u64,
    pub error: Option<String>,
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

#[derive(Debug, Serialize)]
pub struct BucketStatus {
    pub name: String,
    pub enabled: bool,
    #[serde(flatten)]
    pub counts: Counts,
    pub(crate) last_listed_at: Option<String>,
    pub last_error: Option<String>,
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
