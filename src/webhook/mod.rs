//! `serve-webhook`: an HTTP receiver for S3 bucket notifications (axum on tokio).
//!
//! An event is answered 2xx only after the object version it names is committed to the
//! ledger as a pending delivery, so a crash after the answer loses nothing: the server
//! picks pending deliveries up when it starts. Deliveries run in the background with the
//! same code as `sync` (claims, parts, manifest, flood control, failures for `retry`),
//! so a timer's `sync` running at the same time never double-sends.

pub(crate) mod event;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, Secret, env};
use crate::deliver::{Batch, DeliveryReport, Engine, EngineOptions};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ledger::{Ledger, ObjectVersion};
use crate::metrics;
use crate::run::{Run, RunKind};
use crate::shutdown::Shutdown;
use crate::source::{S3Source, SourceError, check_names};
use crate::time::{now, rfc3339};

/// Bodies larger than this are refused with 413: real notifications are a few KiB.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;
/// How often the worker looks for pending deliveries without being woken.
const IDLE_POLL: Duration = Duration::from_secs(30);
/// Requests whose events are committed together in one transaction, at most.
const GROUP_COMMIT: usize = 512;
/// How long a graceful stop waits for the parts in flight.
const DRAIN: Duration = Duration::from_secs(60);

/// Starts the receiver from the settings: checks the token policy, the bot, binds
/// `webhook.listen`, calls `listening` with the bound address, and serves until SIGTERM
/// or SIGINT. `insecure_no_token` allows running without a token, on loopback only.
pub async fn serve(
    cfg: &Config,
    ledger: Arc<Ledger>,
    insecure_no_token: bool,
    listening: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    let addr = cfg.webhook_listen;
    let token = token_policy(cfg, insecure_no_token)?;
    let source = S3Source::new(&cfg.require_s3()?);
    let shutdown = Shutdown::new();
    let options = EngineOptions { concurrency: cfg.webhook_concurrency, progress: false };
    let engine = Engine::new(cfg, ledger.clone(), source.clone(), shutdown.clone(), options)?;
    match engine.sink().check().await {
        Ok(_) => {}
        Err(e) if e.is_outage() => {
            tracing::warn!("{e}; accepting events anyway, deliveries wait until it answers");
        }
        Err(e) => return Err(e.into()),
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::config(format!("cannot listen on {addr}: {e} (--listen or `webhook.listen`)")))?;
    let local = listener.local_addr().map_err(|e| Error::config(format!("cannot listen on {addr}: {e}")))?;
    shutdown.listen();
    metrics::warn_if_open(cfg, local);
    listening(local);
    let server = Server { cfg: cfg.clone(), ledger, source, engine, token };
    serve_on(server, listener, shutdown).await
}

/// The token events must carry: the configured one; none only with
/// `--insecure-no-token` on a loopback address.
fn token_policy(cfg: &Config, insecure_no_token: bool) -> Result<Option<Secret>> {
    let addr = cfg.webhook_listen;
    match (&cfg.webhook_token, insecure_no_token) {
        (Some(token), _) => Ok(Some(token.clone())),
        (None, true) if is_loopback(&addr) => {
            tracing::warn!("serving without a token on {addr}: any local process can queue deliveries");
            Ok(None)
        }
        (None, true) => Err(Error::config(format!(
            "--insecure-no-token is only allowed on a loopback address, not {addr}; set a token instead \
             (`webhook.secret_token` or {})",
            env::WEBHOOK_SECRET_TOKEN
        ))),
        (None, false) => Err(Error::config(format!(
            "missing webhook token: set `webhook.secret_token` in the config file or {} \
             (the same token goes into the S3 server's notification target)",
            env::WEBHOOK_SECRET_TOKEN
        ))),
    }
}

/// What the server needs; built once by [`run`].
struct Server {
    cfg: Config,
    ledger: Arc<Ledger>,
    source: S3Source,
    /// Delivers in the background, like `sync` (with `webhook.concurrency`).
    engine: Engine,
    /// `None` only with `--insecure-no-token` on a loopback address.
    token: Option<Secret>,
}

/// Events of one request, waiting for the group commit, and where its answer goes.
type Commit = (Vec<ObjectVersion>, oneshot::Sender<Result<Vec<bool>>>);

struct App {
    server: Server,
    /// Filters by bucket, compiled once.
    filters: Filters,
    commits: mpsc::Sender<Commit>,
    wake: tokio::sync::Notify,
    accepted: AtomicU64,
}

/// The `[sync]` filter and the buckets' own ones.
struct Filters {
    default: Filter,
    buckets: HashMap<String, Filter>,
}

impl Filters {
    fn new(cfg: &Config) -> Result<Filters> {
        let buckets = cfg
            .buckets
            .iter()
            .filter_map(|(name, b)| b.filter.as_ref().map(|f| (name, f)))
            .map(|(name, f)| Ok((name.clone(), Filter::new(f)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        Ok(Filters { default: Filter::new(&cfg.filter)?, buckets })
    }

    fn get(&self, bucket: &str) -> &Filter {
        self.buckets.get(bucket).unwrap_or(&self.default)
    }
}

/// Runs until `shutdown` is requested: stops accepting, lets the parts in flight finish
/// (up to [`DRAIN`]), releases claims, returns.
async fn serve_on(server: Server, listener: tokio::net::TcpListener, shutdown: Arc<Shutdown>) -> Result<()> {
    let drain = DRAIN;
    let filters = Filters::new(&server.cfg)?;
    // The group commit runs on a thread of its own, off the async runtime. It shares the
    // deliveries' connection: the two take turns on it, one short transaction each,
    // rather than one backing off from the other's lock (SQLite's busy wait sleeps up to
    // 100 ms, which starves the deliveries under a flood of events).
    let writer = server.ledger.clone();
    let (commits, queue) = mpsc::channel(4 * GROUP_COMMIT);
    let enable_new = server.cfg.enable_new_buckets;
    let committer = std::thread::Builder::new()
        .name("tgploy-commit".into())
        .spawn(move || group_commit(writer, queue, enable_new))
        .map_err(|e| Error::Internal(format!("cannot start the commit thread: {e}")))?;
    let app = Arc::new(App { server, filters, commits, wake: tokio::sync::Notify::new(), accepted: AtomicU64::new(0) });
    let router = router(app.clone());
    let worker = tokio::spawn(worker(app.clone(), shutdown.clone()));
    let counts = tokio::spawn(metrics::flush_every(app.server.ledger.clone(), metrics::FLUSH_EVERY));
    let stop = {
        let shutdown = shutdown.clone();
        async move { shutdown.wait().await }
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| Error::Internal(format!("the HTTP server failed: {e}")))?;
    tracing::info!("no longer accepting events; waiting up to {}s for deliveries in flight", drain.as_secs());
    app.wake.notify_waiters();
    match tokio::time::timeout(drain, worker).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("the delivery worker failed: {e}"),
        Err(_) => tracing::warn!(
            "deliveries still in flight after {}s; leaving them to the next run (their leases run out)",
            drain.as_secs()
        ),
    }
    counts.abort();
    if let Err(e) = Ledger::blocking(&app.server.ledger, metrics::flush).await {
        tracing::warn!("cannot add the last counts to the ledger: {e}");
    }
    drop(app);
    let _ = tokio::task::spawn_blocking(move || committer.join()).await;
    Ok(())
}

/// Commits the events of every request waiting, in one transaction, then answers each:
/// one disk sync for all the events that arrived together, every answer durable.
fn group_commit(ledger: Arc<Ledger>, mut queue: mpsc::Receiver<Commit>, enable_new: bool) {
    while let Some(first) = queue.blocking_recv() {
        let mut group = vec![first];
        while group.len() < GROUP_COMMIT {
            match queue.try_recv() {
                Ok(commit) => group.push(commit),
                Err(_) => break,
            }
        }
        let all: Vec<ObjectVersion> = group.iter().flat_map(|(versions, _)| versions.iter().cloned()).collect();
        match ledger.accept_events(&all, enable_new, now()) {
            Ok(accepted) => {
                let mut accepted = accepted.into_iter();
                for (versions, answer) in group {
                    let _ = answer.send(Ok(accepted.by_ref().take(versions.len()).collect()));
                }
            }
            Err(e) => {
                for (_, answer) in group {
                    let _ = answer
                        .send(Err(Error::Ledger { path: ledger.path().display().to_string(), reason: e.to_string() }));
                }
            }
        }
    }
}

fn router(app: Arc<App>) -> Router {
    let events = Router::new()
        .route("/webhook", post(webhook_bearer))
        .route("/webhook/{token}", post(webhook_path))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(measured));
    Router::new()
        // RustFS checks a target with HEAD / (no Authorization); any answer counts.
        .route("/", get(|| async { "tgploy serve-webhook\n" }))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .merge(events)
        .with_state(app)
}

/// Times every request for events and counts the refused ones by reason, from the
/// status they were answered with (the body limit answers 413 before any handler).
async fn measured(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    metrics::observe_request(started.elapsed());
    let refused = match resp.status().as_u16() {
        200..=299 => None,
        401 | 403 => Some("token"),
        413 => Some("too_large"),
        400..=499 => Some("malformed"),
        503 => Some("busy"),
        _ => Some("failed"),
    };
    if let Some(reason) = refused {
        metrics::count(metrics::WEBHOOK_REQUESTS_REFUSED, &[("reason", reason)], 1.0);
    }
    resp
}

async fn metrics_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    metrics::response(&app.server.cfg, &app.server.ledger, &headers).await
}

fn problem(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "ok": false, "error": reason.into() }))).into_response()
}

fn token_matches(expected: &Option<Secret>, given: Option<&str>) -> bool {
    match (expected, given) {
        (None, _) => true,
        (Some(expected), Some(given)) => expected.expose().as_bytes().ct_eq(given.as_bytes()).into(),
        (Some(_), None) => false,
    }
}

async fn webhook_bearer(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    accept(&app, crate::bearer::token(&headers), &body).await
}

async fn webhook_path(State(app): State<Arc<App>>, Path(token): Path<String>, body: Bytes) -> Response {
    accept(&app, Some(&token), &body).await
}

/// Checks the token, parses the events, commits object-created ones, answers.
async fn accept(app: &Arc<App>, token: Option<&str>, body: &[u8]) -> Response {
    if !token_matches(&app.server.token, token) {
        tracing::warn!("refused a notification with a missing or wrong token");
        return problem(StatusCode::UNAUTHORIZED, "missing or wrong token");
    }
    let events = match event::parse(body) {
        Ok(events) => events,
        Err(reason) => return problem(StatusCode::BAD_REQUEST, reason),
    };
    let mut versions = Vec::new();
    let mut ignored = 0;
    let mut skipped = 0;
    for e in events {
        if !e.is_object_created() {
            ignored += 1;
            continue;
        }
        // A sender resends what is not answered 2xx: only an S3 that cannot answer now
        // gets 503; an event that can never be delivered must not come back forever.
        if let Err(err) = check_names(&e.bucket, &e.key) {
            tracing::warn!("refused event {}: {err}", e.name);
            return problem(StatusCode::BAD_REQUEST, err.to_string());
        }
        // Senders that leave out the ETag or size (some forwarders do) cost a HEAD.
        let (etag, size) = match (e.etag.clone(), e.size) {
            (Some(etag), Some(size)) => (etag, size),
            _ => match app.server.source.head(&e.bucket, &e.key).await {
                Ok(head) => (head.etag, head.size),
                Err(err) if err.is_unavailable() => {
                    tracing::warn!("event for {}/{} lacks ETag or size and HEAD failed: {err}", e.bucket, e.key);
                    return problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the event lacks ETag or size and S3 cannot be asked now",
                    );
                }
                Err(err @ SourceError::Invalid { .. }) => {
                    tracing::warn!("refused event {}: {err}", e.name);
                    return problem(StatusCode::BAD_REQUEST, err.to_string());
                }
                Err(err @ SourceError::NotFound(_)) => {
                    // Deleted since, or its bucket: nothing to deliver.
                    tracing::info!("event {} for {}/{}: {err}; nothing to deliver", e.name, e.bucket, e.key);
                    skipped += 1;
                    continue;
                }
                Err(err) => {
                    // S3 answers, but will not say (access denied, an unexpected answer):
                    // resending the event cannot change that; the next sync lists it.
                    tracing::error!("event {} for {}/{}: {err}; left to the next sync", e.name, e.bucket, e.key);
                    skipped += 1;
                    continue;
                }
            },
        };
        versions.push((e, etag, size));
    }
    let mut rows = Vec::new();
    for (e, etag, size) in versions {
        if !app.filters.get(&e.bucket).matches(&e.key, size) {
            tracing::info!("event {} for {}/{}: filtered out", e.name, e.bucket, e.key);
            continue;
        }
        rows.push((e.name, ObjectVersion { bucket: e.bucket, key: e.key, etag, size, last_modified_ms: e.time_ms }));
    }
    let (answer, committed) = oneshot::channel();
    let versions: Vec<ObjectVersion> = rows.iter().map(|(_, v)| v.clone()).collect();
    if app.commits.send((versions, answer)).await.is_err() {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    }
    match committed.await {
        Ok(Ok(enabled)) => {
            let mut n = 0;
            for ((name, v), enabled) in rows.iter().zip(enabled) {
                if enabled {
                    n += 1;
                    tracing::info!("accepted event {name} for {}/{} (ETag {})", v.bucket, v.key, v.etag);
                } else {
                    tracing::info!("event {name} for {}/{}: bucket disabled, ignored", v.bucket, v.key);
                }
            }
            if n > 0 {
                app.accepted.fetch_add(n, Ordering::Relaxed);
                metrics::count(metrics::WEBHOOK_EVENTS_ACCEPTED, &[], n as f64);
                app.wake.notify_one();
            }
            let answer = json!({ "ok": true, "accepted": n, "ignored": ignored, "skipped": skipped });
            (StatusCode::OK, axum::Json(answer)).into_response()
        }
        Ok(Err(e)) => {
            tracing::error!("cannot commit events to the ledger: {e}");
            problem(StatusCode::SERVICE_UNAVAILABLE, "the ledger cannot take events right now")
        }
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let probe = Ledger::blocking(&app.server.ledger, |l| {
        let (counts, _) = l.counts()?;
        let (_, _, last) = l.sent_since(0)?;
        Ok((counts, last))
    })
    .await;
    let version = env!("CARGO_PKG_VERSION");
    match probe {
        Ok((counts, last)) => axum::Json(json!({
            "ok": true,
            "ledger": "ok",
            "queue_depth": counts.waiting(),
            "failed": counts.failed,
            "dead": counts.dead,
            "events_accepted": app.accepted.load(Ordering::Relaxed),
            "last_delivery_at": last.map(rfc3339),
            "version": version,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "ok": false, "ledger": e.to_string(), "version": version })),
        )
            .into_response(),
    }
}

/// Delivers pending deliveries of enabled buckets through the engine whenever an event
/// wakes it (and every `IDLE_POLL`, to pick up what a crash or a sync left), one run
/// per batch. An outage or a configuration problem pauses deliveries for `IDLE_POLL`
/// (the run raised the alert) rather than spinning on the same deliveries.
async fn worker(app: Arc<App>, shutdown: Arc<Shutdown>) {
    let server = &app.server;
    let mut pause = Duration::ZERO;
    while shutdown.requested().is_none() {
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.wait() => break,
            }
        }
        pause = Duration::ZERO;
        let run = Run::begin(RunKind::Webhook, &server.cfg, &server.ledger);
        let mut report = DeliveryReport::default();
        let delivered = run.deliver(&server.engine, &Batch::PendingOfEnabled, &mut report).await;
        if delivered.is_ok() && report.picked == 0 {
            // Nothing was waiting: not a run worth a record.
            drop(run);
            tokio::select! {
                _ = app.wake.notified() => {
                    // Events come in bursts: gather a short window of them, so that small
                    // objects go out together as packs (when packing is on).
                    if server.cfg.pack_max_object_size > 0 {
                        tokio::select! {
                            _ = tokio::time::sleep(server.cfg.webhook_pack_window) => {}
                            _ = shutdown.wait() => break,
                        }
                    }
                }
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.wait() => break,
            }
            continue;
        }
        match run.end(delivered.map(|()| report)).await {
            Err(e) => {
                tracing::error!("deliveries paused for {}s: {e}", IDLE_POLL.as_secs());
                pause = IDLE_POLL;
            }
            Ok(report) if report.outage.is_some() => {
                tracing::error!(
                    "deliveries paused for {}s: {}",
                    IDLE_POLL.as_secs(),
                    report.stopped.as_deref().unwrap_or("an outage")
                );
                pause = IDLE_POLL;
            }
            Ok(_) => {}
        }
    }
}

/// Whether an address is loopback (where `--insecure-no-token` is allowed).
pub(crate) fn is_loopback(addr: &std::net::SocketAddr) -> bool {
    addr.ip().is_loopback()
}
