//! `sync` subcommand: deliver every new object version of the enabled buckets.

use std::io::IsTerminal;

use crate::cli::SyncArgs;
use crate::commands::Context;
use tgploy::error::Result;
use tgploy::output;
use tgploy::shutdown::Shutdown;
use tgploy::sizes::human_size;
use tgploy::sync::{self, SyncOptions, SyncReport};

pub(crate) async fn run(ctx: &Context, args: &SyncArgs) -> Result<()> {
    let (ledger, _lock) =
        if args.dry_run { (ctx.ledger_for_dry_run()?, None) } else { ctx.locked_ledger(tgploy::run::RunKind::Sync)? };
    let ledger = std::sync::Arc::new(ledger);
    let shutdown = Shutdown::new();
    shutdown.listen();
    let opts =
        SyncOptions { buckets: args.buckets.clone(), dry_run: args.dry_run, progress: std::io::stderr().is_terminal() };
    let report = sync::sync(&ctx.config, &ledger, &opts, &shutdown).await?;
    if args.json {
        output::print_json(&report)?;
    } else {
        output::print(&render(&report))?;
    }
    report.verdict()
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
    for w in r.watches.iter().filter(|w| w.overdue) {
        out.push_str(&format!("overdue: {}\n", w.problem()));
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
    out.push_str(&r.deliveries.render());
    out
}
