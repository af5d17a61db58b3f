//! `probe` subcommand: exit 0 if a running tgploy server answers 2xx (healthchecks).

use std::time::Duration;

use tgploy::error::Result;
use tgploy::output;
use tgploy::probe;

pub(crate) async fn run(url: &str, timeout: Duration) -> Result<()> {
    let answer = probe::probe(url, timeout).await?;
    output::print(&format!("OK: {} answered {} in {} ms\n", answer.url, answer.status, answer.elapsed_ms))
}
