//! Results on stdout: tables (comfy-table) and JSON. A closed pipe (`tgploy files | head`)
//! is not an error: the reader got what it wanted.

use std::io::Write;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

use crate::error::{Error, Result};

/// Writes text to stdout; a broken pipe counts as success.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Failed(format!("cannot write to stdout: {e}"))),
    }
}

/// Writes a report on stdout, or on stderr when stdout carries something else (a
/// restored object).
pub fn print_to(text: &str, stderr: bool) -> Result<()> {
    if stderr {
        eprint!("{text}");
        return Ok(());
    }
    print(text)
}

/// Writes a value as pretty JSON and a newline.
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Internal(format!("cannot encode JSON: {e}")))?;
    print(&format!("{text}\n"))
}

/// A table with a header, laid out to the terminal's width (off a terminal, as wide as
/// its content).
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}
