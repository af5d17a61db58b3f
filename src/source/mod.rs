//! The S3 side: list buckets, list objects page by page, HEAD, ranged streaming GET; and
//! writing objects back ([`upload`]) for `restore --all --to-s3`. The only module that
//! speaks S3.

mod explain;
pub(crate) mod upload;

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::EncodingType;
use bytes::Bytes;

use crate::config::S3Settings;
pub(crate) use explain::explain;

/// An error from the S3 side; each says whether the server could be reached at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The server could not be reached, or answered with a server error (5xx) or not as S3:
    /// asking again later may work.
    #[error("cannot reach S3 at {endpoint}: {reason}")]
    Unreachable {
        /// The server's URL.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// The server refused the credentials (HTTP 401 or 403, or an S3 error code saying so).
    #[error(
        "S3 at {endpoint} refused access ({reason}); check the access and secret key \
         (`s3.access_key`/`s3.secret_key` or RUSTFS_ACCESS_KEY/RUSTFS_SECRET_KEY) and the key's permissions"
    )]
    Denied {
        /// The server's URL.
        endpoint: String,
        /// The HTTP status, or S3's error code and message.
        reason: String,
    },
    /// The bucket or object named (like `bucket NAME` or `object BUCKET/KEY`) does not exist.
    #[error("{0} not found on S3")]
    NotFound(String),
    /// A bucket name or key that S3 refuses (or would refuse) as invalid: asking again
    /// cannot help.
    #[error("{what}: not a valid S3 name ({reason})")]
    Invalid {
        /// The object or bucket concerned, like `object BUCKET/KEY`.
        what: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A conditional request failed (HTTP 412): the object is not the version asked for.
    #[error("{0} changed on S3 (it is no longer the version being delivered)")]
    Changed(String),
    /// Any other failure, with what was asked and what went wrong.
    #[error("S3 error: {0}")]
    Other(String),
}

impl SourceError {
    /// S3 could not be reached or could not serve (5xx): asking again later may work.
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(self, SourceError::Unreachable { .. })
    }
}

/// Refuses the bucket names and keys that no S3 server takes, before asking one. Lenient
/// on purpose: buckets are checked against what any S3-compatible store allows (letters,
/// digits, `.`, `-`, `_`, up to 255 bytes, as legacy AWS buckets and Ceph allow), keys
/// against S3's limit of 1 to 1024 bytes; the server has the last word on the rest.
pub(crate) fn check_names(bucket: &str, key: &str) -> Result<(), SourceError> {
    let what = || format!("object {bucket}/{key}");
    let invalid = |reason: &str| Err(SourceError::Invalid { what: what(), reason: reason.to_string() });
    if bucket.is_empty() || bucket.len() > 255 || bucket == "." || bucket == ".." {
        return invalid("a bucket name is 1 to 255 characters long");
    }
    if !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
        return invalid("a bucket name holds only letters, digits, `.`, `-` and `_`");
    }
    if key.is_empty() || key.len() > 1024 {
        return invalid("a key is 1 to 1024 bytes long");
    }
    Ok(())
}

impl From<SourceError> for crate::Error {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Unreachable { endpoint, reason } => {
                crate::Error::Unreachable { service: crate::error::Service::S3, endpoint, reason }
            }
            SourceError::Denied { .. } => crate::Error::Config(e.to_string()),
            // A 5xx is reported like any other failure of one bucket or object: a single
            // broken object must not stop every run.
            other => crate::Error::Failed(other.to_string()),
        }
    }
}

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) last_modified_ms: Option<i64>,
    /// Quotes trimmed; `None` where the server's listings carry no ETag.
    pub(crate) etag: Option<String>,
}

/// What HEAD says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// The version's ETag, quotes trimmed.
    pub etag: String,
    pub(crate) size: u64,
    pub(crate) last_modified_ms: Option<i64>,
}

/// A GET response body, read chunk by chunk.
pub struct Body {
    pub(crate) etag: Option<String>,
    stream: ByteStream,
    endpoint: String,
}

impl Body {
    /// The next chunk of the body; `None` after the last.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        match self.stream.next().await {
            None => Ok(None),
            Some(Ok(bytes)) => Ok(Some(bytes)),
            Some(Err(e)) => {
                crate::metrics::count(crate::metrics::S3_ERRORS, &[("kind", "unreachable")], 1.0);
                Err(SourceError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    reason: format!("reading the object failed: {}", crate::error::chain(&e)),
                })
            }
        }
    }
}

/// An S3-compatible server (RustFS, MinIO, Garage, Ceph, AWS).
#[derive(Clone, Debug)]
pub struct S3Source {
    client: Client,
    endpoint: String,
    region: String,
}

/// Decodes a key as S3 URL-encodes it, in listings asked for `encoding-type=url` and in
/// bucket events: `+` is a space, `%XX` a byte of its UTF-8. `None` when the bytes are
/// not UTF-8, which no S3 key is.
pub(crate) fn decode_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|k| k.into_owned())
}

/// Trims the quotes S3 puts around ETags.
pub(crate) fn trim_etag(etag: &str) -> String {
    etag.trim().trim_matches('"').to_string()
}

impl S3Source {
    /// A client for the server `settings` name (path-style requests, with timeouts); connects lazily.
    pub fn new(settings: &S3Settings) -> S3Source {
        let credentials = Credentials::new(
            settings.access_key.clone(),
            settings.secret_key.expose().to_string(),
            None,
            None,
            "tgploy",
        );
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .build();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(settings.endpoint.clone())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(true)
            // Newer SDK defaults add checksums that many S3-compatible stores reject.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(timeouts)
            .build();
        S3Source {
            client: Client::from_conf(config),
            endpoint: settings.endpoint.clone(),
            region: settings.region.clone(),
        }
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What an S3 request's failure means, counted in the metrics by its kind.
    fn classify<E>(&self, what: &str, err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> SourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let e = self.meaning(what, err);
        let kind = match &e {
            SourceError::Unreachable { .. } => "unreachable",
            SourceError::Denied { .. } => "denied",
            SourceError::NotFound(_) => "not_found",
            SourceError::Changed(_) => "changed",
            SourceError::Invalid { .. } => "invalid",
            _ => "other",
        };
        crate::metrics::count(crate::metrics::S3_ERRORS, &[("kind", kind)], 1.0);
        e
    }

    fn meaning<E>(&self, what: &str, err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> SourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let endpoint = self.endpoint.clone();
        match &err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                SourceError::Unreachable { endpoint, reason: crate::error::chain(&err) }
            }
            SdkError::ResponseError(_) => SourceError::Unreachable {
                endpoint,
                reason: format!("the answer is not S3 ({})", crate::error::chain(&err)),
            },
            // A 2xx whose body did not parse: not S3's XML (a listing with a key XML cannot
            // carry, when the server was not asked to URL-encode keys, reads this way).
            SdkError::ServiceError(service) if service.raw().status().is_success() => SourceError::Other(format!(
                "{what}: the server's answer (HTTP {}) does not read as S3's XML: {}",
                service.raw().status().as_u16(),
                crate::error::chain(&err)
            )),
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = service.err().code().unwrap_or("");
                let message = service.err().message().unwrap_or("");
                let reason = if code.is_empty() { format!("HTTP {status}") } else { format!("{code}: {message}") };
                match (status, code) {
                    (500..=599, _) => SourceError::Unreachable { endpoint, reason: format!("{what}: {reason}") },
                    (412, _) | (_, "PreconditionFailed") => SourceError::Changed(what.to_string()),
                    (401 | 403, _) | (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied") => {
                        SourceError::Denied { endpoint, reason }
                    }
                    (404, _) | (_, "NoSuchBucket" | "NoSuchKey" | "NotFound") => {
                        SourceError::NotFound(what.to_string())
                    }
                    // HEAD answers have no body, so a refused name is a bare 400 there.
                    (_, "InvalidBucketName" | "InvalidArgument" | "KeyTooLongError" | "InvalidURI") | (400, "") => {
                        SourceError::Invalid { what: what.to_string(), reason }
                    }
                    _ => SourceError::Other(format!("{what}: {reason}")),
                }
            }
            _ => SourceError::Other(format!("{what}: {}", crate::error::chain(&err))),
        }
    }

    /// The S3 server's clock against this machine's, from the `Date` header of a HEAD of
    /// its endpoint; `None` when it sends none. Signatures fail beyond 15 minutes.
    pub(crate) async fn clocks(&self) -> Result<Option<crate::time::Clocks>, SourceError> {
        let unreachable = |e: reqwest::Error| SourceError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason: crate::error::chain(&e.without_url()),
        };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(unreachable)?;
        let before = std::time::SystemTime::now();
        let response = client.head(&self.endpoint).send().await.map_err(unreachable)?;
        let date = response.headers().get(reqwest::header::DATE).and_then(|d| d.to_str().ok());
        Ok(crate::time::clocks(before, std::time::SystemTime::now(), date))
    }

    /// Every bucket the credentials can see.
    pub(crate) async fn list_buckets(&self) -> Result<Vec<String>, SourceError> {
        let out = self.client.list_buckets().send().await.map_err(|e| self.classify("bucket list", e))?;
        let mut names: Vec<String> = out.buckets().iter().filter_map(|b| b.name().map(str::to_string)).collect();
        names.sort();
        Ok(names)
    }

    /// A bucket's objects, page by page (ListObjectsV2 returns at most 1000 keys a page,
    /// in UTF-8 byte order of the keys). Keys are asked for URL-encoded
    /// (`encoding-type=url`, as boto3 and rclone ask): XML 1.0 cannot carry control
    /// characters, and S3 puts them raw into a listing that is not asked to encode, which
    /// no client can then read; one such key would stop a bucket's backups.
    pub fn list_pages(&self, bucket: &str) -> Listing<'_> {
        Listing {
            source: self,
            bucket: bucket.to_string(),
            pages: self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .encoding_type(EncodingType::Url)
                .into_paginator()
                .send(),
        }
    }

    /// Lists at most one key: can this bucket be listed?
    pub(crate) async fn probe_bucket(&self, bucket: &str) -> Result<(), SourceError> {
        self.client
            .list_objects_v2()
            .bucket(bucket)
            .max_keys(1)
            .encoding_type(EncodingType::Url)
            .send()
            .await
            .map_err(|e| self.classify(&format!("bucket {bucket}"), e))?;
        Ok(())
    }

    /// HEAD: the ETag (and size, last-modified) of one object.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<ObjectHead, SourceError> {
        check_names(bucket, key)?;
        let what = format!("object {bucket}/{key}");
        let out =
            self.client.head_object().bucket(bucket).key(key).send().await.map_err(|e| self.classify(&what, e))?;
        let etag = out
            .e_tag()
            .map(trim_etag)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| SourceError::Other(format!("{what}: HEAD returned no ETag")))?;
        Ok(ObjectHead {
            etag,
            size: out.content_length().unwrap_or(0).max(0) as u64,
            last_modified_ms: out.last_modified().and_then(|t| t.to_millis().ok()),
        })
    }

    /// GET of the bytes `start..start+len` of one version of an object (the whole object
    /// when `len` is its size and `start` is 0), streamed. `If-Match` makes the server
    /// refuse (412, [`SourceError::Changed`]) when the object is no longer that version.
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        start: u64,
        len: u64,
        size: u64,
    ) -> Result<Body, SourceError> {
        let what = format!("object {bucket}/{key}");
        let mut req = self.client.get_object().bucket(bucket).key(key).if_match(format!("\"{etag}\""));
        if (start, len) != (0, size) && len > 0 {
            req = req.range(format!("bytes={}-{}", start, start + len - 1));
        }
        let out = req.send().await.map_err(|e| self.classify(&what, e))?;
        Ok(Body { etag: out.e_tag().map(trim_etag), stream: out.body, endpoint: self.endpoint.clone() })
    }
}

/// One bucket's listing, read a page at a time.
pub struct Listing<'a> {
    source: &'a S3Source,
    bucket: String,
    pages: aws_smithy_async::future::pagination_stream::PaginationStream<
        Result<
            aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output,
            SdkError<
                aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error,
                aws_sdk_s3::config::http::HttpResponse,
            >,
        >,
    >,
}

impl Listing<'_> {
    /// The next page, `None` after the last. Keys ending in `/` with size 0 are folder
    /// markers, not objects.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ListedObject>>, SourceError> {
        let Some(page) = self.pages.next().await else { return Ok(None) };
        let page = page.map_err(|e| self.source.classify(&format!("bucket {}", self.bucket), e))?;
        // A server that honours `encoding-type=url` says so in the answer (botocore decodes
        // on the same condition); one that ignores it lists keys as they are.
        let encoded = page.encoding_type() == Some(&EncodingType::Url);
        let mut objects = Vec::with_capacity(page.contents().len());
        for obj in page.contents() {
            let Some(listed) = obj.key() else { continue };
            let key = if encoded {
                match decode_key(listed) {
                    Some(key) => key,
                    None => {
                        tracing::warn!(
                            "bucket {}: the listing has a key that is not UTF-8 once decoded ({listed}); skipped",
                            self.bucket
                        );
                        continue;
                    }
                }
            } else {
                listed.to_string()
            };
            let key = key.as_str();
            let size = obj.size().unwrap_or(0).max(0) as u64;
            if key.ends_with('/') && size == 0 {
                continue;
            }
            objects.push(ListedObject {
                key: key.to_string(),
                size,
                last_modified_ms: obj.last_modified().and_then(|t| t.to_millis().ok()),
                etag: obj.e_tag().map(trim_etag).filter(|e| !e.is_empty()),
            });
        }
        Ok(Some(objects))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_as_s3_url_encodes_them() {
        // AWS's own example, a space as `+`, a literal `+`, control characters, UTF-8.
        for (listed, key) in [
            ("test_file%283%29.png", "test_file(3).png"),
            ("db/dump+1.sql", "db/dump 1.sql"),
            ("a%2Bb", "a+b"),
            ("odd/%01start%0Anext%7F", "odd/\u{1}start\nnext\u{7f}"),
            ("%C3%BC%E2%82%AC", "ü€"),
            ("plain/key.txt", "plain/key.txt"),
        ] {
            assert_eq!(decode_key(listed).as_deref(), Some(key), "{listed}");
        }
        assert_eq!(decode_key("%FF"), None, "not UTF-8");
    }

    #[test]
    fn names_no_server_takes_are_refused_before_asking() {
        for (bucket, key) in [("../etc", "passwd"), ("", "k"), ("a b", "k"), ("..", "k"), ("bkt", "")] {
            assert!(matches!(check_names(bucket, key), Err(SourceError::Invalid { .. })), "{bucket}/{key}");
        }
        assert!(check_names("bkt", &"k".repeat(1025)).is_err());
        for (bucket, key) in [("backups", "db/dump 1.sql.gz"), ("Legacy_Bucket.1", "../x"), ("b", &"k".repeat(1024))] {
            assert!(check_names(bucket, key).is_ok(), "{bucket}/{key}");
        }
    }
}
