//! `files` subcommand: the ad-hoc restore listing of delivered objects.

use serde::Serialize;

use crate::cli::FilesArgs;
use crate::commands::Context;
use tgploy::error::Result;
use tgploy::output;
use tgploy::sizes::human_size;
use tgploy::time::{rfc3339, rfc3339_ms};

#[derive(Serialize)]
struct FileView {
    bucket: String,
    key: String,
    etag: String,
    size: u64,
    last_modified: Option<String>,
    sent_at: Option<String>,
    sha256: Option<String>,
    parts: Vec<PartView>,
    manifest_message_id: Option<i64>,
    manifest_file_id: Option<String>,
    /// The pack it travelled in: its one part lies in the pack's tar at `offset`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pack: Option<PackView>,
}

#[derive(Serialize)]
struct PackView {
    file_name: String,
    message_id: i64,
    file_id: String,
    size: u64,
    sha256: String,
    encrypted: bool,
    members: u32,
    offset: u64,
}

#[derive(Serialize)]
struct PartView {
    index: u32,
    file_name: String,
    size: u64,
    sha256: String,
    message_id: i64,
    file_id: Option<String>,
}

pub(crate) fn run(ctx: &Context, args: &FilesArgs) -> Result<()> {
    let ledger = ctx.ledger()?;
    let files = ledger.delivered(args.bucket.as_deref(), args.prefix.as_deref())?;
    let views: Vec<FileView> = files
        .into_iter()
        .map(|f| FileView {
            pack: f.pack.map(|p| PackView {
                file_name: p.file_name,
                message_id: p.message_id,
                file_id: p.file_id,
                size: p.size,
                sha256: p.sha256,
                encrypted: p.encrypted,
                members: p.members,
                offset: f.parts.first().map_or(0, |part| part.offset),
            }),
            bucket: f.delivery.object.bucket,
            key: f.delivery.object.key,
            etag: f.delivery.object.etag,
            size: f.delivery.object.size,
            last_modified: f.delivery.object.last_modified_ms.map(rfc3339_ms),
            sent_at: f.delivery.sent_at.map(rfc3339),
            sha256: f.delivery.sha256,
            manifest_message_id: f.delivery.manifest_message_id,
            manifest_file_id: f.delivery.manifest_file_id,
            parts: f
                .parts
                .into_iter()
                .map(|p| PartView {
                    index: p.idx,
                    file_name: p.file_name,
                    size: p.size,
                    sha256: p.sha256,
                    message_id: p.message_id,
                    file_id: p.file_id,
                })
                .collect(),
        })
        .collect();
    if args.json {
        return output::print_json(&views);
    }
    if views.is_empty() {
        return output::print("no delivered objects match\n");
    }
    let mut t = output::table(&["Bucket", "Key", "Size", "Sent", "Parts", "Messages", "SHA-256"]);
    for v in &views {
        t.add_row(vec![
            v.bucket.clone(),
            v.key.clone(),
            human_size(v.size),
            v.sent_at.clone().unwrap_or_default(),
            if v.pack.is_some() { "in pack".to_string() } else { v.parts.len().to_string() },
            message_ids(v),
            v.sha256.as_deref().map(short_hash).unwrap_or_default().to_string(),
        ]);
    }
    output::print(&format!("{t}\n"))
}

/// How much of a SHA-256 the table shows: enough to tell objects apart and to compare
/// by eye, short enough for a 100-column terminal. `--json` has the whole hash.
const SHORT_HASH: usize = 12;

fn short_hash(sha256: &str) -> &str {
    sha256.get(..SHORT_HASH).unwrap_or(sha256)
}

/// Message ids as runs: `12-40, 42 (manifest 43)`.
fn message_ids(v: &FileView) -> String {
    let ids: Vec<i64> = v.parts.iter().map(|p| p.message_id).collect();
    let mut runs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        runs.push(if i == j { ids[i].to_string() } else { format!("{}-{}", ids[i], ids[j]) });
        i = j + 1;
    }
    let mut s = runs.join(", ");
    if let Some(p) = &v.pack {
        s.push_str(&format!(" (pack {}, {} objects)", p.file_name, p.members));
    }
    if let Some(m) = v.manifest_message_id {
        s.push_str(&format!(" (manifest {m})"));
    }
    s
}
