//! What an S3 failure most likely means, for people: `setup` and `doctor` say it.

use super::SourceError;

/// What an S3 failure most likely means, for people.
pub(crate) fn explain(e: &SourceError) -> String {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let hint = if lower.contains("dns") || lower.contains("failed to lookup") || lower.contains("name or service") {
        "the host name does not resolve (DNS): check the endpoint"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
        "TLS failed: check http:// versus https:// and the server's certificate"
    } else if lower.contains("connection refused") {
        "nothing listens there: check the host and port"
    } else if lower.contains("signaturedoesnotmatch") {
        "the signature does not match: the secret key is wrong (or the clock is far off)"
    } else if lower.contains("invalidaccesskeyid") {
        "the access key is unknown to the server"
    } else if lower.contains("accessdenied") || matches!(e, SourceError::Denied { .. }) {
        "access denied: the key may not list buckets"
    } else {
        "see the error above"
    };
    format!("{text}\n  → {hint}")
}
