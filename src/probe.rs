//! `tgploy probe`: does a running `serve-webhook` or `dashboard` answer? For a
//! container's HEALTHCHECK, where an empty image has no shell and no curl, and for any
//! supervisor that runs a command to tell.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// What a healthy server answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The URL asked.
    pub url: String,
    /// The HTTP status it answered (2xx).
    pub status: u16,
    /// How long the answer took, in milliseconds.
    pub elapsed_ms: u64,
}

/// The URL probed when none is given: `serve-webhook`'s `/healthz` at `listen`
/// (`webhook.listen`). A server listening on every address (0.0.0.0, [::]) is asked
/// over loopback, as it is from inside its container.
pub fn default_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/healthz", SocketAddr::new(ip, listen.port()))
}

/// GETs `url` once, within `timeout`, following no redirect (the dashboard sends
/// strangers to its sign-in page): an answer is healthy only when it is 2xx. Anything
/// else is an [`Error::Failed`] that says what came back, or why nothing did.
pub async fn probe(url: &str, timeout: Duration) -> Result<Answer> {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| {
            Error::usage(format!(
                "`{url}` is not an http:// or https:// URL; give one like http://127.0.0.1:8080/healthz"
            ))
        })?;
    // A proxy set for outgoing traffic (HTTPS_PROXY) has no business in between.
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| Error::Internal(format!("cannot build the HTTP client: {e}")))?;
    let start = Instant::now();
    let resp = client.get(parsed).send().await.map_err(|e| {
        let why = if e.is_timeout() {
            format!("no answer within {}", humantime::format_duration(timeout))
        } else {
            crate::error::chain(&e)
        };
        Error::failed(format!("{url} did not answer: {why}; is tgploy serve-webhook (or dashboard) listening there?"))
    })?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        let first: String = body.lines().next().unwrap_or_default().chars().take(200).collect();
        let said = if first.trim().is_empty() { String::new() } else { format!(": {}", first.trim()) };
        return Err(Error::failed(format!("{url} answered {status}{said}")));
    }
    Ok(Answer { url: url.to_string(), status: status.as_u16(), elapsed_ms: start.elapsed().as_millis() as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_url_asks_a_server_on_every_address_over_loopback() {
        let url = |listen: &str| default_url(listen.parse().unwrap());
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080/healthz");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080/healthz");
        assert_eq!(url("127.0.0.1:9001"), "http://127.0.0.1:9001/healthz");
        assert_eq!(url("10.1.2.3:80"), "http://10.1.2.3:80/healthz");
    }

    #[tokio::test]
    async fn a_url_that_is_not_http_is_a_usage_error() {
        for url in ["ftp://127.0.0.1/healthz", "127.0.0.1:8080/healthz", "http://"] {
            let err = probe(url, Duration::from_secs(5)).await.unwrap_err();
            assert!(matches!(err, Error::Usage(_)), "{url}: {err}");
        }
    }
}
