//! The ledger: what was delivered, what is in flight, what failed. The only module that
//! speaks SQL.
//!
//! SQLite in WAL mode with `synchronous=FULL`, so a part recorded as accepted by Telegram
//! survives a crash; a busy timeout so concurrent runs wait for each other instead of
//! failing. Exactly-once delivery rests on [`Ledger::claim`]: one conditional `UPDATE`
//! that only one process can win.

mod schema;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, params};

use crate::error::{Error, Result};

/// Up to this many delivered objects under a prefix are found by key and sorted by date;
/// more are found by walking all of them by date.
const FEW_KEYS: u64 = 5000;

/// How long a process waits for another one's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The state of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Known, not yet attempted.
    Pending,
    /// Claimed by a run (`owner`) until `lease_until`.
    Sending,
    /// Every part and the manifest were accepted by Telegram.
    Sent,
    /// The last attempt failed; `next_attempt_at` says when to try again.
    Failed,
    /// Failed too often; needs an operator.
    Dead,
    /// Deliberately not sent (the bucket was enabled "from now on").
    Skipped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sending => "sending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Dead => "dead",
            State::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<State> {
        Ok(match s {
            "pending" => State::Pending,
            "sending" => State::Sending,
            "sent" => State::Sent,
            "failed" => State::Failed,
            "dead" => State::Dead,
            "skipped" => State::Skipped,
            other => {
                return Err(rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    format!("unknown delivery state `{other}`").into(),
                ));
            }
        })
    }
}

/// A bucket tgploy knows about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bucket {
    pub name: String,
    pub enabled: bool,
    pub discovered_at: i64,
    pub last_listed_at: Option<i64>,
    pub last_error: Option<String>,
}

/// An object version found in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub size: u64,
    pub last_modified_ms: Option<i64>,
}

/// One delivery row.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub object: ObjectVersion,
    pub state: State,
    pub part_size: Option<u64>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub sha256: Option<String>,
    pub manifest_message_id: Option<i64>,
    pub manifest_file_id: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// The stored stream is an age file of the object (parts and `sha256` describe it).
    pub encrypted: bool,
}

/// A part Telegram accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// 1-based.
    pub idx: u32,
    pub offset: u64,
    pub size: u64,
    pub sha256: String,
    /// SHA-256 midstate of the whole stream after this part (absent after the last).
    pub hash_state: Option<Vec<u8>>,
    pub file_name: String,
    pub message_id: i64,
    /// Absent for the text message that stands in for an empty object.
    pub file_id: Option<String>,
    pub file_unique_id: Option<String>,
    pub sent_at: i64,
}

/// Counts of deliveries by state, with bytes delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub sent: u64,
    pub sent_bytes: u64,
    pub pending: u64,
    pub sending: u64,
    pub failed: u64,
    pub dead: u64,
    pub skipped: u64,
}

/// The enrolled second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpState {
    pub secret: String,
    pub last_step: i64,
    pub failures: u32,
    pub locked_until: i64,
}

/// A finished run, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Run {
    pub kind: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub sent: u64,
    pub failed: u64,
    pub bytes: u64,
    pub error: Option<String>,
}

/// A delivered object with its parts, for `files`.
#[derive(Debug, Clone)]
pub struct DeliveredFile {
    pub delivery: Delivery,
    pub parts: Vec<Part>,
}

/// Which delivered objects a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveredFilter {
    pub bucket: Option<String>,
    /// Keys starting with this.
    pub prefix: Option<String>,
    /// Only those sent before this `(sent_at, id)`: the last row of the previous page.
    pub before: Option<(i64, i64)>,
}

impl DeliveredFilter {
    /// `WHERE …` for the bucket and prefix, with its values. Built rather than written
    /// with `?1 IS NULL OR …`, which keeps SQLite from using an index. A prefix is a
    /// range of keys, which the `(bucket, key, etag)` index finds bucket by bucket.
    ///
    /// `by_key` keeps SQLite from walking the state's index in date order, which is the
    /// quick way when many keys match and the slow one when few do.
    fn sql(&self, by_key: bool) -> (String, Vec<rusqlite::types::Value>) {
        let mut sql = String::from(if by_key { "WHERE +state = 'sent'" } else { "WHERE state = 'sent'" });
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        match &self.bucket {
            Some(bucket) => {
                sql.push_str(" AND bucket = ?");
                values.push(bucket.clone().into());
            }
            None if self.prefix.is_some() => sql.push_str(" AND bucket IN (SELECT name FROM buckets)"),
            None => {}
        }
        if let Some(prefix) = &self.prefix {
            match key_after_prefix(prefix) {
                Some(end) => {
                    sql.push_str(" AND key >= ? AND key < ?");
                    values.extend([prefix.clone().into(), end.into()]);
                }
                None => {
                    sql.push_str(" AND substr(key, 1, length(?)) = ?");
                    values.extend([prefix.clone().into(), prefix.clone().into()]);
                }
            }
        }
        (sql, values)
    }
}

/// The first string after every string that starts with `prefix`, in SQLite's binary
/// (UTF-8, so code point) order: the prefix with its last character moved one up.
fn key_after_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    let next = match last {
        '\u{D7FF}' => '\u{E000}',
        c => char::from_u32(c as u32 + 1)?,
    };
    chars.push(next);
    Some(chars.into_iter().collect())
}

/// A delivered object in a listing: its delivery, how many parts, its first message.
#[derive(Debug, Clone)]
pub struct DeliveredSummary {
    pub delivery: Delivery,
    pub parts: u32,
    pub first_message_id: Option<i64>,
}

/// An alert in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: i64,
    pub subject: String,
    pub text: String,
    pub created_at: i64,
    /// `None` while it waits for Telegram.
    pub sent_at: Option<i64>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// The second factor without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpSummary {
    pub enrolled_at: i64,
    /// Wrong codes in a row.
    pub failures: u32,
    pub locked_until: i64,
    pub recovery_codes_left: u64,
}

/// A dashboard session. Only the SHA-256 of its id is stored: the ledger alone cannot
/// be used to sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub user_agent: Option<String>,
}

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

impl Ledger {
    /// Opens (creating if needed) the ledger at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Ledger> {
        let fail = |reason: String| Error::Ledger { path: path.display().to_string(), reason };
        crate::private::create_parent(path).map_err(|e| fail(format!("cannot create its directory: {e}")))?;
        // SQLite creates a database file with mode 0644 less the umask, and then its
        // `-wal` and `-shm` files with the mode of the database file (os_unix.c gives
        // them the database's st_mode and sets it with fchmod, whatever the umask). So
        // the file is created here first, empty (which SQLite reads as an empty
        // database) and private: all three are then 0600 from the first moment, with
        // no window in which another user could open one.
        if !path.exists() {
            crate::private::open_or_create(path).map_err(|e| fail(format!("cannot create: {e}")))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            fail(format!("cannot open: {e} (check the path and its permissions; set DATABASE_PATH or `database_path`)"))
        })?;
        let ledger = Ledger { conn: Mutex::new(conn), path: path.to_path_buf() };
        ledger.configure().map_err(|e| match e {
            Error::Busy(m) => Error::Busy(m),
            Error::Ledger { reason, .. } => fail(reason),
            other => other,
        })?;
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

    pub fn path(&self) -> &Path {
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
        tokio::task::spawn_blocking(move || f(&ledger))
            .await
            .map_err(|e| Error::Other(anyhow::anyhow!("a ledger task failed: {e}")))?
    }

    fn configure(&self) -> Result<()> {
        let mut conn = self.conn();
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.err(e))?;
        // journal_mode answers with a row, so it is queried rather than executed.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        if !mode.eq_ignore_ascii_case("wal") && self.path != Path::new(":memory:") {
            tracing::debug!(mode, "ledger is not in WAL mode");
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;").map_err(|e| self.err(e))?;
        migrate(&mut conn).map_err(|e| match e {
            MigrateError::Sql(e) => self.err(e),
            MigrateError::TooNew(version) => Error::Ledger {
                path: self.path.display().to_string(),
                reason: format!(
                    "was written by a newer tgploy (schema version {version}, this one knows up to {}); upgrade tgploy",
                    schema::MIGRATIONS.len()
                ),
            },
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave the connection half-way through a
        // statement that matters: SQLite rolls back unfinished transactions.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

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

    // ----- buckets -----

    /// Every known bucket, by name.
    pub fn buckets(&self) -> Result<Vec<Bucket>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, enabled, discovered_at, last_listed_at, last_error FROM buckets ORDER BY name",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], bucket_from_row).and_then(|rows| rows.collect()).map_err(|e| self.err(e))
    }

    pub fn bucket(&self, name: &str) -> Result<Option<Bucket>> {
        let conn = self.conn();
        conn.query_row(
            "SELECT name, enabled, discovered_at, last_listed_at, last_error FROM buckets WHERE name = ?1",
            [name],
            bucket_from_row,
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    /// Records a bucket seen on the server; returns it as stored (an existing bucket
    /// keeps its enabled flag).
    pub fn discover_bucket(&self, name: &str, enabled: bool, now: i64) -> Result<Bucket> {
        {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO buckets (name, enabled, discovered_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
                params![name, enabled, now],
            )
            .map_err(|e| self.err(e))?;
        }
        self.bucket(name)?.ok_or_else(|| Error::Ledger {
            path: self.path.display().to_string(),
            reason: format!("bucket {name} vanished after insertion"),
        })
    }

    /// Enables or disables a bucket, creating its row when needed.
    pub fn set_bucket_enabled(&self, name: &str, enabled: bool, now: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO buckets (name, enabled, discovered_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled",
            params![name, enabled, now],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records the outcome of listing a bucket.
    pub fn bucket_listed(&self, name: &str, now: i64, error: Option<&str>) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "UPDATE buckets SET last_listed_at = CASE WHEN ?3 IS NULL THEN ?2 ELSE last_listed_at END, last_error = ?3
             WHERE name = ?1",
            params![name, now, error],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    // ----- object versions -----

    /// Every (key, etag) with a delivery row, whatever its state, for the keys from
    /// `first` to `last` (both included, in the UTF-8 byte order S3 lists keys in). A
    /// listing page is compared against this, so memory follows the page, not the bucket.
    pub fn known_versions_between(&self, bucket: &str, first: &str, last: &str) -> Result<HashSet<(String, String)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT key, etag FROM deliveries WHERE bucket = ?1 AND key >= ?2 AND key <= ?3")
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![bucket, first, last], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// What HEAD requests taught about the keys from `first` to `last`: key → (size,
    /// last-modified, ETag).
    pub fn etag_cache_between(
        &self,
        bucket: &str,
        first: &str,
        last: &str,
    ) -> Result<HashMap<String, (u64, i64, String)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT key, size, last_modified_ms, etag FROM etag_cache WHERE bucket = ?1 AND key >= ?2 AND key <= ?3",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![bucket, first, last], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Remembers ETags learned with HEAD, keyed on size and last-modified.
    pub fn remember_etags(&self, versions: &[ObjectVersion]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO etag_cache (bucket, key, size, last_modified_ms, etag) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size,
                        last_modified_ms = excluded.last_modified_ms, etag = excluded.etag",
                )
                .map_err(|e| self.err(e))?;
            for v in versions {
                let Some(mtime) = v.last_modified_ms else { continue };
                stmt.execute(params![v.bucket, v.key, v.size, mtime, v.etag]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records object versions as `pending`, or as `skipped`. Known versions keep their
    /// state, except that skipping also covers versions not yet sent (pending or
    /// failed). Returns how many rows were inserted or changed.
    pub fn insert_versions(&self, versions: &[ObjectVersion], state: State, now: i64) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut inserted = 0;
        let on_conflict = if state == State::Skipped {
            "DO UPDATE SET state = 'skipped', updated_at = excluded.updated_at
             WHERE deliveries.state IN ('pending', 'failed')"
        } else {
            "DO NOTHING"
        };
        {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "INSERT INTO deliveries (bucket, key, etag, size, last_modified_ms, state, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (bucket, key, etag) {on_conflict}"
                ))
                .map_err(|e| self.err(e))?;
            for v in versions {
                inserted += stmt
                    .execute(params![v.bucket, v.key, v.etag, v.size, v.last_modified_ms, state.as_str(), now])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(inserted)
    }

    // ----- deliveries -----

    /// Ids of deliveries a `sync` may take in the given buckets: pending ones, and ones
    /// whose owner's lease ran out (a run that died).
    pub fn claimable(&self, buckets: &[String], now: i64) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, bucket FROM deliveries
                 WHERE state = 'pending' OR (state = 'sending' AND lease_until < ?1) ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().filter(|(_, b)| buckets.contains(b)).map(|(id, _)| id).collect())
    }

    /// Claims a delivery for `owner` until `lease_until`, if nobody else holds it.
    /// Fixes the part size on the first claim. `None` when another run was faster.
    ///
    /// `sync` claims pending deliveries; `retry` (`failed`) claims failed ones. Either
    /// takes over a delivery whose lease ran out.
    pub fn claim(
        &self,
        id: i64,
        owner: &str,
        lease_until: i64,
        part_size: u64,
        now: i64,
        failed: bool,
    ) -> Result<Option<Delivery>> {
        let from = if failed { "failed" } else { "pending" };
        let changed = {
            let conn = self.conn();
            conn.execute(
                "UPDATE deliveries SET state = 'sending', owner = ?2, lease_until = ?3,
                    part_size = COALESCE(part_size, ?4), updated_at = ?5
                 WHERE id = ?1 AND (state = ?6 OR (state = 'sending' AND lease_until < ?5))",
                params![id, owner, lease_until, part_size, now, from],
            )
            .map_err(|e| self.err(e))?
        };
        if changed == 0 {
            return Ok(None);
        }
        self.delivery(id)
    }

    /// Deliveries claimed right now, with their owners.
    pub fn leases(&self) -> Result<Vec<(i64, String)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id, owner FROM deliveries WHERE state = 'sending' AND owner IS NOT NULL")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|rows| rows.collect()).map_err(|e| self.err(e))
    }

    /// Ends the lease of an owner known to be dead, so the delivery can be resumed now.
    pub fn expire_lease(&self, id: i64, owner: &str) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "UPDATE deliveries SET lease_until = 0 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
            params![id, owner],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Extends a lease; false when the claim was lost (the lease ran out and another
    /// run took the delivery over).
    pub fn renew_lease(&self, id: i64, owner: &str, lease_until: i64) -> Result<bool> {
        let conn = self.conn();
        let changed = conn
            .execute(
                "UPDATE deliveries SET lease_until = ?3 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                params![id, owner, lease_until],
            )
            .map_err(|e| self.err(e))?;
        Ok(changed == 1)
    }

    pub fn delivery(&self, id: i64) -> Result<Option<Delivery>> {
        let conn = self.conn();
        conn.query_row(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"), [id], delivery_from_row)
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn parts(&self, delivery_id: i64) -> Result<Vec<Part>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {PART_COLUMNS} FROM parts WHERE delivery_id = ?1 ORDER BY idx"))
            .map_err(|e| self.err(e))?;
        stmt.query_map([delivery_id], part_from_row).and_then(|rows| rows.collect()).map_err(|e| self.err(e))
    }

    /// Commits a part Telegram accepted, renewing the lease in the same transaction.
    /// With the last part, `whole_sha256` records the digest of the whole stream. False
    /// when the claim was lost.
    pub fn record_part(
        &self,
        id: i64,
        owner: &str,
        lease_until: i64,
        part: &Part,
        whole_sha256: Option<&str>,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        if !insert_part(&tx, id, owner, Some(lease_until), part, whole_sha256).map_err(|e| self.err(e))? {
            return Ok(false);
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Starts an attempt over from the first part: the parts recorded so far move to
    /// `superseded_parts` (kept for the record, left out of the manifest), and the
    /// stream is recorded as encrypted or not. An encrypted stream cannot resume: its
    /// header is random, so parts of two attempts do not join. False when the claim
    /// was lost.
    pub fn restart_parts(&self, id: i64, owner: &str, encrypted: bool, now: i64) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let held = tx
            .execute(
                "UPDATE deliveries SET encrypted = ?3, sha256 = NULL, updated_at = ?4
                 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                params![id, owner, encrypted, now],
            )
            .map_err(|e| self.err(e))?;
        if held == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO superseded_parts (delivery_id, idx, offset, size, sha256, file_name, message_id, file_id,
                file_unique_id, sent_at, superseded_at)
             SELECT delivery_id, idx, offset, size, sha256, file_name, message_id, file_id, file_unique_id, sent_at, ?2
             FROM parts WHERE delivery_id = ?1",
            params![id, now],
        )
        .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM parts WHERE delivery_id = ?1", [id]).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Parts set aside by restarted attempts, oldest first.
    pub fn superseded_parts(&self, delivery_id: i64) -> Result<Vec<Part>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT idx, offset, size, sha256, NULL, file_name, message_id, file_id, file_unique_id, sent_at
                 FROM superseded_parts WHERE delivery_id = ?1 ORDER BY superseded_at, idx",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([delivery_id], part_from_row).and_then(|rows| rows.collect()).map_err(|e| self.err(e))
    }

    /// Every delivery of a key (or of one version of it), the newest version first.
    pub fn versions_of(&self, bucket: &str, key: &str, etag: Option<&str>) -> Result<Vec<Delivery>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE bucket = ?1 AND key = ?2 AND (?3 IS NULL OR etag = ?3)
                 ORDER BY state = 'sent' DESC, COALESCE(last_modified_ms, 0) DESC, sent_at DESC, id DESC"
            ))
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![bucket, key, etag], delivery_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Delivered objects to check: `n` picked at random (all of them when `n` is 0),
    /// optionally of one bucket.
    pub fn sample_delivered(&self, bucket: Option<&str>, n: u64) -> Result<Vec<DeliveredFile>> {
        let deliveries: Vec<Delivery> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'sent' AND (?1 IS NULL OR bucket = ?1)
                     ORDER BY CASE WHEN ?2 = 0 THEN id ELSE random() END LIMIT CASE WHEN ?2 = 0 THEN -1 ELSE ?2 END"
                ))
                .map_err(|e| self.err(e))?;
            stmt.query_map(params![bucket, n], delivery_from_row)
                .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
                .map_err(|e| self.err(e))?
        };
        self.with_parts(deliveries)
    }

    /// A consistent copy of the whole ledger at `dest` (`VACUUM INTO`), without the
    /// second factor's secret and recovery codes, nor the dashboard's password hash and
    /// sessions: the copy leaves this machine.
    pub fn snapshot(&self, dest: &Path) -> Result<()> {
        {
            let conn = self.conn();
            conn.execute("VACUUM INTO ?1", [dest.display().to_string()]).map_err(|e| self.err(e))?;
        }
        let copy = Connection::open(dest).map_err(|e| self.err(e))?;
        copy.execute_batch(
            "DELETE FROM totp; DELETE FROM recovery_codes; DELETE FROM dashboard_password;
             DELETE FROM dashboard_sessions; PRAGMA journal_mode = DELETE; VACUUM;",
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks a delivery sent, with the manifest's message when there is one.
    pub fn mark_sent(
        &self,
        id: i64,
        owner: &str,
        sha256: &str,
        manifest: Option<(i64, &str)>,
        now: i64,
    ) -> Result<bool> {
        let conn = self.conn();
        let changed = conn
            .execute(
                "UPDATE deliveries SET state = 'sent', sha256 = ?3, manifest_message_id = ?4, manifest_file_id = ?5,
                    sent_at = ?6, updated_at = ?6, owner = NULL, lease_until = NULL, last_error = NULL,
                    next_attempt_at = NULL
                 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                params![id, owner, sha256, manifest.map(|m| m.0), manifest.map(|m| m.1), now],
            )
            .map_err(|e| self.err(e))?;
        Ok(changed == 1)
    }

    /// Records a failed attempt: the error, one more attempt, and when to try again; or,
    /// after `max_attempts`, the delivery is `dead`. `None` when the claim was lost.
    pub fn mark_failed(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        max_attempts: u32,
        now: i64,
    ) -> Result<Option<Delivery>> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let attempts: Option<u32> = tx
            .query_row(
                "SELECT attempts FROM deliveries WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                params![id, owner],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(attempts) = attempts else { return Ok(None) };
        let attempts = attempts + 1;
        let (state, next) = if attempts >= max_attempts {
            (State::Dead, None)
        } else {
            (State::Failed, Some(now + crate::backoff::delay_after(attempts).as_secs() as i64))
        };
        tx.execute(
            "UPDATE deliveries SET state = ?3, attempts = ?4, last_error = ?5, next_attempt_at = ?6,
                updated_at = ?7, owner = NULL, lease_until = NULL
             WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
            params![id, owner, state.as_str(), attempts, error, next, now],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        drop(conn);
        self.delivery(id)
    }

    /// Records a claimed delivery as skipped: its version vanished from S3.
    pub fn mark_skipped(&self, id: i64, owner: &str, reason: &str, now: i64) -> Result<bool> {
        let conn = self.conn();
        let changed = conn
            .execute(
                "UPDATE deliveries SET state = 'skipped', last_error = ?3, updated_at = ?4, owner = NULL,
                    lease_until = NULL, next_attempt_at = NULL
                 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                params![id, owner, reason, now],
            )
            .map_err(|e| self.err(e))?;
        Ok(changed == 1)
    }

    /// Gives a claimed delivery back untouched (the run is stopping), keeping its parts.
    pub fn release(&self, id: i64, owner: &str, now: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "UPDATE deliveries SET state = CASE WHEN attempts > 0 THEN 'failed' ELSE 'pending' END,
                owner = NULL, lease_until = NULL, updated_at = ?3
             WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
            params![id, owner, now],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Failed deliveries whose next attempt is due (all of them with `ignore_schedule`),
    /// oldest first, then deliveries whose run died mid-way (lease run out).
    pub fn due_failures(&self, now: i64, ignore_schedule: bool) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id FROM deliveries
                 WHERE (state = 'failed' AND (?2 OR next_attempt_at <= ?1)) OR (state = 'sending' AND lease_until < ?1)
                 ORDER BY state = 'sending', next_attempt_at, id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![now, ignore_schedule], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Makes dead deliveries (all, or the given ones) failed again with a fresh count of
    /// attempts, due now. Returns the ids revived.
    pub fn revive(&self, ids: Option<&[i64]>, now: i64) -> Result<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let dead: Vec<i64> = {
            let mut stmt = tx
                .prepare_cached("SELECT id FROM deliveries WHERE state = 'dead' ORDER BY id")
                .map_err(|e| self.err(e))?;
            stmt.query_map([], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(|e| self.err(e))?
        };
        let revive: Vec<i64> = dead.into_iter().filter(|id| ids.is_none_or(|ids| ids.contains(id))).collect();
        for id in &revive {
            tx.execute(
                "UPDATE deliveries SET state = 'failed', attempts = 0, next_attempt_at = ?2, updated_at = ?2
                 WHERE id = ?1 AND state = 'dead'",
                params![id, now],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(revive)
    }

    /// Deliveries in a state, oldest first (for reports and alerts).
    pub fn deliveries_in(&self, state: State) -> Result<Vec<Delivery>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = ?1 ORDER BY id"))
            .map_err(|e| self.err(e))?;
        stmt.query_map([state.as_str()], delivery_from_row).and_then(|rows| rows.collect()).map_err(|e| self.err(e))
    }

    /// Makes every failed delivery due now, whatever its backoff schedule; the next
    /// `retry` run takes them. Returns how many.
    pub fn make_failures_due(&self, now: i64) -> Result<usize> {
        let conn = self.conn();
        conn.execute(
            "UPDATE deliveries SET next_attempt_at = MIN(COALESCE(next_attempt_at, ?1), ?1), updated_at = ?1
             WHERE state = 'failed'",
            [now],
        )
        .map_err(|e| self.err(e))
    }

    /// The bytes of the given deliveries, together.
    pub fn total_size(&self, ids: &[i64]) -> Result<u64> {
        let ids = serde_json::to_string(ids).map_err(|e| Error::Other(e.into()))?;
        let conn = self.conn();
        conn.query_row(
            "SELECT COALESCE(SUM(size), 0) FROM deliveries WHERE id IN (SELECT value FROM json_each(?1))",
            [ids],
            |r| r.get(0),
        )
        .map_err(|e| self.err(e))
    }

    /// The first `limit` deliveries in a state, the soonest due (then the oldest) first.
    pub fn deliveries_in_page(&self, state: State, limit: u32) -> Result<Vec<Delivery>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = ?1 ORDER BY next_attempt_at, id LIMIT ?2"
            ))
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![state.as_str(), limit], delivery_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Records the one document of a single-document delivery and marks the delivery
    /// sent, in one transaction. False when the claim was lost.
    pub fn finish_single(&self, id: i64, owner: &str, part: &Part, sha256: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        if !insert_part(&tx, id, owner, None, part, Some(sha256)).map_err(|e| self.err(e))? {
            return Ok(false);
        }
        tx.execute(
            "UPDATE deliveries SET state = 'sent', sent_at = ?2, updated_at = ?2, owner = NULL, lease_until = NULL,
                last_error = NULL, next_attempt_at = NULL, manifest_message_id = NULL, manifest_file_id = NULL
             WHERE id = ?1",
            params![id, part.sent_at],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Records object versions named by bucket notifications, in one transaction (one
    /// disk sync for everything that arrived together): a bucket seen for the first time
    /// is recorded, enabled as `enable_new` says; versions of enabled buckets become
    /// pending. Returns, for each version, whether its bucket is enabled.
    pub fn accept_events(&self, versions: &[ObjectVersion], enable_new: bool, now: i64) -> Result<Vec<bool>> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut accepted = Vec::with_capacity(versions.len());
        {
            let mut discover = tx
                .prepare_cached(
                    "INSERT INTO buckets (name, enabled, discovered_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET name = name RETURNING enabled",
                )
                .map_err(|e| self.err(e))?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO deliveries (bucket, key, etag, size, last_modified_ms, state, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6) ON CONFLICT (bucket, key, etag) DO NOTHING",
                )
                .map_err(|e| self.err(e))?;
            for v in versions {
                let enabled: bool =
                    discover.query_row(params![v.bucket, enable_new, now], |r| r.get(0)).map_err(|e| self.err(e))?;
                if enabled {
                    insert
                        .execute(params![v.bucket, v.key, v.etag, v.size, v.last_modified_ms, now])
                        .map_err(|e| self.err(e))?;
                }
                accepted.push(enabled);
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(accepted)
    }

    // ----- alerts -----

    /// Queues an alert for the admin chat, unless one about the same subject was queued
    /// within `interval`; held-back alerts are counted and mentioned in the next one.
    /// Returns whether it was queued.
    pub fn raise_alert(&self, subject: &str, text: &str, interval: Duration, now: i64) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let previous: Option<(i64, u64)> = tx
            .query_row("SELECT last_raised_at, suppressed FROM alert_subjects WHERE subject = ?1", [subject], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some((last, _)) = previous
            && now - last < interval.as_secs() as i64
        {
            tx.execute("UPDATE alert_subjects SET suppressed = suppressed + 1 WHERE subject = ?1", [subject])
                .map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))?;
            return Ok(false);
        }
        let held_back = previous.map(|p| p.1).unwrap_or(0);
        let text = if held_back > 0 {
            format!("{text}\n({held_back} more like this held back since the last alert)")
        } else {
            text.to_string()
        };
        tx.execute("INSERT INTO alerts (subject, text, created_at) VALUES (?1, ?2, ?3)", params![subject, text, now])
            .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO alert_subjects (subject, last_raised_at, suppressed) VALUES (?1, ?2, 0)
             ON CONFLICT (subject) DO UPDATE SET last_raised_at = excluded.last_raised_at, suppressed = 0",
            params![subject, now],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Alerts not yet sent, oldest first: (id, text, created_at).
    pub fn unsent_alerts(&self) -> Result<Vec<(i64, String, i64)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id, text, created_at FROM alerts WHERE sent_at IS NULL ORDER BY id")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    pub fn alert_sent(&self, id: i64, now: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "UPDATE alerts SET sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![id, now],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn alert_failed(&self, id: i64, error: &str) -> Result<()> {
        let conn = self.conn();
        conn.execute("UPDATE alerts SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1", params![id, error])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Activity since a time, for the heartbeat: (deliveries sent, bytes, last sent_at).
    pub fn sent_since(&self, since: i64) -> Result<(u64, u64, Option<i64>)> {
        let conn = self.conn();
        let (n, bytes): (u64, u64) = conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM deliveries WHERE state = 'sent' AND sent_at >= ?1",
                [since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let last: Option<i64> = conn
            .query_row("SELECT MAX(sent_at) FROM deliveries WHERE state = 'sent'", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok((n, bytes, last))
    }

    /// Deliveries that failed (or died) since a time.
    pub fn failures_since(&self, since: i64) -> Result<u64> {
        let conn = self.conn();
        conn.query_row(
            "SELECT COUNT(*) FROM deliveries WHERE state IN ('failed', 'dead') AND updated_at >= ?1",
            [since],
            |r| r.get(0),
        )
        .map_err(|e| self.err(e))
    }

    /// The latest `limit` alerts, sent or waiting, newest first.
    pub fn recent_alerts(&self, limit: u32) -> Result<Vec<Alert>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, subject, text, created_at, sent_at, attempts, last_error FROM alerts
                 ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
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
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    /// How many alerts wait to be sent.
    pub fn unsent_alert_count(&self) -> Result<u64> {
        let conn = self.conn();
        conn.query_row("SELECT COUNT(*) FROM alerts WHERE sent_at IS NULL", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    // ----- second factor -----

    /// The enrolled TOTP secret (base32) with its state, if any.
    pub fn totp(&self) -> Result<Option<TotpState>> {
        let conn = self.conn();
        conn.query_row("SELECT secret, last_step, failures, locked_until FROM totp WHERE id = 1", [], |r| {
            Ok(TotpState { secret: r.get(0)?, last_step: r.get(1)?, failures: r.get(2)?, locked_until: r.get(3)? })
        })
        .optional()
        .map_err(|e| self.err(e))
    }

    /// Enrols a TOTP secret with its recovery codes (hashed), replacing any earlier ones.
    pub fn enroll_totp(&self, secret_base32: &str, recovery_hashes: &[String], now: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM totp", []).map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM recovery_codes", []).map_err(|e| self.err(e))?;
        tx.execute("INSERT INTO totp (id, secret, enrolled_at) VALUES (1, ?1, ?2)", params![secret_base32, now])
            .map_err(|e| self.err(e))?;
        for hash in recovery_hashes {
            tx.execute("INSERT INTO recovery_codes (hash) VALUES (?1)", [hash]).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records an accepted code: its time step (no replay), and the failures reset.
    pub fn totp_accepted(&self, step: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute("UPDATE totp SET last_step = MAX(last_step, ?1), failures = 0 WHERE id = 1", [step])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records a wrong code; after `limit` in a row, locks until `lock_until`. Returns the
    /// failures counted so far.
    pub fn totp_failed(&self, limit: u32, lock_until: i64) -> Result<u32> {
        let conn = self.conn();
        conn.query_row(
            "UPDATE totp SET locked_until = CASE WHEN failures + 1 >= ?1 THEN ?2 ELSE locked_until END,
                failures = CASE WHEN failures + 1 >= ?1 THEN 0 ELSE failures + 1 END
             WHERE id = 1 RETURNING CASE WHEN failures = 0 THEN ?1 ELSE failures END",
            params![limit, lock_until],
            |r| r.get(0),
        )
        .map_err(|e| self.err(e))
    }

    /// Uses a recovery code: true if it was valid and unused (it is used up now).
    pub fn use_recovery_code(&self, hash: &str, now: i64) -> Result<bool> {
        let conn = self.conn();
        let changed = conn
            .execute("UPDATE recovery_codes SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL", params![hash, now])
            .map_err(|e| self.err(e))?;
        Ok(changed == 1)
    }

    /// Recovery codes not used yet.
    pub fn recovery_codes_left(&self) -> Result<u64> {
        let conn = self.conn();
        conn.query_row("SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// A quick write probe for `doctor`: takes and releases the write lock.
    pub fn probe_writable(&self) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        tx.rollback().map_err(|e| self.err(e))
    }

    /// The second factor at a glance, without its secret: when it was enrolled, wrong
    /// codes in a row, the lock, recovery codes left.
    pub fn totp_summary(&self) -> Result<Option<TotpSummary>> {
        let conn = self.conn();
        conn.query_row(
            "SELECT enrolled_at, failures, locked_until,
                (SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL) FROM totp WHERE id = 1",
            [],
            |r| {
                Ok(TotpSummary {
                    enrolled_at: r.get(0)?,
                    failures: r.get(1)?,
                    locked_until: r.get(2)?,
                    recovery_codes_left: r.get(3)?,
                })
            },
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    // ----- reports -----

    /// Deliveries by state, over all buckets (`None`) or per bucket.
    pub fn counts(&self) -> Result<(Counts, HashMap<String, Counts>)> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT bucket, state, COUNT(*), COALESCE(SUM(size), 0) FROM deliveries GROUP BY bucket, state",
            )
            .map_err(|e| self.err(e))?;
        let rows: Vec<(String, String, u64, u64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))?;
        let mut total = Counts::default();
        let mut per_bucket: HashMap<String, Counts> = HashMap::new();
        for (bucket, state, n, bytes) in rows {
            let state = State::parse(&state).map_err(|e| self.err(e))?;
            for c in [&mut total, per_bucket.entry(bucket).or_default()] {
                match state {
                    State::Sent => {
                        c.sent += n;
                        c.sent_bytes += bytes;
                    }
                    State::Pending => c.pending += n,
                    State::Sending => c.sending += n,
                    State::Failed => c.failed += n,
                    State::Dead => c.dead += n,
                    State::Skipped => c.skipped += n,
                }
            }
        }
        Ok((total, per_bucket))
    }

    /// Records a finished run.
    pub fn record_run(&self, run: &Run) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO runs (kind, started_at, finished_at, sent, failed, bytes, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![run.kind, run.started_at, run.finished_at, run.sent, run.failed, run.bytes, run.error],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The latest run of a kind, and the latest one that ended without an error.
    pub fn last_runs(&self, kind: &str) -> Result<(Option<Run>, Option<Run>)> {
        let conn = self.conn();
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
        let last = query("").map_err(|e| self.err(e))?;
        let last_ok = query("AND error IS NULL").map_err(|e| self.err(e))?;
        Ok((last, last_ok))
    }

    /// Delivered objects, newest first, optionally of one bucket and under a prefix.
    pub fn delivered(&self, bucket: Option<&str>, prefix: Option<&str>) -> Result<Vec<DeliveredFile>> {
        let deliveries: Vec<Delivery> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'sent'
                       AND (?1 IS NULL OR bucket = ?1)
                       AND (?2 IS NULL OR substr(key, 1, length(?2)) = ?2)
                     ORDER BY sent_at DESC, id DESC"
                ))
                .map_err(|e| self.err(e))?;
            stmt.query_map(params![bucket, prefix], delivery_from_row)
                .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
                .map_err(|e| self.err(e))?
        };
        self.with_parts(deliveries)
    }

    fn with_parts(&self, deliveries: Vec<Delivery>) -> Result<Vec<DeliveredFile>> {
        deliveries
            .into_iter()
            .map(|delivery| {
                let parts = self.parts(delivery.id)?;
                Ok(DeliveredFile { delivery, parts })
            })
            .collect()
    }

    /// One page of delivered objects, newest first: those sent before `before` (a
    /// `(sent_at, id)` from the previous page), of one bucket and under a prefix when
    /// given, each with its number of parts and its first message.
    pub fn delivered_page(&self, filter: &DeliveredFilter, limit: u32) -> Result<Vec<DeliveredSummary>> {
        // Few matching keys: find them by key and sort them; many: walk by date.
        let by_key = filter.prefix.is_some() && self.count_delivered(filter, Some(FEW_KEYS + 1))? <= FEW_KEYS;
        let (mut sql, mut values) = filter.sql(by_key);
        sql.insert_str(
            0,
            &format!(
                "SELECT {DELIVERY_COLUMNS},
                    (SELECT COUNT(*) FROM parts p WHERE p.delivery_id = deliveries.id),
                    (SELECT p.message_id FROM parts p WHERE p.delivery_id = deliveries.id ORDER BY p.idx LIMIT 1)
                 FROM deliveries "
            ),
        );
        if let Some((sent_at, id)) = filter.before {
            sql.push_str(" AND (sent_at, id) < (?, ?)");
            values.extend([sent_at.into(), id.into()]);
        }
        sql.push_str(" ORDER BY sent_at DESC, id DESC LIMIT ?");
        values.push(i64::from(limit).into());
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        stmt.query_map(rusqlite::params_from_iter(values), |r| {
            Ok(DeliveredSummary { delivery: delivery_from_row(r)?, parts: r.get(17)?, first_message_id: r.get(18)? })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    /// How many delivered objects match a filter (its `before` aside), counting no
    /// further than `at_most`: a prefix's keys are counted one by one.
    pub fn count_delivered(&self, filter: &DeliveredFilter, at_most: Option<u64>) -> Result<u64> {
        let (mut sql, mut values) = filter.sql(false);
        sql.insert_str(0, "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries ");
        sql.push_str(" LIMIT ?)");
        values.push(at_most.map_or(-1, |n| n.min(i64::MAX as u64) as i64).into());
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        stmt.query_row(rusqlite::params_from_iter(values), |r| r.get(0)).map_err(|e| self.err(e))
    }

    /// Runs of every kind, newest first: `limit` of them before the run `before_id`.
    pub fn recent_runs(&self, before_id: Option<i64>, limit: u32) -> Result<Vec<(i64, Run)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, kind, started_at, finished_at, sent, failed, bytes, error FROM runs
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![before_id.unwrap_or(i64::MAX), limit], |r| Ok((r.get(0)?, run_from_row(r, 1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    // ----- dashboard -----

    /// The dashboard's password hash (argon2id, PHC string), if one is set.
    pub fn dashboard_password_hash(&self) -> Result<Option<String>> {
        let conn = self.conn();
        conn.query_row("SELECT hash FROM dashboard_password WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets the dashboard's password hash and ends every session but `keep` (none when
    /// `None`), in one transaction.
    pub fn set_dashboard_password(&self, hash: &str, keep: Option<&str>, now: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO dashboard_password (id, hash, set_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
            params![hash, now],
        )
        .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM dashboard_sessions WHERE ?1 IS NULL OR id_hash != ?1", [keep])
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records a new session (by the hash of its id), ending sessions idle since
    /// `idle_before` or created before `created_before` on the way.
    pub fn create_session(&self, session: &Session, idle_before: i64, created_before: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM dashboard_sessions WHERE last_seen_at < ?1 OR created_at < ?2",
            params![idle_before, created_before],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO dashboard_sessions (id_hash, created_at, last_seen_at, user_agent) VALUES (?1, ?2, ?3, ?4)",
            params![session.id_hash, session.created_at, session.last_seen_at, session.user_agent],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn session(&self, id_hash: &str) -> Result<Option<Session>> {
        let conn = self.conn();
        conn.query_row(
            "SELECT id_hash, created_at, last_seen_at, user_agent FROM dashboard_sessions WHERE id_hash = ?1",
            [id_hash],
            session_from_row,
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    /// Every session, the most recently used first.
    pub fn sessions(&self) -> Result<Vec<Session>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id_hash, created_at, last_seen_at, user_agent FROM dashboard_sessions
                 ORDER BY last_seen_at DESC, created_at DESC",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], session_from_row).and_then(|rows| rows.collect()).map_err(|e| self.err(e))
    }

    /// Records that a session was used now.
    pub fn touch_session(&self, id_hash: &str, now: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute("UPDATE dashboard_sessions SET last_seen_at = ?2 WHERE id_hash = ?1", params![id_hash, now])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Ends one session (`Some`), or every session (`None`).
    pub fn end_sessions(&self, id_hash: Option<&str>) -> Result<usize> {
        let conn = self.conn();
        conn.execute("DELETE FROM dashboard_sessions WHERE ?1 IS NULL OR id_hash = ?1", [id_hash])
            .map_err(|e| self.err(e))
    }
}

/// Inserts a part of a delivery `owner` holds, renewing the lease (when given) and
/// recording the whole stream's SHA-256 (with the last part). False when not held.
fn insert_part(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    owner: &str,
    lease_until: Option<i64>,
    part: &Part,
    whole_sha256: Option<&str>,
) -> rusqlite::Result<bool> {
    let held = tx.execute(
        "UPDATE deliveries SET lease_until = COALESCE(?3, lease_until), updated_at = ?4, sha256 = COALESCE(?5, sha256)
         WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
        params![id, owner, lease_until, part.sent_at, whole_sha256],
    )?;
    if held == 0 {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO parts (delivery_id, idx, offset, size, sha256, hash_state, file_name, message_id, file_id,
            file_unique_id, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            id,
            part.idx,
            part.offset,
            part.size,
            part.sha256,
            part.hash_state,
            part.file_name,
            part.message_id,
            part.file_id,
            part.file_unique_id,
            part.sent_at
        ],
    )?;
    Ok(true)
}

const DELIVERY_COLUMNS: &str = "id, bucket, key, etag, size, last_modified_ms, state, part_size, attempts, last_error,
    next_attempt_at, sha256, manifest_message_id, manifest_file_id, created_at, sent_at, encrypted";

const PART_COLUMNS: &str =
    "idx, offset, size, sha256, hash_state, file_name, message_id, file_id, file_unique_id, sent_at";

fn bucket_from_row(r: &Row<'_>) -> rusqlite::Result<Bucket> {
    Ok(Bucket {
        name: r.get(0)?,
        enabled: r.get(1)?,
        discovered_at: r.get(2)?,
        last_listed_at: r.get(3)?,
        last_error: r.get(4)?,
    })
}

fn delivery_from_row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    let state: String = r.get(6)?;
    Ok(Delivery {
        id: r.get(0)?,
        object: ObjectVersion {
            bucket: r.get(1)?,
            key: r.get(2)?,
            etag: r.get(3)?,
            size: r.get(4)?,
            last_modified_ms: r.get(5)?,
        },
        state: State::parse(&state)?,
        part_size: r.get(7)?,
        attempts: r.get(8)?,
        last_error: r.get(9)?,
        next_attempt_at: r.get(10)?,
        sha256: r.get(11)?,
        manifest_message_id: r.get(12)?,
        manifest_file_id: r.get(13)?,
        created_at: r.get(14)?,
        sent_at: r.get(15)?,
        encrypted: r.get(16)?,
    })
}

/// A run from `kind, started_at, finished_at, sent, failed, bytes, error` at column `at`.
fn run_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Run> {
    Ok(Run {
        kind: r.get(at)?,
        started_at: r.get(at + 1)?,
        finished_at: r.get(at + 2)?,
        sent: r.get(at + 3)?,
        failed: r.get(at + 4)?,
        bytes: r.get(at + 5)?,
        error: r.get(at + 6)?,
    })
}

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session { id_hash: r.get(0)?, created_at: r.get(1)?, last_seen_at: r.get(2)?, user_agent: r.get(3)? })
}

fn part_from_row(r: &Row<'_>) -> rusqlite::Result<Part> {
    Ok(Part {
        idx: r.get(0)?,
        offset: r.get(1)?,
        size: r.get(2)?,
        sha256: r.get(3)?,
        hash_state: r.get(4)?,
        file_name: r.get(5)?,
        message_id: r.get(6)?,
        file_id: r.get(7)?,
        file_unique_id: r.get(8)?,
        sent_at: r.get(9)?,
    })
}

enum MigrateError {
    Sql(rusqlite::Error),
    TooNew(usize),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sql(e)
    }
}

/// Applies the migrations this ledger lacks, in one exclusive transaction.
fn migrate(conn: &mut Connection) -> std::result::Result<(), MigrateError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > schema::MIGRATIONS.len() {
        return Err(MigrateError::TooNew(version));
    }
    for migration in &schema::MIGRATIONS[version..] {
        tx.execute_batch(migration)?;
    }
    if version < schema::MIGRATIONS.len() {
        tx.pragma_update(None, "user_version", schema::MIGRATIONS.len())?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(key: &str, etag: &str) -> ObjectVersion {
        ObjectVersion { bucket: "b".into(), key: key.into(), etag: etag.into(), size: 10, last_modified_ms: Some(1) }
    }

    #[test]
    fn only_one_claim_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let a = Ledger::open(&path).unwrap();
        let b = Ledger::open(&path).unwrap();
        a.insert_versions(&[version("k", "e")], State::Pending, 0).unwrap();
        let id = a.claimable(&["b".into()], 0).unwrap()[0];
        assert!(a.claim(id, "a", 100, 4096, 0, false).unwrap().is_some());
        assert!(b.claim(id, "b", 100, 4096, 1, false).unwrap().is_none());
        // Once the lease runs out, another run takes over and the first loses its claim.
        let taken = b.claim(id, "b", 300, 8192, 101, false).unwrap().unwrap();
        assert_eq!(taken.part_size, Some(4096), "part size stays fixed by the first claim");
        assert!(!a.renew_lease(id, "a", 400).unwrap());
    }

    #[test]
    fn versions_are_inserted_once() {
        let l = Ledger::in_memory().unwrap();
        assert_eq!(l.insert_versions(&[version("k", "e"), version("k", "f")], State::Pending, 0).unwrap(), 2);
        assert_eq!(l.insert_versions(&[version("k", "e")], State::Pending, 0).unwrap(), 0);
        assert_eq!(l.known_versions_between("b", "k", "k").unwrap().len(), 2);
        assert!(l.known_versions_between("b", "a", "j").unwrap().is_empty());
    }

    #[test]
    fn failure_schedules_a_retry_and_release_keeps_state() {
        let l = Ledger::in_memory().unwrap();
        l.insert_versions(&[version("k", "e")], State::Pending, 0).unwrap();
        let id = l.claimable(&["b".into()], 0).unwrap()[0];
        l.claim(id, "o", 100, 4096, 0, false).unwrap().unwrap();
        let d = l.mark_failed(id, "o", "boom", 8, 1000).unwrap().unwrap();
        assert_eq!((d.state, d.attempts, d.next_attempt_at), (State::Failed, 1, Some(1060)));
        assert!(l.claimable(&["b".into()], 2000).unwrap().is_empty(), "sync leaves failures to retry");
        assert!(l.claim(id, "o", 100, 4096, 2000, false).unwrap().is_none(), "sync cannot claim a failure");
        assert_eq!(l.due_failures(1059, false).unwrap(), Vec::<i64>::new());
        assert_eq!(l.due_failures(1060, false).unwrap(), vec![id]);
        assert_eq!(l.due_failures(0, true).unwrap(), vec![id]);
        l.claim(id, "o", 3000, 4096, 2000, true).unwrap().unwrap();
        let d = l.mark_failed(id, "o", "boom again", 2, 2001).unwrap().unwrap();
        assert_eq!((d.state, d.attempts, d.next_attempt_at), (State::Dead, 2, None));
        assert!(l.due_failures(0, true).unwrap().is_empty());
        assert_eq!(l.revive(None, 3000).unwrap(), vec![id]);
        assert_eq!(l.due_failures(3000, false).unwrap(), vec![id]);
    }

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

    #[test]
    fn delivered_pages_filter_by_bucket_and_prefix_and_go_on_where_the_last_stopped() {
        let l = Ledger::in_memory().unwrap();
        let keys = ["a/1", "a/2", "a0", "a", "ab/\u{10FFFF}", "b/1"];
        for (i, key) in keys.iter().enumerate() {
            l.discover_bucket("b", true, 0).unwrap();
            l.insert_versions(&[version(key, "e")], State::Pending, 0).unwrap();
            let id = l.claimable(&["b".into()], 0).unwrap()[0];
            l.claim(id, "o", 100, 4096, 0, false).unwrap().unwrap();
            assert!(l.mark_sent(id, "o", "sha", None, 100 + i as i64 / 2).unwrap());
        }
        let page = |prefix: Option<&str>, before| {
            let f = DeliveredFilter { bucket: None, prefix: prefix.map(String::from), before };
            let keys: Vec<String> =
                l.delivered_page(&f, 3).unwrap().into_iter().map(|d| d.delivery.object.key).collect();
            (keys, l.count_delivered(&f, None).unwrap())
        };
        assert_eq!(page(Some("a/"), None), (vec!["a/2".to_string(), "a/1".to_string()], 2));
        assert_eq!(page(Some("a"), None).1, 5);
        let all = DeliveredFilter { prefix: Some("a".into()), ..DeliveredFilter::default() };
        assert_eq!(l.count_delivered(&all, Some(3)).unwrap(), 3, "counted no further");
        assert_eq!(page(Some("ab/\u{10FFFF}"), None).1, 1, "no character after the last one");
        let first = page(None, None).0;
        assert_eq!(first, ["b/1", "ab/\u{10FFFF}", "a"]);
        let last = l.versions_of("b", "a", None).unwrap()[0].clone();
        assert_eq!(page(None, Some((last.sent_at.unwrap(), last.id))).0, ["a0", "a/2", "a/1"]);
        assert_eq!(key_after_prefix("a/"), Some("a0".into()));
        assert_eq!(key_after_prefix(""), None);
    }

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
