//! `status` subcommand: buckets, delivered counts and bytes, the retry queue, last sync;
//! with `--check`, one line per problem for monitoring.

use crate::cli::StatusArgs;
use crate::commands::Context;
use tgploy::error::{Error, Result};
use tgploy::freshness;
use tgploy::metrics;
use tgploy::output;
use tgploy::sizes::human_size;
use tgploy::status::{self, RunView};
use tgploy::time::{ago, now};

pub(crate) fn run(ctx: &Context, args: &StatusArgs) -> Result<()> {
    let ledger = ctx.ledger()?;
    if let Some(path) = &args.prometheus {
        let text = metrics::render(metrics::gather(&ledger, &ctx.config, now())?)?;
        return match path.to_str() {
            Some("-") => output::print(&text),
            _ => metrics::write_textfile(path, &text),
        };
    }
    if args.check {
        let check = status::check(&ledger, &ctx.config, args.max_age, now())?;
        if check.problems.is_empty() {
            let age = check.last_ok_age.unwrap_or_default();
            let fresh = if freshness::watches(&ctx.config).is_empty() { "" } else { ", every watch fresh" };
            return output::print(&format!("OK: last successful sync {age}, no dead deliveries{fresh}\n"));
        }
        let text: String = check.problems.iter().map(|p| format!("CRITICAL: {p}\n")).collect();
        output::print(&text)?;
        return Err(Error::CheckFailed(format!("status check failed: {} problem(s)", check.problems.len())));
    }
    let status = status::gather(&ledger, &ctx.config, now())?;
    if args.json {
        return output::print_json(&status);
    }

    let now = now();
    let describe = |run: &Option<RunView>| match run {
        None => "never".to_string(),
        Some(r) => {
            let mut s =
                format!("{} ({}): sent {}, failed {}", r.finished_at, ago(r.finished_at_unix, now), r.sent, r.failed);
            if let Some(e) = &r.error {
                s.push_str(&format!(", error: {e}"));
            }
            s
        }
    };
    let (totals, last) = (&status.totals, &status.last_sync);
    let mut out = String::new();
    out.push_str(&format!("Ledger:               {}\n", status.ledger));
    out.push_str(&format!("Last sync:            {}\n", describe(last)));
    if last.as_ref().is_some_and(|r| r.error.is_some()) {
        out.push_str(&format!("Last successful sync: {}\n", describe(&status.last_successful_sync)));
    }
    let packed = if totals.packed > 0 { format!(" ({} of them in packs)", totals.packed) } else { String::new() };
    out.push_str(&format!(
        "Delivered:            {} objects, {}{packed}\n",
        totals.sent,
        human_size(totals.sent_bytes)
    ));
    out.push_str(&format!(
        "Pending: {}   In flight: {}   Failed (waiting for retry): {}   Dead: {}   Skipped: {}\n",
        totals.pending, totals.sending, totals.failed, totals.dead, totals.skipped
    ));
    if !status.buckets.is_empty() {
        let mut t =
            output::table(&["Bucket", "Enabled", "Delivered", "Bytes", "Pending", "Failed", "Dead", "Last listed"]);
        for b in &status.buckets {
            t.add_row(vec![
                b.name.clone(),
                if b.enabled { "yes".into() } else { "no".into() },
                b.counts.sent.to_string(),
                human_size(b.counts.sent_bytes),
                b.counts.waiting().to_string(),
                b.counts.failed.to_string(),
                b.counts.dead.to_string(),
                match (&b.last_error, b.last_listed_unix) {
                    (Some(_), _) => "error".to_string(),
                    (None, Some(t)) => ago(t, now),
                    (None, None) => "never".to_string(),
                },
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    if !status.failures.is_empty() {
        let mut t = output::table(&["Id", "Object", "State", "Attempts", "Next attempt", "Last error"]);
        for f in &status.failures {
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
    if !status.watches.is_empty() {
        let mut t = output::table(&["Watch", "Newest object", "Age", "State"]);
        for w in &status.watches {
            t.add_row(vec![
                format!("{}/{}", w.bucket, w.prefix),
                w.newest_key.clone().unwrap_or_else(|| "none".into()),
                w.describe(),
                if w.overdue { "OVERDUE".into() } else { "fresh".into() },
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    if status.unsent_alerts > 0 {
        out.push_str(&format!(
            "{} alert(s) wait to be sent to the admin chat (telegram.admin_chat_id)\n",
            status.unsent_alerts
        ));
    }
    output::print(&out)
}
