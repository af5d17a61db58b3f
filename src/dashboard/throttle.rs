//! The dashboard's own guard against guessing: wrong answers (a wrong password or code at
//! sign-in, on the password form, or a wrong code for a bucket switch) are counted per
//! source address, with a growing wait between attempts, and, when wrong answers pile
//! up from everywhere, a lock of the dashboard's sign-in alone. None of it touches the
//! command line's second factor: nobody who can merely reach the sign-in page can block
//! a restore on the host.
//!
//! The source is the address of the TCP peer; behind a reverse proxy on this host (a
//! loopback peer), the last address of `X-Forwarded-For`, which the proxy appends.
//! Counts live in memory: a restarted dashboard starts afresh. Times are read from a
//! monotonic clock with sub-second resolution: a wait of one second is one second, not
//! whatever is left of the current wall-clock second.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

/// Wrong answers from one source before it has to wait.
pub(crate) const FREE_ATTEMPTS: u32 = 3;
/// The longest wait of one source, and how long the dashboard's lock lasts.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Wrong answers from all sources within [`MAX_WAIT`] that lock the dashboard's sign-in.
pub(crate) const LOCK_AFTER: usize = 50;

/// Why an attempt is not checked now, and for how much longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// This source must wait this long.
    Wait { left: Duration },
    /// The dashboard's sign-in is locked for everyone this long.
    Locked { left: Duration },
}

#[derive(Debug, Default)]
struct Source {
    failures: u32,
    not_before: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    sources: HashMap<IpAddr, Source>,
    /// When the recent wrong answers were given, oldest first.
    recent: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

/// Counts of wrong answers, by source.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    state: Mutex<State>,
}

impl Throttle {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an answer from `source` may be checked at `now`.
    pub(crate) fn admit(&self, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        let state = self.state();
        if let Some(until) = state.locked_until.filter(|&t| t > now) {
            return Err(Refusal::Locked { left: until - now });
        }
        match state.sources.get(&source).and_then(|s| s.not_before) {
            Some(until) if until > now => Err(Refusal::Wait { left: until - now }),
            _ => Ok(()),
        }
    }

    /// Records a wrong answer from `source` at `now`: after [`FREE_ATTEMPTS`], the next
    /// attempt waits 1 s, then 2 s, 4 s, … up to [`MAX_WAIT`].
    pub(crate) fn failed(&self, source: IpAddr, now: Instant) {
        let mut state = self.state();
        let s = state.sources.entry(source).or_default();
        s.failures += 1;
        if s.failures > FREE_ATTEMPTS {
            let doublings = (s.failures - FREE_ATTEMPTS - 1).min(20);
            let wait = Duration::from_secs(1 << doublings).min(MAX_WAIT);
            s.not_before = Some(now + wait);
            tracing::warn!(
                "dashboard: {} wrong answers from {source}; its next attempt waits {}s",
                s.failures,
                wait.as_secs()
            );
        }
        state.recent.push_back(now);
        while state.recent.front().is_some_and(|&t| now.duration_since(t) >= MAX_WAIT) {
            state.recent.pop_front();
        }
        if state.recent.len() >= LOCK_AFTER && state.locked_until.is_none_or(|t| t <= now) {
            state.locked_until = Some(now + MAX_WAIT);
            tracing::warn!(
                "dashboard: {} wrong answers in {} minutes; sign-in is locked for {} minutes (the command line is not)",
                state.recent.len(),
                MAX_WAIT.as_secs() / 60,
                MAX_WAIT.as_secs() / 60
            );
        }
    }

    /// A right answer from `source`: its count starts over.
    pub(crate) fn succeeded(&self, source: IpAddr) {
        self.state().sources.remove(&source);
    }
}

/// The source of a request: its peer, or the address a proxy on this host names last in
/// `X-Forwarded-For`.
pub(crate) fn source(peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !peer.is_loopback() {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .next_back()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_waits_longer_and_longer_and_others_do_not() {
        let t = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ("203.0.113.9".parse().unwrap(), "198.51.100.7".parse().unwrap());
        let now = Instant::now();
        let secs = |n: u64| Duration::from_secs(n);
        for _ in 0..FREE_ATTEMPTS {
            assert_eq!(t.admit(a, now), Ok(()));
            t.failed(a, now);
        }
        assert_eq!(t.admit(a, now), Ok(()), "three wrong answers cost nothing yet");
        t.failed(a, now);
        assert_eq!(t.admit(a, now), Err(Refusal::Wait { left: secs(1) }), "a whole second, not what is left of one");
        assert_eq!(t.admit(a, now + Duration::from_millis(999)), Err(Refusal::Wait { left: Duration::from_millis(1) }));
        assert_eq!(t.admit(a, now + secs(1)), Ok(()));
        assert_eq!(t.admit(b, now), Ok(()), "another source is not held up");
        t.failed(a, now + secs(1));
        assert_eq!(t.admit(a, now + secs(1)), Err(Refusal::Wait { left: secs(2) }));
        for i in 0..30 {
            t.failed(a, now + secs(10 + i));
        }
        assert_eq!(t.admit(a, now + secs(40)), Err(Refusal::Wait { left: MAX_WAIT - secs(1) }), "capped");
        t.succeeded(a);
        assert_eq!(t.admit(a, now + secs(40)), Ok(()));
    }

    #[test]
    fn many_wrong_answers_from_everywhere_lock_the_dashboard_for_a_while() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..LOCK_AFTER as u32 {
            t.failed(IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]), now);
        }
        let fresh: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(t.admit(fresh, now), Err(Refusal::Locked { left: MAX_WAIT }));
        assert_eq!(t.admit(fresh, now + MAX_WAIT), Ok(()));
    }

    #[test]
    fn a_proxy_on_this_host_names_the_source() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "10.9.9.9, 203.0.113.9".parse().unwrap());
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(source(loopback, &h), "203.0.113.9".parse::<IpAddr>().unwrap());
        let remote: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(source(remote, &h), remote, "only a local proxy is believed");
        assert_eq!(source(loopback, &HeaderMap::new()), loopback);
    }
}
