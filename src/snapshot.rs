//! Ledger snapshots for the admin chat: the ledger holds every part's Telegram file id,
//! so with a snapshot kept off the server, `restore` still works after losing it.

use crate::config::{Config, TelegramSettings};
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::sink::caption::escape_html;
use crate::sink::{Chat, TelegramSink};
use crate::time::{now, rfc3339};

/// A snapshot Telegram accepted.
#[derive(Debug, Clone)]
pub struct SentSnapshot {
    pub file_name: String,
    pub message_id: i64,
}

/// The Telegram settings, with the admin chat the snapshot goes to.
pub fn require_admin(cfg: &Config) -> Result<TelegramSettings> {
    let settings = cfg.require_telegram()?;
    if settings.admin_chat.is_none() {
        return Err(Error::config(
            "missing Telegram admin chat for the ledger snapshot: set `telegram.admin_chat_id` in the config file or \
             TELEGRAM_ADMIN_CHAT_ID",
        ));
    }
    Ok(settings)
}

/// Takes a consistent snapshot (`VACUUM INTO`), encrypts it when `[encryption]` is
/// configured, and sends it to the admin chat.
pub async fn send(ledger: &Ledger, cfg: &Config, sink: &TelegramSink) -> Result<SentSnapshot> {
    let tmp = crate::deliver::engine::private_tmp_dir(cfg)?;
    let plain = tmp.path().join("ledger.sqlite3");
    ledger.snapshot(&plain)?;
    let stamp = rfc3339(now()).replace(':', "");
    let (path, file_name) = match &cfg.encryption {
        None => (plain, format!("tgploy-ledger-{stamp}.sqlite3")),
        Some(enc) => {
            let sealed = tmp.path().join("ledger.sqlite3.age");
            encrypt_file(enc, &plain, &sealed)
                .map_err(|e| Error::Other(anyhow::anyhow!("cannot encrypt the ledger snapshot: {e}")))?;
            (sealed, format!("tgploy-ledger-{stamp}.sqlite3{}", crate::crypt::SUFFIX))
        }
    };
    let caption = format!(
        "<b>tgploy ledger snapshot</b>\n{}\nEvery delivered part's file id. After losing the server: download it, \
         set <code>DATABASE_PATH</code> to it{}, then <code>tgploy restore BUCKET/KEY</code>.",
        escape_html(&rfc3339(now())),
        if cfg.encryption.is_some() { " (decrypt it first with <code>age -d -i KEY</code>)" } else { "" }
    );
    let sent = sink.send_file_to(Chat::Admin, &path, &file_name, &caption).await?;
    tracing::info!("ledger snapshot {file_name} sent to the admin chat");
    Ok(SentSnapshot { file_name, message_id: sent.message_id })
}

fn encrypt_file(enc: &crate::crypt::Encryption, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    let mut input = std::fs::File::open(from)?;
    let mut writer = enc.wrap(std::io::BufWriter::new(std::fs::File::create(to)?))?;
    std::io::copy(&mut input, &mut writer)?;
    let mut out = writer.finish()?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}
