//! Allowed paths: the only files and URLs a session's SQL may read or
//! write, for servers and agents that let others run SQL
//! (`pintail serve --allow-path DIR`, the MCP server's roots).
//!
//! The rule sits where every byte passes: each object store the session
//! hands to DataFusion is wrapped in [`Confined`], which refuses any path
//! outside the roots before the store touches it. So `FROM 'path'`, every
//! `read_*` table function, globs, hive folders, `COPY ... TO`,
//! `CREATE EXTERNAL TABLE` and whatever DataFusion adds later are all
//! covered by one check, not one per feature. Local paths are compared
//! after links are resolved (a link under a root that points outside it is
//! refused, and `..` cannot climb out), listings are filtered the same way,
//! and a URL is allowed only under a root URL of the same scheme and host.
//! What does not go through object stores checks here itself: `ATTACH`,
//! `delta_scan` and `temp_directory` ([`crate::Session::check_path`]).
//!
//! This module does not decide the roots (the fronts do) and does not
//! authenticate anyone.

use std::fmt;
use std::ops::Range;
use std::path::{Component, Path as FsPath, PathBuf};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions,
};

use crate::error::{Error, ErrorKind, Result};
use crate::scan::is_url;

/// The roots under which a session may read and write.
#[derive(Debug, Clone)]
pub struct AllowedPaths {
    roots: Vec<Root>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Root {
    /// A local directory, with its links resolved.
    Local(PathBuf),
    /// A URL prefix: the store (`s3://bucket`) and the path under it, without
    /// slashes at either end (empty for the whole bucket).
    Remote { store: String, prefix: String },
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Root::Local(dir) => write!(f, "{}", dir.display()),
            Root::Remote { store, prefix } if prefix.is_empty() => write!(f, "{store}/"),
            Root::Remote { store, prefix } => write!(f, "{store}/{prefix}/"),
        }
    }
}

/// `scheme://host[:port]` of a URL, as stores are keyed.
pub(crate) fn store_of(url: &url::Url) -> String {
    format!("{}://{}", url.scheme(), &url[url::Position::BeforeHost..url::Position::AfterPort])
}

impl AllowedPaths {
    /// Roots given as local directories (which must exist; links are
    /// resolved now) or URL prefixes (`s3://bucket/data/`, `https://host/`).
    pub fn new<I, S>(roots: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for root in roots {
            let root = root.as_ref();
            let parsed = if is_url(root) {
                let url = url::Url::parse(root).map_err(|e| Error::option("allow-path", format!("'{root}' is not a URL: {e}")))?;
                if url.scheme() == "file" {
                    Root::Local(local_root(FsPath::new(url.path()))?)
                } else {
                    let prefix = url.path().trim_matches('/').to_owned();
                    Root::Remote { store: store_of(&url), prefix }
                }
            } else {
                Root::Local(local_root(FsPath::new(root))?)
            };
            if !out.contains(&parsed) {
                out.push(parsed);
            }
        }
        Ok(Self { roots: out })
    }

    /// The roots, as shown in errors.
    pub fn roots(&self) -> Vec<String> {
        self.roots.iter().map(ToString::to_string).collect()
    }

    fn refused(&self, shown: &str) -> Error {
        let roots = if self.roots.is_empty() { "nowhere".to_owned() } else { self.roots().join(", ") };
        Error::new(ErrorKind::NotAllowed, format!("'{shown}' is outside the allowed paths"))
            .with_hint(format!("this session may read and write only under {roots}"))
    }

    /// An error unless the local `path` (absolute, or relative to the
    /// current directory) is under a root once its links are resolved.
    pub fn check_path(&self, path: &FsPath) -> Result<()> {
        match resolve(path) {
            Some(real) if self.local_allows(&real) => Ok(()),
            _ => Err(self.refused(&path.display().to_string())),
        }
    }

    /// An error unless `location` (a path or URL as written in SQL) is
    /// under a root.
    pub fn check_location(&self, location: &str) -> Result<()> {
        if !is_url(location) {
            return self.check_path(FsPath::new(location));
        }
        let url = url::Url::parse(location).map_err(|_| self.refused(location))?;
        if url.scheme() == "file" {
            return self.check_path(FsPath::new(url.path()));
        }
        let path = url.path().trim_start_matches('/');
        if self.remote_allows(&store_of(&url), path) { Ok(()) } else { Err(self.refused(location)) }
    }

    fn local_allows(&self, real: &FsPath) -> bool {
        self.roots.iter().any(|r| matches!(r, Root::Local(dir) if real.starts_with(dir)))
    }

    fn remote_allows(&self, store: &str, path: &str) -> bool {
        self.roots.iter().any(|r| match r {
            Root::Remote { store: s, prefix } => s == store && under(path, prefix),
            Root::Local(_) => false,
        })
    }

    /// Whether some root lies under `prefix` of `store` (so a listing of
    /// `prefix` may show what is under that root).
    fn has_root_under(&self, store: &str, prefix: &str) -> bool {
        self.roots.iter().any(|r| match r {
            Root::Local(dir) if store == FILE => under(&dir.to_string_lossy()[1..], prefix),
            Root::Remote { store: s, prefix: p } => s == store && under(p, prefix),
            Root::Local(_) => false,
        })
    }

    /// An error if `plan` (subqueries included) writes or points a table
    /// outside the roots: `COPY ... TO` (DataFusion drops the store's error
    /// when a small file is written, so it is checked here first) and
    /// `CREATE EXTERNAL TABLE ... LOCATION`.
    pub(crate) fn check_plan(&self, plan: &LogicalPlan) -> Result<()> {
        let mut outcome = Ok(());
        let _ = plan.apply_with_subqueries(|node| {
            let locations: &[String] = match node {
                LogicalPlan::Copy(copy) => std::slice::from_ref(&copy.output_url),
                LogicalPlan::Ddl(DdlStatement::CreateExternalTable(table)) => &table.locations,
                _ => &[],
            };
            outcome = locations.iter().try_for_each(|l| self.check_location(l));
            Ok(if outcome.is_err() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
        });
        outcome
    }

    /// Whether `path` of the store `store` (`file://` for local files) may
    /// be read or written.
    fn allows(&self, store: &str, path: &Path) -> bool {
        if store == FILE {
            local_path(path).and_then(|p| resolve(&p)).is_some_and(|real| self.local_allows(&real))
        } else {
            self.remote_allows(store, path.as_ref())
        }
    }
}

const FILE: &str = "file://";

/// Whether `path` is `prefix` or below it, on `/` boundaries.
fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

fn local_root(dir: &FsPath) -> Result<PathBuf> {
    let dir = crate::scan::expand_home(&dir.to_string_lossy());
    let real = std::fs::canonicalize(&dir).map_err(|e| Error::option("allow-path", format!("cannot use '{dir}': {e}")))?;
    if !real.is_dir() {
        return Err(Error::option("allow-path", format!("'{dir}' is not a directory")));
    }
    Ok(real)
}

/// The file system path of a path in the `file://` store (rooted at `/`).
#[cfg_attr(not(feature = "native"), expect(clippy::unnecessary_wraps, reason = "the native build's conversion can fail"))]
fn local_path(path: &Path) -> Option<PathBuf> {
    #[cfg(feature = "native")]
    {
        object_store::local::LocalFileSystem::new().path_to_filesystem(path).ok()
    }
    #[cfg(not(feature = "native"))]
    {
        Some(PathBuf::from(format!("/{path}")))
    }
}

/// `path` made absolute with its links resolved, as the file system will
/// find it. A path that does not exist yet (a file about to be written) is
/// resolved up to its deepest existing folder; the names after that must
/// be plain names (no `..`). `None` if it cannot be resolved.
fn resolve(path: &FsPath) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let mut existing = absolute.as_path();
    let mut missing = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(mut real) => {
                for name in missing.iter().rev() {
                    real.push(name);
                }
                return Some(real);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match existing.components().next_back()? {
                    Component::Normal(name) => missing.push(name.to_owned()),
                    _ => return None,
                }
                existing = existing.parent()?;
            }
            Err(_) => return None,
        }
    }
}

/// An object store that refuses paths outside the allowed roots; see the
/// module docs.
#[derive(Debug)]
pub(crate) struct Confined {
    inner: Arc<dyn ObjectStore>,
    rule: Arc<Rule>,
}

/// The roots as they apply to one store.
#[derive(Debug)]
struct Rule {
    /// `scheme://host` of the store (`file://` for local files)
    store: String,
    allowed: Arc<AllowedPaths>,
    /// Local paths found allowed: a Parquet file is read in many ranges,
    /// and each check would resolve its links again (SQL cannot make links,
    /// so an answer does not go stale under it).
    known: Mutex<HashSet<Path>>,
}

/// How many allowed local paths a store remembers before it starts over.
const KNOWN: usize = 4096;

impl Rule {
    fn allows(&self, path: &Path) -> bool {
        if self.store != FILE {
            return self.allowed.remote_allows(&self.store, path.as_ref());
        }
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known.contains(path) {
            return true;
        }
        drop(known);
        let allowed = self.allowed.allows(&self.store, path);
        if allowed {
            known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
            if known.len() >= KNOWN {
                known.clear();
            }
            known.insert(path.clone());
        }
        allowed
    }

    fn denied(&self, path: &Path) -> object_store::Error {
        let shown = if self.store == FILE { format!("/{path}") } else { format!("{}/{path}", self.store) };
        object_store::Error::PermissionDenied { source: Box::new(self.allowed.refused(&shown)), path: shown }
    }

    fn check(&self, path: &Path) -> object_store::Result<()> {
        if self.allows(path) { Ok(()) } else { Err(self.denied(path)) }
    }
}

impl Confined {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, store: String, allowed: Arc<AllowedPaths>) -> Self {
        Self { inner, rule: Arc::new(Rule { store, allowed, known: Mutex::default() }) }
    }

    fn check(&self, path: &Path) -> object_store::Result<()> {
        self.rule.check(path)
    }

    /// What a listing of `prefix` may show: everything (under a root), the
    /// entries under roots (a prefix above some root), or nothing.
    fn listing(&self, prefix: Option<&Path>) -> object_store::Result<Listing> {
        let rule = &self.rule;
        if prefix.is_some_and(|p| rule.allows(p)) {
            // links below a local root may still point out of it
            return Ok(if rule.store == FILE { Listing::Filtered } else { Listing::All });
        }
        if rule.allowed.has_root_under(&rule.store, prefix.map_or("", Path::as_ref)) {
            return Ok(Listing::Filtered);
        }
        Err(rule.denied(&prefix.cloned().unwrap_or_default()))
    }

    fn filter(&self, listing: Listing, stream: BoxStream<'static, object_store::Result<ObjectMeta>>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match listing {
            Listing::All => stream,
            Listing::Filtered => {
                let rule = Arc::clone(&self.rule);
                stream.try_filter(move |meta| std::future::ready(rule.allows(&meta.location))).boxed()
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Listing {
    All,
    Filtered,
}

impl fmt::Display for Confined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl ObjectStore for Confined {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> object_store::Result<PutResult> {
        self.check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.check(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, object_store::Result<Path>>) -> BoxStream<'static, object_store::Result<Path>> {
        let rule = Arc::clone(&self.rule);
        let checked = locations.and_then(move |path| std::future::ready(rule.check(&path).map(|()| path)));
        self.inner.delete_stream(checked.boxed())
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match self.listing(prefix) {
            Ok(listing) => self.filter(listing, self.inner.list(prefix)),
            Err(e) => futures::stream::once(std::future::ready(Err(e))).boxed(),
        }
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match self.listing(prefix) {
            Ok(listing) => self.filter(listing, self.inner.list_with_offset(prefix, offset)),
            Err(e) => futures::stream::once(std::future::ready(Err(e))).boxed(),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let listing = self.listing(prefix)?;
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        if let Listing::Filtered = listing {
            let rule = &self.rule;
            result.objects.retain(|meta| rule.allows(&meta.location));
            result.common_prefixes.retain(|p| rule.allows(p) || rule.allowed.has_root_under(&rule.store, p.as_ref()));
        }
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

    use super::*;

    #[test]
    fn prefixes_match_on_slash_boundaries() {
        assert!(under("data/a.csv", "data"));
        assert!(under("data", "data/"));
        assert!(under("anything", ""));
        assert!(!under("database/a.csv", "data"));
        assert!(!under("dat", "data"));
    }

    #[test]
    fn urls_are_allowed_under_a_root_of_the_same_store() {
        let allowed = AllowedPaths::new(["s3://bucket/data/", "https://example.com"]).unwrap();
        assert!(allowed.check_location("s3://bucket/data/x.parquet").is_ok());
        assert!(allowed.check_location("s3://bucket/data").is_ok());
        assert!(allowed.check_location("https://example.com/any/file.csv").is_ok());
        let refused = allowed.check_location("s3://bucket/database/x.parquet").unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::NotAllowed);
        assert_eq!(refused.message(), "'s3://bucket/database/x.parquet' is outside the allowed paths");
        assert_eq!(refused.hint(), Some("this session may read and write only under s3://bucket/data/, https://example.com/"));
        assert!(allowed.check_location("s3://other/data/x").is_err());
        assert!(allowed.check_location("http://example.com/a.csv").is_err(), "another scheme");
        assert!(allowed.check_location("https://example.com:8443/a.csv").is_err(), "another port");
        assert!(allowed.has_root_under("s3://bucket", ""));
        assert!(!allowed.has_root_under("s3://bucket", "data/x"));
    }

    #[test]
    fn local_paths_resolve_links_and_dots() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.csv"), "x\n1\n").unwrap();
        let allowed = AllowedPaths::new([root.to_str().unwrap()]).unwrap();
        assert!(allowed.check_path(&root.join("sub/file.csv")).is_ok(), "a file not written yet");
        assert!(allowed.check_path(&root.join("new/deeper/file.csv")).is_ok());
        assert!(allowed.check_path(&root.join("sub/../../outside/secret.csv")).is_err());
        assert!(allowed.check_path(&root.join("missing/../../outside/secret.csv")).is_err());
        assert!(allowed.check_path(&outside.join("secret.csv")).is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
            assert!(allowed.check_path(&root.join("link/secret.csv")).is_err(), "a link out of the root");
            assert!(allowed.check_path(&root.join("link/new.csv")).is_err());
        }
        let err = AllowedPaths::new([tmp.path().join("nope").to_str().unwrap()]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidOption);
        assert!(err.message().contains("cannot use"), "{}", err.message());
    }
}
