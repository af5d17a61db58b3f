//! The rows the ledger hands out, and how each is read from a result row. Types only:
//! which table keeps what, and who writes it, is in the sibling files.

use rusqlite::Row;

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
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sending => "sending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Dead => "dead",
            State::Skipped => "skipped",
        }
    }

    pub(super) fn parse(s: &str) -> rusqlite::Result<State> {
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
pub(crate) struct Bucket {
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) discovered_at: i64,
    pub(crate) last_listed_at: Option<i64>,
    pub(crate) last_error: Option<String>,
}

/// An object version found in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The bucket it is in.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// The version's ETag, quotes trimmed.
    pub etag: String,
    /// The object's size in bytes.
    pub size: u64,
    /// When S3 says it was last modified, in milliseconds since the Unix epoch; `None` when S3 gave no time.
    pub last_modified_ms: Option<i64>,
}

/// One delivery row.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub(crate) id: i64,
    /// The object version it delivers.
    pub object: ObjectVersion,
    pub(crate) state: State,
    pub(crate) part_size: Option<u64>,
    pub(crate) attempts: u32,
    pub(crate) last_error: Option<String>,
    pub(crate) next_attempt_at: Option<i64>,
    /// SHA-256 (hex) of the whole stored stream its parts describe; `None` until the last part is accepted.
    pub sha256: Option<String>,
    /// The message holding its manifest; `None` for an object sent whole or in a pack, or until the
    /// manifest is sent.
    pub manifest_message_id: Option<i64>,
    /// The Telegram file id of its manifest; `None` as for `manifest_message_id`.
    pub manifest_file_id: Option<String>,
    /// When it was delivered, in Unix seconds; `None` until then.
    pub sent_at: Option<i64>,
    /// The stored stream is an age file of the object (parts and `sha256` describe it).
    pub(crate) encrypted: bool,
    /// For an encrypted delivery, the original's SHA-256 (unknown for deliveries made
    /// before tgploy recorded it; their manifest has it).
    pub(crate) plaintext_sha256: Option<String>,
    /// Where it goes (or went): the chat and forum topic its first accepted part fixed.
    pub(crate) chat: Option<String>,
    pub(crate) topic: Option<i64>,
    /// The bot that sent its manifest.
    pub(crate) manifest_bot_id: Option<i64>,
    /// The pack it travelled in, when it was a small object sent with others.
    pub(crate) pack_id: Option<i64>,
}

#[cfg(test)]
impl Delivery {
    /// A pending delivery of `bucket/key`, for tests.
    pub(crate) fn for_tests(id: i64, bucket: &str, key: &str, size: u64) -> Delivery {
        Delivery {
            id,
            object: ObjectVersion {
                bucket: bucket.into(),
                key: key.into(),
                etag: format!("etag{id}"),
                size,
                last_modified_ms: Some(1_790_000_000_000),
            },
            state: State::Pending,
            part_size: None,
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
            sha256: None,
            manifest_message_id: None,
            manifest_file_id: None,
            sent_at: None,
            encrypted: false,
            plaintext_sha256: None,
            chat: None,
            topic: None,
            manifest_bot_id: None,
            pack_id: None,
        }
    }
}

/// A pack: small objects sent together as one tar document (an age file of the tar when
/// encrypted). Its members are deliveries whose part lies inside the tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    /// The pack's row id.
    pub id: i64,
    /// The document's file name in Telegram.
    pub file_name: String,
    /// Bytes of the document, and its SHA-256.
    pub size: u64,
    /// SHA-256 (hex) of the document.
    pub sha256: String,
    /// Bytes of the tar (the document decrypted, when encrypted).
    pub tar_size: u64,
    /// The document is an age file of the tar.
    pub encrypted: bool,
    /// How many objects travelled in it.
    pub members: u32,
    /// The message holding the document.
    pub message_id: i64,
    /// The document's Telegram file id (usable only by the bot that sent it).
    pub file_id: String,
    /// Telegram's `file_unique_id` of the document, when Telegram gave one.
    pub file_unique_id: Option<String>,
    /// The bot that sent it; `None` when not recorded.
    pub bot_id: Option<i64>,
    /// The chat it went to, its numeric id as text; `None` when not recorded.
    pub chat: Option<String>,
    /// The forum topic it went to; `None` for the main chat.
    pub topic: Option<i64>,
    /// When Telegram accepted it, in Unix seconds.
    pub sent_at: i64,
}

/// A delivery the engine may put in a pack: its bucket, key and size, and whether a part
/// of it was accepted already (such a delivery resumes on its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackCandidate {
    pub(crate) id: i64,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) started: bool,
}

/// Where a member's bytes lie in its pack's tar, with their SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackMember {
    /// The delivery.
    pub(crate) id: i64,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

/// A part Telegram accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// 1-based.
    pub idx: u32,
    /// Where the part starts in the stored stream, in bytes (in the tar, for a pack's member).
    pub offset: u64,
    /// The part's size in bytes.
    pub size: u64,
    /// SHA-256 (hex) of the part's bytes.
    pub sha256: String,
    /// SHA-256 midstate of the whole stream after this part (absent after the last).
    pub(crate) hash_state: Option<Vec<u8>>,
    /// The document's file name in Telegram.
    pub file_name: String,
    /// The message holding it.
    pub message_id: i64,
    /// Absent for the text message that stands in for an empty object.
    pub file_id: Option<String>,
    pub(crate) file_unique_id: Option<String>,
    pub(crate) sent_at: i64,
    /// The bot that sent it: the only one that can download it again. `None` only for
    /// parts recorded before tgploy knew (the first bot's).
    pub(crate) bot_id: Option<i64>,
    /// The chat and forum topic it went to.
    pub(crate) chat: Option<String>,
    pub(crate) topic: Option<i64>,
}

/// Counts of deliveries by state, with bytes delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Deliveries sent.
    pub sent: u64,
    /// Bytes of the deliveries sent: the sum of their objects' sizes on S3.
    pub sent_bytes: u64,
    /// Of those sent, the ones that travelled in packs.
    pub packed: u64,
    /// Deliveries not attempted yet.
    pub pending: u64,
    /// Deliveries claimed by a run under way.
    pub sending: u64,
    /// Deliveries whose last attempt failed, waiting for `retry`.
    pub failed: u64,
    /// Deliveries that failed too often and need an operator.
    pub dead: u64,
    /// Versions deliberately not sent (their bucket was enabled "from now on").
    pub skipped: u64,
}

/// The enrolled second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TotpState {
    pub(crate) secret: String,
    pub(crate) last_step: i64,
    pub(crate) failures: u32,
    pub(crate) locked_until: i64,
}

/// A finished run, as the `runs` table keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRecord {
    pub(crate) kind: String,
    pub(crate) started_at: i64,
    pub(crate) finished_at: i64,
    pub(crate) sent: u64,
    pub(crate) failed: u64,
    pub(crate) bytes: u64,
    pub(crate) error: Option<String>,
}

/// A run that started and has not recorded its end yet (or died before it could).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunUnderWay {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) started_at: i64,
    /// The process running it ([`crate::owner`]).
    pub(crate) owner: String,
}

/// A delivery in flight: claimed by a run (`sending`), with the parts Telegram accepted
/// so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub(crate) id: i64,
    pub(crate) bucket: String,
    pub(crate) key: String,
    /// The object's size.
    pub(crate) size: u64,
    pub(crate) part_size: Option<u64>,
    pub(crate) encrypted: bool,
    pub(crate) attempts: u32,
    /// When the claim runs out unless renewed: a lease in the past is a run that died.
    pub(crate) lease_until: Option<i64>,
    /// When it was claimed (or last changed).
    pub(crate) updated_at: i64,
    pub(crate) parts_done: u32,
    /// Bytes of the stored stream in the accepted parts.
    pub(crate) bytes_done: u64,
    pub(crate) last_part_at: Option<i64>,
}

/// What happened in one hour (`hour` is its start, in Unix seconds): deliveries sent and
/// their bytes, versions recorded (skipped ones aside), deliveries that failed in runs
/// that ended then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HourActivity {
    pub(crate) hour: i64,
    pub(crate) sent: u64,
    pub(crate) sent_bytes: u64,
    pub(crate) recorded: u64,
    pub(crate) failed: u64,
}

/// A delivered object with its parts, for `files`.
#[derive(Debug, Clone)]
pub struct DeliveredFile {
    /// The object's delivery.
    pub delivery: Delivery,
    /// The parts Telegram accepted, in order (one, inside the pack's tar, for a packed object).
    pub parts: Vec<Part>,
    /// The pack it travelled in, for a small object sent with others.
    pub pack: Option<Pack>,
}

/// A delivered object in a listing: its delivery, how many parts, its first message.
#[derive(Debug, Clone)]
pub struct DeliveredSummary {
    pub(crate) delivery: Delivery,
    pub(crate) parts: u32,
    pub(crate) first_message_id: Option<i64>,
}

/// An alert in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub(crate) id: i64,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) created_at: i64,
    /// `None` while it waits for Telegram.
    pub(crate) sent_at: Option<i64>,
    pub(crate) attempts: u32,
    pub(crate) last_error: Option<String>,
}

/// The second factor without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpSummary {
    pub(crate) enrolled_at: i64,
    /// Wrong codes in a row.
    pub(crate) failures: u32,
    pub(crate) locked_until: i64,
    pub(crate) recovery_codes_left: u64,
}

/// A dashboard session. Only the SHA-256 of its id is stored: the ledger alone cannot
/// be used to sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub(crate) id_hash: String,
    pub(crate) created_at: i64,
    pub(crate) last_seen_at: i64,
    pub(crate) user_agent: Option<String>,
}

pub(super) const DELIVERY_COLUMNS: &str =
    "id, bucket, key, etag, size, last_modified_ms, state, part_size, attempts, last_error,
    next_attempt_at, sha256, manifest_message_id, manifest_file_id, created_at, sent_at, encrypted, plaintext_sha256,
    chat_id, topic_id, manifest_bot_id, pack_id";

pub(super) const PACK_COLUMNS: &str = "id, file_name, size, sha256, tar_size, encrypted, members, message_id, file_id,
    file_unique_id, bot_id, chat_id, topic_id, sent_at";

pub(super) const PART_COLUMNS: &str =
    "idx, offset, size, sha256, hash_state, file_name, message_id, file_id, file_unique_id, sent_at, bot_id, chat_id,
    topic_id";

pub(super) fn bucket_from_row(r: &Row<'_>) -> rusqlite::Result<Bucket> {
    Ok(Bucket {
        name: r.get(0)?,
        enabled: r.get(1)?,
        discovered_at: r.get(2)?,
        last_listed_at: r.get(3)?,
        last_error: r.get(4)?,
    })
}

pub(super) fn delivery_from_row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
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
        sent_at: r.get(15)?,
        encrypted: r.get(16)?,
        plaintext_sha256: r.get(17)?,
        chat: r.get(18)?,
        topic: r.get(19)?,
        manifest_bot_id: r.get(20)?,
        pack_id: r.get(21)?,
    })
}

pub(super) fn pack_from_row(r: &Row<'_>) -> rusqlite::Result<Pack> {
    Ok(Pack {
        id: r.get(0)?,
        file_name: r.get(1)?,
        size: r.get(2)?,
        sha256: r.get(3)?,
        tar_size: r.get(4)?,
        encrypted: r.get(5)?,
        members: r.get(6)?,
        message_id: r.get(7)?,
        file_id: r.get(8)?,
        file_unique_id: r.get(9)?,
        bot_id: r.get(10)?,
        chat: r.get(11)?,
        topic: r.get(12)?,
        sent_at: r.get(13)?,
    })
}

/// A run from `kind, started_at, finished_at, sent, failed, bytes, error` at column `at`.
pub(super) fn run_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        kind: r.get(at)?,
        started_at: r.get(at + 1)?,
        finished_at: r.get(at + 2)?,
        sent: r.get(at + 3)?,
        failed: r.get(at + 4)?,
        bytes: r.get(at + 5)?,
        error: r.get(at + 6)?,
    })
}

pub(super) fn session_from_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session { id_hash: r.get(0)?, created_at: r.get(1)?, last_seen_at: r.get(2)?, user_agent: r.get(3)? })
}

pub(super) fn part_from_row(r: &Row<'_>) -> rusqlite::Result<Part> {
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
        bot_id: r.get(10)?,
        chat: r.get(11)?,
        topic: r.get(12)?,
    })
}
