//! Names in the commands tgploy shows an operator (captions, messages, errors), quoted
//! for a POSIX shell.
//!
//! Those commands are pasted into a shell during a disaster recovery, and the names in
//! them come from object keys: text an attacker who can upload to a bucket chooses. A
//! name is therefore always single-quoted, where nothing is special but `'` itself, and
//! a name starting with `-` gets `./` in front so that no command reads it as options.

/// `name` (a file in the current directory) as one shell word that no shell expands
/// and no command reads as an option: `it's` becomes `'it'\''s'`, `-rf` becomes
/// `'./-rf'`. A glob meant to expand goes after it, outside the quotes:
/// `format!("{}.part*", quote_path(name))`.
pub(crate) fn quote_path(name: &str) -> String {
    if name.starts_with('-') { quote(&format!("./{name}")) } else { quote(name) }
}

/// `word` single-quoted for a POSIX shell; each `'` in it becomes `'\''` (close the
/// quotes, an escaped quote, open them again).
pub(crate) fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_single_quoted() {
        assert_eq!(quote_path("dump.sql.gz"), "'dump.sql.gz'");
        assert_eq!(quote_path("with space"), "'with space'");
        assert_eq!(quote_path(""), "''");
    }

    #[test]
    fn single_quotes_are_closed_escaped_and_reopened() {
        assert_eq!(quote_path("it's"), r"'it'\''s'");
        assert_eq!(quote_path("'"), r"''\'''");
        assert_eq!(quote_path("evil'$(touch PWNED)'.tar"), r"'evil'\''$(touch PWNED)'\''.tar'");
    }

    #[test]
    fn a_leading_dash_is_not_an_option() {
        assert_eq!(quote_path("-rf .bin"), "'./-rf .bin'");
        assert_eq!(quote_path("--help"), "'./--help'");
        // Only file names get `./`; a plain word keeps its dash.
        assert_eq!(quote("-x"), "'-x'");
        assert_eq!(quote_path("a-b"), "'a-b'");
    }

    /// What a POSIX shell makes of the quoted word: exactly the name, one argument.
    #[cfg(unix)]
    #[test]
    fn the_shell_reads_back_the_exact_name() {
        let names = [
            "plain.tar",
            "it's `touch PWNED`.sql",
            "evil'$(touch PWNED)'.tar",
            "a\"b;c|d&e>f<g",
            "$HOME*?[x]{a,b}~",
            "-rf .bin",
            "back\\slash\ttab\nnewline",
            "日本 データ.bin",
            "''''",
        ];
        for name in names {
            let script = format!("printf '%s\\0' {}", quote_path(name));
            let out = std::process::Command::new("sh").arg("-c").arg(&script).output().expect("run sh");
            assert!(out.status.success(), "{script}");
            let expected = if name.starts_with('-') { format!("./{name}\0") } else { format!("{name}\0") };
            assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{script}");
        }
    }
}
