//! Errors that reach the operator, and the exit codes they map to.
//!
//! Policy: every error that leaves the library says what went wrong and, where the
//! operator can do something about it, how to fix it. Each error knows its exit code
//! (see [`ExitCode`]); `main` maps them in one place. Errors never carry the bot token:
//! the sink redacts it before an error is built.

use std::fmt;

/// The exit codes of `tgploy`, stable once published (documented in `--help` and the
/// man page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything asked for was done.
    Success = 0,
    /// Some deliveries failed; they are recorded in the ledger for `retry`.
    DeliveryFailed = 1,
    /// A usage or configuration error: nothing was done.
    Config = 2,
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
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Which outside service an error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    S3,
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
    /// A missing or invalid setting, or a request that cannot be carried out as given.
    #[error("{0}")]
    Config(String),

    /// Another process holds what this run needs.
    #[error("{0}")]
    Busy(String),

    /// S3 or Telegram could not be reached at all.
    #[error("cannot reach {service} at {endpoint}: {reason}")]
    Unreachable { service: Service, endpoint: String, reason: String },

    /// The ledger could not be opened, read or written.
    #[error("ledger {path}: {reason}")]
    Ledger { path: String, reason: String },

    /// A run stopped because a service stopped answering part-way; what it could not do
    /// is recorded for retry.
    #[error("{0}")]
    ServiceLost(String),

    /// A monitoring check found problems; they were printed.
    #[error("{0}")]
    CheckFailed(String),

    /// A signal stopped the run after the part in flight.
    #[error("stopped by {signal} after the part in flight; claims released; the next run resumes")]
    Interrupted { signal: &'static str },

    /// Deliveries failed; they are recorded for retry. The run's report was printed.
    #[error("{0}")]
    DeliveriesFailed(String),

    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) => ExitCode::Config,
            Error::Busy(_) => ExitCode::Busy,
            Error::Unreachable { .. } => ExitCode::Unreachable,
            Error::Ledger { .. } => ExitCode::Config,
            Error::ServiceLost(_) => ExitCode::Unreachable,
            Error::DeliveriesFailed(_) | Error::CheckFailed(_) => ExitCode::DeliveryFailed,
            Error::Interrupted { signal: "SIGINT" } => ExitCode::Interrupted,
            Error::Interrupted { .. } => ExitCode::Terminated,
            Error::Other(_) => ExitCode::DeliveryFailed,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
