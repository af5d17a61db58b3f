//! `join` subcommand: join parts downloaded by hand, checked against their manifest.

use crate::cli::JoinArgs;
use tgploy::error::Result;
use tgploy::output;
use tgploy::restore;

pub(crate) fn run(args: &JoinArgs) -> Result<()> {
    let w = &args.write;
    let (joined, target) =
        restore::join_files(&args.parts, args.manifest.as_deref(), &args.out, w.identity.as_deref(), w.force)?;
    // With the object on stdout, the summary goes to stderr.
    output::print_to(&joined.render(w.json)?, target.is_stdout())
}
