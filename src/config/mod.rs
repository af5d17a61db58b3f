//! Settings: defaults < TOML file < environment < flags, and their validation.
//!
//! Settings are read once, leniently: a command checks only what it needs (`status`
//! needs no bot token), through the `require_*` accessors, whose errors name the setting
//! and every place it can be set. The settings table ([`settings`]) names every
//! setting; [`load`] resolves them through it; [`file`] reads and writes the config
//! file; [`env`] names the environment variables.

pub(crate) mod env;
pub(crate) mod file;
mod load;
pub use load::{dashboard_password_from_env, default_config_path, setup_target};
pub(crate) mod settings;
mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::sink::limits::{bot_id, looks_like_bot_token};
pub use settings::{Effective, Fallback, SETTINGS, Setting, Source};
pub use values::{BucketConfig, ChatRef, Destination, FilterConfig, Secret, redact};

/// S3 connection settings.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// The S3 server's URL (`s3.endpoint`).
    pub endpoint: String,
    /// The region requests are signed for (`s3.region`).
    pub region: String,
    /// The access key (`s3.access_key`).
    pub access_key: String,
    /// The secret key (`s3.secret_key`).
    pub secret_key: Secret,
}

/// Telegram settings.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    /// Every bot's token, each once; the first sends alerts and the heartbeat.
    pub bots: Vec<Secret>,
    /// Where backups of buckets without a destination of their own go.
    pub backup: Destination,
    /// Where alerts and heartbeats go.
    pub admin: Option<Destination>,
    /// The Bot API server's base URL: Telegram's cloud, or a self-hosted one (`telegram.api_url`).
    pub api_url: String,
    /// Messages a minute each bot sends to each chat; 0 turns the pacing off (`telegram.messages_per_minute`).
    pub messages_per_minute: u32,
    /// The longest 429 `retry_after` a run waits out.
    pub max_flood_wait: Duration,
}

/// All settings, resolved from defaults, the config file, the environment and flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file that was read, if any.
    pub(crate) file: Option<PathBuf>,
    pub(crate) s3_endpoint: Option<String>,
    pub(crate) s3_region: String,
    pub(crate) s3_access_key: Option<String>,
    pub(crate) s3_secret_key: Option<Secret>,
    pub(crate) bot_token: Option<Secret>,
    /// More bots (`telegram.bot_tokens`), after `bot_token`.
    pub(crate) more_bot_tokens: Vec<Secret>,
    pub(crate) backup_chat: Option<ChatRef>,
    pub(crate) backup_topic: Option<i64>,
    pub(crate) admin_chat: Option<ChatRef>,
    pub(crate) admin_topic: Option<i64>,
    pub(crate) api_url: String,
    pub(crate) messages_per_minute: u32,
    pub(crate) max_flood_wait: Duration,
    /// The token bucket notifications to `serve-webhook` must carry (`webhook.secret_token`); `None` when unset.
    pub webhook_token: Option<Secret>,
    /// Objects larger than this many bytes are split into parts of this size (`part_size`).
    pub part_size: u64,
    pub(crate) database_path: Option<PathBuf>,
    pub(crate) tmp_dir: Option<PathBuf>,
    pub(crate) enable_new_buckets: bool,
    pub(crate) filter: FilterConfig,
    /// The `[buckets.NAME]` sections.
    pub(crate) buckets: BTreeMap<String, BucketConfig>,
    pub(crate) max_attempts: u32,
    pub(crate) alert_interval: Duration,
    /// Deliveries `sync` and `retry` run at once.
    pub(crate) concurrency: usize,
    /// Where `serve-webhook` listens.
    pub webhook_listen: SocketAddr,
    /// Deliveries `serve-webhook` runs at once.
    pub(crate) webhook_concurrency: usize,
    /// How long `serve-webhook` gathers events before a batch (`webhook.pack_window`).
    pub(crate) webhook_pack_window: Duration,
    /// Objects smaller than this travel in packs (`pack.max_object_size`; 0: never).
    pub(crate) pack_max_object_size: u64,
    /// The most objects in one pack (`pack.max_members`).
    pub(crate) pack_max_members: usize,
    /// Where `dashboard` listens.
    pub(crate) dashboard_listen: SocketAddr,
    /// The dashboard's address as browsers see it (behind a reverse proxy).
    pub(crate) dashboard_public_url: Option<String>,
    /// Encrypt every object to these age recipients before splitting it (off without).
    pub(crate) encryption: Option<crate::crypt::Encryption>,
    /// `heartbeat` also sends a snapshot of the ledger to the admin chat.
    pub(crate) heartbeat_ledger_backup: bool,
    /// `serve-webhook` and `dashboard` answer `GET /metrics`.
    pub(crate) metrics_enabled: bool,
    /// The bearer token `/metrics` requires, when set.
    pub(crate) metrics_token: Option<Secret>,
    /// Every setting's effective value and where it came from.
    effective: Vec<Effective>,
}

/// What the command line says about settings: the config file, and values given as
/// flags (keyed by setting), which override the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config`: the config file to read; `None` to look for it through TGPLOY_CONFIG and the default places.
    pub config: Option<PathBuf>,
    /// Values given as flags, as `(setting key, value)` pairs; the last one for a key wins.
    pub flags: Vec<(&'static str, String)>,
}

impl Overrides {
    /// Adds a flag's value for the setting `key` (nothing when the flag was not given).
    pub fn flag(mut self, key: &'static str, value: Option<impl ToString>) -> Self {
        if let Some(value) = value {
            self.flags.push((key, value.to_string()));
        }
        self
    }
}

impl Config {
    /// Every setting's effective value (secrets only as "set") and where it came from,
    /// in the order of the settings table.
    pub(crate) fn effective(&self) -> &[Effective] {
        &self.effective
    }

    fn missing(&self, what: &str, key: &str) -> Error {
        let env = settings::find(key).map(|s| s.env).unwrap_or("its environment variable");
        let file = self
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the config file (--config)".to_string());
        Error::config(format!("missing {what}: set `{key}` in {file} or {env}"))
    }

    /// The S3 settings, or an error naming the first one missing.
    pub fn require_s3(&self) -> Result<S3Settings> {
        let endpoint = self.s3_endpoint.clone().ok_or_else(|| self.missing("S3 endpoint", "s3.endpoint"))?;
        let access_key = self.s3_access_key.clone().ok_or_else(|| self.missing("S3 access key", "s3.access_key"))?;
        let secret_key = self.s3_secret_key.clone().ok_or_else(|| self.missing("S3 secret key", "s3.secret_key"))?;
        Ok(S3Settings { endpoint, region: self.s3_region.clone(), access_key, secret_key })
    }

    /// The Telegram settings, or an error naming the first one missing.
    pub fn require_telegram(&self) -> Result<TelegramSettings> {
        let bots = self.require_bot_tokens()?;
        let backup = self.backup_destination()?;
        Ok(TelegramSettings {
            bots,
            backup,
            admin: self.admin_chat.clone().map(|chat| Destination { chat, topic: self.admin_topic }),
            api_url: self.api_url.clone(),
            messages_per_minute: self.messages_per_minute,
            max_flood_wait: self.max_flood_wait,
        })
    }

    /// The Telegram settings with the admin chat, which `purpose` (the heartbeat, the
    /// ledger snapshot) goes to.
    pub(crate) fn require_admin_chat(&self, purpose: &str) -> Result<TelegramSettings> {
        let settings = self.require_telegram()?;
        if settings.admin.is_none() {
            return Err(Error::config(format!(
                "missing Telegram admin chat for {purpose}: set `telegram.admin_chat_id` in the config file or {}",
                env::ADMIN_CHAT_ID
            )));
        }
        Ok(settings)
    }

    /// The default destination of backups.
    pub fn backup_destination(&self) -> Result<Destination> {
        let chat =
            self.backup_chat.clone().ok_or_else(|| self.missing("Telegram backup chat", "telegram.backup_chat_id"))?;
        Ok(Destination { chat, topic: self.backup_topic })
    }

    /// Where new versions of `bucket` go: its own chat and topic (`[buckets.NAME]`), or
    /// the default backup chat (with the bucket's topic, or the default topic).
    pub(crate) fn destination_for(&self, bucket: &str) -> Result<Destination> {
        let own = self.buckets.get(bucket);
        match own.and_then(|b| b.chat.clone()) {
            Some(chat) => Ok(Destination { chat, topic: own.and_then(|b| b.topic) }),
            None => {
                let default = self.backup_destination()?;
                Ok(Destination { topic: own.and_then(|b| b.topic).or(default.topic), ..default })
            }
        }
    }

    /// Every bot's token (`bot_token`, then `bot_tokens`), each once and well-formed; the
    /// first is the bot a restore falls back on for parts recorded without one.
    pub fn require_bot_tokens(&self) -> Result<Vec<Secret>> {
        let mut tokens: Vec<Secret> = Vec::new();
        for token in self.bot_token.iter().chain(&self.more_bot_tokens) {
            if !looks_like_bot_token(token.expose()) {
                return Err(Error::config(format!(
                    "a Telegram bot token is malformed: expected `<digits>:<secret>` as given by @BotFather \
                     (check `telegram.bot_token` and `telegram.bot_tokens`, or {} and {})",
                    env::BOT_TOKEN,
                    env::BOT_TOKENS
                )));
            }
            match tokens.iter().find(|t| bot_id(t.expose()) == bot_id(token.expose())) {
                Some(t) if t == token => {}
                Some(_) => {
                    return Err(Error::config(format!(
                        "two different tokens of bot {} are configured; keep its current one",
                        bot_id(token.expose()).unwrap_or_default()
                    )));
                }
                None => tokens.push(token.clone()),
            }
        }
        if tokens.is_empty() {
            return Err(self.missing("Telegram bot token", "telegram.bot_token"));
        }
        Ok(tokens)
    }

    /// Every secret the settings hold, for scrubbing logs.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> =
            self.bot_token.iter().chain(&self.more_bot_tokens).map(|t| t.expose().to_string()).collect();
        secrets.extend(
            self.s3_secret_key
                .iter()
                .chain(&self.webhook_token)
                .chain(&self.metrics_token)
                .map(|s| s.expose().to_string()),
        );
        secrets
    }

    /// The ledger path: the configured one, or `ledger.sqlite3` in the platform data dir.
    pub fn database_path(&self) -> Result<PathBuf> {
        if let Some(path) = &self.database_path {
            return Ok(path.clone());
        }
        directories::ProjectDirs::from("", "", "tgploy")
            .map(|dirs| dirs.data_dir().join("ledger.sqlite3"))
            .ok_or_else(|| self.missing("ledger path (no home directory to default to)", "database_path"))
    }

    /// The include/exclude and size filter for one bucket: its own section where
    /// present, else the `[sync]` one.
    pub fn filter_for(&self, bucket: &str) -> &FilterConfig {
        self.buckets.get(bucket).and_then(|b| b.filter.as_ref()).unwrap_or(&self.filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::limits::{CLOUD_API_URL, DEFAULT_PART_SIZE};
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)], file: Option<&str>) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let mut overrides = Overrides::default();
        if let Some(text) = file {
            let path = dir.path().join("config.toml");
            std::fs::write(&path, text).unwrap();
            overrides.config = Some(path);
        }
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load_with(&overrides, &|name| vars.get(name).cloned())
    }

    #[test]
    fn environment_alone_is_enough() {
        let cfg = load(
            &[
                ("RUSTFS_ENDPOINT", "http://127.0.0.1:9000"),
                ("RUSTFS_ACCESS_KEY", "ak"),
                ("RUSTFS_SECRET_KEY", "sk"),
                ("TELEGRAM_BOT_TOKEN", "123:abc"),
                ("TELEGRAM_BACKUP_CHAT_ID", "-100123"),
                ("TGPLOY_PART_SIZE", "8MiB"),
                ("DATABASE_PATH", "/tmp/x.db"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(cfg.require_s3().unwrap().endpoint, "http://127.0.0.1:9000");
        assert_eq!(cfg.require_telegram().unwrap().backup.chat, ChatRef::Id(-100123));
        assert_eq!(cfg.part_size, 8 * 1024 * 1024);
        assert_eq!(cfg.database_path().unwrap(), PathBuf::from("/tmp/x.db"));
    }

    #[test]
    fn environment_overrides_file() {
        let cfg = load(
            &[("RUSTFS_REGION", "eu-west-1")],
            Some("part_size = \"4MiB\"\n[s3]\nregion = \"us-east-2\"\nendpoint = \"http://s3:9000\"\n"),
        )
        .unwrap();
        assert_eq!(cfg.s3_region, "eu-west-1");
        assert_eq!(cfg.part_size, 4 * 1024 * 1024);
        assert_eq!(cfg.s3_endpoint.as_deref(), Some("http://s3:9000"));
    }

    #[test]
    fn missing_setting_names_file_key_and_variable() {
        let err = load(&[], None).unwrap().require_s3().unwrap_err().to_string();
        assert!(err.contains("s3.endpoint") && err.contains("RUSTFS_ENDPOINT"), "{err}");
    }

    #[test]
    fn part_size_limits() {
        let err = load(&[("TGPLOY_PART_SIZE", "50MiB")], None).unwrap_err().to_string();
        assert!(err.contains("TGPLOY_PART_SIZE") && err.contains("50 MB"), "{err}");
        let cfg = load(&[("TGPLOY_PART_SIZE", "500MiB"), ("TELEGRAM_API_URL", "http://127.0.0.1:8081")], None).unwrap();
        assert_eq!(cfg.part_size, 500 * 1024 * 1024);
        assert!(load(&[("TGPLOY_PART_SIZE", "lots")], None).is_err());
        assert!(load(&[("TGPLOY_PART_SIZE", "1000")], None).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let err = load(&[], Some("[s3]\nendpiont = \"x\"\n")).unwrap_err().to_string();
        assert!(err.contains("endpiont") && err.contains("line 2") && err.contains("s3.endpoint"), "{err}");
        assert!(load(&[("TELEGRAM_BACKUP_CHAT_ID", "my chat")], None).is_err());
        assert!(load(&[], Some("[sync]\ninclude = [\"a[\"]\n")).is_err());
    }

    #[test]
    fn chats_and_sizes_parse() {
        let cfg = load(
            &[],
            Some(
                "[telegram]\nbackup_chat_id = \"@backups\"\nadmin_chat_id = 42\n\
                 [buckets.db]\nmax_size = \"1GiB\"\nexclude = [\"*.tmp\"]\n",
            ),
        )
        .unwrap();
        assert_eq!(cfg.backup_chat, Some(ChatRef::Username("@backups".into())));
        assert_eq!(cfg.admin_chat, Some(ChatRef::Id(42)));
        assert_eq!(cfg.filter_for("db").max_size, Some(1024 * 1024 * 1024));
        assert_eq!(cfg.filter_for("other").max_size, None);
    }

    #[test]
    fn the_example_config_is_valid() {
        let overrides = Overrides {
            config: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/config.toml").into()),
            ..Overrides::default()
        };
        let cfg = Config::load_with(&overrides, &|_| None).unwrap();
        assert_eq!(cfg.part_size, DEFAULT_PART_SIZE);
        assert_eq!(cfg.require_s3().unwrap().endpoint, "http://127.0.0.1:9000");
        assert_eq!(cfg.require_telegram().unwrap().backup.chat, ChatRef::Id(-1001234567890));
        assert_eq!(cfg.filter.exclude.len(), 2);
    }

    #[test]
    fn encryption_and_the_daily_ledger_backup() {
        let key = age::x25519::Identity::generate().to_public().to_string();
        let cfg =
            load(&[], Some(&format!("[encryption]\nrecipients = [\"{key}\"]\n[heartbeat]\nledger_backup = true\n")))
                .unwrap();
        assert_eq!(cfg.encryption.as_ref().unwrap().recipients(), std::slice::from_ref(&key));
        assert!(cfg.heartbeat_ledger_backup);
        let cfg = load(&[], None).unwrap();
        assert!(cfg.encryption.is_none() && !cfg.heartbeat_ledger_backup, "both are off by default");
        let cfg = load(&[("TGPLOY_ENCRYPTION_RECIPIENTS", &format!("{key}, {key}"))], None).unwrap();
        assert_eq!(cfg.encryption.unwrap().recipients().len(), 2);
        let err = load(&[("TGPLOY_ENCRYPTION_RECIPIENTS", "age1bogus")], None).unwrap_err().to_string();
        assert!(err.contains("age1bogus") && err.contains("TGPLOY_ENCRYPTION_RECIPIENTS"), "{err}");
        assert!(load(&[("TGPLOY_HEARTBEAT_LEDGER_BACKUP", "maybe")], None).is_err());
    }

    #[test]
    fn every_setting_has_its_variable_and_the_flag_wins() {
        let file = "[webhook]\nlisten = \"127.0.0.1:9001\"\nconcurrency = 3\n[sync]\nenable_new_buckets = true\n";
        let cfg = load(
            &[
                ("TGPLOY_WEBHOOK_LISTEN", "127.0.0.1:9002"),
                ("TGPLOY_WEBHOOK_CONCURRENCY", "5"),
                ("TGPLOY_ENABLE_NEW_BUCKETS", "false"),
                ("TGPLOY_DASHBOARD_LISTEN", "0.0.0.0:9999"),
            ],
            Some(file),
        )
        .unwrap();
        assert_eq!(cfg.webhook_listen.to_string(), "127.0.0.1:9002");
        assert_eq!(cfg.webhook_concurrency, 5);
        assert!(!cfg.enable_new_buckets);
        assert_eq!(cfg.dashboard_listen.to_string(), "0.0.0.0:9999");

        let vars: HashMap<String, String> =
            [("TGPLOY_WEBHOOK_LISTEN", "127.0.0.1:9002")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let overrides = Overrides::default().flag("webhook.listen", Some("127.0.0.1:9003"));
        let cfg = Config::load_with(&overrides, &|name| vars.get(name).cloned()).unwrap();
        assert_eq!(cfg.webhook_listen.to_string(), "127.0.0.1:9003");
        let listen = cfg.effective().iter().find(|e| e.key == "webhook.listen").unwrap();
        assert_eq!(listen.source, Some(Source::Flag { name: "--listen" }));
    }

    #[test]
    fn effective_settings_say_where_each_value_came_from_and_hide_secrets() {
        let cfg = load(
            &[("RUSTFS_SECRET_KEY", "s3-secret-value"), ("TGPLOY_PART_SIZE", "8MiB")],
            Some("max_attempts = 3\n[telegram]\nbot_token = \"123:tok-secret\"\n"),
        )
        .unwrap();
        let get = |key: &str| cfg.effective().iter().find(|e| e.key == key).unwrap().clone();
        assert_eq!(get("part_size").value.as_deref(), Some("8MiB"));
        assert_eq!(get("part_size").source, Some(Source::Env { name: "TGPLOY_PART_SIZE" }));
        assert!(matches!(get("max_attempts").source, Some(Source::File { line: 1, .. })));
        assert_eq!(get("alert_interval").source, Some(Source::Default));
        assert_eq!(get("telegram.admin_chat_id").value, None);
        assert!(matches!(get("telegram.bot_token").source, Some(Source::File { line: 3, .. })));
        let shown = format!("{:?}", cfg.effective());
        assert!(!shown.contains("s3-secret-value") && !shown.contains("tok-secret"), "{shown}");
        assert_eq!(get("s3.secret_key").value.as_deref(), Some("set"));
        assert_eq!(cfg.effective().len(), SETTINGS.len(), "every setting is accounted for");
    }

    #[test]
    fn invalid_values_name_where_they_came_from() {
        let err = load(&[], Some("[telegram]\nmessages_per_minute = \"lots\"\n")).unwrap_err().to_string();
        assert!(err.contains("telegram.messages_per_minute") && err.contains("line 2"), "{err}");
        let err = load(&[("TGPLOY_WEBHOOK_LISTEN", "localhost")], None).unwrap_err().to_string();
        assert!(err.contains("TGPLOY_WEBHOOK_LISTEN") && err.contains("IP:PORT"), "{err}");
        let err = load(&[], Some("[s3]\nendpoint = \"x\"\n")).unwrap_err().to_string();
        assert!(err.contains("s3.endpoint") && err.contains("http"), "{err}");
        let err = load(&[], Some("[telgram]\nbot_token = \"1:a\"\n")).unwrap_err().to_string();
        assert!(err.contains("did you mean `telegram.bot_token`"), "{err}");
        let err = load(&[], Some("[buckets.db]\nincldue = [\"a\"]\n")).unwrap_err().to_string();
        assert!(err.contains("incldue") && err.contains("line 2"), "{err}");
        let err =
            load(&[], Some("[sync]\ninclude = \"not a list but fine\"\nmin_size = [\"1\"]\n")).unwrap_err().to_string();
        assert!(err.contains("sync.min_size") && err.contains("single value"), "{err}");
    }

    #[test]
    fn filters_come_from_the_environment_too() {
        let cfg =
            load(&[("TGPLOY_INCLUDE", "**/*.{sql,dump}.gz, daily/**"), ("TGPLOY_MAX_SIZE", "1GiB")], None).unwrap();
        assert_eq!(cfg.filter.include, vec!["**/*.{sql,dump}.gz".to_string(), "daily/**".to_string()]);
        assert_eq!(cfg.filter.max_size, Some(1 << 30));
    }

    #[test]
    fn the_table_defaults_match_the_constants() {
        let cfg = load(&[], None).unwrap();
        assert_eq!(cfg.part_size, DEFAULT_PART_SIZE);
        assert_eq!(cfg.api_url, CLOUD_API_URL);
    }

    /// The README's settings table is generated from the settings table; with
    /// `TGPLOY_BLESS=1` this test writes it.
    #[test]
    fn the_readme_lists_every_setting() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let (start, end) = ("<!-- settings:start -->\n", "<!-- settings:end -->");
        let a = readme.find(start).expect("README has a settings:start marker") + start.len();
        let b = readme.find(end).expect("README has a settings:end marker");
        let table = settings::markdown_table();
        if readme[a..b] != table {
            if std::env::var_os("TGPLOY_BLESS").is_some() {
                std::fs::write(path, format!("{}{table}{}", &readme[..a], &readme[b..])).unwrap();
            } else {
                panic!(
                    "README's settings table is out of date; run `TGPLOY_BLESS=1 cargo test --lib readme`:\n{table}"
                );
            }
        }
    }

    #[test]
    fn the_example_config_shows_every_setting() {
        let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/config.toml")).unwrap();
        for s in SETTINGS {
            let leaf = s.key.rsplit('.').next().unwrap();
            let section = s.key.rsplit_once('.').map(|(section, _)| format!("[{section}]"));
            assert!(
                example.contains(&format!("{leaf} =")) && section.is_none_or(|sect| example.contains(&sect)),
                "examples/config.toml does not show `{}`",
                s.key
            );
            assert!(example.contains(s.env), "examples/config.toml does not name {}", s.env);
        }
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("123:abc")), "***");
    }
}
