//! Captions and messages in Telegram's HTML: what a backup document says about itself.
//!
//! Telegram allows 1024 characters of caption after entity parsing, counted in UTF-16
//! code units. Keys may be 1024 bytes long and contain anything, so long names are
//! shortened here (never in the manifest) and `<`, `>`, `&` are escaped.

use crate::shell::quote_path;
use crate::sink::html::escape_html;
use crate::sizes::human_size;

/// Telegram's caption limit, in UTF-16 code units after entity parsing.
pub(crate) const CAPTION_LIMIT: usize = 1024;
/// How much of a key or file name a caption shows.
const NAME_LIMIT: usize = 180;

/// What a document's caption tells.
#[derive(Debug, Clone)]
pub struct CaptionInfo<'a> {
    /// The bucket the object is in.
    pub bucket: &'a str,
    /// The object's key.
    pub key: &'a str,
    /// The version's ETag.
    pub etag: &'a str,
    /// The object's size in bytes.
    pub size: u64,
    /// When S3 last modified it, RFC 3339; `None` when unknown.
    pub last_modified: Option<String>,
    /// `(index, count, first byte, bytes)` for one part of several.
    pub part: Option<(u32, u32, u64, u64)>,
    /// The name the object is restored under (`name` for `name.part001…`).
    pub base_name: &'a str,
    /// SHA-256 of the bytes this document holds.
    pub sha256: &'a str,
    /// For an encrypted object (`base_name` is then `name.age`): the original's name.
    pub decrypts_to: Option<&'a str>,
}

/// A file name as a caption shows it: shortened to `max`, and quoted for the shell
/// (see [`crate::shell`]) when whole. A command naming a shortened name would name a file
/// that does not exist, so captions show commands only with `quoted` names.
struct Name {
    shown: String,
    quoted: Option<String>,
}

impl Name {
    fn new(name: &str, max: usize) -> Name {
        let shown = shorten(name, max);
        let quoted = (shown == name).then(|| quote_path(name));
        Name { shown, quoted }
    }
}

/// The line that tells how to decrypt an encrypted object with the stock age tool.
fn decrypt_line(stored: &Name, original: &Name) -> Vec<Piece> {
    match (&stored.quoted, &original.quoted) {
        (Some(stored), Some(original)) => vec![
            Piece::Text("Encrypted with age: ".into()),
            Piece::Code(format!("age -d -i key.txt {stored} > {original}")),
        ],
        _ => vec![
            Piece::Text("Encrypted with age: decrypt ".into()),
            Piece::Code(stored.shown.clone()),
            Piece::Text(" with ".into()),
            Piece::Code("age -d -i key.txt".into()),
            Piece::Text(" (the name is too long to show the whole command)".into()),
        ],
    }
}

/// `cat 'name'.part* > 'name'`: the parts, joined in order into `name`.
fn join_command(quoted: &str) -> String {
    format!("cat {quoted}.part* > {quoted}")
}

/// Length as Telegram counts it.
pub(crate) fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Shortens `s` to at most `max` UTF-16 units by cutting out its middle.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if utf16_len(s) <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1) / 2;
    let mut head = String::new();
    let mut units = 0;
    for c in s.chars() {
        if units + c.len_utf16() > keep {
            break;
        }
        units += c.len_utf16();
        head.push(c);
    }
    let mut tail: Vec<char> = Vec::new();
    let mut units = 0;
    for c in s.chars().rev() {
        if units + c.len_utf16() > keep {
            break;
        }
        units += c.len_utf16();
        tail.push(c);
    }
    tail.reverse();
    format!("{head}…{}", tail.into_iter().collect::<String>())
}

/// A caption line: plain text, or text shown as code.
enum Piece {
    Text(String),
    Code(String),
    Bold(String),
}

/// Renders `lines`; when they are over the caption limit (only pathological names get
/// there: the name limits keep normal ones well inside it), drops the lines that start
/// with one of `droppable` before anything that identifies the object.
fn render_within_limit(mut lines: Vec<Vec<Piece>>, droppable: &[&str]) -> String {
    let (html, visible) = render(&lines);
    if visible <= CAPTION_LIMIT {
        return html;
    }
    lines.retain(|l| !matches!(l.first(), Some(Piece::Text(t)) if droppable.iter().any(|d| t.starts_with(d))));
    render(&lines).0
}

fn render(lines: &[Vec<Piece>]) -> (String, usize) {
    let mut html = String::new();
    let mut visible = 0;
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            html.push('\n');
            visible += 1;
        }
        for piece in line {
            let (text, tag) = match piece {
                Piece::Text(t) => (t, None),
                Piece::Code(t) => (t, Some("code")),
                Piece::Bold(t) => (t, Some("b")),
            };
            visible += utf16_len(text);
            match tag {
                Some(tag) => html.push_str(&format!("<{tag}>{}</{tag}>", escape_html(text))),
                None => html.push_str(&escape_html(text)),
            }
        }
    }
    (html, visible)
}

/// The caption of a backup document (a whole object, or one part of it).
pub fn document_caption(info: &CaptionInfo<'_>) -> String {
    let key = shorten(info.key, NAME_LIMIT);
    let name = Name::new(info.base_name, NAME_LIMIT / 2);
    let mut lines = vec![
        vec![Piece::Bold("tgploy backup".into())],
        vec![Piece::Text("Bucket: ".into()), Piece::Code(shorten(info.bucket, 64))],
        vec![Piece::Text("Key: ".into()), Piece::Code(key)],
        vec![Piece::Text(format!("Size: {} ({} bytes)", human_size(info.size), info.size))],
    ];
    if let Some(modified) = &info.last_modified {
        lines.push(vec![Piece::Text(format!("Modified: {modified}"))]);
    }
    lines.push(vec![Piece::Text("ETag: ".into()), Piece::Code(shorten(info.etag, 80))]);
    match info.part {
        Some((idx, count, first, len)) => {
            let last = (first + len).saturating_sub(1);
            lines.push(vec![
                Piece::Bold(format!("Part {idx} of {count}")),
                Piece::Text(format!(" (bytes {first}–{last})")),
            ]);
            lines.push(vec![Piece::Text("SHA-256 of this part: ".into()), Piece::Code(info.sha256.into())]);
            lines.push(match &name.quoted {
                Some(quoted) => {
                    vec![Piece::Text("Join all parts in order: ".into()), Piece::Code(join_command(quoted))]
                }
                None => vec![Piece::Text(
                    "Join all parts in order, as the manifest lists them (the name is too long to show the command)."
                        .into(),
                )],
            });
            lines.push(vec![Piece::Text(
                "The manifest (.tgploy.json) after the last part lists every part and the SHA-256 of the whole.".into(),
            )]);
        }
        None => {
            lines.push(vec![Piece::Text("SHA-256: ".into()), Piece::Code(info.sha256.into())]);
        }
    }
    if let Some(original) = info.decrypts_to {
        lines.push(decrypt_line(&name, &Name::new(original, NAME_LIMIT / 2)));
    }
    render_within_limit(lines, &["Join", "The manifest", "Encrypted"])
}

/// The caption of a manifest document. `base_name` is what the parts join to (`name.age`
/// when encrypted, and `decrypts_to` is then `name`).
pub fn manifest_caption(
    bucket: &str,
    key: &str,
    parts: u32,
    size: u64,
    sha256: &str,
    base_name: &str,
    decrypts_to: Option<&str>,
) -> String {
    let name = Name::new(base_name, NAME_LIMIT / 2);
    let original = decrypts_to.map(|o| Name::new(o, NAME_LIMIT / 2));
    let mut lines = vec![
        vec![Piece::Bold("tgploy manifest".into())],
        vec![Piece::Text("Bucket: ".into()), Piece::Code(shorten(bucket, 64))],
        vec![Piece::Text("Key: ".into()), Piece::Code(shorten(key, NAME_LIMIT))],
        vec![Piece::Text(format!("{parts} parts, {} ({size} bytes)", human_size(size)))],
        vec![Piece::Text("SHA-256 of the whole: ".into()), Piece::Code(sha256.into())],
    ];
    if let Some(quoted) = &name.quoted {
        lines.push(vec![
            Piece::Text("Restore: ".into()),
            Piece::Code(format!("{} && sha256sum {quoted}", join_command(quoted))),
            Piece::Text(", then compare with the SHA-256 of the whole".into()),
        ]);
    }
    if let Some(original) = &original {
        lines.push(decrypt_line(&name, original));
    }
    let suffix = ".tgploy.json";
    let manifest_file =
        Name::new(&format!("{}{suffix}", decrypts_to.unwrap_or(base_name)), NAME_LIMIT / 2 + suffix.len());
    let restore = match &manifest_file.quoted {
        Some(quoted) => format!("tgploy restore --manifest {quoted}"),
        None => "tgploy restore --manifest THIS_FILE".into(),
    };
    lines.push(vec![Piece::Text("Or: ".into()), Piece::Code(restore)]);
    render_within_limit(lines, &["Restore", "Encrypted"])
}

/// What a pack's caption tells.
#[derive(Debug, Clone)]
pub(crate) struct PackCaption<'a> {
    /// The document's name (`….tar`, or `….tar.age`).
    pub(crate) file_name: &'a str,
    pub(crate) members: &'a [crate::deliver::pack::IndexMember],
    /// The members' bytes.
    pub(crate) bytes: u64,
    /// SHA-256 of the document.
    pub(crate) sha256: &'a str,
    pub(crate) encrypted: bool,
}

/// The caption of a pack: what is inside (count, buckets, first and last key, size) and
/// how to extract it by hand.
pub(crate) fn pack_caption(info: &PackCaption<'_>) -> String {
    let mut buckets: Vec<&str> = info.members.iter().map(|m| m.bucket.as_str()).collect();
    buckets.sort();
    buckets.dedup();
    let shown: Vec<String> = buckets.iter().take(5).map(|b| shorten(b, 64)).collect();
    let more = if buckets.len() > 5 { format!(" and {} more", buckets.len() - 5) } else { String::new() };
    let name = Name::new(info.file_name, NAME_LIMIT / 2);
    let mut lines = vec![
        vec![Piece::Bold("tgploy pack".into())],
        vec![Piece::Text(format!("{} objects, {} ({} bytes)", info.members.len(), human_size(info.bytes), info.bytes))],
        vec![Piece::Text(format!("Buckets: {}{more}", shown.join(", ")))],
    ];
    if let (Some(first), Some(last)) = (info.members.first(), info.members.last()) {
        lines.push(vec![
            Piece::Text("First: ".into()),
            Piece::Code(shorten(&format!("{}/{}", first.bucket, first.key), NAME_LIMIT)),
        ]);
        lines.push(vec![
            Piece::Text("Last: ".into()),
            Piece::Code(shorten(&format!("{}/{}", last.bucket, last.key), NAME_LIMIT)),
        ]);
    }
    lines.push(vec![Piece::Text("SHA-256: ".into()), Piece::Code(info.sha256.into())]);
    let extract = match (&name.quoted, info.encrypted) {
        (Some(quoted), false) => format!("tar -xf {quoted}"),
        (Some(quoted), true) => format!("age -d -i key.txt {quoted} | tar -x"),
        (None, false) => "tar -xf THIS_FILE".into(),
        (None, true) => "age -d -i key.txt THIS_FILE | tar -x".into(),
    };
    lines.push(vec![
        Piece::Text("Extract: ".into()),
        Piece::Code(extract),
        Piece::Text(format!(" (each object at BUCKET/KEY; {} lists them)", crate::deliver::pack::INDEX_NAME)),
    ]);
    render_within_limit(lines, &["Buckets", "Extract"])
}

/// The message that stands in for an empty object (Telegram rejects empty documents).
pub(crate) fn empty_object_message(bucket: &str, key: &str, etag: &str, last_modified: Option<&str>) -> String {
    let mut lines = vec![
        vec![Piece::Bold("tgploy backup: empty object".into())],
        vec![Piece::Text("Bucket: ".into()), Piece::Code(shorten(bucket, 64))],
        vec![Piece::Text("Key: ".into()), Piece::Code(shorten(key, 1024))],
        vec![Piece::Text("Size: 0 bytes (Telegram does not take empty documents; restore it as an empty file)".into())],
    ];
    if let Some(modified) = last_modified {
        lines.push(vec![Piece::Text(format!("Modified: {modified}"))]);
    }
    lines.push(vec![Piece::Text("ETag: ".into()), Piece::Code(shorten(etag, 80))]);
    lines.push(vec![
        Piece::Text("SHA-256: ".into()),
        Piece::Code("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()),
    ]);
    render(&lines).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible(html: &str) -> usize {
        // Strip tags, then unescape: what Telegram counts.
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        let out = out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&");
        utf16_len(&out)
    }

    fn info<'a>(key: &'a str, name: &'a str, part: Option<(u32, u32, u64, u64)>) -> CaptionInfo<'a> {
        CaptionInfo {
            bucket: "backups",
            key,
            etag: "9b2cf535f27731c974343645a3985328-12",
            size: 1 << 30,
            last_modified: Some("2026-11-27T21:49:19Z".into()),
            part,
            base_name: name,
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            decrypts_to: None,
        }
    }

    #[test]
    fn escapes_html_in_keys() {
        let caption = document_caption(&info("a <b> & c", "x", None));
        assert!(caption.contains("a &lt;b&gt; &amp; c"), "{caption}");
    }

    #[test]
    fn long_and_astral_keys_fit() {
        for key in ["k".repeat(1024), "😀".repeat(512), "<&>".repeat(341), "é/".repeat(300)] {
            let name = key.rsplit('/').next().unwrap_or(&key).to_string();
            for part in [None, Some((999, 999, 1 << 40, 19 << 20))] {
                let c = document_caption(&info(&key, &name, part));
                assert!(visible(&c) <= CAPTION_LIMIT, "{} > limit for {key:.20}", visible(&c));
            }
        }
    }

    #[test]
    fn shorten_cuts_the_middle() {
        assert_eq!(shorten("abcdefghij", 5), "ab…ij");
        assert_eq!(shorten("abc", 5), "abc");
        assert!(utf16_len(&shorten(&"😀".repeat(100), 9)) <= 9);
    }

    #[test]
    fn encrypted_captions_say_how_to_decrypt_with_the_stock_tool() {
        let mut i = info("db/dump.sql.gz", "dump.sql.gz.age", Some((1, 3, 0, 50)));
        i.decrypts_to = Some("dump.sql.gz");
        let c = document_caption(&i);
        assert!(c.contains("cat 'dump.sql.gz.age'.part* &gt; 'dump.sql.gz.age'"), "{c}");
        assert!(c.contains("age -d -i key.txt 'dump.sql.gz.age' &gt; 'dump.sql.gz'"), "{c}");
        let m = manifest_caption("b", "k", 3, 10, "00", "dump.sql.gz.age", Some("dump.sql.gz"));
        assert!(m.contains("age -d -i key.txt 'dump.sql.gz.age' &gt; 'dump.sql.gz'"), "{m}");
    }

    #[test]
    fn commands_quote_names_for_the_shell() {
        let c = document_caption(&info("k", "it's -x.tar", Some((1, 3, 0, 50))));
        assert!(c.contains(r"cat 'it'\''s -x.tar'.part* &gt; 'it'\''s -x.tar'"), "{c}");
        let c = document_caption(&info("k", "-rf .bin", Some((1, 3, 0, 50))));
        assert!(c.contains("cat './-rf .bin'.part* &gt; './-rf .bin'"), "{c}");
        let m = manifest_caption("b", "k", 3, 10, "00", "a&b.tar", None);
        assert!(m.contains("cat 'a&amp;b.tar'.part* &gt; 'a&amp;b.tar' &amp;&amp; sha256sum 'a&amp;b.tar'"), "{m}");
        assert!(m.contains("tgploy restore --manifest 'a&amp;b.tar.tgploy.json'"), "{m}");
    }

    #[test]
    fn shortened_names_get_no_command() {
        let long = format!("{}.tar", "n".repeat(150));
        let mut i = info("k", &long, Some((1, 3, 0, 50)));
        i.decrypts_to = Some(&long);
        let c = document_caption(&i);
        assert!(c.contains("…"), "{c}");
        assert!(!c.contains("cat ") && !c.contains("age -d -i key.txt '"), "{c}");
        assert!(c.contains("the name is too long to show the command"), "{c}");
        let m = manifest_caption("b", "k", 3, 10, "00", &long, Some(&long));
        assert!(!m.contains("cat ") && !m.contains("sha256sum") && !m.contains("key.txt '"), "{m}");
        assert!(m.contains("tgploy restore --manifest THIS_FILE"), "{m}");
    }

    #[test]
    fn names_full_of_quotes_still_fit() {
        let name = "'".repeat(90);
        let key = format!("{}/{name}", "'".repeat(900));
        let mut i = info(&key, &name, Some((999, 999, 1 << 40, 19 << 20)));
        i.decrypts_to = Some(&name);
        assert!(visible(&document_caption(&i)) <= CAPTION_LIMIT);
        let m = manifest_caption(&"b".repeat(64), &key, 999, 1 << 40, &"0".repeat(64), &name, Some(&name));
        assert!(visible(&m) <= CAPTION_LIMIT, "{}", visible(&m));
        assert!(m.contains("tgploy restore --manifest '"), "{m}");
    }

    #[test]
    fn part_caption_says_which_part_and_how_to_join() {
        let c = document_caption(&info("db/dump.sql.gz", "dump.sql.gz", Some((2, 3, 100, 50))));
        assert!(c.contains("Part 2 of 3"), "{c}");
        assert!(c.contains("cat 'dump.sql.gz'.part* &gt; 'dump.sql.gz'"), "{c}");
    }
}
