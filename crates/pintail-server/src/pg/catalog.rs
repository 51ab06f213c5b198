//! The Postgres system catalog a client's introspection reads: psql's
//! `\d`, `\dt`, `\l`, `\dn`, psycopg's and SQLAlchemy's dialect queries.
//!
//! `datafusion-pg-catalog` supplies the tables (`pg_class`, `pg_namespace`,
//! `pg_attribute`, `pg_database`, ... built from the session's catalogs,
//! the rest as shipped snapshots of an empty Postgres), the catalog
//! functions (`pg_table_is_visible`, `format_type`, `current_database`,
//! ...) and the rewrites that make Postgres-only syntax plan
//! (`OPERATOR(pg_catalog.~)`, `COLLATE`, `'t'::regclass`, `= ANY(...)`).
//!
//! Only statements that read the catalog go through those rewrites and
//! Postgres' own grammar; every other statement is parsed and planned by
//! Pintail exactly as the CLI and the Python package do, so a query gives
//! the same answer over the wire as in process.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner;
use datafusion_pg_catalog::pg_catalog::{
    self as pg, ArrowTable, PgCatalogSchemaProvider, PgCatalogStaticTables, array_bounds_udf, format_type, has_privilege_udf,
    pg_get_expr_udf, quote_ident_udf,
};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use pintail_core::datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, Int32Array, RecordBatch, StringArray};
use pintail_core::datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use pintail_core::datafusion::common::{DataFusionError, exec_err};
use pintail_core::datafusion::common::ScalarValue;
use pintail_core::datafusion::catalog::{CatalogProviderList, SchemaProvider, TableProvider};
use pintail_core::datafusion::catalog::view::ViewTable;
use pintail_core::datafusion::datasource::{MemTable, provider_as_source};
use pintail_core::datafusion::logical_expr::{Expr as LogicalExpr, LogicalPlanBuilder, cast, lit};
use pintail_core::datafusion::datasource::TableType;
use pintail_core::datafusion::error::Result as DFResult;
use pintail_core::datafusion::execution::session_state::SessionStateBuilder;
use pintail_core::datafusion::logical_expr::{ColumnarValue, DdlStatement, ScalarUDF, Volatility, create_udf};
use pintail_core::datafusion::sql::parser::Statement as DFStatement;
use pintail_core::datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectNamePart, visit_expressions_mut, visit_relations_mut,
};
use pintail_core::datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use pintail_core::datafusion::sql::sqlparser::parser::Parser;
use pintail_core::datafusion::sql::sqlparser::keywords::Keyword;
use pintail_core::datafusion::sql::sqlparser::tokenizer::Token;
use pintail_core::{Error, ErrorKind, Extension, MEMORY_CATALOG, QueryResult, Result, Session, Statement, StatementKind, WeakSession};

/// What every connection's catalog shares, made once per process: the
/// shipped snapshot tables, the type oids `to_regtype` looks up, and
/// `pg_index`.
struct Shared {
    tables: Arc<PgCatalogStaticTables>,
    type_oids: Arc<HashMap<String, i32>>,
    pg_index: Arc<dyn TableProvider>,
}

impl Shared {
    fn new() -> DFResult<Self> {
        let tables = Arc::new(PgCatalogStaticTables::try_new()?);
        Ok(Self { type_oids: type_oids(&tables.pg_type), pg_index: pg_index(&tables.pg_index)?, tables })
    }
}

/// The Postgres release whose catalog and behaviour clients should
/// expect (pgwire announces it as `server_version`).
pub(crate) const PG_VERSION: &str = "16.6";

/// Adds `pg_catalog` and the Postgres catalog functions to `session`, and
/// routes its catalog queries through the Postgres rewrites.
///
/// The schema lives in the in-memory catalog, which every session has and
/// which takes schemas without writing them anywhere (a database on disk
/// refuses schemas it would not keep); [`parse`] points the catalog
/// queries' `pg_catalog.` names at it.
pub(crate) fn install(session: &Session) -> Result<()> {
    static SHARED: LazyLock<std::result::Result<Shared, String>> = LazyLock::new(|| Shared::new().map_err(|e| e.to_string()));
    let failed = |e: &dyn std::fmt::Display| Error::internal(format!("cannot set up pg_catalog: {e}"), None);
    let shared = SHARED.as_ref().map_err(|e| failed(e))?;
    let tables = &shared.tables;
    let ctx = session.context();
    let catalogs = Arc::clone(ctx.state_ref().read().catalog_list());
    let served = Served(session.downgrade(), catalogs);
    let schema = PgCatalogSchemaProvider::try_new(served, Arc::clone(tables), EmptyContextProvider).map_err(|e| failed(&e))?;
    let memory = ctx.catalog(MEMORY_CATALOG).ok_or_else(|| failed(&"the session has no in-memory catalog"))?;
    let schema = PgCatalog { tables: schema, pg_index: Arc::clone(&shared.pg_index) };
    memory.register_schema("pg_catalog", Arc::new(schema)).map_err(|e| failed(&e))?;

    let (database, _) = session.current_schema();
    let functions = [
        pg::create_current_database_udf(&database),
        current_schema(session.downgrade()),
        version(),
        to_regtype(Arc::clone(&shared.type_oids)),
        visible("pg_type_is_visible"),
        visible("pg_function_is_visible"),
        no_index_definition(),
        pg::create_current_schemas_udf(),
        pg::create_pg_get_userbyid_udf(),
        has_privilege_udf::create_has_privilege_udf("has_table_privilege"),
        has_privilege_udf::create_has_privilege_udf("has_schema_privilege"),
        has_privilege_udf::create_has_privilege_udf("has_database_privilege"),
        has_privilege_udf::create_has_privilege_udf("has_any_column_privilege"),
        pg::create_pg_table_is_visible(),
        format_type::create_format_type_udf(),
        pg::create_session_user_udf(),
        pg_get_expr_udf::create_pg_get_expr_udf(),
        pg::create_pg_get_partkeydef_udf(),
        pg::create_pg_relation_is_publishable_udf(),
        pg::create_pg_get_statisticsobjdef_columns_udf(),
        pg::create_pg_encoding_to_char_udf(),
        pg::create_pg_backend_pid_udf(),
        pg::create_pg_relation_size_udf(),
        pg::create_pg_total_relation_size_udf(),
        pg::create_pg_stat_get_numscans(),
        pg::create_pg_get_constraintdef(),
        pg::create_pg_get_partition_ancestors_udf(),
        quote_ident_udf::create_quote_ident_udf(),
        quote_ident_udf::create_parse_ident_udf(),
        array_bounds_udf::create_array_upper_udf(),
        array_bounds_udf::create_array_lower_udf(),
    ];
    for function in functions {
        ctx.register_udf(function);
    }
    ctx.register_udtf("pg_get_keywords", Arc::clone(&tables.pg_get_keywords) as _);
    // `regclass`, `regtype`, ... as types in casts
    let state = ctx.state_ref();
    let with_types = SessionStateBuilder::new_from_existing(state.read().clone()).with_type_planner(Arc::new(PgOidTypePlanner)).build();
    *state.write() = with_types;
    session.add_extension(Arc::new(CatalogQueries));
    Ok(())
}

/// `current_schema()`: the schema unqualified names resolve in (`main`
/// unless `USE` changed it).
fn current_schema(session: WeakSession) -> ScalarUDF {
    let current = move |_: &[ColumnarValue]| {
        let schema = session.upgrade().map(|s| s.current_schema().1);
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(schema)))
    };
    create_udf("current_schema", Vec::new(), DataType::Utf8, Volatility::Stable, Arc::new(current))
}

/// `version()` as Postgres words it, which clients parse (SQLAlchemy
/// reads the major version from it): the protocol level Pintail speaks,
/// then what it is.
fn version() -> ScalarUDF {
    let text = format!(
        "PostgreSQL {PG_VERSION} (Pintail {}, on Apache DataFusion {})",
        env!("CARGO_PKG_VERSION"),
        pintail_core::datafusion::DATAFUSION_VERSION
    );
    let version = move |_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))));
    create_udf("version", Vec::new(), DataType::Utf8, Volatility::Immutable, Arc::new(version))
}

/// `pg_type_is_visible(oid)` and the like: true, as every object a client
/// sees is in the served database (as `pg_table_is_visible` answers).
fn visible(name: &str) -> ScalarUDF {
    let function = |args: &[ColumnarValue]| {
        let [arg] = args else { return exec_err!("takes one argument") };
        Ok(match arg {
            ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))),
            ColumnarValue::Array(a) => ColumnarValue::Array(Arc::new(BooleanArray::from(vec![true; a.len()]))),
        })
    };
    create_udf(name, vec![DataType::Int32], DataType::Boolean, Volatility::Stable, Arc::new(function))
}

/// `pg_get_indexdef(index, column, pretty)`: NULL, as Postgres answers for
/// an oid that is no index; Pintail's tables have none.
fn no_index_definition() -> ScalarUDF {
    let function = |_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
    let args = vec![DataType::Int32, DataType::Int64, DataType::Boolean];
    create_udf("pg_get_indexdef", args, DataType::Utf8, Volatility::Stable, Arc::new(function))
}

/// The oid of each type in `pg_type`, by name.
fn type_oids(pg_type: &ArrowTable) -> Arc<HashMap<String, i32>> {
    let mut oids = HashMap::new();
    for batch in pg_type.data() {
        let names = batch.column_by_name("typname").and_then(|c| c.as_string_opt::<i32>());
        let ids = batch.column_by_name("oid").and_then(|c| c.as_primitive_opt::<Int32Type>());
        let (Some(names), Some(ids)) = (names, ids) else { continue };
        for (name, id) in names.iter().zip(ids.iter()) {
            if let (Some(name), Some(id)) = (name, id) {
                oids.insert(name.to_string(), id);
            }
        }
    }
    Arc::new(oids)
}

/// `to_regtype(name)`: the oid of the type named, NULL for none. Takes
/// the SQL spellings (`integer`, `character varying`, `text[]`) as well
/// as `pg_type`'s (`int4`, `varchar`, `_text`), qualified or not.
fn to_regtype(oids: Arc<HashMap<String, i32>>) -> ScalarUDF {
    let lookup = move |name: &str| -> Option<i32> {
        let name = name.trim().to_ascii_lowercase();
        let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
        let (name, array) = match name.strip_suffix("[]") {
            Some(element) => (element.trim_end(), true),
            None => (name, false),
        };
        let name = match name {
            "integer" | "int" => "int4",
            "smallint" => "int2",
            "bigint" => "int8",
            "real" => "float4",
            "double precision" => "float8",
            "boolean" => "bool",
            "character varying" => "varchar",
            "character" => "bpchar",
            "decimal" => "numeric",
            "timestamp without time zone" => "timestamp",
            "timestamp with time zone" => "timestamptz",
            "time without time zone" => "time",
            "time with time zone" => "timetz",
            other => other,
        };
        if array { oids.get(&format!("_{name}")) } else { oids.get(name) }.copied()
    };
    let function = move |args: &[ColumnarValue]| {
        let [arg] = args else { return exec_err!("to_regtype takes one argument") };
        let names = arg.to_array(1)?;
        let names = names.as_string_opt::<i32>().ok_or_else(|| DataFusionError::Execution("to_regtype takes text".into()))?;
        let out: Int32Array = names.iter().map(|n| n.and_then(&lookup)).collect();
        Ok(match arg {
            ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?),
            ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(out)),
        })
    };
    create_udf("to_regtype", vec![DataType::Utf8], DataType::Int32, Volatility::Stable, Arc::new(function))
}

/// `pg_catalog`'s tables, with `pg_index` as [`pg_index`] makes it.
#[derive(Debug)]
struct PgCatalog {
    tables: PgCatalogSchemaProvider<Served, EmptyContextProvider>,
    pg_index: Arc<dyn TableProvider>,
}

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        self.tables.table_names()
    }

    async fn table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        if name.eq_ignore_ascii_case("pg_index") {
            return Ok(Some(Arc::clone(&self.pg_index)));
        }
        let table = self.tables.table(name).await?;
        match table {
            Some(pg_class) if name.eq_ignore_ascii_case("pg_class") => pg_class_complete(pg_class).map(Some),
            table => Ok(table),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.table_exist(name)
    }
}

/// `pg_class` with the columns Postgres has and the crate's table lacks,
/// which SQLAlchemy reads: no options, no access list, no toast table, no
/// composite type.
fn pg_class_complete(pg_class: Arc<dyn TableProvider>) -> DFResult<Arc<dyn TableProvider>> {
    let text_list = DataType::new_list(DataType::Utf8, true);
    let oid = |name: &str| lit(0_i32).alias(name);
    let plan = LogicalPlanBuilder::scan("pg_class", provider_as_source(pg_class), None)?;
    let have = plan.schema().columns();
    let missing = [
        oid("reltype"),
        oid("reloftype"),
        oid("reltoastrelid"),
        oid("relrewrite"),
        cast(lit(ScalarValue::Null), text_list.clone()).alias("relacl"),
        cast(lit(ScalarValue::Null), text_list).alias("reloptions"),
    ]
    .into_iter()
    .filter(|e| !have.iter().any(|c| c.name == e.schema_name().to_string()));
    let columns: Vec<_> = have.iter().cloned().map(LogicalExpr::Column).chain(missing).collect();
    Ok(Arc::new(ViewTable::new(plan.project(columns)?.build()?, None)))
}

/// `pg_index` with its key columns as arrays (`int2vector` and
/// `oidvector` in Postgres; text in the shipped snapshot, which makes
/// SQLAlchemy's `unnest(indkey)` fail to plan) and no rows: Pintail's
/// tables have no indexes, and the snapshot's rows are Postgres' own.
fn pg_index(snapshot: &ArrowTable) -> DFResult<Arc<dyn TableProvider>> {
    let fields: Vec<Field> = snapshot
        .schema()
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "indkey" | "indoption" => Field::new(f.name(), DataType::new_list(DataType::Int16, true), false),
            "indcollation" | "indclass" => Field::new(f.name(), DataType::new_list(DataType::Int32, true), false),
            _ => f.as_ref().clone(),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    Ok(Arc::new(MemTable::try_new(schema, vec![Vec::new()])?))
}

/// The catalogs a client sees: the served database alone, as a Postgres
/// connection sees only its database (not the in-memory catalog or
/// Pintail's own hidden one).
#[derive(Debug, Clone)]
struct Served(WeakSession, Arc<dyn CatalogProviderList>);

impl Served {
    fn database(&self) -> Option<String> {
        self.0.upgrade().map(|s| s.current_schema().0)
    }
}

#[async_trait]
impl CatalogInfo for Served {
    async fn catalog_names(&self) -> DFResult<Vec<String>> {
        Ok(self.database().into_iter().collect())
    }

    async fn schema_names(&self, catalog: &str) -> DFResult<Option<Vec<String>>> {
        self.1.schema_names(catalog).await
    }

    async fn table_names(&self, catalog: &str, schema: &str) -> DFResult<Option<Vec<String>>> {
        self.1.table_names(catalog, schema).await
    }

    async fn table_schema(&self, catalog: &str, schema: &str, table: &str) -> DFResult<Option<SchemaRef>> {
        self.1.table_schema(catalog, schema, table).await
    }

    async fn table_type(&self, catalog: &str, schema: &str, table: &str) -> DFResult<Option<TableType>> {
        self.1.table_type(catalog, schema, table).await
    }
}

/// Whether `statement` reads the Postgres catalog: it names a `pg_...`
/// table or function, casts to an oid alias type (`::regclass`), or uses
/// Postgres' `OPERATOR(...)` syntax.
pub(crate) fn reads_catalog(statement: &Statement) -> bool {
    statement.kind() == StatementKind::Other
        && statement.tokens().iter().any(|t| match &t.token {
            Token::Word(w) if w.quote_style.is_none() => {
                const OID_TYPES: [&str; 7] = ["regclass", "regtype", "regproc", "regprocedure", "regnamespace", "regrole", "regoper"];
                w.value.get(..3).is_some_and(|prefix| prefix.eq_ignore_ascii_case("pg_"))
                    || w.keyword == Keyword::OPERATOR
                    || OID_TYPES.iter().any(|t| w.value.eq_ignore_ascii_case(t))
            }
            _ => false,
        })
}

/// `statement` parsed with Postgres' grammar and rewritten to plan in
/// DataFusion.
pub(crate) fn parse(statement: &Statement) -> Result<DFStatement> {
    static PARSER: LazyLock<PostgresCompatibilityParser> = LazyLock::new(PostgresCompatibilityParser::new);
    let mut statements = PARSER
        .parse(statement.text())
        .map_err(|e| Error::new(ErrorKind::Syntax, format!("cannot parse the catalog query: {e}")))?;
    match (statements.pop(), statements.is_empty()) {
        (Some(mut s), true) => {
            let _: ControlFlow<()> = visit_expressions_mut(&mut s, |e| {
                if let Some(rewritten) = generate_subscripts(e).or_else(|| table_is_visible(e)) {
                    *e = rewritten;
                }
                ControlFlow::Continue(())
            });
            // after the rewrites above, which add catalog tables of their own
            let _: ControlFlow<()> = visit_relations_mut(&mut s, |name| {
                let parts = &mut name.0;
                let in_pg_catalog = parts.len() == 2
                    && parts[0].as_ident().is_some_and(|schema| schema.value.eq_ignore_ascii_case("pg_catalog"));
                if in_pg_catalog {
                    parts.insert(0, ObjectNamePart::Identifier(Ident::new(MEMORY_CATALOG)));
                }
                ControlFlow::Continue(())
            });
            Ok(DFStatement::Statement(Box::new(s)))
        }
        _ => Err(Error::new(ErrorKind::Syntax, "expected one catalog query")),
    }
}

/// `SHOW` of a Postgres setting that clients ask for on connecting and
/// Pintail has no setting of its own for, answered as Postgres 16 would
/// (one column named after the setting); `None` for the rest.
fn show(session: &Session, statement: &Statement) -> Result<Option<QueryResult>> {
    let words: Vec<String> = statement
        .tokens()
        .iter()
        .filter_map(|t| match &t.token {
            Token::Word(w) => Some(w.value.to_ascii_lowercase()),
            _ => None,
        })
        .skip(1)
        .collect();
    let name = words.join(" ");
    let value = match name.as_str() {
        // Pintail's transactions see one snapshot, and conflicting writes fail
        "transaction isolation level" | "transaction_isolation" | "default_transaction_isolation" => "repeatable read",
        "standard_conforming_strings" | "integer_datetimes" => "on",
        "server_version" => PG_VERSION,
        "server_version_num" => "160006",
        "server_encoding" | "client_encoding" => "UTF8",
        "datestyle" => "ISO, YMD",
        "max_identifier_length" => "63",
        "search_path" => return one_value(session, &name, &session.current_schema().1, statement).map(Some),
        _ => return Ok(None),
    };
    one_value(session, &name, value, statement).map(Some)
}

/// A one-row, one-column text result.
fn one_value(session: &Session, name: &str, value: &str, statement: &Statement) -> Result<QueryResult> {
    let column = name.replace(' ', "_");
    let schema = Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, false)]));
    let values: ArrayRef = Arc::new(StringArray::from(vec![value]));
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![values])?;
    Ok(session.batches_result(schema, vec![batch], statement.text()))
}

/// `generate_subscripts(array, 1)` (a set-returning function that
/// SQLAlchemy's key introspection zips with `unnest(array)`), as the
/// `unnest` of the subscripts, which DataFusion zips the same way.
fn generate_subscripts(e: &Expr) -> Option<Expr> {
    let [array, _dim] = call_args(e, "generate_subscripts")?[..] else { return None };
    pg_expr(&format!("unnest(range(1, CAST(cardinality({array}) AS BIGINT) + 1))"))
}

/// The arguments of `e` if it calls function `name` (qualified or not)
/// with positional arguments only.
fn call_args<'a>(e: &'a Expr, name: &str) -> Option<Vec<&'a Expr>> {
    let Expr::Function(f) = e else { return None };
    if !f.name.0.last()?.as_ident()?.value.eq_ignore_ascii_case(name) {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else { return None };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect()
}

/// An expression in Postgres' grammar.
fn pg_expr(text: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {}).try_with_sql(text).ok()?.parse_expr().ok()
}

/// `pg_table_is_visible(oid)` as Postgres answers it with the search path
/// Pintail has (the current schema, then `pg_catalog`): whether the
/// relation is in one of those schemas. (`\dt` lists the current schema's
/// tables; `\dt archive.*` another's.)
fn table_is_visible(e: &Expr) -> Option<Expr> {
    let [oid] = call_args(e, "pg_table_is_visible")?[..] else { return None };
    let text = format!(
        "({oid}) IN (SELECT visible.oid FROM pg_catalog.pg_class AS visible \
         JOIN pg_catalog.pg_namespace AS visible_ns ON visible_ns.oid = visible.relnamespace \
         WHERE visible_ns.nspname IN (current_schema(), 'pg_catalog'))"
    );
    pg_expr(&text)
}

/// Runs catalog queries through [`parse`].
struct CatalogQueries;

#[async_trait]
impl Extension for CatalogQueries {
    fn name(&self) -> &'static str {
        "pg_catalog"
    }

    async fn statement(&self, session: &Session, statement: &Statement) -> Result<Option<QueryResult>> {
        if statement.kind() == StatementKind::Show {
            return show(session, statement);
        }
        if !reads_catalog(statement) {
            return Ok(None);
        }
        // a statement Postgres' grammar does not take (a `pg_` name in a
        // query over a file, say) is Pintail's to run, and its error to give
        let Ok(parsed) = parse(statement) else { return Ok(None) };
        session.run_df_statement(parsed, statement.text()).await.map(Some)
    }

    async fn ddl(&self, _session: &Session, _ddl: &DdlStatement, _text: &str) -> Result<Option<QueryResult>> {
        Ok(None)
    }
}
