//! A `retry` run: deliver failed deliveries whose next attempt is due.

use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::deliver::{Batch, DeliveryReport, Engine, EngineOptions};
use crate::error::{Error, Result};
use crate::ledger::{Ledger, State};
use crate::run::{Run, RunKind, Tallied, Tally};
use crate::shutdown::Shutdown;
use crate::source::S3Source;
use crate::time::now;

/// What `retry` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct RetryOptions {
    /// Ignore the backoff schedule: every failed delivery is due.
    pub ignore_schedule: bool,
    /// Only these deliveries (whatever their schedule).
    pub ids: Vec<i64>,
    /// Revive dead deliveries (all, or those of `ids`) first.
    pub revive_dead: bool,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

/// What a `retry` run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetryReport {
    /// Deliveries this run attempted.
    pub attempted: u64,
    /// Dead deliveries revived by `--dead`.
    pub revived: u64,
    /// What its deliveries came to (flattened into the JSON).
    #[serde(flatten)]
    pub deliveries: DeliveryReport,
}

impl Tallied for RetryReport {
    fn tally(&self) -> Tally {
        self.deliveries.tally()
    }
}

/// Runs `retry` as a run of its own: recorded, alerts raised and queued ones sent.
pub async fn retry(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    opts: &RetryOptions,
    shutdown: &Arc<Shutdown>,
) -> Result<RetryReport> {
    Run::scope(RunKind::Retry, cfg, ledger, async |run| retry_due(cfg, ledger, opts, shutdown, run).await).await
}

/// Revives dead deliveries when asked, then delivers the due failures (or the ones
/// named), as part of `run`.
async fn retry_due(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    opts: &RetryOptions,
    shutdown: &Arc<Shutdown>,
    run: &Run,
) -> Result<RetryReport> {
    let source = S3Source::new(&cfg.require_s3()?);
    cfg.require_telegram()?;
    let mut report = RetryReport::default();
    let (ids, revive_dead) = (opts.ids.clone(), opts.revive_dead);
    report.revived = Ledger::blocking(ledger, move |l| {
        for &id in &ids {
            check_retryable(l, id, revive_dead)?;
        }
        if !revive_dead {
            return Ok(0);
        }
        let only = (!ids.is_empty()).then_some(ids.as_slice());
        Ok(l.revive(only, now())?.len() as u64)
    })
    .await?;
    let options = EngineOptions { concurrency: cfg.concurrency, progress: opts.progress };
    let engine = Engine::new(cfg, ledger.clone(), source, shutdown.clone(), options)?;
    let batch = match opts.ids.is_empty() {
        true => Batch::Due { ignore_schedule: opts.ignore_schedule },
        false => Batch::Ids(opts.ids.clone()),
    };
    run.deliver(&engine, &batch, &mut report.deliveries).await?;
    report.attempted = report.deliveries.picked;
    Ok(report)
}

/// Refuses a delivery named with `--id` that `retry` cannot take, saying why.
fn check_retryable(ledger: &Ledger, id: i64, revive_dead: bool) -> Result<()> {
    let d = ledger
        .delivery(id)?
        .ok_or_else(|| Error::usage(format!("no delivery with id {id} (`tgploy status` lists failed ones)")))?;
    let label = format!("delivery {id} ({}/{})", d.object.bucket, d.object.key);
    match d.state {
        State::Failed => Ok(()),
        State::Dead if revive_dead => Ok(()),
        State::Dead => Err(Error::usage(format!("{label} is dead; add --dead to revive it"))),
        State::Sent => Err(Error::usage(format!("{label} was already sent"))),
        State::Pending => Err(Error::usage(format!("{label} has not been attempted yet; `tgploy sync` sends it"))),
        State::Sending => Err(Error::usage(format!("{label} is being sent by another run right now"))),
        State::Skipped => Err(Error::usage(format!("{label} was skipped on purpose (bucket enabled --from-now)"))),
    }
}
