//! Object versions coming in: from listings (a page at a time, with the ETag cache for
//! servers whose listings carry none) and from bucket notifications. What comes in
//! becomes a `deliveries` row, `pending` (to send) or `skipped` (a bucket enabled from
//! now on); its identity is `(bucket, key, etag)`, so a version seen twice is recorded
//! once.

use std::collections::{HashMap, HashSet};

use rusqlite::params;

use super::Ledger;
use super::model::{ObjectVersion, State};
use crate::error::Result;

impl Ledger {
    /// Every (key, etag) with a delivery row, whatever its state, for the keys from
    /// `first` to `last` (both included, in the UTF-8 byte order S3 lists keys in). A
    /// listing page is compared against this, so memory follows the page, not the bucket.
    pub(crate) fn known_versions_between(
        &self,
        bucket: &str,
        first: &str,
        last: &str,
    ) -> Result<HashSet<(String, String)>> {
        self.with_conn(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT key, etag FROM deliveries WHERE bucket = ?1 AND key >= ?2 AND key <= ?3")?;
            stmt.query_map(params![bucket, first, last], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// What HEAD requests taught about the keys from `first` to `last`: key → (size,
    /// last-modified, ETag).
    pub(crate) fn etag_cache_between(
        &self,
        bucket: &str,
        first: &str,
        last: &str,
    ) -> Result<HashMap<String, (u64, i64, String)>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT key, size, last_modified_ms, etag FROM etag_cache WHERE bucket = ?1 AND key >= ?2 AND key <= ?3",
            )?;
            stmt.query_map(params![bucket, first, last], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?
                .collect()
        })
    }

    /// Remembers ETags learned with HEAD, keyed on size and last-modified.
    pub(crate) fn remember_etags(&self, versions: &[ObjectVersion]) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO etag_cache (bucket, key, size, last_modified_ms, etag) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size,
                    last_modified_ms = excluded.last_modified_ms, etag = excluded.etag",
            )?;
            for v in versions {
                let Some(mtime) = v.last_modified_ms else { continue };
                stmt.execute(params![v.bucket, v.key, v.size, mtime, v.etag])?;
            }
            Ok(())
        })
    }

    /// Records object versions as `pending`, or as `skipped` (`buckets enable
    /// --from-now`). Known versions keep their state, except that skipping also covers
    /// versions not yet sent, a change of state that [`super::claims`] makes. Returns how
    /// many rows were inserted or changed.
    pub(crate) fn insert_versions(&self, versions: &[ObjectVersion], state: State, now: i64) -> Result<usize> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO deliveries (bucket, key, etag, size, last_modified_ms, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (bucket, key, etag) DO NOTHING",
            )?;
            let mut changed = 0;
            for v in versions {
                let inserted =
                    stmt.execute(params![v.bucket, v.key, v.etag, v.size, v.last_modified_ms, state.as_str(), now])?;
                changed += inserted;
                if inserted == 0 && state == State::Skipped {
                    changed += super::claims::skip_unsent(tx, v, now)?;
                }
            }
            Ok(changed)
        })
    }

    /// Records object versions named by bucket notifications, in one transaction (one
    /// disk sync for everything that arrived together): a bucket seen for the first time
    /// is recorded, enabled as `enable_new` says; versions of enabled buckets become
    /// pending. Returns, for each version, whether its bucket is enabled.
    pub(crate) fn accept_events(&self, versions: &[ObjectVersion], enable_new: bool, now: i64) -> Result<Vec<bool>> {
        self.write(|tx| {
            let mut discover = tx.prepare_cached(
                "INSERT INTO buckets (name, enabled, discovered_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET name = name RETURNING enabled",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO deliveries (bucket, key, etag, size, last_modified_ms, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6) ON CONFLICT (bucket, key, etag) DO NOTHING",
            )?;
            let mut accepted = Vec::with_capacity(versions.len());
            for v in versions {
                let enabled: bool = discover.query_row(params![v.bucket, enable_new, now], |r| r.get(0))?;
                if enabled {
                    insert.execute(params![v.bucket, v.key, v.etag, v.size, v.last_modified_ms, now])?;
                }
                accepted.push(enabled);
            }
            Ok(accepted)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::version;
    use super::*;

    #[test]
    fn versions_are_inserted_once() {
        let l = Ledger::in_memory().unwrap();
        assert_eq!(l.insert_versions(&[version("k", "e"), version("k", "f")], State::Pending, 0).unwrap(), 2);
        assert_eq!(l.insert_versions(&[version("k", "e")], State::Pending, 0).unwrap(), 0);
        assert_eq!(l.known_versions_between("b", "k", "k").unwrap().len(), 2);
        assert!(l.known_versions_between("b", "a", "j").unwrap().is_empty());
    }
}
