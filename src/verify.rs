//! `verify`, the restore drill: the parts of delivered objects downloaded through the
//! Bot API and checked against their SHA-256, nothing written. A mismatch is alerted to
//! the admin chat; the drill is a run of its own.

use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;

use crate::alert;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::progress::Progress;
use crate::restore::{self, Downloader, ObjectError, Plan};
use crate::run::{Run, RunKind, Tallied, Tally};
use crate::shutdown::Shutdown;

/// What a drill found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Objects checked.
    pub checked: u64,
    /// Parts downloaded and found intact.
    pub parts: u64,
    /// Bytes of those parts.
    pub bytes: u64,
    /// The objects that failed their check.
    pub problems: Vec<Problem>,
}

/// An object that failed its check.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// The object, as `BUCKET/KEY`.
    pub object: String,
    /// The ETag of the version checked.
    pub etag: String,
    /// What was wrong.
    pub error: String,
}

impl VerifyReport {
    /// Exit 1 when an object failed its check.
    pub fn verdict(&self) -> Result<()> {
        if self.problems.is_empty() {
            return Ok(());
        }
        Err(Error::CheckFailed(format!(
            "verify: {} of {} objects failed their check (alerted to the admin chat); see above",
            self.problems.len(),
            self.checked
        )))
    }
}

impl Tallied for VerifyReport {
    fn tally(&self) -> Tally {
        Tally {
            done: self.checked,
            failed: self.problems.len() as u64,
            bytes: self.bytes,
            error: (!self.problems.is_empty()).then(|| format!("{} objects failed their check", self.problems.len())),
            outage: None,
        }
    }
}

/// Checks `sample` delivered objects picked at random (all with 0), of one bucket or
/// all.
pub async fn verify(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    bucket: Option<&str>,
    sample: u64,
    jobs: usize,
) -> Result<VerifyReport> {
    Run::scope(RunKind::Verify, cfg, ledger, async |_| drill(cfg, ledger, bucket, sample, jobs).await).await
}

async fn drill(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    bucket: Option<&str>,
    sample: u64,
    jobs: usize,
) -> Result<VerifyReport> {
    let bucket = bucket.map(str::to_string);
    let files = Ledger::blocking(ledger, move |l| l.sample_delivered(bucket.as_deref(), sample)).await?;
    let downloader = Downloader::for_config(cfg, jobs)?;
    let total: u64 = files.iter().flat_map(|f| &f.parts).map(|p| p.size).sum();
    let progress = Progress::bytes(total, true);
    let shutdown = Shutdown::new();
    shutdown.listen();
    // Objects are checked `jobs` at a time; the downloader keeps `jobs` parts in flight
    // across them.
    let mut checks = futures_util::stream::iter(&files)
        .map(|f| {
            let (downloader, progress, shutdown) = (&downloader, &progress, &shutdown);
            async move {
                let checked = match Plan::from_delivery(&f.delivery, &f.parts, f.pack.as_ref()) {
                    Ok(plan) => restore::check(downloader, &plan, progress, shutdown).await,
                    Err(e) => Err(ObjectError::Object(e.to_string())),
                };
                (f, checked)
            }
        })
        .buffer_unordered(jobs.max(1));
    let mut report = VerifyReport::default();
    while let Some((f, checked)) = checks.next().await {
        let label = format!("{}/{}", f.delivery.object.bucket, f.delivery.object.key);
        report.checked += 1;
        match checked {
            Ok(()) => {
                report.parts += f.parts.len() as u64;
                report.bytes += f.parts.iter().map(|p| p.size).sum::<u64>();
            }
            Err(ObjectError::Object(error)) => {
                let error = downloader.sink().redact(&error);
                progress.println(&format!("tgploy: verify: {error}"));
                let (cfg, subject, why) = (cfg.clone(), label.clone(), error.clone());
                Ledger::blocking(ledger, move |l| alert::raise(l, &cfg, alert::Subject::Verify(&subject), &why))
                    .await?;
                report.problems.push(Problem { object: label, etag: f.delivery.object.etag.clone(), error });
            }
            Err(ObjectError::Run(e)) => {
                progress.finish();
                return Err(e);
            }
        }
    }
    progress.finish();
    // A drill reports in the order the ledger gave the objects, whatever finished first.
    let order: std::collections::HashMap<String, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("{}/{}", f.delivery.object.bucket, f.delivery.object.key), i))
        .collect();
    report.problems.sort_by_key(|p| order.get(&p.object).copied().unwrap_or(usize::MAX));
    Ok(report)
}
