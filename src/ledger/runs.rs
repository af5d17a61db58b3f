//! The `runs` table: one row per finished run of every kind (`sync`, `retry`,
//! `heartbeat`, `verify`, the webhook server's delivery batches), and `runs_under_way`:
//! one row per run from its start until its record replaces it. Both are written only by
//! the run owner ([`crate::run`]); `status`, the heartbeat and the dashboard read them.

use rusqlite::{OptionalExtension, params};

use super::Ledger;
use super::model::{RunRecord, RunUnderWay, run_from_row};
use crate::error::Result;

impl Ledger {
    /// Records a finished run and, in the same transaction, removes its row among the
    /// runs under way: a reader sees it either running or finished, never both.
    pub(crate) fn record_run_ending(&self, run: &RunRecord, under_way: Option<i64>) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO runs (kind, started_at, finished_at, sent, failed, bytes, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![run.kind, run.started_at, run.finished_at, run.sent, run.failed, run.bytes, run.error],
            )?;
            if let Some(id) = under_way {
                tx.execute("DELETE FROM runs_under_way WHERE id = ?1", [id])?;
            }
            Ok(())
        })
    }

    /// Notes a run that starts, by `owner` (a process identity); returns its row. Rows of
    /// owners that `is_dead` says no longer exist (runs killed before their end) go in
    /// the same transaction.
    pub(crate) fn start_run(
        &self,
        kind: &str,
        started_at: i64,
        owner: &str,
        is_dead: &dyn Fn(&str) -> bool,
    ) -> Result<i64> {
        self.write(|tx| {
            let owners: Vec<String> = {
                let mut stmt = tx.prepare_cached("SELECT DISTINCT owner FROM runs_under_way")?;
                stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
            };
            for dead in owners.iter().filter(|o| is_dead(o)) {
                tx.execute("DELETE FROM runs_under_way WHERE owner = ?1", [dead])?;
            }
            tx.execute(
                "INSERT INTO runs_under_way (kind, started_at, owner) VALUES (?1, ?2, ?3)",
                params![kind, started_at, owner],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// The runs under way, the newest first, at most `limit`.
    pub(crate) fn runs_under_way(&self, limit: u32) -> Result<Vec<RunUnderWay>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id, kind, started_at, owner FROM runs_under_way ORDER BY id DESC LIMIT ?1")?;
            stmt.query_map([limit], |r| {
                Ok(RunUnderWay { id: r.get(0)?, kind: r.get(1)?, started_at: r.get(2)?, owner: r.get(3)? })
            })?
            .collect()
        })
    }

    /// The latest run of a kind, and the latest one that ended without an error.
    pub(crate) fn last_runs(&self, kind: &str) -> Result<(Option<RunRecord>, Option<RunRecord>)> {
        self.with_conn(|conn| {
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
    pub(crate) fn recent_runs(&self, before_id: Option<i64>, limit: u32) -> Result<Vec<(i64, RunRecord)>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, kind, started_at, finished_at, sent, failed, bytes, error FROM runs
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            stmt.query_map(params![before_id.unwrap_or(i64::MAX), limit], |r| Ok((r.get(0)?, run_from_row(r, 1)?)))?
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(kind: &str, at: i64) -> RunRecord {
        RunRecord { kind: kind.into(), started_at: at, finished_at: at + 5, sent: 1, failed: 0, bytes: 10, error: None }
    }

    #[test]
    fn a_run_is_under_way_from_its_start_until_its_record_replaces_it() {
        let l = Ledger::in_memory().unwrap();
        let alive = |_: &str| false;
        let sync = l.start_run("sync", 100, "host/1/10/a", &alive).unwrap();
        let retry = l.start_run("retry", 101, "host/1/11/b", &alive).unwrap();
        let kinds: Vec<String> = l.runs_under_way(10).unwrap().into_iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["retry", "sync"], "the newest first");
        l.record_run_ending(&finished("sync", 100), Some(sync)).unwrap();
        let left = l.runs_under_way(10).unwrap();
        assert_eq!((left.len(), left[0].id), (1, retry));
        assert_eq!(l.recent_runs(None, 10).unwrap().len(), 1, "recorded as finished");

        // A run killed before its end leaves its row, until a run starts that can tell.
        let dead = |owner: &str| owner == "host/1/11/b";
        l.start_run("sync", 200, "host/1/12/c", &dead).unwrap();
        let left: Vec<String> = l.runs_under_way(10).unwrap().into_iter().map(|r| r.owner).collect();
        assert_eq!(left, ["host/1/12/c"]);
        assert_eq!(l.runs_under_way(0).unwrap().len(), 0, "at most the limit");
    }
}
