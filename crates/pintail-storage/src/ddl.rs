//! DDL on database catalogs: `CREATE [OR REPLACE] TABLE [AS]`, `CREATE
//! VIEW`, `CREATE SCHEMA`, `DROP ...`, each one atomic step on disk.
//!
//! DataFusion plans these statements; this module runs the plans whose
//! names resolve to an attached database, in place of DataFusion's
//! in-memory handling. `CREATE TABLE ... AS SELECT` streams the query into
//! the table's first commit, so the table appears whole or not at all.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use pintail_core::datafusion::arrow::datatypes::{Field, Schema};
use pintail_core::datafusion::common::{DFSchema, ResolvedTableReference, SchemaReference, TableReference};
use pintail_core::datafusion::logical_expr::{
    CreateMemoryTable, CreateView, DdlStatement, DropTable, DropView, Expr, LogicalPlan, Projection, col,
};
use pintail_core::datafusion::sql::parser::Statement as DFStatement;
use pintail_core::datafusion::sql::sqlparser::ast;
use pintail_core::datafusion::sql::unparser::expr_to_sql;
use pintail_core::{Error, ErrorKind, QueryResult, Result, Session};

use crate::catalog::Database;
use crate::errors::delta_error;
use crate::extension::Databases;
use crate::table::{DEFAULT_KEY, delta_state, log_store};

/// Runs `ddl` if it names an attached database.
pub async fn run(dbs: &Databases, session: &Session, ddl: &DdlStatement, text: &str) -> Result<Option<QueryResult>> {
    let (catalog, schema) = session.current_schema();
    let resolve = |name: &TableReference| name.clone().resolve(&catalog, &schema);
    let done = || Ok(Some(session.empty_result(text)));
    match ddl {
        DdlStatement::CreateMemoryTable(c) => {
            let name = resolve(&c.name);
            let Some(db) = dbs.get(&name.catalog) else { return Ok(None) };
            create_table(&db, &name, c, session).await?;
            done()
        }
        DdlStatement::CreateView(v) => {
            let name = resolve(&v.name);
            let Some(db) = dbs.get(&name.catalog) else { return Ok(None) };
            create_view(&db, &name, v, session, text)?;
            done()
        }
        DdlStatement::DropTable(d) => {
            let name = resolve(&d.name);
            let Some(db) = dbs.get(&name.catalog) else { return Ok(None) };
            drop_table(&db, &name, d)?;
            done()
        }
        DdlStatement::DropView(d) => {
            let name = resolve(&d.name);
            let Some(db) = dbs.get(&name.catalog) else { return Ok(None) };
            drop_view(&db, &name, d)?;
            done()
        }
        DdlStatement::CreateCatalogSchema(c) => {
            let (cat, sch) = match c.schema_name.split_once('.') {
                Some((cat, sch)) => (cat.to_string(), sch.to_string()),
                None => (catalog.clone(), c.schema_name.clone()),
            };
            let Some(db) = dbs.get(&cat) else { return Ok(None) };
            db.check_writable()?;
            if !db.layout().create_schema(&sch)? && !c.if_not_exists {
                return Err(Error::plan(format!("schema '{sch}' already exists in database '{cat}'"))
                    .with_hint(format!("CREATE SCHEMA IF NOT EXISTS {sch}")));
            }
            done()
        }
        DdlStatement::DropCatalogSchema(d) => {
            let (cat, sch) = match &d.name {
                SchemaReference::Bare { schema } => (catalog.clone(), schema.to_string()),
                SchemaReference::Full { schema, catalog } => (catalog.to_string(), schema.to_string()),
            };
            let Some(db) = dbs.get(&cat) else { return Ok(None) };
            db.check_writable()?;
            if !db.layout().has_schema(&sch) {
                if d.if_exists {
                    return done();
                }
                return Err(Error::plan(format!("schema '{sch}' does not exist in database '{cat}'")));
            }
            if cat == catalog && sch == schema {
                return Err(Error::plan(format!("cannot drop schema '{sch}': it is the current schema")));
            }
            db.layout().drop_schema(&sch, d.cascade)?;
            done()
        }
        DdlStatement::CreateExternalTable(c) => {
            let name = resolve(&c.name);
            if dbs.get(&name.catalog).is_none() {
                return Ok(None);
            }
            Err(Error::new(
                ErrorKind::NotSupported,
                format!("CREATE EXTERNAL TABLE cannot make a table in database '{}'", name.catalog),
            )
            .with_hint(format!(
                "copy the data in with CREATE TABLE {} AS SELECT * FROM '{}', or make a view over the files",
                name.table,
                c.locations.first().map_or("...", String::as_str)
            )))
        }
        _ => Ok(None),
    }
}

fn no_schema(db: &Database, name: &ResolvedTableReference) -> Error {
    Error::plan(format!("schema '{}' does not exist in database '{}'", name.schema, db.name()))
        .with_hint(format!("CREATE SCHEMA {}", name.schema))
}

async fn create_table(db: &Database, name: &ResolvedTableReference, c: &CreateMemoryTable, session: &Session) -> Result<()> {
    db.check_writable()?;
    let layout = db.layout();
    let (schema, table) = (name.schema.as_ref(), name.table.as_ref());
    crate::layout::check_name("table", table)?;
    if !layout.has_schema(schema) {
        return Err(no_schema(db, name));
    }
    if c.temporary {
        return Err(Error::new(ErrorKind::NotSupported, "temporary tables cannot be made in a database")
            .with_hint("make it in memory instead: CREATE TABLE memory.main.t ..."));
    }
    if !c.constraints.is_empty() {
        return Err(Error::new(
            ErrorKind::NotSupported,
            format!("table '{table}': PRIMARY KEY and UNIQUE constraints are not enforced by Delta Lake tables"),
        )
        .with_hint("leave them out; NOT NULL and DEFAULT are kept"));
    }
    if layout.has_view(schema, table) {
        return Err(Error::plan(format!("'{table}' is a view, so a table of that name cannot be made")));
    }
    let exists = layout.has_table(schema, table);
    if exists && c.if_not_exists {
        return Ok(());
    }
    if exists && !c.or_replace {
        return Err(Error::plan(format!("table '{table}' already exists"))
            .with_hint("use CREATE OR REPLACE TABLE to replace it, or CREATE TABLE IF NOT EXISTS"));
    }
    let input = table_input(&c.input, &c.column_defaults)?;
    let store = log_store(&layout.table_dir(schema, table))?;
    let state = delta_state(session.context().state());
    let mut delta = DeltaTable::new(store);
    let builder = if exists {
        delta.load().await.map_err(|e| delta_error(table, e))?;
        delta
            .write(Vec::new())
            .with_save_mode(SaveMode::Overwrite)
            .with_schema_mode(SchemaMode::Overwrite)
    } else {
        delta
            .write(Vec::new())
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_configuration([(CHECKPOINT_INTERVAL, Some(CHECKPOINT_EVERY))])
    };
    let written = builder
        .with_input_plan(input)
        .with_table_name(table)
        .with_session_state(state)
        .with_writer_properties(crate::table::writer_properties())
        .await;
    match written {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = delta_error(table, e);
            // two sessions made the same table at once; the other one won
            if !exists && e.kind() == ErrorKind::Conflict {
                if c.if_not_exists {
                    return Ok(());
                }
                return Err(Error::plan(format!("table '{table}' already exists")));
            }
            Err(e)
        }
    }
}

/// The table property for how many commits apart checkpoints are, and
/// its value for the tables Pintail makes: 10, as in Spark's Delta Lake
/// (deltalake's default is 100). Every statement reads the log from the
/// last checkpoint on, so with 100 a table written by single-row INSERTs
/// had statements up to several times slower just before a checkpoint than
/// just after; a checkpoint of a small table costs a few milliseconds.
const CHECKPOINT_INTERVAL: &str = "delta.checkpointInterval";
const CHECKPOINT_EVERY: &str = "10";

/// The plan whose rows and schema a new table gets: the query of `CREATE
/// TABLE ... AS`, whose columns all become nullable (as in DuckDB, so later
/// inserts are not held to what the first query happened to produce), or
/// the empty relation of a column list, which keeps its NOT NULLs. Column
/// defaults ride along as column metadata.
fn table_input(input: &LogicalPlan, defaults: &[(String, Expr)]) -> Result<LogicalPlan> {
    let listed = matches!(input, LogicalPlan::EmptyRelation(e) if !e.produce_one_row);
    let defaults: HashMap<&str, &Expr> = defaults.iter().map(|(c, e)| (c.as_str(), e)).collect();
    let source = input.schema();
    let mut fields = Vec::with_capacity(source.fields().len());
    for field in source.fields() {
        let mut f = Field::new(field.name(), field.data_type().clone(), !listed || field.is_nullable());
        if let Some(default) = defaults.get(field.name().as_str()) {
            let sql = expr_to_sql(default)?.to_string();
            f = f.with_metadata(HashMap::from([(DEFAULT_KEY.to_string(), sql)]));
        }
        fields.push(f);
    }
    let schema = DFSchema::try_from(Schema::new(fields))?;
    let exprs = source.columns().into_iter().map(col).collect();
    let projection = Projection::try_new_with_schema(exprs, Arc::new(input.clone()), Arc::new(schema))?;
    Ok(LogicalPlan::Projection(projection))
}

fn create_view(db: &Database, name: &ResolvedTableReference, v: &CreateView, session: &Session, text: &str) -> Result<()> {
    db.check_writable()?;
    let layout = db.layout();
    let (schema, view) = (name.schema.as_ref(), name.table.as_ref());
    if !layout.has_schema(schema) {
        return Err(no_schema(db, name));
    }
    if v.temporary {
        return Err(Error::new(ErrorKind::NotSupported, "temporary views cannot be made in a database"));
    }
    if layout.has_table(schema, view) {
        return Err(Error::plan(format!("'{view}' is a table, so a view of that name cannot be made")));
    }
    let query = view_query(session, text, view)?;
    layout.write_view(schema, view, text, &query, v.or_replace)
}

/// The query a view runs, from the text of its `CREATE VIEW` as written
/// (file names as the user gave them, not as resolved for this statement).
fn view_query(session: &Session, text: &str, view: &str) -> Result<String> {
    let DFStatement::Statement(stmt) = session.parse_one(text)? else {
        return Err(Error::internal("CREATE VIEW did not parse as CREATE VIEW", Some(text)));
    };
    let ast::Statement::CreateView(create) = *stmt else {
        return Err(Error::internal("CREATE VIEW did not parse as CREATE VIEW", Some(text)));
    };
    let query = create.query.to_string();
    if create.columns.is_empty() {
        return Ok(query);
    }
    let columns: Vec<String> = create.columns.iter().map(|c| c.name.to_string()).collect();
    Ok(format!(
        "SELECT * FROM ({query}) AS {}({})",
        ast::Ident::with_quote('"', view),
        columns.join(", ")
    ))
}

fn drop_table(db: &Database, name: &ResolvedTableReference, d: &DropTable) -> Result<()> {
    db.check_writable()?;
    let layout = db.layout();
    let (schema, table) = (name.schema.as_ref(), name.table.as_ref());
    if !layout.has_table(schema, table) {
        if layout.has_view(schema, table) {
            return Err(Error::plan(format!("'{table}' is a view")).with_hint(format!("DROP VIEW {table}")));
        }
        if d.if_exists {
            return Ok(());
        }
        return Err(Error::plan(format!("table '{table}' does not exist in {}.{schema}", db.name())));
    }
    layout.drop_table(schema, table)
}

fn drop_view(db: &Database, name: &ResolvedTableReference, d: &DropView) -> Result<()> {
    db.check_writable()?;
    let layout = db.layout();
    let (schema, view) = (name.schema.as_ref(), name.table.as_ref());
    if layout.drop_view(schema, view)? || d.if_exists {
        return Ok(());
    }
    if layout.has_table(schema, view) {
        return Err(Error::plan(format!("'{view}' is a table")).with_hint(format!("DROP TABLE {view}")));
    }
    Err(Error::plan(format!("view '{view}' does not exist in {}.{schema}", db.name())))
}
