//! The interactive wizard: five steps (S3, the bot, the backup chat, the admin chat, the
//! part size), each answer checked as it is given, then the file and the second factor.

use std::path::Path;
use std::time::Duration;

use super::enrol::{enrol, ledger_for};
use super::prompt::{Prompter, Reply, after_failure, ask, or_back, secret_prompt};
use super::{Answers, NEXT_STEPS, Outcome, check_s3};
use crate::config::file::write_private;
use crate::config::{ChatRef, Secret};
use crate::error::Result;
use crate::sink::TelegramSink;
use crate::sink::html::escape_html;
use crate::sink::limits::{
    CLOUD_MAX_PART_SIZE, DEFAULT_PART_SIZE, LOCAL_MAX_PART_SIZE, bot_id, check_part_size, is_cloud_api,
};
use crate::sizes::{human_size, parse_size};
use crate::source::explain;
use crate::totp;

/// The interactive wizard. `existing` says whether `target` exists (the caller already
/// passed the second-factor gate for it).
pub async fn interactive(
    p: &mut dyn Prompter,
    mut a: Answers,
    target: &Path,
    enrol_totp: bool,
    detect_wait: Duration,
) -> Result<Option<Outcome>> {
    p.say("tgploy setup: each answer is checked as you go. Type < to go back to the previous question.");
    if target.exists()
        && !p.confirm(&format!("{} exists. Replace it (the old one is kept as a backup)?", target.display()), false)?
    {
        p.say("Nothing changed.");
        return Ok(None);
    }
    let mut step = 0;
    while step < 5 {
        let moved = match step {
            0 => ask_s3(p, &mut a).await?,
            1 => ask_bot(p, &mut a).await?,
            2 => ask_chat(p, &mut a, false, detect_wait).await?,
            3 => ask_chat(p, &mut a, true, detect_wait).await?,
            _ => ask_part_size(p, &mut a)?,
        };
        match moved {
            Reply::Value(()) => step += 1,
            Reply::Back if step > 0 => step -= 1,
            Reply::Back => p.say("This is the first question."),
        }
    }
    let token = Secret::new(totp::random_token()?);
    p.say(&format!(
        "Webhook token (for bucket notifications; stored in the config, shown only now):\n  {}",
        token.expose()
    ));
    a.webhook_token = Some(token);
    finish(p, &a, target, enrol_totp).await.map(Some)
}

/// Writes the file, enrols the second factor, says what comes next.
async fn finish(p: &mut dyn Prompter, a: &Answers, target: &Path, enrol_totp: bool) -> Result<Outcome> {
    let backup = write_private(target, &a.to_toml())?;
    p.say(&format!("Wrote {} (mode 0600).", target.display()));
    if let Some(b) = &backup {
        p.say(&format!("The old file is kept as {}.", b.display()));
    }
    let enrolment = if enrol_totp { enrol(p, &ledger_for(a)?, false)? } else { None };
    p.say(NEXT_STEPS);
    Ok(Outcome { enrolment })
}

async fn ask_s3(p: &mut dyn Prompter, a: &mut Answers) -> Result<Reply<()>> {
    loop {
        p.say("Step 1 of 5 — S3: the server that holds the backups (RustFS, MinIO, Garage, Ceph, AWS).");
        let endpoint = or_back!(ask(p, "S3 endpoint URL", &a.s3_endpoint)?);
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            p.say("The endpoint is a URL like http://127.0.0.1:9000 or https://s3.example.com.");
            continue;
        }
        a.s3_endpoint = endpoint;
        a.s3_region = match ask(p, "Region", &a.s3_region)? {
            Reply::Value(v) => v,
            Reply::Back => continue,
        };
        a.s3_access_key = match ask(p, "Access key", &a.s3_access_key)? {
            Reply::Value(v) => v,
            Reply::Back => continue,
        };
        match p.secret(&secret_prompt("Secret key", &a.s3_secret_key))? {
            Reply::Value(v) if !v.is_empty() => a.s3_secret_key = Secret::new(v),
            Reply::Value(_) if !a.s3_secret_key.expose().is_empty() => {}
            Reply::Value(_) => {
                p.say("A secret key is needed.");
                continue;
            }
            Reply::Back => continue,
        }
        p.say("Checking: listing buckets…");
        match check_s3(a).await {
            Ok(buckets) => {
                p.say(&format!(
                    "✓ S3 answers; {} bucket(s): {}",
                    buckets.len(),
                    if buckets.is_empty() { "(none yet)".into() } else { buckets.join(", ") }
                ));
                return Ok(Reply::Value(()));
            }
            Err(e) => {
                p.say(&format!("✗ S3 check failed: {}", explain(&e)));
                if or_back!(after_failure(p)?) {
                    return Ok(Reply::Value(()));
                }
            }
        }
    }
}

async fn ask_bot(p: &mut dyn Prompter, a: &mut Answers) -> Result<Reply<()>> {
    loop {
        p.say("Step 2 of 5 — Telegram bot: the token @BotFather gave you.");
        match p.secret(&secret_prompt("Bot token", &a.bot_token))? {
            Reply::Value(v) if !v.trim().is_empty() => a.bot_token = Secret::new(v.trim()),
            Reply::Value(_) if !a.bot_token.expose().is_empty() => {}
            Reply::Value(_) => {
                p.say("A bot token is needed.");
                continue;
            }
            Reply::Back => return Ok(Reply::Back),
        }
        a.api_url = match ask(p, "Bot API server (a self-hosted one, or keep Telegram's)", &a.api_url)? {
            Reply::Value(v) => v,
            Reply::Back => continue,
        };
        p.say("Checking the token (getMe)…");
        let checked = match TelegramSink::for_setup(&a.bot_token, &a.api_url) {
            Ok(sink) => sink.check_bot(0).await,
            Err(e) => Err(e),
        };
        match checked {
            Ok(name) => {
                p.say(&format!("✓ The bot is @{name}."));
                return ask_more_bots(p, a).await;
            }
            Err(e) => {
                p.say(&format!("✗ Telegram check failed: {e}"));
                if or_back!(after_failure(p)?) {
                    return Ok(Reply::Value(()));
                }
            }
        }
    }
}

/// More bots, optional: each adds its own flood limit (about 20 messages a minute into a
/// group), so several deliver faster into the same chats.
async fn ask_more_bots(p: &mut dyn Prompter, a: &mut Answers) -> Result<Reply<()>> {
    loop {
        let prompt = "More bots for more throughput: their tokens, separated by commas (hidden; Enter for none)";
        let tokens: Vec<Secret> = match p.secret(prompt)? {
            Reply::Back => return Ok(Reply::Back),
            Reply::Value(v) => {
                v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| Secret::new(t.to_string())).collect()
            }
        };
        if tokens.is_empty() {
            if !a.more_bot_tokens.is_empty() {
                p.say(&format!("Keeping the {} more bot(s) configured.", a.more_bot_tokens.len()));
            }
            return Ok(Reply::Value(()));
        }
        let mut all_good = true;
        for token in &tokens {
            let checked = match TelegramSink::for_setup(token, &a.api_url) {
                Ok(sink) => sink.check_bot(0).await,
                Err(e) => Err(e),
            };
            match checked {
                Ok(name) => p.say(&format!("✓ Bot {} is @{name}.", bot_id(token.expose()).unwrap_or_default())),
                Err(e) => {
                    p.say(&format!("✗ {e}"));
                    all_good = false;
                }
            }
        }
        if all_good {
            a.more_bot_tokens = tokens;
            p.say("Add every bot to the backup chat (and the admin chat) with the right to post.");
            return Ok(Reply::Value(()));
        }
        p.say("Give the tokens again, or press Enter for none.");
    }
}

async fn ask_chat(p: &mut dyn Prompter, a: &mut Answers, admin: bool, detect_wait: Duration) -> Result<Reply<()>> {
    let (what, step) = if admin { ("admin chat (alerts, heartbeat)", 4) } else { ("backup chat", 3) };
    let sink = TelegramSink::for_setup(&a.bot_token, &a.api_url)?;
    loop {
        p.say(&format!("Step {step} of 5 — the {what}."));
        let mut items = vec![
            "Detect it: I send a message to the bot in that chat".to_string(),
            "Type the chat id (-100… or @channel)".to_string(),
        ];
        if admin {
            items.push("No admin chat (alerts wait in the ledger)".to_string());
        }
        let chat = match or_back!(p.select(&format!("How do you want to pick the {what}?"), &items, 0)?) {
            0 => match detect(p, &sink, detect_wait).await? {
                Some(chat) => chat,
                None => continue,
            },
            1 => {
                let current = if admin { &a.admin_chat } else { &a.backup_chat };
                let default = current.as_ref().map(|c| c.to_string()).unwrap_or_default();
                let typed = match ask(p, "Chat id", &default)? {
                    Reply::Value(v) => v,
                    Reply::Back => continue,
                };
                match typed.parse::<ChatRef>() {
                    Ok(c) => c,
                    Err(why) => {
                        p.say(&why);
                        continue;
                    }
                }
            }
            _ => {
                a.admin_chat = None;
                return Ok(Reply::Value(()));
            }
        };
        let text = format!(
            "<b>tgploy</b>: this chat will receive {}. (Test message from <code>tgploy setup</code>.)",
            escape_html(if admin { "alerts and the daily heartbeat" } else { "backups" })
        );
        match sink.send_text_to(&chat, &text).await {
            Ok(_) => {
                p.say(&format!("✓ Test message sent to {chat}."));
                if admin {
                    a.admin_chat = Some(chat);
                } else {
                    a.backup_chat = Some(chat);
                }
                return Ok(Reply::Value(()));
            }
            Err(e) => p.say(&format!("✗ The bot cannot post there: {e}")),
        }
    }
}

/// Waits for a message to the bot and lets the operator pick the chat it came from.
async fn detect(p: &mut dyn Prompter, sink: &TelegramSink, wait: Duration) -> Result<Option<ChatRef>> {
    p.say(&format!(
        "Send any message to the bot in that chat now (in a channel, post there; in a group, mention the bot). \
         Waiting up to {} s…",
        wait.as_secs()
    ));
    let deadline = std::time::Instant::now() + wait;
    let chats = loop {
        match sink.recent_chats().await {
            Ok(chats) if !chats.is_empty() => break chats,
            Ok(_) => {}
            Err(e) => {
                p.say(&format!("✗ Cannot read the bot's updates: {e}"));
                return Ok(None);
            }
        }
        if std::time::Instant::now() >= deadline {
            p.say("No message arrived. Check that the bot is in the chat, or type the chat id instead.");
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let items: Vec<String> = chats.iter().rev().map(|(c, name)| format!("{name} ({c})")).collect();
    match p.select("Which chat?", &items, 0)? {
        Reply::Value(i) => Ok(chats.iter().rev().nth(i).map(|(c, _)| c.clone())),
        Reply::Back => Ok(None),
    }
}

fn ask_part_size(p: &mut dyn Prompter, a: &mut Answers) -> Result<Reply<()>> {
    loop {
        p.say("Step 5 of 5 — part size: objects larger than this are sent in parts.");
        let items = vec![
            format!(
                "{} (default): every part can be restored automatically through the bot (cloud download limit 20 MiB)",
                human_size(DEFAULT_PART_SIZE)
            ),
            format!(
                "{} (cloud maximum): fewer messages, but parts must be downloaded by hand from a Telegram client to restore",
                human_size(CLOUD_MAX_PART_SIZE)
            ),
            format!(
                "Up to {} with a self-hosted Bot API server: restores read the parts from that server's disk",
                human_size(LOCAL_MAX_PART_SIZE)
            ),
        ];
        let default = if a.part_size == CLOUD_MAX_PART_SIZE {
            1
        } else if a.part_size > CLOUD_MAX_PART_SIZE {
            2
        } else {
            0
        };
        match or_back!(p.select("Part size", &items, default)?) {
            0 => a.part_size = DEFAULT_PART_SIZE,
            1 => a.part_size = CLOUD_MAX_PART_SIZE,
            _ => {
                if is_cloud_api(&a.api_url) {
                    p.say("Large parts need a self-hosted Bot API server: go back to step 2 and give its URL.");
                    continue;
                }
                let typed = match ask(p, "Part size (e.g. 500MiB)", "1950MiB")? {
                    Reply::Value(v) => v,
                    Reply::Back => continue,
                };
                match parse_size(&typed).and_then(|n| check_part_size(n, &a.api_url)) {
                    Ok(n) => a.part_size = n,
                    Err(why) => {
                        p.say(&format!("The part size {why}."));
                        continue;
                    }
                }
            }
        }
        return Ok(Reply::Value(()));
    }
}
