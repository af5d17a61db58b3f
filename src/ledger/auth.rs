//! Who may do what: the second factor (`totp`, `recovery_codes`) with its counters and
//! lock, the dashboard's password hash, its sessions (only hashes of their ids) and its
//! own sign-in throttle. [`crate::totp`] and [`crate::dashboard::auth`] decide; this
//! file only keeps. None of it leaves the machine in a snapshot.

use rusqlite::{OptionalExtension, params};

use super::Ledger;
use super::model::{Session, TotpState, TotpSummary, session_from_row};
use crate::error::Result;

impl Ledger {
    /// The enrolled TOTP secret (base32) with its state, if any.
    pub(crate) fn totp(&self) -> Result<Option<TotpState>> {
        self.with_conn(|conn| {
            conn.query_row("SELECT secret, last_step, failures, locked_until FROM totp WHERE id = 1", [], |r| {
                Ok(TotpState { secret: r.get(0)?, last_step: r.get(1)?, failures: r.get(2)?, locked_until: r.get(3)? })
            })
            .optional()
        })
    }

    /// Enrols a TOTP secret with its recovery codes (hashed), replacing any earlier ones.
    pub(crate) fn enroll_totp(&self, secret_base32: &str, recovery_hashes: &[String], now: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM totp", [])?;
            tx.execute("DELETE FROM recovery_codes", [])?;
            tx.execute("INSERT INTO totp (id, secret, enrolled_at) VALUES (1, ?1, ?2)", params![secret_base32, now])?;
            for hash in recovery_hashes {
                tx.execute("INSERT INTO recovery_codes (hash) VALUES (?1)", [hash])?;
            }
            Ok(())
        })
    }

    /// Records an accepted code: its time step (no replay), and the failures reset.
    pub(crate) fn totp_accepted(&self, step: i64) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute("UPDATE totp SET last_step = MAX(last_step, ?1), failures = 0 WHERE id = 1", [step])
        })?;
        Ok(())
    }

    /// Records a wrong code; after `limit` in a row, locks until `lock_until`. Returns the
    /// failures counted so far.
    pub(crate) fn totp_failed(&self, limit: u32, lock_until: i64) -> Result<u32> {
        self.with_conn(|conn| {
            conn.query_row(
                "UPDATE totp SET locked_until = CASE WHEN failures + 1 >= ?1 THEN ?2 ELSE locked_until END,
                    failures = CASE WHEN failures + 1 >= ?1 THEN 0 ELSE failures + 1 END
                 WHERE id = 1 RETURNING CASE WHEN failures = 0 THEN ?1 ELSE failures END",
                params![limit, lock_until],
                |r| r.get(0),
            )
        })
    }

    /// Uses a recovery code: true if it was valid and unused (it is used up now).
    pub(crate) fn use_recovery_code(&self, hash: &str, now: i64) -> Result<bool> {
        let changed = self.with_conn(|conn| {
            conn.execute(
                "UPDATE recovery_codes SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL",
                params![hash, now],
            )
        })?;
        Ok(changed == 1)
    }

    /// Recovery codes not used yet.
    pub(crate) fn recovery_codes_left(&self) -> Result<u64> {
        self.with_conn(|conn| {
            conn.query_row("SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL", [], |r| r.get(0))
        })
    }

    /// The second factor at a glance, without its secret: when it was enrolled, wrong
    /// codes in a row, the lock, recovery codes left.
    pub(crate) fn totp_summary(&self) -> Result<Option<TotpSummary>> {
        self.with_conn(|conn| {
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
        })
    }

    /// The dashboard's password hash (argon2id, PHC string), if one is set.
    pub(crate) fn dashboard_password_hash(&self) -> Result<Option<String>> {
        self.with_conn(|conn| {
            conn.query_row("SELECT hash FROM dashboard_password WHERE id = 1", [], |r| r.get(0)).optional()
        })
    }

    /// Sets the dashboard's password hash and ends every session but `keep` (none when
    /// `None`), in one transaction.
    pub(crate) fn set_dashboard_password(&self, hash: &str, keep: Option<&str>, now: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO dashboard_password (id, hash, set_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
                params![hash, now],
            )?;
            tx.execute("DELETE FROM dashboard_sessions WHERE ?1 IS NULL OR id_hash != ?1", [keep])?;
            Ok(())
        })
    }

    /// Records a new session (by the hash of its id), ending sessions idle since
    /// `idle_before` or created before `created_before` on the way.
    pub(crate) fn create_session(&self, session: &Session, idle_before: i64, created_before: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM dashboard_sessions WHERE last_seen_at < ?1 OR created_at < ?2",
                params![idle_before, created_before],
            )?;
            tx.execute(
                "INSERT INTO dashboard_sessions (id_hash, created_at, last_seen_at, user_agent) VALUES (?1, ?2, ?3, ?4)",
                params![session.id_hash, session.created_at, session.last_seen_at, session.user_agent],
            )?;
            Ok(())
        })
    }

    pub(crate) fn session(&self, id_hash: &str) -> Result<Option<Session>> {
        self.with_conn(|conn| {
            conn.query_row(
                "SELECT id_hash, created_at, last_seen_at, user_agent FROM dashboard_sessions WHERE id_hash = ?1",
                [id_hash],
                session_from_row,
            )
            .optional()
        })
    }

    /// Every session, the most recently used first.
    pub(crate) fn sessions(&self) -> Result<Vec<Session>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id_hash, created_at, last_seen_at, user_agent FROM dashboard_sessions
                 ORDER BY last_seen_at DESC, created_at DESC",
            )?;
            stmt.query_map([], session_from_row)?.collect()
        })
    }

    /// Records that a session was used now.
    pub(crate) fn touch_session(&self, id_hash: &str, now: i64) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute("UPDATE dashboard_sessions SET last_seen_at = ?2 WHERE id_hash = ?1", params![id_hash, now])
        })?;
        Ok(())
    }

    /// Ends one session (`Some`), or every session (`None`).
    pub(crate) fn end_sessions(&self, id_hash: Option<&str>) -> Result<usize> {
        self.with_conn(|conn| {
            conn.execute("DELETE FROM dashboard_sessions WHERE ?1 IS NULL OR id_hash = ?1", [id_hash])
        })
    }
}
