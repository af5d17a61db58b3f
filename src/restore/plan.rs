//! What to rebuild and how to check it: from the ledger, or from a manifest alone.

use std::path::Path;

use crate::deliver::layout::{EMPTY_SHA256, base_name};
use crate::deliver::manifest::{self, Manifest};
use crate::error::{Error, Result};
use crate::ledger::{Delivery, Pack, Part};

/// One part of the stored stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlanPart {
    /// 1-based.
    pub(crate) index: u32,
    pub(crate) file_name: String,
    pub(crate) size: u64,
    pub(crate) sha256: String,
    /// Absent for the text message that stands in for an empty object.
    pub(crate) file_id: Option<String>,
    /// The bot that sent it (`None`: the first configured bot).
    pub(crate) bot_id: Option<i64>,
}

impl PlanPart {
    /// `part 2 of 5 (dump.sql.part002)`, for messages.
    pub(crate) fn label(&self, count: usize) -> String {
        format!("part {} of {count} ({})", self.index, self.file_name)
    }
}

/// An object to rebuild: its stored stream, part by part, and the checks it must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// `bucket/key`.
    pub(crate) label: String,
    /// The original's name (never a path).
    pub(crate) file_name: String,
    /// Bytes and SHA-256 of the stored stream (the age file when encrypted).
    pub(crate) size: u64,
    pub(crate) sha256: String,
    /// The stored stream is an age file of the object.
    pub(crate) encrypted: bool,
    /// The original's size and SHA-256 when the manifest gives them (encrypted objects).
    pub(crate) plaintext: Option<(u64, String)>,
    pub(crate) parts: Vec<PlanPart>,
    /// The chat its parts are in, where the ledger knows it: for the manual route.
    pub(crate) chat: Option<String>,
    /// For an object that travelled in a pack: where its bytes lie in the pack's tar
    /// (decrypted, when the pack is encrypted). The stored stream (`size`, `sha256`, the
    /// one part) is then the pack's document.
    pub(crate) member: Option<Member>,
}

/// Where an object's bytes lie in its pack's tar, and what they hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

impl Plan {
    /// The name the stored stream joins to: `name`, or `name.age` when encrypted; a
    /// pack's document for an object that travelled in one.
    pub(crate) fn stored_name(&self) -> String {
        if self.member.is_some() {
            return self.parts.first().map(|p| p.file_name.clone()).unwrap_or_default();
        }
        if self.encrypted { format!("{}{}", self.file_name, crate::crypt::SUFFIX) } else { self.file_name.clone() }
    }

    /// A delivery recorded as sent in the ledger (with the pack it travelled in, if it
    /// did).
    pub(crate) fn from_delivery(d: &Delivery, parts: &[Part], pack: Option<&Pack>) -> Result<Plan> {
        let label = format!("{}/{}", d.object.bucket, d.object.key);
        if let Some(pack) = pack {
            return Plan::of_member(d, parts, pack);
        }
        let sha256 = d.sha256.clone().ok_or_else(|| {
            Error::Failed(format!("the ledger has no SHA-256 for {label}; restore it from its manifest"))
        })?;
        let empty = d.object.size == 0;
        let plan = Plan {
            label,
            file_name: base_name(&d.object.key),
            size: if empty { 0 } else { parts.iter().map(|p| p.size).sum() },
            sha256: if empty { EMPTY_SHA256.into() } else { sha256 },
            encrypted: d.encrypted,
            plaintext: d.plaintext_sha256.clone().filter(|_| d.encrypted).map(|sha| (d.object.size, sha)),
            chat: d.chat.clone(),
            member: None,
            parts: if empty {
                Vec::new()
            } else {
                parts
                    .iter()
                    .map(|p| PlanPart {
                        index: p.idx,
                        file_name: p.file_name.clone(),
                        size: p.size,
                        sha256: p.sha256.clone(),
                        file_id: p.file_id.clone(),
                        bot_id: p.bot_id,
                    })
                    .collect()
            },
        };
        plan.check_shape().map_err(|why| Error::Failed(format!("the ledger's record of {}: {why}", plan.label)))?;
        Ok(plan)
    }

    /// An object that travelled in `pack`: the pack's document is the one part to fetch,
    /// and the object's bytes lie in it where its part row says.
    fn of_member(d: &Delivery, parts: &[Part], pack: &Pack) -> Result<Plan> {
        let label = format!("{}/{}", d.object.bucket, d.object.key);
        let [part] = parts else {
            return Err(Error::Failed(format!(
                "the ledger's record of {label}: it travelled in pack {} but has {} parts, not one",
                pack.file_name,
                parts.len()
            )));
        };
        let plan = Plan {
            label,
            file_name: base_name(&d.object.key),
            member: Some(Member { offset: part.offset, size: part.size, sha256: part.sha256.clone() }),
            ..Plan::of_pack(pack)
        };
        plan.check_shape().map_err(|why| Error::Failed(format!("the ledger's record of {}: {why}", plan.label)))?;
        Ok(plan)
    }

    /// A pack's document as a whole: one part, the tar (or its age file).
    pub(crate) fn of_pack(pack: &Pack) -> Plan {
        Plan {
            label: format!("pack {}", pack.file_name),
            // The tar's name: the stored name is the document's.
            file_name: pack.file_name.strip_suffix(crate::crypt::SUFFIX).unwrap_or(&pack.file_name).to_string(),
            size: pack.size,
            sha256: pack.sha256.clone(),
            encrypted: pack.encrypted,
            plaintext: None,
            chat: pack.chat.clone(),
            parts: vec![PlanPart {
                index: 1,
                file_name: pack.file_name.clone(),
                size: pack.size,
                sha256: pack.sha256.clone(),
                file_id: Some(pack.file_id.clone()),
                bot_id: pack.bot_id,
            }],
            member: None,
        }
    }

    /// A manifest (`NAME.tgploy.json`) as downloaded from the chat.
    pub(crate) fn from_manifest_file(path: &Path) -> Result<Plan> {
        let bad = |why: String| {
            Error::usage(format!(
                "manifest {}: {why}; download the `.tgploy.json` document sent after the last part again",
                path.display()
            ))
        };
        let text = std::fs::read(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
        let m: Manifest = serde_json::from_slice(&text).map_err(|e| bad(format!("is not a tgploy manifest ({e})")))?;
        Plan::from_manifest(&m).map_err(bad)
    }

    pub(crate) fn from_manifest(m: &Manifest) -> std::result::Result<Plan, String> {
        if m.format != manifest::FORMAT {
            return Err(format!("its format is `{}`, not `{}`", m.format, manifest::FORMAT));
        }
        if m.version > manifest::VERSION {
            return Err(format!("it was written by a newer tgploy (manifest version {}); upgrade tgploy", m.version));
        }
        let encrypted = match &m.encryption {
            None => false,
            Some(e) if e.scheme == crate::crypt::SCHEME => true,
            Some(e) => return Err(format!("its encryption scheme `{}` is unknown", e.scheme)),
        };
        let plan = Plan {
            label: format!("{}/{}", m.bucket, m.key),
            file_name: base_name(&m.file_name),
            size: m.size,
            sha256: m.sha256.clone(),
            encrypted,
            plaintext: m.encryption.as_ref().map(|e| (e.plaintext_size, e.plaintext_sha256.clone())),
            chat: None,
            member: None,
            parts: m
                .parts
                .iter()
                .map(|p| PlanPart {
                    index: p.index,
                    file_name: base_name(&p.file_name),
                    size: p.size,
                    sha256: p.sha256.clone(),
                    file_id: Some(p.file_id.clone()).filter(|f| !f.is_empty()),
                    bot_id: p.bot_id,
                })
                .collect(),
        };
        plan.check_shape()?;
        Ok(plan)
    }

    /// Parts numbered 1..=n, sizes adding up, hashes that look like SHA-256.
    fn check_shape(&self) -> std::result::Result<(), String> {
        for (i, p) in self.parts.iter().enumerate() {
            if p.index as usize != i + 1 {
                return Err(format!("part {} is missing from the list of parts", i + 1));
            }
            if !is_sha256(&p.sha256) {
                return Err(format!("{} has no valid SHA-256", p.label(self.parts.len())));
            }
        }
        let sum: u64 = self.parts.iter().map(|p| p.size).sum();
        if sum != self.size {
            return Err(format!("its parts add up to {sum} bytes, not the {} it says", self.size));
        }
        if !is_sha256(&self.sha256) {
            return Err("it has no valid SHA-256 of the whole".into());
        }
        Ok(())
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
