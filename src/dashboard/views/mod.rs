//! The pages' HTML (maud, compiled into the binary; every value is escaped). No page
//! needs JavaScript: forms post, links navigate, and without scripts the overview
//! refreshes with a meta tag. With them, one same-origin script follows the ledger: the
//! parts of a page marked live (an element whose id the page's [`Live`] names, or one
//! with a `data-field`) are replaced with what the live feed sends, rendered here by the
//! same functions as the page.

use std::time::Duration;

use maud::{DOCTYPE, Markup, html};

use crate::freshness::WatchStatus;
use crate::ledger::{RunRecord, State};
use crate::time::{ago, rfc3339, span};

use super::{css_path, js_path};

mod activity;
mod admin;
mod charts;

pub(crate) use activity::*;
pub(crate) use admin::*;
pub(crate) use charts::*;

/// Without scripts, the overview reloads itself this often.
pub(crate) const REFRESH_SECS: u32 = 30;

/// The live parts of a page, as the live feed sends them: each region's element id and
/// its content, each field's name and its text.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) regions: Vec<(&'static str, Markup)>,
    pub(crate) fields: Vec<(String, String)>,
}

/// A live region: its content in an element the script finds by id.
fn region(id: &'static str, content: Markup) -> Markup {
    html! { div id=(id) { (content) } }
}

/// The sidebar's entries: the original plan's, and what tgploy adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
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
pub(crate) struct Notice {
    pub(crate) error: bool,
    pub(crate) text: String,
}

impl Notice {
    pub(crate) fn ok(text: impl Into<String>) -> Notice {
        Notice { error: false, text: text.into() }
    }

    pub(crate) fn error(text: impl Into<String>) -> Notice {
        Notice { error: true, text: text.into() }
    }
}

/// What every signed-in page shares.
pub(crate) struct Frame<'a> {
    pub(crate) nav: Nav,
    pub(crate) csrf: &'a str,
    pub(crate) notice: Option<Notice>,
    /// The live feed the page follows (`/live/NAME`), if any.
    pub(crate) live: Option<&'static str>,
}

/// The head of a page; `refresh` for one that reloads itself without scripts, `script`
/// for one that loads the live script.
fn head(title: &str, refresh: bool, script: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="dark";
            @if refresh { noscript { meta http-equiv="refresh" content=(REFRESH_SECS); } }
            title { (title) " · tgploy" }
            link rel="icon" href="/favicon.ico" sizes="32x32";
            link rel="stylesheet" href=(css_path());
            @if script { script src=(js_path()) defer {} }
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
            (head(title, frame.nav == Nav::Overview && frame.notice.is_none(), frame.live.is_some()))
            body data-live=[frame.live] {
                a.skip href="#main" { "Skip to content" }
                div.layout {
                    header.sidebar {
                        p.brand { a href="/" { "tgploy" } }
                        p.tagline { "Backups delivered to Telegram" }
                        @if frame.live.is_some() {
                            // Filled in by the live script: whether the page follows the
                            // ledger. Its line is there from the start, so that nothing
                            // moves when it is.
                            p #live-status .live-status role="status" {
                                noscript {
                                    @if frame.nav == Nav::Overview { "Reloads every " (REFRESH_SECS) " s" }
                                    @else { "Reload to update" }
                                }
                            }
                        }
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
            (head(title, false, false))
            body { main.login #main { div.card { (body) } } }
        }
    }
}

pub(crate) fn login(csrf: &str, error: Option<&str>) -> Markup {
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
pub(crate) fn problem(title: &str, text: &str) -> Markup {
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
pub(crate) fn state_badge(state: State) -> Markup {
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

/// The freshness watches: each with its newest object and its age, overdue ones in the
/// danger colour and in words.
fn watch_table(watches: &[WatchStatus], now: i64) -> Markup {
    html! {
        @if !watches.is_empty() {
            (table("Freshness", &["Watch", "Newest object", "Modified", "State"], html! {
                @for w in watches {
                    tr {
                        td data-label="Watch" { span.key { (w.bucket) "/" (w.prefix) } br;
                            span.muted { "every " (span(w.every_secs as i64)) } }
                        td data-label="Newest object" { span.key { (w.newest_key.as_deref().unwrap_or("none")) } }
                        td data-label="Modified" { (when(w.newest_unix, now)) }
                        td data-label="State" {
                            @if w.overdue { (badge("overdue", "overdue")) br; span.error-text { (w.problem()) } }
                            @else { (badge("fresh", "fresh")) }
                        }
                    }
                }
            }))
        }
    }
}

fn empty(text: &str) -> Markup {
    html! { p.empty.table-wrap { (text) } }
}

/// A number as people read it: `12,345`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn values_are_escaped() {
        let html = object("b", "<script>alert(1)</script>").into_string();
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{html}");
    }
}
