//! What readers read: `restore` and `verify` (a delivery with its parts), `files` and
//! the dashboard (delivered objects a page at a time), `status` and the heartbeat
//! (counts). Nothing here writes.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::Ledger;
use super::model::{
    Counts, DELIVERY_COLUMNS, DeliveredFile, DeliveredSummary, Delivery, PACK_COLUMNS, PART_COLUMNS, Pack,
    PackCandidate, Part, State, delivery_from_row, pack_from_row, part_from_row,
};
use crate::error::{Error, Result};

/// Up to this many delivered objects under a prefix are found by key and sorted by date;
/// more are found by walking all of them by date.
const FEW_KEYS: u64 = 5000;

/// Which delivered objects a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DeliveredFilter {
    pub(crate) bucket: Option<String>,
    /// Keys starting with this.
    pub(crate) prefix: Option<String>,
    /// Only those sent before this `(sent_at, id)`: the last row of the previous page.
    pub(crate) before: Option<(i64, i64)>,
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
/// Which delivered objects `restore --all` takes: of these buckets (all when empty),
/// under a prefix, as of a moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selection {
    pub(crate) buckets: Vec<String>,
    pub(crate) prefix: Option<String>,
    /// Unix milliseconds: per key, the newest version whose S3 last-modified time (its
    /// delivery time where that is unknown) is at or before this. Keys with none are
    /// left out.
    pub(crate) as_of_ms: Option<i64>,
}

impl Selection {
    /// `AND …` for a delivery row aliased `alias`, with its values.
    fn sql(&self, alias: &str, values: &mut Vec<rusqlite::types::Value>) -> String {
        let mut sql = String::new();
        if !self.buckets.is_empty() {
            let marks = vec!["?"; self.buckets.len()].join(", ");
            sql.push_str(&format!(" AND {alias}.bucket IN ({marks})"));
            values.extend(self.buckets.iter().map(|b| b.clone().into()));
        }
        if let Some(prefix) = &self.prefix {
            match key_after_prefix(prefix) {
                Some(end) => {
                    sql.push_str(&format!(" AND {alias}.key >= ? AND {alias}.key < ?"));
                    values.extend([prefix.clone().into(), end.into()]);
                }
                None => {
                    sql.push_str(&format!(" AND substr({alias}.key, 1, length(?)) = ?"));
                    values.extend([prefix.clone().into(), prefix.clone().into()]);
                }
            }
        }
        if let Some(as_of) = self.as_of_ms {
            sql.push_str(&format!(" AND {} <= ?", version_time(alias)));
            values.push(as_of.into());
        }
        sql
    }
}

/// `WHERE …` of the objects a selection takes, after `after`: delivered versions with no
/// newer delivered version of their key (as of the moment, too).
fn restorable(selection: &Selection, after: Option<(&str, &str)>) -> (String, Vec<rusqlite::types::Value>) {
    let mut values = Vec::new();
    let mut sql = String::from("d.state = 'sent'");
    sql.push_str(&selection.sql("d", &mut values));
    if let Some((bucket, key)) = after {
        sql.push_str(" AND (d.bucket, d.key) > (?, ?)");
        values.extend([bucket.to_string().into(), key.to_string().into()]);
    }
    let (t_d, t_e) = (version_time("d"), version_time("e"));
    let as_of = match selection.as_of_ms {
        Some(ms) => {
            values.push(ms.into());
            format!("AND {t_e} <= ?")
        }
        None => String::new(),
    };
    sql.push_str(&format!(
        " AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.bucket = d.bucket AND e.key = d.key
            AND e.state = 'sent' AND e.id != d.id {as_of}
            AND ({t_e}, e.sent_at, e.id) > ({t_d}, d.sent_at, d.id))"
    ));
    (sql, values)
}

/// When a version came to be, for `--as-of`: its S3 last-modified time, or its delivery.
fn version_time(alias: &str) -> String {
    format!("COALESCE({alias}.last_modified_ms, {alias}.sent_at * 1000)")
}

impl Counts {
    /// Deliveries not yet delivered nor failed: pending, or being sent right now.
    pub fn waiting(&self) -> u64 {
        self.pending + self.sending
    }
}

impl Ledger {
    /// The next `limit` objects `selection` takes, in (bucket, key) order after `after`:
    /// for each key, its newest delivered version (as of the selection's moment). Each
    /// key is found through the index on (state, bucket, key), its other versions
    /// through the one on (bucket, key, etag): one pass, however many objects.
    pub(crate) fn restorable_page(
        &self,
        selection: &Selection,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let columns = DELIVERY_COLUMNS.split(',').map(|c| format!("d.{}", c.trim())).collect::<Vec<_>>().join(", ");
        let (filter, mut values) = restorable(selection, after);
        let sql = format!(
            "SELECT {columns} FROM deliveries d WHERE {filter} AND d.pack_id IS NULL ORDER BY d.bucket, d.key LIMIT ?"
        );
        values.push(i64::from(limit).into());
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map(rusqlite::params_from_iter(values), delivery_from_row)?.collect()
        })
    }

    /// The next `limit` packs that hold objects `selection` takes, after pack `after`.
    pub(crate) fn restorable_packs(&self, selection: &Selection, after: i64, limit: u32) -> Result<Vec<i64>> {
        let (filter, mut values) = restorable(selection, None);
        let sql = format!(
            "SELECT DISTINCT d.pack_id FROM deliveries d WHERE {filter} AND d.pack_id > ? ORDER BY d.pack_id LIMIT ?"
        );
        values.extend([after.into(), i64::from(limit).into()]);
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map(rusqlite::params_from_iter(values), |r| r.get(0))?.collect()
        })
    }

    /// The objects of pack `pack_id` that `selection` takes, by their place in the tar.
    pub(crate) fn restorable_members(&self, selection: &Selection, pack_id: i64) -> Result<Vec<Delivery>> {
        let columns = DELIVERY_COLUMNS.split(',').map(|c| format!("d.{}", c.trim())).collect::<Vec<_>>().join(", ");
        let (filter, mut values) = restorable(selection, None);
        let sql = format!(
            "SELECT {columns} FROM deliveries d JOIN parts p ON p.delivery_id = d.id
             WHERE {filter} AND d.pack_id = ? ORDER BY p.offset"
        );
        values.push(pack_id.into());
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map(rusqlite::params_from_iter(values), delivery_from_row)?.collect()
        })
    }

    /// The objects of pack `pack_id` that `selection` takes, by their place in the tar,
    /// each with its part rows (a member has one: where its bytes lie in the pack). One
    /// read transaction for them all.
    pub(crate) fn pack_members(&self, selection: &Selection, pack_id: i64) -> Result<Vec<(Delivery, Vec<Part>)>> {
        let members = self.restorable_members(selection, pack_id)?;
        self.with_conn(|conn| {
            let tx = conn.unchecked_transaction()?;
            let mut stmt =
                tx.prepare_cached(&format!("SELECT {PART_COLUMNS} FROM parts WHERE delivery_id = ?1 ORDER BY idx"))?;
            let mut out = Vec::with_capacity(members.len());
            for d in members {
                let parts = stmt.query_map([d.id], part_from_row)?.collect::<rusqlite::Result<_>>()?;
                out.push((d, parts));
            }
            drop(stmt);
            tx.commit()?;
            Ok(out)
        })
    }

    /// A pack, by its id.
    pub(crate) fn pack(&self, id: i64) -> Result<Option<Pack>> {
        self.with_conn(|conn| {
            conn.query_row(&format!("SELECT {PACK_COLUMNS} FROM packs WHERE id = ?1"), [id], pack_from_row).optional()
        })
    }

    /// What the engine needs to gather small objects into packs, for the deliveries `ids`.
    pub(crate) fn pack_candidates(&self, ids: &[i64]) -> Result<Vec<PackCandidate>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT bucket, key, size, EXISTS (SELECT 1 FROM parts p WHERE p.delivery_id = d.id)
                 FROM deliveries d WHERE id = ?1",
            )?;
            let mut out = Vec::with_capacity(ids.len());
            for &id in ids {
                if let Some((bucket, key, size, started)) =
                    stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()?
                {
                    out.push(PackCandidate { id, bucket, key, size, started });
                }
            }
            Ok(out)
        })
    }

    /// How many objects `selection` takes, the bytes of their stored streams, and how
    /// many of those are encrypted.
    /// A pack holding some of them counts once, whole: it is downloaded once.
    pub(crate) fn restorable_summary(&self, selection: &Selection) -> Result<(u64, u64, u64)> {
        let (filter, values) = restorable(selection, None);
        let objects = format!(
            "SELECT COUNT(*),
                COALESCE(SUM(CASE WHEN d.pack_id IS NULL
                    THEN (SELECT SUM(p.size) FROM parts p WHERE p.delivery_id = d.id) END), 0),
                COALESCE(SUM(d.encrypted), 0)
             FROM deliveries d WHERE {filter}"
        );
        let packs = format!(
            "SELECT COALESCE(SUM(size), 0) FROM packs WHERE id IN (SELECT d.pack_id FROM deliveries d WHERE {filter})"
        );
        self.with_conn(|conn| {
            let (count, bytes, encrypted): (u64, u64, u64) = conn
                .prepare_cached(&objects)?
                .query_row(rusqlite::params_from_iter(values.clone()), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let packed: u64 =
                conn.prepare_cached(&packs)?.query_row(rusqlite::params_from_iter(values), |r| r.get(0))?;
            Ok((count, bytes + packed, encrypted))
        })
    }

    pub(crate) fn delivery(&self, id: i64) -> Result<Option<Delivery>> {
        self.with_conn(|conn| {
            conn.query_row(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"), [id], delivery_from_row)
                .optional()
        })
    }

    pub(crate) fn parts(&self, delivery_id: i64) -> Result<Vec<Part>> {
        self.with_conn(|conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {PART_COLUMNS} FROM parts WHERE delivery_id = ?1 ORDER BY idx"))?;
            stmt.query_map([delivery_id], part_from_row)?.collect()
        })
    }

    /// Every delivery of a key (or of one version of it), the newest version first.
    pub(crate) fn versions_of(&self, bucket: &str, key: &str, etag: Option<&str>) -> Result<Vec<Delivery>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE bucket = ?1 AND key = ?2 AND (?3 IS NULL OR etag = ?3)
                 ORDER BY state = 'sent' DESC, COALESCE(last_modified_ms, 0) DESC, sent_at DESC, id DESC"
            ))?;
            stmt.query_map(params![bucket, key, etag], delivery_from_row)?.collect()
        })
    }

    /// Delivered objects to check: `n` picked at random (all of them when `n` is 0),
    /// optionally of one bucket.
    pub(crate) fn sample_delivered(&self, bucket: Option<&str>, n: u64) -> Result<Vec<DeliveredFile>> {
        let deliveries: Vec<Delivery> = self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'sent' AND (?1 IS NULL OR bucket = ?1)
                 ORDER BY CASE WHEN ?2 = 0 THEN id ELSE random() END LIMIT CASE WHEN ?2 = 0 THEN -1 ELSE ?2 END"
            ))?;
            stmt.query_map(params![bucket, n], delivery_from_row)?.collect()
        })?;
        self.with_parts(deliveries)
    }

    /// Delivered objects, newest first, optionally of one bucket and under a prefix.
    pub fn delivered(&self, bucket: Option<&str>, prefix: Option<&str>) -> Result<Vec<DeliveredFile>> {
        let deliveries: Vec<Delivery> = self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'sent'
                   AND (?1 IS NULL OR bucket = ?1)
                   AND (?2 IS NULL OR substr(key, 1, length(?2)) = ?2)
                 ORDER BY sent_at DESC, id DESC"
            ))?;
            stmt.query_map(params![bucket, prefix], delivery_from_row)?.collect()
        })?;
        self.with_parts(deliveries)
    }

    fn with_parts(&self, deliveries: Vec<Delivery>) -> Result<Vec<DeliveredFile>> {
        deliveries
            .into_iter()
            .map(|delivery| {
                let parts = self.parts(delivery.id)?;
                let pack = match delivery.pack_id {
                    Some(id) => self.pack(id)?,
                    None => None,
                };
                Ok(DeliveredFile { delivery, parts, pack })
            })
            .collect()
    }

    /// Deliveries in a state, oldest first (for reports and alerts).
    pub(crate) fn deliveries_in(&self, state: State) -> Result<Vec<Delivery>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = ?1 ORDER BY id"))?;
            stmt.query_map([state.as_str()], delivery_from_row)?.collect()
        })
    }

    /// The first `limit` deliveries in a state, the soonest due (then the oldest) first.
    pub(crate) fn deliveries_in_page(&self, state: State, limit: u32) -> Result<Vec<Delivery>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = ?1 ORDER BY next_attempt_at, id LIMIT ?2"
            ))?;
            stmt.query_map(params![state.as_str(), limit], delivery_from_row)?.collect()
        })
    }

    /// The bytes of the given deliveries, together.
    pub(crate) fn total_size(&self, ids: &[i64]) -> Result<u64> {
        let ids =
            serde_json::to_string(ids).map_err(|e| Error::Internal(format!("cannot encode delivery ids: {e}")))?;
        self.with_conn(|conn| {
            conn.query_row(
                "SELECT COALESCE(SUM(size), 0) FROM deliveries WHERE id IN (SELECT value FROM json_each(?1))",
                [ids],
                |r| r.get(0),
            )
        })
    }

    /// Deliveries by state, over all buckets and per bucket.
    pub(crate) fn counts(&self) -> Result<(Counts, HashMap<String, Counts>)> {
        let rows: Vec<(String, State, u64, u64, u64)> = self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT bucket, state, COUNT(*), COALESCE(SUM(size), 0), COUNT(pack_id) FROM deliveries
                 GROUP BY bucket, state",
            )?;
            stmt.query_map([], |r| {
                Ok((r.get(0)?, State::parse(&r.get::<_, String>(1)?)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect()
        })?;
        let mut total = Counts::default();
        let mut per_bucket: HashMap<String, Counts> = HashMap::new();
        for (bucket, state, n, bytes, packed) in rows {
            for c in [&mut total, per_bucket.entry(bucket).or_default()] {
                match state {
                    State::Sent => {
                        c.sent += n;
                        c.sent_bytes += bytes;
                        c.packed += packed;
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

    /// Activity since a time, for the heartbeat: (deliveries sent, bytes, last sent_at).
    pub(crate) fn sent_since(&self, since: i64) -> Result<(u64, u64, Option<i64>)> {
        self.with_conn(|conn| {
            let (n, bytes): (u64, u64) = conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM deliveries WHERE state = 'sent' AND sent_at >= ?1",
                [since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let last: Option<i64> =
                conn.query_row("SELECT MAX(sent_at) FROM deliveries WHERE state = 'sent'", [], |r| r.get(0))?;
            Ok((n, bytes, last))
        })
    }

    /// Deliveries that failed (or died) since a time.
    pub(crate) fn failures_since(&self, since: i64) -> Result<u64> {
        self.with_conn(|conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM deliveries WHERE state IN ('failed', 'dead') AND updated_at >= ?1",
                [since],
                |r| r.get(0),
            )
        })
    }

    /// One page of delivered objects, newest first: those sent before `before` (a
    /// `(sent_at, id)` from the previous page), of one bucket and under a prefix when
    /// given, each with its number of parts and its first message.
    pub(crate) fn delivered_page(&self, filter: &DeliveredFilter, limit: u32) -> Result<Vec<DeliveredSummary>> {
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
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            // The two counts follow the delivery's own columns.
            let after = DELIVERY_COLUMNS.split(',').count();
            stmt.query_map(rusqlite::params_from_iter(values), |r| {
                Ok(DeliveredSummary {
                    delivery: delivery_from_row(r)?,
                    parts: r.get(after)?,
                    first_message_id: r.get(after + 1)?,
                })
            })?
            .collect()
        })
    }

    /// How many delivered objects match a filter (its `before` aside), counting no
    /// further than `at_most`: a prefix's keys are counted one by one.
    pub(crate) fn count_delivered(&self, filter: &DeliveredFilter, at_most: Option<u64>) -> Result<u64> {
        let (mut sql, mut values) = filter.sql(false);
        sql.insert_str(0, "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries ");
        sql.push_str(" LIMIT ?)");
        values.push(at_most.map_or(-1, |n| n.min(i64::MAX as u64) as i64).into());
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_row(rusqlite::params_from_iter(values), |r| r.get(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{terms, version};
    use super::*;

    #[test]
    fn delivered_pages_filter_by_bucket_and_prefix_and_go_on_where_the_last_stopped() {
        let l = Ledger::in_memory().unwrap();
        let keys = ["a/1", "a/2", "a0", "a", "ab/\u{10FFFF}", "b/1"];
        for (i, key) in keys.iter().enumerate() {
            l.discover_bucket("b", true, 0).unwrap();
            l.insert_versions(&[version(key, "e")], State::Pending, 0).unwrap();
            let id = l.claimable(&["b".into()], 0).unwrap()[0];
            l.claim(id, &terms("o", 100, 4096, 0, false)).unwrap().unwrap();
            assert!(l.mark_sent(id, "o", "sha", None, None, 100 + i as i64 / 2).unwrap());
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
    fn restorable_objects_are_the_newest_version_of_each_key_as_of_a_moment() {
        let l = Ledger::in_memory().unwrap();
        // Versions of `k` at 1 s, 5 s and 9 s; `j` only at 9 s; `m` at 2 s, never sent.
        let versions = [
            ("k", "e1", 1000, true),
            ("k", "e5", 5000, true),
            ("k", "e9", 9000, true),
            ("j", "f9", 9000, true),
            ("m", "g2", 2000, false),
        ];
        for (key, etag, mtime, sent) in versions {
            let v = super::super::ObjectVersion { last_modified_ms: Some(mtime), ..version(key, etag) };
            l.insert_versions(&[v], State::Pending, 0).unwrap();
            if sent {
                let id = l.versions_of("b", key, Some(etag)).unwrap()[0].id;
                l.claim(id, &terms("o", 100, 4096, 0, false)).unwrap().unwrap();
                assert!(l.mark_sent(id, "o", "sha", None, None, 100).unwrap());
            }
        }
        let pick = |as_of: Option<i64>, after: Option<(&str, &str)>, limit| -> Vec<(String, String)> {
            let selection = Selection { as_of_ms: as_of, ..Selection::default() };
            l.restorable_page(&selection, after, limit)
                .unwrap()
                .into_iter()
                .map(|d| (d.object.key, d.object.etag))
                .collect()
        };
        let owned = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        assert_eq!(pick(None, None, 10), owned(&[("j", "f9"), ("k", "e9")]));
        assert_eq!(pick(Some(6000), None, 10), owned(&[("k", "e5")]), "j did not exist yet; m was never sent");
        assert_eq!(pick(Some(999), None, 10), owned(&[]));
        assert_eq!(pick(None, None, 1), owned(&[("j", "f9")]));
        assert_eq!(pick(None, Some(("b", "j")), 10), owned(&[("k", "e9")]), "the next page");
        let (count, _, encrypted) = l.restorable_summary(&Selection::default()).unwrap();
        assert_eq!((count, encrypted), (2, 0));
        let only_other = Selection { buckets: vec!["other".into()], ..Selection::default() };
        assert_eq!(l.restorable_summary(&only_other).unwrap().0, 0);

        // A version put back into S3 is known as delivered, with the same parts.
        let k9 = l.versions_of("b", "k", Some("e9")).unwrap().remove(0);
        assert!(l.record_restored(&k9, "new-etag", Some(20_000), 200).unwrap());
        assert!(!l.record_restored(&k9, "new-etag", Some(20_000), 200).unwrap(), "once");
        let restored = l.versions_of("b", "k", Some("new-etag")).unwrap().remove(0);
        assert_eq!((restored.state, restored.sha256.as_deref()), (State::Sent, Some("sha")));
        assert!(l.known_versions_between("b", "k", "k").unwrap().contains(&("k".into(), "new-etag".into())));
    }
}
