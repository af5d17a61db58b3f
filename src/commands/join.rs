//! `join` subcommand: join parts downloaded by hand, checked against their manifest, or
//! check a pack against its index and extract it.

use crate::cli::JoinArgs;
use tgploy::error::{Error, Result};
use tgploy::output;
use tgploy::restore;

pub(crate) fn run(args: &JoinArgs) -> Result<()> {
    let w = &args.write;
    if let Some(pack) = &args.pack {
        let unpacked = restore::unpack(pack, w.identity.as_deref(), args.out.as_deref(), w.force)?;
        return output::print(&unpacked.render(w.json)?);
    }
    let out = args.out.as_deref().ok_or_else(|| Error::Usage("give --out PATH (or `-` for stdout)".into()))?;
    let (joined, target) =
        restore::join_files(&args.parts, args.manifest.as_deref(), out, w.identity.as_deref(), w.force)?;
    // With the object on stdout, the summary goes to stderr.
    output::print_to(&joined.render(w.json)?, target.is_stdout())
}
