//! The rules `ARCHITECTURE.md` states, checked by reading the source as text: a change
//! that breaks one fails here, naming the file and the line. What the compiler keeps by
//! itself (the library cannot name the binary's `cli`, `pub(crate)` items unused are
//! dead code, `missing_docs` and `unwrap_used` in `Cargo.toml`'s lints) is not repeated.

use std::path::{Path, PathBuf};

/// The longest a source file may grow before it is split at its seams.
const MAX_LINES: usize = 600;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/`, as its path from the repository (`src/…`) and its text.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&repo().join("src"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(repo()).unwrap().to_string_lossy().replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        })
        .collect()
}

/// The lines of `text` outside `#[cfg(test)]` modules (which come last in a file here),
/// numbered from 1.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l)).take_while(|(_, l)| l.trim() != "#[cfg(test)]")
}

/// The places where `needle` appears in the code (not in comments) of files `allowed`
/// does not accept, as `file:line: text`.
fn offenders(needles: &[&str], allowed: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for (file, text) in sources() {
        if allowed(&file) {
            continue;
        }
        for (n, line) in code_lines(&text) {
            let code = line.split("//").next().unwrap_or("");
            if needles.iter().any(|needle| code.contains(needle)) {
                found.push(format!("{file}:{n}: {}", line.trim()));
            }
        }
    }
    found
}

#[track_caller]
fn none(rule: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{rule}; broken at:\n{}", found.join("\n"));
}

/// The binary's files: `main.rs`, the command tree, one file per command.
fn in_binary(file: &str) -> bool {
    file == "src/main.rs" || file == "src/cli.rs" || file.starts_with("src/commands/")
}

#[test]
fn only_the_ledger_speaks_sql() {
    none("SQL (rusqlite) only in src/ledger/", offenders(&["rusqlite"], |f| f.starts_with("src/ledger/")));
}

#[test]
fn only_the_source_speaks_s3() {
    none(
        "S3 (aws-sdk-s3) only in src/source/",
        offenders(&["aws_sdk_s3", "aws_smithy"], |f| f.starts_with("src/source/")),
    );
}

#[test]
fn only_the_sink_speaks_the_bot_api() {
    // teloxide's types and an HTTP client of its own belong to the sink. Named
    // exceptions: the source reads the S3 server's clock with a HEAD of its endpoint, and
    // `probe` GETs tgploy's own `/healthz`; neither talks to the Bot API.
    let allowed = |f: &str| f.starts_with("src/sink/") || f.starts_with("src/source/") || f == "src/probe.rs";
    none(
        "the Bot API (teloxide, an HTTP client) only in src/sink/",
        offenders(&["teloxide", "reqwest::Client"], allowed),
    );
}

#[test]
fn the_library_never_sees_the_command_line() {
    none(
        "clap and the binary's command tree only in main.rs, cli.rs and commands/",
        offenders(&["clap::", "crate::cli", "GlobalArgs"], in_binary),
    );
}

#[test]
fn a_deliverys_state_changes_only_in_ledger_claims() {
    // New rows are created in versions.rs (pending, skipped) and claims/ (a restored
    // version); every UPDATE of a delivery is in claims/.
    let claims = |f: &str| f.starts_with("src/ledger/claims/");
    none(
        "UPDATE deliveries only in src/ledger/claims/ (ARCHITECTURE.md: the exactly-once argument)",
        offenders(&["UPDATE deliveries"], claims),
    );
    none(
        "INSERT INTO deliveries only in ledger/versions.rs and ledger/claims/",
        offenders(&["INTO deliveries"], |f| claims(f) || f == "src/ledger/versions.rs"),
    );
    none(
        "parts and packs are written only in ledger/claims/",
        offenders(&["INTO parts", "FROM parts WHERE delivery_id = ?1\",", "INTO packs"], claims),
    );
}

#[test]
fn ledger_work_leaves_the_runtime_one_way() {
    // `ledger::off_runtime` (behind `Ledger::blocking` and the dashboard's `App::db`) is
    // the way off an async worker thread; `block_in_place` would stall the runtime.
    none("no block_in_place in src/ (ledger::off_runtime instead)", offenders(&["block_in_place"], |_| false));
}

#[test]
fn runs_are_recorded_only_by_the_run() {
    none("runs recorded only by src/run.rs", offenders(&[".record_run"], |f| f == "src/run.rs"));
}

#[test]
fn no_command_imports_another() {
    let mut found = Vec::new();
    for (file, text) in sources().into_iter().filter(|(f, _)| f.starts_with("src/commands/") && !f.ends_with("mod.rs"))
    {
        for (n, line) in code_lines(&text) {
            if line.contains("commands::") && !line.contains("commands::Context") {
                found.push(format!("{file}:{n}: {}", line.trim()));
            }
        }
    }
    none("a command calls the library, never another command", found);
}

#[test]
fn source_files_stay_short() {
    let long: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| text.lines().count() > MAX_LINES)
        .map(|(file, text)| format!("{file}: {} lines", text.lines().count()))
        .collect();
    none(&format!("no source file over {MAX_LINES} lines: split it where its concerns meet"), long);
}

#[test]
fn each_ledger_file_has_one_impl_block() {
    let mut found = Vec::new();
    for (file, text) in sources().into_iter().filter(|(f, _)| f.starts_with("src/ledger/")) {
        let blocks = code_lines(&text).filter(|(_, l)| l.starts_with("impl Ledger {")).count();
        if blocks > 1 {
            found.push(format!("{file}: {blocks} `impl Ledger` blocks"));
        }
    }
    none("one `impl Ledger` per file of the ledger", found);
}

#[test]
fn the_architecture_names_every_source_file() {
    let map = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let missing: Vec<String> = sources()
        .into_iter()
        .map(|(file, _)| file)
        .filter(|file| {
            let rel = file.trim_start_matches("src/");
            let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
            let stem = name.trim_end_matches(".rs");
            // `lib.rs` and a directory's `mod.rs` are named by their room; the commands,
            // one file per subcommand, by `commands/`.
            if dir == "commands" && map.contains("`commands/`") {
                return false;
            }
            let named = [format!("`{rel}`"), format!("`{stem}`"), format!("`{stem}.rs`"), format!("{dir}/{stem}")];
            !(stem == "lib"
                || (stem == "mod" && map.contains(&format!("`{dir}/`")))
                || named.iter().any(|n| map.contains(n)))
        })
        .collect();
    none("ARCHITECTURE.md's code map names every file under src/", missing);
}
