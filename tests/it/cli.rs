//! The binary's contract with operators and scripts: exit codes, one-line errors, JSON,
//! the other commands, and the generated completions and man page.

use crate::harness::{PART_SIZE, World, data, sha256_hex};

/// The error line: exactly one, whatever log lines came before it.
#[track_caller]
fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("tgploy:")).collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got:\n{stderr}");
    lines[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_setting_exits_2_naming_it_and_where_to_set_it() {
    let mut w = World::new().await;
    w.unset_env("RUSTFS_ENDPOINT");
    let out = w.sync().await;
    out.code(2);
    let line = one_line(&out.stderr);
    assert!(line.contains("RUSTFS_ENDPOINT") && line.contains("s3.endpoint"), "{line}");

    let mut w = World::new().await;
    w.unset_env("TELEGRAM_BACKUP_CHAT_ID");
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "x", data(3, 1)).await;
    let out = w.sync().await;
    out.code(2);
    let line = one_line(&out.stderr);
    assert!(line.contains("TELEGRAM_BACKUP_CHAT_ID") && line.contains("telegram.backup_chat_id"), "{line}");
    assert!(w.query("SELECT state FROM deliveries").is_empty(), "settings are checked before any work");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_values_exit_2() {
    let mut w = World::new().await;
    w.set_env("TGPLOY_PART_SIZE", "lots");
    let out = w.sync().await;
    out.code(2);
    assert!(one_line(&out.stderr).contains("TGPLOY_PART_SIZE"), "{}", out.stderr);

    // Over the cloud Bot API's 50 MB upload limit.
    w.set_env("TELEGRAM_API_URL", "https://api.telegram.org");
    w.set_env("TGPLOY_PART_SIZE", "60MiB");
    let out = w.sync().await;
    out.code(2);
    let line = one_line(&out.stderr);
    assert!(line.contains("TGPLOY_PART_SIZE") && line.contains("50 MB"), "{line}");

    let mut w = World::new().await;
    w.config_file("[s3]\nendpoint = 12\n");
    let out = w.sync().await;
    out.code(2);
    let line = one_line(&out.stderr);
    assert!(line.contains("config.toml") && line.contains("line 2"), "{line}");

    let mut w = World::new().await;
    w.set_env("TGPLOY_CONFIG", "/nonexistent/tgploy.toml");
    let out = w.run(&["status"]).await;
    out.code(2);
    assert!(one_line(&out.stderr).contains("/nonexistent/tgploy.toml"));

    let mut w = World::new().await;
    w.set_env("TELEGRAM_BOT_TOKEN", "not a token");
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "x", data(3, 1)).await;
    let out = w.sync().await;
    out.code(2);
    assert!(one_line(&out.stderr).contains("malformed"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_s3_exits_4_naming_the_endpoint() {
    let w = World::new().await;
    let endpoint = w.s3.endpoint();
    w.s3.stop();
    let out = w.sync().await;
    out.code(4);
    let line = one_line(&out.stderr);
    assert!(line.contains("cannot reach S3") && line.contains(&endpoint), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_telegram_exits_4_naming_the_endpoint_not_the_token() {
    let mut w = World::new().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    w.set_env("TELEGRAM_API_URL", &closed);
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "x", data(3, 1)).await;
    let out = w.sync().await;
    out.code(4).no_token();
    let line = one_line(&out.stderr);
    assert!(line.contains("Telegram") && line.contains(&closed), "{line}");
    assert_eq!(w.query("SELECT state, attempts FROM deliveries"), [["pending", "0"]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_token_exits_2() {
    let mut w = World::new().await;
    w.set_env("TELEGRAM_BOT_TOKEN", "42:wrongtoken_wrongtoken");
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "x", data(3, 1)).await;
    let out = w.sync().await;
    out.code(2);
    assert!(one_line(&out.stderr).contains("rejected the bot token"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrongtoken_wrongtoken"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_the_bot_cannot_post_to_exits_2_and_loses_nothing() {
    let w = World::new().await;
    w.tg.forbid_chat(crate::harness::BACKUP_CHAT);
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "x", data(3, 1)).await;
    let out = w.sync().await;
    out.code(2);
    assert!(one_line(&out.stderr).contains("telegram.backup_chat_id"), "{}", out.stderr);
    assert_eq!(w.query("SELECT state, attempts FROM deliveries"), [["pending", "0"]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn buckets_enable_from_now_skips_what_is_there() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "old1", data(3, 1)).await;
    w.s3.put("bkt", "old2", data(3, 2)).await;
    let out = w.run(&["buckets", "enable", "bkt", "--from-now"]).await;
    out.success();
    assert!(out.stdout.contains("2 current objects are recorded as skipped"), "{}", out.stdout);
    w.s3.put("bkt", "new", data(3, 3)).await;
    w.sync().await.success();
    let names: Vec<String> = w.tg.documents().into_iter().map(|d| d.file_name).collect();
    assert_eq!(names, ["new"]);

    let status = w.run(&["status", "--json"]).await;
    status.success();
    let s = status.json();
    assert_eq!(s["totals"]["skipped"], 2);
    assert_eq!(s["totals"]["sent"], 1);
    assert!(s["last_sync"]["finished_at"].is_string());

    w.run(&["buckets", "disable", "bkt"]).await.success();
    w.s3.put("bkt", "later", data(3, 4)).await;
    w.sync().await.success();
    assert_eq!(w.tg.documents().len(), 1, "a disabled bucket is not delivered");
    let list = w.run(&["buckets", "list"]).await;
    list.success();
    assert!(list.stdout.contains("bkt") && list.stdout.contains("no"), "{}", list.stdout);

    let out = w.run(&["buckets", "enable", "missing"]).await;
    out.code(2);
    assert!(one_line(&out.stderr).contains("no bucket named `missing`"));
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_files_read_the_ledger() {
    let w = World::new().await;
    let empty = w.run(&["status"]).await;
    empty.success();
    assert!(empty.stdout.contains("Last sync:            never"), "{}", empty.stdout);

    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "dir/one.gz", data(100, 1)).await;
    w.s3.put("bkt", "other/two.gz", data(100, 2)).await;
    w.sync().await.success();

    let status = w.run(&["status"]).await;
    status.success();
    assert!(status.stdout.contains("Delivered:            2 objects"), "{}", status.stdout);

    let files = w.run(&["files", "--prefix", "dir/", "--json"]).await;
    files.success();
    let list = files.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let f = &list[0];
    assert_eq!(f["key"], "dir/one.gz");
    assert_eq!(f["sha256"], crate::harness::sha256_hex(&data(100, 1)).as_str());
    let doc = &w.documents_named("one.gz")[0];
    assert_eq!(f["parts"][0]["message_id"], doc.message_id);
    assert_eq!(f["parts"][0]["file_id"], doc.file_id.as_str());

    let table = w.run(&["files", "--bucket", "bkt"]).await;
    table.success();
    assert!(table.stdout.contains("dir/one.gz") && table.stdout.contains("other/two.gz"), "{}", table.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_files_table_shows_a_short_hash_and_fits_a_100_column_terminal() {
    let w = World::new().await;
    w.s3.create_bucket("backups").await;
    let objects =
        [("pg/base-2026-11-28.tar.zst", data(PART_SIZE as usize * 2 + 5, 1)), ("db/dump.sql.gz", data(900, 2))];
    for (key, body) in &objects {
        w.s3.put("backups", key, body.clone()).await;
    }
    w.sync().await.success();

    // On a terminal 100 columns wide, as an operator sees it.
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(format!("stty cols 100 rows 50 && exec '{}' files", env!("CARGO_BIN_EXE_tgploy")))
        .env_clear()
        .envs(&w.env)
        .env("TERM", "xterm");
    let raw = tokio::task::spawn_blocking(move || {
        let mut s = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
        s.exp_eof().unwrap()
    })
    .await
    .unwrap();
    // rexpect hands over the terminal's bytes one char each.
    let bytes: Vec<u8> = raw.chars().map(|c| u8::try_from(u32::from(c)).unwrap()).collect();
    let shown = String::from_utf8(bytes).unwrap().replace('\r', "");
    for line in shown.lines() {
        assert!(line.chars().count() <= 100, "{} columns: {line}\n{shown}", line.chars().count());
    }
    let json = w.run(&["files", "--json"]).await.json();
    for (key, body) in &objects {
        let sha = sha256_hex(body);
        // The first 12 characters of the hash, whole on the object's line; all of it in JSON.
        let row = shown.lines().find(|l| l.contains(&sha[..12])).unwrap_or_else(|| panic!("{key}:\n{shown}"));
        assert!(row.contains(&format!(" {} ", &sha[..12])), "{key}: the hash is cut short, not wrapped:\n{shown}");
        assert!(!shown.contains(&sha[12..20]), "{key}: only a prefix is shown:\n{shown}");
        let listed = json.as_array().unwrap().iter().find(|f| f["key"] == *key).unwrap();
        assert_eq!(listed["sha256"], sha.as_str());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_ledger_exits_2_with_a_clear_message() {
    let w = World::new().await;
    std::fs::write(w.ledger_path(), vec![b'z'; 4096]).unwrap();
    let out = w.run(&["status"]).await;
    out.code(2);
    let line = one_line(&out.stderr);
    assert!(line.contains("ledger") && line.contains("ledger.sqlite3"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn help_documents_exit_codes() {
    let w = World::new().await;
    let out = w.run(&["--help"]).await;
    out.success();
    for (code, meaning) in [
        ("0", "success"),
        ("1", "some deliveries failed"),
        ("2", "usage or configuration error"),
        ("3", "another run holds the lock"),
        ("4", "an outside service"),
        ("130", "SIGINT"),
    ] {
        assert!(
            out.stdout.lines().any(|l| l.trim_start().starts_with(code) && l.contains(meaning)),
            "exit code {code} ({meaning}) missing from --help:\n{}",
            out.stdout
        );
    }
}

#[test]
fn committed_completions_and_man_page_are_current() {
    let root = env!("CARGO_MANIFEST_DIR");
    let generate = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tgploy")).args(args).env_clear().output().unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let files = [
        (vec!["completions", "bash"], "completions/tgploy.bash"),
        (vec!["completions", "zsh"], "completions/_tgploy"),
        (vec!["completions", "fish"], "completions/tgploy.fish"),
        (vec!["man"], "man/tgploy.1"),
    ];
    for (args, path) in files {
        let committed = std::fs::read(format!("{root}/{path}")).unwrap_or_default();
        assert!(committed == generate(&args), "{path} is out of date: run `tgploy {}` > {path}", args.join(" "));
    }
}

#[test]
fn every_flag_in_the_settings_table_exists() {
    use clap::CommandFactory;
    let cli = crate::command_line::Cli::command();
    let mut longs = Vec::new();
    let mut stack = vec![&cli];
    while let Some(cmd) = stack.pop() {
        longs.extend(cmd.get_arguments().filter_map(|a| a.get_long()).map(|l| format!("--{l}")));
        stack.extend(cmd.get_subcommands());
    }
    for s in tgploy::config::SETTINGS {
        if let Some(flag) = s.flag {
            assert!(longs.iter().any(|l| l == flag), "{} names {flag}, which no command has", s.key);
        }
    }
}
