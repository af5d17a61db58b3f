//! `tgploy dashboard`: the web dashboard (axum on tokio), behind the dashboard password
//! and the second factor.
//!
//! Server-rendered pages over the same ledger and library as the commands. The ledger is
//! read in short statements on the blocking pool, never on the runtime's workers, and
//! written only for what an operator does here (sign-in, sessions, bucket switches,
//! retries) and to note a session's last use at most once a minute. The pages follow the
//! ledger as other processes write it ([`live`]: one watcher, Server-Sent Events, one
//! same-origin script). Every response carries a Content-Security-Policy without inline
//! script or style; every POST must come from this dashboard's own pages (origin check)
//! and carry the CSRF token of its session.

pub mod auth;
mod gather;
mod live;
mod pages;
pub(crate) mod throttle;
pub(crate) mod views;

use std::future::Future;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Session};
use crate::shutdown::Shutdown;
use crate::time::now;

/// The stylesheet, compiled into the binary.
const CSS: &str = include_str!("app.css");
/// The script that keeps pages up to date, compiled into the binary.
const JS: &str = include_str!("live.js");
/// The icon browsers ask every site for: a lime “t” with a hard magenta shadow.
const FAVICON: &[u8] = include_bytes!("favicon.ico");
/// Forms are small; anything larger is refused before it is read.
const BODY_LIMIT: usize = 16 * 1024;
/// Scripts and styles from this origin's files only (no inline code), and connections
/// (the live stream) to this origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet's URL: its content hash in the name lets browsers keep it forever.
static CSS_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/static/app.{}.css", hex::encode(&Sha256::digest(CSS.as_bytes())[..8])));
/// The script's URL, named by its content hash like the stylesheet's.
static JS_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/static/live.{}.js", hex::encode(&Sha256::digest(JS.as_bytes())[..8])));

pub(crate) fn css_path() -> &'static str {
    &CSS_PATH
}

pub(crate) fn js_path() -> &'static str {
    &JS_PATH
}

/// What the server needs; built once by [`run`].
struct Dashboard {
    cfg: Config,
    ledger: Arc<Ledger>,
}

pub(crate) struct App {
    cfg: Config,
    ledger: Arc<Ledger>,
    /// Cookies get `Secure` when browsers reach the dashboard over HTTPS.
    secure_cookies: bool,
    /// `dashboard.public_url`'s origin, accepted by the origin check.
    public_origin: Option<String>,
    /// Answers are checked one at a time ([`App::answer`]): argon2 is made to be
    /// slow, a flood of sign-in attempts must not take every core, and the throttle
    /// must see each answer's outcome before it admits the next.
    answers: tokio::sync::Mutex<()>,
    /// Wrong answers by source address: the dashboard's own guard against guessing.
    throttle: throttle::Throttle,
    /// The live pages' watcher and streams.
    live: live::Hub,
    /// The last days, as the overview last read them.
    activity: gather::ActivityCache,
}

type Shared = Arc<App>;

/// How an answer (a password, a code) came out: right, with what checking it produced;
/// wrong, with why; or not checked at all, the throttle holding its source back.
pub(crate) enum Answered<T, W> {
    Right(T),
    Wrong(W),
    Throttled(throttle::Refusal),
}

impl App {
    /// The one protocol for an answer from `source`: wait for the turn to check answers,
    /// ask the throttle, run `check` on the ledger (`Ok(Ok(_))` right, `Ok(Err(_))`
    /// wrong), tell the throttle the outcome, and only then give the turn back. A burst of
    /// concurrent attempts is so admitted like the same attempts one after another, not
    /// all before the first is counted.
    async fn answer<T, W>(
        self: &Arc<Self>,
        source: std::net::IpAddr,
        check: impl FnOnce(&App) -> Result<std::result::Result<T, W>> + Send + 'static,
    ) -> std::result::Result<Answered<T, W>, Fail>
    where
        T: Send + 'static,
        W: Send + 'static,
    {
        let _turn = self.answers.lock().await;
        if let Err(refusal) = self.throttle.admit(source, std::time::Instant::now()) {
            return Ok(Answered::Throttled(refusal));
        }
        Ok(match self.db(check).await? {
            Ok(right) => {
                self.throttle.succeeded(source);
                Answered::Right(right)
            }
            Err(wrong) => {
                self.throttle.failed(source, std::time::Instant::now());
                Answered::Wrong(wrong)
            }
        })
    }
}

/// Starts the dashboard from the settings: it needs a password and the second factor;
/// binds `dashboard.listen`, calls `listening` with the bound address, and serves until
/// SIGTERM or SIGINT.
pub async fn serve(cfg: &Config, ledger: Arc<Ledger>, listening: impl FnOnce(std::net::SocketAddr)) -> Result<()> {
    Ledger::blocking(&ledger, auth::ready).await?;
    let addr = cfg.dashboard_listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::config(format!("cannot listen on {addr}: {e} (--listen or `dashboard.listen`)")))?;
    let local = listener.local_addr().map_err(|e| Error::config(format!("cannot listen on {addr}: {e}")))?;
    if !addr.ip().is_loopback() && !cfg.dashboard_public_url.as_deref().is_some_and(|u| u.starts_with("https://")) {
        tracing::warn!(
            "the dashboard listens on {addr}, beyond this machine, over plain HTTP: put it behind a TLS reverse proxy \
             and set `dashboard.public_url` to its https:// address"
        );
    }
    // The handlers are in place before the address is told: a signal sent as soon as
    // the server says it listens is caught.
    let shutdown = Shutdown::new();
    shutdown.listen();
    crate::metrics::warn_if_open(cfg, local);
    listening(local);
    let stop = async move { shutdown.wait().await };
    serve_on(Dashboard { cfg: cfg.clone(), ledger }, listener, stop).await
}

/// Serves the dashboard on `listener` until `shutdown` resolves, then lets requests in
/// flight finish.
async fn serve_on(
    dashboard: Dashboard,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let public_url = dashboard.cfg.dashboard_public_url.clone();
    let app = Arc::new(App {
        secure_cookies: public_url.as_deref().is_some_and(|u| u.starts_with("https://")),
        public_origin: public_url.as_deref().and_then(auth::origin_of),
        cfg: dashboard.cfg,
        ledger: dashboard.ledger,
        answers: tokio::sync::Mutex::new(()),
        throttle: throttle::Throttle::default(),
        live: live::Hub::new(),
        activity: gather::ActivityCache::default(),
    });
    // What this process counts (the settings page's getMe answers) reaches the ledger,
    // and so every scrape, like the webhook server's.
    let ledger = app.ledger.clone();
    let counts = tokio::spawn(crate::metrics::flush_every(ledger.clone(), crate::metrics::FLUSH_EVERY));
    let watcher = tokio::spawn(live::watch_ledger(app.clone()));
    // Live streams never end by themselves: they are ended when the server stops, so
    // that the requests in flight can finish.
    let closing = app.clone();
    let shutdown = async move {
        shutdown.await;
        closing.live.close();
    };
    let served = axum::serve(listener, router(app).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Internal(format!("the HTTP server failed: {e}")));
    counts.abort();
    watcher.abort();
    if let Err(e) = Ledger::blocking(&ledger, crate::metrics::flush).await {
        tracing::warn!("cannot add the last counts to the ledger: {e}");
    }
    served
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/", get(pages::overview))
        .route("/buckets", get(pages::buckets))
        .route("/buckets/enable", post(pages::enable_bucket))
        .route("/buckets/disable", post(pages::disable_bucket))
        .route("/files", get(pages::files))
        .route("/retry", get(pages::retry))
        .route("/retry/now", post(pages::retry_now))
        .route("/retry/dead", post(pages::retry_dead))
        .route("/logs", get(pages::logs))
        .route("/security", get(pages::security))
        .route("/security/sign-out-everywhere", post(pages::sign_out_everywhere))
        .route("/security/password", post(pages::change_password))
        .route("/settings", get(pages::settings))
        .route("/live/{page}", get(live::stream))
        .route("/static/{file}", get(static_file))
        .route("/favicon.ico", get(favicon))
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "Not found", "There is no such page.") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Refuses cross-origin POSTs; adds the security headers to every response.
async fn guard(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let mut resp = if !matches!(*req.method(), Method::GET | Method::HEAD)
        && !auth::same_origin(req.headers(), app.public_origin.as_deref())
    {
        tracing::warn!("dashboard: refused a cross-origin {} {}", req.method(), req.uri().path());
        problem(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form was not sent from the dashboard's own pages. Open the dashboard and try again there.",
        )
    } else {
        next.run(req).await
    };
    let headers = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Pages show what is in the ledger: no copy of them belongs in any cache.
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// The stylesheet and the script, at their content-hashed paths.
async fn static_file(Path(file): Path<String>) -> Response {
    let path = format!("/static/{file}");
    let (content_type, body) = match path {
        p if p == css_path() => ("text/css; charset=utf-8", CSS),
        p if p == js_path() => ("text/javascript; charset=utf-8", JS),
        _ => return problem(StatusCode::NOT_FOUND, "Not found", "There is no such file."),
    };
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")], body)
        .into_response()
}

/// `/metrics`, outside the sessions: a scraper has none. `metrics.token` guards it.
async fn metrics_page(State(app): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    crate::metrics::response(&app.cfg, &app.ledger, &headers).await
}

/// For healthchecks (`tgploy probe http://127.0.0.1:8088/healthz`), without a session:
/// `ok` while the ledger can be read.
async fn healthz(State(app): State<Shared>) -> Response {
    match Ledger::blocking(&app.ledger, |l| l.counts().map(|_| ())).await {
        Ok(()) => "ok".into_response(),
        Err(e) => {
            tracing::error!("healthz: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "the ledger cannot be read; the log says why\n").into_response()
        }
    }
}

async fn favicon() -> Response {
    ([(header::CONTENT_TYPE, "image/x-icon"), (header::CACHE_CONTROL, "public, max-age=86400")], FAVICON)
        .into_response()
}

/// An error page.
fn problem(status: StatusCode, title: &str, text: &str) -> Response {
    (status, views::problem(title, text)).into_response()
}

/// Why a request could not be served. The details go to the log, never to the page.
pub(crate) enum Fail {
    /// A library call failed: the ledger, S3 or Telegram, or the request itself.
    Error(Error),
    /// The form's CSRF token is missing or wrong.
    Forged,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Error(e)
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        match self {
            Fail::Error(Error::Busy(e)) => {
                tracing::warn!("dashboard: {e}");
                problem(StatusCode::SERVICE_UNAVAILABLE, "Busy", "The ledger is busy; reload the page in a moment.")
            }
            // S3 or Telegram did not answer: nothing is wrong here, and it says which.
            Fail::Error(Error::Unreachable { service, .. }) => {
                tracing::warn!("dashboard: {service} cannot be reached");
                let text =
                    format!("{service} cannot be reached; try again in a moment (the dashboard's log says why).");
                problem(StatusCode::BAD_GATEWAY, "Unreachable", &text)
            }
            Fail::Error(Error::Outage(e)) => {
                tracing::warn!("dashboard: {e}");
                let text =
                    "An outside service stopped answering; try again in a moment (the dashboard's log says why).";
                problem(StatusCode::BAD_GATEWAY, "Unreachable", text)
            }
            Fail::Error(e @ Error::Ledger { .. }) => {
                tracing::error!("dashboard: {e}");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The ledger could not be read or written; the dashboard's log says why.",
                )
            }
            Fail::Error(e) => {
                tracing::error!("dashboard: {e}");
                problem(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The dashboard's log says why.")
            }
            Fail::Forged => {
                tracing::warn!("dashboard: refused a form with a missing or wrong CSRF token");
                problem(
                    StatusCode::FORBIDDEN,
                    "Refused",
                    "This form is out of date or was not sent by the dashboard. Reload the page and try again.",
                )
            }
        }
    }
}

impl App {
    /// Runs ledger work on the blocking pool.
    async fn db<T, F>(self: &Arc<Self>, f: F) -> std::result::Result<T, Fail>
    where
        T: Send + 'static,
        F: FnOnce(&App) -> Result<T> + Send + 'static,
    {
        let app = Arc::clone(self);
        crate::ledger::off_runtime(move || f(&app)).await.map_err(Fail::from)
    }

    fn session_cookie(&self, id: &str) -> String {
        auth::set_cookie(auth::SESSION_COOKIE, id, "/", auth::ABSOLUTE_SECS, self.secure_cookies)
    }

    fn end_session_cookie(&self) -> String {
        auth::set_cookie(auth::SESSION_COOKIE, "", "/", 0, self.secure_cookies)
    }
}

/// A signed-in request: its live session and the CSRF token its forms carry.
pub(crate) struct Authed {
    session: Session,
    csrf: String,
}

impl Authed {
    /// Checks a form's CSRF token.
    fn check(&self, given: &str) -> std::result::Result<(), Fail> {
        if auth::tokens_match(&self.csrf, given) { Ok(()) } else { Err(Fail::Forged) }
    }
}

impl FromRequestParts<Shared> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> std::result::Result<Self, Response> {
        let Some(id) = auth::cookie(&parts.headers, auth::SESSION_COOKIE).map(str::to_string) else {
            return Err(pages::to_login(app, false));
        };
        let csrf = auth::csrf_token(&id);
        match app.db(move |app| auth::resume_session(&app.ledger, &id, now())).await {
            Ok(Some(session)) => Ok(Authed { session, csrf }),
            Ok(None) => Err(pages::to_login(app, true)),
            Err(fail) => Err(fail.into_response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn an_outside_service_that_does_not_answer_is_a_bad_gateway_not_the_ledger() {
        let unreachable = Error::Unreachable {
            service: crate::error::Service::S3,
            endpoint: "http://127.0.0.1:9".into(),
            reason: "connection refused".into(),
        };
        let response = Fail::Error(unreachable).into_response();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let page = body(response).await;
        assert!(page.contains("S3 cannot be reached") && !page.contains("ledger"), "{page}");

        let response =
            Fail::Error(Error::Ledger { path: "/x".into(), reason: "disk I/O error".into() }).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body(response).await.contains("The ledger could not be read or written"));

        let response = Fail::Error(Error::failed("something else")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body(response).await.contains("ledger"), "only the ledger's failures blame the ledger");
    }
}
