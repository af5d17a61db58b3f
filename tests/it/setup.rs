//! `setup` (scripted, in a pseudo-terminal, and non-interactive), `doctor`, and the
//! second-factor gate.

use std::collections::VecDeque;
use std::time::Duration;

use tgploy::config::{ChatRef, Config, Overrides};
use tgploy::error::Result as TgResult;
use tgploy::setup::{Answers, Prompter, Reply};

use crate::harness::{ADMIN_CHAT, BACKUP_CHAT, World, data};
use crate::support::{s3, telegram};

/// Answers given in order; the TOTP code is computed from what the wizard showed.
enum Said {
    Text(&'static str),
    Owned(String),
    Back,
    Pick(usize),
    Yes(bool),
    CurrentCode,
}

struct Scripted {
    replies: VecDeque<Said>,
    transcript: Vec<String>,
}

impl Scripted {
    fn new(replies: Vec<Said>) -> Self {
        Scripted { replies: replies.into(), transcript: Vec::new() }
    }

    fn next(&mut self, prompt: &str) -> Said {
        self.transcript.push(format!("? {prompt}"));
        self.replies
            .pop_front()
            .unwrap_or_else(|| panic!("no scripted answer for `{prompt}`:\n{}", self.transcript.join("\n")))
    }

    fn text(&self) -> String {
        self.transcript.join("\n")
    }
}

/// The `secret=` of the last otpauth URL in a text.
fn shown_secret(text: &str) -> String {
    let start = text.rfind("secret=").expect("an otpauth URL was shown") + "secret=".len();
    text[start..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect()
}

fn current_code(secret: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    tgploy::totp::code_at(secret, now).unwrap()
}

impl Prompter for Scripted {
    fn say(&mut self, text: &str) {
        self.transcript.push(text.to_string());
    }

    fn input(&mut self, prompt: &str, _default: Option<&str>) -> TgResult<Reply<String>> {
        Ok(match self.next(prompt) {
            Said::Text(t) => Reply::Value(t.to_string()),
            Said::Owned(t) => Reply::Value(t),
            Said::Back => Reply::Back,
            Said::CurrentCode => Reply::Value(current_code(&shown_secret(&self.text()))),
            _ => panic!("`{prompt}` is a text prompt"),
        })
    }

    fn secret(&mut self, prompt: &str) -> TgResult<Reply<String>> {
        self.input(prompt, None)
    }

    fn select(&mut self, prompt: &str, items: &[String], _default: usize) -> TgResult<Reply<usize>> {
        Ok(match self.next(prompt) {
            Said::Pick(i) => {
                assert!(i < items.len(), "{prompt}: no item {i} in {items:?}");
                Reply::Value(i)
            }
            Said::Back => Reply::Back,
            _ => panic!("`{prompt}` is a menu"),
        })
    }

    fn confirm(&mut self, prompt: &str, _default: bool) -> TgResult<bool> {
        match self.next(prompt) {
            Said::Yes(b) => Ok(b),
            _ => panic!("`{prompt}` is a yes/no question"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wizard_checks_each_answer_goes_back_and_writes_a_private_config() {
    let w = World::new().await;
    w.s3.create_bucket("backups").await;
    let target = w.dir.path().join("conf/config.toml");
    // Someone writes to the bot in the backup group before the wizard looks.
    w.tg.push_chat_message(-100_555, "Backups", "hello bot");

    let endpoint = w.s3.endpoint();
    let api = w.tg.url();
    let mut p = Scripted::new(vec![
        Said::Owned(endpoint.clone()),
        Said::Text("us-east-1"),
        Said::Text(s3::ACCESS_KEY),
        Said::Text("not-the-secret"),
        Said::Pick(0), // the check failed: change the answers
        Said::Owned(endpoint.clone()),
        Said::Text("us-east-1"),
        Said::Text(s3::ACCESS_KEY),
        Said::Text(s3::SECRET_KEY),
        Said::Back, // at the bot token: back to S3, whose answers are kept as defaults
        Said::Owned(endpoint),
        Said::Text("us-east-1"),
        Said::Text(s3::ACCESS_KEY),
        Said::Text(""), // Enter keeps the secret key given before
        Said::Text(telegram::TOKEN),
        Said::Owned(api),
        Said::Text(""), // no more bots
        Said::Pick(0),  // detect the backup chat
        Said::Pick(0),  // the one that wrote
        Said::Pick(1),  // type the admin chat
        Said::Text(ADMIN_CHAT),
        Said::Pick(0), // default part size
        Said::Text("000000"),
        Said::CurrentCode,
    ]);
    let answers = Answers { database_path: Some(w.ledger_path()), ..Answers::default() };
    let outcome = tgploy::setup::interactive(&mut p, answers, &target, true, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("written");
    let transcript = p.text();
    assert!(p.replies.is_empty(), "unused answers:\n{transcript}");
    // Enter keeps the current secret: said only where there is one.
    let asked = |label: &str| -> Vec<&str> { transcript.lines().filter_map(|l| l.strip_prefix(label)).collect() };
    let keeps = " (hidden; Enter keeps the current one)";
    assert_eq!(asked("? Secret key"), [" (hidden)", keeps, keeps], "{transcript}");
    assert_eq!(asked("? Bot token"), [" (hidden)", " (hidden)"], "{transcript}");
    assert!(transcript.contains("✗ S3 check failed") && transcript.contains("secret key is wrong"), "{transcript}");
    assert!(transcript.contains("✓ S3 answers; 1 bucket(s): backups"), "{transcript}");
    assert!(transcript.contains("✓ The bot is @tgploy_test_bot"), "{transcript}");
    assert!(transcript.contains("That code does not match"), "{transcript}");
    assert!(transcript.contains("Next steps"), "{transcript}");

    // The config reads back as answered, and is private.
    let cfg =
        Config::load_with(&Overrides { config: Some(target.clone()), ..Overrides::default() }, &|_| None).unwrap();
    let tg = cfg.require_telegram().unwrap();
    assert_eq!(tg.backup.chat, ChatRef::Id(-100_555));
    assert_eq!(tg.admin.map(|d| d.chat), Some(ChatRef::Id(4242)));
    assert_eq!(cfg.require_s3().unwrap().secret_key.expose(), s3::SECRET_KEY);
    assert_eq!(cfg.part_size, 19 << 20);
    assert!(cfg.webhook_token.is_some());
    assert_eq!(mode(&target), 0o600);
    assert_eq!(mode(target.parent().unwrap()), 0o700);

    // Test messages reached both chats; the second factor is enrolled in the ledger.
    let chats: Vec<String> = w.tg.messages().into_iter().map(|m| m.chat_id).collect();
    assert!(chats.contains(&"-100555".to_string()) && chats.contains(&ADMIN_CHAT.to_string()), "{chats:?}");
    assert_eq!(outcome.enrolment.as_ref().unwrap().recovery_codes.len(), 10);
    assert_eq!(w.query("SELECT COUNT(*) FROM totp"), [["1"]]);
    assert_eq!(w.query("SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL"), [["10"]]);
    assert!(
        !std::fs::read_to_string(&target).unwrap().contains(&shown_secret(&transcript)),
        "no TOTP secret in the config"
    );

    // Run again: the existing file is only replaced when the operator says so.
    let before = std::fs::read(&target).unwrap();
    let mut again = Scripted::new(vec![Said::Yes(false)]);
    let answers = Answers { database_path: Some(w.ledger_path()), ..Answers::default() };
    let none = tgploy::setup::interactive(&mut again, answers, &target, true, Duration::from_secs(5)).await.unwrap();
    assert!(none.is_none());
    assert_eq!(std::fs::read(&target).unwrap(), before);
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_real_binary_in_a_terminal_from_first_question_to_second_factor() {
    let mut w = World::new().await;
    w.s3.create_bucket("backups").await;
    w.tg.push_chat_message(-100_777, "Ops backups", "hi");
    let target = w.dir.path().join("config.toml");
    for var in [
        "RUSTFS_ENDPOINT",
        "RUSTFS_ACCESS_KEY",
        "RUSTFS_SECRET_KEY",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_BACKUP_CHAT_ID",
        "TELEGRAM_API_URL",
    ] {
        w.unset_env(var);
    }
    w.set_env("TGPLOY_CONFIG", &target.display().to_string());
    w.set_env("TERM", "xterm");
    let mut cmd = w.command(&["setup"]);
    cmd.stdin(std::process::Stdio::inherit());
    let endpoint = w.s3.endpoint();
    let api = w.tg.url();
    let out = tokio::task::spawn_blocking(move || -> Result<String, rexpect::error::Error> {
        let mut s = rexpect::session::spawn_command(cmd, Some(30_000))?;
        s.exp_string("S3 endpoint URL")?;
        s.send_line(&endpoint)?;
        s.exp_string("Region")?;
        s.send_line("")?;
        s.exp_string("Access key")?;
        s.send_line(s3::ACCESS_KEY)?;
        // Nothing to keep yet: the prompt does not offer Enter to keep it.
        s.exp_string("Secret key (hidden):")?;
        s.send_line(s3::SECRET_KEY)?;
        s.exp_string("bucket(s): backups")?;
        s.exp_string("Bot token (hidden):")?;
        s.send_line(telegram::TOKEN)?;
        s.exp_string("Bot API server")?;
        s.send_line(&api)?;
        s.exp_string("The bot is @tgploy_test_bot")?;
        s.exp_string("More bots")?;
        s.send_line("")?;
        // A menu switches the terminal to raw mode after drawing itself (the last item is
        // the way back); keys sent before that are lost, so wait for raw mode.
        let pty = s.process().get_file_handle()?;
        let settle = || raw_mode(&pty);
        s.exp_string("pick the backup chat")?;
        s.exp_string("Back")?;
        settle();
        s.send("\r")?; // the default: detect
        s.flush()?;
        s.exp_string("Which chat?")?;
        s.exp_string("Back")?;
        settle();
        s.send("\r")?;
        s.flush()?;
        s.exp_string("Test message sent to -100777")?;
        s.exp_string("pick the admin chat")?;
        s.exp_string("Back")?;
        settle();
        s.send("\x1b[B\x1b[B\r")?; // two down: no admin chat
        s.flush()?;
        s.exp_string("Part size")?;
        s.exp_string("Back")?;
        settle();
        s.send("\r")?;
        s.flush()?;
        s.exp_string("Webhook token")?;
        let (_, url) = s.exp_regex("otpauth://[^\\s]+")?;
        s.exp_string("Current 6-digit code")?;
        s.send_line(&current_code(&shown_secret(&url)))?;
        s.exp_string("Recovery codes")?;
        let rest = s.exp_eof()?;
        Ok(rest)
    })
    .await
    .unwrap();
    let rest = out.unwrap_or_else(|e| panic!("the terminal session failed: {e}"));
    assert!(rest.contains("Next steps"), "{rest}");
    assert_eq!(mode(&target), 0o600);
    let cfg = Config::load_with(&Overrides { config: Some(target), ..Overrides::default() }, &|_| None).unwrap();
    assert_eq!(cfg.require_telegram().unwrap().backup.chat, ChatRef::Id(-100_777));
    assert_eq!(w.query("SELECT COUNT(*) FROM totp"), [["1"]]);
}

/// Waits until the program on the terminal has switched it to raw mode (no line
/// editing): a menu reading keys.
fn raw_mode(pty: &std::fs::File) {
    use nix::sys::termios::{LocalFlags, tcgetattr};
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tcgetattr(pty).expect("the terminal's mode").local_flags.contains(LocalFlags::ICANON) {
        assert!(std::time::Instant::now() < deadline, "the menu never read keys");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn non_interactive_setup_and_the_gate_on_a_second_one() {
    let mut w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let target = w.dir.path().join("etc/tgploy.toml");
    w.set_env("TGPLOY_CONFIG", &target.display().to_string());
    w.set_env("TELEGRAM_ADMIN_CHAT_ID", ADMIN_CHAT);
    let out = w.run(&["setup", "--non-interactive", "--part-size", "8MiB"]).await;
    out.success().no_token();
    assert!(out.stdout.contains("✓ S3 answers; 1 bucket(s)"), "{}", out.stdout);
    assert_eq!(mode(&target), 0o600);
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(
        text.contains("part_size = \"8MiB\"") && text.contains(&format!("backup_chat_id = {BACKUP_CHAT}")),
        "{text}"
    );
    let chats: Vec<String> = w.tg.messages().into_iter().map(|m| m.chat_id).collect();
    assert_eq!(chats, [BACKUP_CHAT, ADMIN_CHAT], "a test message to each chat");
    let secret = shown_secret(&out.stdout);
    let recovery: Vec<String> = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Recovery codes (each works once; shown only now): "))
        .expect("recovery codes shown")
        .split(' ')
        .map(str::to_string)
        .collect();
    assert_eq!(recovery.len(), 10);

    // A second setup over the file needs --force, and a second-factor code.
    w.run(&["setup", "--non-interactive"]).await.code(2);
    let out = w.run(&["setup", "--non-interactive", "--force"]).await;
    out.code(2);
    assert!(out.stderr.contains("replace the configuration needs a second-factor code: pass --otp"), "{}", out.stderr);
    let out = w.run(&["setup", "--non-interactive", "--force", "--no-totp", "--otp", &current_code(&secret)]).await;
    out.success();
    let backups: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("tgploy.toml.bak-"))
        .collect();
    assert_eq!(backups.len(), 1, "the old file is kept");
    assert_eq!(mode(&backups[0].path()), 0o600);

    // The recovery code is the way back from a lost phone: once.
    let out = w.run(&["setup", "totp", "--reset", "--non-interactive", "--otp", &recovery[0]]).await;
    out.success();
    assert!(out.stdout.contains("otpauth://"), "{}", out.stdout);
    w.run(&["setup", "totp", "--reset", "--non-interactive", "--otp", &recovery[0]]).await.code(2);
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_bucket_needs_the_second_factor_once_enrolled() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "x", data(3, 1)).await;
    w.sync().await.success();
    let ledger = tgploy::ledger::Ledger::open(&w.ledger_path()).unwrap();
    let enrolment = tgploy::totp::new_enrolment("test").unwrap();
    tgploy::totp::store(&ledger, &enrolment).unwrap();

    let out = w.run(&["buckets", "disable", "bkt"]).await;
    out.code(2);
    assert!(out.stderr.contains("needs a second-factor code"), "{}", out.stderr);
    let out = w.run(&["buckets", "disable", "bkt", "--otp", "123456"]).await;
    out.code(2);
    assert!(out.stderr.contains("wrong code (1 of 5"), "{}", out.stderr);
    assert_eq!(w.query("SELECT enabled FROM buckets"), [["1"]], "still enabled");

    let code = current_code(&enrolment.secret_base32);
    w.run(&["buckets", "disable", "bkt", "--otp", &code]).await.success();
    assert_eq!(w.query("SELECT enabled FROM buckets"), [["0"]]);
    let out = w.run(&["buckets", "disable", "bkt", "--otp", &code]).await;
    out.code(2);
    assert!(out.stderr.contains("already used"), "{}", out.stderr);

    // The replay counted as the first wrong code; four more lock the gate.
    for _ in 0..4 {
        w.run(&["buckets", "disable", "bkt", "--otp", "000000"]).await.code(2);
    }
    let out = w.run(&["buckets", "disable", "bkt", "--otp", &enrolment.recovery_codes[0]]).await;
    out.code(2);
    assert!(out.stderr.contains("locked"), "five wrong codes lock, even a recovery code: {}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_then_names_each_failure_with_a_fix() {
    let mut w = World::new().await.with_admin();
    w.s3.create_bucket("bkt").await;
    let cfg_path = w.config_file("[sync]\nenable_new_buckets = true\n");
    let ok = w.run(&["doctor"]).await;
    ok.success().no_token();
    for line in [
        "✓ config file",
        "✓ ledger",
        "✓ S3",
        "✓ bucket bkt",
        "✓ Telegram bot: @tgploy_test_bot",
        "✓ backup chat",
        "✓ admin chat",
        "✓ clock vs S3 server",
    ] {
        assert!(ok.stdout.contains(line), "{line} missing:\n{}", ok.stdout);
    }
    let secret = s3::SECRET_KEY;
    assert!(!ok.stdout.contains(secret));

    let failing = |out: &crate::harness::Output, name: &str, fix: &str| {
        out.code(1).no_token();
        let line = out
            .stdout
            .lines()
            .position(|l| l.starts_with(&format!("✗ {name}")))
            .unwrap_or_else(|| panic!("no ✗ {name}:\n{}", out.stdout));
        let next = out.stdout.lines().nth(line + 1).unwrap_or_default();
        assert!(next.contains("fix:") && next.contains(fix), "{name}: {next}");
        assert!(!out.stdout.contains(s3::SECRET_KEY));
    };

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cfg_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    failing(&w.run(&["doctor"]).await, "config file", "chmod 600");
    crate::harness::set_private(&cfg_path);

    let real_db = w.env["DATABASE_PATH"].clone();
    w.set_env("DATABASE_PATH", "/proc/no-ledger-here/ledger.sqlite3");
    failing(&w.run(&["doctor"]).await, "ledger", "DATABASE_PATH");
    w.set_env("DATABASE_PATH", &real_db);

    w.set_env("TELEGRAM_BOT_TOKEN", "42:not-the-token");
    failing(&w.run(&["doctor"]).await, "Telegram bot", "@BotFather");
    w.set_env("TELEGRAM_BOT_TOKEN", telegram::TOKEN);

    w.tg.forbid_chat(ADMIN_CHAT);
    failing(&w.run(&["doctor"]).await, "admin chat", "telegram.admin_chat_id");
    w.tg.forbid_chat(BACKUP_CHAT);
    failing(&w.run(&["doctor"]).await, "backup chat", "telegram.backup_chat_id");

    // A server whose clock is two minutes ahead of this machine's.
    w.tg.set_clock_offset(120);
    failing(&w.run(&["doctor"]).await, "clock vs Bot API server", "synchronise the clock");
    w.tg.set_clock_offset(0);

    // A bucket enabled in the ledger that the server no longer lists.
    w.sync().await;
    w.s3.client().delete_bucket().bucket("bkt").send().await.unwrap();
    failing(&w.run(&["doctor"]).await, "bucket bkt", "buckets disable 'bkt'");

    w.s3.stop();
    let out = w.run(&["doctor", "--json"]).await;
    out.code(1);
    let checks = out.json();
    let s3 = checks.as_array().unwrap().iter().find(|c| c["name"] == "S3").unwrap();
    assert_eq!(s3["ok"], false);
    assert!(s3["detail"].as_str().unwrap().contains("cannot reach S3"), "{s3}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_needs_the_second_factor_once_enrolled() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let body = data(5000, 4);
    w.s3.put("bkt", "db.sql", body.clone()).await;
    w.sync().await.success();
    let ledger = tgploy::ledger::Ledger::open(&w.ledger_path()).unwrap();
    let enrolment = tgploy::totp::new_enrolment("test").unwrap();
    tgploy::totp::store(&ledger, &enrolment).unwrap();
    let out_path = w.dir.path().join("restored.sql");
    let out_arg = out_path.display().to_string();

    let refused = w.run(&["restore", "bkt/db.sql", "--out", &out_arg]).await;
    refused.code(2);
    assert!(refused.stderr.contains("restore needs a second-factor code"), "{}", refused.stderr);
    assert!(!out_path.exists());

    let code = current_code(&enrolment.secret_base32);
    w.run(&["restore", "bkt/db.sql", "--out", &out_arg, "--otp", &code]).await.success();
    assert_eq!(std::fs::read(&out_path).unwrap(), body);
}
