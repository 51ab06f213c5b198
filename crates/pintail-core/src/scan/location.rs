//! Where a scan's files are: locations as written (paths, URLs, globs,
//! `{a,b}` braces, `~`) turned into DataFusion listing URLs, and how the
//! files found are shown back to the user. Listing and reading are not here.

use std::sync::Arc;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionState;
use datafusion::execution::object_store::ObjectStoreRegistry as _;
use object_store::ObjectMeta;

use super::options::ScanOptions;
use super::scan_store::{self, ScanStore};
use crate::error::{Error, Result, from_datafusion};
use crate::stores::Stores;

/// Expands `{a,b}` alternatives (nested and repeated) into separate patterns.
pub(crate) fn expand_braces(pattern: &str) -> Result<Vec<String>> {
    let Some(open) = pattern.find('{') else {
        return Ok(vec![pattern.to_string()]);
    };
    let mut depth = 0;
    let mut close = None;
    let mut splits = vec![];
    for (i, ch) in pattern[open..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => splits.push(open + i),
            _ => {}
        }
    }
    let close = close.ok_or_else(|| Error::plan(format!("unclosed '{{' in '{pattern}'")))?;
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(splits);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt = &pattern[w[0] + 1..w[1]];
        for expanded in expand_braces(&format!("{head}{alt}{tail}"))? {
            if !out.contains(&expanded) {
                out.push(expanded);
            }
        }
    }
    Ok(out)
}

/// Whether a location names a URL (`s3://...`) rather than a local path.
pub(crate) fn is_url(location: &str) -> bool {
    location.split_once("://").is_some_and(|(scheme, _)| {
        scheme.len() > 1 && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
    })
}

pub(crate) fn expand_home(location: &str) -> String {
    match location.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => format!("{}/{rest}", std::path::Path::new(&home).display()),
            None => location.to_string(),
        },
        None => location.to_string(),
    }
}

/// The URL of a folder given as a path or URL prefix (`data/`, `s3://b/x/`).
fn folder_url(base: &str) -> Result<url::Url> {
    let bad = |e: &dyn std::fmt::Display| Error::io(format!("cannot use '{base}' as a folder: {e}"));
    if is_url(base) {
        return url::Url::parse(base).map_err(|e| bad(&e));
    }
    local_folder_url(base)
}

#[cfg(not(target_arch = "wasm32"))]
fn local_folder_url(base: &str) -> Result<url::Url> {
    let bad = |e: &dyn std::fmt::Display| Error::io(format!("cannot use '{base}' as a folder: {e}"));
    let path = std::path::Path::new(base);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| bad(&e))?.join(path)
    };
    let url = url::Url::from_directory_path(&absolute).map_err(|()| bad(&"not an absolute path"))?;
    // parse again so `..` and `.` segments are resolved
    url::Url::parse(url.as_str()).map_err(|e| bad(&e))
}

#[cfg(target_arch = "wasm32")]
fn local_folder_url(base: &str) -> Result<url::Url> {
    Err(Error::io(format!("'{base}' is a local path, and this build has no file system"))
        .with_hint("use a URL, or a table registered by the host page"))
}

/// A location ready to list: the listing URL, and how its files are shown.
#[derive(Debug, Clone)]
pub(crate) struct ScanUrl {
    pub(crate) url: ListingTableUrl,
    pub(crate) shown: Shown,
}

/// How the files of one location are shown to the user, in the `filename`
/// column and in errors: as written, so URLs stay URLs, relative paths stay
/// relative (when the file is below the current directory) and absolute
/// paths stay absolute, as DuckDB shows them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Shown {
    /// `scheme://authority` followed by `/` and the object path
    Url(String),
    /// relative to the current directory, given as an object path with a
    /// trailing `/` (`home/me/`); files outside it are shown absolute
    Relative(String),
    /// absolute paths
    Absolute,
}

impl Shown {
    fn of(location: &str) -> Self {
        if is_url(location) {
            let base = url::Url::parse(location).map(|u| u[..url::Position::BeforePath].to_string());
            return Self::Url(base.unwrap_or_default());
        }
        if location.starts_with('/') {
            return Self::Absolute;
        }
        match std::env::current_dir() {
            Ok(cwd) => Self::Relative(format!("{}/", cwd.display().to_string().trim_matches('/'))),
            Err(_) => Self::Absolute,
        }
    }

    /// The path of an object (as listed, without a leading `/`) as shown.
    pub(crate) fn path(&self, object_path: &str) -> String {
        match self {
            Self::Url(base) => format!("{base}/{object_path}"),
            Self::Relative(cwd) => object_path
                .strip_prefix(cwd.as_str())
                .map_or_else(|| format!("/{object_path}"), str::to_string),
            Self::Absolute => format!("/{object_path}"),
        }
    }
}

/// A location as a DataFusion listing URL. Globs, and files read with
/// `skip`, go through a [`ScanStore`]: globs so they match whole paths (the
/// table is rooted at the hive base), `skip` so leading lines are cut.
pub(crate) fn table_url(state: &SessionState, stores: &Stores, location: &str, opts: &ScanOptions) -> Result<ScanUrl> {
    let location = expand_home(location);
    let shown = Shown::of(&location);
    let bad = |e: &dyn std::fmt::Display| Error::io(format!("cannot use '{location}' as a path or URL: {e}"));
    let skip = opts.csv.skip;
    let Some((base, glob)) = scan_store::split_glob(&location) else {
        let url = ListingTableUrl::parse(&location).map_err(|e| bad(&e))?;
        if !opts.store.is_empty() {
            stores.configure(url.get_url(), &opts.store)?;
        }
        if skip == 0 {
            return Ok(ScanUrl { url, shown });
        }
        let inner = state.runtime_env().object_store(&url).map_err(|e| from_datafusion(e, None))?;
        let view = register(stores, ScanStore::new(inner, None, skip), (url.object_store().as_str(), skip))?;
        let url = view.join(url.get_url().path()).map_err(|e| bad(&e))?;
        let url = ListingTableUrl::parse(url.as_str()).map_err(|e| bad(&e))?;
        return Ok(ScanUrl { url, shown });
    };
    let base_url = folder_url(base)?;
    if !opts.store.is_empty() {
        stores.configure(&base_url, &opts.store)?;
    }
    let store_url = datafusion::execution::object_store::ObjectStoreUrl::parse(&base_url[..url::Position::BeforePath])
        .map_err(|e| from_datafusion(e, None))?;
    let inner = state.runtime_env().object_store(&store_url).map_err(|e| from_datafusion(e, None))?;
    let base_path = object_store::path::Path::from_url_path(base_url.path()).map_err(|e| bad(&e))?;
    let full = if base_path.as_ref().is_empty() {
        glob.to_string()
    } else {
        format!("{}/{glob}", glob::Pattern::escape(base_path.as_ref()))
    };
    let pattern = glob::Pattern::new(&full).map_err(|e| bad(&e))?;
    // root the table above the `key=value` folders of the base
    let mut root: Vec<&str> = base_path.as_ref().split('/').filter(|s| !s.is_empty()).collect();
    while root.last().is_some_and(|s| s.contains('=')) {
        root.pop();
    }
    let view = register(
        stores,
        ScanStore::new(inner, Some(pattern), skip),
        (&base_url[..url::Position::AfterPort], &full, skip),
    )?;
    let mut root_path = String::new();
    for seg in root {
        root_path.push_str(seg);
        root_path.push('/');
    }
    let table = view.join(&root_path).map_err(|e| bad(&e))?;
    let everything = glob::Pattern::new("**").map_err(|e| bad(&e))?;
    let url = ListingTableUrl::try_new(table, Some(everything)).map_err(|e| bad(&e))?;
    Ok(ScanUrl { url, shown })
}

/// Registers a [`ScanStore`] under a URL derived from what it views, and
/// returns that URL (`pintail-scan://s<hash>/`).
fn register(stores: &Stores, store: ScanStore, key: impl std::hash::Hash) -> Result<url::Url> {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let url = format!("pintail-scan://s{:016x}/", h.finish());
    let url = url::Url::parse(&url).map_err(|e| Error::internal(format!("cannot make the scan URL '{url}': {e}"), None))?;
    stores.register_store(&url, Arc::new(store));
    Ok(url)
}

/// Files that listing should skip: `_SUCCESS`, `.crc`, editor droppings.
pub(crate) fn is_hidden(meta: &ObjectMeta) -> bool {
    meta.location
        .filename()
        .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}

pub(crate) fn no_files(pattern: &str) -> Error {
    let mut e = Error::io(format!("no files match '{pattern}'"));
    if !is_url(pattern)
        && let Ok(cwd) = std::env::current_dir()
    {
        e = e.with_hint(format!("relative paths start at the current directory, {}", cwd.display()));
    }
    e
}

/// The table name a file scan gets without an alias: the file's stem.
pub(crate) fn alias_for(location: &str) -> String {
    let last = location.trim_end_matches('/').rsplit('/').next().unwrap_or(location);
    let stem = last.split('.').next().unwrap_or(last);
    let clean: String = stem.chars().filter(|c| !"*?[]{}".contains(*c)).collect();
    if clean.is_empty() { "file".into() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces() {
        assert_eq!(expand_braces("a/{x,y}/*.csv").unwrap(), vec!["a/x/*.csv", "a/y/*.csv"]);
        assert_eq!(expand_braces("{a,b}{1,2}").unwrap(), vec!["a1", "a2", "b1", "b2"]);
        assert_eq!(expand_braces("{a,{b,c}}").unwrap(), vec!["a", "b", "c"]);
        assert!(expand_braces("a{b").is_err());
    }

    #[test]
    fn aliases() {
        assert_eq!(alias_for("data/cars.csv"), "cars");
        assert_eq!(alias_for("s3://b/x/flights.parquet"), "flights");
        assert_eq!(alias_for("data/*.parquet"), "file");
    }

    #[test]
    fn shown_paths() {
        let rel = Shown::Relative("home/me/".into());
        assert_eq!(rel.path("home/me/data/a.csv"), "data/a.csv");
        assert_eq!(rel.path("srv/b.csv"), "/srv/b.csv");
        assert_eq!(Shown::Absolute.path("home/me/a.csv"), "/home/me/a.csv");
        assert_eq!(Shown::of("s3://bucket/x/*.csv"), Shown::Url("s3://bucket".into()));
        assert_eq!(Shown::Url("s3://bucket".into()).path("x/a.csv"), "s3://bucket/x/a.csv");
        assert_eq!(Shown::of("/abs/x.csv"), Shown::Absolute);
    }
}
