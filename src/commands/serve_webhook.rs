//! `serve-webhook` subcommand: receive bucket notifications, deliver in the background.

use std::sync::Arc;

use crate::cli::ServeWebhookArgs;
use crate::commands::Context;
use tgploy::error::Result;
use tgploy::webhook;

pub(crate) async fn run(ctx: &Context, args: &ServeWebhookArgs) -> Result<()> {
    let ledger = Arc::new(ctx.ledger()?);
    // The bound address on stderr, also when logs are quiet: with port 0 it is the only
    // way to learn the port.
    webhook::serve(&ctx.config, ledger, args.insecure_no_token, |local| {
        eprintln!("tgploy: serve-webhook listening on http://{local}")
    })
    .await?;
    eprintln!("tgploy: serve-webhook stopped");
    Ok(())
}
