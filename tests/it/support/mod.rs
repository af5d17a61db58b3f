//! Test doubles shared by the integration tests: a fake Telegram Bot API and a real in-process S3.
#![allow(dead_code)]

pub mod s3;
pub mod telegram;

/// Hex SHA-256 of a file, read in pieces (files may be GiBs).
pub fn file_sha256(path: &std::path::Path) -> String {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex::encode(hasher.finalize())
}
