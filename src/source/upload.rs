//! Writing objects back into S3, for `restore --all --to-s3`: buckets created where
//! missing, objects put whole when small and as multipart uploads when not, each with
//! its SHA-256 in its metadata (`x-amz-meta-tgploy-sha256`), so that a second restore
//! can tell it is already there.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration};
use bytes::{Bytes, BytesMut};

use super::{S3Source, SourceError, check_names, trim_etag};

/// The metadata key of an object's SHA-256 (`x-amz-meta-tgploy-sha256` on the wire).
pub(crate) const SHA256_METADATA: &str = "tgploy-sha256";
/// The size of each part of a multipart upload (S3 takes 5 MiB to 5 GiB, 10,000 parts):
/// objects up to this size are put whole.
pub(crate) const UPLOAD_PART: usize = 8 * 1024 * 1024;

/// What HEAD says about an object that is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) etag: String,
    pub(crate) size: u64,
    pub(crate) last_modified_ms: Option<i64>,
    /// Its `x-amz-meta-tgploy-sha256`, for an object a restore put there.
    pub(crate) sha256: Option<String>,
}

impl S3Source {
    /// Creates `bucket` unless it exists (owned by these credentials).
    pub(crate) async fn create_bucket(&self, bucket: &str) -> Result<(), SourceError> {
        check_names(bucket, "-")?;
        let mut req = self.client.create_bucket().bucket(bucket);
        if self.region != "us-east-1" {
            let location = BucketLocationConstraint::from(self.region.as_str());
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder().location_constraint(location).build(),
            );
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) => match self.classify(&format!("bucket {bucket}"), e) {
                SourceError::Other(why) if why.contains("BucketAlreadyOwnedByYou") => Ok(()),
                e => Err(e),
            },
        }
    }

    /// HEAD of an object with its tgploy metadata; `None` when there is no such object.
    pub(crate) async fn stat(&self, bucket: &str, key: &str) -> Result<Option<Stat>, SourceError> {
        check_names(bucket, key)?;
        let what = format!("object {bucket}/{key}");
        let out = match self.client.head_object().bucket(bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) => {
                return match self.classify(&what, e) {
                    SourceError::NotFound(_) => Ok(None),
                    e => Err(e),
                };
            }
        };
        Ok(Some(Stat {
            etag: out.e_tag().map(trim_etag).unwrap_or_default(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            last_modified_ms: out.last_modified().and_then(|t| t.to_millis().ok()),
            sha256: out.metadata().and_then(|m| m.get(SHA256_METADATA)).cloned(),
        }))
    }
}

/// An object being written, a part at a time; nothing is visible under its key before
/// [`Upload::finish`]. Memory: one part.
pub(crate) struct Upload<'a> {
    source: &'a S3Source,
    bucket: String,
    key: String,
    sha256: String,
    buffer: BytesMut,
    /// The multipart upload once the object outgrew one part, with its parts so far.
    multipart: Option<(String, Vec<CompletedPart>)>,
}

impl<'a> Upload<'a> {
    /// Starts writing `bucket/key`, whose content has the SHA-256 `sha256`.
    pub(crate) fn new(source: &'a S3Source, bucket: &str, key: &str, sha256: &str) -> Upload<'a> {
        Upload {
            source,
            bucket: bucket.to_string(),
            key: key.to_string(),
            sha256: sha256.to_string(),
            buffer: BytesMut::with_capacity(UPLOAD_PART),
            multipart: None,
        }
    }

    fn what(&self) -> String {
        format!("object {}/{}", self.bucket, self.key)
    }

    /// Adds bytes; a full part goes out as one.
    pub(crate) async fn write(&mut self, mut chunk: &[u8]) -> Result<(), SourceError> {
        while !chunk.is_empty() {
            let room = UPLOAD_PART - self.buffer.len();
            let take = room.min(chunk.len());
            self.buffer.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.buffer.len() == UPLOAD_PART {
                let part = self.buffer.split().freeze();
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Bytes) -> Result<(), SourceError> {
        let what = self.what();
        let source = self.source;
        if self.multipart.is_none() {
            let out = source
                .client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .metadata(SHA256_METADATA, &self.sha256)
                .send()
                .await
                .map_err(|e| source.classify(&what, e))?;
            let id = out.upload_id().ok_or_else(|| SourceError::Other(format!("{what}: no upload id")))?;
            self.multipart = Some((id.to_string(), Vec::new()));
        }
        let Some((id, parts)) = self.multipart.as_mut() else { return Ok(()) };
        let number = parts.len() as i32 + 1;
        let out = source
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(id.as_str())
            .part_number(number)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(|e| source.classify(&what, e))?;
        parts.push(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_string)).build());
        Ok(())
    }

    /// Makes the object visible; returns its ETag (quotes trimmed).
    pub(crate) async fn finish(mut self) -> Result<String, SourceError> {
        let what = self.what();
        let source = self.source;
        if self.multipart.is_none() {
            let body = self.buffer.split().freeze();
            let out = source
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .metadata(SHA256_METADATA, &self.sha256)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| source.classify(&what, e))?;
            return Ok(out.e_tag().map(trim_etag).unwrap_or_default());
        }
        if !self.buffer.is_empty() {
            let last = self.buffer.split().freeze();
            self.send_part(last).await?;
        }
        let Some((id, parts)) = self.multipart.take() else { return Ok(String::new()) };
        let out = source
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| source.classify(&what, e))?;
        Ok(out.e_tag().map(trim_etag).unwrap_or_default())
    }

    /// Gives up: a multipart upload is aborted, so its parts do not linger on the server.
    pub(crate) async fn abort(self) {
        if let Some((id, _)) = &self.multipart {
            let aborted = self
                .source
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!("{}: cannot abort its multipart upload: {}", self.what(), crate::error::chain(&e));
            }
        }
    }
}
