//! `doctor` subcommand: the setup checks on the existing configuration.

use crate::cli::DoctorArgs;
use crate::commands::Context;
use tgploy::doctor;
use tgploy::error::{Error, Result};
use tgploy::output;

pub(crate) async fn run(ctx: &Context, args: &DoctorArgs) -> Result<()> {
    let checks = doctor::examine(&ctx.config).await;
    if args.json {
        output::print_json(&checks)?;
    } else {
        let mut text = String::new();
        for c in &checks {
            text.push_str(&format!("{} {}: {}\n", if c.ok { "✓" } else { "✗" }, c.name, c.detail));
            if let Some(fix) = &c.fix {
                text.push_str(&format!("    fix: {fix}\n"));
            }
        }
        output::print(&text)?;
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        return Err(Error::CheckFailed(format!("doctor: {failed} of {} checks failed", checks.len())));
    }
    Ok(())
}
