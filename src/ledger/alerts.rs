//! The alert outbox (`alerts`) and its rate limit per subject (`alert_subjects`):
//! alerts wait here while Telegram is down and go out with the next run that reaches it
//! ([`crate::alert`] decides what to say).

use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::Ledger;
use super::model::Alert;
use crate::error::Result;

impl Ledger {
    /// Queues an alert for the admin chat, unless one about the same subject was queued
    /// within `interval`; held-back alerts are counted and mentioned in the next one.
    /// Returns whether it was queued.
    pub(crate) fn raise_alert(&self, subject: &str, text: &str, interval: Duration, now: i64) -> Result<bool> {
        self.write(|tx| {
            let previous: Option<(i64, u64)> = tx
                .query_row("SELECT last_raised_at, suppressed FROM alert_subjects WHERE subject = ?1", [subject], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((last, _)) = previous
                && now - last < interval.as_secs() as i64
            {
                tx.execute("UPDATE alert_subjects SET suppressed = suppressed + 1 WHERE subject = ?1", [subject])?;
                return Ok(false);
            }
            let held_back = previous.map(|p| p.1).unwrap_or(0);
            let text = if held_back > 0 {
                format!("{text}\n({held_back} more like this held back since the last alert)")
            } else {
                text.to_string()
            };
            tx.execute(
                "INSERT INTO alerts (subject, text, created_at) VALUES (?1, ?2, ?3)",
                params![subject, text, now],
            )?;
            tx.execute(
                "INSERT INTO alert_subjects (subject, last_raised_at, suppressed) VALUES (?1, ?2, 0)
                 ON CONFLICT (subject) DO UPDATE SET last_raised_at = excluded.last_raised_at, suppressed = 0",
                params![subject, now],
            )?;
            Ok(true)
        })
    }

    /// Alerts not yet sent, oldest first: (id, text, created_at).
    pub(crate) fn unsent_alerts(&self) -> Result<Vec<(i64, String, i64)>> {
        self.with_conn(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id, text, created_at FROM alerts WHERE sent_at IS NULL ORDER BY id")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect()
        })
    }

    /// How many alerts wait to be sent.
    pub(crate) fn unsent_alert_count(&self) -> Result<u64> {
        self.with_conn(|conn| conn.query_row("SELECT COUNT(*) FROM alerts WHERE sent_at IS NULL", [], |r| r.get(0)))
    }

    pub(crate) fn alert_sent(&self, id: i64, now: i64) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE alerts SET sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
                params![id, now],
            )
        })?;
        Ok(())
    }

    pub(crate) fn alert_failed(&self, id: i64, error: &str) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute("UPDATE alerts SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1", params![id, error])
        })?;
        Ok(())
    }

    /// The latest `limit` alerts, sent or waiting, newest first.
    pub(crate) fn recent_alerts(&self, limit: u32) -> Result<Vec<Alert>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, subject, text, created_at, sent_at, attempts, last_error FROM alerts
                 ORDER BY id DESC LIMIT ?1",
            )?;
            stmt.query_map([limit], |r| {
                Ok(Alert {
                    id: r.get(0)?,
                    subject: r.get(1)?,
                    text: r.get(2)?,
                    created_at: r.get(3)?,
                    sent_at: r.get(4)?,
                    attempts: r.get(5)?,
                    last_error: r.get(6)?,
                })
            })?
            .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_are_rate_limited_per_subject_and_count_what_was_held_back() {
        let l = Ledger::in_memory().unwrap();
        let hour = Duration::from_secs(3600);
        assert!(l.raise_alert("s3", "down", hour, 0).unwrap());
        assert!(!l.raise_alert("s3", "down", hour, 10).unwrap());
        assert!(!l.raise_alert("s3", "down", hour, 20).unwrap());
        assert!(l.raise_alert("bucket:x", "cannot list", hour, 30).unwrap());
        assert!(l.raise_alert("s3", "down", hour, 3600).unwrap());
        let texts: Vec<String> = l.unsent_alerts().unwrap().into_iter().map(|a| a.1).collect();
        assert_eq!(texts.len(), 3);
        assert!(texts[2].contains("2 more like this held back"), "{}", texts[2]);
        let first = l.unsent_alerts().unwrap()[0].0;
        l.alert_sent(first, 4000).unwrap();
        assert_eq!(l.unsent_alerts().unwrap().len(), 2);
    }
}
