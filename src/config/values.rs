//! The values settings are made of: secrets, chats, destinations, filters, a bucket's
//! own section.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A secret value: never printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself, for the one place that must send or write it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A Telegram chat: a numeric id (`-100…` for channels and supergroups) or `@username`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChatRef {
    /// A numeric chat id, like `-1001234567890`.
    Id(i64),
    /// A public chat's `@username`, with its `@`.
    Username(String),
}

impl FromStr for ChatRef {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if let Ok(id) = s.parse::<i64>() {
            return Ok(ChatRef::Id(id));
        }
        if let Some(name) = s.strip_prefix('@')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Ok(ChatRef::Username(s.to_string()));
        }
        Err(format!("`{s}` is neither a numeric chat id (like -1001234567890) nor a @channelname"))
    }
}

impl fmt::Display for ChatRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatRef::Id(id) => write!(f, "{id}"),
            ChatRef::Username(name) => f.write_str(name),
        }
    }
}

/// Which objects of a bucket are delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterConfig {
    /// Globs over the object key; when set, only matching keys are delivered.
    pub(crate) include: Vec<String>,
    /// Globs over the object key; matching keys are never delivered.
    pub(crate) exclude: Vec<String>,
    /// Objects smaller than this are not delivered.
    pub(crate) min_size: Option<u64>,
    /// Objects larger than this are not delivered.
    pub(crate) max_size: Option<u64>,
}
/// Where messages go: a chat and, in a forum supergroup, a topic (the Bot API's
/// `message_thread_id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The chat.
    pub chat: ChatRef,
    /// The forum topic (`message_thread_id`); `None` for the main chat.
    pub topic: Option<i64>,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.topic {
            Some(topic) => write!(f, "{} (topic {topic})", self.chat),
            None => write!(f, "{}", self.chat),
        }
    }
}

/// A `[buckets.NAME]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketConfig {
    /// Its own filter, when the section has one (the `[sync]` one otherwise).
    pub(crate) filter: Option<FilterConfig>,
    /// Its own chat (the default backup chat otherwise).
    pub(crate) chat: Option<ChatRef>,
    /// Its forum topic, in its own chat or the default one.
    pub(crate) topic: Option<i64>,
    /// How often a new object version is expected in it (`expect_every`): the whole
    /// bucket (prefix "") or prefixes of it, each with its period.
    pub(crate) watches: Vec<(String, Duration)>,
    /// How late past its period a watch may be before it is overdue (`expect_grace`;
    /// a tenth of the period by default).
    pub(crate) grace: Option<Duration>,
}

impl BucketConfig {
    /// The setting of `[buckets.NAME]` that gives it a destination of its own
    /// (`chat_id`, else `topic_id`), when it has one.
    pub(crate) fn own_destination(&self) -> Option<&'static str> {
        if self.chat.is_some() { Some("chat_id") } else { self.topic.map(|_| "topic_id") }
    }
}

impl Secret {
    /// `text` with this secret (and, for a bot token, its secret half after the colon)
    /// replaced by `***`: a Bot API URL holds its bot's token.
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.0)
    }
}

/// `text` with `secret` (and, for a bot token, its half after the colon) replaced by
/// `***`.
pub fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_string();
    }
    let mut out = text.replace(secret, "***");
    if let Some((_, half)) = secret.split_once(':')
        && half.len() >= 8
    {
        out = out.replace(half, "***");
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
            redact("error sending request for url (http://x/bot123456:ABCdef-ghiJKL/SendDocument)", t),
            "error sending request for url (http://x/bot***/SendDocument)"
        );
        assert_eq!(redact("…ABCdef-ghiJKL…", t), "…***…");
        assert_eq!(Secret::new(t).redact("a 123456:ABCdef-ghiJKL b"), "a *** b");
    }
}
