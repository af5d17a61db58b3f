//! A `retry` run: deliver failed deliveries whose next attempt is due.

use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::deliver::engine::{EngineOptions, finish_run};
use crate::deliver::{DeliveryReport, Engine};
use crate::error::{Error, Result};
use crate::ledger::{Ledger, State};
use crate::shutdown::Shutdown;
use crate::source::S3Source;
use crate::time::now;

#[derive(Debug, Clone, Default)]
pub struct RetryOptions {
    /// Ignore the backoff schedule: every failed delivery is due.
    pub ignore_schedule: bool,
    /// Only these deliveries (whatever their schedule).
    pub ids: Vec<i64>,
    /// Revive dead deliveries (all, or those of `ids`) first.
    pub revive_dead: bool,
    pub progress: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RetryReport {
    /// Deliveries this run attempted.
    pub attempted: u64,
    /// Dead deliveries revived by `--dead`.
    pub revived: u64,
    #[serde(flatten)]
    pub deliveries: DeliveryReport,
}

/// Runs `retry`, records the run, raises alerts and sends queued ones.
pub async fn run(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    opts: &RetryOptions,
    shutdown: &Arc<Shutdown>,
) -> Result<RetryReport> {
    let started = now();
    let result = run_inner(cfg, ledger, opts, shutdown).await;
    finish_run(cfg, ledger, "retry", started, result.as_ref().map(|r| &r.deliveries)).await;
    result
}

async fn run_inner(
    cfg: &Config,
    ledger: &Arc<Ledger>,
    opts: &RetryOptions,
    shutdown: &Arc<Shutdown>,
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
    engine.take_over_dead_runs().await?;
    let due = match opts.ids.is_empty() {
        true => {
            let ignore = opts.ignore_schedule;
            Ledger::blocking(ledger, move |l| l.due_failures(now(), ignore)).await?
        }
        false => opts.ids.clone(),
    };
    report.attempted = due.len() as u64;
    engine.deliver(due, true, &mut report.deliveries).await?;
    Ok(report)
}

/// Refuses a delivery named with `--id` that `retry` cannot take, saying why.
fn check_retryable(ledger: &Ledger, id: i64, revive_dead: bool) -> Result<()> {
    let d = ledger
        .delivery(id)?
        .ok_or_else(|| Error::config(format!("no delivery with id {id} (`tgploy status` lists failed ones)")))?;
    let label = format!("delivery {id} ({}/{})", d.object.bucket, d.object.key);
    match d.state {
        State::Failed => Ok(()),
        State::Dead if revive_dead => Ok(()),
        State::Dead => Err(Error::config(format!("{label} is dead; add --dead to revive it"))),
        State::Sent => Err(Error::config(format!("{label} was already sent"))),
        State::Pending => Err(Error::config(format!("{label} has not been attempted yet; `tgploy sync` sends it"))),
        State::Sending => Err(Error::config(format!("{label} is being sent by another run right now"))),
        State::Skipped => Err(Error::config(format!("{label} was skipped on purpose (bucket enabled --from-now)"))),
    }
}
