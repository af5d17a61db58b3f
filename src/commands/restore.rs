//! `restore` subcommand: rebuild a delivered object from Telegram, from the ledger or
//! from a manifest alone.

use crate::cli::RestoreArgs;
use crate::commands::Context;
use crate::error::Result;
use crate::output;
use crate::restore::{self, Request};

pub async fn run(ctx: &Context, args: &RestoreArgs, otp: Option<&str>) -> Result<()> {
    let request = Request {
        object: args.object.as_deref(),
        etag: args.etag.as_deref(),
        manifest: args.manifest.as_deref(),
        out: args.out.as_deref(),
        identity: args.write.identity.as_deref(),
        force: args.write.force,
        otp,
    };
    let (restored, target) = restore::restore_one(&ctx.config, &request).await?;
    // With the object on stdout, the summary goes to stderr.
    output::print_to(&restored.render(args.write.json)?, target.is_stdout())
}
