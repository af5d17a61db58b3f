//! What a batch of deliveries came to: counts for the report on stdout, the failures
//! named, and the exit status it calls for. Shared by `sync`, `retry` and the webhook
//! server.

use serde::Serialize;

use crate::error::{Error, Result, Service};
use crate::shutdown::Signal;
use crate::sizes::human_size;

/// A delivery that failed in this run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailedItem {
    pub(crate) id: i64,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) error: String,
    /// Failed for the last allowed time: no more automatic retries.
    pub(crate) dead: bool,
}

/// What a run's deliveries came to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryReport {
    /// Objects delivered (those sent in packs included).
    pub sent: u64,
    pub(crate) sent_bytes: u64,
    /// Documents sent (parts, whole objects, packs, empty-object messages; not
    /// manifests).
    pub(crate) parts: u64,
    /// Packs sent: small objects that went together as one document each.
    pub(crate) packs: u64,
    /// Objects sent in packs (counted in `sent` too).
    pub(crate) packed: u64,
    /// The deliveries that failed in this run.
    pub failed: Vec<FailedItem>,
    /// Versions deleted or overwritten on S3 before they could be delivered (skipped).
    pub vanished: u64,
    /// Failed deliveries in the ledger waiting for `retry` after this run.
    pub(crate) waiting_for_retry: u64,
    /// Dead deliveries in the ledger after this run.
    pub(crate) dead: u64,
    /// Why the run stopped before delivering everything, if it did.
    pub(crate) stopped: Option<String>,
    /// The service whose outage stopped the run.
    #[serde(skip)]
    pub(crate) outage: Option<Service>,
    /// The signal that stopped the run (SIGINT, SIGTERM), if one did.
    pub(crate) interrupted: Option<Signal>,
    /// Deliveries the batch picked from the ledger.
    #[serde(skip)]
    pub(crate) picked: u64,
    /// Bytes the progress counted as delivered, and its total at the end (they agree
    /// when everything went out).
    #[serde(skip)]
    pub progress_bytes: (u64, u64),
}

impl DeliveryReport {
    /// The exit status the report calls for: interrupted, stopped (a service went away),
    /// failures (with `listing_errors` buckets that could not be listed), or success.
    pub fn verdict(&self, listing_errors: usize) -> Result<()> {
        if let Some(signal) = self.interrupted {
            return Err(Error::Interrupted { signal });
        }
        if let Some(stopped) = &self.stopped {
            return Err(Error::Outage(stopped.clone()));
        }
        let failed = self.failed.len();
        if failed == 0 && listing_errors == 0 {
            return Ok(());
        }
        let dead = self.failed.iter().filter(|f| f.dead).count();
        let mut parts = Vec::new();
        if failed > 0 {
            parts.push(format!("{failed} deliveries failed (recorded for `tgploy retry`)"));
        }
        if dead > 0 {
            parts.push(format!("{dead} of them are now dead (see `tgploy status`)"));
        }
        if listing_errors > 0 {
            parts.push(format!("{listing_errors} bucket(s) could not be listed"));
        }
        Err(Error::DeliveriesFailed(parts.join("; ")))
    }

    /// The text summary, for people.
    pub fn render(&self) -> String {
        let mut out =
            format!("sent {} objects ({} in {} documents)\n", self.sent, human_size(self.sent_bytes), self.parts);
        if self.packs > 0 {
            out.push_str(&format!("{} of them small objects in {} packs\n", self.packed, self.packs));
        }
        if !self.failed.is_empty() {
            out.push_str(&format!("{} failed (recorded for `tgploy retry`):\n", self.failed.len()));
            for f in &self.failed {
                let dead = if f.dead { " [dead: no more automatic retries]" } else { "" };
                out.push_str(&format!("  #{} {}/{}: {}{dead}\n", f.id, f.bucket, f.key, f.error));
            }
        }
        if self.vanished > 0 {
            out.push_str(&format!(
                "{} object versions vanished from S3 before delivery (recorded as skipped)\n",
                self.vanished
            ));
        }
        if self.waiting_for_retry > 0 {
            out.push_str(&format!("{} failed deliveries are waiting for `tgploy retry`\n", self.waiting_for_retry));
        }
        if self.dead > 0 {
            out.push_str(&format!(
                "{} dead deliveries need attention (`tgploy status`, `tgploy retry --dead`)\n",
                self.dead
            ));
        }
        if let Some(s) = &self.stopped {
            out.push_str(&format!("{s}\n"));
        }
        if let Some(s) = &self.interrupted {
            out.push_str(&format!("stopped by {s}; the next run resumes\n"));
        }
        out
    }
}
