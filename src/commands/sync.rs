//! `sync` subcommand: deliver every new object version of the enabled buckets.

use std::io::IsTerminal;

use crate::cli::SyncArgs;
use crate::commands::Context;
use crate::config::human_size;
use crate::deliver::DeliveryReport;
use crate::error::{Error, Result};
use crate::output;
use crate::shutdown::Shutdown;
use crate::sync::{self, SyncOptions, SyncReport};

pub async fn run(ctx: &Context, args: &SyncArgs) -> Result<()> {
    let (ledger, _lock) = if args.dry_run { (ctx.ledger_for_dry_run()?, None) } else { ctx.locked_ledger("sync")? };
    let ledger = std::sync::Arc::new(ledger);
    let shutdown = Shutdown::new();
    shutdown.listen();
    let opts =
        SyncOptions { buckets: args.buckets.clone(), dry_run: args.dry_run, progress: std::io::stderr().is_terminal() };
    let report = sync::run(&ctx.config, &ledger, &opts, &shutdown).await?;
    if args.json {
        output::print_json(&report)?;
    } else {
        output::print(&render(&report))?;
    }
    let listing_errors = report.buckets.iter().filter(|b| b.error.is_some()).count();
    outcome(&report.deliveries, listing_errors)
}

/// The exit status a report calls for: interrupted, stopped (a service went away),
/// failures, or success.
pub(super) fn outcome(r: &DeliveryReport, listing_errors: usize) -> Result<()> {
    if let Some(signal) = &r.interrupted {
        return Err(Error::Interrupted { signal: if signal == "SIGINT" { "SIGINT" } else { "SIGTERM" } });
    }
    if let Some(stopped) = &r.stopped {
        return Err(Error::ServiceLost(stopped.clone()));
    }
    let failed = r.failed.len();
    if failed == 0 && listing_errors == 0 {
        return Ok(());
    }
    let dead = r.failed.iter().filter(|f| f.dead).count();
    let mut parts = Vec::new();
    if failed > 0 {
        parts.push(format!("{failed} deliveries failed (recorded for `tgploy retry`)"));
    }
    if dead > 0 {
        parts.push(format!("{dead} of them are now dead (see `tgploy status`)"));
    }
    if listing_errors > 0 {
        parts.push(format!("{listing_errors} bucket(s) could not be listed"));
    }
    Err(Error::DeliveriesFailed(parts.join("; ")))
}

/// The text summary of deliveries, shared with `retry`.
pub(super) fn render_deliveries(r: &DeliveryReport) -> String {
    let mut out = format!("sent {} objects ({} in {} documents)\n", r.sent, human_size(r.sent_bytes), r.parts);
    if !r.failed.is_empty() {
        out.push_str(&format!("{} failed (recorded for `tgploy retry`):\n", r.failed.len()));
        for f in &r.failed {
            let dead = if f.dead { " [dead: no more automatic retries]" } else { "" };
            out.push_str(&format!("  #{} {}/{}: {}{dead}\n", f.id, f.bucket, f.key, f.error));
        }
    }
    if r.vanished > 0 {
        out.push_str(&format!(
            "{} object versions vanished from S3 before delivery (recorded as skipped)\n",
            r.vanished
        ));
    }
    if r.waiting_for_retry > 0 {
        out.push_str(&format!("{} failed deliveries are waiting for `tgploy retry`\n", r.waiting_for_retry));
    }
    if r.dead > 0 {
        out.push_str(&format!("{} dead deliveries need attention (`tgploy status`, `tgploy retry --dead`)\n", r.dead));
    }
    if let Some(s) = &r.stopped {
        out.push_str(&format!("{s}\n"));
    }
    if let Some(s) = &r.interrupted {
        out.push_str(&format!("stopped by {s}; the next run resumes\n"));
    }
    out
}

fn render(r: &SyncReport) -> String {
    let mut out = String::new();
    for b in &r.buckets {
        match &b.error {
            Some(e) => out.push_str(&format!("bucket {}: cannot list: {e}\n", b.name)),
            None => out.push_str(&format!("bucket {}: {} objects, {} new\n", b.name, b.objects, b.new_versions)),
        }
    }
    if r.buckets.is_empty() {
        out.push_str("no enabled buckets\n");
    }
    if let Some(items) = &r.would_send {
        if !items.is_empty() {
            let mut t = output::table(&["Bucket", "Key", "Size"]);
            for i in items {
                t.add_row(vec![i.bucket.clone(), i.key.clone(), human_size(i.size)]);
            }
            out.push_str(&format!("{t}\n"));
        }
        let bytes: u64 = items.iter().map(|i| i.size).sum();
        out.push_str(&format!("dry run: would send {} objects ({})\n", items.len(), human_size(bytes)));
        return out;
    }
    out.push_str(&render_deliveries(&r.deliveries));
    out
}
