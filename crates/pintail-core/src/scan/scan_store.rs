//! A read-only view of an object store, shaped for one scan: whole-path
//! globs with DuckDB's meaning, and leading lines cut from text files.
//!
//! DataFusion matches a listing glob only against the part of a path left
//! after removing `key=value` folders, and, by default, only against the
//! file name; so `'data/*/*.parquet'` finds nothing in a hive-partitioned
//! folder. Pintail matches the whole pattern against the whole path instead:
//! [`ScanStore`] lists only the matching objects. The listing table is then
//! rooted at the hive base (the folder above the first `key=value` folder),
//! so partition columns are still parsed, and files are re-listed on every
//! scan, so a view over a glob sees new files as DuckDB's do.
//!
//! DataFusion's CSV reader cannot skip lines before the header
//! (`read_csv(skip = N)`); the view does it instead: every object appears
//! without its first N lines, with sizes and byte ranges shifted to match,
//! so DataFusion's schema inference and its parallel reading of byte ranges
//! work unchanged. This needs the bytes as stored, so it is for
//! uncompressed files only (the caller refuses compressed ones).
//!
//! What this view does not do: writing (every write is refused) or
//! interpreting file contents beyond counting newlines.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use glob::{MatchOptions, Pattern};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// How globs match: `*` and `?` stay within one folder, `**` spans folders.
pub(crate) const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// An object store that lists only the objects whose full path matches a
/// glob, and shows each object without its first `skip_lines` lines.
#[derive(Debug)]
pub(crate) struct ScanStore {
    inner: Arc<dyn ObjectStore>,
    pattern: Option<Pattern>,
    skip: Arc<Skip>,
}

/// Leading lines cut from every object, and where each object's rest starts.
#[derive(Debug)]
struct Skip {
    lines: usize,
    /// the cut of each object seen so far, with the version it was made for
    cuts: Mutex<HashMap<Path, Cut>>,
}

/// How many bytes the skipped lines of one version of an object take.
#[derive(Debug, Clone)]
struct Cut {
    bytes: u64,
    size: u64,
    version: Version,
}

/// What tells two versions of an object apart: modification time (in
/// microseconds) and entity tag.
type Version = (i64, Option<String>);

fn version(meta: &ObjectMeta) -> Version {
    (meta.last_modified.timestamp_micros(), meta.e_tag.clone())
}

/// How much of an object the first look at it reads; doubled until enough
/// lines are found.
const FIRST_LOOK: u64 = 64 * 1024;

impl ScanStore {
    /// A view of `inner` listing what matches `pattern` (everything when
    /// `None`), each object without its first `skip_lines` lines.
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, pattern: Option<Pattern>, skip_lines: usize) -> Self {
        let skip = Arc::new(Skip {
            lines: skip_lines,
            cuts: Mutex::new(HashMap::new()),
        });
        Self { inner, pattern, skip }
    }

    fn keeps(pattern: Option<&Pattern>, meta: &ObjectMeta) -> bool {
        pattern.is_none_or(|p| p.matches_with(meta.location.as_ref(), MATCH)) && !super::location::is_hidden(meta)
    }

    /// Reads `options.range` of the object without its cut (the whole rest
    /// when no range is given); the result's range is in the shifted object,
    /// its metadata the stored object's, to check the cut against.
    async fn shifted_get(&self, location: &Path, mut options: GetOptions, cut: &Cut) -> object_store::Result<GetResult> {
        let size = cut.size.saturating_sub(cut.bytes);
        let wanted = match options.range.take() {
            None => 0..size,
            Some(GetRange::Bounded(r)) => r.start..r.end.min(size),
            Some(GetRange::Offset(o)) => o..size,
            Some(GetRange::Suffix(n)) => size.saturating_sub(n)..size,
        };
        if wanted.start >= wanted.end {
            if wanted.start > size || (wanted.start == size && size > 0) {
                return Err(object_store::Error::Generic {
                    store: "ScanStore",
                    source: format!("range {wanted:?} is beyond the end of '{location}' ({size} bytes)").into(),
                });
            }
            // nothing to read; still ask for the metadata, to check the cut
            let mut result = self.inner.get_opts(location, GetOptions { head: true, ..options }).await?;
            result.payload = GetResultPayload::Stream(futures::stream::empty().boxed());
            result.range = 0..0;
            return Ok(result);
        }
        options.range = Some(GetRange::Bounded(wanted.start + cut.bytes..wanted.end + cut.bytes));
        let result = self.inner.get_opts(location, options).await?;
        let range = result.range.start - cut.bytes..result.range.end - cut.bytes;
        let (meta, attributes) = (result.meta.clone(), result.attributes.clone());
        // a local file handed out as a `File` would be read from its start by
        // DataFusion when it scans the whole file; a stream honours the range
        let payload = GetResultPayload::Stream(result.into_stream());
        Ok(GetResult { payload, meta, range, attributes })
    }
}

impl Skip {
    fn cached(&self, location: &Path) -> Option<Cut> {
        self.cuts.lock().ok().and_then(|m| m.get(location).cloned())
    }

    /// The cut of the version of the object `meta` describes: remembered if
    /// that version was seen before, else found by reading its first lines.
    async fn cut(&self, inner: &dyn ObjectStore, meta: &ObjectMeta) -> object_store::Result<Cut> {
        if self.lines == 0 {
            return Ok(Cut { bytes: 0, size: meta.size, version: version(meta) });
        }
        if let Some(c) = self.cached(&meta.location).filter(|c| c.size == meta.size && c.version == version(meta)) {
            return Ok(c);
        }
        let (mut seen, mut offset, mut look) = (0, 0u64, FIRST_LOOK);
        let mut bytes = None;
        while bytes.is_none() && offset < meta.size {
            let end = (offset + look).min(meta.size);
            let chunk = inner.get_range(&meta.location, offset..end).await?;
            for (i, _) in chunk.iter().enumerate().filter(|(_, b)| **b == b'\n') {
                seen += 1;
                if seen == self.lines {
                    bytes = Some(offset + i as u64 + 1);
                    break;
                }
            }
            offset = end;
            look *= 2;
        }
        // fewer lines than skipped: nothing is left
        let cut = Cut { bytes: bytes.unwrap_or(meta.size), size: meta.size, version: version(meta) };
        if let Ok(mut m) = self.cuts.lock() {
            m.insert(meta.location.clone(), cut.clone());
        }
        Ok(cut)
    }

    async fn shift_meta(&self, inner: &dyn ObjectStore, mut meta: ObjectMeta) -> object_store::Result<ObjectMeta> {
        meta.size = meta.size.saturating_sub(self.cut(inner, &meta).await?.bytes);
        Ok(meta)
    }
}

impl fmt::Display for ScanStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScanStore({}", self.inner)?;
        if let Some(p) = &self.pattern {
            write!(f, ", {p}")?;
        }
        if self.skip.lines > 0 {
            write!(f, ", skip {} lines", self.skip.lines)?;
        }
        write!(f, ")")
    }
}

fn read_only() -> object_store::Error {
    object_store::Error::NotSupported {
        source: "a file scan is read-only".into(),
    }
}

#[async_trait]
impl ObjectStore for ScanStore {
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
        if self.skip.lines == 0 {
            return self.inner.get_opts(location, options).await;
        }
        if options.head {
            let mut result = self.inner.get_opts(location, options).await?;
            result.meta = self.skip.shift_meta(self.inner.as_ref(), result.meta).await?;
            return Ok(result);
        }
        // the cut of the version seen last; checked against the version read
        let mut cut = match self.skip.cached(location) {
            Some(c) => c,
            None => self.skip.cut(self.inner.as_ref(), &self.inner.head(location).await?).await?,
        };
        loop {
            let result = self.shifted_get(location, options.clone(), &cut).await?;
            if result.meta.size == cut.size && version(&result.meta) == cut.version {
                let mut result = result;
                result.meta.size = cut.size.saturating_sub(cut.bytes);
                return Ok(result);
            }
            // the object changed since its cut was made: cut it again
            cut = self.skip.cut(self.inner.as_ref(), &result.meta).await?;
        }
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        if self.skip.lines == 0 {
            return self.inner.get_ranges(location, ranges).await;
        }
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            let options = GetOptions::default().with_range(Some(r.clone()));
            out.push(self.get_opts(location, options).await?.bytes().await?);
        }
        Ok(out)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        locations.map(|_| Err(read_only())).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let pattern = self.pattern.clone();
        let listed = self
            .inner
            .list(prefix)
            .try_filter(move |m| futures::future::ready(Self::keeps(pattern.as_ref(), m)));
        if self.skip.lines == 0 {
            return listed.boxed();
        }
        let (skip, inner) = (Arc::clone(&self.skip), Arc::clone(&self.inner));
        // the first lines of several objects are read at once
        listed
            .map_ok(move |m| {
                let (skip, inner) = (Arc::clone(&skip), Arc::clone(&inner));
                async move { skip.shift_meta(inner.as_ref(), m).await }
            })
            .try_buffered(16)
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result.objects.retain(|m| Self::keeps(self.pattern.as_ref(), m));
        if self.skip.lines > 0 {
            let cuts = result.objects.into_iter().map(|m| self.skip.shift_meta(self.inner.as_ref(), m));
            result.objects = futures::stream::iter(cuts).buffered(16).try_collect().await?;
        }
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

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;
    use object_store::chunked::ChunkedStore;
    use object_store::memory::InMemory;

    use super::*;

    /// A store holding `text` at `f.csv`, streamed in chunks of `chunk` bytes.
    async fn store(text: &'static str, chunk: usize) -> Arc<dyn ObjectStore> {
        let mem = InMemory::new();
        mem.put(&Path::from("f.csv"), PutPayload::from_static(text.as_bytes())).await.unwrap();
        Arc::new(ChunkedStore::new(Arc::new(mem), chunk))
    }

    #[tokio::test]
    async fn skipped_lines_are_gone_from_reads_sizes_and_ranges() {
        for chunk in [1, 3, 64] {
            let view = ScanStore::new(store("one\ntwo\nid,x\n1,2\n", chunk).await, None, 2);
            let path = Path::from("f.csv");
            assert_eq!(view.head(&path).await.unwrap().size, 9, "chunk {chunk}");
            let all = view.get(&path).await.unwrap().bytes().await.unwrap();
            assert_eq!(&all[..], b"id,x\n1,2\n");
            assert_eq!(&view.get_range(&path, 5..8).await.unwrap()[..], b"1,2");
            let ranges = view.get_ranges(&path, &[0..2, 5..6]).await.unwrap();
            assert_eq!((&ranges[0][..], &ranges[1][..]), (&b"id"[..], &b"1"[..]));
            let listed: Vec<ObjectMeta> = view.list(None).try_collect().await.unwrap();
            assert_eq!(listed[0].size, 9);
            let suffix = view.get_opts(&path, GetOptions::default().with_range(Some(GetRange::Suffix(4)))).await;
            assert_eq!(&suffix.unwrap().bytes().await.unwrap()[..], b"1,2\n");
        }
    }

    #[tokio::test]
    async fn skipping_every_line_leaves_an_empty_object() {
        let view = ScanStore::new(store("a\nb", 2).await, None, 5);
        let path = Path::from("f.csv");
        assert_eq!(view.head(&path).await.unwrap().size, 0);
        assert!(view.get(&path).await.unwrap().bytes().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_changed_object_is_cut_again() {
        let mem = Arc::new(InMemory::new());
        let path = Path::from("f.csv");
        mem.put(&path, PutPayload::from_static(b"# 1\nid\n1\n")).await.unwrap();
        let view = ScanStore::new(Arc::clone(&mem) as Arc<dyn ObjectStore>, None, 1);
        assert_eq!(&view.get(&path).await.unwrap().bytes().await.unwrap()[..], b"id\n1\n");
        // a longer first line: the remembered cut no longer fits
        mem.put(&path, PutPayload::from_static(b"# a longer note\nid\n2\n")).await.unwrap();
        assert_eq!(&view.get_range(&path, 0..5).await.unwrap()[..], b"id\n2\n");
        assert_eq!(view.head(&path).await.unwrap().size, 5);
        let listed: Vec<ObjectMeta> = view.list(None).try_collect().await.unwrap();
        assert_eq!(listed[0].size, 5);
    }

    #[tokio::test]
    async fn globs_filter_listings_and_writes_are_refused() {
        let view = ScanStore::new(store("x", 1).await, Some(Pattern::new("*.json").unwrap()), 0);
        let listed: Vec<ObjectMeta> = view.list(None).try_collect().await.unwrap();
        assert!(listed.is_empty());
        assert!(view.put(&Path::from("g.csv"), PutPayload::from_static(b"y")).await.is_err());
    }
}
