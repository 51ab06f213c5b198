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

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::sql::sqlparser::ast::FunctionArg;

use crate::error::Result;
use crate::result::QueryResult;
use crate::scan::AsOf;
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

    /// Checks a plan before it runs (every statement that DataFusion
    /// plans: queries, DML, DDL, `COPY`); an error refuses it. An
    /// extension with a transaction open refuses what it cannot undo.
    fn check_plan(&self, session: &Session, plan: &LogicalPlan) -> Result<()> {
        let _ = (session, plan);
        Ok(())
    }

    /// Told that a statement failed, at planning or while its result was
    /// read (an open transaction is aborted by it).
    fn statement_failed(&self, error: &crate::error::Error) {
        let _ = error;
    }

    /// Runs a planned DDL statement if it concerns one of the extension's
    /// catalogs; `Ok(None)` lets DataFusion run it. `text` is the SQL it
    /// came from.
    async fn ddl(&self, session: &Session, ddl: &DdlStatement, text: &str) -> Result<Option<QueryResult>>;

    /// Table `name` as of a version or time (`t VERSION AS OF 3`), if it
    /// is one of the extension's; `Ok(None)` otherwise.
    async fn table_as_of(&self, session: &Session, name: &TableReference, as_of: &AsOf) -> Result<Option<Arc<dyn TableProvider>>> {
        let _ = (session, name, as_of);
        Ok(None)
    }

    /// The table functions the extension provides (`delta_scan`).
    fn table_functions(&self) -> &[&str] {
        &[]
    }

    /// Calls table function `name` (one of [`Self::table_functions`]) with
    /// its arguments as written.
    async fn call_table_function(&self, session: &Session, name: &str, args: &[FunctionArg]) -> Result<Arc<dyn TableProvider>> {
        let _ = (session, args);
        Err(crate::error::Error::plan(format!("unknown table function '{name}'")))
    }
}
