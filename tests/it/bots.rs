//! Several bots, and a destination per bucket: parts spread over the bots, each bot
//! paced in each chat on its own, every part fetched back through the bot that sent it,
//! buckets routed to their own chats and forum topics, the ledger of an earlier version
//! filled in, and no token of any bot in any output.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::dashboard_client::Dash;
use crate::harness::{ADMIN_CHAT, BACKUP_CHAT, PART_SIZE, World, assert_no_bot_token, data};
use crate::support::telegram::{
    BOT_ID, BOT_ID_2, BOT_ID_3, BOT_USERNAME, BOT_USERNAME_2, BOT_USERNAME_3, TOKEN, TOKEN_2, TOKEN_3,
};

/// A chat of its own for one bucket in the routing tests.
const MEDIA_CHAT: &str = "-1009876543210";

/// A world whose fake knows three bots, all configured: `TELEGRAM_BOT_TOKEN` and two more
/// in `TELEGRAM_BOT_TOKENS`; each bot may post 20 messages a second to a chat, so that
/// parts have a reason to spread.
async fn three_bots() -> World {
    let mut w = World::new().await;
    w.tg.add_bot(TOKEN_2, BOT_USERNAME_2);
    w.tg.add_bot(TOKEN_3, BOT_USERNAME_3);
    w.set_env("TELEGRAM_BOT_TOKENS", &format!("{TOKEN_2},{TOKEN_3}"));
    w.set_env("TGPLOY_MESSAGES_PER_MINUTE", "1200");
    w
}

#[tokio::test(flavor = "multi_thread")]
async fn parts_spread_over_every_bot_and_come_back_through_the_bot_that_sent_each() {
    let mut w = three_bots().await.with_admin();
    w.s3.create_bucket("bkt").await;
    let big = data(PART_SIZE as usize * 6 + 17, 1);
    w.s3.put("bkt", "pg/base.tar", big.clone()).await;
    for i in 0..3 {
        w.s3.put("bkt", &format!("small-{i}"), data(300, 10 + i)).await;
    }
    w.sync().await.success().no_token();

    // The fake says which bot sent each document; the ledger agrees, part by part.
    let docs = w.tg.documents();
    let by_file: BTreeMap<&str, i64> = docs.iter().map(|d| (d.file_id.as_str(), d.bot_id)).collect();
    let parts = w.query("SELECT file_id, bot_id, chat_id, topic_id FROM parts");
    assert_eq!(parts.len(), 7 + 3);
    for p in &parts {
        assert_eq!(by_file[p[0].as_str()].to_string(), p[1], "the bot recorded for {}", p[0]);
        assert_eq!((p[2].as_str(), p[3].as_str()), (BACKUP_CHAT, "NULL"));
    }
    let used: BTreeSet<i64> = docs.iter().map(|d| d.bot_id).collect();
    assert_eq!(used, BTreeSet::from([BOT_ID, BOT_ID_2, BOT_ID_3]), "every bot carried some of the batch");
    let of_one: BTreeSet<i64> =
        docs.iter().filter(|d| d.file_name.starts_with("base.tar.part")).map(|d| d.bot_id).collect();
    assert!(of_one.len() >= 2, "the parts of one object are spread too: {of_one:?}");

    // The manifest names each part's bot; the ledger, the manifest's.
    let (manifest, joined) = w.join_from_manifest("base.tar.tgploy.json");
    assert_eq!(joined, big);
    for part in manifest["parts"].as_array().unwrap() {
        let file_id = part["file_id"].as_str().unwrap();
        assert_eq!(part["bot_id"].as_i64(), Some(by_file[file_id]), "manifest part {}", part["index"]);
    }
    let manifest_doc = docs.iter().find(|d| d.file_name == "base.tar.tgploy.json").unwrap();
    let recorded = w.query("SELECT manifest_bot_id FROM deliveries WHERE key = 'pg/base.tar'");
    assert_eq!(recorded[0][0], manifest_doc.bot_id.to_string());

    // Back through the ledger: the fake refuses a file id to any bot but its own, and
    // each part was located and downloaded once, by the bot that sent it.
    let dir = w.restored_dir();
    let before: Vec<(usize, usize)> = [BOT_ID, BOT_ID_2, BOT_ID_3]
        .iter()
        .map(|&b| (w.tg.calls_by("getFile", b), w.tg.calls_by("download", b)))
        .collect();
    w.run(&["restore", "bkt/pg/base.tar", "--out", dir.to_str().unwrap()]).await.success().no_token();
    assert_eq!(std::fs::read(dir.join("base.tar")).unwrap(), big);
    for (bot, (files, downloads)) in [BOT_ID, BOT_ID_2, BOT_ID_3].into_iter().zip(before) {
        let sent = docs.iter().filter(|d| d.file_name.starts_with("base.tar.part") && d.bot_id == bot).count();
        let asked = (w.tg.calls_by("getFile", bot) - files, w.tg.calls_by("download", bot) - downloads);
        assert_eq!(asked, (sent, sent), "bot {bot} sent {sent} parts");
    }
    let out = w.run(&["verify", "--sample", "0", "--json"]).await;
    out.success().no_token();
    assert_eq!((out.json()["checked"].as_u64(), out.json()["parts"].as_u64()), (Some(4), Some(10)));

    // And through the manifest alone, with nothing but the tokens.
    let manifest_path = w.dir.path().join("base.tar.tgploy.json");
    std::fs::write(&manifest_path, manifest_doc.bytes()).unwrap();
    std::fs::remove_file(w.ledger_path()).unwrap();
    let again = w.dir.path().join("again");
    let out =
        w.run(&["restore", "--manifest", manifest_path.to_str().unwrap(), "--out", again.to_str().unwrap()]).await;
    out.success().no_token();
    assert_eq!(std::fs::read(&again).unwrap(), big);
    // The same through a ledger rebuilt from a snapshot would work too; what cannot
    // work is a bot asked for another bot's file.
    w.set_env("TELEGRAM_BOT_TOKENS", "");
    let out = w.run(&["restore", "--manifest", manifest_path.to_str().unwrap(), "--out", "-"]).await;
    out.code(1).no_token();
    let missing: BTreeSet<i64> = manifest["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["bot_id"].as_i64())
        .filter(|id| *id != BOT_ID)
        .collect();
    let named = missing.iter().any(|id| out.stderr.contains(&format!("sent by bot {id}, whose token")));
    assert!(named, "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_bot_keeps_its_own_pace_in_a_chat_and_a_flood_wait_holds_only_that_bot() {
    let mut w = three_bots().await;
    // One message a second per bot and chat, under a limit of four in three seconds for
    // each (bot, chat) pair.
    w.set_env("TGPLOY_MESSAGES_PER_MINUTE", "60");
    w.tg.set_flood_limit(4, Duration::from_secs(3));
    w.s3.create_bucket("bkt").await;
    for i in 0..12 {
        w.s3.put("bkt", &format!("o{i:02}"), data(200, i)).await;
    }
    // Bot 2 has just used up its window in the backup chat (another program using the
    // same bot, say): its first message is refused with a wait.
    let bot2 = w.tg.bot_for(TOKEN_2);
    for i in 0..4 {
        use teloxide::prelude::Requester;
        bot2.send_message(teloxide::types::ChatId(BACKUP_CHAT.parse().unwrap()), format!("busy {i}")).await.unwrap();
    }
    let before = w.tg.messages().len();
    w.sync().await.success();

    let sent: Vec<_> = w.tg.messages().into_iter().skip(before).collect();
    assert_eq!(sent.len(), 12, "one document per object, no duplicate");
    assert_eq!(w.tg.flood_refusals_for(TOKEN), 0, "bot 1 was never refused");
    assert_eq!(w.tg.flood_refusals_for(TOKEN_3), 0, "bot 3 was never refused");
    assert_eq!(w.tg.flood_refusals_for(TOKEN_2), 1, "bot 2 was refused once, then waited");
    // Each bot keeps one second between its own messages in the chat...
    for id in [BOT_ID, BOT_ID_2, BOT_ID_3] {
        let times: Vec<_> = sent.iter().filter(|m| m.bot_id == id).map(|m| m.accepted_at).collect();
        for pair in times.windows(2) {
            let gap = pair[1].duration_since(pair[0]);
            assert!(gap >= Duration::from_millis(900), "bot {id} sent two messages {gap:?} apart");
        }
    }
    // ...while the bots post side by side: the chat got messages closer together than
    // one bot's pace.
    let all: Vec<_> = sent.iter().map(|m| m.accepted_at).collect();
    let closest = all.windows(2).map(|p| p[1].duration_since(p[0])).min().unwrap();
    assert!(closest < Duration::from_millis(900), "the bots took turns instead of sharing the chat: {closest:?}");
    // The wait held bot 2 alone: the others went on at their pace meanwhile.
    let count = |id| sent.iter().filter(|m| m.bot_id == id).count();
    assert!(count(BOT_ID_2) < count(BOT_ID) && count(BOT_ID_2) < count(BOT_ID_3), "{sent:#?}");
    // (Enough messages of each for the gaps above and below to say something.)
    assert!(count(BOT_ID) >= 3 && count(BOT_ID_3) >= 3 && count(BOT_ID_2) >= 2, "{sent:#?}");
    for id in [BOT_ID, BOT_ID_3] {
        let times: Vec<_> = sent.iter().filter(|m| m.bot_id == id).map(|m| m.accepted_at).collect();
        let longest = times.windows(2).map(|p| p[1].duration_since(p[0])).max().unwrap_or_default();
        assert!(longest < Duration::from_millis(2500), "bot {id} stopped for {longest:?} while bot 2 waited");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_sent_by_a_bot_no_longer_configured_is_named_before_any_download() {
    let mut w = three_bots().await;
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 5 + 3, 4);
    w.s3.put("bkt", "db.dump", body.clone()).await;
    w.sync().await.success();
    let bots: BTreeSet<String> = w.query("SELECT bot_id FROM parts").into_iter().map(|r| r[0].clone()).collect();
    assert!(bots.contains(&BOT_ID_3.to_string()), "bot 3 sent a part: {bots:?}");

    // Bot 3's token is gone from the settings.
    w.set_env("TELEGRAM_BOT_TOKENS", TOKEN_2);
    let (get_files, downloads) = (w.tg.calls("getFile"), w.tg.calls("download"));
    let dir = w.restored_dir();
    let out = w.run(&["restore", "bkt/db.dump", "--out", dir.to_str().unwrap()]).await;
    out.code(1).no_token();
    let line = out.stderr.lines().find(|l| l.contains("bot 323456789")).unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.contains("bkt/db.dump") && line.contains("telegram.bot_tokens"), "{line}");
    assert!(line.contains("tgploy join") || line.contains("manifest"), "the manual route: {line}");
    assert_eq!((w.tg.calls("getFile"), w.tg.calls("download")), (get_files, downloads), "nothing was fetched");
    assert!(crate::restore::leftovers(&dir).is_empty(), "{:?}", crate::restore::leftovers(&dir));

    let out = w.run(&["restore", "--all", "--out", dir.to_str().unwrap()]).await;
    out.code(1).no_token();
    assert!(out.stderr.contains("bot 323456789") && out.stderr.contains("bkt/db.dump"), "{}", out.stderr);
    let out = w.run(&["verify", "--sample", "0"]).await;
    out.code(1).no_token();
    assert!(
        out.stdout.contains("bot 323456789") || out.stderr.contains("bot 323456789"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!((w.tg.calls("getFile"), w.tg.calls("download")), (get_files, downloads), "nothing was fetched");

    // With the token back, everything comes back.
    w.set_env("TELEGRAM_BOT_TOKENS", &format!("{TOKEN_3},{TOKEN_2}"));
    w.run(&["restore", "bkt/db.dump", "--out", dir.to_str().unwrap()]).await.success();
    assert_eq!(std::fs::read(dir.join("db.dump")).unwrap(), body);
}

/// Where the documents whose names start with `name` went: chats and topics.
fn place(w: &World, name: &str) -> BTreeSet<(String, Option<i64>)> {
    w.tg.documents()
        .iter()
        .filter(|d| d.file_name.starts_with(name))
        .map(|d| (d.chat_id.clone(), d.thread_id))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_bucket_goes_to_its_own_chat_and_topic_and_a_wrong_topic_is_failed_not_sent_elsewhere() {
    let mut w = three_bots().await.with_admin();
    w.tg.set_forum(BACKUP_CHAT, &[7, 8]);
    for b in ["dbs", "media", "plain", "wrong"] {
        w.s3.create_bucket(b).await;
    }
    w.config_file(&format!(
        "[telegram]\nbackup_topic_id = 8\n\n\
         [buckets.dbs]\ntopic_id = 7\n\n\
         [buckets.media]\nchat_id = {MEDIA_CHAT}\n\n\
         [buckets.wrong]\nchat_id = {MEDIA_CHAT}\ntopic_id = 5\n"
    ));
    w.s3.put("dbs", "dump.sql", data(PART_SIZE as usize * 2 + 9, 1)).await;
    w.s3.put("media", "a.jpg", data(500, 2)).await;
    w.s3.put("plain", "notes.txt", data(50, 3)).await;
    w.s3.put("wrong", "lost.bin", data(70, 4)).await;

    let doctor = w.run(&["doctor"]).await;
    doctor.code(1).no_token();
    let bad = doctor
        .stdout
        .lines()
        .find(|l| l.contains("chat of bucket wrong"))
        .unwrap_or_else(|| panic!("{}", doctor.stdout));
    assert!(bad.starts_with('✗') && bad.contains("topic 5") && bad.contains("not a forum"), "{bad}");
    assert!(doctor.stdout.lines().any(|l| l.starts_with('✓') && l.contains("chat of bucket dbs")), "{}", doctor.stdout);

    // Each topic was checked with a message posted and deleted (the backup chat's topic 8
    // and dbs's topic 7): doctor left nothing behind.
    let deleted_by_doctor = w.tg.deleted().len();
    assert_eq!(deleted_by_doctor, 2, "{:?}", w.tg.deleted());
    assert!(w.tg.messages().is_empty(), "{:?}", w.tg.messages());
    let out = w.sync().await;
    out.code(1).no_token();
    assert_eq!(place(&w, "dump.sql"), BTreeSet::from([(BACKUP_CHAT.to_string(), Some(7))]), "parts and manifest");
    assert_eq!(place(&w, "a.jpg"), BTreeSet::from([(MEDIA_CHAT.to_string(), None)]));
    assert_eq!(place(&w, "notes.txt"), BTreeSet::from([(BACKUP_CHAT.to_string(), Some(8))]));
    assert!(place(&w, "lost.bin").is_empty(), "not sent anywhere else");
    let failed = w.query("SELECT state, last_error FROM deliveries WHERE bucket = 'wrong'");
    assert_eq!(failed[0][0], "failed");
    assert!(failed[0][1].contains("topic 5") && failed[0][1].contains("buckets.wrong.topic_id"), "{}", failed[0][1]);
    let recorded = w.query("SELECT bucket, chat_id, topic_id FROM deliveries WHERE state = 'sent' ORDER BY bucket");
    assert_eq!(
        recorded,
        [["dbs", BACKUP_CHAT, "7"], ["media", MEDIA_CHAT, "NULL"], ["plain", BACKUP_CHAT, "8"]]
            .map(|r| r.map(String::from))
    );
    // Telegram took it into the main chat (Bot API 9.3 drops a topic outside forums): the
    // answer said so, the stray message was deleted, and the error names the setting.
    assert!(out.stderr.contains("wrong/lost.bin") && out.stderr.contains("instead of topic 5"), "{}", out.stderr);
    assert!(out.stderr.contains("is not a forum") && out.stderr.contains("was deleted"), "{}", out.stderr);
    let deleted = &w.tg.deleted()[deleted_by_doctor..];
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0].1, MEDIA_CHAT);

    // The operator corrects the topic; the retry goes where the settings now say, and
    // what was delivered stays where it went.
    w.config_file(&format!(
        "[telegram]\nbackup_topic_id = 8\n\n\
         [buckets.dbs]\nchat_id = {MEDIA_CHAT}\n\n\
         [buckets.media]\nchat_id = {MEDIA_CHAT}\n\n\
         [buckets.wrong]\ntopic_id = 7\n"
    ));
    w.execute("UPDATE deliveries SET next_attempt_at = 0 WHERE state = 'failed'");
    w.run(&["retry"]).await.success().no_token();
    assert_eq!(place(&w, "lost.bin"), BTreeSet::from([(BACKUP_CHAT.to_string(), Some(7))]));
    assert_eq!(place(&w, "dump.sql"), BTreeSet::from([(BACKUP_CHAT.to_string(), Some(7))]), "nothing moved");
    let dir = w.restored_dir();
    w.run(&["restore", "dbs/dump.sql", "--out", dir.to_str().unwrap()]).await.success();
    assert_eq!(std::fs::read(dir.join("dump.sql")).unwrap(), data(PART_SIZE as usize * 2 + 9, 1));
    // A new version in dbs goes to dbs's new chat.
    w.s3.put("dbs", "dump.sql", data(100, 5)).await;
    w.sync().await.success();
    assert!(place(&w, "dump.sql").contains(&(MEDIA_CHAT.to_string(), None)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ledger_from_before_several_bots_is_filled_in_with_the_bot_and_chat_configured() {
    let mut w = World::new().await.with_admin();
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 2 + 5, 6);
    w.s3.put("bkt", "old.tar", body.clone()).await;
    w.sync().await.success();
    // Back to the schema of version 5: no bot, chat or topic anywhere (and nothing of the
    // migrations after 6 either).
    for sql in [
        "DROP INDEX deliveries_pack",
        "ALTER TABLE deliveries DROP COLUMN pack_id",
        "DROP TABLE packs",
        "DROP TABLE runs_under_way",
        "DROP INDEX deliveries_created_at",
        "DROP INDEX deliveries_bucket_modified",
        "DROP TABLE overdue_watches",
        "DROP TABLE counters",
        "ALTER TABLE parts DROP COLUMN bot_id",
        "ALTER TABLE parts DROP COLUMN chat_id",
        "ALTER TABLE parts DROP COLUMN topic_id",
        "ALTER TABLE superseded_parts DROP COLUMN bot_id",
        "ALTER TABLE superseded_parts DROP COLUMN chat_id",
        "ALTER TABLE superseded_parts DROP COLUMN topic_id",
        "ALTER TABLE deliveries DROP COLUMN chat_id",
        "ALTER TABLE deliveries DROP COLUMN topic_id",
        "ALTER TABLE deliveries DROP COLUMN manifest_bot_id",
        "DROP TABLE backfill",
        "PRAGMA user_version = 5",
    ] {
        w.execute(sql);
    }

    // A command without the bot token migrates, and leaves the filling for later.
    let token = w.env["TELEGRAM_BOT_TOKEN"].clone();
    w.unset_env("TELEGRAM_BOT_TOKEN");
    w.run(&["status"]).await.success();
    assert_ne!(w.query("PRAGMA user_version")[0][0], "5", "migrated");
    assert_eq!(w.query("SELECT count(*) FROM parts WHERE bot_id IS NULL")[0][0], "3");
    assert_eq!(w.query("SELECT what FROM backfill"), [["destinations"]]);

    // Now with several bots configured: what was delivered is the first bot's, in the
    // backup chat.
    w.set_env("TELEGRAM_BOT_TOKEN", &token);
    w.tg.add_bot(TOKEN_2, BOT_USERNAME_2);
    w.set_env("TELEGRAM_BOT_TOKENS", TOKEN_2);
    w.run(&["status"]).await.success();
    assert_eq!(
        w.query("SELECT DISTINCT bot_id, chat_id, topic_id FROM parts"),
        [[BOT_ID.to_string(), BACKUP_CHAT.to_string(), "NULL".to_string()]]
    );
    assert_eq!(
        w.query("SELECT chat_id, manifest_bot_id FROM deliveries WHERE key = 'old.tar'"),
        [[BACKUP_CHAT.to_string(), BOT_ID.to_string()]]
    );
    assert_eq!(w.query("SELECT count(*) FROM backfill"), [["0"]], "filled in once");
    let dir = w.restored_dir();
    w.run(&["restore", "bkt/old.tar", "--out", dir.to_str().unwrap()]).await.success();
    assert_eq!(std::fs::read(dir.join("old.tar")).unwrap(), body);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_of_any_bot_appears_in_logs_errors_the_ledger_or_its_snapshot() {
    let mut w = three_bots().await.with_admin();
    w.set_env("TGPLOY_LOG", "trace");
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "a.bin", data(PART_SIZE as usize * 3, 1)).await;
    let out = w.sync().await;
    out.success().no_token();
    assert!(out.stderr.contains("sendDocument"), "trace logs name the calls");

    // Errors of each bot: one kicked from the backup chat, one whose token is refused.
    w.tg.forbid_chat_for_bot(TOKEN_2, BACKUP_CHAT);
    let doctor = w.run(&["doctor"]).await;
    doctor.code(1).no_token();
    assert!(doctor.stdout.contains("bot 223456789"), "{}", doctor.stdout);
    w.s3.put("bkt", "b.bin", data(PART_SIZE as usize * 4, 2)).await;
    w.sync().await.no_token();
    w.set_env("TELEGRAM_BOT_TOKENS", &format!("{TOKEN_2},323456789:not-the-right-one"));
    let out = w.run(&["doctor"]).await;
    out.code(1).no_token();
    assert!(out.stdout.contains("bot 323456789"), "the refused bot is named: {}", out.stdout);
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains("not-the-right-one"), "the refused token leaked: {text}");
    }
    w.set_env("TELEGRAM_BOT_TOKENS", &format!("{TOKEN_2},{TOKEN_3}"));

    for args in [&["status", "--json"][..], &["files", "--json"], &["buckets", "list"], &["ledger", "backup"]] {
        w.run(args).await.success().no_token();
    }
    assert_no_bot_token("the ledger", &String::from_utf8_lossy(&w.ledger_bytes()));
    let snapshot = w.tg.documents().into_iter().rev().find(|d| d.chat_id == ADMIN_CHAT).expect("a ledger snapshot");
    assert_no_bot_token("the ledger snapshot", &String::from_utf8_lossy(&snapshot.bytes()));
    for m in w.tg.messages() {
        assert_no_bot_token("a message", &format!("{:?} {:?}", m.text, m.caption));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_destinations_and_bots_and_links_each_message_where_it_went() {
    let mut w = three_bots().await;
    w.tg.set_forum(BACKUP_CHAT, &[7]);
    w.s3.create_bucket("media").await;
    w.s3.put("media", "cat.jpg", data(800, 3)).await;
    w.config_file("[buckets.backups]\ntopic_id = 7\n\n[buckets.media]\nchat_id = \"@media_archive\"\n");
    let mut d = Dash::start_in(w).await;
    let mut c = d.signed_in().await;

    let first = |key: &str| {
        d.w.query(&format!(
            "SELECT p.message_id FROM parts p JOIN deliveries d ON d.id = p.delivery_id WHERE d.key = '{key}' AND p.idx = 1"
        ))[0][0]
            .clone()
    };
    let files = c.get("/files").await;
    files.status(200);
    files.shows(&format!("https://t.me/c/1234567890/7/{}", first("db/dump.sql.gz")));
    files.shows(&format!("https://t.me/media_archive/{}", first("cat.jpg")));
    // The links follow the ledger, not the settings of the day.
    d.w.execute("UPDATE deliveries SET topic_id = NULL, chat_id = '-4242' WHERE key = 'etc/hosts'");
    let files = c.get("/files").await;
    let hosts = &files.body[files.body.find("backups/etc/hosts").unwrap()..];
    let cell = &hosts[..hosts.find("</tr>").unwrap()];
    assert!(cell.contains(&format!("message {}", first("etc/hosts"))) && !cell.contains("href"), "{cell}");

    let buckets = c.get("/buckets").await;
    buckets.status(200).shows("→ -1001234567890 (topic 7)").shows("→ @media_archive");

    let settings = c.get("/settings").await;
    settings.status(200);
    for (id, name) in [(BOT_ID, BOT_USERNAME), (BOT_ID_2, BOT_USERNAME_2), (BOT_ID_3, BOT_USERNAME_3)] {
        settings.shows(&id.to_string()).shows(&format!("@{name}"));
    }
    for page in ["/", "/buckets", "/files", "/retry", "/logs", "/security", "/settings"] {
        assert_no_bot_token(page, &c.get(page).await.body);
    }

    let icon = c.get("/favicon.ico").await;
    icon.status(200);
    assert_eq!(icon.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("image/x-icon"));
}
