//! The dashboard's pages and the actions behind their forms. Each page reads what it
//! shows in one trip to the blocking pool ([`gather`]); each action checks the form's
//! CSRF token first, and answers with a redirect to the page that shows the outcome.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use maud::Markup;
use serde::Deserialize;

use super::live::Feed;
use super::throttle::{self, Refusal};
use super::views::{self, Destined, Frame, Nav, Notice};
use super::{Answered, App, Authed, Fail, Shared, auth, gather};
use crate::buckets;
use crate::config::Config;
use crate::error::Error;
use crate::ledger::DeliveredFilter;
use crate::sink::TelegramSink;
use crate::source::S3Source;
use crate::time::now;
use crate::totp::{self, Gate, Verdict};

type Page = std::result::Result<Response, Fail>;

/// How long the settings page waits for each bot's `getMe`.
const BOT_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

const WRONG_ANSWER: &str = "Wrong password or code.";

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// What the page says after an action redirected to it: fixed texts chosen by `done`,
/// never text taken from the URL (a bucket's name is shown only when it is known).
#[derive(Deserialize, Default)]
pub(crate) struct Done {
    done: Option<String>,
    bucket: Option<String>,
    n: Option<u64>,
}

impl Done {
    fn notice(&self, known_bucket: impl Fn(&str) -> bool) -> Option<Notice> {
        let n = self.n.unwrap_or(0);
        let bucket = self.bucket.as_deref().filter(|b| known_bucket(b));
        let text = match (self.done.as_deref()?, bucket) {
            ("disabled", Some(b)) => format!(
                "disabled bucket {b}: `sync` no longer delivers its objects (what was delivered stays in Telegram)."
            ),
            ("enabled", Some(b)) => format!("enabled bucket {b}: the next `sync` delivers its objects."),
            ("enabled-from-now", Some(b)) => format!(
                "enabled bucket {b}: its {n} current objects are recorded as skipped; only new ones will be delivered."
            ),
            ("due", _) => format!("{n} failed deliveries are due now; the next `tgploy retry` run delivers them."),
            ("revived", _) => format!(
                "{n} dead deliveries are due again, with a fresh count of attempts; the next `tgploy retry` run \
                 delivers them."
            ),
            ("password", _) => "the password was changed; every other session is signed out.".to_string(),
            _ => return None,
        };
        Some(Notice::ok(text))
    }
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Back to the sign-in page, forgetting the session cookie.
pub(super) fn to_login(app: &App, expired: bool) -> Response {
    let to = if expired { "/login?expired=1" } else { "/login" };
    ([(header::SET_COOKIE, app.end_session_cookie())], see_other(to)).into_response()
}

fn frame(authed: &Authed, nav: Nav, notice: Option<Notice>) -> Frame<'_> {
    let live = match nav {
        Nav::Overview => Some(Feed::Overview),
        Nav::Buckets => Some(Feed::Buckets),
        Nav::Files => Some(Feed::Files),
        Nav::Retry => Some(Feed::Retry),
        Nav::Logs => Some(Feed::Logs),
        Nav::Security | Nav::Settings => None,
    };
    Frame { nav, csrf: &authed.csrf, notice, live: live.map(Feed::name) }
}

fn html(status: StatusCode, markup: Markup) -> Page {
    Ok((status, markup).into_response())
}

// ----- sign-in -----

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    expired: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// The sign-in form, with a token that must come back with it and in its cookie (there
/// is no session yet to tie it to).
fn login_page(app: &App, headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Page {
    let token = match auth::cookie(headers, auth::LOGIN_COOKIE) {
        Some(token) => token.to_string(),
        None => auth::random_id()?,
    };
    let cookie = auth::set_cookie(auth::LOGIN_COOKIE, &token, "/login", 3600, app.secure_cookies);
    Ok((status, [(header::SET_COOKIE, cookie)], views::login(&token, error)).into_response())
}

pub(crate) async fn login_form(State(app): State<Shared>, Query(q): Query<LoginQuery>, headers: HeaderMap) -> Page {
    let note = q.expired.is_some().then_some("Your session ended; sign in again.");
    login_page(&app, &headers, StatusCode::OK, note)
}

pub(crate) async fn login(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Page {
    let expected = auth::cookie(&headers, auth::LOGIN_COOKIE).unwrap_or_default();
    if !auth::tokens_match(expected, &form.csrf) {
        tracing::warn!("dashboard: refused a sign-in form with a missing or wrong token");
        return login_page(&app, &headers, StatusCode::FORBIDDEN, Some("The form was out of date; try again."));
    }
    let source = throttle::source(peer.ip(), &headers);
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string);
    let answered = app
        .answer(source, move |app| {
            let now = now();
            match auth::check_answer(&app.ledger, &form.password, &form.code, now)? {
                auth::Answer::Right => Ok(Ok(auth::start_session(&app.ledger, user_agent.as_deref(), now)?)),
                auth::Answer::Wrong => Ok(Err(())),
            }
        })
        .await?;
    match answered {
        Answered::Right(session_id) => {
            tracing::info!("dashboard: signed in");
            let clear_login = auth::set_cookie(auth::LOGIN_COOKIE, "", "/login", 0, app.secure_cookies);
            // Two cookies: `AppendHeaders`, since a plain header array keeps only the last.
            let cookies = [(header::SET_COOKIE, app.session_cookie(&session_id)), (header::SET_COOKIE, clear_login)];
            Ok((AppendHeaders(cookies), see_other("/")).into_response())
        }
        Answered::Wrong(()) => {
            tracing::warn!("dashboard: refused a sign-in from {source} (wrong password or code)");
            login_page(&app, &headers, StatusCode::UNAUTHORIZED, Some(WRONG_ANSWER))
        }
        Answered::Throttled(refusal) => {
            tracing::warn!("dashboard: refused a sign-in from {source}: too many wrong answers");
            login_page(&app, &headers, StatusCode::TOO_MANY_REQUESTS, Some(&throttled(refusal)))
        }
    }
}

/// What the page says when the throttle holds an answer back.
fn throttled(refusal: Refusal) -> String {
    match refusal {
        Refusal::Wait { left } => format!(
            "Too many wrong answers from this address: try again in {} (the command line is not affected).",
            crate::time::span(left.as_secs_f64().ceil() as i64)
        ),
        Refusal::Locked { left } => format!(
            "Too many wrong answers: the dashboard's sign-in is locked for {} more (the command line is not affected).",
            crate::time::span(left.as_secs_f64().ceil() as i64)
        ),
    }
}

pub(crate) async fn logout(State(app): State<Shared>, authed: Authed, Form(form): Form<CsrfForm>) -> Page {
    authed.check(&form.csrf)?;
    let id_hash = authed.session.id_hash.clone();
    app.db(move |app| app.ledger.end_sessions(Some(&id_hash))).await?;
    Ok(to_login(&app, false))
}

// ----- overview -----

pub(crate) async fn overview(State(app): State<Shared>, authed: Authed) -> Page {
    let data = app.db(|app| gather::overview(&app.ledger, &app.cfg, &app.activity, now())).await?;
    html(StatusCode::OK, views::overview(&frame(&authed, Nav::Overview, None), &data))
}

// ----- buckets -----

pub(crate) async fn buckets(State(app): State<Shared>, authed: Authed, Query(done): Query<Done>) -> Page {
    buckets_page(&app, &authed, StatusCode::OK, Err(done)).await
}

/// The buckets page, with a notice: an action's error, or what a redirect says.
async fn buckets_page(
    app: &Shared,
    authed: &Authed,
    status: StatusCode,
    notice: std::result::Result<Notice, Done>,
) -> Page {
    let (rows, watches) = app.db(|app| gather::buckets(&app.ledger, &app.cfg, now())).await?;
    let notice = match notice {
        Ok(n) => Some(n),
        Err(done) => done.notice(|b| rows.iter().any(|s| s.bucket.name == b)),
    };
    let destinations: Vec<Destined> = rows.iter().map(|s| destined(&app.cfg, &s.bucket.name)).collect();
    let default = app.cfg.backup_destination().ok();
    html(
        status,
        views::buckets(&frame(authed, Nav::Buckets, notice), &rows, &destinations, default.as_ref(), &watches, now()),
    )
}

/// Where a bucket's new versions go under the settings of this process.
fn destined(cfg: &Config, bucket: &str) -> Destined {
    let own = cfg.buckets.get(bucket).is_some_and(|b| b.own_destination().is_some());
    match cfg.destination_for(bucket) {
        Ok(dest) if own => Destined::Own(dest),
        Ok(dest) => Destined::Default(dest),
        Err(_) => Destined::Unset,
    }
}

#[derive(Deserialize)]
pub(crate) struct BucketForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    code: String,
    from_now: Option<String>,
}

fn done_url(page: &str, done: &str, bucket: Option<&str>, n: u64) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let bucket = bucket.map(|b| format!("&bucket={}", utf8_percent_encode(b, NON_ALPHANUMERIC))).unwrap_or_default();
    format!("{page}?done={done}{bucket}&n={n}")
}

/// Disabling reduces protection: like `tgploy buckets disable`, it needs a fresh code
/// (its wrong answers count towards the dashboard's throttle).
pub(crate) async fn disable_bucket(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    authed: Authed,
    Form(form): Form<BucketForm>,
) -> Page {
    authed.check(&form.csrf)?;
    if form.code.trim().is_empty() {
        let text = format!("disabling {} needs a current code from your authenticator app.", form.bucket);
        return buckets_page(&app, &authed, StatusCode::BAD_REQUEST, Ok(Notice::error(text))).await;
    }
    let source = throttle::source(peer.ip(), &headers);
    let name = form.bucket.clone();
    let code = form.code.clone();
    let answered = app
        .answer(source, move |app| {
            let check = totp::check_at(&app.ledger, &code, now(), Gate::Dashboard)?;
            Ok(if check.passed() { Ok(()) } else { Err(refusal(check)) })
        })
        .await?;
    let outcome = match answered {
        Answered::Right(()) => {
            let unknown = || Err(Error::usage(format!("no bucket named `{}` is known", form.bucket)));
            buckets::disable(&app.ledger, unknown, &form.bucket).await.map(Ok).map_err(Fail::from)
        }
        Answered::Wrong(why) => Ok(Err((StatusCode::FORBIDDEN, why))),
        Answered::Throttled(refusal) => Ok(Err((StatusCode::TOO_MANY_REQUESTS, throttled(refusal)))),
    };
    match outcome {
        Ok(Ok(())) => {
            tracing::info!("dashboard: disabled bucket {name}");
            Ok(see_other(&done_url("/buckets", "disabled", Some(&name), 0)))
        }
        Ok(Err((status, why))) => buckets_page(&app, &authed, status, Ok(Notice::error(why))).await,
        Err(Fail::Error(Error::Config(why) | Error::Usage(why))) => {
            buckets_page(&app, &authed, StatusCode::BAD_REQUEST, Ok(Notice::error(why))).await
        }
        Err(fail) => Err(fail),
    }
}

/// Why a code given on the dashboard was refused. Its wrong answers count towards the
/// dashboard's own throttle, not the command line's lock, so no count of that lock is
/// named.
fn refusal(check: Verdict) -> String {
    match check {
        Verdict::NotEnrolled => "no second factor is enrolled: `tgploy setup totp --reset` enrols one.",
        Verdict::Replayed { .. } => "this code was already used; wait for the next one.",
        _ => "wrong code; use the current code from your authenticator app, or a recovery code.",
    }
    .to_string()
}

pub(crate) async fn enable_bucket(State(app): State<Shared>, authed: Authed, Form(form): Form<BucketForm>) -> Page {
    authed.check(&form.csrf)?;
    let from_now = form.from_now.is_some();
    let name = form.bucket.clone();
    let source = || Ok(S3Source::new(&app.cfg.require_s3()?));
    let outcome = buckets::enable(&app.ledger, source, &form.bucket, from_now).await.map_err(Fail::from);
    match outcome {
        Ok(skipped) => {
            tracing::info!("dashboard: enabled bucket {name}{}", if from_now { " from now on" } else { "" });
            let done = if from_now { "enabled-from-now" } else { "enabled" };
            Ok(see_other(&done_url("/buckets", done, Some(&name), skipped)))
        }
        // S3's answer (unreachable, no such bucket, a missing setting) is the operator's
        // to read; it never holds a secret.
        Err(Fail::Error(e @ (Error::Config(_) | Error::Usage(_) | Error::Unreachable { .. } | Error::Failed(_)))) => {
            let status = match e {
                Error::Config(_) | Error::Usage(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::BAD_GATEWAY,
            };
            buckets_page(&app, &authed, status, Ok(Notice::error(format!("{e:#}")))).await
        }
        Err(fail) => Err(fail),
    }
}

// ----- files -----

#[derive(Deserialize, Default)]
pub(crate) struct FilesQuery {
    bucket: Option<String>,
    prefix: Option<String>,
    /// `SENT_AT.ID` of the last row of the previous page.
    before: Option<String>,
}

pub(crate) async fn files(State(app): State<Shared>, authed: Authed, Query(q): Query<FilesQuery>) -> Page {
    let some = |v: Option<String>| v.filter(|v| !v.is_empty());
    let before = q.before.as_deref().and_then(|b| {
        let (sent_at, id) = b.split_once('.')?;
        Some((sent_at.parse().ok()?, id.parse().ok()?))
    });
    let filter = DeliveredFilter { bucket: some(q.bucket), prefix: some(q.prefix), before };
    let data = app.db(move |app| gather::files(&app.ledger, &app.cfg, filter, now())).await?;
    html(StatusCode::OK, views::files(&frame(&authed, Nav::Files, None), &data))
}

// ----- retry -----

pub(crate) async fn retry(State(app): State<Shared>, authed: Authed, Query(done): Query<Done>) -> Page {
    let data = app.db(|app| gather::retry(&app.ledger, now())).await?;
    html(StatusCode::OK, views::retry(&frame(&authed, Nav::Retry, done.notice(|_| false)), &data))
}

pub(crate) async fn retry_now(State(app): State<Shared>, authed: Authed, Form(form): Form<CsrfForm>) -> Page {
    authed.check(&form.csrf)?;
    let n = app.db(|app| app.ledger.make_failures_due(now())).await?;
    tracing::info!("dashboard: made {n} failed deliveries due");
    Ok(see_other(&done_url("/retry", "due", None, n as u64)))
}

pub(crate) async fn retry_dead(State(app): State<Shared>, authed: Authed, Form(form): Form<CsrfForm>) -> Page {
    authed.check(&form.csrf)?;
    let n = app.db(|app| app.ledger.revive(None, now())).await?.len();
    tracing::info!("dashboard: revived {n} dead deliveries");
    Ok(see_other(&done_url("/retry", "revived", None, n as u64)))
}

// ----- logs -----

#[derive(Deserialize)]
pub(crate) struct LogsQuery {
    before: Option<i64>,
}

pub(crate) async fn logs(State(app): State<Shared>, authed: Authed, Query(q): Query<LogsQuery>) -> Page {
    let data = app.db(move |app| gather::logs(&app.ledger, q.before, now())).await?;
    html(StatusCode::OK, views::logs(&frame(&authed, Nav::Logs, None), &data))
}

// ----- security -----

pub(crate) async fn security(State(app): State<Shared>, authed: Authed, Query(done): Query<Done>) -> Page {
    security_page(&app, &authed, StatusCode::OK, done.notice(|_| false)).await
}

async fn security_page(app: &Shared, authed: &Authed, status: StatusCode, notice: Option<Notice>) -> Page {
    let current = authed.session.id_hash.clone();
    let data = app
        .db(move |app| {
            Ok(views::Security {
                now: now(),
                totp: app.ledger.totp_summary()?,
                sessions: app.ledger.sessions()?,
                current,
            })
        })
        .await?;
    html(status, views::security(&frame(authed, Nav::Security, notice), &data))
}

pub(crate) async fn sign_out_everywhere(State(app): State<Shared>, authed: Authed, Form(form): Form<CsrfForm>) -> Page {
    authed.check(&form.csrf)?;
    let n = app.db(|app| app.ledger.end_sessions(None)).await?;
    tracing::info!("dashboard: signed out everywhere ({n} sessions)");
    Ok(to_login(&app, false))
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
    #[serde(default)]
    code: String,
}

/// A new password needs the current one and a code, checked like a sign-in.
pub(crate) async fn change_password(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    authed: Authed,
    Form(form): Form<PasswordForm>,
) -> Page {
    authed.check(&form.csrf)?;
    let refuse = |status, text: &str| security_page(&app, &authed, status, Some(Notice::error(text)));
    if form.new != form.repeat {
        return refuse(StatusCode::BAD_REQUEST, "the two new passwords differ.").await;
    }
    if let Err(why) = auth::check_new_password(&form.new) {
        return refuse(StatusCode::BAD_REQUEST, &format!("{why}.")).await;
    }
    let source = throttle::source(peer.ip(), &headers);
    let keep = authed.session.id_hash.clone();
    let answered = app
        .answer(source, move |app| {
            Ok(match auth::check_answer(&app.ledger, &form.current, &form.code, now())? {
                auth::Answer::Right => Ok(auth::set_password(&app.ledger, &form.new, Some(&keep))?),
                auth::Answer::Wrong => Err(()),
            })
        })
        .await?;
    match answered {
        Answered::Right(()) => {
            tracing::info!("dashboard: password changed");
            Ok(see_other(&done_url("/security", "password", None, 0)))
        }
        Answered::Wrong(()) => refuse(StatusCode::FORBIDDEN, WRONG_ANSWER).await,
        Answered::Throttled(refusal) => refuse(StatusCode::TOO_MANY_REQUESTS, &throttled(refusal)).await,
    }
}

// ----- settings -----

pub(crate) async fn settings(State(app): State<Shared>, authed: Authed) -> Page {
    let cfg = &app.cfg;
    let (bots, bots_error) = match bots(cfg).await {
        Ok(bots) => (bots, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let data = views::Settings {
        bots,
        bots_error,
        effective: cfg.effective().to_vec(),
        config_file: cfg.file.as_ref().map(|p| p.display().to_string()),
        ledger: app.ledger.path().display().to_string(),
    };
    html(StatusCode::OK, views::settings(&frame(&authed, Nav::Settings, None), &data))
}

/// Each configured bot's id and username (`getMe`, every bot at once, each given a few
/// seconds); never a token.
async fn bots(cfg: &Config) -> std::result::Result<Vec<(i64, std::result::Result<String, String>)>, String> {
    let tokens = cfg.require_bot_tokens().map_err(|e| e.to_string())?;
    let sink = TelegramSink::downloader(&tokens, &cfg.api_url, 0).map_err(|e| e.to_string())?;
    let ids = sink.bot_ids();
    let names = futures_util::future::join_all((0..ids.len()).map(|i| {
        let sink = &sink;
        async move {
            match tokio::time::timeout(BOT_CHECK_TIMEOUT, sink.check_bot(i)).await {
                Ok(Ok(name)) => Ok(name),
                Ok(Err(e)) => Err(sink.redact(&e.to_string())),
                Err(_) => Err(format!("no answer within {} s", BOT_CHECK_TIMEOUT.as_secs())),
            }
        }
    }))
    .await;
    Ok(ids.into_iter().zip(names).collect())
}
