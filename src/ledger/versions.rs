//! Object versions coming in: from listings (a page at a time, with the ETag cache for
//! servers whose listings carry none) and from bucket notifications. What comes in
//! becomes a `deliveries` row, `pending` (to send) or `skipped` (a bucket enabled from
//! now on); its identity is `(bucket, key, etag)`, so a version seen twice is recorded
//! once.

use std::collections::{HashMap, HashSet};

use rusqlite::params;

use super::Ledger;
use super::model::{Delivery, ObjectVersion, State};
use crate::error::Result;

impl Ledger {
    /// Every (key, etag) with a delivery row, whatever its state, for the keys from
    /// `first` to `last` (both included, in the UTF-8 byte order S3 lists keys in). A
    /// listing page is compared against this, so memory follows the page, not the bucket.
    pub fn known_versions_between(&self, bucket: &str, first: &str, last: &str) -> Result<HashSet<(String, String)>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT key, etag FROM deliveries WHERE bucket = ?1 AND key >= ?2 AND key <= ?3")?;
            stmt.query_map(params![bucket, first, last], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// What HEAD requests taught about the keys from `first` to `last`: key → (size,
    /// last-modified, ETag).
    pub fn etag_cache_between(
        &self,
        bucket: &str,
        first: &str,
        last: &str,
    ) -> Result<HashMap<String, (u64, i64, String)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT key, size, last_modified_ms, etag FROM etag_cache WHERE bucket = ?1 AND key >= ?2 AND key <= ?3",
            )?;
            stmt.query_map(params![bucket, first, last], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?
                .collect()
        })
    }

    /// Remembers ETags learned with HEAD, keyed on size and last-modified.
    pub fn remember_etags(&self, versions: &[ObjectVersion]) -> Result<()> {
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

    /// Records object versions as `pending`, or as `skipped`. Known versions keep their
    /// state, except that skipping also covers versions not yet sent (pending or
    /// failed). Returns how many rows were inserted or changed.
    pub fn insert_versions(&self, versions: &[ObjectVersion], state: State, now: i64) -> Result<usize> {
        let on_conflict = if state == State::Skipped {
            "DO UPDATE SET state = 'skipped', updated_at = excluded.updated_at
             WHERE deliveries.state IN ('pending', 'failed')"
        } else {
            "DO NOTHING"
        };
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "INSERT INTO deliveries (bucket, key, etag, size, last_modified_ms, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (bucket, key, etag) {on_conflict}"
            ))?;
            let mut inserted = 0;
            for v in versions {
                inserted +=
                    stmt.execute(params![v.bucket, v.key, v.etag, v.size, v.last_modified_ms, state.as_str(), now])?;
            }
            Ok(inserted)
        })
    }

    /// Records object versions named by bucket notifications, in one transaction (one
    /// disk sync for everything that arrived together): a bucket seen for the first time
    /// is recorded, enabled as `enable_new` says; versions of enabled buckets become
    /// pending. Returns, for each version, whether its bucket is enabled.
    pub fn accept_events(&self, versions: &[ObjectVersion], enable_new: bool, now: i64) -> Result<Vec<bool>> {
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

impl Ledger {
    /// Records a version that `restore --all --to-s3` put back into S3 as delivered: its
    /// bytes are the ones `from` delivered, in the same Telegram messages, so the next
    /// `sync` sends nothing; its ETag is remembered for listings that carry none.
    /// Returns false when the ledger knew the version already.
    pub fn record_restored(
        &self,
        from: &Delivery,
        etag: &str,
        last_modified_ms: Option<i64>,
        now: i64,
    ) -> Result<bool> {
        let o = &from.object;
        self.write(|tx| {
            let inserted = tx.execute(
                "INSERT INTO deliveries (bucket, key, etag, size, last_modified_ms, state, part_size, sha256,
                    manifest_message_id, manifest_file_id, created_at, updated_at, sent_at, encrypted, plaintext_sha256,
                    chat_id, topic_id, manifest_bot_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'sent', ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT (bucket, key, etag) DO NOTHING",
                params![
                    o.bucket,
                    o.key,
                    etag,
                    o.size,
                    last_modified_ms,
                    from.part_size,
                    from.sha256,
                    from.manifest_message_id,
                    from.manifest_file_id,
                    now,
                    from.sent_at,
                    from.encrypted,
                    from.plaintext_sha256,
                    from.chat,
                    from.topic,
                    from.manifest_bot_id
                ],
            )?;
            if inserted == 1 {
                let id = tx.last_insert_rowid();
                tx.execute(
                    "INSERT INTO parts (delivery_id, idx, offset, size, sha256, hash_state, file_name, message_id,
                        file_id, file_unique_id, sent_at, bot_id, chat_id, topic_id)
                     SELECT ?2, idx, offset, size, sha256, NULL, file_name, message_id, file_id, file_unique_id, sent_at,
                        bot_id, chat_id, topic_id
                     FROM parts WHERE delivery_id = ?1",
                    params![from.id, id],
                )?;
            }
            if let Some(mtime) = last_modified_ms {
                tx.execute(
                    "INSERT INTO etag_cache (bucket, key, size, last_modified_ms, etag) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size,
                        last_modified_ms = excluded.last_modified_ms, etag = excluded.etag",
                    params![o.bucket, o.key, o.size, mtime, etag],
                )?;
            }
            Ok(inserted == 1)
        })
    }
}

impl Ledger {
    /// Fills in what rows from before several bots were recorded without: each part's
    /// bot, chat and topic, each started delivery's destination and its manifest's bot,
    /// with the bot and chat configured now. Once: migration 6 asks for it when the ledger
    /// had parts, and this answers. Returns whether it did.
    pub fn backfill_destinations(&self, bot_id: i64, chat: &str, topic: Option<i64>) -> Result<bool> {
        self.write(|tx| {
            let asked = tx.execute("DELETE FROM backfill WHERE what = 'destinations'", [])?;
            if asked == 0 {
                return Ok(false);
            }
            for table in ["parts", "superseded_parts"] {
                tx.execute(
                    &format!(
                        "UPDATE {table} SET bot_id = COALESCE(bot_id, ?1), chat_id = COALESCE(chat_id, ?2),
                            topic_id = COALESCE(topic_id, ?3)
                         WHERE bot_id IS NULL OR chat_id IS NULL"
                    ),
                    params![bot_id, chat, topic],
                )?;
            }
            tx.execute(
                "UPDATE deliveries SET chat_id = ?2, topic_id = ?3 WHERE chat_id IS NULL AND state != 'pending'
                    AND EXISTS (SELECT 1 FROM parts p WHERE p.delivery_id = deliveries.id)",
                params![bot_id, chat, topic],
            )?;
            tx.execute(
                "UPDATE deliveries SET manifest_bot_id = ?1 WHERE manifest_bot_id IS NULL AND manifest_message_id IS NOT NULL",
                [bot_id],
            )?;
            Ok(true)
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
