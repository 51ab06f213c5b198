//! The object store a transaction's statements see a table through: the
//! table's Delta log frozen at the version the transaction started from,
//! plus the commits its statements made, which are kept in memory.
//!
//! Everything outside `_delta_log` (the data files) passes straight through
//! to the real store, so a transaction's `INSERT` writes its Parquet files
//! where they will stay; until `COMMIT` puts one commit in the real log,
//! nothing refers to them and no reader sees them. Log files the real store
//! gained after the transaction started (other writers' commits) are hidden,
//! so every statement in the transaction works on the same version plus its
//! own changes. Deleting a real log file (deltalake's log clean-up after a
//! checkpoint) does nothing here.
//!
//! Once the transaction ends the store is closed and passes everything
//! through: a DataFusion session may keep it registered for the table.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use deltalake::logstore::object_store::memory::InMemory;
use deltalake::logstore::object_store::path::Path;
use deltalake::logstore::object_store::{
    CopyOptions, Error as StoreError, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result as StoreResult,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

/// The log files a transaction has written, by name in `_delta_log`, and
/// the version of the real log it started from.
#[derive(Debug)]
pub(crate) struct Staged {
    base: u64,
    files: InMemory,
    closed: AtomicBool,
}

impl Staged {
    pub(crate) fn new(base: u64) -> Arc<Self> {
        Arc::new(Self {
            base,
            files: InMemory::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// The version of the real log the transaction reads.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// Stops hiding anything: the transaction is over.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Log file `name` (`00000000000000000007.json`) as staged, if it was.
    pub(crate) async fn read(&self, name: &str) -> StoreResult<Option<bytes::Bytes>> {
        match self.files.get(&Path::from(name)).await {
            Ok(got) => got.bytes().await.map(Some),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stages `bytes` as log file `name`.
    pub(crate) async fn write(&self, name: &str, bytes: bytes::Bytes) -> StoreResult<()> {
        self.files.put(&Path::from(name), bytes.into()).await.map(|_| ())
    }

    /// Whether the real log's file `name` belongs to the versions the
    /// transaction reads: commits, checkpoints and checksums up to the base
    /// version. `_last_checkpoint` may point past it and is never shown
    /// (a copy that fits is staged when the transaction starts).
    fn shows_real(&self, name: &str) -> bool {
        name.len() > 20
            && !name.contains('/')
            && name.as_bytes()[..20].iter().all(u8::is_ascii_digit)
            && name[..20].parse::<u64>().is_ok_and(|v| v <= self.base)
    }
}

/// An object store whose `log_dir` is overlaid with a transaction's
/// [`Staged`] log.
#[derive(Debug)]
pub(crate) struct Overlay {
    real: Arc<dyn ObjectStore>,
    log_dir: Path,
    staged: Arc<Staged>,
}

impl fmt::Display for Overlay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionOverlay({}, {})", self.real, self.log_dir)
    }
}

impl Overlay {
    /// `real` with the log in `log_dir` (a path in `real`) overlaid.
    pub(crate) fn new(real: Arc<dyn ObjectStore>, log_dir: Path, staged: Arc<Staged>) -> Self {
        Self { real, log_dir, staged }
    }

    /// The name in the log of `location`, if it is a file of the log and
    /// the transaction is still open.
    fn log_name(&self, location: &Path) -> Option<Path> {
        if self.staged.is_closed() {
            return None;
        }
        let rest: Vec<_> = location.prefix_match(&self.log_dir)?.collect();
        (!rest.is_empty()).then(|| rest.into_iter().collect())
    }

    fn full(log_dir: &Path, name: &Path) -> Path {
        log_dir.parts().chain(name.parts()).collect()
    }

    /// Whether a listing under `prefix` reaches into the log.
    fn lists_log(&self, prefix: Option<&Path>) -> bool {
        if self.staged.is_closed() {
            return false;
        }
        match prefix {
            None => true,
            Some(p) => self.log_dir.prefix_matches(p) || p.prefix_matches(&self.log_dir),
        }
    }

    fn not_found(location: &Path) -> StoreError {
        StoreError::NotFound {
            path: location.to_string(),
            source: "not in the transaction's version of the log".into(),
        }
    }

    fn unsupported(what: &str, location: &Path) -> StoreError {
        StoreError::NotSupported {
            source: format!("{what} of log file '{location}' inside a transaction").into(),
        }
    }
}

#[async_trait]
impl ObjectStore for Overlay {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> StoreResult<PutResult> {
        let Some(name) = self.log_name(location) else {
            return self.real.put_opts(location, payload, opts).await;
        };
        if matches!(opts.mode, PutMode::Create)
            && self.staged.shows_real(name.as_ref())
            && self.real.head(location).await.is_ok()
        {
            return Err(StoreError::AlreadyExists {
                path: location.to_string(),
                source: "the log file exists".into(),
            });
        }
        self.staged.files.put_opts(&name, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> StoreResult<Box<dyn MultipartUpload>> {
        match self.log_name(location) {
            Some(name) => self.staged.files.put_multipart_opts(&name, opts).await,
            None => self.real.put_multipart_opts(location, opts).await,
        }
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> StoreResult<GetResult> {
        let Some(name) = self.log_name(location) else {
            return self.real.get_opts(location, options).await;
        };
        match self.staged.files.get_opts(&name, options.clone()).await {
            Ok(mut got) => {
                got.meta.location = location.clone();
                Ok(got)
            }
            Err(StoreError::NotFound { .. }) if self.staged.shows_real(name.as_ref()) => {
                self.real.get_opts(location, options).await
            }
            Err(StoreError::NotFound { .. }) => Err(Self::not_found(location)),
            Err(e) => Err(e),
        }
    }

    fn delete_stream(&self, locations: BoxStream<'static, StoreResult<Path>>) -> BoxStream<'static, StoreResult<Path>> {
        let (real, staged, log_dir) = (Arc::clone(&self.real), Arc::clone(&self.staged), self.log_dir.clone());
        locations
            .and_then(move |location| {
                let (real, staged, log_dir) = (Arc::clone(&real), Arc::clone(&staged), log_dir.clone());
                async move {
                    let name = (!staged.is_closed())
                        .then(|| location.prefix_match(&log_dir).map(Iterator::collect::<Path>))
                        .flatten()
                        .filter(|n| n.parts().next().is_some());
                    match name {
                        // staged files go; the real log is never touched
                        Some(name) => match staged.files.delete(&name).await {
                            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(location),
                            Err(e) => Err(e),
                        },
                        None => real.delete(&location).await.map(|()| location),
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        if !self.lists_log(prefix) {
            return self.real.list(prefix);
        }
        let (staged, log_dir) = (Arc::clone(&self.staged), self.log_dir.clone());
        let real = self.real.list(prefix).try_filter(move |meta| {
            let shown = match meta.location.prefix_match(&log_dir) {
                Some(rest) => {
                    let name: Path = rest.collect();
                    name.parts().next().is_none() || staged.shows_real(name.as_ref())
                }
                None => true,
            };
            futures::future::ready(shown)
        });
        let (log_dir, wanted) = (self.log_dir.clone(), prefix.cloned());
        let ours = self.staged.files.list(None).map_ok(move |mut meta| {
            meta.location = Self::full(&log_dir, &meta.location);
            meta
        });
        let ours = ours.try_filter(move |meta| {
            futures::future::ready(wanted.as_ref().is_none_or(|p| meta.location.prefix_matches(p)))
        });
        real.chain(ours).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> StoreResult<ListResult> {
        if !self.lists_log(prefix) {
            return self.real.list_with_delimiter(prefix).await;
        }
        let base = prefix.cloned().unwrap_or_default();
        let mut out = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
        };
        let all: Vec<ObjectMeta> = self.list(prefix).try_collect().await?;
        for meta in all {
            let parts: Vec<_> = match meta.location.prefix_match(&base) {
                Some(rest) => rest.collect(),
                None => continue,
            };
            match parts.as_slice() {
                [] => {}
                [_] => out.objects.push(meta),
                [first, ..] => {
                    let dir: Path = base.parts().chain([first.clone()]).collect();
                    if !out.common_prefixes.contains(&dir) {
                        out.common_prefixes.push(dir);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> StoreResult<()> {
        for location in [from, to] {
            if self.log_name(location).is_some() {
                return Err(Self::unsupported("copy", location));
            }
        }
        self.real.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> StoreResult<()> {
        for location in [from, to] {
            if self.log_name(location).is_some() {
                return Err(Self::unsupported("rename", location));
            }
        }
        self.real.rename_opts(from, to, options).await
    }
}
