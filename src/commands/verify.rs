//! `verify` subcommand: the restore drill. Downloads the parts of delivered objects and
//! checks their hashes, writing nothing.

use std::sync::Arc;

use crate::cli::VerifyArgs;
use crate::commands::Context;
use tgploy::error::Result;
use tgploy::output;
use tgploy::verify;

pub(crate) async fn run(ctx: &Context, args: &VerifyArgs) -> Result<()> {
    let ledger = Arc::new(ctx.ledger()?);
    let report =
        verify::verify(&ctx.config, &ledger, args.bucket.as_deref(), args.sample, usize::from(args.jobs)).await?;
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
    report.verdict()
}
