//! `retry` subcommand: deliver failed deliveries whose next attempt is due.

use std::io::IsTerminal;

use crate::cli::RetryArgs;
use crate::commands::Context;
use tgploy::error::Result;
use tgploy::output;
use tgploy::retry::{self, RetryOptions};
use tgploy::shutdown::Shutdown;

pub(crate) async fn run(ctx: &Context, args: &RetryArgs) -> Result<()> {
    let (ledger, _lock) = ctx.locked_ledger(tgploy::run::RunKind::Retry)?;
    let ledger = std::sync::Arc::new(ledger);
    let shutdown = Shutdown::new();
    shutdown.listen();
    let opts = RetryOptions {
        ignore_schedule: args.now,
        ids: args.ids.clone(),
        revive_dead: args.dead,
        progress: std::io::stderr().is_terminal(),
    };
    let report = retry::retry(&ctx.config, &ledger, &opts, &shutdown).await?;
    if args.json {
        output::print_json(&report)?;
    } else {
        let mut text = String::new();
        if report.revived > 0 {
            text.push_str(&format!("revived {} dead deliveries\n", report.revived));
        }
        if report.attempted == 0 {
            text.push_str("no failed delivery is due\n");
        }
        text.push_str(&report.deliveries.render());
        output::print(&text)?;
    }
    report.deliveries.verdict(0)
}
