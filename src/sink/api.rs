//! The Bot API over HTTP: one request, one answer, nothing repeated here.
//!
//! tgploy speaks to the Bot API with its own reqwest client rather than teloxide's
//! request layer, whose behaviour does not fit a backup courier: it sleeps 10 s inside
//! every 5xx answer before reporting it, reads upload files in 8 KiB chunks through the
//! blocking pool, and downloads `documents/file_1.pdf` as one `%2F`-encoded path
//! segment. teloxide's types still describe what the Bot API answers.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Upload bodies are read from disk in chunks of this size.
const UPLOAD_CHUNK: usize = 1 << 20;

/// What a request sends besides its plain parameters.
pub(crate) enum Attachment {
    /// A file on disk, streamed (reopened for every attempt).
    File { path: PathBuf, len: u64 },
    /// A small document held in memory.
    Bytes(Bytes),
}

/// A document to attach as the `document` field.
pub(crate) struct Document {
    pub(crate) name: String,
    pub(crate) body: Attachment,
}

impl Document {
    /// Its size in bytes, as an upload's error names it.
    pub(crate) fn len(&self) -> u64 {
        match &self.body {
            Attachment::File { len, .. } => *len,
            Attachment::Bytes(b) => b.len() as u64,
        }
    }
}

/// Why one request did not succeed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No answer (refused, dropped, timed out), or a 5xx: the service is in trouble, and
    /// the same request may succeed shortly.
    Transient(String),
    /// Flood control: wait this long, then send the same request again.
    RetryAfter(Duration),
    /// The Bot API's own refusal.
    Api { code: u16, description: String, migrate_to: Option<i64> },
    /// The file to upload could not be read.
    Io(String),
    /// An answer that is not the Bot API's envelope.
    Garbled(String),
}

#[derive(Deserialize)]
struct Envelope<T> {
    ok: bool,
    result: Option<T>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// Counts an answer of the Bot API by its class: ok, 429, 4xx, or outage (5xx, or no
/// answer at all).
fn answered(status: Option<reqwest::StatusCode>) {
    let class = match status {
        Some(s) if s.is_success() => "ok",
        Some(s) if s.as_u16() == 429 => "429",
        Some(s) if s.is_client_error() => "4xx",
        _ => "outage",
    };
    crate::metrics::count(crate::metrics::TELEGRAM_ANSWERS, &[("class", class)], 1.0);
}

/// A Bot API server (Telegram's cloud, a self-hosted `telegram-bot-api`, or a test one).
pub(crate) struct BotApi {
    client: reqwest::Client,
    endpoint: String,
    token: String,
}

/// Why a [`BotApi`] could not be built.
#[derive(Debug)]
pub(crate) enum BuildError {
    /// The endpoint is no URL.
    Url(String),
    /// The HTTP client could not be built (no TLS roots, …).
    Client(String),
}

impl BotApi {
    pub(crate) fn new(endpoint: &str, token: &str) -> Result<BotApi, BuildError> {
        // No total timeout: a 1950 MiB part to a self-hosted server takes long. Connect
        // and read timeouts catch a dead server.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| BuildError::Client(format!("cannot build the HTTP client: {e}")))?;
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&endpoint).map_err(|e| BuildError::Url(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BuildError::Url(format!("`{}` is not http or https", url.scheme())));
        }
        Ok(BotApi { client, endpoint, token: token.to_string() })
    }

    /// Calls `method` with `params` (and a document, for sendDocument).
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &[(&str, String)],
        document: Option<&Document>,
    ) -> Result<T, CallError> {
        let url = format!("{}/bot{}/{method}", self.endpoint, self.token);
        let request = match document {
            None => {
                let body: serde_json::Map<String, serde_json::Value> =
                    params.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect();
                self.client.post(&url).json(&body)
            }
            Some(doc) => {
                let mut form = reqwest::multipart::Form::new();
                for (k, v) in params {
                    form = form.text(k.to_string(), v.clone());
                }
                let part = match &doc.body {
                    Attachment::File { path, len } => {
                        let file = tokio::fs::File::open(path)
                            .await
                            .map_err(|e| CallError::Io(format!("cannot read the part file {}: {e}", path.display())))?;
                        let stream = tokio_util::io::ReaderStream::with_capacity(file, UPLOAD_CHUNK);
                        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), *len)
                    }
                    Attachment::Bytes(bytes) => reqwest::multipart::Part::stream_with_length(
                        reqwest::Body::from(bytes.clone()),
                        bytes.len() as u64,
                    ),
                };
                let part = part
                    .file_name(doc.name.clone())
                    .mime_str("application/octet-stream")
                    .map_err(|e| CallError::Garbled(e.to_string()))?;
                self.client.post(&url).multipart(form.part("document", part))
            }
        };
        let response = request.send().await.map_err(|e| {
            answered(None);
            CallError::Transient(self.network_error(&e))
        })?;
        let status = response.status();
        tracing::debug!(
            "bot {}: {method} answered HTTP {status}",
            super::limits::bot_id(&self.token).unwrap_or_default()
        );
        answered(Some(status));
        let text = response.text().await.map_err(|e| CallError::Transient(self.network_error(&e)))?;
        if status.is_server_error() {
            // Proxies in front of the Bot API answer outages with an HTML page: only the
            // status matters.
            return Err(CallError::Transient(format!("it answered HTTP {status}")));
        }
        let envelope: Envelope<T> = serde_json::from_str(&text).map_err(|_| {
            if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
                // The limit is enforced in front of the Bot API (nginx): its answer is the
                // envelope today, an HTML page in older reports; the status says it all.
                return CallError::Api { code: 413, description: "Request Entity Too Large".into(), migrate_to: None };
            }
            let raw: String = text.chars().take(200).collect();
            CallError::Garbled(format!("unexpected answer (HTTP {status}): {raw}"))
        })?;
        if envelope.ok
            && let Some(result) = envelope.result
        {
            return Ok(result);
        }
        let parameters = envelope.parameters.unwrap_or(Parameters { retry_after: None, migrate_to_chat_id: None });
        if let Some(secs) = parameters.retry_after {
            return Err(CallError::RetryAfter(Duration::from_secs(secs)));
        }
        Err(CallError::Api {
            code: envelope.error_code.unwrap_or(status.as_u16()),
            description: envelope.description.unwrap_or_else(|| format!("HTTP {status}")),
            migrate_to: parameters.migrate_to_chat_id,
        })
    }

    /// The server's clock: a HEAD of the API's address, read from its `Date` header.
    pub(crate) async fn clocks(&self) -> Result<Option<crate::time::Clocks>, CallError> {
        let before = std::time::SystemTime::now();
        let response = self
            .client
            .head(&self.endpoint)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| CallError::Transient(self.network_error(&e)))?;
        let date = response.headers().get(reqwest::header::DATE).and_then(|d| d.to_str().ok());
        Ok(crate::time::clocks(before, std::time::SystemTime::now(), date))
    }

    /// Starts the download of a file `getFile` located: the documented URL
    /// `/file/bot<token>/<file_path>`, with the path's slashes as slashes.
    pub(crate) async fn download(&self, file_path: &str) -> Result<reqwest::Response, CallError> {
        let response = self.client.get(self.file_url(file_path)).send().await.map_err(|e| {
            answered(None);
            CallError::Transient(self.network_error(&e))
        })?;
        let status = response.status();
        answered(Some(status));
        if status.is_success() {
            return Ok(response);
        }
        if status.is_server_error() {
            return Err(CallError::Transient(format!("it answered HTTP {status}")));
        }
        Err(CallError::Api {
            code: status.as_u16(),
            description: format!("the download answered {status}"),
            migrate_to: None,
        })
    }

    /// The documented download URL, `<api>/file/bot<token>/<file_path>`, each segment
    /// percent-encoded and the slashes kept. It holds the token: never log it.
    fn file_url(&self, file_path: &str) -> String {
        use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
        // A path segment's reserved characters; `/` separates segments.
        const SEGMENT: &AsciiSet = &CONTROLS
            .add(b' ')
            .add(b'"')
            .add(b'#')
            .add(b'%')
            .add(b'<')
            .add(b'>')
            .add(b'?')
            .add(b'`')
            .add(b'{')
            .add(b'}');
        let path: Vec<String> = file_path.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect();
        format!("{}/file/bot{}/{}", self.endpoint, self.token, path.join("/"))
    }

    /// A network error as one line, without the token the URL carries.
    pub(crate) fn network_error(&self, e: &reqwest::Error) -> String {
        crate::config::redact(&crate::error::chain(e), &self.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_urls_keep_the_slashes_of_the_file_path() {
        let token = "123456:ABCdef-ghiJKL";
        for (api, want) in [
            ("https://api.telegram.org", "https://api.telegram.org/file/bot123456:ABCdef-ghiJKL/documents/file_12.pdf"),
            (
                "http://127.0.0.1:8081/tg/",
                "http://127.0.0.1:8081/tg/file/bot123456:ABCdef-ghiJKL/documents/file_12.pdf",
            ),
        ] {
            assert_eq!(BotApi::new(api, token).unwrap().file_url("documents/file_12.pdf"), want);
        }
        assert_eq!(
            BotApi::new("https://api.telegram.org", token).unwrap().file_url("music/a b#?%.mp3"),
            "https://api.telegram.org/file/bot123456:ABCdef-ghiJKL/music/a%20b%23%3F%25.mp3"
        );
    }
}
