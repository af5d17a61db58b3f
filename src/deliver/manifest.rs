//! The manifest: a small JSON document sent after the last part of a multi-part object.
//! With it alone (no ledger) an operator can find, check and join every part.

use serde::{Deserialize, Serialize};

/// The manifest format this tgploy writes.
pub const FORMAT: &str = "tgploy-manifest";
/// 2 records each part's bot (`bot_id`), since a file id belongs to its bot; in a
/// version 1 manifest every part belongs to the one bot there was. A reader refuses a
/// manifest of a newer version than it knows.
pub const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub bucket: String,
    pub key: String,
    pub etag: String,
    /// Bytes of the whole stored stream: the joined parts.
    pub size: u64,
    /// RFC 3339, as S3 reported it.
    pub last_modified: Option<String>,
    /// SHA-256 (hex) of the whole stored stream: the joined parts.
    pub sha256: String,
    pub part_size: u64,
    /// The name the joined parts are restored under.
    pub file_name: String,
    pub parts: Vec<ManifestPart>,
    pub created_at: String,
    pub tgploy_version: String,
    /// Present when the stored stream is an age file of the object (`size` and the
    /// parts then describe the age file; `file_name` is still the original's name).
    /// Manifests without it (older ones included) describe the object itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<ManifestEncryption>,
}

/// How an encrypted object was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEncryption {
    /// `age`: join the parts into `<file_name>.age`, then `age -d -i KEY`.
    pub scheme: String,
    /// The `age1…` recipients it was encrypted to.
    pub recipients: Vec<String>,
    /// Bytes of the original object (after decryption).
    pub plaintext_size: u64,
    /// SHA-256 (hex) of the original object.
    pub plaintext_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPart {
    /// 1-based.
    pub index: u32,
    pub file_name: String,
    pub offset: u64,
    pub size: u64,
    pub sha256: String,
    pub message_id: i64,
    pub file_id: String,
    pub file_unique_id: Option<String>,
    /// The bot that sent it: only that bot can download it through the Bot API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<i64>,
}
