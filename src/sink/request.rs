//! One request to the Bot API, run to completion: through a given bot or whichever bot's
//! turn in the request's chat comes first ([`super::pace`]), waiting out flood control,
//! repeating while Telegram does not answer.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::api::{CallError, Document};
use super::{Addressee, MAX_FLOOD_WAITS, SinkError, TelegramSink};

/// Which bot a request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Through {
    /// This one (by index): getMe of each bot, downloads, the admin chat, setup.
    Bot(usize),
    /// Whichever bot's turn in the request's chat comes first.
    FirstFree,
}

/// One outgoing request: the method, its parameters, and what its errors concern.
pub(super) struct Call<'a> {
    pub(super) method: &'static str,
    pub(super) params: Vec<(&'static str, String)>,
    pub(super) document: Option<&'a Document>,
    /// The chat it posts to: paced, and named in errors.
    pub(super) chat: Option<&'a Addressee>,
}

impl<'a> Call<'a> {
    pub(super) fn new(method: &'static str) -> Self {
        Call { method, params: Vec::new(), document: None, chat: None }
    }

    pub(super) fn to(mut self, chat: &'a Addressee) -> Self {
        self.params.push(("chat_id", chat.id.clone()));
        if let Some(topic) = chat.topic {
            self.params.push(("message_thread_id", topic.to_string()));
        }
        self.chat = Some(chat);
        self
    }

    pub(super) fn param(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
    }
}

impl TelegramSink {
    /// Runs a request to completion through a bot; returns the answer and the bot (by
    /// index) that got it.
    pub(super) async fn request<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        through: Through,
    ) -> Result<(T, usize), SinkError> {
        self.retrying(&call, through, |bot| self.bots[bot].api.call(call.method, &call.params, call.document)).await
    }

    /// Waits out flood control (429 with `retry_after`, the one place that reads it) up
    /// to `telegram.max_flood_wait` — that bot waits its turn, and the request goes out
    /// through whichever bot is free first —, repeats a request on the in-run backoff
    /// schedule while Telegram does not answer or answers 5xx, and keeps the pacing of
    /// each bot in each chat.
    pub(super) async fn retrying<T, F, Fut>(
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
