//! What each page shows, read from the ledger in one trip to the blocking pool. The page
//! handlers render it whole; the live feed renders the same figures for the parts of the
//! pages that follow the ledger, with the same functions.

use crate::buckets::{self, Summary};
use crate::config::Config;
use crate::deliver::layout::part_count;
use crate::error::Result;
use crate::freshness::{self, WatchStatus};
use crate::ledger::{DeliveredFilter, InFlight, Ledger, RunUnderWay, State};
use crate::run::RunKind;

use super::views::{self, Activity, Flying, Hour};

/// Rows on a page of files or runs.
pub(crate) const PAGE_ROWS: u32 = 50;
/// Objects under a prefix are counted up to this many (each costs a row read).
const COUNT_UP_TO: u64 = 10_000;
/// Failed or dead deliveries listed on the retry page.
const RETRY_ROWS: u32 = 200;
/// The latest deliveries and runs on the overview.
const LATEST_ROWS: u32 = 10;
/// Deliveries in flight listed (the others are counted).
const IN_FLIGHT_ROWS: u32 = 20;
/// Runs under way listed (more at once is a sign of trouble the count shows).
const UNDER_WAY_ROWS: u32 = 20;
/// About what an age header takes.
const AGE_HEADER: u64 = 200;
/// The last days are read again after this long (or when an hour begins).
const ACTIVITY_EVERY: i64 = 30;

/// The last days as last read: the picture has a bar an hour, and its reads cover a
/// week of deliveries, so pages and the live feed share one read for half a minute (or
/// until the hour ends). The live feed then sends it only when it changed.
#[derive(Default)]
pub(crate) struct ActivityCache(std::sync::Mutex<Option<(i64, Activity)>>);

impl ActivityCache {
    pub(crate) fn get(&self, l: &Ledger, now: i64) -> Result<Activity> {
        let mut cached = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((at, a)) = &*cached
            && (*at..*at + ACTIVITY_EVERY).contains(&now)
            && at.div_euclid(3600) == now.div_euclid(3600)
        {
            return Ok(a.clone());
        }
        let a = activity(l, now)?;
        *cached = Some((now, a.clone()));
        Ok(a)
    }
}

pub(crate) fn overview(l: &Ledger, cfg: &Config, cache: &ActivityCache, now: i64) -> Result<views::Overview> {
    let (buckets, totals) = buckets::summaries(l)?;
    let (last_sync, last_ok_sync) = l.last_runs(RunKind::Sync.as_str())?;
    Ok(views::Overview {
        now,
        totals,
        buckets,
        last_sync,
        last_ok_sync,
        last_heartbeat: l.last_runs(RunKind::Heartbeat.as_str())?.0,
        alerts_waiting: l.unsent_alert_count()?,
        latest: l.delivered_page(&DeliveredFilter::default(), LATEST_ROWS)?,
        under_way: under_way(l)?,
        runs: l.recent_runs(None, LATEST_ROWS)?,
        watches: freshness::check(l, cfg, now)?,
        in_flight: in_flight(l, cfg, now)?,
        activity: cache.get(l, now)?,
    })
}

pub(crate) fn buckets(l: &Ledger, cfg: &Config, now: i64) -> Result<(Vec<Summary>, Vec<WatchStatus>)> {
    Ok((buckets::summaries(l)?.0, freshness::check(l, cfg, now)?))
}

pub(crate) fn files(l: &Ledger, cfg: &Config, filter: DeliveredFilter, now: i64) -> Result<views::Files> {
    let flying = in_flight(l, cfg, now)?;
    let mut rows = l.delivered_page(&filter, PAGE_ROWS + 1)?;
    let next = (rows.len() > PAGE_ROWS as usize).then(|| {
        rows.truncate(PAGE_ROWS as usize);
        rows.last().map(|r| (r.delivery.sent_at.unwrap_or(0), r.delivery.id))
    });
    Ok(views::Files {
        now,
        buckets: l.buckets()?.into_iter().map(|b| b.name).collect(),
        total: l.count_delivered(&filter, filter.prefix.is_some().then_some(COUNT_UP_TO + 1))?,
        counted_up_to: filter.prefix.is_some().then_some(COUNT_UP_TO),
        next: next
            .flatten()
            .map(|before| views::files_href(filter.bucket.as_deref(), filter.prefix.as_deref(), Some(before))),
        first_page: filter.before.is_none(),
        in_flight_total: match flying.len() < IN_FLIGHT_ROWS as usize {
            true => flying.len() as u64,
            false => l.counts()?.0.sending,
        },
        in_flight: flying,
        bucket: filter.bucket,
        prefix: filter.prefix,
        rows,
    })
}

pub(crate) fn retry(l: &Ledger, now: i64) -> Result<views::Retry> {
    let (counts, _) = l.counts()?;
    Ok(views::Retry {
        now,
        failed: l.deliveries_in_page(State::Failed, RETRY_ROWS)?,
        failed_total: counts.failed,
        dead: l.deliveries_in_page(State::Dead, RETRY_ROWS)?,
        dead_total: counts.dead,
    })
}

/// The logs page of runs before the run `before` (the newest without).
pub(crate) fn logs(l: &Ledger, before: Option<i64>, now: i64) -> Result<views::Logs> {
    let mut runs = l.recent_runs(before, PAGE_ROWS + 1)?;
    let older = (runs.len() > PAGE_ROWS as usize).then(|| {
        runs.truncate(PAGE_ROWS as usize);
        runs.last().map(|(id, _)| *id)
    });
    Ok(views::Logs {
        now,
        under_way: if before.is_none() { under_way(l)? } else { Vec::new() },
        runs,
        older: older.flatten(),
        first_page: before.is_none(),
        alerts: l.recent_alerts(PAGE_ROWS)?,
        alerts_waiting: l.unsent_alert_count()?,
    })
}

/// The runs under way, but those whose process is known to be gone.
fn under_way(l: &Ledger) -> Result<Vec<RunUnderWay>> {
    let mut runs = l.runs_under_way(UNDER_WAY_ROWS)?;
    runs.retain(|r| !crate::owner::is_dead(&r.owner));
    Ok(runs)
}

fn in_flight(l: &Ledger, cfg: &Config, now: i64) -> Result<Vec<Flying>> {
    Ok(l.in_flight(IN_FLIGHT_ROWS)?.into_iter().map(|d| flying(d, cfg.part_size, now)).collect())
}

/// A delivery in flight with its number of parts: from its size and part size, or for an
/// encrypted one from about the size of its age stream.
pub(crate) fn flying(delivery: InFlight, default_part_size: u64, now: i64) -> Flying {
    let part_size = delivery.part_size.unwrap_or(default_part_size);
    let stored = match delivery.encrypted {
        true => crate::crypt::Encryption::payload_size(delivery.size) + AGE_HEADER,
        false => delivery.size,
    };
    let total = part_count(stored, part_size).max(delivery.parts_done);
    Flying {
        about: delivery.encrypted,
        stalled: delivery.lease_until.is_some_and(|lease| lease < now),
        total,
        delivery,
    }
}

/// The last days hour by hour (see [`Activity`]). The ledger keeps no history of the
/// backlog; it follows from the figures it does keep: the backlog at the end of an hour
/// is the backlog now, less what was recorded after that hour, plus what was sent after
/// it (versions recorded as skipped are left out of both).
pub(crate) fn activity(l: &Ledger, now: i64) -> Result<Activity> {
    let from = now.div_euclid(86_400) * 86_400 - (views::DAYS as i64 - 1) * 86_400;
    let (rows, backlog_now) = l.activity_since(from)?;
    let mut hours = vec![Hour::default(); views::HOURS];
    // Recorded and sent in each hour, for the backlog.
    let mut moves = vec![(0u64, 0u64); views::HOURS];
    for row in rows {
        let Ok(i) = usize::try_from((row.hour - from) / 3600) else { continue };
        if let (Some(h), Some(m)) = (hours.get_mut(i), moves.get_mut(i)) {
            (h.sent, h.bytes, h.failed) = (row.sent, row.sent_bytes, row.failed);
            *m = (row.recorded, row.sent);
        }
    }
    let begun = (((now - from) / 3600) as usize + 1).min(views::HOURS);
    // Backwards from now: the backlog at the end of hour i is the one at the end of hour
    // i + 1, less what hour i + 1 recorded, plus what it sent.
    let mut backlog = backlog_now;
    for i in (0..begun).rev() {
        hours[i].backlog = backlog;
        let (recorded, sent) = moves[i];
        backlog = (backlog + sent).saturating_sub(recorded);
    }
    Ok(Activity { from, hours, begun })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::ObjectVersion;
    use crate::ledger::testing::terms;

    #[test]
    fn the_backlog_of_each_hour_follows_from_what_was_recorded_and_sent() {
        let l = Ledger::in_memory().unwrap();
        let day = 1_795_392_000; // a midnight UTC
        let now = day + 6 * 86_400 + 10 * 3600 + 5; // the seventh day, 10:00:05
        let version = version_of;
        // Two versions recorded at 02:xx of the first day, one sent at 05:xx.
        l.insert_versions(&[version("a"), version("b")], State::Pending, day + 2 * 3600).unwrap();
        let a = l.versions_of("b", "a", None).unwrap()[0].id;
        l.claim(a, &terms("o", now + 100, 4, day + 3 * 3600, false)).unwrap().unwrap();
        assert!(l.mark_sent(a, "o", "sha", None, None, day + 5 * 3600 + 1).unwrap());
        // One recorded as skipped: never waiting.
        l.insert_versions(&[version("c")], State::Skipped, day + 3600).unwrap();

        let a = activity(&l, now).unwrap();
        assert_eq!(a.from, day);
        assert_eq!(a.begun, 6 * 24 + 11);
        let backlog: Vec<u64> = a.hours[..8].iter().map(|h| h.backlog).collect();
        assert_eq!(backlog, [0, 0, 2, 2, 2, 1, 1, 1]);
        assert_eq!(a.hours[a.begun - 1].backlog, 1, "b waits now");
        assert!(a.hours[a.begun..].iter().all(|h| *h == Hour::default()), "hours to come are empty");
        assert_eq!((a.hours[5].sent, a.hours[5].bytes), (1, 10));
    }

    #[test]
    fn the_last_days_are_read_again_after_half_a_minute_or_when_an_hour_begins() {
        let l = Ledger::in_memory().unwrap();
        let cache = ActivityCache::default();
        let hour = 1_795_392_000 + 5 * 3600;
        let first = cache.get(&l, hour + 10).unwrap();
        l.insert_versions(&[version_of("a")], State::Pending, hour + 11).unwrap();
        assert_eq!(cache.get(&l, hour + 39).unwrap(), first, "read 29 s ago");
        let later = cache.get(&l, hour + 40).unwrap();
        assert_ne!(later, first, "30 s: read again, the new version waits");
        assert_eq!(later.hours[later.begun - 1].backlog, 1);
        assert_eq!(cache.get(&l, hour + 3600).unwrap().begun, later.begun + 1, "a new hour");
    }

    fn version_of(key: &str) -> ObjectVersion {
        ObjectVersion { bucket: "b".into(), key: key.into(), etag: "e".into(), size: 10, last_modified_ms: Some(1) }
    }

    #[test]
    fn an_encrypted_delivery_has_about_as_many_parts_as_its_age_stream() {
        let d = InFlight {
            id: 1,
            bucket: "b".into(),
            key: "k".into(),
            size: 100,
            part_size: Some(40),
            encrypted: false,
            attempts: 1,
            lease_until: Some(50),
            updated_at: 0,
            parts_done: 1,
            bytes_done: 40,
            last_part_at: None,
        };
        let plain = flying(d.clone(), 19 << 20, 10);
        assert_eq!((plain.total, plain.about, plain.stalled), (3, false, false));
        let sealed = flying(InFlight { encrypted: true, ..d.clone() }, 19 << 20, 60);
        assert_eq!((sealed.total, sealed.about, sealed.stalled), (8, true, true), "100 + 16 + 200 bytes; lease gone");
    }
}
