//! Snapshots of tables, kept between statements.
//!
//! A snapshot loaded afresh reads the table's log from its last
//! checkpoint: the checkpoint, which lists every file of the table, and
//! each commit after it. Every statement used to do that, and an `INSERT`
//! twice (once to plan, once with the files for its commit). A session now
//! keeps the snapshot of each table it used and brings it up to date with
//! only the commits made since, by itself or by anyone else: the log is
//! listed from the version after the kept one, as deltalake's incremental
//! update does, so other writers' commits are seen by the next statement
//! exactly as before.
//!
//! A kept snapshot is used only while the commit file of its version is
//! the one it was read from (same size, time and tag): a table dropped and
//! made again has other commit files, and one whose old entries were
//! cleaned up has none, and either is read afresh.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use deltalake::DeltaResult;
use deltalake::kernel::{EagerSnapshot, Snapshot};
use deltalake::logstore::{LogStoreRef, commit_uri_from_version};
use deltalake::table::state::DeltaTableState;
use deltalake::logstore::object_store::{ObjectMeta, ObjectStoreExt};

/// How many tables' snapshots a session keeps; the least recently used
/// goes first.
const KEPT: usize = 64;

/// A snapshot as loaded: without the table's files (enough to plan a
/// read), or with them (which a commit needs, and a read then reuses).
#[derive(Debug, Clone)]
pub(crate) enum Loaded {
    Lazy(Arc<Snapshot>),
    Eager(EagerSnapshot),
}

impl Loaded {
    fn version(&self) -> u64 {
        match self {
            Loaded::Lazy(s) => s.version(),
            Loaded::Eager(s) => s.version(),
        }
    }
}

#[derive(Debug)]
struct Kept {
    loaded: Loaded,
    /// The commit file of the snapshot's version, as it was read.
    tip: ObjectMeta,
    /// When it was last used, in lookups of this cache.
    used: u64,
}

/// The snapshots one session (or one transaction) keeps, by table directory.
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    kept: Mutex<(HashMap<PathBuf, Kept>, u64)>,
}

impl Snapshots {
    /// The latest snapshot of the table in `dir`, read through
    /// `log_store`: the kept one, with its files if it has them, or one
    /// loaded without them.
    pub(crate) async fn latest(&self, log_store: &LogStoreRef, dir: &FsPath) -> DeltaResult<Loaded> {
        let loaded = match self.still_current(log_store, dir).await {
            Some(Loaded::Eager(kept)) => Loaded::Eager(update_eager(kept, log_store).await?),
            Some(Loaded::Lazy(kept)) => Loaded::Lazy(kept.update(log_store.engine(None), None).await?),
            None => Loaded::Lazy(Arc::new(Snapshot::try_new(log_store.as_ref(), None).await?)),
        };
        self.keep(dir, loaded.clone(), log_store).await;
        Ok(loaded)
    }

    /// The latest snapshot of the table in `dir` with its files, read
    /// through `log_store`.
    pub(crate) async fn latest_with_files(&self, log_store: &LogStoreRef, dir: &FsPath) -> DeltaResult<EagerSnapshot> {
        let snapshot = match self.still_current(log_store, dir).await {
            Some(Loaded::Eager(kept)) => update_eager(kept, log_store).await?,
            _ => EagerSnapshot::try_new(log_store.as_ref(), None).await?,
        };
        self.keep(dir, Loaded::Eager(snapshot.clone()), log_store).await;
        Ok(snapshot)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<PathBuf, Kept>, u64)> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The kept snapshot of the table in `dir`, if the commit file of its
    /// version is still the one it was read from.
    async fn still_current(&self, log_store: &LogStoreRef, dir: &FsPath) -> Option<Loaded> {
        let (loaded, tip) = self.lock().0.get(dir).map(|k| (k.loaded.clone(), k.tip.clone()))?;
        if tip_of(log_store, loaded.version()).await.is_some_and(|now| same(&now, &tip)) {
            return Some(loaded);
        }
        // (unless another statement kept a newer one meanwhile)
        let mut guard = self.lock();
        if guard.0.get(dir).is_some_and(|k| same(&k.tip, &tip)) {
            guard.0.remove(dir);
        }
        None
    }

    /// Keeps `loaded` as the snapshot of the table in `dir`, unless the
    /// one kept is newer: a statement of the same session that ran
    /// alongside may have kept a later version, or the same with its files.
    async fn keep(&self, dir: &FsPath, loaded: Loaded, log_store: &LogStoreRef) {
        // a snapshot whose commit file cannot be read is still right; it
        // is just not kept
        let Some(tip) = tip_of(log_store, loaded.version()).await else { return };
        let mut guard = self.lock();
        let (kept, clock) = &mut *guard;
        *clock += 1;
        let used = *clock;
        if let Some(old) = kept.get_mut(dir) {
            let (was, is) = (old.loaded.version(), loaded.version());
            let had_files = matches!((&old.loaded, &loaded), (Loaded::Eager(_), Loaded::Lazy(_)));
            if was > is || (was == is && had_files && same(&old.tip, &tip)) {
                old.used = used;
                return;
            }
        }
        if !kept.contains_key(dir)
            && kept.len() >= KEPT
            && let Some(oldest) = kept.iter().min_by_key(|(_, k)| k.used).map(|(d, _)| d.clone())
        {
            kept.remove(&oldest);
        }
        kept.insert(dir.to_path_buf(), Kept { loaded, tip, used });
    }
}

/// The commit file of `version`, if it can be read.
async fn tip_of(log_store: &LogStoreRef, version: u64) -> Option<ObjectMeta> {
    log_store
        .object_store(None)
        .head(&commit_uri_from_version(Some(version)))
        .await
        .ok()
}

fn same(a: &ObjectMeta, b: &ObjectMeta) -> bool {
    a.size == b.size && a.last_modified == b.last_modified && a.e_tag == b.e_tag
}

/// `snapshot` brought up to the latest version, reading only the commits
/// after it (and a checkpoint, if one was written since).
async fn update_eager(snapshot: EagerSnapshot, log_store: &LogStoreRef) -> DeltaResult<EagerSnapshot> {
    let mut state = DeltaTableState::new(snapshot);
    state.update(log_store.as_ref(), None).await?;
    Ok(state.snapshot().clone())
}
