//! Part files: read from S3 ahead of the uploads, never more than two at a time.
//!
//! A reader fills part k+1 (a ranged GET streamed through SHA-256 into a private
//! temporary file) while part k uploads. Each part file holds one of two permits until
//! it is uploaded and recorded, so a delivery keeps at most two part files on disk and
//! memory stays bounded by the read buffers, whatever the object's size. Encrypted
//! objects are read the same way, one window of the part size at a time, through the
//! age encryptor; a window may complete two parts, so they can keep up to four files.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::hash::ResumableSha256;
use super::manifest::ManifestEncryption;
use super::stop::Stop;
use crate::ledger::ObjectVersion;
use crate::source::S3Source;

/// Part files one delivery holds at most: one uploading, one read ahead.
pub(crate) const IN_FLIGHT: usize = 2;
/// Bytes gathered before each write to a part file.
const WRITE_BUFFER: usize = 1 << 20;

/// A part on disk, checked and ready to upload.
pub(crate) struct ReadyPart {
    /// 1-based.
    pub(crate) idx: u32,
    pub(crate) file: tempfile::NamedTempFile,
    pub(crate) len: u64,
    pub(crate) sha256: String,
    /// The whole stream's hash state after this part (plain streams, all but the last).
    pub(crate) hash_state: Option<Vec<u8>>,
    /// With the last part: the whole stream's SHA-256, and for an encrypted stream what
    /// it decrypts to.
    pub(crate) last: Option<(String, Option<ManifestEncryption>)>,
    /// Held until the part is uploaded and recorded (dropped with it).
    _permit: OwnedSemaphorePermit,
}

pub(crate) type PartSender = mpsc::Sender<Result<ReadyPart, Stop>>;

fn write_error(dir: &Path) -> impl Fn(std::io::Error) -> Stop + '_ {
    move |e| Stop::Failed(format!("cannot write a part file in {}: {e}", dir.display()))
}

/// The version being read must still be the one listed (for servers that ignore
/// `If-Match`).
pub(crate) fn check_etag(etag: Option<&str>, obj: &ObjectVersion) -> Result<(), Stop> {
    match etag {
        Some(etag) if etag != obj.etag => Err(Stop::Gone(format!(
            "the object changed since it was listed (ETag now {etag}); its new version is delivered by a later sync"
        ))),
        _ => Ok(()),
    }
}

/// The bytes `offset..offset+len` of the version being delivered, from one ranged GET;
/// fails unless exactly `len` bytes come.
struct Range<'a> {
    obj: &'a ObjectVersion,
    body: crate::source::Body,
    offset: u64,
    len: u64,
    received: u64,
}

impl<'a> Range<'a> {
    async fn open(source: &S3Source, obj: &'a ObjectVersion, offset: u64, len: u64) -> Result<Range<'a>, Stop> {
        let body = source.get(&obj.bucket, &obj.key, &obj.etag, offset, len, obj.size).await?;
        check_etag(body.etag.as_deref(), obj)?;
        Ok(Range { obj, body, offset, len, received: 0 })
    }

    async fn next(&mut self) -> Result<Option<bytes::Bytes>, Stop> {
        let (obj, offset, len) = (self.obj, self.offset, self.len);
        let Some(bytes) = self.body.next_chunk().await? else {
            if self.received != len {
                return Err(Stop::Failed(format!(
                    "S3 sent {} of {len} bytes at offset {offset} of {}/{}",
                    self.received, obj.bucket, obj.key
                )));
            }
            return Ok(None);
        };
        self.received += bytes.len() as u64;
        if self.received > len {
            return Err(Stop::Failed(format!(
                "S3 sent more than the {len} bytes asked for at offset {offset} of {}/{}",
                obj.bucket, obj.key
            )));
        }
        Ok(Some(bytes))
    }
}

/// What the blocking side of a plain part's read gives back: the part file, its SHA-256,
/// and the whole stream's hash carried on.
type Written = (tempfile::NamedTempFile, String, ResumableSha256);

/// Hashes the chunks of one part (the part's and the whole stream's SHA-256) and writes
/// them to a new part file, off the async runtime, while the next chunks arrive.
fn hash_and_write(
    dir: &Path,
    mut chunks: mpsc::Receiver<bytes::Bytes>,
    mut whole: ResumableSha256,
) -> std::io::Result<Written> {
    let mut file = tempfile::Builder::new().prefix("part-").tempfile_in(dir)?;
    // S3 bodies arrive in small chunks: one write per MiB, not per chunk.
    let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, &mut file);
    let mut part = Sha256::new();
    while let Some(chunk) = chunks.blocking_recv() {
        part.update(&chunk);
        whole.update(&chunk);
        out.write_all(&chunk)?;
    }
    out.flush()?;
    drop(out);
    Ok((file, hex::encode(part.finalize()), whole))
}

/// Reads the parts of a plain object from `first` on, hashing the whole stream on.
pub(crate) struct PlainReader<'a> {
    pub(crate) source: &'a S3Source,
    pub(crate) obj: &'a ObjectVersion,
    pub(crate) tmp_dir: &'a Path,
    pub(crate) part_size: u64,
    pub(crate) count: u32,
    pub(crate) first: u32,
    /// The whole stream's hash, resumed after the parts sent before.
    pub(crate) whole: ResumableSha256,
}

impl PlainReader<'_> {
    /// Sends each part as it is read; stops at the first error (sent too) or when the
    /// receiver is gone.
    pub(crate) async fn read_into(mut self, tx: PartSender) {
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        for idx in self.first..=self.count {
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let part = self.read(idx, permit).await;
            let failed = part.is_err();
            if tx.send(part).await.is_err() || failed {
                return;
            }
        }
    }

    async fn read(&mut self, idx: u32, permit: OwnedSemaphorePermit) -> Result<ReadyPart, Stop> {
        let obj = self.obj;
        let started = std::time::Instant::now();
        let offset = u64::from(idx - 1) * self.part_size;
        let len = self.part_size.min(obj.size - offset);
        let mut range = Range::open(self.source, obj, offset, len).await?;
        let (chunks, received) = mpsc::channel(64);
        let (dir, whole) = (self.tmp_dir.to_path_buf(), std::mem::take(&mut self.whole));
        let writer = tokio::task::spawn_blocking(move || hash_and_write(&dir, received, whole));
        let mut read = Ok(());
        loop {
            match range.next().await {
                Ok(Some(chunk)) => {
                    // A closed channel means the writer failed: its error says why.
                    if chunks.send(chunk).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(stop) => {
                    read = Err(stop);
                    break;
                }
            }
        }
        drop(chunks);
        let written = writer.await.map_err(|e| Stop::Failed(format!("the part writer failed: {e}")))?;
        read?;
        let (file, sha256, whole) = written.map_err(write_error(self.tmp_dir))?;
        self.whole = whole;
        tracing::debug!("{}/{}: read part {idx} ({len} bytes) in {:.2?}", obj.bucket, obj.key, started.elapsed());
        let last = idx == self.count;
        Ok(ReadyPart {
            idx,
            file,
            len,
            sha256,
            hash_state: if last { None } else { self.whole.save() },
            last: last.then(|| (std::mem::take(&mut self.whole).finalize_hex(), None)),
            _permit: permit,
        })
    }
}

/// Reads an object as consecutive ranged GETs of one part size each, through the age
/// encryptor, cut into parts of the encrypted stream. No S3 response stays open while
/// parts upload: parts go out between responses.
pub(crate) struct EncryptedReader<'a> {
    source: &'a S3Source,
    obj: &'a ObjectVersion,
    part_size: u64,
    enc: &'a crate::crypt::Encryption,
    writer: Option<age::stream::StreamWriter<Splitter<'a>>>,
    ready: Arc<std::sync::Mutex<Vec<Sealed>>>,
    /// Parts of the stored (encrypted) stream.
    pub(crate) count: u32,
    stored_size: u64,
}

impl<'a> EncryptedReader<'a> {
    pub(crate) fn new(
        source: &'a S3Source,
        obj: &'a ObjectVersion,
        tmp_dir: &'a Path,
        part_size: u64,
        enc: &'a crate::crypt::Encryption,
    ) -> Result<Self, Stop> {
        let splitter = Splitter::new(tmp_dir, part_size);
        let ready = splitter.ready.clone();
        let written = splitter.written.clone();
        let writer = enc.wrap(splitter).map_err(|e| Stop::Failed(format!("cannot start the age encryption: {e}")))?;
        // The header is written now; its size varies, the payload's does not.
        let stored_size = written.load(Ordering::SeqCst) + crate::crypt::Encryption::payload_size(obj.size);
        let count = super::layout::part_count(stored_size, part_size);
        Ok(EncryptedReader { source, obj, part_size, enc, writer: Some(writer), ready, count, stored_size })
    }

    pub(crate) async fn read_into(mut self, tx: PartSender) {
        if let Err(stop) = self.read_all(&tx).await {
            let _ = tx.send(Err(stop)).await;
        }
    }

    async fn read_all(&mut self, tx: &PartSender) -> Result<(), Stop> {
        let obj = self.obj;
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut plain = Sha256::new();
        let mut received = 0u64;
        let mut idx = 0u32;
        let mut next = 0u64;
        loop {
            let sealed = if next < obj.size {
                let len = self.part_size.min(obj.size - next);
                let mut range = Range::open(self.source, obj, next, len).await?;
                while let Some(chunk) = range.next().await? {
                    plain.update(&chunk);
                    let writer = self.writer.as_mut().ok_or_else(finished_twice)?;
                    writer.write_all(&chunk).map_err(|e| splitter_error(obj, e))?;
                }
                received += len;
                next += len;
                take(&self.ready)
            } else {
                let mut splitter =
                    self.writer.take().ok_or_else(finished_twice)?.finish().map_err(|e| splitter_error(obj, e))?;
                let sealed = splitter.close().map_err(|e| splitter_error(obj, e))?;
                if received != obj.size || splitter.total != self.stored_size {
                    return Err(Stop::Failed(format!(
                        "S3 sent {received} of {} bytes of {}/{} ({} of {} bytes encrypted)",
                        obj.size, obj.bucket, obj.key, splitter.total, self.stored_size
                    )));
                }
                sealed
            };
            let finished = self.writer.is_none();
            let total = sealed.len();
            for (i, (file, sha256, len, whole)) in sealed.into_iter().enumerate() {
                idx += 1;
                if idx > self.count {
                    return Err(Stop::Failed(format!("the encrypted stream grew past its {} parts", self.count)));
                }
                let last = finished && i + 1 == total;
                if last != (idx == self.count) {
                    return Err(Stop::Failed(format!(
                        "the encrypted stream of {}/{} ended at part {idx} of {}",
                        obj.bucket, obj.key, self.count
                    )));
                }
                let Ok(permit) = permits.clone().acquire_owned().await else { return Ok(()) };
                let encryption = || ManifestEncryption {
                    scheme: crate::crypt::SCHEME.into(),
                    recipients: self.enc.recipients().to_vec(),
                    plaintext_size: obj.size,
                    plaintext_sha256: hex::encode(plain.clone().finalize()),
                };
                let part = ReadyPart {
                    idx,
                    file,
                    len,
                    sha256,
                    hash_state: None,
                    last: if last { whole.map(|w| (w, Some(encryption()))) } else { None },
                    _permit: permit,
                };
                if tx.send(Ok(part)).await.is_err() {
                    return Ok(());
                }
            }
            if finished {
                return Ok(());
            }
        }
    }
}

fn splitter_error(obj: &ObjectVersion, e: std::io::Error) -> Stop {
    Stop::Failed(format!("cannot encrypt {}/{} into part files: {e}", obj.bucket, obj.key))
}

fn finished_twice() -> Stop {
    Stop::Failed("the encryptor was finished twice".into())
}

/// A sealed part file: the file, its SHA-256, its length, and the whole stream's SHA-256
/// when it is the last.
type Sealed = (tempfile::NamedTempFile, String, u64, Option<String>);

fn take(ready: &std::sync::Mutex<Vec<Sealed>>) -> Vec<Sealed> {
    std::mem::take(&mut *ready.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// Cuts a stream written into it into part files of `part_size` bytes.
struct Splitter<'a> {
    dir: &'a Path,
    part_size: u64,
    current: Option<(tempfile::NamedTempFile, Sha256, u64)>,
    /// Shared, because the encryptor owns the splitter while the stream is written.
    ready: Arc<std::sync::Mutex<Vec<Sealed>>>,
    whole: Sha256,
    total: u64,
    /// `total`, readable while the encryptor owns the splitter.
    written: Arc<AtomicU64>,
}

impl<'a> Splitter<'a> {
    fn new(dir: &'a Path, part_size: u64) -> Self {
        Splitter {
            dir,
            part_size,
            current: None,
            ready: Default::default(),
            whole: Sha256::new(),
            total: 0,
            written: Default::default(),
        }
    }

    fn seal(&mut self) -> std::io::Result<()> {
        if let Some((mut file, hash, len)) = self.current.take() {
            file.flush()?;
            self.ready.lock().unwrap_or_else(|p| p.into_inner()).push((file, hex::encode(hash.finalize()), len, None));
        }
        Ok(())
    }

    /// Seals the last part; returns the parts not taken yet, the last one carrying the
    /// whole stream's SHA-256.
    fn close(&mut self) -> std::io::Result<Vec<Sealed>> {
        self.seal()?;
        let sha = hex::encode(std::mem::take(&mut self.whole).finalize());
        let mut sealed = take(&self.ready);
        if let Some(last) = sealed.last_mut() {
            last.3 = Some(sha);
        }
        Ok(sealed)
    }
}

impl Write for Splitter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.is_none() {
            let file = tempfile::Builder::new().prefix("part-").tempfile_in(self.dir)?;
            self.current = Some((file, Sha256::new(), 0));
        }
        let Some((file, hash, len)) = self.current.as_mut() else { return Ok(0) };
        let room = (self.part_size - *len).min(buf.len() as u64) as usize;
        file.write_all(&buf[..room])?;
        hash.update(&buf[..room]);
        self.whole.update(&buf[..room]);
        *len += room as u64;
        self.total += room as u64;
        self.written.store(self.total, Ordering::SeqCst);
        if *len == self.part_size {
            self.seal()?;
        }
        Ok(room)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
