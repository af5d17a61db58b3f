//! The Telegram side: documents and messages through the Bot API (teloxide). The only
//! module that speaks Telegram.
//!
//! Two things are handled here once for every caller: flood control (a 429 answer means
//! "wait `retry_after` seconds and send the same thing again", which is not a failure,
//! plus a proactive per-chat throttle), and the bot token, which appears in every Bot API
//! URL and so in reqwest's errors: it is redacted before any error leaves this module.

pub mod caption;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use teloxide::payloads::GetUpdatesSetters;
use teloxide::payloads::{SendDocumentSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{ChatAction, ChatId, FileId, InputFile, Message, ParseMode, Recipient};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::Mutex;

use crate::config::{ChatRef, Secret, TelegramSettings, is_cloud_api};

/// How many times one request is repeated after 429 answers before giving up.
const MAX_FLOOD_WAITS: u32 = 30;

/// An error from the Telegram side, with the bot token already redacted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("cannot reach the Telegram Bot API at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error(
        "the Telegram Bot API at {endpoint} rejected the bot token; check `telegram.bot_token` or \
         TELEGRAM_BOT_TOKEN (the token @BotFather gave)"
    )]
    Unauthorized { endpoint: String },
    #[error(
        "Telegram cannot post to chat {chat}: {reason}; check `{setting}` and that the bot is a member allowed to post"
    )]
    Chat { chat: String, setting: &'static str, reason: String },
    #[error(
        "the Bot API server at {endpoint} refused a {size}-byte upload as too large (HTTP 413): \
         its limit is below the part size; lower `part_size` (TGPLOY_PART_SIZE){hint}"
    )]
    TooLarge { endpoint: String, size: u64, hint: &'static str },
    #[error("Telegram kept asking to wait (flood control) after {0} attempts")]
    Flooded(u32),
    #[error("Telegram rejected the request: {0}")]
    Rejected(String),
    /// `getFile` refused: the file is over the Bot API's download limit.
    #[error(
        "the Bot API at {endpoint} answered `file is too big`: it hands out files up to its download limit (20 MB on the cloud Bot API)"
    )]
    TooBigToDownload { endpoint: String },
    /// `getFile` does not know the file id (wrong, or from another bot).
    #[error("Telegram does not know this file id (it was sent by another bot, or deleted): {0}")]
    UnknownFile(String),
    #[error("{0}")]
    Io(String),
}

impl SinkError {
    /// Errors that no retry can fix without the operator changing the configuration.
    pub fn is_config(&self) -> bool {
        matches!(self, SinkError::Unauthorized { .. } | SinkError::Chat { .. })
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(self, SinkError::Unreachable { .. })
    }
}

impl From<SinkError> for crate::Error {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::Unreachable { endpoint, reason } => {
                crate::Error::Unreachable { service: crate::error::Service::Telegram, endpoint, reason }
            }
            e if e.is_config() => crate::Error::Config(e.to_string()),
            e => crate::Error::Other(anyhow::anyhow!(e.to_string())),
        }
    }
}

/// A document Telegram accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDocument {
    pub message_id: i64,
    pub file_id: String,
    pub file_unique_id: String,
}

/// Which chat a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chat {
    Backup,
    Admin,
}

/// The bot, bound to the backup chat (and the admin chat, when configured).
pub struct TelegramSink {
    bot: Bot,
    /// Absent for a sink that only downloads (a restore with nothing but the token).
    backup: Option<(Recipient, String)>,
    admin: Option<(Recipient, String)>,
    endpoint: String,
    token: String,
    min_interval: Duration,
    last_send: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for TelegramSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramSink").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

fn recipient(chat: &ChatRef) -> Recipient {
    match chat {
        ChatRef::Id(id) => Recipient::Id(ChatId(*id)),
        ChatRef::Username(name) => Recipient::ChannelUsername(name.clone()),
    }
}

impl TelegramSink {
    pub fn new(settings: &TelegramSettings) -> Result<TelegramSink, SinkError> {
        let mut sink = TelegramSink::downloader(&settings.bot_token, &settings.api_url, settings.messages_per_minute)?;
        sink.backup = Some((recipient(&settings.backup_chat), settings.backup_chat.to_string()));
        sink.admin = settings.admin_chat.as_ref().map(|c| (recipient(c), c.to_string()));
        Ok(sink)
    }

    /// A sink bound to no chat: it can only fetch files (`getFile` and download). All a
    /// restore after losing the server needs is the bot token.
    pub fn downloader(token: &Secret, api_url: &str, messages_per_minute: u32) -> Result<TelegramSink, SinkError> {
        let endpoint = api_url.trim_end_matches('/').to_string();
        // teloxide's default client gives up on any request after 17 s, which kills the
        // upload of a large part on a slow line: connect and read timeouts only.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| SinkError::Io(format!("cannot build the HTTP client: {e}")))?;
        let url = reqwest::Url::parse(api_url)
            .map_err(|e| SinkError::Unreachable { endpoint: endpoint.clone(), reason: format!("invalid URL: {e}") })?;
        let bot = Bot::with_client(token.expose(), client).set_api_url(url);
        let min_interval = match messages_per_minute {
            0 => Duration::ZERO,
            n => Duration::from_secs_f64(60.0 / f64::from(n)),
        };
        Ok(TelegramSink {
            bot,
            backup: None,
            admin: None,
            endpoint,
            token: token.expose().to_string(),
            min_interval,
            last_send: Mutex::new(None),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A sink for `setup`, before any chat is known: only the methods that name their
    /// chat (`send_text_to`, `check_chat`) and `check`/`recent_chats` may be used.
    pub fn for_setup(bot_token: &crate::config::Secret, api_url: &str) -> Result<TelegramSink, SinkError> {
        TelegramSink::new(&TelegramSettings {
            bot_token: bot_token.clone(),
            backup_chat: ChatRef::Id(0),
            admin_chat: None,
            api_url: api_url.to_string(),
            messages_per_minute: 0,
        })
    }

    /// Chats that wrote to the bot lately (getUpdates), newest last, without repeats.
    pub async fn recent_chats(&self) -> Result<Vec<(ChatRef, String)>, SinkError> {
        let updates = self.send_with_flood_control(|| self.bot.get_updates().timeout(1).into_future(), None, 0).await?;
        let mut chats: Vec<(ChatRef, String)> = Vec::new();
        for u in &updates {
            let Some(chat) = u.chat() else { continue };
            let name = chat
                .title()
                .map(str::to_string)
                .or_else(|| chat.username().map(|u| format!("@{u}")))
                .or_else(|| chat.first_name().map(str::to_string))
                .unwrap_or_else(|| "(no name)".into());
            let id = ChatRef::Id(chat.id.0);
            chats.retain(|(c, _)| c != &id);
            chats.push((id, name));
        }
        Ok(chats)
    }

    /// Sends an HTML message to a chat named explicitly (setup's test message).
    pub async fn send_text_to(&self, chat: &ChatRef, html: &str) -> Result<i64, SinkError> {
        let recipient = recipient(chat);
        let label = chat.to_string();
        let message = self
            .send_with_flood_control(
                || self.bot.send_message(recipient.clone(), html.to_string()).parse_mode(ParseMode::Html).into_future(),
                Some((&label, "the chat id")),
                0,
            )
            .await?;
        Ok(i64::from(message.id.0))
    }

    /// Checks that the bot may act in a chat, without posting anything (a chat action).
    pub async fn check_chat(&self, chat: &ChatRef, setting: &'static str) -> Result<(), SinkError> {
        let recipient = recipient(chat);
        let label = chat.to_string();
        self.send_with_flood_control(
            || self.bot.send_chat_action(recipient.clone(), ChatAction::UploadDocument).into_future(),
            Some((&label, setting)),
            0,
        )
        .await?;
        Ok(())
    }

    /// Removes the bot token from a text that may contain a Bot API URL.
    pub fn redact(&self, text: &str) -> String {
        redact_token(text, &self.token)
    }

    fn chat(&self, chat: Chat) -> Result<(&Recipient, &str, &'static str), SinkError> {
        match chat {
            Chat::Backup => self
                .backup
                .as_ref()
                .map(|(r, l)| (r, l.as_str(), "telegram.backup_chat_id"))
                .ok_or_else(|| SinkError::Rejected("no backup chat is configured (telegram.backup_chat_id)".into())),
            Chat::Admin => self
                .admin
                .as_ref()
                .map(|(r, l)| (r, l.as_str(), "telegram.admin_chat_id"))
                .ok_or_else(|| SinkError::Rejected("no admin chat is configured (telegram.admin_chat_id)".into())),
        }
    }

    fn classify(&self, err: RequestError, chat: Option<(&str, &'static str)>, size: u64) -> SinkError {
        let chat_error = |reason: String| match chat {
            Some((label, setting)) => SinkError::Chat { chat: label.to_string(), setting, reason },
            None => SinkError::Rejected(reason),
        };
        match err {
            RequestError::Network(e) => {
                SinkError::Unreachable { endpoint: self.endpoint.clone(), reason: self.redact(&error_chain(&*e)) }
            }
            RequestError::Api(api) => match api {
                ApiError::InvalidToken => SinkError::Unauthorized { endpoint: self.endpoint.clone() },
                ApiError::RequestEntityTooLarge => SinkError::TooLarge {
                    endpoint: self.endpoint.clone(),
                    size,
                    hint: if is_cloud_api(&self.endpoint) {
                        " (the cloud Bot API takes up to 50 MB; a self-hosted Bot API server takes up to 2000 MB)"
                    } else {
                        ""
                    },
                },
                ApiError::ChatNotFound
                | ApiError::BotBlocked
                | ApiError::BotKicked
                | ApiError::BotKickedFromSupergroup
                | ApiError::BotKickedFromChannel
                | ApiError::CantInitiateConversation
                | ApiError::CantTalkWithBots
                | ApiError::UserDeactivated => chat_error(api.to_string()),
                ApiError::WrongFileId | ApiError::WrongFileIdOrUrl | ApiError::FileIdInvalid => {
                    SinkError::UnknownFile(api.to_string())
                }
                other => {
                    let text = other.to_string();
                    if text.contains("file is too big") {
                        return SinkError::TooBigToDownload { endpoint: self.endpoint.clone() };
                    }
                    if text.contains("not enough rights") || text.starts_with("Forbidden") {
                        chat_error(text)
                    } else {
                        SinkError::Rejected(self.redact(&text))
                    }
                }
            },
            RequestError::MigrateToChatId(id) => {
                chat_error(format!("the group became a supergroup with id {id}; set the chat id to {id}"))
            }
            RequestError::RetryAfter(s) => SinkError::Rejected(format!("flood control: retry after {}s", s.seconds())),
            RequestError::InvalidJson { raw, .. } => {
                let raw: String = raw.chars().take(200).collect();
                SinkError::Rejected(self.redact(&format!("unexpected answer from {}: {raw}", self.endpoint)))
            }
            RequestError::Io(e) => SinkError::Io(self.redact(&format!("cannot read the part file: {e}"))),
        }
    }

    /// Runs a request, waiting out flood control (429 with `retry_after`) and the
    /// proactive throttle. The one place that reads `retry_after`.
    async fn send_with_flood_control<T, F, Fut>(
        &self,
        mut request: F,
        chat: Option<(&str, &'static str)>,
        size: u64,
    ) -> Result<T, SinkError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RequestError>>,
    {
        let mut waits = 0;
        loop {
            self.throttle().await;
            match request().await {
                Ok(v) => return Ok(v),
                Err(RequestError::RetryAfter(after)) if waits < MAX_FLOOD_WAITS => {
                    waits += 1;
                    let wait = after.duration().max(Duration::from_millis(100));
                    tracing::info!("Telegram flood control: waiting {}s before sending again", wait.as_secs_f32());
                    tokio::time::sleep(wait).await;
                }
                Err(RequestError::RetryAfter(_)) => return Err(SinkError::Flooded(waits)),
                Err(e) => return Err(self.classify(e, chat, size)),
            }
        }
    }

    async fn throttle(&self) {
        if self.min_interval.is_zero() {
            return;
        }
        let mut last = self.last_send.lock().await;
        if let Some(prev) = *last {
            let next = prev + self.min_interval;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
        }
        *last = Some(Instant::now());
    }

    /// Checks the token and that the API answers: `getMe`. Returns the bot's username.
    pub async fn check(&self) -> Result<String, SinkError> {
        let me = self.send_with_flood_control(|| self.bot.get_me().into_future(), None, 0).await?;
        Ok(me.username.clone().unwrap_or_else(|| me.first_name.clone()))
    }

    /// Sends a file from disk as a document. The file is streamed, not buffered.
    pub async fn send_file(&self, path: &Path, file_name: &str, caption: &str) -> Result<SentDocument, SinkError> {
        self.send_file_to(Chat::Backup, path, file_name, caption).await
    }

    /// Sends a file from disk as a document to a chat.
    pub async fn send_file_to(
        &self,
        chat: Chat,
        path: &Path,
        file_name: &str,
        caption: &str,
    ) -> Result<SentDocument, SinkError> {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.send_document(chat, || InputFile::file(path.to_path_buf()).file_name(file_name.to_string()), caption, size)
            .await
    }

    /// Sends a small in-memory document (a manifest).
    pub async fn send_bytes(&self, bytes: Vec<u8>, file_name: &str, caption: &str) -> Result<SentDocument, SinkError> {
        let size = bytes.len() as u64;
        let bytes = bytes::Bytes::from(bytes);
        self.send_document(
            Chat::Backup,
            || InputFile::memory(bytes.clone()).file_name(file_name.to_string()),
            caption,
            size,
        )
        .await
    }

    async fn send_document(
        &self,
        chat: Chat,
        input: impl Fn() -> InputFile,
        caption: &str,
        size: u64,
    ) -> Result<SentDocument, SinkError> {
        let (chat, label, setting) = self.chat(chat)?;
        let message = self
            .send_with_flood_control(
                || {
                    self.bot
                        .send_document(chat.clone(), input())
                        .caption(caption.to_string())
                        .parse_mode(ParseMode::Html)
                        .disable_content_type_detection(true)
                        .into_future()
                },
                Some((label, setting)),
                size,
            )
            .await?;
        document_of(&message)
    }

    /// Sends an HTML text message; returns its message id.
    pub async fn send_text(&self, chat: Chat, html: &str) -> Result<i64, SinkError> {
        let (recipient, label, setting) = self.chat(chat)?;
        let message = self
            .send_with_flood_control(
                || self.bot.send_message(recipient.clone(), html.to_string()).parse_mode(ParseMode::Html).into_future(),
                Some((label, setting)),
                0,
            )
            .await?;
        Ok(i64::from(message.id.0))
    }
}

/// Where the bytes of a file Telegram holds can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// Over HTTP from the Bot API (`/file/bot<token>/<path>`).
    Remote(String),
    /// From this machine's disk: a self-hosted Bot API server (`--local`) answers
    /// `getFile` with an absolute path.
    Local(PathBuf),
}

/// A file located with `getFile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub size: u64,
    pub source: FileSource,
}

impl TelegramSink {
    /// Asks Telegram where a file is (`getFile`).
    pub async fn locate(&self, file_id: &str) -> Result<RemoteFile, SinkError> {
        let file = self
            .send_with_flood_control(|| self.bot.get_file(FileId(file_id.to_string())).into_future(), None, 0)
            .await?;
        let path = Path::new(&file.path);
        let source = if path.is_absolute() {
            if !path.exists() {
                return Err(SinkError::Io(format!(
                    "the Bot API server at {} keeps this file at {}, which does not exist on this machine; \
                     run the restore on the server's host (or mount its files at the same path)",
                    self.endpoint,
                    path.display()
                )));
            }
            FileSource::Local(path.to_path_buf())
        } else {
            FileSource::Remote(file.path.clone())
        };
        Ok(RemoteFile { size: u64::from(file.meta.size), source })
    }

    /// Streams a located file into `sink`, chunk by chunk; returns the bytes read.
    pub async fn fetch(
        &self,
        file: &RemoteFile,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, SinkError> {
        let write_error = |e: std::io::Error| SinkError::Io(format!("cannot write what was downloaded: {e}"));
        let mut total = 0u64;
        match &file.source {
            FileSource::Local(path) => {
                use tokio::io::AsyncReadExt;
                let mut f = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| SinkError::Io(format!("cannot read {}: {e}", path.display())))?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = f
                        .read(&mut buf)
                        .await
                        .map_err(|e| SinkError::Io(format!("cannot read {}: {e}", path.display())))?;
                    if n == 0 {
                        break;
                    }
                    sink(&buf[..n]).map_err(write_error)?;
                    total += n as u64;
                }
            }
            FileSource::Remote(path) => {
                // The bot's own client: its connect and read timeouts, no total timeout.
                let download = self.bot.client().get(self.file_url(path)?).send().await;
                let mut response =
                    download.and_then(reqwest::Response::error_for_status).map_err(|e| self.download_error(&e))?;
                while let Some(chunk) = response.chunk().await.map_err(|e| self.download_error(&e))? {
                    sink(&chunk).map_err(write_error)?;
                    total += chunk.len() as u64;
                }
            }
        }
        Ok(total)
    }

    /// The download URL as the Bot API documents it, `<api>/file/bot<token>/<file_path>`,
    /// with the path's slashes kept as slashes and each segment percent-encoded.
    /// (teloxide's `download_file*` puts the whole path in one segment, `documents%2F…`,
    /// which a server or proxy that does not decode `%2F` answers with 404.) The URL holds
    /// the token: it never goes into an error or a log line.
    fn file_url(&self, file_path: &str) -> Result<reqwest::Url, SinkError> {
        let mut url = self.bot.api_url();
        url.path_segments_mut()
            .map_err(|()| SinkError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: "the Bot API URL cannot take a path".into(),
            })?
            .pop_if_empty()
            .push("file")
            .push(&format!("bot{}", self.token))
            .extend(file_path.split('/'));
        Ok(url)
    }

    fn download_error(&self, e: &reqwest::Error) -> SinkError {
        match e.status() {
            Some(status) if status.as_u16() == 404 => {
                SinkError::UnknownFile(format!("the download answered {status}; ask for the file again"))
            }
            Some(status) if status.as_u16() == 401 => SinkError::Unauthorized { endpoint: self.endpoint.clone() },
            Some(status) => SinkError::Rejected(format!("the download answered {status}")),
            None => SinkError::Unreachable { endpoint: self.endpoint.clone(), reason: self.redact(&error_chain(e)) },
        }
    }
}

fn document_of(message: &Message) -> Result<SentDocument, SinkError> {
    let doc = message
        .document()
        .ok_or_else(|| SinkError::Rejected("Telegram answered without a document in the message".into()))?;
    Ok(SentDocument {
        message_id: i64::from(message.id.0),
        file_id: doc.file.id.0.clone(),
        file_unique_id: doc.file.unique_id.0.clone(),
    })
}

/// An error and its sources, as one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    reason
}

/// Replaces the bot token (and its secret half, in case a URL was split) with `***`.
pub fn redact_token(text: &str, token: &str) -> String {
    if token.is_empty() {
        return text.to_string();
    }
    let mut out = text.replace(token, "***");
    if let Some((_, secret)) = token.split_once(':')
        && secret.len() >= 8
    {
        out = out.replace(secret, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_urls_keep_the_slashes_of_the_file_path() {
        let token = Secret::new("123456:ABCdef-ghiJKL");
        for (api, want) in [
            ("https://api.telegram.org", "https://api.telegram.org/file/bot123456:ABCdef-ghiJKL/documents/file_12.pdf"),
            (
                "http://127.0.0.1:8081/tg/",
                "http://127.0.0.1:8081/tg/file/bot123456:ABCdef-ghiJKL/documents/file_12.pdf",
            ),
        ] {
            let sink = TelegramSink::downloader(&token, api, 0).unwrap();
            assert_eq!(sink.file_url("documents/file_12.pdf").unwrap().as_str(), want);
        }
        let sink = TelegramSink::downloader(&token, "https://api.telegram.org", 0).unwrap();
        assert_eq!(
            sink.file_url("music/a b#?%.mp3").unwrap().as_str(),
            "https://api.telegram.org/file/bot123456:ABCdef-ghiJKL/music/a%20b%23%3F%25.mp3"
        );
    }

    #[test]
    fn redacts_whole_token_and_secret_half() {
        let t = "123456:ABCdef-ghiJKL";
        assert_eq!(
            redact_token("error sending request for url (http://x/bot123456:ABCdef-ghiJKL/SendDocument)", t),
            "error sending request for url (http://x/bot***/SendDocument)"
        );
        assert_eq!(redact_token("…ABCdef-ghiJKL…", t), "…***…");
    }
}
