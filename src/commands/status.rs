//! `status` subcommand: buckets, delivered counts and bytes, the retry queue, last sync.

use serde::Serialize;

use crate::cli::StatusArgs;
use crate::commands::Context;
use crate::config::human_size;
use crate::error::Result;
use crate::ledger::{Counts, Run};
use crate::output;
use crate::time::{ago, now, rfc3339};

#[derive(Serialize)]
struct Status {
    ledger: String,
    last_sync: Option<RunView>,
    last_successful_sync: Option<RunView>,
    totals: Counts,
    buckets: Vec<BucketStatus>,
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
    if args.json {
        return output::print_json(&Status {
            ledger: ledger.path().display().to_string(),
            last_sync: last.as_ref().map(RunView::from),
            last_successful_sync: last_ok.as_ref().map(RunView::from),
            totals,
            buckets,
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
    output::print(&out)
}
