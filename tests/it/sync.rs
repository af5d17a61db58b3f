//! `tgploy sync` against a real S3 server and the fake Bot API.

use std::collections::HashMap;
use std::time::Duration;

use crate::harness::{BACKUP_CHAT, PART_SIZE, World, data, sha256_hex, wait_exit};
use crate::support::telegram::{self, Fault};

#[tokio::test(flavor = "multi_thread")]
async fn small_object_arrives_as_one_document_named_like_it() {
    let w = World::new().await;
    w.s3.create_bucket("backups").await;
    let body = data(1000, 1);
    let etag = w.s3.put("backups", "db/dump 1.sql.gz", body.clone()).await;

    let out = w.sync().await;
    out.success().no_token();

    let docs = w.tg.documents();
    assert_eq!(docs.len(), 1, "{out:?}");
    let doc = &docs[0];
    assert_eq!(doc.file_name, "dump 1.sql.gz");
    assert_eq!(doc.chat_id, BACKUP_CHAT);
    assert_eq!(doc.bytes(), body);
    let caption = doc.rendered_caption.clone().unwrap_or_default();
    for needle in ["backups", "db/dump 1.sql.gz", &sha256_hex(&body), "1000 bytes", &etag, "Modified: "] {
        assert!(caption.contains(needle), "caption lacks {needle}: {caption}");
    }
    assert!(out.stdout.contains("sent 1 objects"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_part_object_joins_to_the_original_and_the_manifest_says_how() {
    let w = World::new().await;
    w.s3.create_bucket("backups").await;
    let size = PART_SIZE as usize * 3 + 123;
    let body = data(size, 2);
    let etag = w.s3.put("backups", "pg/base.tar", body.clone()).await;

    w.sync().await.success();

    let docs = w.tg.documents();
    let names: Vec<&str> = docs.iter().map(|d| d.file_name.as_str()).collect();
    assert_eq!(
        names,
        ["base.tar.part001", "base.tar.part002", "base.tar.part003", "base.tar.part004", "base.tar.tgploy.json"]
    );
    for (i, d) in docs[..4].iter().enumerate() {
        let caption = d.rendered_caption.clone().unwrap_or_default();
        assert!(caption.contains(&format!("Part {} of 4", i + 1)), "{caption}");
        assert!(caption.contains("cat 'base.tar'.part* > 'base.tar'"), "{caption}");
        assert!(caption.contains(&sha256_hex(&d.bytes())), "{caption}");
    }
    // `cat base.tar.part*` in name order gives the original.
    let catted: Vec<u8> = docs[..4].iter().flat_map(|d| d.bytes()).collect();
    assert_eq!(sha256_hex(&catted), sha256_hex(&body));

    let (manifest, joined) = w.join_from_manifest("base.tar.tgploy.json");
    assert_eq!(sha256_hex(&joined), sha256_hex(&body));
    assert_eq!(manifest["format"], "tgploy-manifest");
    assert_eq!(manifest["version"], 2);
    assert!(manifest["parts"].as_array().unwrap().iter().all(|p| p["bot_id"] == telegram::BOT_ID), "{manifest}");
    assert_eq!(manifest["bucket"], "backups");
    assert_eq!(manifest["key"], "pg/base.tar");
    assert_eq!(manifest["etag"], etag.as_str());
    assert_eq!(manifest["size"], size as u64);
    assert_eq!(manifest["sha256"], sha256_hex(&body).as_str());
    assert_eq!(manifest["part_size"], PART_SIZE);
    assert_eq!(manifest["file_name"], "base.tar");
    assert!(manifest["last_modified"].as_str().is_some_and(|s| s.ends_with('Z')));
    let parts = manifest["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 4);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["index"], i as u64 + 1);
        assert_eq!(p["offset"], i as u64 * PART_SIZE);
        assert_eq!(p["message_id"], docs[i].message_id);
    }
    assert_eq!(parts[3]["size"], 123);
}

#[tokio::test(flavor = "multi_thread")]
async fn second_sync_sends_nothing_and_an_overwrite_sends_only_the_new_version() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "one", data(10, 1)).await;
    w.s3.put("bkt", "two", data(20, 2)).await;
    w.sync().await.success();
    assert_eq!(w.tg.documents().len(), 2);

    let heads = w.s3.head_count();
    let again = w.sync().await;
    again.success();
    assert_eq!(w.tg.documents().len(), 2, "a second sync sends nothing");
    assert_eq!(w.tg.calls("getMe"), 1, "nothing to send: Telegram is not even asked");
    assert_eq!(w.s3.head_count(), heads, "known objects are not HEADed again");

    let new = data(30, 3);
    w.s3.put("bkt", "two", new.clone()).await;
    w.sync().await.success();
    let docs = w.tg.documents();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[2].file_name, "two");
    assert_eq!(docs[2].bytes(), new);
}

#[tokio::test(flavor = "multi_thread")]
async fn new_buckets_are_discovered_and_enabled_by_default() {
    let w = World::new().await;
    w.s3.create_bucket("first").await;
    w.sync().await.success();
    w.s3.create_bucket("second").await;
    w.s3.put("second", "x", data(5, 1)).await;
    let out = w.sync().await;
    out.success();
    assert_eq!(w.tg.documents().len(), 1);
    assert!(out.stdout.contains("bucket second: 1 objects, 1 new"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn new_buckets_can_start_disabled() {
    let mut w = World::new().await;
    w.config_file("[sync]\nenable_new_buckets = false\n");
    w.s3.create_bucket("quiet").await;
    w.s3.put("quiet", "x", data(5, 1)).await;
    w.sync().await.success();
    assert!(w.tg.documents().is_empty());

    let list = w.run(&["buckets", "list", "--json"]).await;
    list.success();
    let rows = list.json();
    assert_eq!(rows[0]["name"], "quiet");
    assert_eq!(rows[0]["enabled"], false);

    w.run(&["buckets", "enable", "quiet"]).await.success();
    w.sync().await.success();
    assert_eq!(w.tg.documents().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn boundary_sizes_zero_exact_and_one_more() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "empty.bin", Vec::new()).await;
    let exact = data(PART_SIZE as usize, 1);
    w.s3.put("bkt", "exact.bin", exact.clone()).await;
    let more = data(PART_SIZE as usize + 1, 2);
    w.s3.put("bkt", "more.bin", more.clone()).await;

    w.sync().await.success();

    // The Bot API rejects empty documents: an empty object becomes a text message.
    let texts: Vec<_> = w.tg.messages().into_iter().filter(|m| m.text.is_some()).collect();
    assert_eq!(texts.len(), 1);
    assert!(texts[0].text.as_deref().unwrap().contains("empty.bin"));
    assert!(w.documents_named("empty.bin").is_empty());

    let exact_docs = w.documents_named("exact.bin");
    assert_eq!(exact_docs.len(), 1, "exactly one part size: one document, no parts");
    assert_eq!(exact_docs[0].bytes(), exact);

    let (_, joined) = w.join_from_manifest("more.bin.tgploy.json");
    assert_eq!(joined, more);
    assert_eq!(w.documents_named("more.bin.part002")[0].bytes().len(), 1);

    let files = w.run(&["files", "--json"]).await;
    files.success();
    let by_key: HashMap<String, serde_json::Value> =
        files.json().as_array().unwrap().iter().map(|f| (f["key"].as_str().unwrap().to_string(), f.clone())).collect();
    assert_eq!(by_key.len(), 3);
    assert_eq!(by_key["empty.bin"]["sha256"], sha256_hex(b"").as_str());
    assert_eq!(by_key["more.bin"]["parts"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn awkward_keys_give_valid_captions() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    // Telegram (and the fake) reject captions that are too long or whose HTML does not
    // parse: each of these must still arrive.
    // s3s-fs keeps each key in a file name, so it stores keys of about 200 bytes at
    // most; the 1024-byte case is covered against the fake alone in `captions`.
    let long_key = format!("{}/{}", "a".repeat(100), "e".repeat(60));
    let keys = [
        "x <y> & z.tar".to_string(),
        "ü/weird & <x>.tar".to_string(),
        "spaces in name/and more spaces.sql".to_string(),
        "日本語/データ.bin".to_string(),
        long_key,
    ];
    for (i, k) in keys.iter().enumerate() {
        w.s3.put("bkt", k, data(PART_SIZE as usize + 10, i as u64)).await;
    }
    let out = w.sync().await;
    out.success();
    let manifests = w.tg.documents().into_iter().filter(|d| d.file_name.ends_with(".tgploy.json")).count();
    assert_eq!(manifests, keys.len(), "{out:?}");
    for d in w.tg.documents() {
        assert!(d.rendered_caption.as_deref().is_some_and(|c| c.encode_utf16().count() <= 1024));
    }
    let keys_in_ledger = w.query("SELECT key FROM deliveries WHERE state = 'sent' ORDER BY key");
    assert_eq!(keys_in_ledger.len(), keys.len());
    for k in &keys {
        let manifest_name = format!("{}.tgploy.json", k.rsplit('/').next().unwrap());
        let (manifest, _) = w.join_from_manifest(&manifest_name);
        assert_eq!(manifest["key"], k.as_str(), "the manifest keeps the full key");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_objects_over_several_listing_pages_and_a_cheap_no_op() {
    let w = World::new().await;
    w.s3.create_bucket("many").await;
    let client = w.s3.client();
    let puts = (0..1530).map(|i| {
        let client = client.clone();
        async move {
            client
                .put_object()
                .bucket("many")
                .key(format!("k/{i:05}"))
                .body(format!("object {i}").into_bytes().into())
                .send()
                .await
                .expect("put");
        }
    });
    futures_util::stream::iter(puts).buffer_unordered(16).collect::<Vec<_>>().await;

    w.sync().await.success();
    assert_eq!(w.tg.documents().len(), 1530);
    assert!(w.s3.list_count() >= 2, "1530 keys take at least two listing pages");
    let heads = w.s3.head_count();
    assert_eq!(heads, 1530, "the listing has no ETags: each new object is HEADed once");

    let out = w.run(&["sync", "--json"]).await;
    out.success();
    assert_eq!(out.json()["sent"], 0);
    assert_eq!(w.tg.documents().len(), 1530);
    assert_eq!(w.s3.head_count(), heads, "a no-op sync sends no HEAD");
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_with_etags_need_no_head() {
    let w = World::with_listed_etags().await;
    w.s3.create_bucket("bkt").await;
    for i in 0..5 {
        w.s3.put("bkt", &format!("o{i}"), data(100, i)).await;
    }
    w.sync().await.success();
    assert_eq!(w.tg.documents().len(), 5);
    assert_eq!(w.s3.head_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_syncs_started_together_send_each_object_once() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    for i in 0..12 {
        w.s3.put("bkt", &format!("o{i:02}"), data(PART_SIZE as usize + 100, i)).await;
    }
    // Slow answers keep the first run busy while the second starts.
    w.tg.set_delay(Duration::from_millis(40));
    let a = w.spawn(&["sync"]);
    let b = w.spawn(&["sync"]);
    let a = wait_exit(a, Duration::from_secs(120)).await;
    let b = wait_exit(b, Duration::from_secs(120)).await;
    // One run holds the lock; one that finds it taken exits 3 naming the holder.
    for out in [&a, &b] {
        assert!(out.code == 0 || out.code == 3, "{out:?}");
        if out.code == 3 {
            assert!(out.stderr.contains("another `tgploy sync` run (process "), "{}", out.stderr);
        }
    }
    assert!(a.code == 0 || b.code == 0);

    let docs = w.tg.documents();
    let mut count: HashMap<String, usize> = HashMap::new();
    for d in &docs {
        *count.entry(d.file_name.clone()).or_default() += 1;
    }
    assert_eq!(docs.len(), 12 * 3, "two parts and a manifest per object");
    assert!(count.values().all(|&n| n == 1), "a document was sent twice: {count:?}");
    for i in 0..12 {
        let (_, joined) = w.join_from_manifest(&format!("o{i:02}.tgploy.json"));
        assert_eq!(joined, data(PART_SIZE as usize + 100, i));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_sync_resumes_at_the_first_part_not_recorded_as_accepted() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 8 + 5, 7);
    w.s3.put("bkt", "big.dump", body.clone()).await;

    w.tg.set_delay(Duration::from_millis(150));
    let mut child = w.spawn(&["sync"]);
    // The fake stores a part before its (slow) answer: once the fourth has arrived, the
    // first three answers were back and recorded.
    assert!(w.tg.wait_for_documents(4, Duration::from_secs(60)).await, "four parts arrived");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let accepted = w.tg.documents().len();
    assert!(accepted < 9, "killed before the end");
    let recorded: u64 = w.query("SELECT COUNT(*) FROM parts")[0][0].parse().unwrap();
    assert!(recorded >= 3);

    w.tg.set_delay(Duration::ZERO);
    let gets_before = w.s3.get_requests().len();
    w.sync().await.success();

    // The second run fetched only the parts not recorded, each with a ranged GET.
    let resumed: Vec<_> = w.s3.get_requests()[gets_before..].to_vec();
    let first = resumed.first().and_then(|r| r.2.clone()).expect("ranged GET");
    assert_eq!(first, format!("bytes={}-{}", recorded * PART_SIZE, (recorded + 1) * PART_SIZE - 1));
    assert_eq!(resumed.len() as u64, 9 - recorded);

    let (manifest, joined) = w.join_from_manifest("big.dump.tgploy.json");
    assert_eq!(sha256_hex(&joined), sha256_hex(&body));
    assert_eq!(manifest["sha256"], sha256_hex(&body).as_str());
    // Telegram kept `accepted` parts; the run had recorded `recorded` of them. Only the
    // part in flight at the kill (kept, its answer lost with the process) went twice.
    let twice = accepted as u64 - recorded;
    assert!(twice <= 1, "{accepted} parts accepted, {recorded} recorded");
    assert_eq!(w.tg.documents().len() as u64, accepted as u64 + (9 - recorded) + 1, "the rest once, and the manifest");
}

#[tokio::test(flavor = "multi_thread")]
async fn flood_control_waits_and_sends_the_same_part_again() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 2, 3);
    w.s3.put("bkt", "f.bin", body.clone()).await;
    w.tg.inject("sendDocument", Fault::RetryAfter(1), 2);

    let out = w.run(&["sync", "--json"]).await;
    out.success();
    let report = out.json();
    assert_eq!(report["sent"], 1);
    assert_eq!(report["failed"].as_array().unwrap().len(), 0, "429 is not a failure");
    assert_eq!(w.tg.calls("sendDocument"), 3 + 2);
    let (_, joined) = w.join_from_manifest("f.bin.tgploy.json");
    assert_eq!(joined, body);
    assert_eq!(w.query("SELECT attempts, state FROM deliveries"), [["0", "sent"]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_delivery_is_recorded_for_retry_and_not_lost() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "ok.bin", data(10, 1)).await;
    w.s3.put("bkt", "unlucky.bin", data(10, 2)).await;
    // The first upload is refused: a failure no repetition within the run fixes.
    w.tg.inject("sendDocument", Fault::BadRequest("wrong remote file identifier specified"), 1);

    let out = w.run(&["sync", "--json"]).await;
    out.code(1).no_token();
    let report = out.json();
    assert_eq!(report["sent"], 1);
    assert_eq!(report["failed"].as_array().unwrap().len(), 1);
    assert!(out.stderr.contains("recorded for `tgploy retry`"), "{}", out.stderr);

    let rows = w.query("SELECT key, state, attempts, last_error IS NOT NULL, next_attempt_at > updated_at FROM deliveries WHERE state != 'sent'");
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][1..], ["failed", "1", "1", "1"]);

    // `sync` leaves it to `retry`, and says so.
    let again = w.sync().await;
    again.success();
    assert!(again.stdout.contains("1 failed deliveries are waiting for `tgploy retry`"), "{}", again.stdout);
    assert_eq!(w.tg.documents().len(), 1);

    let status = w.run(&["status", "--json"]).await;
    status.success();
    assert_eq!(status.json()["totals"]["failed"], 1);
    let secret = crate::support::telegram::TOKEN.split_once(':').unwrap().1;
    assert!(!String::from_utf8_lossy(&w.ledger_bytes()).contains(secret), "the token is in the ledger");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_larger_than_the_server_takes_fails_naming_part_size() {
    let w = World::new().await;
    w.tg.set_upload_limit(PART_SIZE / 2);
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "x", data(PART_SIZE as usize, 1)).await;
    let out = w.run(&["sync", "--json"]).await;
    out.code(1);
    let error = out.json()["failed"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("part_size") && error.contains("413"), "{error}");
    assert!(error.contains(&format!("a {PART_SIZE}-byte upload")), "the error names the upload's size: {error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_sends_nothing_and_writes_nothing() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "a", data(10, 1)).await;
    w.s3.put("bkt", "c", data(PART_SIZE as usize * 2, 2)).await;
    let out = w.run(&["sync", "--dry-run", "--json"]).await;
    out.success();
    let report = out.json();
    assert_eq!(report["dry_run"], true);
    let keys: Vec<&str> = report["would_send"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&"a") && keys.contains(&"c"));
    assert_eq!(w.tg.calls("sendDocument") + w.tg.calls("getMe"), 0);
    assert!(!w.ledger_path().exists(), "a dry run creates no ledger");

    let text = w.run(&["sync", "--dry-run"]).await;
    text.success();
    assert!(text.stdout.contains("would send 2 objects"), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_from_the_config_file() {
    let mut w = World::new().await;
    w.config_file(
        "[sync]\ninclude = [\"**/*.gz\", \"*.tar\"]\nexclude = [\"**/tmp/**\"]\nmax_size = \"1KiB\"\n\
         [buckets.raw]\nmin_size = 100\n",
    );
    w.s3.create_bucket("bkt").await;
    w.s3.create_bucket("raw").await;
    for (key, size) in [("db/a.gz", 10), ("db/tmp/b.gz", 10), ("c.tar", 10), ("d.txt", 10), ("big.gz", 2000)] {
        w.s3.put("bkt", key, data(size, 1)).await;
    }
    w.s3.put("raw", "small", data(10, 1)).await;
    w.s3.put("raw", "large.txt", data(200, 1)).await;
    w.sync().await.success();
    let mut names: Vec<String> = w.tg.documents().into_iter().map(|d| d.file_name).collect();
    names.sort();
    assert_eq!(names, ["a.gz", "c.tar", "large.txt"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_named_buckets() {
    let w = World::new().await;
    for b in ["one", "two"] {
        w.s3.create_bucket(b).await;
        w.s3.put(b, "x", data(10, 1)).await;
    }
    w.run(&["sync", "--bucket", "two"]).await.success();
    assert_eq!(w.query("SELECT bucket FROM deliveries"), [["two"]]);

    let out = w.run(&["sync", "--bucket", "nope"]).await;
    out.code(2);
    assert!(out.stderr.contains("no bucket named `nope`") && out.stderr.contains("one, two"), "{}", out.stderr);
}

use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread")]
async fn an_object_overwritten_mid_delivery_is_skipped_not_failed() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let etag = w.s3.put("bkt", "big.bin", data(PART_SIZE as usize * 5, 1)).await;
    w.tg.set_delay(Duration::from_millis(300));
    let child = w.spawn(&["sync"]);
    // The fake shows a document before its (slow) answer: the next part is read after it.
    assert!(w.tg.wait_for_documents(1, Duration::from_secs(30)).await);
    let newer = data(PART_SIZE as usize * 5, 2);
    w.s3.put("bkt", "big.bin", newer.clone()).await;
    let out = wait_exit(child, Duration::from_secs(60)).await;
    out.success();

    // Every GET asked for the listed version; S3's 412 made the delivery a skipped one.
    let conditions = w.s3.get_conditions();
    assert!(!conditions.is_empty());
    assert!(conditions.iter().all(|c| c.as_deref() == Some(etag.as_str())), "{conditions:?} vs {etag}");
    let rows = w.query(&format!("SELECT state, attempts, last_error FROM deliveries WHERE etag = '{etag}'"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][..2], ["skipped", "0"], "{rows:?}");
    assert!(rows[0][2].contains("412"), "{rows:?}");

    // The new version is delivered whole by the next run.
    w.tg.set_delay(Duration::ZERO);
    w.sync().await.success();
    let (_, joined) = w.join_from_manifest("big.bin.tgploy.json");
    assert_eq!(sha256_hex(&joined), sha256_hex(&newer));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_pace_keeps_a_batch_under_telegrams_flood_limit() {
    let mut w = World::new().await;
    // Telegram's limit in a group: about 20 messages a minute. tgploy's default pace is
    // the same (one message every 3 s); the suite turns it off elsewhere. The fake
    // allows 2 messages in any 5 s: the default pace fits with a second to spare, while
    // 8 documents sent as fast as they come would be refused.
    w.unset_env("TGPLOY_MESSAGES_PER_MINUTE");
    w.tg.set_flood_limit(2, Duration::from_secs(5));
    w.s3.create_bucket("bkt").await;
    for i in 0..8 {
        w.s3.put("bkt", &format!("o{i}"), data(100, i)).await;
    }
    w.sync().await.success();
    assert_eq!(w.tg.flood_refusals(), 0, "no 429 at the default pace");
    assert_eq!(w.tg.documents().len(), 8);
    // Paced, not only lucky: one message every three seconds into the chat, give or
    // take the scheduler.
    let times: Vec<i64> =
        w.query("SELECT sent_at FROM parts ORDER BY sent_at").iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(times[7] - times[0] >= 20, "8 messages over {} s", times[7] - times[0]);
}
