//! Why one delivery attempt stopped before it was done: the bottom of the delivery
//! tree, shared by the courier and the part readers.

use crate::error::Error;
use crate::sink::SinkError;
use crate::source::SourceError;

/// Why one attempt stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    Source(SourceError),
    Sink(SinkError),
    Failed(String),
    /// This version no longer exists on S3 (deleted or overwritten since the listing).
    Gone(String),
    /// Another run took the delivery over (our lease ran out).
    Lost,
    /// A signal asked the run to stop.
    Interrupted,
    Ledger(Error),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Source(e) => write!(f, "{e}"),
            Stop::Sink(e) => write!(f, "{e}"),
            Stop::Failed(e) | Stop::Gone(e) => f.write_str(e),
            Stop::Lost => f.write_str("another run took it over"),
            Stop::Interrupted => f.write_str("stopped"),
            Stop::Ledger(e) => write!(f, "{e}"),
        }
    }
}

impl From<SourceError> for Stop {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::NotFound(_) => Stop::Gone("the object was deleted before it could be delivered".into()),
            SourceError::Changed(_) => Stop::Gone(
                "the object changed since it was listed (S3 answered 412 to If-Match); its new version is \
                 delivered by a later sync"
                    .into(),
            ),
            e => Stop::Source(e),
        }
    }
}

impl From<SinkError> for Stop {
    fn from(e: SinkError) -> Self {
        Stop::Sink(e)
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Ledger(e)
    }
}
