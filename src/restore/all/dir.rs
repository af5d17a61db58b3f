//! `restore --all --out DIR`: each object at `DIR/BUCKET/KEY`, written beside its name and
//! renamed into place once checked; an object already there and the same is not fetched.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::Digest;

use super::s3::join_error;
use super::{ObjectOutcome, Restored, Work};
use crate::crypt;
use crate::error::Error;
use crate::ledger::Delivery;
use crate::restore::fetch::PartCheck;
use crate::restore::join::{Output, hash_file, remove_stale_partials_in};
use crate::restore::paths::{create_dirs, object_path};
use crate::restore::{ObjectError, Plan, WriteTo, fetch_into};

/// Where an object goes: it is there already, or here.
pub(super) enum Placed {
    There(Restored),
    Write(PathBuf),
}

impl Work<'_> {
    pub(super) async fn to_dir(
        &self,
        dir: &Path,
        d: &Delivery,
        plan: &Plan,
    ) -> std::result::Result<Restored, ObjectError> {
        let suffix = if plan.encrypted && self.req.identity.is_none() { crypt::SUFFIX } else { "" };
        let path = match self.place_in_dir(dir, d, suffix, self.expected(plan)).await? {
            Placed::There(done) => return Ok(done),
            Placed::Write(path) => path,
        };
        let shown = path.display().to_string();
        let target = WriteTo::File { path, overwrite: true };
        let out = Output::open(&target).map_err(|e| ObjectError::Object(e.to_string()))?;
        let (joined, identity) = (plan.clone(), self.req.identity.clone());
        let (out, written) = fetch_into(self.downloader, plan, self.progress, self.shutdown, move |pieces| {
            let mut out = out;
            let written = out.write(pieces, &joined, identity.as_deref());
            (out, written)
        })
        .await?;
        written.map_err(join_error)?;
        out.commit().map_err(|e| ObjectError::Object(e.to_string()))?;
        Ok((ObjectOutcome::Restored, Some(shown)))
    }

    /// Where object `d` goes under `dir` (with `suffix`), its directories made: already
    /// there and the same as `expected` (size, SHA-256), or a path to write (what is there
    /// and differs is replaced only with `--force`).
    pub(super) async fn place_in_dir(
        &self,
        dir: &Path,
        d: &Delivery,
        suffix: &str,
        expected: Option<(u64, String)>,
    ) -> std::result::Result<Placed, ObjectError> {
        let (dir, d, suffix) = (dir.to_path_buf(), d.clone(), suffix.to_string());
        let (cleaned, force) = (self.cleaned.clone(), self.req.force);
        tokio::task::spawn_blocking(move || place(&dir, &d, &suffix, expected.as_ref(), &cleaned, force))
            .await
            .map_err(|e| ObjectError::Run(Error::Internal(format!("a file task failed: {e}"))))?
    }
}

/// [`Work::place_in_dir`], on a blocking thread. The object's directory is made and
/// checked (no symbolic link on the way) and what an interrupted run left there removed
/// once per directory (`cleaned`), before this run writes anything there; the objects
/// after it in the same directory find it done.
pub(super) fn place(
    dir: &Path,
    d: &Delivery,
    suffix: &str,
    expected: Option<&(u64, String)>,
    cleaned: &Mutex<HashSet<PathBuf>>,
    force: bool,
) -> std::result::Result<Placed, ObjectError> {
    let o = &d.object;
    let path = object_path(dir, &o.bucket, &o.key, suffix)
        .ok_or_else(|| ObjectError::Object("its path would be longer than the filesystem takes".into()))?;
    let shown = path.display().to_string();
    if let Some(parent) = path.parent() {
        // Held while the directory is made and cleaned: no object writes there before.
        let mut cleaned = cleaned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !cleaned.contains(parent) {
            create_dirs(dir, &path).map_err(ObjectError::Object)?;
            remove_stale_partials_in(parent);
            cleaned.insert(parent.to_path_buf());
        }
    }
    match presence(&path, expected).map_err(ObjectError::Object)? {
        Presence::Absent => Ok(Placed::Write(path)),
        Presence::Same => Ok(Placed::There((ObjectOutcome::AlreadyThere, Some(shown)))),
        Presence::Differs(_) if force => Ok(Placed::Write(path)),
        Presence::Differs(why) => Err(ObjectError::Object(format!("{shown} {why}; --force replaces it"))),
    }
}

/// What is at an object's path already.
enum Presence {
    Absent,
    /// The same size and SHA-256.
    Same,
    Differs(String),
}

fn presence(path: &Path, expected: Option<&(u64, String)>) -> std::result::Result<Presence, String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Presence::Absent),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let Some((size, sha)) = expected else {
        return Ok(Presence::Differs("exists, and cannot be checked without downloading the object".into()));
    };
    if meta.len() != *size {
        return Ok(Presence::Differs(format!("exists with {} bytes, not {size}", meta.len())));
    }
    let mut check = PartCheck::new();
    hash_file(path, &mut check).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if &hex::encode(check.hasher.finalize()) == sha {
        Ok(Presence::Same)
    } else {
        Ok(Presence::Differs("exists with other content".into()))
    }
}
