//! Proactive pacing: requests to one chat are spaced by an interval (60 s divided by
//! `telegram.messages_per_minute`), however many deliveries run at once, so that
//! Telegram's flood control rarely has to say so with a 429.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The next free slot of each chat.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Mutex<HashMap<String, Instant>>,
}

impl Pacer {
    /// Paces at `per_minute` messages a minute to each chat; 0 paces nothing.
    pub fn per_minute(per_minute: u32) -> Pacer {
        let interval = match per_minute {
            0 => Duration::ZERO,
            n => Duration::from_secs_f64(60.0 / f64::from(n)),
        };
        Pacer { interval, next: Mutex::new(HashMap::new()) }
    }

    /// Takes the next free slot of `chat` at `now`: `now` itself when the chat has been
    /// quiet for an interval, else one interval after the slot taken before.
    pub fn take(&self, chat: &str, now: Instant) -> Instant {
        if self.interval.is_zero() {
            return now;
        }
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next.get(chat).copied().filter(|s| *s > now).unwrap_or(now);
        next.insert(chat.to_string(), slot + self.interval);
        slot
    }

    /// Waits for the next free slot of `chat` and takes it.
    pub async fn wait(&self, chat: &str) {
        let slot = self.take(chat, Instant::now());
        tokio::time::sleep_until(slot.into()).await;
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
    fn zero_paces_nothing() {
        let pacer = Pacer::per_minute(0);
        let t = Instant::now();
        assert!((0..5).all(|_| pacer.take("a", t) == t));
    }
}
