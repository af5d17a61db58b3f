//! What the Bot API takes and gives, as its server has it: part sizes, the cloud's upload
//! and download limits, the shape of a bot token. Settings, setup and restores check
//! against these.

use crate::sizes::human_size;

/// The default part size: every part stays within the cloud Bot API's download limit
/// ([`CLOUD_DOWNLOAD_LIMIT`]), so that `restore` can fetch each part through the bot.
pub(crate) const DEFAULT_PART_SIZE: u64 = 19 * 1024 * 1024;
/// The cloud Bot API's download limit: `getFile` refuses larger files
/// (`MAX_DOWNLOAD_FILE_SIZE = 20 << 20` in telegram-bot-api's `Client.h`).
pub(crate) const CLOUD_DOWNLOAD_LIMIT: u64 = 20 << 20;
/// The cloud Bot API's upload limit, "50 MB" in Telegram's documentation: Telegram's HTTP
/// front refuses a request body over 50 MiB (52,428,800 bytes, multipart envelope
/// included) with 413 `Request Entity Too Large`. The Bot API server's source has no such
/// constant; the figure is the one uploads at the boundary show.
pub(crate) const CLOUD_UPLOAD_LIMIT: u64 = 50 << 20;
/// The largest part the cloud Bot API accepts: under [`CLOUD_UPLOAD_LIMIT`] with a
/// mebibyte to spare for the request's other fields (caption, chat, boundaries: a few KiB).
pub(crate) const CLOUD_MAX_PART_SIZE: u64 = CLOUD_UPLOAD_LIMIT - (1 << 20);
/// The largest part a self-hosted Bot API server accepts (uploads of up to 2000 MB).
pub(crate) const LOCAL_MAX_PART_SIZE: u64 = 1950 * 1024 * 1024;
/// The smallest part size; small parts only make sense in tests.
pub(crate) const MIN_PART_SIZE: u64 = 4 * 1024;
/// The Bot API of Telegram's cloud.
pub(crate) const CLOUD_API_URL: &str = "https://api.telegram.org";

/// The bot's id: the number before the colon of its token (never the token).
pub fn bot_id(token: &str) -> Option<i64> {
    token.split_once(':').and_then(|(id, _)| id.parse().ok())
}

/// The one rule for part sizes, for the settings and for `setup`'s answers: a whole
/// number of KiB from [`MIN_PART_SIZE`] up to what the Bot API at `api_url` takes.
pub(crate) fn check_part_size(part_size: u64, api_url: &str) -> std::result::Result<u64, String> {
    let is_cloud = is_cloud_api(api_url);
    let max = if is_cloud { CLOUD_MAX_PART_SIZE } else { LOCAL_MAX_PART_SIZE };
    if part_size > max && is_cloud {
        return Err(format!(
            "the cloud Bot API takes uploads of at most 50 MB (52,428,800 bytes a request), so parts may be at \
             most {}; a self-hosted Bot API server (telegram.api_url) takes up to {}",
            human_size(CLOUD_MAX_PART_SIZE),
            human_size(LOCAL_MAX_PART_SIZE)
        ));
    }
    if part_size < MIN_PART_SIZE || part_size > max || !part_size.is_multiple_of(1024) {
        return Err(format!(
            "must be a whole number of KiB between {} and {}",
            human_size(MIN_PART_SIZE),
            human_size(max)
        ));
    }
    Ok(part_size)
}

/// Whether `api_url` is Telegram's cloud Bot API (with its upload and download limits).
pub(crate) fn is_cloud_api(api_url: &str) -> bool {
    reqwest::Url::parse(api_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.eq_ignore_ascii_case("api.telegram.org")))
        .unwrap_or(false)
}

/// Whether `token` has the shape @BotFather gives: `<digits>:<secret>`.
pub(crate) fn looks_like_bot_token(token: &str) -> bool {
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
