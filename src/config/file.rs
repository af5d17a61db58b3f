//! The config file: reading it (every key checked against the settings table, errors
//! with the line they are on) and writing it for `setup`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::io::Write;

use super::load::{Given, duration, globs, size, topic};
use super::settings::SETTINGS;
use super::{BucketConfig, ChatRef, FilterConfig, S3Settings, Secret};
use crate::error::{Error, Result};
use crate::sink::limits::CLOUD_API_URL;
use crate::sizes::human_size;

/// The config file's values, by dotted key, with the line each is on.
#[derive(Default)]
pub(super) struct FileValues {
    pub(crate) path: Option<PathBuf>,
    pub(crate) values: BTreeMap<String, (Given, usize)>,
    pub(crate) buckets: BTreeMap<String, BucketConfig>,
}

pub(super) fn read_config_file(path: &Path) -> Result<FileValues> {
    use toml::de::{DeTable, DeValue};
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read config file {}: {e}", path.display())))?;
    warn_if_readable_by_others(path);
    // Errors stay on one line: the file, the line, what is wrong.
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let invalid = |offset: usize, msg: &str| {
        Error::config(format!("invalid config file {} (line {}): {msg}", path.display(), line_of(offset)))
    };
    let root =
        DeTable::parse(&text).map_err(|e| invalid(e.span().map(|s| s.start).unwrap_or(0), e.message().trim()))?;
    let mut file = FileValues { path: Some(path.to_path_buf()), ..FileValues::default() };
    let mut add = |key: String, value: &toml::Spanned<DeValue<'_>>| {
        let offset = value.span().start;
        let given = given(value.get_ref()).map_err(|why| invalid(offset, &format!("`{key}`: {why}")))?;
        if !is_known_key(&key) {
            return Err(invalid(offset, &unknown_key(&key)));
        }
        file.values.insert(key, (given, line_of(offset)));
        Ok(())
    };
    for (name, value) in root.get_ref() {
        let name: &str = name.get_ref();
        match value.get_ref() {
            DeValue::Table(section) if name == "buckets" => {
                for (bucket, table) in section {
                    let bucket: &str = bucket.get_ref();
                    let DeValue::Table(table) = table.get_ref() else {
                        return Err(invalid(table.span().start, &format!("`buckets.{bucket}` must be a section")));
                    };
                    let section = bucket_section(table).map_err(|(offset, why)| invalid(offset, &why))?;
                    if let Some(filter) = &section.filter {
                        validate_filter(filter, &format!("buckets.{bucket}"))?;
                    }
                    file.buckets.insert(bucket.to_string(), section);
                }
            }
            DeValue::Table(section) => {
                for (key, value) in section {
                    add(format!("{name}.{}", key.get_ref()), value)?;
                }
            }
            _ => add(name.to_string(), value)?,
        }
    }
    Ok(file)
}

/// A TOML value as given; tables are sections, not values.
fn given(value: &toml::de::DeValue<'_>) -> std::result::Result<Given, String> {
    use toml::de::DeValue;
    Ok(match value {
        DeValue::String(s) => Given::Text(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            let digits = digits.trim_start_matches("0x").trim_start_matches("0o").trim_start_matches("0b");
            Given::Text(i64::from_str_radix(digits, i.radix()).map(|n| n.to_string()).unwrap_or(digits.to_string()))
        }
        DeValue::Float(f) => Given::Text(f.as_str().to_string()),
        DeValue::Boolean(b) => Given::Text(b.to_string()),
        DeValue::Datetime(d) => Given::Text(d.to_string()),
        DeValue::Array(items) => Given::List(
            items
                .iter()
                .map(|v| {
                    v.get_ref().as_str().map(str::to_string).ok_or_else(|| "expected a list of strings".to_string())
                })
                .collect::<std::result::Result<_, _>>()?,
        ),
        DeValue::Table(_) => return Err("expected a value, not a section".into()),
    })
}

fn is_known_key(key: &str) -> bool {
    SETTINGS.iter().any(|s| s.key == key || (s.secret && key.strip_suffix("_file") == Some(s.key)))
}

/// "unknown setting `x`", with the closest known key when there is a close one.
fn unknown_key(key: &str) -> String {
    let closest = SETTINGS
        .iter()
        .map(|s| (strsim::jaro_winkler(key, s.key), s.key))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score > 0.85);
    match closest {
        Some((_, known)) => format!("unknown setting `{key}`; did you mean `{known}`?"),
        None => format!("unknown setting `{key}` (the README lists every setting)"),
    }
}

/// A `[buckets.NAME]` section: a filter of its own (include, exclude, min_size,
/// max_size), a destination of its own (chat_id, topic_id).
fn bucket_section(table: &toml::de::DeTable<'_>) -> std::result::Result<BucketConfig, (usize, String)> {
    let mut bucket = BucketConfig::default();
    let mut filter = FilterConfig::default();
    let mut has_filter = false;
    for (key, value) in table {
        let offset = value.span().start;
        let key: &str = key.get_ref();
        let fail = |why: String| (offset, format!("`{key}`: {why}"));
        if key == "expect_every" {
            bucket.watches = watches(value.get_ref()).map_err(fail)?;
            continue;
        }
        let given = given(value.get_ref()).map_err(fail)?;
        match key {
            "include" => filter.include = globs(&given).map_err(fail)?,
            "exclude" => filter.exclude = globs(&given).map_err(fail)?,
            "min_size" => filter.min_size = Some(size(&given).map_err(fail)?),
            "max_size" => filter.max_size = Some(size(&given).map_err(fail)?),
            "chat_id" => bucket.chat = Some(given.text().map_err(fail)?.parse::<ChatRef>().map_err(fail)?),
            "topic_id" => bucket.topic = Some(topic(&given).map_err(fail)?),
            "expect_grace" => bucket.grace = Some(duration(&given).map_err(fail)?),
            other => {
                return Err((
                    offset,
                    format!(
                        "unknown key `{other}` in a bucket's section (include, exclude, min_size, max_size, \
                         chat_id, topic_id, expect_every, expect_grace)"
                    ),
                ));
            }
        }
        has_filter |= matches!(key, "include" | "exclude" | "min_size" | "max_size");
    }
    bucket.filter = has_filter.then_some(filter);
    Ok(bucket)
}

/// `expect_every`: a period for the whole bucket (`"24h"`), or a table of key prefixes
/// with their periods (`{ "db/" = "24h", "wal/" = "15m" }`).
fn watches(value: &toml::de::DeValue<'_>) -> std::result::Result<Vec<(String, Duration)>, String> {
    use toml::de::DeValue;
    let period = |value: &DeValue<'_>| -> std::result::Result<Duration, String> {
        let period = duration(&given(value)?)?;
        if period.is_zero() {
            return Err("a period of 0 would always be overdue; write one like 24h or 15m".into());
        }
        Ok(period)
    };
    match value {
        DeValue::Table(prefixes) => {
            let mut watches = Vec::new();
            for (prefix, value) in prefixes {
                let prefix: &str = prefix.get_ref();
                watches.push((prefix.to_string(), period(value.get_ref()).map_err(|e| format!("`{prefix}`: {e}"))?));
            }
            if watches.is_empty() {
                return Err("an empty table watches nothing; give prefixes with periods, or one period".into());
            }
            Ok(watches)
        }
        other => Ok(vec![(String::new(), period(other)?)]),
    }
}

pub(super) fn read_secret_file(path: &Path, key: &str) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read {key} {}: {e}", path.display())))?;
    Ok(Secret::new(text.trim()))
}

#[cfg(unix)]
pub(super) fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "config file {} is readable by other users; it holds secrets: run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

#[cfg(not(unix))]
pub(super) fn warn_if_readable_by_others(_path: &Path) {}

pub(super) fn validate_filter(filter: &FilterConfig, section: &str) -> Result<()> {
    if let (Some(min), Some(max)) = (filter.min_size, filter.max_size)
        && min > max
    {
        return Err(Error::config(format!(
            "[{section}] min_size ({}) is larger than max_size ({}) in the config file",
            human_size(min),
            human_size(max)
        )));
    }
    Ok(())
}

/// What `setup` writes: the answers it checked.
pub(crate) struct NewFile<'a> {
    pub(crate) part_size: u64,
    pub(crate) database_path: Option<&'a Path>,
    pub(crate) s3: &'a S3Settings,
    pub(crate) bot_token: &'a Secret,
    pub(crate) more_bot_tokens: &'a [Secret],
    pub(crate) api_url: &'a str,
    pub(crate) backup_chat: Option<&'a ChatRef>,
    pub(crate) admin_chat: Option<&'a ChatRef>,
    pub(crate) webhook_token: Option<&'a Secret>,
}

/// The config file `setup` writes, commented.
pub(crate) fn render(f: &NewFile<'_>) -> String {
    let mut out = String::from(
        "# Written by `tgploy setup`. Keep it private (chmod 600): it holds secrets.\n\
         # Every key is explained in the README and in examples/config.toml.\n\n",
    );
    out.push_str(&format!("part_size = {}\n", toml_str(&human_size_exact(f.part_size))));
    if let Some(db) = &f.database_path {
        out.push_str(&format!("database_path = {}\n", toml_str(&db.display().to_string())));
    }
    out.push_str("\n[s3]\n");
    out.push_str(&format!("endpoint = {}\n", toml_str(&f.s3.endpoint)));
    out.push_str(&format!("region = {}\n", toml_str(&f.s3.region)));
    out.push_str(&format!("access_key = {}\n", toml_str(&f.s3.access_key)));
    out.push_str(&format!("secret_key = {}\n", toml_str(f.s3.secret_key.expose())));
    out.push_str("\n[telegram]\n");
    out.push_str(&format!("bot_token = {}\n", toml_str(f.bot_token.expose())));
    if !f.more_bot_tokens.is_empty() {
        let tokens: Vec<String> = f.more_bot_tokens.iter().map(|t| toml_str(t.expose())).collect();
        out.push_str(&format!("bot_tokens = [{}]\n", tokens.join(", ")));
    }
    if let Some(c) = &f.backup_chat {
        out.push_str(&format!("backup_chat_id = {}\n", toml_chat(c)));
    }
    if let Some(c) = &f.admin_chat {
        out.push_str(&format!("admin_chat_id = {}\n", toml_chat(c)));
    }
    if f.api_url != CLOUD_API_URL {
        out.push_str(&format!("api_url = {}\n", toml_str(f.api_url)));
    }
    if let Some(t) = &f.webhook_token {
        out.push_str("\n[webhook]\n");
        out.push_str(&format!("secret_token = {}\n", toml_str(t.expose())));
    }
    out
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_chat(c: &ChatRef) -> String {
    match c {
        ChatRef::Id(id) => id.to_string(),
        ChatRef::Username(name) => toml_str(name),
    }
}

/// `19MiB` rather than `19.0 MiB`, so the file reads back to the same number.
fn human_size_exact(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Writes `text` to `path` with mode 0600 (its directory 0700 when created), atomically.
/// An existing file is kept beside it as `NAME.bak-UNIXTIME`; returns that path.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<Option<PathBuf>> {
    let fail = |e: std::io::Error| Error::local(format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    crate::private_files::create_parent(path).map_err(fail)?;
    let backup = if path.exists() {
        let name = format!(
            "{}.bak-{}",
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "config.toml".into()),
            crate::time::now()
        );
        let backup = path.with_file_name(name);
        std::fs::copy(path, &backup).map_err(fail)?;
        crate::private_files::restrict(&backup).map_err(fail)?;
        Some(backup)
    } else {
        None
    };
    // tempfile creates the file with mode 0600.
    let mut tmp = tempfile::Builder::new().prefix(".tgploy-config").tempfile_in(dir).map_err(fail)?;
    tmp.write_all(text.as_bytes()).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    crate::private_files::restrict(path).map_err(fail)?;
    Ok(backup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_written_exactly() {
        assert_eq!(human_size_exact(19 << 20), "19MiB");
        assert_eq!(human_size_exact(1950 << 20), "1950MiB");
        assert_eq!(human_size_exact(4096), "4KiB");
        assert_eq!(human_size_exact(1 << 30), "1GiB");
    }
}
