//! Who may use the dashboard: its password (argon2id), sign-in with the second factor,
//! sessions, CSRF tokens and the cross-origin check.
//!
//! A session id is 256 random bits, handed to the browser in an `HttpOnly`,
//! `SameSite=Strict` cookie and stored in the ledger only as its SHA-256, so that a copy
//! of the ledger cannot be used to sign in. A session ends after 30 minutes without use
//! or 12 hours after sign-in, whichever comes first. Forms carry a CSRF token derived
//! from the session id; the sign-in form, which has no session yet, carries one that
//! must match a cookie set with it.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::ledger::{Ledger, Session};
use crate::totp::{self, Gate};

/// A session ends after this long without a request.
pub const IDLE_SECS: i64 = 30 * 60;
/// A session ends this long after sign-in, however busy.
pub(crate) const ABSOLUTE_SECS: i64 = 12 * 3600;
/// `last_seen_at` is written at most this often per session, so that reading pages
/// rarely writes to the ledger.
pub(crate) const TOUCH_EVERY_SECS: i64 = 60;
/// The shortest password `tgploy setup dashboard` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer answers are refused before hashing.
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;

pub(crate) const SESSION_COOKIE: &str = "tgploy_session";
pub(crate) const LOGIN_COOKIE: &str = "tgploy_login";

/// Hashes a password with argon2id (OWASP's parameters: 19 MiB, 2 passes) and a random
/// salt, as a PHC string (`$argon2id$v=19$…`).
pub(crate) fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Internal(format!("cannot hash the password: {e}")))
}

/// Whether `password` matches a stored hash. An unreadable hash matches nothing.
pub fn password_matches(hash: &str, password: &str) -> bool {
    password.len() <= MAX_PASSWORD_BYTES && Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// Checks a new password against the rules.
pub fn check_new_password(password: &str) -> std::result::Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("the dashboard password needs at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("the dashboard password may have at most {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

/// Sets the dashboard password; every session but `keep` ends.
pub fn set_password(ledger: &Ledger, password: &str, keep: Option<&str>) -> Result<()> {
    check_new_password(password).map_err(Error::config)?;
    ledger.set_dashboard_password(&hash_password(password)?, keep, crate::time::now())
}

/// Whether the dashboard can start: it needs a password and the second factor. The
/// error names the command that fixes it.
pub(crate) fn ready(ledger: &Ledger) -> Result<()> {
    let password = ledger.dashboard_password_hash()?.is_some();
    let second_factor = totp::enrolled(ledger)?;
    match (password, second_factor) {
        (true, true) => Ok(()),
        (false, true) => Err(Error::config("the dashboard has no password yet: set one with `tgploy setup dashboard`")),
        (true, false) => Err(Error::config(
            "the dashboard needs a second factor and none is enrolled: enrol one with `tgploy setup totp --reset`",
        )),
        (false, false) => Err(Error::config(
            "the dashboard needs a password and a second factor: run `tgploy setup dashboard`, then \
             `tgploy setup totp --reset`",
        )),
    }
}

/// How an answer to the password and second-factor question went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Right,
    /// Some part was wrong; which one is not said.
    Wrong,
}

/// Checks a password and a second-factor code together. The code is only checked (and
/// used up) when the password is right. Wrong answers here count towards the
/// dashboard's own throttle (the caller's), never towards the command line's lock.
pub(crate) fn check_answer(ledger: &Ledger, password: &str, code: &str, now: i64) -> Result<Answer> {
    let hash = ledger.dashboard_password_hash()?;
    let password_right = hash.as_deref().is_some_and(|hash| password_matches(hash, password));
    if !password_right {
        return Ok(Answer::Wrong);
    }
    // Without a second factor there is no right answer.
    Ok(if totp::check_at(ledger, code, now, Gate::Dashboard)?.passed() { Answer::Right } else { Answer::Wrong })
}

/// A random id, 256 bits, hex.
pub(crate) fn random_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness from the OS: {e}")))?;
    Ok(hex::encode(bytes))
}

/// What the ledger keeps of a session id.
pub(crate) fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The CSRF token of a session: derived from its secret id, so it needs no storage and
/// cannot be guessed without the id.
pub(crate) fn csrf_token(session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"tgploy dashboard csrf\0");
    h.update(session_id.as_bytes());
    hex::encode(h.finalize())
}

/// Compares tokens in constant time; an empty one never matches.
pub(crate) fn tokens_match(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// Starts a session; returns its id (for the cookie only).
pub(crate) fn start_session(ledger: &Ledger, user_agent: Option<&str>, now: i64) -> Result<String> {
    let id = random_id()?;
    let user_agent = user_agent.map(|ua| ua.chars().filter(|c| !c.is_control()).take(160).collect());
    let session = Session { id_hash: id_hash(&id), created_at: now, last_seen_at: now, user_agent };
    ledger.create_session(&session, now - IDLE_SECS, now - ABSOLUTE_SECS)?;
    Ok(id)
}

/// Whether a session is past either expiry.
pub(crate) fn expired(session: &Session, now: i64) -> bool {
    now - session.last_seen_at >= IDLE_SECS || now - session.created_at >= ABSOLUTE_SECS
}

/// The live session with this id, used now; an expired one is ended.
pub(crate) fn resume_session(ledger: &Ledger, id: &str, now: i64) -> Result<Option<Session>> {
    let hash = id_hash(id);
    let Some(session) = ledger.session(&hash)? else { return Ok(None) };
    if expired(&session, now) {
        ledger.end_sessions(Some(&hash))?;
        return Ok(None);
    }
    if now - session.last_seen_at >= TOUCH_EVERY_SECS {
        ledger.touch_session(&hash, now)?;
    }
    Ok(Some(session))
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` behind HTTPS; an empty
/// value with `max_age` 0 removes the cookie.
pub(crate) fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The cross-origin check for state-changing requests, after the one Go's
/// `net/http.CrossOriginProtection` makes: browsers say where a request comes from in
/// `Sec-Fetch-Site` (and in `Origin`, which is `null` for form posts from pages with
/// `Referrer-Policy: no-referrer`); a request with neither header is not from a
/// browser, so not a forged one. `public_origin` is `dashboard.public_url`'s origin, for
/// proxies that rewrite `Host`.
pub(crate) fn same_origin(headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match get("sec-fetch-site") {
        Some("same-origin" | "none") => return true,
        Some(_) => return false,
        None => {}
    }
    let Some(origin) = get("origin") else { return true };
    if public_origin.is_some_and(|public| public.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = get("host");
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The origin (`scheme://host[:port]`) of a URL.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(password_matches(&hash, "correct horse battery"));
        assert!(!password_matches(&hash, "correct horse battery!"));
        assert!(!password_matches("not a hash", "anything"));
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("twelve chars").is_ok());
    }

    #[test]
    fn the_origin_check_follows_the_browser_headers() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")]), None));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site"), ("origin", "http://a:1"), ("host", "a:1")]),
            None
        ));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")]), None));
        assert!(same_origin(&headers(&[("origin", "http://127.0.0.1:8088"), ("host", "127.0.0.1:8088")]), None));
        assert!(!same_origin(&headers(&[("origin", "https://evil.example"), ("host", "127.0.0.1:8088")]), None));
        assert!(!same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1:8088")]), None));
        let behind_proxy = headers(&[("origin", "https://backups.example.org"), ("host", "127.0.0.1:8088")]);
        assert!(same_origin(&behind_proxy, Some("https://backups.example.org")));
        assert!(same_origin(&headers(&[]), None), "not a browser");
        assert_eq!(origin_of("https://backups.example.org/dash/").as_deref(), Some("https://backups.example.org"));
    }

    #[test]
    fn cookies_are_read_strictly() {
        let h = headers(&[("cookie", "a=1; tgploy_session=abc123"), ("cookie", "other=x")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc123"));
        assert_eq!(cookie(&headers(&[("cookie", "tgploy_session=<script>")]), SESSION_COOKIE), None);
        let set = set_cookie(SESSION_COOKIE, "abc", "/", 60, true);
        assert_eq!(set, "tgploy_session=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure");
    }

    #[test]
    fn sessions_expire_when_idle_and_after_twelve_hours() {
        let l = Ledger::in_memory().unwrap();
        let t = 1_800_000_000;
        let id = start_session(&l, Some("Firefox\n"), t).unwrap();
        assert_eq!(id.len(), 64);
        assert!(l.sessions().unwrap()[0].user_agent.as_deref() == Some("Firefox"));
        assert_ne!(l.sessions().unwrap()[0].id_hash, id, "only the hash is stored");
        assert!(resume_session(&l, &id, t + IDLE_SECS - 1).unwrap().is_some());
        assert!(resume_session(&l, &id, t + 2 * IDLE_SECS - 2).unwrap().is_some(), "use keeps it alive");
        assert!(resume_session(&l, &id, t + 3 * IDLE_SECS).unwrap().is_none(), "idle for 30 minutes");
        assert!(l.sessions().unwrap().is_empty(), "an expired session is ended");

        let id = start_session(&l, None, t).unwrap();
        let mut now = t;
        while now + IDLE_SECS - 60 < t + ABSOLUTE_SECS {
            now += IDLE_SECS - 60;
            assert!(resume_session(&l, &id, now).unwrap().is_some());
        }
        assert!(resume_session(&l, &id, t + ABSOLUTE_SECS).unwrap().is_none(), "12 hours after sign-in");
    }

    #[test]
    fn wrong_answers_here_leave_the_command_lines_lock_alone() {
        let l = Ledger::in_memory().unwrap();
        let e = totp::new_enrolment("test").unwrap();
        totp::store(&l, &e).unwrap();
        set_password(&l, "correct horse battery", None).unwrap();
        let t = 1_800_000_000;
        let code = totp::code_at(&e.secret_base32, t as u64).unwrap();
        for _ in 0..10 {
            assert_eq!(check_answer(&l, "wrong password!", &code, t).unwrap(), Answer::Wrong);
            assert_eq!(check_answer(&l, "correct horse battery", "000000", t).unwrap(), Answer::Wrong);
        }
        let state = l.totp().unwrap().unwrap();
        assert_eq!((state.failures, state.locked_until), (0, 0), "the command line counted nothing");
        assert_eq!(state.last_step, 0, "the code was not used up by a wrong password");
        assert_eq!(check_answer(&l, "correct horse battery", &code, t).unwrap(), Answer::Right);
        assert_eq!(check_answer(&l, "correct horse battery", &code, t).unwrap(), Answer::Wrong, "replayed");
        assert!(totp::verify(&l, &code, t).unwrap_err().to_string().contains("already used"), "used everywhere");

        // The command line's own lock does not hold here either.
        for _ in 0..totp::MAX_FAILURES {
            let _ = totp::verify(&l, "000000", t);
        }
        assert!(totp::verify(&l, "000000", t).unwrap_err().to_string().contains("locked"));
        let next = totp::code_at(&e.secret_base32, (t + 30) as u64).unwrap();
        assert_eq!(check_answer(&l, "correct horse battery", &next, t + 30).unwrap(), Answer::Right);
    }

    #[test]
    fn the_csrf_token_depends_on_the_session() {
        let (a, b) = (random_id().unwrap(), random_id().unwrap());
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert!(tokens_match(&csrf_token(&a), &csrf_token(&a)));
        assert!(!tokens_match(&csrf_token(&a), &csrf_token(&b)));
        assert!(!tokens_match("", ""));
    }
}
