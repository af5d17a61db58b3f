//! Proactive pacing: the messages of one bot to one chat (a key, `BOT:CHAT`) are spaced
//! by an interval (60 s divided by `telegram.messages_per_minute`), however many
//! deliveries run at once, so that Telegram's flood control rarely has to say so with a
//! 429. With several bots, a message goes through whichever bot's turn in its chat comes
//! first; bots whose turns come together take them in rotation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The next free slot of each key.
#[derive(Debug)]
pub(crate) struct Pacer {
    interval: Duration,
    next: Mutex<HashMap<String, Instant>>,
    /// Where the search for the first free bot starts next, so that bots free at the
    /// same moment take turns.
    rotation: AtomicUsize,
}

impl Pacer {
    /// Paces at `per_minute` messages a minute to each chat; 0 paces nothing.
    pub(crate) fn per_minute(per_minute: u32) -> Pacer {
        let interval = match per_minute {
            0 => Duration::ZERO,
            n => Duration::from_secs_f64(60.0 / f64::from(n)),
        };
        Pacer { interval, next: Mutex::new(HashMap::new()), rotation: AtomicUsize::new(0) }
    }

    /// Takes the next free slot of `chat` at `now`: `now` itself when the chat has been
    /// quiet for an interval, else one interval after the slot taken before.
    pub(crate) fn take(&self, chat: &str, now: Instant) -> Instant {
        if self.interval.is_zero() {
            return now;
        }
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next.get(chat).copied().filter(|s| *s > now).unwrap_or(now);
        next.insert(chat.to_string(), slot + self.interval);
        slot
    }

    /// Takes the earliest free slot among `keys` (one bot's key in the same chat each):
    /// returns the index of the key and the slot.
    pub(crate) fn take_first_free(&self, keys: &[String], now: Instant) -> (usize, Instant) {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let start = self.rotation.fetch_add(1, Ordering::Relaxed);
        let n = keys.len().max(1);
        let mut best: Option<(usize, Instant)> = None;
        for i in (0..n).map(|i| (start + i) % n) {
            let Some(key) = keys.get(i) else { continue };
            let slot = next.get(key).copied().filter(|s| *s > now).unwrap_or(now);
            if best.is_none_or(|(_, b)| slot < b) {
                best = Some((i, slot));
            }
        }
        let (i, slot) = best.unwrap_or((0, now));
        if let Some(key) = keys.get(i) {
            next.insert(key.clone(), slot + self.interval);
        }
        (i, slot)
    }

    /// Holds a key back until `until` (a flood wait Telegram asked for).
    pub(crate) fn hold(&self, key: &str, until: Instant) {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next.entry(key.to_string()).or_insert(until);
        if *slot < until {
            *slot = until;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_chat_gets_one_slot_an_interval() {
        let pacer = Pacer::per_minute(20);
        let t = Instant::now();
        let slots: Vec<Duration> = (0..4).map(|_| pacer.take("-100", t) - t).collect();
        assert_eq!(slots, [0, 3, 6, 9].map(Duration::from_secs));
    }

    #[test]
    fn a_quiet_chat_goes_at_once_and_chats_are_paced_apart() {
        let pacer = Pacer::per_minute(60);
        let t = Instant::now();
        assert_eq!(pacer.take("a", t), t);
        assert_eq!(pacer.take("b", t), t, "another chat has its own slots");
        assert_eq!(pacer.take("a", t + Duration::from_millis(400)), t + Duration::from_secs(1));
        // Quiet for longer than an interval: the next message goes when it comes.
        let later = t + Duration::from_secs(10);
        assert_eq!(pacer.take("a", later), later);
        assert_eq!(pacer.take("a", later), later + Duration::from_secs(1));
    }

    #[test]
    fn several_bots_take_the_first_free_turn_and_a_held_bot_waits() {
        let pacer = Pacer::per_minute(60);
        let keys: Vec<String> = ["1:c", "2:c", "3:c"].map(String::from).to_vec();
        let t = Instant::now();
        let mut picked: Vec<usize> = (0..3).map(|_| pacer.take_first_free(&keys, t).0).collect();
        picked.sort();
        assert_eq!(picked, [0, 1, 2], "three bots, three messages at once");
        let (_, slot) = pacer.take_first_free(&keys, t);
        assert_eq!(slot, t + Duration::from_secs(1), "the fourth waits a turn");
        // A flood wait on one bot leaves the others free.
        let pacer = Pacer::per_minute(60);
        pacer.hold("1:c", t + Duration::from_secs(30));
        let picks: Vec<(usize, Instant)> = (0..4).map(|_| pacer.take_first_free(&keys, t)).collect();
        assert!(picks.iter().all(|(i, _)| *i != 0), "the held bot is not picked: {picks:?}");
        assert_eq!(pacer.take("1:c", t), t + Duration::from_secs(30));
    }

    #[test]
    fn zero_paces_nothing() {
        let pacer = Pacer::per_minute(0);
        let t = Instant::now();
        assert!((0..5).all(|_| pacer.take("a", t) == t));
    }
}
