//! `BEGIN ... COMMIT / ROLLBACK`: several statements as one Delta commit.
//!
//! Delta Lake makes one commit file per table atomic and nothing larger, so
//! a transaction here writes at most one table; the statement that would
//! write a second is refused. Each table a transaction touches is pinned at
//! the version it had then, and read and written through an [`Overlay`]:
//! the statements run deltalake's operations unchanged, their commits are
//! staged in memory, and each statement sees the ones before it. `COMMIT`
//! folds the staged commits into one (a file added and then removed inside
//! the transaction drops out) and commits it to the real log with Delta's
//! conflict checking against what other writers committed meanwhile: a
//! transaction that only inserted is a blind append and never conflicts;
//! one that updated or deleted fails if another writer removed or rewrote
//! rows of the table since it began. `ROLLBACK` drops the staged commits
//! and deletes the data files they added, which nothing else refers to.
//!
//! As in PostgreSQL and DuckDB, a statement that fails inside a transaction
//! aborts it: later statements are refused until `ROLLBACK`, and `COMMIT`
//! rolls back. Anything that cannot be undone (DDL, `VACUUM`, writing an
//! in-memory table or a file with `COPY`) is refused inside a transaction.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add, CommitInfo, Remove, Snapshot};
use deltalake::logstore::object_store::{ObjectStore, ObjectStoreExt};
use deltalake::logstore::object_store::path::Path;
use deltalake::logstore::{LogStoreRef, default_logstore};
use deltalake::protocol::{DeltaOperation, SaveMode};
use pintail_core::datafusion::execution::object_store::ObjectStoreUrl;
use pintail_core::datafusion::execution::runtime_env::RuntimeEnv;
use pintail_core::{Error, ErrorKind, Result};

use crate::errors::delta_error;
use crate::overlay::{Layers, Overlay, Staged};
use crate::snapshots::{Snapshots, log_identity};
use crate::table::{Checkpoint, last_checkpoint, log_store};
use deltalake::table::config::TablePropertiesExt;

/// The transaction of one session, if one is open.
#[derive(Debug, Default)]
pub struct Transactions {
    open: Mutex<Option<Txn>>,
    /// The snapshots of tables the session read or wrote outside a
    /// transaction.
    snapshots: Arc<Snapshots>,
}

#[derive(Debug, Default)]
struct Txn {
    /// The tables touched, by directory.
    tables: HashMap<PathBuf, Arc<TableTxn>>,
    /// The one table written (directory, name).
    writes: Option<(PathBuf, String)>,
    /// Why the transaction was aborted, if a statement in it failed.
    aborted: Option<String>,
    /// The savepoints set, oldest first.
    savepoints: Vec<Savepoint>,
    /// The session's store for `file://` before the transaction overlaid
    /// it, to put back when it ends, and the layers over it.
    file_store: Option<FileOverlay>,
}

/// A savepoint: its name and what the transaction had written when it was
/// set.
#[derive(Debug)]
struct Savepoint {
    name: String,
    commits: u64,
    writes: Option<(PathBuf, String)>,
}

impl Txn {
    /// How many commits the transaction has staged, over all its tables.
    fn commits(&self) -> u64 {
        self.tables.values().map(|t| t.staged.commits()).sum()
    }

    /// The index of the latest savepoint named `name`.
    fn savepoint(&self, name: &str) -> Result<usize> {
        self.savepoints
            .iter()
            .rposition(|s| s.name == name)
            .ok_or_else(|| Error::plan(format!("savepoint '{name}' does not exist")))
    }
}

/// The runtime whose `file://` store a transaction overlaid, the store it
/// had, and the layers over it.
type FileOverlay = (Arc<RuntimeEnv>, Arc<dyn ObjectStore>, Arc<Layers>);

impl Drop for Txn {
    /// Ends the transaction's overlays, however it ends: COMMIT, ROLLBACK,
    /// or either of them cancelled or panicking half-way.
    fn drop(&mut self) {
        for table in self.tables.values() {
            table.staged.close();
        }
        if let Some((runtime, store, _)) = self.file_store.take() {
            runtime.register_object_store(ObjectStoreUrl::local_filesystem().as_ref(), store);
        }
    }
}

/// One table inside a transaction.
#[derive(Debug)]
struct TableTxn {
    name: String,
    dir: PathBuf,
    /// Which `_delta_log` directory it was: a table dropped and made again
    /// meanwhile has another.
    identity: Option<(u64, u64)>,
    real: LogStoreRef,
    staged: Arc<Staged>,
    /// The log store the transaction's statements use.
    log: LogStoreRef,
    /// The table's log directory in the session's `file://` store.
    root_log_dir: Path,
    /// Whether a statement of the transaction read the table's rows.
    read: AtomicBool,
    /// The transaction's snapshots of the table, staged commits and all.
    snapshots: Arc<Snapshots>,
}

/// The error for a savepoint statement outside a transaction.
fn outside(what: &str) -> Error {
    Error::plan(format!("{what} can only be used in a transaction")).with_hint("start one with BEGIN")
}

fn aborted_error(why: &str) -> Error {
    Error::new(
        ErrorKind::Plan,
        format!("the transaction was aborted by an earlier error and runs no more statements: {why}"),
    )
    .with_hint("ROLLBACK to end it; nothing of it was committed")
}

/// What `BEGIN` inside a transaction fails with.
pub const ALREADY_OPEN: &str = "a transaction is already open";

impl Transactions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Txn>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a transaction is open.
    pub fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    /// An error if the open transaction was aborted.
    pub fn check_not_aborted(&self) -> Result<()> {
        match self.lock().as_ref().and_then(|t| t.aborted.clone()) {
            Some(why) => Err(aborted_error(&why)),
            None => Ok(()),
        }
    }

    /// `BEGIN`; inside a transaction, an error starting with
    /// [`ALREADY_OPEN`], which leaves the transaction as it was.
    pub fn begin(&self) -> Result<()> {
        let mut open = self.lock();
        if open.is_some() {
            return Err(Error::plan(ALREADY_OPEN).with_hint("COMMIT or ROLLBACK it first"));
        }
        *open = Some(Txn::default());
        Ok(())
    }

    /// Marks the open transaction (if any) aborted by `error`.
    pub fn abort(&self, error: &str) {
        if let Some(t) = self.lock().as_mut()
            && t.aborted.is_none()
        {
            t.aborted = Some(error.lines().next().unwrap_or_default().to_string());
        }
    }

    /// The log store to read and write table `name` (in `dir`) through:
    /// the transaction's view of it, or `None` outside a transaction.
    /// deltalake's scan reads the log through the session's object store
    /// for `file://` (in `runtime`), so that store is overlaid too, for as
    /// long as the transaction lasts.
    pub async fn log_store_for(&self, name: &str, dir: &FsPath, runtime: &Arc<RuntimeEnv>) -> Result<Option<LogStoreRef>> {
        {
            let open = self.lock();
            let Some(t) = open.as_ref() else { return Ok(None) };
            if let Some(why) = &t.aborted {
                return Err(aborted_error(why));
            }
            if let Some(table) = t.tables.get(dir) {
                return Ok(Some(Arc::clone(&table.log)));
            }
        }
        let table = TableTxn::start(name, dir).await?;
        let mut open = self.lock();
        let Some(t) = open.as_mut() else {
            // ended while the table was opened
            table.staged.close();
            return Ok(None);
        };
        if let Some(existing) = t.tables.get(dir) {
            table.staged.close();
            return Ok(Some(Arc::clone(&existing.log)));
        }
        if t.file_store.is_none() {
            let file_url = ObjectStoreUrl::local_filesystem();
            let current = runtime.object_store(&file_url).map_err(Error::from)?;
            let layers = Arc::new(Layers::default());
            let overlay = Overlay::new(Arc::clone(&current), Arc::clone(&layers));
            runtime.register_object_store(file_url.as_ref(), Arc::new(overlay));
            t.file_store = Some((Arc::clone(runtime), current, layers));
        }
        if let Some((_, _, layers)) = &t.file_store {
            layers.add(table.root_log_dir.clone(), Arc::clone(&table.staged));
        }
        let log = Arc::clone(&table.log);
        t.tables.insert(dir.to_path_buf(), Arc::new(table));
        Ok(Some(log))
    }

    /// The snapshots to read the table in `dir` from: the open
    /// transaction's, if it touched the table, else the session's.
    pub(crate) fn snapshots_for(&self, dir: &FsPath) -> Arc<Snapshots> {
        match self.lock().as_ref().and_then(|t| t.tables.get(dir)) {
            Some(table) => Arc::clone(&table.snapshots),
            None => Arc::clone(&self.snapshots),
        }
    }

    /// The version the open transaction reads the table in `dir` at, if it
    /// has touched the table.
    pub fn base_of(&self, dir: &FsPath) -> Option<u64> {
        self.lock().as_ref()?.tables.get(dir).map(|t| t.staged.base())
    }

    /// Records that a statement of the open transaction (if any) reads
    /// the rows of the table in `dir`.
    pub fn note_read(&self, dir: &FsPath) {
        if let Some(table) = self.lock().as_ref().and_then(|t| t.tables.get(dir)) {
            table.read.store(true, Ordering::Relaxed);
        }
    }

    /// Records that table `name` (in `dir`) is written; refused if the
    /// transaction writes another table already.
    pub fn claim_write(&self, name: &str, dir: &FsPath) -> Result<()> {
        let mut open = self.lock();
        let Some(t) = open.as_mut() else { return Ok(()) };
        if let Some(why) = &t.aborted {
            return Err(aborted_error(why));
        }
        match &t.writes {
            Some((written, first)) if written != dir => Err(Error::new(
                ErrorKind::NotSupported,
                format!(
                    "a transaction writes one table, and this one has written '{first}' already: \
                     Delta Lake commits each table on its own, so '{first}' and '{name}' could not commit together"
                ),
            )
            .with_hint("COMMIT (or ROLLBACK) first, then write the other table in a transaction of its own")),
            Some(_) => Ok(()),
            None => {
                t.writes = Some((dir.to_path_buf(), name.to_string()));
                Ok(())
            }
        }
    }

    /// `COMMIT`: one commit to the one table written, if any.
    pub async fn commit(&self) -> Result<()> {
        let Some(t) = self.lock().take() else {
            return Err(Error::plan("there is no transaction to commit").with_hint("start one with BEGIN"));
        };
        let outcome = match (&t.aborted, &t.writes) {
            (Some(why), _) => Err(Error::new(
                ErrorKind::Plan,
                format!("the transaction was rolled back, because a statement in it failed: {why}"),
            )
            .with_hint("nothing of it was committed")),
            (None, None) => Ok(()),
            (None, Some((dir, _))) => match t.tables.get(dir) {
                Some(table) => table.commit().await,
                None => Ok(()),
            },
        };
        // a conflict or an abort leaves the added files unreferenced; any
        // other failure might have committed after all, so they stay
        let discard = match &outcome {
            Ok(()) => false,
            Err(e) => e.kind() == ErrorKind::Conflict || t.aborted.is_some(),
        };
        if discard {
            for table in t.tables.values() {
                table.delete_added_files().await;
            }
        }
        drop(t);
        outcome
    }

    /// `SAVEPOINT name`.
    pub fn set_savepoint(&self, name: &str) -> Result<()> {
        let mut open = self.lock();
        let t = open.as_mut().ok_or_else(|| outside("SAVEPOINT"))?;
        let savepoint = Savepoint {
            name: name.to_string(),
            commits: t.commits(),
            writes: t.writes.clone(),
        };
        t.savepoints.push(savepoint);
        Ok(())
    }

    /// `RELEASE SAVEPOINT name`: forgets it and the savepoints set after it.
    pub fn release_savepoint(&self, name: &str) -> Result<()> {
        let mut open = self.lock();
        let t = open.as_mut().ok_or_else(|| outside("RELEASE SAVEPOINT"))?;
        let at = t.savepoint(name)?;
        t.savepoints.truncate(at);
        Ok(())
    }

    /// `ROLLBACK TO SAVEPOINT name`: ends the abort of a statement that
    /// failed after it, and forgets the savepoints set after it. Writes
    /// staged since the savepoint cannot be taken back one by one (a
    /// table's staged commits build on each other), so a rollback over
    /// them is refused; one over reads and failed statements is exact.
    pub fn rollback_to_savepoint(&self, name: &str) -> Result<()> {
        let mut open = self.lock();
        let t = open.as_mut().ok_or_else(|| outside("ROLLBACK TO SAVEPOINT"))?;
        let at = t.savepoint(name)?;
        let savepoint = &t.savepoints[at];
        if t.commits() > savepoint.commits {
            return Err(Error::new(
                ErrorKind::NotSupported,
                format!("ROLLBACK TO SAVEPOINT cannot undo the writes made since savepoint '{name}'"),
            )
            .with_hint("a savepoint can be rolled back to over reads and failed statements; ROLLBACK the whole transaction instead"));
        }
        t.writes = savepoint.writes.clone();
        t.savepoints.truncate(at + 1);
        t.aborted = None;
        Ok(())
    }

    /// `ROLLBACK`.
    pub async fn rollback(&self) -> Result<()> {
        let Some(t) = self.lock().take() else {
            return Err(Error::plan("there is no transaction to roll back").with_hint("start one with BEGIN"));
        };
        for table in t.tables.values() {
            table.delete_added_files().await;
        }
        drop(t);
        Ok(())
    }
}

/// The actions of one staged commit file.
fn parse_actions(name: &str, bytes: &[u8]) -> Result<Vec<Action>> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::internal(format!("staged commit {name}: {e}"), None))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| Error::internal(format!("staged commit {name}: {e}"), None)))
        .collect()
}

/// The staged commits of a transaction, folded into one.
#[derive(Default)]
struct Folded {
    operations: Vec<String>,
    added: BTreeMap<String, Add>,
    removed: BTreeMap<String, Remove>,
    /// Files added and then removed inside the transaction.
    dropped: Vec<String>,
    other: Vec<Action>,
}

impl Folded {
    fn push(&mut self, action: Action) {
        match action {
            Action::CommitInfo(CommitInfo { operation, .. }) => self.operations.extend(operation),
            Action::Add(add) => {
                self.added.insert(add.path.clone(), add);
            }
            Action::Remove(remove) => {
                if self.added.remove(&remove.path).is_some() {
                    self.dropped.push(remove.path);
                } else {
                    self.removed.insert(remove.path.clone(), remove);
                }
            }
            other => self.other.push(other),
        }
    }

    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.other.is_empty()
    }
}

impl TableTxn {
    async fn start(name: &str, dir: &FsPath) -> Result<Self> {
        let real = log_store(dir)?;
        let identity = log_identity(dir);
        // the version only: the files of the table are read when a
        // statement needs them (the shell opens every table after each
        // statement, for its completions)
        let version = Snapshot::try_new(real.as_ref(), None)
            .await
            .map_err(|e| delta_error(name, e))?
            .version();
        let staged = Staged::new(version);
        // deltalake's pointer to the newest checkpoint, if that is one the
        // transaction's version has
        if let Some((checkpoint, bytes)) = last_checkpoint(&real).await
            && checkpoint <= version
        {
            staged
                .write("_last_checkpoint", bytes)
                .await
                .map_err(|e| Error::io(format!("table '{name}': {e}")))?;
        }
        let mut log_path = real.root_url().path().trim_end_matches('/').to_string();
        log_path.push_str("/_delta_log");
        let root_log_dir =
            Path::from_url_path(&log_path).map_err(|e| Error::io(format!("table '{name}': {e}")))?;
        let prefixed = Overlay::new(real.object_store(None), Layers::one(Path::from("_delta_log"), Arc::clone(&staged)));
        let root = Overlay::new(real.root_object_store(None), Layers::one(root_log_dir.clone(), Arc::clone(&staged)));
        let log = default_logstore(Arc::new(prefixed), Arc::new(root), real.root_url(), real.config().options());
        Ok(Self {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            identity,
            real,
            staged,
            log,
            root_log_dir,
            read: AtomicBool::new(false),
            snapshots: Arc::default(),
        })
    }

    /// The staged commits, folded.
    async fn fold(&self) -> Result<Folded> {
        let mut folded = Folded::default();
        let mut version = self.staged.base() + 1;
        loop {
            let file = format!("{version:020}.json");
            let bytes = self
                .staged
                .read(&file)
                .await
                .map_err(|e| Error::io(format!("table '{}': {e}", self.name)))?;
            let Some(bytes) = bytes else { break };
            for action in parse_actions(&file, &bytes)? {
                folded.push(action);
            }
            version += 1;
        }
        Ok(folded)
    }

    async fn commit(&self) -> Result<()> {
        let gone = || {
            Error::new(
                ErrorKind::Conflict,
                format!("the transaction was rolled back: table '{}' was dropped or replaced while it ran", self.name),
            )
            .with_hint("nothing of it was committed")
        };
        if log_identity(&self.dir) != self.identity {
            return Err(gone());
        }
        let folded = self.fold().await?;
        if folded.is_empty() {
            self.delete_files(&folded.dropped).await;
            return Ok(());
        }
        // a VACUUM elsewhere may have taken files written long ago
        let store = self.real.object_store(None);
        for file in folded.added.keys() {
            if store.head(&data_path(file)).await.is_err() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "the transaction was rolled back: its data file '{file}' of table '{}' is gone (a VACUUM while it ran?)",
                        self.name
                    ),
                )
                .with_hint("nothing of it was committed; run the transaction again"));
            }
        }
        // rows only added (no MERGE, UPDATE or DELETE that found nothing
        // to change, which read the table all the same), by a transaction
        // that read nothing of the table, depend on nothing another writer
        // can have changed meanwhile; anything else is checked against the
        // whole table
        let read = self.read.load(Ordering::Relaxed);
        let blind_append = !read
            && folded.removed.is_empty()
            && folded.other.is_empty()
            && folded.operations.iter().all(|op| op == "WRITE");
        let operation = if blind_append {
            DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: None,
                predicate: Some("false".to_string()),
            }
        } else {
            // read the whole table: any other writer's change to its rows
            // since the transaction began is a conflict
            DeltaOperation::Merge {
                predicate: None,
                merge_predicate: None,
                matched_predicates: Vec::new(),
                not_matched_predicates: Vec::new(),
                not_matched_by_source_predicates: Vec::new(),
            }
        };
        let info = CommitInfo {
            timestamp: Some(chrono::Utc::now().timestamp_millis()),
            operation: Some("TRANSACTION".to_string()),
            operation_parameters: Some(HashMap::from([(
                "statements".to_string(),
                serde_json::Value::String(folded.operations.join(", ")),
            )])),
            read_version: Some(self.staged.base()),
            is_blind_append: Some(blind_append),
            engine_info: Some(format!("pintail {}", env!("CARGO_PKG_VERSION"))),
            ..Default::default()
        };
        let mut actions = vec![Action::CommitInfo(info)];
        actions.extend(folded.other);
        actions.extend(folded.removed.into_values().map(Action::Remove));
        actions.extend(folded.added.into_values().map(Action::Add));
        let mut base = DeltaTable::new(Arc::clone(&self.real));
        base.load_version(self.staged.base()).await.map_err(|e| delta_error(&self.name, e))?;
        let snapshot = base.snapshot().map_err(|e| delta_error(&self.name, e))?;
        let interval = snapshot.table_config().checkpoint_interval().get();
        if log_identity(&self.dir) != self.identity {
            return Err(gone());
        }
        CommitBuilder::default()
            .with_actions(actions)
            .build(Some(snapshot), Arc::clone(&self.real), operation)
            .await
            .map_err(|e| {
                let e = delta_error(&self.name, e);
                if e.kind() == ErrorKind::Conflict {
                    Error::new(ErrorKind::Conflict, format!("the transaction was rolled back: {}", e.message()))
                        .with_hint("nothing of it was committed; run the transaction again")
                } else {
                    e
                }
            })?;
        self.delete_files(&folded.dropped).await;
        // after the commit, not in deltalake's post-commit step, whose
        // failure would make a commit that happened look failed
        Checkpoint::new(Arc::clone(&self.real), self.staged.base(), interval)
            .with_cleanup(true)
            .write_if_due(&self.name)
            .await;
        Ok(())
    }

    /// Deletes the data files the transaction's staged commits added; no
    /// commit of the real log names them.
    async fn delete_added_files(&self) {
        if let Ok(folded) = self.fold().await {
            let mut files: Vec<String> = folded.added.into_keys().collect();
            files.extend(folded.dropped);
            self.delete_files(&files).await;
        }
    }

    /// Best effort: a file left behind is only space, which VACUUM frees.
    async fn delete_files(&self, files: &[String]) {
        let store = self.real.object_store(None);
        for file in files {
            if let Err(e) = store.delete(&data_path(file)).await {
                log::debug!("table '{}': could not delete unused file {file}: {e}", self.name);
            }
        }
    }
}

/// A data file's path in the table's store, from its (URL-encoded) path
/// in the log.
fn data_path(file: &str) -> Path {
    Path::from_url_path(file).unwrap_or_else(|_| Path::from(file))
}
