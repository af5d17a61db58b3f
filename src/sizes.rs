//! Sizes as operators write and read them: `19MiB` in, `19.0 MiB` out.

use std::str::FromStr;

use bytesize::ByteSize;

/// Parses a byte count: `20000000`, `19MiB`, `19 MiB`, `1.5GiB`, `64KB`.
pub(crate) fn parse_size(s: &str) -> std::result::Result<u64, String> {
    ByteSize::from_str(s.trim())
        .map(|b| b.as_u64())
        .map_err(|_| format!("`{s}` is not a size (write bytes, or a number with a unit like 19MiB)"))
}

/// Formats a byte count for people: `19.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    ByteSize(bytes).display().iec().to_string()
}
