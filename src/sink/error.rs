//! What can go wrong on the Telegram side, and what each answer of the Bot API means: a
//! class for each (an outage, a setting to fix, one delivery's failure), every bot token
//! redacted first.

use teloxide::ApiError;

use super::TelegramSink;
use super::api::{CallError, Document};
use super::limits::is_cloud_api;
use super::request::Call;

/// An error from the Telegram side, with every bot token already redacted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("cannot reach the Telegram Bot API at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// `telegram.api_url` is no URL a request can go to.
    #[error("the Telegram Bot API URL {endpoint} is not valid ({reason}); check `telegram.api_url` (TELEGRAM_API_URL)")]
    BadUrl { endpoint: String, reason: String },
    #[error(
        "the Telegram Bot API at {endpoint} rejected the bot token of bot {bot}; check `telegram.bot_token`, \
         `telegram.bot_tokens` (TELEGRAM_BOT_TOKEN, TELEGRAM_BOT_TOKENS): the tokens @BotFather gave"
    )]
    Unauthorized { endpoint: String, bot: i64 },
    #[error(
        "Telegram cannot post to chat {chat} as bot {bot}: {reason}; check `{setting}` and that every bot is a member \
         allowed to post"
    )]
    Chat {
        chat: String,
        bot: i64,
        setting: String,
        reason: String,
        /// The default chat: nothing can be delivered until it is fixed.
        fatal: bool,
    },
    /// A forum topic that does not exist (or the General topic, which takes no id).
    #[error(
        "Telegram has no topic {topic} in chat {chat} (it answered `{reason}`); check `{setting}`: a topic id \
         needs a forum supergroup that has it"
    )]
    Topic { chat: String, topic: i64, setting: String, reason: String },
    /// A destination with a topic in a chat that is no forum: Telegram would post to the
    /// main chat.
    #[error(
        "chat {chat} is a {kind} without topics, not a forum: Telegram would post to its main chat, not topic \
         {topic}; turn topics on in the group, or remove `{setting}`"
    )]
    NotForum { chat: String, kind: String, topic: i64, setting: String },
    /// Telegram accepted a message but put it elsewhere than asked: since Bot API 9.3 a
    /// topic in a chat that is no forum is dropped without an error, and the message lands
    /// in the main chat. Nothing is recorded there; the stray message is deleted.
    #[error("Telegram posted to {placed}; check `{setting}`; {cleanup}")]
    Misplaced {
        /// Where it went instead of where it was asked to go, and why.
        placed: String,
        setting: String,
        /// What became of the stray message.
        cleanup: String,
        /// The default chat: nothing can be delivered until it is fixed.
        fatal: bool,
    },
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
        "the Bot API at {endpoint} answered `file is too big`: it hands out files up to its download limit (20 MiB on the cloud Bot API)"
    )]
    TooBigToDownload { endpoint: String },
    /// `getFile` does not know the file id (wrong, or from another bot).
    #[error("Telegram does not know this file id (it was sent by another bot, or deleted): getFile answered `{0}`")]
    UnknownFile(String),
    /// The download of a file `getFile` located was refused (its link expired, or the file
    /// server does not serve it); `fresh` when even a link asked for right before was.
    #[error(
        "the download was refused (HTTP {status}){}",
        if *fresh {
            " although getFile had just located the file: Telegram's file server does not hand it out now; try again later"
        } else {
            ": its link expired"
        }
    )]
    LinkRefused { status: u16, fresh: bool },
    /// A file sent by a bot whose token is no longer configured.
    #[error(
        "it was sent by bot {0}, whose token is no longer configured: add it to `telegram.bot_tokens` \
         (TELEGRAM_BOT_TOKENS), since only that bot can download it"
    )]
    UnknownBot(i64),
    #[error("{0}")]
    Io(String),
}

impl SinkError {
    /// Errors that no retry can fix without the operator changing the configuration.
    pub(crate) fn is_config(&self) -> bool {
        matches!(
            self,
            SinkError::Unauthorized { .. }
                | SinkError::BadUrl { .. }
                | SinkError::Chat { fatal: true, .. }
                | SinkError::Misplaced { fatal: true, .. }
        )
    }

    /// Telegram is down, or will not take anything for longer than a run should wait:
    /// the run stops, counts no attempt, and the next run resumes.
    pub(crate) fn is_outage(&self) -> bool {
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

impl TelegramSink {
    /// What a failed request means, named by the setting and chat it concerns.
    pub(super) fn classify(&self, failure: CallError, call: &Call<'_>, bot: usize) -> SinkError {
        let endpoint = || self.endpoint().to_string();
        let bot_id = self.bots[bot].id;
        let chat_error = |reason: String| match call.chat {
            Some(chat) => SinkError::Chat {
                chat: chat.id.clone(),
                bot: bot_id,
                setting: chat.setting.clone(),
                reason,
                fatal: chat.fatal,
            },
            None => SinkError::Rejected(reason),
        };
        let (code, description, migrate_to) = match failure {
            CallError::Transient(reason) => return SinkError::Unreachable { endpoint: endpoint(), reason },
            CallError::RetryAfter(wait) => {
                return SinkError::FloodWait { secs: wait.as_secs(), max: self.max_flood_wait.as_secs() };
            }
            CallError::Io(reason) => return SinkError::Io(self.redact(&reason)),
            CallError::Garbled(reason) => {
                return SinkError::Rejected(self.redact(&format!("{}: {reason}", endpoint())));
            }
            CallError::Api { code, description, migrate_to } => (code, description, migrate_to),
        };
        if let Some(id) = migrate_to {
            return chat_error(format!("the group became a supergroup with id {id}; set the chat id to {id}"));
        }
        match code {
            401 => return SinkError::Unauthorized { endpoint: endpoint(), bot: bot_id },
            // A refused download says nothing about the file id: its link may have expired.
            _ if call.method == "download" => return SinkError::LinkRefused { status: code, fresh: false },
            // The cloud Bot API answers 404 to a token it does not know.
            404 => return SinkError::Unauthorized { endpoint: endpoint(), bot: bot_id },
            413 => {
                return SinkError::TooLarge {
                    endpoint: endpoint(),
                    size: call.document.map_or(0, Document::len),
                    hint: if is_cloud_api(self.endpoint()) {
                        " (the cloud Bot API takes up to 50 MB; a self-hosted Bot API server takes up to 2000 MB)"
                    } else {
                        ""
                    },
                };
            }
            _ => {}
        }
        if description.contains("message thread not found")
            && let Some(chat) = call.chat
        {
            return SinkError::Topic {
                chat: chat.id.clone(),
                topic: chat.topic.unwrap_or_default(),
                setting: chat.setting.clone(),
                reason: description,
            };
        }
        // teloxide knows the Bot API's error descriptions.
        let api: ApiError = serde_json::from_value(serde_json::Value::String(description.clone()))
            .unwrap_or_else(|_| ApiError::Unknown(description.clone()));
        match api {
            ApiError::InvalidToken => SinkError::Unauthorized { endpoint: endpoint(), bot: bot_id },
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
}
