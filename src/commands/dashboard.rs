//! `dashboard` subcommand: serve the web dashboard until SIGTERM or SIGINT.

use std::net::SocketAddr;

use crate::cli::DashboardArgs;
use crate::commands::Context;
use crate::dashboard::{self, Dashboard, auth};
use crate::error::{Error, Result};

pub async fn run(ctx: &Context, _args: &DashboardArgs) -> Result<()> {
    let cfg = &ctx.config;
    let ledger = std::sync::Arc::new(ctx.ledger()?);
    auth::ready(&ledger)?;
    let addr: SocketAddr = cfg.dashboard_listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::config(format!("cannot listen on {addr}: {e} (--listen or `dashboard.listen`)")))?;
    let local = listener.local_addr().map_err(|e| Error::config(format!("cannot listen on {addr}: {e}")))?;
    if !addr.ip().is_loopback() && !cfg.dashboard_public_url.as_deref().is_some_and(|u| u.starts_with("https://")) {
        tracing::warn!(
            "the dashboard listens on {addr}, beyond this machine, over plain HTTP: put it behind a TLS reverse proxy \
             and set `dashboard.public_url` to its https:// address"
        );
    }
    let stop = stop_signal();
    // The bound address on stderr, also when logs are quiet: with port 0 it is the only
    // way to learn the port.
    eprintln!("tgploy: dashboard listening on http://{local}");
    dashboard::serve(Dashboard { cfg: cfg.clone(), ledger }, listener, stop).await?;
    eprintln!("tgploy: dashboard stopped");
    Ok(())
}

/// A future that resolves on the first SIGTERM or SIGINT: the server then stops taking
/// connections and finishes the requests in flight. The handlers are installed here, at
/// once, so that a signal sent as soon as the server says it listens is caught.
fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let signals = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
        async move {
            match signals {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    tracing::warn!("cannot listen for SIGTERM; the dashboard stops when killed");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
