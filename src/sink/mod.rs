//! The Telegram side: documents and messages through the Bot API (teloxide). The only
//! module that speaks Telegram.
//!
//! Two things are handled here once for every caller: flood control (a 429 answer means
//! "wait `retry_after` seconds and send the same thing again", which is not a failure,
//! plus a proactive per-chat throttle), and the bot token, which appears in every Bot API
//! URL and so in reqwest's errors: it is redacted before any error leaves this module.

pub mod api;
pub mod caption;
mod pace;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use teloxide::ApiError;
use teloxide::types::{Me, Message, Update};

use crate::config::{ChatRef, Secret, TelegramSettings, is_cloud_api};
use api::{Attachment, BotApi, Document, Failure};
use pace::Pacer;

/// How many times one request is repeated after 429 answers before giving up.
const MAX_FLOOD_WAITS: u32 = 30;
/// The longest flood wait a sink built without settings (setup, restore) sits out: the
/// default of `telegram.max_flood_wait`.
const DEFAULT_MAX_FLOOD_WAIT: Duration = Duration::from_secs(10 * 60);

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
    /// Flood control asked for a wait longer than `telegram.max_flood_wait`.
    #[error(
        "Telegram's flood control asks to wait {secs}s, longer than `telegram.max_flood_wait` ({max}s); \
         the next run resumes"
    )]
    FloodWait { secs: u64, max: u64 },
    #[error("Telegram kept asking to wait (flood control) after {0} attempts; the next run resumes")]
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

    /// Telegram is down, or will not take anything for longer than a run should wait:
    /// the run stops, counts no attempt, and the next run resumes.
    pub fn is_outage(&self) -> bool {
        matches!(self, SinkError::Unreachable { .. } | SinkError::FloodWait { .. } | SinkError::Flooded(_))
    }
}

impl From<SinkError> for crate::Error {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::Unreachable { endpoint, reason } => {
                crate::Error::Unreachable { service: crate::error::Service::Telegram, endpoint, reason }
            }
            e if e.is_outage() => crate::Error::Outage(e.to_string()),
            e if e.is_config() => crate::Error::Config(e.to_string()),
            e => crate::Error::Failed(e.to_string()),
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

/// A chat as requests name it, with what error messages call it.
#[derive(Debug, Clone)]
struct Target {
    /// The `chat_id` parameter: a number, or `@channel`.
    id: String,
    setting: &'static str,
}

impl Target {
    fn new(chat: &ChatRef, setting: &'static str) -> Target {
        Target { id: chat.to_string(), setting }
    }
}

/// The bot, bound to the backup chat (and the admin chat, when configured).
pub struct TelegramSink {
    api: BotApi,
    /// Absent for a sink that only downloads (a restore with nothing but the token).
    backup: Option<Target>,
    admin: Option<Target>,
    token: String,
    /// Spaces the messages to each chat.
    pacer: Pacer,
    max_flood_wait: Duration,
}

impl std::fmt::Debug for TelegramSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramSink").field("endpoint", &self.api.endpoint()).finish_non_exhaustive()
    }
}

/// One outgoing request: the method, its parameters, and what its errors concern.
struct Call<'a> {
    method: &'static str,
    params: Vec<(&'static str, String)>,
    document: Option<&'a Document>,
    /// The chat it posts to: paced, and named in errors.
    chat: Option<&'a Target>,
    /// Bytes uploaded, for the 413 message.
    size: u64,
}

impl<'a> Call<'a> {
    fn new(method: &'static str) -> Self {
        Call { method, params: Vec::new(), document: None, chat: None, size: 0 }
    }

    fn to(mut self, chat: &'a Target) -> Self {
        self.params.push(("chat_id", chat.id.clone()));
        self.chat = Some(chat);
        self
    }

    fn param(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
    }
}

impl TelegramSink {
    pub fn new(settings: &TelegramSettings) -> Result<TelegramSink, SinkError> {
        let mut sink = TelegramSink::downloader(&settings.bot_token, &settings.api_url, settings.messages_per_minute)?;
        sink.backup = Some(Target::new(&settings.backup_chat, "telegram.backup_chat_id"));
        sink.admin = settings.admin_chat.as_ref().map(|c| Target::new(c, "telegram.admin_chat_id"));
        sink.max_flood_wait = settings.max_flood_wait;
        Ok(sink)
    }

    /// A sink bound to no chat: it can only fetch files (`getFile` and download). All a
    /// restore after losing the server needs is the bot token.
    pub fn downloader(token: &Secret, api_url: &str, messages_per_minute: u32) -> Result<TelegramSink, SinkError> {
        let endpoint = api_url.trim_end_matches('/').to_string();
        let api = BotApi::new(api_url, token.expose())
            .map_err(|reason| SinkError::Unreachable { endpoint: endpoint.clone(), reason })?;
        Ok(TelegramSink {
            api,
            backup: None,
            admin: None,
            token: token.expose().to_string(),
            pacer: Pacer::per_minute(messages_per_minute),
            max_flood_wait: DEFAULT_MAX_FLOOD_WAIT,
        })
    }

    pub fn endpoint(&self) -> &str {
        self.api.endpoint()
    }

    /// A sink for `setup`, before any chat is known: only the methods that name their
    /// chat (`send_text_to`, `check_chat`) and `check`/`recent_chats` may be used.
    pub fn for_setup(bot_token: &crate::config::Secret, api_url: &str) -> Result<TelegramSink, SinkError> {
        TelegramSink::downloader(bot_token, api_url, 0)
    }

    /// Chats that wrote to the bot lately (getUpdates), newest last, without repeats.
    pub async fn recent_chats(&self) -> Result<Vec<(ChatRef, String)>, SinkError> {
        let updates: Vec<Update> = self.request(Call::new("getUpdates").param("timeout", "1")).await?;
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
        let target = Target::new(chat, "the chat id");
        self.send_html(&target, html).await
    }

    /// Checks that the bot may act in a chat, without posting anything (a chat action).
    pub async fn check_chat(&self, chat: &ChatRef, setting: &'static str) -> Result<(), SinkError> {
        let target = Target::new(chat, setting);
        let _: bool = self.request(Call::new("sendChatAction").to(&target).param("action", "upload_document")).await?;
        Ok(())
    }

    /// Removes the bot token from a text that may contain a Bot API URL.
    pub fn redact(&self, text: &str) -> String {
        redact_token(text, &self.token)
    }

    fn chat(&self, chat: Chat) -> Result<&Target, SinkError> {
        match chat {
            Chat::Backup => self
                .backup
                .as_ref()
                .ok_or_else(|| SinkError::Rejected("no backup chat is configured (telegram.backup_chat_id)".into())),
            Chat::Admin => self
                .admin
                .as_ref()
                .ok_or_else(|| SinkError::Rejected("no admin chat is configured (telegram.admin_chat_id)".into())),
        }
    }

    fn classify(&self, failure: Failure, call: &Call<'_>) -> SinkError {
        let endpoint = || self.endpoint().to_string();
        let chat_error = |reason: String| match call.chat {
            Some(chat) => SinkError::Chat { chat: chat.id.clone(), setting: chat.setting, reason },
            None => SinkError::Rejected(reason),
        };
        let (code, description, migrate_to) = match failure {
            Failure::Transient(reason) => return SinkError::Unreachable { endpoint: endpoint(), reason },
            Failure::RetryAfter(wait) => {
                return SinkError::FloodWait { secs: wait.as_secs(), max: self.max_flood_wait.as_secs() };
            }
            Failure::Io(reason) => return SinkError::Io(self.redact(&reason)),
            Failure::Garbled(reason) => return SinkError::Rejected(self.redact(&format!("{}: {reason}", endpoint()))),
            Failure::Api { code, description, migrate_to } => (code, description, migrate_to),
        };
        if let Some(id) = migrate_to {
            return chat_error(format!("the group became a supergroup with id {id}; set the chat id to {id}"));
        }
        match code {
            401 => return SinkError::Unauthorized { endpoint: endpoint() },
            // The cloud Bot API answers 404 to a token it does not know.
            404 if call.method != "download" => return SinkError::Unauthorized { endpoint: endpoint() },
            404 => return SinkError::UnknownFile(description),
            413 => {
                return SinkError::TooLarge {
                    endpoint: endpoint(),
                    size: call.size,
                    hint: if is_cloud_api(self.endpoint()) {
                        " (the cloud Bot API takes up to 50 MB; a self-hosted Bot API server takes up to 2000 MB)"
                    } else {
                        ""
                    },
                };
            }
            _ => {}
        }
        // teloxide knows the Bot API's error descriptions.
        let api: ApiError = serde_json::from_value(serde_json::Value::String(description.clone()))
            .unwrap_or_else(|_| ApiError::Unknown(description.clone()));
        match api {
            ApiError::InvalidToken => SinkError::Unauthorized { endpoint: endpoint() },
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
            _ if description.contains("file is too big") => SinkError::TooBigToDownload { endpoint: endpoint() },
            _ if code == 403 || description.contains("not enough rights") || description.starts_with("Forbidden") => {
                chat_error(description)
            }
            _ => SinkError::Rejected(self.redact(&description)),
        }
    }

    /// Runs a request to completion: waits out flood control (429 with `retry_after`, the
    /// one place that reads it) up to `telegram.max_flood_wait`, repeats it on the
    /// in-run backoff schedule while Telegram does not answer or answers 5xx, and keeps
    /// the proactive per-chat pacing.
    async fn request<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, SinkError> {
        self.retrying(&call, || self.api.call(call.method, &call.params, call.document)).await
    }

    async fn retrying<T, F, Fut>(&self, call: &Call<'_>, mut attempt: F) -> Result<T, SinkError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut flood_waits = 0;
        let mut outage = crate::backoff::IN_RUN.iter();
        loop {
            if let Some(chat) = call.chat {
                self.pacer.wait(&chat.id).await;
            }
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(Failure::RetryAfter(wait)) if wait <= self.max_flood_wait => {
                    if flood_waits == MAX_FLOOD_WAITS {
                        return Err(SinkError::Flooded(flood_waits));
                    }
                    flood_waits += 1;
                    let wait = wait.max(Duration::from_millis(100));
                    tracing::info!("Telegram flood control: waiting {}s before sending again", wait.as_secs_f32());
                    tokio::time::sleep(wait).await;
                }
                Err(Failure::Transient(reason)) => match outage.next() {
                    Some(wait) => {
                        tracing::warn!(
                            "the Telegram Bot API at {} did not answer {} ({reason}); trying again in {}s",
                            self.endpoint(),
                            call.method,
                            wait.as_secs()
                        );
                        tokio::time::sleep(*wait).await;
                    }
                    None => return Err(self.classify(Failure::Transient(reason), call)),
                },
                Err(failure) => return Err(self.classify(failure, call)),
            }
        }
    }

    /// Checks the token and that the API answers: `getMe`. Returns the bot's username.
    pub async fn check(&self) -> Result<String, SinkError> {
        let me: Me = self.request(Call::new("getMe")).await?;
        Ok(me.user.username.clone().unwrap_or_else(|| me.user.first_name.clone()))
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
        let len = tokio::fs::metadata(path)
            .await
            .map_err(|e| SinkError::Io(format!("cannot read the part file {}: {e}", path.display())))?
            .len();
        let document =
            Document { name: file_name.to_string(), body: Attachment::File { path: path.to_path_buf(), len } };
        self.send_document(chat, &document, caption, len).await
    }

    /// Sends a small in-memory document (a manifest).
    pub async fn send_bytes(&self, bytes: Vec<u8>, file_name: &str, caption: &str) -> Result<SentDocument, SinkError> {
        let size = bytes.len() as u64;
        let document = Document { name: file_name.to_string(), body: Attachment::Bytes(bytes.into()) };
        self.send_document(Chat::Backup, &document, caption, size).await
    }

    async fn send_document(
        &self,
        chat: Chat,
        document: &Document,
        caption: &str,
        size: u64,
    ) -> Result<SentDocument, SinkError> {
        let target = self.chat(chat)?;
        let mut call = Call::new("sendDocument")
            .to(target)
            .param("caption", caption)
            .param("parse_mode", "HTML")
            .param("disable_content_type_detection", "true");
        call.document = Some(document);
        call.size = size;
        let message: Message = self.request(call).await?;
        document_of(&message)
    }

    /// Sends an HTML text message; returns its message id.
    pub async fn send_text(&self, chat: Chat, html: &str) -> Result<i64, SinkError> {
        let target = self.chat(chat)?.clone();
        self.send_html(&target, html).await
    }

    async fn send_html(&self, target: &Target, html: &str) -> Result<i64, SinkError> {
        let message: Message =
            self.request(Call::new("sendMessage").to(target).param("text", html).param("parse_mode", "HTML")).await?;
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
        let file: teloxide::types::File = self.request(Call::new("getFile").param("file_id", file_id)).await?;
        let path = Path::new(&file.path);
        let source = if path.is_absolute() {
            if !path.exists() {
                return Err(SinkError::Io(format!(
                    "the Bot API server at {} keeps this file at {}, which does not exist on this machine; \
                     run the restore on the server's host (or mount its files at the same path)",
                    self.endpoint(),
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
                let call = Call::new("download");
                let mut response = self.retrying(&call, || self.api.download(path)).await?;
                loop {
                    let chunk = response.chunk().await.map_err(|e| SinkError::Unreachable {
                        endpoint: self.endpoint().to_string(),
                        reason: format!("the download broke off: {}", self.api.network_error(&e)),
                    })?;
                    let Some(chunk) = chunk else { break };
                    sink(&chunk).map_err(write_error)?;
                    total += chunk.len() as u64;
                }
            }
        }
        Ok(total)
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
    fn the_default_flood_wait_is_the_settings_default() {
        let setting = crate::config::settings::find("telegram.max_flood_wait").unwrap();
        let crate::config::Fallback::Value(default) = setting.fallback else { panic!("no default") };
        assert_eq!(humantime::parse_duration(default).unwrap(), DEFAULT_MAX_FLOOD_WAIT);
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
