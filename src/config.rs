//! Settings: defaults < TOML file < environment < flags, and their validation.
//!
//! Settings are read once, leniently: a command checks only what it needs (`status`
//! needs no bot token), through the `require_*` accessors, whose errors name the setting
//! and every place it can be set.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bytesize::ByteSize;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The default part size: every part stays below the cloud Bot API's 20 MB download
/// limit, so that `restore` can fetch each part through the bot.
pub const DEFAULT_PART_SIZE: u64 = 19 * 1024 * 1024;
/// The largest part the cloud Bot API accepts (uploads of up to 50 MB).
pub const CLOUD_MAX_PART_SIZE: u64 = 49 * 1024 * 1024;
/// The largest part a self-hosted Bot API server accepts (uploads of up to 2000 MB).
pub const LOCAL_MAX_PART_SIZE: u64 = 1950 * 1024 * 1024;
/// The smallest part size; small parts only make sense in tests.
pub const MIN_PART_SIZE: u64 = 4 * 1024;
/// The Bot API of Telegram's cloud.
pub const CLOUD_API_URL: &str = "https://api.telegram.org";
/// Messages per minute sent to one chat: Telegram allows about 20 a minute in groups.
pub const DEFAULT_MESSAGES_PER_MINUTE: u32 = 20;

/// Environment variables, kept stable: operators' unit files depend on them.
pub mod env {
    pub const CONFIG: &str = "TGPLOY_CONFIG";
    pub const S3_ENDPOINT: &str = "RUSTFS_ENDPOINT";
    pub const S3_ACCESS_KEY: &str = "RUSTFS_ACCESS_KEY";
    pub const S3_SECRET_KEY: &str = "RUSTFS_SECRET_KEY";
    pub const S3_SECRET_KEY_FILE: &str = "RUSTFS_SECRET_KEY_FILE";
    pub const S3_REGION: &str = "RUSTFS_REGION";
    pub const BOT_TOKEN: &str = "TELEGRAM_BOT_TOKEN";
    pub const BOT_TOKEN_FILE: &str = "TELEGRAM_BOT_TOKEN_FILE";
    pub const BACKUP_CHAT_ID: &str = "TELEGRAM_BACKUP_CHAT_ID";
    pub const ADMIN_CHAT_ID: &str = "TELEGRAM_ADMIN_CHAT_ID";
    pub const API_URL: &str = "TELEGRAM_API_URL";
    pub const WEBHOOK_SECRET_TOKEN: &str = "WEBHOOK_SECRET_TOKEN";
    pub const DATABASE_PATH: &str = "DATABASE_PATH";
    pub const PART_SIZE: &str = "TGPLOY_PART_SIZE";
    pub const LOG: &str = "TGPLOY_LOG";
    pub const MESSAGES_PER_MINUTE: &str = "TGPLOY_MESSAGES_PER_MINUTE";
    pub const TMP_DIR: &str = "TGPLOY_TMP_DIR";
    pub const MAX_ATTEMPTS: &str = "TGPLOY_MAX_ATTEMPTS";
    pub const ALERT_INTERVAL: &str = "TGPLOY_ALERT_INTERVAL";
    pub const ENCRYPTION_RECIPIENTS: &str = "TGPLOY_ENCRYPTION_RECIPIENTS";
    pub const HEARTBEAT_LEDGER_BACKUP: &str = "TGPLOY_HEARTBEAT_LEDGER_BACKUP";
}

/// Attempts before a delivery is declared dead and the admin chat is told.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// The same alert is sent at most once per this interval.
pub const DEFAULT_ALERT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// A secret value: never printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A Telegram chat: a numeric id (`-100…` for channels and supergroups) or `@username`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatRef {
    Id(i64),
    Username(String),
}

impl FromStr for ChatRef {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if let Ok(id) = s.parse::<i64>() {
            return Ok(ChatRef::Id(id));
        }
        if let Some(name) = s.strip_prefix('@')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Ok(ChatRef::Username(s.to_string()));
        }
        Err(format!("`{s}` is neither a numeric chat id (like -1001234567890) nor a @channelname"))
    }
}

impl fmt::Display for ChatRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatRef::Id(id) => write!(f, "{id}"),
            ChatRef::Username(name) => f.write_str(name),
        }
    }
}

/// Which objects of a bucket are delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Globs over the object key; when set, only matching keys are delivered.
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs over the object key; matching keys are never delivered.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Objects smaller than this are not delivered.
    #[serde(default, deserialize_with = "de_opt_size")]
    pub min_size: Option<u64>,
    /// Objects larger than this are not delivered.
    #[serde(default, deserialize_with = "de_opt_size")]
    pub max_size: Option<u64>,
}

/// The settings as the TOML file spells them; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    s3: FileS3,
    #[serde(default)]
    telegram: FileTelegram,
    #[serde(default)]
    webhook: FileWebhook,
    #[serde(default, deserialize_with = "de_opt_size")]
    part_size: Option<u64>,
    database_path: Option<PathBuf>,
    tmp_dir: Option<PathBuf>,
    #[serde(default)]
    sync: FileSync,
    #[serde(default)]
    buckets: BTreeMap<String, FilterConfig>,
    max_attempts: Option<u32>,
    alert_interval: Option<String>,
    #[serde(default)]
    encryption: FileEncryption,
    #[serde(default)]
    heartbeat: FileHeartbeat,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEncryption {
    #[serde(default)]
    recipients: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHeartbeat {
    ledger_backup: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileS3 {
    endpoint: Option<String>,
    region: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
    secret_key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTelegram {
    bot_token: Option<String>,
    bot_token_file: Option<PathBuf>,
    backup_chat_id: Option<TomlChat>,
    admin_chat_id: Option<TomlChat>,
    api_url: Option<String>,
    messages_per_minute: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWebhook {
    secret_token: Option<String>,
    secret_token_file: Option<PathBuf>,
    listen: Option<String>,
    concurrency: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSync {
    enable_new_buckets: Option<bool>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default, deserialize_with = "de_opt_size")]
    min_size: Option<u64>,
    #[serde(default, deserialize_with = "de_opt_size")]
    max_size: Option<u64>,
}

/// A chat id may be written as a TOML integer or string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TomlChat {
    Int(i64),
    Str(String),
}

fn de_opt_size<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Int(u64),
        Str(String),
    }
    match Option::<Size>::deserialize(d)? {
        None => Ok(None),
        Some(Size::Int(n)) => Ok(Some(n)),
        Some(Size::Str(s)) => parse_size(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Parses a byte count: `20000000`, `19MiB`, `19 MiB`, `1.5GiB`, `64KB`.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    ByteSize::from_str(s.trim())
        .map(|b| b.as_u64())
        .map_err(|_| format!("`{s}` is not a size (write bytes, or a number with a unit like 19MiB)"))
}

/// Formats a byte count for people: `19.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    ByteSize(bytes).display().iec().to_string()
}

/// Where a setting can be given, for error messages.
struct Origin {
    file_key: &'static str,
    env: &'static str,
}

/// S3 connection settings.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: Secret,
}

/// Telegram settings.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    pub bot_token: Secret,
    pub backup_chat: ChatRef,
    pub admin_chat: Option<ChatRef>,
    pub api_url: String,
    pub messages_per_minute: u32,
}

/// All settings, resolved from defaults, the config file, the environment and flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_access_key: Option<String>,
    pub s3_secret_key: Option<Secret>,
    pub bot_token: Option<Secret>,
    pub backup_chat: Option<ChatRef>,
    pub admin_chat: Option<ChatRef>,
    pub api_url: String,
    pub messages_per_minute: u32,
    pub webhook_token: Option<Secret>,
    pub part_size: u64,
    pub database_path: Option<PathBuf>,
    pub tmp_dir: Option<PathBuf>,
    pub enable_new_buckets: bool,
    pub filter: FilterConfig,
    pub bucket_filters: BTreeMap<String, FilterConfig>,
    pub max_attempts: u32,
    pub alert_interval: std::time::Duration,
    /// `serve-webhook`'s address, unless `--listen` is given.
    pub webhook_listen: Option<String>,
    /// Deliveries `serve-webhook` runs at once.
    pub webhook_concurrency: usize,
    /// Encrypt every object to these age recipients before splitting it (off without).
    pub encryption: Option<crate::crypt::Encryption>,
    /// `heartbeat` also sends a snapshot of the ledger to the admin chat.
    pub heartbeat_ledger_backup: bool,
}

/// Settings given as flags; they override the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub database: Option<PathBuf>,
}

impl Config {
    /// Loads settings from the process environment.
    pub fn load(overrides: &Overrides) -> Result<Config> {
        Config::load_with(overrides, &|name| std::env::var(name).ok())
    }

    /// Loads settings, reading environment variables through `env` (for tests).
    pub fn load_with(overrides: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let file = match overrides.config.clone().or_else(|| env(env::CONFIG).map(PathBuf::from)) {
            Some(path) => {
                if !path.exists() {
                    return Err(Error::config(format!(
                        "config file {} does not exist (given by --config or {}); create it or point to another one",
                        path.display(),
                        env::CONFIG
                    )));
                }
                Some(path)
            }
            None => default_config_paths().into_iter().find(|p| p.is_file()),
        };
        let parsed = match &file {
            Some(path) => read_config_file(path)?,
            None => FileConfig::default(),
        };
        let file_label =
            file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "the config file".to_string());
        let invalid = |origin: &Origin, value: &str, why: String| {
            Error::config(format!(
                "invalid {} `{}`: {why} (set `{}` in {file_label} or {})",
                origin.file_key, value, origin.file_key, origin.env
            ))
        };

        let s3_secret_key = match env(env::S3_SECRET_KEY) {
            Some(v) => Some(Secret::new(v)),
            None => match env(env::S3_SECRET_KEY_FILE).map(PathBuf::from).or(parsed.s3.secret_key_file) {
                Some(path) => Some(read_secret_file(&path, "s3.secret_key_file")?),
                None => parsed.s3.secret_key.map(Secret::new),
            },
        };
        let bot_token = match env(env::BOT_TOKEN) {
            Some(v) => Some(Secret::new(v.trim())),
            None => match env(env::BOT_TOKEN_FILE).map(PathBuf::from).or(parsed.telegram.bot_token_file) {
                Some(path) => Some(read_secret_file(&path, "telegram.bot_token_file")?),
                None => parsed.telegram.bot_token.map(Secret::new),
            },
        };
        let webhook_token = match env(env::WEBHOOK_SECRET_TOKEN) {
            Some(v) => Some(Secret::new(v)),
            None => match parsed.webhook.secret_token_file.clone() {
                Some(path) => Some(read_secret_file(&path, "webhook.secret_token_file")?),
                None => parsed.webhook.secret_token.clone().map(Secret::new),
            },
        };

        let chat = |origin: Origin, from_file: Option<TomlChat>| -> Result<Option<ChatRef>> {
            let raw = match env(origin.env) {
                Some(v) => Some(v),
                None => from_file.map(|c| match c {
                    TomlChat::Int(i) => i.to_string(),
                    TomlChat::Str(s) => s,
                }),
            };
            raw.map(|v| v.parse::<ChatRef>().map_err(|why| invalid(&origin, &v, why))).transpose()
        };
        let backup_chat = chat(
            Origin { file_key: "telegram.backup_chat_id", env: env::BACKUP_CHAT_ID },
            parsed.telegram.backup_chat_id,
        )?;
        let admin_chat = chat(
            Origin { file_key: "telegram.admin_chat_id", env: env::ADMIN_CHAT_ID },
            parsed.telegram.admin_chat_id,
        )?;

        let api_url = env(env::API_URL).or(parsed.telegram.api_url).unwrap_or_else(|| CLOUD_API_URL.to_string());
        let api_origin = Origin { file_key: "telegram.api_url", env: env::API_URL };
        match reqwest::Url::parse(&api_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => {
                return Err(invalid(
                    &api_origin,
                    &api_url,
                    "expected an http(s) URL like https://api.telegram.org".into(),
                ));
            }
        }

        let mpm_origin = Origin { file_key: "telegram.messages_per_minute", env: env::MESSAGES_PER_MINUTE };
        let messages_per_minute = match env(env::MESSAGES_PER_MINUTE) {
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| invalid(&mpm_origin, &v, "expected a whole number (0 turns throttling off)".into()))?,
            None => parsed.telegram.messages_per_minute.unwrap_or(DEFAULT_MESSAGES_PER_MINUTE),
        };

        let part_origin = Origin { file_key: "part_size", env: env::PART_SIZE };
        let part_size = match env(env::PART_SIZE) {
            Some(v) => parse_size(&v).map_err(|why| invalid(&part_origin, &v, why))?,
            None => parsed.part_size.unwrap_or(DEFAULT_PART_SIZE),
        };
        let is_cloud = is_cloud_api(&api_url);
        let max = if is_cloud { CLOUD_MAX_PART_SIZE } else { LOCAL_MAX_PART_SIZE };
        if part_size < MIN_PART_SIZE || part_size > max || part_size % 1024 != 0 {
            let why = if part_size > max && is_cloud {
                format!(
                    "the cloud Bot API takes uploads of at most 50 MB, so parts may be at most {}; \
                     a self-hosted Bot API server (telegram.api_url) takes up to {}",
                    human_size(CLOUD_MAX_PART_SIZE),
                    human_size(LOCAL_MAX_PART_SIZE)
                )
            } else {
                format!("must be a whole number of KiB between {} and {}", human_size(MIN_PART_SIZE), human_size(max))
            };
            return Err(invalid(&part_origin, &human_size(part_size), why));
        }

        let region = env(env::S3_REGION).or(parsed.s3.region).unwrap_or_else(|| "us-east-1".to_string());
        let s3_endpoint = env(env::S3_ENDPOINT).or(parsed.s3.endpoint);
        if let Some(endpoint) = &s3_endpoint {
            let origin = Origin { file_key: "s3.endpoint", env: env::S3_ENDPOINT };
            match reqwest::Url::parse(endpoint) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => {
                    return Err(invalid(
                        &origin,
                        endpoint,
                        "expected an http(s) URL like http://127.0.0.1:9000".into(),
                    ));
                }
            }
        }

        let attempts_origin = Origin { file_key: "max_attempts", env: env::MAX_ATTEMPTS };
        let max_attempts = match env(env::MAX_ATTEMPTS) {
            Some(v) => {
                v.trim().parse::<u32>().map_err(|_| invalid(&attempts_origin, &v, "expected a whole number".into()))?
            }
            None => parsed.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
        };
        if max_attempts == 0 {
            return Err(invalid(&attempts_origin, "0", "at least one attempt is needed".into()));
        }
        let interval_origin = Origin { file_key: "alert_interval", env: env::ALERT_INTERVAL };
        let alert_interval = match env(env::ALERT_INTERVAL).or(parsed.alert_interval) {
            Some(v) => humantime::parse_duration(v.trim())
                .map_err(|e| invalid(&interval_origin, &v, format!("{e} (write a duration like 1h or 30m)")))?,
            None => DEFAULT_ALERT_INTERVAL,
        };

        let recipients: Vec<String> = match env(env::ENCRYPTION_RECIPIENTS) {
            Some(v) => v.split([',', ' ', '\n']).map(str::trim).filter(|r| !r.is_empty()).map(String::from).collect(),
            None => parsed.encryption.recipients,
        };
        let encryption = if recipients.is_empty() {
            None
        } else {
            let origin = Origin { file_key: "encryption.recipients", env: env::ENCRYPTION_RECIPIENTS };
            Some(
                crate::crypt::Encryption::new(&recipients)
                    .map_err(|why| invalid(&origin, &recipients.join(","), why))?,
            )
        };
        let backup_origin = Origin { file_key: "heartbeat.ledger_backup", env: env::HEARTBEAT_LEDGER_BACKUP };
        let heartbeat_ledger_backup = match env(env::HEARTBEAT_LEDGER_BACKUP) {
            Some(v) => parse_bool(&v).ok_or_else(|| invalid(&backup_origin, &v, "expected true or false".into()))?,
            None => parsed.heartbeat.ledger_backup.unwrap_or(false),
        };

        let filter = FilterConfig {
            include: parsed.sync.include,
            exclude: parsed.sync.exclude,
            min_size: parsed.sync.min_size,
            max_size: parsed.sync.max_size,
        };
        validate_filter(&filter, "sync")?;
        for (bucket, f) in &parsed.buckets {
            validate_filter(f, &format!("buckets.{bucket}"))?;
        }

        Ok(Config {
            file,
            s3_endpoint,
            s3_region: region,
            s3_access_key: env(env::S3_ACCESS_KEY).or(parsed.s3.access_key),
            s3_secret_key,
            bot_token,
            backup_chat,
            admin_chat,
            api_url,
            messages_per_minute,
            webhook_token,
            part_size,
            database_path: overrides
                .database
                .clone()
                .or_else(|| env(env::DATABASE_PATH).map(PathBuf::from))
                .or(parsed.database_path),
            tmp_dir: env(env::TMP_DIR).map(PathBuf::from).or(parsed.tmp_dir),
            enable_new_buckets: parsed.sync.enable_new_buckets.unwrap_or(true),
            filter,
            bucket_filters: parsed.buckets,
            max_attempts,
            alert_interval,
            webhook_listen: parsed.webhook.listen,
            webhook_concurrency: parsed.webhook.concurrency.unwrap_or(2).max(1),
            encryption,
            heartbeat_ledger_backup,
        })
    }

    fn missing(&self, what: &str, file_key: &str, env: &str) -> Error {
        let file = self
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the config file (--config)".to_string());
        Error::config(format!("missing {what}: set `{file_key}` in {file} or {env}"))
    }

    /// The S3 settings, or an error naming the first one missing.
    pub fn require_s3(&self) -> Result<S3Settings> {
        let endpoint =
            self.s3_endpoint.clone().ok_or_else(|| self.missing("S3 endpoint", "s3.endpoint", env::S3_ENDPOINT))?;
        let access_key = self
            .s3_access_key
            .clone()
            .ok_or_else(|| self.missing("S3 access key", "s3.access_key", env::S3_ACCESS_KEY))?;
        let secret_key = self
            .s3_secret_key
            .clone()
            .ok_or_else(|| self.missing("S3 secret key", "s3.secret_key", env::S3_SECRET_KEY))?;
        Ok(S3Settings { endpoint, region: self.s3_region.clone(), access_key, secret_key })
    }

    /// The Telegram settings, or an error naming the first one missing.
    pub fn require_telegram(&self) -> Result<TelegramSettings> {
        let bot_token = self.require_bot_token()?;
        let backup_chat = self
            .backup_chat
            .clone()
            .ok_or_else(|| self.missing("Telegram backup chat", "telegram.backup_chat_id", env::BACKUP_CHAT_ID))?;
        Ok(TelegramSettings {
            bot_token,
            backup_chat,
            admin_chat: self.admin_chat.clone(),
            api_url: self.api_url.clone(),
            messages_per_minute: self.messages_per_minute,
        })
    }

    /// The bot token alone: all a restore from a manifest needs.
    pub fn require_bot_token(&self) -> Result<Secret> {
        let token = self
            .bot_token
            .clone()
            .ok_or_else(|| self.missing("Telegram bot token", "telegram.bot_token", env::BOT_TOKEN))?;
        if !looks_like_bot_token(token.expose()) {
            return Err(Error::config(format!(
                "the Telegram bot token is malformed: expected `<digits>:<secret>` as given by @BotFather \
                 (set `telegram.bot_token` in the config file or {})",
                env::BOT_TOKEN
            )));
        }
        Ok(token)
    }

    /// The ledger path: the configured one, or `ledger.sqlite3` in the platform data dir.
    pub fn database_path(&self) -> Result<PathBuf> {
        if let Some(path) = &self.database_path {
            return Ok(path.clone());
        }
        directories::ProjectDirs::from("", "", "tgploy").map(|dirs| dirs.data_dir().join("ledger.sqlite3")).ok_or_else(
            || self.missing("ledger path (no home directory to default to)", "database_path", env::DATABASE_PATH),
        )
    }

    /// The include/exclude and size filter for one bucket: its own section where
    /// present, else the `[sync]` one.
    pub fn filter_for(&self, bucket: &str) -> &FilterConfig {
        self.bucket_filters.get(bucket).unwrap_or(&self.filter)
    }
}

/// Whether `api_url` is Telegram's cloud Bot API (with its 50 MB upload limit).
pub fn is_cloud_api(api_url: &str) -> bool {
    reqwest::Url::parse(api_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.eq_ignore_ascii_case("api.telegram.org")))
        .unwrap_or(false)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn looks_like_bot_token(token: &str) -> bool {
    match token.split_once(':') {
        Some((id, secret)) => {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && !secret.is_empty()
                && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        None => false,
    }
}

fn default_config_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(dirs) = directories::ProjectDirs::from("", "", "tgploy") {
        paths.push(dirs.config_dir().join("config.toml"));
    }
    paths.push(PathBuf::from("/etc/tgploy/config.toml"));
    paths
}

fn read_config_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read config file {}: {e}", path.display())))?;
    warn_if_readable_by_others(path);
    toml::from_str(&text).map_err(|e| {
        // toml's message spans several lines with a source excerpt: keep the first
        // line and the location so the error stays on one line.
        let msg = e.message().trim().to_string();
        let location = e
            .span()
            .map(|span| {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                format!(" (line {line})")
            })
            .unwrap_or_default();
        Error::config(format!("invalid config file {}{location}: {msg}", path.display()))
    })
}

fn read_secret_file(path: &Path, key: &str) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read {key} {}: {e}", path.display())))?;
    Ok(Secret::new(text.trim()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "config file {} is readable by other users; it holds secrets: run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

fn validate_filter(filter: &FilterConfig, section: &str) -> Result<()> {
    for glob in filter.include.iter().chain(&filter.exclude) {
        globset::Glob::new(glob)
            .map_err(|e| Error::config(format!("invalid glob `{glob}` in [{section}] of the config file: {e}")))?;
    }
    if let (Some(min), Some(max)) = (filter.min_size, filter.max_size)
        && min > max
    {
        return Err(Error::config(format!(
            "[{section}] min_size ({}) is larger than max_size ({}) in the config file",
            human_size(min),
            human_size(max)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(cfg.require_telegram().unwrap().backup_chat, ChatRef::Id(-100123));
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
        assert!(err.contains("endpiont") && err.contains("line 2"), "{err}");
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
        assert_eq!(cfg.require_telegram().unwrap().backup_chat, ChatRef::Id(-1001234567890));
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
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("123:abc")), "***");
    }
}
