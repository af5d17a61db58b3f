//! Ledger snapshots for the admin chat: the ledger holds every part's Telegram file id,
//! so with a snapshot kept off the server, `restore` still works after losing it.

use std::sync::Arc;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::sink::TelegramSink;
use crate::sink::html::escape_html;
use crate::time::{now, rfc3339};

/// A snapshot Telegram accepted.
#[derive(Debug, Clone)]
pub struct SentSnapshot {
    /// The snapshot's file name in Telegram.
    pub file_name: String,
    /// The message holding it.
    pub message_id: i64,
}

/// `tgploy ledger backup`: a snapshot to the admin chat, now.
pub async fn backup(cfg: &Config, ledger: &Arc<Ledger>) -> Result<SentSnapshot> {
    let settings = cfg.require_admin_chat("the ledger snapshot")?;
    let sink = TelegramSink::new(&settings)?;
    send(ledger, cfg, &sink).await
}

/// Takes a consistent snapshot (`VACUUM INTO`), encrypts it when `[encryption]` is
/// configured, and sends it to the admin chat.
pub(crate) async fn send(ledger: &Arc<Ledger>, cfg: &Config, sink: &TelegramSink) -> Result<SentSnapshot> {
    let tmp = crate::private_files::temp_dir(cfg.tmp_dir.as_deref())?;
    let plain = tmp.path().join("ledger.sqlite3");
    let dest = plain.clone();
    Ledger::blocking(ledger, move |l| l.snapshot(&dest)).await?;
    let stamp = rfc3339(now()).replace(':', "");
    let (path, file_name) = match &cfg.encryption {
        None => (plain, format!("tgploy-ledger-{stamp}.sqlite3")),
        Some(enc) => {
            let sealed = tmp.path().join("ledger.sqlite3.age");
            encrypt_file(enc, &plain, &sealed)
                .map_err(|e| Error::failed(format!("cannot encrypt the ledger snapshot: {e}")))?;
            (sealed, format!("tgploy-ledger-{stamp}.sqlite3{}", crate::crypt::SUFFIX))
        }
    };
    let caption = format!(
        "<b>tgploy ledger snapshot</b>\n{}\nEvery delivered part's file id. After losing the server: download it, \
         set <code>DATABASE_PATH</code> to it{}, then <code>tgploy restore BUCKET/KEY</code>.",
        escape_html(&rfc3339(now())),
        if cfg.encryption.is_some() { " (decrypt it first with <code>age -d -i KEY</code>)" } else { "" }
    );
    let sent = sink.send_file_to_admin(&path, &file_name, &caption).await?;
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
