//! The downloader of `restore`, `restore --all` and `verify`: parts fetched from Telegram
//! `--jobs` at a time, across objects and within one object, each checked against its
//! size and SHA-256 before anything uses it, and handed on in order.
//!
//! Each part is located (`getFile`) right before its download, never earlier: a link is
//! promised for an hour only, and a restore of many parts, or of one large object over a
//! slow line, outlasts it. What can be known without asking Telegram (a part over the
//! download limit, a part of a bot no longer configured) is refused before any download.
//!
//! Two limits keep it bounded. Downloads in flight: `jobs` (getFile calls too). Part
//! files on disk: `jobs + 1`, each held from the start of its download until the
//! writer has read it, whatever the objects' sizes. An object takes its part files in
//! the order of its parts, so its earliest part not yet written always holds one: it is
//! either downloading or waiting for the writer, which always makes progress.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::ObjectError;
use super::fetch::{check_bots, check_download_limit, fetch_checked, locate_part};
use super::join::Piece;
use super::plan::Plan;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::sink::{FileSource, TelegramSink};

/// Fetches the parts of objects, `jobs` downloads at a time.
pub(crate) struct Downloader {
    sink: TelegramSink,
    downloads: Arc<Semaphore>,
    part_files: Arc<Semaphore>,
    tmp: tempfile::TempDir,
}

impl Downloader {
    /// A downloader through `sink` with `jobs` downloads in flight, keeping its part
    /// files in a private directory under `tmp_base`.
    pub(crate) fn new(sink: TelegramSink, jobs: usize, tmp_base: Option<&std::path::Path>) -> Result<Downloader> {
        let jobs = jobs.max(1);
        Ok(Downloader {
            sink,
            downloads: Arc::new(Semaphore::new(jobs)),
            part_files: Arc::new(Semaphore::new(jobs + 1)),
            tmp: crate::private_files::temp_dir(tmp_base)?,
        })
    }

    /// The downloader of a restore or a drill: every configured bot (each part comes back
    /// through its own), `jobs` downloads at a time, part files in `tmp_dir`.
    pub(crate) fn for_config(cfg: &crate::config::Config, jobs: usize) -> Result<Downloader> {
        let sink = TelegramSink::downloader(&cfg.require_bot_tokens()?, &cfg.api_url, 0)?;
        Downloader::new(sink, jobs, cfg.tmp_dir.as_deref())
    }

    /// A private temporary file beside the part files (a pack's tar, while its members
    /// are copied out).
    pub(super) fn temp_file(&self, prefix: &str) -> Result<tempfile::NamedTempFile, ObjectError> {
        tempfile::Builder::new().prefix(prefix).tempfile_in(self.tmp.path()).map_err(|e| {
            ObjectError::Run(Error::failed(format!(
                "cannot create a file in {}: {e}; free some space or set `tmp_dir` (TGPLOY_TMP_DIR)",
                self.tmp.path().display()
            )))
        })
    }

    pub(crate) fn sink(&self) -> &TelegramSink {
        &self.sink
    }

    /// Refuses, before any download, an object that cannot be fetched whole: a part over
    /// the cloud Bot API's download limit, or one whose bot is no longer configured.
    pub(super) fn check(&self, plan: &Plan) -> Result<(), ObjectError> {
        check_download_limit(plan, self.sink.endpoint())?;
        check_bots(plan, &self.sink)
    }

    /// Locates, downloads and checks every part of `plan` (checked by
    /// [`Downloader::check`]) and sends them to `pieces` in order. Stops at the first part
    /// that fails, at a signal, or when the receiver is gone (its owner says why).
    pub(super) async fn fetch(
        &self,
        plan: &Plan,
        progress: &Progress,
        shutdown: &Shutdown,
        pieces: mpsc::Sender<Piece>,
    ) -> Result<(), ObjectError> {
        let count = plan.parts.len();
        let mut running = FuturesUnordered::new();
        let mut done: BTreeMap<usize, Piece> = BTreeMap::new();
        let mut next_to_send = 0;
        let mut started = 0;
        loop {
            while let Some(piece) = done.remove(&next_to_send) {
                if pieces.send(piece).await.is_err() {
                    // The writer stopped on its own (a wrong identity, a full disk): what
                    // it returns says why.
                    return Ok(());
                }
                next_to_send += 1;
            }
            if next_to_send == count {
                return Ok(());
            }
            if let Some(signal) = shutdown.requested() {
                return Err(ObjectError::Run(Error::Interrupted { signal }));
            }
            tokio::select! {
                slot = self.part_files.clone().acquire_owned(), if started < count => {
                    let slot = slot.map_err(closed)?;
                    running.push(self.fetch_part(plan, started, slot, progress));
                    started += 1;
                }
                Some(fetched) = running.next(), if !running.is_empty() => {
                    let (idx, piece) = fetched?;
                    done.insert(idx, piece);
                }
            }
        }
    }

    async fn fetch_part(
        &self,
        plan: &Plan,
        idx: usize,
        slot: OwnedSemaphorePermit,
        progress: &Progress,
    ) -> Result<(usize, Piece), ObjectError> {
        let part = &plan.parts[idx];
        let _download = self.downloads.acquire().await.map_err(closed)?;
        let file = locate_part(&self.sink, plan, part).await?;
        match &file.source {
            FileSource::Local(path) => {
                fetch_checked(&self.sink, plan, part, &file, progress, |_| Ok(())).await?;
                Ok((idx, Piece::path(PathBuf::from(path), slot)))
            }
            FileSource::Remote(_) => {
                // A part file that cannot be written stops the restore half-way, like a
                // write of the output that fails (`join`): what was asked could not be
                // finished (exit 1); what finished stays.
                let mut tmp = self.temp_file("restore-")?;
                let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
                fetch_checked(&self.sink, plan, part, &file, progress, |chunk| out.write_all(chunk)).await?;
                out.flush().map_err(|e| ObjectError::Run(Error::failed(format!("cannot write a part file: {e}"))))?;
                drop(out);
                Ok((idx, Piece::temp(tmp, slot)))
            }
        }
    }
}

fn closed(_: tokio::sync::AcquireError) -> ObjectError {
    ObjectError::Run(Error::Internal("the download limiter was closed".into()))
}
