//! A fake Telegram Bot API server that answers like the real cloud Bot API.
//!
//! It runs inside the test process on `127.0.0.1:0`. Requests reach an axum router through a
//! hand-rolled hyper connection service so that injected faults can do what axum cannot:
//! drop the TCP connection without an answer, or never answer at all.
//!
//! Uploaded documents are streamed to a temporary directory owned by the fake, so multi-GiB
//! benchmarks do not need the bytes in memory.
//!
//! Beyond single calls it models what the cloud Bot API does across calls: several bots, each
//! with its own file ids; forum topics; a flood limit per bot and chat; answers lost after the
//! message was sent; download links that expire; and file servers that hand out each download
//! at a limited rate.
//!
//! Its authority is the Bot API server's own source (tdlib/telegram-bot-api,
//! `telegram-bot-api/Client.cpp`, `Client.h`, `Query.cpp`): each behaviour the tests depend on
//! names the function it follows (`check_message_topic`, `check_remote_file_id`,
//! `do_get_file`, `MAX_DOWNLOAD_FILE_SIZE`, `set_retry_after_error`, …).

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

pub const TOKEN: &str = "123456789:AAtest-SECRET-token_xyz";
/// The bot's user id is the numeric prefix of its token, as with real tokens.
pub const BOT_ID: i64 = 123_456_789;
pub const BOT_USERNAME: &str = "tgploy_test_bot";

/// A second bot's token; the fake knows it only after `add_bot(TOKEN_2, BOT_USERNAME_2)`
/// (or `start_with_bots`), until then it answers 401 like any unknown token.
pub const TOKEN_2: &str = "223456789:BBtest-SECRET-token_two";
/// The user id of the bot of `TOKEN_2`.
pub const BOT_ID_2: i64 = 223_456_789;
/// The username of the bot of `TOKEN_2`.
pub const BOT_USERNAME_2: &str = "tgploy_test2_bot";
/// A third bot's token; known only after `add_bot(TOKEN_3, BOT_USERNAME_3)`.
pub const TOKEN_3: &str = "323456789:CCtest-SECRET-token_three";
/// The user id of the bot of `TOKEN_3`.
pub const BOT_ID_3: i64 = 323_456_789;
/// The username of the bot of `TOKEN_3`.
pub const BOT_USERNAME_3: &str = "tgploy_test3_bot";

/// The cloud Bot API's upload limit, "50 MB" in its documentation: it is enforced in front of
/// the Bot API server (telegram-bot-api's source has no upload constant; a request over it is
/// answered 413 by the HTTP front, nginx's `client_max_body_size 50m`), on the whole request
/// body, multipart envelope included: 50 MiB.
pub const DEFAULT_UPLOAD_LIMIT: u64 = 50 << 20;
/// `Client::MAX_DOWNLOAD_FILE_SIZE = 20 << 20` (telegram-bot-api's Client.h): `getFile`
/// refuses larger files (`do_get_file`), except on a `--local` server.
pub const DEFAULT_DOWNLOAD_LIMIT: u64 = 20 << 20;
/// How long a download link stays valid after `getFile`: Telegram guarantees "at least one
/// hour" (the Bot API documentation of `getFile`); the file is kept in the server's cache
/// for that long, then the same `file_path` is no longer served until `getFile` is called
/// again.
pub const DEFAULT_LINK_LIFETIME: Duration = Duration::from_secs(3600);
const MAX_TEXT_UTF16: usize = 4096;
const MAX_CAPTION_UTF16: usize = 1024;
/// Non-file parameters are held in memory; this keeps a misbehaving client from exhausting it.
const MAX_PARAM_BYTES: usize = 1 << 20;
const MAX_JSON_BODY: usize = 16 << 20;
/// Every forum has its General topic, with this id.
const GENERAL_TOPIC_ID: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `parameters.retry_after`.
    RetryAfter(u32),
    /// That HTTP status with the matching Bot API description.
    ServerError(u16),
    /// That HTTP status with the HTML error page nginx answers when the Bot API behind it
    /// is down.
    ProxyError(u16),
    /// 400 with this Bot API description (`Bad Request: …`): a refusal no retry in the
    /// same run fixes.
    BadRequest(&'static str),
    /// The request body is read, then the TCP connection is closed without any response.
    /// Nothing is carried out: no message is sent.
    Drop,
    /// The request body is read, then no response ever comes.
    Hang,
    /// 404 `Not Found`, as Telegram's file server answers a download link that expired (or
    /// any path it does not serve). Meant for `download`.
    NotFound,
    /// The request is carried out in full (a message is sent and stored, as on success), then
    /// the TCP connection is closed without any response: the answer was lost on the way back,
    /// and the client cannot tell whether the message went out.
    LoseAnswer,
}

/// A document the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The user id of the bot that sent it.
    pub bot_id: i64,
    pub chat_id: String,
    /// The forum topic (`message_thread_id`) it was sent to; `None` outside topics.
    pub thread_id: Option<i64>,
    pub message_id: i64,
    pub file_id: String,
    pub file_unique_id: String,
    pub file_name: String,
    /// The caption exactly as sent (still HTML when `parse_mode` is HTML).
    pub caption: Option<String>,
    pub parse_mode: Option<String>,
    /// The caption as Telegram displays it: markup removed, entities decoded, trimmed.
    pub rendered_caption: Option<String>,
    /// The text of each `code` entity of the displayed caption, in order: what a person
    /// copies by tapping it in a Telegram client.
    pub caption_code: Vec<String>,
    pub size: u64,
    /// The uploaded bytes; the file lives as long as the `FakeTelegram`.
    pub path: PathBuf,
}

impl Document {
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap_or_else(|e| panic!("read stored document {}: {e}", self.path.display()))
    }

    /// Hex SHA-256 of the stored bytes, computed without loading the whole file.
    pub fn sha256(&self) -> String {
        super::file_sha256(&self.path)
    }
}

/// A message the fake accepted (text or document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The user id of the bot that sent it.
    pub bot_id: i64,
    pub chat_id: String,
    /// The forum topic (`message_thread_id`) it was sent to; `None` outside topics.
    pub thread_id: Option<i64>,
    pub message_id: i64,
    /// Message text exactly as sent; `None` for documents.
    pub text: Option<String>,
    /// File name, for documents.
    pub document: Option<String>,
    /// Caption exactly as sent, for documents.
    pub caption: Option<String>,
    pub parse_mode: Option<String>,
    /// Text or caption as Telegram displays it (markup removed, entities decoded, trimmed).
    pub rendered: Option<String>,
    /// When the fake accepted it (what flood control counts).
    pub accepted_at: Instant,
}

pub struct FakeTelegram {
    url: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    state: Mutex<BotState>,
    changed: Notify,
    dir: TempDir,
    seed: u64,
}

struct BotState {
    documents: Vec<Document>,
    messages: Vec<Sent>,
    files: HashMap<String, StoredFile>,
    file_paths: HashMap<String, String>,
    faults: HashMap<String, VecDeque<Fault>>,
    calls: HashMap<String, usize>,
    /// Calls by method and by the bot id of the token in the request's path.
    calls_by_bot: HashMap<(String, i64), usize>,
    next_message_id: HashMap<String, i64>,
    /// Chats no bot may send to.
    forbidden: HashSet<String>,
    /// Bots known to the fake, by token.
    bots: HashMap<String, BotAccount>,
    /// `(bot id, chat)` pairs: chats one bot is not a member of.
    forbidden_for_bot: HashSet<(i64, String)>,
    /// Forum supergroups and the ids of their topics.
    forums: HashMap<String, HashSet<i64>>,
    flood_limit: Option<FloodLimit>,
    /// When each `(bot id, chat)` pair had messages accepted, oldest first, within the window.
    flood_windows: HashMap<(i64, String), VecDeque<Instant>>,
    /// 429 answers of the flood model, by bot id.
    flood_refusals: HashMap<i64, usize>,
    lost_answers: usize,
    upload_limit: u64,
    download_limit: u64,
    /// Answer `getFile` like `telegram-bot-api --local`: absolute paths on disk.
    local_paths: bool,
    /// How long a file stays downloadable after its `getFile`.
    link_lifetime: Duration,
    /// Messages deleted with deleteMessage: `(bot id, chat, message id)`.
    deleted: Vec<(i64, String, i64)>,
    delay: Duration,
    seq: u64,
    /// Updates for getUpdates, in order; each with its update_id.
    updates: Vec<Value>,
    /// Seconds the server's clock is off (its `Date` header shows it).
    clock_offset: i64,
    /// An outage: every request (downloads included) gets this fault until it ends.
    outage: Option<Fault>,
    /// Bytes a second each upload is taken in at, like a line to Telegram.
    upload_rate: Option<u64>,
    /// Bytes a second each download is handed out at, per request.
    download_rate: Option<u64>,
}

/// A bot the fake knows: its token is accepted, and it owns the files it received.
#[derive(Debug, Clone)]
struct BotAccount {
    id: i64,
    username: String,
}

/// At most `messages` accepted messages per `(bot, chat)` pair in any `window`.
#[derive(Debug, Clone, Copy)]
struct FloodLimit {
    messages: u32,
    window: Duration,
}

impl BotState {
    /// Takes a place in the flood window of `(bot, chat)`, or refuses like Telegram's flood
    /// control: 429 with the whole seconds until the oldest message leaves the window.
    fn admit(&mut self, bot_id: i64, chat_key: &str) -> Result<(), ApiFailure> {
        let Some(limit) = self.flood_limit else {
            return Ok(());
        };
        let now = Instant::now();
        let window = self.flood_windows.entry((bot_id, chat_match_key(chat_key))).or_default();
        while window.front().is_some_and(|&at| now.duration_since(at) >= limit.window) {
            window.pop_front();
        }
        if window.len() < limit.messages as usize {
            window.push_back(now);
            return Ok(());
        }
        let oldest = window.front().copied().unwrap_or(now);
        let wait = (oldest + limit.window).saturating_duration_since(now);
        // Whole seconds, rounded up: retrying after that many seconds always succeeds.
        let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        *self.flood_refusals.entry(bot_id).or_default() += 1;
        Err(too_many_requests(u32::try_from(secs).unwrap_or(u32::MAX)))
    }
}

/// The bot id of a token: the digits before the colon.
fn bot_id_of(token: &str) -> Option<i64> {
    let (digits, secret) = token.split_once(':')?;
    if digits.is_empty() || secret.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&id| id > 0)
}

#[derive(Debug, Clone)]
struct StoredFile {
    /// The bot that received the file; file ids and paths are valid for it only.
    bot_id: i64,
    file_id: String,
    file_unique_id: String,
    file_name: String,
    size: u64,
    path: PathBuf,
    file_path: String,
    /// Until when the file is served at `file_path`: set by `getFile`, like the Bot API
    /// server's file cache (`Client::do_get_file` downloads the file into its directory,
    /// which the file server serves; cached files are removed after a while).
    served_until: Option<Instant>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, BotState> {
        self.state.lock().expect("fake telegram state poisoned")
    }

    fn next_seq(&self) -> u64 {
        let mut st = self.lock();
        st.seq += 1;
        st.seq
    }

    /// Counts the call (and by the bot its token names) and takes the next injected fault
    /// for the method, if any.
    fn record_call(&self, method: &str, token: Option<&str>) -> Option<Fault> {
        let fault = {
            let mut st = self.lock();
            *st.calls.entry(method.to_owned()).or_default() += 1;
            if let Some(bot) = token.and_then(bot_id_of) {
                *st.calls_by_bot.entry((method.to_owned(), bot)).or_default() += 1;
            }
            let injected = st.faults.get_mut(method).and_then(VecDeque::pop_front);
            injected.or(st.outage)
        };
        self.changed.notify_waiters();
        fault
    }
}

impl FakeTelegram {
    /// Starts the fake knowing one bot, `TOKEN`.
    pub async fn start() -> FakeTelegram {
        let dir = tempfile::tempdir().expect("create fake telegram dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake telegram listener");
        let addr = listener.local_addr().expect("fake telegram address");
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let shared = Arc::new(Shared {
            state: Mutex::new(BotState {
                documents: Vec::new(),
                messages: Vec::new(),
                files: HashMap::new(),
                file_paths: HashMap::new(),
                faults: HashMap::new(),
                calls: HashMap::new(),
                calls_by_bot: HashMap::new(),
                next_message_id: HashMap::new(),
                forbidden: HashSet::new(),
                bots: HashMap::from([(TOKEN.to_owned(), BotAccount { id: BOT_ID, username: BOT_USERNAME.to_owned() })]),
                forbidden_for_bot: HashSet::new(),
                forums: HashMap::new(),
                flood_limit: None,
                flood_windows: HashMap::new(),
                flood_refusals: HashMap::new(),
                lost_answers: 0,
                upload_limit: DEFAULT_UPLOAD_LIMIT,
                download_limit: DEFAULT_DOWNLOAD_LIMIT,
                local_paths: false,
                link_lifetime: DEFAULT_LINK_LIFETIME,
                deleted: Vec::new(),
                delay: Duration::ZERO,
                seq: 0,
                updates: Vec::new(),
                clock_offset: 0,
                outage: None,
                upload_rate: None,
                download_rate: None,
            }),
            changed: Notify::new(),
            dir,
            // Truncation is fine: this only has to differ between runs.
            seed: (nanos as u64) ^ u64::from(addr.port()),
        });

        let router = Router::new()
            .fallback(handle)
            .layer(axum::middleware::from_fn_with_state(shared.clone(), date_header))
            .with_state(shared.clone())
            // Uploads are limited by the upload-limit logic only, not by axum's 2 MB default.
            .layer(DefaultBodyLimit::disable());

        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            // Owning the connections here means dropping the fake also ends hung requests.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { continue };
                        let shared = accept_shared.clone();
                        let router = router.clone();
                        let service = hyper::service::service_fn(move |req| {
                            serve_request(shared.clone(), router.clone(), req)
                        });
                        conns.spawn(async move {
                            let _ = ConnBuilder::new(TokioExecutor::new())
                                .serve_connection(TokioIo::new(socket), service)
                                .await;
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });

        FakeTelegram { url: format!("http://{addr}"), shared, task }
    }

    /// Starts the fake knowing `TOKEN` and these `(token, username)` bots too.
    pub async fn start_with_bots(bots: &[(&str, &str)]) -> FakeTelegram {
        let tg = FakeTelegram::start().await;
        for (token, username) in bots {
            tg.add_bot(token, username);
        }
        tg
    }

    /// The fake knows one more bot: its token is accepted from now on, and its id is the
    /// digits before the colon, as with real tokens. Panics on a malformed token, or on a
    /// second token for a bot id already known (Telegram has one valid token per bot).
    pub fn add_bot(&self, token: &str, username: &str) {
        let id = bot_id_of(token).unwrap_or_else(|| panic!("not a bot token: {token:?}"));
        let mut st = self.shared.lock();
        if let Some((other, _)) = st.bots.iter().find(|(other, bot)| bot.id == id && *other != token) {
            panic!("bot {id} already has the token {other:?}");
        }
        st.bots.insert(token.to_owned(), BotAccount { id, username: username.to_owned() });
    }

    /// Base URL without trailing slash, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A teloxide bot pointed at this fake.
    pub fn bot(&self) -> teloxide::Bot {
        self.bot_for(TOKEN)
    }

    /// A teloxide bot with this token pointed at this fake (see `add_bot`).
    pub fn bot_for(&self, token: &str) -> teloxide::Bot {
        let url = self.url.parse().expect("fake telegram url");
        teloxide::Bot::new(token).set_api_url(url)
    }

    pub fn documents(&self) -> Vec<Document> {
        self.shared.lock().documents.clone()
    }

    pub fn messages(&self) -> Vec<Sent> {
        self.shared.lock().messages.clone()
    }

    /// The next `times` calls of `method` (case-insensitive) get `fault`; injections queue up.
    pub fn inject(&self, method: &str, fault: Fault, times: usize) {
        let mut st = self.shared.lock();
        let queue = st.faults.entry(method.to_ascii_lowercase()).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// Removes all pending injected faults, and ends an outage.
    pub fn clear_faults(&self) {
        let mut st = self.shared.lock();
        st.faults.clear();
        st.outage = None;
    }

    /// Every request gets `fault` from now on, until `clear_faults`: Telegram (or the
    /// proxy in front of it) is down.
    pub fn set_outage(&self, fault: Fault) {
        self.shared.lock().outage = Some(fault);
    }

    /// Takes each upload in at `bytes_per_second` (none: as fast as it comes).
    pub fn set_upload_rate(&self, bytes_per_second: Option<u64>) {
        self.shared.lock().upload_rate = bytes_per_second;
    }

    /// Hands out each download (`/file/bot<token>/…`) at `bytes_per_second` (none: as fast as
    /// it goes). The rate is per request, like Telegram's file servers: N downloads in
    /// parallel get N times the throughput.
    pub fn set_download_rate(&self, bytes_per_second: Option<u64>) {
        assert_ne!(bytes_per_second, Some(0), "a download rate of 0 never finishes");
        self.shared.lock().download_rate = bytes_per_second;
    }

    /// Turns on flood control: a sendMessage or sendDocument is refused with 429 (`Too Many
    /// Requests: retry after N`, `parameters.retry_after`) when its bot already had `messages`
    /// messages accepted in that chat within the last `window` (a sliding window). Each
    /// `(bot, chat)` pair has its own window; a refused message is not stored and does not
    /// count. Messages accepted while flood control was off do not count either.
    pub fn set_flood_limit(&self, messages: u32, window: Duration) {
        assert!(messages > 0 && !window.is_zero(), "a flood limit that refuses everything");
        self.shared.lock().flood_limit = Some(FloodLimit { messages, window });
    }

    /// Turns flood control off and forgets the windows.
    pub fn clear_flood_limit(&self) {
        let mut st = self.shared.lock();
        st.flood_limit = None;
        st.flood_windows.clear();
    }

    /// 429 answers flood control gave, all bots together (injected `RetryAfter` faults not
    /// included).
    pub fn flood_refusals(&self) -> usize {
        self.shared.lock().flood_refusals.values().sum()
    }

    /// 429 answers flood control gave to the bot of this token.
    pub fn flood_refusals_for(&self, token: &str) -> usize {
        let id = bot_id_of(token).unwrap_or_else(|| panic!("not a bot token: {token:?}"));
        self.shared.lock().flood_refusals.get(&id).copied().unwrap_or(0)
    }

    /// Answers lost by `Fault::LoseAnswer`: requests carried out whose answer never left.
    pub fn lost_answers(&self) -> usize {
        self.shared.lock().lost_answers
    }

    pub fn set_upload_limit(&self, bytes: u64) {
        self.shared.lock().upload_limit = bytes;
    }

    /// Behaves like a self-hosted Bot API server (`--local`): no download limit, and
    /// `getFile` answers with the file's absolute path on this machine.
    pub fn set_local_mode(&self) {
        let mut st = self.shared.lock();
        st.local_paths = true;
        st.download_limit = u64::MAX;
    }

    pub fn set_download_limit(&self, bytes: u64) {
        self.shared.lock().download_limit = bytes;
    }

    /// How long a file stays downloadable after its `getFile` (Telegram: at least an hour);
    /// after that its `file_path` answers 404 until `getFile` is called again.
    pub fn set_link_lifetime(&self, lifetime: Duration) {
        self.shared.lock().link_lifetime = lifetime;
    }

    /// Messages deleted with deleteMessage, as `(bot id, chat, message id)`.
    pub fn deleted(&self) -> Vec<(i64, String, i64)> {
        self.shared.lock().deleted.clone()
    }

    /// Delay applied to every sendDocument/sendMessage answer. The message is accepted (visible
    /// in `documents()`/`messages()`) before the delay, like a reply lost or slow on the way back.
    pub fn set_delay(&self, d: Duration) {
        self.shared.lock().delay = d;
    }

    /// Makes the server's clock (its `Date` header) run `secs` ahead (or behind).
    pub fn set_clock_offset(&self, secs: i64) {
        self.shared.lock().clock_offset = secs;
    }

    /// Sending to this chat fails with 400 "Bad Request: chat not found", for every bot.
    pub fn forbid_chat(&self, chat_id: &str) {
        self.shared.lock().forbidden.insert(chat_match_key(chat_id));
    }

    /// The bot of `token` is not a member of this chat, other bots still are. It gets what
    /// the Bot API answers a bot outside the chat (`check_chat_access` in telegram-bot-api's
    /// Client.cpp): for a supergroup or channel, which bots can look up by id, 403 "Forbidden:
    /// bot is not a member of the supergroup chat" (or "… of the channel chat"); for a basic
    /// group or a private chat, which the bot cannot see at all, 400 "Bad Request: chat not found".
    pub fn forbid_chat_for_bot(&self, token: &str, chat_id: &str) {
        let id = bot_id_of(token).unwrap_or_else(|| panic!("not a bot token: {token:?}"));
        self.shared.lock().forbidden_for_bot.insert((id, chat_match_key(chat_id)));
    }

    /// Makes a supergroup (`-100…`) a forum with these topics (`message_thread_id` values),
    /// replacing any earlier ones. Messages without `message_thread_id` go to the General topic,
    /// which every forum has; like the real Bot API, sendMessage and sendDocument refuse its id
    /// (1) as `message_thread_id` (`Client::check_message_topic`). A supergroup that is no
    /// forum takes any `message_thread_id` and posts to its main chat.
    pub fn set_forum(&self, chat_id: &str, topics: &[i64]) {
        let key = chat_match_key(chat_id);
        assert!(
            key.parse::<i64>().is_ok_and(|id| id <= -1_000_000_000_000),
            "only supergroups (-100…) can be forums: {chat_id:?}"
        );
        self.shared.lock().forums.insert(key, topics.iter().copied().collect());
    }

    /// Requests received for `method` (case-insensitive), including failed and faulted ones.
    /// Someone writes `text` to the bot in a chat (a group when `chat_id` is negative,
    /// a private chat otherwise): the next getUpdates returns it.
    pub fn push_chat_message(&self, chat_id: i64, title: &str, text: &str) {
        let mut state = self.shared.lock();
        let update_id = 1000 + state.updates.len() as i64;
        let chat = if chat_id > 0 {
            json!({"id": chat_id, "type": "private", "first_name": title})
        } else {
            json!({"id": chat_id, "type": "supergroup", "title": title})
        };
        let date = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        state.updates.push(json!({
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": date,
                "chat": chat,
                "from": {"id": 777, "is_bot": false, "first_name": "Operator"},
                "text": text,
            }
        }));
    }

    pub fn calls(&self, method: &str) -> usize {
        let method = method.to_ascii_lowercase();
        self.shared.lock().calls.get(&method).copied().unwrap_or(0)
    }

    /// Requests for `method` (case-insensitive; `download` for file downloads) made with
    /// the token of the bot `bot_id`.
    pub fn calls_by(&self, method: &str, bot_id: i64) -> usize {
        let key = (method.to_ascii_lowercase(), bot_id);
        self.shared.lock().calls_by_bot.get(&key).copied().unwrap_or(0)
    }

    pub async fn wait_for_documents(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.documents.len() >= n).await
    }

    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.messages.len() >= n).await
    }

    pub async fn wait_for_calls(&self, method: &str, n: usize, timeout: Duration) -> bool {
        let method = method.to_ascii_lowercase();
        self.wait_until(timeout, |st| st.calls.get(&method).copied().unwrap_or(0) >= n).await
    }

    async fn wait_until(&self, timeout: Duration, cond: impl Fn(&BotState) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before checking so a change between the check and the wait is not lost.
            let notified = self.shared.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if cond(&self.shared.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return cond(&self.shared.lock());
            }
        }
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Connection level: call counting and fault injection.

async fn serve_request(
    shared: Arc<Shared>,
    router: Router,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<Response, io::Error> {
    // Downloads are counted, and take faults, as the pseudo-method `download`.
    let path = req.uri().path();
    let called = match path.strip_prefix("/file/") {
        Some(rest) => {
            let token =
                rest.split('/').next().map(percent_decode).and_then(|b| b.strip_prefix("bot").map(str::to_owned));
            Some(("download".to_owned(), token))
        }
        None => parse_method_path(path).map(|(token, method)| (method.to_ascii_lowercase(), Some(token))),
    };
    if let Some((method, token)) = called {
        match shared.record_call(&method, token.as_deref()) {
            None => {}
            Some(Fault::Drop) => {
                drain(Body::new(req.into_body())).await;
                // hyper closes the connection without writing anything when the service fails.
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "injected fault: drop connection"));
            }
            Some(Fault::Hang) => {
                drain(Body::new(req.into_body())).await;
                let never: Infallible = std::future::pending().await;
                match never {}
            }
            Some(Fault::LoseAnswer) => {
                // Handlers store what they accept before they answer, so by now the message
                // is sent; only the answer (never polled, so a download's body is not read) is lost.
                let answer = router.oneshot(req).await;
                drop(answer);
                shared.lock().lost_answers += 1;
                shared.changed.notify_waiters();
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "injected fault: lose the answer"));
            }
            Some(Fault::RetryAfter(secs)) => {
                drain(Body::new(req.into_body())).await;
                return Ok(too_many_requests(secs).into_response());
            }
            Some(Fault::ServerError(code)) => {
                drain(Body::new(req.into_body())).await;
                return Ok(api_error(code, server_error_description(code)).into_response());
            }
            Some(Fault::ProxyError(code)) => {
                drain(Body::new(req.into_body())).await;
                let reason = server_error_description(code);
                let page = format!(
                    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n\
                     <center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n\
                     </body>\r\n</html>\r\n"
                );
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                return Ok((status, [(header::CONTENT_TYPE, "text/html")], page).into_response());
            }
            Some(Fault::BadRequest(description)) => {
                drain(Body::new(req.into_body())).await;
                return Ok(bad_request(description).into_response());
            }
            Some(Fault::NotFound) => {
                drain(Body::new(req.into_body())).await;
                return Ok(not_found().into_response());
            }
        }
    }
    let resp = router.oneshot(req).await;
    Ok(resp.unwrap_or_else(|never: Infallible| match never {}))
}

fn server_error_description(code: u16) -> &'static str {
    match code {
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()).unwrap_or("Internal Server Error"),
    }
}

/// Reads and discards a request body. Answering before the body is consumed can make the client
/// see a reset while it is still uploading instead of the answer; real proxies drain too.
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

// ---------------------------------------------------------------------------------------------
// Envelope helpers.

fn api_ok(result: Value) -> Response {
    (StatusCode::OK, axum::Json(json!({"ok": true, "result": result}))).into_response()
}

/// A Bot API error answer: `{"ok":false,"error_code":N,"description":"..."}` with HTTP status N,
/// and `"parameters":{"retry_after":S}` for flood waits.
#[derive(Debug)]
struct ApiFailure {
    code: u16,
    description: String,
    retry_after: Option<u32>,
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({"ok": false, "error_code": self.code, "description": self.description});
        if let Some(secs) = self.retry_after {
            body["parameters"] = json!({"retry_after": secs});
        }
        (status, axum::Json(body)).into_response()
    }
}

fn api_error(code: u16, description: &str) -> ApiFailure {
    ApiFailure { code, description: description.to_owned(), retry_after: None }
}

fn bad_request(description: &str) -> ApiFailure {
    api_error(400, &format!("Bad Request: {description}"))
}

/// `Query::set_retry_after_error`: 429, "Too Many Requests: retry after N", and
/// `parameters.retry_after`.
fn too_many_requests(secs: u32) -> ApiFailure {
    ApiFailure { code: 429, description: format!("Too Many Requests: retry after {secs}"), retry_after: Some(secs) }
}

fn not_found() -> ApiFailure {
    api_error(404, "Not Found")
}

fn unauthorized() -> ApiFailure {
    api_error(401, "Unauthorized")
}

fn too_large() -> ApiFailure {
    api_error(413, "Request Entity Too Large")
}

fn internal(err: impl std::fmt::Display) -> ApiFailure {
    api_error(500, &format!("Internal Server Error: fake telegram: {err}"))
}

// ---------------------------------------------------------------------------------------------
// Routing.

/// `/bot<token>/<method>` -> `(token, method)`.
fn parse_method_path(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix('/')?;
    let (bot, method) = rest.split_once('/')?;
    let token = percent_decode(bot).strip_prefix("bot")?.to_owned();
    let method = percent_decode(method);
    if method.is_empty() || method.contains('/') {
        return None;
    }
    Some((token, method))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/file/") {
        return download(&shared, rest, req).await;
    }
    let Some((token, method)) = parse_method_path(&path) else {
        drain(req.into_body()).await;
        return not_found().into_response();
    };
    let Some(bot) = shared.lock().bots.get(&token).cloned() else {
        drain(req.into_body()).await;
        return unauthorized().into_response();
    };
    let method = method.to_ascii_lowercase();
    if !matches!(
        method.as_str(),
        "getme"
            | "sendmessage"
            | "senddocument"
            | "getfile"
            | "getupdates"
            | "sendchataction"
            | "getchat"
            | "deletemessage"
    ) {
        drain(req.into_body()).await;
        return not_found().into_response();
    }
    let params = match read_params(&shared, req).await {
        Ok(params) => params,
        Err(failure) => return failure.into_response(),
    };
    let result = match method.as_str() {
        "getme" => Ok(me_json(&bot)),
        "sendmessage" => {
            let result = send_message(&shared, &bot, &params);
            apply_delay(&shared).await;
            result
        }
        "senddocument" => {
            let result = send_document(&shared, &bot, params);
            apply_delay(&shared).await;
            result
        }
        "getupdates" => Ok(get_updates(&shared, &params)),
        "sendchataction" => send_chat_action(&shared, &bot, &params),
        "getchat" => get_chat(&shared, &bot, &params),
        "deletemessage" => delete_message(&shared, &bot, &params),
        _ => get_file(&shared, &bot, &params),
    };
    match result {
        Ok(value) => api_ok(value),
        Err(failure) => failure.into_response(),
    }
}

/// Updates from `offset` on; like the real server, at most `limit` (default 100).
fn get_updates(shared: &Shared, params: &Params) -> Value {
    let offset: i64 = params.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = params.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
    let state = shared.lock();
    let updates: Vec<Value> =
        state.updates.iter().filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset).take(limit).cloned().collect();
    Value::Array(updates)
}

/// Every answer carries the server's idea of the time, like any HTTP server's.
async fn date_header(State(shared): State<Arc<Shared>>, req: Request, next: axum::middleware::Next) -> Response {
    let offset = shared.lock().clock_offset;
    let mut response = next.run(req).await;
    let now = SystemTime::now();
    let then = if offset >= 0 {
        now + Duration::from_secs(offset as u64)
    } else {
        now - Duration::from_secs(offset.unsigned_abs())
    };
    if let Ok(value) = header::HeaderValue::from_str(&httpdate::fmt_http_date(then)) {
        response.headers_mut().insert(header::DATE, value);
    }
    response
}

async fn apply_delay(shared: &Shared) {
    let delay = shared.lock().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters: query string, JSON, urlencoded form or multipart (files streamed to disk).

struct Params {
    fields: HashMap<String, String>,
    files: HashMap<String, Upload>,
}

impl Params {
    /// Like the Bot API, an empty value counts as absent.
    fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// An uploaded file part on disk; deleted on drop unless it became a document.
struct Upload {
    path: PathBuf,
    file_name: String,
    size: u64,
    keep: bool,
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn read_params(shared: &Shared, req: Request) -> Result<Params, ApiFailure> {
    let mut params = Params { fields: HashMap::new(), files: HashMap::new() };
    if let Ok(Query(query)) = Query::<Vec<(String, String)>>::try_from_uri(req.uri()) {
        params.fields.extend(query);
    }
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();

    if content_type.starts_with("application/json") {
        let Ok(bytes) = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY).await else {
            return Err(bad_request("request body is too big or broken"));
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(params);
        }
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(bad_request("can't parse JSON object"));
        };
        for (key, value) in map {
            let value = match value {
                Value::Null => continue,
                Value::String(s) => s,
                other => other.to_string(),
            };
            params.fields.insert(key, value);
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        match axum::Form::<Vec<(String, String)>>::from_request(req, &()).await {
            Ok(axum::Form(form)) => params.fields.extend(form),
            Err(_) => return Err(bad_request("can't parse form data")),
        }
    } else if content_type.starts_with("multipart/form-data") {
        read_multipart(shared, req, &mut params).await?;
    } else {
        drain(req.into_body()).await;
    }
    Ok(params)
}

/// Reads a multipart body, within the upload limit, which applies to the whole request body
/// like nginx's `client_max_body_size` in front of the cloud Bot API: a body announced larger
/// (`Content-Length`) is refused at once with 413; one sent without a length is counted as it
/// comes.
async fn read_multipart(shared: &Shared, req: Request, params: &mut Params) -> Result<(), ApiFailure> {
    let limit = shared.lock().upload_limit;
    let announced = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|len| len > limit) {
        drain(req.into_body()).await;
        return Err(too_large());
    }
    let Ok(mut multipart) = <Multipart as FromRequest<()>>::from_request(req, &()).await else {
        return Err(bad_request("can't parse multipart/form-data"));
    };
    let broken = |_| bad_request("can't parse multipart/form-data");
    let mut total: u64 = 0;
    let mut over_limit = false;
    let mut param_too_long = false;
    let mut not_utf8 = false;

    while let Some(mut field) = multipart.next_field().await.map_err(broken)? {
        let name = field.name().unwrap_or_default().to_owned();
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            let mut buf = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(broken)? {
                total += chunk.len() as u64;
                over_limit |= total > limit;
                if buf.len() + chunk.len() > MAX_PARAM_BYTES {
                    param_too_long = true;
                } else {
                    buf.extend_from_slice(&chunk);
                }
            }
            match String::from_utf8(buf) {
                Ok(value) => {
                    params.fields.insert(name, value);
                }
                Err(_) => not_utf8 = true,
            }
            continue;
        };

        if over_limit {
            while field.chunk().await.map_err(broken)?.is_some() {}
            continue;
        }
        let path = shared.dir.path().join(format!("upload-{}.bin", shared.next_seq()));
        let mut upload = Upload { path, file_name, size: 0, keep: false };
        let file = tokio::fs::File::create(&upload.path).await.map_err(internal)?;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let (rate, started) = (shared.lock().upload_rate, tokio::time::Instant::now());
        while let Some(chunk) = field.chunk().await.map_err(broken)? {
            // A line to Telegram of `rate` bytes a second: the upload takes as long.
            if let Some(rate) = rate {
                let due = Duration::from_secs_f64((upload.size + chunk.len() as u64) as f64 / rate as f64);
                tokio::time::sleep_until(started + due).await;
            }
            if over_limit {
                continue;
            }
            let len = chunk.len() as u64;
            total += len;
            upload.size += len;
            if total > limit {
                // Keep reading so the client gets the 413 instead of a reset mid-upload.
                over_limit = true;
                continue;
            }
            out.write_all(&chunk).await.map_err(internal)?;
        }
        out.flush().await.map_err(internal)?;
        drop(out);
        if !over_limit {
            params.files.insert(name, upload);
        }
    }

    if over_limit {
        return Err(too_large());
    }
    if param_too_long {
        return Err(bad_request("parameter value is too long"));
    }
    if not_utf8 {
        return Err(bad_request("strings must be encoded in UTF-8"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Chats and messages.

struct Chat {
    /// The chat id as reported back to tests: the canonical number or `@username`.
    key: String,
    json: Value,
    kind: ChatKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChatKind {
    Private,
    Group,
    Supergroup,
    Channel,
}

fn chat_match_key(chat_id: &str) -> String {
    let chat_id = chat_id.trim();
    match chat_id.parse::<i64>() {
        Ok(id) => id.to_string(),
        Err(_) => chat_id.to_ascii_lowercase(),
    }
}

/// The chat `raw` names, as `bot` may send to it.
fn resolve_chat(shared: &Shared, bot: &BotAccount, raw: &str) -> Result<Chat, ApiFailure> {
    let raw = raw.trim();
    if shared.lock().forbidden.contains(&chat_match_key(raw)) {
        return Err(bad_request("chat not found"));
    }
    let chat = chat_for(shared, raw)?;
    if shared.lock().forbidden_for_bot.contains(&(bot.id, chat_match_key(&chat.key))) {
        // What telegram-bot-api answers a bot outside the chat: supergroups and channels can be
        // looked up by id, so it says the bot is no member; other chats it cannot see at all.
        return Err(match chat.kind {
            ChatKind::Supergroup => api_error(403, "Forbidden: bot is not a member of the supergroup chat"),
            ChatKind::Channel => api_error(403, "Forbidden: bot is not a member of the channel chat"),
            ChatKind::Private | ChatKind::Group => bad_request("chat not found"),
        });
    }
    Ok(chat)
}

fn chat_for(shared: &Shared, raw: &str) -> Result<Chat, ApiFailure> {
    if let Some(username) = raw.strip_prefix('@') {
        let valid =
            (4..=32).contains(&username.len()) && username.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !valid {
            return Err(bad_request("chat not found"));
        }
        // Public usernames resolve to channels; give each a stable -100… id.
        let hash = Sha256::digest(username.to_ascii_lowercase().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        let id = -1_000_000_000_000 - (u64::from_le_bytes(first) % 1_000_000_000) as i64;
        return Ok(Chat {
            key: raw.to_owned(),
            json: json!({"id": id, "title": username, "username": username, "type": "channel"}),
            kind: ChatKind::Channel,
        });
    }
    let Ok(id) = raw.parse::<i64>() else {
        return Err(bad_request("chat not found"));
    };
    let (json, kind) = if id > 0 {
        let json = json!({
            "id": id, "first_name": "Test", "last_name": "User", "username": "tgploy_test_user", "type": "private",
        });
        (json, ChatKind::Private)
    } else if id <= -1_000_000_000_000 {
        let mut json = json!({"id": id, "title": "tgploy test supergroup", "type": "supergroup"});
        if shared.lock().forums.contains_key(&id.to_string()) {
            json["is_forum"] = json!(true);
        }
        (json, ChatKind::Supergroup)
    } else if id < 0 {
        (json!({"id": id, "title": "tgploy test group", "type": "group"}), ChatKind::Group)
    } else {
        return Err(bad_request("chat not found"));
    };
    Ok(Chat { key: id.to_string(), json, kind })
}

/// `message_thread_id` as telegram-bot-api reads it (`Client::get_forum_topic_id(query,
/// field)`): absent, empty, not a number or negative is 0, none.
fn requested_topic(params: &Params) -> i64 {
    params.get("message_thread_id").and_then(|v| v.parse::<i32>().ok()).filter(|&t| t > 0).map_or(0, i64::from)
}

/// Where a message asked for topic `message_thread_id` lands, as `Client::check_message_topic`
/// decides since Bot API 9.3: only forum supergroups and private chats check the topic. In a
/// forum, the General topic's id (`GENERAL_FORUM_TOPIC_ID`, 1) is refused and so is a topic the
/// forum lacks (`getForumTopic` fails, answered by `TdOnCheckForumTopicCallback` as "message
/// thread not found"); a private chat here has no topics. In an ordinary supergroup, a basic
/// group or a channel the topic is dropped without an error: the message goes to the main
/// chat, and its answer has no `message_thread_id`.
fn landing_topic(shared: &Shared, chat: &Chat, params: &Params) -> Result<Option<i64>, ApiFailure> {
    let topic = requested_topic(params);
    if topic == 0 {
        return Ok(None);
    }
    let st = shared.lock();
    match (chat.kind, st.forums.get(&chat_match_key(&chat.key))) {
        (ChatKind::Supergroup, Some(topics)) if topic != GENERAL_TOPIC_ID && topics.contains(&topic) => Ok(Some(topic)),
        (ChatKind::Supergroup, Some(_)) | (ChatKind::Private, _) => Err(bad_request("message thread not found")),
        (ChatKind::Supergroup, None) | (ChatKind::Group | ChatKind::Channel, _) => Ok(None),
    }
}

fn bot_user_json(bot: &BotAccount) -> Value {
    json!({"id": bot.id, "is_bot": true, "first_name": "tgploy test", "username": bot.username})
}

fn me_json(bot: &BotAccount) -> Value {
    let mut me = bot_user_json(bot);
    if let Value::Object(m) = &mut me {
        m.insert("can_join_groups".into(), json!(true));
        m.insert("can_read_all_group_messages".into(), json!(false));
        m.insert("supports_inline_queries".into(), json!(false));
        m.insert("can_connect_to_business".into(), json!(false));
        m.insert("has_main_web_app".into(), json!(false));
    }
    me
}

fn message_base(bot: &BotAccount, chat: &Chat, message_id: i64, topic: Option<i64>) -> Map<String, Value> {
    let date = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let mut m = Map::new();
    m.insert("message_id".into(), json!(message_id));
    if chat.kind == ChatKind::Channel {
        m.insert("sender_chat".into(), chat.json.clone());
    } else {
        m.insert("from".into(), bot_user_json(bot));
    }
    m.insert("chat".into(), chat.json.clone());
    m.insert("date".into(), json!(date));
    if let Some(topic) = topic {
        m.insert("message_thread_id".into(), json!(topic));
        m.insert("is_topic_message".into(), json!(true));
        // Like the real answer, a message in a topic replies to the message that created it.
        m.insert(
            "reply_to_message".into(),
            json!({
                "message_id": topic,
                "from": {"id": 777, "is_bot": false, "first_name": "Operator"},
                "chat": chat.json,
                "date": date,
                "message_thread_id": topic,
                "is_topic_message": true,
                "forum_topic_created": {"name": format!("Topic {topic}"), "icon_color": 7_322_096},
            }),
        );
    }
    m
}

/// Message ids count per chat in supergroups and channels, which all bots share; private chats
/// and basic groups are numbered per bot, as each bot has its own message box for them.
fn next_message_id(st: &mut BotState, bot: &BotAccount, chat: &Chat) -> i64 {
    let key = match chat.kind {
        ChatKind::Supergroup | ChatKind::Channel => chat_match_key(&chat.key),
        ChatKind::Private | ChatKind::Group => format!("{}/{}", bot.id, chat_match_key(&chat.key)),
    };
    let counter = st.next_message_id.entry(key).or_insert(0);
    *counter += 1;
    *counter
}

/// `Client::process_send_chat_action_query`: the chat is checked (`check_chat`), not the topic
/// (no `check_message_topic`); TDLib's `sendChatAction` takes any well-formed topic id. So a
/// chat action says nothing about whether a topic exists.
fn send_chat_action(shared: &Shared, bot: &BotAccount, params: &Params) -> Result<Value, ApiFailure> {
    let Some(chat_id) = params.get("chat_id") else {
        return Err(bad_request("chat_id is empty"));
    };
    resolve_chat(shared, bot, chat_id)?;
    Ok(json!(true))
}

/// `Client::process_get_chat_query`: the chat as `JsonChat` describes it; a forum supergroup
/// says `"is_forum": true`, nothing else does.
fn get_chat(shared: &Shared, bot: &BotAccount, params: &Params) -> Result<Value, ApiFailure> {
    let Some(chat_id) = params.get("chat_id") else {
        return Err(bad_request("chat_id is empty"));
    };
    Ok(resolve_chat(shared, bot, chat_id)?.json)
}

/// `Client::process_delete_message_query`: `check_message` finds the message ("message to
/// delete not found" otherwise), then TDLib deletes it; a bot may delete its own messages,
/// another's only as an administrator (this fake's bots are none): "message can't be deleted"
/// (`MESSAGE_DELETE_FORBIDDEN`).
fn delete_message(shared: &Shared, bot: &BotAccount, params: &Params) -> Result<Value, ApiFailure> {
    let Some(chat_id) = params.get("chat_id") else {
        return Err(bad_request("chat identifier is not specified"));
    };
    let Some(message_id) = params.get("message_id").and_then(|v| v.parse::<i64>().ok()).filter(|&m| m > 0) else {
        return Err(bad_request("message identifier is not specified"));
    };
    let chat = resolve_chat(shared, bot, chat_id)?;
    let key = chat_match_key(&chat.key);
    // Private chats and basic groups number messages per bot (`next_message_id`).
    let per_bot = matches!(chat.kind, ChatKind::Private | ChatKind::Group);
    let mut st = shared.lock();
    let same =
        |m: &Sent| chat_match_key(&m.chat_id) == key && m.message_id == message_id && (!per_bot || m.bot_id == bot.id);
    let Some(pos) = st.messages.iter().position(same) else {
        return Err(bad_request("message to delete not found"));
    };
    if st.messages[pos].bot_id != bot.id {
        return Err(bad_request("message can't be deleted"));
    }
    let gone = st.messages.remove(pos);
    st.documents
        .retain(|d| !(chat_match_key(&d.chat_id) == key && d.message_id == message_id && d.bot_id == gone.bot_id));
    st.deleted.push((bot.id, chat.key.clone(), message_id));
    drop(st);
    shared.changed.notify_waiters();
    Ok(json!(true))
}

/// Text after `parse_mode` handling, as Telegram stores it.
struct Formatted {
    text: String,
    entities: Vec<Entity>,
}

fn format_text(raw: &str, parse_mode: Option<&str>) -> Result<Formatted, ApiFailure> {
    let (text, entities) = match parse_mode.map(str::to_ascii_lowercase).as_deref() {
        None => (raw.to_owned(), Vec::new()),
        Some("html") => parse_html(raw).map_err(|reason| bad_request(&format!("can't parse entities: {reason}")))?,
        // Markdown is not implemented: rather fail loudly than accept unchecked markup.
        Some(_) => {
            return Err(bad_request("unsupported parse_mode (the fake Telegram implements only HTML)"));
        }
    };
    Ok(trim(text, entities))
}

/// The displayed text of each `code` entity (offsets are in UTF-16 code units).
fn code_texts(formatted: &Formatted) -> Vec<String> {
    let units: Vec<u16> = formatted.text.encode_utf16().collect();
    formatted
        .entities
        .iter()
        .filter(|e| matches!(e.kind, EntityKind::Code(_)))
        .map(|e| String::from_utf16_lossy(&units[e.offset..e.offset + e.length]))
        .collect()
}

fn send_message(shared: &Shared, bot: &BotAccount, params: &Params) -> Result<Value, ApiFailure> {
    let Some(chat_id) = params.get("chat_id") else {
        return Err(bad_request("chat_id is empty"));
    };
    let raw = params.get("text").unwrap_or_default();
    let parse_mode = params.get("parse_mode");
    let formatted = format_text(raw, parse_mode)?;
    if formatted.text.is_empty() {
        return Err(bad_request("message text is empty"));
    }
    if utf16_len(&formatted.text) > MAX_TEXT_UTF16 {
        return Err(bad_request("message is too long"));
    }
    let chat = resolve_chat(shared, bot, chat_id)?;
    let topic = landing_topic(shared, &chat, params)?;

    let message_id = {
        let mut st = shared.lock();
        st.admit(bot.id, &chat.key)?;
        let message_id = next_message_id(&mut st, bot, &chat);
        st.messages.push(Sent {
            bot_id: bot.id,
            chat_id: chat.key.clone(),
            thread_id: topic,
            message_id,
            text: Some(raw.to_owned()),
            document: None,
            caption: None,
            parse_mode: parse_mode.map(str::to_owned),
            rendered: Some(formatted.text.clone()),
            accepted_at: Instant::now(),
        });
        message_id
    };
    shared.changed.notify_waiters();

    let mut m = message_base(bot, &chat, message_id, topic);
    m.insert("text".into(), json!(formatted.text));
    if !formatted.entities.is_empty() {
        m.insert("entities".into(), entities_json(&formatted.entities));
    }
    Ok(Value::Object(m))
}

enum DocumentSource {
    Upload(Upload),
    Existing(StoredFile),
}

fn send_document(shared: &Shared, bot: &BotAccount, mut params: Params) -> Result<Value, ApiFailure> {
    let Some(chat_id) = params.get("chat_id").map(str::to_owned) else {
        return Err(bad_request("chat_id is empty"));
    };
    let source = if let Some(upload) = params.files.remove("document") {
        DocumentSource::Upload(upload)
    } else if let Some(value) = params.get("document").map(str::to_owned) {
        if let Some(name) = value.strip_prefix("attach://") {
            match params.files.remove(name) {
                Some(upload) => DocumentSource::Upload(upload),
                None => return Err(bad_request("there is no document in the request")),
            }
        } else {
            // A file id is valid only for the bot it was issued to.
            match shared.lock().files.get(&value).filter(|stored| stored.bot_id == bot.id) {
                Some(stored) => DocumentSource::Existing(stored.clone()),
                None => return Err(bad_request("wrong file identifier/HTTP URL specified")),
            }
        }
    } else {
        return Err(bad_request("there is no document in the request"));
    };

    let caption_raw = params.get("caption").map(str::to_owned);
    let parse_mode = params.get("parse_mode").map(str::to_owned);
    let caption = match &caption_raw {
        None => None,
        Some(raw) => Some(format_text(raw, parse_mode.as_deref())?),
    };
    if caption.as_ref().is_some_and(|c| utf16_len(&c.text) > MAX_CAPTION_UTF16) {
        return Err(bad_request("message caption is too long"));
    }
    if let DocumentSource::Upload(upload) = &source
        && upload.size == 0
    {
        return Err(bad_request("file must be non-empty"));
    }
    let chat = resolve_chat(shared, bot, &chat_id)?;
    let topic = landing_topic(shared, &chat, &params)?;
    let caption = caption.filter(|c| !c.text.is_empty());

    let (stored, message_id) = {
        let mut st = shared.lock();
        // Refused before the upload becomes a file, so its bytes are deleted with it.
        st.admit(bot.id, &chat.key)?;
        let stored = match source {
            DocumentSource::Existing(stored) => stored,
            DocumentSource::Upload(mut upload) => {
                st.seq += 1;
                let seq = st.seq;
                let stored = new_stored_file(shared.seed, bot.id, seq, &mut upload);
                st.file_paths.insert(stored.file_path.clone(), stored.file_id.clone());
                st.files.insert(stored.file_id.clone(), stored.clone());
                stored
            }
        };
        let message_id = next_message_id(&mut st, bot, &chat);
        let rendered = caption.as_ref().map(|c| c.text.clone());
        let caption_code = caption.as_ref().map(code_texts).unwrap_or_default();
        st.documents.push(Document {
            bot_id: bot.id,
            chat_id: chat.key.clone(),
            thread_id: topic,
            message_id,
            file_id: stored.file_id.clone(),
            file_unique_id: stored.file_unique_id.clone(),
            file_name: stored.file_name.clone(),
            caption: caption_raw.clone(),
            parse_mode: parse_mode.clone(),
            rendered_caption: rendered.clone(),
            caption_code,
            size: stored.size,
            path: stored.path.clone(),
        });
        st.messages.push(Sent {
            bot_id: bot.id,
            chat_id: chat.key.clone(),
            thread_id: topic,
            message_id,
            text: None,
            document: Some(stored.file_name.clone()),
            caption: caption_raw,
            parse_mode,
            rendered,
            accepted_at: Instant::now(),
        });
        (stored, message_id)
    };
    shared.changed.notify_waiters();

    let mut m = message_base(bot, &chat, message_id, topic);
    m.insert(
        "document".into(),
        json!({
            "file_name": stored.file_name,
            "mime_type": "application/octet-stream",
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }),
    );
    if let Some(caption) = caption {
        m.insert("caption".into(), json!(caption.text));
        if !caption.entities.is_empty() {
            m.insert("caption_entities".into(), entities_json(&caption.entities));
        }
    }
    Ok(Value::Object(m))
}

fn new_stored_file(seed: u64, bot_id: i64, seq: u64, upload: &mut Upload) -> StoredFile {
    upload.keep = true;
    // The bot is part of the id, as real file ids differ per bot; the unique id does not depend
    // on it (it is the same for every bot on the real API).
    let digest = hex::encode(Sha256::digest(format!("{seed}:{seq}").as_bytes()));
    let bot_digest = hex::encode(Sha256::digest(format!("{seed}:{bot_id}:{seq}").as_bytes()));
    let file_name = if upload.file_name.is_empty() { "file".to_owned() } else { upload.file_name.clone() };
    let ext = Path::new(&file_name)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| !e.is_empty() && e.bytes().all(|c| c.is_ascii_alphanumeric()))
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    StoredFile {
        bot_id,
        file_id: format!("BQACAgIAAxkBAAI{}", &bot_digest[..40]),
        file_unique_id: format!("AgAD{}", &digest[40..52]),
        file_name,
        size: upload.size,
        path: upload.path.clone(),
        file_path: format!("documents/file_{seq}{ext}"),
        served_until: None,
    }
}

/// `Client::process_get_file_query`: `check_remote_file_id` (an id this server never issued:
/// "wrong file identifier/HTTP URL specified"; another bot's id is well-formed but cannot be
/// fetched with this bot's rights, which `on_update_file` reports as "wrong file_id or the
/// file is temporarily unavailable"), then `do_get_file`: over `MAX_DOWNLOAD_FILE_SIZE` on
/// the cloud API, "file is too big"; else the file is downloaded into the server's cache and
/// served at its `file_path` (relative; absolute with `--local`) for the link's lifetime.
fn get_file(shared: &Shared, bot: &BotAccount, params: &Params) -> Result<Value, ApiFailure> {
    let mut st = shared.lock();
    let (limit, local, lifetime) = (st.download_limit, st.local_paths, st.link_lifetime);
    let Some(stored) = params.get("file_id").and_then(|id| st.files.get_mut(id)) else {
        return Err(bad_request("wrong file identifier/HTTP URL specified"));
    };
    if stored.bot_id != bot.id {
        return Err(bad_request("wrong file_id or the file is temporarily unavailable"));
    }
    if stored.size > limit {
        return Err(bad_request("file is too big"));
    }
    stored.served_until = Some(Instant::now() + lifetime);
    Ok(json!({
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "file_path": if local { stored.path.display().to_string() } else { stored.file_path.clone() },
    }))
}

/// `GET /file/bot<token>/<file_path>`, only in the documented form: the path's slashes
/// are slashes. A path sent as one `%2F`-encoded segment (what teloxide's `download_file*`
/// does) is not found, as on a server or reverse proxy that does not decode `%2F`. Another
/// bot's file is not found either, nor a file whose link expired (no `getFile` within the
/// link's lifetime: the server's cache no longer has it).
async fn download(shared: &Shared, rest: &str, req: Request) -> Response {
    drain(req.into_body()).await;
    let Some((bot, raw_path)) = rest.split_once('/') else {
        return not_found().into_response();
    };
    let bot = percent_decode(bot).strip_prefix("bot").and_then(|token| shared.lock().bots.get(token).cloned());
    let Some(bot) = bot else {
        return unauthorized().into_response();
    };
    let segments: Vec<String> = raw_path.split('/').map(percent_decode).collect();
    if segments.iter().any(|s| s.contains('/')) {
        return not_found().into_response();
    }
    let file_path = segments.join("/");
    let (stored, rate) = {
        let st = shared.lock();
        let stored = st.file_paths.get(&file_path).and_then(|id| st.files.get(id)).cloned();
        // Served only while its link lives: from `getFile` on, for the link's lifetime.
        let now = Instant::now();
        let stored = stored.filter(|stored| stored.bot_id == bot.id && stored.served_until.is_some_and(|t| t > now));
        (stored, st.download_rate)
    };
    let Some(stored) = stored else {
        return not_found().into_response();
    };
    let file = match tokio::fs::File::open(&stored.path).await {
        Ok(file) => file,
        Err(e) => return internal(e).into_response(),
    };
    // Throttled, the body comes in pieces of about a tenth of a second each, so a client sees
    // a steady trickle rather than bursts.
    let chunk = rate.map_or(256 * 1024, |rate| (rate / 10).clamp(1024, 256 * 1024)) as usize;
    let started = tokio::time::Instant::now();
    let stream = futures_util::stream::try_unfold((file, 0u64), move |(mut file, sent)| async move {
        let mut buf = vec![0u8; chunk];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok::<_, io::Error>(None);
        }
        buf.truncate(n);
        let sent = sent + n as u64;
        // Each request has a line of `rate` bytes a second of its own: a piece leaves when
        // that line would have carried every byte up to its end.
        if let Some(rate) = rate {
            tokio::time::sleep_until(started + Duration::from_secs_f64(sent as f64 / rate as f64)).await;
        }
        Ok(Some((Bytes::from(buf), (file, sent))))
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, stored.size.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Telegram HTML, following tdlib's parse_html (td/telegram/MessageEntity.cpp), with one
// deliberate difference: tdlib keeps a stray `&` literally, but the Bot API documentation
// requires escaping it, and an unescaped `&` that happens to form an entity corrupts the text,
// so the fake rejects it.

#[derive(Debug, Clone, PartialEq, Eq)]
enum EntityKind {
    Bold,
    Italic,
    Underline,
    Strikethrough,
    Spoiler,
    /// The language only matters for merging `<pre><code class="language-x">` into `pre`.
    Code(String),
    Pre(Option<String>),
    TextLink(String),
    CustomEmoji(String),
    Blockquote,
    ExpandableBlockquote,
}

/// Offsets and lengths in UTF-16 code units, as the Bot API reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entity {
    kind: EntityKind,
    offset: usize,
    length: usize,
}

const ALLOWED_TAGS: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "code",
    "pre",
    "span",
    "tg-spoiler",
    "tg-emoji",
    "blockquote",
];

struct OpenTag {
    name: String,
    argument: String,
    expandable: bool,
    utf16_start: usize,
    byte_start: usize,
}

fn is_html_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c' | b'\0')
}

/// Decodes `&lt;` `&gt;` `&amp;` `&quot;` `&#NN;` `&#xHH;` (the `;` is optional, as in tdlib).
fn decode_entity(s: &[u8], pos: usize) -> Option<(char, usize)> {
    let mut end = pos + 1;
    let code = if s.get(end) == Some(&b'#') {
        end += 1;
        let radix = if matches!(s.get(end), Some(b'x' | b'X')) {
            end += 1;
            16
        } else {
            10
        };
        let digits_start = end;
        let mut value: u32 = 0;
        while let Some(d) = s.get(end).and_then(|&c| char::from(c).to_digit(radix)) {
            value = value * radix + d;
            if value > 0x10FFFF {
                return None;
            }
            end += 1;
        }
        if end == digits_start {
            return None;
        }
        value
    } else {
        let start = end;
        while s.get(end).is_some_and(u8::is_ascii_alphabetic) {
            end += 1;
        }
        match &s[start..end] {
            b"lt" => u32::from('<'),
            b"gt" => u32::from('>'),
            b"amp" => u32::from('&'),
            b"quot" => u32::from('"'),
            _ => return None,
        }
    };
    let ch = char::from_u32(code).filter(|&c| c != '\0')?;
    if s.get(end) == Some(&b';') {
        end += 1;
    }
    Some((ch, end))
}

fn parse_html(src: &str) -> Result<(String, Vec<Entity>), String> {
    let b = src.as_bytes();
    let n = b.len();
    let mut out = String::with_capacity(n);
    let mut utf16 = 0usize;
    let mut stack: Vec<OpenTag> = Vec::new();
    let mut entities: Vec<Entity> = Vec::new();
    let mut i = 0;

    let skip_spaces = |i: &mut usize| {
        while *i < n && is_html_space(b[*i]) {
            *i += 1;
        }
    };

    while i < n {
        match b[i] {
            b'&' => {
                let Some((ch, next)) = decode_entity(b, i) else {
                    return Err(format!("Unescaped \"&\" at byte offset {i}"));
                };
                out.push(ch);
                utf16 += ch.len_utf16();
                i = next;
            }
            b'<' if b.get(i + 1) == Some(&b'/') => {
                let begin = i;
                let Some(open) = stack.pop() else {
                    return Err(format!("Unexpected end tag at byte offset {begin}"));
                };
                i += 2;
                let name_start = i;
                while i < n && !is_html_space(b[i]) && b[i] != b'>' {
                    i += 1;
                }
                let end_name = src[name_start..i].to_ascii_lowercase();
                skip_spaces(&mut i);
                if i >= n || b[i] != b'>' {
                    return Err(format!("Unclosed end tag at byte offset {begin}"));
                }
                i += 1;
                if !end_name.is_empty() && end_name != open.name {
                    return Err(format!(
                        "Unmatched end tag at byte offset {begin}, expected \"</{}>\", found \"</{end_name}>\"",
                        open.name
                    ));
                }
                close_tag(open, utf16, &out, &mut entities)?;
            }
            b'<' => {
                let begin = i;
                i += 1;
                let name_start = i;
                while i < n && !is_html_space(b[i]) && b[i] != b'>' {
                    i += 1;
                }
                if i >= n {
                    return Err(format!("Unclosed start tag at byte offset {begin}"));
                }
                let name = src[name_start..i].to_ascii_lowercase();
                if !ALLOWED_TAGS.contains(&name.as_str()) {
                    return Err(format!("Unsupported start tag \"{name}\" at byte offset {begin}"));
                }
                let mut argument = String::new();
                let mut expandable = false;
                loop {
                    skip_spaces(&mut i);
                    if i >= n {
                        return Err(format!("Unclosed start tag at byte offset {begin}"));
                    }
                    if b[i] == b'>' {
                        i += 1;
                        break;
                    }
                    let attr_start = i;
                    while i < n && !is_html_space(b[i]) && b[i] != b'=' && b[i] != b'>' {
                        i += 1;
                    }
                    let attr = src[attr_start..i].to_ascii_lowercase();
                    if attr.is_empty() {
                        return Err(format!("Empty attribute name in the tag \"{name}\" at byte offset {begin}"));
                    }
                    skip_spaces(&mut i);
                    if i >= n {
                        return Err(format!("Unclosed start tag at byte offset {begin}"));
                    }
                    if b[i] != b'=' {
                        if name == "blockquote" && attr == "expandable" {
                            expandable = true;
                            continue;
                        }
                        return Err(format!(
                            "Expected equal sign in declaration of an attribute of the tag \"{name}\" at byte offset {begin}"
                        ));
                    }
                    i += 1;
                    skip_spaces(&mut i);
                    if i >= n {
                        return Err(format!("Unclosed start tag \"{name}\" at byte offset {begin}"));
                    }
                    let value = if b[i] == b'"' || b[i] == b'\'' {
                        let quote = b[i];
                        i += 1;
                        let mut value = String::new();
                        while i < n && b[i] != quote {
                            if b[i] == b'&' {
                                let Some((ch, next)) = decode_entity(b, i) else {
                                    return Err(format!("Unescaped \"&\" at byte offset {i}"));
                                };
                                value.push(ch);
                                i = next;
                            } else {
                                let ch = src[i..].chars().next().unwrap_or('\u{FFFD}');
                                value.push(ch);
                                i += ch.len_utf8();
                            }
                        }
                        if i >= n {
                            return Err(format!("Unclosed start tag at byte offset {begin}"));
                        }
                        i += 1;
                        value
                    } else {
                        let token_start = i;
                        while i < n && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'-') {
                            i += 1;
                        }
                        if i >= n || (!is_html_space(b[i]) && b[i] != b'>') {
                            return Err(format!("Unexpected end of name token at byte offset {token_start}"));
                        }
                        src[token_start..i].to_ascii_lowercase()
                    };
                    match (name.as_str(), attr.as_str()) {
                        ("a", "href") | ("tg-emoji", "emoji-id") => argument = value,
                        ("code", "class") => {
                            if let Some(lang) = value.strip_prefix("language-") {
                                argument = lang.to_owned();
                            }
                        }
                        ("span", "class") => {
                            if let Some(class) = value.strip_prefix("tg-") {
                                argument = class.to_owned();
                            }
                        }
                        ("blockquote", "expandable") => expandable = true,
                        _ => {}
                    }
                }
                if name == "span" && argument != "spoiler" {
                    return Err(format!("Tag \"span\" must have class \"tg-spoiler\" at byte offset {begin}"));
                }
                stack.push(OpenTag { name, argument, expandable, utf16_start: utf16, byte_start: out.len() });
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('\u{FFFD}');
                out.push(ch);
                utf16 += ch.len_utf16();
                i += ch.len_utf8();
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("Can't find end tag corresponding to start tag \"{}\"", open.name));
    }
    Ok((out, entities))
}

fn close_tag(open: OpenTag, utf16: usize, out: &str, entities: &mut Vec<Entity>) -> Result<(), String> {
    let offset = open.utf16_start;
    let length = utf16 - offset;
    if length == 0 {
        return Ok(());
    }
    let kind = match open.name.as_str() {
        "b" | "strong" => EntityKind::Bold,
        "i" | "em" => EntityKind::Italic,
        "u" | "ins" => EntityKind::Underline,
        "s" | "strike" | "del" => EntityKind::Strikethrough,
        "span" | "tg-spoiler" => EntityKind::Spoiler,
        "code" => EntityKind::Code(open.argument),
        "blockquote" if open.expandable => EntityKind::ExpandableBlockquote,
        "blockquote" => EntityKind::Blockquote,
        "tg-emoji" => {
            if open.argument.parse::<i64>().is_err() {
                return Err("Invalid custom emoji identifier specified".to_owned());
            }
            EntityKind::CustomEmoji(open.argument)
        }
        "pre" => {
            if let Some(last) = entities.last_mut()
                && last.offset == offset
                && last.length == length
                && let EntityKind::Code(lang) = &last.kind
                && !lang.is_empty()
            {
                last.kind = EntityKind::Pre(Some(lang.clone()));
                return Ok(());
            }
            EntityKind::Pre(None)
        }
        "a" => {
            let url = if open.argument.is_empty() { out[open.byte_start..].to_owned() } else { open.argument };
            // Like tdlib, an unusable link silently produces no entity.
            let Some(url) = check_link(&url) else {
                return Ok(());
            };
            EntityKind::TextLink(url)
        }
        _ => return Ok(()),
    };
    entities.push(Entity { kind, offset, length });
    Ok(())
}

fn check_link(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    let candidate = if url.contains("://") || url.to_ascii_lowercase().starts_with("tg:") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let parsed = reqwest::Url::parse(&candidate).ok()?;
    let usable = match parsed.scheme() {
        "http" | "https" => parsed.host_str().is_some_and(|h| h.contains('.') || h == "localhost"),
        "tg" | "ton" => true,
        _ => false,
    };
    usable.then(|| parsed.to_string())
}

/// Telegram strips leading and trailing whitespace; entities are clipped to what remains.
fn trim(text: String, entities: Vec<Entity>) -> Formatted {
    let trimmed_start = text.trim_start();
    let left = utf16_len(&text[..text.len() - trimmed_start.len()]);
    let kept = trimmed_start.trim_end().to_owned();
    let kept_len = utf16_len(&kept);
    let mut entities: Vec<Entity> = entities
        .into_iter()
        .filter_map(|e| {
            let start = e.offset.max(left) - left;
            let end = (e.offset + e.length).saturating_sub(left).min(kept_len);
            (end > start).then_some(Entity { kind: e.kind, offset: start, length: end - start })
        })
        .collect();
    entities.sort_by(|a, b| a.offset.cmp(&b.offset).then(b.length.cmp(&a.length)));
    Formatted { text: kept, entities }
}

fn entities_json(entities: &[Entity]) -> Value {
    let list = entities
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("offset".into(), json!(e.offset));
            m.insert("length".into(), json!(e.length));
            let kind = match &e.kind {
                EntityKind::Bold => "bold",
                EntityKind::Italic => "italic",
                EntityKind::Underline => "underline",
                EntityKind::Strikethrough => "strikethrough",
                EntityKind::Spoiler => "spoiler",
                EntityKind::Code(_) => "code",
                EntityKind::Pre(language) => {
                    if let Some(language) = language {
                        m.insert("language".into(), json!(language));
                    }
                    "pre"
                }
                EntityKind::TextLink(url) => {
                    m.insert("url".into(), json!(url));
                    "text_link"
                }
                EntityKind::CustomEmoji(id) => {
                    m.insert("custom_emoji_id".into(), json!(id));
                    "custom_emoji"
                }
                EntityKind::Blockquote => "blockquote",
                EntityKind::ExpandableBlockquote => "expandable_blockquote",
            };
            m.insert("type".into(), json!(kind));
            Value::Object(m)
        })
        .collect();
    Value::Array(list)
}

/// The text Telegram would display for `src` sent with `parse_mode=HTML`, or the reason it
/// would be rejected (the part after "can't parse entities: ").
pub fn render_html(src: &str) -> Result<String, String> {
    let (text, entities) = parse_html(src)?;
    Ok(trim(text, entities).text)
}

/// Telegram measures text length in UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}
