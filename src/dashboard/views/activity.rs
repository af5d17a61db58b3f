//! The pages of what happened: the overview, the files, the retry queue, the logs.

use maud::{Markup, html};

use super::{
    Frame, REFRESH_SECS, badge, bucket_table, button_form, duration, empty, object, page, prose, run_status, stamp,
    state_badge, table, watch_table, when,
};
use crate::buckets::Summary;
use crate::config::ChatRef;
use crate::freshness::WatchStatus;
use crate::ledger::{Alert, Counts, DeliveredSummary, Delivery, RunRecord, State};
use crate::sizes::human_size;
use crate::time::{ago, rfc3339};

/// A link to a message, where Telegram has one: in channels and supergroups (`-100…`)
/// as `t.me/c/…`, in public ones by name; in a forum topic, through the topic. `chat` is
/// the chat as the ledger recorded it.
pub fn message_link(chat: &str, topic: Option<i64>, message_id: i64) -> Option<String> {
    let base = match chat.parse::<ChatRef>().ok()? {
        ChatRef::Id(id) if id <= -1_000_000_000_000 => format!("https://t.me/c/{}", -1_000_000_000_000 - id),
        ChatRef::Username(name) => format!("https://t.me/{}", name.trim_start_matches('@')),
        ChatRef::Id(_) => return None,
    };
    Some(match topic {
        Some(topic) => format!("{base}/{topic}/{message_id}"),
        None => format!("{base}/{message_id}"),
    })
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
    pub watches: Vec<WatchStatus>,
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
                    None => { span.big { "never" } p.muted { (prose("Run `tgploy heartbeat` daily from a timer.")) } }
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
        @if !o.watches.is_empty() {
            h2 { "Freshness" }
            @let overdue = o.watches.iter().filter(|w| w.overdue).count();
            @if overdue > 0 {
                div.notice.notice-error role="alert" { strong { "Overdue:" }
                    (overdue) " of " (o.watches.len()) " watched places got no new backup in time." }
            }
            (watch_table(&o.watches, o.now))
        }
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
                        td data-label="Message" { (message_cell(row.first_message_id, d)) }
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

/// The first message of a delivery and its manifest, linked in the chat and topic the
/// delivery went to.
fn message_cell(first: Option<i64>, d: &Delivery) -> Markup {
    let link = |id: i64| d.chat.as_deref().and_then(|chat| message_link(chat, d.topic, id));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_links_exist_for_channels_supergroups_public_chats_and_topics() {
        assert_eq!(message_link("-1001234567890", None, 42).as_deref(), Some("https://t.me/c/1234567890/42"));
        assert_eq!(message_link("-1001234567890", Some(5), 42).as_deref(), Some("https://t.me/c/1234567890/5/42"));
        assert_eq!(message_link("@backups", None, 7).as_deref(), Some("https://t.me/backups/7"));
        assert_eq!(message_link("@backups", Some(3), 7).as_deref(), Some("https://t.me/backups/3/7"));
        assert_eq!(message_link("-4242", None, 7), None, "a basic group has no public link");
        assert_eq!(message_link("4242", None, 7), None, "nor a private chat");
        assert_eq!(message_link("", None, 7), None, "nor a chat not recorded");
        assert!(message_link(&i64::MIN.to_string(), None, 1).is_some());
    }

    #[test]
    fn file_page_links_keep_the_filter() {
        assert_eq!(files_href(None, None, None), "/files");
        assert_eq!(files_href(Some("db"), Some("a b/"), Some((10, 3))), "/files?bucket=db&prefix=a%20b%2F&before=10.3");
    }
}
