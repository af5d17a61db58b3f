//! Files Telegram holds: located with `getFile` and downloaded, each through the bot that
//! received it (file ids belong to their bot).
//!
//! A download link lives for at least an hour after its `getFile`, and no longer is
//! promised: the Bot API server keeps the file in its cache for a while, then the same
//! path is no longer served. So a file is located right before it is downloaded, and a
//! refused download is located again before anything is concluded: only `getFile` itself
//! can say that a file id is unknown to its bot.

use std::path::{Path, PathBuf};

use super::{Call, SinkError, TelegramSink, Through};

/// Where the bytes of a file Telegram holds can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileSource {
    /// Over HTTP from the Bot API (`/file/bot<token>/<path>`).
    Remote(String),
    /// From this machine's disk: a self-hosted Bot API server (`--local`) answers
    /// `getFile` with an absolute path.
    Local(PathBuf),
}

/// A file located with `getFile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteFile {
    pub(crate) size: u64,
    pub(crate) source: FileSource,
    /// The bot (by index) that located it, and downloads it.
    bot: usize,
    /// Its file id, to locate it again when its link is refused.
    file_id: String,
}

impl TelegramSink {
    /// The bot with this id, by index; `None` when its token is not configured. Files
    /// recorded without a bot (before tgploy recorded it) belong to the first bot.
    pub(crate) fn bot_index(&self, bot_id: Option<i64>) -> Option<usize> {
        match bot_id {
            None => Some(0),
            Some(id) => self.bots.iter().position(|b| b.id == id),
        }
    }

    /// Asks Telegram where a file is (`getFile`), through the bot that received it. Call it
    /// right before [`TelegramSink::fetch`]: the link it gives is promised for an hour.
    pub(crate) async fn locate(&self, bot_id: Option<i64>, file_id: &str) -> Result<RemoteFile, SinkError> {
        let bot = self.bot_index(bot_id).ok_or(SinkError::UnknownBot(bot_id.unwrap_or_default()))?;
        self.locate_with(bot, file_id).await
    }

    async fn locate_with(&self, bot: usize, file_id: &str) -> Result<RemoteFile, SinkError> {
        let (file, _): (teloxide::types::File, _) =
            self.request(Call::new("getFile").param("file_id", file_id), Through::Bot(bot)).await?;
        let path = Path::new(&file.path);
        let source = if path.is_absolute() {
            if !path.exists() {
                return Err(SinkError::Io(format!(
                    "the Bot API server at {} keeps this file at {}, which does not exist on this machine; \
                     run the restore on the server's host (or mount its files at the same path)",
                    self.endpoint(),
                    path.display()
                )));
            }
            FileSource::Local(path.to_path_buf())
        } else {
            FileSource::Remote(file.path.clone())
        };
        Ok(RemoteFile { size: u64::from(file.meta.size), source, bot, file_id: file_id.to_string() })
    }

    /// Streams a located file into `sink`, chunk by chunk; returns the bytes read. When the
    /// download is refused before its first byte (a link past its lifetime answers 404),
    /// the file is located again and the download tried once more: a `getFile` that
    /// refuses then says the file id is unknown; a fresh link refused too is
    /// [`SinkError::LinkRefused`].
    pub(crate) async fn fetch(
        &self,
        file: &RemoteFile,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, SinkError> {
        match self.fetch_once(file, &mut sink).await {
            Err(SinkError::LinkRefused { status, .. }) => {
                tracing::info!(
                    "the download link of a file of bot {} was refused (HTTP {status}); asking getFile again",
                    self.bots[file.bot].id
                );
                let fresh = self.locate_with(file.bot, &file.file_id).await?;
                self.fetch_once(&fresh, &mut sink).await.map_err(|e| match e {
                    SinkError::LinkRefused { status, .. } => SinkError::LinkRefused { status, fresh: true },
                    e => e,
                })
            }
            other => other,
        }
    }

    async fn fetch_once(
        &self,
        file: &RemoteFile,
        sink: &mut impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, SinkError> {
        let write_error = |e: std::io::Error| SinkError::Io(format!("cannot write what was downloaded: {e}"));
        let mut total = 0u64;
        match &file.source {
            FileSource::Local(path) => {
                use tokio::io::AsyncReadExt;
                let mut f = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| SinkError::Io(format!("cannot read {}: {e}", path.display())))?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = f
                        .read(&mut buf)
                        .await
                        .map_err(|e| SinkError::Io(format!("cannot read {}: {e}", path.display())))?;
                    if n == 0 {
                        break;
                    }
                    sink(&buf[..n]).map_err(write_error)?;
                    total += n as u64;
                }
            }
            FileSource::Remote(path) => {
                let call = Call::new("download");
                let api = &self.bots[file.bot].api;
                let (mut response, _) = self.retrying(&call, Through::Bot(file.bot), |_| api.download(path)).await?;
                loop {
                    let chunk = response.chunk().await.map_err(|e| SinkError::Unreachable {
                        endpoint: self.endpoint().to_string(),
                        reason: format!("the download broke off: {}", api.network_error(&e)),
                    })?;
                    let Some(chunk) = chunk else { break };
                    sink(&chunk).map_err(write_error)?;
                    total += chunk.len() as u64;
                }
            }
        }
        Ok(total)
    }
}
