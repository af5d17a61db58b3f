//! `setup` subcommand: the guided first run, its non-interactive twin, and
//! `setup totp --reset` and `setup dashboard`.

use crate::cli::{GlobalArgs, SetupArgs};
use crate::error::Result;
use crate::setup;

pub async fn run(global: &GlobalArgs, args: &SetupArgs) -> Result<()> {
    setup::start::run(global, args).await
}
