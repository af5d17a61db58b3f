//! Which objects are delivered: include/exclude globs over the key, and size bounds.
//!
//! Globs follow shell conventions over the whole key: `*` stays within one path segment,
//! `**` crosses `/` (`db/**/*.gz`), `?` is one character, `{a,b}` alternatives.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::config::FilterConfig;
use crate::error::{Error, Result};

/// Which objects of a bucket are delivered, compiled from a [`FilterConfig`].
#[derive(Debug, Clone)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: GlobSet,
    min_size: Option<u64>,
    max_size: Option<u64>,
}

fn glob_set(globs: &[String]) -> Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for g in globs {
        let glob = GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::config(format!("invalid glob `{g}` in the config file: {e}")))?;
        set.add(glob);
    }
    set.build().map_err(|e| Error::config(format!("invalid globs in the config file: {e}")))
}

impl Filter {
    /// Compiles `cfg`; fails on an invalid glob.
    pub fn new(cfg: &FilterConfig) -> Result<Filter> {
        Ok(Filter {
            include: if cfg.include.is_empty() { None } else { Some(glob_set(&cfg.include)?) },
            exclude: glob_set(&cfg.exclude)?,
            min_size: cfg.min_size,
            max_size: cfg.max_size,
        })
    }

    pub(crate) fn matches(&self, key: &str, size: u64) -> bool {
        if self.min_size.is_some_and(|min| size < min) || self.max_size.is_some_and(|max| size > max) {
            return false;
        }
        if self.include.as_ref().is_some_and(|inc| !inc.is_match(key)) {
            return false;
        }
        !self.exclude.is_match(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str], min: Option<u64>, max: Option<u64>) -> Filter {
        Filter::new(&FilterConfig {
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            min_size: min,
            max_size: max,
        })
        .unwrap()
    }

    #[test]
    fn everything_by_default() {
        assert!(filter(&[], &[], None, None).matches("any/thing", 0));
    }

    #[test]
    fn include_exclude_and_sizes() {
        let f = filter(&["db/**/*.gz", "*.tar"], &["**/tmp/**"], Some(1), Some(100));
        assert!(f.matches("db/2026/x.gz", 10));
        assert!(f.matches("a.tar", 10));
        assert!(!f.matches("sub/a.tar", 10), "* stays within a segment");
        assert!(!f.matches("db/tmp/x.gz", 10));
        assert!(!f.matches("db/x.gz", 0));
        assert!(!f.matches("db/x.gz", 101));
    }
}
