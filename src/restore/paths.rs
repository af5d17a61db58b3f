//! Where `restore --all --out DIR` puts an object: `DIR/BUCKET/KEY`, with every key kept
//! inside DIR whatever it holds.
//!
//! A key is cut at `/` into names, and each name is written so that the filesystem can
//! hold it and nothing can climb out:
//!
//! - `%` becomes `%25`, `\` becomes `%5C`, control characters become `%XX`: every other
//!   character stays as it is, so ordinary keys look like themselves;
//! - a name that is empty (a leading `/`, a `//`, a trailing `/`) becomes `%`, `.`
//!   becomes `%2E`, `..` becomes `%2E%2E`: none of them can name a directory above;
//! - a name longer than 255 bytes keeps its first 200 bytes, then `%~` and 16 hex digits
//!   of its SHA-256.
//!
//! Two keys never map to the same path (the escapes are unambiguous), and no path is
//! followed through a symbolic link: every directory on the way is checked.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The longest name most filesystems hold, in bytes.
pub(super) const NAME_MAX: usize = 255;
/// The longest path Linux takes, in bytes.
const PATH_MAX: usize = 4096;

/// One name of a key (between slashes), safe to create inside a directory.
pub(crate) fn safe_name(name: &str) -> String {
    match name {
        "" => return "%".into(),
        "." => return "%2E".into(),
        ".." => return "%2E%2E".into(),
        _ => {}
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\\' => out.push_str("%5C"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    if out.len() > NAME_MAX {
        let mut end = 200;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        let digest = hex::encode(Sha256::digest(name.as_bytes()));
        out = format!("{}%~{}", &out[..end], &digest[..16]);
    }
    out
}

/// The path of `bucket/key` under `dir`; `None` when it would be too long for the
/// filesystem (the object is then refused and named).
pub(crate) fn object_path(dir: &Path, bucket: &str, key: &str, suffix: &str) -> Option<PathBuf> {
    let mut path = dir.join(safe_name(bucket));
    let names: Vec<&str> = key.split('/').collect();
    for (i, name) in names.iter().enumerate() {
        if i + 1 == names.len() {
            path.push(safe_name(&format!("{name}{suffix}")));
        } else {
            path.push(safe_name(name));
        }
    }
    (path.as_os_str().len() < PATH_MAX).then_some(path)
}

/// Creates the directories between `dir` and `path` (private, like every directory
/// tgploy creates), refusing any that is a symbolic link or not a directory.
pub(crate) fn create_dirs(dir: &Path, path: &Path) -> Result<(), String> {
    let Ok(rest) = path.strip_prefix(dir) else {
        return Err(format!("{} is not inside {}", path.display(), dir.display()));
    };
    let mut at = dir.to_path_buf();
    let mut names: Vec<_> = rest.components().collect();
    names.pop();
    for name in names {
        at.push(name);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!("{} is a symbolic link; it is not followed", at.display()));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(format!("{} is a file, so nothing can be restored inside it", at.display()));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::private_files::create_dir(&at).map_err(|e| format!("cannot create {}: {e}", at.display()))?;
            }
            Err(e) => return Err(format!("cannot read {}: {e}", at.display())),
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            Err(format!("{} is a symbolic link; it is not followed", path.display()))
        }
        Ok(meta) if meta.is_dir() => Err(format!("{} is a directory", path.display())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_look_like_themselves() {
        let p = object_path(Path::new("/r"), "backups", "db/2026/dump 1.sql.gz", "").unwrap();
        assert_eq!(p, Path::new("/r/backups/db/2026/dump 1.sql.gz"));
        let p = object_path(Path::new("/r"), "b", "日本/データ.bin", ".age").unwrap();
        assert_eq!(p, Path::new("/r/b/日本/データ.bin.age"));
    }

    #[test]
    fn no_key_climbs_out_or_lands_elsewhere() {
        let dir = Path::new("/r");
        for (key, want) in [
            ("../../etc/passwd", "/r/b/%2E%2E/%2E%2E/etc/passwd"),
            ("/etc/passwd", "/r/b/%/etc/passwd"),
            ("a//b", "/r/b/a/%/b"),
            ("a/./b", "/r/b/a/%2E/b"),
            ("dir/", "/r/b/dir/%"),
            ("a\\..\\..\\x", "/r/b/a%5C..%5C..%5Cx"),
            ("100%/x", "/r/b/100%25/x"),
            ("tab\there\n", "/r/b/tab%09here%0A"),
        ] {
            let p = object_path(dir, "b", key, "").unwrap();
            assert_eq!(p, Path::new(want), "{key:?}");
            assert!(p.starts_with("/r/b"), "{key:?}");
            assert!(
                p.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::RootDir))
            );
        }
        // The escapes keep keys apart.
        let a = object_path(dir, "b", "%", "").unwrap();
        let b = object_path(dir, "b", "", "").unwrap();
        assert_ne!(a, b);
        assert_ne!(object_path(dir, "b", "%2E", "").unwrap(), object_path(dir, "b", ".", "").unwrap());
    }

    #[test]
    fn names_too_long_are_shortened_uniquely_and_paths_too_long_refused() {
        let long = "x".repeat(300);
        let other = format!("{}y", "x".repeat(299));
        let (a, b) = (safe_name(&long), safe_name(&other));
        assert!(a.len() <= NAME_MAX && b.len() <= NAME_MAX);
        assert_ne!(a, b);
        let deep = vec!["d".repeat(200); 30].join("/");
        assert!(object_path(Path::new("/r"), "b", &deep, "").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_on_the_way_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("b")).unwrap();
        let path = object_path(root.path(), "b", "x/y", "").unwrap();
        let err = create_dirs(root.path(), &path).unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none(), "nothing was created outside");
    }
}
