//! `heartbeat` subcommand: the daily summary for the admin chat.

use std::sync::Arc;

use crate::cli::HeartbeatArgs;
use crate::commands::Context;
use tgploy::error::Result;
use tgploy::heartbeat;
use tgploy::ledger::Ledger;
use tgploy::output;
use tgploy::time::now;

pub(crate) async fn run(ctx: &Context, args: &HeartbeatArgs) -> Result<()> {
    let ledger = Arc::new(ctx.ledger()?);
    let cfg = ctx.config.clone();
    let beat = Ledger::blocking(&ledger, move |l| heartbeat::gather(l, &cfg, now())).await?;
    if args.json {
        output::print_json(&beat)?;
    } else if args.dry_run {
        output::print(&format!("{}\n", beat.text()))?;
    }
    if args.dry_run {
        return Ok(());
    }
    let sent = heartbeat::send(&ctx.config, &ledger).await?;
    if !args.json {
        output::print("heartbeat sent to the admin chat\n")?;
        if let Some(s) = sent.snapshot {
            output::print(&format!("ledger snapshot {} sent to the admin chat\n", s.file_name))?;
        }
    }
    Ok(())
}
