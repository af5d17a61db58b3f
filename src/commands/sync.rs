//! `sync` subcommand: deliver every new object version of the enabled buckets.

use std::io::IsTerminal;

use crate::cli::SyncArgs;
use crate::commands::Context;
use crate::config::human_size;
use crate::error::{Error, Result};
use crate::output;
use crate::sync::{self, SyncOptions, SyncReport};

pub async fn run(ctx: &Context, args: &SyncArgs) -> Result<()> {
    let ledger = if args.dry_run { ctx.ledger_for_dry_run()? } else { ctx.ledger()? };
    let opts =
        SyncOptions { buckets: args.buckets.clone(), dry_run: args.dry_run, progress: std::io::stderr().is_terminal() };
    let report = sync::run(&ctx.config, &ledger, &opts).await?;
    if args.json {
        output::print_json(&report)?;
    } else {
        output::print(&render(&report))?;
    }
    if let Some(stopped) = &report.stopped {
        return Err(Error::ServiceLost(stopped.clone()));
    }
    if report.has_failures() {
        let failed = report.failed.len();
        let buckets = report.buckets.iter().filter(|b| b.error.is_some()).count();
        return Err(Error::DeliveriesFailed(match (failed, buckets) {
            (0, b) => format!("{b} bucket(s) could not be listed"),
            (f, 0) => format!("{f} deliveries failed; they are recorded for `tgploy retry`"),
            (f, b) => {
                format!("{f} deliveries failed (recorded for `tgploy retry`) and {b} bucket(s) could not be listed")
            }
        }));
    }
    Ok(())
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
    out.push_str(&format!("sent {} objects ({} in {} documents)\n", r.sent, human_size(r.sent_bytes), r.parts));
    if !r.failed.is_empty() {
        out.push_str(&format!("{} failed (recorded for `tgploy retry`):\n", r.failed.len()));
        for f in &r.failed {
            out.push_str(&format!("  {}/{}: {}\n", f.bucket, f.key, f.error));
        }
    }
    if r.waiting_for_retry > 0 {
        out.push_str(&format!("{} failed deliveries are waiting for `tgploy retry`\n", r.waiting_for_retry));
    }
    if let Some(s) = &r.stopped {
        out.push_str(&format!("{s}\n"));
    }
    out
}
