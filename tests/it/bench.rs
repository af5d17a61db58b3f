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

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with benches/run.sh"]
async fn bench_deliver_1_gib_object() {
    let mut w = World::with_listed_etags().await;
    w.set_env("TGPLOY_PART_SIZE", "19MiB");
    w.s3.create_bucket("bench").await;
    let file = w.dir.path().join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for i in 0..64 {
            f.write_all(&data(16 << 20, i)).unwrap();
        }
    }
    let expected = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let mut f = std::fs::File::open(&file).unwrap();
        std::io::copy(&mut f, &mut h).unwrap();
        hex::encode(h.finalize())
    };
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
