//! Benchmarks, ignored by default: `benches/run.sh` (or
//! `cargo test --release --test it -- --ignored --nocapture bench_`). They print figures;
//! they assert only correctness, never timing.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use futures_util::StreamExt;

use crate::harness::{World, data, sha256_hex};

/// Runs the binary under `/usr/bin/time -v` when it exists; returns (seconds, peak RSS KiB).
fn timed(w: &World, args: &[&str]) -> (f64, Option<u64>, String) {
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-v").arg(env!("CARGO_BIN_EXE_tgploy"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_tgploy"))
    };
    cmd.args(args).env_clear().envs(&w.env);
    let start = Instant::now();
    let out = cmd.output().expect("run");
    let secs = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let rss = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .and_then(|v| v.trim().parse().ok());
    (secs, rss, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// 1 GiB of pseudo-random bytes, written in 16 MiB pieces.
fn write_gib(path: &Path) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..64 {
        f.write_all(&data(16 << 20, i)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with benches/run.sh"]
async fn bench_deliver_1_gib_object() {
    let mut w = World::with_listed_etags().await;
    w.set_env("TGPLOY_PART_SIZE", "19MiB");
    w.s3.create_bucket("bench").await;
    let file = w.dir.path().join("big.bin");
    write_gib(&file);
    let expected = file_sha256(&file);
    w.s3.put_file("bench", "big.bin", &file).await;

    let w = std::sync::Arc::new(w);
    let w2 = w.clone();
    let (secs, rss, _) = tokio::task::spawn_blocking(move || timed(&w2, &["sync"])).await.unwrap();
    let (manifest, joined) = w.join_from_manifest("big.bin.tgploy.json");
    assert_eq!(sha256_hex(&joined), expected);
    assert_eq!(manifest["parts"].as_array().unwrap().len(), 54);
    println!(
        "BENCH deliver 1 GiB (19 MiB parts, 54 parts + manifest): {secs:.2} s, {:.1} MiB/s, peak RSS {}",
        1024.0 / secs,
        rss.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "n/a (no /usr/bin/time)".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with benches/run.sh"]
async fn bench_restore_1_gib() {
    for encrypted in [false, true] {
        let mut w = World::with_listed_etags().await;
        w.set_env("TGPLOY_PART_SIZE", "19MiB");
        let key = w.dir.path().join("key.txt");
        if encrypted {
            use age::secrecy::ExposeSecret;
            let id = age::x25519::Identity::generate();
            std::fs::write(&key, format!("{}\n", id.to_string().expose_secret())).unwrap();
            w.set_env("TGPLOY_ENCRYPTION_RECIPIENTS", &id.to_public().to_string());
        }
        w.s3.create_bucket("bench").await;
        let file = w.dir.path().join("big.bin");
        write_gib(&file);
        let expected = file_sha256(&file);
        w.s3.put_file("bench", "big.bin", &file).await;
        std::fs::remove_file(&file).unwrap();
        let w = std::sync::Arc::new(w);
        let w2 = w.clone();
        tokio::task::spawn_blocking(move || timed(&w2, &["sync"])).await.unwrap();

        let out = w.dir.path().join("restored.bin");
        let mut args = vec!["restore".to_string(), "bench/big.bin".into(), "--out".into(), out.display().to_string()];
        if encrypted {
            args.extend(["--identity".into(), key.display().to_string()]);
        }
        let w2 = w.clone();
        let (secs, rss, _) = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            timed(&w2, &args)
        })
        .await
        .unwrap();
        assert_eq!(file_sha256(&out), expected);
        println!(
            "BENCH restore 1 GiB ({}, 19 MiB parts, from the ledger): {secs:.2} s, {:.1} MiB/s, peak RSS {}",
            if encrypted { "age-encrypted, decrypted" } else { "plain" },
            1024.0 / secs,
            rss.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "n/a (no /usr/bin/time)".into())
        );
    }
}

fn file_sha256(path: &Path) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut f = std::fs::File::open(path).unwrap();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

async fn put_many(w: &World, bucket: &str, n: usize) {
    let client = w.s3.client();
    let puts = (0..n).map(|i| {
        let client = client.clone();
        let bucket = bucket.to_string();
        async move {
            client
                .put_object()
                .bucket(bucket)
                .key(format!("dumps/{:03}/{i:06}.sql.gz", i % 100))
                .body(format!("dump {i}").into_bytes().into())
                .send()
                .await
                .expect("put");
        }
    });
    futures_util::stream::iter(puts).buffer_unordered(32).collect::<Vec<_>>().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with benches/run.sh"]
async fn bench_no_op_sync_over_10000_delivered_objects() {
    for listed_etags in [false, true] {
        let w = if listed_etags { World::with_listed_etags().await } else { World::new().await };
        w.s3.create_bucket("many").await;
        let start = Instant::now();
        put_many(&w, "many", 10_000).await;
        let put_secs = start.elapsed().as_secs_f64();
        let w = std::sync::Arc::new(w);

        let w2 = w.clone();
        let (first, _, _) = tokio::task::spawn_blocking(move || timed(&w2, &["sync"])).await.unwrap();
        assert_eq!(w.tg.documents().len(), 10_000);
        let heads = w.s3.head_count();

        let mut runs = Vec::new();
        for _ in 0..3 {
            let w2 = w.clone();
            let (secs, rss, out) = tokio::task::spawn_blocking(move || timed(&w2, &["sync", "--json"])).await.unwrap();
            assert!(out.contains("\"sent\": 0"), "{out}");
            runs.push((secs, rss));
        }
        assert_eq!(w.s3.head_count(), heads, "no HEAD on a no-op sync");
        assert_eq!(w.tg.documents().len(), 10_000);

        // What listing alone costs: the same pages through the same client code.
        let source = tgploy::source::S3Source::new(&tgploy::config::S3Settings {
            endpoint: w.s3.endpoint(),
            region: "us-east-1".into(),
            access_key: crate::support::s3::ACCESS_KEY.into(),
            secret_key: tgploy::config::Secret::new(crate::support::s3::SECRET_KEY),
        });
        let start = Instant::now();
        let listed = source.list_objects("many").await.unwrap();
        let list_secs = start.elapsed().as_secs_f64();
        assert_eq!(listed.len(), 10_000);

        let best = runs.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
        println!(
            "BENCH no-op sync over 10,000 delivered objects ({}): best {best:.2} s of {:?} (listing alone {list_secs:.2} s; \
             peak RSS {:?} KiB); first sync {first:.1} s; {put_secs:.1} s to upload",
            if listed_etags { "listing with ETags" } else { "listing without ETags, ETag cache" },
            runs.iter().map(|r| (r.0 * 100.0).round() / 100.0).collect::<Vec<_>>(),
            runs[0].1,
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with benches/run.sh"]
async fn bench_retry_drains_500_due_failures() {
    let w = World::with_listed_etags().await;
    w.s3.create_bucket("fail").await;
    put_many(&w, "fail", 500).await;
    // Every upload is refused (413) so that all 500 deliveries fail once.
    w.tg.set_upload_limit(1);
    let w = std::sync::Arc::new(w);
    let w2 = w.clone();
    tokio::task::spawn_blocking(move || {
        let out = w2.command(&["sync"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
    })
    .await
    .unwrap();
    assert_eq!(w.query("SELECT COUNT(*) FROM deliveries WHERE state = 'failed'"), [["500"]]);

    w.tg.set_upload_limit(50 * 1024 * 1024);
    let w2 = w.clone();
    let (secs, rss, out) =
        tokio::task::spawn_blocking(move || timed(&w2, &["retry", "--now", "--json"])).await.unwrap();
    assert!(out.contains("\"sent\": 500"), "{out}");
    assert_eq!(w.query("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'"), [["500"]]);
    println!(
        "BENCH retry drains 500 due failures: {secs:.2} s ({:.0} deliveries/s), peak RSS {:?} KiB",
        500.0 / secs,
        rss
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with benches/run.sh"]
async fn bench_webhook_accepts_events() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let w = World::with_listed_etags().await;
    w.s3.create_bucket("load").await;
    let server = w.start_webhook_timed();
    // The server runs under /usr/bin/time: signal tgploy itself, not the wrapper.
    let url = format!("{}/webhook", server.url);
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let workers = 16;
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    // Objects that do not exist: the background deliveries find them gone
                    // and record them as skipped, which is work the server does meanwhile.
                    let body = serde_json::json!({
                        "EventName": "s3:ObjectCreated:Put",
                        "Key": format!("load/w{worker}/{n}.sql.gz"),
                        "Records": [{
                            "eventName": "s3:ObjectCreated:Put",
                            "eventTime": "2026-11-27T21:49:19.728737342Z",
                            "s3": {"bucket": {"name": "load"},
                                   "object": {"key": format!("w{worker}%2F{n}.sql.gz"), "size": 1024, "eTag": format!("{worker:08x}{n:024x}")}}
                        }]
                    });
                    let start = Instant::now();
                    let resp = client
                        .post(&url)
                        .bearer_auth(crate::harness::WEBHOOK_TOKEN)
                        .json(&body)
                        .send()
                        .await
                        .expect("POST");
                    assert_eq!(resp.status().as_u16(), 200);
                    latencies.push(start.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    latencies.sort();
    let total = latencies.len();
    let committed: usize = w.query("SELECT COUNT(*) FROM deliveries")[0][0].parse().unwrap();
    assert_eq!(committed, total, "every accepted event is in the ledger");
    let pid = server.child.id();
    let tgploy_pid = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let tgploy_pid = tgploy_pid.split_whitespace().next().expect("tgploy under time").to_string();
    Command::new("kill").args(["-TERM", &tgploy_pid]).status().unwrap();
    let (_, logs) = server.stop("CONT", std::time::Duration::from_secs(120)).await;
    let rss = logs
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .unwrap_or("?")
        .to_string();
    let pct = |p: f64| latencies[((total as f64 * p) as usize).min(total - 1)];
    println!(
        "BENCH serve-webhook over {seconds} s, {workers} concurrent senders: {total} events committed, {:.0} events/s, \
         latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms; server peak RSS {rss} KiB",
        total as f64 / seconds as f64,
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        latencies[total - 1].as_secs_f64() * 1000.0,
    );
}

/// Fills the ledger with `n` deliveries over five buckets (most sent, in one to three
/// parts; some failed, dead or pending), a run every five minutes for ten weeks, and
/// alerts, in one transaction.
fn fill_ledger(w: &World, n: usize) {
    drop(tgploy::ledger::Ledger::open(&w.ledger_path()).unwrap());
    let mut conn = rusqlite::Connection::open(w.ledger_path()).unwrap();
    let tx = conn.transaction().unwrap();
    let now = tgploy::time::now();
    for b in 0..5 {
        tx.execute(
            "INSERT INTO buckets (name, enabled, discovered_at, last_listed_at) VALUES (?1, 1, ?2, ?2)",
            rusqlite::params![format!("bucket-{b}"), now - 86400 * 70],
        )
        .unwrap();
    }
    {
        let mut delivery = tx
            .prepare(
                "INSERT INTO deliveries (bucket, key, etag, size, state, attempts, last_error, next_attempt_at, sha256,
                    created_at, updated_at, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
            )
            .unwrap();
        let mut part = tx
            .prepare(
                "INSERT INTO parts (delivery_id, idx, offset, size, sha256, file_name, message_id, file_id, sent_at)
                 VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .unwrap();
        let mut message = 1i64;
        for i in 0..n {
            let (state, attempts, error, next) = match i % 1000 {
                0..5 => ("failed", 2, Some("Telegram answered 502 Bad Gateway"), Some(now + 300)),
                5 => ("dead", 8, Some("cannot read the object: NoSuchKey"), None),
                6 => ("pending", 0, None, None),
                _ => ("sent", 1, None, None),
            };
            let at = now - (n - i) as i64 * 60;
            let sent_at = (state == "sent").then_some(at);
            let sha = format!("{i:064x}");
            delivery
                .execute(rusqlite::params![
                    format!("bucket-{}", i % 5),
                    format!("db/{:04}/{i:06}.sql.gz", i / 1000),
                    format!("{i:032x}"),
                    1_000_000 + i as i64,
                    state,
                    attempts,
                    error,
                    next,
                    sent_at.map(|_| sha.clone()),
                    at,
                    sent_at
                ])
                .unwrap();
            if state == "sent" {
                let id = tx.last_insert_rowid();
                for idx in 1..=(1 + i % 3) {
                    part.execute(rusqlite::params![
                        id,
                        idx,
                        1_000_000,
                        sha,
                        format!("{i:06}.sql.gz.part{idx}"),
                        message,
                        format!("file-{message}"),
                        at
                    ])
                    .unwrap();
                    message += 1;
                }
            }
        }
    }
    for r in 0..20_000i64 {
        let finished = now - r * 300;
        tx.execute(
            "INSERT INTO runs (kind, started_at, finished_at, sent, failed, bytes, error) VALUES (?1, ?2, ?3, 5, 0, 5000000, NULL)",
            rusqlite::params![if r % 288 == 0 { "heartbeat" } else if r % 2 == 0 { "sync" } else { "retry" }, finished - 20, finished],
        )
        .unwrap();
    }
    for a in 0..500i64 {
        tx.execute(
            "INSERT INTO alerts (subject, text, created_at, sent_at, attempts) VALUES ('s3', 'cannot reach S3', ?1, ?2, 1)",
            rusqlite::params![now - a * 3600, (a > 2).then_some(now - a * 3600 + 5)],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with benches/run.sh"]
async fn bench_dashboard_pages_with_100000_deliveries() {
    let requests: usize = std::env::var("BENCH_REQUESTS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let w = World::new().await;
    let start = Instant::now();
    fill_ledger(&w, 100_000);
    let fill_secs = start.elapsed().as_secs_f64();
    let ledger = tgploy::ledger::Ledger::open(&w.ledger_path()).unwrap();
    tgploy::dashboard::auth::set_password(&ledger, crate::dashboard::PASSWORD, None).unwrap();
    let enrolment = tgploy::totp::new_enrolment("bench").unwrap();
    tgploy::totp::store(&ledger, &enrolment).unwrap();
    drop(ledger);
    let server = w.start_dashboard();
    let mut c = crate::dashboard::Client::new(&server.url);
    let reply = c.sign_in(crate::dashboard::PASSWORD, &enrolment.recovery_codes[0]).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let deep = w.query(
        "SELECT sent_at, id FROM deliveries WHERE state = 'sent' ORDER BY sent_at DESC, id DESC LIMIT 1 OFFSET 60000",
    );
    let css = c.get("/").await.body.split("href=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let pages = [
        css.clone(),
        "/".into(),
        "/buckets".into(),
        "/files".into(),
        "/files?bucket=bucket-3".into(),
        "/files?prefix=db%2F0042%2F".into(),
        "/files?prefix=db%2F".into(),
        "/files?bucket=bucket-1&prefix=db%2F0007%2F".into(),
        format!("/files?before={}.{}", deep[0][0], deep[0][1]),
        "/retry".into(),
        "/logs".into(),
        "/logs?before=10000".into(),
        "/security".into(),
        "/settings".into(),
    ];
    println!(
        "BENCH dashboard over a ledger of 100,000 deliveries (filled in {fill_secs:.1} s), {requests} sequential \
         requests per page after 20 to warm up, timed by the client over loopback:"
    );
    let mut baseline = 0.0;
    for page in &pages {
        let mut times = Vec::with_capacity(requests);
        for i in 0..requests + 20 {
            let t = Instant::now();
            let reply = c.get(page).await;
            let elapsed = t.elapsed();
            assert_eq!(reply.status, 200, "{page}: {}", reply.body);
            if i >= 20 {
                times.push(elapsed);
            }
        }
        times.sort();
        let ms = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64() * 1000.0;
        if *page == css {
            baseline = ms(0.5);
        }
        println!(
            "BENCH   {:<34} p50 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms  (p50 {:5.1}x the stylesheet's)",
            if *page == css { "/static/app.<hash>.css" } else { page.as_str() },
            ms(0.5),
            ms(0.99),
            times[times.len() - 1].as_secs_f64() * 1000.0,
            ms(0.5) / baseline
        );
    }
    server.kill();
}
