//! Enrolling the second factor during setup: with a confirming code on a terminal, or
//! unattended (the secret and recovery codes shown once).

use super::Answers;
use super::prompt::{Prompter, Reply};
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::totp;

/// Enrols without a confirming code (nobody can type one): the secret and recovery codes
/// are shown once.
pub(crate) fn enrol_unattended(p: &mut dyn Prompter, ledger: &Ledger) -> Result<totp::Enrolment> {
    let e = totp::new_enrolment(&account_name())?;
    totp::store(ledger, &e)?;
    p.say(&format!("Second factor enrolled; add it to your authenticator app: {}", e.url));
    p.say(&format!("Recovery codes (each works once; shown only now): {}", e.recovery_codes.join(" ")));
    Ok(e)
}

pub(super) fn ledger_for(a: &Answers) -> Result<Ledger> {
    let path = match &a.database_path {
        Some(p) => p.clone(),
        None => directories::ProjectDirs::from("", "", "tgploy")
            .map(|d| d.data_dir().join("ledger.sqlite3"))
            .ok_or_else(|| Error::config("no home directory for the ledger: set DATABASE_PATH"))?,
    };
    Ledger::open(&path)
}

/// Shows a new secret (URL and QR code), asks for a current code, stores it with the
/// recovery codes, which are shown once.
pub(crate) fn enrol(p: &mut dyn Prompter, ledger: &Ledger, replace: bool) -> Result<Option<totp::Enrolment>> {
    if !replace && totp::enrolled(ledger)? {
        p.say("A second factor is already enrolled; `tgploy setup totp --reset` replaces it.");
        return Ok(None);
    }
    let enrolment = totp::new_enrolment(&account_name())?;
    p.say("Second factor: add this to your authenticator app (scan the QR code or open the URL):");
    p.say(&enrolment.url);
    if let Ok(qr) = qrcode::QrCode::new(enrolment.url.as_bytes()) {
        p.say(&qr.render::<qrcode::render::unicode::Dense1x2>().quiet_zone(true).build());
    }
    loop {
        match p.input("Current 6-digit code from the app (or `skip`)", None)? {
            Reply::Back => continue,
            Reply::Value(v) if v.trim().eq_ignore_ascii_case("skip") => {
                p.say("Second factor skipped; enrol later with `tgploy setup totp --reset`.");
                return Ok(None);
            }
            Reply::Value(code) if totp::confirms(&enrolment, &code) => break,
            Reply::Value(_) => p.say("That code does not match; check the app's clock and try the current code."),
        }
    }
    totp::store(ledger, &enrolment)?;
    p.say("Second factor enrolled. Recovery codes (each works once in place of a code; store them offline, they are not shown again):");
    p.say(&enrolment.recovery_codes.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n"));
    Ok(Some(enrolment))
}

fn account_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    if host.is_empty() { "tgploy".into() } else { format!("tgploy@{host}") }
}
