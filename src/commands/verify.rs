//! `verify` subcommand: the restore drill. Downloads the parts of delivered objects and
//! checks their hashes, writing nothing.

use serde::Serialize;

use crate::alert;
use crate::cli::VerifyArgs;
use crate::commands::Context;
use crate::error::{Error, Result};
use crate::ledger::Run;
use crate::output;
use crate::progress::Progress;
use crate::restore::{self, Failure, Plan};
use crate::sink::TelegramSink;
use crate::time::now;

#[derive(Debug, Default, Serialize)]
struct Report {
    checked: u64,
    parts: u64,
    bytes: u64,
    problems: Vec<Problem>,
}

#[derive(Debug, Serialize)]
struct Problem {
    object: String,
    etag: String,
    error: String,
}

pub async fn run(ctx: &Context, args: &VerifyArgs) -> Result<()> {
    let ledger = std::sync::Arc::new(ctx.ledger()?);
    let started = now();
    let files = ledger.sample_delivered(args.bucket.as_deref(), args.sample)?;
    let sink = TelegramSink::downloader(&ctx.config.require_bot_token()?, &ctx.config.api_url, 0)?;
    let total: u64 = files.iter().flat_map(|f| &f.parts).map(|p| p.size).sum();
    let progress = Progress::bytes(total, true);
    let mut report = Report::default();
    for f in &files {
        let label = format!("{}/{}", f.delivery.object.bucket, f.delivery.object.key);
        progress.set_message(label.clone());
        let checked = match Plan::from_delivery(&f.delivery, &f.parts) {
            Ok(plan) => restore::check(&sink, &plan, &progress).await,
            Err(e) => Err(Failure::Part(e.to_string())),
        };
        report.checked += 1;
        match checked {
            Ok(()) => {
                report.parts += f.parts.len() as u64;
                report.bytes += f.parts.iter().map(|p| p.size).sum::<u64>();
            }
            Err(Failure::Part(error)) => {
                let error = sink.redact(&error);
                progress.println(&format!("tgploy: verify: {error}"));
                alert::raise(&ledger, &ctx.config, alert::Subject::Verify(&label), &error)?;
                report.problems.push(Problem { object: label, etag: f.delivery.object.etag.clone(), error });
            }
            Err(Failure::Fatal(e)) => {
                progress.finish();
                return Err(e);
            }
        }
    }
    progress.finish();
    ledger.record_run(&Run {
        kind: "verify".into(),
        started_at: started,
        finished_at: now(),
        sent: report.checked,
        failed: report.problems.len() as u64,
        bytes: report.bytes,
        error: (!report.problems.is_empty()).then(|| format!("{} objects failed their check", report.problems.len())),
    })?;
    alert::flush_if_possible(&ledger, &ctx.config).await;
    if args.json {
        output::print_json(&report)?;
    } else {
        let mut text = format!(
            "verified {} of {} objects checked ({} parts, {} bytes downloaded and hashed)\n",
            report.checked - report.problems.len() as u64,
            report.checked,
            report.parts,
            report.bytes
        );
        for p in &report.problems {
            text.push_str(&format!("MISMATCH {} (ETag {}): {}\n", p.object, p.etag, p.error));
        }
        output::print(&text)?;
    }
    if report.problems.is_empty() {
        return Ok(());
    }
    Err(Error::CheckFailed(format!(
        "verify: {} of {} objects failed their check (alerted to the admin chat); see above",
        report.problems.len(),
        report.checked
    )))
}
