//! One run of a kind at a time: an OS file lock beside the ledger.
//!
//! The kernel releases the lock when its process dies, however it dies, so a stale lock
//! of a killed run is simply taken over. The holder writes its PID into the file so that
//! a refused run can say which process holds it. Deliveries are protected by their
//! claims in the ledger in any case; the lock keeps overlapping timer runs from doing the
//! same listing and planning twice.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Held for the life of a run.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock for runs of `kind` (`sync`, `retry`) on the ledger at `ledger`.
pub fn acquire(ledger: &Path, kind: &str) -> Result<RunLock> {
    let mut name = ledger.as_os_str().to_owned();
    name.push(format!(".{kind}.lock"));
    let path = PathBuf::from(name);
    // Often the first file of a new machine's data directory: both are created private,
    // like the ledger beside them.
    // The lock file is this machine's, beside the ledger: a file that cannot be made
    // or locked is a local problem (exit 2), not the ledger's.
    let fail = |reason: String| {
        Error::local(format!("lock file {}: {reason}; check its directory and permissions", path.display()))
    };
    crate::private_files::create_parent(&path).map_err(|e| fail(format!("cannot create its directory: {e}")))?;
    let mut file =
        crate::private_files::open_or_create(&path).map_err(|e| fail(format!("cannot open the lock file: {e}")))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            // The holder writes its PID just after taking the lock: give it a moment.
            let mut holder = String::new();
            for _ in 0..25 {
                holder.clear();
                let _ = file.rewind();
                let _ = file.read_to_string(&mut holder);
                if !holder.trim().is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let holder = holder.trim();
            let who = if holder.is_empty() { "another process".to_string() } else { format!("process {holder}") };
            return Err(Error::Busy(format!(
                "another `tgploy {kind}` run ({who}) holds the lock {}; this run did nothing",
                path.display()
            )));
        }
        Err(TryLockError::Error(e)) => {
            return Err(fail(format!("cannot lock: {e}")));
        }
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("l.sqlite3");
        let first = acquire(&ledger, "sync").unwrap();
        let err = acquire(&ledger, "sync").unwrap_err();
        assert!(matches!(err, Error::Busy(_)));
        assert!(err.to_string().contains(&std::process::id().to_string()), "{err}");
        assert!(acquire(&ledger, "retry").is_ok(), "kinds lock separately");
        drop(first);
        // Other tests of this binary spawn processes; a child forked in the moment the
        // lock was held keeps a copy of it until it execs, so allow that moment to pass.
        let mut again = acquire(&ledger, "sync");
        for _ in 0..50 {
            if again.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            again = acquire(&ledger, "sync");
        }
        assert!(again.is_ok(), "released when its holder is dropped");
    }
}
