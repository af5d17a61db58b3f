//! End-to-end benchmarks: `benches/run.sh` (or `cargo bench --bench e2e -- [NAME...]`).
//! They print figures on lines starting with BENCH; they assert only correctness, never
//! timing. `cargo test` builds none of this: it is a bench target of its own, sharing
//! the test suite's support code (a real S3 server, the fake Bot API, the `World`).
//!
//! Shared 2-core machines make absolute times move from run to run, so each benchmark
//! also measures the raw work in the same run (an S3 GET of the same bytes with the same
//! client, a plain multipart upload of the same parts to the same fake, a listing alone)
//! and prints ratios against it. With `TGPLOY_BASELINE_BIN` naming another build of
//! tgploy, the same scenarios run with it too, for before/after figures.

// A test crate: its helpers are crate-wide, undocumented, and may unwrap.
#![allow(unreachable_pub, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

#[allow(dead_code)]
#[path = "../tests/it/dashboard_client.rs"]
mod dashboard_client;
#[allow(dead_code)]
#[path = "../tests/it/harness.rs"]
mod harness;
#[path = "../tests/it/support/mod.rs"]
mod support;

use crate::harness::{World, data};
use crate::support::{file_sha256, telegram};

/// The binaries to measure: this build, and the baseline when one is named.
fn binaries() -> Vec<(&'static str, PathBuf)> {
    let mut bins = vec![("tgploy", PathBuf::from(env!("CARGO_BIN_EXE_tgploy")))];
    if let Some(base) = std::env::var_os("TGPLOY_BASELINE_BIN") {
        bins.push(("baseline", PathBuf::from(base)));
    }
    bins
}

/// A world whose S3 server also has the generated bucket `name` of `objects` objects.
async fn synthetic_world(name: &str, objects: usize) -> World {
    World::with(support::s3::S3Server::start_with_synthetic_bucket(name, objects).await).await
}

/// Starts `serve-webhook` of the binary `bin` under `/usr/bin/time -v` (its report ends
/// the logs).
fn start_webhook_timed(w: &World, bin: &Path) -> harness::ServerProc {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v")
        .arg(bin)
        .args(["serve-webhook", "--listen", "127.0.0.1:0"])
        .env_clear()
        .envs(&w.env)
        .stdin(std::process::Stdio::null());
    w.start_server(cmd)
}

/// What a timed run took.
struct Timed {
    secs: f64,
    /// Peak RSS in KiB (from `/usr/bin/time -v`).
    rss: Option<u64>,
    /// CPU seconds, user and system (from `/usr/bin/time -v`).
    cpu: Option<f64>,
    stdout: String,
    stderr: String,
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "n/a (no /usr/bin/time)".into())
}

/// Runs `bin` under `/usr/bin/time -v` when it exists, with the environment `env`.
fn timed(env: &BTreeMap<String, String>, bin: &Path, args: &[&str]) -> Timed {
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-v").arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args).env_clear().envs(env);
    let start = Instant::now();
    let out = cmd.output().expect("run");
    let secs = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{} {args:?}: {stderr}", bin.display());
    let field = |name: &str| {
        stderr.lines().find_map(|l| l.trim().strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok()))
    };
    let rss = field("Maximum resident set size (kbytes): ").map(|k| k as u64);
    let cpu = field("User time (seconds): ").zip(field("System time (seconds): ")).map(|(u, s)| u + s);
    Timed { secs, rss, cpu, stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr }
}

/// [`timed`] off the async runtime, whose servers the binary talks to.
async fn timed_async(w: &World, bin: &Path, args: &[&str]) -> Timed {
    let (env, bin) = (w.env.clone(), bin.to_path_buf());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        timed(&env, &bin, &args)
    })
    .await
    .expect("join")
}

/// Counts the part files under `dir` every few milliseconds until stopped; returns the
/// most seen at once.
struct PartFileWatch {
    stop: Arc<AtomicBool>,
    most: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl PartFileWatch {
    fn start(dir: PathBuf) -> PartFileWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let most = Arc::new(AtomicUsize::new(0));
        let (s, m) = (stop.clone(), most.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let n = count_part_files(&dir);
                m.fetch_max(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        PartFileWatch { stop, most, thread }
    }

    fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.most.load(Ordering::Relaxed)
    }
}

fn count_part_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                count_part_files(&path)
            } else {
                usize::from(e.file_name().to_string_lossy().starts_with("part-"))
            }
        })
        .sum()
}

/// `gib` GiB of pseudo-random bytes, written in 16 MiB pieces.
fn write_gib(path: &Path, gib: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..64 * gib {
        f.write_all(&data(16 << 20, i)).unwrap();
    }
}

fn source(w: &World) -> tgploy::source::S3Source {
    tgploy::source::S3Source::new(&tgploy::config::S3Settings {
        endpoint: w.s3.endpoint(),
        region: "us-east-1".into(),
        access_key: crate::support::s3::ACCESS_KEY.into(),
        secret_key: tgploy::config::Secret::new(crate::support::s3::SECRET_KEY),
    })
}

/// The raw S3 leg: GETs of the whole object with tgploy's S3 client, bytes dropped: one
/// GET of it all (`window` = size), or one ranged GET per part, one after the other.
async fn raw_get(w: &World, bucket: &str, key: &str, size: u64, window: u64) -> f64 {
    let source = source(w);
    let etag = source.head(bucket, key).await.unwrap().etag;
    let start = Instant::now();
    let mut got = 0u64;
    while got < size {
        let len = window.min(size - got);
        let mut body = source.get(bucket, key, &etag, got, len, size).await.unwrap();
        while let Some(chunk) = body.next_chunk().await.unwrap() {
            got += chunk.len() as u64;
        }
    }
    assert_eq!(got, size);
    start.elapsed().as_secs_f64()
}

/// The raw Telegram leg: the same parts, read from a file, uploaded one after another as
/// plain multipart sendDocument requests to the same fake.
async fn raw_upload(w: &World, file: &Path, part_size: u64) -> f64 {
    let client = reqwest::Client::new();
    let url = format!("{}/bot{}/sendDocument", w.tg.url(), telegram::TOKEN);
    let size = std::fs::metadata(file).unwrap().len();
    let start = Instant::now();
    let mut offset = 0;
    while offset < size {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let len = part_size.min(size - offset);
        let mut f = tokio::fs::File::open(file).await.unwrap();
        f.seek(std::io::SeekFrom::Start(offset)).await.unwrap();
        let stream = tokio_util::io::ReaderStream::with_capacity(f.take(len), 1 << 20);
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
            .file_name(format!("raw.part{offset}"));
        let form = reqwest::multipart::Form::new().text("chat_id", crate::harness::BACKUP_CHAT).part("document", part);
        let resp = client.post(&url).multipart(form).send().await.unwrap();
        assert!(resp.status().is_success(), "{:?}", resp.text().await);
        offset += len;
    }
    start.elapsed().as_secs_f64()
}

/// P1 and P2: a 1 GiB and a 4 GiB object (19 MiB parts), against the slower raw leg of
/// the same run; peak memory; the most part files on disk at once.
async fn bench_deliver_large_objects() {
    let sizes: Vec<u64> = std::env::var("BENCH_GIB")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4]);
    for gib in sizes {
        let mut w = World::with_listed_etags().await;
        w.set_env("TGPLOY_PART_SIZE", "19MiB");
        // With BENCH_TRACE=1 the timing of each part is shown.
        if std::env::var_os("BENCH_TRACE").is_some() {
            w.set_env("TGPLOY_LOG", "tgploy=debug");
        }
        w.s3.create_bucket("bench").await;
        let file = w.dir.path().join("big.bin");
        write_gib(&file, gib);
        let expected = file_sha256(&file);
        w.s3.put_file("bench", "big.bin", &file).await;
        let size = gib << 30;
        let parts = size.div_ceil(19 << 20);

        let get = raw_get(&w, "bench", "big.bin", size, size).await;
        let ranged = raw_get(&w, "bench", "big.bin", size, 19 << 20).await;
        // Two regimes: the fake takes uploads as fast as they come (the S3 leg is the
        // slower one), or at 64 MiB/s, like a fast line to Telegram (the upload leg is).
        for rate in [None, Some(64u64 << 20)] {
            w.tg.set_upload_rate(rate);
            let regime = match rate {
                None => "uploads unthrottled".to_string(),
                Some(r) => format!("uploads at {} MiB/s", r >> 20),
            };
            let upload = raw_upload(&w, &file, 19 << 20).await;
            let slower = get.max(upload);
            println!(
                "BENCH {gib} GiB raw legs ({regime}): S3 GET {get:.2} s ({:.0} MiB/s; as {parts} ranged GETs \
                 {ranged:.2} s), multipart upload of the {parts} parts {upload:.2} s ({:.0} MiB/s); one after the \
                 other {:.2} s",
                (size >> 20) as f64 / get,
                (size >> 20) as f64 / upload,
                get + upload
            );
            for (label, bin) in binaries() {
                let ledger = w.dir.path().join(format!("{label}-{}.sqlite3", rate.unwrap_or(0)));
                w.set_env("DATABASE_PATH", &ledger.display().to_string());
                let before = w.tg.documents().len();
                let watch = PartFileWatch::start(w.dir.path().join("tmp"));
                let run = timed_async(&w, &bin, &["sync"]).await;
                let most = watch.finish();
                if std::env::var_os("BENCH_TRACE").is_some() {
                    run.stderr.lines().filter(|l| l.contains("part")).for_each(|l| println!("BENCH trace {l}"));
                }
                let docs = w.tg.documents();
                let manifest =
                    docs[before..].iter().rev().find(|d| d.file_name == "big.bin.tgploy.json").expect("manifest");
                let m: serde_json::Value = serde_json::from_slice(&manifest.bytes()).unwrap();
                assert_eq!(m["sha256"], expected.as_str());
                assert_eq!(m["parts"].as_array().unwrap().len() as u64, parts);
                println!(
                    "BENCH {label} delivers {gib} GiB ({regime}): {:.2} s ({:.0} MiB/s) = {:.2} x the slower raw leg \
                     ({:.2} x the ranged GETs), {:.2} x both legs in a row; {} CPU s; peak RSS {}; at most {most} \
                     part files on disk",
                    run.secs,
                    (size >> 20) as f64 / run.secs,
                    run.secs / slower,
                    run.secs / ranged.max(upload),
                    run.secs / (get + upload),
                    run.cpu.map(|c| format!("{c:.1}")).unwrap_or_else(|| "?".into()),
                    mib(run.rss),
                );
            }
        }
        std::fs::remove_file(&file).unwrap();
    }
}

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
        write_gib(&file, 1);
        let expected = file_sha256(&file);
        w.s3.put_file("bench", "big.bin", &file).await;
        std::fs::remove_file(&file).unwrap();
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_tgploy"));
        let sent = timed_async(&w, &bin, &["sync"]).await;

        let out = w.dir.path().join("restored.bin");
        let mut args = vec!["restore".to_string(), "bench/big.bin".into(), "--out".into(), out.display().to_string()];
        if encrypted {
            args.extend(["--identity".into(), key.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = timed_async(&w, &bin, &args).await;
        assert_eq!(file_sha256(&out), expected);
        println!(
            "BENCH restore 1 GiB ({}, 19 MiB parts, from the ledger): {:.2} s, {:.1} MiB/s, peak RSS {}; \
             its delivery took {:.2} s",
            if encrypted { "age-encrypted, decrypted" } else { "plain" },
            run.secs,
            1024.0 / run.secs,
            mib(run.rss),
            sent.secs,
        );
    }
}

/// The raw work of a restore: each of `file_ids` located (`getFile`) and downloaded,
/// `jobs` at a time, the bytes counted and dropped. Returns the seconds taken.
/// Seconds to write `n` files of `size` bytes under `dir` as a careful writer does (a new
/// file beside the name, written, synced, renamed), `threads` at a time: the filesystem's
/// part of restoring `n` small objects, which no restore can go below.
async fn raw_file_writes(dir: &Path, n: usize, size: usize, threads: usize) -> f64 {
    use std::io::Write;
    std::fs::create_dir_all(dir).unwrap();
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                let dir = &dir;
                s.spawn(move || {
                    for i in (t..n).step_by(threads) {
                        let (tmp, path) = (dir.join(format!(".{i:06}.partial")), dir.join(format!("{i:06}")));
                        let mut f = std::fs::File::create_new(&tmp).unwrap();
                        f.write_all(&data(size, i as u64)).unwrap();
                        f.sync_all().unwrap();
                        std::fs::rename(&tmp, &path).unwrap();
                    }
                });
            }
        });
        std::fs::File::open(&dir).unwrap().sync_all().unwrap();
        let secs = start.elapsed().as_secs_f64();
        std::fs::remove_dir_all(&dir).unwrap();
        secs
    })
    .await
    .unwrap()
}

async fn raw_downloads(w: &World, file_ids: &[String], jobs: usize) -> f64 {
    let client = reqwest::Client::new();
    let base = w.tg.url();
    let start = Instant::now();
    let total: u64 = futures_util::stream::iter(file_ids)
        .map(|id| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let located: serde_json::Value = client
                    .post(format!("{base}/bot{}/getFile", telegram::TOKEN))
                    .json(&serde_json::json!({ "file_id": id }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let path = located["result"]["file_path"].as_str().unwrap().to_string();
                let mut body = client.get(format!("{base}/file/bot{}/{path}", telegram::TOKEN)).send().await.unwrap();
                let mut n = 0u64;
                while let Some(chunk) = body.chunk().await.unwrap() {
                    n += chunk.len() as u64;
                }
                n
            }
        })
        .buffer_unordered(jobs)
        .fold(0u64, |a, n| async move { a + n })
        .await;
    assert!(total > 0);
    start.elapsed().as_secs_f64()
}

/// The file ids of the parts of every delivered object, in the order `restore --all`
/// takes them (bucket, key, part).
fn part_file_ids(w: &World, bucket: Option<&str>) -> Vec<String> {
    let filter = bucket.map(|b| format!("AND d.bucket = '{b}'")).unwrap_or_default();
    w.query(&format!(
        "SELECT p.file_id FROM parts p JOIN deliveries d ON d.id = p.delivery_id WHERE d.state = 'sent' {filter}
         ORDER BY d.bucket, d.key, p.idx"
    ))
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

/// P6: `restore --all` of 24 dumps of 2 MiB and a 45 MiB tarball in two buckets, and a
/// single 200 MiB object, against locating and downloading the same parts four at a time
/// from the same fake, whose file servers give each download 4 MiB/s; then the peak
/// memory of `restore --all` over 10,000 objects.
async fn bench_restore_all() {
    let mut w = World::with_listed_etags().await;
    w.set_env("TGPLOY_PART_SIZE", "19MiB");
    for bucket in ["dumps", "archive"] {
        w.s3.create_bucket(bucket).await;
    }
    for i in 0..24 {
        w.s3.put("dumps", &format!("db/{i:02}.sql.gz"), data(2 << 20, i)).await;
    }
    w.s3.put("archive", "etc.tar", data(45 << 20, 100)).await;
    let big = w.dir.path().join("big.bin");
    std::fs::write(&big, data(200 << 20, 200)).unwrap();
    w.s3.create_bucket("single").await;
    w.s3.put_file("single", "big.bin", &big).await;
    let expected_big = file_sha256(&big);
    std::fs::remove_file(&big).unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tgploy"));
    timed_async(&w, &bin, &["sync"]).await;
    w.tg.set_download_rate(Some(4 << 20));

    let single = part_file_ids(&w, Some("single"));
    let set: Vec<String> = part_file_ids(&w, None).into_iter().filter(|id| !single.contains(id)).collect();
    let raw = raw_downloads(&w, &set, 4).await;
    let dir = w.dir.path().join("all");
    let run = timed_async(
        &w,
        &bin,
        &[
            "restore",
            "--all",
            "--bucket",
            "dumps",
            "--bucket",
            "archive",
            "--jobs",
            "4",
            "--out",
            dir.to_str().unwrap(),
        ],
    )
    .await;
    assert!(run.stdout.contains("restored 25 of 25"), "{}", run.stdout);
    println!(
        "BENCH P6 restore --all of 25 objects (24 x 2 MiB, 45 MiB; {} parts) at 4 MiB/s per download, 4 jobs: {:.2} s = {:.2}x locating and downloading the same parts 4 at a time ({:.2} s); peak RSS {}",
        set.len(),
        run.secs,
        run.secs / raw,
        raw,
        mib(run.rss)
    );

    let raw = raw_downloads(&w, &single, 4).await;
    let out = w.dir.path().join("big.restored");
    let run =
        timed_async(&w, &bin, &["restore", "single/big.bin", "--jobs", "4", "--out", out.to_str().unwrap()]).await;
    assert_eq!(file_sha256(&out), expected_big);
    println!(
        "BENCH P6 restore of one 200 MiB object ({} parts of 19 MiB) at 4 MiB/s per download, 4 jobs: {:.2} s = {:.2}x its parts' download 4 at a time ({:.2} s); peak RSS {}",
        single.len(),
        run.secs,
        run.secs / raw,
        raw,
        mib(run.rss)
    );
    std::fs::remove_file(&out).unwrap();

    // 10,000 objects: one small delivered object stands for all of them in the ledger
    // (the same Telegram document), so only the restore's own memory is measured.
    w.tg.set_download_rate(None);
    let n: usize = std::env::var("BENCH_OBJECTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    w.s3.create_bucket("many").await;
    w.s3.put("many", "seed", data(4096, 7)).await;
    timed_async(&w, &bin, &["sync", "--bucket", "many"]).await;
    {
        let conn = rusqlite::Connection::open(w.ledger_path()).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        let seed: i64 = tx.query_row("SELECT id FROM deliveries WHERE key = 'seed'", [], |r| r.get(0)).unwrap();
        for i in 0..n {
            tx.execute(
                "INSERT INTO deliveries (bucket, key, etag, size, last_modified_ms, state, part_size, sha256, created_at,
                    updated_at, sent_at, encrypted)
                 SELECT bucket, printf('k/%06d', ?2), etag, size, last_modified_ms, state, part_size, sha256, created_at,
                    updated_at, sent_at, encrypted FROM deliveries WHERE id = ?1",
                rusqlite::params![seed, i as i64],
            )
            .unwrap();
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO parts (delivery_id, idx, offset, size, sha256, file_name, message_id, file_id,
                    file_unique_id, sent_at)
                 SELECT ?2, idx, offset, size, sha256, file_name, message_id, file_id, file_unique_id, sent_at
                 FROM parts WHERE delivery_id = ?1",
                rusqlite::params![seed, id],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let many = w.dir.path().join("many");
    let run =
        timed_async(&w, &bin, &["restore", "--all", "--bucket", "many", "--out", many.to_str().unwrap(), "--json"])
            .await;
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["restored"].as_u64().unwrap() as usize, n + 1);
    println!(
        "BENCH P6 restore --all of {} objects of 4 KiB: {:.2} s ({:.0} objects/s), peak RSS {}",
        n + 1,
        run.secs,
        (n + 1) as f64 / run.secs,
        mib(run.rss)
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

/// Lists a bucket page by page with tgploy's S3 client, keeping only the count: what a
/// no-op sync cannot do faster.
async fn listing_alone(w: &World, bucket: &str) -> (f64, u64) {
    let source = source(w);
    let start = Instant::now();
    let mut listing = source.list_pages(bucket);
    let mut n = 0;
    while let Some(page) = listing.next_page().await.unwrap() {
        n += page.len() as u64;
    }
    (start.elapsed().as_secs_f64(), n)
}

/// The first sync of many small objects (pacing off), then no-op syncs over them,
/// against the listing alone.
async fn bench_sync_10000_small_objects() {
    let n: usize = std::env::var("BENCH_SMALL_OBJECTS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    for listed_etags in [true, false] {
        let mut w = if listed_etags { World::with_listed_etags().await } else { World::new().await };
        w.s3.create_bucket("many").await;
        put_many(&w, "many", n).await;
        let mode = if listed_etags { "listing with ETags" } else { "listing without ETags, ETag cache" };
        let bins = if listed_etags { binaries() } else { binaries().into_iter().take(1).collect() };
        for (label, bin) in bins {
            w.set_env("DATABASE_PATH", &w.dir.path().join(format!("{label}.sqlite3")).display().to_string());
            let before = w.tg.documents().len();
            let first = timed_async(&w, &bin, &["sync"]).await;
            assert_eq!(w.tg.documents().len() - before, n);
            let heads = w.s3.head_count();
            let mut runs = Vec::new();
            for _ in 0..3 {
                let run = timed_async(&w, &bin, &["sync", "--json"]).await;
                assert!(run.stdout.contains("\"sent\": 0"), "{}", run.stdout);
                runs.push(run);
            }
            assert_eq!(w.s3.head_count(), heads, "no HEAD on a no-op sync");
            let (list_secs, listed) = listing_alone(&w, "many").await;
            assert_eq!(listed, n as u64);
            let best = runs.iter().map(|r| r.secs).fold(f64::INFINITY, f64::min);
            println!(
                "BENCH {label} first sync of {n} small objects ({mode}, pacing off): {:.1} s, {:.0} objects/s, \
                 peak RSS {}",
                first.secs,
                n as f64 / first.secs,
                mib(first.rss)
            );
            println!(
                "BENCH {label} no-op sync over {n} objects ({mode}): best {best:.2} s of {:?} = {:.2} x the listing \
                 alone ({list_secs:.2} s); peak RSS {}",
                runs.iter().map(|r| (r.secs * 100.0).round() / 100.0).collect::<Vec<_>>(),
                best / list_secs,
                mib(runs[0].rss),
            );
        }
    }
}

/// P5: a no-op sync over a million recorded objects: peak memory and time against the
/// listing alone, on a server that lists at the speed of the protocol.
async fn bench_no_op_sync_over_a_million_recorded_objects() {
    let n: usize = std::env::var("BENCH_OBJECTS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let mut w = synthetic_world("synth", n).await;
    for (label, bin) in binaries() {
        w.set_env("DATABASE_PATH", &w.dir.path().join(format!("{label}.sqlite3")).display().to_string());
        // Recorded as skipped, the way an operator starts on a full bucket.
        let record = timed_async(&w, &bin, &["buckets", "enable", "synth", "--from-now"]).await;
        let (list_before, _) = listing_alone(&w, "synth").await;
        let mut runs = Vec::new();
        for _ in 0..2 {
            let run = timed_async(&w, &bin, &["sync", "--json"]).await;
            assert!(run.stdout.contains("\"sent\": 0"), "{}", run.stdout);
            runs.push(run);
        }
        let (list_after, listed) = listing_alone(&w, "synth").await;
        assert_eq!(listed, n as u64);
        let listing = list_before.min(list_after);
        let best = runs.iter().map(|r| r.secs).fold(f64::INFINITY, f64::min);
        let rss = runs.iter().filter_map(|r| r.rss).max();
        println!(
            "BENCH {label} records {n} objects (buckets enable --from-now): {:.1} s, peak RSS {}",
            record.secs,
            mib(record.rss)
        );
        println!(
            "BENCH {label} no-op sync over {n} recorded objects: best {best:.2} s of {:?} = {:.2} x the listing alone \
             ({listing:.2} s); peak RSS {}",
            runs.iter().map(|r| (r.secs * 100.0).round() / 100.0).collect::<Vec<_>>(),
            best / listing,
            mib(rss),
        );
    }
}

async fn bench_retry_drains_500_due_failures() {
    for (label, bin) in binaries() {
        let w = World::with_listed_etags().await;
        w.s3.create_bucket("fail").await;
        put_many(&w, "fail", 500).await;
        // Every upload is refused (413) so that all 500 deliveries fail once.
        w.tg.set_upload_limit(1);
        let out = w.command(&["sync"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(w.query("SELECT COUNT(*) FROM deliveries WHERE state = 'failed'"), [["500"]]);

        w.tg.set_upload_limit(50 * 1024 * 1024);
        let run = timed_async(&w, &bin, &["retry", "--now", "--json"]).await;
        assert!(run.stdout.contains("\"sent\": 500"), "{}", run.stdout);
        assert_eq!(w.query("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'"), [["500"]]);
        println!(
            "BENCH {label} retry drains 500 due failures: {:.2} s ({:.0} deliveries/s), peak RSS {}",
            run.secs,
            500.0 / run.secs,
            mib(run.rss)
        );
    }
}

/// P7: a batch of small objects under the fake's flood limit for each (bot, chat) pair,
/// by one bot and by three, in the same run. The limit is Telegram's in a group, ten times
/// faster to keep the run short (20 messages in any 6 s); tgploy is paced 5 % under it,
/// since a pace exactly at a sliding window's limit meets it whenever one answer comes a
/// few milliseconds later than the next.
async fn bench_three_bots_against_one_under_flood_control() {
    let n: usize = std::env::var("BENCH_MESSAGES").ok().and_then(|s| s.parse().ok()).unwrap_or(150);
    for (label, bin) in binaries() {
        let mut secs = Vec::new();
        for bots in [1, 3] {
            let mut w = World::with_listed_etags().await;
            w.tg.add_bot(telegram::TOKEN_2, telegram::BOT_USERNAME_2);
            w.tg.add_bot(telegram::TOKEN_3, telegram::BOT_USERNAME_3);
            if bots == 3 {
                w.set_env("TELEGRAM_BOT_TOKENS", &format!("{},{}", telegram::TOKEN_2, telegram::TOKEN_3));
            }
            w.set_env("TGPLOY_MESSAGES_PER_MINUTE", "190");
            w.tg.set_flood_limit(20, Duration::from_secs(6));
            w.s3.create_bucket("many").await;
            put_many(&w, "many", n).await;
            let run = timed_async(&w, &bin, &["sync", "--json"]).await;
            assert!(run.stdout.contains(&format!("\"sent\": {n}")), "{}", run.stdout);
            let docs = w.tg.documents();
            assert_eq!(docs.len(), n, "one document per object");
            let used: std::collections::BTreeSet<i64> = docs.iter().map(|d| d.bot_id).collect();
            assert_eq!(used.len(), bots, "bots used");
            // Every byte as in S3.
            for d in &docs {
                let key = w.query(&format!(
                    "SELECT d.key FROM parts p JOIN deliveries d ON d.id = p.delivery_id WHERE p.file_id = '{}'",
                    d.file_id
                ));
                let i: usize = key[0][0].rsplit('/').next().unwrap().trim_end_matches(".sql.gz").parse().unwrap();
                assert_eq!(d.bytes(), format!("dump {i}").into_bytes(), "{}", key[0][0]);
            }
            let refusals = w.tg.flood_refusals();
            println!(
                "BENCH {label} {n} small objects, {bots} bot(s), 20 messages per 6 s per (bot, chat): {:.2} s \
                 ({:.1} messages/s), {refusals} answers 429 ({:.2} per 100 messages)",
                run.secs,
                n as f64 / run.secs,
                refusals as f64 * 100.0 / n as f64
            );
            assert!(refusals * 100 <= n, "at most 1 answer 429 per 100 messages: {refusals}");
            secs.push(run.secs);
        }
        println!("BENCH {label} three bots deliver {:.2} x as fast as one", secs[0] / secs[1]);
    }
}

/// P4: `serve-webhook` under 16 concurrent senders while deliveries run; every 2xx
/// durable (checked against the ledger afterwards).
async fn bench_webhook_accepts_events() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    for (label, bin) in binaries() {
        let w = World::with_listed_etags().await;
        w.s3.create_bucket("load").await;
        let server = start_webhook_timed(&w, &bin);
        let url = format!("{}/webhook", server.url);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let workers = 16;
        let mut latencies = harness::post_events(&url, "load", workers, harness::Until::Deadline(deadline)).await;
        latencies.sort();
        let total = latencies.len();
        let committed: usize = w.query("SELECT COUNT(*) FROM deliveries")[0][0].parse().unwrap();
        assert_eq!(committed, total, "every accepted event is in the ledger");
        let deliveries_done: usize =
            w.query("SELECT COUNT(*) FROM deliveries WHERE state != 'pending'")[0][0].parse().unwrap();
        // The server runs under /usr/bin/time: signal tgploy itself, not the wrapper.
        let pid = server.child.id();
        let tgploy_pid = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let tgploy_pid = tgploy_pid.split_whitespace().next().expect("tgploy under time").to_string();
        Command::new("kill").args(["-TERM", &tgploy_pid]).status().unwrap();
        let (_, logs) = server.stop("CONT", Duration::from_secs(120)).await;
        let rss = logs
            .lines()
            .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
            .and_then(|v| v.trim().parse().ok());
        let pct = |p: f64| latencies[((total as f64 * p) as usize).min(total - 1)];
        println!(
            "BENCH {label} serve-webhook over {seconds} s, {workers} concurrent senders: {total} events committed, \
             {:.0} events/s, latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms; {deliveries_done} deliveries worked \
             meanwhile; server peak RSS {}",
            total as f64 / seconds as f64,
            pct(0.50).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0,
            latencies[total - 1].as_secs_f64() * 1000.0,
            mib(rss),
        );
    }
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

async fn bench_dashboard_pages_with_100000_deliveries() {
    let requests: usize = std::env::var("BENCH_REQUESTS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let w = World::new().await;
    let start = Instant::now();
    fill_ledger(&w, 100_000);
    let fill_secs = start.elapsed().as_secs_f64();
    let ledger = tgploy::ledger::Ledger::open(&w.ledger_path()).unwrap();
    tgploy::dashboard::auth::set_password(&ledger, crate::dashboard_client::PASSWORD, None).unwrap();
    let enrolment = tgploy::totp::new_enrolment("bench").unwrap();
    tgploy::totp::store(&ledger, &enrolment).unwrap();
    drop(ledger);
    let server = w.start_dashboard();
    let mut c = crate::dashboard_client::Client::new(&server.url);
    let reply = c.sign_in(crate::dashboard_client::PASSWORD, &enrolment.recovery_codes[0]).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let deep = w.query(
        "SELECT sent_at, id FROM deliveries WHERE state = 'sent' ORDER BY sent_at DESC, id DESC LIMIT 1 OFFSET 60000",
    );
    let css = c.get("/").await.stylesheet();
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

/// A process's CPU time (user and system, in seconds) and resident memory (KiB), from
/// `/proc/PID/stat` and `/proc/PID/status`.
fn cpu_and_rss(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    // Clock ticks are a hundredth of a second on Linux (`getconf CLK_TCK`).
    Some((ticks / 100.0, rss))
}

/// Samples a process's CPU time and memory every second until stopped.
struct ProcWatch {
    stop: Arc<AtomicBool>,
    samples: Arc<std::sync::Mutex<Vec<(Instant, f64, u64)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProcWatch {
    fn start(pid: u32) -> ProcWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some((cpu, rss)) = cpu_and_rss(pid) {
                    out.lock().unwrap().push((Instant::now(), cpu, rss));
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        ProcWatch { stop, samples, thread: Some(thread) }
    }

    /// RSS (KiB) at each `n`th of the way from `from` to `to`, both ends included.
    fn rss_along(&self, from: Instant, to: Instant, n: u32) -> Vec<u64> {
        let samples = self.samples.lock().unwrap();
        (0..=n)
            .filter_map(|i| {
                let at = from + to.duration_since(from) * i / n;
                samples.iter().min_by_key(|(t, _, _)| if *t > at { *t - at } else { at - *t }).map(|(_, _, rss)| *rss)
            })
            .collect()
    }

    /// CPU (% of one core), and the first, last and largest RSS (KiB), between two
    /// instants.
    fn between(&self, from: Instant, to: Instant) -> (f64, u64, u64, u64) {
        let samples = self.samples.lock().unwrap();
        let within: Vec<&(Instant, f64, u64)> = samples.iter().filter(|(t, _, _)| *t >= from && *t <= to).collect();
        let (Some(first), Some(last)) = (within.first(), within.last()) else { return (0.0, 0, 0, 0) };
        let secs = last.0.duration_since(first.0).as_secs_f64().max(1e-9);
        let max = within.iter().map(|(_, _, rss)| *rss).max().unwrap_or(0);
        ((last.1 - first.1) / secs * 100.0, first.2, last.2, max)
    }
}

impl Drop for ProcWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// When each part of the deliveries after `after` was committed, and when each was sent,
/// as a reader of the ledger sees it every 5 ms.
struct CommitWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<std::sync::Mutex<Commits>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Commits = (HashMap<(i64, u32), Instant>, HashMap<i64, Instant>);

impl CommitWatch {
    fn start(ledger: PathBuf, after: i64) -> CommitWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new((HashMap::new(), HashMap::new())));
        let (s, out) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&ledger).unwrap();
            conn.busy_timeout(Duration::from_secs(30)).unwrap();
            while !s.load(Ordering::Relaxed) {
                let parts: Vec<(i64, u32)> = conn
                    .prepare_cached(
                        "SELECT delivery_id, COUNT(*) FROM parts WHERE delivery_id > ?1 GROUP BY delivery_id",
                    )
                    .unwrap()
                    .query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let sent: Vec<i64> = conn
                    .prepare_cached("SELECT id FROM deliveries WHERE id > ?1 AND state = 'sent'")
                    .unwrap()
                    .query_map([after], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let now = Instant::now();
                let mut seen = out.lock().unwrap();
                for (id, n) in parts {
                    for k in 1..=n {
                        seen.0.entry((id, k)).or_insert(now);
                    }
                }
                for id in sent {
                    seen.1.entry(id).or_insert(now);
                }
                drop(seen);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        CommitWatch { stop, seen, thread: Some(thread) }
    }

    fn finish(mut self) -> Commits {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// What one live stream showed, and when it first did: each delivery with at least k
/// parts done in flight, each delivery among the latest as sent.
#[derive(Default)]
struct Shown {
    parts: HashMap<i64, Vec<(u32, Instant)>>,
    sent: HashMap<i64, Instant>,
    updates: usize,
    bytes: usize,
}

impl Shown {
    /// When the stream first showed part `k` of delivery `id` committed (or the delivery
    /// sent).
    fn first(&self, id: i64, k: u32) -> Option<Instant> {
        let in_flight = self.parts.get(&id).and_then(|seen| seen.iter().find(|(done, _)| *done >= k).map(|(_, t)| *t));
        match (in_flight, self.sent.get(&id)) {
            (Some(a), Some(b)) => Some(a.min(*b)),
            (a, b) => a.or(b.copied()),
        }
    }
}

/// Reads the overview's live stream until `stop`, noting what it showed.
async fn follow(c: dashboard_client::Client, stop: Arc<tokio::sync::Notify>) -> Shown {
    let mut stream = dashboard_client::Stream::open(&c, "overview", None).await;
    assert_eq!(stream.status, 200);
    let mut shown = Shown::default();
    loop {
        let event = tokio::select! {
            event = stream.next(Duration::from_secs(600)) => event,
            _ = stop.notified() => break,
        };
        let Some(event) = event else { break };
        if event.event.as_deref() != Some("update") {
            continue;
        }
        let now = Instant::now();
        shown.updates += 1;
        shown.bytes += event.data.len();
        let update = event.update();
        if let Some(flying) = update["regions"]["live-inflight"].as_str() {
            for row in flying.split("<tr data-delivery=\"").skip(1) {
                let id: i64 = row.split('"').next().and_then(|v| v.parse().ok()).unwrap_or(0);
                let done: u32 =
                    row.split("data-done=\"").nth(1).and_then(|v| v.split('"').next()?.parse().ok()).unwrap_or(0);
                let seen = shown.parts.entry(id).or_default();
                if seen.last().is_none_or(|(d, _)| *d < done) {
                    seen.push((done, now));
                }
            }
        }
        if let Some(latest) = update["regions"]["live-latest"].as_str() {
            for row in latest.split("<tr data-delivery=\"").skip(1) {
                if let Some(id) = row.split('"').next().and_then(|v| v.parse().ok()) {
                    shown.sent.entry(id).or_insert(now);
                }
            }
        }
    }
    shown
}

/// Rounds until `until`: each a new object of `size` bytes in the bucket `live`, delivered
/// by one `sync` and checked against its manifest. Returns each round's seconds.
async fn delivery_rounds(w: &World, bin: &Path, round: &mut u64, size: usize, until: Instant) -> Vec<f64> {
    let mut times = Vec::new();
    while Instant::now() < until {
        *round += 1;
        let bytes = data(size, 1000 + *round);
        let expected = crate::harness::sha256_hex(&bytes);
        let key = format!("round-{round:04}.bin");
        w.s3.put("live", &key, bytes).await;
        let before = w.tg.documents().len();
        let run = timed_async(w, bin, &["sync", "--bucket", "live"]).await;
        let docs = w.tg.documents();
        let manifest = docs[before..].iter().find(|d| d.file_name.ends_with(".tgploy.json")).expect("a manifest");
        let m: serde_json::Value = serde_json::from_slice(&manifest.bytes()).unwrap();
        assert_eq!(m["sha256"], expected.as_str(), "{key}");
        // The disk is kept: the parts were checked through their manifest.
        for d in &docs[before..] {
            let _ = std::fs::remove_file(&d.path);
        }
        w.s3.client().delete_object().bucket("live").key(&key).send().await.unwrap();
        times.push(run.secs);
    }
    times
}

/// The live dashboard: `BENCH_STREAMS` (100) streams of the overview open for
/// `BENCH_LIVE_SECONDS` (300) while `sync` delivers one object after another (128 MiB in
/// 8 MiB parts, S3 and the fake Bot API as fast as they go), over a ledger of
/// `BENCH_LIVE_DELIVERIES` (100,000) deliveries; against the same deliveries with no
/// viewer, before and after, in the same run. The dashboard's CPU and memory come from
/// /proc; how long after a part's commit each stream showed it, from a reader of the
/// ledger that looks every 5 ms.
async fn bench_live_dashboard_streams() {
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let seconds = env("BENCH_LIVE_SECONDS", 300);
    let streams = env("BENCH_STREAMS", 100) as usize;
    let filled = env("BENCH_LIVE_DELIVERIES", 100_000) as usize;
    let (size, part) = (128usize << 20, 8u64 << 20);

    let mut w = World::with_listed_etags().await;
    w.set_env("TGPLOY_PART_SIZE", &part.to_string());
    fill_ledger(&w, filled);
    // The filled buckets are not on the S3 server: off, and nothing of theirs pending.
    w.execute("UPDATE buckets SET enabled = 0");
    w.execute("UPDATE deliveries SET state = 'dead', next_attempt_at = NULL WHERE state = 'pending'");
    let after: i64 = w.query("SELECT MAX(id) FROM deliveries")[0][0].parse().unwrap();
    let ledger = tgploy::ledger::Ledger::open(&w.ledger_path()).unwrap();
    tgploy::dashboard::auth::set_password(&ledger, dashboard_client::PASSWORD, None).unwrap();
    let enrolment = tgploy::totp::new_enrolment("bench").unwrap();
    tgploy::totp::store(&ledger, &enrolment).unwrap();
    drop(ledger);
    w.s3.create_bucket("live").await;
    let server = w.start_dashboard();
    let procs = ProcWatch::start(server.child.id());
    // This process plays the S3 server, the Bot API and the browsers.
    let here = ProcWatch::start(std::process::id());
    let mut c = dashboard_client::Client::new(&server.url);
    let reply = c.sign_in(dashboard_client::PASSWORD, &enrolment.recovery_codes[0]).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let commits = CommitWatch::start(w.ledger_path(), after);

    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tgploy"));
    let mut round = 0u64;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let half = Duration::from_secs(seconds / 2);

    let idle_from = Instant::now();
    let mut alone = delivery_rounds(&w, &bin, &mut round, size, Instant::now() + half).await;
    let alone_until = Instant::now();

    // The streams open, each with its first update, for `seconds`.
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut readers = Vec::new();
    for _ in 0..streams {
        let mut reader = dashboard_client::Client::new(&server.url);
        reader.cookies = c.cookies.clone();
        readers.push(tokio::spawn(follow(reader, stop.clone())));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let watched_from = Instant::now();
    let watched = delivery_rounds(&w, &bin, &mut round, size, Instant::now() + Duration::from_secs(seconds)).await;
    let watched_until = Instant::now();
    stop.notify_waiters();
    let mut shown = Vec::new();
    for r in readers {
        shown.push(r.await.unwrap());
    }
    let after_from = Instant::now();
    alone.extend(delivery_rounds(&w, &bin, &mut round, size, Instant::now() + half).await);
    let after_until = Instant::now();
    let (commit_times, sent_times) = commits.finish();

    // From each part's commit to each stream showing it.
    let mut latencies = Vec::new();
    let mut missed = 0;
    for ((id, k), committed) in &commit_times {
        if *committed < watched_from || *committed > watched_until {
            continue;
        }
        for s in &shown {
            match s.first(*id, *k) {
                Some(t) => latencies.push(t.saturating_duration_since(*committed)),
                None => missed += 1,
            }
        }
    }
    latencies.sort();
    let ms = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    let updates: usize = shown.iter().map(|s| s.updates).sum();
    let bytes: usize = shown.iter().map(|s| s.bytes).sum();
    let watched_secs = watched_until.duration_since(watched_from).as_secs_f64();
    let (idle_cpu, idle_rss0, _, _) = procs.between(idle_from, alone_until);
    let (cpu, rss0, rss1, rss_max) = procs.between(watched_from, watched_until);
    let (after_cpu, _, after_rss, _) = procs.between(after_from, after_until);
    let along = procs.rss_along(watched_from, watched_until, 5);
    let (here_idle, ..) = here.between(idle_from, alone_until);
    let (here_watched, ..) = here.between(watched_from, watched_until);
    let kib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    let (alone_n, watched_n) = (alone.len(), watched.len());
    let (alone_m, watched_m) = (median(alone), median(watched.clone()));
    println!(
        "BENCH live dashboard: {streams} streams of the overview for {watched_secs:.0} s over a ledger of {filled} \
         deliveries, while sync delivers 128 MiB objects (8 MiB parts) one after another"
    );
    println!(
        "BENCH   delivery with the streams open: median {watched_m:.2} s of {watched_n} rounds = {:.3} x with no \
         viewer (median {alone_m:.2} s of {alone_n} rounds, before and after)",
        watched_m / alone_m
    );
    println!(
        "BENCH   dashboard CPU: {cpu:.1} % of a core with the streams open, {idle_cpu:.1} % before them, \
         {after_cpu:.1} % after; RSS {} when they opened, {} when they closed, at most {}; {} with none before, \
         {} after",
        kib(rss0),
        kib(rss1),
        kib(rss_max),
        kib(idle_rss0),
        kib(after_rss)
    );
    println!(
        "BENCH   dashboard RSS every fifth of the time the streams were open: {}",
        along.iter().map(|k| kib(*k)).collect::<Vec<_>>().join(", ")
    );
    println!(
        "BENCH   this process (S3, the Bot API and the {streams} readers): {here_watched:.0} % of a core with the \
         streams open, {here_idle:.0} % before them"
    );
    println!(
        "BENCH   from a part's commit to its stream showing it: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms over {} \
         (part, stream) pairs ({missed} not shown: the stream closed first); {:.2} updates a second per stream, \
         {:.1} KiB each on average; {} deliveries sent",
        ms(0.50),
        ms(0.95),
        ms(1.0),
        latencies.len(),
        updates as f64 / streams as f64 / watched_secs,
        bytes as f64 / updates.max(1) as f64 / 1024.0,
        sent_times.len()
    );
    drop((procs, here));
    server.kill();
}

/// Puts `n` objects of `size(i)` bytes under `prefix` into `bucket`, 32 at a time.
async fn put_sized(w: &World, bucket: &str, prefix: &str, n: usize, size: impl Fn(usize) -> usize) {
    let client = w.s3.client();
    let puts = (0..n).map(|i| {
        let (client, bucket) = (client.clone(), bucket.to_string());
        let (key, body) = (format!("{prefix}{i:06}"), data(size(i), i as u64));
        async move {
            client.put_object().bucket(bucket).key(key).body(body.into()).send().await.expect("put");
        }
    });
    futures_util::stream::iter(puts).buffer_unordered(32).collect::<Vec<_>>().await;
}

/// P8: packs. 10,000 objects of 4 KiB delivered at the default pace (20 messages a minute
/// for one bot in one chat, under the fake's flood limit of Telegram's 20 a minute), the
/// default part size and threshold; a mixed bucket of 1 KiB to 2 MiB objects; then
/// `restore --all` of the 10,000 against locating and downloading the packs' documents
/// four at a time at 4 MiB/s per download, as P6 does.
async fn bench_packs() {
    let n: usize = std::env::var("BENCH_PACKED_OBJECTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tgploy"));
    let mut w = World::with_listed_etags().await;
    for var in ["TGPLOY_PACK_MAX_OBJECT_SIZE", "TGPLOY_PART_SIZE", "TGPLOY_MESSAGES_PER_MINUTE"] {
        w.unset_env(var);
    }
    w.tg.set_flood_limit(20, Duration::from_secs(60));
    w.s3.create_bucket("small").await;
    put_sized(&w, "small", "conf/", n, |_| 4096).await;
    let run = timed_async(&w, &bin, &["sync", "--json"]).await;
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["sent"].as_u64(), Some(n as u64), "{report}");
    // Every message the chat received, documents included.
    let messages = w.tg.messages().len();
    let packs = report["packs"].as_u64().unwrap_or(0);
    let refusals = w.tg.flood_refusals();
    let (list_secs, _) = listing_alone(&w, "small").await;
    println!(
        "BENCH P8 first sync of {n} objects of 4 KiB at the default pace (20 messages a minute, one bot, one chat, \
         19 MiB parts): {messages} messages ({packs} packs, {:.4} per object), {:.1} s of Telegram's time \
         (one message per object: {:.0} min at that pace), {refusals} answers 429; {:.0} objects/s; the listing \
         alone {list_secs:.2} s; peak RSS {}",
        messages as f64 / n as f64,
        run.secs,
        n as f64 / 20.0,
        n as f64 / run.secs,
        mib(run.rss)
    );

    // A mixed bucket: sizes spread evenly on a log scale from 1 KiB to 2 MiB.
    let mixed: usize = std::env::var("BENCH_MIXED_OBJECTS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    // 0 leaves the mixed bucket out.
    if mixed > 0 {
        let size = move |i: usize| (1024.0 * 2048f64.powf((i * 7919 % mixed) as f64 / mixed as f64)) as usize;
        let small_ones = (0..mixed).filter(|&i| size(i) < 1 << 20).count();
        let mut m = World::with_listed_etags().await;
        for var in ["TGPLOY_PACK_MAX_OBJECT_SIZE", "TGPLOY_PART_SIZE"] {
            m.unset_env(var);
        }
        m.s3.create_bucket("mixed").await;
        put_sized(&m, "mixed", "obj/", mixed, size).await;
        let run = timed_async(&m, &bin, &["sync", "--json"]).await;
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(report["sent"].as_u64(), Some(mixed as u64), "{report}");
        let packed = report["packed"].as_u64().unwrap_or(0);
        let packs = report["packs"].as_u64().unwrap_or(0);
        let alone_small = m
            .query("SELECT COUNT(*) FROM deliveries WHERE pack_id IS NULL AND size < 1048576 AND state = 'sent'")[0][0]
            .parse::<u64>()
            .unwrap();
        println!(
            "BENCH P8 mixed bucket of {mixed} objects of 1 KiB to 2 MiB ({small_ones} below the 1 MiB threshold): \
             {} messages in all; the small ones in {packs} packs ({packed} objects) and {alone_small} alone: \
             {:.4} messages per small object; peak RSS {}",
            m.tg.messages().len(),
            (packs + alone_small) as f64 / small_ones as f64,
            mib(run.rss)
        );
        drop(m);
    }

    // Every object back, each pack downloaded once.
    w.tg.set_download_rate(Some(4 << 20));
    let pack_ids: Vec<String> =
        w.query("SELECT file_id FROM packs ORDER BY id").into_iter().map(|r| r[0].clone()).collect();
    // Three rounds of the raw work and the restore, interleaved; the medians are compared
    // (a shared machine's disk and network move between runs).
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let (mut raws, mut raw_files, mut restores) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fetched, mut rss) = (0, None);
    for round in 0..rounds {
        raws.push(raw_downloads(&w, &pack_ids, 4).await);
        raw_files.push(raw_file_writes(&w.dir.path().join("raw-files"), n, 4096, 4).await);
        let downloads = w.tg.calls("download");
        let dir = w.dir.path().join(format!("back{round}"));
        let run =
            timed_async(&w, &bin, &["restore", "--all", "--jobs", "4", "--out", dir.to_str().unwrap(), "--json"]).await;
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(report["restored"].as_u64(), Some(n as u64), "{report}");
        fetched = w.tg.calls("download") - downloads;
        assert_eq!(fetched, pack_ids.len(), "each pack downloaded once");
        for i in (0..n).step_by(997) {
            let got = std::fs::read(dir.join(format!("small/conf/{i:06}"))).unwrap();
            assert_eq!(got, data(4096, i as u64), "object {i}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        restores.push(run.secs);
        rss = rss.max(run.rss);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (raw, raw_files, secs) = (median(&mut raws), median(&mut raw_files), median(&mut restores));
    println!(
        "BENCH P8 restore --all of {n} objects in {} packs at 4 MiB/s per download, 4 jobs (median of {rounds} \
         rounds; restores {restores:.2?} s): {secs:.2} s = {:.2}x locating and downloading the packs 4 at a time \
         ({raw:.2} s), {:.2}x writing {n} files of 4 KiB durably 4 at a time ({raw_files:.2} s); {fetched} \
         downloads; peak RSS {}",
        pack_ids.len(),
        secs / raw,
        secs / raw_files,
        mib(rss)
    );
}

type Bench = fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// Every benchmark, by name.
const BENCHES: &[(&str, Bench)] = &[
    ("bench_deliver_large_objects", || Box::pin(bench_deliver_large_objects())),
    ("bench_restore_1_gib", || Box::pin(bench_restore_1_gib())),
    ("bench_restore_all", || Box::pin(bench_restore_all())),
    ("bench_sync_10000_small_objects", || Box::pin(bench_sync_10000_small_objects())),
    ("bench_no_op_sync_over_a_million_recorded_objects", || {
        Box::pin(bench_no_op_sync_over_a_million_recorded_objects())
    }),
    ("bench_retry_drains_500_due_failures", || Box::pin(bench_retry_drains_500_due_failures())),
    ("bench_webhook_accepts_events", || Box::pin(bench_webhook_accepts_events())),
    ("bench_three_bots_against_one_under_flood_control", || {
        Box::pin(bench_three_bots_against_one_under_flood_control())
    }),
    ("bench_dashboard_pages_with_100000_deliveries", || Box::pin(bench_dashboard_pages_with_100000_deliveries())),
    ("bench_live_dashboard_streams", || Box::pin(bench_live_dashboard_streams())),
    ("bench_packs", || Box::pin(bench_packs())),
];

/// Runs the benchmarks whose names contain one of the arguments (all without any), each
/// on a runtime of its own.
fn main() {
    // `cargo bench` passes `--bench`; anything else starting with `-` is not a filter.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    for (name, bench) in BENCHES {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        println!("BENCH running {name}");
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        runtime.block_on(bench());
    }
}
