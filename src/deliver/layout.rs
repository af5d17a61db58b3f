//! How an object is laid out in Telegram: the name it is delivered and restored under,
//! how many parts it is cut into, and what each part file is called.

/// SHA-256 of nothing: what an empty object hashes to.
pub(crate) const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The name an object is restored under: the last segment of its key.
pub(crate) fn base_name(key: &str) -> String {
    let last = key.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
    let clean: String = last.chars().map(|c| if c.is_control() || c == '\\' { '_' } else { c }).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        return "object".to_string();
    }
    // Leave room for `.part0001` and `.tgploy.json` within common 255-byte name limits.
    if clean.len() > 200 {
        let mut end = 200;
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        return clean[..end].to_string();
    }
    clean.to_string()
}

/// How many parts an object of `size` bytes is split into (0 for an empty object).
pub(crate) fn part_count(size: u64, part_size: u64) -> u32 {
    size.div_ceil(part_size.max(1)) as u32
}

/// The file name of part `idx` of `count`: `name.part001`, zero-padded to the width of
/// the count (at least three digits) so `cat name.part*` joins them in order.
pub(crate) fn part_file_name(name: &str, idx: u32, count: u32) -> String {
    let width = count.to_string().len().max(3);
    format!("{name}.part{idx:0width$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_counts() {
        assert_eq!(base_name("db/2026/dump.sql.gz"), "dump.sql.gz");
        assert_eq!(base_name("dir/"), "dir");
        assert_eq!(base_name(""), "object");
        assert_eq!(base_name("a/.."), "object");
        assert_eq!(part_count(0, 10), 0);
        assert_eq!(part_count(10, 10), 1);
        assert_eq!(part_count(11, 10), 2);
        assert_eq!(part_file_name("x", 2, 55), "x.part002");
        assert_eq!(part_file_name("x", 2, 1200), "x.part0002");
    }
}
