//! `setup --non-interactive`: every answer from flags and the environment, the same checks
//! as the wizard, the same file.

use std::path::Path;

use super::enrol::{enrol_unattended, ledger_for};
use super::prompt::Prompter;
use super::{Answers, Outcome, check_s3};
use crate::config::Secret;
use crate::config::file::write_private;
use crate::error::{Error, Result};
use crate::sink::TelegramSink;
use crate::source::{SourceError, explain};
use crate::totp;

/// `setup --non-interactive`: the same checks and the same file, every answer given.
pub(crate) async fn non_interactive(
    p: &mut dyn Prompter,
    mut a: Answers,
    target: &Path,
    force: bool,
    enrol_totp: bool,
) -> Result<Outcome> {
    if target.exists() && !force {
        return Err(Error::config(format!(
            "{} exists; pass --force to replace it (the old one is kept as a backup)",
            target.display()
        )));
    }
    let buckets = check_s3(&a).await.map_err(|e| {
        let why = format!("S3 check failed: {}", explain(&e).replace('\n', ""));
        // Nothing answered: exit 4, like any run that cannot reach S3; a refusal is the
        // settings' fault: exit 2.
        match e {
            SourceError::Unreachable { endpoint, .. } => {
                Error::Unreachable { service: crate::error::Service::S3, endpoint, reason: why }
            }
            _ => Error::config(why),
        }
    })?;
    p.say(&format!("✓ S3 answers; {} bucket(s)", buckets.len()));
    let sink = TelegramSink::for_setup(&a.bot_token, &a.api_url)?;
    let name = sink.check_bot(0).await?;
    p.say(&format!("✓ The bot is @{name}"));
    for token in &a.more_bot_tokens {
        let more = TelegramSink::for_setup(token, &a.api_url)?;
        let name = more.check_bot(0).await?;
        p.say(&format!("✓ Bot {} is @{name}", crate::sink::limits::bot_id(token.expose()).unwrap_or_default()));
    }
    let backup = a.backup_chat.clone().ok_or_else(|| {
        Error::config("missing the backup chat: pass --backup-chat-id or set TELEGRAM_BACKUP_CHAT_ID")
    })?;
    for (chat, what) in [(Some(&backup), "backups"), (a.admin_chat.as_ref(), "alerts and the daily heartbeat")] {
        let Some(chat) = chat else { continue };
        let text =
            format!("<b>tgploy</b>: this chat will receive {what}. (Test message from <code>tgploy setup</code>.)");
        sink.send_text_to(chat, &text).await?;
        p.say(&format!("✓ Test message sent to {chat}"));
    }
    if a.webhook_token.is_none() {
        let token = Secret::new(totp::random_token()?);
        p.say(&format!("Webhook token (stored in the config, shown only now): {}", token.expose()));
        a.webhook_token = Some(token);
    }
    write_private(target, &a.to_toml())?;
    p.say(&format!("Wrote {} (mode 0600)", target.display()));
    let enrolment = if enrol_totp {
        let ledger = ledger_for(&a)?;
        if totp::enrolled(&ledger)? {
            p.say("A second factor is already enrolled; `tgploy setup totp --reset` replaces it.");
            None
        } else {
            Some(enrol_unattended(p, &ledger)?)
        }
    } else {
        None
    };
    Ok(Outcome { enrolment })
}
