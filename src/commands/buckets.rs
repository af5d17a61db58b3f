//! `buckets` subcommand: list, enable (optionally from now on) and disable buckets.

use serde::Serialize;

use crate::buckets::{self, Summary};
use crate::cli::BucketsCommand;
use crate::commands::Context;
use crate::config::human_size;
use crate::error::Result;
use crate::ledger::Ledger;
use crate::output;
use crate::source::S3Source;
use crate::time::{ago, now, rfc3339};

#[derive(Serialize)]
struct BucketRow {
    name: String,
    enabled: bool,
    /// False for buckets in the ledger that the server no longer lists.
    on_server: bool,
    delivered: u64,
    delivered_bytes: u64,
    pending: u64,
    failed: u64,
    dead: u64,
    skipped: u64,
    last_listed_at: Option<String>,
    #[serde(skip)]
    listed_at: Option<i64>,
    last_error: Option<String>,
}

pub async fn run(ctx: &Context, cmd: BucketsCommand, otp: Option<&str>) -> Result<()> {
    let ledger = std::sync::Arc::new(ctx.ledger()?);
    match cmd {
        BucketsCommand::List { json } => list(ctx, &ledger, json).await,
        BucketsCommand::Enable { name, from_now } => {
            let skipped = buckets::enable(&ledger, || source(ctx), &name, from_now).await?;
            output::print(&if from_now {
                format!(
                    "enabled bucket {name}: its {skipped} current objects are recorded as skipped; only new ones will be delivered\n"
                )
            } else {
                format!("enabled bucket {name}: the next `tgploy sync` delivers its objects\n")
            })
        }
        BucketsCommand::Disable { name } => {
            // Disabling reduces protection: it needs the second factor once enrolled.
            crate::totp::require(&ledger, otp, &format!("disable bucket {name}"))?;
            buckets::disable(&ledger, || source(ctx), &name).await?;
            output::print(&format!(
                "disabled bucket {name}: `tgploy sync` no longer delivers its objects (what was delivered stays in Telegram)\n"
            ))
        }
    }
}

fn source(ctx: &Context) -> Result<S3Source> {
    Ok(S3Source::new(&ctx.config.require_s3()?))
}

async fn list(ctx: &Context, ledger: &Ledger, json: bool) -> Result<()> {
    let source = source(ctx)?;
    let on_server = source.list_buckets().await?;
    for name in &on_server {
        ledger.discover_bucket(name, ctx.config.enable_new_buckets, now())?;
    }
    let (summaries, _) = buckets::summaries(ledger)?;
    let rows: Vec<BucketRow> = summaries
        .into_iter()
        .map(|Summary { bucket: b, counts: c }| BucketRow {
            on_server: on_server.contains(&b.name),
            enabled: b.enabled,
            delivered: c.sent,
            delivered_bytes: c.sent_bytes,
            pending: c.pending + c.sending,
            failed: c.failed,
            dead: c.dead,
            skipped: c.skipped,
            last_listed_at: b.last_listed_at.map(rfc3339),
            listed_at: b.last_listed_at,
            last_error: b.last_error,
            name: b.name,
        })
        .collect();
    if json {
        return output::print_json(&rows);
    }
    if rows.is_empty() {
        return output::print(&format!("no buckets at {}\n", source.endpoint()));
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
