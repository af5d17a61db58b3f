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

pub(crate) mod api;
pub mod caption;
mod error;
mod files;
pub(crate) mod html;
pub mod limits;
pub(crate) mod pace;
mod request;
mod send;

use std::time::Duration;

use teloxide::types::{Me, Update};

use crate::config::{ChatRef, Destination, Secret, TelegramSettings};
use api::BotApi;
pub(crate) use error::SinkError;
pub(crate) use files::{FileSource, RemoteFile};
use limits::bot_id;
use pace::Pacer;
use request::{Call, Through};
pub(crate) use send::SentDocument;

/// How many times one request is repeated after 429 answers before giving up.
const MAX_FLOOD_WAITS: u32 = 30;
/// The longest flood wait a sink built without settings (setup, restore) sits out: the
/// default of `telegram.max_flood_wait`.
const DEFAULT_MAX_FLOOD_WAIT: Duration = Duration::from_secs(10 * 60);

/// A chat (and forum topic) as requests name it, with the setting errors point to.
#[derive(Debug, Clone)]
pub struct Addressee {
    /// The `chat_id` parameter: a number, or `@channel`.
    id: String,
    topic: Option<i64>,
    setting: String,
    /// Failing to post here stops a run (the default chat), rather than one delivery.
    fatal: bool,
}

impl Addressee {
    /// A destination, named in errors by the setting that chose it.
    pub fn new(dest: &Destination, setting: impl Into<String>, fatal: bool) -> Addressee {
        Addressee { id: dest.chat.to_string(), topic: dest.topic, setting: setting.into(), fatal }
    }

    fn chat(chat: &ChatRef, setting: impl Into<String>) -> Addressee {
        Addressee { id: chat.to_string(), topic: None, setting: setting.into(), fatal: true }
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
    admin: Option<Addressee>,
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

impl TelegramSink {
    /// Every configured bot, bound to the admin chat when one is configured.
    pub fn new(settings: &TelegramSettings) -> Result<TelegramSink, SinkError> {
        let mut sink = TelegramSink::downloader(&settings.bots, &settings.api_url, settings.messages_per_minute)?;
        sink.admin = settings.admin.as_ref().map(|d| Addressee::new(d, "telegram.admin_chat_id", false));
        sink.max_flood_wait = settings.max_flood_wait;
        Ok(sink)
    }

    /// Bots bound to no chat: they can fetch files, and send where told. All a restore
    /// after losing the server needs is the tokens.
    pub(crate) fn downloader(
        tokens: &[Secret],
        api_url: &str,
        messages_per_minute: u32,
    ) -> Result<TelegramSink, SinkError> {
        let endpoint = api_url.trim_end_matches('/').to_string();
        let mut bots = Vec::with_capacity(tokens.len());
        for token in tokens {
            let api = BotApi::new(api_url, token.expose()).map_err(|e| match e {
                api::BuildError::Url(reason) => SinkError::BadUrl { endpoint: endpoint.clone(), reason },
                api::BuildError::Client(reason) => SinkError::Io(reason),
            })?;
            bots.push(Bot { id: bot_id(token.expose()).unwrap_or_default(), api });
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
    pub(crate) fn for_setup(bot_token: &Secret, api_url: &str) -> Result<TelegramSink, SinkError> {
        TelegramSink::downloader(std::slice::from_ref(bot_token), api_url, 0)
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bots' ids, the first first.
    pub(crate) fn bot_ids(&self) -> Vec<i64> {
        self.bots.iter().map(|b| b.id).collect()
    }

    /// Removes every bot token from a text that may contain a Bot API URL.
    pub fn redact(&self, text: &str) -> String {
        self.tokens.iter().fold(text.to_string(), |text, token| crate::config::redact(&text, token))
    }

    /// Chats that wrote to the first bot lately (getUpdates), newest last, without
    /// repeats.
    pub(crate) async fn recent_chats(&self) -> Result<Vec<(ChatRef, String)>, SinkError> {
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
    pub(crate) async fn send_text_to(&self, chat: &ChatRef, html: &str) -> Result<i64, SinkError> {
        let target = Addressee::chat(chat, "the chat id");
        Ok(self.send_html(&target, html, Through::Bot(0)).await?.message_id)
    }

    /// Checks that a bot (by index) may post to a destination. The chat is checked with a
    /// chat action, which posts nothing. A topic needs more, since a chat action does not
    /// check topics (telegram-bot-api's `process_send_chat_action_query` checks the chat
    /// only) and Telegram drops a topic outside forums: `getChat` must say the chat is a
    /// forum; then, with `probe`, a message is posted in the topic (a send is the request
    /// that checks a topic: `check_message_topic`) and deleted at once. Returns a note when
    /// that message could not be deleted.
    pub(crate) async fn check_destination(
        &self,
        bot: usize,
        dest: &Destination,
        setting: &str,
        probe: bool,
    ) -> Result<Option<String>, SinkError> {
        let target = Addressee::new(dest, setting, true);
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
        let sent = self.send_html(&target, &crate::sink::html::escape_html(&text), Through::Bot(bot)).await?;
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
    pub(crate) async fn check(&self) -> Result<Vec<(i64, String)>, SinkError> {
        let mut bots = Vec::with_capacity(self.bots.len());
        for (i, bot) in self.bots.iter().enumerate() {
            bots.push((bot.id, self.check_bot(i).await?));
        }
        Ok(bots)
    }

    /// The Bot API server's clock against this machine's (its `Date` header); `None`
    /// when it sends none.
    pub(crate) async fn clocks(&self) -> Result<Option<crate::time::Clocks>, SinkError> {
        let call = Call::new("clock");
        self.bots[0].api.clocks().await.map_err(|e| self.classify(e, &call, 0))
    }

    /// `getMe` of one bot (by index): its username.
    pub(crate) async fn check_bot(&self, bot: usize) -> Result<String, SinkError> {
        let (me, _): (Me, _) = self.request(Call::new("getMe"), Through::Bot(bot)).await?;
        Ok(me.user.username.clone().unwrap_or_else(|| me.user.first_name.clone()))
    }
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
    fn every_bots_token_is_redacted() {
        let tokens = [Secret::new("111:AAAAAAAAAAAAone"), Secret::new("222:BBBBBBBBBBBBtwo")];
        let sink = TelegramSink::downloader(&tokens, "http://127.0.0.1:1", 0).unwrap();
        assert_eq!(sink.bot_ids(), [111, 222]);
        assert_eq!(sink.redact("x/bot111:AAAAAAAAAAAAone/y x/bot222:BBBBBBBBBBBBtwo/z"), "x/bot***/y x/bot***/z");
    }
}
