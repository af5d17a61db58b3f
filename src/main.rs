use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tgploy::cli::Cli::parse();
    tgploy::logging::init(&cli.global);
    std::process::ExitCode::from(tgploy::run(cli).code() as u8)
}
