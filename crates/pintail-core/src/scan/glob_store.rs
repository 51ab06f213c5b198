//! Globs with DuckDB's meaning, on top of DataFusion's listing tables.
//!
//! DataFusion matches a listing glob only against the part of a path left
//! after removing `key=value` folders, and, by default, only against the
//! file name; so `'data/*/*.parquet'` finds nothing in a hive-partitioned
//! folder. Pintail matches the whole pattern against the whole path instead,
//! through [`GlobStore`]: a read-only view of an object store whose listings
//! hold only the matching objects. The listing table is then rooted at the
//! hive base (the folder above the first `key=value` folder), so partition
//! columns are still parsed, and files are re-listed on every scan, so a
//! view over a glob sees new files as DuckDB's do.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use glob::{MatchOptions, Pattern};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};

/// How globs match: `*` and `?` stay within one folder, `**` spans folders.
pub(crate) const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// An object store that lists only the objects whose full path matches a glob.
#[derive(Debug)]
pub(crate) struct GlobStore {
    inner: Arc<dyn ObjectStore>,
    pattern: Pattern,
}

impl GlobStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, pattern: Pattern) -> Self {
        Self { inner, pattern }
    }

    fn keeps(pattern: &Pattern, meta: &ObjectMeta) -> bool {
        pattern.matches_with(meta.location.as_ref(), MATCH) && !super::resolve::is_hidden(meta)
    }
}

impl fmt::Display for GlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GlobStore({}, {})", self.inner, self.pattern)
    }
}

fn read_only() -> object_store::Error {
    object_store::Error::NotSupported {
        source: "a glob scan is read-only".into(),
    }
}

#[async_trait]
impl ObjectStore for GlobStore {
    async fn put_opts(&self, _location: &Path, _payload: PutPayload, _opts: PutOptions) -> object_store::Result<PutResult> {
        Err(read_only())
    }

    async fn put_multipart_opts(
        &self,
        _location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(read_only())
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        locations.map(|_| Err(read_only())).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let pattern = self.pattern.clone();
        self.inner
            .list(prefix)
            .try_filter(move |m| futures::future::ready(Self::keeps(&pattern, m)))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result.objects.retain(|m| Self::keeps(&self.pattern, m));
        Ok(result)
    }

    async fn copy_opts(&self, _from: &Path, _to: &Path, _options: CopyOptions) -> object_store::Result<()> {
        Err(read_only())
    }
}

/// Splits a path or URL with glob characters into the folder before the
/// first of them and the glob after it (`data/x=1/*.csv` → `data/x=1/`, `*.csv`).
pub(crate) fn split_glob(location: &str) -> Option<(&str, &str)> {
    let first = location.find(['*', '?', '['])?;
    let cut = location[..first].rfind('/').map_or(0, |i| i + 1);
    Some(location.split_at(cut))
}
