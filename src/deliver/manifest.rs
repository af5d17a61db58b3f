//! The manifest: a small JSON document sent after the last part of a multi-part object.
//! With it alone (no ledger) an operator can find, check and join every part.

use serde::{Deserialize, Serialize};

/// The manifest format this tgploy writes.
pub const FORMAT: &str = "tgploy-manifest";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub bucket: String,
    pub key: String,
    pub etag: String,
    /// Bytes of the whole object.
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
}
