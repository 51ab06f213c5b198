//! Pintail's engine: a [`Session`] over Apache DataFusion that queries
//! Parquet, CSV, JSON, Arrow and Avro files where they live.
//!
//! This crate owns what every front end shares: running SQL (with files as
//! tables, `SUMMARIZE`, `DESCRIBE`, DuckDB-style `COPY`), the session's
//! resources (`memory_limit`, `threads`, `temp_directory`), object stores for
//! URLs, and the one [`Error`] type. It knows nothing of terminals, Python,
//! or wire protocols; those live in the front-end crates, which call in here.
//!
//! ```no_run
//! # async fn demo() -> pintail_core::Result<()> {
//! let session = pintail_core::Session::new()?;
//! let batches = session
//!     .sql("SELECT origin, count(*) FROM 'examples/data/flights/*/*.parquet' GROUP BY 1")
//!     .await?
//!     .collect()
//!     .await?;
//! # Ok(()) }
//! ```

mod allowed;
mod conflict_retry;
mod copy;
mod counted;
mod describe;
mod dialect;
mod dml_guard;
mod error;
mod extension;
mod functions;
mod join_fallback;
pub mod lists;
#[cfg(feature = "native")]
mod local;
mod params;
mod read_only;
mod result;
mod runtime_filter;
pub mod scan;
mod session;
mod setting_statement;
pub mod settings;
mod statement;
mod stores;
mod summarize;

pub use allowed::AllowedPaths;
pub use error::{Error, ErrorKind, Result};
pub use scan::AsOf;
pub use extension::Extension;
pub use params::Bindings;
pub use read_only::ReadOnly;
pub use result::{Progress, ProgressHandle, QueryResult, changed_rows, panic_message};
pub use session::{MEMORY_CATALOG, MEMORY_SCHEMA, Session, TableInfo, WeakSession};
pub use settings::{SettingName, Settings};
pub use statement::{Statement, StatementKind, is_complete, split_statements};
pub use stores::Stores;
#[cfg(feature = "native")]
pub use local::LocalFiles;

/// The DataFusion and Arrow this crate is built on, for fronts that need
/// their types without depending on a second copy.
pub use datafusion;
