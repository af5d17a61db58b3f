//! `buckets` subcommand: list, enable (optionally from now on) and disable buckets.

use serde::Serialize;

use crate::cli::BucketsCommand;
use crate::commands::Context;
use crate::config::{FilterConfig, human_size};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ledger::{Counts, Ledger, State};
use crate::output;
use crate::source::S3Source;
use crate::sync::scan_bucket;
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
    last_error: Option<String>,
}

pub async fn run(ctx: &Context, cmd: BucketsCommand, otp: Option<&str>) -> Result<()> {
    let ledger = std::sync::Arc::new(ctx.ledger()?);
    match cmd {
        BucketsCommand::List { json } => list(ctx, &ledger, json).await,
        BucketsCommand::Enable { name, from_now } => enable(ctx, &ledger, &name, from_now).await,
        BucketsCommand::Disable { name } => {
            // Disabling reduces protection: it needs the second factor once enrolled.
            crate::totp::require(&ledger, otp, &format!("disable bucket {name}"))?;
            disable(ctx, &ledger, &name).await
        }
    }
}

fn source(ctx: &Context) -> Result<S3Source> {
    Ok(S3Source::new(&ctx.config.require_s3()?))
}

async fn server_buckets(source: &S3Source) -> Result<Vec<String>> {
    Ok(source.list_buckets().await?)
}

async fn list(ctx: &Context, ledger: &Ledger, json: bool) -> Result<()> {
    let source = source(ctx)?;
    let on_server = server_buckets(&source).await?;
    for name in &on_server {
        ledger.discover_bucket(name, ctx.config.enable_new_buckets, now())?;
    }
    let (_, counts) = ledger.counts()?;
    let rows: Vec<BucketRow> = ledger
        .buckets()?
        .into_iter()
        .map(|b| {
            let c = counts.get(&b.name).cloned().unwrap_or_else(Counts::default);
            BucketRow {
                on_server: on_server.contains(&b.name),
                enabled: b.enabled,
                delivered: c.sent,
                delivered_bytes: c.sent_bytes,
                pending: c.pending + c.sending,
                failed: c.failed,
                dead: c.dead,
                skipped: c.skipped,
                last_listed_at: b.last_listed_at.map(rfc3339),
                last_error: b.last_error,
                name: b.name,
            }
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
        let listed = ledger.bucket(&r.name)?.and_then(|b| b.last_listed_at).map(|t| ago(t, now));
        t.add_row(vec![
            if r.on_server { r.name.clone() } else { format!("{} (gone from server)", r.name) },
            if r.enabled { "yes".into() } else { "no".into() },
            r.delivered.to_string(),
            human_size(r.delivered_bytes),
            r.pending.to_string(),
            r.failed.to_string(),
            r.dead.to_string(),
            listed.unwrap_or_else(|| "never".into()),
        ]);
    }
    output::print(&format!("{t}\n"))
}

async fn enable(ctx: &Context, ledger: &std::sync::Arc<Ledger>, name: &str, from_now: bool) -> Result<()> {
    let source = source(ctx)?;
    let on_server = server_buckets(&source).await?;
    if !on_server.iter().any(|b| b == name) {
        return Err(Error::config(format!("no bucket named `{name}` at {}", source.endpoint())));
    }
    let mut skipped = 0;
    if from_now {
        // Recorded before the bucket is enabled, so a sync running meanwhile does not
        // start on the objects being skipped.
        let all = Filter::new(&FilterConfig::default())?;
        skipped = scan_bucket(ledger, &source, name, &all, Some(State::Skipped)).await?.objects;
    }
    ledger.set_bucket_enabled(name, true, now())?;
    if from_now {
        output::print(&format!(
            "enabled bucket {name}: its {skipped} current objects are recorded as skipped; only new ones will be delivered\n"
        ))
    } else {
        output::print(&format!("enabled bucket {name}: the next `tgploy sync` delivers its objects\n"))
    }
}

async fn disable(ctx: &Context, ledger: &Ledger, name: &str) -> Result<()> {
    if ledger.bucket(name)?.is_none() {
        let source = source(ctx)?;
        if !server_buckets(&source).await?.iter().any(|b| b == name) {
            return Err(Error::config(format!("no bucket named `{name}` at {}", source.endpoint())));
        }
    }
    ledger.set_bucket_enabled(name, false, now())?;
    output::print(&format!(
        "disabled bucket {name}: `tgploy sync` no longer delivers its objects (what was delivered stays in Telegram)\n"
    ))
}
