//! The overview's pictures, drawn here as inline SVG in the look's colours: what was
//! delivered hour by hour over the last days (bytes, objects), the backlog and the
//! failures over the same hours, and each watched place's newest backup against its
//! period. No script draws anything. Every figure is also in words: a line under each
//! chart, a `<title>` and `<desc>` in it, and a table of the days for screen readers.
//! The drawings stretch to the width they get (`preserveAspectRatio="none"`); their
//! words are HTML beside them, so they stay readable on a phone.

use maud::{Markup, html};

use crate::freshness::WatchStatus;
use crate::sizes::human_size;
use crate::time::{rfc3339, span};

use super::{badge, count};

/// Days shown: today (UTC) and the six before.
pub(crate) const DAYS: usize = 7;
/// Hours shown, one bar each.
pub(crate) const HOURS: usize = DAYS * 24;
/// The height of a strip, in the drawing's units (its width is one unit an hour).
const STRIP: f64 = 40.0;

/// The last days hour by hour, from midnight UTC six days ago; hours after the current
/// one are empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Activity {
    /// The start of the first hour (midnight UTC), Unix seconds.
    pub(crate) from: i64,
    pub(crate) hours: Vec<Hour>,
    /// How many hours have begun (the current one included).
    pub(crate) begun: usize,
}

/// One hour: deliveries sent and their bytes, the backlog at its end, deliveries that
/// failed in runs that ended in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hour {
    pub(crate) sent: u64,
    pub(crate) bytes: u64,
    pub(crate) backlog: u64,
    pub(crate) failed: u64,
}

impl Activity {
    fn days(&self) -> impl Iterator<Item = (i64, &[Hour])> {
        self.hours.chunks(24).enumerate().map(|(i, day)| (self.from + i as i64 * 86_400, day))
    }
}

/// `Mon 24`: a day's short name, from its midnight (Unix seconds).
fn day_name(midnight: i64) -> String {
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(midnight.div_euclid(86_400) % 7) as usize];
    let date = rfc3339(midnight);
    let day = date.get(8..10).unwrap_or("").trim_start_matches('0');
    format!("{weekday} {day}")
}

/// The hour an index stands for: `Tue 14:00 UTC`.
fn hour_name(a: &Activity, i: usize) -> String {
    let start = a.from + i as i64 * 3600;
    format!("{} {:02}:00 UTC", day_name(start.div_euclid(86_400) * 86_400), start.rem_euclid(86_400) / 3600)
}

/// `1 object`, `2 objects`.
fn many(n: u64, one: &str, more: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { more })
}

/// The index and value of the largest figure (the first of equals).
fn peak(values: impl Iterator<Item = u64>) -> Option<(usize, u64)> {
    values.enumerate().fold(None, |best, (i, v)| match best {
        Some((_, b)) if b >= v => best,
        _ if v == 0 => best,
        _ => Some((i, v)),
    })
}

/// A drawing of one strip: one bar an hour (none for an empty hour), a line between
/// days.
fn bars(id: &str, class: &str, title: &str, desc: &str, values: &[u64]) -> Markup {
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    strip(
        id,
        title,
        desc,
        html! {
            @for (i, v) in values.iter().enumerate().filter(|(_, v)| **v > 0) {
                // At least a sliver, so that an hour with little in it still shows.
                @let h = (*v as f64 / max * STRIP).max(1.5);
                rect class=(class) x=(i) y=(format!("{:.2}", STRIP - h)) width="1" height=(format!("{h:.2}")) {}
            }
        },
    )
}

/// A strip's SVG, titled and described for screen readers, with the lines between days
/// under `marks`.
fn strip(id: &str, title: &str, desc: &str, marks: Markup) -> Markup {
    html! {
        svg.chart viewBox={ "0 0 " (HOURS) " " (STRIP) } preserveAspectRatio="none" role="img"
            aria-labelledby={ (id) "-title " (id) "-desc" } {
            title #{ (id) "-title" } { (title) }
            desc #{ (id) "-desc" } { (desc) }
            (day_lines())
            (marks)
        }
    }
}

fn day_lines() -> Markup {
    html! {
        @for d in 1..DAYS {
            line.chart-day x1=(d * 24) x2=(d * 24) y1="0" y2=(STRIP) {}
        }
        line.chart-base x1="0" x2=(HOURS) y1=(STRIP) y2=(STRIP) {}
    }
}

/// The backlog at the end of each hour, as an area (up to the current hour).
fn backlog_area(id: &str, title: &str, desc: &str, a: &Activity) -> Markup {
    let begun = &a.hours[..a.begun.min(a.hours.len())];
    let max = begun.iter().map(|h| h.backlog).max().unwrap_or(0).max(1) as f64;
    let y = |v: u64| format!("{:.2}", STRIP - v as f64 / max * (STRIP - 2.0));
    let mut points = format!("0,{STRIP}");
    for (i, h) in begun.iter().enumerate() {
        let v = y(h.backlog);
        points.push_str(&format!(" {i},{v} {},{v}", i + 1));
    }
    points.push_str(&format!(" {},{STRIP}", begun.len()));
    strip(
        id,
        title,
        desc,
        html! {
            @if !begun.is_empty() { polygon.area-backlog points=(points) {} }
        },
    )
}

/// The names of the days under a chart, each under its 24 bars.
fn axis(a: &Activity) -> Markup {
    html! {
        div.chart-axis aria-hidden="true" {
            @for (midnight, _) in a.days() {
                @let name = day_name(midnight);
                @let (weekday, day) = name.split_once(' ').unwrap_or(("", &name));
                // On a phone, the day of the month alone.
                span { span.weekday { (weekday) " " } (day) }
            }
        }
    }
}

/// The picture of the last days: delivered bytes and objects per hour, the backlog and
/// failures.
pub(crate) fn charts(a: &Activity) -> Markup {
    let bytes: Vec<u64> = a.hours.iter().map(|h| h.bytes).collect();
    let sent: Vec<u64> = a.hours.iter().map(|h| h.sent).collect();
    let failed: Vec<u64> = a.hours.iter().map(|h| h.failed).collect();
    let (total_bytes, total_sent, total_failed) =
        (bytes.iter().sum::<u64>(), sent.iter().sum::<u64>(), failed.iter().sum::<u64>());
    let backlog_now = a.hours.get(a.begun.saturating_sub(1)).map_or(0, |h| h.backlog);
    let backlog_peak = peak(a.hours[..a.begun.min(a.hours.len())].iter().map(|h| h.backlog));
    let busiest = |values: &[u64], say: &dyn Fn(u64) -> String| match peak(values.iter().copied()) {
        Some((i, v)) => format!("busiest hour {}: {}", hour_name(a, i), say(v)),
        None => "nothing in any hour".to_string(),
    };
    let bytes_words = format!(
        "{} delivered in 7 days; {}.",
        human_size(total_bytes),
        busiest(&bytes, &|v| format!("{} in the hour", human_size(v)))
    );
    let sent_words = format!(
        "{} delivered in 7 days; {}.",
        many(total_sent, "object", "objects"),
        busiest(&sent, &|v| many(v, "object", "objects"))
    );
    let backlog_words = match backlog_peak {
        Some((i, v)) => format!(
            "{} waiting now; at most {} (at the end of {}).",
            many(backlog_now, "delivery", "deliveries"),
            count(v),
            hour_name(a, i)
        ),
        None => "Nothing waited in 7 days.".to_string(),
    };
    let failed_words = match peak(failed.iter().copied()) {
        Some((i, v)) => {
            format!(
                "{} in 7 days; most in {}: {}.",
                many(total_failed, "delivery failed", "deliveries failed"),
                hour_name(a, i),
                count(v)
            )
        }
        None => "No delivery failed in 7 days.".to_string(),
    };
    html! {
        div.charts {
            figure.chart-box.accent-cyan {
                figcaption { h3 { "Delivered per hour" } }
                p.chart-label { span.swatch.swatch-cyan {} "Bytes" }
                (bars("chart-bytes", "bar-bytes", "Bytes delivered per hour, last 7 days", &bytes_words, &bytes))
                p.chart-words { (bytes_words) }
                p.chart-label { span.swatch.swatch-lime {} "Objects" }
                (bars("chart-sent", "bar-sent", "Objects delivered per hour, last 7 days", &sent_words, &sent))
                (axis(a))
                p.chart-words { (sent_words) }
            }
            figure.chart-box.accent-magenta {
                figcaption { h3 { "Backlog and failures" } }
                p.chart-label { span.swatch.swatch-yellow {} "Waiting at the end of each hour" }
                (backlog_area("chart-backlog", "Deliveries waiting, hour by hour, last 7 days", &backlog_words, a))
                p.chart-words { (backlog_words) }
                p.chart-label { span.swatch.swatch-magenta {} "Failed per hour" }
                (bars("chart-failed", "bar-failed", "Failed deliveries per hour, last 7 days", &failed_words, &failed))
                (axis(a))
                p.chart-words { (failed_words) }
            }
        }
        (days_table(a))
    }
}

/// Each watched place's newest backup against its period.
pub(crate) fn freshness_chart(watches: &[WatchStatus], now: i64) -> Markup {
    html! {
        @if !watches.is_empty() {
            div.charts {
                figure.chart-box.accent-lime {
                    figcaption { h3 { "Newest backup against its watch" } }
                    ul.fresh-list {
                        @for w in watches { li { (freshness_bar(w, now)) } }
                    }
                }
            }
        }
    }
}

/// One watched place: how old its newest backup is, on a scale that shows the period
/// (a tick) and the limit with its grace (the end of the light track).
fn freshness_bar(w: &WatchStatus, now: i64) -> Markup {
    let limit = (w.every_secs + w.grace_secs).max(1) as f64;
    let age = w.age_secs.map(|a| a.max(0) as f64);
    let scale = (limit * 1.5).max(age.unwrap_or(0.0)).max(1.0);
    let x = |secs: f64| format!("{:.2}", (secs / scale * 100.0).clamp(0.0, 100.0));
    let words = match w.newest_unix {
        Some(t) => format!(
            "newest {} ago (expected every {}, at most {} with the grace)",
            span(now - t),
            span(w.every_secs as i64),
            span(limit as i64)
        ),
        None => format!("nothing yet (expected every {})", span(w.every_secs as i64)),
    };
    html! {
        p.fresh-name {
            span.key { (w.bucket) "/" (w.prefix) } " "
            @if w.overdue { (badge("overdue", "overdue")) } @else { (badge("fresh", "fresh")) }
        }
        svg.fresh-bar viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true" {
            rect.fresh-track x="0" y="1" width=(x(limit)) height="6" {}
            @if let Some(age) = age {
                rect class=(if w.overdue { "fresh-overdue" } else { "fresh-ok" }) x="0" y="2" width=(x(age)) height="4" {}
            }
            line.fresh-every x1=(x(w.every_secs as f64)) x2=(x(w.every_secs as f64)) y1="0" y2="8" {}
        }
        p.chart-words { (words) }
    }
}

/// The days in figures, for screen readers.
fn days_table(a: &Activity) -> Markup {
    html! {
        // A table is as wide as its cells, whatever its own width says: the wrapper is
        // what hides it.
        div.visually-hidden { table {
            caption { "The last 7 days, day by day (UTC)" }
            thead {
                tr { th scope="col" { "Day" } th scope="col" { "Objects delivered" } th scope="col" { "Bytes delivered" }
                     th scope="col" { "Most waiting" } th scope="col" { "Failed" } }
            }
            tbody {
                @for (midnight, day) in a.days() {
                    tr {
                        th scope="row" { (day_name(midnight)) }
                        td { (count(day.iter().map(|h| h.sent).sum())) }
                        td { (human_size(day.iter().map(|h| h.bytes).sum())) }
                        td { (count(day.iter().map(|h| h.backlog).max().unwrap_or(0))) }
                        td { (count(day.iter().map(|h| h.failed).sum())) }
                    }
                }
            }
        } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity() -> Activity {
        // Monday 2026-11-23 00:00 UTC.
        let from = 1_795_392_000;
        let mut hours = vec![Hour::default(); HOURS];
        hours[14] = Hour { sent: 3, bytes: 3 << 20, backlog: 2, failed: 1 };
        hours[30] = Hour { sent: 1, bytes: 1 << 20, backlog: 0, failed: 0 };
        Activity { from, hours, begun: 40 }
    }

    #[test]
    fn days_and_hours_are_named_in_utc() {
        assert_eq!(day_name(1_795_392_000), "Mon 23");
        assert_eq!(hour_name(&activity(), 14), "Mon 23 14:00 UTC");
        assert_eq!(hour_name(&activity(), 30), "Tue 24 06:00 UTC");
        assert_eq!(peak([0, 3, 3, 1].into_iter()), Some((1, 3)));
        assert_eq!(peak([0, 0].into_iter()), None);
    }

    #[test]
    fn the_charts_say_their_figures_and_draw_without_inline_style() {
        let html = charts(&activity()).into_string();
        assert!(html.contains("4.0 MiB delivered in 7 days; busiest hour Mon 23 14:00 UTC: 3.0 MiB"), "{html}");
        assert!(html.contains("4 objects delivered in 7 days"), "{html}");
        assert!(html.contains("1 delivery failed in 7 days; most in Mon 23 14:00 UTC: 1."), "{html}");
        assert!(html.contains("0 deliveries waiting now; at most 2"), "{html}");
        assert!(html.contains("at most 2 (at the end of Mon 23 14:00 UTC)"), "{html}");
        assert_eq!(html.matches("class=\"bar-bytes\"").count(), 2, "one bar an hour with something in it");
        assert_eq!(html.matches("<tr>").count(), 1 + DAYS, "a row a day for screen readers");
        assert!(!html.contains("style="), "the CSP allows no inline style");
        assert!(html.contains("aria-labelledby=\"chart-bytes-title chart-bytes-desc\""));
    }
}
