//! Pintail databases: directories of Delta Lake tables that several
//! processes can write, that survive crashes, and that other tools read.
//!
//! A database is a directory (see [`layout`] for what is in it) attached to
//! a [`Session`] as a catalog. Each table is a Delta Lake table written
//! through the `deltalake` crate, so every statement commits atomically and
//! concurrent writers are serialised by Delta's optimistic concurrency;
//! schemas are directories and views are SQL files, each changed in one
//! atomic file-system step. This crate plugs into the session as an
//! [`Extension`](pintail_core::Extension); `pintail-core` knows nothing of
//! it.
//!
//! ```no_run
//! # async fn demo() -> pintail_core::Result<()> {
//! let session = pintail_core::Session::new()?;
//! pintail_storage::open(&session, std::path::Path::new("sales.db"))?;
//! session.sql("CREATE TABLE orders AS SELECT * FROM 'orders/*.parquet'").await?.drain().await?;
//! # Ok(()) }
//! ```

mod catalog;
mod ddl;
mod errors;
mod extension;
mod insert;
pub mod layout;
mod maintenance;
mod merge;
mod overlay;
mod scan;
mod snapshots;
mod table;
mod transaction;

use std::path::Path;
use std::sync::Arc;

use pintail_core::{Result, Session};

pub use catalog::{Database, DatabaseCatalog};
pub use extension::{AttachOptions, StorageExtension};
pub use table::{DEFAULT_KEY, Version};

/// Adds database support (`ATTACH`, `DETACH`, DDL on databases) to
/// `session`, and returns the extension. Calling it again returns the same
/// extension.
pub fn install(session: &Session) -> Arc<StorageExtension> {
    if let Some(existing) = session.extension(extension::NAME) {
        let any: Arc<dyn std::any::Any + Send + Sync> = existing;
        if let Ok(ours) = any.downcast::<StorageExtension>() {
            return ours;
        }
    }
    let ext = Arc::new(StorageExtension::default());
    session.add_extension(Arc::clone(&ext) as _);
    ext
}

/// Opens (or creates) the database at `path` in `session` and makes it the
/// current one, as `pintail my.db` does; returns its catalog name.
pub fn open(session: &Session, path: &Path) -> Result<String> {
    open_with(session, path, &AttachOptions::default())
}

/// [`open`] with options (read-only, a name).
pub fn open_with(session: &Session, path: &Path, options: &AttachOptions) -> Result<String> {
    let ext = install(session);
    let name = ext.attach(session, path, options)?;
    session.use_schema(&name, layout::DEFAULT_SCHEMA);
    Ok(name)
}
