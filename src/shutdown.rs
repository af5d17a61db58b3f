//! SIGINT/SIGTERM: finish the part in flight, release the claim, stop.
//!
//! The first signal asks the run to stop at the next safe point (between parts and
//! between deliveries); a second one exits at once, which is still safe: every accepted
//! part is already in the ledger and the claim's owner is then dead, so the next run
//! resumes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

#[derive(Debug, Default)]
pub struct Shutdown {
    signal: AtomicI32,
    notify: tokio::sync::Notify,
}

/// The exit code a shell reports for a process ended by `signal`.
pub fn exit_code_for(signal: i32) -> i32 {
    128 + signal
}

pub const SIGINT: i32 = 2;
pub const SIGTERM: i32 = 15;

impl Shutdown {
    pub fn new() -> Arc<Shutdown> {
        Arc::new(Shutdown::default())
    }

    /// The signal that asked the run to stop, if one did.
    pub fn requested(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    pub fn request(&self, signal: i32) {
        self.signal.store(signal, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Resolves once a stop was requested.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.requested().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Listens for SIGINT and SIGTERM for the rest of the process (needs a tokio runtime).
    /// The handlers are in place when this returns: a signal that arrives right after
    /// (a server that just said where it listens) is not lost to the default action.
    pub fn listen(self: &Arc<Self>) {
        let me = Arc::clone(self);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                tracing::warn!("cannot listen for SIGINT/SIGTERM; a signal will end the run at once");
                return;
            };
            tokio::spawn(async move {
                loop {
                    let sig = tokio::select! {
                        _ = int.recv() => SIGINT,
                        _ = term.recv() => SIGTERM,
                    };
                    if me.requested().is_some() {
                        eprintln!("tgploy: second signal: exiting now; the next run resumes where this one stopped");
                        std::process::exit(exit_code_for(sig));
                    }
                    eprintln!(
                        "tgploy: {}: stopping after the part in flight (send it again to exit at once)",
                        if sig == SIGINT { "SIGINT" } else { "SIGTERM" }
                    );
                    me.request(sig);
                }
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                me.request(SIGINT);
            }
        });
    }
}
