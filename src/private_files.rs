//! Files only their owner may read: the config file, and the data directory with the
//! ledger, its WAL and shared-memory files and the run locks. Whichever command runs
//! first on a new machine creates them private; nothing is ever loosened afterwards.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Creates `dir` (and any missing parent) with mode 0700. An existing directory is left
/// as it is: its mode is the operator's choice (systemd's `StateDirectory=`, say).
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Creates the directory `path` goes in, private, unless it exists (see [`create_dir`]).
pub(crate) fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) if !parent.exists() => create_dir(parent),
        _ => Ok(()),
    }
}

/// Opens `path` for reading and writing, creating it with mode 0600 if it does not
/// exist: the mode is given to `open(2)`, so the file is never readable by others, not
/// even for a moment. (The umask can only take permissions away, never add any.)
pub(crate) fn open_or_create(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Sets mode 0600 on an existing file.
pub(crate) fn restrict(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// A private directory (mode 0700) for part files and downloads, inside `base` (the
/// system's temporary directory when `None`: `tmp_dir`, TGPLOY_TMP_DIR), removed with
/// everything in it when dropped. A missing `base` is created private first: a
/// container's empty image has no /tmp, and its `tmp_dir` in the volume exists only once
/// made.
pub(crate) fn temp_dir(base: Option<&Path>) -> Result<tempfile::TempDir> {
    let base: PathBuf = base.map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    let cannot = |e: io::Error| {
        Error::local(format!(
            "cannot create a temporary directory in {}: {e}; set `tmp_dir` (TGPLOY_TMP_DIR) to a writable directory",
            base.display()
        ))
    };
    create_dir(&base).map_err(cannot)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix("tgploy-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    builder.tempdir_in(&base).map_err(cannot)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_directories_and_files_are_private() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("a/b/file");
        create_parent(&file).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&root.path().join("a/b")), 0o700);
        open_or_create(&file).unwrap();
        assert_eq!(mode(&file), 0o600);

        std::fs::set_permissions(root.path().join("a/b"), std::fs::Permissions::from_mode(0o750)).unwrap();
        create_parent(&file).unwrap();
        assert_eq!(mode(&root.path().join("a/b")), 0o750, "an existing directory keeps its mode");
    }

    #[test]
    fn part_files_live_in_a_private_directory() {
        let base = tempfile::tempdir().unwrap();
        let dir = temp_dir(Some(base.path())).unwrap();
        assert_eq!(mode(dir.path()), 0o700);
        let part = tempfile::Builder::new().prefix("part-").tempfile_in(dir.path()).unwrap();
        assert_eq!(mode(part.path()), 0o600);
    }

    #[test]
    fn a_missing_temporary_base_is_created_private() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("volume/tmp");
        let dir = temp_dir(Some(&base)).unwrap();
        assert_eq!(dir.path().parent(), Some(base.as_path()));
        assert_eq!(mode(&base), 0o700);
        assert_eq!(mode(&root.path().join("volume")), 0o700);
        assert_eq!(mode(dir.path()), 0o700);
        drop(dir);
        assert!(base.is_dir(), "the base stays for the next run");

        // A base that cannot be made is a one-line error naming the setting.
        let file = root.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let err = temp_dir(Some(&file.join("tmp"))).unwrap_err().to_string();
        assert!(err.contains("TGPLOY_TMP_DIR") && !err.contains('\n'), "{err}");
    }
}
