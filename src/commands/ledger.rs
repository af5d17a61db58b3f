//! `ledger` subcommands: a snapshot of the ledger for the admin chat.

use crate::cli::LedgerCommand;
use crate::commands::Context;
use crate::error::Result;
use crate::output;
use crate::sink::TelegramSink;
use crate::snapshot;

pub async fn run(ctx: &Context, cmd: &LedgerCommand) -> Result<()> {
    match cmd {
        LedgerCommand::Backup => {
            let settings = snapshot::require_admin(&ctx.config)?;
            let ledger = ctx.ledger()?;
            let sink = TelegramSink::new(&settings)?;
            let sent = snapshot::send(&ledger, &ctx.config, &sink).await?;
            output::print(&format!(
                "ledger snapshot {} sent to the admin chat (message {})\n",
                sent.file_name, sent.message_id
            ))
        }
    }
}
