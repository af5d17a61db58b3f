//! `join` subcommand: join parts downloaded by hand, checked against their manifest.

use crate::cli::JoinArgs;
use crate::crypt;
use crate::error::{Error, Result};
use crate::output;
use crate::restore::{self, Plan, Restored, Target};

pub fn run(args: &JoinArgs) -> Result<()> {
    let plan = args.manifest.as_deref().map(Plan::from_manifest_file).transpose()?;
    let identity = args.write.identity.as_deref();
    if let Some(path) = identity {
        if let Some(plan) = &plan
            && !plan.encrypted
        {
            return Err(Error::config(format!("{} is not encrypted; leave out --identity", plan.label)));
        }
        crypt::read_identities(path).map_err(Error::config)?;
    }
    let target = Target::resolve(Some(&args.out), "", args.write.force)?;
    let restored = restore::join(&args.parts, plan.as_ref(), &target, identity)?;
    report(&restored, args.write.json, &target)
}

/// Prints what was written: on stdout, or on stderr when stdout carries the object.
pub(super) fn report(r: &Restored, json: bool, target: &Target) -> Result<()> {
    let text = if json {
        serde_json::to_string_pretty(r).map_err(|e| Error::Other(e.into()))? + "\n"
    } else {
        format!(
            "restored {} to {} ({} bytes{}, SHA-256 {}, {} part{} checked)\n",
            r.object,
            r.output,
            r.bytes,
            if r.decrypted { ", decrypted" } else { "" },
            r.sha256,
            r.parts,
            if r.parts == 1 { "" } else { "s" }
        )
    };
    match target {
        Target::Stdout => {
            eprint!("{text}");
            Ok(())
        }
        Target::File { .. } => output::print(&text),
    }
}
