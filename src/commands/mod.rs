//! One file per subcommand; each is thin and calls into the library.

mod buckets;
mod dashboard;
mod doctor;
mod files;
mod generate;
mod heartbeat;
mod join;
mod ledger;
mod probe;
mod restore;
mod retry;
mod serve_webhook;
mod setup;
mod status;
mod sync;
mod verify;

use std::future::Future;

use crate::cli::{Cli, Command, ProbeArgs};
use tgploy::config::{Config, Overrides};
use tgploy::error::{Error, Result};
use tgploy::ledger::Ledger;
use tgploy::run::RunKind;

/// What every command gets: the settings, read once.
pub(crate) struct Context {
    pub config: Config,
}

impl Context {
    fn load(cli: &Cli) -> Result<Context> {
        let config = Config::load(&overrides(cli))?;
        tgploy::logging::redact(config.secrets());
        Ok(Context { config })
    }

    /// Opens (creating if needed) the ledger.
    pub(crate) fn ledger(&self) -> Result<Ledger> {
        self.open(&self.config.database_path()?)
    }

    /// Takes the run lock of `kind`, then opens the ledger.
    pub(crate) fn locked_ledger(&self, kind: RunKind) -> Result<(Ledger, Option<tgploy::lock::RunLock>)> {
        let path = self.config.database_path()?;
        let lock = tgploy::lock::acquire(&path, kind.as_str())?;
        Ok((self.open(&path)?, Some(lock)))
    }

    /// Opens the ledger, filling in once (after migration 6) the bot, chat and topic of
    /// what was delivered before tgploy recorded them: the first bot and the backup
    /// destination configured now.
    fn open(&self, path: &std::path::Path) -> Result<Ledger> {
        let ledger = Ledger::open(path)?;
        ledger.fill_destinations(&self.config)?;
        Ok(ledger)
    }

    /// The ledger for a run that must write nothing: the existing one, or an empty one
    /// in memory when there is none yet.
    pub(crate) fn ledger_for_dry_run(&self) -> Result<Ledger> {
        let path = self.config.database_path()?;
        if path.exists() { Ledger::open(&path) } else { Ledger::in_memory() }
    }
}

/// The settings the command line gives: `--config`, and the flags the settings table
/// names (they override the file and the environment).
fn overrides(cli: &Cli) -> Overrides {
    let overrides = Overrides { config: cli.global.config.clone(), ..Overrides::default() }
        .flag("database_path", cli.global.database.as_ref().map(|p| p.display()));
    match &cli.command {
        Command::ServeWebhook(args) => {
            overrides.flag("webhook.listen", args.listen.as_ref()).flag("webhook.concurrency", args.concurrency)
        }
        Command::Dashboard(args) => overrides.flag("dashboard.listen", args.listen.as_ref()),
        _ => overrides,
    }
}

fn block_on<F: Future<Output = Result<()>>>(fut: F) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(fut)
}

/// Runs one command.
pub(crate) fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        // These need no settings: they must work before any configuration exists.
        Command::Completions { shell } => return generate::completions(*shell),
        Command::Man => return generate::man(),
        // Setup must run where the existing configuration does not load.
        Command::Setup(args) => return block_on(setup::run(&cli.global, args)),
        // Joining parts by hand needs no settings: it works on any machine.
        Command::Join(args) => return join::run(args),
        // A probe given its URL needs no settings: a healthcheck must not fail on them.
        Command::Probe(ProbeArgs { url: Some(url), timeout }) => return block_on(probe::run(url, *timeout)),
        _ => {}
    }
    let ctx = Context::load(&cli)?;
    match cli.command {
        Command::Sync(args) => block_on(sync::run(&ctx, &args)),
        Command::Retry(args) => block_on(retry::run(&ctx, &args)),
        Command::Heartbeat(args) => block_on(heartbeat::run(&ctx, &args)),
        Command::ServeWebhook(args) => block_on(serve_webhook::run(&ctx, &args)),
        Command::Dashboard(args) => block_on(dashboard::run(&ctx, &args)),
        Command::Buckets(cmd) => block_on(buckets::run(&ctx, cmd, cli.global.otp.as_deref())),
        Command::Status(args) => status::run(&ctx, &args),
        Command::Files(args) => files::run(&ctx, &args),
        Command::Doctor(args) => block_on(doctor::run(&ctx, &args)),
        Command::Restore(args) => {
            block_on(restore::run(&ctx, &args, cli.global.otp.as_deref(), cli.global.verbose > 0))
        }
        Command::Verify(args) => block_on(verify::run(&ctx, &args)),
        Command::Ledger(cmd) => block_on(ledger::run(&ctx, &cmd)),
        Command::Probe(args) => {
            let url = args.url.unwrap_or_else(|| tgploy::probe::default_url(ctx.config.webhook_listen));
            block_on(probe::run(&url, args.timeout))
        }
        Command::Completions { .. } | Command::Man | Command::Setup(_) | Command::Join(_) => Ok(()),
    }
}
