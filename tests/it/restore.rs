//! `restore`, `join`, `verify` and `ledger backup`: the way back from Telegram, through
//! the real S3 server and the fake Bot API.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{ADMIN_CHAT, PART_SIZE, World, data, sha256_hex, signal, wait_exit};
use crate::support::telegram::Fault;

/// The names in a directory, sorted: what a failed restore must not leave behind.
pub(crate) fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Saves a document of the chat (the newest of that name) to `dir`, as an operator
/// downloading it from a Telegram client would.
fn download(w: &World, name: &str, dir: &Path) -> PathBuf {
    let doc = w.tg.documents().into_iter().rev().find(|d| d.file_name == name).unwrap_or_else(|| panic!("no {name}"));
    let path = dir.join(name);
    std::fs::write(&path, doc.bytes()).unwrap();
    path
}

/// An age identity file and its recipient.
pub(crate) fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    use age::secrecy::ExposeSecret;
    let key = age::x25519::Identity::generate();
    let path = dir.join(name);
    std::fs::write(&path, format!("# created: now\n{}\n", key.to_string().expose_secret())).unwrap();
    (path, key.to_public().to_string())
}

/// Decrypts with the `age` crate's own decryptor, independently of tgploy's code: what
/// `age -d -i key.txt name.age` does.
pub(crate) fn stock_age_decrypt(ciphertext: &[u8], key_file: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(key_file).unwrap();
    let line = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).unwrap();
    let identity: age::x25519::Identity = line.parse().unwrap();
    let decryptor = age::Decryptor::new(ciphertext).unwrap();
    let mut reader = decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)).unwrap();
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).unwrap();
    plain
}

fn forget_the_server(w: &mut World) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", w.ledger_path().display()));
    }
    for var in ["RUSTFS_ENDPOINT", "RUSTFS_ACCESS_KEY", "RUSTFS_SECRET_KEY", "TELEGRAM_BACKUP_CHAT_ID"] {
        w.unset_env(var);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_from_the_ledger_rebuilds_small_multi_part_empty_and_boundary_objects() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let p = PART_SIZE as usize;
    let objects = [
        ("small.bin", data(1000, 1)),
        ("multi/base.tar", data(p * 3 + 123, 2)),
        ("empty", Vec::new()),
        ("exact.bin", data(p, 3)),
        ("one-more.bin", data(p + 1, 4)),
        ("two-exact.bin", data(p * 2, 5)),
    ];
    for (key, body) in &objects {
        w.s3.put("bkt", key, body.clone()).await;
    }
    w.sync().await.success();

    let dir = w.restored_dir();
    for (key, body) in &objects {
        let out = w.run(&["restore", &format!("bkt/{key}"), "--out", dir.to_str().unwrap()]).await;
        out.success().no_token();
        let name = key.rsplit('/').next().unwrap();
        assert_eq!(std::fs::read(dir.join(name)).unwrap(), *body, "{key}");
        assert!(out.stdout.contains(&sha256_hex(body)), "{}", out.stdout);
    }
    assert_eq!(
        leftovers(&dir),
        ["base.tar", "empty", "exact.bin", "one-more.bin", "small.bin", "two-exact.bin"],
        "no temporary files are left"
    );

    // An existing file is not replaced without --force.
    let again = w.run(&["restore", "bkt/small.bin", "--out", dir.to_str().unwrap()]).await;
    again.code(2);
    assert!(again.stderr.contains("already exists") && again.stderr.contains("--force"), "{}", again.stderr);
    w.run(&["restore", "bkt/small.bin", "--out", dir.to_str().unwrap(), "--force"]).await.success();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_takes_the_latest_version_unless_an_etag_is_given() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let old = data(PART_SIZE as usize + 10, 1);
    let old_etag = w.s3.put("bkt", "db.dump", old.clone()).await;
    w.sync().await.success();
    let new = data(500, 2);
    w.s3.put("bkt", "db.dump", new.clone()).await;
    w.sync().await.success();

    let dir = w.restored_dir();
    let latest = dir.join("latest");
    w.run(&["restore", "bkt/db.dump", "--out", latest.to_str().unwrap()]).await.success();
    assert_eq!(std::fs::read(&latest).unwrap(), new);
    let older = dir.join("older");
    w.run(&["restore", "bkt/db.dump", "--etag", &old_etag, "--out", older.to_str().unwrap()]).await.success();
    assert_eq!(std::fs::read(&older).unwrap(), old);

    let missing = w.run(&["restore", "bkt/nope", "--out", dir.to_str().unwrap()]).await;
    missing.code(2);
    assert!(missing.stderr.contains("no delivery of bkt/nope") && missing.stderr.contains("tgploy files"));
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_streams_to_stdout() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 2 + 7, 9);
    w.s3.put("bkt", "x.bin", body.clone()).await;
    w.sync().await.success();
    let out = w.command(&["restore", "bkt/x.bin", "--out", "-"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, body, "stdout carries the object and nothing else");
    assert!(String::from_utf8_lossy(&out.stderr).contains("restored bkt/x.bin to stdout"));
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_from_the_manifest_alone_after_losing_the_server_and_the_ledger() {
    let mut w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 4 + 5, 3);
    w.s3.put("bkt", "pg/base.tar", body.clone()).await;
    w.sync().await.success();

    let dir = w.restored_dir();
    let manifest = download(&w, "base.tar.tgploy.json", w.dir.path());
    forget_the_server(&mut w);
    // Only the bot token (and the API URL of the test server) is left.
    let out = w.run(&["restore", "--manifest", manifest.to_str().unwrap(), "--out", dir.to_str().unwrap()]).await;
    out.success().no_token();
    assert_eq!(std::fs::read(dir.join("base.tar")).unwrap(), body);
    assert_eq!(w.tg.calls("download"), 5, "every part was downloaded once");
    assert!(!w.ledger_path().exists(), "a manifest restore needs no ledger and makes none");

    let from_ledger = w.run(&["restore", "bkt/pg/base.tar", "--out", dir.to_str().unwrap()]).await;
    from_ledger.code(2);
    assert!(from_ledger.stderr.contains("--manifest"), "{}", from_ledger.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_downloads_are_named_without_the_token() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "base.tar", data(PART_SIZE as usize * 2 + 1, 4)).await;
    w.sync().await.success();
    let dir = w.restored_dir();
    // The download URL holds the token: a dropped connection or an error answer must
    // not put it into the message.
    // One failure is repeated within the run; four in a row are an outage (exit 4). One
    // download at a time, so that the four faults meet the same request.
    w.tg.inject("download", Fault::Drop, 4);
    let out = w.run(&["-v", "restore", "bkt/base.tar", "--jobs", "1", "--out", dir.to_str().unwrap()]).await;
    out.code(4).no_token();
    assert!(out.stderr.contains("cannot reach the Telegram Bot API"), "{}", out.stderr);
    w.tg.inject("download", Fault::ServerError(502), 4);
    let out = w.run(&["-v", "restore", "bkt/base.tar", "--jobs", "1", "--out", dir.to_str().unwrap()]).await;
    out.code(4).no_token();
    assert!(out.stderr.contains("502"), "{}", out.stderr);
    // A refused download is located again (its link may have expired) and tried once
    // more; refused again, through a link just given, it is named.
    w.tg.inject("download", Fault::BadRequest("wrong file_id or the file is temporarily unavailable"), 2);
    let located = w.tg.calls("getFile");
    let out = w.run(&["-v", "restore", "bkt/base.tar", "--jobs", "1", "--out", dir.to_str().unwrap()]).await;
    out.code(1).no_token();
    assert!(
        out.stderr.contains("the download was refused (HTTP 400) although getFile had just located"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("does not know this file id"), "not blamed on the file id: {}", out.stderr);
    assert_eq!(w.tg.calls("getFile") - located, 2, "the refused part was located twice, nothing after it");
    assert!(leftovers(&dir).is_empty());
    w.run(&["restore", "bkt/base.tar", "--out", dir.to_str().unwrap()]).await.success();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_named_and_leaves_no_output() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 3 + 1, 4);
    w.s3.put("bkt", "base.tar", body.clone()).await;
    w.sync().await.success();
    let dir = w.restored_dir();
    let target = dir.join("base.tar");
    let manifest = download(&w, "base.tar.tgploy.json", w.dir.path());

    // A manifest that does not parse.
    let junk = w.dir.path().join("junk.tgploy.json");
    std::fs::write(&junk, "{ not json").unwrap();
    let out = w.run(&["restore", "--manifest", junk.to_str().unwrap(), "--out", target.to_str().unwrap()]).await;
    out.code(2);
    assert!(out.stderr.contains("junk.tgploy.json") && out.stderr.contains("is not a tgploy manifest"));

    // A file id Telegram no longer knows.
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["parts"][2]["file_id"] = "BQACAgIAAxkBAAIforgotten".into();
    let edited = w.dir.path().join("edited.tgploy.json");
    std::fs::write(&edited, serde_json::to_vec(&m).unwrap()).unwrap();
    let out = w.run(&["restore", "--manifest", edited.to_str().unwrap(), "--out", target.to_str().unwrap()]).await;
    out.code(1).no_token();
    assert!(out.stderr.contains("part 3 of 4 (base.tar.part003)"), "{}", out.stderr);
    assert!(out.stderr.contains("tgploy join"), "the manual route is named: {}", out.stderr);

    // A part whose bytes in Telegram no longer match their hash.
    let doc = w.documents_named("base.tar.part002").remove(0);
    let mut bytes = doc.bytes();
    bytes[100] ^= 0xff;
    std::fs::write(&doc.path, &bytes).unwrap();
    let out = w.run(&["restore", "bkt/base.tar", "--out", target.to_str().unwrap()]).await;
    out.code(1);
    assert!(out.stderr.contains("part 2 of 4 (base.tar.part002)") && out.stderr.contains("corrupt"), "{}", out.stderr);

    // A stdout restore stops before writing the corrupt part.
    let raw = w.command(&["restore", "bkt/base.tar", "--out", "-"]).output().unwrap();
    assert_eq!(raw.status.code(), Some(1));
    assert!(raw.stdout.len() as u64 <= PART_SIZE, "only the checked first part reached stdout");
    assert_eq!(raw.stdout, body[..raw.stdout.len()]);

    assert!(leftovers(&dir).is_empty(), "nothing under the requested name, no temporary file: {:?}", leftovers(&dir));
}

#[tokio::test(flavor = "multi_thread")]
async fn parts_over_the_download_limit_are_refused_up_front_with_the_manual_route() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "big.tar", data(PART_SIZE as usize * 2 + 9, 5)).await;
    w.sync().await.success();
    // Parts of 64 KiB against a server that hands out at most 50,000 bytes.
    w.tg.set_download_limit(50_000);
    let dir = w.restored_dir();
    // One part at a time: each is located right before its download, and the first one
    // located says no.
    let out = w.run(&["restore", "bkt/big.tar", "--jobs", "1", "--out", dir.to_str().unwrap()]).await;
    out.code(1).no_token();
    assert!(out.stderr.contains("part 1 of 3 (big.tar.part001)"), "{}", out.stderr);
    assert!(out.stderr.contains("file is too big") || out.stderr.contains("too big"), "{}", out.stderr);
    assert!(out.stderr.contains("tgploy join 'big.tar'.part* --manifest 'big.tar.tgploy.json'"), "{}", out.stderr);
    assert_eq!(w.tg.calls("getfile"), 1, "the first part already said no");
    assert_eq!(w.tg.calls("download"), 0, "nothing was downloaded");
    assert!(leftovers(&dir).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_hosted_bot_api_server_is_read_from_its_local_paths() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 2 + 1, 7);
    w.s3.put("bkt", "local.tar", body.clone()).await;
    w.sync().await.success();
    w.tg.set_local_mode();
    let dir = w.restored_dir();
    w.run(&["restore", "bkt/local.tar", "--out", dir.to_str().unwrap()]).await.success();
    assert_eq!(std::fs::read(dir.join("local.tar")).unwrap(), body);
    assert_eq!(w.tg.calls("download"), 0, "no file was fetched over HTTP");
    for doc in w.tg.documents() {
        assert!(doc.path.exists(), "the server's own files are left alone");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn join_names_missing_and_corrupt_parts_then_joins_good_ones() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 3 + 77, 6);
    w.s3.put("bkt", "site.tar", body.clone()).await;
    w.sync().await.success();

    // No settings at all: joining works on any machine.
    let hand = w.dir.path().join("downloads");
    std::fs::create_dir_all(&hand).unwrap();
    let parts: Vec<PathBuf> = (1..=4).map(|i| download(&w, &format!("site.tar.part00{i}"), &hand)).collect();
    let manifest = download(&w, "site.tar.tgploy.json", &hand);
    std::fs::remove_file(&parts[1]).unwrap();
    let mut corrupt = std::fs::read(&parts[2]).unwrap();
    corrupt.truncate(1000);
    std::fs::write(&parts[2], corrupt).unwrap();

    let dir = w.restored_dir();
    let target = dir.join("site.tar");
    let mut args = vec!["join".to_string()];
    args.extend(parts.iter().filter(|p| p.exists()).map(|p| p.display().to_string()));
    args.extend(["--manifest".into(), manifest.display().to_string(), "--out".into(), target.display().to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut bare = w.command(&argv);
    bare.env_clear();
    let out = bare.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("part 2 of 4 (site.tar.part002) is missing"), "{stderr}");
    assert!(stderr.contains("part 3 of 4 (site.tar.part003) is 1000 bytes"), "{stderr}");
    assert!(leftovers(&dir).is_empty());

    download(&w, "site.tar.part002", &hand);
    download(&w, "site.tar.part003", &hand);
    let mut args = vec!["join".to_string()];
    args.extend(parts.iter().map(|p| p.display().to_string()));
    args.extend(["--manifest".into(), manifest.display().to_string(), "--out".into(), target.display().to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    w.run(&argv).await.success();
    assert_eq!(std::fs::read(&target).unwrap(), body);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_downloads_and_checks_every_part_and_alerts_on_a_mismatch() {
    let w = World::new().await.with_admin();
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "a.bin", data(PART_SIZE as usize * 2 + 3, 1)).await;
    w.s3.put("bkt", "b.bin", data(300, 2)).await;
    w.s3.put("bkt", "empty", Vec::new()).await;
    w.sync().await.success();

    let out = w.run(&["verify", "--sample", "0", "--json"]).await;
    out.success().no_token();
    let report = out.json();
    assert_eq!(report["checked"], 3);
    assert_eq!(report["parts"], 5);
    assert_eq!(report["problems"].as_array().unwrap().len(), 0);

    let doc = w.documents_named("a.bin.part002").remove(0);
    let mut bytes = doc.bytes();
    bytes[0] ^= 1;
    std::fs::write(&doc.path, &bytes).unwrap();
    let out = w.run(&["verify", "--sample", "0"]).await;
    out.code(1);
    assert!(out.stdout.contains("MISMATCH bkt/a.bin"), "{}", out.stdout);
    assert!(out.stdout.contains("part 2 of 3 (a.bin.part002)"), "{}", out.stdout);
    let alerts = w.admin_messages();
    assert!(alerts.iter().any(|m| m.contains("restore drill failed for bkt/a.bin")), "{alerts:?}");

    // A sample of one checks one object.
    let out = w.run(&["verify", "--sample", "1", "--bucket", "bkt", "--json"]).await;
    assert_eq!(out.json()["checked"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ledger_snapshot_in_the_admin_chat_is_enough_to_restore_after_losing_the_server() {
    let mut w = World::new().await.with_admin();
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 2 + 11, 8);
    w.s3.put("bkt", "db.dump", body.clone()).await;
    w.sync().await.success();

    let out = w.run(&["ledger", "backup"]).await;
    out.success();
    let snap = w.tg.documents().into_iter().find(|d| d.chat_id == ADMIN_CHAT).expect("snapshot in the admin chat");
    assert!(snap.file_name.starts_with("tgploy-ledger-") && snap.file_name.ends_with(".sqlite3"), "{}", snap.file_name);

    // The heartbeat sends one daily when asked to.
    w.set_env("TGPLOY_HEARTBEAT_LEDGER_BACKUP", "true");
    w.run(&["heartbeat"]).await.success();
    let snaps = w.tg.documents().into_iter().filter(|d| d.chat_id == ADMIN_CHAT).count();
    assert_eq!(snaps, 2);

    let copy = w.dir.path().join("from-telegram.sqlite3");
    std::fs::write(&copy, snap.bytes()).unwrap();
    forget_the_server(&mut w);
    w.set_env("DATABASE_PATH", copy.to_str().unwrap());
    let dir = w.restored_dir();
    w.run(&["restore", "bkt/db.dump", "--out", dir.to_str().unwrap()]).await.success();
    assert_eq!(std::fs::read(dir.join("db.dump")).unwrap(), body);
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_objects_round_trip_through_tgploy_and_through_the_stock_age_route() {
    let mut w = World::new().await;
    let (key, recipient) = age_key(w.dir.path(), "key.txt");
    w.config_file(&format!("[encryption]\nrecipients = [\"{recipient}\"]\n"));
    w.s3.create_bucket("bkt").await;
    let p = PART_SIZE as usize;
    let objects = [
        ("small.bin", data(1000, 1)),
        ("pg/base.tar", data(p * 3 + 123, 2)),
        ("empty", Vec::new()),
        ("exact", data(p, 3)),
    ];
    for (key, body) in &objects {
        w.s3.put("bkt", key, body.clone()).await;
    }
    w.sync().await.success();
    // Encrypted objects are read as consecutive windows of the part size, so no S3
    // response stays open while a part uploads.
    let ranges: Vec<Option<String>> =
        w.s3.get_requests().into_iter().filter(|(_, k, _)| k == "pg/base.tar").map(|(_, _, r)| r).collect();
    let want: Vec<Option<String>> = (0..4u64)
        .map(|i| {
            let end = ((i + 1) * PART_SIZE).min(PART_SIZE * 3 + 123) - 1;
            Some(format!("bytes={}-{end}", i * PART_SIZE))
        })
        .collect();
    assert_eq!(ranges, want);

    let names: Vec<String> = w.tg.documents().iter().map(|d| d.file_name.clone()).collect();
    assert!(names.contains(&"small.bin.age".to_string()), "{names:?}");
    assert!(names.contains(&"base.tar.age.part001".to_string()) && names.contains(&"base.tar.tgploy.json".into()));
    let part1 = w.documents_named("base.tar.age.part001").remove(0);
    assert!(part1.rendered_caption.unwrap().contains("age -d -i key.txt 'base.tar.age' > 'base.tar'"));
    let body = &objects[1].1;
    let stored: Vec<u8> =
        w.tg.documents()
            .iter()
            .filter(|d| d.file_name.starts_with("base.tar.age.part"))
            .flat_map(|d| d.bytes())
            .collect();
    assert!(!stored.windows(64).any(|win| win == &body[1000..1064]), "the chat never sees the plaintext");
    // `cat base.tar.age.part* > base.tar.age && age -d -i key.txt base.tar.age > base.tar`
    assert_eq!(stock_age_decrypt(&stored, &key), *body);
    assert_eq!(stock_age_decrypt(&w.documents_named("small.bin.age")[0].bytes(), &key), objects[0].1);

    let (manifest, _) = w.join_from_manifest("base.tar.tgploy.json");
    assert_eq!(manifest["encryption"]["scheme"], "age");
    assert_eq!(manifest["encryption"]["recipients"][0], recipient.as_str());
    assert_eq!(manifest["encryption"]["plaintext_size"], body.len() as u64);
    assert_eq!(manifest["encryption"]["plaintext_sha256"], sha256_hex(body).as_str());
    assert_eq!(manifest["size"], stored.len() as u64);

    let dir = w.restored_dir();
    for (k, b) in &objects {
        let out =
            w.run(&["restore", &format!("bkt/{k}"), "-i", key.to_str().unwrap(), "--out", dir.to_str().unwrap()]).await;
        if b.is_empty() {
            // Empty objects are a text message, never encrypted: there is nothing to hide.
            out.code(2);
            assert!(out.stderr.contains("not encrypted"), "{}", out.stderr);
            w.run(&["restore", &format!("bkt/{k}"), "--out", dir.to_str().unwrap()]).await.success();
        } else {
            out.success();
        }
        assert_eq!(std::fs::read(dir.join(k.rsplit('/').next().unwrap())).unwrap(), *b, "{k}");
    }
    // Without the identity, the age file itself.
    w.run(&["restore", "bkt/pg/base.tar", "--out", dir.to_str().unwrap()]).await.success();
    assert_eq!(stock_age_decrypt(&std::fs::read(dir.join("base.tar.age")).unwrap(), &key), *body);

    // A key that does not match: exit 2, nothing written.
    let (stranger, _) = age_key(w.dir.path(), "stranger.txt");
    let wrong = dir.join("wrong");
    let out = w
        .run(&["restore", "bkt/pg/base.tar", "-i", stranger.to_str().unwrap(), "--out", wrong.to_str().unwrap()])
        .await;
    out.code(2);
    assert!(out.stderr.contains("identity does not match"), "{}", out.stderr);
    assert!(!wrong.exists());

    // From the manifest alone, then by hand with join.
    let manifest = download(&w, "base.tar.tgploy.json", w.dir.path());
    let hand = w.dir.path().join("hand");
    std::fs::create_dir_all(&hand).unwrap();
    let parts: Vec<String> =
        (1..=4).map(|i| download(&w, &format!("base.tar.age.part00{i}"), &hand).display().to_string()).collect();
    forget_the_server(&mut w);
    let from_manifest = dir.join("from-manifest");
    let out = w
        .run(&[
            "restore",
            "--manifest",
            manifest.to_str().unwrap(),
            "-i",
            key.to_str().unwrap(),
            "--out",
            from_manifest.to_str().unwrap(),
        ])
        .await;
    out.success();
    assert_eq!(std::fs::read(&from_manifest).unwrap(), *body);
    let joined = dir.join("joined");
    let mut args: Vec<&str> = vec!["join"];
    args.extend(parts.iter().map(String::as_str));
    args.extend([
        "--manifest",
        manifest.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
        "--out",
        joined.to_str().unwrap(),
    ]);
    w.run(&args).await.success();
    assert_eq!(std::fs::read(&joined).unwrap(), *body);

    // join with a key that does not match: the same exit 2 as restore, nothing written.
    let stray = dir.join("stray");
    let mut args: Vec<&str> = vec!["join"];
    args.extend(parts.iter().map(String::as_str));
    args.extend([
        "--manifest",
        manifest.to_str().unwrap(),
        "-i",
        stranger.to_str().unwrap(),
        "--out",
        stray.to_str().unwrap(),
    ]);
    let out = w.run(&args).await;
    out.code(2);
    assert!(out.stderr.contains("identity does not match"), "{}", out.stderr);
    assert!(!stray.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_encrypted_delivery_restarts_from_its_first_part() {
    let mut w = World::new().await;
    let (key, recipient) = age_key(w.dir.path(), "key.txt");
    w.set_env("TGPLOY_ENCRYPTION_RECIPIENTS", &recipient);
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 6, 5);
    w.s3.put("bkt", "slow.bin", body.clone()).await;
    w.tg.set_delay(Duration::from_millis(200));
    let child = w.spawn(&["sync"]);
    assert!(w.tg.wait_for_documents(2, Duration::from_secs(30)).await);
    signal(&child, "TERM");
    wait_exit(child, Duration::from_secs(30)).await.code(143);
    let first: usize = w.query("SELECT COUNT(*) FROM parts")[0][0].parse().unwrap();
    assert!(first >= 2, "{first}");
    assert_eq!(w.query("SELECT encrypted FROM deliveries"), [["1"]]);

    w.tg.set_delay(Duration::ZERO);
    w.sync().await.success();
    assert_eq!(w.query("SELECT COUNT(*) FROM superseded_parts")[0][0], first.to_string());
    let (manifest, joined) = w.join_from_manifest("slow.bin.tgploy.json");
    let parts = manifest["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 7, "six full parts of plaintext make seven of ciphertext");
    let superseded = w.query("SELECT file_id FROM superseded_parts");
    assert!(parts.iter().all(|p| superseded.iter().all(|s| s[0] != p["file_id"].as_str().unwrap())));
    assert_eq!(stock_age_decrypt(&joined, &key), body);

    let res = w.command(&["restore", "bkt/slow.bin", "-i", key.to_str().unwrap(), "--out", "-"]).output().unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert_eq!(res.stdout, body, "decrypted to stdout");
}
