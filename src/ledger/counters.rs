//! Counters of what runs and servers did (Telegram's answers, webhook requests, ...):
//! each process adds what it counted ([`crate::metrics`]), so that the figures of every
//! process are in one place and any of them can show them.

use rusqlite::params;

use super::Ledger;
use crate::error::Result;

/// One counter: its name, its labels (name, value) and its value.
pub(crate) type Counter = (String, Vec<(String, String)>, f64);

impl Ledger {
    /// Adds to counters, in one transaction.
    pub(crate) fn add_to_counters(&self, increments: &[Counter]) -> Result<()> {
        if increments.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO counters (name, labels, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value",
            )?;
            for (name, labels, by) in increments {
                let labels = serde_json::to_string(labels).unwrap_or_else(|_| "[]".into());
                stmt.execute(params![name, labels, by])?;
            }
            Ok(())
        })
    }

    /// Every counter, by name and labels.
    pub(crate) fn counters(&self) -> Result<Vec<Counter>> {
        let rows: Vec<(String, String, f64)> = self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached("SELECT name, labels, value FROM counters ORDER BY name, labels")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect()
        })?;
        Ok(rows
            .into_iter()
            .map(|(name, labels, value)| (name, serde_json::from_str(&labels).unwrap_or_default(), value))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_add_up_per_name_and_labels() {
        let l = Ledger::in_memory().unwrap();
        let answers = |class: &str, by| ("answers".to_string(), vec![("class".to_string(), class.to_string())], by);
        l.add_to_counters(&[answers("ok", 2.0), answers("429", 1.0)]).unwrap();
        l.add_to_counters(&[answers("ok", 3.0)]).unwrap();
        assert_eq!(l.counters().unwrap(), [answers("429", 1.0), answers("ok", 5.0)]);
    }
}
