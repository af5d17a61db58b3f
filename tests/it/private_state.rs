//! The data directory is private from the first command on a new machine, whichever
//! command that is: the directory 0700, every file in it (ledger, WAL, shared memory,
//! locks) 0600.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::World;

/// A world whose HOME is empty and which sets no DATABASE_PATH: the ledger goes to the
/// platform data directory, `~/.local/share/tgploy/`.
async fn new_machine() -> (World, PathBuf) {
    let mut w = World::new().await;
    let home = w.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    w.set_env("HOME", home.to_str().unwrap());
    w.unset_env("DATABASE_PATH");
    (w, home.join(".local/share/tgploy"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// Asserts the directory is 0700 and each file in it 0600; returns the file names.
#[track_caller]
fn assert_private(data_dir: &Path) -> Vec<String> {
    assert_eq!(mode(data_dir), 0o700, "{}", data_dir.display());
    let mut names = Vec::new();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        // SQLite may remove its -wal/-shm files between listing and stat.
        if let Ok(meta) = entry.metadata() {
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name} in {}", data_dir.display());
        }
        names.push(name);
    }
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_as_the_first_command_keeps_its_state_private() {
    let (w, data_dir) = new_machine().await;
    w.sync().await.success();
    let names = assert_private(&data_dir);
    assert!(
        names.contains(&"ledger.sqlite3".into()) && names.contains(&"ledger.sqlite3.sync.lock".into()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_as_the_first_command_keeps_its_state_private() {
    let (w, data_dir) = new_machine().await;
    w.run(&["status"]).await.success();
    assert!(assert_private(&data_dir).contains(&"ledger.sqlite3".into()));
    // And whatever comes next keeps it so.
    w.sync().await.success();
    assert_private(&data_dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_webhook_as_the_first_command_keeps_its_state_private() {
    let (w, data_dir) = new_machine().await;
    let server = w.start_webhook(&[]);
    // While it runs, the ledger is open in WAL mode: its -wal and -shm files exist.
    let names = assert_private(&data_dir);
    for file in ["ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm"] {
        assert!(names.contains(&file.to_string()), "{file} in {names:?}");
    }
    let (code, logs) = server.stop("TERM", Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{logs}");
    assert_private(&data_dir);
}
