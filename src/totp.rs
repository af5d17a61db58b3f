//! The second factor: TOTP (RFC 6238, 30 s steps, 6 digits) and one-time recovery codes.
//!
//! Once a secret is enrolled, operations that reduce protection or reveal backups ask for
//! a current code. A code is accepted once, wherever it is given (its time step is
//! remembered, so it cannot be replayed); each of the ten recovery codes works once in
//! place of a code. Five wrong codes in a row on the command line lock the command line
//! for 15 minutes: those need a shell on the host. The dashboard's wrong answers do not
//! count there (anyone who can reach its sign-in page could give them): the dashboard
//! throttles its own ([`crate::dashboard::throttle`]), so nobody on the network can
//! block a restore. Secrets and recovery codes live in the ledger (the codes only as
//! SHA-256 hashes), never in the config file.

use std::io::IsTerminal;

use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret as TotpSecret, Totp};

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::time::now;

pub(crate) const STEP: u64 = 30;
pub(crate) const DIGITS: usize = 6;
/// Wrong codes in a row before the lock.
pub(crate) const MAX_FAILURES: u32 = 5;
pub(crate) const LOCK_SECS: i64 = 15 * 60;
pub(crate) const RECOVERY_CODES: usize = 10;

/// A new enrolment: what the operator must see once.
pub struct Enrolment {
    /// The shared secret in base32, for an authenticator app that takes it typed in.
    pub secret_base32: String,
    pub(crate) url: String,
    /// One-time recovery codes (`xxxx-xxxx-xxxx`), each accepted once in place of a code.
    pub recovery_codes: Vec<String>,
}

fn totp(secret_base32: &str, account: &str) -> Result<Totp> {
    // The secret in the ledger is damaged: no code can be checked against it. The fix is
    // the operator's (exit 2), as for any second-factor refusal.
    let damaged = |what: String| {
        Error::SecondFactor(format!(
            "{what}; enrol again with `tgploy setup totp --reset --otp RECOVERY-CODE`, or remove it from the \
             ledger (README: Lost phone?)"
        ))
    };
    let secret = TotpSecret::try_from_base32(secret_base32)
        .map_err(|e| damaged(format!("the TOTP secret stored in the ledger is unreadable ({e:?})")))?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(1)
        .with_step_duration(STEP)
        .with_secret(secret)
        .with_issuer(Some("tgploy"))
        .with_account_name(account)
        .build()
        .map_err(|e| damaged(format!("the TOTP secret stored in the ledger cannot be used ({e:?})")))
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| Error::Internal(format!("no randomness from the OS: {e}")))?;
    Ok(buf)
}

/// A random token for the webhook (32 bytes, URL-safe).
pub(crate) fn random_token() -> Result<String> {
    Ok(base32_lower(&random_bytes::<20>()?))
}

fn base32_lower(bytes: &[u8]) -> String {
    TotpSecret::from(bytes.to_vec()).to_base32().to_lowercase()
}

fn hash_code(code: &str) -> String {
    let normalized: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

/// A fresh secret and recovery codes (not stored yet).
pub fn new_enrolment(account: &str) -> Result<Enrolment> {
    let secret = TotpSecret::from(random_bytes::<20>()?).to_base32();
    let url = totp(&secret, account)?
        .to_url()
        .map_err(|e| Error::Internal(format!("cannot build the otpauth URL: {e:?}")))?;
    let mut recovery_codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let raw = base32_lower(&random_bytes::<8>()?);
        recovery_codes.push(format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12]));
    }
    Ok(Enrolment { secret_base32: secret, url, recovery_codes })
}

/// The current code for a secret (for the enrolment check and for tests).
pub fn code_at(secret_base32: &str, unix_secs: u64) -> Result<String> {
    Ok(totp(secret_base32, "tgploy")?.generate(unix_secs).to_string())
}

/// Stores an enrolment after the operator confirmed a code from it.
pub fn store(ledger: &Ledger, enrolment: &Enrolment) -> Result<()> {
    let hashes: Vec<String> = enrolment.recovery_codes.iter().map(|c| hash_code(c)).collect();
    ledger.enroll_totp(&enrolment.secret_base32, &hashes, now())
}

/// Checks a code for an enrolment being confirmed (nothing stored yet).
pub(crate) fn confirms(enrolment: &Enrolment, code: &str) -> bool {
    let now = now().max(0) as u64;
    let code = code.trim();
    (-1i64..=1).any(|d| {
        let t = (now as i64 + d * STEP as i64).max(0) as u64;
        code_at(&enrolment.secret_base32, t).is_ok_and(|c| c == code)
    })
}

/// Whether a second factor is enrolled.
pub(crate) fn enrolled(ledger: &Ledger) -> Result<bool> {
    Ok(ledger.totp()?.is_some())
}

/// What checking an answer against the enrolled second factor found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No second factor is enrolled: there was nothing to check.
    NotEnrolled,
    /// A current code, not used before; its time step is used up now.
    Accepted,
    /// A recovery code, used up now.
    Recovery { left: u64 },
    /// A wrong answer: `failures` of [`MAX_FAILURES`] in a row; `locked` when this one
    /// started the lock.
    Wrong { failures: u32, locked: bool },
    /// The right code for a time step already used: a replay, counted as wrong.
    Replayed { failures: u32, locked: bool },
    /// Locked after too many wrong answers, until then; nothing was checked.
    Locked { until: i64 },
}

impl Verdict {
    /// Whether the answer opens the gate.
    pub(crate) fn passed(self) -> bool {
        matches!(self, Verdict::Accepted | Verdict::Recovery { .. })
    }
}

/// Where an answer was given: only the command line's wrong answers count towards its
/// lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    CommandLine,
    /// The dashboard, which throttles its own wrong answers.
    Dashboard,
}

/// Checks a TOTP code or a recovery code given on the command line against the enrolled
/// secret, recording the outcome (the step used, the recovery code used up, or one more
/// failure towards the command line's lock).
pub(crate) fn check(ledger: &Ledger, code: &str, now: i64) -> Result<Verdict> {
    check_at(ledger, code, now, Gate::CommandLine)
}

/// Checks a TOTP code or a recovery code given at `gate`. A right code is used up
/// wherever it was given; a wrong one counts, and the lock holds, on the command line
/// only.
pub(crate) fn check_at(ledger: &Ledger, code: &str, now: i64, gate: Gate) -> Result<Verdict> {
    let Some(state) = ledger.totp()? else { return Ok(Verdict::NotEnrolled) };
    if gate == Gate::CommandLine && state.locked_until > now {
        return Ok(Verdict::Locked { until: state.locked_until });
    }
    let failed = || -> Result<(u32, bool)> {
        if gate == Gate::Dashboard {
            return Ok((0, false));
        }
        let failures = ledger.totp_failed(MAX_FAILURES, now + LOCK_SECS)?;
        Ok((failures, failures >= MAX_FAILURES))
    };
    let code = code.trim();
    if code.len() == DIGITS && code.chars().all(|c| c.is_ascii_digit()) {
        let current = now / STEP as i64;
        for step in [current - 1, current, current + 1] {
            if code_at(&state.secret, (step.max(0) as u64) * STEP)? != code {
                continue;
            }
            if step <= state.last_step {
                let (failures, locked) = failed()?;
                return Ok(Verdict::Replayed { failures, locked });
            }
            ledger.totp_accepted(step)?;
            return Ok(Verdict::Accepted);
        }
    } else if ledger.use_recovery_code(&hash_code(code), now)? {
        let left = ledger.recovery_codes_left()?;
        tracing::warn!("a recovery code was used; {left} left");
        return Ok(Verdict::Recovery { left });
    }
    let (failures, locked) = failed()?;
    Ok(Verdict::Wrong { failures, locked })
}

impl Verdict {
    /// Why the answer was refused, for the operator; `None` when it opens the gate.
    pub(crate) fn refusal(self, now: i64) -> Option<String> {
        match self {
            Verdict::NotEnrolled | Verdict::Accepted | Verdict::Recovery { .. } => None,
            Verdict::Locked { until } => Some(format!(
                "second factor locked after {MAX_FAILURES} wrong codes; try again at {} (or wait {} min)",
                crate::time::rfc3339(until),
                (until - now + 59) / 60
            )),
            Verdict::Replayed { failures, .. } => Some(format!(
                "this code was already used; wait for the next one ({failures} of {MAX_FAILURES} wrong codes)"
            )),
            Verdict::Wrong { locked: true, .. } => Some(format!(
                "wrong code; second factor locked for {} minutes after {MAX_FAILURES} wrong codes",
                LOCK_SECS / 60
            )),
            Verdict::Wrong { failures, .. } => Some(format!(
                "wrong code ({failures} of {MAX_FAILURES} before a {}-minute lock); use the current code from your authenticator app, or a recovery code",
                LOCK_SECS / 60
            )),
        }
    }
}

/// Verifies a TOTP code or a recovery code against the enrolled secret (passing when
/// none is enrolled); the error says what was wrong.
pub(crate) fn verify(ledger: &Ledger, code: &str, now: i64) -> Result<()> {
    match check(ledger, code, now)?.refusal(now) {
        None => Ok(()),
        Some(why) => Err(Error::SecondFactor(why)),
    }
}

/// The gate in front of `action`: passes when no second factor is enrolled; otherwise
/// needs `--otp CODE`, or a code typed at the prompt on a terminal.
pub(crate) fn require(ledger: &Ledger, otp: Option<&str>, action: &str) -> Result<()> {
    if !enrolled(ledger)? {
        return Ok(());
    }
    let code = match otp {
        Some(code) => code.to_string(),
        None if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => dialoguer::Password::new()
            .with_prompt(format!("Second-factor code to {action} (or a recovery code)"))
            .interact()
            .map_err(|e| Error::SecondFactor(format!("cannot read the code: {e}")))?,
        None => {
            return Err(Error::SecondFactor(format!(
                "{action} needs a second-factor code: pass --otp CODE (the current code of your authenticator app, or a recovery code)"
            )));
        }
    };
    verify(ledger, &code, now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrolled_ledger() -> (Ledger, Enrolment) {
        let l = Ledger::in_memory().unwrap();
        let e = new_enrolment("test").unwrap();
        store(&l, &e).unwrap();
        (l, e)
    }

    #[test]
    fn a_code_works_once() {
        let (l, e) = enrolled_ledger();
        let t = 1_800_000_000;
        let code = code_at(&e.secret_base32, t as u64).unwrap();
        verify(&l, &code, t).unwrap();
        let again = verify(&l, &code, t + 5).unwrap_err().to_string();
        assert!(again.contains("already used"), "{again}");
        let next = code_at(&e.secret_base32, (t + 30) as u64).unwrap();
        verify(&l, &next, t + 30).unwrap();
    }

    #[test]
    fn five_wrong_codes_lock_for_15_minutes() {
        let (l, e) = enrolled_ledger();
        let t = 1_800_000_000;
        for i in 1..=4 {
            let err = verify(&l, "000000", t).unwrap_err().to_string();
            assert!(err.contains(&format!("{i} of 5")), "{err}");
        }
        assert!(verify(&l, "000000", t).unwrap_err().to_string().contains("locked"));
        let good = code_at(&e.secret_base32, (t + 60) as u64).unwrap();
        assert!(verify(&l, &good, t + 60).unwrap_err().to_string().contains("locked"), "even a right code");
        let later = t + LOCK_SECS + 1;
        verify(&l, &code_at(&e.secret_base32, later as u64).unwrap(), later).unwrap();
    }

    #[test]
    fn a_recovery_code_works_once() {
        let (l, e) = enrolled_ledger();
        let code = e.recovery_codes[3].to_uppercase();
        verify(&l, &code, 0).unwrap();
        assert!(verify(&l, &code, 0).is_err());
        assert_eq!(l.recovery_codes_left().unwrap(), 9);
    }

    #[test]
    fn enrolment_looks_right() {
        let e = new_enrolment("ops@backup-host").unwrap();
        assert!(e.url.starts_with("otpauth://totp/tgploy:"), "{}", e.url);
        assert!(e.url.contains(&format!("secret={}", e.secret_base32)));
        assert_eq!(e.recovery_codes.len(), 10);
        assert!(confirms(&e, &code_at(&e.secret_base32, now() as u64).unwrap()));
        assert!(!confirms(&e, "12345"));
    }
}
