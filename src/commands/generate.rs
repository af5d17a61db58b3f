//! `completions` and `man` subcommands: generated from the command tree itself, so they
//! never drift from `--help`.

use clap::CommandFactory;

use crate::cli::Cli;
use tgploy::error::{Error, Result};
use tgploy::output;

pub(crate) fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tgploy", &mut buf);
    output::print(&String::from_utf8_lossy(&buf))
}

pub(crate) fn man() -> Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))?;
    output::print(&String::from_utf8_lossy(&buf))
}
