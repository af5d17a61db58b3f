//! The way back: parts fetched from Telegram (or given by hand), each checked against its
//! SHA-256, joined, decrypted when encrypted, and written atomically.
//!
//! Every part is located with `getFile` before anything is downloaded, so a part Telegram
//! no longer knows, or one over the Bot API's download limit, is named before any work.
//! Each part is then downloaded into a private temporary file and checked; only a checked
//! part reaches the writer thread, which joins the parts into the output (a temporary
//! file beside the requested name, renamed into place once everything checked out, or
//! stdout). Memory stays bounded by the read buffers; disk by two parts.

pub mod plan;

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use sha2::{Digest, Sha256};

use crate::config::{human_size, is_cloud_api};
use crate::crypt;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::shell::quote_path;
use crate::shutdown::Shutdown;
use crate::sink::{FileSource, RemoteFile, SinkError, TelegramSink};
pub use plan::{Plan, PlanPart};

/// The cloud Bot API hands out files of up to 20 MB through `getFile`.
pub const CLOUD_DOWNLOAD_LIMIT: u64 = 20 * 1000 * 1000;

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
            return Err(Error::config(format!(
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

/// Why one object could not be rebuilt or checked.
#[derive(Debug)]
pub enum Failure {
    /// A part is missing, corrupt or cannot be fetched: the message names it.
    Part(String),
    /// Nothing more can be done in this run (Telegram unreachable, token refused, …).
    Fatal(Error),
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Part(msg) => Error::Other(anyhow::anyhow!(msg)),
            Failure::Fatal(e) => e,
        }
    }
}

/// The manual route, for parts the bot cannot download.
fn manual_route(plan: &Plan) -> String {
    let name = plan.stored_name();
    format!(
        "download the parts by hand in a Telegram client (documents `{name}.part…` in the backup chat), then run \
         `tgploy join {}.part* --manifest {} --out {}`",
        quote_path(&name),
        quote_path(&format!("{}.tgploy.json", plan.file_name)),
        quote_path(&plan.file_name)
    )
}

/// Refuses up front when the Bot API is Telegram's cloud and a part is over its 20 MB
/// download limit.
pub fn check_download_limit(plan: &Plan, api_url: &str) -> std::result::Result<(), Failure> {
    if !is_cloud_api(api_url) {
        return Ok(());
    }
    let count = plan.parts.len();
    match plan.parts.iter().find(|p| p.size > CLOUD_DOWNLOAD_LIMIT) {
        Some(p) => Err(Failure::Part(format!(
            "{} of {} is {}, over the cloud Bot API's 20 MB download limit, so the bot cannot fetch it; {}",
            p.label(count),
            plan.label,
            human_size(p.size),
            manual_route(plan)
        ))),
        None => Ok(()),
    }
}

fn part_failure(plan: &Plan, part: &PlanPart, e: SinkError) -> Failure {
    let label = format!("{} of {}", part.label(plan.parts.len()), plan.label);
    match e {
        SinkError::Unreachable { .. } | SinkError::Unauthorized { .. } => Failure::Fatal(e.into()),
        SinkError::TooBigToDownload { .. } => Failure::Part(format!("{label}: {e}; {}", manual_route(plan))),
        SinkError::UnknownFile(_) => Failure::Part(format!("{label} cannot be fetched: {e}; {}", manual_route(plan))),
        e => Failure::Part(format!("{label}: {e}")),
    }
}

/// Locates every part (`getFile`) before anything is downloaded.
pub async fn locate_all(sink: &TelegramSink, plan: &Plan) -> std::result::Result<Vec<RemoteFile>, Failure> {
    check_download_limit(plan, sink.endpoint())?;
    let count = plan.parts.len();
    let mut located = Vec::with_capacity(count);
    for part in &plan.parts {
        let Some(file_id) = &part.file_id else {
            return Err(Failure::Part(format!(
                "{} of {} has no Telegram file id; {}",
                part.label(count),
                plan.label,
                manual_route(plan)
            )));
        };
        let file = sink.locate(file_id).await.map_err(|e| part_failure(plan, part, e))?;
        if file.size != 0 && file.size != part.size {
            return Err(Failure::Part(format!(
                "{} of {} is {} bytes in Telegram, not the {} recorded; it is not the part that was sent",
                part.label(count),
                plan.label,
                file.size,
                part.size
            )));
        }
        located.push(file);
    }
    Ok(located)
}

/// Checks a part's bytes as they stream past: size and SHA-256.
struct PartCheck {
    hasher: Sha256,
    len: u64,
}

impl PartCheck {
    fn new() -> Self {
        PartCheck { hasher: Sha256::new(), len: 0 }
    }

    fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// `None` when the part is what the plan says, else what is wrong with it.
    fn verdict(self, part: &PlanPart) -> Option<String> {
        if self.len != part.size {
            return Some(format!("is {} bytes, expected {}", self.len, part.size));
        }
        let sha = hex::encode(self.hasher.finalize());
        (sha != part.sha256).then(|| format!("is corrupt: its SHA-256 is {sha}, expected {}", part.sha256))
    }
}

/// Downloads one located part, checking it, and hands every chunk to `each`.
async fn fetch_checked(
    sink: &TelegramSink,
    plan: &Plan,
    part: &PlanPart,
    file: &RemoteFile,
    progress: &Progress,
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> std::result::Result<(), Failure> {
    let mut check = PartCheck::new();
    sink.fetch(file, |chunk| {
        check.update(chunk);
        progress.inc(chunk.len() as u64);
        each(chunk)
    })
    .await
    .map_err(|e| part_failure(plan, part, e))?;
    match check.verdict(part) {
        None => Ok(()),
        Some(why) => Err(Failure::Part(format!(
            "{} of {} {why} (downloaded from Telegram); {}",
            part.label(plan.parts.len()),
            plan.label,
            manual_route(plan)
        ))),
    }
}

/// Downloads every part and checks it and the whole stream, writing nothing: the restore
/// drill of `verify`.
pub async fn check(sink: &TelegramSink, plan: &Plan, progress: &Progress) -> std::result::Result<(), Failure> {
    let located = locate_all(sink, plan).await?;
    let mut whole = PartCheck::new();
    for (part, file) in plan.parts.iter().zip(&located) {
        fetch_checked(sink, plan, part, file, progress, |chunk| {
            whole.update(chunk);
            Ok(())
        })
        .await?;
    }
    whole
        .verdict(&whole_as_part(plan))
        .map_or(Ok(()), |why| Err(Failure::Part(format!("{}: the whole {why}", plan.label))))
}

fn whole_as_part(plan: &Plan) -> PlanPart {
    PlanPart { index: 0, file_name: plan.stored_name(), size: plan.size, sha256: plan.sha256.clone(), file_id: None }
}

/// A part ready to join: a checked download (deleted once read) or a file on disk.
enum Piece {
    Temp(tempfile::NamedTempFile),
    Path(PathBuf),
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
                let file = match &piece {
                    Piece::Temp(t) => t.reopen()?,
                    Piece::Path(p) => File::open(p)?,
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
enum JoinError {
    WrongIdentity(String),
    Data(String),
}

impl From<String> for JoinError {
    fn from(msg: String) -> Self {
        JoinError::Data(msg)
    }
}

impl From<JoinError> for Error {
    fn from(e: JoinError) -> Self {
        match e {
            JoinError::WrongIdentity(msg) => Error::config(msg),
            JoinError::Data(msg) => Error::Other(anyhow::anyhow!(msg)),
        }
    }
}

/// Joins the pieces into `dest`, decrypting with the identities in `identity` when given,
/// and checks the whole stored stream (and the original, where the plan knows it).
fn write_stream(
    pieces: impl Iterator<Item = Piece>,
    dest: &mut dyn Write,
    plan: &Plan,
    identity: Option<&Path>,
) -> std::result::Result<(u64, String), JoinError> {
    let mut chain = Chain { pieces, current: None, whole: PartCheck::new() };
    let mut out = Out { inner: dest, check: PartCheck::new(), failed: false };
    let stored = plan.stored_name();
    let copied = match identity {
        None => io::copy(&mut chain, &mut out).map(|_| ()),
        Some(path) => {
            let identities = crypt::read_identities(path)?;
            let mut plain = crypt::decrypt(&mut chain, &identities).map_err(|e| match e {
                crypt::DecryptError::WrongIdentity(m) => JoinError::WrongIdentity(format!("{stored}: {m}")),
                crypt::DecryptError::Invalid(m) => JoinError::Data(format!("{stored}: {m}")),
            })?;
            io::copy(&mut plain, &mut out).map(|_| ())
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

/// Where the joined stream is written until it has checked out.
enum Sink {
    Stdout,
    Temp { file: tempfile::NamedTempFile, path: PathBuf, overwrite: bool },
}

impl Sink {
    fn open(target: &Target) -> Result<Sink> {
        match target {
            Target::Stdout => Ok(Sink::Stdout),
            Target::File { path, overwrite } => {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let file = tempfile::Builder::new()
                    .prefix(&format!(".{name}."))
                    .suffix(".tgploy-partial")
                    .tempfile_in(&dir)
                    .map_err(|e| {
                        Error::config(format!("cannot create a file in {}: {e}; choose another --out", dir.display()))
                    })?;
                Ok(Sink::Temp { file, path: path.clone(), overwrite: *overwrite })
            }
        }
    }

    fn write(
        &mut self,
        pieces: impl Iterator<Item = Piece>,
        plan: &Plan,
        identity: Option<&Path>,
    ) -> std::result::Result<(u64, String), JoinError> {
        match self {
            Sink::Stdout => write_stream(pieces, &mut BufWriter::new(io::stdout().lock()), plan, identity),
            Sink::Temp { file, .. } => write_stream(pieces, &mut BufWriter::new(file.as_file_mut()), plan, identity),
        }
    }

    /// Makes the output durable and gives it its name.
    fn commit(self) -> Result<()> {
        let Sink::Temp { file, path, overwrite } = self else { return Ok(()) };
        let fail = |e: &dyn std::fmt::Display| Error::Other(anyhow::anyhow!("cannot write {}: {e}", path.display()));
        file.as_file().sync_all().map_err(|e| fail(&e))?;
        if overwrite { file.persist(&path) } else { file.persist_noclobber(&path) }.map_err(|e| fail(&e.error))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
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
    let mut out = Sink::open(target)?;
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
            failure = Some(Failure::Fatal(Error::Interrupted {
                signal: if signal == crate::shutdown::SIGINT { "SIGINT" } else { "SIGTERM" },
            }));
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
                        tmp.flush().map_err(|e| Failure::Part(format!("cannot write a part file: {e}")))?;
                        Ok(Piece::Temp(tmp))
                    }),
                Err(e) => Err(Failure::Fatal(Error::config(format!(
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
    let (out, result) = joined.map_err(|_| Error::Other(anyhow::anyhow!("the writer thread panicked")))?;
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

/// Joins parts downloaded by hand. With a plan, every part is matched by its file name
/// and checked first; all missing and corrupt parts are named at once, and nothing is
/// written unless every part checks out. Without one, the files are joined in the
/// order given.
pub fn join(files: &[PathBuf], plan: Option<&Plan>, target: &Target, identity: Option<&Path>) -> Result<Restored> {
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
            };
            (plan, files.to_vec())
        }
    };
    let mut out = Sink::open(target)?;
    let pieces = pieces.into_iter().map(Piece::Path);
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
    Error::config(format!("cannot read part file {}: {e}", f.display()))
}

/// Joins without a manifest: whatever the parts hash to is accepted.
fn write_unchecked(
    out: &mut Sink,
    pieces: impl Iterator<Item = Piece>,
    plan: &Plan,
    identity: Option<&Path>,
) -> std::result::Result<(u64, String), JoinError> {
    tracing::warn!("no manifest given: joining the parts in the order given, without checking them (pass --manifest)");
    let pieces: Vec<Piece> = pieces.collect();
    let mut whole = PartCheck::new();
    for piece in &pieces {
        if let Piece::Path(p) = piece {
            hash_file(p, &mut whole)
                .map_err(|e| JoinError::Data(format!("cannot read part file {}: {e}", p.display())))?;
        }
    }
    let plan = Plan { sha256: hex::encode(whole.hasher.finalize()), ..plan.clone() };
    out.write(pieces.into_iter(), &plan, identity)
}

fn hash_file(path: &Path, check: &mut PartCheck) -> io::Result<()> {
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
    Err(Error::Other(anyhow::anyhow!(
        "{} of {count} parts of {} are unusable: {}; download them again from the chat (nothing was written)",
        problems.len(),
        plan.label,
        problems.join("; ")
    )))
}
