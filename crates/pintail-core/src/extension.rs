//! Extensions: how another crate adds statements and catalogs to a
//! [`Session`] without this crate knowing about them.
//!
//! `pintail-storage` uses this to add databases on disk (`ATTACH`, Delta
//! Lake tables, persisted views) while `pintail-core` stays free of Delta
//! Lake and keeps building for WebAssembly. An extension sees each statement
//! before the session routes it, and each DDL plan (`CREATE TABLE`, `DROP
//! VIEW`, ...) before DataFusion's in-memory handling; it answers `None` for
//! what is not its own. Rows written by `INSERT`, `UPDATE`, `DELETE` and
//! `MERGE` need no hook: DataFusion hands those to the table's
//! `TableProvider`.

use async_trait::async_trait;
use datafusion::logical_expr::DdlStatement;

use crate::error::Result;
use crate::result::QueryResult;
use crate::session::Session;
use crate::statement::Statement;

/// A plug-in that gets the first look at statements and DDL plans.
#[async_trait]
pub trait Extension: std::any::Any + Send + Sync {
    /// A short name, for debugging output.
    fn name(&self) -> &str;

    /// Runs `statement` if it is one of the extension's own (`ATTACH`,
    /// `VACUUM`, ...); `Ok(None)` lets the session run it.
    async fn statement(&self, session: &Session, statement: &Statement) -> Result<Option<QueryResult>>;

    /// Runs a planned DDL statement if it concerns one of the extension's
    /// catalogs; `Ok(None)` lets DataFusion run it. `text` is the SQL it
    /// came from.
    async fn ddl(&self, session: &Session, ddl: &DdlStatement, text: &str) -> Result<Option<QueryResult>>;
}
