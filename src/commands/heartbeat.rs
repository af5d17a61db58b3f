//! `heartbeat` subcommand: the daily summary for the admin chat.

use crate::alert;
use crate::cli::HeartbeatArgs;
use crate::commands::Context;
use crate::error::{Error, Result};
use crate::heartbeat;
use crate::ledger::Run;
use crate::output;
use crate::sink::{Chat, TelegramSink};
use crate::snapshot;
use crate::time::now;

pub async fn run(ctx: &Context, args: &HeartbeatArgs) -> Result<()> {
    let ledger = ctx.ledger()?;
    let started = now();
    let beat = heartbeat::gather(&ledger, started)?;
    if args.json {
        output::print_json(&beat)?;
    } else if args.dry_run {
        output::print(&format!("{}\n", beat.text()))?;
    }
    if args.dry_run {
        return Ok(());
    }
    let settings = ctx.config.require_telegram()?;
    if settings.admin_chat.is_none() {
        return Err(Error::config(
            "missing Telegram admin chat for the heartbeat: set `telegram.admin_chat_id` in the config file or TELEGRAM_ADMIN_CHAT_ID",
        ));
    }
    let sink = TelegramSink::new(&settings)?;
    // Alerts that waited for Telegram go out before the summary that counts them.
    let ledger = std::sync::Arc::new(ledger);
    alert::flush(&ledger, &sink).await?;
    sink.send_text(Chat::Admin, &heartbeat::gather(&ledger, now())?.html()).await?;
    // The daily copy of the ledger: file ids survive the loss of the server.
    let snapshot = if ctx.config.heartbeat_ledger_backup {
        Some(snapshot::send(&ledger, &ctx.config, &sink).await?)
    } else {
        None
    };
    ledger.record_run(&Run {
        kind: "heartbeat".into(),
        started_at: started,
        finished_at: now(),
        sent: 1,
        failed: 0,
        bytes: 0,
        error: None,
    })?;
    if !args.json {
        output::print("heartbeat sent to the admin chat\n")?;
        if let Some(s) = snapshot {
            output::print(&format!("ledger snapshot {} sent to the admin chat\n", s.file_name))?;
        }
    }
    Ok(())
}
