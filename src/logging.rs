//! Logs go to stderr through tracing; `TGPLOY_LOG` (an env-filter directive such as
//! `debug` or `tgploy=debug`) overrides `-v`/`-q`. Every line is scrubbed of the secrets
//! the configuration holds (every bot token, the S3 secret key, the webhook token), also
//! what other libraries log at trace level (a Bot API URL holds its bot's token).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::env;

/// Logs to stderr: warnings only when `quiet`, more with each `verbose` step (`-v`,
/// `-vv`), unless `TGPLOY_LOG` says otherwise.
pub fn init(quiet: bool, verbose: u8) {
    let default = match (quiet, verbose) {
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

/// The secrets no log line may show.
static SECRETS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// From now on, log lines show `***` for each of `secrets` (and a bot token's secret
/// half).
pub fn redact(secrets: Vec<String>) {
    let mut known = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    *known = secrets.into_iter().filter(|s| s.len() >= 4).collect();
}

/// A log line with every known secret replaced.
pub(crate) fn scrub(line: &str) -> String {
    let known = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    known.iter().fold(line.to_string(), |line, secret| crate::config::redact(&line, secret))
}
