//! Wall-clock time as the ledger stores it (Unix seconds) and as people read it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A server's clock against this machine's, read from the `Date` header of an answer:
/// `(ours, theirs)`, ours taken halfway through the request.
pub(crate) type Clocks = (std::time::SystemTime, std::time::SystemTime);

/// The clocks of an answer that took from `before` to `after`, from its `Date` header
/// (`None` without a readable one).
pub(crate) fn clocks(
    before: std::time::SystemTime,
    after: std::time::SystemTime,
    date: Option<&str>,
) -> Option<Clocks> {
    let theirs = httpdate::parse_http_date(date?).ok()?;
    Some((before + after.duration_since(before).unwrap_or_default() / 2, theirs))
}

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

/// A length of time as people say it in a sentence (“no new backup for 26 h”): seconds
/// under two minutes, minutes under two hours, hours under three days, then days.
pub(crate) fn span(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 120 {
        format!("{secs} s")
    } else if secs < 2 * 3600 {
        format!("{} min", secs / 60)
    } else if secs < 72 * 3600 {
        format!("{} h", secs / 3600)
    } else {
        format!("{} d", secs / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(59), "59 s");
        assert_eq!(span(90), "90 s");
        assert_eq!(span(95 * 60), "95 min");
        assert_eq!(span(26 * 3600 + 5), "26 h");
        assert_eq!(span(5 * 86_400), "5 d");
        assert_eq!(span(-3), "0 s");
    }
}
