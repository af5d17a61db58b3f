//! A world for binary-level tests: a real S3 server, the fake Bot API, a private
//! directory for the ledger, and the built `tgploy` run against them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::s3::{self, S3Server};
use crate::support::telegram::{self, Document, FakeTelegram};

pub const BACKUP_CHAT: &str = "-1001234567890";
/// Small parts keep multi-part tests fast; real defaults are 19 MiB.
pub const PART_SIZE: u64 = 64 * 1024;

pub struct World {
    pub s3: S3Server,
    pub tg: FakeTelegram,
    pub dir: TempDir,
    pub env: BTreeMap<String, String>,
}

/// What a run of the binary printed and returned.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// Everything printed must be free of every bot's token (the secret half, after the
    /// bot id).
    #[track_caller]
    pub fn no_token(&self) -> &Self {
        assert_no_bot_token("stdout", &self.stdout);
        assert_no_bot_token("stderr", &self.stderr);
        self
    }
}

/// Fails when `text` holds the secret half of any of the fake Bot API's tokens.
#[track_caller]
pub fn assert_no_bot_token(what: &str, text: &str) {
    for token in [telegram::TOKEN, telegram::TOKEN_2, telegram::TOKEN_3] {
        let secret = token.split_once(':').map_or(token, |(_, s)| s);
        assert!(!text.contains(secret), "a bot token in {what}:\n{text}");
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Deterministic pseudo-random bytes (no two parts alike).
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

impl World {
    pub async fn new() -> World {
        World::with(S3Server::start().await).await
    }

    pub async fn with_listed_etags() -> World {
        World::with(S3Server::start_with_listed_etags().await).await
    }

    /// A world around this S3 server.
    pub async fn with(s3: S3Server) -> World {
        let tg = FakeTelegram::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("tmp")).expect("tmp dir");
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("RUSTFS_ENDPOINT", s3.endpoint()),
            ("RUSTFS_ACCESS_KEY", s3::ACCESS_KEY.to_string()),
            ("RUSTFS_SECRET_KEY", s3::SECRET_KEY.to_string()),
            ("RUSTFS_REGION", "us-east-1".to_string()),
            ("TELEGRAM_BOT_TOKEN", telegram::TOKEN.to_string()),
            ("TELEGRAM_BACKUP_CHAT_ID", BACKUP_CHAT.to_string()),
            ("TELEGRAM_API_URL", tg.url()),
            ("DATABASE_PATH", dir.path().join("ledger.sqlite3").display().to_string()),
            ("TGPLOY_PART_SIZE", PART_SIZE.to_string()),
            ("TGPLOY_MESSAGES_PER_MINUTE", "0".to_string()),
            ("TGPLOY_TMP_DIR", dir.path().join("tmp").display().to_string()),
            ("HOME", dir.path().display().to_string()),
            ("WEBHOOK_SECRET_TOKEN", WEBHOOK_TOKEN.to_string()),
            // Most tests follow one object's journey: packing is off unless a test turns it
            // on (tests/it/packs.rs).
            ("TGPLOY_PACK_MAX_OBJECT_SIZE", "0".to_string()),
        ] {
            env.insert(k.to_string(), v);
        }
        World { s3, tg, dir, env }
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.dir.path().join("ledger.sqlite3")
    }

    /// A directory to restore into (`restored/` in the world's directory), created.
    pub fn restored_dir(&self) -> PathBuf {
        let dir = self.dir.path().join("restored");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.insert(key.to_string(), value.to_string());
    }

    pub fn unset_env(&mut self, key: &str) {
        self.env.remove(key);
    }

    /// Writes a config file and points TGPLOY_CONFIG at it.
    pub fn config_file(&mut self, toml: &str) -> PathBuf {
        let path = self.dir.path().join("config.toml");
        std::fs::write(&path, toml).expect("write config");
        set_private(&path);
        self.set_env("TGPLOY_CONFIG", &path.display().to_string());
        path
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tgploy"));
        cmd.args(args).env_clear().envs(&self.env).stdin(Stdio::null());
        cmd
    }

    /// Runs the binary to completion (off the async runtime, whose servers it talks to).
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        tokio::task::spawn_blocking(move || Output::from(cmd.output().expect("run tgploy"))).await.expect("join")
    }

    /// Starts the binary without waiting for it.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn tgploy")
    }

    pub async fn sync(&self) -> Output {
        self.run(&["sync"]).await
    }

    /// Documents in the backup chat whose file name is exactly `name`.
    pub fn documents_named(&self, name: &str) -> Vec<Document> {
        self.tg.documents().into_iter().filter(|d| d.file_name == name).collect()
    }

    /// Rebuilds an object from its manifest in the chat: every part fetched by the file
    /// id the manifest names, each checked against its SHA-256, then joined.
    pub fn join_from_manifest(&self, manifest_name: &str) -> (serde_json::Value, Vec<u8>) {
        let docs = self.tg.documents();
        let manifest_doc = docs
            .iter()
            .rev()
            .find(|d| d.file_name == manifest_name)
            .unwrap_or_else(|| panic!("no manifest {manifest_name} in the chat"));
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_doc.bytes()).expect("manifest JSON");
        let mut joined = Vec::new();
        for part in manifest["parts"].as_array().expect("parts") {
            let file_id = part["file_id"].as_str().expect("file_id");
            let doc = docs.iter().find(|d| d.file_id == file_id).expect("part named by the manifest is in the chat");
            let bytes = doc.bytes();
            assert_eq!(sha256_hex(&bytes), part["sha256"].as_str().unwrap(), "part {} hash", part["index"]);
            assert_eq!(bytes.len() as u64, part["size"].as_u64().unwrap());
            assert_eq!(doc.file_name, part["file_name"].as_str().unwrap());
            joined.extend_from_slice(&bytes);
        }
        (manifest, joined)
    }

    /// Opens the ledger with plain SQLite, as an operator could.
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let conn = rusqlite::Connection::open(self.ledger_path()).expect("open ledger");
        let mut stmt = conn.prepare(sql).expect("prepare");
        let cols = stmt.column_count();
        stmt.query_map([], |r| {
            (0..cols)
                .map(|i| {
                    let v: rusqlite::types::Value = r.get(i)?;
                    Ok(match v {
                        rusqlite::types::Value::Null => "NULL".to_string(),
                        rusqlite::types::Value::Integer(i) => i.to_string(),
                        rusqlite::types::Value::Real(f) => f.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        rusqlite::types::Value::Blob(b) => hex::encode(b),
                    })
                })
                .collect()
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    /// The whole ledger file as bytes (to grep for secrets).
    pub fn ledger_bytes(&self) -> Vec<u8> {
        let mut all = std::fs::read(self.ledger_path()).unwrap_or_default();
        all.extend(std::fs::read(self.ledger_path().with_extension("sqlite3-wal")).unwrap_or_default());
        all
    }
}

pub async fn wait_exit(mut child: Child, timeout: Duration) -> Output {
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(_status) = child.try_wait().expect("try_wait") {
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("tgploy did not finish within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Output::from(child.wait_with_output().expect("output"))
    })
    .await
    .expect("join")
}

#[cfg(unix)]
pub fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

#[cfg(not(unix))]
pub fn set_private(_path: &Path) {}

pub const ADMIN_CHAT: &str = "4242";

/// Sends a signal (by name: TERM, INT) to a child.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status().expect("kill");
    assert!(status.success());
}

impl World {
    /// Routes alerts and heartbeats to the admin chat.
    pub fn with_admin(mut self) -> World {
        self.set_env("TELEGRAM_ADMIN_CHAT_ID", ADMIN_CHAT);
        self
    }

    /// Text messages the admin chat received.
    pub fn admin_messages(&self) -> Vec<String> {
        self.tg
            .messages()
            .into_iter()
            .filter(|m| m.chat_id == ADMIN_CHAT && m.document.is_none())
            .filter_map(|m| m.rendered)
            .collect()
    }
}

pub const WEBHOOK_TOKEN: &str = "hook-secret-7d1c2e";

/// A running `tgploy serve-webhook`.
pub struct ServerProc {
    pub child: Child,
    pub url: String,
    logs: std::sync::Arc<(std::sync::Mutex<String>, std::sync::Condvar)>,
    /// The thread that drains stderr into `logs`; it ends when stderr closes.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl World {
    /// Starts `serve-webhook` on a free loopback port and waits until it listens.
    pub fn start_webhook(&self, extra: &[&str]) -> ServerProc {
        let mut args = vec!["serve-webhook", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        self.start_server(self.command(&args))
    }

    /// Starts `tgploy dashboard` on a free loopback port and waits until it listens.
    pub fn start_dashboard(&self) -> ServerProc {
        self.start_server(self.command(&["dashboard", "--listen", "127.0.0.1:0"]))
    }

    /// Enrols a second factor straight in the ledger, as `setup` would.
    pub fn enrol_totp(&self) -> tgploy::totp::Enrolment {
        let ledger = tgploy::ledger::Ledger::open(&self.ledger_path()).expect("open ledger");
        let enrolment = tgploy::totp::new_enrolment("test").expect("enrolment");
        tgploy::totp::store(&ledger, &enrolment).expect("store enrolment");
        enrolment
    }

    /// Sets the dashboard password with `tgploy setup dashboard --non-interactive`.
    pub async fn set_dashboard_password(&mut self, password: &str, otp: Option<&str>) -> Output {
        self.set_env("TGPLOY_DASHBOARD_PASSWORD", password);
        let mut args = vec!["setup", "dashboard", "--non-interactive"];
        if let Some(code) = otp {
            args.extend(["--otp", code]);
        }
        let out = self.run(&args).await;
        self.unset_env("TGPLOY_DASHBOARD_PASSWORD");
        out
    }

    /// Runs SQL on the ledger with plain SQLite, as an operator could.
    pub fn execute(&self, sql: &str) -> usize {
        let conn = rusqlite::Connection::open(self.ledger_path()).expect("open ledger");
        conn.execute(sql, []).expect("execute")
    }

    /// Starts a server command and waits until it says where it listens.
    pub fn start_server(&self, mut cmd: Command) -> ServerProc {
        use std::io::BufRead;
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn the server");
        let stderr = child.stderr.take().expect("stderr");
        let logs = std::sync::Arc::new((std::sync::Mutex::new(String::new()), std::sync::Condvar::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        let reader = std::thread::spawn(move || {
            // Keep draining stderr so the server never blocks on a full pipe.
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut l = sink.0.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
                sink.1.notify_all();
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not start:\n{}", logs.0.lock().unwrap());
            }
        };
        ServerProc { child, url, logs, reader: Some(reader) }
    }
}

impl ServerProc {
    pub fn logs(&self) -> String {
        self.logs.0.lock().unwrap().clone()
    }

    /// Waits until the server has logged a line containing `needle`; returns the logs.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let (logs, needle) = (self.logs.clone(), needle.to_string());
        tokio::task::spawn_blocking(move || {
            let guard = logs.0.lock().unwrap();
            let (guard, _) = logs.1.wait_timeout_while(guard, timeout, |l| !l.contains(&needle)).unwrap();
            assert!(guard.contains(&needle), "the server did not log `{needle}` within {timeout:?}:\n{guard}");
            guard.clone()
        })
        .await
        .expect("join")
    }

    /// Sends a signal and waits for the exit; returns the exit code and the logs.
    pub async fn stop(mut self, name: &str, timeout: Duration) -> (i32, String) {
        signal(&self.child, name);
        let deadline = std::time::Instant::now() + timeout;
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status.code().unwrap_or(-1);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop within {timeout:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // The reader has every line once stderr closed.
        if let Some(reader) = self.reader.take() {
            tokio::task::spawn_blocking(move || reader.join()).await.expect("join").expect("the log reader");
        }
        (code, self.logs())
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How long each sender of [`post_events`] goes on.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// This many events each.
    Count(u64),
    /// Until then.
    #[allow(dead_code)] // The benchmarks run for a time.
    Deadline(std::time::Instant),
}

/// Posts object-created events to `url` from `senders` concurrent senders, each naming
/// an object of `bucket` that does not exist (deliveries find it gone and record it as
/// skipped: work the server does meanwhile). Every answer must be 200. Returns the
/// latency of each request.
pub async fn post_events(url: &str, bucket: &str, senders: u64, until: Until) -> Vec<Duration> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
    let tasks: Vec<_> = (0..senders)
        .map(|sender| {
            let (client, url, bucket) = (client.clone(), url.to_string(), bucket.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                loop {
                    match until {
                        Until::Count(count) if n >= count => break,
                        Until::Deadline(deadline) if std::time::Instant::now() >= deadline => break,
                        _ => {}
                    }
                    n += 1;
                    let body = serde_json::json!({
                        "EventName": "s3:ObjectCreated:Put",
                        "Key": format!("{bucket}/w{sender}/{n}.sql.gz"),
                        "Records": [{
                            "eventName": "s3:ObjectCreated:Put",
                            "eventTime": "2026-11-27T21:49:19.728737342Z",
                            "s3": {"bucket": {"name": bucket},
                                   "object": {"key": format!("w{sender}%2F{n}.sql.gz"), "size": 1024,
                                              "eTag": format!("{sender:08x}{n:024x}")}}
                        }]
                    });
                    let start = std::time::Instant::now();
                    let resp = client.post(&url).bearer_auth(WEBHOOK_TOKEN).json(&body).send().await.expect("POST");
                    assert_eq!(resp.status().as_u16(), 200, "event {n} of sender {sender}");
                    latencies.push(start.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("sender"));
    }
    latencies
}
