//! `dashboard` subcommand: serve the web dashboard until SIGTERM or SIGINT.

use std::sync::Arc;

use crate::cli::DashboardArgs;
use crate::commands::Context;
use tgploy::dashboard;
use tgploy::error::Result;

pub(crate) async fn run(ctx: &Context, _args: &DashboardArgs) -> Result<()> {
    let ledger = Arc::new(ctx.ledger()?);
    // The bound address on stderr, also when logs are quiet: with port 0 it is the only
    // way to learn the port.
    dashboard::serve(&ctx.config, ledger, |local| eprintln!("tgploy: dashboard listening on http://{local}")).await?;
    eprintln!("tgploy: dashboard stopped");
    Ok(())
}
