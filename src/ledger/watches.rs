//! Freshness: the newest object version of a bucket (under a prefix), and the watches
//! that are overdue now ([`crate::freshness`] decides; this keeps what it decided).

use rusqlite::{OptionalExtension, params};

use super::Ledger;
use crate::error::Result;

/// The newest object version recorded under a prefix: its key and S3 last-modified time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Newest {
    pub(crate) key: String,
    /// Milliseconds since the Unix epoch.
    pub(crate) modified_ms: i64,
}

/// The first string after every string that starts with `prefix` (`None`: there is
/// none, the prefix is all U+10FFFF or empty).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = char::from_u32(last as u32 + 1).or_else(|| char::from_u32(last as u32 + 0x801)) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl Ledger {
    /// The newest version recorded in `bucket` under `prefix` (every key for ""), by its
    /// S3 last-modified time, whatever its delivery state: a version skipped or waiting
    /// still shows that the backup job produced it.
    pub(crate) fn newest_version(&self, bucket: &str, prefix: &str) -> Result<Option<Newest>> {
        let end = prefix_end(prefix);
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT key, last_modified_ms FROM deliveries INDEXED BY deliveries_bucket_modified
                 WHERE bucket = ?1 AND last_modified_ms IS NOT NULL AND key >= ?2 AND (?3 IS NULL OR key < ?3)
                 ORDER BY last_modified_ms DESC LIMIT 1",
            )?;
            stmt.query_row(params![bucket, prefix, end], |r| Ok(Newest { key: r.get(0)?, modified_ms: r.get(1)? }))
                .optional()
        })
    }

    /// Records a watch as overdue since `since`; false when it already was.
    pub(crate) fn watch_overdue(&self, bucket: &str, prefix: &str, since: i64) -> Result<bool> {
        let added = self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO overdue_watches (bucket, prefix, since) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![bucket, prefix, since],
            )
        })?;
        Ok(added == 1)
    }

    /// Records a watch as fresh again; returns since when it was overdue, if it was.
    pub(crate) fn watch_fresh(&self, bucket: &str, prefix: &str) -> Result<Option<i64>> {
        self.write(|tx| {
            let since = tx
                .query_row(
                    "SELECT since FROM overdue_watches WHERE bucket = ?1 AND prefix = ?2",
                    params![bucket, prefix],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute("DELETE FROM overdue_watches WHERE bucket = ?1 AND prefix = ?2", params![bucket, prefix])?;
            Ok(since)
        })
    }
}

#[cfg(test)]
impl Ledger {
    /// The watches overdue when last looked at, with the time each became so.
    pub(crate) fn overdue_watches(&self) -> Result<Vec<(String, String, i64)>> {
        self.with_conn(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT bucket, prefix, since FROM overdue_watches ORDER BY bucket, prefix")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::ObjectVersion;
    use super::super::State;
    use super::*;

    #[test]
    fn prefix_ends_are_the_first_strings_past_the_prefix() {
        assert_eq!(prefix_end("db/").as_deref(), Some("db0"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end(""), None);
    }

    #[test]
    fn the_newest_version_under_a_prefix_is_found_by_its_modified_time() {
        let l = Ledger::in_memory().unwrap();
        let v = |key: &str, ms| ObjectVersion {
            bucket: "b".into(),
            key: key.into(),
            etag: format!("e-{key}"),
            size: 1,
            last_modified_ms: ms,
        };
        l.insert_versions(
            &[v("db/a", Some(30)), v("db/b", Some(10)), v("dc", Some(99)), v("db0", Some(98)), v("db/c", None)],
            State::Pending,
            0,
        )
        .unwrap();
        assert_eq!(l.newest_version("b", "db/").unwrap(), Some(Newest { key: "db/a".into(), modified_ms: 30 }));
        assert_eq!(l.newest_version("b", "").unwrap().unwrap().key, "dc");
        assert_eq!(l.newest_version("b", "wal/").unwrap(), None);
        assert_eq!(l.newest_version("other", "").unwrap(), None);

        assert!(l.watch_overdue("b", "db/", 5).unwrap());
        assert!(!l.watch_overdue("b", "db/", 6).unwrap(), "already overdue");
        assert_eq!(l.overdue_watches().unwrap(), [("b".to_string(), "db/".to_string(), 5)]);
        assert_eq!(l.watch_fresh("b", "db/").unwrap(), Some(5));
        assert_eq!(l.watch_fresh("b", "db/").unwrap(), None);
    }
}
