//! Packs: small objects due together for one destination travel as one tar document, and
//! everything that reads deliveries understands their members: restore of one, `--all`
//! (each pack downloaded once), `--as-of`, `--to-s3`, `verify`, `files`, `status`, and
//! the way back by hand with the stock `tar` and `age`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{BACKUP_CHAT, PART_SIZE, World, data, sha256_hex};
use crate::restore::{age_key, leftovers};
use crate::support::s3::S3Server;
use crate::support::telegram::Document;

const MEDIA_CHAT: &str = "-1009876543210";
const PACK_PREFIX: &str = "tgploy-pack-";

/// A world with packing on, at its default threshold (the harness turns it off: most
/// tests follow one object's journey).
async fn packing_world() -> World {
    let mut w = World::new().await;
    w.unset_env("TGPLOY_PACK_MAX_OBJECT_SIZE");
    w
}

fn pack_documents(w: &World) -> Vec<Document> {
    w.tg.documents().into_iter().filter(|d| d.file_name.starts_with(PACK_PREFIX)).collect()
}

/// The members of a plain pack: tar path → bytes, read with the `tar` crate.
fn members_of(tar: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.insert(path, bytes);
    }
    out
}

/// Every file under `dir`, by its path relative to `dir`, with its SHA-256.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha256_hex(&std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// Puts `n` small objects `PREFIX{i:03}` of 300 to 2,300 bytes into `bucket`.
async fn small_objects(w: &World, bucket: &str, prefix: &str, n: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..n {
        let body = data(300 + (i * 397) % 2000, seed + i as u64);
        let key = format!("{prefix}{i:03}");
        w.s3.put(bucket, &key, body.clone()).await;
        out.push((key, body));
    }
    out
}

/// Runs a command line through the shell, as an operator types it.
fn shell(line: &str, dir: &Path) -> std::process::Output {
    Command::new("sh").arg("-c").arg(line).current_dir(dir).output().expect("run sh")
}

#[tokio::test(flavor = "multi_thread")]
async fn small_objects_of_several_buckets_travel_in_packs_one_destination_each() {
    let mut w = packing_world().await;
    for b in ["logs", "conf", "media", "single"] {
        w.s3.create_bucket(b).await;
    }
    w.config_file(&format!(
        "[buckets.media]\nchat_id = {MEDIA_CHAT}\n\n[buckets.single]\nchat_id = \"-1005555555555\"\n"
    ));
    let logs = small_objects(&w, "logs", "app/log", 40, 100).await;
    let conf = small_objects(&w, "conf", "etc/conf", 15, 200).await;
    let media = small_objects(&w, "media", "thumb", 10, 300).await;
    let big = data(PART_SIZE as usize * 2 + 3, 9);
    w.s3.put("logs", "archive.tar", big.clone()).await;
    w.s3.put("single", "lonely.txt", b"alone".to_vec()).await;

    let out = w.run(&["sync", "--json"]).await;
    out.success().no_token();
    let report = out.json();
    assert_eq!(report["sent"], 67);
    assert_eq!(report["packed"], 65, "{report}");
    // The listing has no ETags, so each object was HEADed, answers coming in any order:
    // deliveries are recorded in key order all the same.
    let by_id: Vec<String> = w
        .query("SELECT key FROM deliveries WHERE bucket = 'logs' ORDER BY id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let mut sorted = by_id.clone();
    sorted.sort();
    assert_eq!(by_id, sorted);
    let packs = pack_documents(&w);
    assert_eq!(report["packs"], packs.len(), "{report}");
    assert_eq!(w.query("SELECT COUNT(*) FROM packs")[0][0], packs.len().to_string());
    // 65 objects in a handful of messages: a pack is at most one part (64 KiB here).
    assert!(packs.len() <= 8, "{} packs", packs.len());
    assert!(packs.iter().all(|p| p.size <= PART_SIZE), "every pack within the part size");

    // Every small object is in exactly one pack, byte for byte, and each pack went to
    // its members' destination only.
    let mut seen: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    for p in &packs {
        let members = members_of(&p.bytes());
        assert!(members.contains_key("tgploy-pack.json"), "{:?}", members.keys());
        for (path, bytes) in members.into_iter().filter(|(path, _)| path != "tgploy-pack.json") {
            assert!(seen.insert(path.clone(), (p.chat_id.clone(), bytes)).is_none(), "{path} in two packs");
        }
        let caption = p.rendered_caption.clone().unwrap_or_default();
        assert!(caption.contains("tar -x"), "the caption says how to open it: {caption}");
    }
    for (bucket, objects, chat) in
        [("logs", &logs, BACKUP_CHAT), ("conf", &conf, BACKUP_CHAT), ("media", &media, MEDIA_CHAT)]
    {
        for (key, body) in objects {
            let (got_chat, bytes) = seen.remove(&format!("{bucket}/{key}")).unwrap_or_else(|| panic!("{bucket}/{key}"));
            assert_eq!((got_chat.as_str(), sha256_hex(&bytes)), (chat, sha256_hex(body)), "{bucket}/{key}");
        }
    }
    assert!(seen.is_empty(), "nothing else in the packs: {:?}", seen.keys());
    // The large object and the lone small one went as themselves.
    assert_eq!(w.documents_named("lonely.txt").len(), 1);
    assert_eq!(w.documents_named("archive.tar.part001").len(), 1);

    // The ledger says where each member's bytes lie in its pack.
    let rows = w.query(
        "SELECT d.bucket, d.key, p.offset, p.size, p.sha256, k.file_id FROM deliveries d
         JOIN parts p ON p.delivery_id = d.id JOIN packs k ON k.id = d.pack_id",
    );
    assert_eq!(rows.len(), 65);
    for r in &rows {
        let doc = w.tg.documents().into_iter().find(|d| d.file_id == r[5]).unwrap();
        let bytes = doc.bytes();
        let (offset, size): (usize, usize) = (r[2].parse().unwrap(), r[3].parse().unwrap());
        assert_eq!(sha256_hex(&bytes[offset..offset + size]), r[4], "{}/{}", r[0], r[1]);
    }

    // One member back on its own, through its pack.
    let dir = w.dir.path().join("one");
    std::fs::create_dir_all(&dir).unwrap();
    let one = w.run(&["restore", "conf/etc/conf007", "--out", dir.to_str().unwrap()]).await;
    one.success().no_token();
    assert_eq!(std::fs::read(dir.join("conf007")).unwrap(), conf[7].1);

    // The drill checks members through their packs.
    let verify = w.run(&["verify", "--sample", "0", "--json"]).await;
    verify.success().no_token();

    // `files` and `status` name the packs.
    let files = w.run(&["files", "--bucket", "media", "--json"]).await;
    files.success();
    let listed = files.json();
    let first = &listed.as_array().unwrap()[0];
    assert!(first["pack"]["file_name"].as_str().unwrap().starts_with(PACK_PREFIX), "{first}");
    assert_eq!(first["pack"]["message_id"], first["parts"][0]["message_id"]);
    let table = w.run(&["files", "--bucket", "media"]).await;
    assert!(table.stdout.contains("in pack"), "{}", table.stdout);
    let status = w.run(&["status"]).await;
    assert!(status.stdout.contains("65 of them in packs"), "{}", status.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_all_downloads_each_pack_once_as_of_any_moment_and_into_s3() {
    let mut w = packing_world().await;
    w.s3.create_bucket("alpha").await;
    w.s3.create_bucket("beta").await;
    let mut objects: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (key, body) in small_objects(&w, "alpha", "k", 25, 1).await {
        objects.insert(format!("alpha/{key}"), body);
    }
    for (key, body) in small_objects(&w, "beta", "k", 10, 50).await {
        objects.insert(format!("beta/{key}"), body);
    }
    let big = data(PART_SIZE as usize * 3, 7);
    w.s3.put("beta", "big.bin", big.clone()).await;
    objects.insert("beta/big.bin".into(), big);
    w.sync().await.success();
    let before: BTreeMap<String, String> = objects.iter().map(|(k, v)| (k.clone(), sha256_hex(v))).collect();

    // A moment later, five objects change: the next sync sends them as one pack.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let moment = tgploy::time::rfc3339(tgploy::time::now());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for i in [2, 3, 5, 8, 13] {
        let body = data(900 + i, 1000 + i as u64);
        w.s3.put("alpha", &format!("k{i:03}"), body.clone()).await;
        objects.insert(format!("alpha/k{i:03}"), body);
    }
    let second = w.run(&["sync", "--json"]).await;
    second.success();
    assert_eq!((second.json()["packed"].as_u64(), second.json()["packs"].as_u64()), (Some(5), Some(1)));
    let now: BTreeMap<String, String> = objects.iter().map(|(k, v)| (k.clone(), sha256_hex(v))).collect();

    // Each pack holding a selected object is downloaded once, whatever its member count.
    let packs_needed: usize = w.query(
        "SELECT COUNT(DISTINCT d.pack_id) FROM deliveries d WHERE d.state = 'sent' AND d.pack_id IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.bucket = d.bucket AND e.key = d.key
            AND e.state = 'sent' AND e.id > d.id)",
    )[0][0]
        .parse()
        .unwrap();
    let downloads = w.tg.calls("download");
    let dir = w.dir.path().join("back");
    let out = w.run(&["restore", "--all", "--out", dir.to_str().unwrap(), "--json"]).await;
    out.success().no_token();
    assert_eq!(out.json()["restored"], 36);
    assert_eq!(tree(&dir), now, "every object at DIR/BUCKET/KEY, byte for byte");
    assert_eq!(w.tg.calls("download") - downloads, packs_needed + 3, "each pack once, and the large object's 3 parts");

    // Again: everything is there; no pack is downloaded.
    let downloads = w.tg.calls("download");
    let again = w.run(&["restore", "--all", "--out", dir.to_str().unwrap(), "--json"]).await;
    again.success();
    assert_eq!(again.json()["already_there"], 36);
    assert_eq!(w.tg.calls("download"), downloads);

    // As of the moment before the change: the versions of then, from the first packs.
    let then = w.dir.path().join("then");
    let old = w.run(&["restore", "--all", "--as-of", &moment, "--out", then.to_str().unwrap(), "--json"]).await;
    old.success();
    assert_eq!(tree(&then), before);

    // Into an empty S3 server: every object, and the next sync sends nothing.
    let documents = w.tg.documents().len();
    let new = S3Server::start().await;
    w.set_env("RUSTFS_ENDPOINT", &new.endpoint());
    let s3 = w.run(&["restore", "--all", "--to-s3", "--json"]).await;
    s3.success().no_token();
    assert_eq!(s3.json()["restored"], 36);
    let client = new.client();
    for (path, body) in &objects {
        let (bucket, key) = path.split_once('/').unwrap();
        let got = client.get_object().bucket(bucket).key(key).send().await.unwrap();
        let sha = got.metadata().and_then(|m| m.get("tgploy-sha256")).cloned();
        assert_eq!(sha256_hex(&got.body.collect().await.unwrap().into_bytes()), sha256_hex(body), "{path}");
        assert_eq!(sha.as_deref(), Some(sha256_hex(body).as_str()));
    }
    let sync = w.run(&["sync", "--json"]).await;
    sync.success();
    assert_eq!(sync.json()["sent"], 0);
    assert_eq!(w.tg.documents().len(), documents);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pack_of_hundreds_is_written_out_by_several_threads_each_member_checked() {
    // Parts of 1 MiB hold 300 small objects in one pack: enough for its members to be
    // shared among several writing threads.
    let mut w = packing_world().await;
    w.set_env("TGPLOY_PART_SIZE", "1048576");
    w.s3.create_bucket("many").await;
    let mut objects = BTreeMap::new();
    for i in 0..300usize {
        let body = data(100 + (i * 37) % 300, 7000 + i as u64);
        let key = format!("d{}/k{i:03}", i % 5);
        w.s3.put("many", &key, body.clone()).await;
        objects.insert(format!("many/{key}"), sha256_hex(&body));
    }
    w.sync().await.success();
    assert_eq!(pack_documents(&w).len(), 1, "one pack for all 300");

    // What a run finds in the directory: one object already there and the same, one that
    // differs, and a partial file an interrupted run left.
    let dir = w.dir.path().join("back");
    let same = objects.keys().next().unwrap().clone();
    for sub in ["d0", "d1", "d2"] {
        std::fs::create_dir_all(dir.join("many").join(sub)).unwrap();
    }
    std::fs::write(dir.join(&same), data(100, 7000)).unwrap();
    std::fs::write(dir.join("many/d1/k001"), b"not the backup").unwrap();
    std::fs::write(dir.join("many/d2/.k002.Ab12Cd.tgploy-partial"), b"half").unwrap();
    assert_eq!(same, "many/d0/k000");

    let downloads = w.tg.calls("download");
    let out = w.run(&["restore", "--all", "--out", dir.to_str().unwrap(), "--json"]).await;
    out.code(1);
    let report = out.json();
    assert_eq!(
        (report["restored"].as_u64(), report["already_there"].as_u64(), report["failed"].as_u64()),
        (Some(298), Some(1), Some(1)),
        "{report}"
    );
    let failed: Vec<&serde_json::Value> =
        report["objects"].as_array().unwrap().iter().filter(|o| o["outcome"] == "failed").collect();
    assert_eq!(failed[0]["key"], "d1/k001");
    assert!(failed[0]["error"].as_str().unwrap().contains("--force"), "{failed:?}");
    assert_eq!(w.tg.calls("download") - downloads, 1, "the pack downloaded once");
    let mut expected = objects.clone();
    expected.insert("many/d1/k001".into(), sha256_hex(b"not the backup"));
    assert_eq!(tree(&dir), expected, "every member byte for byte, the differing file left, no partial file");

    // --force replaces the one that differs, without downloading what is there.
    let forced = w.run(&["restore", "--all", "--force", "--out", dir.to_str().unwrap(), "--json"]).await;
    forced.success();
    assert_eq!((forced.json()["restored"].as_u64(), forced.json()["already_there"].as_u64()), (Some(1), Some(299)));
    assert_eq!(tree(&dir), objects);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_pack_opens_with_the_stock_age_and_tar_and_join_checks_it() {
    let mut w = packing_world().await;
    let (key, recipient) = age_key(w.dir.path(), "key.txt");
    w.set_env("TGPLOY_ENCRYPTION_RECIPIENTS", &recipient);
    w.s3.create_bucket("dbs").await;
    let objects = small_objects(&w, "dbs", "wal/seg", 12, 5).await;
    w.sync().await.success();
    let packs = pack_documents(&w);
    assert_eq!(packs.len(), 1);
    let pack = &packs[0];
    assert!(pack.file_name.ends_with(".tar.age"), "{}", pack.file_name);
    let bytes = pack.bytes();
    assert!(bytes.starts_with(b"age-encryption.org/v1"), "an age file");
    for needle in [&b"wal/seg"[..], b"tgploy-pack.json", &objects[0].1[..64]] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "names, index and bytes are inside the encryption");
    }
    let hand = w.dir.path().join("by-hand");
    std::fs::create_dir_all(&hand).unwrap();
    std::fs::write(hand.join(&pack.file_name), &bytes).unwrap();

    // What the caption tells an operator to type.
    let line = format!("age -d -i {} {} | tar -x", key.display(), pack.file_name);
    let out = shell(&line, &hand);
    assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
    for (k, body) in &objects {
        assert_eq!(std::fs::read(hand.join("dbs").join(k)).unwrap(), *body, "{k}");
    }

    // `tgploy join --pack` checks it against its index, and extracts it.
    let file = hand.join(&pack.file_name);
    let refused = w.run(&["join", "--pack", file.to_str().unwrap()]).await;
    refused.code(2);
    assert!(refused.stderr.contains("--identity"), "{}", refused.stderr);
    let extracted = w.dir.path().join("joined");
    let join = w
        .run(&[
            "join",
            "--pack",
            file.to_str().unwrap(),
            "-i",
            key.to_str().unwrap(),
            "--out",
            extracted.to_str().unwrap(),
        ])
        .await;
    join.success();
    assert!(join.stdout.contains("12 objects") && join.stdout.contains("12 extracted"), "{}", join.stdout);
    let want: BTreeMap<String, String> = objects.iter().map(|(k, b)| (format!("dbs/{k}"), sha256_hex(b))).collect();
    assert_eq!(tree(&extracted), want);

    // `restore --all` without the identity fails each member, saying what is needed.
    let dir = w.dir.path().join("back");
    let without = w.run(&["restore", "--all", "--out", dir.to_str().unwrap(), "--json"]).await;
    without.code(1);
    let report = without.json();
    assert_eq!(report["failed"], 12);
    assert!(report["objects"][0]["error"].as_str().unwrap().contains("--identity"), "{report}");
    let with = w.run(&["restore", "--all", "--out", dir.to_str().unwrap(), "-i", key.to_str().unwrap()]).await;
    with.success().no_token();
    assert_eq!(tree(&dir), want);
    let one = w.dir.path().join("seg003");
    w.run(&["restore", "dbs/wal/seg003", "-i", key.to_str().unwrap(), "--out", one.to_str().unwrap()]).await.success();
    assert_eq!(std::fs::read(&one).unwrap(), objects[3].1);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_with_control_characters_or_long_paths_extract_inside_the_directory() {
    let w = packing_world().await;
    w.s3.create_bucket("odd").await;
    // s3s-fs keeps a key in a file name of its own and holds none much longer than this;
    // keys of 1,024 bytes are packed and extracted in `deliver::pack::archive`'s tests.
    let long: String = (0..15).map(|i| format!("d{i:08}/")).collect::<String>() + "end.bin";
    let keys = ["tab\there", "bell\u{7}and\u{1b}[31mred", "new\nline", "sp ace/ünï ¢ødé", "100%", long.as_str()];
    let mut want = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        let body = data(500 + i, i as u64);
        w.s3.put("odd", k, body.clone()).await;
        want.insert(k.to_string(), sha256_hex(&body));
    }
    w.sync().await.success();
    let packs = pack_documents(&w);
    assert_eq!(packs.len(), 1);

    // The real tar, into a directory inside a jail: nothing lands outside it.
    let jail = w.dir.path().join("jail");
    let inside = jail.join("x");
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::write(jail.join("pack.tar"), packs[0].bytes()).unwrap();
    let out = shell("tar -xf ../pack.tar", &inside);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(leftovers(&jail), ["pack.tar", "x"], "nothing beside the directory");
    let got = tree(&inside);
    assert_eq!(got.len(), keys.len() + 1, "{got:?}");
    // Each object sits where `restore --all` puts it, so tgploy and tar agree.
    let dir = w.dir.path().join("back");
    w.run(&["restore", "--all", "--out", dir.to_str().unwrap()]).await.success();
    let mut restored = tree(&dir);
    for (path, sha) in got.iter().filter(|(p, _)| p.as_str() != "tgploy-pack.json") {
        assert_eq!(restored.remove(path).as_ref(), Some(sha), "{path}");
    }
    assert!(restored.is_empty(), "{restored:?}");
    let mut shas: Vec<&String> = got.iter().filter(|(p, _)| p.as_str() != "tgploy-pack.json").map(|(_, s)| s).collect();
    shas.sort();
    let mut expected: Vec<&String> = want.values().collect();
    expected.sort();
    assert_eq!(shas, expected, "every object's bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_killed_between_the_upload_and_the_answer_sends_at_most_one_pack_twice() {
    let mut w = packing_world().await;
    w.set_env("TGPLOY_CONCURRENCY", "1");
    w.s3.create_bucket("bkt").await;
    let objects = small_objects(&w, "bkt", "o", 60, 1).await;
    // The fake keeps a document before its slow answer: a kill then loses the answer.
    w.tg.set_delay(Duration::from_millis(1500));
    let mut child = w.spawn(&["sync"]);
    assert!(w.tg.wait_for_documents(2, Duration::from_secs(60)).await);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let accepted = pack_documents(&w).len();
    let recorded: usize = w.query("SELECT COUNT(*) FROM packs")[0][0].parse().unwrap();
    assert!(recorded < accepted, "the kill came with a pack unanswered: {recorded} recorded of {accepted}");

    w.tg.set_delay(Duration::ZERO);
    w.sync().await.success();
    let sent = w.query("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'");
    assert_eq!(sent, [["60"]]);
    // Members arrived once, but for those of the pack in flight at the kill.
    let mut arrivals: BTreeMap<String, usize> = BTreeMap::new();
    for p in pack_documents(&w) {
        for path in members_of(&p.bytes()).into_keys().filter(|p| p != "tgploy-pack.json") {
            *arrivals.entry(path).or_default() += 1;
        }
    }
    let alone = w.query("SELECT key FROM deliveries WHERE pack_id IS NULL");
    assert_eq!(arrivals.len() + alone.len(), 60, "every object in a pack, or alone: {alone:?}");
    let twice: BTreeSet<&String> = arrivals.iter().filter(|(_, n)| **n > 1).map(|(p, _)| p).collect();
    assert!(arrivals.values().all(|&n| n <= 2), "{arrivals:?}");
    let packs_total = pack_documents(&w).len();
    let recorded_total: usize = w.query("SELECT COUNT(*) FROM packs")[0][0].parse().unwrap();
    assert!(
        packs_total - recorded_total <= 1,
        "at most one duplicate pack: {packs_total} sent, {recorded_total} recorded"
    );
    assert!(twice.len() <= 60 / 2, "{twice:?}");
    let dir = w.dir.path().join("back");
    w.run(&["restore", "--all", "--out", dir.to_str().unwrap()]).await.success();
    let want: BTreeMap<String, String> = objects.iter().map(|(k, b)| (format!("bkt/{k}"), sha256_hex(b))).collect();
    assert_eq!(tree(&dir), want);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_s3_cannot_read_leaves_its_pack_and_is_retried_on_its_own() {
    member_s3_cannot_read(3).await;
}

/// The last member read: nothing after it shows that S3 still serves, so tgploy asks.
#[tokio::test(flavor = "multi_thread")]
async fn the_last_member_s3_cannot_read_leaves_its_pack_too_rather_than_stopping_the_run() {
    member_s3_cannot_read(7).await;
}

/// Eight small objects (keys `o000`..`o007`, made in key order) where S3 answers 503
/// SlowDownRead to every GET of the `failing`-th: the others go as one pack, it fails on
/// its own (exit 1, an attempt counted, not an outage), and once S3 heals it goes as
/// itself.
async fn member_s3_cannot_read(failing: usize) {
    let w = packing_world().await.with_admin();
    w.s3.create_bucket("bkt").await;
    let objects = small_objects(&w, "bkt", "o", 8, 1).await;
    let key = &objects[failing].0;
    w.s3.fail_gets_of(key);
    let out = w.run(&["sync", "--json"]).await;
    out.code(1).no_token();
    let report = out.json();
    assert_eq!((report["sent"].as_u64(), report["packed"].as_u64()), (Some(7), Some(7)), "{report}");
    assert_eq!(report["stopped"], serde_json::Value::Null, "{report}");
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(&failed[0]["key"], key.as_str());
    assert!(failed[0]["error"].as_str().unwrap().contains("SlowDownRead"), "{failed:?}");
    assert_eq!(pack_documents(&w).len(), 1, "the others did not wait");
    assert_eq!(w.query(&format!("SELECT state, attempts FROM deliveries WHERE key = '{key}'")), [["failed", "1"]]);

    w.s3.heal_gets();
    w.run(&["retry", "--now"]).await.success();
    let alone = w.documents_named(key);
    assert_eq!(alone.len(), 1, "retried as itself");
    assert_eq!(alone[0].bytes(), objects[failing].1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_pack_checks_against_its_index_and_a_damaged_one_is_named() {
    let w = packing_world().await;
    w.s3.create_bucket("bkt").await;
    let objects = small_objects(&w, "bkt", "x/o", 6, 3).await;
    w.sync().await.success();
    let pack = pack_documents(&w).remove(0);
    let hand = w.dir.path().join("hand");
    std::fs::create_dir_all(&hand).unwrap();
    let file: PathBuf = hand.join(&pack.file_name);
    let mut bytes = pack.bytes();
    std::fs::write(&file, &bytes).unwrap();

    let check = w.run(&["join", "--pack", file.to_str().unwrap(), "--json"]).await;
    check.success();
    assert_eq!((check.json()["members"].as_u64(), check.json()["extracted"].as_u64()), (Some(6), Some(0)));

    // One byte of the third object changed: named, nothing written.
    let row = w.query("SELECT p.offset FROM deliveries d JOIN parts p ON p.delivery_id = d.id WHERE d.key = 'x/o002'");
    let offset: usize = row[0][0].parse().unwrap();
    bytes[offset + 10] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();
    let out = w.dir.path().join("out");
    let bad = w.run(&["join", "--pack", file.to_str().unwrap(), "--out", out.to_str().unwrap()]).await;
    bad.code(1);
    assert!(bad.stderr.contains("bkt/x/o002 is corrupt"), "{}", bad.stderr);
    assert!(tree(&out).is_empty(), "nothing was written");
    let _ = objects;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ledger_from_before_packs_migrates_and_its_deliveries_restore_as_before() {
    let mut w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let objects = small_objects(&w, "bkt", "o", 4, 1).await;
    w.sync().await.success();
    for sql in [
        "DROP INDEX deliveries_pack",
        "ALTER TABLE deliveries DROP COLUMN pack_id",
        "DROP TABLE packs",
        "PRAGMA user_version = 8",
    ] {
        w.execute(sql);
    }
    w.unset_env("TGPLOY_PACK_MAX_OBJECT_SIZE");
    let dir = w.dir.path().join("back");
    let out = w.run(&["restore", "--all", "--out", dir.to_str().unwrap(), "--json"]).await;
    out.success().no_token();
    assert_eq!(out.json()["restored"], 4);
    assert_ne!(w.query("PRAGMA user_version")[0][0], "8", "migrated");
    let want: BTreeMap<String, String> = objects.iter().map(|(k, b)| (format!("bkt/{k}"), sha256_hex(b))).collect();
    assert_eq!(tree(&dir), want);
    // New small objects now travel in packs beside the old deliveries.
    small_objects(&w, "bkt", "new", 3, 50).await;
    let sync = w.run(&["sync", "--json"]).await;
    sync.success();
    assert_eq!(sync.json()["packed"], 3);
}
