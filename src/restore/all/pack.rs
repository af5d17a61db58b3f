//! `restore --all` of objects that travelled in packs: each pack is downloaded once, for
//! all the objects of it the selection takes, into a private temporary file (the tar,
//! decrypted when the pack is encrypted, checked against the pack's SHA-256 on the way),
//! and every member that is not at its destination already is copied out of it, checked
//! against its own size and SHA-256, and written like any other object. A pack none of
//! whose selected members is missing is not downloaded at all.

use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::Digest;

use super::dir::{Placed, place};
use super::s3::{join_error, s3_error};
use super::{Done, ObjectOutcome, Place, Restored, Work};
use crate::error::{Error, Result};
use crate::ledger::{Delivery, Ledger, Pack, Selection};
use crate::restore::fetch::PartCheck;
use crate::restore::join::{Output, sync_dirs, write_stream};
use crate::restore::plan::Member;
use crate::restore::{ObjectError, Plan, WriteTo, fetch_into};
use crate::source::upload::Upload;

/// Where a member of a pack goes: it is there already, or to a file, or to S3.
enum Destination {
    There(Restored),
    File(std::path::PathBuf),
    S3,
}

impl Work<'_> {
    /// Restores the members of pack `pack_id` that `selection` takes. An `Err` is the
    /// ledger failing, which ends the run.
    pub(super) async fn restore_pack(&self, pack_id: i64, selection: &Selection) -> Result<Vec<Done>> {
        let (pack, members) = members_of(self.ledger, pack_id, selection).await?;
        let mut done = Vec::new();
        let Some(pack) = pack else {
            let why = format!("the ledger names pack {pack_id}, which it does not hold");
            return Ok(members.into_iter().map(|(d, _)| (d, Err(ObjectError::Object(why.clone())))).collect());
        };
        let mut members_at = Vec::new();
        for (d, plan) in members {
            let member = match plan {
                Ok(Plan { member: Some(member), .. }) => member,
                Ok(_) => {
                    let why = "the ledger does not say where it lies in its pack".to_string();
                    done.push((d, Err(ObjectError::Object(why))));
                    continue;
                }
                Err(e) => {
                    done.push((d, Err(ObjectError::Object(e.to_string()))));
                    continue;
                }
            };
            if pack.encrypted && self.req.identity.is_none() {
                let why = format!(
                    "it travelled in the encrypted pack {}, and comes back only decrypted: give the age identity \
                     with --identity FILE",
                    pack.file_name
                );
                done.push((d, Err(ObjectError::Object(why))));
                continue;
            }
            members_at.push((d, member));
        }
        let mut wanted = Vec::new();
        let placed = self.place_members(&members_at).await?;
        for (placed, (d, member)) in placed.into_iter().zip(members_at) {
            match placed {
                Ok(Destination::There(there)) => done.push((d, Ok(there))),
                Ok(to) => wanted.push((d, member, to)),
                Err(e) => done.push((d, Err(e))),
            }
        }
        if wanted.is_empty() {
            self.progress.forget(pack.size);
            return Ok(done);
        }
        let tar = match self.fetch_pack(&pack).await {
            Ok(tar) => tar,
            Err(ObjectError::Object(why)) => {
                done.extend(wanted.into_iter().map(|(d, _, _)| (d, Err(ObjectError::Object(why.clone())))));
                return Ok(done);
            }
            Err(run) => {
                // The run ends: the members not begun are left for the rerun.
                if let Some((d, _, _)) = wanted.into_iter().next() {
                    done.push((d, Err(run)));
                }
                return Ok(done);
            }
        };
        let (to_files, to_s3): (Vec<_>, Vec<_>) =
            wanted.into_iter().partition(|(_, _, to)| matches!(to, Destination::File(_)));
        done.extend(self.members_to_files(tar.path(), to_files).await?);
        for (d, member, _) in to_s3 {
            let result = self.member_to_s3(tar.path(), &d, &member).await;
            let stop = matches!(result, Err(ObjectError::Run(_)));
            done.push((d, result));
            if stop {
                break;
            }
        }
        Ok(done)
    }

    /// Where each member goes, its directories or bucket made: into a directory, all of
    /// them in one trip to a blocking thread.
    async fn place_members(
        &self,
        members: &[(Delivery, Member)],
    ) -> Result<Vec<std::result::Result<Destination, ObjectError>>> {
        match &self.target {
            Place::Dir(dir) => {
                let (dir, cleaned, force) = (dir.clone(), self.cleaned.clone(), self.req.force);
                let members: Vec<(Delivery, (u64, String))> =
                    members.iter().map(|(d, m)| (d.clone(), (m.size, m.sha256.clone()))).collect();
                let placed = tokio::task::spawn_blocking(move || {
                    members
                        .iter()
                        .map(|(d, expected)| match place(&dir, d, "", Some(expected), &cleaned, force)? {
                            Placed::There(there) => Ok(Destination::There(there)),
                            Placed::Write(path) => Ok(Destination::File(path)),
                        })
                        .collect()
                })
                .await
                .map_err(|e| Error::Internal(format!("a file task failed: {e}")))?;
                Ok(placed)
            }
            Place::S3 { source, buckets } => {
                let mut placed = Vec::with_capacity(members.len());
                for (d, m) in members {
                    placed.push(match self.place_in_s3(source, buckets, d, &m.sha256).await {
                        Ok(Some(there)) => Ok(Destination::There(there)),
                        Ok(None) => Ok(Destination::S3),
                        Err(e) => Err(e),
                    });
                }
                Ok(placed)
            }
        }
    }

    /// Downloads the pack's document, checks it, and keeps its tar (decrypted) in a
    /// private temporary file.
    async fn fetch_pack(&self, pack: &Pack) -> std::result::Result<tempfile::NamedTempFile, ObjectError> {
        let plan = Plan::of_pack(pack);
        let tmp = self.downloader.temp_file("pack-")?;
        let file =
            tmp.reopen().map_err(|e| ObjectError::Run(Error::failed(format!("cannot open a pack file: {e}"))))?;
        let (joined, identity) = (plan.clone(), self.req.identity.clone());
        let written = fetch_into(self.downloader, &plan, self.progress, self.shutdown, move |pieces| {
            let mut out = BufWriter::with_capacity(1 << 20, file);
            write_stream(pieces, &mut out, &joined, identity.as_deref())
        })
        .await?;
        written.map_err(join_error)?;
        Ok(tmp)
    }

    /// Takes members out of the downloaded tar at `tar` into their files, each checked,
    /// written beside its name and renamed; each directory made durable once. Up to
    /// [`WRITERS`] blocking threads share the members, each a run of them in tar order
    /// (a new file costs a filesystem round trip or two, which threads overlap), and no
    /// more than `--jobs` such threads write at once in the whole run (more only queue
    /// at the disk).
    async fn members_to_files(&self, tar: &Path, members: Vec<(Delivery, Member, Destination)>) -> Result<Vec<Done>> {
        let per_writer = members.len().div_ceil(WRITERS).max(MIN_PER_WRITER);
        let mut members = members.into_iter().peekable();
        let mut writers = Vec::new();
        while members.peek().is_some() {
            let run: Vec<_> = members.by_ref().take(per_writer).collect();
            let tar = tar.to_path_buf();
            let turn = self
                .writers
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::Internal("the writers' limiter was closed".into()))?;
            writers.push(tokio::task::spawn_blocking(move || {
                let _turn = turn;
                members_out(&tar, run)
            }));
        }
        let mut done = Vec::new();
        for writer in writers {
            done.extend(writer.await.map_err(|e| Error::Internal(format!("a file task failed: {e}")))?);
        }
        Ok(done)
    }

    async fn member_to_s3(
        &self,
        tar: &Path,
        d: &Delivery,
        member: &Member,
    ) -> std::result::Result<Restored, ObjectError> {
        let Place::S3 { source, .. } = &self.target else {
            return Err(ObjectError::Run(Error::Internal("a member for S3 without S3".into())));
        };
        let (path, m) = (tar.to_path_buf(), member.clone());
        // A member is small (below `pack.max_object_size`): read whole, checked, sent.
        let bytes = tokio::task::spawn_blocking(move || read_member(&path, &m))
            .await
            .map_err(|e| ObjectError::Run(Error::Internal(format!("a file task failed: {e}"))))?
            .map_err(ObjectError::Object)?;
        let mut upload = Upload::new(source, &d.object.bucket, &d.object.key, &member.sha256);
        if let Err(e) = upload.write(&bytes).await {
            upload.abort().await;
            return Err(s3_error(e));
        }
        self.finish_upload(source, d, upload).await
    }
}

/// Blocking threads that write one pack's members into files at once.
const WRITERS: usize = 4;
/// Fewer members than this are not worth a thread of their own.
const MIN_PER_WRITER: usize = 64;

/// [`Work::members_to_files`] for a run of `members`, on a blocking thread.
fn members_out(tar: &Path, members: Vec<(Delivery, Member, Destination)>) -> Vec<Done> {
    let mut tar = match std::fs::File::open(tar) {
        Ok(file) => file,
        Err(e) => {
            let why = format!("cannot read the downloaded pack: {e}");
            return members.into_iter().map(|(d, _, _)| (d, Err(ObjectError::Object(why.clone())))).collect();
        }
    };
    let mut dirs = std::collections::BTreeSet::new();
    let mut done = Vec::with_capacity(members.len());
    for (d, member, to) in members {
        let Destination::File(path) = to else { continue };
        let shown = path.display().to_string();
        let written = Output::open(&WriteTo::File { path, overwrite: true })
            .map_err(|e| ObjectError::Object(e.to_string()))
            .and_then(|mut out| {
                out.write_member(&mut tar, &member).map_err(join_error)?;
                out.commit_into(&mut dirs).map_err(|e| ObjectError::Object(e.to_string()))
            });
        done.push((d, written.map(|()| (ObjectOutcome::Restored, Some(shown)))));
    }
    sync_dirs(&dirs);
    done
}

/// Member `m`'s bytes from the tar at `tar`, checked.
fn read_member(tar: &Path, m: &Member) -> std::result::Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("cannot read the downloaded pack: {e}");
    let mut file = std::fs::File::open(tar).map_err(io)?;
    file.seek(SeekFrom::Start(m.offset)).map_err(io)?;
    let mut bytes = Vec::with_capacity(m.size as usize);
    file.take(m.size).read_to_end(&mut bytes).map_err(io)?;
    let mut check = PartCheck::new();
    check.update(&bytes);
    let (len, sha) = (check.len, hex::encode(check.hasher.finalize()));
    if len != m.size || sha != m.sha256 {
        return Err(format!(
            "its bytes in the pack are {len} bytes with SHA-256 {sha}, not the {} bytes, {} recorded",
            m.size, m.sha256
        ));
    }
    Ok(bytes)
}

/// The members of pack `pack_id` that `selection` takes, each with its plan.
async fn members_of(
    ledger: &std::sync::Arc<Ledger>,
    pack_id: i64,
    selection: &Selection,
) -> Result<(Option<Pack>, Vec<(Delivery, Result<Plan>)>)> {
    let selection = selection.clone();
    Ledger::blocking(ledger, move |l| {
        let pack = l.pack(pack_id)?;
        let members = l
            .pack_members(&selection, pack_id)?
            .into_iter()
            .map(|(d, parts)| {
                let plan = match &pack {
                    Some(pack) => Plan::from_delivery(&d, &parts, Some(pack)),
                    None => Err(Error::Failed(format!("pack {pack_id} is not in the ledger"))),
                };
                (d, plan)
            })
            .collect();
        Ok((pack, members))
    })
    .await
}
