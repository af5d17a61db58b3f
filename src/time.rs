//! Wall-clock time as the ledger stores it (Unix seconds) and as people read it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// RFC 3339 in UTC, to the second.
pub fn rfc3339(unix_secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix_secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// RFC 3339 in UTC from Unix milliseconds, to the second.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    rfc3339(unix_ms.div_euclid(1000))
}

/// How long ago, for tables: `5m ago`.
pub fn ago(unix_secs: i64, now: i64) -> String {
    let secs = (now - unix_secs).max(0) as u64;
    let rounded = match secs {
        0..60 => secs,
        60..3600 => secs / 60 * 60,
        3600..86400 => secs / 3600 * 3600,
        _ => secs / 86400 * 86400,
    };
    format!("{} ago", humantime::format_duration(Duration::from_secs(rounded)))
}
