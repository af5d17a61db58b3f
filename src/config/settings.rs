//! The settings table: every setting's config-file key, environment variable, flag,
//! default and meaning, in one place. The loader resolves values through it, `--help`
//! and the README's table are generated from it, and the dashboard shows where each
//! effective value came from.

use std::fmt;
use std::path::PathBuf;

use super::env;

/// What a setting falls back to when nothing sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// A value parsed exactly like one given in the file or the environment.
    Value(&'static str),
    /// Nothing: the text says what that means (`required`, `no encryption`, …).
    Unset(&'static str),
    /// Computed at run time (a platform directory); the text says what it is.
    Computed(&'static str),
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The key in the config file, dotted for sections: `telegram.api_url`.
    pub key: &'static str,
    /// The environment variable that sets it.
    pub(crate) env: &'static str,
    /// For secrets: a variable naming a file that holds the value (systemd credentials).
    /// The config file's counterpart is the key with `_file` appended.
    pub(crate) file_env: Option<&'static str>,
    /// The command-line flag that sets it, where one does.
    pub flag: Option<&'static str>,
    /// Never shown: pages, errors and logs say only whether it is set.
    pub(crate) secret: bool,
    /// Takes a list: a TOML array, or a comma-separated environment variable (what the
    /// README's table, kept in step by a test, says).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) list: bool,
    pub(crate) fallback: Fallback,
    /// What it does, for the README and the dashboard.
    pub(crate) about: &'static str,
}

const fn plain(key: &'static str, env: &'static str, fallback: Fallback, about: &'static str) -> Setting {
    Setting { key, env, file_env: None, flag: None, secret: false, list: false, fallback, about }
}

const fn secret(key: &'static str, env: &'static str, file_env: &'static str, about: &'static str) -> Setting {
    Setting {
        key,
        env,
        file_env: Some(file_env),
        flag: None,
        secret: true,
        list: false,
        fallback: Fallback::Unset("none"),
        about,
    }
}

const fn with_flag(setting: Setting, flag: &'static str) -> Setting {
    Setting { flag: Some(flag), ..setting }
}

const fn as_list(setting: Setting) -> Setting {
    Setting { list: true, ..setting }
}

use Fallback::{Computed, Unset, Value};

/// Every setting, in the order the README lists them.
pub const SETTINGS: &[Setting] = &[
    plain(
        "s3.endpoint",
        env::S3_ENDPOINT,
        Unset("required"),
        "the S3-compatible server (RustFS, MinIO, Garage, Ceph, AWS)",
    ),
    plain("s3.region", env::S3_REGION, Value("us-east-1"), "the region requests are signed for"),
    plain("s3.access_key", env::S3_ACCESS_KEY, Unset("required"), "the S3 access key"),
    Setting {
        fallback: Unset("required"),
        ..secret("s3.secret_key", env::S3_SECRET_KEY, env::S3_SECRET_KEY_FILE, "the S3 secret key")
    },
    Setting {
        fallback: Unset("required"),
        ..secret("telegram.bot_token", env::BOT_TOKEN, env::BOT_TOKEN_FILE, "the bot's token from @BotFather")
    },
    as_list(secret(
        "telegram.bot_tokens",
        env::BOT_TOKENS,
        env::BOT_TOKENS_FILE,
        "more bots in the same chats, each with its own flood limit (the first bot sends alerts and the heartbeat)",
    )),
    plain(
        "telegram.backup_chat_id",
        env::BACKUP_CHAT_ID,
        Unset("required"),
        "where backups go: a numeric chat id (-100… for channels and supergroups) or @channelname",
    ),
    plain(
        "telegram.backup_topic_id",
        env::BACKUP_TOPIC_ID,
        Unset("none"),
        "a forum topic (message_thread_id) of the backup chat for backups",
    ),
    plain(
        "telegram.admin_chat_id",
        env::ADMIN_CHAT_ID,
        Unset("none"),
        "where alerts and heartbeats go (none without it)",
    ),
    plain(
        "telegram.admin_topic_id",
        env::ADMIN_TOPIC_ID,
        Unset("none"),
        "a forum topic (message_thread_id) of the admin chat for alerts and heartbeats",
    ),
    plain(
        "telegram.api_url",
        env::API_URL,
        Value(crate::sink::limits::CLOUD_API_URL),
        "the Bot API server: Telegram's cloud, or a self-hosted `telegram-bot-api --local`",
    ),
    plain(
        "telegram.messages_per_minute",
        env::MESSAGES_PER_MINUTE,
        Value("20"),
        "messages a minute each bot sends to each chat (Telegram allows about 20 in a group; 0 turns the pacing off)",
    ),
    plain(
        "telegram.max_flood_wait",
        env::MAX_FLOOD_WAIT,
        Value("10m"),
        "the longest flood-control wait (429 retry_after) a run sits out; a longer one ends the run with exit 4",
    ),
    secret(
        "webhook.secret_token",
        env::WEBHOOK_SECRET_TOKEN,
        env::WEBHOOK_SECRET_TOKEN_FILE,
        "the token bucket notifications carry (`serve-webhook` needs one)",
    ),
    with_flag(
        plain("webhook.listen", env::WEBHOOK_LISTEN, Value("127.0.0.1:8080"), "where `serve-webhook` listens"),
        "--listen",
    ),
    with_flag(
        plain("webhook.concurrency", env::WEBHOOK_CONCURRENCY, Value("2"), "deliveries `serve-webhook` runs at once"),
        "--concurrency",
    ),
    with_flag(
        plain("dashboard.listen", env::DASHBOARD_LISTEN, Value("127.0.0.1:8088"), "where `dashboard` listens"),
        "--listen",
    ),
    plain(
        "dashboard.public_url",
        env::DASHBOARD_PUBLIC_URL,
        Unset("none"),
        "the dashboard's address as browsers see it (behind a TLS proxy: https://…; makes cookies Secure)",
    ),
    plain(
        "part_size",
        env::PART_SIZE,
        Value("19MiB"),
        "objects larger than this are split into parts of this size (bytes, or with a unit)",
    ),
    plain(
        "pack.max_object_size",
        env::PACK_MAX_OBJECT_SIZE,
        Value("1MiB"),
        "objects smaller than this, due together for one chat, travel as one tar document (a pack); 0 sends each alone",
    ),
    plain(
        "pack.max_members",
        env::PACK_MAX_MEMBERS,
        Value("1000"),
        "the most objects one pack holds (it is sealed at the part size, or at the end of the run, before that)",
    ),
    plain(
        "webhook.pack_window",
        env::WEBHOOK_PACK_WINDOW,
        Value("2s"),
        "how long `serve-webhook` gathers events before it delivers them, so that small objects travel in packs",
    ),
    plain(
        "concurrency",
        env::CONCURRENCY,
        Value("4"),
        "deliveries `sync` and `retry` run at once (they share each bot's pace in each chat)",
    ),
    plain(
        "max_attempts",
        env::MAX_ATTEMPTS,
        Value("8"),
        "attempts before a failed delivery is dead and the admin chat is told",
    ),
    plain("alert_interval", env::ALERT_INTERVAL, Value("1h"), "the same alert goes out at most this often"),
    with_flag(
        plain(
            "database_path",
            env::DATABASE_PATH,
            Computed("~/.local/share/tgploy/ledger.sqlite3"),
            "the ledger (SQLite)",
        ),
        "--database",
    ),
    plain(
        "tmp_dir",
        env::TMP_DIR,
        Computed("the system temporary directory"),
        "where part files wait for their upload",
    ),
    plain(
        "sync.enable_new_buckets",
        env::ENABLE_NEW_BUCKETS,
        Value("true"),
        "buckets that appear on the server are delivered without `buckets enable`",
    ),
    as_list(plain(
        "sync.include",
        env::INCLUDE,
        Unset("every key"),
        "globs over the key: only matching keys are delivered",
    )),
    as_list(plain(
        "sync.exclude",
        env::EXCLUDE,
        Unset("nothing"),
        "globs over the key: matching keys are never delivered",
    )),
    plain("sync.min_size", env::MIN_SIZE, Unset("none"), "smaller objects are not delivered"),
    plain("sync.max_size", env::MAX_SIZE, Unset("none"), "larger objects are not delivered"),
    as_list(plain(
        "encryption.recipients",
        env::ENCRYPTION_RECIPIENTS,
        Unset("none"),
        "age recipients every object is encrypted to before it is split (no encryption without)",
    )),
    plain(
        "heartbeat.ledger_backup",
        env::HEARTBEAT_LEDGER_BACKUP,
        Value("false"),
        "`heartbeat` also sends a snapshot of the ledger to the admin chat",
    ),
    plain(
        "metrics.enabled",
        env::METRICS_ENABLED,
        Value("false"),
        "`serve-webhook` and `dashboard` answer `GET /metrics` (Prometheus text format)",
    ),
    secret(
        "metrics.token",
        env::METRICS_TOKEN,
        env::METRICS_TOKEN_FILE,
        "the bearer token `/metrics` requires (open without one)",
    ),
];

/// The setting with this key.
pub(crate) fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Source {
    /// The built-in default.
    Default,
    /// The config file.
    File {
        /// The file's path.
        path: PathBuf,
        /// The line that sets it (1-based).
        line: usize,
    },
    /// An environment variable.
    Env {
        /// The variable: the setting's own, or for a secret its `_FILE` twin naming a file.
        name: &'static str,
    },
    /// A command-line flag.
    Flag {
        /// The flag, like `--listen`.
        name: &'static str,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("the default"),
            Source::File { path, line } => write!(f, "{} (line {line})", path.display()),
            Source::Env { name } => write!(f, "the environment ({name})"),
            Source::Flag { name } => write!(f, "the flag {name}"),
        }
    }
}

/// A setting's effective value (secrets only as "set") and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Effective {
    pub(crate) key: &'static str,
    /// `None` when nothing sets it.
    pub(crate) value: Option<String>,
    pub(crate) source: Option<Source>,
    pub(crate) secret: bool,
}

/// The README's settings table, generated from [`SETTINGS`]; a test keeps the README in
/// step.
#[cfg(test)]
pub(crate) fn markdown_table() -> String {
    let mut out = String::from("| setting | environment | flag | default | what it does |\n|---|---|---|---|---|\n");
    for s in SETTINGS {
        let key = if s.secret { format!("`{0}` / `{0}_file`", s.key) } else { format!("`{}`", s.key) };
        let env = match s.file_env {
            Some(file_env) => format!("`{}` / `{file_env}`", s.env),
            None if s.list => format!("`{}` (comma-separated)", s.env),
            None => format!("`{}`", s.env),
        };
        let flag = s.flag.map(|f| format!("`{f}`")).unwrap_or_else(|| "—".into());
        let fallback = match s.fallback {
            Value(v) => format!("`{v}`"),
            Unset(what) | Computed(what) => what.to_string(),
        };
        out.push_str(&format!("| {key} | {env} | {flag} | {fallback} | {} |\n", s.about));
    }
    out.push_str(&format!(
        "| — | `{}` | `--config` | see above | the config file; it must exist |\n\
         | — | `{}` | — | none | where the config file is looked for first, and where `setup` writes it; need not exist (the container image sets it) |\n\
         | — | `{}` | `-v`, `-q` | `tgploy=info` | log filter, e.g. `debug` or `tgploy=debug` |\n\
         | `buckets.NAME.include`, `.exclude`, `.min_size`, `.max_size` | — | — | the `[sync]` filter | a bucket's own filter |\n\
         | `buckets.NAME.chat_id`, `.topic_id` | — | — | the backup chat and topic | where a bucket's new versions go |\n\
         | `buckets.NAME.expect_every`, `.expect_grace` | — | — | no watch; a tenth of the period | how often a new object is expected there (one period, or a table of key prefixes and periods), and how late it may be |\n",
        env::CONFIG,
        env::DEFAULT_CONFIG,
        env::LOG
    ));
    out
}
