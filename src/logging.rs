//! Logs go to stderr through tracing; `TGPLOY_LOG` (an env-filter directive such as
//! `debug` or `tgploy=debug`) overrides `-v`/`-q`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::GlobalArgs;
use crate::config::env;

pub fn init(args: &GlobalArgs) {
    let default = match (args.quiet, args.verbose) {
        (true, _) => "warn",
        (false, 0) => "tgploy=info,warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = std::env::var(env::LOG)
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::progress::LogWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
