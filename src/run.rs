//! A run, from start to outcome: the one owner of its lifecycle, for every kind.
//!
//! `sync`, `retry`, `heartbeat` and `verify` are one run each; the webhook server makes
//! one run of each batch of deliveries it works. Whatever the kind, a run
//!
//! 1. begins ([`Run::begin`]): its start time is taken, and it is noted in the ledger as
//!    under way (what the dashboard shows as running; a webhook batch is noted only once
//!    it finds work);
//! 2. delivers, for the kinds that deliver ([`Run::deliver`]): the claims of runs that
//!    died on this host are taken over, the batch's deliveries are picked from the
//!    ledger and handed to the [`Engine`];
//! 3. ends ([`Run::end`]): it is recorded in the ledger (what `status`, the heartbeat
//!    and the dashboard's logs show) in place of its note, an outage it met raises the
//!    "cannot reach" alert,
//!    and the queued alerts go to the admin chat unless Telegram is the service that
//!    is down; what the run counted for the metrics is added to the ledger. What the
//!    run returns is handed back unchanged: the caller renders it and turns it into an
//!    exit status.

use std::sync::Arc;

use crate::alert;
use crate::config::Config;
use crate::deliver::{Batch, DeliveryReport, Engine};
use crate::error::{Error, Result, Service};
use crate::ledger::{Ledger, RunRecord};
use crate::metrics;
use crate::time::now;

/// What a run is, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// A `sync` run.
    Sync,
    /// A `retry` run.
    Retry,
    /// A `heartbeat`.
    Heartbeat,
    /// A `verify` drill.
    Verify,
    /// A batch of deliveries of `serve-webhook`.
    Webhook,
}

impl RunKind {
    pub(crate) const ALL: [RunKind; 5] =
        [RunKind::Sync, RunKind::Retry, RunKind::Heartbeat, RunKind::Verify, RunKind::Webhook];

    /// The kind's name in the ledger's `runs` table, like `sync`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Sync => "sync",
            RunKind::Retry => "retry",
            RunKind::Heartbeat => "heartbeat",
            RunKind::Verify => "verify",
            RunKind::Webhook => "webhook",
        }
    }
}

/// What a run did, as its record and its alerts need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Objects delivered (checked, for `verify`; messages, for the heartbeat).
    pub(crate) done: u64,
    pub(crate) failed: u64,
    pub(crate) bytes: u64,
    /// Why the run did not finish everything, if it did not.
    pub(crate) error: Option<String>,
    /// The service whose outage stopped the run, and what was said.
    pub(crate) outage: Option<(Service, String)>,
}

/// Reports that say what their run did.
pub(crate) trait Tallied {
    fn tally(&self) -> Tally;
}

impl Tallied for DeliveryReport {
    fn tally(&self) -> Tally {
        Tally {
            done: self.sent,
            failed: self.failed.len() as u64,
            bytes: self.sent_bytes,
            error: self.stopped.clone().or_else(|| self.interrupted.map(|s| s.name().to_string())),
            outage: self.outage.zip(self.stopped.clone()),
        }
    }
}

impl Tally {
    /// The tally of a run that ended with an error before it could report.
    fn of_error(e: &Error) -> Tally {
        let outage = match e {
            Error::Unreachable { service, endpoint, reason } => {
                Some((*service, format!("cannot reach {service} at {endpoint}: {reason}")))
            }
            _ => None,
        };
        Tally { error: Some(e.to_string()), outage, ..Tally::default() }
    }
}

/// A run under way.
pub(crate) struct Run {
    kind: RunKind,
    started_at: i64,
    cfg: Config,
    ledger: Arc<Ledger>,
    /// Its note among the runs under way.
    note: std::sync::Mutex<Note>,
}

/// A run's note among the runs under way in the ledger.
enum Note {
    None,
    /// Being written, beside the run's first steps.
    Writing(tokio::task::JoinHandle<Result<i64>>),
    Written(i64),
}

impl Run {
    /// Begins a run: its start time is taken, and (but for a webhook batch, noted once it
    /// finds work) it is noted as under way, on the blocking pool beside its first steps.
    pub(crate) fn begin(kind: RunKind, cfg: &Config, ledger: &Arc<Ledger>) -> Run {
        let run = Run {
            kind,
            started_at: now(),
            cfg: cfg.clone(),
            ledger: Arc::clone(ledger),
            note: std::sync::Mutex::new(Note::None),
        };
        if kind != RunKind::Webhook && tokio::runtime::Handle::try_current().is_ok() {
            let (ledger, started_at) = (Arc::clone(ledger), run.started_at);
            let writing =
                tokio::spawn(async move { Ledger::blocking(&ledger, move |l| note(l, kind, started_at)).await });
            *run.note() = Note::Writing(writing);
        }
        run
    }

    fn note(&self) -> std::sync::MutexGuard<'_, Note> {
        self.note.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Does `work` as one run of `kind`: begun, handed to `work`, ended with what `work`
    /// returns ([`Run::end`]), which comes back unchanged.
    pub(crate) async fn scope<T: Tallied>(
        kind: RunKind,
        cfg: &Config,
        ledger: &Arc<Ledger>,
        work: impl AsyncFnOnce(&Run) -> Result<T>,
    ) -> Result<T> {
        let run = Run::begin(kind, cfg, ledger);
        let result = work(&run).await;
        run.end(result).await
    }

    /// Delivers a batch through `engine`: the claims of runs that died on this host are
    /// taken over first, then the batch's deliveries are picked and delivered. An `Err`
    /// ends the run (the ledger failing, a configuration error); an outage or a signal
    /// ends the batch and is in the report.
    pub(crate) async fn deliver(&self, engine: &Engine, batch: &Batch, report: &mut DeliveryReport) -> Result<()> {
        engine.take_over_dead_runs().await?;
        let ids = engine.pick(batch).await?;
        report.picked += ids.len() as u64;
        if !ids.is_empty() && matches!(*self.note(), Note::None) {
            let (kind, started_at) = (self.kind, self.started_at);
            match Ledger::blocking(&self.ledger, move |l| note(l, kind, started_at)).await {
                Ok(id) => *self.note() = Note::Written(id),
                Err(e) => tracing::warn!("cannot note the run as under way: {e}"),
            }
        }
        engine.deliver(ids, batch.retrying(), report).await
    }

    /// Ends the run: records it, raises the alert for a service it could not reach,
    /// sends the queued alerts (unless Telegram is down), and returns `result`.
    pub(crate) async fn end<T: Tallied>(self, result: Result<T>) -> Result<T> {
        let tally = match &result {
            Ok(report) => report.tally(),
            Err(e) => Tally::of_error(e),
        };
        self.record(tally).await;
        result
    }

    async fn record(self, tally: Tally) {
        let note = std::mem::replace(&mut *self.note(), Note::None);
        let under_way = match note {
            Note::None => None,
            Note::Written(id) => Some(id),
            Note::Writing(writing) => match writing.await {
                Ok(Ok(id)) => Some(id),
                Ok(Err(e)) => {
                    tracing::warn!("cannot note the run as under way: {e}");
                    None
                }
                Err(e) => {
                    tracing::warn!("cannot note the run as under way: {e}");
                    None
                }
            },
        };
        let run = RunRecord {
            kind: self.kind.as_str().into(),
            started_at: self.started_at,
            finished_at: now(),
            sent: tally.done,
            failed: tally.failed,
            bytes: tally.bytes,
            error: tally.error.clone(),
        };
        if let Err(e) = Ledger::blocking(&self.ledger, move |l| l.record_run_ending(&run, under_way)).await {
            tracing::warn!("cannot record the run in the ledger: {e}");
        }
        if let Err(e) = Ledger::blocking(&self.ledger, metrics::flush).await {
            tracing::warn!("cannot add the run's counts to the ledger: {e}");
        }
        if let Some((service, error)) = &tally.outage {
            let (cfg, subject, error) = (self.cfg.clone(), service.to_string(), error.clone());
            let raised = Ledger::blocking(&self.ledger, move |l| {
                alert::raise(l, &cfg, alert::Subject::Unreachable(&subject), &error)
            })
            .await;
            if let Err(e) = raised {
                tracing::warn!("cannot queue an alert: {e}");
            }
        }
        // With Telegram down the alerts wait for the next run that reaches it.
        if !matches!(tally.outage, Some((Service::Telegram, _))) {
            alert::flush_if_possible(&self.ledger, &self.cfg).await;
        }
    }
}

/// Notes a run as under way by this process; the notes of runs whose process died on
/// this host go.
fn note(ledger: &Ledger, kind: RunKind, started_at: i64) -> Result<i64> {
    ledger.start_run(kind.as_str(), started_at, crate::owner::this_process(), &crate::owner::is_dead)
}
