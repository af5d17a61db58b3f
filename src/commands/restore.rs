//! `restore` subcommand: rebuild a delivered object from Telegram, from the ledger or
//! from a manifest alone.

use crate::cli::RestoreArgs;
use crate::commands::Context;
use crate::crypt;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, State};
use crate::progress::Progress;
use crate::restore::{self, Options, Plan, Target};
use crate::shell::quote_path;
use crate::shutdown::Shutdown;
use crate::sink::TelegramSink;

pub async fn run(ctx: &Context, args: &RestoreArgs, otp: Option<&str>) -> Result<()> {
    // Restoring reveals backups: once a second factor is enrolled it needs a code. In the
    // disaster case there is no ledger, and so no second factor to ask for.
    if let Ok(path) = ctx.config.database_path()
        && path.exists()
    {
        crate::totp::require(&crate::ledger::Ledger::open(&path)?, otp, "restore")?;
    }
    let plan = match (&args.object, &args.manifest) {
        (_, Some(manifest)) => Plan::from_manifest_file(manifest)?,
        (Some(object), None) => plan_from_ledger(ctx, object, args.etag.as_deref())?,
        (None, None) => return Err(Error::config("name the object (BUCKET/KEY) or give --manifest")),
    };
    let identity = args.write.identity.as_deref();
    if let Some(path) = identity {
        if !plan.encrypted {
            return Err(Error::config(format!("{} is not encrypted; leave out --identity", plan.label)));
        }
        crypt::read_identities(path).map_err(Error::config)?;
    }
    let name = if plan.encrypted && identity.is_none() { plan.stored_name() } else { plan.file_name.clone() };
    let target = Target::resolve(args.out.as_deref(), &name, args.write.force)?;
    let sink = TelegramSink::downloader(&ctx.config.require_bot_token()?, &ctx.config.api_url, 0)?;
    let tmp = crate::deliver::engine::private_tmp_dir(&ctx.config)?;
    let progress = Progress::bytes(plan.size, true);
    progress.set_message(plan.label.clone());
    let shutdown = Shutdown::new();
    shutdown.listen();
    let opts = Options { identity, tmp_dir: tmp.path(), progress: &progress, shutdown: &shutdown };
    let result = restore::restore(&sink, &plan, &target, &opts).await;
    progress.finish();
    let restored = result?;
    if plan.encrypted
        && identity.is_none()
        && let Target::File { path, .. } = &target
    {
        tracing::warn!(
            "{} is encrypted: wrote the age file; decrypt it with `age -d -i KEY {} > {}`, or restore with --identity",
            plan.label,
            quote_path(&path.to_string_lossy()),
            quote_path(&plan.file_name)
        );
    }
    super::join::report(&restored, args.write.json, &target)
}

fn plan_from_ledger(ctx: &Context, object: &str, etag: Option<&str>) -> Result<Plan> {
    let Some((bucket, key)) = object.split_once('/').filter(|(b, k)| !b.is_empty() && !k.is_empty()) else {
        return Err(Error::config(format!("`{object}` is not BUCKET/KEY (for example backups/db/dump.sql.gz)")));
    };
    let path = ctx.config.database_path()?;
    if !path.exists() {
        return Err(Error::config(format!(
            "there is no ledger at {}: point DATABASE_PATH at a ledger snapshot (`tgploy ledger backup`), or restore \
             from the object's manifest with --manifest NAME.tgploy.json",
            path.display()
        )));
    }
    let ledger = Ledger::open(&path)?;
    let versions = ledger.versions_of(bucket, key, etag)?;
    let version = etag.map(|e| format!(" with ETag {e}")).unwrap_or_default();
    let Some(d) = versions.first() else {
        return Err(Error::config(format!(
            "the ledger has no delivery of {object}{version}; `tgploy files --bucket {bucket}` lists what was delivered"
        )));
    };
    if d.state != State::Sent {
        return Err(Error::Other(anyhow::anyhow!(
            "{object} (ETag {}) was never delivered completely (state {}); there is nothing whole to restore",
            d.object.etag,
            d.state.as_str()
        )));
    }
    Plan::from_delivery(d, &ledger.parts(d.id)?)
}
