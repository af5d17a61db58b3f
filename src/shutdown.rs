//! SIGINT/SIGTERM: finish the part in flight, release the claim, stop.
//!
//! The first signal asks the run to stop at the next safe point (between parts and
//! between deliveries); a second one exits at once, which is still safe: every accepted
//! part is already in the ledger and the claim's owner is then dead, so the next run
//! resumes it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::ExitCode;

/// A signal that asks a run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (systemd stopping a unit, `kill`).
    Terminate,
}

impl Signal {
    /// Its name as the shell and the operator know it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The exit code a shell reports for a process this signal ended: 128 + its number.
    pub(crate) fn exit_code(self) -> ExitCode {
        match self {
            Signal::Interrupt => ExitCode::Interrupted,
            Signal::Terminate => ExitCode::Terminated,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Signal::Interrupt => 1,
            Signal::Terminate => 2,
        }
    }

    fn from_u8(v: u8) -> Option<Signal> {
        match v {
            1 => Some(Signal::Interrupt),
            2 => Some(Signal::Terminate),
            _ => None,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Signal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A request to stop, shared by everything a run does: which signal asked, and a way to wait for it.
#[derive(Debug, Default)]
pub struct Shutdown {
    signal: AtomicU8,
    notify: tokio::sync::Notify,
}

impl Shutdown {
    /// A new one, with no stop requested.
    pub fn new() -> Arc<Shutdown> {
        Arc::new(Shutdown::default())
    }

    /// The signal that asked the run to stop, if one did.
    pub(crate) fn requested(&self) -> Option<Signal> {
        Signal::from_u8(self.signal.load(Ordering::SeqCst))
    }

    pub(crate) fn request(&self, signal: Signal) {
        self.signal.store(signal.to_u8(), Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Resolves once a stop was requested.
    pub(crate) async fn wait(&self) {
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
                        _ = int.recv() => Signal::Interrupt,
                        _ = term.recv() => Signal::Terminate,
                    };
                    if me.requested().is_some() {
                        eprintln!("tgploy: second signal: exiting now; the next run resumes where this one stopped");
                        std::process::exit(sig.exit_code().code());
                    }
                    eprintln!("tgploy: {sig}: stopping after the part in flight (send it again to exit at once)");
                    me.request(sig);
                }
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                me.request(Signal::Interrupt);
            }
        });
    }
}
