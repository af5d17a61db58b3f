//! The dashboard's own guard against guessing: wrong answers (a wrong password or code at
//! sign-in, on the password form, or a wrong code for a bucket switch) are counted per
//! source address, with a growing wait between attempts, and, when wrong answers pile
//! up from everywhere, a lock of the dashboard's sign-in alone. None of it touches the
//! command line's second factor: nobody who can merely reach the sign-in page can block
//! a restore on the host.
//!
//! The source is the address of the TCP peer; behind a reverse proxy on this host (a
//! loopback peer), the last address of `X-Forwarded-For`, which the proxy appends.
//! Counts live in memory: a restarted dashboard starts afresh.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use axum::http::HeaderMap;

/// Wrong answers from one source before it has to wait.
pub const FREE_ATTEMPTS: u32 = 3;
/// The longest wait of one source, and how long the dashboard's lock lasts.
pub const MAX_WAIT_SECS: i64 = 15 * 60;
/// Wrong answers from all sources within [`MAX_WAIT_SECS`] that lock the dashboard's
/// sign-in.
pub const LOCK_AFTER: usize = 50;

/// Why an attempt is not checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This source must wait until then.
    Wait { until: i64 },
    /// The dashboard's sign-in is locked for everyone until then.
    Locked { until: i64 },
}

#[derive(Debug, Default)]
struct Source {
    failures: u32,
    not_before: i64,
}

#[derive(Debug, Default)]
struct State {
    sources: HashMap<IpAddr, Source>,
    /// When the recent wrong answers were given, oldest first.
    recent: VecDeque<i64>,
    locked_until: i64,
}

/// Counts of wrong answers, by source.
#[derive(Debug, Default)]
pub struct Throttle {
    state: Mutex<State>,
}

impl Throttle {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an answer from `source` may be checked at `now`.
    pub fn admit(&self, source: IpAddr, now: i64) -> Result<(), Refusal> {
        let state = self.state();
        if state.locked_until > now {
            return Err(Refusal::Locked { until: state.locked_until });
        }
        match state.sources.get(&source) {
            Some(s) if s.not_before > now => Err(Refusal::Wait { until: s.not_before }),
            _ => Ok(()),
        }
    }

    /// Records a wrong answer from `source`: after [`FREE_ATTEMPTS`], the next attempt
    /// waits 1 s, then 2 s, 4 s, … up to [`MAX_WAIT_SECS`].
    pub fn failed(&self, source: IpAddr, now: i64) {
        let mut state = self.state();
        let s = state.sources.entry(source).or_default();
        s.failures += 1;
        if s.failures > FREE_ATTEMPTS {
            let doublings = (s.failures - FREE_ATTEMPTS - 1).min(20);
            let wait = (1i64 << doublings).min(MAX_WAIT_SECS);
            s.not_before = now + wait;
            tracing::warn!("dashboard: {} wrong answers from {source}; its next attempt waits {wait}s", s.failures);
        }
        state.recent.push_back(now);
        while state.recent.front().is_some_and(|&t| t <= now - MAX_WAIT_SECS) {
            state.recent.pop_front();
        }
        if state.recent.len() >= LOCK_AFTER && state.locked_until <= now {
            state.locked_until = now + MAX_WAIT_SECS;
            tracing::warn!(
                "dashboard: {} wrong answers in {} minutes; sign-in is locked for {} minutes (the command line is not)",
                state.recent.len(),
                MAX_WAIT_SECS / 60,
                MAX_WAIT_SECS / 60
            );
        }
    }

    /// A right answer from `source`: its count starts over.
    pub fn succeeded(&self, source: IpAddr) {
        self.state().sources.remove(&source);
    }
}

/// The source of a request: its peer, or the address a proxy on this host names last in
/// `X-Forwarded-For`.
pub fn source(peer: IpAddr, headers: &HeaderMap) -> IpAddr {
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
        let now = 1_800_000_000;
        for _ in 0..FREE_ATTEMPTS {
            assert_eq!(t.admit(a, now), Ok(()));
            t.failed(a, now);
        }
        assert_eq!(t.admit(a, now), Ok(()), "three wrong answers cost nothing yet");
        t.failed(a, now);
        assert_eq!(t.admit(a, now), Err(Refusal::Wait { until: now + 1 }));
        assert_eq!(t.admit(b, now), Ok(()), "another source is not held up");
        t.failed(a, now + 1);
        assert_eq!(t.admit(a, now + 1), Err(Refusal::Wait { until: now + 3 }));
        for i in 0..30 {
            t.failed(a, now + 10 + i);
        }
        assert_eq!(t.admit(a, now + 40), Err(Refusal::Wait { until: now + 39 + MAX_WAIT_SECS }), "capped");
        t.succeeded(a);
        assert_eq!(t.admit(a, now + 40), Ok(()));
    }

    #[test]
    fn many_wrong_answers_from_everywhere_lock_the_dashboard_for_a_while() {
        let t = Throttle::default();
        let now = 1_800_000_000;
        for i in 0..LOCK_AFTER as u32 {
            t.failed(IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]), now);
        }
        let fresh: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(t.admit(fresh, now), Err(Refusal::Locked { until: now + MAX_WAIT_SECS }));
        assert_eq!(t.admit(fresh, now + MAX_WAIT_SECS), Ok(()));
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
