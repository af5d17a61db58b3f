//! What `tgploy setup` does before it asks anything: which file it writes, the
//! settings it starts from, the second-factor gate in front of an existing
//! configuration, and whether it asks on a terminal or takes its answers from flags
//! and the environment. Also `setup totp --reset` and `setup dashboard`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use super::terminal::{PrintPrompter, TerminalPrompter};
use super::{Answers, default_config_path, enrol, enrol_unattended, interactive, non_interactive};
use crate::cli::{GlobalArgs, SetupArgs, SetupCommand};
use crate::config::{ChatRef, Config, Overrides, check_part_size, env};
use crate::dashboard::auth;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::output;
use crate::totp;
use crate::units::parse_size;

/// How long the wizard waits for a message to the bot when detecting a chat.
const DETECT_WAIT: Duration = Duration::from_secs(120);

/// Runs `tgploy setup` (or one of its subcommands) to the end.
pub async fn run(global: &GlobalArgs, args: &SetupArgs) -> Result<()> {
    let target = match global.config.clone().or_else(|| std::env::var_os(env::CONFIG).map(PathBuf::from)) {
        Some(p) => p,
        None => default_config_path()?,
    };
    // The existing settings (file, then environment) are the defaults; a file that does
    // not load is what setup is there to replace.
    // TGPLOY_CONFIG names the target, which may not exist yet: it is not read as such.
    let from_env = |name: &str| if name == env::CONFIG { None } else { std::env::var(name).ok() };
    let cfg = {
        let flags = Overrides::default().flag("database_path", global.database.as_ref().map(|p| p.display()));
        let overrides = Overrides { config: target.exists().then(|| target.clone()), ..flags.clone() };
        match Config::load_with(&overrides, &from_env) {
            Ok(cfg) => cfg,
            Err(e) => {
                tracing::warn!("the existing configuration does not load ({e}); starting from the environment");
                Config::load_with(&flags, &from_env)?
            }
        }
    };
    let ledger = || Ledger::open(&cfg.database_path()?);

    if let Some(SetupCommand::Totp { .. }) = &args.what {
        let ledger = ledger()?;
        totp::require(&ledger, global.otp.as_deref(), "re-enrol the second factor")?;
        if args.non_interactive || !is_terminal() {
            enrol_unattended(&mut PrintPrompter, &ledger)?;
        } else {
            enrol(&mut TerminalPrompter, &ledger, true)?;
        }
        return Ok(());
    }

    if let Some(SetupCommand::Dashboard) = &args.what {
        return dashboard_password(&ledger()?, global, args);
    }

    if target.exists() {
        totp::require(&ledger()?, global.otp.as_deref(), "replace the configuration")?;
    }
    let answers = answers(&cfg, args)?;
    if args.non_interactive {
        if answers.s3_endpoint.is_empty()
            || answers.s3_access_key.is_empty()
            || answers.s3_secret_key.expose().is_empty()
        {
            return Err(Error::config(
                "--non-interactive needs the S3 endpoint, access key and secret key: --s3-endpoint, --s3-access-key \
                 (or RUSTFS_ENDPOINT, RUSTFS_ACCESS_KEY) and RUSTFS_SECRET_KEY",
            ));
        }
        if answers.bot_token.expose().is_empty() {
            return Err(Error::config(
                "--non-interactive needs the bot token: set TELEGRAM_BOT_TOKEN (or TELEGRAM_BOT_TOKEN_FILE)",
            ));
        }
        non_interactive(&mut PrintPrompter, answers, &target, args.force, !args.no_totp).await?;
        return Ok(());
    }
    if !is_terminal() {
        return Err(Error::config(
            "setup asks questions and needs a terminal; for scripts use `tgploy setup --non-interactive` with flags and environment variables",
        ));
    }
    interactive(&mut TerminalPrompter, answers, &target, !args.no_totp, DETECT_WAIT).await?;
    Ok(())
}

/// `setup dashboard`: sets the dashboard's password from a prompt or the environment.
fn dashboard_password(ledger: &Ledger, global: &GlobalArgs, args: &SetupArgs) -> Result<()> {
    let replacing = ledger.dashboard_password_hash()?.is_some();
    if replacing {
        totp::require(ledger, global.otp.as_deref(), "replace the dashboard password")?;
    }
    let password = if args.non_interactive {
        match (std::env::var(env::DASHBOARD_PASSWORD).ok(), std::env::var_os(env::DASHBOARD_PASSWORD_FILE)) {
            (Some(p), _) if !p.is_empty() => p,
            (_, Some(path)) => {
                std::fs::read_to_string(&path).map(|p| p.trim_end_matches(['\r', '\n']).to_string()).map_err(|e| {
                    Error::config(format!(
                        "cannot read {} {}: {e}",
                        env::DASHBOARD_PASSWORD_FILE,
                        PathBuf::from(&path).display()
                    ))
                })?
            }
            _ => {
                return Err(Error::config(format!(
                    "--non-interactive reads the dashboard password from {} or {}; neither is set",
                    env::DASHBOARD_PASSWORD,
                    env::DASHBOARD_PASSWORD_FILE
                )));
            }
        }
    } else if is_terminal() {
        dialoguer::Password::new()
            .with_prompt(format!("Dashboard password (at least {} characters)", auth::MIN_PASSWORD_CHARS))
            .with_confirmation("The same again", "The two differ; try again")
            .validate_with(|p: &String| auth::check_new_password(p))
            .interact()
            .map_err(|e| Error::config(format!("cannot read the password: {e}")))?
    } else {
        return Err(Error::config(format!(
            "setup dashboard asks for the password on a terminal; for scripts use --non-interactive with {} or {}",
            env::DASHBOARD_PASSWORD,
            env::DASHBOARD_PASSWORD_FILE
        )));
    };
    auth::set_password(ledger, &password, None)?;
    output::print(&format!(
        "dashboard password {} (an argon2id hash in the ledger){}\n",
        if replacing { "replaced" } else { "set" },
        if replacing { "; every dashboard session is signed out" } else { "" }
    ))?;
    if !totp::enrolled(ledger)? {
        output::print("the dashboard also needs a second factor: enrol one with `tgploy setup totp --reset`\n")?;
    } else {
        output::print("start it with `tgploy dashboard`\n")?;
    }
    Ok(())
}

fn is_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Defaults from the settings, overridden by flags.
fn answers(cfg: &Config, args: &SetupArgs) -> Result<Answers> {
    let mut a = Answers::default();
    if let Some(v) = args.s3_endpoint.clone().or_else(|| cfg.s3_endpoint.clone()) {
        a.s3_endpoint = v;
    }
    a.s3_region = args.s3_region.clone().unwrap_or_else(|| cfg.s3_region.clone());
    a.s3_access_key = args.s3_access_key.clone().or_else(|| cfg.s3_access_key.clone()).unwrap_or_default();
    if let Some(s) = &cfg.s3_secret_key {
        a.s3_secret_key = s.clone();
    }
    if let Some(t) = &cfg.bot_token {
        a.bot_token = t.clone();
    }
    a.more_bot_tokens = cfg.more_bot_tokens.clone();
    a.api_url = args.api_url.clone().unwrap_or_else(|| cfg.api_url.clone());
    let chat = |flag: &Option<String>, name: &str| -> Result<Option<ChatRef>> {
        flag.as_ref()
            .map(|v| v.parse::<ChatRef>().map_err(|why| Error::config(format!("invalid {name}: {why}"))))
            .transpose()
    };
    a.backup_chat = chat(&args.backup_chat_id, "--backup-chat-id")?.or_else(|| cfg.backup_chat.clone());
    a.admin_chat = chat(&args.admin_chat_id, "--admin-chat-id")?.or_else(|| cfg.admin_chat.clone());
    a.part_size = match &args.part_size {
        Some(v) => parse_size(v)
            .and_then(|n| check_part_size(n, &a.api_url))
            .map_err(|why| Error::config(format!("invalid --part-size {v}: {why}")))?,
        None => cfg.part_size,
    };
    a.webhook_token = cfg.webhook_token.clone();
    a.database_path = cfg.database_path.clone();
    Ok(a)
}
