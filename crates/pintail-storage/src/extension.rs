//! The session extension that adds databases: `ATTACH`, `DETACH`, `USE`,
//! `ALTER TABLE`, and DDL on database catalogs (see [`crate::ddl`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use deltalake::DeltaTable;
use deltalake::kernel::{DataType as DeltaType, StructField};
use pintail_core::datafusion::common::TableReference;
use pintail_core::datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use pintail_core::datafusion::logical_expr::{DdlStatement, LogicalPlan};
use pintail_core::datafusion::sql::parser::Statement as DFStatement;
use pintail_core::datafusion::datasource::TableProvider;
use pintail_core::datafusion::sql::sqlparser::ast::{self, AlterTableOperation, FunctionArg, FunctionArgExpr};
use pintail_core::datafusion::sql::sqlparser::keywords::Keyword;
use pintail_core::datafusion::sql::sqlparser::tokenizer::Token;
use pintail_core::{AsOf, Error, ErrorKind, Extension, QueryResult, Result, Session, Statement};

use crate::catalog::{Database, DatabaseCatalog};
use crate::errors::delta_error;
use crate::layout::{DEFAULT_SCHEMA, Layout};
use crate::maintenance::Maintenance;
use crate::table::{DatabaseTable, Version, log_store};
use crate::transaction::Transactions;

/// The databases attached to one session, by catalog name.
#[derive(Debug, Default)]
pub struct Databases {
    map: RwLock<HashMap<String, Arc<Database>>>,
}

impl Databases {
    /// The database attached as `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Database>> {
        self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned()
    }

    fn insert(&self, db: Arc<Database>) {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(db.name().to_string(), db);
    }

    fn remove(&self, name: &str) -> Option<Arc<Database>> {
        self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name)
    }
}

/// Options of `ATTACH`.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    /// The catalog name; the file name without its extension if `None`.
    pub name: Option<String>,
    /// Refuse writes, and do not create the database if it is missing.
    pub read_only: bool,
}

/// The extension; one per session, found again by name.
#[derive(Debug, Default)]
pub struct StorageExtension {
    dbs: Databases,
    txns: Arc<Transactions>,
}

/// The extension's name in the session.
pub const NAME: &str = "pintail-storage";

impl StorageExtension {
    /// Attaches the database at `path`; returns its catalog name.
    pub fn attach(&self, session: &Session, path: &Path, options: &AttachOptions) -> Result<String> {
        // its tables are read and written around the session's stores
        session.check_path(path)?;
        let name = match &options.name {
            Some(n) => n.clone(),
            None => default_name(path)?,
        };
        if self.dbs.get(&name).is_some() || session.context().catalog(&name).is_some() {
            return Err(Error::plan(format!("a database named '{name}' is already attached"))
                .with_hint("pick another name with ATTACH '...' AS other_name"));
        }
        if options.read_only && !path.exists() {
            return Err(Error::io(format!("database '{}' does not exist", path.display()))
                .with_hint("a database attached read-only must exist already"));
        }
        let layout = Layout::open_or_create(path)?;
        let db = Arc::new(Database::new(name.clone(), layout, options.read_only, session.downgrade(), Arc::clone(&self.txns)));
        session
            .context()
            .register_catalog(name.clone(), Arc::new(DatabaseCatalog::new(Arc::clone(&db))));
        self.dbs.insert(db);
        Ok(name)
    }

    fn detach(&self, session: &Session, name: &str, if_exists: bool) -> Result<()> {
        if self.dbs.get(name).is_none() {
            if if_exists {
                return Ok(());
            }
            return Err(Error::plan(format!("no database named '{name}' is attached")));
        }
        if session.current_schema().0 == name {
            return Err(Error::plan(format!("cannot detach database '{name}': it is the current database"))
                .with_hint("USE another database first"));
        }
        self.dbs.remove(name);
        session.deregister_catalog(name);
        Ok(())
    }

    /// The attached databases.
    pub fn databases(&self) -> &Databases {
        &self.dbs
    }

    /// Whether a transaction (`BEGIN`) is open in this session.
    pub fn in_transaction(&self) -> bool {
        self.txns.is_open()
    }

    /// Refuses a node of a plan run inside a transaction that the
    /// transaction could not undo.
    fn check_node(&self, session: &Session, plan: &LogicalPlan) -> Result<()> {
        match plan {
            LogicalPlan::Ddl(ddl) => Err(not_in_transaction(ddl_words(ddl), "it commits on its own")),
            LogicalPlan::Copy(_) => Err(not_in_transaction("COPY ... TO", "the file it writes would stay if the transaction rolled back")),
            LogicalPlan::Dml(dml) => {
                let (catalog, schema) = session.current_schema();
                let target = dml.table_name.clone().resolve(&catalog, &schema);
                if self.dbs.get(&target.catalog).is_some() {
                    return Ok(());
                }
                Err(not_in_transaction(
                    &format!("{} '{}'", dml.op.to_string().to_uppercase(), dml.table_name),
                    "it is an in-memory table, whose changes cannot be rolled back",
                ))
            }
            _ => Ok(()),
        }
    }

    async fn alter_table(&self, session: &Session, s: &Statement) -> Result<Option<QueryResult>> {
        let DFStatement::Statement(stmt) = session.parse_one(s.text())? else { return Ok(None) };
        let ast::Statement::AlterTable(alter) = *stmt else { return Ok(None) };
        let reference = TableReference::from(alter.name.to_string());
        let (catalog, schema) = session.current_schema();
        let name = reference.resolve(&catalog, &schema);
        let Some(db) = self.dbs.get(&name.catalog) else { return Ok(None) };
        db.check_writable()?;
        let (schema, table) = (name.schema.to_string(), name.table.to_string());
        if !db.layout().has_table(&schema, &table) {
            if alter.if_exists {
                return Ok(Some(session.empty_result(s.text())));
            }
            return Err(Error::plan(format!("table '{table}' does not exist in {}.{schema}", db.name())));
        }
        if alter.operations.len() > 1 {
            return Err(Error::new(ErrorKind::NotSupported, "ALTER TABLE takes one change at a time here")
                .with_hint("run one ALTER TABLE per change; each is one commit"));
        }
        for op in alter.operations {
            match op {
                AlterTableOperation::RenameTable { table_name } => {
                    let to = match table_name {
                        ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => n,
                    };
                    let to = TableReference::from(to.to_string()).resolve(db.name(), &schema);
                    if to.catalog.as_ref() != db.name() {
                        return Err(Error::plan("a table cannot be renamed into another database"));
                    }
                    db.layout().rename_table(&schema, &table, &to.schema, &to.table)?;
                }
                AlterTableOperation::AddColumn {
                    column_def,
                    if_not_exists,
                    ..
                } => add_column(session, &db, &schema, &table, &column_def, if_not_exists).await?,
                other => {
                    return Err(Error::new(ErrorKind::NotSupported, format!("ALTER TABLE ... {other} is not supported"))
                        .with_hint("supported: ADD COLUMN, RENAME TO"));
                }
            }
        }
        Ok(Some(session.empty_result(s.text())))
    }
}

async fn add_column(
    session: &Session,
    db: &Database,
    schema: &str,
    table: &str,
    def: &ast::ColumnDef,
    if_not_exists: bool,
) -> Result<()> {
    // as DataFusion names columns: lower case unless quoted
    let column = if def.name.quote_style.is_some() { def.name.value.clone() } else { def.name.value.to_lowercase() };
    if !def.options.is_empty() {
        return Err(Error::new(
            ErrorKind::NotSupported,
            format!("column '{column}': a new column of a Delta table takes no NOT NULL, DEFAULT or other options"),
        )
        .with_hint("existing rows read NULL in the new column"));
    }
    // DataFusion's own type names, by planning a cast to the type
    let probe = session
        .plan_relation(&format!("SELECT CAST(NULL AS {}) AS c", def.data_type))
        .await?;
    let arrow_type = probe.schema().field(0).data_type().clone();
    let field = pintail_core::datafusion::arrow::datatypes::Field::new(&column, arrow_type, true);
    let delta_field: StructField = deltalake::kernel::engine::arrow_conversion::TryIntoKernel::try_into_kernel(&field)
        .map_err(|e| Error::plan(format!("column '{column}': {e}")))?;
    let _: &DeltaType = delta_field.data_type();
    let mut delta = DeltaTable::new(log_store(&db.layout().table_dir(schema, table))?);
    delta.load().await.map_err(|e| delta_error(table, e))?;
    if delta
        .snapshot()
        .map_err(|e| delta_error(table, e))?
        .schema()
        .field(&column)
        .is_some()
    {
        if if_not_exists {
            return Ok(());
        }
        return Err(Error::plan(format!("table '{table}' already has a column '{column}'")));
    }
    delta
        .add_columns()
        .with_fields([delta_field])
        .await
        .map_err(|e| delta_error(table, e))?;
    Ok(())
}

/// The catalog name of a database file: `sales.db` -> `sales`.
fn default_name(path: &Path) -> Result<String> {
    let stem = PathBuf::from(path)
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .filter(|s| !s.is_empty() && !s.starts_with('.'));
    stem.ok_or_else(|| {
        Error::plan(format!("cannot name a database after '{}'", path.display()))
            .with_hint("give it a name: ATTACH 'path' AS name")
    })
}

#[async_trait]
impl Extension for StorageExtension {
    fn name(&self) -> &str {
        NAME
    }

    async fn statement(&self, session: &Session, s: &Statement) -> Result<Option<QueryResult>> {
        let Some(Token::Word(first)) = s.tokens().first().map(|t| &t.token) else {
            return Ok(None);
        };
        let ends_transaction = matches!(first.keyword, Keyword::COMMIT | Keyword::END | Keyword::ROLLBACK | Keyword::ABORT);
        if !ends_transaction {
            self.txns.check_not_aborted()?;
        }
        let in_transaction = self.txns.is_open();
        if let Some(m) = Maintenance::of(s) {
            if in_transaction && m != Maintenance::History {
                return Err(not_in_transaction(&first.value.to_uppercase(), "it commits on its own"));
            }
            return m.run(&self.dbs, session, s).await.map(Some);
        }
        if in_transaction && matches!(first.keyword, Keyword::ALTER | Keyword::DETACH) {
            return Err(not_in_transaction(&first.value.to_uppercase(), "it commits on its own"));
        }
        if let Some(control) = TransactionControl::of(s)? {
            match control {
                TransactionControl::Begin => self.txns.begin()?,
                TransactionControl::Commit => self.txns.commit().await?,
                TransactionControl::Rollback => self.txns.rollback().await?,
                TransactionControl::Savepoint(name) => self.txns.set_savepoint(&name)?,
                TransactionControl::Release(name) => self.txns.release_savepoint(&name)?,
                TransactionControl::RollbackTo(name) => self.txns.rollback_to_savepoint(&name)?,
            }
            return Ok(Some(session.empty_result(s.text())));
        }
        match first.keyword {
            Keyword::ATTACH => {
                let (path, options, if_not_exists) = parse_attach(s)?;
                if if_not_exists && options.name.as_deref().is_some_and(|n| self.dbs.get(n).is_some()) {
                    return Ok(Some(session.empty_result(s.text())));
                }
                self.attach(session, Path::new(&path), &options)?;
                Ok(Some(session.empty_result(s.text())))
            }
            Keyword::DETACH => {
                let (name, if_exists) = parse_detach(s)?;
                self.detach(session, &name, if_exists)?;
                Ok(Some(session.empty_result(s.text())))
            }
            Keyword::USE => {
                let words: Vec<String> = s.tokens()[1..]
                    .iter()
                    .filter_map(|t| match &t.token {
                        Token::Word(w) => Some(w.value.clone()),
                        _ => None,
                    })
                    .collect();
                let Some(first) = words.first() else { return Ok(None) };
                let (current, _) = session.current_schema();
                let ctx = session.context();
                // a database (and maybe a schema of it), or a schema of the current one
                let (catalog, schema) = match (ctx.catalog(first), words.get(1)) {
                    (Some(_), Some(schema)) => (first.clone(), schema.clone()),
                    (Some(_), None) => (first.clone(), DEFAULT_SCHEMA.to_string()),
                    (None, _) => (current, first.clone()),
                };
                let exists = ctx.catalog(&catalog).is_some_and(|c| c.schema(&schema).is_some());
                if !exists {
                    return Err(Error::plan(format!("no database or schema named '{}'", words.join(".")))
                        .with_hint("attached databases are listed by SELECT DISTINCT table_catalog FROM information_schema.tables"));
                }
                session.use_schema(&catalog, &schema);
                Ok(Some(session.empty_result(s.text())))
            }
            Keyword::ALTER => self.alter_table(session, s).await,
            _ => Ok(None),
        }
    }

    fn check_plan(&self, session: &Session, plan: &LogicalPlan) -> Result<()> {
        if !self.txns.is_open() {
            return Ok(());
        }
        // every node: EXPLAIN ANALYZE runs the statement it explains
        let mut refusal = Ok(());
        plan.apply(|node| {
            refusal = self.check_node(session, node);
            Ok(if refusal.is_ok() { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
        })?;
        refusal
    }

    fn statement_failed(&self, error: &Error) {
        // a stray BEGIN did nothing to the open transaction
        if error.message().starts_with(crate::transaction::ALREADY_OPEN) {
            return;
        }
        self.txns.abort(error.message());
    }


    async fn ddl(&self, session: &Session, ddl: &DdlStatement, text: &str) -> Result<Option<QueryResult>> {
        crate::ddl::run(&self.dbs, session, ddl, text).await
    }

    async fn table_as_of(&self, session: &Session, name: &TableReference, as_of: &AsOf) -> Result<Option<Arc<dyn TableProvider>>> {
        let (catalog, schema) = session.current_schema();
        let r = name.clone().resolve(&catalog, &schema);
        let Some(db) = self.dbs.get(&r.catalog) else { return Ok(None) };
        let version = match as_of {
            AsOf::Version(v) => *v,
            AsOf::Timestamp(text) => {
                let dir = db.layout().table_dir(&r.schema, &r.table);
                version_at(&r.table, &dir, text).await?
            }
        };
        db.table(&r.schema, &r.table, Version::Number(version)).await
    }

    fn table_functions(&self) -> &[&str] {
        &["delta_scan"]
    }

    async fn call_table_function(&self, session: &Session, name: &str, args: &[FunctionArg]) -> Result<Arc<dyn TableProvider>> {
        if self.txns.is_open() {
            // it reads the log outside the transaction's view of it, which
            // the session's file store shows while the transaction lasts
            return Err(not_in_transaction(name, "it reads a Delta table outside the transaction"));
        }
        let usage = || {
            Error::new(ErrorKind::Syntax, format!("{name} takes the path of a Delta table: {name}('path/to/table')"))
        };
        let [FunctionArg::Unnamed(FunctionArgExpr::Expr(ast::Expr::Value(v)))] = args else {
            return Err(usage());
        };
        let ast::Value::SingleQuotedString(path) = &v.value else { return Err(usage()) };
        if path.contains("://") {
            return Err(Error::new(ErrorKind::NotSupported, format!("{name} reads Delta tables on local disk; '{path}' is a URL")));
        }
        let dir = std::path::absolute(path).map_err(|e| Error::io(format!("cannot resolve '{path}': {e}")))?;
        session.check_path(&dir)?;
        if !dir.join("_delta_log").is_dir() {
            return Err(Error::io(format!("'{path}' is not a Delta table: it has no _delta_log directory")));
        }
        let read_only = Some(format!("'{path}' is read through {name}, which cannot write"));
        let table = DatabaseTable::open(path, &dir, Version::Latest, read_only, session.context(), None).await?;
        Ok(Arc::new(table))
    }
}

fn not_in_transaction(what: &str, why: &str) -> Error {
    Error::new(ErrorKind::NotSupported, format!("{what} cannot run inside a transaction: {why}"))
        .with_hint("COMMIT or ROLLBACK the transaction first")
}

/// What a DDL statement is called in SQL.
fn ddl_words(ddl: &DdlStatement) -> &'static str {
    match ddl {
        DdlStatement::CreateExternalTable(_) => "CREATE EXTERNAL TABLE",
        DdlStatement::CreateMemoryTable(_) => "CREATE TABLE",
        DdlStatement::CreateView(_) => "CREATE VIEW",
        DdlStatement::CreateCatalogSchema(_) => "CREATE SCHEMA",
        DdlStatement::CreateCatalog(_) => "CREATE DATABASE",
        DdlStatement::CreateIndex(_) => "CREATE INDEX",
        DdlStatement::DropTable(_) => "DROP TABLE",
        DdlStatement::DropView(_) => "DROP VIEW",
        DdlStatement::DropCatalogSchema(_) => "DROP SCHEMA",
        DdlStatement::CreateFunction(_) => "CREATE FUNCTION",
        DdlStatement::DropFunction(_) => "DROP FUNCTION",
    }
}

/// `BEGIN`, `COMMIT` or `ROLLBACK`, in their spellings, and the
/// savepoint statements.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TransactionControl {
    Begin,
    Commit,
    Rollback,
    Savepoint(String),
    Release(String),
    RollbackTo(String),
}

impl TransactionControl {
    /// `BEGIN [TRANSACTION | WORK]`, `START TRANSACTION`, `COMMIT [TRANSACTION
    /// | WORK]`, `END [TRANSACTION]`, `ROLLBACK [TRANSACTION | WORK]`,
    /// `ABORT`, `SAVEPOINT name`, `RELEASE [SAVEPOINT] name`, `ROLLBACK
    /// [TRANSACTION | WORK] TO [SAVEPOINT] name`; `None` for any other
    /// statement.
    fn of(s: &Statement) -> Result<Option<Self>> {
        let words: Vec<Option<String>> = s.tokens().iter().map(|t| words_upper(&t.token)).collect();
        let Some(Some(first)) = words.first() else { return Ok(None) };
        let (control, rest) = match first.as_str() {
            "BEGIN" => (Self::Begin, &words[1..]),
            "START" => {
                if words.get(1).cloned().flatten().as_deref() != Some("TRANSACTION") {
                    return Ok(None);
                }
                (Self::Begin, &words[2..])
            }
            "COMMIT" | "END" => (Self::Commit, &words[1..]),
            "ROLLBACK" | "ABORT" => (Self::Rollback, &words[1..]),
            "SAVEPOINT" => return savepoint_name(s, 1, "SAVEPOINT name").map(|n| Some(Self::Savepoint(n))),
            "RELEASE" => {
                let skip = if words.get(1).cloned().flatten().as_deref() == Some("SAVEPOINT") { 2 } else { 1 };
                return savepoint_name(s, skip, "RELEASE [SAVEPOINT] name").map(|n| Some(Self::Release(n)));
            }
            _ => return Ok(None),
        };
        let rest: Vec<&str> = rest.iter().map(|w| w.as_deref().unwrap_or("")).collect();
        match rest.as_slice() {
            [] | ["TRANSACTION" | "WORK"] => Ok(Some(control)),
            [.., "TO", _] | [.., "TO", "SAVEPOINT", _] if control == Self::Rollback => {
                let skip = 1 + rest.iter().position(|w| *w == "TO").unwrap_or(0) + 1;
                let skip = if rest.get(skip - 1) == Some(&"SAVEPOINT") { skip + 1 } else { skip };
                savepoint_name(s, skip, "ROLLBACK TO [SAVEPOINT] name").map(|n| Some(Self::RollbackTo(n)))
            }
            _ => Err(Error::new(ErrorKind::NotSupported, format!("{} with options is not supported: {}", first, s.text()))
                .with_hint("write BEGIN, COMMIT or ROLLBACK; transactions here are serializable for the one table they write")),
        }
    }
}

/// The savepoint name that is the last token of `s`, the `skip`th; an
/// unquoted name is folded to lower case, as SQL names are.
fn savepoint_name(s: &Statement, skip: usize, usage: &str) -> Result<String> {
    let tokens = s.tokens();
    match (tokens.get(skip).map(|t| &t.token), tokens.len() == skip + 1) {
        (Some(Token::Word(w)), true) if w.quote_style.is_some() => Ok(w.value.clone()),
        (Some(Token::Word(w)), true) => Ok(w.value.to_lowercase()),
        _ => Err(Error::new(ErrorKind::Syntax, format!("expected {usage}, found: {}", s.text()))),
    }
}

fn words_upper(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// `ATTACH [DATABASE] [IF NOT EXISTS] 'path' [AS name] [(READ_ONLY)]`.
fn parse_attach(s: &Statement) -> Result<(String, AttachOptions, bool)> {
    let usage = || {
        Error::new(ErrorKind::Syntax, format!("cannot read ATTACH statement: {}", s.text()))
            .with_hint("ATTACH [IF NOT EXISTS] 'path/to/db' [AS name] [(READ_ONLY)]")
    };
    let tokens: Vec<&Token> = s.tokens().iter().map(|t| &t.token).collect();
    let mut i = 1;
    if tokens.get(i).and_then(|t| words_upper(t)).as_deref() == Some("DATABASE") {
        i += 1;
    }
    let mut if_not_exists = false;
    if tokens.get(i).and_then(|t| words_upper(t)).as_deref() == Some("IF") {
        if tokens.get(i + 1).and_then(|t| words_upper(t)).as_deref() != Some("NOT")
            || tokens.get(i + 2).and_then(|t| words_upper(t)).as_deref() != Some("EXISTS")
        {
            return Err(usage());
        }
        if_not_exists = true;
        i += 3;
    }
    let path = match tokens.get(i) {
        Some(Token::SingleQuotedString(p)) => p.clone(),
        _ => return Err(usage()),
    };
    i += 1;
    let mut options = AttachOptions::default();
    if tokens.get(i).and_then(|t| words_upper(t)).as_deref() == Some("AS") {
        match tokens.get(i + 1) {
            Some(Token::Word(w)) => options.name = Some(if w.quote_style.is_some() { w.value.clone() } else { w.value.to_ascii_lowercase() }),
            _ => return Err(usage()),
        }
        i += 2;
    }
    if tokens.get(i) == Some(&&Token::LParen) {
        let mut j = i + 1;
        while let Some(t) = tokens.get(j) {
            match t {
                Token::RParen => break,
                Token::Comma => {}
                Token::Word(w) if w.value.eq_ignore_ascii_case("read_only") => options.read_only = true,
                other => {
                    return Err(Error::option(&other.to_string(), "unknown ATTACH option").with_hint("the option is READ_ONLY"));
                }
            }
            j += 1;
        }
        if tokens.get(j) != Some(&&Token::RParen) {
            return Err(usage());
        }
        i = j + 1;
    }
    if i != tokens.len() {
        return Err(usage());
    }
    Ok((path, options, if_not_exists))
}

/// `DETACH [DATABASE] [IF EXISTS] name`.
fn parse_detach(s: &Statement) -> Result<(String, bool)> {
    let usage = || Error::new(ErrorKind::Syntax, format!("cannot read DETACH statement: {}", s.text())).with_hint("DETACH [IF EXISTS] name");
    let tokens: Vec<&Token> = s.tokens().iter().map(|t| &t.token).collect();
    let mut i = 1;
    if tokens.get(i).and_then(|t| words_upper(t)).as_deref() == Some("DATABASE") {
        i += 1;
    }
    let mut if_exists = false;
    if tokens.get(i).and_then(|t| words_upper(t)).as_deref() == Some("IF") {
        if tokens.get(i + 1).and_then(|t| words_upper(t)).as_deref() != Some("EXISTS") {
            return Err(usage());
        }
        if_exists = true;
        i += 2;
    }
    let name = match tokens.get(i) {
        Some(Token::Word(w)) if w.quote_style.is_some() => w.value.clone(),
        Some(Token::Word(w)) => w.value.to_ascii_lowercase(),
        _ => return Err(usage()),
    };
    if i + 1 != tokens.len() {
        return Err(usage());
    }
    Ok((name, if_exists))
}

/// The version of the table in `dir` that was current at `text` (a date or
/// timestamp; without a zone, UTC).
async fn version_at(table: &str, dir: &Path, text: &str) -> Result<u64> {
    let at = parse_time(text).ok_or_else(|| {
        Error::new(ErrorKind::Syntax, format!("cannot read '{text}' as a time"))
            .with_hint("write '2026-01-31', '2026-01-31 12:00:00' or '2026-01-31T12:00:00+01:00' (UTC unless a zone is given)")
    })?;
    let mut delta = DeltaTable::new(log_store(dir)?);
    delta.load_with_datetime(at).await.map_err(|e| {
        let e = delta_error(table, e);
        Error::new(e.kind(), format!("table '{table}' has no version at {text}: {}", e.message()))
    })?;
    // deltalake picks the newest version committed at or before `at`, and
    // falls back to the first one for a time before it: the commit file's
    // time (what deltalake goes by) tells the two apart
    if let Some(v) = delta.version() {
        let commit = dir.join("_delta_log").join(format!("{v:020}.json"));
        let committed = std::fs::metadata(&commit).and_then(|m| m.modified()).ok();
        if committed.is_some_and(|t| chrono::DateTime::<chrono::Utc>::from(t) > at) {
            return Err(Error::plan(format!("table '{table}' has no version at {text}: it was made later")));
        }
    }
    delta.version().ok_or_else(|| Error::plan(format!("table '{table}' has no version at {text}")))
}

fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}
