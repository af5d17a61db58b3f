//! `doctor`: the checks of `setup`, run on an existing configuration, as a checklist with a
//! fix for each failure. Never prints a secret.

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, Destination, TelegramSettings};
use crate::ledger::{Bucket, Ledger};
use crate::shell::quote;
use crate::sink::{SinkError, TelegramSink};
use crate::source::S3Source;
use crate::source::explain;

/// TOTP codes are accepted one 30 s step early or late; S3 signatures within 15 minutes.
pub(crate) const MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// One check of `doctor`, and how it went.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// What was checked, like `S3` or `ledger`.
    pub name: String,
    /// Whether the check passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// How to fix a failure; `None` when the check passed.
    pub fix: Option<String>,
}

fn pass(name: &str, detail: impl Into<String>) -> Check {
    Check { name: name.into(), ok: true, detail: detail.into(), fix: None }
}

fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name: name.into(), ok: false, detail: detail.into(), fix: Some(fix.into()) }
}

/// Runs every check; a failing one does not stop the others (a check that depends on a
/// failed one says so).
pub async fn examine(cfg: &Config) -> Vec<Check> {
    let mut checks = vec![config_file(cfg)];

    // SQLite blocks: the ledger is opened and read off the async runtime.
    let path = cfg.database_path();
    let ledger = crate::ledger::off_runtime(move || {
        let ledger = Ledger::open(&path?)?;
        ledger.probe_writable()?;
        let buckets = ledger.buckets()?;
        Ok((ledger.path().display().to_string(), buckets))
    })
    .await;
    let known = match ledger {
        Ok((path, buckets)) => {
            checks.push(pass("ledger", format!("{path} is writable")));
            Some(buckets)
        }
        Err(e) => {
            checks.push(fail("ledger", e.to_string(), "check DATABASE_PATH (`database_path`) and its permissions"));
            None
        }
    };

    match cfg.require_s3() {
        Err(e) => checks.push(fail("S3", e.to_string(), "run `tgploy setup`, or set the missing setting")),
        Ok(s3) => {
            let source = S3Source::new(&s3);
            match source.list_buckets().await {
                Err(e) => {
                    checks.push(fail(
                        "S3",
                        explain(&e).replace('\n', ""),
                        "check `s3.endpoint`, the keys, and that the server runs",
                    ));
                    checks.push(fail("buckets", "not checked: S3 cannot be reached", "fix the S3 check first"));
                }
                Ok(on_server) => {
                    checks.push(pass("S3", format!("{} answers; {} bucket(s)", s3.endpoint, on_server.len())));
                    checks.extend(buckets(cfg, known.as_deref(), &source, &on_server).await);
                }
            }
            checks.push(clock("S3 server", &s3.endpoint, source.clocks().await));
        }
    }

    match cfg.require_telegram() {
        Err(e) => checks.push(fail("Telegram bot", e.to_string(), "run `tgploy setup`, or set the missing setting")),
        Ok(tg) => match TelegramSink::new(&tg) {
            Err(e) => checks.push(fail("Telegram bot", e.to_string(), "check `telegram.api_url`")),
            Ok(sink) => checks.extend(telegram(cfg, &tg, &sink).await),
        },
    }
    checks
}

fn config_file(cfg: &Config) -> Check {
    let Some(path) = &cfg.file else {
        return pass("config file", "none: settings come from the environment");
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                return fail(
                    "config file",
                    format!(
                        "{} is readable by other users (mode {:o}) and holds secrets",
                        path.display(),
                        meta.permissions().mode() & 0o777
                    ),
                    format!("chmod 600 {}", path.display()),
                );
            }
            Ok(_) => {}
            Err(e) => return fail("config file", format!("{}: {e}", path.display()), "check the path and permissions"),
        }
    }
    pass("config file", format!("{} is readable and private", path.display()))
}

async fn buckets(cfg: &Config, known: Option<&[Bucket]>, source: &S3Source, on_server: &[String]) -> Vec<Check> {
    // Enabled buckets per the ledger; buckets it does not know yet follow the default.
    let known = known.unwrap_or_default();
    let mut enabled: Vec<String> = on_server
        .iter()
        .filter(|name| known.iter().find(|b| &b.name == *name).map(|b| b.enabled).unwrap_or(cfg.enable_new_buckets))
        .cloned()
        .collect();
    let gone: Vec<String> =
        known.iter().filter(|b| b.enabled && !on_server.contains(&b.name)).map(|b| b.name.clone()).collect();
    enabled.sort();
    let mut checks = Vec::new();
    for name in &enabled {
        match source.probe_bucket(name).await {
            Ok(()) => checks.push(pass(&format!("bucket {name}"), "listable")),
            Err(e) => checks.push(fail(
                &format!("bucket {name}"),
                e.to_string(),
                format!("give the access key s3:ListBucket on {name}, or `tgploy buckets disable {}`", quote(name)),
            )),
        }
    }
    for name in gone {
        checks.push(fail(
            &format!("bucket {name}"),
            "enabled, but the server no longer lists it",
            format!("`tgploy buckets disable {}` if it was deleted on purpose", quote(&name)),
        ));
    }
    if enabled.is_empty() && checks.is_empty() {
        checks.push(pass("buckets", "no enabled bucket yet"));
    }
    checks
}

/// Every bot (`getMe`), then every destination (the backup chat, the admin chat, each
/// bucket's own) with every bot that answered: each may post there, in its topic.
async fn telegram(cfg: &Config, tg: &TelegramSettings, sink: &TelegramSink) -> Vec<Check> {
    let mut checks = Vec::new();
    let ids = sink.bot_ids();
    let several = ids.len() > 1;
    let mut working = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let name = if several { format!("Telegram bot {id}") } else { "Telegram bot".to_string() };
        match sink.check_bot(i).await {
            Ok(username) => {
                checks.push(pass(&name, format!("@{username} at {}", sink.endpoint())));
                working.push((i, *id));
            }
            Err(e) => checks.push(fail(
                &name,
                e.to_string(),
                "check the token with @BotFather (`telegram.bot_token`, `telegram.bot_tokens`) and `telegram.api_url`",
            )),
        }
    }
    if working.is_empty() {
        return checks;
    }
    let mut destinations = vec![("backup chat".to_string(), tg.backup.clone(), "telegram.backup_chat_id".to_string())];
    match &tg.admin {
        Some(admin) => destinations.push(("admin chat".into(), admin.clone(), "telegram.admin_chat_id".into())),
        None => checks.push(pass(
            "admin chat",
            "not configured: alerts wait in the ledger (set `telegram.admin_chat_id` to receive them)",
        )),
    }
    for (bucket, own) in &cfg.buckets {
        if let Some(setting) = own.own_destination()
            && let Ok(dest) = cfg.destination_for(bucket)
        {
            destinations.push((format!("chat of bucket {bucket}"), dest, format!("buckets.{bucket}.{setting}")));
        }
    }
    for (name, dest, setting) in destinations {
        checks.push(destination(sink, &working, &name, &dest, &setting).await);
    }
    checks.push(clock("Bot API server", sink.endpoint(), sink.clocks().await));
    checks
}

/// Every bot may post to `dest`; a topic is checked too (a forum, and the topic itself with
/// a message posted and deleted by the first bot: the one request that checks a topic).
async fn destination(
    sink: &TelegramSink,
    bots: &[(usize, i64)],
    name: &str,
    dest: &Destination,
    setting: &str,
) -> Check {
    let mut refused = Vec::new();
    let mut notes = Vec::new();
    for (n, (i, id)) in bots.iter().enumerate() {
        match sink.check_destination(*i, dest, setting, n == 0).await {
            Ok(note) => notes.extend(note),
            Err(e) => refused.push((*id, e)),
        }
    }
    let who = if bots.len() > 1 { "every bot" } else { "the bot" };
    let fix = |bots: &str| match (&refused.first(), dest.topic) {
        (Some((_, SinkError::NotForum { .. })), _) => {
            format!("turn topics on in {} (a forum supergroup), or remove `{setting}`", dest.chat)
        }
        (Some((_, SinkError::Topic { .. } | SinkError::Misplaced { .. })), Some(topic)) => {
            format!("create topic {topic} in {}, or correct `{setting}`", dest.chat)
        }
        _ => format!("add {bots} to {} with the right to post, or correct `{setting}`", dest.chat),
    };
    match refused.first() {
        None => {
            let checked =
                if dest.topic.is_some() { " (a forum; a test message there was posted and deleted)" } else { "" };
            let notes = if notes.is_empty() { String::new() } else { format!("; {}", notes.join("; ")) };
            pass(name, format!("{who} may post to {dest}{checked}{notes}"))
        }
        Some((_, e)) if bots.len() == 1 => fail(name, e.to_string(), fix("the bot")),
        Some((_, e)) => {
            let ids: Vec<String> = refused.iter().map(|(id, _)| id.to_string()).collect();
            fail(
                name,
                format!("bot {} cannot post there: {e}", ids.join(", ")),
                fix(&format!("bot {}", ids.join(", "))),
            )
        }
    }
}

/// Compares this machine's clock with a server's (its `Date` header, as asked of it).
fn clock<E: std::fmt::Display>(what: &str, url: &str, asked: Result<Option<crate::time::Clocks>, E>) -> Check {
    let name = format!("clock vs {what}");
    let (ours, theirs) = match asked {
        Err(e) => return fail(&name, format!("cannot ask {url} for the time: {e}"), "fix the connection first"),
        Ok(None) => return pass(&name, format!("{url} sends no readable Date header; not measured")),
        Ok(Some(clocks)) => clocks,
    };
    let skew = ours.duration_since(theirs).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
    if skew > MAX_CLOCK_SKEW + Duration::from_secs(1) {
        fail(
            &name,
            format!("this machine's clock is {}s off {url}", skew.as_secs()),
            "synchronise the clock (systemd-timesyncd, chrony): codes and S3 signatures depend on it",
        )
    } else {
        pass(&name, format!("within {}s", skew.as_secs()))
    }
}
