//! Who holds a claim: a process identity that another process on the same host can check.
//!
//! A run killed with SIGKILL leaves its claims behind until their leases run out. A run
//! on the same host and in the same PID namespace can tell that the owner is gone (its
//! PID no longer exists) and take the claims over at once. Where it cannot tell (another
//! host or container), it waits for the lease: never steal from a live process.

use std::sync::OnceLock;

/// This process's identity: `host/pid-namespace/pid/nonce`.
pub(crate) fn this_process() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let nonce =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        format!("{}/{}/{}/{nonce:08x}", hostname(), pid_namespace(), std::process::id())
    })
}

/// True when `owner` is certainly a process that no longer exists.
pub(crate) fn is_dead(owner: &str) -> bool {
    let mut fields = owner.split('/');
    let (Some(host), Some(ns), Some(pid)) = (fields.next(), fields.next(), fields.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    if host != hostname() || ns != pid_namespace() || ns == "?" {
        return false;
    }
    if pid == std::process::id() {
        return false;
    }
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().replace('/', "_"))
        .unwrap_or_else(|_| "?".to_string())
}

fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|p| p.to_str().map(|s| s.trim_start_matches("pid:").trim_matches(['[', ']']).to_string()))
        .unwrap_or_else(|| "?".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_not_dead() {
        assert!(!is_dead(this_process()));
        assert!(!is_dead("garbage"));
        assert!(!is_dead("otherhost/1/1/0"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_finished_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let owner = format!("{}/{}/{pid}/0", hostname(), pid_namespace());
        assert!(is_dead(&owner));
    }
}
