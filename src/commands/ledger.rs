//! `ledger` subcommands: a snapshot of the ledger for the admin chat.

use std::sync::Arc;

use crate::cli::LedgerCommand;
use crate::commands::Context;
use tgploy::error::Result;
use tgploy::output;
use tgploy::snapshot;

pub(crate) async fn run(ctx: &Context, cmd: &LedgerCommand) -> Result<()> {
    match cmd {
        LedgerCommand::Backup => {
            let ledger = Arc::new(ctx.ledger()?);
            let sent = snapshot::backup(&ctx.config, &ledger).await?;
            output::print(&format!(
                "ledger snapshot {} sent to the admin chat (message {})\n",
                sent.file_name, sent.message_id
            ))
        }
    }
}
