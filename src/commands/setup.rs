//! `setup` subcommand: the guided first run, its non-interactive twin, and
//! `setup totp --reset` and `setup dashboard`.

use std::io::IsTerminal;

use crate::cli::{GlobalArgs, SetupArgs, SetupCommand};
use tgploy::config::dashboard_password_from_env;
use tgploy::dashboard::auth;
use tgploy::error::{Error, Result};
use tgploy::output;
use tgploy::setup::start::{Given, Request, Task};

pub(crate) async fn run(global: &GlobalArgs, args: &SetupArgs) -> Result<()> {
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let unattended = args.non_interactive;
    let mut password = || -> Result<String> {
        if unattended {
            return Ok(dashboard_password_from_env()?.expose().to_string());
        }
        if !terminal {
            return Err(Error::config(
                "setup dashboard asks for the password on a terminal; for scripts use --non-interactive with \
                 TGPLOY_DASHBOARD_PASSWORD or TGPLOY_DASHBOARD_PASSWORD_FILE",
            ));
        }
        dialoguer::Password::new()
            .with_prompt(format!("Dashboard password (at least {} characters)", auth::MIN_PASSWORD_CHARS))
            .with_confirmation("The same again", "The two differ; try again")
            .validate_with(|p: &String| auth::check_new_password(p))
            .interact()
            .map_err(|e| Error::config(format!("cannot read the password: {e}")))
    };
    let task = match &args.what {
        None => Task::Configure,
        Some(SetupCommand::Totp { .. }) => Task::ResetTotp,
        Some(SetupCommand::Dashboard) => Task::DashboardPassword(&mut password),
    };
    let request = Request {
        task,
        config: global.config.clone(),
        database: global.database.clone(),
        otp: global.otp.clone(),
        unattended,
        terminal,
        force: args.force,
        totp: !args.no_totp,
        given: Given {
            s3_endpoint: args.s3_endpoint.clone(),
            s3_region: args.s3_region.clone(),
            s3_access_key: args.s3_access_key.clone(),
            api_url: args.api_url.clone(),
            backup_chat_id: args.backup_chat_id.clone(),
            admin_chat_id: args.admin_chat_id.clone(),
            part_size: args.part_size.clone(),
        },
    };
    let Some(set) = tgploy::setup::start::setup(request).await? else { return Ok(()) };
    output::print(&format!(
        "dashboard password {} (an argon2id hash in the ledger){}\n",
        if set.replaced { "replaced" } else { "set" },
        if set.replaced { "; every dashboard session is signed out" } else { "" }
    ))?;
    if set.totp_enrolled {
        output::print("start it with `tgploy dashboard`\n")
    } else {
        output::print("the dashboard also needs a second factor: enrol one with `tgploy setup totp --reset`\n")
    }
}
