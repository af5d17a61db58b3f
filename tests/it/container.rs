//! The container image (`Dockerfile`, `.ci/build-image`) run with podman against this
//! process's S3 server and fake Bot API: setup writes the config into the volume, `sync`
//! delivers, `serve-webhook` delivers an event and passes its healthcheck, and a new
//! container finds the same ledger; the image's one shell runs a scheduled command as
//! Dokploy does, and a container configured through its environment alone works. Without
//! podman it fails, unless `TGPLOY_SKIP_CONTAINER_TESTS=1` says to skip it. Also the
//! compose file and the Dockerfile's own claims, which need no podman.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

use crate::harness::{BACKUP_CHAT, Output, WEBHOOK_TOKEN, World, data};

/// On these machines podman needs runc, and limits no higher than the sandbox's own
/// (it cannot raise them: no CAP_SYS_RESOURCE); `.ci/build-image` says the same.
const PODMAN: &[&str] = &["--runtime", "runc"];
const LIMITS: &[&str] = &["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"];
/// The world's settings that stay outside the container: the image's defaults put the
/// ledger, the config and the temporary directory in the volume.
const LEFT_TO_THE_IMAGE: &[&str] = &["DATABASE_PATH", "TGPLOY_CONFIG", "TGPLOY_TMP_DIR", "HOME"];
const VOLUME_PATH: &str = "/var/lib/tgploy";
const UID: u32 = 10001;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn podman_installed() -> bool {
    Command::new("podman").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// The image to test: `TGPLOY_IMAGE`, or one built now by `.ci/build-image`.
fn image() -> String {
    if let Some(image) = std::env::var("TGPLOY_IMAGE").ok().filter(|i| !i.trim().is_empty()) {
        return image;
    }
    eprintln!("container test: TGPLOY_IMAGE is not set; building the image with .ci/build-image");
    let out = Command::new(repo().join(".ci/build-image")).stdin(Stdio::null()).output().expect("run .ci/build-image");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), ".ci/build-image failed:\n{}", tail(&stderr, 40));
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().last().expect(".ci/build-image names the image on its last line").trim().to_string()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A name no other run of this test uses.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("tgploy-it-{what}-{}-{nanos}", std::process::id())
}

/// The volume and containers of one test, removed when it ends, passed or failed.
struct Podman {
    image: String,
    volume: String,
    containers: Vec<String>,
    /// The settings containers get (`--env NAME`, values from this process).
    env: Vec<(String, String)>,
}

impl Podman {
    async fn new(image: String, w: &World) -> Podman {
        let env = w.env.iter().filter(|(k, _)| !LEFT_TO_THE_IMAGE.contains(&k.as_str()));
        let podman = Podman {
            image,
            volume: unique("ledger"),
            containers: Vec::new(),
            env: env.map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        run(podman_cmd(&["volume", "create", &podman.volume])).await.success();
        podman
    }

    /// Where the volume lives on this machine (the test runs as root, like podman).
    async fn volume_dir(&self) -> PathBuf {
        let out = run(podman_cmd(&["volume", "inspect", "--format", "{{.Mountpoint}}", &self.volume])).await;
        PathBuf::from(out.success().stdout.trim())
    }

    /// `podman run` of the image on the volume: with the world's settings, on the host's
    /// network (the test servers listen on its loopback), with `extra` options.
    fn container(&self, extra: &[&str], settings: bool, args: &[&str]) -> Command {
        let volume = format!("{}:{VOLUME_PATH}", self.volume);
        let mut cmd = podman_cmd(&["run", "--network", "host", "--volume", &volume]);
        cmd.args(LIMITS).args(extra);
        if settings {
            for (k, v) in &self.env {
                cmd.args(["--env", k]).env(k, v);
            }
        }
        cmd.arg(&self.image).args(args);
        cmd
    }

    /// Runs tgploy in a new container to the end, then removes the container.
    async fn tgploy(&self, args: &[&str]) -> Output {
        run(self.container(&["--rm", "--no-healthcheck"], true, args)).await
    }

    /// Starts tgploy in a detached container named `name`, keeping the image's
    /// healthcheck (without its timer: there is no systemd here to run one; `podman
    /// healthcheck run` runs it on demand).
    async fn start(&mut self, name: &str, env: &[(&str, &str)], args: &[&str]) {
        self.containers.push(name.to_string());
        let mut extra = vec!["--detach", "--name", name, "--health-interval", "disable"];
        for (k, _) in env {
            extra.extend(["--env", k]);
        }
        let mut cmd = self.container(&extra, true, args);
        cmd.envs(env.iter().copied());
        run(cmd).await.success();
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = podman_cmd(&["rm", "--force", "--time", "5", name]).output();
        }
        let _ = podman_cmd(&["volume", "rm", "--force", &self.volume]).output();
    }
}

fn podman_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(PODMAN).args(args).stdin(Stdio::null());
    cmd
}

/// Runs a command to the end, off the async runtime whose servers it talks to.
async fn run(mut cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    let out = tokio::task::spawn_blocking(move || cmd.output());
    match tokio::time::timeout(Duration::from_secs(180), out).await {
        Ok(out) => Output::from(out.expect("join").unwrap_or_else(|e| panic!("cannot run {what}: {e}"))),
        Err(_) => panic!("{what} did not finish within 180 s"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[cfg(unix)]
fn owner_and_mode(path: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (meta.uid(), meta.mode() & 0o777)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_delivers_serves_webhooks_and_keeps_its_ledger_in_the_volume() {
    if std::env::var("TGPLOY_SKIP_CONTAINER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: TGPLOY_SKIP_CONTAINER_TESTS=1");
        return;
    }
    // A silent skip reads as a pass.
    assert!(
        podman_installed(),
        "podman is not installed: apt-get install -y podman runc musl-tools busybox-static, \
         or set TGPLOY_SKIP_CONTAINER_TESTS=1 to skip this test"
    );
    let image = tokio::task::spawn_blocking(image).await.expect("join");
    let w = World::new().await;
    w.s3.create_bucket("backups").await;
    let mut podman = Podman::new(image, &w).await;

    // The first run writes the config into the volume, as the non-root user.
    let out = podman.tgploy(&["setup", "--non-interactive"]).await;
    out.success().no_token();
    assert!(out.stdout.contains("✓ S3 answers; 1 bucket(s)"), "{}", out.stdout);
    let volume = podman.volume_dir().await;
    assert_eq!(owner_and_mode(&volume), (UID, 0o700), "the volume takes the image's directory");
    let config = volume.join("config.toml");
    assert_eq!(owner_and_mode(&config), (UID, 0o600));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(&format!("backup_chat_id = {BACKUP_CHAT}")), "{text}");

    // sync delivers, byte for byte; part files wait in tmp/ in the volume, made private.
    let small = data(100, 1);
    let large = data(150 * 1024, 2);
    w.s3.put("backups", "etc/hosts", small.clone()).await;
    w.s3.put("backups", "db/dump.sql.gz", large.clone()).await;
    podman.tgploy(&["sync"]).await.success().no_token();
    assert_eq!(w.documents_named("hosts").iter().map(|d| d.bytes()).collect::<Vec<_>>(), [small]);
    let (manifest, joined) = w.join_from_manifest("dump.sql.gz.tgploy.json");
    assert_eq!(manifest["parts"].as_array().unwrap().len(), 3);
    assert!(joined == large, "the parts join into the object");
    assert_eq!(owner_and_mode(&volume.join("tmp")), (UID, 0o700));
    assert_eq!(owner_and_mode(&volume.join("ledger.sqlite3")), (UID, 0o600));

    let out = podman.tgploy(&["status", "--check"]).await;
    out.success();
    assert!(out.stdout.starts_with("OK: last successful sync"), "{}", out.stdout);

    // serve-webhook in a detached container: healthy, and an event is delivered.
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let server = unique("webhook");
    podman.start(&server, &[("TGPLOY_WEBHOOK_LISTEN", &listen)], &["serve-webhook"]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let check = run(podman_cmd(&["healthcheck", "run", &server])).await;
        if check.code == 0 {
            break;
        }
        let logs = run(podman_cmd(&["logs", &server])).await;
        assert!(Instant::now() < deadline, "never healthy: {check:?}\nlogs:\n{}", logs.stderr);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let before = w.tg.documents().len();
    let later = data(3000, 3);
    let etag = w.s3.put("backups", "db/later.sql.gz", later.clone()).await;
    let event = json!({
        "EventName": "s3:ObjectCreated:Put",
        "Key": "backups/db/later.sql.gz",
        "Records": [{
            "eventName": "s3:ObjectCreated:Put",
            "eventTime": "2026-11-27T21:49:19.728737342Z",
            "s3": {"bucket": {"name": "backups"},
                   "object": {"key": "db%2Flater.sql.gz", "size": later.len(), "eTag": etag}}
        }]
    });
    let resp = reqwest::Client::new()
        .post(format!("http://{listen}/webhook"))
        .bearer_auth(WEBHOOK_TOKEN)
        .json(&event)
        .send()
        .await
        .expect("POST the event");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["accepted"], 1);
    assert!(w.tg.wait_for_documents(before + 1, Duration::from_secs(60)).await, "the event's object did not arrive");
    assert_eq!(w.documents_named("later.sql.gz").iter().map(|d| d.bytes()).collect::<Vec<_>>(), [later]);

    // A schedule as Dokploy runs one: `docker exec CONTAINER sh -c "COMMAND"`, which the
    // image's shell (a static busybox) is there for.
    let before = w.tg.documents().len();
    let scheduled = data(2000, 4);
    w.s3.put("backups", "db/scheduled.sql.gz", scheduled.clone()).await;
    let out = run(podman_cmd(&["exec", &server, "sh", "-c", "tgploy sync --quiet"])).await;
    out.success().no_token();
    assert_eq!(w.tg.documents().len(), before + 1, "{}", out.stderr);
    assert_eq!(w.documents_named("scheduled.sql.gz").iter().map(|d| d.bytes()).collect::<Vec<_>>(), [scheduled]);
    // As the image's user, with no package manager to add anything.
    let out = run(podman_cmd(&["exec", &server, "sh", "-c", "id -u"])).await;
    assert_eq!(out.success().stdout.trim(), UID.to_string());
    for manager in ["apk", "apt", "apt-get"] {
        let out = run(podman_cmd(&["exec", &server, "sh", "-c", &format!("command -v {manager}")])).await;
        assert_ne!(out.code, 0, "{manager} is in the image: {out:?}");
    }

    // The healthcheck's own command, by hand, and what it says when nothing answers.
    let probe = run(podman_cmd(&["exec", &server, "tgploy", "probe"])).await;
    probe.success();
    assert!(probe.stdout.starts_with(&format!("OK: http://{listen}/healthz answered 200")), "{}", probe.stdout);
    let wrong = format!("http://{listen}/nothing-here");
    let probe = run(podman_cmd(&["exec", &server, "tgploy", "probe", &wrong])).await;
    probe.code(1);
    assert_eq!(probe.stderr.trim().lines().count(), 1, "{}", probe.stderr);
    assert!(probe.stderr.contains("answered 404"), "{}", probe.stderr);

    // SIGTERM stops it cleanly.
    run(podman_cmd(&["stop", "--time", "60", &server])).await.success();
    let code = run(podman_cmd(&["inspect", "--format", "{{.State.ExitCode}}", &server])).await;
    let logs = run(podman_cmd(&["logs", &server])).await;
    assert_eq!(code.success().stdout.trim(), "0", "logs:\n{}", logs.stderr);
    assert!(logs.stderr.contains("sent backups/db/later.sql.gz"), "{}", logs.stderr);
    assert!(!logs.stderr.contains(WEBHOOK_TOKEN), "{}", logs.stderr);
    logs.no_token();

    // A new container, given nothing but the volume, reads the same config and ledger.
    let out = run(podman.container(&["--rm", "--no-healthcheck"], false, &["status", "--json"])).await;
    let status = out.success().json();
    assert_eq!(status["ledger"], format!("{VOLUME_PATH}/ledger.sqlite3"));
    assert_eq!(status["totals"]["sent"], 4, "{status:#}");
    assert_eq!((&status["buckets"][0]["name"], &status["buckets"][0]["sent"]), (&json!("backups"), &json!(4)));

    // Configured through the environment alone, as Dokploy's Environment tab does: no
    // setup, no config file, a fresh volume. The image's default config file is optional.
    let bare = Podman::new(podman.image.clone(), &w).await;
    let out = bare.tgploy(&["sync", "--json"]).await;
    out.success().no_token();
    assert_eq!(out.json()["sent"], 4, "a new ledger delivers every object: {}", out.stdout);
    assert!(!bare.volume_dir().await.join("config.toml").exists());
    let out = bare.tgploy(&["status", "--json"]).await;
    assert_eq!(out.success().json()["ledger"], format!("{VOLUME_PATH}/ledger.sqlite3"));
    // A config file named by the user must exist.
    let out = bare.tgploy(&["--config", "/var/lib/tgploy/missing.toml", "status"]).await;
    out.code(2);
    assert!(out.stderr.contains("missing.toml does not exist"), "{}", out.stderr);

    // Small, as promised: a binary, certificates and a shell.
    let size = run(podman_cmd(&["image", "inspect", "--format", "{{.Size}}", &podman.image])).await;
    let bytes: u64 = size.success().stdout.trim().parse().expect("a size in bytes");
    assert!(bytes < 25_000_000, "the image is {bytes} bytes");
}

/// compose.yaml as JSON, with compose's merge keys (`<<: *tgploy`) applied, which
/// yaml-rust2 (YAML 1.2) leaves as they are.
fn compose() -> Value {
    let text = std::fs::read_to_string(repo().join("compose.yaml")).expect("read compose.yaml");
    let docs =
        yaml_rust2::YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("compose.yaml does not parse: {e}"));
    assert_eq!(docs.len(), 1, "compose.yaml is one document");
    json_of(&docs[0])
}

fn json_of(yaml: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match yaml {
        Yaml::Hash(hash) => {
            let mut map = serde_json::Map::new();
            for (k, v) in hash {
                let key = k.as_str().unwrap_or_else(|| panic!("a key that is not a string: {k:?}"));
                if key == "<<" {
                    continue;
                }
                map.insert(key.to_string(), json_of(v));
            }
            // Merged mappings give only the keys the mapping does not set itself.
            if let Some(merged) = hash.get(&Yaml::String("<<".into())) {
                let sources = match merged {
                    Yaml::Array(list) => list.iter().collect(),
                    one => vec![one],
                };
                for source in sources {
                    let Value::Object(source) = json_of(source) else { panic!("`<<` merges a mapping: {merged:?}") };
                    for (k, v) in source {
                        map.entry(k).or_insert(v);
                    }
                }
            }
            Value::Object(map)
        }
        Yaml::Array(list) => Value::Array(list.iter().map(json_of).collect()),
        Yaml::String(s) => json!(s),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(r) => json!(r.parse::<f64>().unwrap_or_else(|e| panic!("{r}: {e}"))),
        Yaml::Boolean(b) => json!(b),
        Yaml::Null => Value::Null,
        other => panic!("compose.yaml has {other:?}"),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(|s| s.as_str().unwrap()).collect()
}

/// Whether tgploy's own command line takes these arguments.
#[track_caller]
fn parses(args: &[&str]) {
    use clap::error::ErrorKind;
    match crate::command_line::Cli::try_parse_from(std::iter::once("tgploy").chain(args.iter().copied())) {
        Ok(_) => {}
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {}
        Err(e) => panic!("`tgploy {}` does not parse: {e}", args.join(" ")),
    }
}

#[test]
fn compose_runs_the_servers_with_healthchecks_and_the_one_shot_runs_under_a_profile() {
    let compose = compose();
    let services = &compose["services"];
    for (name, port) in [("webhook", "8080"), ("dashboard", "8088")] {
        let service = &services[name];
        let command = strings(&service["command"]);
        parses(&command);
        let listen = command.iter().position(|a| *a == "--listen").map(|i| command[i + 1]);
        assert_eq!(listen, Some(format!("0.0.0.0:{port}").as_str()), "{name}");
        let test = strings(&service["healthcheck"]["test"]);
        assert_eq!(test[..3], ["CMD", "tgploy", "probe"], "{name}");
        assert_eq!(test[3], format!("http://127.0.0.1:{port}/healthz"), "{name} probes its own listener");
        parses(&test[2..]);
        assert_eq!(service["restart"], "unless-stopped", "{name}");
        assert!(service.get("profiles").is_none(), "{name} starts with `up`");
    }
    let jobs = &services["tgploy"];
    assert_eq!(strings(&jobs["profiles"]), ["jobs"], "one-shot runs never start with `up`");
    assert_eq!(jobs["healthcheck"]["disable"], true);
    parses(&strings(&jobs["command"]));
    for (name, service) in services.as_object().unwrap() {
        assert_eq!(strings(&service["volumes"]), ["tgploy:/var/lib/tgploy"], "{name} shares the one volume");
        assert_eq!(service["build"], ".", "{name}");
    }
    assert!(compose["volumes"]["tgploy"].is_object(), "a named volume: {}", compose["volumes"]);
}

#[test]
fn the_dockerfile_labels_the_crate_version_and_runs_commands_that_exist() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(text.contains(&format!("ARG VERSION={}\n", env!("CARGO_PKG_VERSION"))), "ARG VERSION is not Cargo.toml's");
    let json_line = |prefix: &str| -> Vec<String> {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}"));
        let list = &line[line.find('[').unwrap_or_else(|| panic!("{prefix} is not in exec form"))..];
        serde_json::from_str(list).unwrap_or_else(|e| panic!("{prefix}: {e}"))
    };
    let health = json_line("HEALTHCHECK");
    assert_eq!(health[..2], ["tgploy", "probe"]);
    parses(&health[1..].iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(json_line("ENTRYPOINT"), ["tgploy"]);
    parses(&json_line("CMD").iter().map(String::as_str).collect::<Vec<_>>());
    for line in text.lines().filter(|l| l.starts_with("FROM ")) {
        assert!(line == "FROM scratch" || line.ends_with(" AS build"), "{line}: only `build` may need a pull");
    }
}
