//! `buckets` subcommand: list, enable (optionally from now on) and disable buckets.

use std::sync::Arc;

use crate::cli::BucketsCommand;
use crate::commands::Context;
use tgploy::buckets;
use tgploy::error::Result;
use tgploy::output;
use tgploy::sizes::human_size;
use tgploy::source::S3Source;
use tgploy::time::{ago, now};

pub(crate) async fn run(ctx: &Context, cmd: BucketsCommand, otp: Option<&str>) -> Result<()> {
    let ledger = Arc::new(ctx.ledger()?);
    match cmd {
        BucketsCommand::List { json } => list(ctx, &ledger, json).await,
        BucketsCommand::Enable { name, from_now } => {
            let source = || Ok(S3Source::new(&ctx.config.require_s3()?));
            let skipped = buckets::enable(&ledger, source, &name, from_now).await?;
            output::print(&if from_now {
                format!(
                    "enabled bucket {name}: its {skipped} current objects are recorded as skipped; only new ones will be delivered\n"
                )
            } else {
                format!("enabled bucket {name}: the next `tgploy sync` delivers its objects\n")
            })
        }
        BucketsCommand::Disable { name } => {
            buckets::disable_with_code(&ctx.config, &ledger, otp, &name).await?;
            output::print(&format!(
                "disabled bucket {name}: `tgploy sync` no longer delivers its objects (what was delivered stays in Telegram)\n"
            ))
        }
    }
}

async fn list(ctx: &Context, ledger: &Arc<tgploy::ledger::Ledger>, json: bool) -> Result<()> {
    let (rows, endpoint) = buckets::list(&ctx.config, ledger).await?;
    if json {
        return output::print_json(&rows);
    }
    if rows.is_empty() {
        return output::print(&format!("no buckets at {endpoint}\n"));
    }
    let now = now();
    let mut t = output::table(&["Bucket", "Enabled", "Delivered", "Bytes", "Pending", "Failed", "Dead", "Last listed"]);
    for r in &rows {
        t.add_row(vec![
            if r.on_server { r.name.clone() } else { format!("{} (gone from server)", r.name) },
            if r.enabled { "yes".into() } else { "no".into() },
            r.delivered.to_string(),
            human_size(r.delivered_bytes),
            r.pending.to_string(),
            r.failed.to_string(),
            r.dead.to_string(),
            r.listed_at.map(|t| ago(t, now)).unwrap_or_else(|| "never".into()),
        ]);
    }
    output::print(&format!("{t}\n"))
}
