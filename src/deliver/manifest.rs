//! The manifest: a small JSON document sent after the last part of a multi-part object.
//! With it alone (no ledger) an operator can find, check and join every part.

use serde::{Deserialize, Serialize};

/// The manifest format this tgploy writes.
pub(crate) const FORMAT: &str = "tgploy-manifest";
/// 2 records each part's bot (`bot_id`), since a file id belongs to its bot; in a
/// version 1 manifest every part belongs to the one bot there was. A reader refuses a
/// manifest of a newer version than it knows.
pub(crate) const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) format: String,
    pub(crate) version: u32,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) etag: String,
    /// Bytes of the whole stored stream: the joined parts.
    pub(crate) size: u64,
    /// RFC 3339, as S3 reported it.
    pub(crate) last_modified: Option<String>,
    /// SHA-256 (hex) of the whole stored stream: the joined parts.
    pub(crate) sha256: String,
    pub(crate) part_size: u64,
    /// The name the joined parts are restored under.
    pub(crate) file_name: String,
    pub(crate) parts: Vec<ManifestPart>,
    pub(crate) created_at: String,
    pub(crate) tgploy_version: String,
    /// Present when the stored stream is an age file of the object (`size` and the
    /// parts then describe the age file; `file_name` is still the original's name).
    /// Manifests without it (older ones included) describe the object itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) encryption: Option<ManifestEncryption>,
}

/// How an encrypted object was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ManifestEncryption {
    /// `age`: join the parts into `<file_name>.age`, then `age -d -i KEY`.
    pub(crate) scheme: String,
    /// The `age1…` recipients it was encrypted to.
    pub(crate) recipients: Vec<String>,
    /// Bytes of the original object (after decryption).
    pub(crate) plaintext_size: u64,
    /// SHA-256 (hex) of the original object.
    pub(crate) plaintext_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ManifestPart {
    /// 1-based.
    pub(crate) index: u32,
    pub(crate) file_name: String,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) sha256: String,
    pub(crate) message_id: i64,
    pub(crate) file_id: String,
    pub(crate) file_unique_id: Option<String>,
    /// The bot that sent it: only that bot can download it through the Bot API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) bot_id: Option<i64>,
}
