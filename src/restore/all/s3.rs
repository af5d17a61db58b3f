//! `restore --all --to-s3`: each object back into the configured S3 endpoint under its
//! bucket and key, with its SHA-256 in its metadata, and recorded in the ledger as
//! delivered so that the next `sync` sends nothing.

use std::collections::HashSet;
use std::io::{BufWriter, Write};

use super::{ObjectOutcome, Restored, Work};
use crate::error::Error;
use crate::ledger::{Delivery, Ledger};
use crate::restore::join::{JoinError, write_stream};
use crate::restore::{ObjectError, Plan, fetch_into};
use crate::source::upload::Upload;
use crate::source::{S3Source, SourceError};
use crate::time::now;

impl Work<'_> {
    pub(super) async fn to_s3(
        &self,
        source: &S3Source,
        buckets: &tokio::sync::Mutex<Option<HashSet<String>>>,
        d: &Delivery,
        mut plan: Plan,
    ) -> std::result::Result<Restored, ObjectError> {
        let o = &d.object;
        let s3 = s3_error;
        if self.expected(&plan).is_none() {
            // An encrypted object delivered before tgploy recorded the original's SHA-256,
            // in one part: decrypting it once tells it, before the upload that needs it.
            plan.plaintext = Some(self.learn_plaintext(&plan).await?);
        }
        let Some((_, sha)) = self.expected(&plan) else {
            return Err(ObjectError::Object("the original's SHA-256 is unknown".into()));
        };
        if let Some(there) = self.place_in_s3(source, buckets, d, &sha).await? {
            return Ok(there);
        }
        let mut upload = Upload::new(source, &o.bucket, &o.key, &sha);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
        let (joined, identity) = (plan.clone(), self.req.identity.clone());
        let consume = fetch_into(self.downloader, &plan, self.progress, self.shutdown, move |pieces| {
            let mut out = BufWriter::with_capacity(1 << 20, Channel(tx));
            write_stream(pieces, &mut out, &joined, identity.as_deref())
        });
        let feed = async {
            while let Some(chunk) = rx.recv().await {
                upload.write(&chunk).await?;
            }
            Ok::<_, SourceError>(())
        };
        let (written, fed) = tokio::join!(consume, feed);
        let outcome = match (written, fed) {
            (_, Err(e)) => Err(s3(e)),
            (Err(e), _) => Err(e),
            (Ok(Err(e)), _) => Err(join_error(e)),
            (Ok(Ok(_)), Ok(())) => Ok(()),
        };
        if let Err(e) = outcome {
            upload.abort().await;
            return Err(e);
        }
        self.finish_upload(source, d, upload).await
    }

    /// Completes the upload of object `d` and records the version now in S3 as
    /// delivered.
    pub(super) async fn finish_upload(
        &self,
        source: &S3Source,
        d: &Delivery,
        upload: Upload<'_>,
    ) -> std::result::Result<Restored, ObjectError> {
        let o = &d.object;
        let etag = upload.finish().await.map_err(s3_error)?;
        let there = source.stat(&o.bucket, &o.key).await.map_err(s3_error)?;
        let (etag, modified) = match there {
            Some(s) => (s.etag, s.last_modified_ms),
            None => (etag, None),
        };
        self.learn(d, &etag, modified).await?;
        Ok((ObjectOutcome::Restored, Some(format!("s3://{}/{}", o.bucket, o.key))))
    }

    /// Makes room for object `d` in S3: its bucket made when missing; already there with
    /// `sha` (or its ETag) means done (and recorded as delivered); a different object
    /// there is replaced only with `--force`.
    pub(super) async fn place_in_s3(
        &self,
        source: &S3Source,
        buckets: &tokio::sync::Mutex<Option<HashSet<String>>>,
        d: &Delivery,
        sha: &str,
    ) -> std::result::Result<Option<Restored>, ObjectError> {
        let o = &d.object;
        let shown = format!("s3://{}/{}", o.bucket, o.key);
        {
            let mut known = buckets.lock().await;
            if known.is_none() {
                *known = Some(source.list_buckets().await.map_err(s3_error)?.into_iter().collect());
            }
            if let Some(known) = known.as_mut()
                && !known.contains(&o.bucket)
            {
                source.create_bucket(&o.bucket).await.map_err(s3_error)?;
                tracing::info!("created bucket {} at {}", o.bucket, source.endpoint());
                known.insert(o.bucket.clone());
            }
        }
        if let Some(there) = source.stat(&o.bucket, &o.key).await.map_err(s3_error)? {
            if there.sha256.as_deref() == Some(sha) || there.etag == o.etag {
                self.learn(d, &there.etag, there.last_modified_ms).await?;
                return Ok(Some((ObjectOutcome::AlreadyThere, Some(shown))));
            }
            if !self.req.force {
                return Err(ObjectError::Object(format!(
                    "{shown} exists and differs (ETag {}); --force replaces it",
                    there.etag
                )));
            }
        }
        Ok(None)
    }

    /// The original's size and SHA-256 of an encrypted object, decrypted once, kept
    /// nowhere.
    async fn learn_plaintext(&self, plan: &Plan) -> std::result::Result<(u64, String), ObjectError> {
        let (joined, identity) = (plan.clone(), self.req.identity.clone());
        let written = fetch_into(self.downloader, plan, self.progress, self.shutdown, move |pieces| {
            write_stream(pieces, &mut std::io::sink(), &joined, identity.as_deref())
        })
        .await?;
        // The bar counts this download once more: it is work done.
        written.map_err(join_error)
    }

    /// Records the version now in S3 as delivered, so the next `sync` sends nothing.
    async fn learn(&self, d: &Delivery, etag: &str, modified: Option<i64>) -> std::result::Result<(), ObjectError> {
        let (d, etag) = (d.clone(), etag.to_string());
        Ledger::blocking(self.ledger, move |l| l.record_restored(&d, &etag, modified, now()))
            .await
            .map(|_| ())
            .map_err(ObjectError::Run)
    }
}

/// What an S3 failure means for one object: S3 gone or refusing is the run's end.
pub(super) fn s3_error(e: SourceError) -> ObjectError {
    match e {
        SourceError::Unreachable { .. } | SourceError::Denied { .. } => ObjectError::Run(e.into()),
        e => ObjectError::Object(e.to_string()),
    }
}

pub(super) fn join_error(e: JoinError) -> ObjectError {
    match e {
        // A wrong identity fails every encrypted object alike: stop, say so.
        JoinError::WrongIdentity(m) => ObjectError::Run(Error::usage(m)),
        JoinError::Data(m) => ObjectError::Object(m),
    }
}

/// Feeds what the writer thread writes to the async upload.
struct Channel(tokio::sync::mpsc::Sender<Vec<u8>>);

impl Write for Channel {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(buf.to_vec())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
