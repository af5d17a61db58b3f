//! The Telegram side: documents and messages through the Bot API (teloxide). The only
//! module that speaks Telegram.
//!
//! Two things are handled here once for every caller: flood control (a 429 answer means
//! "wait `retry_after` seconds and send the same thing again", which is not a failure,
//! plus a proactive per-chat throttle), and the bot token, which appears in every Bot API
//! URL and so in reqwest's errors: it is redacted before any error leaves this module.

pub mod caption;

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use teloxide::payloads::GetUpdatesSetters;
use teloxide::payloads::{SendDocumentSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{ChatAction, ChatId, InputFile, Message, ParseMode, Recipient};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::Mutex;

use crate::config::{ChatRef, TelegramSettings, is_cloud_api};

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
    backup: Recipient,
    backup_label: String,
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
        let endpoint = settings.api_url.trim_end_matches('/').to_string();
        // teloxide's default client gives up on any request after 17 s, which kills the
        // upload of a large part on a slow line: connect and read timeouts only.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| SinkError::Io(format!("cannot build the HTTP client: {e}")))?;
        let url = reqwest::Url::parse(&settings.api_url)
            .map_err(|e| SinkError::Unreachable { endpoint: endpoint.clone(), reason: format!("invalid URL: {e}") })?;
        let bot = Bot::with_client(settings.bot_token.expose(), client).set_api_url(url);
        let min_interval = match settings.messages_per_minute {
            0 => Duration::ZERO,
            n => Duration::from_secs_f64(60.0 / f64::from(n)),
        };
        Ok(TelegramSink {
            bot,
            backup: recipient(&settings.backup_chat),
            backup_label: settings.backup_chat.to_string(),
            admin: settings.admin_chat.as_ref().map(|c| (recipient(c), c.to_string())),
            endpoint,
            token: settings.bot_token.expose().to_string(),
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
            Chat::Backup => Ok((&self.backup, &self.backup_label, "telegram.backup_chat_id")),
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
                let mut reason = e.to_string();
                let mut source = std::error::Error::source(&*e);
                while let Some(s) = source {
                    reason.push_str(": ");
                    reason.push_str(&s.to_string());
                    source = s.source();
                }
                SinkError::Unreachable { endpoint: self.endpoint.clone(), reason: self.redact(&reason) }
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
                other => {
                    let text = other.to_string();
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
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.send_document(|| InputFile::file(path.to_path_buf()).file_name(file_name.to_string()), caption, size).await
    }

    /// Sends a small in-memory document (a manifest).
    pub async fn send_bytes(&self, bytes: Vec<u8>, file_name: &str, caption: &str) -> Result<SentDocument, SinkError> {
        let size = bytes.len() as u64;
        let bytes = bytes::Bytes::from(bytes);
        self.send_document(|| InputFile::memory(bytes.clone()).file_name(file_name.to_string()), caption, size).await
    }

    async fn send_document(
        &self,
        input: impl Fn() -> InputFile,
        caption: &str,
        size: u64,
    ) -> Result<SentDocument, SinkError> {
        let (chat, label, setting) = self.chat(Chat::Backup)?;
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
    fn redacts_whole_token_and_secret_half() {
        let t = "123456:ABCdef-ghiJKL";
        assert_eq!(
            redact_token("error sending request for url (http://x/bot123456:ABCdef-ghiJKL/SendDocument)", t),
            "error sending request for url (http://x/bot***/SendDocument)"
        );
        assert_eq!(redact_token("…ABCdef-ghiJKL…", t), "…***…");
    }
}
