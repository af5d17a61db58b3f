//! A pack's tar: every member under its escaped `BUCKET/KEY` (a pax `path`, with a
//! plain ustar name for tools that know only that), then the index; written through age
//! as one stream when encrypted, hashed as it goes to disk.

use std::io::{BufWriter, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::{Delivery, PackMember};
use crate::time::{now, rfc3339, rfc3339_ms};

/// The index member of every pack, after the objects.
pub(crate) const INDEX_NAME: &str = "tgploy-pack.json";
/// What the index says it is.
pub(crate) const FORMAT: &str = "tgploy-pack";
pub(crate) const VERSION: u32 = 1;
/// tar's block.
pub(super) const BLOCK: u64 = 512;
/// A pack's index (`tgploy-pack.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) format: String,
    pub(crate) version: u32,
    pub(crate) created_at: String,
    pub(crate) tgploy_version: String,
    pub(crate) members: Vec<IndexMember>,
}

/// One object of a pack, as its index lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct IndexMember {
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) etag: String,
    pub(crate) size: u64,
    pub(crate) sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_modified: Option<String>,
    /// Its name in the tar: `BUCKET/KEY`, escaped.
    pub(crate) path: String,
    /// Where its bytes start in the tar.
    pub(crate) offset: u64,
}

/// Counts the bytes written through it: where each member starts in the tar.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes what is written through it: the document's SHA-256, as it goes to disk.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The tar being written: into the document directly, or through age.
enum Sink<W: Write> {
    Plain(Counting<Hashing<W>>),
    Encrypted(Counting<age::stream::StreamWriter<Hashing<W>>>),
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Encrypted(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Encrypted(w) => w.flush(),
        }
    }
}

impl<W: Write> Sink<W> {
    fn tar_position(&self) -> u64 {
        match self {
            Sink::Plain(w) => w.written,
            Sink::Encrypted(w) => w.written,
        }
    }

    /// Ends the stream (age's last chunk): the tar's size, the document's size and
    /// SHA-256.
    fn finish(self) -> std::io::Result<(u64, u64, String)> {
        let (tar, mut doc) = match self {
            Sink::Plain(w) => (w.written, w.inner),
            Sink::Encrypted(w) => (w.written, w.inner.finish()?),
        };
        doc.flush()?;
        Ok((tar, doc.written, hex::encode(doc.hasher.finalize())))
    }
}

/// A member read from S3, ready to go into the tar.
pub(super) struct Read {
    pub(super) delivery: Delivery,
    pub(super) bytes: Vec<u8>,
}

/// A pack written to disk.
pub(super) struct Built {
    pub(super) file: tempfile::NamedTempFile,
    pub(super) file_name: String,
    pub(super) tar_size: u64,
    pub(super) size: u64,
    pub(super) sha256: String,
    pub(super) members: Vec<(Delivery, PackMember)>,
    pub(super) index: Index,
}

/// Writes the pack: every member under its escaped `BUCKET/KEY`, then the index; through
/// age when encrypted. Runs on the blocking pool.
pub(super) fn build(
    tmp_dir: &std::path::Path,
    members: Vec<Read>,
    encryption: Option<&crate::crypt::Encryption>,
) -> std::result::Result<Built, String> {
    let io = |e: std::io::Error| format!("cannot write a pack in {}: {e}", tmp_dir.display());
    let file = tempfile::Builder::new().prefix("pack-").tempfile_in(tmp_dir).map_err(io)?;
    let doc = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file.reopen().map_err(io)?),
        hasher: Sha256::new(),
        written: 0,
    };
    let sink = match encryption {
        None => Sink::Plain(Counting { inner: doc, written: 0 }),
        Some(enc) => Sink::Encrypted(Counting { inner: enc.wrap(doc).map_err(io)?, written: 0 }),
    };
    let mut tar = tar::Builder::new(sink);
    let mut index = Vec::with_capacity(members.len());
    let mut packed = Vec::with_capacity(members.len());
    for (n, member) in members.into_iter().enumerate() {
        let o = &member.delivery.object;
        let path = member_path(&o.bucket, &o.key);
        let sha256 = hex::encode(Sha256::digest(&member.bytes));
        let size = member.bytes.len() as u64;
        tar.append_pax_extensions([("path", path.as_bytes())]).map_err(io)?;
        let mut header = tar::Header::new_ustar();
        // The pax `path` above is the name; this one is for tools that know only ustar.
        header.set_path(format!("tgploy-pack-member-{}", n + 1)).map_err(io)?;
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(o.last_modified_ms.map_or(0, |ms| (ms / 1000).max(0) as u64));
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, member.bytes.as_slice()).map_err(io)?;
        let offset = tar.get_ref().tar_position() - size.div_ceil(BLOCK) * BLOCK;
        index.push(IndexMember {
            bucket: o.bucket.clone(),
            key: o.key.clone(),
            etag: o.etag.clone(),
            size,
            sha256: sha256.clone(),
            last_modified: o.last_modified_ms.map(rfc3339_ms),
            path,
            offset,
        });
        packed.push((member.delivery.clone(), PackMember { id: member.delivery.id, offset, size, sha256 }));
    }
    let index = Index {
        format: FORMAT.into(),
        version: VERSION,
        created_at: rfc3339(now()),
        tgploy_version: env!("CARGO_PKG_VERSION").into(),
        members: index,
    };
    let json = serde_json::to_vec_pretty(&index).map_err(|e| format!("cannot encode a pack's index: {e}"))?;
    let mut header = tar::Header::new_ustar();
    header.set_path(INDEX_NAME).map_err(io)?;
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(now().max(0) as u64);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append(&header, json.as_slice()).map_err(io)?;
    let (tar_size, size, sha256) = tar.into_inner().map_err(io)?.finish().map_err(io)?;
    let stamp = rfc3339(now()).replace(['-', ':'], "");
    let suffix = if encryption.is_some() { crate::crypt::SUFFIX } else { "" };
    let file_name = format!("tgploy-pack-{stamp}-{}.tar{suffix}", &sha256[..8]);
    Ok(Built { file, file_name, tar_size, size, sha256, members: packed, index })
}

/// A member's name in the tar: its bucket and key as `restore --all` writes them under a
/// directory, so that no key can climb out of where the pack is extracted.
pub(crate) fn member_path(bucket: &str, key: &str) -> String {
    crate::restore::object_path(std::path::Path::new(""), bucket, key, "")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{}/{}", crate::restore::safe_name(bucket), hex::encode(Sha256::digest(key))))
}

/// Reads a pack's index from its tar (the plain tar: decrypt an encrypted pack first).
pub(crate) fn read_index(tar: impl std::io::Read) -> std::result::Result<Index, String> {
    let mut archive = tar::Archive::new(tar);
    let entries = archive.entries().map_err(|e| format!("not a tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a tar: {e}"))?;
        let path = entry.path().map_err(|e| format!("a name in the tar does not read: {e}"))?.into_owned();
        if path == std::path::Path::new(INDEX_NAME) {
            let mut json = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut json).map_err(|e| format!("cannot read {INDEX_NAME}: {e}"))?;
            let index: Index =
                serde_json::from_slice(&json).map_err(|e| format!("{INDEX_NAME} is not a pack's index: {e}"))?;
            if index.format != FORMAT {
                return Err(format!("{INDEX_NAME} says its format is `{}`, not `{FORMAT}`", index.format));
            }
            if index.version > VERSION {
                return Err(format!(
                    "the pack was written by a newer tgploy (index version {}); upgrade",
                    index.version
                ));
            }
            return Ok(index);
        }
    }
    Err(format!("the tar has no {INDEX_NAME}: it is not a tgploy pack"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_lists_its_members_where_their_bytes_lie() {
        let dir = tempfile::tempdir().unwrap();
        let delivery = |id: i64, key: &str, size: u64| Delivery::for_tests(id, "bkt", key, size);
        let members = vec![
            Read { delivery: delivery(1, "a/one.txt", 3), bytes: b"one".to_vec() },
            Read { delivery: delivery(2, &format!("../{}", "x".repeat(300)), 5), bytes: b"fives".to_vec() },
        ];
        let built = build(dir.path(), members, None).unwrap();
        let bytes = std::fs::read(built.file.path()).unwrap();
        assert_eq!(bytes.len() as u64, built.size);
        assert_eq!(hex::encode(Sha256::digest(&bytes)), built.sha256);
        for (d, m) in &built.members {
            let slice = &bytes[m.offset as usize..(m.offset + m.size) as usize];
            assert_eq!(hex::encode(Sha256::digest(slice)), m.sha256, "{}", d.object.key);
        }
        let index = read_index(bytes.as_slice()).unwrap();
        assert_eq!(index.members.len(), 2);
        assert_eq!(index.members[0].path, "bkt/a/one.txt");
        assert!(index.members[1].path.starts_with("bkt/%2E%2E/"), "{}", index.members[1].path);
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names[0], "bkt/a/one.txt");
        assert_eq!(names.last().map(String::as_str), Some(INDEX_NAME));
    }

    /// Keys S3 servers hold and a filesystem would take as directions: extracted by the
    /// system's `tar` into a directory, each lands inside it, at the path the index says.
    #[test]
    fn hostile_keys_extract_inside_the_directory_with_the_real_tar() {
        let dir = tempfile::tempdir().unwrap();
        let long = "../\u{1}\u{7f}\n".repeat(1024 / 6) + "zzzz";
        assert_eq!(long.len(), 1024);
        let keys =
            ["../../escape", "/etc/passwd", "a/../../b", "./dot", "back\\..\\slash", "dir/", "sub/..", "~root", &long];
        let members = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Read {
                delivery: Delivery::for_tests(i as i64 + 1, "evil", k, 3),
                bytes: vec![b'a' + i as u8; 3],
            })
            .collect();
        let built = build(dir.path(), members, None).unwrap();
        let jail = dir.path().join("jail");
        let inside = jail.join("x");
        std::fs::create_dir_all(&inside).unwrap();
        let out = std::process::Command::new("tar").arg("-xf").arg(built.file.path()).current_dir(&inside).output();
        let out = out.expect("the system's tar");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let beside: Vec<_> = std::fs::read_dir(&jail).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(beside, ["x"], "nothing beside the directory");
        for (i, m) in built.index.members.iter().enumerate() {
            let path = inside.join(&m.path);
            assert!(!m.path.starts_with('/') && !m.path.split('/').any(|c| c == ".." || c == "."), "{}", m.path);
            assert_eq!(std::fs::read(&path).unwrap(), vec![b'a' + i as u8; 3], "{}", m.path);
        }
    }
}
