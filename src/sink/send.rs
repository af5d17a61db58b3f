//! Sending: documents from disk or memory, HTML messages, each through whichever bot is
//! free first (or the first bot, for the admin chat and setup), and each answer checked
//! for where Telegram really put the message.

use std::path::Path;

use teloxide::types::Message;

use super::api::{Attachment, Document};
use super::request::{Call, Through};
use super::{Addressee, SinkError, TelegramSink};

/// A document Telegram accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDocument {
    pub(crate) message_id: i64,
    pub(crate) file_id: String,
    pub(crate) file_unique_id: String,
    /// The bot that sent it: the only one that can download it again.
    pub(crate) bot_id: i64,
    /// Where Telegram put it, as its answer says.
    pub(crate) landed: Landed,
}

/// A message Telegram accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SentMessage {
    pub(crate) message_id: i64,
    pub(crate) bot_id: i64,
    /// Where Telegram put it, as its answer says.
    pub(crate) landed: Landed,
}

/// Where Telegram put a message, read from its answer (`chat.id`, and
/// `message_thread_id` when `is_topic_message`): what the ledger records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Landed {
    pub(crate) chat: i64,
    pub(crate) topic: Option<i64>,
}

impl TelegramSink {
    /// Sends a file from disk as a document to `dest`, through whichever bot is free
    /// first. The file is streamed, not buffered.
    pub(crate) async fn send_file(
        &self,
        dest: &Addressee,
        path: &Path,
        file_name: &str,
        caption: &str,
    ) -> Result<SentDocument, SinkError> {
        let document = file_document(path, file_name).await?;
        self.send_document(dest, &document, caption, Through::FirstFree).await
    }

    /// Sends a file from disk to the admin chat, through the first bot.
    pub(crate) async fn send_file_to_admin(
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
        dest: &Addressee,
        bytes: Vec<u8>,
        file_name: &str,
        caption: &str,
    ) -> Result<SentDocument, SinkError> {
        let document = Document { name: file_name.to_string(), body: Attachment::Bytes(bytes.into()) };
        self.send_document(dest, &document, caption, Through::FirstFree).await
    }

    async fn send_document(
        &self,
        target: &Addressee,
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
    pub(crate) async fn send_text(&self, dest: &Addressee, html: &str) -> Result<SentMessage, SinkError> {
        self.send_html(dest, html, Through::FirstFree).await
    }

    /// Sends an HTML text message to the admin chat through the first bot.
    pub(crate) async fn send_admin_text(&self, html: &str) -> Result<i64, SinkError> {
        let admin = self.admin()?.clone();
        Ok(self.send_html(&admin, html, Through::Bot(0)).await?.message_id)
    }

    pub(super) async fn send_html(
        &self,
        target: &Addressee,
        html: &str,
        through: Through,
    ) -> Result<SentMessage, SinkError> {
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
    async fn check_landed(&self, target: &Addressee, message: &Message, bot: usize) -> Result<Landed, SinkError> {
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

    fn admin(&self) -> Result<&Addressee, SinkError> {
        self.admin
            .as_ref()
            .ok_or_else(|| SinkError::Rejected("no admin chat is configured (telegram.admin_chat_id)".into()))
    }
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
