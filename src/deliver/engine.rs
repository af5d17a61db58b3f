//! The run engine: what `sync`, `retry` and `serve-webhook` hand their deliveries to.
//!
//! It owns the run machinery once for all three: the private directory for part
//! files, taking over the claims of runs that died, claims and leases, several
//! deliveries in flight at once (Telegram's pacing per chat is shared and exact, in the
//! sink), the progress bar, and what an outage does to a batch: a delivery that meets
//! S3 or Telegram down gives its claim back without counting an attempt, no further
//! delivery starts, and the batch reports the outage (exit 4, an alert).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use super::{Courier, Outcome};
use crate::alert;
use crate::config::Config;
use crate::error::{Error, Result, Service};
use crate::ledger::{Ledger, Run};
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::sink::TelegramSink;
use crate::source::S3Source;
use crate::time::now;

/// How long a claim lasts without renewal; renewed every third of it while sending.
pub const LEASE: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailedItem {
    pub id: i64,
    pub bucket: String,
    pub key: String,
    pub error: String,
    /// Failed for the last allowed time: no more automatic retries.
    pub dead: bool,
}

/// What a run's deliveries came to (shared by `sync`, `retry` and the webhook server).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryReport {
    pub sent: u64,
    pub sent_bytes: u64,
    /// Documents sent (parts, whole objects, empty-object messages; not manifests).
    pub parts: u64,
    pub failed: Vec<FailedItem>,
    /// Versions deleted or overwritten on S3 before they could be delivered (skipped).
    pub vanished: u64,
    /// Failed deliveries in the ledger waiting for `retry` after this run.
    pub waiting_for_retry: u64,
    /// Dead deliveries in the ledger after this run.
    pub dead: u64,
    /// Why the run stopped before delivering everything, if it did.
    pub stopped: Option<String>,
    /// The service whose outage stopped the run.
    #[serde(skip)]
    pub outage: Option<Service>,
    /// The signal that stopped the run (SIGINT, SIGTERM), if one did.
    pub interrupted: Option<String>,
    /// Bytes the progress counted as delivered, and its total at the end (they agree
    /// when everything went out).
    #[serde(skip)]
    pub progress_bytes: (u64, u64),
}

/// How an engine runs its deliveries.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

/// The deliveries of one process: `sync`, `retry`, or the webhook server's lifetime.
pub struct Engine {
    cfg: Config,
    ledger: Arc<Ledger>,
    source: S3Source,
    sink: TelegramSink,
    tmp: tempfile::TempDir,
    shutdown: Arc<Shutdown>,
    options: EngineOptions,
    /// The bot token was checked (getMe) before the first upload.
    checked: AtomicBool,
}

impl Engine {
    pub fn new(
        cfg: &Config,
        ledger: Arc<Ledger>,
        source: S3Source,
        shutdown: Arc<Shutdown>,
        options: EngineOptions,
    ) -> Result<Engine> {
        let sink = TelegramSink::new(&cfg.require_telegram()?)?;
        let tmp = private_tmp_dir(cfg)?;
        Ok(Engine { cfg: cfg.clone(), ledger, source, sink, tmp, shutdown, options, checked: AtomicBool::new(false) })
    }

    pub fn sink(&self) -> &TelegramSink {
        &self.sink
    }

    /// Resumes deliveries whose owner died on this host without waiting for the lease.
    pub async fn take_over_dead_runs(&self) -> Result<()> {
        take_over_dead_runs(&self.ledger).await
    }

    /// Delivers `ids` (failed ones when `retrying`), then counts what waits in the
    /// ledger. An `Err` ends the run (the ledger failing, a configuration error); an
    /// outage or a signal ends the batch and is reported.
    pub async fn deliver(&self, ids: Vec<i64>, retrying: bool, report: &mut DeliveryReport) -> Result<()> {
        if !ids.is_empty() {
            self.deliver_ids(ids, retrying, report).await?;
        }
        let (counts, _) = Ledger::blocking(&self.ledger, |l| l.counts()).await?;
        report.waiting_for_retry = counts.failed;
        report.dead = counts.dead;
        Ok(())
    }

    async fn deliver_ids(&self, ids: Vec<i64>, retrying: bool, report: &mut DeliveryReport) -> Result<()> {
        if !self.checked.load(Ordering::Relaxed) {
            self.sink.check().await?;
            self.checked.store(true, Ordering::Relaxed);
        }
        let total = {
            let ids = ids.clone();
            Ledger::blocking(&self.ledger, move |l| l.total_size(&ids)).await?
        };
        let progress = Progress::bytes(total, self.options.progress);
        let courier = Courier {
            cfg: &self.cfg,
            ledger: &self.ledger,
            source: &self.source,
            sink: &self.sink,
            tmp_dir: self.tmp.path(),
            owner: crate::owner::this_process(),
            lease: LEASE,
            progress: &progress,
            shutdown: &self.shutdown,
        };
        // Set when the batch must start no further delivery: an outage, a fatal error.
        let stopping = AtomicBool::new(false);
        let mut results = futures_util::stream::iter(ids)
            .map(|id| {
                let (courier, stopping) = (&courier, &stopping);
                async move {
                    if stopping.load(Ordering::SeqCst) || self.shutdown.requested().is_some() {
                        return Ok(None);
                    }
                    courier.deliver(id, retrying).await.map(|r| r.map(|(obj, outcome)| (id, obj, outcome)))
                }
            })
            .buffer_unordered(self.options.concurrency.max(1));
        let mut fatal = None;
        while let Some(result) = results.next().await {
            let (id, obj, outcome) = match result {
                Ok(Some(done)) => done,
                Ok(None) => continue,
                Err(e) => {
                    stopping.store(true, Ordering::SeqCst);
                    fatal.get_or_insert(e);
                    continue;
                }
            };
            match outcome {
                Outcome::Sent { bytes, parts } => {
                    report.sent += 1;
                    report.sent_bytes += bytes;
                    report.parts += u64::from(parts);
                }
                Outcome::Failed { error, dead } => {
                    report.failed.push(FailedItem { id, bucket: obj.bucket, key: obj.key, error, dead });
                }
                Outcome::Outage { service, error } => {
                    stopping.store(true, Ordering::SeqCst);
                    if report.outage.is_none() {
                        tracing::error!("{error}; stopping the run, the next one resumes");
                        report.stopped = Some(format!("stopped: {error}"));
                        report.outage = Some(service);
                    }
                }
                Outcome::Interrupted => {}
                Outcome::Gone { .. } => report.vanished += 1,
                Outcome::Lost => {}
            }
        }
        drop(results);
        if let Some(sig) = self.shutdown.requested() {
            report.interrupted = Some(signal_name(sig).to_string());
        }
        report.progress_bytes = (progress.done(), progress.total());
        progress.finish();
        match fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        crate::shutdown::SIGINT => "SIGINT",
        crate::shutdown::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Resumes deliveries whose owner died on this host without waiting for the lease.
pub async fn take_over_dead_runs(ledger: &Arc<Ledger>) -> Result<()> {
    Ledger::blocking(ledger, |l| {
        for (id, owner) in l.leases()? {
            if crate::owner::is_dead(&owner) {
                tracing::info!("delivery {id}: its run ({owner}) is gone; resuming it");
                l.expire_lease(id, &owner)?;
            }
        }
        Ok(())
    })
    .await
}

/// A private directory for part files, removed when dropped.
pub fn private_tmp_dir(cfg: &Config) -> Result<tempfile::TempDir> {
    let base: PathBuf = cfg.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut builder = tempfile::Builder::new();
    builder.prefix("tgploy-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    builder.tempdir_in(&base).map_err(|e| {
        Error::config(format!(
            "cannot create a temporary directory in {}: {e}; set `tmp_dir` (TGPLOY_TMP_DIR) to a writable directory",
            base.display()
        ))
    })
}

/// Records a finished `sync` or `retry`, raises an alert for a service it could not
/// reach, and flushes the alert queue.
pub async fn finish_run(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    kind: &str,
    started: i64,
    result: Result<&DeliveryReport, &Error>,
) {
    let (sent, failed, bytes, error) = match result {
        Ok(r) => (r.sent, r.failed.len() as u64, r.sent_bytes, r.stopped.clone().or(r.interrupted.clone())),
        Err(e) => (0, 0, 0, Some(e.to_string())),
    };
    let run = Run { kind: kind.into(), started_at: started, finished_at: now(), sent, failed, bytes, error };
    if let Err(e) = Ledger::blocking(ledger, move |l| l.record_run(&run)).await {
        tracing::warn!("cannot record the run in the ledger: {e}");
    }
    let down = outage(result);
    if let Some((service, error)) = &down {
        raise_outage(cfg, ledger, *service, error).await;
    }
    // With Telegram down the alerts wait for the next run that reaches it.
    if !matches!(down, Some((Service::Telegram, _))) {
        alert::flush_if_possible(ledger, cfg).await;
    }
}

/// The service whose outage ended a batch, and what was said, if one did.
pub fn outage(result: Result<&DeliveryReport, &Error>) -> Option<(Service, String)> {
    match result {
        Err(Error::Unreachable { service, endpoint, reason }) => {
            Some((*service, format!("cannot reach {service} at {endpoint}: {reason}")))
        }
        Ok(r) => r.outage.zip(r.stopped.clone()),
        Err(_) => None,
    }
}

/// Queues the "cannot reach" alert about `service` (rate-limited per service).
pub async fn raise_outage(cfg: &Config, ledger: &Arc<Ledger>, service: Service, error: &str) {
    let (cfg, error) = (cfg.clone(), error.to_string());
    let raised = Ledger::blocking(ledger, move |l| {
        alert::raise(l, &cfg, alert::Subject::Unreachable(&service.to_string()), &error)
    })
    .await;
    if let Err(e) = raised {
        tracing::warn!("cannot queue an alert: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn part_files_live_in_a_private_directory() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let base_path = base.path().display().to_string();
        let cfg = Config::load_with(&crate::config::Overrides::default(), &|name| {
            (name == crate::config::env::TMP_DIR).then(|| base_path.clone())
        })
        .unwrap();
        let dir = private_tmp_dir(&cfg).unwrap();
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
        let part = tempfile::Builder::new().prefix("part-").tempfile_in(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(part.path()).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
