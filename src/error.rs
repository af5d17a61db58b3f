//! Errors that reach the operator, and the exit codes they map to.
//!
//! Policy: every error that leaves the library says what went wrong and, where the
//! operator can do something about it, how to fix it. Each class of failure has its own
//! variant, and [`Error::exit_code`] is the one table that maps them to the documented
//! exit codes. Errors never carry the bot token: the sink redacts it before an error is
//! built. Whether retrying can help is in the class: `Busy` and `Unreachable`/`Outage`
//! are temporary (the next run tries again); the others need the operator.

use std::fmt;

use crate::shutdown::Signal;

/// The exit codes of `tgploy`, stable once published (documented in `--help` and the
/// man page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything asked for was done.
    Success = 0,
    /// Some deliveries failed (recorded in the ledger for `retry`), a check failed, or
    /// something could not be finished (named in the message).
    Failed = 1,
    /// A usage or configuration error: nothing was done.
    Usage = 2,
    /// Another run holds the lock, or the ledger is busy.
    Busy = 3,
    /// An outside service (S3, Telegram) could not be reached.
    Unreachable = 4,
    /// Stopped by SIGINT after the part in flight.
    Interrupted = 130,
    /// Stopped by SIGTERM after the part in flight.
    Terminated = 143,
}

impl ExitCode {
    /// The number the process exits with.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Which outside service an error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The S3-compatible server the objects come from.
    S3,
    /// The Telegram Bot API.
    Telegram,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::S3 => "S3",
            Service::Telegram => "the Telegram Bot API",
        })
    }
}

/// An error that ends a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or invalid; the message names it and where to set it.
    #[error("{0}")]
    Config(String),

    /// The command asks for something that cannot be done as given: a bucket or a
    /// delivery that does not exist or is in the wrong state, an output that exists, an
    /// identity for an object that is not encrypted.
    #[error("{0}")]
    Usage(String),

    /// The second factor refused: no code where one is needed, a wrong or replayed code,
    /// or the lock after too many wrong ones.
    #[error("{0}")]
    SecondFactor(String),

    /// A file or directory of this machine could not be created or read up front (the
    /// temporary directory, an output directory, a manifest, an identity): nothing was
    /// done.
    #[error("{0}")]
    Local(String),

    /// Another process holds what this run needs; the next run tries again.
    #[error("{0}")]
    Busy(String),

    /// S3 or Telegram could not be reached at all.
    #[error("cannot reach {service} at {endpoint}: {reason}")]
    Unreachable {
        /// The service that could not be reached.
        service: Service,
        /// The URL asked.
        endpoint: String,
        /// What went wrong, as the transport or the server said.
        reason: String,
    },

    /// A run stopped because a service stopped answering part-way (an outage, a flood
    /// wait longer than allowed); what it could not do is recorded for the next run.
    #[error("{0}")]
    Outage(String),

    /// The ledger could not be opened, read or written. Nothing goes out without the
    /// ledger, so nothing was done; the message names the file.
    #[error("ledger {path}: {reason}")]
    Ledger {
        /// The ledger file's path.
        path: String,
        /// What went wrong.
        reason: String,
    },

    /// Deliveries failed; they are recorded for retry. The run's report was printed.
    #[error("{0}")]
    DeliveriesFailed(String),

    /// A monitoring check found problems; they were printed.
    #[error("{0}")]
    CheckFailed(String),

    /// What was asked could not be finished: a part missing or corrupt, an object never
    /// delivered whole, Telegram refusing a request, a write that failed half-way.
    #[error("{0}")]
    Failed(String),

    /// A signal stopped the run after the part in flight.
    #[error("stopped by {signal} after the part in flight; claims released; the next run resumes")]
    Interrupted {
        /// The signal that asked the run to stop.
        signal: Signal,
    },

    /// Something that should not happen did (a task that panicked, the runtime failing).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A [`Error::Config`] with this message.
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub(crate) fn local(msg: impl Into<String>) -> Self {
        Error::Local(msg.into())
    }

    pub(crate) fn failed(msg: impl Into<String>) -> Self {
        Error::Failed(msg.into())
    }

    /// The one table from failure classes to exit codes.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) | Error::Usage(_) | Error::SecondFactor(_) | Error::Local(_) => ExitCode::Usage,
            // A ledger that cannot be opened or written is fixed by the operator (the
            // path, its permissions, a newer tgploy); nothing was sent without it.
            Error::Ledger { .. } => ExitCode::Usage,
            Error::Busy(_) => ExitCode::Busy,
            Error::Unreachable { .. } | Error::Outage(_) => ExitCode::Unreachable,
            Error::DeliveriesFailed(_) | Error::CheckFailed(_) | Error::Failed(_) | Error::Internal(_) => {
                ExitCode::Failed
            }
            Error::Interrupted { signal } => signal.exit_code(),
        }
    }

    /// Errors whose report was already printed on stdout: only a one-line summary
    /// follows on stderr, without `error:`.
    pub fn is_summary(&self) -> bool {
        matches!(self, Error::DeliveriesFailed(_) | Error::CheckFailed(_))
    }
}

/// A result whose error is, by default, an [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with its sources on one line (`dispatch failure: io error: … Connection
/// refused`), skipping links that repeat the one before, at most 300 characters.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    if out.len() > 300 {
        let mut end = 300;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_exit_as_a_shell_reports_them() {
        assert_eq!(Error::Interrupted { signal: Signal::Interrupt }.exit_code().code(), 130);
        assert_eq!(Error::Interrupted { signal: Signal::Terminate }.exit_code().code(), 143);
        assert_eq!(Error::usage("x").exit_code(), ExitCode::Usage);
        assert_eq!(Error::Outage("x".into()).exit_code(), ExitCode::Unreachable);
    }
}
