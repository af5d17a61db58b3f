//! `restore` subcommand: rebuild a delivered object from Telegram, from the ledger or
//! from a manifest alone; or, with `--all`, everything.

use std::sync::Arc;

use crate::cli::RestoreArgs;
use crate::commands::Context;
use tgploy::error::Result;
use tgploy::output;
use tgploy::restore::all::{self, AllRequest, ObjectOutcome, RestoreTo};
use tgploy::restore::{self, Request};
use tgploy::sizes::human_size;

pub(crate) async fn run(ctx: &Context, args: &RestoreArgs, otp: Option<&str>, verbose: bool) -> Result<()> {
    if args.all {
        return run_all(ctx, args, otp, verbose).await;
    }
    let request = Request {
        object: args.object.as_deref(),
        etag: args.etag.as_deref(),
        manifest: args.manifest.as_deref(),
        out: args.out.as_deref(),
        identity: args.write.identity.as_deref(),
        force: args.write.force,
        otp,
        jobs: usize::from(args.jobs),
    };
    let (restored, target) = restore::restore_one(&ctx.config, &request).await?;
    // With the object on stdout, the summary goes to stderr.
    output::print_to(&restored.render(args.write.json)?, target.is_stdout())
}

async fn run_all(ctx: &Context, args: &RestoreArgs, otp: Option<&str>, verbose: bool) -> Result<()> {
    let request = AllRequest {
        buckets: args.buckets.clone(),
        prefix: args.prefix.clone(),
        as_of: args.as_of,
        jobs: usize::from(args.jobs),
        destination: match &args.out {
            Some(dir) => RestoreTo::Dir(dir.clone()),
            None => RestoreTo::S3,
        },
        identity: args.write.identity.clone(),
        dry_run: args.dry_run,
        force: args.write.force,
        verbose,
        otp: otp.map(str::to_string),
    };
    let ledger = Arc::new(ctx.ledger()?);
    let report = all::restore_all(&ctx.config, &ledger, &request).await?;
    if args.write.json {
        output::print_json(&report)?;
    } else {
        let mut text = String::new();
        if report.dry_run {
            let mut t = output::table(&["Bucket", "Key", "ETag", "Size", "Last modified"]);
            for o in &report.objects {
                t.add_row(vec![
                    o.bucket.clone(),
                    o.key.clone(),
                    o.etag.clone(),
                    human_size(o.size),
                    o.last_modified.clone().unwrap_or_default(),
                ]);
            }
            if !report.objects.is_empty() {
                text.push_str(&format!("{t}\n"));
            }
        }
        for o in report.objects.iter().filter(|o| o.outcome == ObjectOutcome::Failed) {
            text.push_str(&format!("FAILED {}/{}: {}\n", o.bucket, o.key, o.error.as_deref().unwrap_or("")));
        }
        text.push_str(&report.summary());
        output::print(&text)?;
    }
    report.verdict()
}
