//! The commands tgploy shows (captions, restore errors) pasted into a real shell, as an
//! operator would during a disaster recovery, for names an attacker chose: they must do
//! exactly what they say and nothing else.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::harness::{PART_SIZE, World, data, sha256_hex};
use crate::restore::{age_key, leftovers, stock_age_decrypt};
use crate::support::telegram::{self, Document};

/// Keys whose last segment (the file name) is hostile to a shell or to Telegram's HTML.
const HOSTILE_KEYS: &[&str] = &[
    "db/evil'$(touch PWNED)'.tar",
    "it's `touch PWNED`.sql",
    "-rf .bin",
    "x/quote\"d; touch PWNED; echo \".gz",
    "$HOME* ~ [a-z]? {a,b} !x.bak",
    "<b>a&amp;b & <i> | tee PWNED.tar",
    "日本 データ 🚀.bin",
    "two  spaces  .tar",
];

/// A multi-part object: three parts of the test part size.
fn body(seed: u64) -> Vec<u8> {
    data(PART_SIZE as usize * 2 + 123, seed)
}

/// The file name of an object: the last segment of its key.
fn name_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap()
}

/// A fresh directory holding `docs` under their document file names, as an operator who
/// downloaded them from a Telegram client has them.
fn scratch(docs: &[&Document]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for doc in docs {
        std::fs::write(dir.path().join(&doc.file_name), doc.bytes()).unwrap();
    }
    dir
}

/// The names in a directory.
fn listing(dir: &Path) -> BTreeSet<String> {
    set(leftovers(dir))
}

fn set(names: impl IntoIterator<Item = impl Into<String>>) -> BTreeSet<String> {
    names.into_iter().map(Into::into).collect()
}

/// The shell's PATH: the stand-in `age`, the built `tgploy`, the system tools.
fn shell_path(stubs: &Path) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_tgploy")).parent().unwrap();
    format!("{}:{}:/usr/local/bin:/usr/bin:/bin", stubs.display(), bin.display())
}

/// Runs `command` with bash in `dir`, exactly as pasted; returns its stdout.
async fn paste(dir: &Path, command: &str, env: Vec<(String, String)>) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(command).current_dir(dir).env_clear().envs(env);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    assert!(
        out.status.success(),
        "`{command}` failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The one code entity of a caption that starts with `prefix`.
fn code<'a>(doc: &'a Document, prefix: &str) -> &'a str {
    let found: Vec<&String> = doc.caption_code.iter().filter(|c| c.starts_with(prefix)).collect();
    assert_eq!(found.len(), 1, "one `{prefix}…` command in the caption of {}: {:?}", doc.file_name, doc.caption_code);
    found[0]
}

/// The documents of one object: its parts in order, then its manifest.
fn object_documents(w: &World, stored: &str, manifest: &str) -> (Vec<Document>, Document) {
    let parts: Vec<Document> = (1..=3).map(|i| w.documents_named(&format!("{stored}.part00{i}")).remove(0)).collect();
    (parts, w.documents_named(manifest).remove(0))
}

/// What the operator's `sha256sum NAME` names: the name as given on its command line.
fn as_argument(name: &str) -> String {
    if name.starts_with('-') { format!("./{name}") } else { name.to_string() }
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_in_captions_and_errors_are_safe_to_paste_into_a_shell() {
    let w = World::new().await;
    w.s3.create_bucket("bkt").await;
    for (i, key) in HOSTILE_KEYS.iter().enumerate() {
        w.s3.put("bkt", key, body(i as u64)).await;
    }
    w.sync().await.success();
    let home = tempfile::tempdir().unwrap();
    let stubs = tempfile::tempdir().unwrap();
    let env = |extra: &[(&str, String)]| {
        let mut env = vec![
            ("PATH".to_string(), shell_path(stubs.path())),
            ("HOME".to_string(), home.path().display().to_string()),
            ("LC_ALL".to_string(), "C.UTF-8".to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    };

    for (i, key) in HOSTILE_KEYS.iter().enumerate() {
        let name = name_of(key).trim();
        let bytes = body(i as u64);
        let (parts, manifest) = object_documents(&w, name, &format!("{name}.tgploy.json"));
        let part_names: Vec<&str> = parts.iter().map(|d| d.file_name.as_str()).collect();
        let part_refs: Vec<&Document> = parts.iter().collect();

        // Every part's caption: the same join command, which joins and does nothing else.
        let join = code(&parts[0], "cat ");
        for part in &parts {
            assert_eq!(code(part, "cat "), join, "{}", part.file_name);
        }
        let dir = scratch(&part_refs);
        paste(dir.path(), join, env(&[])).await;
        assert_eq!(listing(dir.path()), set(part_names.iter().copied().chain([name])), "`{join}`");
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), bytes, "`{join}`");

        // The manifest's caption: join, then sha256sum names the joined file.
        let restore = code(&manifest, "cat ");
        let dir = scratch(&part_refs);
        let printed = paste(dir.path(), restore, env(&[])).await;
        assert_eq!(printed, format!("{}  {}\n", sha256_hex(&bytes), as_argument(name)), "`{restore}`");
        assert_eq!(listing(dir.path()), set(part_names.iter().copied().chain([name])), "`{restore}`");
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), bytes, "`{restore}`");

        // …and `tgploy restore --manifest` with the manifest as downloaded.
        let by_tgploy = code(&manifest, "tgploy restore --manifest ");
        let dir = scratch(&[&manifest]);
        let token = [("TELEGRAM_BOT_TOKEN", telegram::TOKEN.to_string()), ("TELEGRAM_API_URL", w.tg.url())];
        paste(dir.path(), by_tgploy, env(&token)).await;
        assert_eq!(listing(dir.path()), set([manifest.file_name.as_str(), name]), "`{by_tgploy}`");
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), bytes, "`{by_tgploy}`");
    }

    // A restore the bot cannot download names the manual route: `tgploy join …`.
    w.tg.set_download_limit(1000);
    for (i, key) in HOSTILE_KEYS.iter().enumerate() {
        let name = name_of(key).trim();
        let nowhere = w.dir.path().join("restored");
        std::fs::create_dir_all(&nowhere).unwrap();
        let out = w.run(&["restore", &format!("bkt/{key}"), "--out", nowhere.to_str().unwrap()]).await;
        out.code(1);
        let line = out.stderr.lines().find(|l| l.contains("then run `")).unwrap_or_else(|| panic!("{}", out.stderr));
        let join = line.split_once("then run `").unwrap().1.strip_suffix('`').unwrap();
        assert!(join.starts_with("tgploy join "), "{line}");
        let (parts, manifest) = object_documents(&w, name, &format!("{name}.tgploy.json"));
        let mut docs: Vec<&Document> = parts.iter().collect();
        docs.push(&manifest);
        let dir = scratch(&docs);
        let before = listing(dir.path());
        paste(dir.path(), join, env(&[])).await;
        let mut after = before.clone();
        after.insert(name.to_string());
        assert_eq!(listing(dir.path()), after, "`{join}`");
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), body(i as u64), "`{join}`");
    }
    assert!(!home.path().join("PWNED").exists() && listing(home.path()).is_empty());
}

/// Stands in for the age tool: records its arguments, and "decrypts" by copying the file
/// it is given (the test then decrypts that for real).
fn age_stub(dir: &Path, args_file: &Path) {
    let path = dir.join("age");
    let script = format!("#!/bin/sh\nprintf '%s\\0' \"$@\" > '{}'\nexec cat -- \"$4\"\n", args_file.display());
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_age_line_of_an_encrypted_object_is_safe_to_paste() {
    let mut w = World::new().await;
    let (key_file, recipient) = age_key(w.dir.path(), "key.txt");
    w.config_file(&format!("[encryption]\nrecipients = [\"{recipient}\"]\n"));
    w.s3.create_bucket("bkt").await;
    let key = "-it's $(touch PWNED) `id`.sql";
    let bytes = body(7);
    w.s3.put("bkt", key, bytes.clone()).await;
    w.sync().await.success();

    let stored = format!("{key}.age");
    let (parts, manifest) = object_documents(&w, &stored, &format!("{key}.tgploy.json"));
    let stubs = tempfile::tempdir().unwrap();
    let args_file: PathBuf = stubs.path().join("age-args");
    age_stub(stubs.path(), &args_file);
    let env = vec![("PATH".to_string(), shell_path(stubs.path()))];
    let part_refs: Vec<&Document> = parts.iter().collect();
    let part_names = parts.iter().map(|d| d.file_name.clone());

    for doc in parts.iter().chain([&manifest]) {
        let dir = scratch(&part_refs);
        let join = code(doc, "cat ");
        paste(dir.path(), join, env.clone()).await;
        let decrypt = code(doc, "age -d ");
        std::fs::copy(&key_file, dir.path().join("key.txt")).unwrap();
        paste(dir.path(), decrypt, env.clone()).await;
        let args = std::fs::read_to_string(&args_file).unwrap();
        assert_eq!(args, format!("-d\0-i\0key.txt\0./{stored}\0"), "`{decrypt}`");
        assert_eq!(
            listing(dir.path()),
            set(part_names.clone().chain([stored.clone(), key.to_string(), "key.txt".into()])),
            "`{join}` then `{decrypt}`"
        );
        let copied = std::fs::read(dir.path().join(key)).unwrap();
        assert_eq!(stock_age_decrypt(&copied, &key_file), bytes);
    }
}
