//! What `tgploy setup` does before it asks anything: which file it writes, the settings
//! it starts from, the second-factor gate in front of an existing configuration, and
//! whether it asks on a terminal or takes its answers from the flags and the
//! environment. Also `setup totp --reset` and `setup dashboard`. The command line gives
//! a [`Request`]; nothing here reads flags or looks at the terminal.

use std::path::PathBuf;
use std::time::Duration;

use super::terminal::{PrintPrompter, TerminalPrompter};
use super::{Answers, enrol, enrol_unattended, interactive, non_interactive};
use crate::config::{ChatRef, Config, setup_target};
use crate::dashboard::auth;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::sink::limits::check_part_size;
use crate::sizes::parse_size;
use crate::totp;

/// How long the wizard waits for a message to the bot when detecting a chat.
const DETECT_WAIT: Duration = Duration::from_secs(120);

/// What `tgploy setup` is asked to do.
pub enum Task<'a> {
    /// Write the configuration (the wizard, or its unattended twin).
    Configure,
    /// Enrol a new second factor (`setup totp --reset`).
    ResetTotp,
    /// Set the dashboard's password, asked of `password` once the second factor allows
    /// it (`setup dashboard`).
    DashboardPassword(&'a mut dyn FnMut() -> Result<String>),
}

/// Answers given as flags, overriding the existing settings (`--s3-endpoint`, …): as
/// given, checked here.
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// `--s3-endpoint`: the S3 server's URL.
    pub s3_endpoint: Option<String>,
    /// `--s3-region`: the region requests are signed for.
    pub s3_region: Option<String>,
    /// `--s3-access-key`: the S3 access key.
    pub s3_access_key: Option<String>,
    /// `--api-url`: a self-hosted Bot API server's base URL.
    pub api_url: Option<String>,
    /// `--backup-chat-id`: a numeric chat id or `@username`.
    pub backup_chat_id: Option<String>,
    /// `--admin-chat-id`: a numeric chat id or `@username`.
    pub admin_chat_id: Option<String>,
    /// `--part-size`: bytes, or with a unit (`19MiB`).
    pub part_size: Option<String>,
}

/// A `tgploy setup`, as the command line asks for it.
pub struct Request<'a> {
    /// What to do.
    pub task: Task<'a>,
    /// `--config`: the file to write; else TGPLOY_CONFIG, else the default place.
    pub config: Option<PathBuf>,
    /// `--database`: where the ledger is.
    pub database: Option<PathBuf>,
    /// A second-factor code, needed to replace what is protected once one is enrolled.
    pub otp: Option<String>,
    /// Take every answer from `given` and the environment; ask nothing.
    pub unattended: bool,
    /// Whether questions can be asked (stdin and stderr are a terminal).
    pub terminal: bool,
    /// Replace an existing config file (unattended).
    pub force: bool,
    /// Enrol a second factor after writing the configuration.
    pub totp: bool,
    /// Answers given as flags.
    pub given: Given,
}

/// What `setup dashboard` did.
#[derive(Debug, Clone, Copy)]
pub struct PasswordSet {
    /// An earlier password was replaced (every session signed out).
    pub replaced: bool,
    /// A second factor is enrolled (the dashboard needs one).
    pub totp_enrolled: bool,
}

/// Runs `tgploy setup` (or one of its subcommands) to the end. Returns what `setup
/// dashboard` did, for the command to say; the wizard speaks for itself.
pub async fn setup(req: Request<'_>) -> Result<Option<PasswordSet>> {
    let target = setup_target(req.config.clone())?;
    let cfg = Config::load_for_setup(&target, req.database.as_deref())?;
    let ledger = || Ledger::open(&cfg.database_path()?);
    let ask = req.terminal && !req.unattended;

    match req.task {
        Task::ResetTotp => {
            let ledger = ledger()?;
            totp::require(&ledger, req.otp.as_deref(), "re-enrol the second factor")?;
            if ask {
                enrol(&mut TerminalPrompter, &ledger, true)?;
            } else {
                enrol_unattended(&mut PrintPrompter, &ledger)?;
            }
            Ok(None)
        }
        Task::DashboardPassword(password) => {
            let ledger = ledger()?;
            let replaced = ledger.dashboard_password_hash()?.is_some();
            if replaced {
                totp::require(&ledger, req.otp.as_deref(), "replace the dashboard password")?;
            }
            auth::set_password(&ledger, &password()?, None)?;
            Ok(Some(PasswordSet { replaced, totp_enrolled: totp::enrolled(&ledger)? }))
        }
        Task::Configure => {
            if target.exists() {
                totp::require(&ledger()?, req.otp.as_deref(), "replace the configuration")?;
            }
            let answers = answers(&cfg, &req.given)?;
            if req.unattended {
                if answers.s3_endpoint.is_empty()
                    || answers.s3_access_key.is_empty()
                    || answers.s3_secret_key.expose().is_empty()
                {
                    return Err(Error::config(
                        "--non-interactive needs the S3 endpoint, access key and secret key: --s3-endpoint, \
                         --s3-access-key (or RUSTFS_ENDPOINT, RUSTFS_ACCESS_KEY) and RUSTFS_SECRET_KEY",
                    ));
                }
                if answers.bot_token.expose().is_empty() {
                    return Err(Error::config(
                        "--non-interactive needs the bot token: set TELEGRAM_BOT_TOKEN (or TELEGRAM_BOT_TOKEN_FILE)",
                    ));
                }
                non_interactive(&mut PrintPrompter, answers, &target, req.force, req.totp).await?;
                return Ok(None);
            }
            if !req.terminal {
                return Err(Error::config(
                    "setup asks questions and needs a terminal; for scripts use `tgploy setup --non-interactive` \
                     with flags and environment variables",
                ));
            }
            interactive(&mut TerminalPrompter, answers, &target, req.totp, DETECT_WAIT).await?;
            Ok(None)
        }
    }
}

/// Defaults from the settings, overridden by the flags.
fn answers(cfg: &Config, given: &Given) -> Result<Answers> {
    let mut a = Answers::default();
    if let Some(v) = given.s3_endpoint.clone().or_else(|| cfg.s3_endpoint.clone()) {
        a.s3_endpoint = v;
    }
    a.s3_region = given.s3_region.clone().unwrap_or_else(|| cfg.s3_region.clone());
    a.s3_access_key = given.s3_access_key.clone().or_else(|| cfg.s3_access_key.clone()).unwrap_or_default();
    if let Some(s) = &cfg.s3_secret_key {
        a.s3_secret_key = s.clone();
    }
    if let Some(t) = &cfg.bot_token {
        a.bot_token = t.clone();
    }
    a.more_bot_tokens = cfg.more_bot_tokens.clone();
    a.api_url = given.api_url.clone().unwrap_or_else(|| cfg.api_url.clone());
    let chat = |flag: &Option<String>, name: &str| -> Result<Option<ChatRef>> {
        flag.as_ref()
            .map(|v| v.parse::<ChatRef>().map_err(|why| Error::config(format!("invalid {name}: {why}"))))
            .transpose()
    };
    a.backup_chat = chat(&given.backup_chat_id, "--backup-chat-id")?.or_else(|| cfg.backup_chat.clone());
    a.admin_chat = chat(&given.admin_chat_id, "--admin-chat-id")?.or_else(|| cfg.admin_chat.clone());
    a.part_size = match &given.part_size {
        Some(v) => parse_size(v)
            .and_then(|n| check_part_size(n, &a.api_url))
            .map_err(|why| Error::config(format!("invalid --part-size {v}: {why}")))?,
        None => cfg.part_size,
    };
    a.webhook_token = cfg.webhook_token.clone();
    a.database_path = cfg.database_path.clone();
    Ok(a)
}
