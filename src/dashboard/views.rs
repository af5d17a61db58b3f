//! The pages' HTML (maud, compiled into the binary; every value is escaped). No page
//! needs JavaScript: forms post, links navigate, the overview refreshes with a meta tag.

use std::time::Duration;

use maud::{DOCTYPE, Markup, html};

use crate::buckets::Summary;
use crate::config::{ChatRef, Effective, SETTINGS, Source};
use crate::ledger::{Alert, Counts, DeliveredSummary, Delivery, RunRecord, Session, State, TotpSummary};
use crate::time::{ago, rfc3339};
use crate::units::human_size;

use super::css_path;

/// The overview reloads itself this often.
pub const REFRESH_SECS: u32 = 30;

/// The sidebar's entries: the original plan's, and what tgploy adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Buckets,
    Files,
    Retry,
    Logs,
    Security,
    Settings,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Overview, "/", "Overview"),
    (Nav::Buckets, "/buckets", "Buckets"),
    (Nav::Files, "/files", "Files"),
    (Nav::Retry, "/retry", "Retry queue"),
    (Nav::Logs, "/logs", "Logs"),
    (Nav::Security, "/security", "Security"),
    (Nav::Settings, "/settings", "Settings"),
];

/// A line above the page: what an action did, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub error: bool,
    pub text: String,
}

impl Notice {
    pub fn ok(text: impl Into<String>) -> Notice {
        Notice { error: false, text: text.into() }
    }

    pub fn error(text: impl Into<String>) -> Notice {
        Notice { error: true, text: text.into() }
    }
}

/// What every signed-in page shares.
pub struct Frame<'a> {
    pub nav: Nav,
    pub csrf: &'a str,
    pub notice: Option<Notice>,
}

fn head(title: &str, refresh: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="dark";
            @if refresh { meta http-equiv="refresh" content=(REFRESH_SECS); }
            title { (title) " · tgploy" }
            link rel="stylesheet" href=(css_path());
        }
    }
}

/// Text with `backticked` commands and settings set as code.
fn prose(text: &str) -> Markup {
    html! {
        @for (i, piece) in text.split('`').enumerate() {
            @if i % 2 == 1 { code { (piece) } } @else { (piece) }
        }
    }
}

fn notice(n: &Option<Notice>) -> Markup {
    html! {
        @if let Some(n) = n {
            @if n.error {
                div.notice.notice-error role="alert" { strong { "Not done:" } (prose(&n.text)) }
            } @else {
                div.notice role="status" { strong { "Done:" } (prose(&n.text)) }
            }
        }
    }
}

/// A signed-in page: the sidebar, the title, the notice, the body.
fn page(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, frame.nav == Nav::Overview && frame.notice.is_none()))
            body {
                a.skip href="#main" { "Skip to content" }
                div.layout {
                    header.sidebar {
                        p.brand { a href="/" { "tgploy" } }
                        p.tagline { "Backups delivered to Telegram" }
                        nav aria-label="Main" {
                            ul.nav {
                                @for (entry, href, label) in NAV {
                                    li { a href=(href) aria-current=[(*entry == frame.nav).then_some("page")] { (label) } }
                                }
                            }
                        }
                        (button_form("/logout", frame.csrf, "btn-ghost", "Sign out", false))
                    }
                    main.content #main {
                        h1 { (title) }
                        (notice(&frame.notice))
                        (body)
                    }
                }
            }
        }
    }
}

/// A page outside the signed-in frame (sign-in, errors).
fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, false))
            body { main.login #main { div.card { (body) } } }
        }
    }
}

pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    bare(
        "Sign in",
        html! {
            h1 { "tgploy" }
            p.muted { "Sign in with the dashboard password and a current code from your authenticator app." }
            @if let Some(e) = error { div.notice.notice-error role="alert" { (e) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required autofocus;
                }
                div.field {
                    label for="code" { "Code" }
                    input #code type="text" name="code" autocomplete="one-time-code" autocapitalize="none"
                        spellcheck="false" aria-describedby="code-hint" required;
                    p.hint #code-hint { "6 digits from the app, or one of your recovery codes." }
                }
                button.btn type="submit" { "Sign in" }
            }
        },
    )
}

/// An error page for a request that cannot be served.
pub fn problem(title: &str, text: &str) -> Markup {
    bare(
        title,
        html! {
            h1 { (title) }
            p { (text) }
            p { a href="/" { "Back to the overview" } }
        },
    )
}

// ----- pieces -----

/// A state, in words on its colour.
pub fn state_badge(state: State) -> Markup {
    let (class, word) = match state {
        State::Pending => ("pending", "pending"),
        State::Sending => ("sending", "in flight"),
        State::Sent => ("sent", "sent"),
        State::Failed => ("failed", "failed"),
        State::Dead => ("dead", "dead"),
        State::Skipped => ("skipped", "skipped"),
    };
    badge(class, word)
}

fn badge(class: &str, word: &str) -> Markup {
    html! { span class={ "badge badge-" (class) } { (word) } }
}

/// `2026-11-27 21:49:19 UTC`.
fn stamp(unix_secs: i64) -> String {
    rfc3339(unix_secs).replace('T', " ").replace('Z', " UTC")
}

/// A time, and how long ago it was.
fn when(unix_secs: Option<i64>, now: i64) -> Markup {
    html! {
        @match unix_secs {
            Some(t) => {
                time datetime=(rfc3339(t)) { (stamp(t)) }
                br;
                span.muted { (ago(t, now)) }
            }
            None => span.muted { "never" },
        }
    }
}

/// How long ago, alone (the time itself is in the element's `datetime` and title).
fn ago_only(unix_secs: Option<i64>, now: i64) -> Markup {
    html! {
        @match unix_secs {
            Some(t) => time datetime=(rfc3339(t)) title=(stamp(t)) { (ago(t, now)) },
            None => span.muted { "never" },
        }
    }
}

fn object(bucket: &str, key: &str) -> Markup {
    html! { span.key { (bucket) "/" (key) } }
}

/// A table that becomes a list of cards on a phone; `head` names the columns, numeric
/// ones marked with `#`.
fn table(label: &str, head: &[&str], rows: Markup) -> Markup {
    html! {
        div.table-wrap role="region" aria-label=(label) tabindex="0" {
            table.rtable {
                thead {
                    tr {
                        @for h in head {
                            @if let Some(h) = h.strip_prefix('#') { th.num scope="col" { (h) } }
                            @else { th scope="col" { (h) } }
                        }
                    }
                }
                tbody { (rows) }
            }
        }
    }
}

/// A form that is one button.
fn button_form(action: &str, csrf: &str, class: &str, label: &str, disabled: bool) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            button class={ "btn " (class) } type="submit" disabled[disabled] { (label) }
        }
    }
}

fn empty(text: &str) -> Markup {
    html! { p.empty.table-wrap { (text) } }
}

/// A link to a message in the backup chat, where Telegram has one: channels and
/// supergroups (`-100…`) as `t.me/c/…`, public ones by name.
pub fn message_link(chat: &ChatRef, message_id: i64) -> Option<String> {
    match chat {
        ChatRef::Id(id) if *id <= -1_000_000_000_000 => {
            Some(format!("https://t.me/c/{}/{message_id}", -1_000_000_000_000 - id))
        }
        ChatRef::Username(name) => Some(format!("https://t.me/{}/{message_id}", name.trim_start_matches('@'))),
        ChatRef::Id(_) => None,
    }
}

fn run_status(run: &RunRecord) -> Markup {
    html! {
        @match &run.error {
            None => (badge("ok", "ok")),
            Some(e) => { (badge("error", "error")) " " span.error-text { (e) } }
        }
    }
}

fn duration(run: &RunRecord) -> String {
    humantime::format_duration(Duration::from_secs((run.finished_at - run.started_at).max(0) as u64)).to_string()
}

// ----- overview -----

pub struct Overview {
    pub now: i64,
    pub totals: Counts,
    pub buckets: Vec<Summary>,
    pub last_sync: Option<RunRecord>,
    pub last_ok_sync: Option<RunRecord>,
    pub last_heartbeat: Option<RunRecord>,
    pub alerts_waiting: u64,
    pub latest: Vec<DeliveredSummary>,
    pub runs: Vec<(i64, RunRecord)>,
}

pub fn overview(frame: &Frame<'_>, o: &Overview) -> Markup {
    let t = &o.totals;
    let body = html! {
        p.lead { "What reached Telegram, what waits, and when tgploy last ran. This page reloads every "
            (REFRESH_SECS) " seconds." }
        section.cards aria-label="Summary" {
            div.card.accent-lime {
                h2 { "Delivered" }
                span.big { (t.sent) }
                p { "objects, " strong { (human_size(t.sent_bytes)) } }
            }
            div.card {
                h2 { "Last sync" }
                @match &o.last_sync {
                    Some(run) => {
                        span.big { (ago(run.finished_at, o.now)) }
                        p { time datetime=(rfc3339(run.finished_at)) { (stamp(run.finished_at)) } }
                        p { (run_status(run)) }
                        @if run.error.is_some() {
                            p.muted { "Last successful: "
                                @match &o.last_ok_sync { Some(ok) => (ago(ok.finished_at, o.now)), None => "never" } }
                        }
                    }
                    None => { span.big { "never" } p { (badge("never", "no sync yet")) } }
                }
            }
            div.card.accent-yellow {
                h2 { "Last heartbeat" }
                @match &o.last_heartbeat {
                    Some(run) => {
                        span.big { (ago(run.finished_at, o.now)) }
                        p { time datetime=(rfc3339(run.finished_at)) { (stamp(run.finished_at)) } }
                    }
                    None => { span.big { "never" } p.muted { (prose("RunRecord `tgploy heartbeat` daily from a timer.")) } }
                }
            }
            div.card.accent-magenta {
                h2 { "Queue" }
                ul.queue {
                    li { (state_badge(State::Pending)) span { (t.pending) } }
                    li { (state_badge(State::Sending)) span { (t.sending) } }
                    li { (state_badge(State::Failed)) span { (t.failed) } }
                    li { (state_badge(State::Dead)) span { (t.dead) } }
                }
            }
            div.card {
                h2 { "Alerts waiting" }
                span.big { (o.alerts_waiting) }
                p.muted { @if o.alerts_waiting == 0 { "Every alert reached the admin chat." }
                          @else { "Not yet sent to the admin chat." } }
            }
        }
        h2 { "Buckets" }
        (bucket_table(&o.buckets, o.now, None))
        h2 { "Latest deliveries" }
        @if o.latest.is_empty() { (empty("Nothing delivered yet.")) } @else {
            (table("Latest deliveries", &["Object", "#Size", "#Parts", "Sent", "State"], html! {
                @for f in &o.latest {
                    tr {
                        td data-label="Object" { (object(&f.delivery.object.bucket, &f.delivery.object.key)) }
                        td.num data-label="Size" { (human_size(f.delivery.object.size)) }
                        td.num data-label="Parts" { (f.parts) }
                        td data-label="Sent" { (when(f.delivery.sent_at, o.now)) }
                        td data-label="State" { (state_badge(f.delivery.state)) }
                    }
                }
            }))
            p { a href="/files" { "Every delivered object →" } }
        }
        h2 { "Latest runs" }
        (runs_table(&o.runs, o.now))
        p { a href="/logs" { "The whole history →" } }
    };
    page(frame, "Overview", body)
}

fn runs_table(runs: &[(i64, RunRecord)], now: i64) -> Markup {
    html! {
        @if runs.is_empty() { (empty("No run recorded yet.")) } @else {
            (table("Runs", &["Kind", "Started", "Duration", "#Sent", "#Failed", "#Bytes", "Result"], html! {
                @for (_, r) in runs {
                    tr {
                        td data-label="Kind" { strong { (r.kind) } }
                        td data-label="Started" { (when(Some(r.started_at), now)) }
                        td data-label="Duration" { (duration(r)) }
                        td.num data-label="Sent" { (r.sent) }
                        td.num data-label="Failed" { (r.failed) }
                        td.num data-label="Bytes" { (human_size(r.bytes)) }
                        td data-label="Result" { (run_status(r)) }
                    }
                }
            }))
        }
    }
}

// ----- buckets -----

/// The buckets with their counts; with `csrf`, each row gets its switch.
fn bucket_table(buckets: &[Summary], now: i64, csrf: Option<&str>) -> Markup {
    let mut head = vec!["Bucket", "State", "#Delivered", "#Bytes", "#Pending", "#Failed", "#Dead", "Last listed"];
    if csrf.is_some() {
        head.push("Switch");
    }
    html! {
        @if buckets.is_empty() {
            p.empty.table-wrap { (prose("No bucket known yet: the first `tgploy sync` discovers them.")) }
        } @else {
            (table("Buckets", &head, html! {
                @for (i, s) in buckets.iter().enumerate() {
                    @let (b, c) = (&s.bucket, &s.counts);
                    tr {
                        td data-label="Bucket" { span.name { (b.name) } }
                        td data-label="State" {
                            @if b.enabled { (badge("enabled", "enabled")) } @else { (badge("disabled", "disabled")) }
                        }
                        td.num data-label="Delivered" { (c.sent) }
                        td.num data-label="Bytes" { (human_size(c.sent_bytes)) }
                        td.num data-label="Pending" { (c.pending + c.sending) }
                        td.num data-label="Failed" { (c.failed) }
                        td.num data-label="Dead" { (c.dead) }
                        td data-label="Last listed" {
                            @if let Some(e) = &b.last_error { (badge("error", "error")) " " span.error-text { (e) } }
                            @else { (ago_only(b.last_listed_at, now)) }
                        }
                        @if let Some(csrf) = csrf {
                            td data-label="Switch" { (bucket_switch(i, &b.name, b.enabled, csrf)) }
                        }
                    }
                }
            }))
        }
    }
}

fn bucket_switch(i: usize, name: &str, enabled: bool, csrf: &str) -> Markup {
    html! {
        @if enabled {
            form.inline-form method="post" action="/buckets/disable" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="bucket" value=(name);
                div.field {
                    label for={ "code-" (i) } { "Code to disable" }
                    input id={ "code-" (i) } type="text" name="code" inputmode="numeric" autocomplete="one-time-code"
                        autocapitalize="none" spellcheck="false" required;
                }
                button.btn.btn-danger type="submit" { "Disable" span.visually-hidden { " " (name) } }
            }
        } @else {
            form.inline-form method="post" action="/buckets/enable" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="bucket" value=(name);
                label.check for={ "from-now-" (i) } {
                    input id={ "from-now-" (i) } type="checkbox" name="from_now" value="1";
                    "only objects from now on"
                }
                button.btn.btn-lime type="submit" { "Enable" span.visually-hidden { " " (name) } }
            }
        }
    }
}

pub fn buckets(frame: &Frame<'_>, buckets: &[Summary], now: i64) -> Markup {
    let body = html! {
        p.lead { (prose(
            "A disabled bucket is no longer delivered by `sync` or the webhook server; what was delivered stays in \
             Telegram. Disabling reduces protection, so it asks for a fresh second-factor code, as the command line \
             does. Enabling with “only objects from now on” records the objects the bucket holds now as skipped."
        )) }
        (bucket_table(buckets, now, Some(frame.csrf)))
    };
    page(frame, "Buckets", body)
}

// ----- files -----

pub struct Files {
    pub now: i64,
    pub buckets: Vec<String>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub rows: Vec<DeliveredSummary>,
    pub total: u64,
    /// The count stopped there, if it had a limit.
    pub counted_up_to: Option<u64>,
    /// The link to the next page, when there is one.
    pub next: Option<String>,
    pub first_page: bool,
    pub chat: Option<ChatRef>,
}

pub fn files(frame: &Frame<'_>, f: &Files) -> Markup {
    let body = html! {
        p.lead { (prose("Every delivered object with its parts and SHA-256; `tgploy restore BUCKET/KEY` rebuilds one.")) }
        form.filters method="get" action="/files" {
            div.field {
                label for="bucket" { "Bucket" }
                select #bucket name="bucket" {
                    option value="" selected[f.bucket.is_none()] { "All buckets" }
                    @for b in &f.buckets {
                        option value=(b) selected[f.bucket.as_deref() == Some(b.as_str())] { (b) }
                    }
                }
            }
            div.field {
                label for="prefix" { "Key prefix" }
                input #prefix type="text" name="prefix" value=[f.prefix.as_deref()] autocapitalize="none" spellcheck="false";
            }
            button.btn type="submit" { "Filter" }
        }
        @match f.counted_up_to {
            Some(limit) if f.total > limit => p { "More than " strong { (limit) } " delivered objects match." },
            _ => p { strong { (f.total) } " delivered objects match." },
        }
        @if f.rows.is_empty() { (empty("No delivered object matches.")) } @else {
            (table("Delivered objects", &["Object", "#Size", "#Parts", "SHA-256", "Sent", "Message"], html! {
                @for row in &f.rows {
                    @let d = &row.delivery;
                    tr {
                        td data-label="Object" {
                            (object(&d.object.bucket, &d.object.key))
                            @if d.encrypted { " " (badge("current", "encrypted")) }
                        }
                        td.num data-label="Size" { (human_size(d.object.size)) }
                        td.num data-label="Parts" { (row.parts) }
                        td data-label="SHA-256" { span.hash { (d.sha256.as_deref().unwrap_or("—")) } }
                        td data-label="Sent" { (when(d.sent_at, f.now)) }
                        td data-label="Message" { (message_cell(f.chat.as_ref(), row.first_message_id, d)) }
                    }
                }
            }))
        }
        nav.pager aria-label="Pages" {
            @if !f.first_page { a.btn.btn-ghost href=(files_href(f.bucket.as_deref(), f.prefix.as_deref(), None)) { "← Newest" } }
            @if let Some(next) = &f.next { a.btn href=(next) { "Older →" } }
        }
    };
    page(frame, "Files", body)
}

fn message_cell(chat: Option<&ChatRef>, first: Option<i64>, d: &Delivery) -> Markup {
    let link = |id: i64| chat.and_then(|c| message_link(c, id));
    html! {
        @match first {
            Some(id) => {
                @if let Some(url) = link(id) { a href=(url) rel="noreferrer" { "message " (id) } } @else { "message " (id) }
                @if let Some(m) = d.manifest_message_id {
                    br;
                    @if let Some(url) = link(m) { a href=(url) rel="noreferrer" { "manifest " (m) } } @else { "manifest " (m) }
                }
            }
            None => span.muted { "—" },
        }
    }
}

/// `/files?…` for a filter and a page.
pub fn files_href(bucket: Option<&str>, prefix: Option<&str>, before: Option<(i64, i64)>) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut params = Vec::new();
    for (name, value) in [("bucket", bucket), ("prefix", prefix)] {
        if let Some(v) = value {
            params.push(format!("{name}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)));
        }
    }
    if let Some((sent_at, id)) = before {
        params.push(format!("before={sent_at}.{id}"));
    }
    if params.is_empty() { "/files".into() } else { format!("/files?{}", params.join("&")) }
}

// ----- retry -----

pub struct Retry {
    pub now: i64,
    pub failed: Vec<Delivery>,
    pub failed_total: u64,
    pub dead: Vec<Delivery>,
    pub dead_total: u64,
}

pub fn retry(frame: &Frame<'_>, r: &Retry) -> Markup {
    let body = html! {
        p.lead { (prose(
            "Failed deliveries are retried on a backoff schedule (1 min, 5 min, 15 min, 1 h, 6 h, then daily); \
             after `max_attempts` they are dead and wait for you. “Retry now” and “Retry dead” only make them due: \
             the next `tgploy retry` run (the retry timer runs it every few minutes) delivers them; \
             `serve-webhook` delivers new objects, not failures."
        )) }
        h2 { "Failed: " (r.failed_total) }
        div.actions {
            (button_form("/retry/now", frame.csrf, "btn-yellow", "Retry now", r.failed_total == 0))
        }
        (failures_table("Failed deliveries", &r.failed, r.failed_total, r.now))
        h2 { "Dead: " (r.dead_total) }
        div.actions {
            (button_form("/retry/dead", frame.csrf, "btn-danger", "Retry dead", r.dead_total == 0))
        }
        p.muted { "Fix the cause first: the last error says what it was." }
        (failures_table("Dead deliveries", &r.dead, r.dead_total, r.now))
    };
    page(frame, "Retry queue", body)
}

fn failures_table(label: &str, rows: &[Delivery], total: u64, now: i64) -> Markup {
    html! {
        @if rows.is_empty() { (empty("None.")) } @else {
            (table(label, &["#Id", "Object", "State", "#Attempts", "Next attempt", "Last error"], html! {
                @for d in rows {
                    tr {
                        td.num data-label="Id" { (d.id) }
                        td data-label="Object" { (object(&d.object.bucket, &d.object.key)) }
                        td data-label="State" { (state_badge(d.state)) }
                        td.num data-label="Attempts" { (d.attempts) }
                        td data-label="Next attempt" {
                            @match d.next_attempt_at {
                                Some(t) if t <= now => { "due now" }
                                Some(t) => { time datetime=(rfc3339(t)) { (stamp(t)) } }
                                None => span.muted { "never: dead" },
                            }
                        }
                        td data-label="Last error" { span.error-text { (d.last_error.as_deref().unwrap_or("—")) } }
                    }
                }
            }))
            @if total > rows.len() as u64 { p.muted { "And " (total - rows.len() as u64) " more." } }
        }
    }
}

// ----- logs -----

pub struct Logs {
    pub now: i64,
    pub runs: Vec<(i64, RunRecord)>,
    pub older: Option<i64>,
    pub first_page: bool,
    pub alerts: Vec<Alert>,
    pub alerts_waiting: u64,
}

pub fn logs(frame: &Frame<'_>, l: &Logs) -> Markup {
    let body = html! {
        h2 { "Runs" }
        (runs_table(&l.runs, l.now))
        nav.pager aria-label="Pages of runs" {
            @if !l.first_page { a.btn.btn-ghost href="/logs" { "← Newest" } }
            @if let Some(before) = l.older { a.btn href={ "/logs?before=" (before) } { "Older runs →" } }
        }
        h2 { "Alerts" }
        p.lead { (l.alerts_waiting) " " (prose("waiting for the admin chat (`telegram.admin_chat_id`); they go out with \
            the next run that reaches Telegram.")) }
        @if l.alerts.is_empty() { (empty("No alert yet.")) } @else {
            (table("Alerts", &["Raised", "State", "Alert", "#Attempts"], html! {
                @for a in &l.alerts {
                    tr {
                        td data-label="Raised" { (when(Some(a.created_at), l.now)) }
                        td data-label="State" {
                            @match a.sent_at {
                                Some(t) => { (badge("sent", "sent")) br; span.muted { (ago(t, l.now)) } }
                                None => {
                                    (badge("waiting", "waiting"))
                                    @if let Some(e) = &a.last_error { br; span.error-text { (e) } }
                                }
                            }
                        }
                        td data-label="Alert" { span.error-text { (a.text) } }
                        td.num data-label="Attempts" { (a.attempts) }
                    }
                }
            }))
        }
    };
    page(frame, "Logs", body)
}

// ----- security -----

pub struct Security {
    pub now: i64,
    pub totp: Option<TotpSummary>,
    pub sessions: Vec<Session>,
    pub current: String,
}

pub fn security(frame: &Frame<'_>, s: &Security) -> Markup {
    let body = html! {
        section.cards aria-label="Second factor" {
            div.card.accent-lime {
                h2 { "Second factor" }
                @match &s.totp {
                    Some(t) => {
                        span.big { (badge("set", "enrolled")) }
                        p { "since " time datetime=(rfc3339(t.enrolled_at)) { (stamp(t.enrolled_at)) } }
                    }
                    None => { span.big { (badge("not-set", "not enrolled")) } }
                }
            }
            div.card.accent-yellow {
                h2 { "Recovery codes left" }
                span.big { (s.totp.as_ref().map_or(0, |t| t.recovery_codes_left)) }
                p.muted { (prose("of 10; `tgploy setup totp --reset` makes new ones.")) }
            }
            div.card.accent-magenta {
                h2 { "Wrong answers" }
                @match &s.totp {
                    Some(t) if t.locked_until > s.now => {
                        span.big { (badge("locked", "locked")) }
                        p { "until " (stamp(t.locked_until)) }
                    }
                    Some(t) => { span.big { (t.failures) } p.muted { "in a row; 5 lock sign-in and the command line for 15 minutes." } }
                    None => { span.big { "—" } }
                }
            }
        }
        h2 { "Sessions" }
        (table("Active sessions", &["Signed in", "Last use", "Browser", "Current"], html! {
            @for session in &s.sessions {
                tr {
                    td data-label="Signed in" { (when(Some(session.created_at), s.now)) }
                    td data-label="Last use" { (when(Some(session.last_seen_at), s.now)) }
                    td data-label="Browser" { span.error-text { (session.user_agent.as_deref().unwrap_or("unknown")) } }
                    td data-label="Current" { @if session.id_hash == s.current { (badge("current", "this session")) } }
                }
            }
        }))
        p.muted { "A session ends after 30 minutes without use, and 12 hours after sign-in." }
        (button_form("/security/sign-out-everywhere", frame.csrf, "btn-danger", "Sign out everywhere", false))
        h2 { "Change the password" }
        form.panel method="post" action="/security/password" {
            input type="hidden" name="csrf" value=(frame.csrf);
            div.field {
                label for="current" { "Current password" }
                input #current type="password" name="current" autocomplete="current-password" required;
            }
            div.field {
                label for="new" { "New password" }
                input #new type="password" name="new" autocomplete="new-password" minlength="12" required aria-describedby="new-hint";
                p.hint #new-hint { "At least 12 characters." }
            }
            div.field {
                label for="repeat" { "New password again" }
                input #repeat type="password" name="repeat" autocomplete="new-password" minlength="12" required;
            }
            div.field {
                label for="pw-code" { "Code" }
                input #pw-code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" autocapitalize="none" required;
            }
            button.btn type="submit" { "Change the password" }
            p.hint { "Every other session is signed out." }
        }
    };
    page(frame, "Security", body)
}

// ----- settings -----

pub struct Settings {
    pub effective: Vec<Effective>,
    pub config_file: Option<String>,
    pub ledger: String,
}

fn source(s: &Option<Source>) -> String {
    match s {
        None => "nothing sets it".into(),
        Some(Source::File { path, line }) => format!("{}, line {line}", path.display()),
        Some(other) => other.to_string(),
    }
}

pub fn settings(frame: &Frame<'_>, s: &Settings) -> Markup {
    let body = html! {
        p.lead {
            "The effective configuration of this dashboard process: built-in defaults, then the config file, then the "
            "environment, then flags. Secrets are only said to be set or not."
        }
        p { "Config file: " code { (s.config_file.as_deref().unwrap_or("none")) } br; "Ledger: " code { (s.ledger) } }
        (table("Settings", &["Setting", "Value", "From", "What it does"], html! {
            @for e in &s.effective {
                tr {
                    td data-label="Setting" { code { (e.key) } }
                    td data-label="Value" {
                        @if e.secret {
                            @if e.value.is_some() { (badge("set", "set")) } @else { (badge("not-set", "not set")) }
                        } @else {
                            @match &e.value { Some(v) => span.value { (v) }, None => span.muted { "not set" } }
                        }
                    }
                    td data-label="From" { span.value { (source(&e.source)) } }
                    td data-label="What it does" {
                        (SETTINGS.iter().find(|x| x.key == e.key).map_or("", |x| x.about))
                    }
                }
            }
        }))
    };
    page(frame, "Settings", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_links_exist_for_channels_supergroups_and_public_chats() {
        let link = |chat: &str, id| message_link(&chat.parse().unwrap(), id);
        assert_eq!(link("-1001234567890", 42).as_deref(), Some("https://t.me/c/1234567890/42"));
        assert_eq!(link("@backups", 7).as_deref(), Some("https://t.me/backups/7"));
        assert_eq!(link("-4242", 7), None, "a basic group has no public link");
        assert_eq!(link("4242", 7), None, "nor a private chat");
        assert!(message_link(&ChatRef::Id(i64::MIN), 1).is_some());
    }

    #[test]
    fn values_are_escaped() {
        let html = object("b", "<script>alert(1)</script>").into_string();
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn file_page_links_keep_the_filter() {
        assert_eq!(files_href(None, None, None), "/files");
        assert_eq!(files_href(Some("db"), Some("a b/"), Some((10, 3))), "/files?bucket=db&prefix=a%20b%2F&before=10.3");
    }
}
