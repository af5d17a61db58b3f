//! The `buckets` table: every bucket tgploy has seen, whether it is enabled, and how its
//! last listing went. Written by `sync` (discovery, listings), the webhook intake
//! ([`Ledger::accept_events`](super::Ledger::accept_events)) and bucket switches.

use rusqlite::{OptionalExtension, params};

use super::Ledger;
use super::model::{Bucket, bucket_from_row};
use crate::error::{Error, Result};

const BUCKET_COLUMNS: &str = "name, enabled, discovered_at, last_listed_at, last_error";

impl Ledger {
    /// Every known bucket, by name.
    pub(crate) fn buckets(&self) -> Result<Vec<Bucket>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {BUCKET_COLUMNS} FROM buckets ORDER BY name"))?;
            stmt.query_map([], bucket_from_row)?.collect()
        })
    }

    pub(crate) fn bucket(&self, name: &str) -> Result<Option<Bucket>> {
        self.with_conn(|conn| {
            conn.query_row(&format!("SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = ?1"), [name], bucket_from_row)
                .optional()
        })
    }

    /// Records a bucket seen on the server; returns it as stored (an existing bucket
    /// keeps its enabled flag).
    pub(crate) fn discover_bucket(&self, name: &str, enabled: bool, now: i64) -> Result<Bucket> {
        let stored = self.write(|tx| {
            tx.execute(
                "INSERT INTO buckets (name, enabled, discovered_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
                params![name, enabled, now],
            )?;
            tx.query_row(&format!("SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = ?1"), [name], bucket_from_row)
                .optional()
        })?;
        stored.ok_or_else(|| Error::Ledger {
            path: self.path().display().to_string(),
            reason: format!("bucket {name} vanished after insertion"),
        })
    }

    /// Enables or disables a bucket, creating its row when needed.
    pub(crate) fn set_bucket_enabled(&self, name: &str, enabled: bool, now: i64) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO buckets (name, enabled, discovered_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled",
                params![name, enabled, now],
            )
        })?;
        Ok(())
    }

    /// Records the outcome of listing a bucket.
    pub(crate) fn bucket_listed(&self, name: &str, now: i64, error: Option<&str>) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE buckets SET last_listed_at = CASE WHEN ?3 IS NULL THEN ?2 ELSE last_listed_at END,
                    last_error = ?3
                 WHERE name = ?1",
                params![name, now, error],
            )
        })?;
        Ok(())
    }
}
