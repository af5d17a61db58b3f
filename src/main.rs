//! The `tgploy` binary: parse the arguments, set up logging, run the library, exit with
//! its code (see `tgploy::run`).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tgploy::cli::Cli::parse();
    tgploy::logging::init(&cli.global);
    std::process::ExitCode::from(tgploy::run(cli).code() as u8)
}
