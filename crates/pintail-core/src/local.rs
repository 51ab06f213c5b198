//! The local file system, with listings from an offset that look only at
//! the files after it.
//!
//! A Delta Lake table's `_delta_log` directory gains a file with every
//! commit, and every statement on the table lists it from the newest
//! checkpoint on (`list_with_offset`). object_store's `LocalFileSystem`
//! walks the directory following links, so it reads the metadata of every
//! entry, the thousands before the offset too: a single-row `INSERT` into a
//! table with 900 commits made 1,650 `statx` calls, and each statement got
//! slower with every commit. [`LocalFiles`] lists a flat directory by name
//! and reads the metadata only of the files after the offset; anything else
//! (subdirectories, links, other calls) is left to `LocalFileSystem`.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// The local file system, rooted at `/` as `file://` URLs are; see the
/// module docs.
pub struct LocalFiles {
    inner: Arc<LocalFileSystem>,
}

impl LocalFiles {
    /// The whole local file system.
    pub fn new() -> Self {
        Self { inner: Arc::new(LocalFileSystem::new()) }
    }
}

impl LocalFiles {
    /// The files under `prefix` (after `offset`): by name, if `prefix` is
    /// a directory of files only, else as `LocalFileSystem` lists them.
    fn list_dir(&self, prefix: &Path, offset: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let walk = |inner: &LocalFileSystem, prefix: &Path, offset: Option<&Path>| match offset {
            Some(offset) => inner.list_with_offset(Some(prefix), offset),
            None => inner.list(Some(prefix)),
        };
        let Ok(dir) = self.inner.path_to_filesystem(prefix) else {
            return walk(&self.inner, prefix, offset);
        };
        let (inner, prefix, offset) = (Arc::clone(&self.inner), prefix.clone(), offset.cloned());
        futures::stream::once(async move {
            let names = {
                let (prefix, offset) = (prefix.clone(), offset.clone());
                tokio::task::spawn_blocking(move || list_flat(&dir, &prefix, offset.as_ref())).await
            };
            match names {
                Ok(Listed::Files(files)) => with_metadata(files),
                Ok(Listed::NotFlat) => walk(&inner, &prefix, offset.as_ref()),
                Err(e) => futures::stream::once(async move {
                    Err(object_store::Error::Generic { store: "LocalFiles", source: Box::new(e) })
                })
                .boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

impl Default for LocalFiles {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LocalFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalFiles")
    }
}

impl fmt::Display for LocalFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalFiles")
    }
}

/// What reading a directory's names found.
enum Listed {
    /// The files after the offset, their metadata not yet read.
    Files(Vec<(Path, std::path::PathBuf)>),
    /// Something only a walk of the tree lists right.
    NotFlat,
}

/// The files in the directory `dir` (at `prefix` in the store) named after
/// `offset`, if the directory holds only files. Reads only the names.
fn list_flat(dir: &std::path::Path, prefix: &Path, offset: Option<&Path>) -> Listed {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // as LocalFileSystem: a missing directory lists nothing
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Listed::Files(Vec::new()),
        Err(_) => return Listed::NotFlat,
    };
    let mut files = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else { return Listed::NotFlat };
        // the type from the directory entry itself, without a stat
        let Ok(kind) = entry.file_type() else { return Listed::NotFlat };
        if !kind.is_file() {
            return Listed::NotFlat;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { return Listed::NotFlat };
        let location = prefix.clone().join(name);
        // `name#123` is a multipart upload in progress
        let uploading = name.rsplit_once('#').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if uploading || offset.is_some_and(|o| location <= *o) {
            continue;
        }
        files.push((location, entry.path()));
    }
    Listed::Files(files)
}

/// Files whose metadata is read at once, off the async threads: a reader
/// that stops at the first file it wants (deltalake's "is this a table?")
/// pays for this many, not for the whole directory.
const STAT_CHUNK: usize = 64;

/// The metadata of `files`, read a chunk at a time as the stream is polled;
/// files deleted meanwhile are left out.
fn with_metadata(files: Vec<(Path, std::path::PathBuf)>) -> BoxStream<'static, Result<ObjectMeta>> {
    let mut chunks = Vec::new();
    let mut rest = files;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(STAT_CHUNK));
        chunks.push(rest);
        rest = tail;
    }
    futures::stream::iter(chunks)
        .then(|chunk| async move {
            tokio::task::spawn_blocking(move || {
                chunk
                    .into_iter()
                    .filter_map(|(location, path)| match std::fs::metadata(&path) {
                        Ok(meta) => Some(Ok(object_meta(&meta, location))),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                        Err(e) => Some(Err(object_store::Error::Generic { store: "LocalFiles", source: Box::new(e) })),
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_else(|e| vec![Err(object_store::Error::Generic { store: "LocalFiles", source: Box::new(e) })])
        })
        .flat_map(futures::stream::iter)
        .boxed()
}

/// `meta` as object_store's `LocalFileSystem` reports it, e-tag included.
fn object_meta(meta: &std::fs::Metadata, location: Path) -> ObjectMeta {
    let modified = meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    let micros = modified.duration_since(std::time::SystemTime::UNIX_EPOCH).unwrap_or_default().as_micros();
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    ObjectMeta {
        location,
        last_modified: modified.into(),
        size: meta.len(),
        e_tag: Some(format!("{inode:x}-{micros:x}-{:x}", meta.len())),
        version: None,
    }
}

#[async_trait]
impl ObjectStore for LocalFiles {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        match prefix {
            Some(prefix) => self.list_dir(prefix, None),
            None => self.inner.list(None),
        }
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        match prefix {
            Some(prefix) => self.list_dir(prefix, Some(offset)),
            None => self.inner.list_with_offset(None, offset),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

    use futures::TryStreamExt;

    use super::*;

    async fn names(store: &dyn ObjectStore, prefix: &Path, offset: &Path) -> Vec<ObjectMeta> {
        let mut listed: Vec<ObjectMeta> = store.list_with_offset(Some(prefix), offset).try_collect().await.unwrap();
        listed.sort_by(|a, b| a.location.cmp(&b.location));
        listed
    }

    async fn all(store: &dyn ObjectStore, prefix: &Path) -> Vec<ObjectMeta> {
        let mut listed: Vec<ObjectMeta> = store.list(Some(prefix)).try_collect().await.unwrap();
        listed.sort_by(|a, b| a.location.cmp(&b.location));
        listed
    }

    /// The same files, sizes and e-tags as object_store's own listing, in a
    /// flat directory, one with a subdirectory, and a missing one.
    #[tokio::test]
    async fn lists_as_local_file_system_does() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("_delta_log");
        std::fs::create_dir(&log).unwrap();
        for v in 0..200 {
            std::fs::write(log.join(format!("{v:020}.json")), vec![b'x'; v]).unwrap();
        }
        std::fs::write(log.join("_last_checkpoint"), b"{}").unwrap();
        std::fs::write(log.join("00000000000000000201.json#1"), b"partial").unwrap();
        let ours = LocalFiles::new();
        let theirs = LocalFileSystem::new();
        let prefix = Path::from_filesystem_path(&log).unwrap();
        for offset in [prefix.clone().join("00000000000000000009.json"), prefix.clone().join(""), prefix.clone().join("zzz")] {
            assert_eq!(names(&ours, &prefix, &offset).await, names(&theirs, &prefix, &offset).await, "{offset}");
        }
        assert_eq!(all(&ours, &prefix).await.len(), 201);
        assert_eq!(all(&ours, &prefix).await, all(&theirs, &prefix).await);
        let found = names(&ours, &prefix, &prefix.clone().join("00000000000000000197.json")).await;
        let found: Vec<String> = found.iter().map(|m| m.location.filename().unwrap().to_string()).collect();
        assert_eq!(found, ["00000000000000000198.json", "00000000000000000199.json", "_last_checkpoint"]);

        std::fs::create_dir(log.join("_sidecars")).unwrap();
        std::fs::write(log.join("_sidecars/a.parquet"), b"p").unwrap();
        let offset = prefix.clone().join("00000000000000000020.json");
        assert_eq!(names(&ours, &prefix, &offset).await, names(&theirs, &prefix, &offset).await);
        assert!(names(&ours, &prefix, &offset).await.iter().any(|m| m.location.as_ref().ends_with("_sidecars/a.parquet")));
        assert_eq!(all(&ours, &prefix).await, all(&theirs, &prefix).await);

        let missing = Path::from_filesystem_path(dir.path()).unwrap().join("nothing");
        assert!(names(&ours, &missing, &missing.clone().join("0")).await.is_empty());
        assert!(all(&ours, &missing).await.is_empty());
    }
}
