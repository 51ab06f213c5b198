//! A database as a DataFusion catalog: its schemas, and in each its tables
//! and views, read from the directory on every lookup so that what other
//! processes commit is seen by the next statement.
//!
//! Views are stored as SQL and planned when a statement names them, through
//! the session, so file references in them resolve as in any query. A view
//! that (through others) names itself is an error, not a hang.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use pintail_core::datafusion::catalog::{CatalogProvider, SchemaProvider};
use pintail_core::datafusion::common::{Result as DFResult, exec_err};
use pintail_core::datafusion::datasource::{TableProvider, ViewTable};
use pintail_core::{Error, Result, WeakSession};

use crate::errors::to_datafusion;
use crate::layout::Layout;
use crate::table::{DatabaseTable, Version};
use crate::transaction::Transactions;

tokio::task_local! {
    /// The views being planned by the current task, outermost first.
    static PLANNING: Vec<String>;
}

/// An attached database.
pub struct Database {
    name: String,
    layout: Layout,
    read_only: bool,
    session: WeakSession,
    txns: Arc<Transactions>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("name", &self.name)
            .field("root", &self.layout.root())
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// A database named `name` (its catalog name) over `layout`, in the
    /// session whose transactions are `txns`.
    pub fn new(name: String, layout: Layout, read_only: bool, session: WeakSession, txns: Arc<Transactions>) -> Self {
        Self {
            name,
            layout,
            read_only,
            session,
            txns,
        }
    }

    /// The catalog name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether the database was attached read-only.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// An error unless the database may be written.
    pub fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::plan(format!("database '{}' is attached read-only", self.name))
                .with_hint("ATTACH it again without (READ_ONLY) to change it"));
        }
        Ok(())
    }

    fn session(&self) -> Result<pintail_core::Session> {
        self.session
            .upgrade()
            .ok_or_else(|| Error::internal("the session of a database was closed", None))
    }

    /// Table or view `name` of `schema`, at `version` (views have none).
    pub async fn table(&self, schema: &str, name: &str, version: Version) -> Result<Option<Arc<dyn TableProvider>>> {
        let qualified = format!("{}.{schema}.{name}", self.name);
        if self.layout.has_table(schema, name) {
            let session = self.session()?;
            let dir = self.layout.table_dir(schema, name);
            let read_only = self
                .read_only
                .then(|| format!("database '{}' is attached read-only", self.name));
            let table = DatabaseTable::open(name, &dir, version, read_only, session.context(), Some(&self.txns)).await?;
            return Ok(Some(Arc::new(table)));
        }
        let Some(query) = self.layout.view_query(schema, name)? else {
            return Ok(None);
        };
        if version != Version::Latest {
            return Err(Error::plan(format!("'{name}' is a view: only tables have versions")));
        }
        let stack = PLANNING.try_with(Clone::clone).unwrap_or_default();
        if stack.contains(&qualified) {
            return Err(Error::plan(format!(
                "view '{name}' refers to itself: {} -> {qualified}",
                stack.join(" -> ")
            ))
            .with_hint(format!("CREATE OR REPLACE VIEW {name} with a query that does not name it")));
        }
        let mut inner = stack;
        inner.push(qualified);
        let session = self.session()?;
        let planned = query.clone();
        let (catalog, home) = (self.name.clone(), schema.to_string());
        let plan = PLANNING
            .scope(inner, async move { session.plan_query_in(&planned, &catalog, &home).await })
            .await
            .map_err(|e| Error::new(e.kind(), format!("view '{name}': {}", e.message())))?;
        Ok(Some(Arc::new(ViewTable::new(plan, Some(query.clone())))))
    }
}

/// A database as a DataFusion catalog.
#[derive(Debug)]
pub struct DatabaseCatalog {
    db: Arc<Database>,
}

impl DatabaseCatalog {
    /// The catalog of `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }

    /// The database.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }
}

impl CatalogProvider for DatabaseCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.db.layout.schemas()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.db.layout.has_schema(name).then(|| {
            Arc::new(DatabaseSchema {
                db: Arc::clone(&self.db),
                schema: name.to_string(),
            }) as Arc<dyn SchemaProvider>
        })
    }

    fn register_schema(&self, name: &str, _schema: Arc<dyn SchemaProvider>) -> DFResult<Option<Arc<dyn SchemaProvider>>> {
        exec_err!("schema '{name}' cannot be registered in database '{}': use CREATE SCHEMA", self.db.name)
    }
}

/// One schema of a database.
#[derive(Debug)]
pub struct DatabaseSchema {
    db: Arc<Database>,
    schema: String,
}

#[async_trait]
impl SchemaProvider for DatabaseSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.db.layout.tables(&self.schema);
        names.extend(self.db.layout.views(&self.schema));
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        self.db.table(&self.schema, name, Version::Latest).await.map_err(to_datafusion)
    }

    fn register_table(&self, name: String, _table: Arc<dyn TableProvider>) -> DFResult<Option<Arc<dyn TableProvider>>> {
        exec_err!(
            "'{name}' cannot be registered in database '{}': tables there are made with CREATE TABLE",
            self.db.name
        )
    }

    fn deregister_table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        exec_err!("'{name}' cannot be deregistered from database '{}': use DROP TABLE", self.db.name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.db.layout.has_table(&self.schema, name) || self.db.layout.has_view(&self.schema, name)
    }
}
