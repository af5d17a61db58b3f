//! `setup`: a guided first run that checks every connection as it goes, writes a private
//! config file and enrols the second factor.
//!
//! The wizard talks to the operator through [`Prompter`], so that its logic runs the same
//! on a terminal (dialoguer, [`terminal::TerminalPrompter`]) and in tests (scripted
//! answers). Every question has a way back: `<` at a text prompt, "← Back" in a menu.

pub mod start;
pub mod terminal;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::file::{self, write_private};
use crate::config::{
    CLOUD_API_URL, CLOUD_MAX_PART_SIZE, ChatRef, DEFAULT_PART_SIZE, LOCAL_MAX_PART_SIZE, S3Settings, Secret,
    check_part_size, is_cloud_api,
};
use crate::error::{Error, Result};
use crate::html::escape_html;
use crate::ledger::Ledger;
use crate::sink::TelegramSink;
use crate::source::{S3Source, SourceError};
use crate::totp;
use crate::units::{human_size, parse_size};

/// An answer, or the wish to go back one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    Value(T),
    Back,
}

/// How the wizard asks.
pub trait Prompter {
    /// Shows a line of information.
    fn say(&mut self, text: &str);
    /// A line of text; `<` means back.
    fn input(&mut self, prompt: &str, default: Option<&str>) -> Result<Answer<String>>;
    /// A secret (not echoed); `<` means back.
    fn secret(&mut self, prompt: &str) -> Result<Answer<String>>;
    /// One of `items`; the prompter adds the way back.
    fn select(&mut self, prompt: &str, items: &[String], default: usize) -> Result<Answer<usize>>;
    /// Yes or no.
    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool>;
}

/// Everything `setup` asks for, and what it writes.
#[derive(Debug, Clone)]
pub struct Answers {
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key: String,
    pub s3_secret_key: Secret,
    pub bot_token: Secret,
    /// More bots (`telegram.bot_tokens`).
    pub more_bot_tokens: Vec<Secret>,
    pub api_url: String,
    pub backup_chat: Option<ChatRef>,
    pub admin_chat: Option<ChatRef>,
    pub part_size: u64,
    pub webhook_token: Option<Secret>,
    pub database_path: Option<PathBuf>,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            s3_endpoint: "http://127.0.0.1:9000".into(),
            s3_region: "us-east-1".into(),
            s3_access_key: String::new(),
            s3_secret_key: Secret::new(""),
            bot_token: Secret::new(""),
            more_bot_tokens: Vec::new(),
            api_url: CLOUD_API_URL.into(),
            backup_chat: None,
            admin_chat: None,
            part_size: DEFAULT_PART_SIZE,
            webhook_token: None,
            database_path: None,
        }
    }
}

impl Answers {
    /// The config file these answers make.
    pub fn to_toml(&self) -> String {
        file::render(&file::NewFile {
            part_size: self.part_size,
            database_path: self.database_path.as_deref(),
            s3: &self.s3(),
            bot_token: &self.bot_token,
            more_bot_tokens: &self.more_bot_tokens,
            api_url: &self.api_url,
            backup_chat: self.backup_chat.as_ref(),
            admin_chat: self.admin_chat.as_ref(),
            webhook_token: self.webhook_token.as_ref(),
        })
    }

    fn s3(&self) -> S3Settings {
        S3Settings {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key: self.s3_access_key.clone(),
            secret_key: self.s3_secret_key.clone(),
        }
    }
}

/// What an S3 failure most likely means, for people.
pub fn explain_s3(e: &SourceError) -> String {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let hint = if lower.contains("dns") || lower.contains("failed to lookup") || lower.contains("name or service") {
        "the host name does not resolve (DNS): check the endpoint"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
        "TLS failed: check http:// versus https:// and the server's certificate"
    } else if lower.contains("connection refused") {
        "nothing listens there: check the host and port"
    } else if lower.contains("signaturedoesnotmatch") {
        "the signature does not match: the secret key is wrong (or the clock is far off)"
    } else if lower.contains("invalidaccesskeyid") {
        "the access key is unknown to the server"
    } else if lower.contains("accessdenied") || matches!(e, SourceError::Denied { .. }) {
        "access denied: the key may not list buckets"
    } else {
        "see the error above"
    };
    format!("{text}\n  → {hint}")
}

/// What setup did, for its summary.
pub struct Outcome {
    pub config_path: PathBuf,
    pub backup_of_old: Option<PathBuf>,
    /// Shown once: the otpauth URL and the recovery codes.
    pub enrolment: Option<totp::Enrolment>,
}

const NEXT_STEPS: &str = "Next steps:
  1. tgploy sync --dry-run        # see what would be sent
  2. tgploy sync                  # send it
  3. Install the timers (examples/systemd/ in the source):
       cp tgploy-{sync,retry,heartbeat}.{service,timer} /etc/systemd/system/
       systemctl enable --now tgploy-sync.timer tgploy-retry.timer tgploy-heartbeat.timer
  4. For delivery within seconds: tgploy serve-webhook (see the README, Bucket notifications)
  5. For a web dashboard: tgploy setup dashboard, then tgploy dashboard (see the README, Dashboard)
  6. tgploy doctor                # checks all of the above at any time";

/// Checks the S3 settings by listing buckets; returns their names.
pub async fn check_s3(answers: &Answers) -> std::result::Result<Vec<String>, SourceError> {
    S3Source::new(&answers.s3()).list_buckets().await
}

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
            Answer::Value(()) => step += 1,
            Answer::Back if step > 0 => step -= 1,
            Answer::Back => p.say("This is the first question."),
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
    Ok(Outcome { config_path: target.to_path_buf(), backup_of_old: backup, enrolment })
}

/// Enrols without a confirming code (nobody can type one): the secret and recovery codes
/// are shown once.
pub fn enrol_unattended(p: &mut dyn Prompter, ledger: &Ledger) -> Result<totp::Enrolment> {
    let e = totp::new_enrolment(&account_name())?;
    totp::store(ledger, &e)?;
    p.say(&format!("Second factor enrolled; add it to your authenticator app: {}", e.url));
    p.say(&format!("Recovery codes (each works once; shown only now): {}", e.recovery_codes.join(" ")));
    Ok(e)
}

fn ledger_for(a: &Answers) -> Result<Ledger> {
    let path = match &a.database_path {
        Some(p) => p.clone(),
        None => directories::ProjectDirs::from("", "", "tgploy")
            .map(|d| d.data_dir().join("ledger.sqlite3"))
            .ok_or_else(|| Error::config("no home directory for the ledger: set DATABASE_PATH"))?,
    };
    Ledger::open(&path)
}

/// Shows a new secret (URL and QR code), asks for a current code, stores it with the
/// recovery codes, which are shown once.
pub fn enrol(p: &mut dyn Prompter, ledger: &Ledger, replace: bool) -> Result<Option<totp::Enrolment>> {
    if !replace && totp::enrolled(ledger)? {
        p.say("A second factor is already enrolled; `tgploy setup totp --reset` replaces it.");
        return Ok(None);
    }
    let enrolment = totp::new_enrolment(&account_name())?;
    p.say("Second factor: add this to your authenticator app (scan the QR code or open the URL):");
    p.say(&enrolment.url);
    if let Ok(qr) = qrcode::QrCode::new(enrolment.url.as_bytes()) {
        p.say(&qr.render::<qrcode::render::unicode::Dense1x2>().quiet_zone(true).build());
    }
    loop {
        match p.input("Current 6-digit code from the app (or `skip`)", None)? {
            Answer::Back => continue,
            Answer::Value(v) if v.trim().eq_ignore_ascii_case("skip") => {
                p.say("Second factor skipped; enrol later with `tgploy setup totp --reset`.");
                return Ok(None);
            }
            Answer::Value(code) if totp::confirms(&enrolment, &code) => break,
            Answer::Value(_) => p.say("That code does not match; check the app's clock and try the current code."),
        }
    }
    totp::store(ledger, &enrolment)?;
    p.say("Second factor enrolled. Recovery codes (each works once in place of a code; store them offline, they are not shown again):");
    p.say(&enrolment.recovery_codes.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n"));
    Ok(Some(enrolment))
}

fn account_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    if host.is_empty() { "tgploy".into() } else { format!("tgploy@{host}") }
}

/// Asks until the value is given, or back.
fn ask(p: &mut dyn Prompter, prompt: &str, default: &str) -> Result<Answer<String>> {
    let default = (!default.is_empty()).then_some(default);
    loop {
        match p.input(prompt, default)? {
            Answer::Value(v) if v.trim().is_empty() => p.say("A value is needed here."),
            Answer::Value(v) => return Ok(Answer::Value(v.trim().to_string())),
            Answer::Back => return Ok(Answer::Back),
        }
    }
}

macro_rules! or_back {
    ($e:expr) => {
        match $e {
            Answer::Value(v) => v,
            Answer::Back => return Ok(Answer::Back),
        }
    };
}

/// After a failed check: change the answers, keep them anyway, or go back.
fn after_failure(p: &mut dyn Prompter) -> Result<Answer<bool>> {
    let items = vec!["Change the answers".to_string(), "Keep them anyway (not recommended)".to_string()];
    Ok(match p.select("What now?", &items, 0)? {
        Answer::Value(0) => Answer::Value(false),
        Answer::Value(_) => Answer::Value(true),
        Answer::Back => Answer::Back,
    })
}

/// The prompt for a secret: Enter keeps the current one only where there is one.
fn secret_prompt(label: &str, current: &Secret) -> String {
    if current.expose().is_empty() {
        format!("{label} (hidden)")
    } else {
        format!("{label} (hidden; Enter keeps the current one)")
    }
}

async fn ask_s3(p: &mut dyn Prompter, a: &mut Answers) -> Result<Answer<()>> {
    loop {
        p.say("Step 1 of 5 — S3: the server that holds the backups (RustFS, MinIO, Garage, Ceph, AWS).");
        let endpoint = or_back!(ask(p, "S3 endpoint URL", &a.s3_endpoint)?);
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            p.say("The endpoint is a URL like http://127.0.0.1:9000 or https://s3.example.com.");
            continue;
        }
        a.s3_endpoint = endpoint;
        a.s3_region = match ask(p, "Region", &a.s3_region)? {
            Answer::Value(v) => v,
            Answer::Back => continue,
        };
        a.s3_access_key = match ask(p, "Access key", &a.s3_access_key)? {
            Answer::Value(v) => v,
            Answer::Back => continue,
        };
        match p.secret(&secret_prompt("Secret key", &a.s3_secret_key))? {
            Answer::Value(v) if !v.is_empty() => a.s3_secret_key = Secret::new(v),
            Answer::Value(_) if !a.s3_secret_key.expose().is_empty() => {}
            Answer::Value(_) => {
                p.say("A secret key is needed.");
                continue;
            }
            Answer::Back => continue,
        }
        p.say("Checking: listing buckets…");
        match check_s3(a).await {
            Ok(buckets) => {
                p.say(&format!(
                    "✓ S3 answers; {} bucket(s): {}",
                    buckets.len(),
                    if buckets.is_empty() { "(none yet)".into() } else { buckets.join(", ") }
                ));
                return Ok(Answer::Value(()));
            }
            Err(e) => {
                p.say(&format!("✗ S3 check failed: {}", explain_s3(&e)));
                if or_back!(after_failure(p)?) {
                    return Ok(Answer::Value(()));
                }
            }
        }
    }
}

async fn ask_bot(p: &mut dyn Prompter, a: &mut Answers) -> Result<Answer<()>> {
    loop {
        p.say("Step 2 of 5 — Telegram bot: the token @BotFather gave you.");
        match p.secret(&secret_prompt("Bot token", &a.bot_token))? {
            Answer::Value(v) if !v.trim().is_empty() => a.bot_token = Secret::new(v.trim()),
            Answer::Value(_) if !a.bot_token.expose().is_empty() => {}
            Answer::Value(_) => {
                p.say("A bot token is needed.");
                continue;
            }
            Answer::Back => return Ok(Answer::Back),
        }
        a.api_url = match ask(p, "Bot API server (a self-hosted one, or keep Telegram's)", &a.api_url)? {
            Answer::Value(v) => v,
            Answer::Back => continue,
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
                    return Ok(Answer::Value(()));
                }
            }
        }
    }
}

/// More bots, optional: each adds its own flood limit (about 20 messages a minute into a
/// group), so several deliver faster into the same chats.
async fn ask_more_bots(p: &mut dyn Prompter, a: &mut Answers) -> Result<Answer<()>> {
    loop {
        let prompt = "More bots for more throughput: their tokens, separated by commas (hidden; Enter for none)";
        let tokens: Vec<Secret> = match p.secret(prompt)? {
            Answer::Back => return Ok(Answer::Back),
            Answer::Value(v) => {
                v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| Secret::new(t.to_string())).collect()
            }
        };
        if tokens.is_empty() {
            if !a.more_bot_tokens.is_empty() {
                p.say(&format!("Keeping the {} more bot(s) configured.", a.more_bot_tokens.len()));
            }
            return Ok(Answer::Value(()));
        }
        let mut all_good = true;
        for token in &tokens {
            let checked = match TelegramSink::for_setup(token, &a.api_url) {
                Ok(sink) => sink.check_bot(0).await,
                Err(e) => Err(e),
            };
            match checked {
                Ok(name) => p.say(&format!("✓ Bot {} is @{name}.", crate::config::bot_id(token).unwrap_or_default())),
                Err(e) => {
                    p.say(&format!("✗ {e}"));
                    all_good = false;
                }
            }
        }
        if all_good {
            a.more_bot_tokens = tokens;
            p.say("Add every bot to the backup chat (and the admin chat) with the right to post.");
            return Ok(Answer::Value(()));
        }
        p.say("Give the tokens again, or press Enter for none.");
    }
}

async fn ask_chat(p: &mut dyn Prompter, a: &mut Answers, admin: bool, detect_wait: Duration) -> Result<Answer<()>> {
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
                    Answer::Value(v) => v,
                    Answer::Back => continue,
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
                return Ok(Answer::Value(()));
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
                return Ok(Answer::Value(()));
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
        Answer::Value(i) => Ok(chats.iter().rev().nth(i).map(|(c, _)| c.clone())),
        Answer::Back => Ok(None),
    }
}

fn ask_part_size(p: &mut dyn Prompter, a: &mut Answers) -> Result<Answer<()>> {
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
                    Answer::Value(v) => v,
                    Answer::Back => continue,
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
        return Ok(Answer::Value(()));
    }
}

/// `setup --non-interactive`: the same checks and the same file, every answer given.
pub async fn non_interactive(
    p: &mut dyn Prompter,
    mut a: Answers,
    target: &Path,
    force: bool,
    enrol_totp: bool,
) -> Result<Outcome> {
    if target.exists() && !force {
        return Err(Error::config(format!(
            "{} exists; pass --force to replace it (the old one is kept as a backup)",
            target.display()
        )));
    }
    let buckets = check_s3(&a).await.map_err(|e| {
        let why = format!("S3 check failed: {}", explain_s3(&e).replace('\n', ""));
        // Nothing answered: exit 4, like any run that cannot reach S3; a refusal is the
        // settings' fault: exit 2.
        match e {
            SourceError::Unreachable { endpoint, .. } => {
                Error::Unreachable { service: crate::error::Service::S3, endpoint, reason: why }
            }
            _ => Error::config(why),
        }
    })?;
    p.say(&format!("✓ S3 answers; {} bucket(s)", buckets.len()));
    let sink = TelegramSink::for_setup(&a.bot_token, &a.api_url)?;
    let name = sink.check_bot(0).await?;
    p.say(&format!("✓ The bot is @{name}"));
    for token in &a.more_bot_tokens {
        let more = TelegramSink::for_setup(token, &a.api_url)?;
        let name = more.check_bot(0).await?;
        p.say(&format!("✓ Bot {} is @{name}", crate::config::bot_id(token).unwrap_or_default()));
    }
    let backup = a.backup_chat.clone().ok_or_else(|| {
        Error::config("missing the backup chat: pass --backup-chat-id or set TELEGRAM_BACKUP_CHAT_ID")
    })?;
    for (chat, what) in [(Some(&backup), "backups"), (a.admin_chat.as_ref(), "alerts and the daily heartbeat")] {
        let Some(chat) = chat else { continue };
        let text =
            format!("<b>tgploy</b>: this chat will receive {what}. (Test message from <code>tgploy setup</code>.)");
        sink.send_text_to(chat, &text).await?;
        p.say(&format!("✓ Test message sent to {chat}"));
    }
    if a.webhook_token.is_none() {
        let token = Secret::new(totp::random_token()?);
        p.say(&format!("Webhook token (stored in the config, shown only now): {}", token.expose()));
        a.webhook_token = Some(token);
    }
    let backup_of_old = write_private(target, &a.to_toml())?;
    p.say(&format!("Wrote {} (mode 0600)", target.display()));
    let enrolment = if enrol_totp {
        let ledger = ledger_for(&a)?;
        if totp::enrolled(&ledger)? {
            p.say("A second factor is already enrolled; `tgploy setup totp --reset` replaces it.");
            None
        } else {
            Some(enrol_unattended(p, &ledger)?)
        }
    } else {
        None
    };
    Ok(Outcome { config_path: target.to_path_buf(), backup_of_old, enrolment })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_config_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        let a = Answers {
            s3_access_key: "ak\"with quote".into(),
            s3_secret_key: Secret::new("s3cr3t"),
            bot_token: Secret::new("123:abc"),
            more_bot_tokens: vec![Secret::new("456:def")],
            backup_chat: Some(ChatRef::Id(-100123)),
            admin_chat: Some(ChatRef::Username("@ops".into())),
            webhook_token: Some(Secret::new("hook")),
            part_size: 49 << 20,
            ..Answers::default()
        };
        assert!(write_private(&path, &a.to_toml()).unwrap().is_none());
        let overrides = crate::config::Overrides { config: Some(path.clone()), ..Default::default() };
        let cfg = crate::config::Config::load_with(&overrides, &|_| None).unwrap();
        assert_eq!(cfg.require_s3().unwrap().access_key, "ak\"with quote");
        let tg = cfg.require_telegram().unwrap();
        assert_eq!(tg.admin.map(|d| d.chat), Some(ChatRef::Username("@ops".into())));
        assert_eq!(tg.bots, [Secret::new("123:abc"), Secret::new("456:def")]);
        assert_eq!(cfg.part_size, 49 << 20);
        assert_eq!(cfg.webhook_token, Some(Secret::new("hook")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        }
        let backup = write_private(&path, "part_size = \"4MiB\"\n").unwrap().unwrap();
        assert!(std::fs::read_to_string(&backup).unwrap().contains("s3cr3t"), "the old file is kept");
    }
}
