//! The way back: parts fetched from Telegram (or given by hand), each checked against its
//! SHA-256, joined, decrypted when encrypted, and written atomically.
//!
//! Every part is located with `getFile` before anything is downloaded, so a part Telegram
//! no longer knows, or one over the Bot API's download limit, is named before any work.
//! Each part is then downloaded into a private temporary file and checked; only a checked
//! part reaches the writer thread, which joins the parts into the output (a temporary
//! file beside the requested name, renamed into place once everything checked out, or
//! stdout). Memory stays bounded by the read buffers; disk by two parts.

mod fetch;
mod join;
pub mod plan;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::config::Config;
use crate::crypt;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, State};
use crate::progress::Progress;
use crate::shell::quote_path;
use crate::shutdown::Shutdown;
use crate::sink::{FileSource, TelegramSink};
use fetch::fetch_checked;
pub use fetch::{CLOUD_DOWNLOAD_LIMIT, check, check_download_limit, locate_all};
pub use join::join;
use join::{Output, Piece};
pub use plan::{Plan, PlanPart};

/// Where a rebuilt object goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    File { path: PathBuf, overwrite: bool },
}

impl Target {
    /// `--out`: `-` for stdout, an existing directory to write `name` into, or a path;
    /// without it, `name` in the current directory. An existing file is only replaced
    /// with `overwrite`.
    pub fn resolve(out: Option<&Path>, name: &str, overwrite: bool) -> Result<Target> {
        let path = match out {
            Some(p) if p == Path::new("-") => return Ok(Target::Stdout),
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
        Ok(Target::File { path, overwrite })
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Stdout => "stdout".into(),
            Target::File { path, .. } => path.display().to_string(),
        }
    }
}

impl Target {
    /// Whether the object goes to stdout (so reports go to stderr).
    pub fn is_stdout(&self) -> bool {
        matches!(self, Target::Stdout)
    }
}

/// What a restore or join wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    pub object: String,
    pub output: String,
    pub bytes: u64,
    pub sha256: String,
    pub parts: usize,
    pub decrypted: bool,
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
pub enum ObjectError {
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

/// Settings of one restore.
pub struct Options<'a> {
    /// An age identity file: decrypt an encrypted object.
    pub identity: Option<&'a Path>,
    /// Where downloaded parts wait to be joined.
    pub tmp_dir: &'a Path,
    pub progress: &'a Progress,
    pub shutdown: &'a Shutdown,
}

/// Fetches, checks and joins every part of `plan` into `target`.
pub async fn restore(sink: &TelegramSink, plan: &Plan, target: &Target, opts: &Options<'_>) -> Result<Restored> {
    let located = locate_all(sink, plan).await?;
    let mut out = Output::open(target)?;
    let (tx, rx) = mpsc::sync_channel::<Piece>(1);
    let writer = {
        let plan = plan.clone();
        let identity = opts.identity.map(Path::to_path_buf);
        std::thread::spawn(move || {
            let result = out.write(rx.into_iter(), &plan, identity.as_deref());
            (out, result)
        })
    };

    let mut failure = None;
    for (part, file) in plan.parts.iter().zip(&located) {
        if let Some(signal) = opts.shutdown.requested() {
            failure = Some(ObjectError::Run(Error::Interrupted { signal }));
            break;
        }
        let piece = match &file.source {
            FileSource::Local(path) => fetch_checked(sink, plan, part, file, opts.progress, |_| Ok(()))
                .await
                .map(|()| Piece::Path(path.clone())),
            FileSource::Remote(_) => match tempfile::Builder::new().prefix("restore-").tempfile_in(opts.tmp_dir) {
                Ok(mut tmp) => fetch_checked(sink, plan, part, file, opts.progress, |chunk| tmp.write_all(chunk))
                    .await
                    .and_then(|()| {
                        tmp.flush().map_err(|e| ObjectError::Object(format!("cannot write a part file: {e}")))?;
                        Ok(Piece::Temp(tmp))
                    }),
                Err(e) => Err(ObjectError::Run(Error::local(format!(
                    "cannot create a part file in {}: {e}; set `tmp_dir` (TGPLOY_TMP_DIR)",
                    opts.tmp_dir.display()
                )))),
            },
        };
        match piece {
            // The writer stopped early (it failed): its error says why.
            Ok(piece) => {
                if tokio::task::block_in_place(|| tx.send(piece)).is_err() {
                    break;
                }
            }
            Err(f) => {
                failure = Some(f);
                break;
            }
        }
    }
    drop(tx);
    let joined = tokio::task::block_in_place(|| writer.join());
    let (out, result) = joined.map_err(|_| Error::Internal("the writer thread panicked".to_string()))?;
    if let Some(f) = failure {
        // Dropping `out` removes the temporary file: nothing appears under the name.
        drop(out);
        return Err(f.into());
    }
    let (bytes, sha256) = result?;
    out.commit()?;
    Ok(Restored {
        object: plan.label.clone(),
        output: target.describe(),
        bytes,
        sha256,
        parts: plan.parts.len(),
        decrypted: opts.identity.is_some(),
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
    pub out: Option<&'a Path>,
    pub identity: Option<&'a Path>,
    pub force: bool,
    /// A second-factor code, needed once one is enrolled.
    pub otp: Option<&'a str>,
}

/// `tgploy restore`: one object, from the ledger or from its manifest alone; returns
/// what was written and where.
pub async fn restore_one(cfg: &Config, req: &Request<'_>) -> Result<(Restored, Target)> {
    let plan = tokio::task::block_in_place(|| plan_for(cfg, req))?;
    let identity = req.identity;
    if let Some(path) = identity {
        if !plan.encrypted {
            return Err(Error::usage(format!("{} is not encrypted; leave out --identity", plan.label)));
        }
        crypt::read_identities(path).map_err(Error::local)?;
    }
    let name = if plan.encrypted && identity.is_none() { plan.stored_name() } else { plan.file_name.clone() };
    let target = Target::resolve(req.out, &name, req.force)?;
    let sink = TelegramSink::downloader(&cfg.require_bot_token()?, &cfg.api_url, 0)?;
    let tmp = crate::private::temp_dir(cfg.tmp_dir.as_deref())?;
    let progress = Progress::bytes(plan.size, true);
    progress.set_message(plan.label.clone());
    let shutdown = Shutdown::new();
    shutdown.listen();
    let opts = Options { identity, tmp_dir: tmp.path(), progress: &progress, shutdown: &shutdown };
    let result = restore(&sink, &plan, &target, &opts).await;
    progress.finish();
    let restored = result?;
    if plan.encrypted
        && identity.is_none()
        && let Target::File { path, .. } = &target
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
fn plan_for(cfg: &Config, req: &Request<'_>) -> Result<Plan> {
    let ledger = match cfg.database_path() {
        Ok(path) if path.exists() => Some(Ledger::open(&path)?),
        _ => None,
    };
    if let Some(ledger) = &ledger {
        crate::totp::require(ledger, req.otp, "restore")?;
    }
    match (req.object, req.manifest) {
        (_, Some(manifest)) => Plan::from_manifest_file(manifest),
        (Some(object), None) => plan_from_ledger(cfg, ledger.as_ref(), object, req.etag),
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
    Plan::from_delivery(d, &ledger.parts(d.id)?)
}

/// `tgploy join`: parts downloaded by hand, checked against their manifest when given.
pub fn join_files(
    parts: &[PathBuf],
    manifest: Option<&Path>,
    out: &Path,
    identity: Option<&Path>,
    force: bool,
) -> Result<(Restored, Target)> {
    let plan = manifest.map(Plan::from_manifest_file).transpose()?;
    if let Some(path) = identity {
        if let Some(plan) = &plan
            && !plan.encrypted
        {
            return Err(Error::usage(format!("{} is not encrypted; leave out --identity", plan.label)));
        }
        crypt::read_identities(path).map_err(Error::local)?;
    }
    let target = Target::resolve(Some(out), "", force)?;
    let restored = join(parts, plan.as_ref(), &target, identity)?;
    Ok((restored, target))
}
