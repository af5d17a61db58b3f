//! What `restore --all` reports: an outcome per object, the totals, and the exit status
//! they call for.

use serde::Serialize;

use crate::error::{Error, Result};

/// How one object ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectOutcome {
    /// A dry run: it would be restored.
    WouldRestore,
    /// Written to its destination.
    Restored,
    /// The same object (size and SHA-256) was there already.
    AlreadyThere,
    /// It could not be restored; `error` says why.
    Failed,
}

/// One object of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectReport {
    /// The bucket it belongs to.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// The ETag of the version restored.
    pub etag: String,
    /// The object's size in bytes.
    pub size: u64,
    /// When S3 last modified the version, RFC 3339 in UTC; `None` when unknown.
    pub last_modified: Option<String>,
    pub(crate) encrypted: bool,
    /// How it ended.
    pub outcome: ObjectOutcome,
    /// Where it went: a path, or `s3://BUCKET/KEY`.
    pub(crate) target: Option<String>,
    /// Why it failed; `None` unless it did.
    pub error: Option<String>,
}

/// What `restore --all` did (or, with `--dry-run`, would do).
#[derive(Debug, Serialize)]
pub struct AllReport {
    /// A dry run: nothing was downloaded.
    pub dry_run: bool,
    pub(crate) destination: String,
    pub(crate) as_of: Option<String>,
    /// Objects selected, and the bytes of their stored streams.
    pub(crate) selected: u64,
    pub(crate) bytes: u64,
    pub(crate) restored: u64,
    pub(crate) already_there: u64,
    pub(crate) failed: u64,
    /// Every object selected, with its outcome.
    pub objects: Vec<ObjectReport>,
    /// Why the run stopped before every object was done, if it did.
    pub(crate) stopped: Option<String>,
    #[serde(skip)]
    pub(super) stop: Option<Error>,
}

impl AllReport {
    /// One line for people.
    pub fn summary(&self) -> String {
        if self.dry_run {
            return format!(
                "dry run: would restore {} objects ({}) to {}\n",
                self.selected,
                crate::sizes::human_size(self.bytes),
                self.destination
            );
        }
        let mut out = format!(
            "restored {} of {} objects to {}; {} already there; {} failed\n",
            self.restored, self.selected, self.destination, self.already_there, self.failed
        );
        if let Some(why) = &self.stopped {
            out.push_str(&format!("stopped: {why}; run it again to go on\n"));
        }
        out
    }

    /// The exit status: 0 when everything came back, 1 when some objects failed, the
    /// stopping error (4 unreachable, 130/143 a signal) when the run stopped.
    pub fn verdict(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            return Err(stop);
        }
        if self.failed > 0 {
            return Err(Error::Failed(format!(
                "{} of {} objects could not be restored (named above); the others were",
                self.failed, self.selected
            )));
        }
        Ok(())
    }
}
