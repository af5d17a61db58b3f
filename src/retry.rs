//! A `retry` run: deliver failed deliveries whose next attempt is due.

use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, State};
use crate::shutdown::Shutdown;
use crate::source::S3Source;
use crate::sync::{Batch, DeliveryReport, finish_run, take_over_dead_runs};
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
pub async fn run(cfg: &Config, ledger: &Ledger, opts: &RetryOptions, shutdown: &Shutdown) -> Result<RetryReport> {
    let started = now();
    let result = run_inner(cfg, ledger, opts, shutdown).await;
    finish_run(cfg, ledger, "retry", started, result.as_ref().map(|r| &r.deliveries)).await;
    result
}

async fn run_inner(cfg: &Config, ledger: &Ledger, opts: &RetryOptions, shutdown: &Shutdown) -> Result<RetryReport> {
    let source = S3Source::new(&cfg.require_s3()?);
    cfg.require_telegram()?;
    let mut report = RetryReport::default();
    for &id in &opts.ids {
        let d = ledger
            .delivery(id)?
            .ok_or_else(|| Error::config(format!("no delivery with id {id} (`tgploy status` lists failed ones)")))?;
        let label = format!("delivery {id} ({}/{})", d.object.bucket, d.object.key);
        match d.state {
            State::Failed => {}
            State::Dead if opts.revive_dead => {}
            State::Dead => return Err(Error::config(format!("{label} is dead; add --dead to revive it"))),
            State::Sent => return Err(Error::config(format!("{label} was already sent"))),
            State::Pending => {
                return Err(Error::config(format!("{label} has not been attempted yet; `tgploy sync` sends it")));
            }
            State::Sending => return Err(Error::config(format!("{label} is being sent by another run right now"))),
            State::Skipped => {
                return Err(Error::config(format!("{label} was skipped on purpose (bucket enabled --from-now)")));
            }
        }
    }
    if opts.revive_dead {
        let only = (!opts.ids.is_empty()).then_some(opts.ids.as_slice());
        report.revived = ledger.revive(only, now())?.len() as u64;
    }
    take_over_dead_runs(ledger)?;
    let due = if opts.ids.is_empty() { ledger.due_failures(now(), opts.ignore_schedule)? } else { opts.ids.clone() };
    report.attempted = due.len() as u64;
    let batch = Batch { cfg, ledger, source: &source, retrying: true, progress: opts.progress, shutdown };
    batch.deliver(&due, &mut report.deliveries).await?;
    Ok(report)
}
