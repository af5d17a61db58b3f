//! The ledger: what was delivered, what is in flight, what failed. The only module that
//! speaks SQL.
//!
//! SQLite in WAL mode with `synchronous=FULL`, so a part recorded as accepted by Telegram
//! survives a crash; a busy timeout so concurrent runs wait for each other instead of
//! failing. The tables are read and written by what they keep, one `impl Ledger` block
//! a file:
//!
//! - [`buckets`](self::buckets): the buckets tgploy knows and whether each is enabled;
//! - [`versions`]: object versions recorded from listings and bucket notifications, and
//!   the ETag cache;
//! - [`claims`]: claims, leases, parts and the states of a delivery, where the
//!   exactly-once argument lives;
//! - [`queries`]: what `restore`, `files`, `status` and the dashboard read;
//! - [`runs`] (finished and under way), [`alerts`], [`auth`] (second factor, dashboard
//!   password and sessions);
//! - [`live`]: what the live dashboard follows (commits, deliveries in flight, the last
//!   days hour by hour);
//! - [`model`]: the row types they hand out.
//!
//! Every method locks the one connection for one statement or one transaction, through
//! [`Ledger::read`] or [`Ledger::write`], which turn SQLite's errors into the library's
//! once. SQLite blocks: async callers go through [`Ledger::blocking`].

mod alerts;
mod auth;
mod buckets;
mod claims;
mod counters;
mod live;
mod model;
mod queries;
mod runs;
mod schema;
mod versions;
mod watches;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction};

use crate::error::{Error, Result};
pub(crate) use claims::ClaimTerms;
pub(crate) use counters::Counter;
pub use model::*;
pub(crate) use queries::{DeliveredFilter, Selection};
pub(crate) use watches::Newest;

/// How long a process waits for another one's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The ledger. Cheap to share: every method locks one connection for one statement or
/// one transaction.
pub struct Ledger {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

/// Runs ledger work off the async runtime, on the blocking pool (SQLite blocks): the one
/// way async code reaches the ledger, [`Ledger::blocking`] for an open ledger, this for
/// work that opens one or holds more than the ledger.
pub(crate) async fn off_runtime<R, F>(f: F) -> Result<R>
where
    F: FnOnce() -> Result<R> + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Internal(format!("a ledger task failed: {e}")))?
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Ledger> {
        let fail = |reason: String| Error::Ledger { path: path.display().to_string(), reason };
        crate::private_files::create_parent(path).map_err(|e| fail(format!("cannot create its directory: {e}")))?;
        // SQLite creates a database file with mode 0644 less the umask, and then its
        // `-wal` and `-shm` files with the mode of the database file (os_unix.c gives
        // them the database's st_mode and sets it with fchmod, whatever the umask). So
        // the file is created here first, empty (which SQLite reads as an empty
        // database) and private: all three are then 0600 from the first moment, with
        // no window in which another user could open one.
        if !path.exists() {
            crate::private_files::open_or_create(path).map_err(|e| fail(format!("cannot create: {e}")))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            fail(format!("cannot open: {e} (check the path and its permissions; set DATABASE_PATH or `database_path`)"))
        })?;
        let ledger = Ledger { conn: Mutex::new(conn), path: path.to_path_buf() };
        ledger.configure()?;
        Ok(ledger)
    }

    /// An empty ledger in memory, for dry runs that must not write anything.
    pub fn in_memory() -> Result<Ledger> {
        let conn = Connection::open_in_memory()
            .map_err(|e| Error::Ledger { path: ":memory:".into(), reason: e.to_string() })?;
        let ledger = Ledger { conn: Mutex::new(conn), path: PathBuf::from(":memory:") };
        ledger.configure()?;
        Ok(ledger)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on tokio's blocking pool: SQLite blocks (a commit waits for the disk),
    /// and the async runtime's worker threads must not.
    pub async fn blocking<R, F>(ledger: &Arc<Ledger>, f: F) -> Result<R>
    where
        F: FnOnce(&Ledger) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let ledger = Arc::clone(ledger);
        off_runtime(move || f(&ledger)).await
    }

    fn configure(&self) -> Result<()> {
        self.with_conn(|conn| {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // journal_mode answers with a row, so it is queried rather than executed.
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") && self.path != Path::new(":memory:") {
                tracing::debug!(mode, "ledger is not in WAL mode");
            }
            conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        })?;
        let version = {
            let mut conn = self.conn();
            schema::migrate(&mut conn).map_err(|e| self.err(e))?
        };
        match version {
            schema::Version::Current => Ok(()),
            schema::Version::TooNew(version) => Err(Error::Ledger {
                path: self.path.display().to_string(),
                reason: format!(
                    "was written by a newer tgploy (schema version {version}, this one knows up to {}); upgrade tgploy",
                    schema::MIGRATIONS.len()
                ),
            }),
        }
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave the connection half-way through a
        // statement that matters: SQLite rolls back unfinished transactions.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs statements on the connection outside a transaction, each one its own: reads,
    /// and writes of a single statement (several statements that must hold together go
    /// through [`Ledger::write`]).
    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn();
        f(&conn).map_err(|e| self.err(e))
    }

    /// Runs `f` in one transaction, committed when it returns `Ok` (a method that finds
    /// it has nothing to change commits nothing of consequence), rolled back otherwise.
    /// The transaction takes the write lock when it begins (`BEGIN IMMEDIATE`): one that
    /// read first and wrote later could find another process's commit in between, which
    /// SQLite answers with an error no waiting fixes.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let result = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).and_then(|tx| {
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        });
        result.map_err(|e| self.err(e))
    }

    /// The one conversion of SQLite's errors: a lock held too long is [`Error::Busy`]
    /// (exit 3, try again later); anything else names the ledger.
    fn err(&self, e: rusqlite::Error) -> Error {
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        {
            return Error::Busy(format!(
                "the ledger {} is busy: another tgploy process held it for over {}s; try again later",
                self.path.display(),
                BUSY_TIMEOUT.as_secs()
            ));
        }
        Error::Ledger { path: self.path.display().to_string(), reason: e.to_string() }
    }

    /// A consistent copy of the whole ledger at `dest` (`VACUUM INTO`), without the
    /// second factor's secret and recovery codes, nor the dashboard's password hash and
    /// sessions: the copy leaves this machine. Nor the runs under way: in a copy they are
    /// nobody's.
    pub(crate) fn snapshot(&self, dest: &Path) -> Result<()> {
        self.with_conn(|conn| conn.execute("VACUUM INTO ?1", [dest.display().to_string()]))?;
        let copy = Connection::open(dest).map_err(|e| self.err(e))?;
        copy.execute_batch(
            "DELETE FROM totp; DELETE FROM recovery_codes; DELETE FROM dashboard_password;
             DELETE FROM dashboard_sessions; DELETE FROM runs_under_way; PRAGMA journal_mode = DELETE; VACUUM;",
        )
        .map_err(|e| self.err(e))
    }

    /// A quick write probe for `doctor`: takes and releases the write lock.
    pub(crate) fn probe_writable(&self) -> Result<()> {
        let mut conn = self.conn();
        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .and_then(|tx| tx.rollback())
            .map_err(|e| self.err(e))
    }
}

/// What the ledger's unit tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::{ClaimTerms, ObjectVersion};

    /// A 10-byte version of `key` in bucket `b`.
    pub(crate) fn version(key: &str, etag: &str) -> ObjectVersion {
        ObjectVersion { bucket: "b".into(), key: key.into(), etag: etag.into(), size: 10, last_modified_ms: Some(1) }
    }

    /// Every bucket's destination: chat `-1`, no topic.
    fn chat_minus_one(_: &str) -> (String, Option<i64>) {
        ("-1".into(), None)
    }

    /// A claim by `owner` at `now` until `lease_until` with `part_size` parts, for chat
    /// `-1`; of a failed delivery when `failed`.
    pub(crate) fn terms(owner: &str, lease_until: i64, part_size: u64, now: i64, failed: bool) -> ClaimTerms<'_> {
        ClaimTerms { owner, lease_until, part_size, destination_of: &chat_minus_one, now, failed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_ledger_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        drop(Ledger::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Ledger::open(&path).unwrap_err().to_string();
        assert!(err.contains("newer tgploy"), "{err}");
    }

    #[test]
    fn garbage_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let err = Ledger::open(&path).unwrap_err();
        assert!(matches!(err, Error::Ledger { .. }), "{err}");
    }
}
