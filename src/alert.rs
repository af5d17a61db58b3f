//! Admin alerts: queued in the ledger, sent to the admin chat when Telegram answers.
//!
//! Nothing fails silently: a delivery going dead, a run that cannot reach S3 or Telegram,
//! a bucket that cannot be listed. The same subject alerts at most once per
//! `alert_interval`; what was held back is counted in the next alert. While Telegram is
//! down, alerts wait in the ledger and go out with the next run that reaches it.

use std::sync::Arc;

use crate::config::Config;
use crate::error::Result;
use crate::ledger::{Delivery, Ledger};
use crate::sink::TelegramSink;
use crate::sink::html::escape_html;
use crate::time::{now, rfc3339};

/// What an alert is about; alerts about the same subject are rate-limited together.
pub(crate) enum Subject<'a> {
    Dead(&'a Delivery),
    Unreachable(&'a str),
    Bucket(&'a str),
    /// `verify` found a delivered object that no longer checks out (`bucket/key`).
    Verify(&'a str),
    /// A freshness watch (`bucket/prefix`) is overdue: no new backup arrived in time.
    Stale(&'a str),
    /// An overdue watch (`bucket/prefix`) got a new backup.
    Fresh(&'a str),
}

/// Queues an alert and logs it.
pub(crate) fn raise(ledger: &Ledger, cfg: &Config, subject: Subject<'_>, error: &str) -> Result<()> {
    let (key, text) = match subject {
        Subject::Dead(d) => (
            format!("dead:{}", d.id),
            format!(
                "tgploy: delivery is dead\n{}/{} (ETag {}) failed {} times and will not be retried on its own.\n\
                 Last error: {error}\nFix the cause, then run `tgploy retry --dead`.",
                d.object.bucket, d.object.key, d.object.etag, d.attempts
            ),
        ),
        Subject::Unreachable(service) => (
            format!("unreachable:{service}"),
            format!("tgploy: a run could not reach {service}\n{error}\nNothing is lost: the next run tries again."),
        ),
        Subject::Bucket(name) => (
            format!("bucket:{name}"),
            format!(
                "tgploy: cannot list bucket {name}\n{error}\nIts new objects are not delivered until it can be listed."
            ),
        ),
        Subject::Verify(object) => (
            format!("verify:{object}"),
            format!(
                "tgploy: restore drill failed for {object}\n{error}\nThe copy in Telegram cannot be restored as it is: \
                 send it again (a new version of the object), or keep the original safe."
            ),
        ),
        Subject::Stale(place) => (
            format!("stale:{place}"),
            format!(
                "tgploy: {error}\nThe job that writes these backups may have stopped: check it. tgploy says so \
                 again each `alert_interval` while nothing new arrives."
            ),
        ),
        Subject::Fresh(place) => (format!("fresh:{place}"), format!("tgploy: {error}")),
    };
    tracing::warn!("alert: {}", text.replace('\n', " "));
    ledger.raise_alert(&key, &text, cfg.alert_interval, now())?;
    Ok(())
}

/// Sends queued alerts to the admin chat, oldest first; stops at the first failure (they
/// stay queued). Returns how many were sent.
pub(crate) async fn flush(ledger: &Arc<Ledger>, sink: &TelegramSink) -> Result<usize> {
    let mut sent = 0;
    for (id, text, created_at) in Ledger::blocking(ledger, |l| l.unsent_alerts()).await? {
        let html = format!("⚠️ {}\n<i>raised {}</i>", escape_html(&text), rfc3339(created_at));
        match sink.send_admin_text(&html).await {
            Ok(_) => {
                Ledger::blocking(ledger, move |l| l.alert_sent(id, now())).await?;
                sent += 1;
            }
            Err(e) => {
                let error = e.to_string();
                Ledger::blocking(ledger, move |l| l.alert_failed(id, &error)).await?;
                tracing::warn!("cannot send alerts to the admin chat yet: {e}");
                break;
            }
        }
    }
    Ok(sent)
}

/// Flushes queued alerts if an admin chat is configured and Telegram settings are valid;
/// never fails the run that calls it.
pub(crate) async fn flush_if_possible(ledger: &Arc<Ledger>, cfg: &Config) {
    let pending = match Ledger::blocking(ledger, |l| l.unsent_alerts()).await {
        Ok(p) => p.len(),
        Err(_) => return,
    };
    if pending == 0 {
        return;
    }
    if cfg.admin_chat.is_none() {
        tracing::warn!(
            "{pending} alert(s) wait in the ledger: set `telegram.admin_chat_id` (TELEGRAM_ADMIN_CHAT_ID) to receive them"
        );
        return;
    }
    let sink = match cfg.require_telegram().and_then(|s| Ok(TelegramSink::new(&s)?)) {
        Ok(sink) => sink,
        Err(_) => return,
    };
    if let Err(e) = flush(ledger, &sink).await {
        tracing::warn!("cannot send alerts: {e}");
    }
}
