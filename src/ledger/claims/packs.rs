//! The claims of packs: members claimed together, their leases renewed together, and the
//! pack recorded with its members made `sent` in one transaction (see the module above
//! for the argument).

use rusqlite::params;

use super::super::Ledger;
use super::super::model::{Delivery, Pack, PackMember};
use super::{ClaimTerms, claim_row};
use crate::error::Result;

impl Ledger {
    /// Extends the leases of `ids` (the members of a pack being built); a member whose
    /// claim another run took is left alone.
    pub(crate) fn renew_leases(&self, ids: &[i64], owner: &str, lease_until: i64) -> Result<()> {
        self.write(|tx| {
            for id in ids {
                tx.execute(
                    "UPDATE deliveries SET lease_until = ?3 WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                    params![id, owner, lease_until],
                )?;
            }
            Ok(())
        })
    }

    /// Claims the members of a pack together, in one transaction, each as [`Ledger::claim`]
    /// would: the ones another run holds are left out. Returns the ones claimed.
    pub(crate) fn claim_all(&self, ids: &[i64], terms: &ClaimTerms<'_>) -> Result<Vec<Delivery>> {
        self.write(|tx| {
            let mut claimed = Vec::with_capacity(ids.len());
            for &id in ids {
                claimed.extend(claim_row(tx, id, terms, true)?);
            }
            Ok(claimed)
        })
    }

    /// Records a pack Telegram accepted and makes its members `sent`, in one transaction:
    /// each member this run still holds gets its part (where its bytes lie in the pack's
    /// tar, with the pack's message, file id, bot and place) and its pack. A member whose
    /// claim was lost meanwhile is left to the run that took it. Returns the members
    /// recorded.
    pub(crate) fn record_pack(&self, pack: &Pack, members: &[PackMember], owner: &str) -> Result<Vec<i64>> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO packs (file_name, size, sha256, tar_size, encrypted, members, message_id, file_id,
                    file_unique_id, bot_id, chat_id, topic_id, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    pack.file_name,
                    pack.size,
                    pack.sha256,
                    pack.tar_size,
                    pack.encrypted,
                    pack.members,
                    pack.message_id,
                    pack.file_id,
                    pack.file_unique_id,
                    pack.bot_id,
                    pack.chat,
                    pack.topic,
                    pack.sent_at
                ],
            )?;
            let pack_id = tx.last_insert_rowid();
            let mut recorded = Vec::with_capacity(members.len());
            for m in members {
                let held = tx.execute(
                    "UPDATE deliveries SET state = 'sent', sha256 = ?3, pack_id = ?4, encrypted = ?5,
                        plaintext_sha256 = CASE WHEN ?5 THEN ?3 END, sent_at = ?6, updated_at = ?6, owner = NULL,
                        lease_until = NULL, last_error = NULL, next_attempt_at = NULL, manifest_message_id = NULL,
                        manifest_file_id = NULL, manifest_bot_id = NULL, chat_id = ?7, topic_id = ?8
                     WHERE id = ?1 AND owner = ?2 AND state = 'sending'",
                    params![m.id, owner, m.sha256, pack_id, pack.encrypted, pack.sent_at, pack.chat, pack.topic],
                )?;
                if held == 0 {
                    continue;
                }
                tx.execute(
                    "INSERT INTO parts (delivery_id, idx, offset, size, sha256, file_name, message_id, file_id,
                        file_unique_id, sent_at, bot_id, chat_id, topic_id)
                     VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![
                        m.id,
                        m.offset,
                        m.size,
                        m.sha256,
                        pack.file_name,
                        pack.message_id,
                        pack.file_id,
                        pack.file_unique_id,
                        pack.sent_at,
                        pack.bot_id,
                        pack.chat,
                        pack.topic
                    ],
                )?;
                recorded.push(m.id);
            }
            Ok(recorded)
        })
    }
}
