//! The way back: parts fetched from Telegram (or given by hand), each checked against its
//! SHA-256, joined, decrypted when encrypted, and written atomically.
//!
//! A part over the Bot API's download limit, or one of a bot no longer configured, is
//! named before any work. Parts are then located (`getFile`, right before each download:
//! its link lives an hour) and downloaded `--jobs` at a time into private temporary
//! files and checked ([`download`]); only checked parts reach the
//! writer, in order, which joins them into the output (a temporary file beside the
//! requested name, renamed into place once everything checked out, or stdout). Memory
//! stays bounded by the read buffers; disk by `--jobs` + 1 parts.

pub mod all;
mod download;
mod fetch;
mod join;
mod paths;
pub(crate) mod plan;
mod unpack;

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::crypt;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, State};
use crate::progress::Progress;
use crate::shell::quote_path;
use crate::shutdown::Shutdown;
pub(crate) use download::Downloader;
pub(crate) use join::join;
use join::{Output, Piece, write_stream};
pub(crate) use paths::{object_path, safe_name};
pub(crate) use plan::Plan;
pub use unpack::{Unpacked, unpack};

/// Where a rebuilt object goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteTo {
    /// Standard output.
    Stdout,
    /// A file.
    File {
        /// The file's path.
        path: PathBuf,
        /// Whether an existing file there may be replaced.
        overwrite: bool,
    },
}

impl WriteTo {
    /// `--out`: `-` for stdout, an existing directory to write `name` into, or a path;
    /// without it, `name` in the current directory. An existing file is only replaced
    /// with `overwrite`.
    pub(crate) fn resolve(out: Option<&Path>, name: &str, overwrite: bool) -> Result<WriteTo> {
        let path = match out {
            Some(p) if p == Path::new("-") => return Ok(WriteTo::Stdout),
            Some(p) if p.is_dir() => p.join(name),
            Some(p) => p.to_path_buf(),
            None => PathBuf::from(name),
        };
        if path.exists() && !overwrite {
            return Err(Error::usage(format!(
                "{} already exists; choose another --out, or pass --force to replace it",
                path.display()
            )));
        }
        Ok(WriteTo::File { path, overwrite })
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            WriteTo::Stdout => "stdout".into(),
            WriteTo::File { path, .. } => path.display().to_string(),
        }
    }
}

impl WriteTo {
    /// Whether the object goes to stdout (so reports go to stderr).
    pub fn is_stdout(&self) -> bool {
        matches!(self, WriteTo::Stdout)
    }
}

/// What a restore or join wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    pub(crate) object: String,
    pub(crate) output: String,
    pub(crate) bytes: u64,
    pub(crate) sha256: String,
    pub(crate) parts: usize,
    pub(crate) decrypted: bool,
}

impl Restored {
    /// The summary for people, or JSON.
    pub fn render(&self, json: bool) -> Result<String> {
        if json {
            return serde_json::to_string_pretty(self)
                .map(|j| j + "\n")
                .map_err(|e| Error::Internal(format!("cannot encode JSON: {e}")));
        }
        Ok(format!(
            "restored {} to {} ({} bytes{}, SHA-256 {}, {} part{} checked)\n",
            self.object,
            self.output,
            self.bytes,
            if self.decrypted { ", decrypted" } else { "" },
            self.sha256,
            self.parts,
            if self.parts == 1 { "" } else { "s" }
        ))
    }
}

/// Why one object could not be rebuilt or checked.
#[derive(Debug)]
pub(crate) enum ObjectError {
    /// A part is missing, corrupt or cannot be fetched: this object fails, the message
    /// names the part.
    Object(String),
    /// Nothing more can be done in this run (Telegram unreachable, token refused, …).
    Run(Error),
}

impl From<ObjectError> for Error {
    fn from(f: ObjectError) -> Self {
        match f {
            ObjectError::Object(msg) => Error::Failed(msg),
            ObjectError::Run(e) => e,
        }
    }
}

/// Downloads `plan` through `downloader` and hands its checked parts, in order, to
/// `consume`, which runs on the blocking pool (it writes, hashes, decrypts). What
/// `consume` returns comes back; a part that fails, or a signal, ends the download and
/// is the error (the consumer then sees the stream end early and is dropped).
async fn fetch_into<R: Send + 'static>(
    downloader: &Downloader,
    plan: &Plan,
    progress: &Progress,
    shutdown: &Shutdown,
    consume: impl FnOnce(&mut dyn Iterator<Item = Piece>) -> R + Send + 'static,
) -> Result<R, ObjectError> {
    downloader.check(plan)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Piece>(1);
    let consumer = tokio::task::spawn_blocking(move || consume(&mut std::iter::from_fn(move || rx.blocking_recv())));
    let fetched = downloader.fetch(plan, progress, shutdown, tx).await;
    let consumed = consumer.await.map_err(|e| ObjectError::Run(Error::Internal(format!("the writer failed: {e}"))))?;
    fetched.map(|()| consumed)
}

/// Downloads every part and checks it and the whole stream, writing nothing: the restore
/// drill of `verify`.
pub(crate) async fn check(
    downloader: &Downloader,
    plan: &Plan,
    progress: &Progress,
    shutdown: &Shutdown,
) -> Result<(), ObjectError> {
    let joined = plan.clone();
    let written = fetch_into(downloader, plan, progress, shutdown, move |pieces| {
        write_stream(pieces, &mut std::io::sink(), &joined, None)
    })
    .await?;
    written.map(|_| ()).map_err(|e| ObjectError::Object(e.to_string()))
}

/// Fetches, checks and joins every part of `plan` into `target`, decrypting with the
/// age identity in `identity` when given.
pub(crate) async fn restore(
    downloader: &Downloader,
    plan: &Plan,
    target: &WriteTo,
    identity: Option<&Path>,
    progress: &Progress,
    shutdown: &Shutdown,
) -> Result<Restored> {
    let out = Output::open(target)?;
    let (joined, id) = (plan.clone(), identity.map(Path::to_path_buf));
    let (out, written) = fetch_into(downloader, plan, progress, shutdown, move |pieces| {
        let mut out = out;
        let written = out.write(pieces, &joined, id.as_deref());
        (out, written)
    })
    .await?;
    let (bytes, sha256) = written?;
    out.commit()?;
    Ok(Restored {
        object: plan.label.clone(),
        output: target.describe(),
        bytes,
        sha256,
        parts: plan.parts.len(),
        decrypted: identity.is_some(),
    })
}

/// What `tgploy restore` asks for.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// `BUCKET/KEY`, found in the ledger.
    pub object: Option<&'a str>,
    /// That version rather than the latest.
    pub etag: Option<&'a str>,
    /// A manifest instead of the ledger.
    pub manifest: Option<&'a Path>,
    /// `--out`: a file, a directory to write into, or `-` for stdout; `None` for the object's name in
    /// the current directory.
    pub out: Option<&'a Path>,
    /// An age identity file that decrypts an encrypted object.
    pub identity: Option<&'a Path>,
    /// Replace the output if it exists.
    pub force: bool,
    /// A second-factor code, needed once one is enrolled.
    pub otp: Option<&'a str>,
    /// Parts downloaded at once.
    pub jobs: usize,
}

/// `tgploy restore`: one object, from the ledger or from its manifest alone; returns
/// what was written and where.
pub async fn restore_one(cfg: &Config, req: &Request<'_>) -> Result<(Restored, WriteTo)> {
    let (owned_cfg, object, etag) = (cfg.clone(), req.object.map(str::to_owned), req.etag.map(str::to_owned));
    let (manifest, otp) = (req.manifest.map(Path::to_path_buf), req.otp.map(str::to_owned));
    let plan = crate::ledger::off_runtime(move || {
        plan_for(&owned_cfg, object.as_deref(), etag.as_deref(), manifest.as_deref(), otp.as_deref())
    })
    .await?;
    let identity = req.identity;
    if let Some(path) = identity {
        if !plan.encrypted {
            return Err(Error::usage(format!("{} is not encrypted; leave out --identity", plan.label)));
        }
        crypt::read_identities(path).map_err(Error::local)?;
    }
    if plan.member.is_some() && plan.encrypted && identity.is_none() {
        return Err(Error::usage(format!(
            "{} travelled in an encrypted pack ({}), from which it comes out only decrypted: give --identity KEY",
            plan.label,
            plan.stored_name()
        )));
    }
    let name = if plan.encrypted && identity.is_none() { plan.stored_name() } else { plan.file_name.clone() };
    let target = WriteTo::resolve(req.out, &name, req.force)?;
    let downloader = Downloader::for_config(cfg, req.jobs)?;
    let progress = Progress::bytes(plan.size, true);
    progress.set_message(plan.label.clone());
    let shutdown = Shutdown::new();
    shutdown.listen();
    let result = restore(&downloader, &plan, &target, identity, &progress, &shutdown).await;
    progress.finish();
    let restored = result?;
    if plan.encrypted
        && identity.is_none()
        && let WriteTo::File { path, .. } = &target
    {
        tracing::warn!(
            "{} is encrypted: wrote the age file; decrypt it with `age -d -i KEY {} > {}`, or restore with --identity",
            plan.label,
            quote_path(&path.to_string_lossy()),
            quote_path(&plan.file_name)
        );
    }
    Ok((restored, target))
}

/// The plan of a restore: from the manifest, or from the ledger (behind the second
/// factor: restoring reveals backups). In the disaster case there is no ledger, and so
/// no second factor to ask for.
/// The plan of the object asked for: from its manifest, or from the ledger (after the
/// second factor, once one is enrolled). Opens the ledger: run it off the runtime.
fn plan_for(
    cfg: &Config,
    object: Option<&str>,
    etag: Option<&str>,
    manifest: Option<&Path>,
    otp: Option<&str>,
) -> Result<Plan> {
    let ledger = match cfg.database_path() {
        Ok(path) if path.exists() => Some(Ledger::open(&path)?),
        _ => None,
    };
    if let Some(ledger) = &ledger {
        crate::totp::require(ledger, otp, "restore")?;
    }
    match (object, manifest) {
        (_, Some(manifest)) => Plan::from_manifest_file(manifest),
        (Some(object), None) => plan_from_ledger(cfg, ledger.as_ref(), object, etag),
        (None, None) => Err(Error::usage("name the object (BUCKET/KEY) or give --manifest")),
    }
}

fn plan_from_ledger(cfg: &Config, ledger: Option<&Ledger>, object: &str, etag: Option<&str>) -> Result<Plan> {
    let Some((bucket, key)) = object.split_once('/').filter(|(b, k)| !b.is_empty() && !k.is_empty()) else {
        return Err(Error::usage(format!("`{object}` is not BUCKET/KEY (for example backups/db/dump.sql.gz)")));
    };
    let Some(ledger) = ledger else {
        return Err(Error::config(format!(
            "there is no ledger at {}: point DATABASE_PATH at a ledger snapshot (`tgploy ledger backup`), or restore \
             from the object's manifest with --manifest NAME.tgploy.json",
            cfg.database_path()?.display()
        )));
    };
    let versions = ledger.versions_of(bucket, key, etag)?;
    let version = etag.map(|e| format!(" with ETag {e}")).unwrap_or_default();
    let Some(d) = versions.first() else {
        return Err(Error::usage(format!(
            "the ledger has no delivery of {object}{version}; `tgploy files --bucket {bucket}` lists what was delivered"
        )));
    };
    if d.state != State::Sent {
        return Err(Error::failed(format!(
            "{object} (ETag {}) was never delivered completely (state {}); there is nothing whole to restore",
            d.object.etag,
            d.state.as_str()
        )));
    }
    let pack = match d.pack_id {
        Some(id) => ledger.pack(id)?,
        None => None,
    };
    Plan::from_delivery(d, &ledger.parts(d.id)?, pack.as_ref())
}

/// `tgploy join`: parts downloaded by hand, checked against their manifest when given.
pub fn join_files(
    parts: &[PathBuf],
    manifest: Option<&Path>,
    out: &Path,
    identity: Option<&Path>,
    force: bool,
) -> Result<(Restored, WriteTo)> {
    let plan = manifest.map(Plan::from_manifest_file).transpose()?;
    if let Some(path) = identity {
        if let Some(plan) = &plan
            && !plan.encrypted
        {
            return Err(Error::usage(format!("{} is not encrypted; leave out --identity", plan.label)));
        }
        crypt::read_identities(path).map_err(Error::local)?;
    }
    let target = WriteTo::resolve(Some(out), "", force)?;
    let restored = join(parts, plan.as_ref(), &target, identity)?;
    Ok((restored, target))
}
