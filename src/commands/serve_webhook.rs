//! `serve-webhook` subcommand: receive bucket notifications, deliver in the background.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::ServeWebhookArgs;
use crate::commands::Context;
use crate::config::env;
use crate::deliver::Engine;
use crate::deliver::engine::EngineOptions;
use crate::error::{Error, Result};
use crate::shutdown::Shutdown;
use crate::source::S3Source;
use crate::webhook::{self, Server};

/// How long a graceful stop waits for the parts in flight.
const DRAIN: Duration = Duration::from_secs(60);

pub async fn run(ctx: &Context, args: &ServeWebhookArgs) -> Result<()> {
    let cfg = &ctx.config;
    let addr: SocketAddr = cfg.webhook_listen;
    let token = match (&cfg.webhook_token, args.insecure_no_token) {
        (Some(token), _) => Some(token.clone()),
        (None, true) if webhook::is_loopback(&addr) => {
            tracing::warn!("serving without a token on {addr}: any local process can queue deliveries");
            None
        }
        (None, true) => {
            return Err(Error::config(format!(
                "--insecure-no-token is only allowed on a loopback address, not {addr}; set a token instead \
                 (`webhook.secret_token` or {})",
                env::WEBHOOK_SECRET_TOKEN
            )));
        }
        (None, false) => {
            return Err(Error::config(format!(
                "missing webhook token: set `webhook.secret_token` in the config file or {} \
                 (the same token goes into the S3 server's notification target)",
                env::WEBHOOK_SECRET_TOKEN
            )));
        }
    };
    let source = S3Source::new(&cfg.require_s3()?);
    let ledger = Arc::new(ctx.ledger()?);
    let shutdown = Shutdown::new();
    let options = EngineOptions { concurrency: cfg.webhook_concurrency, progress: false };
    let engine = Engine::new(cfg, ledger.clone(), source.clone(), shutdown.clone(), options)?;
    match engine.sink().check().await {
        Ok(_) => {}
        Err(e) if e.is_outage() => {
            tracing::warn!("{e}; accepting events anyway, deliveries wait until it answers");
        }
        Err(e) => return Err(e.into()),
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::config(format!("cannot listen on {addr}: {e} (--listen or `webhook.listen`)")))?;
    let local = listener.local_addr().map_err(|e| Error::config(format!("cannot listen on {addr}: {e}")))?;
    shutdown.listen();
    // The bound address on stderr, also when logs are quiet: with port 0 it is the only
    // way to learn the port.
    eprintln!("tgploy: serve-webhook listening on http://{local}");
    let server = Server { cfg: cfg.clone(), ledger, source, engine, token, drain: DRAIN };
    webhook::serve(server, listener, shutdown).await?;
    eprintln!("tgploy: serve-webhook stopped");
    Ok(())
}
