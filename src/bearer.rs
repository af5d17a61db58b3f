//! The bearer token of a request, read the same way by both servers (`serve-webhook`'s
//! events and `/metrics` of either server).

use axum::http::{HeaderMap, header};

/// The token of an `Authorization: Bearer TOKEN` header, trimmed; the scheme's name is
/// case-insensitive (RFC 9110).
pub(crate) fn token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_of_a_bearer_header_whatever_the_scheme_is_spelt() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            token(&headers).map(str::to_string)
        };
        assert_eq!(with("Bearer abc"), Some("abc".into()));
        assert_eq!(with("bearer  abc "), Some("abc".into()));
        assert_eq!(with("BEARER abc"), Some("abc".into()));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("Bearerabc"), None);
        assert_eq!(token(&HeaderMap::new()), None);
    }
}
