//! `restore --all`: the worst day. Everything back, in parallel, as of any moment, into
//! a directory or straight into a new S3 server, through the real S3 server and the fake
//! Bot API.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::harness::{Output, PART_SIZE, World, data, sha256_hex, wait_exit};
use crate::restore::{age_key, leftovers};
use crate::support::s3::S3Server;

/// Every file under `dir`, by its path relative to `dir`, with its SHA-256. A restore may
/// be running meanwhile: a file renamed or removed between listing and reading is left
/// out, as it would be a moment later.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                walk(root, &path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha256_hex(&bytes));
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn hashes(objects: &[(&str, &str, Vec<u8>)]) -> BTreeMap<String, String> {
    objects.iter().map(|(b, k, body)| (format!("{b}/{k}"), sha256_hex(body))).collect()
}

async fn restore_all(w: &World, args: &[&str]) -> Output {
    let mut all = vec!["restore", "--all"];
    all.extend_from_slice(args);
    w.run(&all).await
}

/// Two buckets of backups: dumps in one and parts of all sizes in the other.
async fn backups(w: &World) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let p = PART_SIZE as usize;
    let objects = vec![
        ("dumps", "daily/mon.sql.gz", data(3000, 1)),
        ("dumps", "daily/tue.sql.gz", data(p * 3 + 11, 2)),
        ("dumps", "weekly/w47.sql.gz", data(p + 1, 3)),
        ("media", "photos/a.jpg", data(p * 2, 4)),
        ("media", "empty", Vec::new()),
        ("media", "video/big.mp4", data(p * 6 + 5, 5)),
    ];
    for bucket in ["dumps", "media"] {
        w.s3.create_bucket(bucket).await;
    }
    for (b, k, body) in &objects {
        w.s3.put(b, k, body.clone()).await;
    }
    w.sync().await.success();
    objects
}

#[tokio::test(flavor = "multi_thread")]
async fn everything_comes_back_into_a_directory_and_a_second_run_skips_it() {
    let w = World::new().await;
    let objects = backups(&w).await;
    let dir = w.dir.path().join("back");
    let out = restore_all(&w, &["--out", dir.to_str().unwrap(), "--json"]).await;
    out.success().no_token();
    let report = out.json();
    assert_eq!(report["restored"], 6);
    assert_eq!(report["failed"], 0);
    assert_eq!(tree(&dir), hashes(&objects), "every object at DIR/BUCKET/KEY, byte for byte");

    // Again: everything is there and checked; nothing is downloaded.
    let downloads = w.tg.calls("download");
    let again = restore_all(&w, &["--out", dir.to_str().unwrap(), "--json"]).await;
    again.success();
    assert_eq!((again.json()["restored"].clone(), again.json()["already_there"].clone()), (0.into(), 6.into()));
    assert_eq!(w.tg.calls("download"), downloads, "nothing downloaded again");

    // A file that differs is named, and replaced only with --force.
    let changed = dir.join("dumps/daily/mon.sql.gz");
    std::fs::write(&changed, b"not the backup").unwrap();
    let refused = restore_all(&w, &["--out", dir.to_str().unwrap()]).await;
    refused.code(1);
    assert!(
        refused.stdout.contains("dumps/daily/mon.sql.gz") && refused.stdout.contains("--force"),
        "{}",
        refused.stdout
    );
    restore_all(&w, &["--out", dir.to_str().unwrap(), "--force"]).await.success();
    assert_eq!(tree(&dir), hashes(&objects));
}

#[tokio::test(flavor = "multi_thread")]
async fn selection_by_bucket_prefix_and_as_of_picks_the_state_of_a_moment() {
    let w = World::new().await;
    let good = backups(&w).await;
    // The good versions were made two hours ago (as the ledger has their S3 times); the
    // moment is an hour ago, before what overwrote them.
    w.execute("UPDATE deliveries SET last_modified_ms = last_modified_ms - 7200000");
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let moment = humantime::format_rfc3339_seconds(an_hour_ago).to_string();
    // Ransomware: every dump overwritten with garbage, and a note left; the garbage is
    // delivered faithfully, as new versions.
    for (b, k, _) in good.iter().filter(|(b, _, _)| *b == "dumps") {
        w.s3.put(b, k, data(2048, 99)).await;
    }
    w.s3.put("dumps", "README-RANSOM.txt", b"pay up".to_vec()).await;
    w.sync().await.success();

    // Now: the garbage.
    let now = w.dir.path().join("now");
    restore_all(&w, &["--bucket", "dumps", "--out", now.to_str().unwrap()]).await.success();
    let garbage = sha256_hex(&data(2048, 99));
    let latest = tree(&now);
    assert_eq!(latest.len(), 4);
    assert_eq!(latest["dumps/daily/mon.sql.gz"], garbage);

    // As of the moment: the good versions, and no note.
    let before = w.dir.path().join("before");
    let out = restore_all(&w, &["--as-of", &moment, "--out", before.to_str().unwrap(), "--json"]).await;
    out.success();
    assert_eq!(tree(&before), hashes(&good), "as of {moment}");

    // A prefix, and a dry run that downloads nothing but says what it would take.
    let downloads = w.tg.calls("download");
    let dry =
        restore_all(&w, &["--as-of", &moment, "--prefix", "daily/", "--dry-run", "--out", "/nonexistent", "--json"])
            .await;
    dry.success();
    let report = dry.json();
    assert_eq!(w.tg.calls("download"), downloads, "a dry run downloads nothing");
    let keys: Vec<&str> = report["objects"].as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["daily/mon.sql.gz", "daily/tue.sql.gz"]);
    let etag = &report["objects"][0]["etag"];
    let first_etag = &w.query("SELECT etag FROM deliveries WHERE key = 'daily/mon.sql.gz' ORDER BY id LIMIT 1")[0][0];
    assert_eq!(etag.as_str(), Some(first_etag.as_str()), "the version picked is the good one");
    assert_eq!(report["bytes"], 3000 + PART_SIZE * 3 + 11);
    assert!(!Path::new("/nonexistent").exists());

    // A duration means that long ago: nothing existed three hours before.
    let hour = restore_all(&w, &["--as-of", "3h", "--dry-run", "--out", "/nonexistent", "--json"]).await;
    hour.success();
    assert_eq!(hour.json()["selected"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_that_try_to_leave_the_directory_stay_inside_it() {
    let w = World::new().await;
    w.s3.create_bucket("evil").await;
    let hostile = ["../../escape", "/etc/passwd", "a//b", "dot/./x", "back\\..\\..\\slash", "dir/", "100%"];
    let long = format!("long/{}", "n".repeat(300));
    let mut keys: Vec<String> = hostile.iter().map(|k| k.to_string()).collect();
    keys.push(long.clone());
    // s3s-fs keeps objects as files and cannot hold such keys (RustFS and AWS S3 can):
    // the objects are delivered under plain keys, then given their hostile keys in the
    // ledger, which is what a restore reads.
    for (i, key) in keys.iter().enumerate() {
        w.s3.put("evil", &format!("plain{i}"), data(100 + i, i as u64)).await;
        let _ = key;
    }
    w.sync().await.success();
    for (i, key) in keys.iter().enumerate() {
        let changed =
            w.execute(&format!("UPDATE deliveries SET key = '{}' WHERE key = 'plain{i}'", key.replace('\'', "''")));
        assert_eq!(changed, 1);
    }
    let root = w.dir.path().join("jail");
    std::fs::create_dir_all(&root).unwrap();
    let dir = root.join("back");
    let outside_before = leftovers(w.dir.path());
    let out = restore_all(&w, &["--out", dir.to_str().unwrap(), "--json"]).await;
    out.success().no_token();
    assert_eq!(out.json()["restored"], 8);
    assert_eq!(leftovers(w.dir.path()), outside_before, "nothing was written beside the directory");
    assert_eq!(leftovers(&root), ["back"], "nor beside the directory inside its parent");
    let got = tree(&dir);
    for (path, seed) in [
        ("evil/%2E%2E/%2E%2E/escape", 0),
        ("evil/%/etc/passwd", 1),
        ("evil/a/%/b", 2),
        ("evil/dot/%2E/x", 3),
        ("evil/back%5C..%5C..%5Cslash", 4),
        ("evil/dir/%", 5),
        ("evil/100%25", 6),
    ] {
        assert_eq!(got.get(path), Some(&sha256_hex(&data(100 + seed, seed as u64))), "{path}: {got:?}");
    }
    let long_name = got.keys().find(|p| p.starts_with("evil/long/")).expect("the long name");
    assert!(long_name.len() < "evil/long/".len() + 256 && long_name.contains("%~"), "{long_name}");

    // A symbolic link planted on the way is not followed: that object fails, named.
    let elsewhere = w.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::remove_dir_all(dir.join("evil/a")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&elsewhere, dir.join("evil/a")).unwrap();
    let out = restore_all(&w, &["--out", dir.to_str().unwrap(), "--json"]).await;
    out.code(1);
    let report = out.json();
    let failed: Vec<&serde_json::Value> =
        report["objects"].as_array().unwrap().iter().filter(|o| o["outcome"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["key"], "a//b");
    assert!(failed[0]["error"].as_str().unwrap().contains("symbolic link"), "{failed:?}");
    assert!(leftovers(&elsewhere).is_empty(), "nothing was written through the link");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_restore_is_resumed_without_downloading_finished_objects() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let mut bodies = Vec::new();
    for i in 0..12 {
        let body = data(PART_SIZE as usize * 2 + i, i as u64);
        w.s3.put("bkt", &format!("o{i:02}"), body.clone()).await;
        bodies.push(body);
    }
    w.sync().await.success();
    let dir = w.dir.path().join("back");
    // Slow file servers: the kill comes while objects are half done.
    w.tg.set_download_rate(Some(256 * 1024));
    let child = w.spawn(&["restore", "--all", "--jobs", "2", "--out", dir.to_str().unwrap()]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while tree(&dir).len() < 3 {
        assert!(std::time::Instant::now() < deadline, "no object was finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut child = child;
    child.kill().unwrap();
    let _ = wait_exit(child, Duration::from_secs(10)).await;
    // What is there under its name is whole: only a temporary file can be partial.
    let finished: Vec<String> = tree(&dir).keys().filter(|p| !p.ends_with(".tgploy-partial")).cloned().collect();
    assert!(finished.len() < 12, "killed before the end");

    w.tg.set_download_rate(None);
    let (downloads, located) = (w.tg.calls("download"), w.tg.calls("getFile"));
    let out = restore_all(&w, &["--out", dir.to_str().unwrap(), "--json"]).await;
    out.success();
    let report = out.json();
    // The finished objects were found there and checked, not downloaded again: only the
    // others were, each of their parts once (o00 is two parts long, the others three).
    let there: Vec<String> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["outcome"] == "already_there")
        .map(|o| format!("bkt/{}", o["key"].as_str().unwrap()))
        .collect();
    assert_eq!(there, finished, "{report}");
    assert_eq!(report["restored"].as_u64().unwrap() as usize, 12 - finished.len());
    let parts = |key: &str| if key == "bkt/o00" { 2 } else { 3 };
    let unfinished: usize =
        (0..12).map(|i| format!("bkt/o{i:02}")).filter(|k| !finished.contains(k)).map(|k| parts(&k)).sum();
    let downloaded = (w.tg.calls("download") - downloads, w.tg.calls("getFile") - located);
    assert_eq!(
        downloaded,
        (unfinished, unfinished),
        "downloads and getFile calls of the {} unfinished",
        12 - finished.len()
    );
    let want: BTreeMap<String, String> =
        bodies.iter().enumerate().map(|(i, body)| (format!("bkt/o{i:02}"), sha256_hex(body))).collect();
    assert_eq!(tree(&dir), want, "everything identical, no partial file left");
}

#[tokio::test(flavor = "multi_thread")]
async fn into_an_empty_s3_server_and_the_next_sync_sends_nothing() {
    let mut w = World::new().await;
    let mut objects = backups(&w).await;
    // One object larger than an S3 part (8 MiB): a multipart upload.
    let big = data(9 * 1024 * 1024 + 17, 8);
    w.s3.put("media", "video/huge.mkv", big.clone()).await;
    w.sync().await.success();
    objects.push(("media", "video/huge.mkv", big));
    let documents = w.tg.documents().len();

    // The server is gone; a new, empty one takes its place.
    let new = S3Server::start().await;
    w.set_env("RUSTFS_ENDPOINT", &new.endpoint());
    let out = restore_all(&w, &["--to-s3", "--json"]).await;
    out.success().no_token();
    assert_eq!(out.json()["restored"], 7);
    let client = new.client();
    for (b, k, body) in &objects {
        let got = client.get_object().bucket(*b).key(*k).send().await.unwrap();
        let sha = got.metadata().and_then(|m| m.get("tgploy-sha256")).cloned();
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(sha256_hex(&bytes), sha256_hex(body), "{b}/{k}");
        assert_eq!(sha.as_deref(), Some(sha256_hex(body).as_str()), "{b}/{k}: its SHA-256 in its metadata");
    }

    // The ledger knows the new versions as delivered: nothing goes out again.
    let sync = w.run(&["sync", "--json"]).await;
    sync.success();
    assert_eq!(sync.json()["sent"], 0);
    assert_eq!(w.tg.documents().len(), documents, "the next sync sent nothing");

    // Again: everything is there already.
    let again = restore_all(&w, &["--to-s3", "--json"]).await;
    again.success();
    assert_eq!(again.json()["already_there"], 7);

    // An object that differs is replaced only with --force.
    new.put("dumps", "daily/mon.sql.gz", b"someone else's".to_vec()).await;
    let refused = restore_all(&w, &["--to-s3", "--bucket", "dumps"]).await;
    refused.code(1);
    assert!(refused.stdout.contains("exists and differs"), "{}", refused.stdout);
    restore_all(&w, &["--to-s3", "--bucket", "dumps", "--force"]).await.success();
    let got = client.get_object().bucket("dumps").key("daily/mon.sql.gz").send().await.unwrap();
    assert_eq!(sha256_hex(&got.body.collect().await.unwrap().into_bytes()), sha256_hex(&objects[0].2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_part_or_one_telegram_forgot_fails_only_its_object() {
    let w = World::new().await;
    let objects = backups(&w).await;
    // A part whose bytes no longer match their hash.
    let doc = w.documents_named("tue.sql.gz.part002").remove(0);
    let mut bytes = doc.bytes();
    bytes[7] ^= 0xff;
    std::fs::write(&doc.path, &bytes).unwrap();
    // A part Telegram no longer knows.
    w.execute(
        "UPDATE parts SET file_id = 'BQACAgIAAxkBAAIforgotten' WHERE idx = 2 AND delivery_id =
         (SELECT id FROM deliveries WHERE key = 'video/big.mp4')",
    );
    let dir = w.dir.path().join("back");
    let out = restore_all(&w, &["--out", dir.to_str().unwrap(), "--json"]).await;
    out.code(1).no_token();
    let report = out.json();
    assert_eq!((report["restored"].clone(), report["failed"].clone()), (4.into(), 2.into()));
    let failed: BTreeMap<String, String> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["outcome"] == "failed")
        .map(|o| (o["key"].as_str().unwrap().to_string(), o["error"].as_str().unwrap().to_string()))
        .collect();
    assert!(failed["daily/tue.sql.gz"].contains("part 2 of 4") && failed["daily/tue.sql.gz"].contains("corrupt"));
    assert!(failed["video/big.mp4"].contains("part 2 of 7") && failed["video/big.mp4"].contains("tgploy join"));
    let mut want = hashes(&objects);
    want.remove("dumps/daily/tue.sql.gz");
    want.remove("media/video/big.mp4");
    assert_eq!(tree(&dir), want, "the others came back; nothing under the failed names");
    let text = restore_all(&w, &["--out", dir.to_str().unwrap()]).await;
    assert!(text.stdout.contains("FAILED dumps/daily/tue.sql.gz"), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_objects_come_back_with_the_identity_and_s3_refuses_them_without() {
    let mut w = World::new().await;
    let (key, recipient) = age_key(w.dir.path(), "key.txt");
    w.set_env("TGPLOY_ENCRYPTION_RECIPIENTS", &recipient);
    w.s3.create_bucket("dumps").await;
    let small = data(1000, 1);
    let big = data(PART_SIZE as usize * 3, 2);
    w.s3.put("dumps", "small.sql", small.clone()).await;
    w.s3.put("dumps", "big.sql", big.clone()).await;
    w.sync().await.success();

    // Without the identity into a directory: the age files, as stored.
    let sealed = w.dir.path().join("sealed");
    restore_all(&w, &["--out", sealed.to_str().unwrap()]).await.success();
    let files = tree(&sealed);
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), ["dumps/big.sql.age", "dumps/small.sql.age"]);
    let plain = crate::restore::stock_age_decrypt(&std::fs::read(sealed.join("dumps/small.sql.age")).unwrap(), &key);
    assert_eq!(plain, small);

    // With it: the originals.
    let open = w.dir.path().join("open");
    restore_all(&w, &["--out", open.to_str().unwrap(), "--identity", key.to_str().unwrap()]).await.success();
    assert_eq!(tree(&open), hashes(&[("dumps", "small.sql", small.clone()), ("dumps", "big.sql", big.clone())]));

    // Into S3 the originals go back: without the identity, a clear error before any
    // download.
    let new = S3Server::start().await;
    w.set_env("RUSTFS_ENDPOINT", &new.endpoint());
    let downloads = w.tg.calls("download");
    let refused = restore_all(&w, &["--to-s3"]).await;
    refused.code(2);
    assert!(refused.stderr.contains("--identity") && refused.stderr.contains("2 of the 2"), "{}", refused.stderr);
    assert_eq!(w.tg.calls("download"), downloads, "nothing was downloaded");
    // Deliveries made before the original's SHA-256 was recorded learn it on the way.
    w.execute("UPDATE deliveries SET plaintext_sha256 = NULL");
    restore_all(&w, &["--to-s3", "--identity", key.to_str().unwrap()]).await.success();
    for (k, body) in [("small.sql", &small), ("big.sql", &big)] {
        let got = new.client().get_object().bucket("dumps").key(k).send().await.unwrap();
        let sha = got.metadata().and_then(|m| m.get("tgploy-sha256")).cloned();
        assert_eq!(sha256_hex(&got.body.collect().await.unwrap().into_bytes()), sha256_hex(body), "{k}");
        assert_eq!(sha, Some(sha256_hex(body)), "{k}");
    }
}
