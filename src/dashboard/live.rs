//! The live dashboard: one watcher per dashboard process follows the ledger, and every
//! open page gets what changed over Server-Sent Events (`GET /live/PAGE`).
//!
//! The work happens in other processes (a timer's `sync`, `serve-webhook`), which write
//! the ledger part by part; so the watcher asks the ledger, about once a second, whether
//! anything was committed (`PRAGMA data_version` on a connection of its own: one
//! question for all viewers, never one per browser). When something was, or every
//! [`REREAD`] (ages move on, watches turn overdue), it reads what each open page shows,
//! once, renders that page's live parts with the page's own functions, and hands them to
//! every stream of the page through a `watch` channel: a slow browser holds up nobody,
//! and nothing queues up for it. Pages nobody has open are not read.
//!
//! Each update has an id, `BOOT.SEQ` (BOOT tells this process from the one before a
//! restart). A stream sends an update whole, or as what changed since the one before
//! when it sent that one. One that reconnects with `Last-Event-ID` (or `?since=`, which
//! the script uses after a pause) gets nothing while it has the newest update, what
//! changed when it has the one before, else the whole: nothing is missed, nothing is
//! sent twice.
//!
//! A stream needs a signed-in session, like every page. It ends, with an `end` event,
//! when its session is signed out or expires, checked at every update and keep-alive
//! against the sessions the watcher read with its last look (so within about a second:
//! signing out is a commit). An open page counts as use, as its 30-second reload did: the
//! watcher notes it once a minute for every session with a stream, and no stream asks the
//! ledger anything. A stream carries no secret: the live parts are the pages' read-only
//! parts, without forms or their tokens. A comment every [`KEEP_ALIVE`] keeps proxies
//! from closing it.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::views::{self, Live};
use super::{App, Shared, auth, gather, problem};
use crate::error::Result;
use crate::ledger::{DeliveredFilter, Ledger, Session};
use crate::time::now;

/// How often the watcher asks the ledger whether anything changed.
pub(crate) const POLL: Duration = Duration::from_secs(1);
/// How often the open pages are read again though nothing changed.
pub(crate) const REREAD: Duration = Duration::from_secs(30);
/// A comment goes out after this long without an update.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a browser waits before it reconnects a dropped stream.
const RECONNECT: Duration = Duration::from_secs(3);
/// Streams open at once; more are refused (503) until some close.
pub(crate) const MAX_STREAMS: usize = 256;

/// A page that follows the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    Overview,
    Buckets,
    Files,
    Retry,
    Logs,
}

impl Feed {
    const ALL: [Feed; 5] = [Feed::Overview, Feed::Buckets, Feed::Files, Feed::Retry, Feed::Logs];

    /// Its name in `/live/NAME` and in the page's `data-live`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Feed::Overview => "overview",
            Feed::Buckets => "buckets",
            Feed::Files => "files",
            Feed::Retry => "retry",
            Feed::Logs => "logs",
        }
    }

    fn parse(name: &str) -> Option<Feed> {
        Feed::ALL.into_iter().find(|f| f.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Reads what the page shows and renders its live parts.
    fn read(self, l: &Ledger, app: &App, now: i64) -> Result<Live> {
        let cfg = &app.cfg;
        Ok(match self {
            Feed::Overview => views::overview_live(&gather::overview(l, cfg, &app.activity, now)?),
            Feed::Buckets => {
                let (buckets, watches) = gather::buckets(l, cfg, now)?;
                views::buckets_live(&buckets, &watches, now)
            }
            Feed::Files => views::files_live(&gather::files(l, cfg, DeliveredFilter::default(), now)?),
            Feed::Retry => views::retry_live(&gather::retry(l, now)?),
            Feed::Logs => views::logs_live(&gather::logs(l, None, now)?),
        })
    }
}

/// A page's live parts as sent: by region id and field name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
struct Parts {
    regions: BTreeMap<&'static str, String>,
    fields: BTreeMap<String, String>,
}

impl Parts {
    fn of(live: Live) -> Parts {
        Parts {
            regions: live.regions.into_iter().map(|(id, markup)| (id, markup.into_string())).collect(),
            fields: live.fields.into_iter().collect(),
        }
    }

    /// What differs in `self` from `before`.
    fn since(&self, before: &Parts) -> Parts {
        Parts {
            regions: self
                .regions
                .iter()
                .filter(|(id, html)| before.regions.get(*id) != Some(*html))
                .map(|(id, html)| (*id, html.clone()))
                .collect(),
            fields: self
                .fields
                .iter()
                .filter(|(name, text)| before.fields.get(*name) != Some(*text))
                .map(|(name, text)| (name.clone(), text.clone()))
                .collect(),
        }
    }

    fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// A page's live parts at one moment.
#[derive(Debug)]
struct Update {
    seq: u64,
    /// Everything, as JSON.
    whole: String,
    /// What changed since the update before (its seq), as JSON.
    change: Option<(u64, String)>,
}

/// The streams of one page.
struct Channel {
    viewers: AtomicUsize,
    /// The last update may be out of date: the ledger changed while nobody had the page
    /// open. A new stream waits for a fresh one.
    stale: AtomicBool,
    updates: watch::Sender<Option<Arc<Update>>>,
}

/// The sessions as the watcher last read them, by the hash of their id.
#[derive(Debug)]
struct Sessions {
    /// When the read began.
    read_at: Instant,
    by_hash: HashMap<String, Session>,
}

/// What the watcher and the streams share.
pub(crate) struct Hub {
    /// Tells this process's update ids from another's.
    boot: String,
    channels: [Channel; 5],
    sessions: watch::Sender<Arc<Sessions>>,
    /// The sessions with a stream open, by the hash of their id: how many each.
    watching: std::sync::Mutex<HashMap<String, usize>>,
    streams: AtomicUsize,
    /// A new stream asks the watcher to look now.
    kick: Notify,
    closing: watch::Sender<bool>,
}

impl Hub {
    pub(crate) fn new() -> Hub {
        let mut bytes = [0u8; 4];
        if getrandom::fill(&mut bytes).is_err() {
            bytes = (now() as u32).to_be_bytes();
        }
        Hub {
            boot: hex::encode(bytes),
            channels: std::array::from_fn(|_| Channel {
                viewers: AtomicUsize::new(0),
                stale: AtomicBool::new(true),
                updates: watch::Sender::new(None),
            }),
            sessions: watch::Sender::new(Arc::new(Sessions { read_at: Instant::now(), by_hash: HashMap::new() })),
            watching: std::sync::Mutex::new(HashMap::new()),
            streams: AtomicUsize::new(0),
            kick: Notify::new(),
            closing: watch::Sender::new(false),
        }
    }

    /// Ends every stream (the server is stopping; browsers reconnect to the next one).
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    fn watching(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.watching.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn id(&self, seq: u64) -> String {
        format!("{}.{seq}", self.boot)
    }

    /// The seq of an update id of this process.
    fn seq_of(&self, id: &str) -> Option<u64> {
        let (boot, seq) = id.split_once('.')?;
        if boot == self.boot { seq.parse().ok() } else { None }
    }
}

/// The watcher: runs until the hub closes.
pub(crate) async fn watch_ledger(app: Shared) {
    let hub = &app.live;
    let mut closing = hub.closing.subscribe();
    let mut changes = match Ledger::blocking(&app.ledger, |l| l.changes()).await {
        Ok(changes) => Some(changes),
        Err(e) => {
            tracing::warn!("the live pages cannot follow the ledger's commits ({e}); they are read every {REREAD:?}");
            None
        }
    };
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut before: [Option<Parts>; 5] = Default::default();
    let mut seq = 0u64;
    let mut last_read: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = hub.kick.notified() => {}
            _ = closing.wait_for(|closing| *closing) => break,
        }
        if hub.streams.load(Ordering::SeqCst) == 0 {
            // Nobody to tell: nothing is asked, and what was read may go out of date.
            for channel in &hub.channels {
                channel.stale.store(true, Ordering::SeqCst);
            }
            continue;
        }
        let changed = match changes.take() {
            Some(mut c) => {
                let (c, changed) = match tokio::task::spawn_blocking(move || {
                    let changed = c.changed();
                    (c, changed)
                })
                .await
                {
                    Ok(answer) => answer,
                    Err(e) => {
                        tracing::error!("live: the ledger watch failed: {e}");
                        break;
                    }
                };
                changes = Some(c);
                changed.unwrap_or_else(|e| {
                    tracing::warn!("live: {e}");
                    true
                })
            }
            None => false,
        };
        let reread = last_read.is_none_or(|t| t.elapsed() >= REREAD);
        let due: Vec<Feed> = Feed::ALL
            .into_iter()
            .filter(|f| {
                let channel = &hub.channels[f.index()];
                let open = channel.viewers.load(Ordering::SeqCst) > 0;
                if !open && (changed || reread) {
                    channel.stale.store(true, Ordering::SeqCst);
                }
                open && (changed || reread || channel.stale.load(Ordering::SeqCst))
            })
            .collect();
        if due.is_empty() && !changed {
            continue;
        }
        let read_at = Instant::now();
        let (feeds, reader) = (due.clone(), app.clone());
        let watching: Vec<String> = hub.watching().keys().cloned().collect();
        let read = Ledger::blocking(&app.ledger, move |l| {
            let now = now();
            let mut sessions: HashMap<String, Session> =
                l.sessions()?.into_iter().map(|s| (s.id_hash.clone(), s)).collect();
            // An open page is use, as its reload was: noted at most once a minute.
            for hash in watching {
                if let Some(s) = sessions.get_mut(&hash)
                    && !auth::expired(s, now)
                    && now - s.last_seen_at >= auth::TOUCH_EVERY_SECS
                {
                    match l.touch_session(&hash, now) {
                        Ok(()) => s.last_seen_at = now,
                        Err(e) => tracing::warn!("live: cannot note a session's use: {e}"),
                    }
                }
            }
            let parts =
                feeds.into_iter().map(|f| Ok((f, Parts::of(f.read(l, &reader, now)?)))).collect::<Result<Vec<_>>>()?;
            Ok((sessions, parts))
        })
        .await;
        let (by_hash, parts) = match read {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!("live: cannot read the ledger: {e}");
                continue;
            }
        };
        if reread || !due.is_empty() {
            last_read = Some(read_at);
        }
        hub.sessions.send_replace(Arc::new(Sessions { read_at, by_hash }));
        for (feed, parts) in parts {
            let channel = &hub.channels[feed.index()];
            let previous = before[feed.index()].take();
            let current = channel.updates.borrow().clone();
            let fresh = match (&previous, &current) {
                (Some(p), Some(c)) if *p == parts => Some(c.clone()),
                _ => None,
            };
            let update = fresh.unwrap_or_else(|| {
                seq += 1;
                let change = match (&previous, &current) {
                    (Some(p), Some(c)) => Some((c.seq, parts.since(p).json())),
                    _ => None,
                };
                Arc::new(Update { seq, whole: parts.json(), change })
            });
            before[feed.index()] = Some(parts);
            channel.stale.store(false, Ordering::SeqCst);
            // Sent even when unchanged: a stream waiting for a fresh update gets it.
            channel.updates.send_replace(Some(update));
        }
    }
}

/// `?since=ID`: the last update a page has, when its script reconnects by itself.
#[derive(Deserialize, Default)]
pub(crate) struct Since {
    since: Option<String>,
}

/// `GET /live/PAGE`: the page's live parts as Server-Sent Events.
pub(crate) async fn stream(
    State(app): State<Shared>,
    Path(page): Path<String>,
    Query(q): Query<Since>,
    headers: HeaderMap,
) -> Response {
    let Some(feed) = Feed::parse(&page) else {
        return problem(StatusCode::NOT_FOUND, "Not found", "There is no such page.");
    };
    // Only the dashboard's own pages may follow it (EventSource sends the browser's
    // Sec-Fetch-Site like any request).
    if !auth::same_origin(&headers, app.public_origin.as_deref()) {
        tracing::warn!("dashboard: refused a cross-origin live stream");
        return problem(StatusCode::FORBIDDEN, "Refused", "Live updates are for the dashboard's own pages.");
    }
    let Some(session_id) = auth::cookie(&headers, auth::SESSION_COOKIE).map(str::to_string) else {
        return signed_out();
    };
    let id = session_id.clone();
    let session = match app.db(move |app| auth::resume_session(&app.ledger, &id, now())).await {
        Ok(Some(session)) => session,
        Ok(None) => return signed_out(),
        Err(fail) => return fail.into_response(),
    };
    let hub = &app.live;
    if hub.streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        hub.streams.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!("dashboard: refused a live stream: {MAX_STREAMS} are open");
        return problem(StatusCode::SERVICE_UNAVAILABLE, "Busy", "Too many live pages are open; reload in a while.");
    }
    let channel = &hub.channels[feed.index()];
    channel.viewers.fetch_add(1, Ordering::SeqCst);
    *hub.watching().entry(session.id_hash.clone()).or_default() += 1;
    let seat = Seat { app: app.clone(), feed, session: session.id_hash.clone() };
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_string).or(q.since);
    let viewer = Viewer {
        updates: channel.updates.subscribe(),
        sessions: hub.sessions.subscribe(),
        closing: hub.closing.subscribe(),
        sent: last.as_deref().and_then(|id| hub.seq_of(id)),
        opened: Instant::now(),
        quiet_until: Instant::now() + KEEP_ALIVE,
        first: true,
        ended: false,
        session,
        seat,
    };
    hub.kick.notify_one();
    let events = futures_util::stream::unfold(viewer, |mut v| async move {
        let event = v.next().await?;
        Some((Ok::<Event, Infallible>(event), v))
    });
    let mut resp = Sse::new(events).into_response();
    // nginx buffers responses unless told not to; this tells it.
    resp.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

fn signed_out() -> Response {
    problem(StatusCode::UNAUTHORIZED, "Signed out", "Sign in to follow the dashboard.")
}

/// A stream's place: counted while it is open, with its session's.
struct Seat {
    app: Shared,
    feed: Feed,
    /// The hash of its session's id.
    session: String,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let hub = &self.app.live;
        hub.channels[self.feed.index()].viewers.fetch_sub(1, Ordering::SeqCst);
        hub.streams.fetch_sub(1, Ordering::SeqCst);
        let mut watching = hub.watching();
        if let Some(n) = watching.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                watching.remove(&self.session);
            }
        }
    }
}

/// One open page.
struct Viewer {
    updates: watch::Receiver<Option<Arc<Update>>>,
    sessions: watch::Receiver<Arc<Sessions>>,
    closing: watch::Receiver<bool>,
    /// The seq of the last update the page has.
    sent: Option<u64>,
    opened: Instant,
    /// A keep-alive goes out then, unless an update does first.
    quiet_until: Instant,
    first: bool,
    ended: bool,
    session: Session,
    seat: Seat,
}

impl Viewer {
    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if let Some(reason) = self.session_ended() {
                self.ended = true;
                tracing::info!("dashboard: a live stream ended: its session {reason}");
                return Some(Event::default().event("end").data(reason));
            }
            if let Some(event) = self.update() {
                self.quiet_until = Instant::now() + KEEP_ALIVE;
                return Some(self.with_retry(event));
            }
            // Quiet for long enough: a comment, right after the session was checked.
            if Instant::now() >= self.quiet_until {
                self.quiet_until = Instant::now() + KEEP_ALIVE;
                return Some(self.with_retry(Event::default().comment("keep-alive")));
            }
            tokio::select! {
                changed = self.updates.changed() => changed.ok()?,
                changed = self.sessions.changed() => changed.ok()?,
                changed = self.closing.changed() => changed.ok()?,
                _ = tokio::time::sleep_until(self.quiet_until) => {}
            }
        }
    }

    /// The first event tells the browser how long to wait before reconnecting.
    fn with_retry(&mut self, event: Event) -> Event {
        if std::mem::take(&mut self.first) { event.retry(RECONNECT) } else { event }
    }

    /// The newest update, if the page does not have it: what changed since the one it
    /// has, or the whole.
    fn update(&mut self) -> Option<Event> {
        let hub = &self.seat.app.live;
        if hub.channels[self.seat.feed.index()].stale.load(Ordering::SeqCst) {
            return None;
        }
        let update = self.updates.borrow_and_update().clone()?;
        if self.sent == Some(update.seq) {
            return None;
        }
        let data = match &update.change {
            Some((before, change)) if self.sent == Some(*before) => change,
            _ => &update.whole,
        };
        self.sent = Some(update.seq);
        Some(Event::default().id(hub.id(update.seq)).event("update").data(data))
    }

    /// Why the stream must end, if it must: its session was signed out or expired. The
    /// sessions read since the stream opened hold its session while it lives (the watcher
    /// notes its use).
    fn session_ended(&mut self) -> Option<&'static str> {
        let sessions = self.sessions.borrow_and_update();
        if sessions.read_at > self.opened {
            match sessions.by_hash.get(&self.session.id_hash) {
                None => return Some("signed-out"),
                Some(session) => self.session = session.clone(),
            }
        }
        auth::expired(&self.session, now()).then_some("expired")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maud::html;

    #[test]
    fn a_change_holds_what_differs_and_ids_belong_to_their_process() {
        let live = |cards: &str, failed: &str| Live {
            regions: vec![("live-cards", html! { p { (cards) } }), ("live-runs", html! { p { "runs" } })],
            fields: vec![("failed".into(), failed.into())],
        };
        let (a, b) = (Parts::of(live("1", "0")), Parts::of(live("2", "0")));
        assert_eq!(b.since(&a).json(), r#"{"regions":{"live-cards":"<p>2</p>"},"fields":{}}"#);
        assert_eq!(a.since(&a).json(), r#"{"regions":{},"fields":{}}"#);
        assert!(a.json().contains(r#""live-runs":"<p>runs</p>""#) && a.json().contains(r#""failed":"0""#));

        let (hub, other) = (Hub::new(), Hub::new());
        assert_eq!(hub.seq_of(&hub.id(7)), Some(7));
        assert_eq!(other.seq_of(&hub.id(7)), None, "another process's id");
        assert_eq!(hub.seq_of("garbage"), None);
        assert_eq!(Feed::parse("retry"), Some(Feed::Retry));
        assert_eq!(Feed::parse("security"), None, "only pages with live parts");
        assert!(Feed::ALL.iter().enumerate().all(|(i, f)| f.index() == i));
    }
}
