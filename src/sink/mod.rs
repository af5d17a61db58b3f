//! The Telegram side: documents and messages through the Bot API, by one bot or several.
//! The only module that speaks Telegram.
//!
//! Handled here once for every caller:
//! - **Several bots.** Telegram's flood limit (about 20 messages a minute into a group)
//!   is per bot: every configured bot may send into the same chats. A document goes out
//!   through whichever bot's turn in its chat comes first ([`pace`]); what it returns
//!   says which bot sent it, because file ids belong to the bot that received the file
//!   and only that bot can download it again ([`files`]). Alerts, the heartbeat and
//!   setup use the first bot.
//! - **Flood control.** A 429 answer means "wait `retry_after` seconds", which is not a
//!   failure: that bot waits its turn in that chat, and the request goes out again
//!   through whichever bot is free first. Messages are also spaced proactively per bot
//!   and chat.
//! - **Outages.** No answer, or a 5xx, is repeated on the in-run backoff schedule; then
//!   it is an outage (the run stops, counting no attempt).
//! - **Tokens.** Every bot's token appears in its Bot API URLs, and so in reqwest's
//!   errors: all of them are redacted before any error leaves this module.

pub mod api;
pub mod caption;
mod files;
pub mod pace;

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use teloxide::ApiError;
use teloxide::types::{Me, Message, Update};

use crate::config::{ChatRef, Destination, Secret, TelegramSettings, bot_id, is_cloud_api};
use api::{Attachment, BotApi, CallError, Document};
pub use files::{FileSource, RemoteFile};
use pace::Pacer;

/// How many times one request is repeated after 429 answers before giving up.
const MAX_FLOOD_WAITS: u32 = 30;
/// The longest flood wait a sink built without settings (setup, restore) sits out: the
/// default of `telegram.max_flood_wait`.
const DEFAULT_MAX_FLOOD_WAIT: Duration = Duration::from_secs(10 * 60);

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
    pub fn is_config(&self) -> bool {
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
    /// The bot that sent it: the only one that can download it again.
    pub bot_id: i64,
    /// Where Telegram put it, as its answer says.
    pub landed: Landed,
}

/// A message Telegram accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentMessage {
    pub message_id: i64,
    pub bot_id: i64,
    /// Where Telegram put it, as its answer says.
    pub landed: Landed,
}

/// Where Telegram put a message, read from its answer (`chat.id`, and
/// `message_thread_id` when `is_topic_message`): what the ledger records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Landed {
    pub chat: i64,
    pub topic: Option<i64>,
}

/// A chat (and forum topic) as requests name it, with the setting errors point to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The `chat_id` parameter: a number, or `@channel`.
    id: String,
    topic: Option<i64>,
    setting: String,
    /// Failing to post here stops a run (the default chat), rather than one delivery.
    fatal: bool,
}

impl Target {
    /// A destination, named in errors by the setting that chose it.
    pub fn new(dest: &Destination, setting: impl Into<String>, fatal: bool) -> Target {
        Target { id: dest.chat.to_string(), topic: dest.topic, setting: setting.into(), fatal }
    }

    fn chat(chat: &ChatRef, setting: impl Into<String>) -> Target {
        Target { id: chat.to_string(), topic: None, setting: setting.into(), fatal: true }
    }
}

/// What `getChat` says of a chat, as far as tgploy needs it (`JsonChat` in
/// telegram-bot-api's `Client.cpp`: `is_forum` is present, and true, for forum
/// supergroups only).
#[derive(Debug, serde::Deserialize)]
struct ChatInfo {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    is_forum: bool,
}

/// One bot: its id and its own connection to the Bot API.
struct Bot {
    id: i64,
    api: BotApi,
}

/// The bots, bound to the admin chat when one is configured.
pub struct TelegramSink {
    bots: Vec<Bot>,
    admin: Option<Target>,
    endpoint: String,
    tokens: Vec<String>,
    /// Spaces the messages of each bot to each chat.
    pacer: Pacer,
    max_flood_wait: Duration,
}

impl std::fmt::Debug for TelegramSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bots: Vec<i64> = self.bots.iter().map(|b| b.id).collect();
        f.debug_struct("TelegramSink").field("endpoint", &self.endpoint).field("bots", &bots).finish_non_exhaustive()
    }
}

/// Which bot a request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Through {
    /// This one (by index): getMe of each bot, downloads, the admin chat, setup.
    Bot(usize),
    /// Whichever bot's turn in the request's chat comes first.
    FirstFree,
}

/// One outgoing request: the method, its parameters, and what its errors concern.
struct Call<'a> {
    method: &'static str,
    params: Vec<(&'static str, String)>,
    document: Option<&'a Document>,
    /// The chat it posts to: paced, and named in errors.
    chat: Option<&'a Target>,
}

impl<'a> Call<'a> {
    fn new(method: &'static str) -> Self {
        Call { method, params: Vec::new(), document: None, chat: None }
    }

    fn to(mut self, chat: &'a Target) -> Self {
        self.params.push(("chat_id", chat.id.clone()));
        if let Some(topic) = chat.topic {
            self.params.push(("message_thread_id", topic.to_string()));
        }
        self.chat = Some(chat);
        self
    }

    fn param(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
    }
}

impl TelegramSink {
    /// Every configured bot, bound to the admin chat when one is configured.
    pub fn new(settings: &TelegramSettings) -> Result<TelegramSink, SinkError> {
        let mut sink = TelegramSink::downloader(&settings.bots, &settings.api_url, settings.messages_per_minute)?;
        sink.admin = settings.admin.as_ref().map(|d| Target::new(d, "telegram.admin_chat_id", false));
        sink.max_flood_wait = settings.max_flood_wait;
        Ok(sink)
    }

    /// Bots bound to no chat: they can fetch files, and send where told. All a restore
    /// after losing the server needs is the tokens.
    pub fn downloader(tokens: &[Secret], api_url: &str, messages_per_minute: u32) -> Result<TelegramSink, SinkError> {
        let endpoint = api_url.trim_end_matches('/').to_string();
        let mut bots = Vec::with_capacity(tokens.len());
        for token in tokens {
            let api = BotApi::new(api_url, token.expose()).map_err(|e| match e {
                api::BuildError::Url(reason) => SinkError::BadUrl { endpoint: endpoint.clone(), reason },
                api::BuildError::Client(reason) => SinkError::Io(reason),
            })?;
            bots.push(Bot { id: bot_id(token).unwrap_or_default(), api });
        }
        if bots.is_empty() {
            return Err(SinkError::Rejected("no bot token is configured".into()));
        }
        Ok(TelegramSink {
            bots,
            admin: None,
            endpoint,
            tokens: tokens.iter().map(|t| t.expose().to_string()).collect(),
            pacer: Pacer::per_minute(messages_per_minute),
            max_flood_wait: DEFAULT_MAX_FLOOD_WAIT,
        })
    }

    /// One bot, for `setup`, before any chat is known.
    pub fn for_setup(bot_token: &Secret, api_url: &str) -> Result<TelegramSink, SinkError> {
        TelegramSink::downloader(std::slice::from_ref(bot_token), api_url, 0)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bots' ids, the first first.
    pub fn bot_ids(&self) -> Vec<i64> {
        self.bots.iter().map(|b| b.id).collect()
    }

    /// Removes every bot token from a text that may contain a Bot API URL.
    pub fn redact(&self, text: &str) -> String {
        self.tokens.iter().fold(text.to_string(), |text, token| redact_token(&text, token))
    }

    /// Chats that wrote to the first bot lately (getUpdates), newest last, without
    /// repeats.
    pub async fn recent_chats(&self) -> Result<Vec<(ChatRef, String)>, SinkError> {
        let (updates, _): (Vec<Update>, _) =
            self.request(Call::new("getUpdates").param("timeout", "1"), Through::Bot(0)).await?;
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

    /// Sends an HTML message to a chat named explicitly, through the first bot (setup's
    /// test message).
    pub async fn send_text_to(&self, chat: &ChatRef, html: &str) -> Result<i64, SinkError> {
        let target = Target::chat(chat, "the chat id");
        Ok(self.send_html(&target, html, Through::Bot(0)).await?.message_id)
    }

    /// Checks that a bot (by index) may post to a destination. The chat is checked with a
    /// chat action, which posts nothing. A topic needs more, since a chat action does not
    /// check topics (telegram-bot-api's `process_send_chat_action_query` checks the chat
    /// only) and Telegram drops a topic outside forums: `getChat` must say the chat is a
    /// forum; then, with `probe`, a message is posted in the topic (a send is the request
    /// that checks a topic: `check_message_topic`) and deleted at once. Returns a note when
    /// that message could not be deleted.
    pub async fn check_destination(
        &self,
        bot: usize,
        dest: &Destination,
        setting: &str,
        probe: bool,
    ) -> Result<Option<String>, SinkError> {
        let target = Target::new(dest, setting, true);
        let call = Call::new("sendChatAction").to(&target).param("action", "upload_document");
        let _: (bool, _) = self.request(call, Through::Bot(bot)).await?;
        let Some(topic) = dest.topic else { return Ok(None) };
        let call = Call::new("getChat").param("chat_id", target.id.clone());
        let (chat, _): (ChatInfo, _) = self.request(call, Through::Bot(bot)).await?;
        if !chat.is_forum && chat.kind != "private" {
            return Err(SinkError::NotForum {
                chat: target.id.clone(),
                kind: chat.kind,
                topic,
                setting: setting.to_string(),
            });
        }
        if !probe {
            return Ok(None);
        }
        let text =
            format!("tgploy doctor: checking that topic {topic} takes messages; this message is deleted at once");
        let sent = self.send_html(&target, &crate::html::escape_html(&text), Through::Bot(bot)).await?;
        let delete = Call::new("deleteMessage")
            .param("chat_id", sent.landed.chat.to_string())
            .param("message_id", sent.message_id.to_string());
        Ok(match self.request::<bool>(delete, Through::Bot(bot)).await {
            Ok(_) => None,
            Err(e) => {
                Some(format!("its test message {} could not be deleted ({e}); delete it by hand", sent.message_id))
            }
        })
    }

    /// Checks the tokens and that the API answers: `getMe` of every bot. Returns each
    /// bot's id and username.
    pub async fn check(&self) -> Result<Vec<(i64, String)>, SinkError> {
        let mut bots = Vec::with_capacity(self.bots.len());
        for (i, bot) in self.bots.iter().enumerate() {
            bots.push((bot.id, self.check_bot(i).await?));
        }
        Ok(bots)
    }

    /// `getMe` of one bot (by index): its username.
    pub async fn check_bot(&self, bot: usize) -> Result<String, SinkError> {
        let (me, _): (Me, _) = self.request(Call::new("getMe"), Through::Bot(bot)).await?;
        Ok(me.user.username.clone().unwrap_or_else(|| me.user.first_name.clone()))
    }

    /// Sends a file from disk as a document to `dest`, through whichever bot is free
    /// first. The file is streamed, not buffered.
    pub async fn send_file(
        &self,
        dest: &Target,
        path: &Path,
        file_name: &str,
        caption: &str,
    ) -> Result<SentDocument, SinkError> {
        let document = file_document(path, file_name).await?;
        self.send_document(dest, &document, caption, Through::FirstFree).await
    }

    /// Sends a file from disk to the admin chat, through the first bot.
    pub async fn send_file_to_admin(
        &self,
        path: &Path,
        file_name: &str,
        caption: &str,
    ) -> Result<SentDocument, SinkError> {
        let admin = self.admin()?.clone();
        let document = file_document(path, file_name).await?;
        self.send_document(&admin, &document, caption, Through::Bot(0)).await
    }

    /// Sends a small in-memory document (a manifest) to `dest`.
    pub async fn send_bytes(
        &self,
        dest: &Target,
        bytes: Vec<u8>,
        file_name: &str,
        caption: &str,
    ) -> Result<SentDocument, SinkError> {
        let document = Document { name: file_name.to_string(), body: Attachment::Bytes(bytes.into()) };
        self.send_document(dest, &document, caption, Through::FirstFree).await
    }

    async fn send_document(
        &self,
        target: &Target,
        document: &Document,
        caption: &str,
        through: Through,
    ) -> Result<SentDocument, SinkError> {
        let mut call = Call::new("sendDocument")
            .to(target)
            .param("caption", caption)
            .param("parse_mode", "HTML")
            .param("disable_content_type_detection", "true");
        call.document = Some(document);
        let (message, bot): (Message, usize) = self.request(call, through).await?;
        crate::metrics::count(crate::metrics::DOCUMENTS_SENT, &[], 1.0);
        let landed = self.check_landed(target, &message, bot).await?;
        document_of(&message, self.bots[bot].id, landed)
    }

    /// Sends an HTML text message to `dest` through whichever bot is free first (an
    /// empty object's stand-in).
    pub async fn send_text(&self, dest: &Target, html: &str) -> Result<SentMessage, SinkError> {
        self.send_html(dest, html, Through::FirstFree).await
    }

    /// Sends an HTML text message to the admin chat through the first bot.
    pub async fn send_admin_text(&self, html: &str) -> Result<i64, SinkError> {
        let admin = self.admin()?.clone();
        Ok(self.send_html(&admin, html, Through::Bot(0)).await?.message_id)
    }

    async fn send_html(&self, target: &Target, html: &str, through: Through) -> Result<SentMessage, SinkError> {
        let call = Call::new("sendMessage").to(target).param("text", html).param("parse_mode", "HTML");
        let (message, bot): (Message, usize) = self.request(call, through).await?;
        let landed = self.check_landed(target, &message, bot).await?;
        Ok(SentMessage { message_id: i64::from(message.id.0), bot_id: self.bots[bot].id, landed })
    }

    /// Checks that Telegram put a message where it was asked to, from what its answer says:
    /// the chat, and the topic. Since Bot API 9.3 a `message_thread_id` is checked only in
    /// forum supergroups (and private chats); anywhere else Telegram drops it and posts to
    /// the main chat, answering as if all went well. A message that landed elsewhere is
    /// deleted (a bot may delete its own messages) and the send fails, naming the setting.
    async fn check_landed(&self, target: &Target, message: &Message, bot: usize) -> Result<Landed, SinkError> {
        let landed = Landed {
            chat: message.chat.id.0,
            topic: message.thread_id.filter(|_| message.is_topic_message).map(|t| i64::from(t.0.0)),
        };
        let same_chat = match target.id.parse::<i64>() {
            Ok(id) => id == landed.chat,
            Err(_) => {
                message.chat.username().is_some_and(|name| name.eq_ignore_ascii_case(target.id.trim_start_matches('@')))
            }
        };
        if same_chat && landed.topic == target.topic {
            return Ok(landed);
        }
        let place = |chat: &str, topic: Option<i64>| match topic {
            Some(topic) => format!("topic {topic} of chat {chat}"),
            None => format!("the main chat of {chat}"),
        };
        let why = match (same_chat, target.topic, landed.topic) {
            (true, Some(_), None) => format!(
                ": chat {} is not a forum (a supergroup with topics), and Telegram drops a topic outside forums",
                target.id
            ),
            _ => String::new(),
        };
        let message_id = i64::from(message.id.0);
        let delete = Call::new("deleteMessage")
            .param("chat_id", landed.chat.to_string())
            .param("message_id", message_id.to_string());
        let cleanup = match self.request::<bool>(delete, Through::Bot(bot)).await {
            Ok(_) => format!("the stray message {message_id} was deleted"),
            Err(e) => format!(
                "the stray message {message_id} could not be deleted ({e}): delete it in chat {} by hand",
                landed.chat
            ),
        };
        tracing::warn!(
            "bot {}: message {message_id} landed in chat {} topic {:?}, not where asked",
            self.bots[bot].id,
            landed.chat,
            landed.topic
        );
        Err(SinkError::Misplaced {
            placed: format!(
                "{} instead of {}{why}",
                place(&landed.chat.to_string(), landed.topic),
                place(&target.id, target.topic)
            ),
            setting: target.setting.clone(),
            cleanup,
            fatal: target.fatal,
        })
    }

    fn admin(&self) -> Result<&Target, SinkError> {
        self.admin
            .as_ref()
            .ok_or_else(|| SinkError::Rejected("no admin chat is configured (telegram.admin_chat_id)".into()))
    }

    fn classify(&self, failure: CallError, call: &Call<'_>, bot: usize) -> SinkError {
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

    /// Runs a request to completion through a bot; returns the answer and the bot (by
    /// index) that got it.
    async fn request<T: DeserializeOwned>(&self, call: Call<'_>, through: Through) -> Result<(T, usize), SinkError> {
        self.retrying(&call, through, |bot| self.bots[bot].api.call(call.method, &call.params, call.document)).await
    }

    /// Waits out flood control (429 with `retry_after`, the one place that reads it) up
    /// to `telegram.max_flood_wait` — that bot waits its turn, and the request goes out
    /// through whichever bot is free first —, repeats a request on the in-run backoff
    /// schedule while Telegram does not answer or answers 5xx, and keeps the pacing of
    /// each bot in each chat.
    async fn retrying<T, F, Fut>(
        &self,
        call: &Call<'_>,
        through: Through,
        mut attempt: F,
    ) -> Result<(T, usize), SinkError>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let mut flood_waits = 0;
        let mut outage = crate::backoff::IN_RUN.iter();
        loop {
            let bot = self.turn(call, through).await;
            match attempt(bot).await {
                Ok(v) => return Ok((v, bot)),
                Err(CallError::RetryAfter(wait)) if wait <= self.max_flood_wait => {
                    if flood_waits == MAX_FLOOD_WAITS {
                        return Err(SinkError::Flooded(flood_waits));
                    }
                    flood_waits += 1;
                    let wait = wait.max(Duration::from_millis(100));
                    crate::metrics::count(crate::metrics::FLOOD_WAIT_SECONDS, &[], wait.as_secs_f64());
                    tracing::info!(
                        "Telegram flood control: bot {} waits {}s before it sends again",
                        self.bots[bot].id,
                        wait.as_secs_f32()
                    );
                    match call.chat {
                        Some(chat) if through == Through::FirstFree => {
                            self.pacer.hold(&pace_key(self.bots[bot].id, &chat.id), Instant::now() + wait);
                        }
                        _ => tokio::time::sleep(wait).await,
                    }
                }
                Err(CallError::Transient(reason)) => match outage.next() {
                    Some(wait) => {
                        tracing::warn!(
                            "the Telegram Bot API at {} did not answer {} ({}); trying again in {}s",
                            self.endpoint(),
                            call.method,
                            self.redact(&reason),
                            wait.as_secs()
                        );
                        tokio::time::sleep(*wait).await;
                    }
                    None => return Err(self.classify(CallError::Transient(self.redact(&reason)), call, bot)),
                },
                Err(failure) => return Err(self.classify(failure, call, bot)),
            }
        }
    }

    /// The bot a request goes through now, after waiting for its turn in the request's
    /// chat.
    async fn turn(&self, call: &Call<'_>, through: Through) -> usize {
        let Some(chat) = call.chat else {
            return match through {
                Through::Bot(bot) => bot,
                Through::FirstFree => 0,
            };
        };
        let (bot, slot) = match through {
            Through::Bot(bot) => (bot, self.pacer.take(&pace_key(self.bots[bot].id, &chat.id), Instant::now())),
            Through::FirstFree => {
                let keys: Vec<String> = self.bots.iter().map(|b| pace_key(b.id, &chat.id)).collect();
                self.pacer.take_first_free(&keys, Instant::now())
            }
        };
        tokio::time::sleep_until(slot.into()).await;
        bot
    }
}

/// The pacing key of a bot in a chat.
fn pace_key(bot: i64, chat: &str) -> String {
    format!("{bot}:{chat}")
}

async fn file_document(path: &Path, file_name: &str) -> Result<Document, SinkError> {
    let len = tokio::fs::metadata(path)
        .await
        .map_err(|e| SinkError::Io(format!("cannot read the part file {}: {e}", path.display())))?
        .len();
    Ok(Document { name: file_name.to_string(), body: Attachment::File { path: path.to_path_buf(), len } })
}

fn document_of(message: &Message, bot_id: i64, landed: Landed) -> Result<SentDocument, SinkError> {
    let doc = message
        .document()
        .ok_or_else(|| SinkError::Rejected("Telegram answered without a document in the message".into()))?;
    Ok(SentDocument {
        message_id: i64::from(message.id.0),
        file_id: doc.file.id.0.clone(),
        file_unique_id: doc.file.unique_id.0.clone(),
        bot_id,
        landed,
    })
}

/// Replaces a bot token (and its secret half, in case a URL was split) with `***`.
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

    #[test]
    fn every_bots_token_is_redacted() {
        let tokens = [Secret::new("111:AAAAAAAAAAAAone"), Secret::new("222:BBBBBBBBBBBBtwo")];
        let sink = TelegramSink::downloader(&tokens, "http://127.0.0.1:1", 0).unwrap();
        assert_eq!(sink.bot_ids(), [111, 222]);
        assert_eq!(sink.redact("x/bot111:AAAAAAAAAAAAone/y x/bot222:BBBBBBBBBBBBtwo/z"), "x/bot***/y x/bot***/z");
    }
}
