//! `setup`: a guided first run that checks every connection as it goes, writes a private
//! config file and enrols the second factor.
//!
//! The wizard ([`wizard`]) talks to the operator through a [`Prompter`], so that its logic
//! runs the same on a terminal (dialoguer, [`terminal::TerminalPrompter`]) and in tests
//! (scripted answers); every question has a way back: `<` at a text prompt, "← Back" in a
//! menu. [`unattended`] takes every answer from flags and the environment and runs the same
//! checks; [`enrol`] enrols the second factor; [`start`] is where a `tgploy setup` begins.

mod enrol;
pub(crate) mod prompt;
pub mod start;
pub(crate) mod terminal;
mod unattended;
mod wizard;

use std::path::PathBuf;

use crate::config::file;
use crate::config::{ChatRef, S3Settings, Secret};
use crate::sink::limits::{CLOUD_API_URL, DEFAULT_PART_SIZE};
use crate::source::{S3Source, SourceError};
use crate::totp;
pub(crate) use enrol::{enrol, enrol_unattended};
pub use prompt::{Prompter, Reply};
pub(crate) use unattended::non_interactive;
pub use wizard::interactive;

/// Everything `setup` asks for, and what it writes.
#[derive(Debug, Clone)]
pub struct Answers {
    /// The S3 server's URL (`s3.endpoint`).
    pub s3_endpoint: String,
    /// The region requests are signed for (`s3.region`).
    pub s3_region: String,
    /// The S3 access key (`s3.access_key`).
    pub s3_access_key: String,
    /// The S3 secret key (`s3.secret_key`).
    pub s3_secret_key: Secret,
    /// The first bot's token (`telegram.bot_token`).
    pub bot_token: Secret,
    /// More bots (`telegram.bot_tokens`).
    pub more_bot_tokens: Vec<Secret>,
    /// The Bot API server's base URL (`telegram.api_url`; left out of the file when it is Telegram's cloud).
    pub api_url: String,
    /// Where backups go (`telegram.backup_chat_id`); `None` until chosen.
    pub backup_chat: Option<ChatRef>,
    /// Where alerts and the heartbeat go (`telegram.admin_chat_id`); `None` for no admin chat.
    pub admin_chat: Option<ChatRef>,
    /// The part size in bytes (`part_size`).
    pub part_size: u64,
    /// The token bucket notifications must carry (`webhook.secret_token`); `None` until one is made.
    pub webhook_token: Option<Secret>,
    /// Where the ledger is (`database_path`); `None` for the default place.
    pub database_path: Option<PathBuf>,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            s3_endpoint: "http://127.0.0.1:9000".into(),
            s3_region: "us-east-1".into(),
            s3_access_key: String::new(),
            s3_secret_key: Secret::new(""),
            bot_token: Secret::new(""),
            more_bot_tokens: Vec::new(),
            api_url: CLOUD_API_URL.into(),
            backup_chat: None,
            admin_chat: None,
            part_size: DEFAULT_PART_SIZE,
            webhook_token: None,
            database_path: None,
        }
    }
}

impl Answers {
    /// The config file these answers make.
    pub(crate) fn to_toml(&self) -> String {
        file::render(&file::NewFile {
            part_size: self.part_size,
            database_path: self.database_path.as_deref(),
            s3: &self.s3(),
            bot_token: &self.bot_token,
            more_bot_tokens: &self.more_bot_tokens,
            api_url: &self.api_url,
            backup_chat: self.backup_chat.as_ref(),
            admin_chat: self.admin_chat.as_ref(),
            webhook_token: self.webhook_token.as_ref(),
        })
    }

    fn s3(&self) -> S3Settings {
        S3Settings {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key: self.s3_access_key.clone(),
            secret_key: self.s3_secret_key.clone(),
        }
    }
}

/// What setup did besides writing the file (which it said).
pub struct Outcome {
    /// Shown once: the otpauth URL and the recovery codes.
    pub enrolment: Option<totp::Enrolment>,
}

const NEXT_STEPS: &str = "Next steps:
  1. tgploy sync --dry-run        # see what would be sent
  2. tgploy sync                  # send it
  3. Install the timers (examples/systemd/ in the source):
       cp tgploy-{sync,retry,heartbeat}.{service,timer} /etc/systemd/system/
       systemctl enable --now tgploy-sync.timer tgploy-retry.timer tgploy-heartbeat.timer
  4. For delivery within seconds: tgploy serve-webhook (see the README, Bucket notifications)
  5. For a web dashboard: tgploy setup dashboard, then tgploy dashboard (see the README, Dashboard)
  6. tgploy doctor                # checks all of the above at any time";

/// Checks the S3 settings by listing buckets; returns their names.
pub(crate) async fn check_s3(answers: &Answers) -> std::result::Result<Vec<String>, SourceError> {
    S3Source::new(&answers.s3()).list_buckets().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::write_private;

    #[test]
    fn the_written_config_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        let a = Answers {
            s3_access_key: "ak\"with quote".into(),
            s3_secret_key: Secret::new("s3cr3t"),
            bot_token: Secret::new("123:abc"),
            more_bot_tokens: vec![Secret::new("456:def")],
            backup_chat: Some(ChatRef::Id(-100123)),
            admin_chat: Some(ChatRef::Username("@ops".into())),
            webhook_token: Some(Secret::new("hook")),
            part_size: 49 << 20,
            ..Answers::default()
        };
        assert!(write_private(&path, &a.to_toml()).unwrap().is_none());
        let overrides = crate::config::Overrides { config: Some(path.clone()), ..Default::default() };
        let cfg = crate::config::Config::load_with(&overrides, &|_| None).unwrap();
        assert_eq!(cfg.require_s3().unwrap().access_key, "ak\"with quote");
        let tg = cfg.require_telegram().unwrap();
        assert_eq!(tg.admin.map(|d| d.chat), Some(ChatRef::Username("@ops".into())));
        assert_eq!(tg.bots, [Secret::new("123:abc"), Secret::new("456:def")]);
        assert_eq!(cfg.part_size, 49 << 20);
        assert_eq!(cfg.webhook_token, Some(Secret::new("hook")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        }
        let backup = write_private(&path, "part_size = \"4MiB\"\n").unwrap().unwrap();
        assert!(std::fs::read_to_string(&backup).unwrap().contains("s3cr3t"), "the old file is kept");
    }
}
