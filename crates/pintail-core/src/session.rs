//! The [`Session`]: one connection's state and the way every front runs SQL.
//!
//! A session owns a DataFusion `SessionContext` configured the Pintail way
//! (memory pool with spilling, object stores made on demand, the hidden scan
//! schema) and routes each statement: Pintail's own (`SUMMARIZE`,
//! `DESCRIBE`, DuckDB-style `COPY`, `SET memory_limit`) to their modules,
//! everything else to DataFusion after file references are resolved. It is
//! cheap to clone and safe to share between threads and tasks.

use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use datafusion::arrow::array::{RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList, SchemaProvider};
use datafusion::datasource::TableType;
use datafusion::execution::{SessionState, SessionStateBuilder, TaskContext};
use datafusion::execution::context::SessionContext;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use futures::FutureExt;

use crate::error::{Error, ErrorKind, Result, from_datafusion};
use crate::extension::Extension;
use crate::result::{MemoryContext, ProgressHandle, QueryResult, panic_message};
use crate::params::Bindings;
use crate::scan::{self, CollectedScan, SCAN_CATALOG, SCAN_SCHEMA, ScanSchema, ScanTarget};
use crate::settings::{SettingName, Settings};
use crate::statement::{Statement, StatementKind, split_statements};
use crate::allowed::AllowedPaths;
use crate::stores::Stores;
use crate::{conflict_retry, copy, describe, dml_guard, join_fallback, params, runtime_filter, summarize};

/// The catalog of in-memory tables and views.
pub const MEMORY_CATALOG: &str = "memory";
/// The schema of in-memory tables and views.
pub const MEMORY_SCHEMA: &str = "main";

/// A Pintail session. Clones share the same state.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: SessionContext,
    settings: Mutex<Settings>,
    defaults: Settings,
    scans: Arc<ScanSchema>,
    stores: Arc<Stores>,
    next_scan: AtomicU64,
    extensions: RwLock<Vec<Arc<dyn Extension>>>,
    /// The most `memory_limit` may be set to ([`Session::cap_memory`]).
    memory_ceiling: std::sync::OnceLock<u64>,
}

/// A session reference that does not keep the session alive: for catalogs
/// and tables that the session owns and that need to call back into it.
#[derive(Clone, Default)]
pub struct WeakSession {
    inner: Weak<Inner>,
}

impl WeakSession {
    /// The session, if it is still open.
    pub fn upgrade(&self) -> Option<Session> {
        self.inner.upgrade().map(|inner| Session { inner })
    }
}

impl std::fmt::Debug for WeakSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeakSession")
    }
}

/// A table or view, with its columns, as `.tables` and completion list them.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// Catalog (database) name.
    pub catalog: String,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Column names and types.
    pub columns: SchemaRef,
    /// A table, a view or a temporary table.
    pub table_type: TableType,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("settings", &self.settings()).finish_non_exhaustive()
    }
}

impl Session {
    /// An in-memory session with this machine's default settings.
    pub fn new() -> Result<Self> {
        Self::with_settings(Settings::for_this_machine())
    }

    /// An in-memory session with the given settings.
    pub fn with_settings(settings: Settings) -> Result<Self> {
        // named as in DuckDB: memory.main
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(MEMORY_CATALOG, MEMORY_SCHEMA)
            .with_information_schema(true)
            .with_target_partitions(settings.threads)
            .set_bool("datafusion.catalog.has_header", true);
        let stores = Arc::new(Stores::default());
        // DataFusion caches directory listings forever, keyed by path without
        // the store, so a new file in a folder went unseen and two globs over
        // one folder read each other's files; files are listed on every scan
        // instead, as DuckDB does. (Parquet footers and statistics stay
        // cached: those caches check each file's size and modification time.)
        let caches = CacheManagerConfig::default().with_list_files_cache_limit(0);
        let builder = RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::clone(&stores) as _)
            .with_cache_manager(caches);
        let runtime = runtime_builder(&settings, builder)
            .build_arc()
            .map_err(|e| from_datafusion(e, Some("cannot set up the session".into())))?;
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_type_planner(Arc::new(crate::dialect::PintailTypes))
            .with_physical_optimizer_rules(physical_rules())
            .build();
        crate::functions::register_rewrites(&mut state).map_err(|e| from_datafusion(e, None))?;
        let ctx = SessionContext::new_with_state(state);
        crate::functions::register(&ctx);

        let scans = Arc::new(ScanSchema::default());
        let catalog = MemoryCatalogProvider::new();
        catalog
            .register_schema(SCAN_SCHEMA, Arc::clone(&scans) as Arc<dyn SchemaProvider>)
            .map_err(|e| from_datafusion(e, None))?;
        ctx.register_catalog(SCAN_CATALOG, Arc::new(catalog));

        Ok(Self {
            inner: Arc::new(Inner {
                ctx,
                defaults: settings.clone(),
                settings: Mutex::new(settings),
                scans,
                stores,
                next_scan: AtomicU64::new(1),
                extensions: RwLock::new(Vec::new()),
                memory_ceiling: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The DataFusion context under this session, for fronts that need
    /// DataFusion APIs directly (registering Arrow data, Flight SQL).
    pub fn context(&self) -> &SessionContext {
        &self.inner.ctx
    }

    /// A reference to this session that does not keep it alive.
    pub fn downgrade(&self) -> WeakSession {
        WeakSession {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Adds an extension, which sees every later statement and DDL plan
    /// before the session does. Adding one with the same name again
    /// replaces it.
    pub fn add_extension(&self, extension: Arc<dyn Extension>) {
        let mut list = self.inner.extensions.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        list.retain(|e| e.name() != extension.name());
        list.push(extension);
    }

    /// The extension added under `name`.
    pub fn extension(&self, name: &str) -> Option<Arc<dyn Extension>> {
        self.extensions().into_iter().find(|e| e.name() == name)
    }

    fn extensions(&self) -> Vec<Arc<dyn Extension>> {
        self.inner.extensions.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Makes `catalog.schema` where unqualified names are looked up and
    /// created.
    pub fn use_schema(&self, catalog: &str, schema: &str) {
        let state_ref = self.inner.ctx.state_ref();
        let mut state = state_ref.write();
        let options = &mut state.config_mut().options_mut().catalog;
        options.default_catalog = catalog.to_string();
        options.default_schema = schema.to_string();
    }

    /// Removes catalog `name` (a detached database); `false` if there was
    /// none.
    pub fn deregister_catalog(&self, name: &str) -> bool {
        let state_ref = self.inner.ctx.state_ref();
        let mut state = state_ref.write();
        let old = Arc::clone(state.catalog_list());
        if old.catalog(name).is_none() {
            return false;
        }
        let list = MemoryCatalogProviderList::new();
        for other in old.catalog_names() {
            if other != name
                && let Some(catalog) = old.catalog(&other)
            {
                list.register_catalog(other, catalog);
            }
        }
        *state = SessionStateBuilder::from(state.clone()).with_catalog_list(Arc::new(list)).build();
        true
    }

    /// The catalog and schema unqualified names refer to.
    pub fn current_schema(&self) -> (String, String) {
        let state_ref = self.inner.ctx.state_ref();
        let state = state_ref.read();
        let options = &state.config().options().catalog;
        (options.default_catalog.clone(), options.default_schema.clone())
    }

    /// A result with no columns, for statements that only do something.
    pub fn empty_result(&self, text: &str) -> QueryResult {
        QueryResult::empty(text, self.memory_context())
    }

    /// A result holding `batches`.
    pub fn batches_result(&self, schema: SchemaRef, batches: Vec<RecordBatch>, text: &str) -> QueryResult {
        QueryResult::batches(schema, batches, text, self.memory_context())
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        self.lock_settings().clone()
    }

    fn lock_settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.inner.settings.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes one of Pintail's settings (`memory_limit`, `threads`,
    /// `temp_directory`) from its SQL text value.
    pub fn set(&self, name: SettingName, value: &str) -> Result<()> {
        let mut next = self.settings();
        next.set(name, value)?;
        if let Some(&ceiling) = self.inner.memory_ceiling.get()
            && name == SettingName::MemoryLimit
            && next.memory_limit > ceiling
        {
            return Err(Error::new(
                ErrorKind::NotAllowed,
                format!("memory_limit cannot be raised above {} in this session", crate::settings::format_bytes(ceiling)),
            )
            .with_hint("it may be lowered; the ceiling is set where the session was opened (pintail serve --memory-limit)"));
        }
        if let Some(dir) = next.temp_directory.as_ref().filter(|d| !d.as_os_str().is_empty() && name == SettingName::TempDirectory) {
            // spill files are written there, around the object stores
            self.check_path(dir)?;
        }
        self.apply(next)
    }

    /// Caps `memory_limit` at its current value, for good: SQL may lower
    /// it (and `RESET` it), never raise it above that, and DataFusion's
    /// own `datafusion.runtime.memory_limit` is refused. For sessions whose
    /// SQL comes from others (servers).
    pub fn cap_memory(&self) {
        let _ = self.inner.memory_ceiling.set(self.settings().memory_limit);
    }

    /// Limits the files and URLs this session's SQL may read or write to
    /// `allowed` ([`AllowedPaths`]), for good: call it before the session
    /// runs anything.
    pub fn allow_only(&self, allowed: AllowedPaths) {
        self.inner.stores.confine(Arc::new(allowed));
    }

    /// The paths this session is limited to, if it is.
    pub fn allowed_paths(&self) -> Option<Arc<AllowedPaths>> {
        self.inner.stores.allowed()
    }

    /// An error unless this session may read and write the local `path`
    /// (for what does not go through object stores: `ATTACH`, Delta tables
    /// opened by path, `temp_directory`).
    pub fn check_path(&self, path: &std::path::Path) -> Result<()> {
        self.allowed_paths().map_or(Ok(()), |allowed| allowed.check_path(path))
    }

    fn apply(&self, next: Settings) -> Result<()> {
        if let Some(dir) = &next.temp_directory
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::option("temp_directory", format!("cannot create '{}': {e}", dir.display()))
            })?;
        }
        let state_ref = self.inner.ctx.state_ref();
        let mut state = state_ref.write();
        let runtime = runtime_builder(&next, RuntimeEnvBuilder::from_runtime_env(state.runtime_env()))
            .build_arc()
            .map_err(|e| from_datafusion(e, None))?;
        let mut new_state = SessionStateBuilder::from(state.clone()).with_runtime_env(runtime).build();
        new_state.config_mut().options_mut().execution.target_partitions = next.threads;
        *state = new_state;
        drop(state);
        *self.lock_settings() = next;
        Ok(())
    }

    pub(crate) fn memory_context(&self) -> MemoryContext {
        let s = self.lock_settings();
        MemoryContext {
            limit: s.memory_limit,
            can_spill: s.temp_directory.is_some(),
        }
    }

    /// Runs every statement in `sql` and returns the last one's result.
    /// Earlier statements run to completion first; the first error stops.
    pub async fn sql(&self, sql: &str) -> Result<QueryResult> {
        let statements = split_statements(sql)?;
        let Some((last, first)) = statements.split_last() else {
            return Ok(QueryResult::empty(sql, self.memory_context()));
        };
        for s in first {
            self.execute(s).await?.drain().await?;
        }
        self.execute(last).await
    }

    /// Runs one statement and returns its result stream. A panic anywhere
    /// underneath becomes an internal error naming the statement.
    pub async fn execute(&self, statement: &Statement) -> Result<QueryResult> {
        let extensions = self.extensions();
        let outcome = self.execute_caught(statement).await;
        if extensions.is_empty() {
            return outcome;
        }
        match outcome {
            Ok(result) => Ok(result.on_error(Arc::new(move |e: &Error| {
                for extension in &extensions {
                    extension.statement_failed(e);
                }
            }))),
            Err(e) => {
                for extension in &extensions {
                    extension.statement_failed(&e);
                }
                Err(e)
            }
        }
    }

    /// Runs one statement with `bindings`: its parameters bound to its
    /// placeholders, `?` (numbered in the order written) or `$1`, `$2`,
    /// ..., each value cast to the type its placeholder takes and nothing
    /// spliced into the SQL text; and the bound tables read where the
    /// statement names a table the session does not have.
    pub async fn execute_with(&self, statement: &Statement, bindings: Bindings) -> Result<QueryResult> {
        let (statement, count) = params::numbered(statement)?;
        params::check_count(count, bindings.params.len())?;
        if count > 0 && !matches!(statement.kind(), StatementKind::Other | StatementKind::Copy) {
            return Err(params::not_taken());
        }
        params::with_bindings(bindings, self.execute(&statement)).await
    }

    /// [`Self::plan_relation`] with `bindings`, as [`Self::execute_with`]
    /// uses them.
    pub async fn plan_relation_with(&self, text: &str, bindings: Bindings) -> Result<LogicalPlan> {
        let mut statements = split_statements(text)?;
        let (Some(statement), true) = (statements.pop(), statements.is_empty()) else {
            return Err(Error::new(ErrorKind::Syntax, "expected one query"));
        };
        let (statement, count) = params::numbered(&statement)?;
        params::check_count(count, bindings.params.len())?;
        params::with_bindings(bindings, async { params::bind(self.plan_relation(statement.text()).await?) }).await
    }

    async fn execute_caught(&self, statement: &Statement) -> Result<QueryResult> {
        let run = AssertUnwindSafe(self.execute_inner(statement)).catch_unwind();
        match run.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) if e.kind() == ErrorKind::Internal && !e.message().contains("\nquery: ") => {
                Err(Error::internal(e.message(), Some(statement.text())))
            }
            Ok(Err(e)) => Err(self.memory_context().explain(e)),
            Err(panic) => Err(Error::internal(
                format!("panic while planning the query: {}", panic_message(panic.as_ref())),
                Some(statement.text()),
            )),
        }
    }

    async fn execute_inner(&self, s: &Statement) -> Result<QueryResult> {
        for extension in self.extensions() {
            if let Some(result) = extension.statement(self, s).await? {
                return Ok(result);
            }
        }
        match s.kind() {
            StatementKind::Summarize => summarize::run(self, s).await,
            StatementKind::Describe => describe::run(self, s).await,
            StatementKind::Copy => match copy::parse(s)? {
                Some(copy) => self.run_df_statement(DFStatement::CopyTo(copy), s.text()).await,
                None => self.run_text(s.text()).await,
            },
            StatementKind::Set => self.run_set(s).await,
            StatementKind::Reset => self.run_reset(s).await,
            StatementKind::Show => self.run_show(s).await,
            StatementKind::Other => self.run_other(s).await,
        }
    }

    async fn run_text(&self, text: &str) -> Result<QueryResult> {
        let stmt = self.parse_one(text)?;
        self.run_df_statement(stmt, text).await
    }

    /// Runs a statement that may hold `(DESCRIBE ...)` or `(SUMMARIZE ...)`
    /// as a subquery: those run first, their results are parked as tables,
    /// and the statement is planned with their names in their place.
    async fn run_other(&self, s: &Statement) -> Result<QueryResult> {
        let tokens = s.tokens();
        let mut text = s.text().to_string();
        let mut parked = Vec::new();
        // rewrite from the end so earlier byte ranges stay valid
        let mut found = Vec::new();
        for i in 0..tokens.len().saturating_sub(1) {
            let is_meta = matches!(&tokens[i + 1].token, Token::Word(w)
                if matches!(w.keyword, Keyword::DESCRIBE | Keyword::DESC) || w.value.eq_ignore_ascii_case("summarize"));
            if tokens[i].token == Token::LParen && is_meta && i > 0 {
                let mut depth = 0usize;
                for (j, t) in tokens.iter().enumerate().skip(i) {
                    match t.token {
                        Token::LParen => depth += 1,
                        Token::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                found.push((i, j));
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        // only the outermost ones: inner ones run as part of them
        let all = found.clone();
        found.retain(|&(i, j)| !all.iter().any(|&(a, b)| a < i && j < b));
        let outcome = async {
            for &(i, j) in found.iter().rev() {
                let inner_range = s.token_range(i + 1, j - 1);
                let inner = s.text()[inner_range].to_string();
                let result = Box::pin(self.sql(&inner)).await?;
                let schema = result.schema();
                let batches = result.collect().await?;
                let table = datafusion::datasource::MemTable::try_new(schema, vec![batches])?;
                let name = format!("s{}", self.inner.next_scan.fetch_add(1, Ordering::Relaxed));
                self.inner.scans.park(name.clone(), Arc::new(table));
                parked.push(name.clone());
                text.replace_range(s.token_range(i, j), &format!("{SCAN_CATALOG}.{SCAN_SCHEMA}.{name}"));
            }
            self.run_text(&text).await
        }
        .await;
        for name in &parked {
            self.inner.scans.release(name);
        }
        outcome
    }

    /// Parses one statement with DataFusion's parser and this session's
    /// dialect.
    pub fn parse_one(&self, text: &str) -> Result<DFStatement> {
        // parsing needs no snapshot of the state: borrow it briefly
        let state_ref = self.inner.ctx.state_ref();
        let state = state_ref.read();
        let options = &state.config().options().sql_parser;
        if options.dialect != datafusion::config::Dialect::Generic {
            return state.sql_to_statement(text, &options.dialect).map_err(Error::from);
        }
        let mut statements = datafusion::sql::parser::DFParserBuilder::new(text)
            .with_dialect(&crate::dialect::PintailDialect)
            .with_recursion_limit(options.recursion_limit.get())
            .build()?
            .parse_statements()?;
        match (statements.pop_front(), statements.is_empty()) {
            (Some(stmt), true) => Ok(stmt),
            (None, _) => Err(Error::new(ErrorKind::Syntax, "no statement to run")),
            (Some(_), false) => Err(Error::new(ErrorKind::Syntax, "expected one statement, found several")),
        }
    }

    /// Plans and runs a parsed statement (file references resolved).
    pub async fn run_df_statement(&self, stmt: DFStatement, text: &str) -> Result<QueryResult> {
        // the state the statement is planned in also runs it: a state is a
        // deep copy (every function's name), too dear to make twice for a
        // statement that takes a fraction of a millisecond
        let state = self.inner.ctx.state();
        let plan = Box::pin(self.plan_in_state(&state, stmt)).await?;
        Box::pin(self.run_plan_in(Some(state), plan, text)).await
    }

    /// Runs a logical plan; `text` is the SQL it came from, for errors.
    pub async fn run_plan(&self, plan: LogicalPlan, text: &str) -> Result<QueryResult> {
        self.run_plan_in(None, plan, text).await
    }

    /// [`Self::run_plan`], in `state` if given (one made for this
    /// statement) or a fresh copy of the session's.
    async fn run_plan_in(&self, state: Option<SessionState>, plan: LogicalPlan, text: &str) -> Result<QueryResult> {
        let plan = params::bind(plan)?;
        if let Some(allowed) = self.allowed_paths() {
            allowed.check_plan(&plan)?;
        }
        for extension in self.extensions() {
            extension.check_plan(self, &plan)?;
        }
        if let LogicalPlan::Ddl(ddl) = &plan {
            for extension in self.extensions() {
                if let Some(result) = extension.ddl(self, ddl, text).await? {
                    return Ok(result);
                }
            }
        }
        // a write that cannot be planned says which table it was for
        let (target, columns) = match &plan {
            LogicalPlan::Dml(d) => {
                // the table's column each column of the rows written comes
                // from: INSERT puts a projection onto the table's columns
                // over its input (`column2 AS id`)
                let columns: Vec<(String, String)> = match d.input.as_ref() {
                    LogicalPlan::Projection(p) => p
                        .expr
                        .iter()
                        .zip(p.schema.fields())
                        .filter_map(|(expr, to)| {
                            let refs = expr.column_refs();
                            let from = refs.iter().next().filter(|_| refs.len() == 1)?;
                            Some((from.name.clone(), to.name().clone()))
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                (Some(d.table_name.to_string()), columns)
            }
            _ => (None, Vec::new()),
        };
        self.start_plan(state, plan, text).await.map_err(|e| match target {
            // arrow, on VALUES folded at planning: "Column 'column1' is
            // declared as non-nullable but contains null values"
            Some(t) if let Some(column) = null_in_not_null(e.message(), &columns) => Error::new(
                ErrorKind::Data,
                format!("column '{column}' of table '{t}' is NOT NULL, but a row gives it NULL"),
            )
            .with_hint("nothing was written; give the column a value"),
            Some(t) if e.kind() != ErrorKind::Internal && !e.message().contains(&format!("'{t}'")) => {
                let mut out = Error::new(e.kind(), format!("table '{t}': {}", e.message()));
                if let Some(hint) = e.hint() {
                    out = out.with_hint(hint);
                }
                out
            }
            _ => e,
        })
    }

    async fn start_plan(&self, state: Option<SessionState>, plan: LogicalPlan, text: &str) -> Result<QueryResult> {
        let (state, logical) = match plan {
            // DDL and SET change the session: DataFusion's context does those
            LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) => self.inner.ctx.execute_logical_plan(plan).await?.into_parts(),
            // the rest it would only wrap in a copy of its state
            plan => (state.unwrap_or_else(|| self.inner.ctx.state()), plan),
        };
        if let dml_guard::Verdict::NoRows = dml_guard::check(&state, &logical)? {
            let schema = Arc::new(Schema::new(vec![Field::new("count", DataType::UInt64, false)]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(UInt64Array::from(vec![0_u64]))],
            )?;
            return Ok(self.batches_result(schema, vec![batch], text));
        }
        let physical = state.create_physical_plan(&logical).await?;
        let progress = ProgressHandle::new(Some(Arc::clone(&physical)), self.inner.stores.bytes_read());
        let memory = self.memory_context();
        let retry = memory.can_spill && join_fallback::applies(&physical);
        let mut stream = datafusion::physical_plan::execute_stream(physical, Arc::new(TaskContext::from(&state)))?;
        if conflict_retry::applies(&logical) {
            let (state, logical, progress) = (state.clone(), logical.clone(), progress.clone());
            let restart: conflict_retry::Restart = Box::new(move || {
                let (state, logical, progress) = (state.clone(), logical.clone(), progress.clone());
                Box::pin(async move {
                    let physical = state.create_physical_plan(&logical).await?;
                    progress.replace_plan(Arc::clone(&physical));
                    datafusion::physical_plan::execute_stream(physical, Arc::new(TaskContext::from(&state)))
                })
            });
            stream = conflict_retry::retrying(stream, restart);
        }
        if retry {
            let progress = progress.clone();
            let again = async move {
                let mut state = state;
                state.config_mut().options_mut().optimizer.prefer_hash_join = false;
                let physical = state.create_physical_plan(&logical).await?;
                progress.replace_plan(Arc::clone(&physical));
                datafusion::physical_plan::execute_stream(physical, Arc::new(TaskContext::from(&state)))
            };
            stream = join_fallback::or_else_retry(stream, Box::pin(again));
        }
        Ok(QueryResult::streaming(stream, text, memory, progress))
    }

    /// Plans a statement: resolves its file references, then hands it to
    /// DataFusion's planner.
    pub async fn plan_statement(&self, stmt: DFStatement) -> Result<LogicalPlan> {
        self.plan_statement_in(stmt, None).await
    }

    /// [`Self::plan_statement`] with unqualified names looked up in
    /// `catalog.schema` instead of the current schema (a view's query is
    /// planned where the view lives).
    async fn plan_statement_in(&self, stmt: DFStatement, home: Option<(&str, &str)>) -> Result<LogicalPlan> {
        let mut state = self.inner.ctx.state();
        if let Some((catalog, schema)) = home {
            let options = &mut state.config_mut().options_mut().catalog;
            options.default_catalog = catalog.to_string();
            options.default_schema = schema.to_string();
        }
        self.plan_in_state(&state, stmt).await
    }

    /// Plans a statement in `state`: resolves its file references, then
    /// hands it to DataFusion's planner.
    async fn plan_in_state(&self, state: &SessionState, mut stmt: DFStatement) -> Result<LogicalPlan> {
        let scans = self.collect(&mut stmt)?;
        let planned = async {
            for s in &scans {
                let table = self.resolve_target(state, &s.target).await?;
                self.inner.scans.park(s.placeholder.clone(), table);
            }
            let plan = state.statement_to_plan(stmt).await?;
            Ok(crate::lists::infer_list_placeholders(plan)?)
        }
        .await;
        for s in &scans {
            self.inner.scans.release(&s.placeholder);
        }
        planned
    }

    async fn resolve_target(
        &self,
        state: &SessionState,
        target: &ScanTarget,
    ) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
        match target {
            ScanTarget::Files(request) => scan::resolve(state, &self.inner.stores, request).await,
            ScanTarget::AsOf(name, as_of) => {
                for extension in self.extensions() {
                    if let Some(table) = extension.table_as_of(self, name, as_of).await? {
                        return Ok(table);
                    }
                }
                Err(Error::plan(format!("'{name}' has no versions to read"))
                    .with_hint("only tables in a database (ATTACH 'file.db') can be read AS OF a version or time"))
            }
            ScanTarget::Bound(name) => params::table(name)
                .ok_or_else(|| Error::internal(format!("the table bound to '{name}' went missing"), None)),
            ScanTarget::Function(name, args) => {
                for extension in self.extensions() {
                    if extension.table_functions().iter().any(|f| f.eq_ignore_ascii_case(name)) {
                        return extension.call_table_function(self, name, args).await;
                    }
                }
                Err(Error::plan(format!("unknown table function '{name}'")))
            }
        }
    }

    /// Plans what follows a statement's first word (`DESCRIBE x`,
    /// `SUMMARIZE x`): a table, a query or a quoted file.
    pub(crate) async fn plan_target(&self, s: &Statement, verb: &str) -> Result<LogicalPlan> {
        let target = s.text_from_token(1);
        if target.is_empty() {
            return Err(Error::new(ErrorKind::Syntax, format!("{verb} needs a table, a query or a file"))
                .with_hint(format!("{verb} my_table, {verb} SELECT ..., or {verb} 'data/file.parquet'")));
        }
        self.plan_relation(target).await
    }

    /// Plans the text of a query with unqualified names looked up in
    /// `catalog.schema`: how a stored view's query is planned.
    pub async fn plan_query_in(&self, text: &str, catalog: &str, schema: &str) -> Result<LogicalPlan> {
        let stmt = self.parse_one(text)?;
        self.plan_statement_in(stmt, Some((catalog, schema))).await
    }

    /// Plans the text of a query (or a table or file name) as a `SELECT`.
    pub async fn plan_relation(&self, text: &str) -> Result<LogicalPlan> {
        let trimmed = text.trim();
        let first = trimmed
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let query = if matches!(first.as_str(), "SELECT" | "WITH" | "VALUES" | "FROM" | "") || trimmed.starts_with('(') {
            trimmed.to_string()
        } else {
            format!("SELECT * FROM {trimmed}")
        };
        let stmt = self.parse_one(&query)?;
        self.plan_statement(stmt).await
    }

    fn collect(&self, stmt: &mut DFStatement) -> Result<Vec<CollectedScan>> {
        let next = &self.inner.next_scan;
        let mut next_id = || next.fetch_add(1, Ordering::Relaxed);
        let ctx = &self.inner.ctx;
        let is_table = |name: &str| ctx.table_exist(name).unwrap_or(false);
        let functions: Vec<String> = self
            .extensions()
            .iter()
            .flat_map(|e| e.table_functions().iter().map(|f| f.to_ascii_lowercase()).collect::<Vec<_>>())
            .collect();
        let (current, _) = self.current_schema();
        let database_schema = |name: &str| {
            let here = ctx.catalog(&current).is_some_and(|c| c.schema(name).is_some());
            let there = ctx.catalog(name)?;
            (!here && there.schema(MEMORY_SCHEMA).is_some()).then(|| MEMORY_SCHEMA.to_string())
        };
        let is_bound = |name: &str| params::table(name).is_some();
        let lookup = scan::Lookup {
            is_table: &is_table,
            is_bound: &is_bound,
            functions: &functions,
            database_schema: &database_schema,
        };
        match stmt {
            DFStatement::Statement(s) => scan::collect_scans(s.as_mut(), &mut next_id, &lookup),
            DFStatement::CopyTo(c) => match &mut c.source {
                CopyToSource::Query(q) => scan::collect_scans(q.as_mut(), &mut next_id, &lookup),
                CopyToSource::Relation(_) => Ok(vec![]),
            },
            DFStatement::Explain(e) => self.collect(e.statement.as_mut()),
            _ => Ok(vec![]),
        }
    }

    async fn run_set(&self, s: &Statement) -> Result<QueryResult> {
        let (name, value) = crate::setting_statement::parse_set(s)?;
        if let Some(setting) = SettingName::parse(&name) {
            let value = value.ok_or_else(|| Error::option(&name, "SET needs a value"))?;
            self.set(setting, &value)?;
            return Ok(QueryResult::empty(s.text(), self.memory_context()));
        }
        if !name.contains('.') {
            return Err(unknown_setting(&name));
        }
        if self.inner.memory_ceiling.get().is_some() && name.eq_ignore_ascii_case("datafusion.runtime.memory_limit") {
            return Err(Error::new(ErrorKind::NotAllowed, "datafusion.runtime.memory_limit cannot be set in this session")
                .with_hint("SET memory_limit = '...' lowers the limit"));
        }
        if name.eq_ignore_ascii_case("datafusion.runtime.temp_directory")
            && let Some(dir) = &value
        {
            // spill files are written there, around the object stores
            self.check_path(std::path::Path::new(dir))?;
        }
        self.run_text(s.text()).await
    }

    async fn run_reset(&self, s: &Statement) -> Result<QueryResult> {
        let (name, _) = crate::setting_statement::parse_set(s)?;
        if self.inner.memory_ceiling.get().is_some() && name.eq_ignore_ascii_case("datafusion.runtime.memory_limit") {
            return Err(Error::new(ErrorKind::NotAllowed, "datafusion.runtime.memory_limit cannot be reset in this session")
                .with_hint("RESET memory_limit goes back to the session's limit"));
        }
        if let Some(setting) = SettingName::parse(&name) {
            let mut next = self.settings();
            next.set(setting, &self.inner.defaults.get(setting))?;
            if setting == SettingName::TempDirectory {
                next.temp_directory.clone_from(&self.inner.defaults.temp_directory);
            }
            self.apply(next)?;
            return Ok(QueryResult::empty(s.text(), self.memory_context()));
        }
        self.run_text(s.text()).await
    }

    async fn run_show(&self, s: &Statement) -> Result<QueryResult> {
        let name = crate::setting_statement::show_name(s);
        if let Some(setting) = name.as_deref().and_then(SettingName::parse) {
            let value = self.settings().get(setting);
            let schema = Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
            ]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from(vec![setting.name()])),
                    Arc::new(StringArray::from(vec![value])),
                ],
            )?;
            return Ok(QueryResult::batches(schema, vec![batch], s.text(), self.memory_context()));
        }
        self.run_text(s.text()).await
    }

    /// Every catalog and schema tables may live in, in name order (the
    /// hidden scan catalog and `information_schema` left out).
    pub fn schemas(&self) -> Vec<(String, String)> {
        let ctx = &self.inner.ctx;
        let mut out = Vec::new();
        for catalog_name in ctx.catalog_names() {
            let Some(catalog) = ctx.catalog(&catalog_name).filter(|_| catalog_name != SCAN_CATALOG) else { continue };
            out.extend(catalog.schema_names().into_iter().filter(|s| s != "information_schema").map(|s| (catalog_name.clone(), s)));
        }
        out.sort();
        out
    }

    /// Every user table and view, with columns, for `.tables`, `.schema` and
    /// completion. The hidden scan catalog and `information_schema` are left out.
    pub async fn tables(&self) -> Result<Vec<TableInfo>> {
        let ctx = &self.inner.ctx;
        let mut out = Vec::new();
        for catalog_name in ctx.catalog_names() {
            if catalog_name == SCAN_CATALOG {
                continue;
            }
            let Some(catalog) = ctx.catalog(&catalog_name) else { continue };
            for schema_name in catalog.schema_names() {
                if schema_name == "information_schema" {
                    continue;
                }
                let Some(schema) = catalog.schema(&schema_name) else { continue };
                let mut names = schema.table_names();
                names.sort();
                for name in names {
                    if let Some(table) = schema.table(&name).await? {
                        out.push(TableInfo {
                            catalog: catalog_name.clone(),
                            schema: schema_name.clone(),
                            name,
                            columns: table.schema(),
                            table_type: table.table_type(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

fn unknown_setting(name: &str) -> Error {
    let names: Vec<String> = SettingName::ALL.iter().map(|(_, n)| (*n).to_string()).collect();
    let mut e = Error::option(name, "unknown setting");
    e = match crate::error::closest(name, &names) {
        Some(c) => e.with_hint(format!("did you mean '{c}'?")),
        None => e.with_hint(format!(
            "Pintail's settings are {}; DataFusion's are named datafusion.* (SHOW ALL lists them)",
            names.join(", ")
        )),
    };
    e
}

/// DataFusion's physical optimizer rules, with Pintail's placed before the
/// final sanity check of the plan.
fn physical_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let at = rules.iter().position(|r| r.name() == "SanityCheckPlan").unwrap_or(rules.len());
    rules.insert(at, Arc::new(scan::FileNameToScan));
    // TPC-H SF1, 2 rounds interleaved: q17 0.451 s -> 0.312, q18 0.724 -> 0.472, q7 0.401 -> 0.260;
    // geomean 0.181 -> 0.182, peak RSS 471 -> 335 MiB (see runtime_filter.rs)
    rules.insert(at + 1, Arc::new(runtime_filter::ScanFilterRule));
    rules
}

/// The runtime pieces that follow from the settings: memory pool and disk.
fn runtime_builder(settings: &Settings, builder: RuntimeEnvBuilder) -> RuntimeEnvBuilder {
    // FairSpillPool gives each spilling operator an equal share, so one
    // partition's sort cannot starve the others into failing; the tracking
    // wrapper names the largest consumers in out-of-memory errors.
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(usize::try_from(settings.memory_limit).unwrap_or(usize::MAX)),
        NonZeroUsize::new(5).unwrap_or(NonZeroUsize::MIN),
    );
    let disk = match &settings.temp_directory {
        Some(dir) => DiskManagerBuilder::default().with_mode(DiskManagerMode::Directories(vec![dir.clone()])),
        None => DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
    };
    builder.with_memory_pool(Arc::new(pool)).with_disk_manager_builder(disk)
}

/// The table column that arrow's "Column 'x' is declared as non-nullable
/// but contains null values" (about a column of the rows written) is about.
fn null_in_not_null(message: &str, columns: &[(String, String)]) -> Option<String> {
    let rest = message.split("Column '").nth(1)?;
    let (name, tail) = rest.split_once('\'')?;
    if !tail.contains("declared as non-nullable but contains null values") {
        return None;
    }
    columns.iter().find(|(from, _)| from == name).map(|(_, to)| to.clone())
}
