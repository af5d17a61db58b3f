//! The pages an operator acts on: the buckets, security, the settings.

use maud::{Markup, html};

use super::{Frame, Live, ago_only, badge, button_form, page, prose, region, stamp, table, watch_table, when};
use crate::buckets::Summary;
use crate::config::{Destination, Effective, SETTINGS, Source};
use crate::freshness::WatchStatus;
use crate::ledger::{Session, TotpSummary};
use crate::sizes::human_size;
use crate::time::rfc3339;

// ----- buckets -----

/// Where a bucket's new versions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destined {
    /// Its own chat or topic, from its `[buckets.NAME]` table.
    Own(Destination),
    /// The default backup chat.
    Default(Destination),
    /// Nowhere yet: no backup chat is configured.
    Unset,
}

/// What the buckets page adds to the overview's table: where each bucket goes, and its
/// switch.
pub(crate) struct Manage<'a> {
    pub(crate) csrf: &'a str,
    /// One for each bucket, in the same order.
    pub(crate) destinations: &'a [Destined],
}

/// The live field of a bucket's figure: `b:NAME:WHAT`.
fn bucket_field(name: &str, what: &str) -> String {
    format!("b:{name}:{what}")
}

/// A bucket's figures as the buckets page shows them, by their live field.
fn bucket_fields(s: &Summary, now: i64) -> Vec<(String, String)> {
    let (b, c) = (&s.bucket, &s.counts);
    let listed = match (&b.last_error, b.last_listed_at) {
        (Some(_), _) => "error".to_string(),
        (None, Some(t)) => crate::time::ago(t, now),
        (None, None) => "never".to_string(),
    };
    [
        ("enabled", if b.enabled { "1" } else { "0" }.to_string()),
        ("sent", c.sent.to_string()),
        ("bytes", human_size(c.sent_bytes)),
        ("pending", (c.pending + c.sending).to_string()),
        ("failed", c.failed.to_string()),
        ("dead", c.dead.to_string()),
        ("listed", listed),
    ]
    .into_iter()
    .map(|(what, value)| (bucket_field(&b.name, what), value))
    .collect()
}

/// The buckets with their counts; with `manage`, each row gets its destination (under
/// its name) and its switch, and its figures are live fields (the switch is left alone
/// while a code is typed into it).
pub(super) fn bucket_table(buckets: &[Summary], now: i64, manage: Option<&Manage<'_>>) -> Markup {
    let mut head = vec!["Bucket", "State", "#Delivered", "#Bytes", "#Pending", "#Failed", "#Dead", "Last listed"];
    if manage.is_some() {
        head.push("Switch");
    }
    html! {
        @if buckets.is_empty() {
            p.empty.table-wrap { (prose("No bucket known yet: the first `tgploy sync` discovers them.")) }
        } @else {
            (table("Buckets", &head, html! {
                @for (i, s) in buckets.iter().enumerate() {
                    @let (b, c) = (&s.bucket, &s.counts);
                    @let field = |what: &str| manage.map(|_| bucket_field(&b.name, what));
                    tr data-bucket=(b.name) data-enabled=(if b.enabled { "1" } else { "0" }) {
                        td data-label="Bucket" {
                            span.name { (b.name) }
                            @if let Some(m) = manage { (destined(m.destinations.get(i).unwrap_or(&Destined::Unset))) }
                        }
                        td data-label="State" {
                            @if b.enabled { (badge("enabled", "enabled")) } @else { (badge("disabled", "disabled")) }
                        }
                        td.num data-label="Delivered" data-field=[field("sent")] { (c.sent) }
                        td.num data-label="Bytes" data-field=[field("bytes")] { (human_size(c.sent_bytes)) }
                        td.num data-label="Pending" data-field=[field("pending")] { (c.pending + c.sending) }
                        td.num data-label="Failed" data-field=[field("failed")] { (c.failed) }
                        td.num data-label="Dead" data-field=[field("dead")] { (c.dead) }
                        td data-label="Last listed" {
                            @if let Some(e) = &b.last_error { (badge("error", "error")) " " span.error-text { (e) } }
                            @else if manage.is_some() { span data-field=[field("listed")] { (ago_only(b.last_listed_at, now)) } }
                            @else { (ago_only(b.last_listed_at, now)) }
                        }
                        @if let Some(m) = manage {
                            td data-label="Switch" { (bucket_switch(i, &b.name, b.enabled, m.csrf)) }
                        }
                    }
                }
            }))
        }
    }
}

/// A bucket's destination, under its name: its own in full, the default by name (the
/// page says what it is).
fn destined(d: &Destined) -> Markup {
    html! {
        @match d {
            Destined::Own(dest) => span.dest { "→ " (dest) },
            Destined::Default(_) => span.dest { "→ default chat" },
            Destined::Unset => span.dest { "→ no chat: set " code { "telegram.backup_chat_id" } },
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

/// The buckets page's live parts: each bucket's figures, and the watches.
pub(crate) fn buckets_live(buckets: &[Summary], watches: &[WatchStatus], now: i64) -> Live {
    Live {
        regions: vec![("live-watches", bucket_watches(watches, now))],
        fields: buckets.iter().flat_map(|s| bucket_fields(s, now)).collect(),
    }
}

fn bucket_watches(watches: &[WatchStatus], now: i64) -> Markup {
    html! {
        @if !watches.is_empty() {
            h2 { "Freshness" }
            p { (prose("How often each watched place (`expect_every` in `[buckets.NAME]`) should get a new object, \
                        and the newest one it has.")) }
            (watch_table(watches, now))
        }
    }
}

pub(crate) fn buckets(
    frame: &Frame<'_>,
    buckets: &[Summary],
    destinations: &[Destined],
    default: Option<&Destination>,
    watches: &[WatchStatus],
    now: i64,
) -> Markup {
    let manage = Manage { csrf: frame.csrf, destinations };
    let body = html! {
        p.lead { (prose(
            "A disabled bucket is no longer delivered by `sync` or the webhook server; what was delivered stays in \
             Telegram. Disabling reduces protection, so it asks for a fresh second-factor code, as the command line \
             does. Enabling with “only objects from now on” records the objects the bucket holds now as skipped."
        )) }
        p {
            (prose("Under each name, where its new versions go: the chat (and forum topic) of its `[buckets.NAME]` \
                    table, or the default chat"))
            @if let Some(d) = default { ", " span.value { (d) } }
            (prose(". Changing it moves nothing: what was delivered stays where it went, and restores from there."))
        }
        // Shown by the live script when a bucket appears or is switched elsewhere.
        div #live-buckets-changed .notice role="status" hidden {
            strong { "Changed:" } "the buckets changed since this page was loaded; "
            a href="/buckets" { "reload it" } " to switch them."
        }
        (bucket_table(buckets, now, Some(&manage)))
        (region("live-watches", bucket_watches(watches, now)))
    };
    page(frame, "Buckets", body)
}

// ----- security -----

pub(crate) struct Security {
    pub(crate) now: i64,
    pub(crate) totp: Option<TotpSummary>,
    pub(crate) sessions: Vec<Session>,
    pub(crate) current: String,
}

pub(crate) fn security(frame: &Frame<'_>, s: &Security) -> Markup {
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
                    Some(t) => {
                        span.big { (t.failures) }
                        p.muted {
                            "wrong codes in a row on the command line; "
                            (crate::totp::MAX_FAILURES) " lock it for " (crate::totp::LOCK_SECS / 60)
                            " minutes (the dashboard throttles its own)."
                        }
                    }
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

pub(crate) struct Settings {
    /// Each configured bot: its id, and its username as `getMe` tells it or why that
    /// failed.
    pub(crate) bots: Vec<(i64, Result<String, String>)>,
    /// Why no bot is listed, when the tokens cannot be read.
    pub(crate) bots_error: Option<String>,
    pub(crate) effective: Vec<Effective>,
    pub(crate) config_file: Option<String>,
    pub(crate) ledger: String,
}

fn source(s: &Option<Source>) -> String {
    match s {
        None => "nothing sets it".into(),
        Some(Source::File { path, line }) => format!("{}, line {line}", path.display()),
        Some(other) => other.to_string(),
    }
}

pub(crate) fn settings(frame: &Frame<'_>, s: &Settings) -> Markup {
    let body = html! {
        p.lead {
            "The effective configuration of this dashboard process: built-in defaults, then the config file, then the "
            "environment, then flags. Secrets are only said to be set or not."
        }
        p { "Config file: " code { (s.config_file.as_deref().unwrap_or("none")) } br; "Ledger: " code { (s.ledger) } }
        h2 { "Bots" }
        p { (prose(
            "Deliveries go through every bot, each at its own pace; the first also sends alerts and the heartbeat. \
             A part can only be downloaded again by the bot that sent it: keep every bot's token as long as \
             its parts matter."
        )) }
        @if let Some(e) = &s.bots_error { div.notice.notice-error role="alert" { (e) } }
        @if !s.bots.is_empty() {
            (table("Bots", &["#Bot id", "Username", "Role"], html! {
                @for (i, (id, name)) in s.bots.iter().enumerate() {
                    tr {
                        td.num data-label="Bot id" { (id) }
                        td data-label="Username" {
                            @match name {
                                Ok(name) => span.value { "@" (name) },
                                Err(e) => { (badge("error", "unreachable")) " " span.error-text { (e) } }
                            }
                        }
                        td data-label="Role" { @if i == 0 { "deliveries, alerts, heartbeat" } @else { "deliveries" } }
                    }
                }
            }))
        }
        h2 { "Settings" }
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
