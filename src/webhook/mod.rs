//! `serve-webhook`: an HTTP receiver for S3 bucket notifications (axum on tokio).
//!
//! An event is answered 2xx only after the object version it names is committed to the
//! ledger as a pending delivery, so a crash after the answer loses nothing: the server
//! picks pending deliveries up when it starts. Deliveries run in the background with the
//! same code as `sync` (claims, parts, manifest, flood control, failures for `retry`),
//! so a timer's `sync` running at the same time never double-sends.

pub mod event;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::alert;
use crate::config::{Config, Secret};
use crate::deliver::{Courier, Outcome};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ledger::{Ledger, ObjectVersion, State as DeliveryState};
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::sink::TelegramSink;
use crate::source::{S3Source, SourceError, check_names};
use crate::sync::{LEASE, private_tmp_dir, take_over_dead_runs};
use crate::time::{now, rfc3339};

/// Bodies larger than this are refused with 413: real notifications are a few KiB.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// How often the worker looks for pending deliveries without being woken.
const IDLE_POLL: Duration = Duration::from_secs(30);

/// What the server needs; built once by the command.
pub struct Server {
    pub cfg: Config,
    pub ledger: Ledger,
    pub source: S3Source,
    pub sink: TelegramSink,
    /// `None` only with `--insecure-no-token` on a loopback address.
    pub token: Option<Secret>,
    pub concurrency: usize,
    /// How long a graceful shutdown waits for deliveries in flight.
    pub drain: Duration,
}

struct App {
    server: Server,
    wake: tokio::sync::Notify,
    accepted: AtomicU64,
}

/// Runs until `shutdown` is requested: stops accepting, lets the parts in flight finish
/// (up to `drain`), releases claims, returns.
pub async fn serve(server: Server, listener: tokio::net::TcpListener, shutdown: Arc<Shutdown>) -> Result<()> {
    let drain = server.drain;
    let app = Arc::new(App { server, wake: tokio::sync::Notify::new(), accepted: AtomicU64::new(0) });
    let router = router(app.clone());
    let worker = tokio::spawn(worker(app.clone(), shutdown.clone()));
    let stop = {
        let shutdown = shutdown.clone();
        async move { shutdown.wait().await }
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| Error::Other(anyhow::anyhow!("the HTTP server failed: {e}")))?;
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
    Ok(())
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        // RustFS checks a target with HEAD / (no Authorization); any answer counts.
        .route("/", get(|| async { "tgploy serve-webhook\n" }))
        .route("/healthz", get(healthz))
        .route("/webhook", post(webhook_bearer))
        .route("/webhook/{token}", post(webhook_path))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app)
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
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    accept(&app, given, &body).await
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
    let app2 = app.clone();
    let committed = tokio::task::spawn_blocking(move || commit(&app2.server, versions)).await;
    match committed {
        Ok(Ok(n)) => {
            if n > 0 {
                app.accepted.fetch_add(n as u64, Ordering::Relaxed);
                app.wake.notify_one();
            }
            let answer = json!({ "ok": true, "accepted": n, "ignored": ignored, "skipped": skipped });
            (StatusCode::OK, axum::Json(answer)).into_response()
        }
        Ok(Err(e)) => {
            tracing::error!("cannot commit events to the ledger: {e}");
            problem(StatusCode::SERVICE_UNAVAILABLE, "the ledger cannot take events right now")
        }
        Err(e) => {
            tracing::error!("committing events failed: {e}");
            problem(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Records the versions of enabled buckets that pass the filters; returns how many
/// events were accepted for delivery (duplicates included: they are harmless).
fn commit(server: &Server, versions: Vec<(event::Event, String, u64)>) -> Result<usize> {
    let mut rows = Vec::new();
    for (e, etag, size) in versions {
        let bucket = server.ledger.discover_bucket(&e.bucket, server.cfg.enable_new_buckets, now())?;
        if !bucket.enabled {
            tracing::info!("event {} for {}/{}: bucket disabled, ignored", e.name, e.bucket, e.key);
            continue;
        }
        if !Filter::new(server.cfg.filter_for(&e.bucket))?.matches(&e.key, size) {
            tracing::info!("event {} for {}/{}: filtered out", e.name, e.bucket, e.key);
            continue;
        }
        tracing::info!("accepted event {} for {}/{} (ETag {etag})", e.name, e.bucket, e.key);
        rows.push(ObjectVersion { bucket: e.bucket, key: e.key, etag, size, last_modified_ms: e.time_ms });
    }
    server.ledger.insert_versions(&rows, DeliveryState::Pending, now())?;
    Ok(rows.len())
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let app2 = app.clone();
    let probe = tokio::task::spawn_blocking(move || {
        let (counts, _) = app2.server.ledger.counts()?;
        let (_, _, last) = app2.server.ledger.sent_since(0)?;
        Ok::<_, Error>((counts, last))
    })
    .await;
    let version = env!("CARGO_PKG_VERSION");
    match probe {
        Ok(Ok((counts, last))) => axum::Json(json!({
            "ok": true,
            "ledger": "ok",
            "queue_depth": counts.pending + counts.sending,
            "failed": counts.failed,
            "dead": counts.dead,
            "events_accepted": app.accepted.load(Ordering::Relaxed),
            "last_delivery_at": last.map(rfc3339),
            "version": version,
        }))
        .into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "ok": false, "ledger": e.to_string(), "version": version })),
        )
            .into_response(),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// Delivers pending deliveries of enabled buckets, `concurrency` at a time, whenever an
/// event wakes it (and every `IDLE_POLL`, to pick up what a crash or a sync left).
async fn worker(app: Arc<App>, shutdown: Arc<Shutdown>) {
    let server = &app.server;
    let tmp = match private_tmp_dir(&server.cfg) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("cannot deliver: {e}");
            return;
        }
    };
    let progress = Progress::hidden();
    let courier = Courier {
        cfg: &server.cfg,
        ledger: &server.ledger,
        source: &server.source,
        sink: &server.sink,
        tmp_dir: tmp.path(),
        owner: crate::owner::this_process(),
        lease: LEASE,
        progress: &progress,
        retrying: false,
        shutdown: &shutdown,
    };
    let mut pause = Duration::ZERO;
    while shutdown.requested().is_none() {
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.wait() => break,
            }
        }
        let ids = match pending(server) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!("cannot read the ledger: {e}");
                pause = IDLE_POLL;
                continue;
            }
        };
        if ids.is_empty() {
            tokio::select! {
                _ = app.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.wait() => break,
            }
            pause = Duration::ZERO;
            continue;
        }
        let trouble = std::sync::Mutex::new(None::<Error>);
        futures_util::stream::iter(ids)
            .for_each_concurrent(server.concurrency, |id| {
                let courier = &courier;
                let trouble = &trouble;
                let shutdown = &shutdown;
                async move {
                    if shutdown.requested().is_some() {
                        return;
                    }
                    match courier.deliver(id).await {
                        Ok(Some(Outcome::Failed { unreachable: true, .. })) => {
                            let mut t = trouble.lock().unwrap_or_else(|p| p.into_inner());
                            t.get_or_insert(Error::Other(anyhow::anyhow!("Telegram could not be reached")));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let mut t = trouble.lock().unwrap_or_else(|p| p.into_inner());
                            t.get_or_insert(e);
                        }
                    }
                }
            })
            .await;
        // An outage or a configuration problem: say so, then wait before trying again
        // rather than spinning on the same deliveries.
        let trouble = trouble.into_inner().unwrap_or_else(|p| p.into_inner());
        pause = match trouble {
            Some(e) => {
                tracing::error!("deliveries paused for {}s: {e}", IDLE_POLL.as_secs());
                if let Error::Unreachable { service, .. } = &e
                    && let Err(err) = alert::raise(
                        &server.ledger,
                        &server.cfg,
                        alert::Subject::Unreachable(&service.to_string()),
                        &e.to_string(),
                    )
                {
                    tracing::warn!("cannot queue an alert: {err}");
                }
                IDLE_POLL
            }
            None => Duration::ZERO,
        };
        alert::flush_if_possible(&server.ledger, &server.cfg).await;
    }
}

/// Pending deliveries of enabled buckets (including those a dead run left claimed).
fn pending(server: &Server) -> Result<Vec<i64>> {
    take_over_dead_runs(&server.ledger)?;
    let enabled: Vec<String> = server.ledger.buckets()?.into_iter().filter(|b| b.enabled).map(|b| b.name).collect();
    server.ledger.claimable(&enabled, now())
}

/// Whether an address is loopback (where `--insecure-no-token` is allowed).
pub fn is_loopback(addr: &std::net::SocketAddr) -> bool {
    addr.ip().is_loopback()
}
