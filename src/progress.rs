//! The progress bar on stderr, drawn only when stderr is a terminal.
//!
//! Every byte counts once: a part's bytes when Telegram accepts it, the parts a resumed
//! delivery sent before when it resumes; what a delivery does not deliver (it failed,
//! vanished, or the run stopped) leaves the total. Log lines are printed above the bar
//! (see [`LogWriter`]) rather than through it.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// The bar being drawn, if any: log lines go above it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn active() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A byte count for one run, drawn as a bar on a terminal.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    done: AtomicU64,
    total: AtomicU64,
    /// Objects finished, of how many (`restore --all`).
    objects: Option<(AtomicU64, u64)>,
}

impl Progress {
    /// A bar over `total_bytes`, drawn only on a terminal.
    pub(crate) fn bytes(total_bytes: u64, enabled: bool) -> Progress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total_bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress::with_bar(bar, total_bytes)
    }

    /// A bar over `total_bytes` of `objects` objects, with the objects done and the time
    /// left, drawn only on a terminal.
    pub(crate) fn objects(total_bytes: u64, objects: u64, enabled: bool) -> Progress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total_bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {msg}, {eta} left",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let mut progress = Progress::with_bar(bar, total_bytes);
        progress.objects = Some((AtomicU64::new(0), objects));
        progress.set_message(format!("0/{objects} objects"));
        progress
    }

    /// One more object finished.
    pub(crate) fn object_done(&self) {
        if let Some((done, total)) = &self.objects {
            let done = done.fetch_add(1, Ordering::Relaxed) + 1;
            self.set_message(format!("{done}/{total} objects"));
        }
    }

    /// Counts on `bar` (drawn wherever it draws), which log lines then go above.
    pub(crate) fn with_bar(bar: Option<ProgressBar>, total_bytes: u64) -> Progress {
        if let Some(bar) = &bar {
            *active() = Some(bar.clone());
        }
        Progress { bar, done: AtomicU64::new(0), total: AtomicU64::new(total_bytes), objects: None }
    }

    pub(crate) fn set_message(&self, msg: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg);
        }
    }

    /// Bytes delivered.
    pub(crate) fn inc(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// Bytes that will not be delivered in this run after all.
    pub(crate) fn forget(&self, bytes: u64) {
        let total = self.total.fetch_sub(bytes.min(self.total()), Ordering::Relaxed).saturating_sub(bytes);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Prints a line above the bar (or plainly to stderr without one).
    pub(crate) fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            *active() = None;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Where log lines go: stderr, or above the progress bar while one is drawn (through
/// the bar, which redraws itself below the line), so neither tears the other.
#[derive(Clone, Copy, Default)]
pub(crate) struct LogWriter;

/// One log line, written when the event is complete.
pub(crate) struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let line = crate::logging::scrub(&String::from_utf8_lossy(&std::mem::take(&mut self.0)));
        match active().clone() {
            Some(bar) => bar.println(line.trim_end_matches('\n')),
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::{InMemoryTerm, ProgressDrawTarget};

    #[test]
    fn counts_each_byte_once_and_forgets_what_is_not_delivered() {
        let p = Progress::with_bar(None, 0);
        p.total.store(300, Ordering::Relaxed);
        p.inc(100);
        p.inc(50);
        p.forget(150);
        assert_eq!((p.done(), p.total()), (150, 150));
    }

    #[test]
    fn log_lines_go_above_the_bar() {
        let term = InMemoryTerm::new(10, 80);
        let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::term_like(Box::new(term.clone())));
        bar.set_style(ProgressStyle::with_template("{bytes}/{total_bytes}").unwrap());
        let p = Progress::with_bar(Some(bar.clone()), 1000);
        p.inc(100);
        bar.tick();
        // What tracing does for one event: take a writer, write the line, drop it.
        {
            use tracing_subscriber::fmt::MakeWriter;
            let mut line = LogWriter.make_writer();
            line.write_all(b"a log line\n").unwrap();
        }
        p.inc(100);
        bar.tick();
        let screen = term.contents();
        assert_eq!(screen, "a log line\n200 B/1000 B", "the line above, the bar whole below it");
        p.finish();
        assert!(active().is_none(), "a finished bar no longer takes log lines");
    }
}
