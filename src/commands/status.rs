//! `status` subcommand: buckets, delivered counts and bytes, the retry queue, last sync.

use serde::Serialize;

use crate::cli::StatusArgs;
use crate::commands::Context;
use crate::config::human_size;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::ledger::{Counts, Ledger, Run, State};
use crate::output;
use crate::time::{ago, now, rfc3339};

#[derive(Serialize)]
struct Status {
    ledger: String,
    last_sync: Option<RunView>,
    last_successful_sync: Option<RunView>,
    totals: Counts,
    buckets: Vec<BucketStatus>,
    /// Failed and dead deliveries, with what `retry --id` needs.
    failures: Vec<FailureView>,
    unsent_alerts: u64,
}

#[derive(Serialize)]
struct FailureView {
    id: i64,
    bucket: String,
    key: String,
    state: &'static str,
    attempts: u32,
    next_attempt_at: Option<String>,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct RunView {
    started_at: String,
    finished_at: String,
    sent: u64,
    failed: u64,
    bytes: u64,
    error: Option<String>,
}

impl From<&Run> for RunView {
    fn from(r: &Run) -> Self {
        RunView {
            started_at: rfc3339(r.started_at),
            finished_at: rfc3339(r.finished_at),
            sent: r.sent,
            failed: r.failed,
            bytes: r.bytes,
            error: r.error.clone(),
        }
    }
}

#[derive(Serialize)]
struct BucketStatus {
    name: String,
    enabled: bool,
    #[serde(flatten)]
    counts: Counts,
    last_listed_at: Option<String>,
    last_error: Option<String>,
}

pub fn run(ctx: &Context, args: &StatusArgs) -> Result<()> {
    let ledger = ctx.ledger()?;
    if args.check {
        return check(&ledger, args.max_age);
    }
    let (totals, per_bucket) = ledger.counts()?;
    let (last, last_ok) = ledger.last_runs("sync")?;
    let buckets: Vec<BucketStatus> = ledger
        .buckets()?
        .into_iter()
        .map(|b| BucketStatus {
            counts: per_bucket.get(&b.name).cloned().unwrap_or_default(),
            name: b.name,
            enabled: b.enabled,
            last_listed_at: b.last_listed_at.map(rfc3339),
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
    let unsent_alerts = ledger.unsent_alerts()?.len() as u64;
    if args.json {
        return output::print_json(&Status {
            ledger: ledger.path().display().to_string(),
            last_sync: last.as_ref().map(RunView::from),
            last_successful_sync: last_ok.as_ref().map(RunView::from),
            totals,
            buckets,
            failures,
            unsent_alerts,
        });
    }

    let now = now();
    let describe = |run: &Option<Run>| match run {
        None => "never".to_string(),
        Some(r) => {
            let mut s = format!(
                "{} ({}): sent {}, failed {}",
                rfc3339(r.finished_at),
                ago(r.finished_at, now),
                r.sent,
                r.failed
            );
            if let Some(e) = &r.error {
                s.push_str(&format!(", error: {e}"));
            }
            s
        }
    };
    let mut out = String::new();
    out.push_str(&format!("Ledger:               {}\n", ledger.path().display()));
    out.push_str(&format!("Last sync:            {}\n", describe(&last)));
    if last.as_ref().is_some_and(|r| r.error.is_some()) {
        out.push_str(&format!("Last successful sync: {}\n", describe(&last_ok)));
    }
    out.push_str(&format!("Delivered:            {} objects, {}\n", totals.sent, human_size(totals.sent_bytes)));
    out.push_str(&format!(
        "Pending: {}   In flight: {}   Failed (waiting for retry): {}   Dead: {}   Skipped: {}\n",
        totals.pending, totals.sending, totals.failed, totals.dead, totals.skipped
    ));
    if !buckets.is_empty() {
        let mut t =
            output::table(&["Bucket", "Enabled", "Delivered", "Bytes", "Pending", "Failed", "Dead", "Last listed"]);
        for b in &buckets {
            t.add_row(vec![
                b.name.clone(),
                if b.enabled { "yes".into() } else { "no".into() },
                b.counts.sent.to_string(),
                human_size(b.counts.sent_bytes),
                (b.counts.pending + b.counts.sending).to_string(),
                b.counts.failed.to_string(),
                b.counts.dead.to_string(),
                match (&b.last_error, ledger.bucket(&b.name)?.and_then(|x| x.last_listed_at)) {
                    (Some(_), _) => "error".to_string(),
                    (None, Some(t)) => ago(t, now),
                    (None, None) => "never".to_string(),
                },
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    if !failures.is_empty() {
        let mut t = output::table(&["Id", "Object", "State", "Attempts", "Next attempt", "Last error"]);
        for f in &failures {
            t.add_row(vec![
                f.id.to_string(),
                format!("{}/{}", f.bucket, f.key),
                f.state.to_string(),
                f.attempts.to_string(),
                f.next_attempt_at.clone().unwrap_or_else(|| "never (dead: `tgploy retry --dead`)".into()),
                f.last_error.clone().unwrap_or_default(),
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    if unsent_alerts > 0 {
        out.push_str(&format!("{unsent_alerts} alert(s) wait to be sent to the admin chat (telegram.admin_chat_id)\n"));
    }
    output::print(&out)
}

/// `status --check`: one line per problem, exit 1 when there is any.
fn check(ledger: &Ledger, max_age: Duration) -> Result<()> {
    let now = now();
    let mut problems = Vec::new();
    let (_, last_ok) = ledger.last_runs("sync")?;
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
    if !dead.is_empty() {
        let first = &dead[0].object;
        problems.push(format!(
            "{} dead deliveries (first: {}/{}); see `tgploy status`, fix the cause, run `tgploy retry --dead`",
            dead.len(),
            first.bucket,
            first.key
        ));
    }
    if problems.is_empty() {
        let age = last_ok.map(|r| ago(r.finished_at, now)).unwrap_or_default();
        return output::print(&format!("OK: last successful sync {age}, no dead deliveries\n"));
    }
    let text: String = problems.iter().map(|p| format!("CRITICAL: {p}\n")).collect();
    output::print(&text)?;
    Err(Error::CheckFailed(format!("status check failed: {} problem(s)", problems.len())))
}
