//! The daily heartbeat: a summary for the admin chat, so that silence itself is noticed;
//! with `heartbeat.ledger_backup`, a snapshot of the ledger goes with it.

use std::sync::Arc;

use serde::Serialize;

use crate::alert;
use crate::config::Config;
use crate::error::Result;
use crate::freshness::{self, WatchStatus};
use crate::ledger::Ledger;
use crate::run::{Run, RunKind, Tallied, Tally};
use crate::sink::TelegramSink;
use crate::sink::html::escape_html;
use crate::sizes::human_size;
use crate::snapshot::{self, SentSnapshot};
use crate::time::{ago, now, rfc3339};

/// The daily heartbeat: the last 24 hours, the queues and the freshness watches, for the admin chat.
#[derive(Debug, Clone, Serialize)]
pub struct Heartbeat {
    pub(crate) since: String,
    pub(crate) delivered_24h: u64,
    pub(crate) delivered_bytes_24h: u64,
    pub(crate) buckets_enabled: u64,
    pub(crate) buckets_total: u64,
    pub(crate) failures_24h: u64,
    pub(crate) retry_queue: u64,
    pub(crate) dead: u64,
    pub(crate) pending: u64,
    pub(crate) last_backup: Option<String>,
    pub(crate) last_sync: Option<String>,
    pub(crate) last_sync_error: Option<String>,
    pub(crate) unsent_alerts: u64,
    /// The freshness watches (`expect_every`), with the age of the newest object of each.
    pub(crate) watches: Vec<WatchStatus>,
    #[serde(skip)]
    last_backup_at: Option<i64>,
    #[serde(skip)]
    now: i64,
}

/// Gathers the last 24 hours from the ledger, and the freshness watches.
pub fn gather(ledger: &Ledger, cfg: &Config, now: i64) -> Result<Heartbeat> {
    let since = now - 24 * 3600;
    let (delivered, bytes, last) = ledger.sent_since(since)?;
    let (counts, _) = ledger.counts()?;
    let buckets = ledger.buckets()?;
    let (last_sync, _) = ledger.last_runs(RunKind::Sync.as_str())?;
    Ok(Heartbeat {
        since: rfc3339(since),
        delivered_24h: delivered,
        delivered_bytes_24h: bytes,
        buckets_enabled: buckets.iter().filter(|b| b.enabled).count() as u64,
        buckets_total: buckets.len() as u64,
        failures_24h: ledger.failures_since(since)?,
        retry_queue: counts.failed,
        dead: counts.dead,
        pending: counts.waiting(),
        last_backup: last.map(rfc3339),
        last_sync: last_sync.as_ref().map(|r| rfc3339(r.finished_at)),
        last_sync_error: last_sync.and_then(|r| r.error),
        unsent_alerts: ledger.unsent_alert_count()?,
        watches: freshness::check(ledger, cfg, now)?,
        last_backup_at: last,
        now,
    })
}

impl Heartbeat {
    /// True when something needs a look.
    pub(crate) fn worrying(&self) -> bool {
        self.dead > 0
            || self.retry_queue > 0
            || self.last_sync_error.is_some()
            || self.watches.iter().any(|w| w.overdue)
    }

    /// The message as plain text.
    pub fn text(&self) -> String {
        let mut lines = vec![
            format!("tgploy heartbeat: {}", if self.worrying() { "needs attention" } else { "all well" }),
            format!(
                "Last 24 h: {} objects delivered ({}), {} failures",
                self.delivered_24h,
                human_size(self.delivered_bytes_24h),
                self.failures_24h
            ),
            format!("Buckets: {} enabled of {}", self.buckets_enabled, self.buckets_total),
            format!("Retry queue: {}   Dead: {}   Pending: {}", self.retry_queue, self.dead, self.pending),
            format!(
                "Last backup: {}",
                match (&self.last_backup, self.last_backup_at) {
                    (Some(t), Some(at)) => format!("{t} ({})", ago(at, self.now)),
                    _ => "never".to_string(),
                }
            ),
            format!("Last sync: {}", self.last_sync.clone().unwrap_or_else(|| "never".into())),
        ];
        if let Some(e) = &self.last_sync_error {
            lines.push(format!("Last sync error: {e}"));
        }
        for w in &self.watches {
            lines.push(match w.overdue {
                true => format!("OVERDUE: {}", w.problem()),
                false => format!("Fresh: {}/{}: newest {}", w.bucket, w.prefix, w.describe()),
            });
        }
        if self.dead > 0 {
            lines.push("Dead deliveries need you: see `tgploy status`, then `tgploy retry --dead`.".into());
        }
        lines.join("\n")
    }

    /// The message for Telegram (HTML).
    pub(crate) fn html(&self) -> String {
        let text = escape_html(&self.text());
        match text.split_once('\n') {
            Some((first, rest)) => format!("<b>{first}</b>\n{rest}"),
            None => text,
        }
    }
}

/// What sending the heartbeat did.
#[derive(Debug)]
pub struct Sent {
    /// The ledger snapshot sent with it, when `heartbeat.ledger_backup` is on.
    pub snapshot: Option<SentSnapshot>,
}

impl Tallied for Sent {
    fn tally(&self) -> Tally {
        Tally { done: 1, ..Tally::default() }
    }
}

/// Sends the heartbeat to the admin chat, as a run of its own: the alerts that waited
/// for Telegram first, then the summary that counts them, then the ledger snapshot when
/// configured.
pub async fn send(cfg: &Config, ledger: &Arc<Ledger>) -> Result<Sent> {
    Run::scope(RunKind::Heartbeat, cfg, ledger, async |_| {
        // Inside the run: a heartbeat that cannot go out for want of a setting is a failed
        // run on record, like a sync that cannot.
        let settings = cfg.require_admin_chat("the heartbeat")?;
        let sink = TelegramSink::new(&settings)?;
        alert::flush(ledger, &sink).await?;
        let owned = cfg.clone();
        let beat = Ledger::blocking(ledger, move |l| gather(l, &owned, now())).await?;
        sink.send_admin_text(&beat.html()).await?;
        // The daily copy of the ledger: file ids survive the loss of the server.
        let snapshot = match cfg.heartbeat_ledger_backup {
            true => Some(snapshot::send(ledger, cfg, &sink).await?),
            false => None,
        };
        Ok(Sent { snapshot })
    })
    .await
}
