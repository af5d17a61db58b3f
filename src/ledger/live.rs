//! What the live dashboard follows: whether anything was committed since it last looked
//! ([`Changes`], `PRAGMA data_version` on a connection of its own), the deliveries in
//! flight with their parts so far, and the last days hour by hour. Nothing here writes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rusqlite::{Connection, OpenFlags, params};

use super::Ledger;
use super::model::{HourActivity, InFlight};
use crate::error::{Error, Result};

/// The run kinds whose `failed` counts deliveries (a verification's failures are not).
const DELIVERING_KINDS: &str = "'sync', 'retry', 'webhook'";

/// Tells whether the ledger changed: SQLite's `PRAGMA data_version` on a connection that
/// never writes, so every commit of any connection (any process, and this one's own
/// ledger connection) shows. One read of the shared-memory index: cheap to ask every
/// second.
pub(crate) struct Changes {
    conn: Connection,
    path: PathBuf,
    last: Option<i64>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes").field("path", &self.path).field("last", &self.last).finish()
    }
}

impl Changes {
    /// Whether anything was committed since the last call (true on the first).
    pub(crate) fn changed(&mut self) -> Result<bool> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| Error::Ledger { path: self.path.display().to_string(), reason: e.to_string() })?;
        let changed = self.last != Some(version);
        self.last = Some(version);
        Ok(changed)
    }
}

impl Ledger {
    /// A watch on this ledger's commits, on a connection of its own. A ledger in memory
    /// has no other connection to see it: it cannot be watched.
    pub(crate) fn changes(&self) -> Result<Changes> {
        let fail = |reason: String| Error::Ledger { path: self.path.display().to_string(), reason };
        if self.path == std::path::Path::new(":memory:") {
            return Err(fail("a ledger in memory cannot be watched".into()));
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| fail(format!("cannot open a second connection: {e}")))?;
        conn.busy_timeout(super::BUSY_TIMEOUT).map_err(|e| fail(e.to_string()))?;
        Ok(Changes { conn, path: self.path.clone(), last: None })
    }

    /// Deliveries in flight (`sending`), the longest claimed first, at most `limit`, each
    /// with the parts accepted so far.
    pub(crate) fn in_flight(&self, limit: u32) -> Result<Vec<InFlight>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT d.id, d.bucket, d.key, d.size, d.part_size, d.encrypted, d.attempts, d.lease_until,
                    d.updated_at, COUNT(p.idx), COALESCE(SUM(p.size), 0), MAX(p.sent_at)
                 FROM deliveries d LEFT JOIN parts p ON p.delivery_id = d.id
                 WHERE d.state = 'sending' GROUP BY d.id ORDER BY d.id LIMIT ?1",
            )?;
            stmt.query_map([limit], |r| {
                Ok(InFlight {
                    id: r.get(0)?,
                    bucket: r.get(1)?,
                    key: r.get(2)?,
                    size: r.get(3)?,
                    part_size: r.get(4)?,
                    encrypted: r.get(5)?,
                    attempts: r.get(6)?,
                    lease_until: r.get(7)?,
                    updated_at: r.get(8)?,
                    parts_done: r.get(9)?,
                    bytes_done: r.get(10)?,
                    last_part_at: r.get(11)?,
                })
            })?
            .collect()
        })
    }

    /// Hour by hour since `since` (rounded down to its hour), the hours with anything in
    /// them, oldest first; and the backlog now (deliveries pending, in flight, failed or
    /// dead). Read in one transaction, so the backlog of every earlier hour follows from
    /// these figures: it was the backlog now, less what was recorded since, plus what was
    /// sent since.
    pub(crate) fn activity_since(&self, since: i64) -> Result<(Vec<HourActivity>, u64)> {
        let since = since.div_euclid(3600) * 3600;
        self.with_conn(|conn| {
            let tx = conn.unchecked_transaction()?;
            let mut hours: BTreeMap<i64, HourActivity> = BTreeMap::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT sent_at / 3600, COUNT(*), COALESCE(SUM(size), 0) FROM deliveries
                     WHERE state = 'sent' AND sent_at >= ?1 GROUP BY 1",
                )?;
                let rows = stmt.query_map([since], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)))?;
                for row in rows {
                    let (hour, n, bytes) = row?;
                    let h = at(&mut hours, hour);
                    (h.sent, h.sent_bytes) = (n, bytes);
                }
            }
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT created_at / 3600, COUNT(*) FROM deliveries INDEXED BY deliveries_created_at
                     WHERE created_at >= ?1 AND state != 'skipped' GROUP BY 1",
                )?;
                let rows = stmt.query_map([since], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))?;
                for row in rows {
                    let (hour, n) = row?;
                    at(&mut hours, hour).recorded = n;
                }
            }
            {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT finished_at / 3600, SUM(failed) FROM runs
                     WHERE kind IN ({DELIVERING_KINDS}) AND finished_at >= ?1 GROUP BY 1"
                ))?;
                let rows = stmt.query_map([since], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))?;
                for row in rows {
                    let (hour, n) = row?;
                    at(&mut hours, hour).failed = n;
                }
            }
            let backlog: u64 = tx.query_row(
                "SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'sending', 'failed', 'dead')",
                params![],
                |r| r.get(0),
            )?;
            tx.finish()?;
            Ok((hours.into_values().collect(), backlog))
        })
    }
}

/// The figures of the hour numbered `hour` (Unix seconds / 3600).
fn at(hours: &mut BTreeMap<i64, HourActivity>, hour: i64) -> &mut HourActivity {
    hours.entry(hour * 3600).or_insert_with(|| HourActivity { hour: hour * 3600, ..HourActivity::default() })
}

#[cfg(test)]
mod tests {
    use super::super::State;
    use super::super::testing::{terms, version};
    use super::*;

    #[test]
    fn in_flight_deliveries_count_their_parts_and_the_hours_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("l.db")).unwrap();
        let mut changes = l.changes().unwrap();
        assert!(changes.changed().unwrap(), "the first look");
        assert!(!changes.changed().unwrap(), "nothing since");

        let hour = 1_800_000_000 / 3600 * 3600;
        l.insert_versions(&[version("a", "1"), version("b", "1")], State::Pending, hour + 10).unwrap();
        assert!(changes.changed().unwrap(), "a commit of the ledger's own connection shows");
        let a = l.versions_of("b", "a", None).unwrap()[0].id;
        l.claim(a, &terms("o", hour + 1000, 4, hour + 20, false)).unwrap().unwrap();
        let part = super::super::Part {
            idx: 1,
            offset: 0,
            size: 4,
            sha256: "s".into(),
            hash_state: None,
            file_name: "a.part001".into(),
            message_id: 1,
            file_id: Some("f".into()),
            file_unique_id: None,
            sent_at: hour + 30,
            bot_id: None,
            chat: None,
            topic: None,
        };
        assert!(l.record_part(a, "o", hour + 1000, &part, None).unwrap());
        let flying = l.in_flight(10).unwrap();
        assert_eq!(flying.len(), 1);
        let f = &flying[0];
        assert_eq!((f.id, f.parts_done, f.bytes_done, f.part_size, f.size), (a, 1, 4, Some(4), 10));
        assert_eq!((f.last_part_at, f.lease_until), (Some(hour + 30), Some(hour + 1000)));
        assert!(l.mark_sent(a, "o", "sha", None, None, hour + 3600 + 5).unwrap());
        assert!(l.in_flight(10).unwrap().is_empty());

        let run = |kind: &str, failed| super::super::RunRecord {
            kind: kind.into(),
            started_at: hour,
            finished_at: hour + 40,
            sent: 0,
            failed,
            bytes: 0,
            error: None,
        };
        l.record_run_ending(&run("sync", 2), None).unwrap();
        l.record_run_ending(&run("retry", 1), None).unwrap();
        l.record_run_ending(&run("verify", 5), None).unwrap();

        let (hours, backlog) = l.activity_since(hour + 100).unwrap();
        assert_eq!(backlog, 1, "b is pending");
        let recorded = HourActivity { hour, recorded: 2, failed: 3, ..HourActivity::default() };
        let sent = HourActivity { hour: hour + 3600, sent: 1, sent_bytes: 10, ..HourActivity::default() };
        assert_eq!(hours, [recorded, sent], "since is rounded down to its hour");
        assert!(l.activity_since(hour + 7200).unwrap().0.is_empty());
        assert!(Ledger::in_memory().unwrap().changes().is_err());
    }
}
