//! `tgploy join --pack`: a pack downloaded by hand from the chat, checked against its own
//! index (every member's place, size and SHA-256), and its objects extracted under a
//! directory, each at its escaped `BUCKET/KEY`, written beside its name and renamed into
//! place once checked. An encrypted pack (`….tar.age`) is decrypted with `--identity`
//! into a private temporary file first: the index is at the end of the tar.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::Digest;

use super::WriteTo;
use super::fetch::PartCheck;
use super::join::{Output, hash_file, remove_stale_partials_in};
use super::paths::create_dirs;
use super::plan::Member;
use crate::crypt;
use crate::deliver::pack::{Index, member_path, read_index};
use crate::error::{Error, Result};

/// What `join --pack` found and did.
#[derive(Debug, Serialize)]
pub struct Unpacked {
    pack: String,
    /// Objects the index lists, all checked.
    members: usize,
    bytes: u64,
    /// Where they were extracted, with `--out`.
    out: Option<String>,
    extracted: usize,
    already_there: usize,
}

impl Unpacked {
    /// The summary for people, or JSON.
    pub fn render(&self, json: bool) -> Result<String> {
        if json {
            return serde_json::to_string_pretty(self)
                .map(|j| j + "\n")
                .map_err(|e| Error::Internal(format!("cannot encode JSON: {e}")));
        }
        let checked = format!(
            "{}: {} objects ({}) checked against its index",
            self.pack,
            self.members,
            crate::sizes::human_size(self.bytes)
        );
        Ok(match &self.out {
            Some(dir) => {
                format!("{checked}; {} extracted to {dir}, {} already there\n", self.extracted, self.already_there)
            }
            None => format!("{checked}; nothing written (give --out DIR to extract them)\n"),
        })
    }
}

/// Checks the pack at `pack` against its index and, with `out`, extracts its objects
/// there (an object there already and the same is left; one that differs is replaced
/// only with `force`).
pub fn unpack(pack: &Path, identity: Option<&Path>, out: Option<&Path>, force: bool) -> Result<Unpacked> {
    let name = pack.display().to_string();
    let encrypted = pack.extension().is_some_and(|e| e == crypt::SUFFIX.trim_start_matches('.'));
    let decrypted;
    let tar: &Path = match (encrypted, identity) {
        (false, Some(_)) => return Err(Error::usage(format!("{name} is not encrypted; leave out --identity"))),
        (true, None) => {
            return Err(Error::usage(format!("{name} is encrypted: give the age identity with --identity FILE")));
        }
        (true, Some(id)) => {
            decrypted = decrypt_to_temp(pack, id)?;
            decrypted.path.as_path()
        }
        (false, None) => pack,
    };
    let bad = |why: String| Error::Failed(format!("{name}: {why}"));
    let index = File::open(tar)
        .map_err(|e| Error::local(format!("cannot read {name}: {e}")))
        .and_then(|f| read_index(io::BufReader::new(f)).map_err(bad))?;
    let members = check(tar, &index).map_err(bad)?;
    let mut report = Unpacked {
        pack: name,
        members: members.len(),
        bytes: members.iter().map(|(_, m)| m.size).sum(),
        out: out.map(|d| d.display().to_string()),
        extracted: 0,
        already_there: 0,
    };
    let Some(dir) = out else { return Ok(report) };
    crate::private_files::create_dir(dir)
        .map_err(|e| Error::local(format!("cannot create {}: {e}; choose another --out", dir.display())))?;
    let mut cleaned = std::collections::HashSet::new();
    let mut tar = File::open(tar).map_err(|e| Error::local(format!("cannot read {}: {e}", report.pack)))?;
    for (path, member) in &members {
        let to = dir.join(path);
        create_dirs(dir, &to).map_err(Error::local)?;
        if let Some(parent) = to.parent()
            && cleaned.insert(parent.to_path_buf())
        {
            remove_stale_partials_in(parent);
        }
        match std::fs::symlink_metadata(&to) {
            Ok(meta) if meta.is_file() && same(&to, member) => {
                report.already_there += 1;
                continue;
            }
            Ok(_) if !force => {
                return Err(Error::usage(format!(
                    "{} exists and differs; --force replaces it ({} objects extracted before it)",
                    to.display(),
                    report.extracted
                )));
            }
            _ => {}
        }
        let mut output = Output::open(&WriteTo::File { path: to, overwrite: true })?;
        output.write_member(&mut tar, member)?;
        output.commit()?;
        report.extracted += 1;
    }
    Ok(report)
}

/// Every member of `index`, checked: its path is the one tgploy writes for its bucket and
/// key, a regular file of its size lies at its offset in the tar under that path, and its
/// bytes hash to its SHA-256. Returns each member's path and place.
fn check(tar: &Path, index: &Index) -> std::result::Result<Vec<(PathBuf, Member)>, String> {
    let io = |e: io::Error| format!("cannot read the tar: {e}");
    let mut entries: HashMap<PathBuf, (u64, u64)> = HashMap::new();
    let mut archive = tar::Archive::new(io::BufReader::new(File::open(tar).map_err(io)?));
    for entry in archive.entries().map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path().map_err(|e| format!("a name in the tar does not read: {e}"))?.into_owned();
        if entry.header().entry_type().is_file() {
            entries.insert(path, (entry.raw_file_position(), entry.size()));
        }
    }
    let mut problems = Vec::new();
    let mut members = Vec::with_capacity(index.members.len());
    for m in &index.members {
        let label = format!("{}/{}", m.bucket, m.key);
        if m.path != member_path(&m.bucket, &m.key) {
            problems.push(format!("{label}: the index names it `{}`, not where tgploy puts it", m.path));
            continue;
        }
        let path = PathBuf::from(&m.path);
        match entries.get(&path) {
            Some(&(offset, size)) if offset == m.offset && size == m.size => {}
            Some(&(offset, size)) => {
                problems.push(format!(
                    "{label}: the tar holds {size} bytes at {offset}, the index says {} at {}",
                    m.size, m.offset
                ));
                continue;
            }
            None => {
                problems.push(format!("{label}: the tar has no {}", m.path));
                continue;
            }
        }
        let member = Member { offset: m.offset, size: m.size, sha256: m.sha256.clone() };
        let mut check = PartCheck::new();
        let copied = File::open(tar).and_then(|mut f| {
            io::Seek::seek(&mut f, io::SeekFrom::Start(m.offset))?;
            io::copy(&mut f.take(m.size), &mut check)
        });
        match copied {
            Err(e) => return Err(io(e)),
            Ok(_) => {
                let len = check.len;
                let sha = hex::encode(check.hasher.finalize());
                if len != m.size || sha != m.sha256 {
                    problems.push(format!("{label} is corrupt: its SHA-256 is {sha}, the index says {}", m.sha256));
                    continue;
                }
            }
        }
        members.push((path, member));
    }
    if problems.is_empty() {
        return Ok(members);
    }
    Err(format!(
        "{} of its {} objects do not match its index: {} (nothing was written)",
        problems.len(),
        index.members.len(),
        problems.join("; ")
    ))
}

/// Whether the file at `path` is `member` already.
fn same(path: &Path, member: &Member) -> bool {
    let mut check = PartCheck::new();
    hash_file(path, &mut check).is_ok()
        && check.len == member.size
        && hex::encode(check.hasher.finalize()) == member.sha256
}

/// A pack decrypted into a private temporary directory, removed when dropped.
struct Decrypted {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// Decrypts the pack into a private temporary file (in `TMPDIR`): the index is at the
/// end of the tar, which is read twice.
fn decrypt_to_temp(pack: &Path, identity: &Path) -> Result<Decrypted> {
    let name = pack.display();
    let identities = crypt::read_identities(identity).map_err(Error::local)?;
    let input = File::open(pack).map_err(|e| Error::local(format!("cannot read {name}: {e}")))?;
    let mut plain = crypt::decrypt(io::BufReader::new(input), &identities).map_err(|e| match e {
        crypt::DecryptError::WrongIdentity(m) => Error::usage(format!("{name}: {m}")),
        crypt::DecryptError::Invalid(m) => Error::Failed(format!("{name}: {m}")),
    })?;
    let dir = crate::private_files::temp_dir(None)?;
    let path = dir.path().join("pack.tar");
    let file = File::create(&path)
        .map_err(|e| Error::local(format!("cannot create a file in {}: {e}; set TMPDIR", dir.path().display())))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    io::copy(&mut plain, &mut w)
        .and_then(|_| io::Write::flush(&mut w))
        .map_err(|e| Error::Failed(format!("cannot decrypt {name}: {e} (the identity or the file is wrong)")))?;
    Ok(Decrypted { _dir: dir, path })
}
