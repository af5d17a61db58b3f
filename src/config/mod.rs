//! Settings: defaults < TOML file < environment < flags, and their validation.
//!
//! Settings are read once, leniently: a command checks only what it needs (`status`
//! needs no bot token), through the `require_*` accessors, whose errors name the setting
//! and every place it can be set.

pub mod settings;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use bytesize::ByteSize;

use crate::error::{Error, Result};
pub use settings::{Effective, Fallback, SETTINGS, Setting, Source};

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
    pub const MAX_FLOOD_WAIT: &str = "TGPLOY_MAX_FLOOD_WAIT";
    pub const WEBHOOK_SECRET_TOKEN_FILE: &str = "WEBHOOK_SECRET_TOKEN_FILE";
    pub const WEBHOOK_LISTEN: &str = "TGPLOY_WEBHOOK_LISTEN";
    pub const WEBHOOK_CONCURRENCY: &str = "TGPLOY_WEBHOOK_CONCURRENCY";
    pub const DASHBOARD_LISTEN: &str = "TGPLOY_DASHBOARD_LISTEN";
    pub const DASHBOARD_PUBLIC_URL: &str = "TGPLOY_DASHBOARD_PUBLIC_URL";
    /// For `setup dashboard --non-interactive` only: the password itself is not a setting.
    pub const DASHBOARD_PASSWORD: &str = "TGPLOY_DASHBOARD_PASSWORD";
    pub const DASHBOARD_PASSWORD_FILE: &str = "TGPLOY_DASHBOARD_PASSWORD_FILE";
    pub const ENABLE_NEW_BUCKETS: &str = "TGPLOY_ENABLE_NEW_BUCKETS";
    pub const INCLUDE: &str = "TGPLOY_INCLUDE";
    pub const EXCLUDE: &str = "TGPLOY_EXCLUDE";
    pub const MIN_SIZE: &str = "TGPLOY_MIN_SIZE";
    pub const MAX_SIZE: &str = "TGPLOY_MAX_SIZE";
    pub const CONCURRENCY: &str = "TGPLOY_CONCURRENCY";
}

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterConfig {
    /// Globs over the object key; when set, only matching keys are delivered.
    pub include: Vec<String>,
    /// Globs over the object key; matching keys are never delivered.
    pub exclude: Vec<String>,
    /// Objects smaller than this are not delivered.
    pub min_size: Option<u64>,
    /// Objects larger than this are not delivered.
    pub max_size: Option<u64>,
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
    /// The longest 429 `retry_after` a run waits out.
    pub max_flood_wait: Duration,
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
    pub max_flood_wait: Duration,
    pub webhook_token: Option<Secret>,
    pub part_size: u64,
    pub database_path: Option<PathBuf>,
    pub tmp_dir: Option<PathBuf>,
    pub enable_new_buckets: bool,
    pub filter: FilterConfig,
    pub bucket_filters: BTreeMap<String, FilterConfig>,
    pub max_attempts: u32,
    pub alert_interval: Duration,
    /// Deliveries `sync` and `retry` run at once.
    pub concurrency: usize,
    /// Where `serve-webhook` listens.
    pub webhook_listen: SocketAddr,
    /// Deliveries `serve-webhook` runs at once.
    pub webhook_concurrency: usize,
    /// Where `dashboard` listens.
    pub dashboard_listen: SocketAddr,
    /// The dashboard's address as browsers see it (behind a reverse proxy).
    pub dashboard_public_url: Option<String>,
    /// Encrypt every object to these age recipients before splitting it (off without).
    pub encryption: Option<crate::crypt::Encryption>,
    /// `heartbeat` also sends a snapshot of the ledger to the admin chat.
    pub heartbeat_ledger_backup: bool,
    /// Every setting's effective value and where it came from.
    effective: Vec<Effective>,
}

/// What the command line says about settings: the config file, and values given as
/// flags (keyed by setting), which override the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
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

/// A value as given: one text, or a list (a TOML array; a comma-separated variable).
/// Not `Debug`: it may hold a secret.
#[derive(Clone)]
enum Given {
    Text(String),
    List(Vec<String>),
}

impl Given {
    fn text(&self) -> std::result::Result<&str, String> {
        match self {
            Given::Text(t) => Ok(t),
            Given::List(_) => Err("expected a single value, not a list".into()),
        }
    }

    /// A list; a text is split at commas outside `{…}` (globs use braces for choices).
    fn list(&self) -> Vec<String> {
        match self {
            Given::List(items) => items.clone(),
            Given::Text(t) => {
                let mut items = Vec::new();
                let (mut depth, mut item) = (0usize, String::new());
                for c in t.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth = depth.saturating_sub(1),
                        ',' | '\n' if depth == 0 => {
                            items.push(std::mem::take(&mut item));
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                items.push(item);
                items.into_iter().map(|i| i.trim().to_string()).filter(|i| !i.is_empty()).collect()
            }
        }
    }

    fn shown(&self, secret: bool) -> String {
        match self {
            _ if secret => "***".into(),
            Given::Text(t) => t.clone(),
            Given::List(items) => items.join(", "),
        }
    }
}

/// The config file's values, by dotted key, with the line each is on.
#[derive(Default)]
struct FileValues {
    path: Option<PathBuf>,
    values: BTreeMap<String, (Given, usize)>,
    buckets: BTreeMap<String, FilterConfig>,
}

/// Resolves settings through the table: flag, environment, file, default.
struct Resolver<'a> {
    file: FileValues,
    env: &'a dyn Fn(&str) -> Option<String>,
    flags: &'a [(&'static str, String)],
    effective: Vec<Effective>,
}

impl Resolver<'_> {
    fn raw(&self, s: &Setting) -> Result<Option<(Given, Source)>> {
        if let Some((_, v)) = self.flags.iter().rev().find(|(k, _)| *k == s.key) {
            return Ok(Some((Given::Text(v.clone()), Source::Flag { name: s.flag.unwrap_or("a flag") })));
        }
        if let Some(v) = (self.env)(s.env) {
            return Ok(Some((Given::Text(v), Source::Env { name: s.env })));
        }
        if let Some(file_env) = s.file_env
            && let Some(path) = (self.env)(file_env)
        {
            let value = read_secret_file(Path::new(&path), file_env)?;
            return Ok(Some((Given::Text(value.expose().to_string()), Source::Env { name: file_env })));
        }
        let file_path = || self.file.path.clone().unwrap_or_default();
        if s.secret
            && let Some((given, line)) = self.file.values.get(&format!("{}_file", s.key))
        {
            let key = format!("{}_file", s.key);
            let value = read_secret_file(Path::new(given.text().map_err(Error::config)?), &key)?;
            return Ok(Some((
                Given::Text(value.expose().to_string()),
                Source::File { path: file_path(), line: *line },
            )));
        }
        Ok(self
            .file
            .values
            .get(s.key)
            .map(|(given, line)| (given.clone(), Source::File { path: file_path(), line: *line })))
    }

    /// The value of the setting `key` (its default when nothing sets it), parsed; the
    /// error names the value and where it came from.
    fn get<T>(
        &mut self,
        key: &'static str,
        parse: impl Fn(&Given) -> std::result::Result<T, String>,
    ) -> Result<Option<T>> {
        let s = settings::find(key)
            .ok_or_else(|| Error::Other(anyhow::anyhow!("internal: `{key}` is not in the settings table")))?;
        let raw = match self.raw(s)? {
            Some(raw) => Some(raw),
            None => match s.fallback {
                Fallback::Value(v) => Some((Given::Text(v.to_string()), Source::Default)),
                Fallback::Unset(_) | Fallback::Computed(_) => None,
            },
        };
        self.effective.push(Effective {
            key,
            value: raw.as_ref().map(|(g, _)| if s.secret { "set".to_string() } else { g.shown(false) }),
            source: raw.as_ref().map(|(_, source)| source.clone()),
            secret: s.secret,
        });
        // A file value that the environment or a flag overrides is still checked: the
        // file must stay valid for the day the override goes away.
        if let Some((shadowed, line)) = self.file.values.get(key)
            && !matches!(raw, Some((_, Source::File { .. })))
            && let Err(why) = parse(shadowed)
        {
            let source = Source::File { path: self.file.path.clone().unwrap_or_default(), line: *line };
            return Err(invalid(s, &shadowed.shown(s.secret), &source, &why));
        }
        let Some((given, source)) = raw else { return Ok(None) };
        parse(&given).map(Some).map_err(|why| invalid(s, &given.shown(s.secret), &source, &why))
    }

    /// Like [`get`](Self::get) for a setting whose table entry has a default.
    fn value<T>(&mut self, key: &'static str, parse: impl Fn(&Given) -> std::result::Result<T, String>) -> Result<T> {
        self.get(key, parse)?
            .ok_or_else(|| Error::Other(anyhow::anyhow!("internal: `{key}` has no default in the settings table")))
    }
}

fn invalid(s: &Setting, shown: &str, source: &Source, why: &str) -> Error {
    let fix = match source {
        Source::Default => format!("set `{}` or {}", s.key, s.env),
        _ => format!("from {source}"),
    };
    Error::config(format!("invalid {} `{shown}` ({fix}): {why}", s.key))
}

// Parsers, one per kind of value.

fn text(g: &Given) -> std::result::Result<String, String> {
    g.text().map(|t| t.trim().to_string())
}

fn number<T: FromStr>(what: &'static str) -> impl Fn(&Given) -> std::result::Result<T, String> {
    move |g| g.text()?.trim().parse::<T>().map_err(|_| format!("expected {what}"))
}

fn boolean(g: &Given) -> std::result::Result<bool, String> {
    parse_bool(g.text()?).ok_or_else(|| "expected true or false".to_string())
}

fn size(g: &Given) -> std::result::Result<u64, String> {
    parse_size(g.text()?)
}

fn duration(g: &Given) -> std::result::Result<Duration, String> {
    humantime::parse_duration(g.text()?.trim()).map_err(|e| format!("{e} (write a duration like 1h or 30m)"))
}

fn http_url(example: &'static str) -> impl Fn(&Given) -> std::result::Result<String, String> {
    move |g| {
        let url = g.text()?.trim().to_string();
        match reqwest::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(url),
            _ => Err(format!("expected an http(s) URL like {example}")),
        }
    }
}

fn socket_addr(g: &Given) -> std::result::Result<SocketAddr, String> {
    g.text()?.trim().parse().map_err(|_| "expected IP:PORT like 127.0.0.1:8080".to_string())
}

fn chat(g: &Given) -> std::result::Result<ChatRef, String> {
    g.text()?.parse()
}

fn globs(g: &Given) -> std::result::Result<Vec<String>, String> {
    let globs = g.list();
    for glob in &globs {
        globset::Glob::new(glob).map_err(|e| format!("`{glob}` is not a glob: {e}"))?;
    }
    Ok(globs)
}

fn secret(g: &Given) -> std::result::Result<Secret, String> {
    g.text().map(|t| Secret::new(t.trim()))
}

impl Config {
    /// Loads settings from the process environment.
    pub fn load(overrides: &Overrides) -> Result<Config> {
        Config::load_with(overrides, &|name| std::env::var(name).ok())
    }

    /// Loads settings, reading environment variables through `env` (for tests).
    pub fn load_with(overrides: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let path = match overrides.config.clone().or_else(|| env(env::CONFIG).map(PathBuf::from)) {
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
        let file = match &path {
            Some(path) => read_config_file(path)?,
            None => FileValues::default(),
        };
        let bucket_filters = file.buckets.clone();
        let mut r = Resolver { file, env: &env, flags: &overrides.flags, effective: Vec::new() };

        let s3_endpoint = r.get("s3.endpoint", http_url("http://127.0.0.1:9000"))?;
        let s3_region = r.value("s3.region", text)?;
        let s3_access_key = r.get("s3.access_key", text)?;
        let s3_secret_key = r.get("s3.secret_key", secret)?;
        let bot_token = r.get("telegram.bot_token", secret)?;
        let backup_chat = r.get("telegram.backup_chat_id", chat)?;
        let admin_chat = r.get("telegram.admin_chat_id", chat)?;
        let api_url = r.value("telegram.api_url", http_url("https://api.telegram.org"))?;
        let messages_per_minute =
            r.value("telegram.messages_per_minute", number("a whole number (0 turns throttling off)"))?;
        let max_flood_wait = r.value("telegram.max_flood_wait", duration)?;
        let webhook_token = r.get("webhook.secret_token", secret)?;
        let webhook_listen = r.value("webhook.listen", socket_addr)?;
        let webhook_concurrency: usize = r.value("webhook.concurrency", number("a whole number of at least 1"))?;
        let dashboard_listen = r.value("dashboard.listen", socket_addr)?;
        let dashboard_public_url = r.get("dashboard.public_url", http_url("https://backups.example.org"))?;
        let is_cloud = is_cloud_api(&api_url);
        let part_size = r.value("part_size", |g| {
            let part_size = size(g)?;
            let max = if is_cloud { CLOUD_MAX_PART_SIZE } else { LOCAL_MAX_PART_SIZE };
            if part_size > max && is_cloud {
                return Err(format!(
                    "the cloud Bot API takes uploads of at most 50 MB, so parts may be at most {}; \
                     a self-hosted Bot API server (telegram.api_url) takes up to {}",
                    human_size(CLOUD_MAX_PART_SIZE),
                    human_size(LOCAL_MAX_PART_SIZE)
                ));
            }
            if part_size < MIN_PART_SIZE || part_size > max || part_size % 1024 != 0 {
                return Err(format!(
                    "must be a whole number of KiB between {} and {}",
                    human_size(MIN_PART_SIZE),
                    human_size(max)
                ));
            }
            Ok(part_size)
        })?;
        let max_attempts = r.value("max_attempts", |g| match number::<u32>("a whole number")(g)? {
            0 => Err("at least one attempt is needed".to_string()),
            n => Ok(n),
        })?;
        let concurrency: usize = r.value("concurrency", number("a whole number of at least 1"))?;
        let alert_interval = r.value("alert_interval", duration)?;
        let database_path = r.get("database_path", |g| text(g).map(PathBuf::from))?;
        let tmp_dir = r.get("tmp_dir", |g| text(g).map(PathBuf::from))?;
        let enable_new_buckets = r.value("sync.enable_new_buckets", boolean)?;
        let filter = FilterConfig {
            include: r.get("sync.include", globs)?.unwrap_or_default(),
            exclude: r.get("sync.exclude", globs)?.unwrap_or_default(),
            min_size: r.get("sync.min_size", size)?,
            max_size: r.get("sync.max_size", size)?,
        };
        validate_filter(&filter, "sync")?;
        let encryption = r.get("encryption.recipients", |g| crate::crypt::Encryption::new(&g.list()))?;
        let heartbeat_ledger_backup = r.value("heartbeat.ledger_backup", boolean)?;

        Ok(Config {
            file: path,
            s3_endpoint,
            s3_region,
            s3_access_key,
            s3_secret_key,
            bot_token,
            backup_chat,
            admin_chat,
            api_url,
            messages_per_minute,
            max_flood_wait,
            webhook_token,
            part_size,
            database_path,
            tmp_dir,
            enable_new_buckets,
            filter,
            bucket_filters,
            max_attempts,
            alert_interval,
            concurrency: concurrency.max(1),
            webhook_listen,
            webhook_concurrency: webhook_concurrency.max(1),
            dashboard_listen,
            dashboard_public_url,
            encryption,
            heartbeat_ledger_backup,
            effective: r.effective,
        })
    }

    /// Every setting's effective value (secrets only as "set") and where it came from,
    /// in the order of the settings table.
    pub fn effective(&self) -> &[Effective] {
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
        let bot_token = self.require_bot_token()?;
        let backup_chat =
            self.backup_chat.clone().ok_or_else(|| self.missing("Telegram backup chat", "telegram.backup_chat_id"))?;
        Ok(TelegramSettings {
            bot_token,
            backup_chat,
            admin_chat: self.admin_chat.clone(),
            api_url: self.api_url.clone(),
            messages_per_minute: self.messages_per_minute,
            max_flood_wait: self.max_flood_wait,
        })
    }

    /// The bot token alone: all a restore from a manifest needs.
    pub fn require_bot_token(&self) -> Result<Secret> {
        let token = self.bot_token.clone().ok_or_else(|| self.missing("Telegram bot token", "telegram.bot_token"))?;
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
        directories::ProjectDirs::from("", "", "tgploy")
            .map(|dirs| dirs.data_dir().join("ledger.sqlite3"))
            .ok_or_else(|| self.missing("ledger path (no home directory to default to)", "database_path"))
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

fn read_config_file(path: &Path) -> Result<FileValues> {
    use toml::de::{DeTable, DeValue};
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read config file {}: {e}", path.display())))?;
    warn_if_readable_by_others(path);
    // Errors stay on one line: the file, the line, what is wrong.
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let invalid = |offset: usize, msg: &str| {
        Error::config(format!("invalid config file {} (line {}): {msg}", path.display(), line_of(offset)))
    };
    let root =
        DeTable::parse(&text).map_err(|e| invalid(e.span().map(|s| s.start).unwrap_or(0), e.message().trim()))?;
    let mut file = FileValues { path: Some(path.to_path_buf()), ..FileValues::default() };
    let mut add = |key: String, value: &toml::Spanned<DeValue<'_>>| {
        let offset = value.span().start;
        let given = given(value.get_ref()).map_err(|why| invalid(offset, &format!("`{key}`: {why}")))?;
        if !is_known_key(&key) {
            return Err(invalid(offset, &unknown_key(&key)));
        }
        file.values.insert(key, (given, line_of(offset)));
        Ok(())
    };
    for (name, value) in root.get_ref() {
        let name: &str = name.get_ref();
        match value.get_ref() {
            DeValue::Table(section) if name == "buckets" => {
                for (bucket, table) in section {
                    let bucket: &str = bucket.get_ref();
                    let DeValue::Table(table) = table.get_ref() else {
                        return Err(invalid(table.span().start, &format!("`buckets.{bucket}` must be a section")));
                    };
                    let filter = bucket_filter(table).map_err(|(offset, why)| invalid(offset, &why))?;
                    validate_filter(&filter, &format!("buckets.{bucket}"))?;
                    file.buckets.insert(bucket.to_string(), filter);
                }
            }
            DeValue::Table(section) => {
                for (key, value) in section {
                    add(format!("{name}.{}", key.get_ref()), value)?;
                }
            }
            _ => add(name.to_string(), value)?,
        }
    }
    Ok(file)
}

/// A TOML value as given; tables are sections, not values.
fn given(value: &toml::de::DeValue<'_>) -> std::result::Result<Given, String> {
    use toml::de::DeValue;
    Ok(match value {
        DeValue::String(s) => Given::Text(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            let digits = digits.trim_start_matches("0x").trim_start_matches("0o").trim_start_matches("0b");
            Given::Text(i64::from_str_radix(digits, i.radix()).map(|n| n.to_string()).unwrap_or(digits.to_string()))
        }
        DeValue::Float(f) => Given::Text(f.as_str().to_string()),
        DeValue::Boolean(b) => Given::Text(b.to_string()),
        DeValue::Datetime(d) => Given::Text(d.to_string()),
        DeValue::Array(items) => Given::List(
            items
                .iter()
                .map(|v| {
                    v.get_ref().as_str().map(str::to_string).ok_or_else(|| "expected a list of strings".to_string())
                })
                .collect::<std::result::Result<_, _>>()?,
        ),
        DeValue::Table(_) => return Err("expected a value, not a section".into()),
    })
}

fn is_known_key(key: &str) -> bool {
    SETTINGS.iter().any(|s| s.key == key || (s.secret && key.strip_suffix("_file") == Some(s.key)))
}

/// "unknown setting `x`", with the closest known key when there is a close one.
fn unknown_key(key: &str) -> String {
    let closest = SETTINGS
        .iter()
        .map(|s| (strsim::jaro_winkler(key, s.key), s.key))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score > 0.85);
    match closest {
        Some((_, known)) => format!("unknown setting `{key}`; did you mean `{known}`?"),
        None => format!("unknown setting `{key}` (the README lists every setting)"),
    }
}

/// A `[buckets.NAME]` section: the four filter keys.
fn bucket_filter(table: &toml::de::DeTable<'_>) -> std::result::Result<FilterConfig, (usize, String)> {
    let mut filter = FilterConfig::default();
    for (key, value) in table {
        let offset = value.span().start;
        let key: &str = key.get_ref();
        let fail = |why: String| (offset, format!("`{key}`: {why}"));
        let given = given(value.get_ref()).map_err(fail)?;
        match key {
            "include" => filter.include = globs(&given).map_err(fail)?,
            "exclude" => filter.exclude = globs(&given).map_err(fail)?,
            "min_size" => filter.min_size = Some(size(&given).map_err(fail)?),
            "max_size" => filter.max_size = Some(size(&given).map_err(fail)?),
            other => {
                return Err((
                    offset,
                    format!("unknown key `{other}` in a bucket's filter (include, exclude, min_size, max_size)"),
                ));
            }
        }
    }
    Ok(filter)
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
    fn every_flag_in_the_table_exists() {
        use clap::CommandFactory;
        let cli = crate::cli::Cli::command();
        let mut longs = Vec::new();
        let mut stack = vec![&cli];
        while let Some(cmd) = stack.pop() {
            longs.extend(cmd.get_arguments().filter_map(|a| a.get_long()).map(|l| format!("--{l}")));
            stack.extend(cmd.get_subcommands());
        }
        for s in SETTINGS {
            if let Some(flag) = s.flag {
                assert!(longs.iter().any(|l| l == flag), "{} names {flag}, which no command has", s.key);
            }
        }
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("123:abc")), "***");
    }
}
