//! Snapshots of tables, kept between statements.
//!
//! A snapshot loaded afresh reads the table's log from its last
//! checkpoint: the checkpoint, which lists every file of the table, and
//! each commit after it. Every statement used to do that, and an `INSERT`
//! twice (once to plan, once with the files for its commit). A session now
//! keeps the snapshot of each table it used and brings it up to date with
//! deltalake's incremental update, which lists the log from the kept
//! snapshot's checkpoint on and reads only the commits after the kept
//! version (or a newer checkpoint, if one was written since): other
//! writers' commits are seen by the next statement exactly as before.
//!
//! A kept snapshot is used only while the table is the one it was read
//! from, and its log still holds what it was read from:
//! - the `_delta_log` directory is the same one (a table dropped and made
//!   again has a new one), read before and after each load, so that a
//!   table made again while a snapshot was being brought up to date is not
//!   grafted onto the old one;
//! - the commit file of its version is the one it was read from (same
//!   size, time and tag);
//! - `_last_checkpoint` names the same checkpoint: one written since for
//!   an older version may come with the removal of the commits before it,
//!   which the kept snapshot would still read.
//!
//! A kept snapshot whose next commit is not there is used as it is;
//! otherwise, or if bringing it up to date fails, the table is read afresh.
//! A session keeps at most [`KEPT`] tables, and the snapshots with files of
//! at most [`KEPT_FILES`] data files in all.

use std::collections::{HashMap, HashSet};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use deltalake::DeltaResult;
use deltalake::kernel::{EagerSnapshot, Snapshot};
use deltalake::logstore::object_store::{ObjectMeta, ObjectStoreExt};
use deltalake::logstore::{LogStoreRef, commit_uri_from_version};
use deltalake::table::state::DeltaTableState;

use crate::table::last_checkpoint;

/// How many tables' snapshots a session keeps; the least recently used
/// goes first.
const KEPT: usize = 64;

/// How many data files the snapshots a session keeps with their files may
/// list in all (each costs about a kilobyte or more, with its statistics);
/// the least recently used go first, and one of a table with more is not
/// kept.
const KEPT_FILES: usize = 200_000;

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

    fn files(&self) -> usize {
        match self {
            Loaded::Lazy(_) => 0,
            Loaded::Eager(s) => s.log_data().num_files(),
        }
    }
}

/// What says which table, and which log, a snapshot was read from.
#[derive(Debug, Clone, PartialEq)]
struct Marks {
    /// The `_delta_log` directory (device, inode).
    log_dir: Option<(u64, u64)>,
    /// The version `_last_checkpoint` names.
    checkpoint: Option<u64>,
}

impl Marks {
    async fn read(log_store: &LogStoreRef, dir: &FsPath) -> Self {
        Self {
            log_dir: log_identity(dir),
            checkpoint: last_checkpoint(log_store).await.map(|(version, _)| version),
        }
    }
}

#[derive(Debug)]
struct Kept {
    loaded: Loaded,
    marks: Marks,
    /// The commit file of the snapshot's version, as it was read.
    tip: ObjectMeta,
    /// When it was last used, in lookups of this cache.
    used: u64,
}

/// The snapshots one session (or one transaction) keeps, by table directory.
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    kept: HashMap<PathBuf, Kept>,
    /// Counts lookups, to say which kept snapshot was used least recently.
    clock: u64,
    /// Tables with too many files to keep them: reads load them without
    /// (at most [`KEPT`] remembered).
    big: HashSet<PathBuf>,
}

impl Snapshots {
    /// The latest snapshot of the table in `dir`, read through
    /// `log_store`: the kept one, with its files if it has them, or one
    /// loaded without them.
    pub(crate) async fn latest(&self, log_store: &LogStoreRef, dir: &FsPath) -> DeltaResult<Loaded> {
        self.latest_loaded(log_store, dir, false).await
    }

    /// The latest snapshot of the table in `dir` with its files, read
    /// through `log_store`.
    pub(crate) async fn latest_with_files(&self, log_store: &LogStoreRef, dir: &FsPath) -> DeltaResult<EagerSnapshot> {
        match self.latest_loaded(log_store, dir, true).await? {
            Loaded::Eager(snapshot) => Ok(snapshot),
            // (which latest_loaded does not give when asked for files)
            Loaded::Lazy(_) => EagerSnapshot::try_new(log_store.as_ref(), None).await,
        }
    }

    async fn latest_loaded(&self, log_store: &LogStoreRef, dir: &FsPath, files: bool) -> DeltaResult<Loaded> {
        let marks = Marks::read(log_store, dir).await;
        let kept = self
            .still_current(log_store, dir, &marks)
            .await
            .filter(|kept| !files || matches!(kept, Loaded::Eager(_)));
        // the next version's commit not there: nothing was committed since
        // (commits are made in order; a cleanup of the log would have
        // changed the marks or removed the kept version's commit)
        if let Some(kept) = &kept
            && no_commit(log_store, kept.version() + 1).await
        {
            self.used(dir);
            return Ok(kept.clone());
        }
        // one that cannot be brought up to date is read afresh
        let updated = match kept {
            Some(kept) => update(kept, log_store).await.ok(),
            None => None,
        };
        let same_table = || log_identity(dir) == marks.log_dir;
        // reads load the table's files too (unless it has too many to
        // keep): a scan of a snapshot without them replays the log each
        // time, one with them takes its files from memory
        let loaded = match updated {
            Some(updated) if same_table() => updated,
            _ => load(log_store, files || !self.lock().big.contains(dir)).await?,
        };
        if same_table() {
            self.keep(dir, loaded.clone(), marks, log_store).await;
        } else {
            self.lock().kept.remove(dir);
        }
        Ok(loaded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the snapshot kept for `dir` as used now.
    fn used(&self, dir: &FsPath) {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        if let Some(kept) = state.kept.get_mut(dir) {
            kept.used = now;
        }
    }

    /// The kept snapshot of the table in `dir`, if it was read from the
    /// table and log that `marks` (read now) describe.
    async fn still_current(&self, log_store: &LogStoreRef, dir: &FsPath, marks: &Marks) -> Option<Loaded> {
        let (loaded, tip, kept_marks) = self.lock().kept.get(dir).map(|k| (k.loaded.clone(), k.tip.clone(), k.marks.clone()))?;
        if kept_marks == *marks && tip_of(log_store, loaded.version()).await.is_some_and(|now| same(&now, &tip)) {
            return Some(loaded);
        }
        // (unless another statement kept another one meanwhile)
        let mut guard = self.lock();
        if guard.kept.get(dir).is_some_and(|k| same(&k.tip, &tip) && k.marks == kept_marks) {
            guard.kept.remove(dir);
        }
        None
    }

    /// Keeps `loaded`, read from the log `marks` describe, as the snapshot
    /// of the table in `dir`, unless the one kept is newer: a statement of
    /// the same session that ran alongside may have kept a later version,
    /// or the same with its files.
    async fn keep(&self, dir: &FsPath, loaded: Loaded, marks: Marks, log_store: &LogStoreRef) {
        // a snapshot whose commit file cannot be read is still right; it
        // is just not kept
        let Some(tip) = tip_of(log_store, loaded.version()).await else { return };
        let files = loaded.files();
        let mut guard = self.lock();
        let State { kept, clock, big } = &mut *guard;
        *clock += 1;
        let used = *clock;
        if let Some(old) = kept.get_mut(dir) {
            let (was, is) = (old.loaded.version(), loaded.version());
            let had_files = matches!((&old.loaded, &loaded), (Loaded::Eager(_), Loaded::Lazy(_)));
            if old.marks.log_dir == marks.log_dir && (was > is || (was == is && had_files && same(&old.tip, &tip))) {
                old.used = used;
                return;
            }
        }
        kept.remove(dir);
        if files > KEPT_FILES {
            if big.len() >= KEPT {
                big.clear();
            }
            big.insert(dir.to_path_buf());
            return;
        }
        // the least recently used go until the new one fits
        let mut kept_files: usize = kept.values().map(|k| k.loaded.files()).sum();
        while kept.len() >= KEPT || kept_files + files > KEPT_FILES {
            let full = kept.len() >= KEPT;
            let oldest = kept
                .iter()
                .filter(|(_, k)| full || k.loaded.files() > 0)
                .min_by_key(|(_, k)| k.used)
                .map(|(d, _)| d.clone());
            let Some(gone) = oldest.and_then(|d| kept.remove(&d)) else { break };
            kept_files -= gone.loaded.files();
        }
        kept.insert(dir.to_path_buf(), Kept { loaded, marks, tip, used });
    }
}

/// Which `_delta_log` directory the table in `dir` has (device, inode): a
/// table dropped and made again has another.
pub(crate) fn log_identity(dir: &FsPath) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir.join("_delta_log")).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether the log surely has no commit file for `version`.
async fn no_commit(log_store: &LogStoreRef, version: u64) -> bool {
    matches!(
        log_store.object_store(None).head(&commit_uri_from_version(Some(version))).await,
        Err(deltalake::logstore::object_store::Error::NotFound { .. })
    )
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

async fn load(log_store: &LogStoreRef, files: bool) -> DeltaResult<Loaded> {
    Ok(if files {
        Loaded::Eager(EagerSnapshot::try_new(log_store.as_ref(), None).await?)
    } else {
        Loaded::Lazy(Arc::new(Snapshot::try_new(log_store.as_ref(), None).await?))
    })
}

/// `kept` brought up to the latest version.
async fn update(kept: Loaded, log_store: &LogStoreRef) -> DeltaResult<Loaded> {
    Ok(match kept {
        Loaded::Eager(snapshot) => {
            let mut state = DeltaTableState::new(snapshot);
            state.update(log_store.as_ref(), None).await?;
            Loaded::Eager(state.snapshot().clone())
        }
        Loaded::Lazy(snapshot) => Loaded::Lazy(snapshot.update(log_store.engine(None), None).await?),
    })
}
