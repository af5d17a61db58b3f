//! Where a delivery's state changes: claims, leases, parts, and the end states.
//!
//! The exactly-once argument, as far as the outside allows:
//!
//! 1. A run *claims* a delivery with one conditional `UPDATE` ([`Ledger::claim`]): only a
//!    `pending` row (or `failed`, for `retry`), or one whose lease ran out, becomes
//!    `sending` with this run as its owner. SQLite serialises writers, so of two runs
//!    (two timers, a timer and the webhook server) exactly one wins; the other sends
//!    nothing.
//! 2. Every later change is conditional on `owner = ? AND state = 'sending'`: a run
//!    whose lease ran out and whose delivery was taken over can record nothing more
//!    (its calls return `false`/`None`, and it stops).
//! 3. A part is committed ([`Ledger::record_part`]) as soon as Telegram accepts it,
//!    together with the whole stream's hash state, before the next part is sent. A run
//!    that dies resumes at the first part not recorded, so the only part that can go out
//!    twice is the one in flight when a process died (or whose answer was lost).
//! 4. The last step ([`Ledger::mark_sent`], [`Ledger::finish_single`]) makes the row
//!    `sent`; a failure makes it `failed` with a backoff, or `dead` after the last
//!    allowed attempt; a stop gives it back untouched ([`Ledger::release`]).
//!
//! Every other change of a delivery's row is here too, each safe for its own reason:
//! - [`skip_unsent`] (`buckets enable --from-now`) makes `pending` and `failed` rows
//!   `skipped`; a row claimed (`sending`) is left to its run, so no run loses a claim.
//! - [`Ledger::record_restored`] (`restore --all --to-s3`) inserts a version as `sent`
//!   with the parts of the delivery whose bytes it is: the same Telegram messages, so
//!   nothing is claimed or sent, and the next `sync` finds the version known.
//! - [`Ledger::backfill_destinations`] fills in, once, the bot, chat and topic of rows
//!   from before tgploy recorded them; it touches no state and no row a run holds
//!   (`pending` rows keep no destination).
//! - [`Ledger::revive`] and [`Ledger::make_failures_due`] change `dead` and `failed`
//!   rows only, which no run holds.
//! - A pack's members are claimed together ([`Ledger::claim_all`], each as
//!   [`Ledger::claim`] would, and only members with no part yet) and made `sent` together
//!   with the pack in one transaction ([`Ledger::record_pack`]), each conditional on this
//!   run still holding it: a crash before Telegram's answer resends at most that pack, a
//!   lost answer costs at most one duplicate pack, as for parts.
//!
//! New rows are created elsewhere (`versions.rs`: `pending`, or `skipped`), never changed
//! there.

mod packs;

use rusqlite::{OptionalExtension, Transaction, params};

use super::Ledger;
use super::model::{DELIVERY_COLUMNS, Delivery, ObjectVersion, Part, State, delivery_from_row};
use crate::error::Result;

impl Ledger {
    /// Ids of deliveries a `sync` may take in the given buckets: pending ones, and ones
    /// whose owner's lease ran out (a run that died).
    pub fn claimable(&self, buckets: &[String], now: i64) -> Result<Vec<i64>> {
        let rows: Vec<(i64, String)> = self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, bucket FROM deliveries
                 WHERE state = 'pending' OR (state = 'sending' AND lease_until < ?1) ORDER BY id",
            )?;
            stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })?;
        Ok(rows.into_iter().filter(|(_, b)| buckets.contains(b)).map(|(id, _)| id).collect())
    }

    /// Claims a delivery for `owner` until `lease_until`, if nobody else holds it.
    /// Fixes the part size on the first claim, and the destination (`chat`, `topic`)
    /// once a part is accepted: until then each claim takes the bucket's destination as
    /// configured now, so a delivery refused for a wrong chat or topic goes where the
    /// corrected settings say; after that, every part of the object goes where the first
    /// went. `None` when another run was faster.
    ///
    /// `sync` claims pending deliveries; `retry` (`failed`) claims failed ones. Either
    /// takes over a delivery whose lease ran out.
    pub(crate) fn claim(&self, id: i64, terms: &ClaimTerms<'_>) -> Result<Option<Delivery>> {
        self.write(|tx| claim_row(tx, id, terms, false))
    }

    /// Deliveries claimed right now, with their owners.
    pub(crate) fn leases(&self) -> Result<Vec<(i64, String)>> {
        self.with_conn(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id, owner FROM deliveries WHERE state = 'sending' AND owner IS NOT NULL")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// Ends the lease of an owner known to be dead, so the delivery can be resumed now.
    pub(crate) fn expire_lease(&self, id: i64, owner: &str) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE deliveries SET lease_until = 0 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                params![id, owner],
            )
        })?;
        Ok(())
    }

    /// Extends a lease; false when the claim was lost (the lease ran out and another
    /// run took the delivery over).
    pub(crate) fn renew_lease(&self, id: i64, owner: &str, lease_until: i64) -> Result<bool> {
        let changed = self.with_conn(|conn| {
            conn.execute(
                "UPDATE deliveries SET lease_until = ?3 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                params![id, owner, lease_until],
            )
        })?;
        Ok(changed == 1)
    }

    /// Commits a part Telegram accepted, renewing the lease in the same transaction.
    /// With the last part, `whole_sha256` records the digest of the whole stream. False
    /// when the claim was lost.
    pub(crate) fn record_part(
        &self,
        id: i64,
        owner: &str,
        lease_until: i64,
        part: &Part,
        whole_sha256: Option<&str>,
    ) -> Result<bool> {
        self.write(|tx| insert_part(tx, id, owner, Some(lease_until), part, whole_sha256))
    }

    /// Records the one document of a single-document delivery and marks the delivery
    /// sent, in one transaction (with the original's SHA-256 when it was encrypted).
    /// False when the claim was lost.
    pub(crate) fn finish_single(
        &self,
        id: i64,
        owner: &str,
        part: &Part,
        sha256: &str,
        plaintext_sha256: Option<&str>,
    ) -> Result<bool> {
        self.write(|tx| {
            if !insert_part(tx, id, owner, None, part, Some(sha256))? {
                return Ok(false);
            }
            tx.execute(
                "UPDATE deliveries SET state = 'sent', sent_at = ?2, updated_at = ?2, owner = NULL, lease_until = NULL,
                    last_error = NULL, next_attempt_at = NULL, manifest_message_id = NULL, manifest_file_id = NULL,
                    plaintext_sha256 = ?3
                 WHERE id = ?1",
                params![id, part.sent_at, plaintext_sha256],
            )?;
            Ok(true)
        })
    }

    /// Starts an attempt over from the first part: the parts recorded so far move to
    /// `superseded_parts` (kept for the record, left out of the manifest), and the
    /// stream is recorded as encrypted or not. An encrypted stream cannot resume: its
    /// header is random, so parts of two attempts do not join. False when the claim
    /// was lost.
    pub(crate) fn restart_parts(&self, id: i64, owner: &str, encrypted: bool, now: i64) -> Result<bool> {
        self.write(|tx| {
            let held = tx.execute(
                "UPDATE deliveries SET encrypted = ?3, sha256 = NULL, updated_at = ?4
                 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                params![id, owner, encrypted, now],
            )?;
            if held == 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO superseded_parts (delivery_id, idx, offset, size, sha256, file_name, message_id, file_id,
                    file_unique_id, sent_at, superseded_at, bot_id, chat_id, topic_id)
                 SELECT delivery_id, idx, offset, size, sha256, file_name, message_id, file_id, file_unique_id,
                    sent_at, ?2, bot_id, chat_id, topic_id
                 FROM parts WHERE delivery_id = ?1",
                params![id, now],
            )?;
            tx.execute("DELETE FROM parts WHERE delivery_id = ?1", [id])?;
            Ok(true)
        })
    }

    /// Marks a delivery sent, with the manifest's message (message id, file id, bot) when
    /// there is one, and the original's SHA-256 when it was encrypted.
    pub(crate) fn mark_sent(
        &self,
        id: i64,
        owner: &str,
        sha256: &str,
        manifest: Option<(i64, &str, i64)>,
        plaintext_sha256: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let changed = self.with_conn(|conn| {
            conn.execute(
                "UPDATE deliveries SET state = 'sent', sha256 = ?3, manifest_message_id = ?4, manifest_file_id = ?5,
                    sent_at = ?6, updated_at = ?6, owner = NULL, lease_until = NULL, last_error = NULL,
                    next_attempt_at = NULL, plaintext_sha256 = ?7, manifest_bot_id = ?8
                 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                params![
                    id,
                    owner,
                    sha256,
                    manifest.map(|m| m.0),
                    manifest.map(|m| m.1),
                    now,
                    plaintext_sha256,
                    manifest.map(|m| m.2)
                ],
            )
        })?;
        Ok(changed == 1)
    }

    /// Records a failed attempt: the error, one more attempt, and when to try again; or,
    /// after `max_attempts`, the delivery is `dead`. `None` when the claim was lost.
    pub(crate) fn mark_failed(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        max_attempts: u32,
        now: i64,
    ) -> Result<Option<Delivery>> {
        self.write(|tx| {
            let attempts: Option<u32> = tx
                .query_row(
                    "SELECT attempts FROM deliveries WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                    params![id, owner],
                    |r| r.get(0),
                )
                .optional()?;
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
            )?;
            delivery(tx, id)
        })
    }

    /// Records a claimed delivery as skipped: its version vanished from S3.
    pub(crate) fn mark_skipped(&self, id: i64, owner: &str, reason: &str, now: i64) -> Result<bool> {
        let changed = self.with_conn(|conn| {
            conn.execute(
                "UPDATE deliveries SET state = 'skipped', last_error = ?3, updated_at = ?4, owner = NULL,
                    lease_until = NULL, next_attempt_at = NULL
                 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                params![id, owner, reason, now],
            )
        })?;
        Ok(changed == 1)
    }

    /// Gives a claimed delivery back untouched (the run is stopping), keeping its parts.
    pub(crate) fn release(&self, id: i64, owner: &str, now: i64) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE deliveries SET state = CASE WHEN attempts > 0 THEN 'failed' ELSE 'pending' END,
                    owner = NULL, lease_until = NULL, updated_at = ?3
                 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                params![id, owner, now],
            )
        })?;
        Ok(())
    }

    /// Failed deliveries whose next attempt is due (all of them with `ignore_schedule`),
    /// oldest first, then deliveries whose run died mid-way (lease run out).
    pub(crate) fn due_failures(&self, now: i64, ignore_schedule: bool) -> Result<Vec<i64>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM deliveries
                 WHERE (state = 'failed' AND (?2 OR next_attempt_at <= ?1)) OR (state = 'sending' AND lease_until < ?1)
                 ORDER BY state = 'sending', next_attempt_at, id",
            )?;
            stmt.query_map(params![now, ignore_schedule], |r| r.get(0))?.collect()
        })
    }

    /// Makes dead deliveries (all, or the given ones) failed again with a fresh count of
    /// attempts, due now. Returns the ids revived.
    pub(crate) fn revive(&self, ids: Option<&[i64]>, now: i64) -> Result<Vec<i64>> {
        self.write(|tx| {
            let dead: Vec<i64> = {
                let mut stmt = tx.prepare_cached("SELECT id FROM deliveries WHERE state = 'dead' ORDER BY id")?;
                stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
            };
            let revive: Vec<i64> = dead.into_iter().filter(|id| ids.is_none_or(|ids| ids.contains(id))).collect();
            for id in &revive {
                tx.execute(
                    "UPDATE deliveries SET state = 'failed', attempts = 0, next_attempt_at = ?2, updated_at = ?2
                     WHERE id = ?1 AND state = 'dead'",
                    params![id, now],
                )?;
            }
            Ok(revive)
        })
    }

    /// Makes every failed delivery due now, whatever its backoff schedule; the next
    /// `retry` run takes them. Returns how many.
    pub(crate) fn make_failures_due(&self, now: i64) -> Result<usize> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE deliveries SET next_attempt_at = MIN(COALESCE(next_attempt_at, ?1), ?1), updated_at = ?1
                 WHERE state = 'failed'",
                [now],
            )
        })
    }

    /// Records a version that `restore --all --to-s3` put back into S3 as delivered: its
    /// bytes are the ones `from` delivered, in the same Telegram messages, so the next
    /// `sync` sends nothing; its ETag is remembered for listings that carry none.
    /// Returns false when the ledger knew the version already.
    pub(crate) fn record_restored(
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

    /// Fills in, once, what rows from before several bots were recorded without (see
    /// [`Ledger::backfill_destinations`]) when the settings name a bot and a backup chat;
    /// a command without them leaves it for a later one.
    pub fn fill_destinations(&self, cfg: &crate::config::Config) -> Result<()> {
        if let (Ok(tokens), Ok(dest)) = (cfg.require_bot_tokens(), cfg.backup_destination())
            && let Some(bot) = tokens.first().and_then(|t| crate::sink::limits::bot_id(t.expose()))
            && self.backfill_destinations(bot, &dest.chat.to_string(), dest.topic)?
        {
            tracing::info!("recorded bot {bot} and chat {dest} for what was delivered before several bots");
        }
        Ok(())
    }

    /// Fills in what rows from before several bots were recorded without: each part's
    /// bot, chat and topic, each started delivery's destination and its manifest's bot,
    /// with the bot and chat configured now. Once: migration 6 asks for it when the ledger
    /// had parts, and this answers. Returns whether it did.
    pub(crate) fn backfill_destinations(&self, bot_id: i64, chat: &str, topic: Option<i64>) -> Result<bool> {
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

/// Turns a known version that was never sent (`pending`, or `failed` after some parts)
/// into `skipped`: `buckets enable --from-now` says the objects there before are not to
/// be delivered. A version claimed right now (`sending`) is left to its run; parts
/// already in Telegram stay recorded, and nothing is sent or deleted.
pub(super) fn skip_unsent(tx: &Transaction<'_>, v: &ObjectVersion, now: i64) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE deliveries SET state = 'skipped', updated_at = ?4
         WHERE bucket = ?1 AND key = ?2 AND etag = ?3 AND state IN ('pending', 'failed')",
        params![v.bucket, v.key, v.etag, now],
    )
}

/// What a run claims deliveries with ([`Ledger::claim`], [`Ledger::claim_all`]).
pub(crate) struct ClaimTerms<'a> {
    /// The run that claims.
    pub(crate) owner: &'a str,
    /// When the claim lapses unless renewed.
    pub(crate) lease_until: i64,
    /// The part size a first claim fixes.
    pub(crate) part_size: u64,
    /// Each bucket's destination as configured now (chat, topic), fixed by the claim
    /// until a part is accepted.
    pub(crate) destination_of: &'a dyn Fn(&str) -> (String, Option<i64>),
    /// The time of the claim.
    pub(crate) now: i64,
    /// `retry` claims failed deliveries; `sync` pending ones.
    pub(crate) failed: bool,
}

/// Claims delivery `id` on `terms`, as [`Ledger::claim`] says; with `unstarted_only`,
/// only when no part of it is accepted yet (a pack's member). `None` when another run
/// holds it.
fn claim_row(
    tx: &Transaction<'_>,
    id: i64,
    terms: &ClaimTerms<'_>,
    unstarted_only: bool,
) -> rusqlite::Result<Option<Delivery>> {
    let bucket: Option<String> =
        tx.query_row("SELECT bucket FROM deliveries WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    let Some(bucket) = bucket else { return Ok(None) };
    let (chat, topic) = (terms.destination_of)(&bucket);
    let from = if terms.failed { "failed" } else { "pending" };
    let ClaimTerms { owner, lease_until, part_size, now, .. } = *terms;
    let changed = tx.execute(
        "UPDATE deliveries SET state = 'sending', owner = ?2, lease_until = ?3,
            part_size = COALESCE(part_size, ?4), updated_at = ?5,
            topic_id = CASE WHEN EXISTS (SELECT 1 FROM parts WHERE delivery_id = ?1) THEN topic_id ELSE ?8 END,
            chat_id = CASE WHEN EXISTS (SELECT 1 FROM parts WHERE delivery_id = ?1) THEN chat_id ELSE ?7 END
         WHERE id = ?1 AND (state = ?6 OR (state = 'sending' AND lease_until < ?5))
            AND NOT (?9 AND EXISTS (SELECT 1 FROM parts WHERE delivery_id = ?1))",
        params![id, owner, lease_until, part_size, now, from, chat, topic, unstarted_only],
    )?;
    if changed == 0 {
        return Ok(None);
    }
    delivery(tx, id)
}

fn delivery(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<Option<Delivery>> {
    tx.query_row(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"), [id], delivery_from_row)
        .optional()
}

/// Inserts a part of a delivery `owner` holds, renewing the lease (when given) and
/// recording the whole stream's SHA-256 (with the last part). False when not held.
fn insert_part(
    tx: &Transaction<'_>,
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
            file_unique_id, sent_at, bot_id, chat_id, topic_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
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
            part.sent_at,
            part.bot_id,
            part.chat,
            part.topic
        ],
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{terms, version};
    use super::*;

    #[test]
    fn only_one_claim_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let a = Ledger::open(&path).unwrap();
        let b = Ledger::open(&path).unwrap();
        a.insert_versions(&[version("k", "e")], State::Pending, 0).unwrap();
        let id = a.claimable(&["b".into()], 0).unwrap()[0];
        assert!(a.claim(id, &terms("a", 100, 4096, 0, false)).unwrap().is_some());
        assert!(b.claim(id, &terms("b", 100, 4096, 1, false)).unwrap().is_none());
        // Once the lease runs out, another run takes over and the first loses its claim.
        let taken = b.claim(id, &terms("b", 300, 8192, 101, false)).unwrap().unwrap();
        assert_eq!(taken.part_size, Some(4096), "part size stays fixed by the first claim");
        assert!(!a.renew_lease(id, "a", 400).unwrap());
    }

    #[test]
    fn failure_schedules_a_retry_and_release_keeps_state() {
        let l = Ledger::in_memory().unwrap();
        l.insert_versions(&[version("k", "e")], State::Pending, 0).unwrap();
        let id = l.claimable(&["b".into()], 0).unwrap()[0];
        l.claim(id, &terms("o", 100, 4096, 0, false)).unwrap().unwrap();
        let d = l.mark_failed(id, "o", "boom", 8, 1000).unwrap().unwrap();
        assert_eq!((d.state, d.attempts, d.next_attempt_at), (State::Failed, 1, Some(1060)));
        assert!(l.claimable(&["b".into()], 2000).unwrap().is_empty(), "sync leaves failures to retry");
        assert!(l.claim(id, &terms("o", 100, 4096, 2000, false)).unwrap().is_none(), "sync cannot claim a failure");
        assert_eq!(l.due_failures(1059, false).unwrap(), Vec::<i64>::new());
        assert_eq!(l.due_failures(1060, false).unwrap(), vec![id]);
        assert_eq!(l.due_failures(0, true).unwrap(), vec![id]);
        l.claim(id, &terms("o", 3000, 4096, 2000, true)).unwrap().unwrap();
        let d = l.mark_failed(id, "o", "boom again", 2, 2001).unwrap().unwrap();
        assert_eq!((d.state, d.attempts, d.next_attempt_at), (State::Dead, 2, None));
        assert!(l.due_failures(0, true).unwrap().is_empty());
        assert_eq!(l.revive(None, 3000).unwrap(), vec![id]);
        assert_eq!(l.due_failures(3000, false).unwrap(), vec![id]);
    }
}
