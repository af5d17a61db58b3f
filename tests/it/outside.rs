//! What the outside services really do, as their servers' sources and documentation say,
//! and what tgploy makes of it: Telegram drops a topic outside forums (Bot API 9.3's
//! `check_message_topic`), download links live an hour and no longer, the Bot API's exact
//! limits, S3 listings that carry keys XML cannot, and exit codes that say which side
//! failed.

use std::time::Duration;

use crate::harness::{BACKUP_CHAT, PART_SIZE, World, data};
use crate::support::s3::S3Server;
use crate::support::telegram::Fault;

/// The messages left in a chat (deleted ones are gone), as `(chat, topic)`.
fn chats(w: &World) -> Vec<(String, Option<i64>)> {
    w.tg.messages().iter().map(|m| (m.chat_id.clone(), m.thread_id)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_in_a_chat_that_is_no_forum_stops_the_run_undoes_the_stray_message_and_records_nothing() {
    // The backup chat is an ordinary supergroup: Telegram takes `message_thread_id = 5`
    // and posts to its main chat, answering as if all went well.
    let mut w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "dump.sql", data(500, 1)).await;
    w.config_file("[telegram]\nbackup_topic_id = 5\n");

    let doctor = w.run(&["doctor"]).await;
    doctor.code(1).no_token();
    let line = doctor.stdout.lines().find(|l| l.contains("backup chat")).unwrap_or_else(|| panic!("{}", doctor.stdout));
    assert!(line.starts_with('✗') && line.contains("not a forum") && line.contains("topic 5"), "{line}");
    assert!(doctor.stdout.contains("turn topics on"), "the fix is named: {}", doctor.stdout);
    assert!(w.tg.messages().is_empty(), "doctor posted nothing to a chat that is no forum");

    // The default destination: nothing can go anywhere until it is fixed (exit 2), the
    // message that landed in the main chat is deleted, the delivery is left pending with
    // no attempt counted, and nothing says it was delivered.
    let out = w.sync().await;
    out.code(2).no_token();
    assert!(out.stderr.contains("instead of topic 5 of chat"), "{}", out.stderr);
    assert!(out.stderr.contains("telegram.backup_topic_id"), "{}", out.stderr);
    assert!(out.stderr.contains("was deleted"), "{}", out.stderr);
    assert_eq!(w.tg.deleted().len(), 1);
    assert!(chats(&w).is_empty(), "no message is left in the main chat: {:?}", chats(&w));
    assert_eq!(w.query("SELECT state, attempts FROM deliveries"), [["pending", "0"]]);
    assert_eq!(w.query("SELECT count(*) FROM parts"), [["0"]]);

    // A stray message the bot cannot delete is named, for the operator to delete.
    w.tg.inject("deleteMessage", Fault::BadRequest("message can't be deleted"), 1);
    let out = w.sync().await;
    out.code(2).no_token();
    assert!(out.stderr.contains("could not be deleted") && out.stderr.contains("by hand"), "{}", out.stderr);
    assert_eq!(chats(&w), [(BACKUP_CHAT.to_string(), None)], "the one left behind, and named");
    assert_eq!(w.query("SELECT count(*) FROM parts"), [["0"]]);

    // The chat becomes a forum with topic 5: doctor posts a test message in the topic and
    // deletes it at once; sync delivers there.
    w.tg.set_forum(BACKUP_CHAT, &[5]);
    let deleted = w.tg.deleted().len();
    let doctor = w.run(&["doctor"]).await;
    doctor.success().no_token();
    let line = doctor.stdout.lines().find(|l| l.contains("backup chat")).unwrap();
    assert!(line.starts_with('✓') && line.contains("posted and deleted"), "{line}");
    assert_eq!(w.tg.deleted().len(), deleted + 1, "the test message is gone");
    w.sync().await.success().no_token();
    assert_eq!(w.query("SELECT chat_id, topic_id FROM parts"), [[BACKUP_CHAT, "5"]]);
    let topics: Vec<Option<i64>> = w.documents_named("dump.sql").iter().map(|d| d.thread_id).collect();
    assert_eq!(topics, [None, Some(5)], "the stray one left in the main chat, then the delivery in its topic");

    // A topic the forum lacks: doctor says so, and how to fix it.
    w.config_file("[telegram]\nbackup_topic_id = 9\n");
    let doctor = w.run(&["doctor"]).await;
    doctor.code(1);
    let line = doctor.stdout.lines().find(|l| l.contains("backup chat")).unwrap();
    assert!(line.starts_with('✗') && line.contains("no topic 9"), "{line}");
    assert!(doctor.stdout.contains("create topic 9"), "{}", doctor.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn where_telegram_put_a_message_is_what_the_ledger_records() {
    // A channel named by its username: the answer says which chat it is, by number.
    let mut w = World::new().await;
    w.set_env("TELEGRAM_BACKUP_CHAT_ID", "@tgploy_backups");
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 2 + 3, 2);
    w.s3.put("bkt", "base.tar", body.clone()).await;
    w.sync().await.success();
    let landed: Vec<String> = w.tg.documents().iter().map(|d| d.chat_id.clone()).collect();
    let answered = w.tg.messages()[0].chat_id.clone();
    assert!(landed.iter().all(|c| *c == answered), "{landed:?}");
    let recorded = w.query("SELECT DISTINCT chat_id FROM parts");
    let numeric = w.query("SELECT count(*) FROM parts WHERE chat_id LIKE '-100%'");
    assert_eq!((recorded.len(), numeric[0][0].as_str()), (1, "3"), "{recorded:?}");
    let dir = w.restored_dir();
    w.run(&["restore", "bkt/base.tar", "--out", dir.to_str().unwrap()]).await.success();
    assert_eq!(std::fs::read(dir.join("base.tar")).unwrap(), body);
}

#[tokio::test(flavor = "multi_thread")]
async fn restores_that_outlast_their_download_links_locate_each_part_just_before_it_downloads() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 4, 3);
    w.s3.put("bkt", "base.tar", body.clone()).await;
    w.sync().await.success();
    // Each part takes half a second to download, and a link lives 0.8 s after its
    // getFile: all four located up front, the third would be refused.
    w.tg.set_download_rate(Some(PART_SIZE * 2));
    w.tg.set_link_lifetime(Duration::from_millis(800));

    let all = w.dir.path().join("all");
    let located = w.tg.calls("getFile");
    w.run(&["restore", "--all", "--jobs", "1", "--out", all.to_str().unwrap()]).await.success().no_token();
    assert_eq!(std::fs::read(all.join("bkt/base.tar")).unwrap(), body);
    assert_eq!(w.tg.calls("getFile") - located, 4, "one getFile per part, each just before its download");

    let one = w.restored_dir();
    w.run(&["restore", "bkt/base.tar", "--jobs", "1", "--out", one.to_str().unwrap()]).await.success();
    assert_eq!(std::fs::read(one.join("base.tar")).unwrap(), body);

    // A link refused anyway (it expired between getFile and the download) is asked for
    // again; the file id is not blamed.
    w.tg.set_download_rate(None);
    w.tg.inject("download", Fault::NotFound, 1);
    let located = w.tg.calls("getFile");
    let out = w.run(&["-v", "verify", "--sample", "0", "--jobs", "1"]).await;
    out.success().no_token();
    assert!(out.stderr.contains("asking getFile again"), "{}", out.stderr);
    assert_eq!(w.tg.calls("getFile") - located, 5, "four parts, one of them located twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bot_api_limits_are_the_servers_own() {
    let mut w = World::new().await;
    w.s3.create_bucket("bkt").await;

    // MAX_DOWNLOAD_FILE_SIZE = 20 << 20: a part of exactly 20 MiB comes back through the
    // bot; one KiB more does not, and the manual route is named.
    w.set_env("TGPLOY_PART_SIZE", "21MiB");
    let exact = data(20 << 20, 4);
    w.s3.put("bkt", "exact.bin", exact.clone()).await;
    w.s3.put("bkt", "over.bin", data((20 << 20) + 1024, 5)).await;
    w.sync().await.success();
    let dir = w.restored_dir();
    w.run(&["restore", "bkt/exact.bin", "--out", dir.to_str().unwrap()]).await.success();
    assert!(std::fs::read(dir.join("exact.bin")).unwrap() == exact);
    let out = w.run(&["restore", "bkt/over.bin", "--out", dir.to_str().unwrap()]).await;
    out.code(1);
    assert!(out.stderr.contains("file is too big") && out.stderr.contains("tgploy join"), "{}", out.stderr);

    // Uploads: 50 MiB of request body. A part of the largest size tgploy allows on the
    // cloud API (49 MiB), with a long caption, fits; a 50 MiB part does not, and the
    // failure names `part_size`.
    w.set_env("TGPLOY_PART_SIZE", "49MiB");
    // (s3s-fs keeps a key's metadata in a file named after the key in base64: keys over
    // about 160 bytes do not fit in a file name there.)
    let key = format!("dumps/{}/&<{}>/{}.sql", "a".repeat(40), "b".repeat(40), "c".repeat(40));
    let largest = data(49 << 20, 6);
    w.s3.put("bkt", &key, largest.clone()).await;
    w.sync().await.success();
    let doc = w.tg.documents().into_iter().find(|d| d.size == 49 << 20).expect("the 49 MiB part");
    let caption = doc.caption.clone().unwrap_or_default();
    assert!(caption.contains("&amp;&lt;") && caption.len() > 300, "a long, escaped caption went with it: {caption}");
    assert!(doc.sha256() == crate::harness::sha256_hex(&largest));

    w.set_env("TGPLOY_PART_SIZE", "50MiB");
    w.s3.put("bkt", "too-large.bin", data(50 << 20, 7)).await;
    let out = w.sync().await;
    out.code(1);
    let error = w.query("SELECT last_error FROM deliveries WHERE key = 'too-large.bin'");
    assert!(error[0][0].contains("HTTP 413") && error[0][0].contains("part_size"), "{}", error[0][0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_that_xml_cannot_carry_are_listed_url_encoded_and_delivered() {
    // Listings carry ETags (as on RustFS, MinIO and AWS), and the test server puts keys
    // into its XML raw unless asked for `encoding-type=url`, as S3 does.
    let w = World::with(S3Server::start_with_listed_etags().await).await;
    w.s3.create_bucket("mixed").await;
    let mut keys: Vec<String> = (0..5).map(|i| format!("dumps/day-{i}.sql.gz")).collect();
    keys.extend(["odd/\u{1}start", "odd/unit\u{1f}sep", "odd/del\u{7f}", "odd/two\nlines"].map(String::from));
    keys.extend(["odd/a+b c%20d.txt", "odd/ünïcødé €.txt"].map(String::from));
    for (i, key) in keys.iter().enumerate() {
        w.s3.put("mixed", key, data(100 + i, i as u64)).await;
    }
    let out = w.sync().await;
    out.success();
    let sent = w.query("SELECT key FROM deliveries WHERE state = 'sent' ORDER BY key");
    let mut want = keys.clone();
    want.sort();
    assert_eq!(sent.into_iter().map(|r| r[0].clone()).collect::<Vec<_>>(), want, "every key, decoded exactly");
    assert_eq!(w.tg.documents().len(), keys.len());
    // Each came back from S3 under its own key: the document is the object's bytes.
    let docs = w.tg.documents();
    for (i, key) in keys.iter().enumerate() {
        let sql = format!(
            "SELECT p.file_id FROM parts p JOIN deliveries d ON d.id = p.delivery_id WHERE d.key = '{}'",
            key.replace('\'', "''")
        );
        let file_id = &w.query(&sql)[0][0];
        let doc = docs.iter().find(|d| &d.file_id == file_id).unwrap_or_else(|| panic!("{key:?}"));
        assert!(doc.bytes() == data(100 + i, i as u64), "{key:?}");
    }

    // A server that ignores `encoding-type` cannot list such a bucket: the error says the
    // answer is no S3 XML (not "HTTP 200"), and the other buckets go on.
    w.s3.ignore_url_encoding(true);
    w.s3.create_bucket("plain").await;
    w.s3.put("plain", "ok.txt", data(10, 9)).await;
    let out = w.sync().await;
    out.code(1);
    assert!(
        out.stdout.contains("does not read as S3's XML") || out.stderr.contains("does not read as S3's XML"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(w.query("SELECT state FROM deliveries WHERE bucket = 'plain'"), [["sent"]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_say_which_side_failed() {
    let mut w = World::new().await;
    // S3 not answering, in setup: 4, like any run that cannot reach it.
    let config = w.dir.path().join("new.toml").display().to_string();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let endpoint = w.env["RUSTFS_ENDPOINT"].clone();
    w.set_env("RUSTFS_ENDPOINT", &format!("http://{closed}"));
    let out = w.run(&["setup", "--non-interactive", "--no-totp", "--config", &config]).await;
    out.code(4);
    assert!(out.stderr.contains("S3 check failed"), "{}", out.stderr);
    w.set_env("RUSTFS_ENDPOINT", &endpoint);

    // A Bot API URL that is no URL is a setting to fix: 2.
    let out =
        w.run(&["setup", "--non-interactive", "--no-totp", "--config", &config, "--api-url", "http://exa mple"]).await;
    out.code(2);
    assert!(out.stderr.contains("is not valid") && out.stderr.contains("api_url"), "{}", out.stderr);
    assert!(!std::path::Path::new(&config).exists(), "nothing was written");

    // setup refuses a part size the settings would refuse afterwards.
    let out = w.run(&["setup", "--non-interactive", "--no-totp", "--part-size", "3KiB", "--config", &config]).await;
    out.code(2);
    assert!(out.stderr.contains("--part-size 3KiB") && out.stderr.contains("between"), "{}", out.stderr);

    // A lock file that cannot be made is this machine's problem: 2, naming the file.
    let lock = w.dir.path().join("ledger.sqlite3.sync.lock");
    std::fs::create_dir_all(&lock).unwrap();
    let out = w.sync().await;
    out.code(2);
    assert!(out.stderr.contains("lock file") && out.stderr.contains("sync.lock"), "{}", out.stderr);
    std::fs::remove_dir(&lock).unwrap();

    // A damaged second-factor secret: 2, with the way out.
    w.enrol_totp();
    w.execute("UPDATE totp SET secret = '!!not base32!!'");
    let out = w.run(&["buckets", "disable", "bkt", "--otp", "123456"]).await;
    out.code(2);
    assert!(out.stderr.contains("setup totp --reset"), "{}", out.stderr);

    // A heartbeat without an admin chat is a failed run on record, like a sync.
    let out = w.run(&["heartbeat"]).await;
    out.code(2);
    assert_eq!(w.query("SELECT kind, error IS NOT NULL FROM runs WHERE kind = 'heartbeat'"), [["heartbeat", "1"]]);
}
