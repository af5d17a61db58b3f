//! The backoff schedules: for failed deliveries between runs (1 min, 5 min, 15 min,
//! 1 h, 6 h, then every 24 h), and for a request that met an outage within a run (1 s,
//! 2 s, 4 s, then the run stops and counts no attempt).

use std::time::Duration;

/// Waits before repeating a request whose service did not answer or answered 5xx. When
/// they run out, the service is down: the run stops (exit 4) rather than failing every
/// delivery after it.
pub(crate) const IN_RUN: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)];

const SCHEDULE: [u64; 5] = [60, 5 * 60, 15 * 60, 60 * 60, 6 * 60 * 60];
const AFTER_SCHEDULE: u64 = 24 * 60 * 60;

/// How long to wait before the next attempt, after `attempts` failed ones (1-based).
pub(crate) fn delay_after(attempts: u32) -> Duration {
    let idx = attempts.saturating_sub(1) as usize;
    Duration::from_secs(SCHEDULE.get(idx).copied().unwrap_or(AFTER_SCHEDULE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule() {
        let mins: Vec<u64> = (1..=8).map(|a| delay_after(a).as_secs() / 60).collect();
        assert_eq!(mins, [1, 5, 15, 60, 360, 1440, 1440, 1440]);
    }
}
