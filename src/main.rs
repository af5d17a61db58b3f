//! The `tgploy` binary: the command line ([`cli`]), one file per command ([`commands`]),
//! and `main`, which parses the arguments, sets up logging, runs the command and exits
//! with the code its error maps to. The work is the library's (`tgploy`), which never
//! sees the command line.

mod cli;
mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    tgploy::logging::init(cli.global.quiet, cli.global.verbose);
    let code = match commands::run(cli) {
        Ok(()) => tgploy::ExitCode::Success,
        Err(e) => {
            // The report on stdout already said what failed: a summary follows.
            if e.is_summary() {
                eprintln!("tgploy: {e}");
            } else {
                eprintln!("tgploy: error: {e}");
            }
            e.exit_code()
        }
    };
    std::process::ExitCode::from(code.code() as u8)
}
