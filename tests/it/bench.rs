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
