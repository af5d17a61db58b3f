//! Environment variables, kept stable: operators' unit files depend on them.

pub(crate) const CONFIG: &str = "TGPLOY_CONFIG";
/// Where the config file is looked for first when none is named, and where `setup`
/// writes it: optional, unlike TGPLOY_CONFIG (the container image sets it).
pub(crate) const DEFAULT_CONFIG: &str = "TGPLOY_DEFAULT_CONFIG";
pub(crate) const S3_ENDPOINT: &str = "RUSTFS_ENDPOINT";
pub(crate) const S3_ACCESS_KEY: &str = "RUSTFS_ACCESS_KEY";
pub(crate) const S3_SECRET_KEY: &str = "RUSTFS_SECRET_KEY";
pub(crate) const S3_SECRET_KEY_FILE: &str = "RUSTFS_SECRET_KEY_FILE";
pub(crate) const S3_REGION: &str = "RUSTFS_REGION";
pub(crate) const BOT_TOKEN: &str = "TELEGRAM_BOT_TOKEN";
pub(crate) const BOT_TOKEN_FILE: &str = "TELEGRAM_BOT_TOKEN_FILE";
pub(crate) const BOT_TOKENS: &str = "TELEGRAM_BOT_TOKENS";
pub(crate) const BOT_TOKENS_FILE: &str = "TELEGRAM_BOT_TOKENS_FILE";
pub(crate) const BACKUP_TOPIC_ID: &str = "TELEGRAM_BACKUP_TOPIC_ID";
pub(crate) const ADMIN_TOPIC_ID: &str = "TELEGRAM_ADMIN_TOPIC_ID";
pub(crate) const BACKUP_CHAT_ID: &str = "TELEGRAM_BACKUP_CHAT_ID";
pub(crate) const ADMIN_CHAT_ID: &str = "TELEGRAM_ADMIN_CHAT_ID";
pub(crate) const API_URL: &str = "TELEGRAM_API_URL";
pub(crate) const WEBHOOK_SECRET_TOKEN: &str = "WEBHOOK_SECRET_TOKEN";
pub(crate) const DATABASE_PATH: &str = "DATABASE_PATH";
pub(crate) const PART_SIZE: &str = "TGPLOY_PART_SIZE";
pub(crate) const LOG: &str = "TGPLOY_LOG";
pub(crate) const MESSAGES_PER_MINUTE: &str = "TGPLOY_MESSAGES_PER_MINUTE";
pub(crate) const TMP_DIR: &str = "TGPLOY_TMP_DIR";
pub(crate) const MAX_ATTEMPTS: &str = "TGPLOY_MAX_ATTEMPTS";
pub(crate) const ALERT_INTERVAL: &str = "TGPLOY_ALERT_INTERVAL";
pub(crate) const ENCRYPTION_RECIPIENTS: &str = "TGPLOY_ENCRYPTION_RECIPIENTS";
pub(crate) const HEARTBEAT_LEDGER_BACKUP: &str = "TGPLOY_HEARTBEAT_LEDGER_BACKUP";
pub(crate) const MAX_FLOOD_WAIT: &str = "TGPLOY_MAX_FLOOD_WAIT";
pub(crate) const WEBHOOK_SECRET_TOKEN_FILE: &str = "WEBHOOK_SECRET_TOKEN_FILE";
pub(crate) const WEBHOOK_LISTEN: &str = "TGPLOY_WEBHOOK_LISTEN";
pub(crate) const WEBHOOK_CONCURRENCY: &str = "TGPLOY_WEBHOOK_CONCURRENCY";
pub(crate) const WEBHOOK_PACK_WINDOW: &str = "TGPLOY_WEBHOOK_PACK_WINDOW";
pub(crate) const PACK_MAX_OBJECT_SIZE: &str = "TGPLOY_PACK_MAX_OBJECT_SIZE";
pub(crate) const PACK_MAX_MEMBERS: &str = "TGPLOY_PACK_MAX_MEMBERS";
pub(crate) const DASHBOARD_LISTEN: &str = "TGPLOY_DASHBOARD_LISTEN";
pub(crate) const DASHBOARD_PUBLIC_URL: &str = "TGPLOY_DASHBOARD_PUBLIC_URL";
pub(crate) const METRICS_ENABLED: &str = "TGPLOY_METRICS_ENABLED";
pub(crate) const METRICS_TOKEN: &str = "TGPLOY_METRICS_TOKEN";
pub(crate) const METRICS_TOKEN_FILE: &str = "TGPLOY_METRICS_TOKEN_FILE";
/// For `setup dashboard --non-interactive` only: the password itself is not a setting.
pub(crate) const DASHBOARD_PASSWORD: &str = "TGPLOY_DASHBOARD_PASSWORD";
pub(crate) const DASHBOARD_PASSWORD_FILE: &str = "TGPLOY_DASHBOARD_PASSWORD_FILE";
pub(crate) const ENABLE_NEW_BUCKETS: &str = "TGPLOY_ENABLE_NEW_BUCKETS";
pub(crate) const INCLUDE: &str = "TGPLOY_INCLUDE";
pub(crate) const EXCLUDE: &str = "TGPLOY_EXCLUDE";
pub(crate) const MIN_SIZE: &str = "TGPLOY_MIN_SIZE";
pub(crate) const MAX_SIZE: &str = "TGPLOY_MAX_SIZE";
pub(crate) const CONCURRENCY: &str = "TGPLOY_CONCURRENCY";
