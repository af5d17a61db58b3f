//! Resolving settings: flag, environment, config file, default, each through the
//! settings table, with errors that name the value and where it came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::file::{FileValues, read_config_file, read_secret_file, validate_filter};
use super::settings::{self, Effective, Fallback, Setting, Source};
use super::{ChatRef, Config, FilterConfig, Overrides, Secret, env};
use crate::error::{Error, Result};
use crate::sink::limits::check_part_size;
use crate::sizes::parse_size;

/// A value as given: one text, or a list (a TOML array; a comma-separated variable).
/// Not `Debug`: it may hold a secret.
#[derive(Clone)]
pub(super) enum Given {
    Text(String),
    List(Vec<String>),
}

impl Given {
    pub(super) fn text(&self) -> std::result::Result<&str, String> {
        match self {
            Given::Text(t) => Ok(t),
            Given::List(_) => Err("expected a single value, not a list".into()),
        }
    }

    /// A list; a text is split at commas outside `{…}` (globs use braces for choices).
    pub(super) fn list(&self) -> Vec<String> {
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

    pub(super) fn shown(&self, secret: bool) -> String {
        match self {
            _ if secret => "***".into(),
            Given::Text(t) => t.clone(),
            Given::List(items) => items.join(", "),
        }
    }
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
        let s = settings::find(key).ok_or_else(|| Error::Internal(format!("`{key}` is not in the settings table")))?;
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
        self.get(key, parse)?.ok_or_else(|| Error::Internal(format!("`{key}` has no default in the settings table")))
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

pub(super) fn size(g: &Given) -> std::result::Result<u64, String> {
    parse_size(g.text()?)
}

pub(super) fn duration(g: &Given) -> std::result::Result<Duration, String> {
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

/// A forum topic: the Bot API's `message_thread_id`, a positive number.
pub(super) fn topic(g: &Given) -> std::result::Result<i64, String> {
    match g.text()?.trim().parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err("expected a forum topic's id (message_thread_id), a positive number".into()),
    }
}

fn secrets(g: &Given) -> std::result::Result<Vec<Secret>, String> {
    Ok(g.list().into_iter().map(Secret::new).collect())
}

pub(super) fn globs(g: &Given) -> std::result::Result<Vec<String>, String> {
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
            None => default_config_paths(&env).into_iter().find(|p| p.is_file()),
        };
        let file = match &path {
            Some(path) => read_config_file(path)?,
            None => FileValues::default(),
        };
        let buckets = file.buckets.clone();
        let mut r = Resolver { file, env: &env, flags: &overrides.flags, effective: Vec::new() };

        let s3_endpoint = r.get("s3.endpoint", http_url("http://127.0.0.1:9000"))?;
        let s3_region = r.value("s3.region", text)?;
        let s3_access_key = r.get("s3.access_key", text)?;
        let s3_secret_key = r.get("s3.secret_key", secret)?;
        let bot_token = r.get("telegram.bot_token", secret)?;
        let more_bot_tokens = r.get("telegram.bot_tokens", secrets)?.unwrap_or_default();
        let backup_chat = r.get("telegram.backup_chat_id", chat)?;
        let backup_topic = r.get("telegram.backup_topic_id", topic)?;
        let admin_topic = r.get("telegram.admin_topic_id", topic)?;
        let admin_chat = r.get("telegram.admin_chat_id", chat)?;
        let api_url = r.value("telegram.api_url", http_url("https://api.telegram.org"))?;
        let messages_per_minute =
            r.value("telegram.messages_per_minute", number("a whole number (0 turns throttling off)"))?;
        let max_flood_wait = r.value("telegram.max_flood_wait", duration)?;
        let webhook_token = r.get("webhook.secret_token", secret)?;
        let webhook_listen = r.value("webhook.listen", socket_addr)?;
        let webhook_concurrency: usize = r.value("webhook.concurrency", number("a whole number of at least 1"))?;
        let webhook_pack_window = r.value("webhook.pack_window", duration)?;
        let pack_max_object_size = r.value("pack.max_object_size", size)?;
        let pack_max_members: usize = r.value("pack.max_members", |g| match number::<usize>("a whole number")(g)? {
            n if n < 2 => Err("a pack holds at least 2 objects".to_string()),
            n => Ok(n),
        })?;
        let dashboard_listen = r.value("dashboard.listen", socket_addr)?;
        let dashboard_public_url = r.get("dashboard.public_url", http_url("https://backups.example.org"))?;
        let part_size = r.value("part_size", |g| check_part_size(size(g)?, &api_url))?;
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
        let metrics_enabled = r.value("metrics.enabled", boolean)?;
        let metrics_token = r.get("metrics.token", secret)?;

        Ok(Config {
            file: path,
            s3_endpoint,
            s3_region,
            s3_access_key,
            s3_secret_key,
            bot_token,
            more_bot_tokens,
            backup_chat,
            backup_topic,
            admin_topic,
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
            buckets,
            max_attempts,
            alert_interval,
            concurrency: concurrency.max(1),
            webhook_listen,
            webhook_concurrency: webhook_concurrency.max(1),
            webhook_pack_window,
            pack_max_object_size,
            pack_max_members,
            dashboard_listen,
            dashboard_public_url,
            encryption,
            heartbeat_ledger_backup,
            metrics_enabled,
            metrics_token,
            effective: r.effective,
        })
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Where the config file is looked for when none is named (`--config`, TGPLOY_CONFIG), in
/// order; the first that exists is read, and none need exist: TGPLOY_DEFAULT_CONFIG, the
/// platform's config directory (`~/.config/tgploy/config.toml`), `/etc/tgploy/config.toml`.
fn default_config_paths(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = default_config_path(env).into_iter().collect();
    paths.push(PathBuf::from("/etc/tgploy/config.toml"));
    paths
}

/// The config file `setup` writes: `--config` (`flag`), else TGPLOY_CONFIG, else the
/// default place ([`default_config_path`]).
pub fn setup_target(flag: Option<PathBuf>) -> Result<PathBuf> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match flag.or_else(|| from_env(env::CONFIG).map(PathBuf::from)) {
        Some(path) => Ok(path),
        None => default_config_path(&from_env)
            .ok_or_else(|| Error::config("no home directory to put the config in: pass --config PATH")),
    }
}

impl Config {
    /// The settings `setup` starts from when it writes `target`: that file when it
    /// exists, then the environment (TGPLOY_CONFIG names the target, which may not exist
    /// yet: it is not read as such), and `database` (`--database`). A file that does not
    /// load is what setup is there to replace: then the environment alone.
    pub(crate) fn load_for_setup(target: &Path, database: Option<&Path>) -> Result<Config> {
        let from_env = |name: &str| if name == env::CONFIG { None } else { std::env::var(name).ok() };
        let flags = Overrides::default().flag("database_path", database.map(|p| p.display()));
        let overrides = Overrides { config: target.exists().then(|| target.to_path_buf()), ..flags.clone() };
        match Config::load_with(&overrides, &from_env) {
            Ok(cfg) => Ok(cfg),
            Err(e) => {
                tracing::warn!("the existing configuration does not load ({e}); starting from the environment");
                Config::load_with(&flags, &from_env)
            }
        }
    }
}

/// The dashboard's password for `setup dashboard --non-interactive`: from
/// TGPLOY_DASHBOARD_PASSWORD, or the file TGPLOY_DASHBOARD_PASSWORD_FILE names. It is no
/// setting: it is read only here, and only its hash is kept.
pub fn dashboard_password_from_env() -> Result<Secret> {
    match (std::env::var(env::DASHBOARD_PASSWORD).ok(), std::env::var_os(env::DASHBOARD_PASSWORD_FILE)) {
        (Some(p), _) if !p.is_empty() => Ok(Secret::new(p)),
        (_, Some(path)) => {
            let path = PathBuf::from(path);
            std::fs::read_to_string(&path).map(|p| Secret::new(p.trim_end_matches(['\r', '\n']))).map_err(|e| {
                Error::config(format!("cannot read {} {}: {e}", env::DASHBOARD_PASSWORD_FILE, path.display()))
            })
        }
        _ => Err(Error::config(format!(
            "--non-interactive reads the dashboard password from {} or {}; neither is set",
            env::DASHBOARD_PASSWORD,
            env::DASHBOARD_PASSWORD_FILE
        ))),
    }
}

/// Where `setup` writes the config file when none is named: TGPLOY_DEFAULT_CONFIG, else
/// the platform's config directory; `None` without a home directory.
pub fn default_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let platform = || directories::ProjectDirs::from("", "", "tgploy").map(|d| d.config_dir().join("config.toml"));
    env(env::DEFAULT_CONFIG).filter(|p| !p.trim().is_empty()).map(PathBuf::from).or_else(platform)
}
