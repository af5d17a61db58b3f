//! The `runs` table: one row per finished run of every kind (`sync`, `retry`,
//! `heartbeat`, `verify`, the webhook server's delivery batches), written only by the
//! run owner ([`crate::run`]), read by `status`, the heartbeat and the dashboard.

use rusqlite::{OptionalExtension, params};

use super::Ledger;
use super::model::{RunRecord, run_from_row};
use crate::error::Result;

impl Ledger {
    /// Records a finished run.
    pub fn record_run(&self, run: &RunRecord) -> Result<()> {
        self.read(|conn| {
            conn.execute(
                "INSERT INTO runs (kind, started_at, finished_at, sent, failed, bytes, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![run.kind, run.started_at, run.finished_at, run.sent, run.failed, run.bytes, run.error],
            )
        })?;
        Ok(())
    }

    /// The latest run of a kind, and the latest one that ended without an error.
    pub fn last_runs(&self, kind: &str) -> Result<(Option<RunRecord>, Option<RunRecord>)> {
        self.read(|conn| {
            let query = |extra: &str| {
                conn.query_row(
                    &format!(
                        "SELECT kind, started_at, finished_at, sent, failed, bytes, error FROM runs
                         WHERE kind = ?1 {extra} ORDER BY finished_at DESC, id DESC LIMIT 1"
                    ),
                    [kind],
                    |r| run_from_row(r, 0),
                )
                .optional()
            };
            Ok((query("")?, query("AND error IS NULL")?))
        })
    }

    /// Runs of every kind, newest first: `limit` of them before the run `before_id`.
    pub fn recent_runs(&self, before_id: Option<i64>, limit: u32) -> Result<Vec<(i64, RunRecord)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, kind, started_at, finished_at, sent, failed, bytes, error FROM runs
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            stmt.query_map(params![before_id.unwrap_or(i64::MAX), limit], |r| Ok((r.get(0)?, run_from_row(r, 1)?)))?
                .collect()
        })
    }
}
