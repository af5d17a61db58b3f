//! The pages of what happened: the overview, the files, the retry queue, the logs.

use maud::{Markup, html};

use super::{
    Activity, Frame, Live, ago_only, badge, bucket_table, charts, duration, empty, freshness_chart, object, page,
    prose, region, run_status, stamp, state_badge, table, watch_table, when,
};
use crate::buckets::Summary;
use crate::config::ChatRef;
use crate::freshness::WatchStatus;
use crate::ledger::{Alert, Counts, DeliveredSummary, Delivery, InFlight, RunRecord, RunUnderWay, State};
use crate::sizes::human_size;
use crate::time::{ago, rfc3339, span};

/// A link to a message, where Telegram has one: in channels and supergroups (`-100…`)
/// as `t.me/c/…`, in public ones by name; in a forum topic, through the topic. `chat` is
/// the chat as the ledger recorded it.
pub(crate) fn message_link(chat: &str, topic: Option<i64>, message_id: i64) -> Option<String> {
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

// ----- in flight -----

/// A delivery in flight, with the parts it has in all.
#[derive(Debug, Clone)]
pub(crate) struct Flying {
    pub(crate) delivery: InFlight,
    /// Parts in all; an estimate (`about`) for an encrypted stream, whose header's size
    /// is known only once it is written.
    pub(crate) total: u32,
    pub(crate) about: bool,
    /// Its lease ran out: the run that held it is gone, and the next run takes it over.
    pub(crate) stalled: bool,
}

/// The deliveries in flight, each with its parts so far (`k of n`), its bytes and when
/// its last part was accepted; `total` is how many there are in all.
fn in_flight_table(rows: &[Flying], total: u64, now: i64) -> Markup {
    html! {
        @if rows.is_empty() { (empty("Nothing in flight.")) } @else {
            (table("Deliveries in flight", &["Object", "#Parts", "#Bytes", "Progress", "Last part"], html! {
                @for f in rows {
                    @let d = &f.delivery;
                    tr data-delivery=(d.id) data-done=(d.parts_done) data-total=(f.total) {
                        td data-label="Object" {
                            (object(&d.bucket, &d.key)) " "
                            @if f.stalled { (badge("stalled", "stalled")) } @else { (state_badge(State::Sending)) }
                        }
                        td.num data-label="Parts" {
                            span.parts { (d.parts_done) " of " @if f.about { "about " } (f.total) }
                        }
                        td.num data-label="Bytes" { (human_size(d.bytes_done)) " of " (human_size(d.size)) }
                        td data-label="Progress" {
                            // The parts column says it in words.
                            progress max=(f.total.max(1)) value=(d.parts_done.min(f.total.max(1))) aria-hidden="true" {}
                        }
                        td data-label="Last part" {
                            @match d.last_part_at {
                                Some(t) => (ago_only(Some(t), now)),
                                None => { span.muted { "none yet; claimed " } (ago_only(Some(d.updated_at), now)) }
                            }
                        }
                    }
                }
            }))
            @if total > rows.len() as u64 { p.muted { "And " (total - rows.len() as u64) " more in flight." } }
        }
    }
}

// ----- overview -----

pub(crate) struct Overview {
    pub(crate) now: i64,
    pub(crate) totals: Counts,
    pub(crate) buckets: Vec<Summary>,
    pub(crate) last_sync: Option<RunRecord>,
    pub(crate) last_ok_sync: Option<RunRecord>,
    pub(crate) last_heartbeat: Option<RunRecord>,
    pub(crate) alerts_waiting: u64,
    pub(crate) latest: Vec<DeliveredSummary>,
    pub(crate) under_way: Vec<RunUnderWay>,
    pub(crate) runs: Vec<(i64, RunRecord)>,
    pub(crate) watches: Vec<WatchStatus>,
    pub(crate) in_flight: Vec<Flying>,
    pub(crate) activity: Activity,
}

/// The overview's live regions, in the order the page shows them.
pub(crate) fn overview_live(o: &Overview) -> Live {
    Live {
        regions: vec![
            ("live-cards", overview_cards(o)),
            ("live-inflight", in_flight_table(&o.in_flight, o.totals.sending, o.now)),
            ("live-charts", charts(&o.activity)),
            ("live-buckets", bucket_table(&o.buckets, o.now, None)),
            ("live-watches", overview_watches(o)),
            ("live-latest", latest_table(o)),
            ("live-runs", runs_table(&o.under_way, &o.runs, o.now)),
        ],
        fields: Vec::new(),
    }
}

pub(crate) fn overview(frame: &Frame<'_>, o: &Overview) -> Markup {
    let live = overview_live(o);
    let body = html! {
        p.lead { "What reached Telegram, what is on its way, what waits, and when tgploy last ran." }
        @for (id, content) in live.regions {
            @match id {
                "live-charts" => { h2 { "The last 7 days" } (region(id, content)) }
                "live-inflight" => { h2 { "In flight" } (region(id, content)) }
                "live-buckets" => { h2 { "Buckets" } (region(id, content)) }
                "live-latest" => { h2 { "Latest deliveries" } (region(id, content)) p { a href="/files" { "Every delivered object →" } } }
                "live-runs" => { h2 { "Latest runs" } (region(id, content)) p { a href="/logs" { "The whole history →" } } }
                _ => (region(id, content)),
            }
        }
    };
    page(frame, "Overview", body)
}

fn overview_cards(o: &Overview) -> Markup {
    let t = &o.totals;
    html! {
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
    }
}

fn overview_watches(o: &Overview) -> Markup {
    html! {
        @if !o.watches.is_empty() {
            h2 { "Freshness" }
            @let overdue = o.watches.iter().filter(|w| w.overdue).count();
            @if overdue > 0 {
                div.notice.notice-error role="alert" { strong { "Overdue:" }
                    (overdue) " of " (o.watches.len()) " watched places got no new backup in time." }
            }
            (freshness_chart(&o.watches, o.now))
            (watch_table(&o.watches, o.now))
        }
    }
}

fn latest_table(o: &Overview) -> Markup {
    html! {
        @if o.latest.is_empty() { (empty("Nothing delivered yet.")) } @else {
            (table("Latest deliveries", &["Object", "#Size", "#Parts", "Sent", "State"], html! {
                @for f in &o.latest {
                    tr data-delivery=(f.delivery.id) {
                        td data-label="Object" { (object(&f.delivery.object.bucket, &f.delivery.object.key)) }
                        td.num data-label="Size" { (human_size(f.delivery.object.size)) }
                        td.num data-label="Parts" { (f.parts) }
                        td data-label="Sent" { (when(f.delivery.sent_at, o.now)) }
                        td data-label="State" { (state_badge(f.delivery.state)) }
                    }
                }
            }))
        }
    }
}

/// The runs under way, then the finished ones.
fn runs_table(under_way: &[RunUnderWay], runs: &[(i64, RunRecord)], now: i64) -> Markup {
    html! {
        @if runs.is_empty() && under_way.is_empty() { (empty("No run recorded yet.")) } @else {
            (table("Runs", &["Kind", "Started", "Duration", "#Sent", "#Failed", "#Bytes", "Result"], html! {
                @for r in under_way {
                    tr {
                        td data-label="Kind" { strong { (r.kind) } }
                        td data-label="Started" { (when(Some(r.started_at), now)) }
                        td data-label="Duration" { "so far " (span(now - r.started_at)) }
                        td.num data-label="Sent" { "—" }
                        td.num data-label="Failed" { "—" }
                        td.num data-label="Bytes" { "—" }
                        td data-label="Result" { (badge("running", "running")) }
                    }
                }
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

pub(crate) struct Files {
    pub(crate) now: i64,
    pub(crate) buckets: Vec<String>,
    pub(crate) bucket: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) rows: Vec<DeliveredSummary>,
    pub(crate) total: u64,
    /// The count stopped there, if it had a limit.
    pub(crate) counted_up_to: Option<u64>,
    /// The link to the next page, when there is one.
    pub(crate) next: Option<String>,
    pub(crate) first_page: bool,
    pub(crate) in_flight: Vec<Flying>,
    pub(crate) in_flight_total: u64,
}

impl Files {
    /// Whether this is the newest page of every delivered object: the one the live feed
    /// keeps up to date.
    pub(crate) fn newest(&self) -> bool {
        self.first_page && self.bucket.is_none() && self.prefix.is_none()
    }
}

/// The files page's live regions: what is in flight, and, on the newest page of every
/// delivered object, the list.
pub(crate) fn files_live(f: &Files) -> Live {
    let mut regions = vec![("live-inflight", files_in_flight(f))];
    if f.newest() {
        regions.push(("live-files", files_list(f)));
    }
    Live { regions, fields: Vec::new() }
}

fn files_in_flight(f: &Files) -> Markup {
    html! {
        @if !f.in_flight.is_empty() {
            h2 { "In flight" }
            (in_flight_table(&f.in_flight, f.in_flight_total, f.now))
        }
    }
}

pub(crate) fn files(frame: &Frame<'_>, f: &Files) -> Markup {
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
        (region("live-inflight", files_in_flight(f)))
        @if f.newest() { (region("live-files", files_list(f))) } @else { (files_list(f)) }
    };
    page(frame, "Files", body)
}

/// How many delivered objects match, a page of them, and the links to the others.
fn files_list(f: &Files) -> Markup {
    html! {
        @match f.counted_up_to {
            Some(limit) if f.total > limit => p { "More than " strong { (limit) } " delivered objects match." },
            _ => p { strong { (f.total) } " delivered objects match." },
        }
        @if f.rows.is_empty() { (empty("No delivered object matches.")) } @else {
            (table("Delivered objects", &["Object", "#Size", "#Parts", "SHA-256", "Sent", "Message"], html! {
                @for row in &f.rows {
                    @let d = &row.delivery;
                    tr data-delivery=(d.id) {
                        td data-label="Object" {
                            (object(&d.object.bucket, &d.object.key))
                            @if d.encrypted { " " (badge("current", "encrypted")) }
                        }
                        td.num data-label="Size" { (human_size(d.object.size)) }
                        td.num data-label="Parts" {
                            @match d.pack_id { Some(pack) => { "in pack " (pack) }, None => { (row.parts) } }
                        }
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
    }
}

/// The first message of a delivery and its manifest, linked in the chat and topic the
/// delivery went to.
fn message_cell(first: Option<i64>, d: &Delivery) -> Markup {
    let link = |id: i64| d.chat.as_deref().and_then(|chat| message_link(chat, d.topic, id));
    html! {
        @match first {
            Some(id) => {
                @let what = if d.pack_id.is_some() { "pack's message " } else { "message " };
                @if let Some(url) = link(id) { a href=(url) rel="noreferrer" { (what) (id) } } @else { (what) (id) }
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
pub(crate) fn files_href(bucket: Option<&str>, prefix: Option<&str>, before: Option<(i64, i64)>) -> String {
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

pub(crate) struct Retry {
    pub(crate) now: i64,
    pub(crate) failed: Vec<Delivery>,
    pub(crate) failed_total: u64,
    pub(crate) dead: Vec<Delivery>,
    pub(crate) dead_total: u64,
}

/// The retry queue's live parts: the two lists, and their counts.
pub(crate) fn retry_live(r: &Retry) -> Live {
    Live {
        regions: vec![
            ("live-failed", failures_table("Failed deliveries", &r.failed, r.failed_total, r.now)),
            ("live-dead", failures_table("Dead deliveries", &r.dead, r.dead_total, r.now)),
        ],
        fields: vec![
            ("failed".into(), r.failed_total.to_string()),
            ("failed-heading".into(), format!("Failed: {}", r.failed_total)),
            ("dead".into(), r.dead_total.to_string()),
            ("dead-heading".into(), format!("Dead: {}", r.dead_total)),
        ],
    }
}

pub(crate) fn retry(frame: &Frame<'_>, r: &Retry) -> Markup {
    let mut live = retry_live(r).regions.into_iter();
    let (failed, dead) = (live.next(), live.next());
    let body = html! {
        p.lead { (prose(
            "Failed deliveries are retried on a backoff schedule (1 min, 5 min, 15 min, 1 h, 6 h, then daily); \
             after `max_attempts` they are dead and wait for you. “Retry now” and “Retry dead” only make them due: \
             the next `tgploy retry` run (the retry timer runs it every few minutes) delivers them; \
             `serve-webhook` delivers new objects, not failures."
        )) }
        h2 data-field="failed-heading" { "Failed: " (r.failed_total) }
        div.actions {
            (live_button_form("/retry/now", frame.csrf, "btn-yellow", "Retry now", "failed", r.failed_total == 0))
        }
        @if let Some((id, content)) = failed { (region(id, content)) }
        h2 data-field="dead-heading" { "Dead: " (r.dead_total) }
        div.actions {
            (live_button_form("/retry/dead", frame.csrf, "btn-danger", "Retry dead", "dead", r.dead_total == 0))
        }
        p.muted { "Fix the cause first: the last error says what it was." }
        @if let Some((id, content)) = dead { (region(id, content)) }
    };
    page(frame, "Retry queue", body)
}

/// A form that is one button, enabled while the live field `field` is not 0.
fn live_button_form(action: &str, csrf: &str, class: &str, label: &str, field: &str, disabled: bool) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            button class={ "btn " (class) } type="submit" disabled[disabled] data-enabled-by=(field) { (label) }
        }
    }
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

pub(crate) struct Logs {
    pub(crate) now: i64,
    /// The runs under way (on the first page only).
    pub(crate) under_way: Vec<RunUnderWay>,
    pub(crate) runs: Vec<(i64, RunRecord)>,
    pub(crate) older: Option<i64>,
    pub(crate) first_page: bool,
    pub(crate) alerts: Vec<Alert>,
    pub(crate) alerts_waiting: u64,
}

/// The logs' live parts: on the first page the runs, on every page the alerts.
pub(crate) fn logs_live(l: &Logs) -> Live {
    let mut regions = Vec::new();
    if l.first_page {
        regions.push(("live-runs", logs_runs(l)));
    }
    regions.push(("live-alerts", alerts_table(l)));
    Live { regions, fields: vec![("alerts-waiting".into(), l.alerts_waiting.to_string())] }
}

fn logs_runs(l: &Logs) -> Markup {
    html! {
        (runs_table(&l.under_way, &l.runs, l.now))
        nav.pager aria-label="Pages of runs" {
            @if !l.first_page { a.btn.btn-ghost href="/logs" { "← Newest" } }
            @if let Some(before) = l.older { a.btn href={ "/logs?before=" (before) } { "Older runs →" } }
        }
    }
}

pub(crate) fn logs(frame: &Frame<'_>, l: &Logs) -> Markup {
    let body = html! {
        h2 { "Runs" }
        @if l.first_page { (region("live-runs", logs_runs(l))) } @else { (logs_runs(l)) }
        h2 { "Alerts" }
        p.lead { span data-field="alerts-waiting" { (l.alerts_waiting) } " " (prose("waiting for the admin chat \
            (`telegram.admin_chat_id`); they go out with the next run that reaches Telegram.")) }
        (region("live-alerts", alerts_table(l)))
    };
    page(frame, "Logs", body)
}

fn alerts_table(l: &Logs) -> Markup {
    html! {
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
    }
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
