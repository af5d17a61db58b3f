//! Joining checked parts into the original: in order, hashed as they pass, decrypted
//! when encrypted, into a temporary file beside the requested name that is renamed into
//! place only once everything checked out (or to stdout). Also the manual route: parts
//! downloaded by hand, checked against their manifest.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::fetch::{PartCheck, whole_as_part};
use super::plan::{Member, Plan};
use super::{Restored, WriteTo};
use sha2::Digest;
use tokio::sync::OwnedSemaphorePermit;

use crate::crypt;
use crate::error::{Error, Result};

/// A part ready to join: a checked download (deleted once read) or a file on disk,
/// holding its place among the downloader's part files until it is read.
pub(super) struct Piece {
    file: PieceFile,
    _slot: Option<OwnedSemaphorePermit>,
}

enum PieceFile {
    Temp(tempfile::NamedTempFile),
    Path(PathBuf),
}

impl Piece {
    pub(super) fn temp(file: tempfile::NamedTempFile, slot: OwnedSemaphorePermit) -> Piece {
        Piece { file: PieceFile::Temp(file), _slot: Some(slot) }
    }

    pub(super) fn path(path: PathBuf, slot: OwnedSemaphorePermit) -> Piece {
        Piece { file: PieceFile::Path(path), _slot: Some(slot) }
    }

    /// A part downloaded by hand.
    fn given(path: PathBuf) -> Piece {
        Piece { file: PieceFile::Path(path), _slot: None }
    }

    fn path_of(&self) -> &Path {
        match &self.file {
            PieceFile::Temp(t) => t.path(),
            PieceFile::Path(p) => p,
        }
    }
}

/// The stored stream: the pieces read in order, hashed as they pass.
struct Chain<I> {
    pieces: I,
    current: Option<(File, Piece)>,
    whole: PartCheck,
}

impl<I: Iterator<Item = Piece>> Read for Chain<I> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                let Some(piece) = self.pieces.next() else { return Ok(0) };
                let file = match &piece.file {
                    PieceFile::Temp(t) => t.reopen()?,
                    PieceFile::Path(p) => File::open(p)?,
                };
                self.current = Some((file, piece));
            }
            let Some((file, _)) = self.current.as_mut() else { continue };
            let n = file.read(buf)?;
            if n == 0 {
                // Dropping a downloaded piece deletes it.
                self.current = None;
                continue;
            }
            self.whole.update(&buf[..n]);
            return Ok(n);
        }
    }
}

/// Counts and hashes what is written, and remembers whether writing failed.
struct Out<'a> {
    inner: &'a mut dyn Write,
    check: PartCheck,
    failed: bool,
}

impl Write for Out<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf).inspect_err(|_| self.failed = true)?;
        self.check.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

/// Why joining stopped: a wrong identity is the operator's to fix (exit 2); anything
/// else is about the data (exit 1).
#[derive(Debug)]
pub(super) enum JoinError {
    WrongIdentity(String),
    Data(String),
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinError::WrongIdentity(m) | JoinError::Data(m) => f.write_str(m),
        }
    }
}

impl From<String> for JoinError {
    fn from(msg: String) -> Self {
        JoinError::Data(msg)
    }
}

impl From<JoinError> for Error {
    fn from(e: JoinError) -> Self {
        match e {
            JoinError::WrongIdentity(msg) => Error::usage(msg),
            JoinError::Data(msg) => Error::Failed(msg),
        }
    }
}

/// Joins the pieces into `dest`, decrypting with the identities in `identity` when given,
/// and checks the whole stored stream (and the original, where the plan knows it).
pub(super) fn write_stream(
    pieces: impl Iterator<Item = Piece>,
    dest: &mut dyn Write,
    plan: &Plan,
    identity: Option<&Path>,
) -> std::result::Result<(u64, String), JoinError> {
    let mut chain = Chain { pieces, current: None, whole: PartCheck::new() };
    let mut out = Out { inner: dest, check: PartCheck::new(), failed: false };
    let stored = plan.stored_name();
    // An object in an encrypted pack comes out only decrypted; without the identity the
    // pack's document is checked whole (a drill), and nothing of it is written.
    let member = plan.member.as_ref().filter(|_| !plan.encrypted || identity.is_some());
    let copied = match identity {
        None if plan.member.is_some() && plan.encrypted => io::copy(&mut chain, &mut io::sink()).map(|_| ()),
        None => copy_out(&mut chain, &mut out, member),
        Some(path) => {
            let identities = crypt::read_identities(path)?;
            let mut plain = crypt::decrypt(&mut chain, &identities).map_err(|e| match e {
                crypt::DecryptError::WrongIdentity(m) => JoinError::WrongIdentity(format!("{stored}: {m}")),
                crypt::DecryptError::Invalid(m) => JoinError::Data(format!("{stored}: {m}")),
            })?;
            copy_out(&mut plain, &mut out, member)
        }
    };
    if let Err(e) = copied.and_then(|()| out.flush()) {
        return Err(JoinError::Data(if out.failed {
            format!("cannot write the output: {e}")
        } else if identity.is_some() {
            format!("cannot decrypt {stored}: {e} (the parts checked out, so the identity or the file is wrong)")
        } else {
            format!("cannot read a part: {e}")
        }));
    }
    // age stops at its final chunk: anything after it is not part of the file.
    let mut rest = [0u8; 1];
    if chain.read(&mut rest).map_err(|e| JoinError::Data(format!("cannot read a part: {e}")))? > 0 {
        return Err(format!("{stored} has data after the end of its age stream").into());
    }
    if let Some(why) = chain.whole.verdict(&whole_as_part(plan)) {
        return Err(format!("{}: the joined parts {why}", plan.label).into());
    }
    let (len, sha) = (out.check.len, hex::encode(out.check.hasher.finalize()));
    if let Some(m) = member
        && (len != m.size || sha != m.sha256)
    {
        return Err(format!(
            "{}: its bytes in pack {stored} are {len} bytes with SHA-256 {sha}, not the {} bytes, {} recorded",
            plan.label, m.size, m.sha256
        )
        .into());
    }
    if identity.is_some()
        && let Some((size, expected)) = &plan.plaintext
        && (len != *size || &sha != expected)
    {
        return Err(format!(
            "{}: the decrypted object is {len} bytes with SHA-256 {sha}, the manifest says {size} bytes, {expected}",
            plan.label
        )
        .into());
    }
    Ok((len, sha))
}

/// Copies the stream to `out`; for an object in a pack only its bytes, the rest of the
/// pack read (for the pack's own hash) and dropped.
fn copy_out<R: Read>(src: &mut R, out: &mut dyn Write, member: Option<&Member>) -> io::Result<()> {
    let Some(m) = member else {
        return io::copy(src, out).map(|_| ());
    };
    io::copy(&mut (&mut *src).take(m.offset), &mut io::sink())?;
    let copied = io::copy(&mut (&mut *src).take(m.size), out)?;
    if copied != m.size {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the pack ends before the object's bytes do"));
    }
    io::copy(src, &mut io::sink()).map(|_| ())
}

/// Where the joined stream is written until it has checked out.
pub(super) enum Output {
    Stdout,
    Temp { file: tempfile::NamedTempFile, path: PathBuf, overwrite: bool },
}

impl Output {
    pub(super) fn open(target: &WriteTo) -> Result<Output> {
        match target {
            WriteTo::Stdout => Ok(Output::Stdout),
            WriteTo::File { path, overwrite } => {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let file = tempfile::Builder::new()
                    .prefix(&partial_prefix(&name))
                    .rand_bytes(PARTIAL_RANDOM)
                    .suffix(PARTIAL_SUFFIX)
                    .tempfile_in(&dir)
                    .map_err(|e| {
                        Error::local(format!("cannot create a file in {}: {e}; choose another --out", dir.display()))
                    })?;
                Ok(Output::Temp { file, path: path.clone(), overwrite: *overwrite })
            }
        }
    }

    pub(super) fn write(
        &mut self,
        pieces: impl Iterator<Item = Piece>,
        plan: &Plan,
        identity: Option<&Path>,
    ) -> std::result::Result<(u64, String), JoinError> {
        match self {
            Output::Stdout => write_stream(pieces, &mut BufWriter::new(io::stdout().lock()), plan, identity),
            Output::Temp { file, .. } => write_stream(pieces, &mut BufWriter::new(file.as_file_mut()), plan, identity),
        }
    }

    /// Copies `member`'s bytes out of the (plain) tar `tar`, checking their size and
    /// SHA-256.
    pub(super) fn write_member(&mut self, tar: &mut File, member: &Member) -> std::result::Result<(), JoinError> {
        let io = |e: io::Error| JoinError::Data(format!("cannot read the downloaded pack: {e}"));
        tar.seek(SeekFrom::Start(member.offset)).map_err(io)?;
        let src = tar;
        let mut sink: Box<dyn Write + '_> = match self {
            Output::Stdout => Box::new(BufWriter::new(io::stdout().lock())),
            Output::Temp { file, .. } => Box::new(BufWriter::new(file.as_file_mut())),
        };
        let mut out = Out { inner: &mut *sink, check: PartCheck::new(), failed: false };
        let copied = io::copy(&mut src.take(member.size), &mut out).and_then(|_| out.flush());
        if let Err(e) = copied {
            return Err(JoinError::Data(if out.failed {
                format!("cannot write the output: {e}")
            } else {
                format!("cannot read the downloaded pack: {e}")
            }));
        }
        let (len, sha) = (out.check.len, hex::encode(out.check.hasher.finalize()));
        if len != member.size || sha != member.sha256 {
            return Err(JoinError::Data(format!(
                "its bytes in the pack are {len} bytes with SHA-256 {sha}, not the {} bytes, {} recorded",
                member.size, member.sha256
            )));
        }
        Ok(())
    }

    /// Makes the output durable and gives it its name.
    pub(super) fn commit(self) -> Result<()> {
        let mut dirs = std::collections::BTreeSet::new();
        self.commit_into(&mut dirs)?;
        sync_dirs(&dirs);
        Ok(())
    }

    /// Makes the file durable and gives it its name, leaving the directory that holds
    /// the name to be made durable by [`sync_dirs`] (once for many files).
    pub(super) fn commit_into(self, dirs: &mut std::collections::BTreeSet<PathBuf>) -> Result<()> {
        let Output::Temp { file, path, overwrite } = self else { return Ok(()) };
        let fail = |e: &dyn std::fmt::Display| Error::Failed(format!("cannot write {}: {e}", path.display()));
        file.as_file().sync_all().map_err(|e| fail(&e))?;
        if overwrite { file.persist(&path) } else { file.persist_noclobber(&path) }.map_err(|e| fail(&e.error))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }
}

/// Makes the names given in `dirs` durable.
pub(super) fn sync_dirs(dirs: &std::collections::BTreeSet<PathBuf>) {
    for dir in dirs {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// A restored file is written as `.NAME.RANDOM.tgploy-partial` beside its place, then
/// renamed: RANDOM is this many letters and digits.
const PARTIAL_RANDOM: usize = 6;
const PARTIAL_SUFFIX: &str = ".tgploy-partial";

/// What the partial files of `name` start with: `.NAME.`, where NAME is shortened (and
/// told apart by a hash) when the whole partial name would be longer than a file name
/// may be.
fn partial_prefix(name: &str) -> String {
    let room = super::paths::NAME_MAX - ".".len() - ".".len() - PARTIAL_RANDOM - PARTIAL_SUFFIX.len();
    if name.len() <= room {
        return format!(".{name}.");
    }
    let mut end = room - "~".len() - 16;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    format!(".{}~{}.", &name[..end], &digest[..16])
}

/// Removes every partial file an interrupted run left in `dir`, of any name: for a run
/// that is to write many objects there and has written none yet (one listing of the
/// directory, not one per object).
pub(super) fn remove_stale_partials_in(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let found = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = found.strip_prefix('.').and_then(|f| f.strip_suffix(PARTIAL_SUFFIX)) else { continue };
        if rest.rsplit_once('.').is_some_and(|(name, r)| !name.is_empty() && random(r)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether `r` is the random part of a partial file's name.
fn random(r: &str) -> bool {
    r.len() == PARTIAL_RANDOM && r.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Joins parts downloaded by hand. With a plan, every part is matched by its file name
/// and checked first; all missing and corrupt parts are named at once, and nothing is
/// written unless every part checks out. Without one, the files are joined in the
/// order given.
pub(crate) fn join(
    files: &[PathBuf],
    plan: Option<&Plan>,
    target: &WriteTo,
    identity: Option<&Path>,
) -> Result<Restored> {
    let (plan, pieces) = match plan {
        Some(plan) => (plan.clone(), checked_pieces(files, plan)?),
        None => {
            let size = files
                .iter()
                .map(|f| std::fs::metadata(f).map(|m| m.len()).map_err(|e| missing_file(f, &e)))
                .sum::<Result<u64>>()?;
            // Without a manifest only the chain's own hash is known: check against it.
            let plan = Plan {
                label: "the given parts".into(),
                file_name: target.describe(),
                size,
                sha256: String::new(),
                encrypted: identity.is_some(),
                plaintext: None,
                parts: Vec::new(),
                chat: None,
                member: None,
            };
            (plan, files.to_vec())
        }
    };
    let mut out = Output::open(target)?;
    let pieces = pieces.into_iter().map(Piece::given);
    let result = if plan.sha256.is_empty() {
        write_unchecked(&mut out, pieces, &plan, identity)
    } else {
        out.write(pieces, &plan, identity)
    };
    let (bytes, sha256) = result?;
    out.commit()?;
    Ok(Restored {
        object: plan.label.clone(),
        output: target.describe(),
        bytes,
        sha256,
        parts: files.len(),
        decrypted: identity.is_some(),
    })
}

fn missing_file(f: &Path, e: &io::Error) -> Error {
    Error::local(format!("cannot read part file {}: {e}", f.display()))
}

/// Joins without a manifest: whatever the parts hash to is accepted.
fn write_unchecked(
    out: &mut Output,
    pieces: impl Iterator<Item = Piece>,
    plan: &Plan,
    identity: Option<&Path>,
) -> std::result::Result<(u64, String), JoinError> {
    tracing::warn!("no manifest given: joining the parts in the order given, without checking them (pass --manifest)");
    let pieces: Vec<Piece> = pieces.collect();
    let mut whole = PartCheck::new();
    for piece in &pieces {
        let p = piece.path_of();
        hash_file(p, &mut whole).map_err(|e| JoinError::Data(format!("cannot read part file {}: {e}", p.display())))?;
    }
    let plan = Plan { sha256: hex::encode(whole.hasher.finalize()), ..plan.clone() };
    out.write(pieces.into_iter(), &plan, identity)
}

pub(super) fn hash_file(path: &Path, check: &mut PartCheck) -> io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        check.update(&buf[..n]);
    }
}

/// Matches the given files to the plan's parts by name and checks each; names every
/// missing or corrupt part.
fn checked_pieces(files: &[PathBuf], plan: &Plan) -> Result<Vec<PathBuf>> {
    let count = plan.parts.len();
    let mut problems = Vec::new();
    let mut pieces = Vec::new();
    for part in &plan.parts {
        let Some(file) = files.iter().find(|f| f.file_name().is_some_and(|n| n.to_string_lossy() == part.file_name))
        else {
            problems.push(format!("{} is missing", part.label(count)));
            continue;
        };
        let mut check = PartCheck::new();
        match hash_file(file, &mut check) {
            Err(e) => problems.push(format!("{} cannot be read ({}: {e})", part.label(count), file.display())),
            Ok(()) => match check.verdict(part) {
                Some(why) => problems.push(format!("{} {why}", part.label(count))),
                None => pieces.push(file.clone()),
            },
        }
    }
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !plan.parts.iter().any(|p| p.file_name == name) {
            tracing::warn!("{} is not a part of {} (by its name); ignored", f.display(), plan.label);
        }
    }
    if problems.is_empty() {
        return Ok(pieces);
    }
    Err(Error::Failed(format!(
        "{} of {count} parts of {} are unusable: {}; download them again from the chat (nothing was written)",
        problems.len(),
        plan.label,
        problems.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_as_long_as_a_file_name_may_be_has_a_partial_file_that_fits() {
        let dir = tempfile::tempdir().unwrap();
        for len in [1, 232, 233, 255] {
            let path = dir.path().join("é".repeat(len / 2) + &"x".repeat(len % 2));
            let out = Output::open(&WriteTo::File { path: path.clone(), overwrite: false }).unwrap();
            let Output::Temp { file, .. } = &out else { panic!("a file target") };
            let partial = file.path().file_name().unwrap().len();
            assert!(partial <= super::super::paths::NAME_MAX, "{len}: a partial name of {partial} bytes");
            out.commit().unwrap();
            assert!(path.is_file(), "{len}");
        }
    }

    #[test]
    fn a_directory_loses_every_stale_partial_at_once_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            ".db.sql.abc123.tgploy-partial",
            ".db.sql.gz.def456.tgploy-partial",
            "db.sql.gz",
            ".db.sql.note.txt",
            "..abc123.tgploy-partial",
            ".x.toolong1.tgploy-partial",
        ];
        for name in names {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        // The partial of a name as long as a file name may be: shortened, told apart by a hash.
        let long = Output::open(&WriteTo::File { path: dir.path().join("l".repeat(250)), overwrite: false }).unwrap();
        let Output::Temp { file, .. } = &long else { panic!("a file target") };
        let long_partial = file.path().to_path_buf();
        std::mem::forget(long);
        remove_stale_partials_in(dir.path());
        assert!(!long_partial.exists());
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["..abc123.tgploy-partial", ".db.sql.note.txt", ".x.toolong1.tgploy-partial", "db.sql.gz"]);
    }
}
