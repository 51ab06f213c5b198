//! The object store a transaction's statements see tables through: each
//! table's Delta log frozen at the version the transaction started from,
//! plus the commits its statements made, which are kept in memory.
//!
//! Everything outside the overlaid `_delta_log` directories (the data
//! files) passes straight through to the real store, so a transaction's
//! `INSERT` writes its Parquet files where they will stay; until `COMMIT`
//! puts one commit in the real log, nothing refers to them and no reader
//! sees them. Log files the real store gained after the transaction started
//! (other writers' commits) are hidden, so every statement in the
//! transaction works on the same version plus its own changes. Deleting a
//! real log file (deltalake's log clean-up after a checkpoint) does nothing
//! here.
//!
//! Once the transaction ends its layers close: reads pass through, and
//! writes into their logs are refused (a statement of the transaction still
//! running must not commit to the real log behind `COMMIT`'s back). A
//! DataFusion session may keep a store registered, so a closed layer also
//! drops its staged files.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

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

/// The log files a transaction has written to one table, by name in
/// `_delta_log`, and the version of the real log it started from.
#[derive(Debug)]
pub(crate) struct Staged {
    base: u64,
    files: RwLock<Arc<InMemory>>,
    closed: AtomicBool,
    /// How many commits were staged.
    commits: AtomicU64,
}

impl Staged {
    pub(crate) fn new(base: u64) -> Arc<Self> {
        Arc::new(Self {
            base,
            files: RwLock::new(Arc::new(InMemory::new())),
            closed: AtomicBool::new(false),
            commits: AtomicU64::new(0),
        })
    }

    /// The version of the real log the transaction reads.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    fn files(&self) -> Arc<InMemory> {
        Arc::clone(&self.files.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Stops hiding anything and drops the staged files: the transaction
    /// is over.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        *self.files.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(InMemory::new());
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Log file `name` (`00000000000000000007.json`) as staged, if it was.
    pub(crate) async fn read(&self, name: &str) -> StoreResult<Option<bytes::Bytes>> {
        match self.files().get(&Path::from(name)).await {
            Ok(got) => got.bytes().await.map(Some),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stages `bytes` as log file `name`.
    pub(crate) async fn write(&self, name: &str, bytes: bytes::Bytes) -> StoreResult<()> {
        self.put(&Path::from(name), bytes.into(), PutOptions::default()).await.map(|_| ())
    }

    /// Stages `payload` as log file `name`, counting the commits.
    async fn put(&self, name: &Path, payload: PutPayload, opts: PutOptions) -> StoreResult<PutResult> {
        let put = self.files().put_opts(name, payload, opts).await?;
        if is_commit_file(name.as_ref()) {
            self.commits.fetch_add(1, Ordering::AcqRel);
        }
        Ok(put)
    }

    /// How many commits the transaction has staged to this table.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// Whether the real log's file `name` belongs to the versions the
    /// transaction reads: commits, checkpoints and checksums up to the base
    /// version, and the sidecar files checkpoints refer to.
    /// `_last_checkpoint` may point past it and is never shown (a copy that
    /// fits is staged when the transaction starts).
    fn shows_real(&self, name: &str) -> bool {
        if name.starts_with("_sidecars/") {
            return true;
        }
        name.len() > 20
            && !name.contains('/')
            && name.as_bytes()[..20].iter().all(u8::is_ascii_digit)
            && name[..20].parse::<u64>().is_ok_and(|v| v <= self.base)
    }
}

/// Whether `name` is a commit of the log (`00000000000000000007.json`).
fn is_commit_file(name: &str) -> bool {
    name.len() == 25 && name.get(20..) == Some(".json") && name.as_bytes()[..20].iter().all(u8::is_ascii_digit)
}

/// The overlaid log directories of one store: a path in the store and the
/// staged log over it.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    list: RwLock<Vec<(Path, Arc<Staged>)>>,
}

impl Layers {
    /// Layers with one log directory.
    pub(crate) fn one(log_dir: Path, staged: Arc<Staged>) -> Arc<Self> {
        let layers = Arc::new(Self::default());
        layers.add(log_dir, staged);
        layers
    }

    /// Overlays `log_dir` with `staged`.
    pub(crate) fn add(&self, log_dir: Path, staged: Arc<Staged>) {
        self.list.write().unwrap_or_else(PoisonError::into_inner).push((log_dir, staged));
    }

    fn all(&self) -> Vec<(Path, Arc<Staged>)> {
        self.list.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The layer holding `location` (open or closed), and the file's name
    /// in that log.
    // on every request to the store (each data file read, during a
    // transaction): no copy of the list
    fn find(&self, location: &Path) -> Option<(Arc<Staged>, Path)> {
        let list = self.list.read().unwrap_or_else(PoisonError::into_inner);
        list.iter().find_map(|(dir, staged)| {
            let rest: Vec<_> = location.prefix_match(dir)?.collect();
            (!rest.is_empty()).then(|| (Arc::clone(staged), rest.into_iter().collect()))
        })
    }

    /// Whether a real file at `location` is shown.
    fn shows(&self, location: &Path) -> bool {
        match self.find(location) {
            Some((staged, name)) => staged.is_closed() || staged.shows_real(name.as_ref()),
            None => true,
        }
    }
}

/// An object store with transactions' staged logs over some of its
/// `_delta_log` directories.
#[derive(Debug)]
pub(crate) struct Overlay {
    real: Arc<dyn ObjectStore>,
    layers: Arc<Layers>,
}

impl fmt::Display for Overlay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionOverlay({})", self.real)
    }
}

/// What a log path is to an open layer.
enum InLog {
    /// Not in an overlaid log, or in a closed one: the real file.
    Real,
    /// In a closed layer's log: may be read, not written.
    Closed,
    /// File `name` of the open layer `staged`.
    Open(Arc<Staged>, Path),
}

impl Overlay {
    /// `real` with `layers` over it.
    pub(crate) fn new(real: Arc<dyn ObjectStore>, layers: Arc<Layers>) -> Self {
        Self { real, layers }
    }

    fn in_log(&self, location: &Path) -> InLog {
        match self.layers.find(location) {
            None => InLog::Real,
            Some((staged, _)) if staged.is_closed() => InLog::Closed,
            Some((staged, name)) => InLog::Open(staged, name),
        }
    }

    /// Whether a listing under `prefix` reaches into an open layer's log.
    fn lists_log(&self, prefix: Option<&Path>) -> Vec<(Path, Arc<Staged>)> {
        self.layers
            .all()
            .into_iter()
            .filter(|(dir, staged)| {
                !staged.is_closed() && prefix.is_none_or(|p| dir.prefix_matches(p) || p.prefix_matches(dir))
            })
            .collect()
    }

    /// The files under `prefix` (after `offset`): the real ones shown,
    /// then the staged ones.
    fn list_after(&self, prefix: Option<&Path>, offset: Option<&Path>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        let real = match offset {
            Some(o) => self.real.list_with_offset(prefix, o),
            None => self.real.list(prefix),
        };
        let open = self.lists_log(prefix);
        if open.is_empty() {
            return real;
        }
        let layers = Arc::clone(&self.layers);
        let real = real.try_filter(move |meta| futures::future::ready(layers.shows(&meta.location)));
        let (wanted, after) = (prefix.cloned(), offset.cloned());
        let ours = futures::stream::iter(open)
            .map(move |(dir, staged)| {
                let (wanted, after) = (wanted.clone(), after.clone());
                staged
                    .files()
                    .list(None)
                    .map_ok(move |mut meta| {
                        meta.location = dir.parts().chain(meta.location.parts()).collect();
                        meta
                    })
                    .try_filter(move |meta| {
                        let under = wanted.as_ref().is_none_or(|p| meta.location.prefix_matches(p));
                        let later = after.as_ref().is_none_or(|o| meta.location > *o);
                        futures::future::ready(under && later)
                    })
            })
            .flatten();
        real.chain(ours).boxed()
    }

    fn not_found(location: &Path) -> StoreError {
        StoreError::NotFound {
            path: location.to_string(),
            source: "not in the transaction's version of the log".into(),
        }
    }

    fn refused(what: &str, location: &Path) -> StoreError {
        StoreError::NotSupported {
            source: format!("{what} log file '{location}': its transaction has ended").into(),
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
        match self.in_log(location) {
            InLog::Real => self.real.put_opts(location, payload, opts).await,
            InLog::Closed => Err(Self::refused("writing", location)),
            InLog::Open(staged, name) => {
                if matches!(opts.mode, PutMode::Create)
                    && staged.shows_real(name.as_ref())
                    && self.real.head(location).await.is_ok()
                {
                    return Err(StoreError::AlreadyExists {
                        path: location.to_string(),
                        source: "the log file exists".into(),
                    });
                }
                staged.put(&name, payload, opts).await
            }
        }
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> StoreResult<Box<dyn MultipartUpload>> {
        match self.in_log(location) {
            InLog::Real => self.real.put_multipart_opts(location, opts).await,
            InLog::Closed => Err(Self::refused("writing", location)),
            InLog::Open(staged, name) => staged.files().put_multipart_opts(&name, opts).await,
        }
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> StoreResult<GetResult> {
        let InLog::Open(staged, name) = self.in_log(location) else {
            return self.real.get_opts(location, options).await;
        };
        match staged.files().get_opts(&name, options.clone()).await {
            Ok(mut got) => {
                got.meta.location = location.clone();
                Ok(got)
            }
            Err(StoreError::NotFound { .. }) if staged.shows_real(name.as_ref()) => {
                self.real.get_opts(location, options).await
            }
            Err(StoreError::NotFound { .. }) => Err(Self::not_found(location)),
            Err(e) => Err(e),
        }
    }

    fn delete_stream(&self, locations: BoxStream<'static, StoreResult<Path>>) -> BoxStream<'static, StoreResult<Path>> {
        let (real, layers) = (Arc::clone(&self.real), Arc::clone(&self.layers));
        locations
            .and_then(move |location| {
                let (real, layers) = (Arc::clone(&real), Arc::clone(&layers));
                async move {
                    match layers.find(&location) {
                        // staged files stay, and the real log is never touched:
                        // what deletes log entries is deltalake's clean-up of
                        // expired ones after a commit, and COMMIT folds every
                        // staged commit, from the first on
                        Some((staged, _)) if !staged.is_closed() => Ok(location),
                        Some(_) => Err(Self::refused("deleting", &location)),
                        None => real.delete(&location).await.map(|()| location),
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.list_after(prefix, None)
    }

    // the kernel lists a log from its last checkpoint on: the local store
    // skips the files before the offset without reading their metadata,
    // which the default (list everything, then filter) would, for every
    // commit the table ever had
    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.list_after(prefix, Some(offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> StoreResult<ListResult> {
        if self.lists_log(prefix).is_empty() {
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
            if !matches!(self.in_log(location), InLog::Real) {
                return Err(Self::unsupported("copy", location));
            }
        }
        self.real.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> StoreResult<()> {
        for location in [from, to] {
            if !matches!(self.in_log(location), InLog::Real) {
                return Err(Self::unsupported("rename", location));
            }
        }
        self.real.rename_opts(from, to, options).await
    }
}
