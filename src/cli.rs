//! The command tree. Doc comments here are the `--help` text and the man page.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    some deliveries failed (recorded in the ledger for `tgploy retry`), a check
       failed (`status --check`, `verify`), a part to restore or join is missing or
       corrupt (nothing was written under the requested name), or another error
  2    usage or configuration error (a manifest that does not parse, an identity
       that does not match): nothing was done
  3    another run holds the lock, or the ledger is busy
  4    an outside service (S3, Telegram) could not be reached
  130  stopped by SIGINT, 143 stopped by SIGTERM (after the part in flight)

Environment:
  TGPLOY_CONFIG, RUSTFS_ENDPOINT, RUSTFS_ACCESS_KEY, RUSTFS_SECRET_KEY, RUSTFS_REGION,
  TELEGRAM_BOT_TOKEN, TELEGRAM_BACKUP_CHAT_ID, TELEGRAM_ADMIN_CHAT_ID, TELEGRAM_API_URL,
  DATABASE_PATH, TGPLOY_PART_SIZE, TGPLOY_ENCRYPTION_RECIPIENTS, TGPLOY_LOG (see the
  README for the rest)";

/// Deliver every new object version from S3-compatible buckets to a Telegram chat.
///
/// tgploy copies backups (database dumps, tarballs, snapshots) from RustFS, MinIO,
/// Garage, Ceph or AWS S3 to Telegram through the Bot API, exactly once per object
/// version, split into checksummed parts where needed, so they can be rebuilt byte for
/// byte after losing the storage server. Each run does its work and exits: schedule
/// `tgploy sync` with a systemd timer or cron.
#[derive(Debug, Parser)]
#[command(name = "tgploy", version, after_long_help = EXIT_CODES, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Config file (TOML). Default: $TGPLOY_CONFIG, else ~/.config/tgploy/config.toml,
    /// else /etc/tgploy/config.toml; without one, settings come from the environment.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Ledger (SQLite) path. Overrides `database_path` and DATABASE_PATH.
    #[arg(long, global = true, value_name = "PATH")]
    pub database: Option<PathBuf>,

    /// More log output on stderr (-v info for every library, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// A current second-factor code (or a recovery code) for operations that need one
    /// once a second factor is enrolled; without it, tgploy asks on a terminal.
    #[arg(long, global = true, value_name = "CODE")]
    pub otp: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Deliver every new object version of the enabled buckets.
    ///
    /// Discovers new buckets, lists the enabled ones page by page, records every object
    /// version (bucket, key, ETag) not delivered yet, and sends it: as one document, or
    /// as `name.part001`, `name.part002`, … and a `name.tgploy.json` manifest when larger
    /// than the part size. A second run sends nothing new. A run that was killed is
    /// resumed at the first part Telegram had not accepted. Failed deliveries are recorded
    /// with their error for `tgploy retry`.
    Sync(SyncArgs),

    /// Deliver failed deliveries whose next attempt is due.
    ///
    /// Failed deliveries are retried on a backoff schedule: 1 min, 5 min, 15 min, 1 h,
    /// 6 h, then every 24 h. After `max_attempts` (default 8) a delivery is dead: the
    /// admin chat is told, and only `--dead` brings it back. Run it from a timer every
    /// few minutes, like `sync`.
    Retry(RetryArgs),

    /// Send the daily summary to the admin chat.
    ///
    /// Deliveries and bytes in the last 24 hours, buckets enabled and known, failures,
    /// the retry queue, dead deliveries and the time of the last backup. Run it once a
    /// day from a timer; if it stops arriving, tgploy stopped running.
    Heartbeat(HeartbeatArgs),

    /// Receive bucket notifications and deliver new objects within seconds.
    ///
    /// An HTTP server for RustFS/MinIO/AWS S3 event notifications: `POST /webhook` with
    /// `Authorization: Bearer <token>`, or `POST /webhook/<token>`. An object-created
    /// event is committed to the ledger before it is answered, then delivered in the
    /// background like `sync` does (a timer's `sync` stays the safety net and never
    /// double-sends). `GET /healthz` reports the queue. Runs until SIGTERM/SIGINT, then
    /// lets the parts in flight finish.
    ServeWebhook(ServeWebhookArgs),

    /// Serve the web dashboard: what reached Telegram, at a glance, from a browser.
    ///
    /// Pages: an overview (delivered objects and bytes, the last sync and heartbeat,
    /// the queue, alerts waiting, per-bucket counts, the latest deliveries and runs),
    /// buckets with their switches, delivered files with links to their messages, the
    /// retry queue, the history of runs and alerts, security (sessions, the second
    /// factor, the password) and the effective settings. Signing in needs the dashboard
    /// password and a current second-factor code; both must be set up first (`tgploy
    /// setup dashboard`, `tgploy setup totp --reset`). Listens on 127.0.0.1:8088 by
    /// default: put it behind a TLS reverse proxy to reach it from elsewhere, and set
    /// `dashboard.public_url`. Runs until SIGTERM/SIGINT.
    Dashboard(DashboardArgs),

    /// Check that a running `serve-webhook` or `dashboard` answers, for healthchecks.
    ///
    /// GETs URL once and exits 0 if the answer is 2xx within --timeout; otherwise prints
    /// one line saying what came back, or why nothing did, and exits 1. Redirects are not
    /// followed. Without URL it asks serve-webhook's `/healthz` at `webhook.listen`
    /// (TGPLOY_WEBHOOK_LISTEN), over loopback when that is every address (0.0.0.0). The
    /// dashboard answers `/healthz` too: `tgploy probe http://127.0.0.1:8088/healthz`.
    /// Made for a container's HEALTHCHECK, where there is no shell and no curl.
    Probe(ProbeArgs),

    /// List, enable or disable buckets.
    #[command(subcommand)]
    Buckets(BucketsCommand),

    /// Guided first run: checks S3 and Telegram, writes a private config, enrols a
    /// second factor.
    ///
    /// Asks for the S3 endpoint and keys (checked by listing buckets), the bot token
    /// (checked with getMe), the backup and admin chats (typed in, or detected from a
    /// message you send to the bot; a test message confirms the bot may post), the part
    /// size; generates a webhook token; writes the config file with mode 0600 (an
    /// existing one is kept as a backup); enrols a TOTP second factor with ten recovery
    /// codes. Replacing an existing configuration needs a second-factor code.
    Setup(SetupArgs),

    /// Check an existing configuration: config file, ledger, S3, buckets, bot, chats,
    /// clock.
    ///
    /// Prints a checklist with a fix for each failure; exits 1 if any check fails.
    Doctor(DoctorArgs),

    /// Show buckets, delivered counts and bytes, the retry queue and the last sync.
    Status(StatusArgs),

    /// List delivered objects: when, in how many parts, message ids and SHA-256.
    ///
    /// The ad-hoc restore listing: each row names the Telegram messages that hold the
    /// object.
    Files(FilesArgs),

    /// Rebuild a delivered object from Telegram, checked part by part.
    ///
    /// Finds the delivery in the ledger (the latest version of the key unless --etag is
    /// given), or reads a manifest (`NAME.tgploy.json`, downloaded from the chat) when the
    /// ledger is gone. Each part is located (`getFile`) right before its download (a
    /// download link lives an hour; a refused one is asked for again), checked against its
    /// SHA-256, then joined, and the whole is checked too.
    /// The output is written to a temporary file beside it and renamed into place only
    /// when everything checked out. Encrypted objects are decrypted with --identity;
    /// without it the age file itself (`NAME.age`) is written. Parts over the cloud Bot
    /// API's 20 MiB download limit are reported up front with the manual route
    /// (`tgploy join`). Parts are downloaded --jobs at a time.
    ///
    /// With --all, everything comes back at once, --jobs downloads in flight across
    /// objects (a pack is downloaded once for all its objects): into --out DIR (each object at DIR/BUCKET/KEY, written atomically; keys
    /// that would leave DIR are mapped inside it; a second run skips what is already
    /// there and checked) or back into S3 with --to-s3. --as-of picks the state of a
    /// moment, key by key. Exit 0 when everything came back, 1 when some objects failed
    /// (each named), 4 when Telegram or S3 cannot be reached (a rerun continues).
    Restore(RestoreArgs),

    /// Join parts downloaded by hand from a Telegram client, or open a pack.
    ///
    /// With --manifest, each part is matched by its file name and checked against the
    /// manifest's size and SHA-256 before anything is written; every missing or corrupt
    /// part is named. Without it, the files are joined in the order given, unchecked.
    ///
    /// With --pack, a pack (`tgploy-pack-….tar`, or `.tar.age` with --identity) is
    /// checked against its index, every object's size and SHA-256; with --out DIR its
    /// objects are extracted there, each at BUCKET/KEY.
    Join(JoinArgs),

    /// Restore drill: download the parts of delivered objects and check their hashes.
    ///
    /// Picks --sample objects at random (all with --sample 0), downloads every part
    /// through the Bot API, and checks each part's and the whole stream's SHA-256 without
    /// writing anything. A mismatch is reported, sent to the admin chat as an alert, and
    /// makes the exit status 1. Like `restic check --read-data`; run it weekly.
    Verify(VerifyArgs),

    /// The ledger itself: send a snapshot of it to the admin chat.
    #[command(subcommand)]
    Ledger(LedgerCommand),

    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// Only this bucket (repeatable). It must exist and be enabled.
    #[arg(long = "bucket", short = 'b', value_name = "NAME")]
    pub buckets: Vec<String>,

    /// List what would be sent; send nothing and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print a JSON summary on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    /// Ignore the backoff schedule: retry every failed delivery now.
    #[arg(long)]
    pub now: bool,

    /// Retry only this delivery (repeatable; ids are in `tgploy status`), whatever its
    /// schedule.
    #[arg(long = "id", value_name = "N")]
    pub ids: Vec<i64>,

    /// Revive dead deliveries (all, or those given with --id) with a fresh count of
    /// attempts, and retry them.
    #[arg(long)]
    pub dead: bool,

    /// Print a JSON summary on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ServeWebhookArgs {
    /// Address to listen on [default: `webhook.listen` or TGPLOY_WEBHOOK_LISTEN, else
    /// 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Run without a token (only on a loopback address): anyone who can reach the port
    /// can queue deliveries.
    #[arg(long)]
    pub insecure_no_token: bool,

    /// Deliveries to run at once [default: `webhook.concurrency` or
    /// TGPLOY_WEBHOOK_CONCURRENCY, else 2].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    /// Address to listen on [default: `dashboard.listen` or TGPLOY_DASHBOARD_LISTEN, else
    /// 127.0.0.1:8088].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// What to GET [default: http://WEBHOOK_LISTEN/healthz].
    #[arg(value_name = "URL")]
    pub url: Option<String>,

    /// How long to wait for the answer (`5s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub(crate) struct SetupArgs {
    #[command(subcommand)]
    pub what: Option<SetupCommand>,

    /// Take every answer from flags and the environment (RUSTFS_*, TELEGRAM_*), run
    /// the same checks and write the same file: for configuration management.
    #[arg(long, global = true)]
    pub non_interactive: bool,

    /// Do not enrol a second factor.
    #[arg(long)]
    pub no_totp: bool,

    /// With --non-interactive: replace an existing config file (kept as a backup).
    #[arg(long)]
    pub force: bool,

    /// S3 endpoint URL [env: RUSTFS_ENDPOINT].
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// S3 region [env: RUSTFS_REGION] [default: us-east-1].
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,

    /// S3 access key [env: RUSTFS_ACCESS_KEY].
    #[arg(long, value_name = "KEY")]
    pub s3_access_key: Option<String>,

    /// Bot API server, for a self-hosted one [env: TELEGRAM_API_URL].
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// Backup chat id [env: TELEGRAM_BACKUP_CHAT_ID].
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    pub backup_chat_id: Option<String>,

    /// Admin chat id [env: TELEGRAM_ADMIN_CHAT_ID].
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    pub admin_chat_id: Option<String>,

    /// Part size, e.g. 19MiB [env: TGPLOY_PART_SIZE].
    #[arg(long, value_name = "SIZE")]
    pub part_size: Option<String>,
}

/// Secrets (S3 secret key, bot token, webhook token) are taken from the environment
/// (RUSTFS_SECRET_KEY, TELEGRAM_BOT_TOKEN, WEBHOOK_SECRET_TOKEN) or their `*_FILE`
/// variants, never from flags, which other users can see in the process list.
#[derive(Debug, Subcommand)]
pub(crate) enum SetupCommand {
    /// Manage the second factor.
    Totp {
        /// Enrol a new secret and new recovery codes (needs a current code or a
        /// recovery code).
        #[arg(long, required = true)]
        reset: bool,
    },
    /// Set the web dashboard's password (stored as an argon2id hash in the ledger).
    ///
    /// Asks for it twice on a terminal. With --non-interactive it is read from
    /// TGPLOY_DASHBOARD_PASSWORD, or from the file TGPLOY_DASHBOARD_PASSWORD_FILE names.
    /// At least 12 characters. Replacing a password needs a second-factor code, and
    /// signs every dashboard session out.
    Dashboard,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// JSON on stdout instead of the checklist.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct HeartbeatArgs {
    /// Print the summary instead of sending it.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the summary as JSON on stdout (and send it unless --dry-run).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BucketsCommand {
    /// List the buckets on the server and whether each is enabled.
    List {
        /// JSON on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Enable a bucket: its objects are delivered by the next `sync`.
    Enable {
        /// The bucket.
        name: String,
        /// Record the bucket's current objects as skipped: only objects created or
        /// overwritten from now on are delivered.
        #[arg(long)]
        from_now: bool,
    },
    /// Disable a bucket: `sync` no longer delivers its objects.
    Disable {
        /// The bucket.
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,

    /// For monitoring: exit 0 only if the last successful sync is younger than
    /// --max-age, no delivery is dead and no freshness watch (`expect_every`) is
    /// overdue; otherwise print one CRITICAL line per problem and exit 1.
    #[arg(long)]
    pub check: bool,

    /// With --check: the oldest acceptable last successful sync (`90m`, `2h`, `1d`).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration, requires = "check")]
    pub max_age: std::time::Duration,

    /// The metrics in the Prometheus text format, as `/metrics` serves them: on stdout,
    /// or into FILE for node_exporter's textfile collector (written beside it, then
    /// renamed over it, so the collector never reads half a file).
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        default_missing_value = "-",
        conflicts_with_all = ["json", "check"]
    )]
    pub prometheus: Option<std::path::PathBuf>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write a duration like 90m, 2h or 1d)"))
}

#[derive(Debug, Args)]
pub(crate) struct FilesArgs {
    /// Only objects of this bucket.
    #[arg(long, short = 'b', value_name = "NAME")]
    pub bucket: Option<String>,

    /// Only keys starting with this prefix.
    #[arg(long, short = 'p', value_name = "PREFIX")]
    pub prefix: Option<String>,

    /// JSON on stdout instead of a table (with every part's message and file id).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The object: `BUCKET/KEY`, as delivered (see `tgploy files`).
    #[arg(
        value_name = "BUCKET/KEY",
        required_unless_present_any = ["manifest", "all"],
        conflicts_with_all = ["manifest", "all"]
    )]
    pub object: Option<String>,

    /// Restore this version (ETag) of the key rather than the latest one.
    #[arg(long, value_name = "ETAG", requires = "object")]
    pub etag: Option<String>,

    /// Restore from a manifest file alone (no ledger needed): the disaster case.
    #[arg(long, value_name = "NAME.tgploy.json", conflicts_with = "all")]
    pub manifest: Option<PathBuf>,

    /// Restore every delivered object (the latest delivered version of each key), or
    /// those of --bucket and --prefix, into --out DIR or back into S3 (--to-s3).
    #[arg(long, requires = "destination")]
    pub all: bool,

    /// With --all: only this bucket (repeatable).
    #[arg(long = "bucket", short = 'b', value_name = "NAME", requires = "all")]
    pub buckets: Vec<String>,

    /// With --all: only keys starting with this prefix.
    #[arg(long, short = 'p', value_name = "PREFIX", requires = "all")]
    pub prefix: Option<String>,

    /// With --all: for each key, the newest version whose S3 last-modified time is at or
    /// before TIME (RFC 3339, like 2026-11-24T18:00:00Z, or a duration meaning that long
    /// ago, like 36h); keys that did not exist yet are left out. The way back from an
    /// overwrite: ransomware, a bad job.
    #[arg(long, value_name = "TIME", requires = "all", value_parser = parse_moment)]
    pub as_of: Option<tgploy::restore::all::AsOf>,

    /// Parts downloaded at once, across objects and within one large object.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// Where to write: a file, a directory (the object's name inside it), or `-` for
    /// stdout [default: the object's name in the current directory]. With --all, the
    /// directory that gets DIR/BUCKET/KEY.
    #[arg(long, short = 'o', value_name = "PATH", group = "destination")]
    pub out: Option<PathBuf>,

    /// With --all: put each object back into the configured S3 endpoint (the new server)
    /// under its bucket and key, creating missing buckets; the ledger learns the
    /// restored versions as delivered, so the next `sync` sends nothing.
    #[arg(long, requires = "all", conflicts_with = "out", group = "destination")]
    pub to_s3: bool,

    /// With --all: print what would be restored (objects, bytes, versions picked) and
    /// download nothing.
    #[arg(long, requires = "all")]
    pub dry_run: bool,

    #[command(flatten)]
    pub write: WriteArgs,
}

/// `--as-of`: an RFC 3339 time, or a duration meaning that long ago.
fn parse_moment(s: &str) -> Result<tgploy::restore::all::AsOf, String> {
    use tgploy::restore::all::AsOf;
    if let Ok(t) = humantime::parse_rfc3339_weak(s.trim()) {
        return Ok(AsOf::At(t));
    }
    humantime::parse_duration(s.trim()).map(AsOf::Ago).map_err(|_| {
        format!("`{s}` is neither a time (like 2026-11-24T18:00:00Z) nor a duration meaning that long ago (like 36h)")
    })
}

/// How `restore` and `join` write what they rebuilt.
#[derive(Debug, Args)]
pub(crate) struct WriteArgs {
    /// An age identity file (`age-keygen` output) to decrypt an encrypted object
    /// (`name.age`, `name.age.part…`).
    #[arg(long, short = 'i', value_name = "FILE")]
    pub identity: Option<PathBuf>,

    /// Replace the output if it exists (with --all: objects that differ from the one
    /// to restore).
    #[arg(long)]
    pub force: bool,

    /// Print a JSON summary (on stdout, or on stderr with `--out -`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JoinArgs {
    /// The part files, e.g. `dump.sql.part*`.
    #[arg(value_name = "PARTS", required_unless_present = "pack", conflicts_with = "pack")]
    pub parts: Vec<PathBuf>,

    /// The manifest (`NAME.tgploy.json`) to check the parts against.
    #[arg(long, value_name = "FILE", conflicts_with = "pack")]
    pub manifest: Option<PathBuf>,

    /// A pack downloaded from the chat: check it against its index (and extract its
    /// objects with --out DIR).
    #[arg(long, value_name = "FILE")]
    pub pack: Option<PathBuf>,

    /// Where to write the joined object, or `-` for stdout; with --pack, the directory
    /// to extract the objects into.
    #[arg(long, short = 'o', value_name = "PATH", required_unless_present = "pack")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub write: WriteArgs,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Only objects of this bucket.
    #[arg(long, short = 'b', value_name = "NAME")]
    pub bucket: Option<String>,

    /// How many delivered objects to check, picked at random; 0 checks them all.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub sample: u64,

    /// Parts downloaded at once, across objects.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Send a consistent snapshot of the ledger (SQLite `VACUUM INTO`) to the admin chat.
    ///
    /// The ledger holds every part's Telegram file id: with a snapshot, `restore` works
    /// after losing the server (point DATABASE_PATH at the downloaded copy). The second
    /// factor's secret is left out. With `[encryption]` configured, the snapshot is
    /// encrypted too (`.sqlite3.age`). `heartbeat` sends one daily with
    /// `heartbeat.ledger_backup = true`.
    Backup,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_valid() {
        Cli::command().debug_assert();
    }
}
