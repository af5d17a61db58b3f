//! Failures never go unnoticed: `retry`, dead deliveries and alerts, the run lock,
//! signals, and the faults of the outside world.

use std::collections::HashMap;
use std::time::Duration;

use crate::harness::{Output, PART_SIZE, World, data, sha256_hex, signal, wait_exit};
use crate::support::telegram::Fault;

/// Every document name, with how often it arrived.
fn arrivals(w: &World) -> HashMap<String, usize> {
    let mut count = HashMap::new();
    for d in w.tg.documents() {
        *count.entry(d.file_name).or_insert(0) += 1;
    }
    count
}

fn deliveries(w: &World) -> Vec<Vec<String>> {
    w.query("SELECT bucket, key, etag, state, attempts FROM deliveries ORDER BY id")
}

/// Puts `obj0` … `obj4` of two parts each into the bucket `bkt`; returns their bytes.
async fn five_two_part_objects(w: &World) -> Vec<Vec<u8>> {
    w.s3.create_bucket("bkt").await;
    let bodies: Vec<Vec<u8>> = (0..5).map(|i| data(PART_SIZE as usize + 50, i)).collect();
    for (i, b) in bodies.iter().enumerate() {
        w.s3.put("bkt", &format!("obj{i}"), b.clone()).await;
    }
    bodies
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_or_a_single_5xx_is_repeated_within_the_run() {
    let w = World::new().await.with_admin();
    let bodies = five_two_part_objects(&w).await;
    w.tg.inject("sendDocument", Fault::Drop, 1);
    w.tg.inject("sendDocument", Fault::ServerError(502), 1);
    w.tg.inject("sendDocument", Fault::ProxyError(503), 1);

    let out = w.run(&["sync", "--json"]).await;
    out.success().no_token();
    assert_eq!(out.json()["sent"], 5);
    assert!(out.stderr.contains("trying again in 1s"), "{}", out.stderr);
    for (i, b) in bodies.iter().enumerate() {
        let (_, joined) = w.join_from_manifest(&format!("obj{i}.tgploy.json"));
        assert_eq!(sha256_hex(&joined), sha256_hex(b));
    }
    // The refused requests had nothing accepted: nothing arrived twice, no attempt counted.
    assert!(arrivals(&w).values().all(|&n| n == 1), "{:?}", arrivals(&w));
    assert!(deliveries(&w).iter().all(|r| r[3] == "sent" && r[4] == "0"), "{:?}", deliveries(&w));
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_deliveries_wait_for_their_retry_then_go_out() {
    let w = World::new().await.with_admin();
    let bodies = five_two_part_objects(&w).await;
    w.tg.inject("sendDocument", Fault::BadRequest("wrong remote file identifier specified"), 2);

    let out = w.run(&["sync", "--json"]).await;
    out.code(1).no_token();
    let report = out.json();
    assert_eq!(report["sent"], 3);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|f| f["error"].as_str().unwrap().contains("wrong remote file identifier")), "{failed:?}");
    let rows =
        w.query("SELECT last_error IS NOT NULL, next_attempt_at > updated_at FROM deliveries WHERE state = 'failed'");
    assert_eq!(rows, [["1", "1"], ["1", "1"]]);

    // Not due yet: the first retry is a minute away.
    let early = w.run(&["retry"]).await;
    early.success();
    assert!(early.stdout.contains("no failed delivery is due"), "{}", early.stdout);

    let retry = w.run(&["retry", "--now", "--json"]).await;
    retry.success().no_token();
    assert_eq!(retry.json()["sent"], 2);
    for (i, b) in bodies.iter().enumerate() {
        let (_, joined) = w.join_from_manifest(&format!("obj{i}.tgploy.json"));
        assert_eq!(sha256_hex(&joined), sha256_hex(b));
    }
    // Nothing was sent twice: the failed attempts never had a part accepted.
    assert!(arrivals(&w).values().all(|&n| n == 1), "{:?}", arrivals(&w));
    assert!(deliveries(&w).iter().all(|r| r[3] == "sent"));
}

/// Telegram answers everything with `fault` (a JSON 502, or nginx's HTML page) while a
/// `sync` of 20 objects runs, from the start or from the sixth document on.
async fn outage_stops_the_run_and_counts_no_attempt(fault: Fault, from_start: bool) {
    let w = World::new().await.with_admin();
    w.s3.create_bucket("bkt").await;
    let bodies: Vec<Vec<u8>> = (0..20).map(|i| data(1000 + i, i as u64)).collect();
    for (i, b) in bodies.iter().enumerate() {
        w.s3.put("bkt", &format!("o{i:02}"), b.clone()).await;
    }
    let out = if from_start {
        w.tg.set_outage(fault);
        w.sync().await
    } else {
        w.tg.set_delay(Duration::from_millis(150));
        let child = w.spawn(&["sync"]);
        assert!(w.tg.wait_for_documents(5, Duration::from_secs(30)).await);
        w.tg.set_outage(fault);
        wait_exit(child, Duration::from_secs(120)).await
    };
    out.code(4).no_token();
    assert!(out.stderr.contains("cannot reach the Telegram Bot API") && out.stderr.contains("502"), "{}", out.stderr);
    let attempts = w.query("SELECT COALESCE(SUM(attempts), 0) FROM deliveries");
    assert_eq!(attempts, [["0"]], "an outage counts no attempt");
    let states = w.query("SELECT DISTINCT state FROM deliveries WHERE state NOT IN ('pending', 'sent')");
    assert!(states.is_empty(), "every claim was released: {states:?}");
    let delivered_before = w.tg.documents().len();
    assert!(if from_start { delivered_before == 0 } else { delivered_before < 20 });

    // Telegram is back: everything goes out once, and the admin hears about the outage.
    w.tg.clear_faults();
    w.tg.set_delay(Duration::ZERO);
    w.run(&["retry"]).await.success();
    w.sync().await.success();
    assert_eq!(w.query("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'"), [["20"]]);
    for (i, b) in bodies.iter().enumerate() {
        let docs = w.documents_named(&format!("o{i:02}"));
        assert_eq!(docs.len(), 1, "o{i:02} arrived once");
        assert_eq!(&docs[0].bytes(), b);
    }
    let alerts = w.admin_messages();
    assert!(alerts.iter().any(|a| a.contains("could not reach the Telegram Bot API")), "{alerts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_answering_502_with_json_is_an_outage() {
    outage_stops_the_run_and_counts_no_attempt(Fault::ServerError(502), true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_answering_502_with_an_nginx_page_mid_run_is_an_outage() {
    outage_stops_the_run_and_counts_no_attempt(Fault::ProxyError(502), false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_gone_mid_run_stops_the_run_and_loses_nothing() {
    let mut w = World::new().await.with_admin();
    w.set_env("TGPLOY_CONCURRENCY", "1");
    w.s3.create_bucket("bkt").await;
    for i in 0..6 {
        w.s3.put("bkt", &format!("o{i}"), data(100, i)).await;
    }
    // Two objects go out, then every connection is dropped without an answer.
    w.tg.set_delay(Duration::from_millis(100));
    let child = w.spawn(&["sync"]);
    assert!(w.tg.wait_for_documents(2, Duration::from_secs(30)).await, "the run started sending");
    w.tg.set_outage(Fault::Drop);
    let out = wait_exit(child, Duration::from_secs(60)).await;
    out.code(4).no_token();
    assert!(out.stderr.contains("cannot reach the Telegram Bot API"), "{}", out.stderr);
    // What Telegram kept is recorded as sent; the rest waits, with no attempt counted.
    let kept = w.tg.documents().len();
    assert!((2..6).contains(&kept), "{kept} documents");
    let states = w.query("SELECT state, COUNT(*), SUM(attempts) FROM deliveries GROUP BY state ORDER BY state");
    assert_eq!(
        states,
        [
            vec!["pending".to_string(), (6 - kept).to_string(), "0".into()],
            vec!["sent".into(), kept.to_string(), "0".into()]
        ]
    );

    // Back again: the next `sync` sends the rest, and the alert about the outage
    // reaches the admin chat.
    w.tg.clear_faults();
    w.tg.set_delay(Duration::ZERO);
    w.sync().await.success();
    assert!(arrivals(&w).len() == 6 && arrivals(&w).values().all(|&n| n == 1), "{:?}", arrivals(&w));
    let alerts = w.admin_messages();
    assert!(alerts.iter().any(|a| a.contains("could not reach")), "{alerts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_lost_after_telegram_kept_the_document_cost_at_most_one_copy_each() {
    let w = World::new().await.with_admin();
    let bodies = five_two_part_objects(&w).await;
    // Telegram keeps these three documents, but their answers never come back.
    w.tg.inject("sendDocument", Fault::LoseAnswer, 3);

    let out = w.run(&["sync", "--json"]).await;
    out.success().no_token();
    assert_eq!(out.json()["sent"], 5);
    let lost = w.tg.lost_answers();
    assert_eq!(lost, 3);
    // Ten parts and five manifests, and at most one more copy per lost answer.
    let extra = w.tg.documents().len() - 15;
    assert!(extra <= lost, "{extra} extra copies for {lost} lost answers: {:?}", arrivals(&w));
    assert!(arrivals(&w).values().all(|&n| n <= 2), "{:?}", arrivals(&w));
    // Every object comes back through the copy the ledger recorded.
    for (i, b) in bodies.iter().enumerate() {
        let restored = w.dir.path().join(format!("restored-{i}"));
        w.run(&["restore", &format!("bkt/obj{i}"), "--out", &restored.display().to_string()]).await.success();
        assert_eq!(sha256_hex(&std::fs::read(&restored).unwrap()), sha256_hex(b), "obj{i}");
        let (_, joined) = w.join_from_manifest(&format!("obj{i}.tgploy.json"));
        assert_eq!(sha256_hex(&joined), sha256_hex(b), "obj{i} from its manifest");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_wait_longer_than_allowed_ends_the_run_with_exit_4() {
    let mut w = World::new().await;
    w.set_env("TGPLOY_MAX_FLOOD_WAIT", "30s");
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "a", data(100, 1)).await;
    w.tg.inject("sendDocument", Fault::RetryAfter(3600), 1);
    let started = std::time::Instant::now();
    let out = w.sync().await;
    out.code(4).no_token();
    assert!(started.elapsed() < Duration::from_secs(30), "the run did not sit out the wait");
    assert!(out.stderr.contains("wait 3600s") && out.stderr.contains("telegram.max_flood_wait"), "{}", out.stderr);
    assert_eq!(w.query("SELECT state, attempts, owner IS NULL FROM deliveries"), [["pending", "0", "1"]]);
    w.sync().await.success();
    assert_eq!(w.tg.documents().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn flood_control_on_many_requests_is_no_failure() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    for i in 0..4 {
        w.s3.put("bkt", &format!("o{i}"), data(PART_SIZE as usize + 1, i)).await;
    }
    for _ in 0..4 {
        w.tg.inject("sendDocument", Fault::RetryAfter(1), 1);
        w.tg.inject("sendDocument", Fault::RetryAfter(0), 1);
    }
    let out = w.run(&["sync", "--json"]).await;
    out.success();
    assert_eq!(out.json()["sent"], 4);
    assert_eq!(w.query("SELECT COUNT(*) FROM deliveries WHERE attempts > 0 OR state != 'sent'"), [["0"]]);
    assert!(arrivals(&w).values().all(|&n| n == 1));
    assert_eq!(w.tg.documents().len(), 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_s3_exits_4_queues_an_alert_and_changes_no_delivery() {
    let w = World::new().await.with_admin();
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "a", data(10, 1)).await;
    w.s3.put("bkt", "b", data(10, 2)).await;
    w.tg.inject("sendDocument", Fault::BadRequest("wrong remote file identifier specified"), 1);
    w.sync().await.code(1);
    let before = deliveries(&w);

    w.s3.stop();
    let out = w.sync().await;
    out.code(4).no_token();
    assert_eq!(deliveries(&w), before, "the ledger's deliveries are unchanged");
    let alerts = w.admin_messages();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("could not reach S3") && alerts[0].contains(&w.s3.endpoint()), "{}", alerts[0]);

    // The same alert within the interval is held back, and counted in the next one.
    w.sync().await.code(4);
    w.run(&["retry", "--now"]).await.code(4);
    assert_eq!(w.admin_messages().len(), 1);
    let mut w = w;
    w.set_env("TGPLOY_ALERT_INTERVAL", "0s");
    w.sync().await.code(4);
    let alerts = w.admin_messages();
    assert_eq!(alerts.len(), 2);
    assert!(alerts[1].contains("2 more like this held back"), "{}", alerts[1]);
}

/// A server with bad disks under one object answers 503 SlowDownRead to that object
/// alone: the run does not stop at it (which, in key order, would hold back every object
/// after it on every run), it fails on its own and goes dead with an alert when it never
/// heals.
#[tokio::test(flavor = "multi_thread")]
async fn one_object_s3_cannot_serve_fails_alone_while_the_others_go_out() {
    let mut w = World::new().await.with_admin();
    w.set_env("TGPLOY_MAX_ATTEMPTS", "2");
    w.set_env("TGPLOY_CONCURRENCY", "1");
    w.s3.create_bucket("bkt").await;
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        w.s3.put("bkt", key, data(5000, i as u64)).await;
    }
    w.s3.fail_gets_of("a");
    let out = w.run(&["sync", "--json"]).await;
    out.code(1).no_token();
    let report = out.json();
    assert_eq!((report["sent"].as_u64(), report["stopped"].as_str()), (Some(2), None), "{report}");
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["key"], "a");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("SlowDownRead") && error.contains("while S3 served other objects"), "{error}");
    assert_eq!(w.query("SELECT state, attempts FROM deliveries WHERE key = 'a'"), [["failed", "1"]]);
    assert!(w.admin_messages().is_empty(), "one failed attempt is no alert");

    w.run(&["retry", "--now"]).await.code(1);
    assert_eq!(w.query("SELECT state, attempts FROM deliveries WHERE key = 'a'"), [["dead", "2"]]);
    let alerts = w.admin_messages();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("bkt/a") && !alerts[0].contains("could not reach S3"), "{}", alerts[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_wait_for_telegram_and_go_out_once_it_is_back() {
    let mut w = World::new().await.with_admin();
    let endpoint = w.s3.endpoint();
    w.s3.stop();
    let real_api = w.env["TELEGRAM_API_URL"].clone();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    w.set_env("TELEGRAM_API_URL", &closed);
    w.sync().await.code(4);
    let status = w.run(&["status", "--json"]).await;
    assert_eq!(status.json()["unsent_alerts"], 1);

    w.set_env("TELEGRAM_API_URL", &real_api);
    w.run(&["heartbeat"]).await.success();
    let alerts = w.admin_messages();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(alerts[0].contains(&endpoint), "the waiting alert first: {alerts:?}");
    assert!(alerts[1].contains("tgploy heartbeat"), "{alerts:?}");
    assert_eq!(w.run(&["status", "--json"]).await.json()["unsent_alerts"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_goes_dead_after_max_attempts_and_the_admin_is_told() {
    let mut w = World::new().await.with_admin();
    w.set_env("TGPLOY_MAX_ATTEMPTS", "2");
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize, 9);
    w.s3.put("bkt", "db/nightly.sql", body.clone()).await;
    w.tg.set_upload_limit(1000);

    w.sync().await.code(1);
    let out = w.run(&["retry", "--now", "--json"]).await;
    out.code(1);
    assert_eq!(out.json()["failed"][0]["dead"], true);
    assert_eq!(w.query("SELECT state, attempts FROM deliveries"), [["dead", "2"]]);
    let alerts = w.admin_messages();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    for needle in ["delivery is dead", "bkt/db/nightly.sql", "2 times", "part_size", "retry --dead"] {
        assert!(alerts[0].contains(needle), "alert lacks {needle}: {}", alerts[0]);
    }

    let status = w.run(&["status", "--json"]).await;
    assert_eq!(status.json()["totals"]["dead"], 1);
    assert_eq!(status.json()["failures"][0]["state"], "dead");
    let check = w.run(&["status", "--check"]).await;
    check.code(1);
    assert!(check.stdout.lines().any(|l| l.starts_with("CRITICAL: 1 dead deliveries")), "{}", check.stdout);

    // A dead delivery is left alone until an operator revives it.
    w.tg.set_upload_limit(50 * 1024 * 1024);
    w.run(&["retry", "--now"]).await.success();
    assert_eq!(w.query("SELECT state FROM deliveries"), [["dead"]]);
    let id = &w.query("SELECT id FROM deliveries")[0][0];
    w.run(&["retry", "--id", id]).await.code(2);
    let revived = w.run(&["retry", "--dead", "--json"]).await;
    revived.success();
    assert_eq!(revived.json()["revived"], 1);
    assert_eq!(w.documents_named("nightly.sql")[0].bytes(), body);
    w.run(&["status", "--check"]).await.success();
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_by_id_and_its_errors() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "x", data(10, 1)).await;
    w.s3.put("bkt", "y", data(10, 2)).await;
    w.tg.inject("sendDocument", Fault::BadRequest("wrong remote file identifier specified"), 1);
    w.sync().await.code(1);
    let failed = w.query("SELECT id FROM deliveries WHERE state = 'failed'")[0][0].clone();
    let sent = w.query("SELECT id FROM deliveries WHERE state = 'sent'")[0][0].clone();

    let out = w.run(&["retry", "--id", &sent]).await;
    out.code(2);
    assert!(out.stderr.contains("was already sent"), "{}", out.stderr);
    let out = w.run(&["retry", "--id", "999"]).await;
    out.code(2);
    assert!(out.stderr.contains("no delivery with id 999"), "{}", out.stderr);

    w.run(&["retry", "--id", &failed]).await.success();
    assert_eq!(w.tg.documents().len(), 2);
}

/// SIGKILL at several points of a `retry` of three five-part objects, `concurrency` of
/// them at a time; a clean run then completes them. Each kill may leave the part each
/// delivery had in flight sent twice, nothing more.
async fn sigkill_at_many_points_during_retry(concurrency: usize) {
    let mut w = World::new().await;
    w.set_env("TGPLOY_CONCURRENCY", &concurrency.to_string());
    w.s3.create_bucket("bkt").await;
    let bodies: Vec<Vec<u8>> = (0..3).map(|i| data(PART_SIZE as usize * 4 + 333, 40 + i)).collect();
    for (i, b) in bodies.iter().enumerate() {
        w.s3.put("bkt", &format!("big{i}.tar"), b.clone()).await;
    }
    // First every delivery fails (413), so that `retry` has the work.
    w.tg.set_upload_limit(100);
    w.sync().await.code(1);
    w.tg.set_upload_limit(50 * 1024 * 1024);
    w.tg.set_delay(Duration::from_millis(60));

    let total = 3 * 6; // five parts and a manifest each
    let mut kills = 0;
    for step in [1, 2, 4, 3, 5] {
        let before = w.tg.documents().len();
        if before + step >= total {
            break;
        }
        let mut child = w.spawn(&["retry", "--now"]);
        if w.tg.wait_for_documents(before + step, Duration::from_secs(30)).await {
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        let _ = child.wait();
    }
    let at_least = if concurrency == 1 { 3 } else { 2 };
    assert!(kills >= at_least, "the loop killed only {kills} runs");
    w.tg.set_delay(Duration::ZERO);
    w.run(&["retry", "--now"]).await.success();

    for (i, b) in bodies.iter().enumerate() {
        let (manifest, joined) = w.join_from_manifest(&format!("big{i}.tar.tgploy.json"));
        assert_eq!(sha256_hex(&joined), sha256_hex(b));
        assert_eq!(manifest["sha256"], sha256_hex(b).as_str());
        let extra = w.tg.documents().iter().filter(|d| d.file_name.starts_with(&format!("big{i}.tar"))).count() - 6;
        assert!(extra <= kills, "big{i}.tar: {extra} duplicates for {kills} kills");
    }
    let extra = w.tg.documents().len() - total;
    assert!(extra <= kills * concurrency, "{extra} duplicates for {kills} kills of {concurrency} deliveries each");
    assert!(deliveries(&w).iter().all(|r| r[3] == "sent"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_many_points_during_retry_still_joins_exactly() {
    sigkill_at_many_points_during_retry(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_concurrent_deliveries_duplicates_at_most_the_parts_in_flight() {
    sigkill_at_many_points_during_retry(3).await;
}

async fn stopped_by(name: &str, code: i32) {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    let body = data(PART_SIZE as usize * 6, 5);
    w.s3.put("bkt", "slow.bin", body.clone()).await;
    w.tg.set_delay(Duration::from_millis(200));
    let child = w.spawn(&["sync"]);
    assert!(w.tg.wait_for_documents(2, Duration::from_secs(30)).await);
    signal(&child, name);
    let out: Output = wait_exit(child, Duration::from_secs(30)).await;
    out.code(code);
    assert!(out.stderr.contains(&format!("stopped by SIG{name} after the part in flight")), "{}", out.stderr);
    // The claim was released with the parts already accepted kept.
    assert_eq!(w.query("SELECT state FROM deliveries"), [["pending"]]);
    let parts: usize = w.query("SELECT COUNT(*) FROM parts")[0][0].parse().unwrap();
    assert!((2..6).contains(&parts), "{parts} parts recorded");
    assert_eq!(parts, w.tg.documents().len(), "the part in flight was finished and recorded");

    w.tg.set_delay(Duration::ZERO);
    w.sync().await.success();
    let (_, joined) = w.join_from_manifest("slow.bin.tgploy.json");
    assert_eq!(joined, body);
    assert_eq!(w.tg.documents().len(), 7, "nothing sent twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_after_the_part_in_flight() {
    stopped_by("TERM", 143).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_after_the_part_in_flight() {
    stopped_by("INT", 130).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_exits_3_naming_the_holder_and_a_dead_holders_lock_is_taken_over() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "x", data(10, 1)).await;
    w.tg.inject("getMe", Fault::Hang, 1);
    let mut first = w.spawn(&["sync"]);
    assert!(w.tg.wait_for_calls("getMe", 1, Duration::from_secs(30)).await);

    let second = w.sync().await;
    second.code(3);
    assert!(second.stderr.contains(&format!("(process {})", first.id())), "{}", second.stderr);
    // A different kind of run is not blocked by it.
    w.run(&["retry"]).await.success();

    first.kill().expect("SIGKILL");
    let _ = first.wait();
    w.sync().await.success();
    assert_eq!(w.tg.documents().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_ledger_path_exits_2() {
    let mut w = World::new().await;
    w.set_env("DATABASE_PATH", "/proc/tgploy-cannot-be-here/ledger.sqlite3");
    let out = w.run(&["status"]).await;
    out.code(2);
    assert!(out.stderr.contains("/proc/tgploy-cannot-be-here"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeat_summarises_the_day() {
    let w = World::new().await.with_admin();
    w.s3.create_bucket("bkt").await;
    w.s3.put("bkt", "a", data(2048, 1)).await;
    w.sync().await.success();

    let dry = w.run(&["heartbeat", "--dry-run"]).await;
    dry.success();
    assert!(dry.stdout.contains("Last 24 h: 1 objects delivered (2.0 KiB)"), "{}", dry.stdout);
    assert!(w.admin_messages().is_empty(), "--dry-run sends nothing");

    let json = w.run(&["heartbeat", "--dry-run", "--json"]).await;
    let beat = json.json();
    assert_eq!(beat["delivered_24h"], 1);
    assert_eq!(beat["buckets_enabled"], 1);
    assert_eq!(beat["dead"], 0);

    w.run(&["heartbeat"]).await.success();
    let sent = w.admin_messages();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].starts_with("tgploy heartbeat: all well"), "{}", sent[0]);
    assert!(sent[0].contains("Buckets: 1 enabled of 1"), "{}", sent[0]);

    let mut no_admin = w;
    no_admin.unset_env("TELEGRAM_ADMIN_CHAT_ID");
    let out = no_admin.run(&["heartbeat"]).await;
    out.code(2);
    assert!(out.stderr.contains("TELEGRAM_ADMIN_CHAT_ID"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_check_for_monitoring() {
    let w = World::new().await;
    let fresh = w.run(&["status", "--check"]).await;
    fresh.code(1);
    assert_eq!(fresh.stdout.trim(), "CRITICAL: no successful sync yet");

    w.s3.create_bucket("bkt").await;
    w.sync().await.success();
    let ok = w.run(&["status", "--check", "--max-age", "1h"]).await;
    ok.success();
    assert!(ok.stdout.starts_with("OK: last successful sync"), "{}", ok.stdout);

    // The sync an hour ago, as far as the ledger knows.
    w.execute("UPDATE runs SET started_at = started_at - 3600, finished_at = finished_at - 3600");
    let stale = w.run(&["status", "--check", "--max-age", "30m"]).await;
    stale.code(1);
    assert!(stale.stdout.contains("older than 30m"), "{}", stale.stdout);

    w.run(&["status", "--max-age", "1h"]).await.code(2);
}
