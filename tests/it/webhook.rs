//! `tgploy serve-webhook` over real HTTP, with the in-process S3 server and the fake Bot
//! API; events shaped like the captured RustFS notifications.

use std::collections::HashMap;
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::harness::{PART_SIZE, WEBHOOK_TOKEN, World, data, sha256_hex, wait_exit};
use crate::support::telegram::Fault;

/// The captured RustFS `01-Put.json` body, pointed at another object.
pub(crate) fn rustfs_record(bucket: &str, key: &str, etag: &str, size: usize, event: &str) -> Value {
    let path = format!("{}/tests/fixtures/rustfs-events/01-Put.json", env!("CARGO_MANIFEST_DIR"));
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut record = fixture["body"]["Records"][0].clone();
    record["eventName"] = json!(event);
    record["s3"]["bucket"]["name"] = json!(bucket);
    record["s3"]["object"]["key"] = json!(form_encode(key));
    record["s3"]["object"]["eTag"] = json!(etag);
    record["s3"]["object"]["size"] = json!(size);
    record
}

pub(crate) fn body(records: Vec<Value>) -> Value {
    let first = &records[0];
    json!({
        "EventName": first["eventName"],
        "Key": format!("{}/{}", first["s3"]["bucket"]["name"].as_str().unwrap(), first["s3"]["object"]["key"].as_str().unwrap()),
        "Records": records,
    })
}

/// Keys as RustFS encodes them: form-URL-encoding, `+` for space.
fn form_encode(key: &str) -> String {
    utf8_percent_encode(key, NON_ALPHANUMERIC).to_string().replace("%20", "+")
}

pub(crate) async fn post(url: &str, token: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut req = client.post(url).header("content-type", "application/json").body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("POST");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn post_event(url: &str, value: &Value) -> (u16, String) {
    post(&format!("{url}/webhook"), Some(WEBHOOK_TOKEN), serde_json::to_vec(value).unwrap()).await
}

/// Waits until the ledger has no delivery left to send or being sent: whatever the
/// server was going to send has gone out.
async fn settled(w: &World) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let open = || w.query("SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'sending')")[0][0].clone();
    while open() != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries still open: {:?}",
            w.query("SELECT key, state FROM deliveries")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_docs(w: &World, n: usize) {
    assert!(
        w.tg.wait_for_documents(n, Duration::from_secs(30)).await,
        "{} of {n} documents arrived",
        w.tg.documents().len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_followed_by_its_event_is_delivered() {
    let w = World::new().await;
    w.s3.create_bucket("backups").await;
    let server = w.start_webhook(&[]);
    let bytes = data(3000, 1);
    let etag = w.s3.put("backups", "db/dump 1.sql.gz", bytes.clone()).await;

    let (status, answer) = post_event(
        &server.url,
        &body(vec![rustfs_record("backups", "db/dump 1.sql.gz", &etag, 3000, "s3:ObjectCreated:Put")]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(serde_json::from_str::<Value>(&answer).unwrap()["accepted"], 1);
    wait_docs(&w, 1).await;
    let doc = &w.tg.documents()[0];
    assert_eq!(doc.file_name, "dump 1.sql.gz");
    assert_eq!(doc.bytes(), bytes);

    let logs = server.wait_for_log("sent backups/db/dump 1.sql.gz", Duration::from_secs(30)).await;
    assert!(logs.contains("accepted event s3:ObjectCreated:Put for backups/db/dump 1.sql.gz"), "{logs}");
    for secret in [WEBHOOK_TOKEN, "AWS4-HMAC-SHA256", crate::support::telegram::TOKEN.split_once(':').unwrap().1] {
        assert!(!logs.contains(secret), "the logs contain {secret}:\n{logs}");
    }
    // `sync` afterwards finds nothing new.
    w.sync().await.success();
    assert_eq!(w.tg.documents().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn encoded_keys_several_records_and_duplicates() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let server = w.start_webhook(&[]);
    let keys = ["dir/with space+plus.tar", "ü/weird & <x>.tar", "a/b/c/deep%20name.gz", "日本/データ 1.bin"];
    let mut records = Vec::new();
    let mut expected = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        let bytes = data(500 + i, i as u64);
        let etag = w.s3.put("bkt", k, bytes.clone()).await;
        records.push(rustfs_record("bkt", k, &etag, bytes.len(), "s3:ObjectCreated:Put"));
        expected.insert(k.rsplit('/').next().unwrap().to_string(), bytes);
    }
    // Every record twice in one body, and the whole body sent twice (RustFS may resend).
    let mut doubled = records.clone();
    doubled.extend(records.clone());
    let event = body(doubled);
    for _ in 0..2 {
        let (status, answer) = post_event(&server.url, &event).await;
        assert_eq!(status, 200, "{answer}");
    }
    // The token may also be the last path segment.
    let (status, _) =
        post(&format!("{}/webhook/{WEBHOOK_TOKEN}", server.url), None, serde_json::to_vec(&event).unwrap()).await;
    assert_eq!(status, 200);

    wait_docs(&w, keys.len()).await;
    settled(&w).await;
    let docs = w.tg.documents();
    assert_eq!(docs.len(), keys.len(), "one delivery per object version");
    for d in docs {
        assert_eq!(Some(&d.bytes()), expected.get(&d.file_name), "{}", d.file_name);
    }
    let mut got: Vec<String> = w.query("SELECT key FROM deliveries").into_iter().map(|r| r[0].clone()).collect();
    got.sort();
    let mut want: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_and_changes_nothing() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let server = w.start_webhook(&[]);
    let url = &server.url;
    let good = serde_json::to_vec(&body(vec![rustfs_record("bkt", "k", "abc", 1, "s3:ObjectCreated:Put")])).unwrap();

    assert_eq!(post(&format!("{url}/webhook"), None, good.clone()).await.0, 401);
    assert_eq!(post(&format!("{url}/webhook"), Some("wrong"), good.clone()).await.0, 401);
    assert_eq!(post(&format!("{url}/webhook/wrong"), None, good.clone()).await.0, 401);
    let (status, answer) = post(&format!("{url}/webhook"), Some(WEBHOOK_TOKEN), "{not json").await;
    assert_eq!(status, 400);
    assert!(answer.contains("malformed JSON"), "{answer}");
    let no_bucket = json!({"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {"object": {"key": "k"}}}]});
    let (status, answer) = post_event(url, &no_bucket).await;
    assert_eq!(status, 400);
    assert!(answer.contains("no bucket name"), "{answer}");
    let no_key =
        json!({"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": "bkt"}, "object": {}}}]});
    assert_eq!(post_event(url, &no_key).await.0, 400);
    let huge = vec![b' '; 2 * 1024 * 1024];
    assert_eq!(post(&format!("{url}/webhook"), Some(WEBHOOK_TOKEN), huge).await.0, 413);
    assert_eq!(post(&format!("{url}/elsewhere"), Some(WEBHOOK_TOKEN), good.clone()).await.0, 404);
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{url}/webhook")).send().await.unwrap().status().as_u16(), 405);
    assert_eq!(client.delete(format!("{url}/healthz")).send().await.unwrap().status().as_u16(), 405);

    // Other events are accepted and ignored.
    let removed = body(vec![rustfs_record("bkt", "k", "abc", 1, "s3:ObjectRemoved:Delete")]);
    let (status, answer) = post_event(url, &removed).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&answer).unwrap()["ignored"], 1);

    assert!(w.query("SELECT * FROM deliveries").is_empty(), "nothing reached the ledger");
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "still serving");
}

/// A record as some forwarders send it: without ETag and size, which cost a HEAD.
fn record_without_etag(bucket: &str, key: &str) -> Value {
    let mut record = rustfs_record(bucket, key, "", 0, "s3:ObjectCreated:Put");
    let object = record["s3"]["object"].as_object_mut().unwrap();
    object.remove("eTag");
    object.remove("size");
    record
}

#[tokio::test(flavor = "multi_thread")]
async fn events_for_objects_or_buckets_that_do_not_exist_are_answered_2xx() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let bytes = data(700, 11);
    w.s3.put("bkt", "here.bin", bytes.clone()).await;
    let server = w.start_webhook(&[]);
    let records = vec![
        record_without_etag("bkt", "deleted-since.bin"),
        record_without_etag("no-such-bucket", "x.bin"),
        record_without_etag("bkt", "here.bin"),
    ];
    let (status, answer) = post_event(&server.url, &body(records)).await;
    assert_eq!(status, 200, "nothing to resend: {answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!((answer["accepted"].as_u64(), answer["skipped"].as_u64()), (Some(1), Some(2)), "{answer}");
    // The rest of the body was committed and is delivered.
    wait_docs(&w, 1).await;
    assert_eq!(w.tg.documents()[0].bytes(), bytes);
    assert_eq!(w.query("SELECT bucket, key FROM deliveries"), vec![vec!["bkt".to_string(), "here.bin".into()]]);
    let logs = server.logs();
    for what in ["bkt/deleted-since.bin", "no-such-bucket/x.bin"] {
        assert!(logs.lines().any(|l| l.contains(what) && l.contains("nothing to deliver")), "{what}:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_naming_invalid_buckets_or_keys_are_refused_with_400() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let server = w.start_webhook(&[]);
    let long_key = "k".repeat(1025);
    let cases = [
        // tgploy can tell these before asking S3.
        record_without_etag("../etc", "passwd"),
        record_without_etag("bkt", &long_key),
        rustfs_record("../etc", "passwd", "abc", 1, "s3:ObjectCreated:Put"),
        // This one only the server refuses (s3s-fs answers HEAD with a bare 400).
        record_without_etag("Not_A_Valid_Bucket", "x.bin"),
    ];
    for record in cases {
        let what = format!("{}/{:.20}", record["s3"]["bucket"]["name"], record["s3"]["object"]["key"]);
        let (status, answer) = post_event(&server.url, &body(vec![record])).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert!(answer.contains("not a valid S3 name"), "{what}: {answer}");
    }
    assert!(w.query("SELECT * FROM deliveries").is_empty(), "nothing reached the ledger");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_lacking_its_etag_while_s3_fails_or_is_down_is_answered_503() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "k.bin", data(10, 1)).await;
    let server = w.start_webhook(&[]);
    let event = body(vec![record_without_etag("bkt", "k.bin")]);
    w.s3.fail_heads(true);
    let (status, answer) = post_event(&server.url, &event).await;
    assert_eq!(status, 503, "S3 answers 500: asked to resend: {answer}");
    w.s3.stop();
    let (status, answer) = post_event(&server.url, &event).await;
    assert_eq!(status, 503, "S3 stopped: asked to resend: {answer}");
    assert!(w.query("SELECT * FROM deliveries").is_empty(), "nothing reached the ledger");
}

#[tokio::test(flavor = "multi_thread")]
async fn head_and_healthz_answer_without_secrets() {
    let w = World::new().await;
    let server = w.start_webhook(&[]);
    let client = reqwest::Client::new();
    assert_eq!(client.head(format!("{}/", server.url)).send().await.unwrap().status().as_u16(), 200);
    let health = client.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let text = health.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["ledger"], "ok");
    assert_eq!(v["queue_depth"], 0);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["last_delivery_at"].is_null());
    assert!(!text.contains(WEBHOOK_TOKEN) && !text.contains(crate::support::telegram::TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_accepted_before_a_crash_is_delivered_after_restart() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let bytes = data(PART_SIZE as usize + 10, 3);
    let etag = w.s3.put("bkt", "crash.bin", bytes.clone()).await;
    w.tg.inject("sendDocument", Fault::Hang, 1);
    let server = w.start_webhook(&[]);
    let (status, _) = post_event(
        &server.url,
        &body(vec![rustfs_record("bkt", "crash.bin", &etag, bytes.len(), "s3:ObjectCreated:Put")]),
    )
    .await;
    assert_eq!(status, 200);
    assert!(w.tg.wait_for_calls("sendDocument", 1, Duration::from_secs(30)).await);
    server.kill();

    let restarted = w.start_webhook(&[]);
    wait_docs(&w, 3).await;
    let (_, joined) = w.join_from_manifest("crash.bin.tgploy.json");
    assert_eq!(joined, bytes);
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_and_a_concurrent_sync_deliver_each_object_once() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let mut records = Vec::new();
    for i in 0..8 {
        let bytes = data(PART_SIZE as usize + 20, 100 + i);
        let key = format!("both/{i}.bin");
        let etag = w.s3.put("bkt", &key, bytes.clone()).await;
        records.push(rustfs_record("bkt", &key, &etag, bytes.len(), "s3:ObjectCreated:Put"));
    }
    // Slow answers keep the sync at work while the events arrive: it holds four claims
    // (its concurrency) and has the other four still pending when the server wakes up.
    w.tg.set_delay(Duration::from_millis(200));
    let server = w.start_webhook(&["--concurrency", "3"]);
    let sync = w.spawn(&["sync"]);
    assert!(w.tg.wait_for_documents(1, Duration::from_secs(30)).await, "the sync started sending");
    let (status, _) = post_event(&server.url, &body(records)).await;
    assert_eq!(status, 200);
    let out = wait_exit(sync, Duration::from_secs(120)).await;
    out.success();
    wait_docs(&w, 8 * 3).await;
    settled(&w).await;

    // Both delivered, at the same time, and between them each object exactly once.
    let sent = |kind: &str| -> u64 {
        w.query(&format!("SELECT COALESCE(SUM(sent), 0) FROM runs WHERE kind = '{kind}'"))[0][0].parse().unwrap()
    };
    let (by_sync, by_server) = (sent("sync"), sent("webhook"));
    assert!(by_sync > 0 && by_server > 0, "sync sent {by_sync}, the server {by_server}: they did not overlap");
    assert_eq!(by_sync + by_server, 8);
    let mut count: HashMap<String, usize> = HashMap::new();
    for d in w.tg.documents() {
        *count.entry(d.file_name).or_default() += 1;
    }
    assert_eq!(count.len(), 24);
    assert!(count.values().all(|&n| n == 1), "sent twice: {count:?}");
    for i in 0..8 {
        let (_, joined) = w.join_from_manifest(&format!("{i}.bin.tgploy.json"));
        assert_eq!(sha256_hex(&joined), sha256_hex(&data(PART_SIZE as usize + 20, 100 + i)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_from_concurrent_senders_are_all_in_the_ledger_when_answered() {
    let w = World::with_listed_etags().await;
    w.s3.create_bucket("load").await;
    let server = w.start_webhook(&[]);
    let latencies =
        crate::harness::post_events(&format!("{}/webhook", server.url), "load", 8, crate::harness::Until::Count(40))
            .await;
    assert_eq!(latencies.len(), 320);
    // Every answered event was committed before its answer: killed the moment the last
    // answer came, the server leaves none of them behind.
    server.kill();
    assert_eq!(w.query("SELECT COUNT(*) FROM deliveries WHERE bucket = 'load'"), [["320"]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_part_in_flight_releases_and_exits_0() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let bytes = data(PART_SIZE as usize * 6, 8);
    let etag = w.s3.put("bkt", "long.bin", bytes.clone()).await;
    w.tg.set_delay(Duration::from_millis(200));
    let server = w.start_webhook(&[]);
    let (status, _) = post_event(
        &server.url,
        &body(vec![rustfs_record("bkt", "long.bin", &etag, bytes.len(), "s3:ObjectCreated:Put")]),
    )
    .await;
    assert_eq!(status, 200);
    wait_docs(&w, 2).await;
    let (code, logs) = server.stop("TERM", Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{logs}");
    assert!(logs.contains("serve-webhook stopped"), "{logs}");
    assert_eq!(w.query("SELECT state FROM deliveries"), [["pending"]], "the claim was released");
    let parts: usize = w.query("SELECT COUNT(*) FROM parts")[0][0].parse().unwrap();
    assert_eq!(parts, w.tg.documents().len(), "the part in flight finished and was recorded");
    assert!(parts < 6);

    w.tg.set_delay(Duration::ZERO);
    let _again = w.start_webhook(&[]);
    wait_docs(&w, 7).await;
    let (_, joined) = w.join_from_manifest("long.bin.tgploy.json");
    assert_eq!(joined, bytes);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_no_server_unless_explicitly_insecure_on_loopback() {
    let mut w = World::new().await;
    w.unset_env("WEBHOOK_SECRET_TOKEN");
    let out = w.run(&["serve-webhook", "--listen", "127.0.0.1:0"]).await;
    out.code(2);
    assert!(out.stderr.contains("WEBHOOK_SECRET_TOKEN"), "{}", out.stderr);
    let out = w.run(&["serve-webhook", "--listen", "0.0.0.0:0", "--insecure-no-token"]).await;
    out.code(2);
    assert!(out.stderr.contains("loopback"), "{}", out.stderr);
    let out = w.run(&["serve-webhook", "--listen", "nonsense"]).await;
    out.code(2);

    w.s3.create_bucket("bkt").await;
    let etag = w.s3.put("bkt", "open.txt", data(5, 1)).await;
    let server = w.start_webhook(&["--insecure-no-token"]);
    let event = body(vec![rustfs_record("bkt", "open.txt", &etag, 5, "s3:ObjectCreated:Put")]);
    let (status, _) = post(&format!("{}/webhook", server.url), None, serde_json::to_vec(&event).unwrap()).await;
    assert_eq!(status, 200);
    wait_docs(&w, 1).await;
}
