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
        let shown = format!("s3://{}/{}", o.bucket, o.key);
        let s3 = |e: SourceError| match e {
            SourceError::Unreachable { .. } | SourceError::Denied { .. } => ObjectError::Run(e.into()),
            e => ObjectError::Object(e.to_string()),
        };
        if self.expected(&plan).is_none() {
            // An encrypted object delivered before tgploy recorded the original's SHA-256,
            // in one part: decrypting it once tells it, before the upload that needs it.
            plan.plaintext = Some(self.learn_plaintext(&plan).await?);
        }
        let Some((_, sha)) = self.expected(&plan) else {
            return Err(ObjectError::Object("the original's SHA-256 is unknown".into()));
        };
        {
            let mut known = buckets.lock().await;
            if known.is_none() {
                *known = Some(source.list_buckets().await.map_err(s3)?.into_iter().collect());
            }
            if let Some(known) = known.as_mut()
                && !known.contains(&o.bucket)
            {
                source.create_bucket(&o.bucket).await.map_err(s3)?;
                tracing::info!("created bucket {} at {}", o.bucket, source.endpoint());
                known.insert(o.bucket.clone());
            }
        }
        if let Some(there) = source.stat(&o.bucket, &o.key).await.map_err(s3)? {
            if there.sha256.as_deref() == Some(sha.as_str()) || there.etag == o.etag {
                self.learn(d, &there.etag, there.last_modified_ms).await?;
                return Ok((ObjectOutcome::AlreadyThere, Some(shown)));
            }
            if !self.req.force {
                return Err(ObjectError::Object(format!(
                    "{shown} exists and differs (ETag {}); --force replaces it",
                    there.etag
                )));
            }
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
        let etag = upload.finish().await.map_err(s3)?;
        let there = source.stat(&o.bucket, &o.key).await.map_err(s3)?;
        let (etag, modified) = match there {
            Some(s) => (s.etag, s.last_modified_ms),
            None => (etag, None),
        };
        self.learn(d, &etag, modified).await?;
        Ok((ObjectOutcome::Restored, Some(shown)))
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
