//! Fetching parts from Telegram: the cloud Bot API's download limit checked up front, each
//! part located (`getFile`) right before its download and checked against its size and
//! SHA-256 as it streams past.

use std::io;

use sha2::{Digest, Sha256};

use super::ObjectError;
use super::plan::{Plan, PlanPart};
use crate::progress::Progress;
use crate::shell::quote_path;
use crate::sink::limits::{CLOUD_DOWNLOAD_LIMIT, is_cloud_api};
use crate::sink::{RemoteFile, SinkError, TelegramSink};
use crate::sizes::human_size;

/// The manual route, for parts the bot cannot download.
pub(super) fn manual_route(plan: &Plan) -> String {
    let name = plan.stored_name();
    if plan.member.is_some() {
        let chat = plan.chat.as_deref().map(|c| format!("chat {c}")).unwrap_or_else(|| "the backup chat".into());
        let (bucket, key) = plan.label.split_once('/').unwrap_or((&plan.label, ""));
        let member = crate::deliver::pack::member_path(bucket, key);
        let extract = if plan.encrypted {
            format!("age -d -i KEY {} | tar -x {}", quote_path(&name), quote_path(&member))
        } else {
            format!("tar -xf {} {}", quote_path(&name), quote_path(&member))
        };
        return format!("download the pack `{name}` by hand in a Telegram client (in {chat}), then run `{extract}`");
    }
    let chat = plan.chat.as_deref().map(|c| format!("chat {c}")).unwrap_or_else(|| "the backup chat".into());
    format!(
        "download the parts by hand in a Telegram client (documents `{name}.part…` in {chat}), then run \
         `tgploy join {}.part* --manifest {} --out {}`",
        quote_path(&name),
        quote_path(&format!("{}.tgploy.json", plan.file_name)),
        quote_path(&plan.file_name)
    )
}

/// Refuses up front when the Bot API is Telegram's cloud and a part is over its download
/// limit (20 MiB).
pub(super) fn check_download_limit(plan: &Plan, api_url: &str) -> Result<(), ObjectError> {
    if !is_cloud_api(api_url) {
        return Ok(());
    }
    let count = plan.parts.len();
    match plan.parts.iter().find(|p| p.size > CLOUD_DOWNLOAD_LIMIT) {
        Some(p) => Err(ObjectError::Object(format!(
            "{} of {} is {}, over the cloud Bot API's download limit of 20 MiB, so the bot cannot fetch it; {}",
            p.label(count),
            plan.label,
            human_size(p.size),
            manual_route(plan)
        ))),
        None => Ok(()),
    }
}

fn part_failure(plan: &Plan, part: &PlanPart, e: SinkError) -> ObjectError {
    let label = format!("{} of {}", part.label(plan.parts.len()), plan.label);
    match e {
        // Nothing more can be fetched in this run: Telegram is down, the token refused.
        e if e.is_outage() || matches!(e, SinkError::Unauthorized { .. }) => ObjectError::Run(e.into()),
        SinkError::TooBigToDownload { .. } => ObjectError::Object(format!("{label}: {e}; {}", manual_route(plan))),
        SinkError::UnknownFile(_) | SinkError::UnknownBot(_) | SinkError::LinkRefused { .. } => {
            ObjectError::Object(format!("{label} cannot be fetched: {e}; {}", manual_route(plan)))
        }
        e => ObjectError::Object(format!("{label}: {e}")),
    }
}

/// Refuses up front, before any download, an object with a part whose bot's token is no
/// longer configured (only that bot can download it), naming the bot and the object.
pub(crate) fn check_bots(plan: &Plan, sink: &TelegramSink) -> Result<(), ObjectError> {
    let count = plan.parts.len();
    match plan.parts.iter().find(|p| p.file_id.is_some() && sink.bot_index(p.bot_id).is_none()) {
        Some(p) => Err(ObjectError::Object(format!(
            "{} of {} cannot be fetched: {}; or {}",
            p.label(count),
            plan.label,
            SinkError::UnknownBot(p.bot_id.unwrap_or_default()),
            manual_route(plan)
        ))),
        None => Ok(()),
    }
}

/// Locates one part (`getFile`) and checks that Telegram has it at its recorded size.
pub(super) async fn locate_part(sink: &TelegramSink, plan: &Plan, part: &PlanPart) -> Result<RemoteFile, ObjectError> {
    let count = plan.parts.len();
    let Some(file_id) = &part.file_id else {
        return Err(ObjectError::Object(format!(
            "{} of {} has no Telegram file id; {}",
            part.label(count),
            plan.label,
            manual_route(plan)
        )));
    };
    let file = sink.locate(part.bot_id, file_id).await.map_err(|e| part_failure(plan, part, e))?;
    if file.size != 0 && file.size != part.size {
        return Err(ObjectError::Object(format!(
            "{} of {} is {} bytes in Telegram, not the {} recorded; it is not the part that was sent",
            part.label(count),
            plan.label,
            file.size,
            part.size
        )));
    }
    Ok(file)
}

/// Checks a part's bytes as they stream past: size and SHA-256.
pub(super) struct PartCheck {
    pub(super) hasher: Sha256,
    pub(super) len: u64,
}

impl PartCheck {
    pub(super) fn new() -> Self {
        PartCheck { hasher: Sha256::new(), len: 0 }
    }

    pub(super) fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// `None` when the part is what the plan says, else what is wrong with it.
    pub(super) fn verdict(self, part: &PlanPart) -> Option<String> {
        if self.len != part.size {
            return Some(format!("is {} bytes, expected {}", self.len, part.size));
        }
        let sha = hex::encode(self.hasher.finalize());
        (sha != part.sha256).then(|| format!("is corrupt: its SHA-256 is {sha}, expected {}", part.sha256))
    }
}

impl io::Write for PartCheck {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Downloads one located part, checking it, and hands every chunk to `each`.
pub(super) async fn fetch_checked(
    sink: &TelegramSink,
    plan: &Plan,
    part: &PlanPart,
    file: &RemoteFile,
    progress: &Progress,
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<(), ObjectError> {
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
        Some(why) => Err(ObjectError::Object(format!(
            "{} of {} {why} (downloaded from Telegram); {}",
            part.label(plan.parts.len()),
            plan.label,
            manual_route(plan)
        ))),
    }
}

pub(super) fn whole_as_part(plan: &Plan) -> PlanPart {
    PlanPart {
        index: 0,
        file_name: plan.stored_name(),
        size: plan.size,
        sha256: plan.sha256.clone(),
        file_id: None,
        bot_id: None,
    }
}
