//! Delivering: the engine (this file) runs a batch of deliveries, several at once; the
//! [`courier`] carries one delivery from claim to `sent`; the [`parts`] readers cut an
//! object into checked part files beside the uploads. Read top-down: engine, courier,
//! parts; [`layout`], [`hash`], [`manifest`] and [`stop`] are what they share.
//!
//! The engine owns the machinery once for `sync`, `retry` and `serve-webhook` (through
//! [`crate::run::Run::deliver`]): the private directory for part files, taking over the
//! claims of runs that died, picking a batch's deliveries, several deliveries in flight
//! at once (Telegram's pacing per chat is shared and exact, in the sink), the progress
//! bar, and what an outage does to a batch: a delivery that meets S3 or Telegram down
//! gives its claim back without counting an attempt, no further delivery starts, and
//! the batch reports the outage (exit 4, an alert).

mod courier;
pub(crate) mod hash;
pub(crate) mod layout;
pub(crate) mod manifest;
pub(crate) mod pack;
mod parts;
mod report;
mod stop;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

use crate::config::Config;
use crate::error::Result;
use crate::ledger::Ledger;
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::sink::TelegramSink;
use crate::source::S3Source;
use crate::time::now;
use courier::{Courier, Outcome};
pub use report::{DeliveryReport, FailedItem};

/// How long a claim lasts without renewal; renewed every third of it while sending.
pub(crate) const LEASE: Duration = Duration::from_secs(10 * 60);

/// How an engine runs its deliveries.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

/// Which deliveries a batch takes from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Batch {
    /// Pending deliveries (and those a dead run left claimed) of these buckets: `sync`.
    Pending { buckets: Vec<String> },
    /// Pending deliveries of every enabled bucket: the webhook server.
    PendingOfEnabled,
    /// Failed deliveries whose next attempt is due (all of them with `ignore_schedule`),
    /// then those a dead run left claimed: `retry`.
    Due { ignore_schedule: bool },
    /// These deliveries, whatever their schedule: `retry --id`.
    Ids(Vec<i64>),
}

impl Batch {
    /// Whether the batch takes failed deliveries (claimed from `failed`, not `pending`).
    pub(crate) fn retrying(&self) -> bool {
        matches!(self, Batch::Due { .. } | Batch::Ids(_))
    }
}

/// What a batch does next: one delivery, or a pack of small ones.
enum Work {
    One(i64),
    Pack(Vec<i64>),
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
    /// An engine for `cfg`'s bots, with a private temporary directory for part files (`tmp_dir`).
    /// Fails when the Telegram settings are missing or the directory cannot be created.
    pub fn new(
        cfg: &Config,
        ledger: Arc<Ledger>,
        source: S3Source,
        shutdown: Arc<Shutdown>,
        options: EngineOptions,
    ) -> Result<Engine> {
        let sink = TelegramSink::new(&cfg.require_telegram()?)?;
        let tmp = crate::private_files::temp_dir(cfg.tmp_dir.as_deref())?;
        Ok(Engine { cfg: cfg.clone(), ledger, source, sink, tmp, shutdown, options, checked: AtomicBool::new(false) })
    }

    pub(crate) fn sink(&self) -> &TelegramSink {
        &self.sink
    }

    /// Resumes deliveries whose owner died on this host without waiting for the lease.
    pub async fn take_over_dead_runs(&self) -> Result<()> {
        Ledger::blocking(&self.ledger, |l| {
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

    /// The deliveries `batch` takes, in the order to deliver them.
    pub(crate) async fn pick(&self, batch: &Batch) -> Result<Vec<i64>> {
        let batch = batch.clone();
        Ledger::blocking(&self.ledger, move |l| match batch {
            Batch::Pending { buckets } => l.claimable(&buckets, now()),
            Batch::PendingOfEnabled => {
                let enabled: Vec<String> = l.buckets()?.into_iter().filter(|b| b.enabled).map(|b| b.name).collect();
                l.claimable(&enabled, now())
            }
            Batch::Due { ignore_schedule } => l.due_failures(now(), ignore_schedule),
            Batch::Ids(ids) => Ok(ids),
        })
        .await
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
        // Small objects due together for one destination go as packs; the rest alone.
        let candidates = Ledger::blocking(&self.ledger, move |l| l.pack_candidates(&ids)).await?;
        let grouping = pack::group(&self.cfg, &candidates);
        let work = grouping.packs.into_iter().map(Work::Pack).chain(grouping.alone.into_iter().map(Work::One));
        // Set when the batch must start no further delivery: an outage, a fatal error.
        let stopping = AtomicBool::new(false);
        let mut results = futures_util::stream::iter(work)
            .map(|work| {
                let (courier, stopping) = (&courier, &stopping);
                async move {
                    if stopping.load(Ordering::SeqCst) || self.shutdown.requested().is_some() {
                        return Ok(Vec::new());
                    }
                    match work {
                        Work::One(id) => courier
                            .deliver(id, retrying)
                            .await
                            .map(|r| r.map(|(obj, outcome)| vec![(id, obj, outcome)]).unwrap_or_default()),
                        Work::Pack(ids) => courier.deliver_pack(ids, retrying).await,
                    }
                }
            })
            .buffer_unordered(self.options.concurrency.max(1));
        let mut fatal = None;
        let mut packs_seen = std::collections::BTreeSet::new();
        while let Some(result) = results.next().await {
            let done = match result {
                Ok(done) => done,
                Err(e) => {
                    stopping.store(true, Ordering::SeqCst);
                    fatal.get_or_insert(e);
                    continue;
                }
            };
            for (id, obj, outcome) in done {
                match outcome {
                    Outcome::Sent { bytes, parts } => {
                        report.sent += 1;
                        report.sent_bytes += bytes;
                        report.parts += u64::from(parts);
                    }
                    Outcome::Packed { bytes, pack } => {
                        report.sent += 1;
                        report.packed += 1;
                        report.sent_bytes += bytes;
                        if packs_seen.insert(pack) {
                            report.packs += 1;
                            report.parts += 1;
                        }
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
        }
        drop(results);
        report.interrupted = self.shutdown.requested();
        report.progress_bytes = (progress.done(), progress.total());
        progress.finish();
        match fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
