//! A database table as DataFusion sees it: reads go to deltalake's own
//! provider (planned as Parquet scans, see `scan.rs`), `INSERT` to
//! Pintail's sink (`insert.rs`); `DELETE`, `UPDATE` and `TRUNCATE` run
//! deltalake's operations, each one Delta commit.
//!
//! A table is opened fresh (its latest version, or the one asked for) each
//! time a statement names it, so every statement sees what other processes
//! have committed. Column defaults, which Delta Lake has no writer feature
//! for that deltalake supports, are kept as SQL text in the column's
//! metadata under [`DEFAULT_KEY`] and parsed when the table is opened.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use deltalake::delta_datafusion::DeltaScanNext;
use deltalake::kernel::EagerSnapshot;
use deltalake::protocol::SaveMode;
use datafusion_datasource::sink::DataSinkExec;
use deltalake::logstore::LogStoreRef;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::table::config::TablePropertiesExt;
use deltalake::table::state::DeltaTableState;
use deltalake::{DeltaTable, DeltaTableBuilder};
use futures::StreamExt;
use futures::future::BoxFuture;
use pintail_core::datafusion::arrow::array::{RecordBatch, UInt64Array};
use pintail_core::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use pintail_core::datafusion::catalog::Session as DFSession;
use pintail_core::datafusion::common::tree_node::TreeNodeRecursion;
use pintail_core::datafusion::common::{Column, DFSchema, DFSchemaRef, DataFusionError, Result as DFResult, Statistics};
use pintail_core::datafusion::datasource::{TableProvider, TableType};
use deltalake::delta_datafusion::planner::DeltaPlanner;
use pintail_core::datafusion::execution::{SendableRecordBatchStream, SessionState, SessionStateBuilder, TaskContext};
use pintail_core::datafusion::logical_expr::dml::{InsertOp, MergeIntoClause};
use pintail_core::datafusion::logical_expr::utils::conjunction;
use pintail_core::datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use pintail_core::datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use pintail_core::datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use pintail_core::datafusion::physical_plan::metrics::MetricsSet;
use pintail_core::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use pintail_core::datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use pintail_core::datafusion::prelude::SessionContext;
use pintail_core::{Error, Result};
use url::Url;

use crate::errors::{delta_error, from_datafusion_in, in_table, object_store_error, to_datafusion};
use crate::insert::InsertSink;
use crate::merge::Merge;
use crate::snapshots::{Loaded, Snapshots};
use crate::transaction::Transactions;

/// The column metadata key holding a column's default, as SQL.
pub const DEFAULT_KEY: &str = "pintail.default";

/// Rows per Parquet row group in the files Pintail writes: DuckDB's row
/// group size. deltalake's default (the parquet crate's, 1,048,576) gives
/// a 100 MB file three row groups, too few for row-group pruning to skip
/// much or for the scan to split a file across many cores.
const ROW_GROUP_ROWS: usize = 122_880;

/// How the Parquet files of Pintail's tables are written by `CREATE TABLE
/// AS`, `INSERT`, `UPDATE`, `DELETE`, `MERGE` and `OPTIMIZE`: Snappy, in
/// row groups of [`ROW_GROUP_ROWS`]. deltalake's `OPTIMIZE` would use ZSTD,
/// whose files are smaller but slower to decode; every file of a table gets
/// the same codec instead, chosen for scan speed. (An `INSERT` into a table
/// with column mapping goes through deltalake's DataFusion sink, which
/// takes no writer settings: its row groups are the parquet crate's
/// default, 1,048,576 rows, until `OPTIMIZE` rewrites them.)
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_created_by(format!("pintail version {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// Which version of a table to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The newest commit.
    Latest,
    /// A version number.
    Number(u64),
}

/// A Delta table in a database.
pub struct DatabaseTable {
    name: String,
    dir: std::path::PathBuf,
    log_store: LogStoreRef,
    scan: Arc<DeltaScanNext>,
    /// Whether the table is written through a transaction's log store.
    in_txn: bool,
    /// Where the latest snapshot is kept between statements, unless the
    /// table is read as of a version or through `delta_scan`.
    snapshots: Option<Arc<Snapshots>>,
    defaults: HashMap<String, Expr>,
    /// Why the table cannot be written, if it cannot.
    read_only: Option<String>,
    /// The session's transactions, told of writes.
    txns: Option<Arc<Transactions>>,
}

impl fmt::Debug for DatabaseTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseTable").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The log store of the Delta table in `dir`.
pub fn log_store(dir: &std::path::Path) -> Result<LogStoreRef> {
    let url = Url::from_directory_path(dir)
        .map_err(|()| Error::io(format!("'{}' is not an absolute path", dir.display())))?;
    let name = dir.display().to_string();
    // Pintail's local store: listing the log from a version reads only
    // the entries after it (see pintail_core::LocalFiles)
    DeltaTableBuilder::from_url(url.clone())
        .map(|b| b.with_storage_backend(Arc::new(pintail_core::LocalFiles::new()), url))
        .and_then(|b| b.build_storage())
        .map_err(|e| delta_error(&name, e))
}

impl DatabaseTable {
    /// Opens table `name` (as users write it, for messages) stored in `dir`.
    /// `ctx` parses column defaults; `read_only` says why the table may not
    /// be written, if it may not (an old version never may). Inside a
    /// transaction of `txns`, the latest version is the transaction's.
    pub async fn open(
        name: &str,
        dir: &std::path::Path,
        version: Version,
        read_only: Option<String>,
        ctx: &SessionContext,
        txns: Option<&Arc<Transactions>>,
    ) -> Result<Self> {
        let in_txn = match (txns, version) {
            (Some(t), Version::Latest) => t.log_store_for(name, dir, &ctx.runtime_env()).await?,
            (Some(t), Version::Number(v)) => match t.base_of(dir) {
                // the transaction's view of the log hides what came later
                Some(base) if v > base => {
                    return Err(Error::plan(format!(
                        "table '{name}' is read as of version {base} inside this transaction, so version {v} cannot be read in it"
                    ))
                    .with_hint("COMMIT or ROLLBACK first"));
                }
                _ => None,
            },
            _ => None,
        };
        let txn = in_txn.is_some();
        let log_store = match in_txn {
            Some(log) => log,
            None => log_store(dir)?,
        };
        let snapshots = match (txns, version) {
            (Some(t), Version::Latest) => Some(t.snapshots_for(dir)),
            _ => None,
        };
        let mut builder = DeltaScanNext::builder().with_log_store(Arc::clone(&log_store));
        if let Version::Number(v) = version {
            builder = builder.with_table_version(v);
        }
        let built = match &snapshots {
            Some(kept) => match kept.latest(&log_store, dir).await {
                Ok(Loaded::Lazy(snapshot)) => builder.with_snapshot(snapshot).build().await,
                Ok(Loaded::Eager(snapshot)) => builder.with_eager_snapshot(snapshot).build().await,
                Err(e) => Err(DataFusionError::from(e)),
            },
            None => builder.build().await,
        };
        let scan = match built {
            Ok(scan) => scan,
            Err(e) if version == Version::Latest => return Err(explain_read_error(name, dir, e)),
            Err(e) => {
                if let Version::Number(v) = version
                    && let Ok(latest) = DeltaTable::new(Arc::clone(&log_store)).get_latest_version().await
                    && v > latest
                {
                    return Err(Error::plan(format!("table '{name}' has no version {v}: the latest is {latest}")));
                }
                return Err(from_df(name, e));
            }
        };
        let schema = scan.schema();
        let df_schema = DFSchema::try_from(Arc::clone(&schema))?;
        let mut defaults = HashMap::new();
        for field in schema.fields() {
            if let Some(sql) = field.metadata().get(DEFAULT_KEY) {
                let expr = ctx
                    .parse_sql_expr(sql, &df_schema)
                    .map_err(|e| in_table(name, Error::from(e)))?;
                defaults.insert(field.name().clone(), expr);
            }
        }
        Ok(Self {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            log_store,
            scan: Arc::new(scan),
            in_txn: txn,
            snapshots,
            defaults,
            read_only: match version {
                Version::Latest => read_only,
                Version::Number(v) => Some(format!("table '{name}' is read as of version {v}, and old versions cannot be written")),
            },
            txns: txns.cloned(),
        })
    }

    fn check_writable(&self) -> DFResult<()> {
        if let Some(why) = &self.read_only {
            return Err(to_datafusion(Error::plan(why.clone())));
        }
        if let Some(txns) = &self.txns {
            txns.claim_write(&self.name, &self.dir).map_err(to_datafusion)?;
        }
        Ok(())
    }

    /// A plan that runs `op` on the latest version of the table when it is
    /// executed, and returns the number of rows it changed.
    fn operation(&self, label: &'static str, state: &dyn DFSession, op: Op) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.check_writable()?;
        let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
            return Err(to_datafusion(Error::internal("a table was written from an unknown kind of session", None)));
        };
        Ok(Arc::new(OperationExec::new(
            label,
            self.name.clone(),
            Arc::clone(&self.log_store),
            state.clone(),
            self.scan.schema(),
            op,
        )))
    }
}

fn from_df(name: &str, e: DataFusionError) -> Error {
    in_table(name, Error::from(e))
}

/// An error reading table `name` in `dir`; a log entry that does not
/// parse is found and named.
fn explain_read_error(name: &str, dir: &std::path::Path, e: DataFusionError) -> Error {
    // a data file read while planning (its footer, for statistics)
    if let DataFusionError::ObjectStore(store) = e.find_root() {
        return object_store_error(name, store);
    }
    let e = from_datafusion_in(name, e);
    if e.message().contains("Json error")
        && let Some(file) = damaged_log_entry(dir)
    {
        return Error::new(
            pintail_core::ErrorKind::Data,
            format!("table '{name}': log entry '{}' is damaged: {}", file.display(), e.message()),
        )
        .with_hint("restore it from a backup; versions before it can still be read with VERSION AS OF");
    }
    e
}

/// The newest commit file of the table in `dir` with a line that is not JSON.
fn damaged_log_entry(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let log = dir.join("_delta_log");
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    commits.sort();
    commits.into_iter().rev().find(|p| {
        std::fs::read_to_string(p).is_ok_and(|text| {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .any(|l| serde_json::from_str::<serde_json::Value>(l).is_err())
        })
    })
}

/// `state` able to plan deltalake's own plan nodes (its write, delete,
/// update and merge metrics), for deltalake's operations to run in.
pub fn delta_state(state: SessionState) -> Arc<dyn DFSession> {
    Arc::new(
        SessionStateBuilder::from(state)
            .with_query_planner(DeltaPlanner::new())
            .build(),
    )
}

#[async_trait]
impl TableProvider for DatabaseTable {
    fn schema(&self) -> SchemaRef {
        self.scan.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    async fn scan(
        &self,
        state: &dyn DFSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if let Some(txns) = &self.txns {
            txns.note_read(&self.dir);
        }
        let plan = self
            .scan
            .scan(state, projection, filters, limit)
            .await
            .map_err(|e| to_datafusion(explain_read_error(&self.name, &self.dir, e)))?;
        crate::scan::as_parquet_scan(plan, state)
            .await
            .map_err(|e| to_datafusion(explain_read_error(&self.name, &self.dir, e)))
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DFResult<Vec<TableProviderFilterPushDown>> {
        self.scan.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.scan.statistics()
    }

    async fn insert_into(
        &self,
        state: &dyn DFSession,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.check_writable()?;
        // the newest version, not the one this statement was planned
        // against: a retried INSERT (see pintail-core's conflict retry) must
        // commit after the writer it lost to, a prepared one after whatever
        // came since, and INSERT OVERWRITE must remove every file there is.
        // With its files, which Delta's conflict check needs.
        let snapshot = match &self.snapshots {
            Some(kept) => kept.latest_with_files(&self.log_store, &self.dir).await,
            None => EagerSnapshot::try_new(self.log_store.as_ref(), None).await,
        }
        .map_err(DataFusionError::from)?;
        let mode = match insert_op {
            InsertOp::Append => SaveMode::Append,
            InsertOp::Overwrite => SaveMode::Overwrite,
            InsertOp::Replace => {
                return Err(to_datafusion(Error::plan(format!(
                    "table '{}': INSERT OR REPLACE needs a key, which Delta Lake tables do not have",
                    self.name
                ))
                .with_hint("use MERGE INTO to update matching rows and insert the rest")));
            }
        };
        if let Some(rule) = crate::insert::unenforced(&snapshot) {
            return Err(to_datafusion(
                // (named with its schema by the caller)
                Error::plan(format!("rows cannot be inserted, as Pintail does not check {rule}"))
                    .with_hint("nothing was written; insert with the tool that made the table (Spark, say)"),
            ));
        }
        let interval = snapshot.table_properties().checkpoint_interval().get();
        let read_version = snapshot.version();
        let sink = InsertSink::try_new(&self.name, Arc::clone(&self.log_store), snapshot.clone(), mode, !self.in_txn);
        // Pintail's sink checkpoints itself, knowing the version it committed
        let (sink, checkpoint): (Arc<dyn ExecutionPlan>, _) = if let Some(sink) = sink {
            (Arc::new(DataSinkExec::new(input, Arc::new(sink), None)), None)
        } else {
            let latest = DeltaScanNext::builder()
                .with_log_store(Arc::clone(&self.log_store))
                .with_eager_snapshot(snapshot)
                .build()
                .await?;
            // inside a transaction too: the checkpoint is staged with its
            // commits, and spares its later statements replaying them all
            let checkpoint =
                Checkpoint::new(Arc::clone(&self.log_store), read_version, interval).with_cleanup(!self.in_txn);
            (latest.insert_into(state, input, insert_op).await?, Some(checkpoint))
        };
        Ok(Arc::new(WriteErrorsExec {
            inner: sink,
            table: self.name.clone(),
            schema: self.scan.schema(),
            checkpoint,
        }))
    }

    async fn delete_from(&self, state: &dyn DFSession, filters: Vec<Expr>) -> DFResult<Arc<dyn ExecutionPlan>> {
        let predicate = conjunction(filters.into_iter().map(unqualify));
        self.operation("DeleteExec", state, Op::Delete { predicate })
    }

    async fn update(
        &self,
        state: &dyn DFSession,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let predicate = conjunction(filters.into_iter().map(unqualify));
        let assignments = assignments.into_iter().map(|(c, e)| (c, unqualify(e))).collect();
        self.operation("UpdateExec", state, Op::Update { predicate, assignments })
    }

    async fn truncate(&self, state: &dyn DFSession) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.operation("TruncateExec", state, Op::Delete { predicate: None })
    }

    async fn merge_into(
        &self,
        state: &dyn DFSession,
        source: Arc<dyn ExecutionPlan>,
        merge_schema: DFSchemaRef,
        on: Expr,
        clauses: Vec<MergeIntoClause>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let target_columns = self.scan.schema().fields().len();
        let merge = Merge::new(source, &merge_schema, target_columns, on, clauses)?;
        self.operation("MergeExec", state, Op::Merge(Box::new(merge)))
    }
}

/// Column references without their table qualifier, as deltalake resolves
/// them against the table's own schema.
fn unqualify(expr: Expr) -> Expr {
    pintail_core::datafusion::logical_expr::expr_rewriter::unnormalize_col(expr)
}

/// A change to run when the plan executes.
#[derive(Debug, Clone)]
enum Op {
    Delete {
        predicate: Option<Expr>,
    },
    Update {
        predicate: Option<Expr>,
        assignments: Vec<(String, Expr)>,
    },
    Merge(Box<Merge>),
}

/// Runs a deltalake operation when executed; one partition, one row: the
/// number of rows changed, in a `count` column as DataFusion's DML plans
/// return it.
struct OperationExec {
    label: &'static str,
    table: String,
    log_store: LogStoreRef,
    state: SessionState,
    target_schema: SchemaRef,
    op: Op,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for OperationExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(self.label).field("table", &self.table).field("op", &self.op).finish_non_exhaustive()
    }
}

fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("count", DataType::UInt64, false)]))
}

impl OperationExec {
    fn new(
        label: &'static str,
        table: String,
        log_store: LogStoreRef,
        state: SessionState,
        target_schema: SchemaRef,
        op: Op,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(count_schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            label,
            table,
            log_store,
            state,
            target_schema,
            op,
            properties: Arc::new(properties),
        }
    }

    fn run(&self) -> BoxFuture<'static, DFResult<u64>> {
        let (table, log_store, state, op) =
            (self.table.clone(), Arc::clone(&self.log_store), self.state.clone(), self.op.clone());
        let target_schema = Arc::clone(&self.target_schema);
        Box::pin(async move {
            let mut delta = DeltaTable::new(log_store);
            delta.load().await.map_err(|e| to_datafusion(delta_error(&table, e)))?;
            let session = delta_state(state.clone());
            let changed = match op {
                Op::Delete { predicate } => {
                    let mut builder = delta
                        .delete()
                        .with_session_state(session)
                        .with_writer_properties(writer_properties());
                    if let Some(p) = predicate {
                        builder = builder.with_predicate(p);
                    }
                    let (_, metrics) = builder.await.map_err(|e| to_datafusion(delta_error(&table, e)))?;
                    metrics.num_deleted_rows.unwrap_or_default()
                }
                Op::Update { predicate, assignments } => {
                    let mut builder = delta
                        .update()
                        .with_session_state(session)
                        .with_writer_properties(writer_properties());
                    if let Some(p) = predicate {
                        builder = builder.with_predicate(p);
                    }
                    for (column, value) in assignments {
                        builder = builder.with_update(Column::new_unqualified(column), value);
                    }
                    let (_, metrics) = builder.await.map_err(|e| to_datafusion(delta_error(&table, e)))?;
                    metrics.num_updated_rows
                }
                Op::Merge(merge) => return merge.run(&table, delta, &state, &target_schema).await,
            };
            Ok(changed as u64)
        })
    }
}

impl DisplayAs for OperationExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: table={}", self.label, self.table)
    }
}

impl ExecutionPlan for OperationExec {
    fn name(&self) -> &str {
        self.label
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, _partition: usize, _context: Arc<TaskContext>) -> DFResult<SendableRecordBatchStream> {
        let run = self.run();
        let stream = futures::stream::once(async move {
            let changed = run.await?;
            Ok(RecordBatch::try_new(count_schema(), vec![Arc::new(UInt64Array::from(vec![changed]))])?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(count_schema(), stream)))
    }
}

/// Passes its child's rows through and rewrites its errors to name the
/// table (and the column, for a NULL in a NOT NULL one): deltalake's write
/// reports those by position, or as its own error type.
#[derive(Debug)]
struct WriteErrorsExec {
    inner: Arc<dyn ExecutionPlan>,
    table: String,
    schema: SchemaRef,
    /// Written once the rows are committed, if due.
    checkpoint: Option<Checkpoint>,
}

/// A checkpoint of a table to write after an `INSERT`, if one is due.
///
/// `INSERT` commits without deltalake's post-commit step (Pintail's sink
/// skips it, and deltalake's sink only cleans up expired log entries in
/// it), so it would never write a checkpoint: every reader would replay
/// the whole log, and a table written by single-row INSERTs got slower with
/// every commit. After each INSERT, and each transaction's commit, a
/// checkpoint is written once `interval` commits (the table's
/// `delta.checkpointInterval`, 10 for Pintail's tables and 100 by
/// default) have been made since the last one.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    log_store: LogStoreRef,
    /// The version the INSERT read: its commit is later.
    read_version: u64,
    interval: u64,
    /// Whether to drop expired log entries after a checkpoint.
    cleanup: bool,
    /// The table with its files at `read_version`, if known.
    snapshot: Option<EagerSnapshot>,
}

impl Checkpoint {
    /// A checkpoint of the table of `log_store` after a commit later than
    /// `read_version`, if `interval` commits have passed since the last.
    pub(crate) fn new(log_store: LogStoreRef, read_version: u64, interval: u64) -> Self {
        Self {
            log_store,
            read_version,
            interval,
            cleanup: false,
            snapshot: None,
        }
    }

    /// The table with its files at `read_version`: the checkpoint then
    /// reads only the commits after it, rather than the whole table again.
    pub(crate) fn with_snapshot(mut self, snapshot: EagerSnapshot) -> Self {
        self.snapshot = Some(snapshot);
        self
    }

    /// Also drop the log entries older than the table's log retention
    /// (`delta.logRetentionDuration`, 30 days by default) once a checkpoint
    /// is written, if the table's `delta.enableExpiredLogCleanup` (on by
    /// default) allows: as Spark's Delta Lake does, and not after every
    /// commit as deltalake's post-commit step does, which lists the whole
    /// log each time.
    pub(crate) fn with_cleanup(mut self, cleanup: bool) -> Self {
        self.cleanup = cleanup;
        self
    }

    /// Best effort: the rows are committed already, and a missing
    /// checkpoint only costs readers time.
    pub(crate) async fn write_if_due(self, table: &str) {
        let Ok(latest) = deltalake::logstore::get_latest_version(self.log_store.as_ref(), self.read_version).await else {
            return;
        };
        self.write_if_due_at(table, latest).await;
    }

    /// [`Checkpoint::write_if_due`] when the newest version is known to be
    /// `latest` (the one just committed).
    pub(crate) async fn write_if_due_at(self, table: &str, latest: u64) {
        let last = self.last_checkpoint().await;
        let since = latest.saturating_add(1).saturating_sub(last.map_or(0, |c| c + 1));
        if since < self.interval {
            return;
        }
        let mut delta = DeltaTable::new(Arc::clone(&self.log_store));
        let loaded = match self.snapshot {
            Some(snapshot) if snapshot.version() <= latest => {
                let mut state = DeltaTableState::new(snapshot);
                let updated = state.update(self.log_store.as_ref(), Some(latest)).await;
                delta.state = Some(state);
                updated
            }
            _ => delta.load_version(latest).await,
        };
        let outcome = match loaded {
            Ok(()) => deltalake::checkpoints::create_checkpoint(&delta, None).await,
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            log::debug!("table '{table}': no checkpoint at version {latest}: {e}");
            return;
        }
        let expire = self.cleanup
            && delta
                .snapshot()
                .is_ok_and(|s| s.table_config().enable_expired_log_cleanup() && !protects_checkpoints(s.snapshot()));
        if expire && let Err(e) = deltalake::checkpoints::cleanup_metadata(&delta, None).await {
            log::debug!("table '{table}': expired log entries not dropped: {e}");
        }
    }

    async fn last_checkpoint(&self) -> Option<u64> {
        last_checkpoint(&self.log_store).await.map(|(version, _)| version)
    }
}

/// Whether the table at `snapshot` has the writer feature
/// `checkpointProtection`, under which a writer may drop log entries only
/// in ways Pintail does not know: it then keeps them all.
fn protects_checkpoints(snapshot: &EagerSnapshot) -> bool {
    snapshot.metadata().configuration().contains_key("delta.requireCheckpointProtectionBeforeVersion")
        || serde_json::to_value(snapshot.protocol()).is_ok_and(|protocol| {
            protocol["writerFeatures"]
                .as_array()
                .is_some_and(|features| features.iter().any(|f| f == "checkpointProtection"))
        })
}

/// The version of the newest checkpoint of the table of `log_store`, from
/// `_delta_log/_last_checkpoint`, and that file's bytes.
pub(crate) async fn last_checkpoint(log_store: &LogStoreRef) -> Option<(u64, bytes::Bytes)> {
    use deltalake::logstore::object_store::ObjectStoreExt;
    let path = deltalake::Path::from("_delta_log/_last_checkpoint");
    let bytes = log_store.object_store(None).get(&path).await.ok()?.bytes().await.ok()?;
    let version = serde_json::from_slice::<serde_json::Value>(&bytes).ok()?.get("version")?.as_u64()?;
    Some((version, bytes))
}

impl WriteErrorsExec {
    /// `e`, from writing rows of `input` into table `table` of `schema`.
    fn explain(table: &str, schema: &Schema, input: &Schema, e: DataFusionError) -> DataFusionError {
        let message = e.to_string();
        let quoted = |after: &str| message.split(after).nth(1).and_then(|rest| rest.split('\'').next().map(str::to_string));
        let index = if !message.contains("non-nullable") {
            None
        } else if let Some(i) = quoted("column at '") {
            // "Invalid batch column at '0' has null but schema specifies non-nullable"
            i.parse::<usize>().ok()
        } else {
            // arrow: "Column 'column1' is declared as non-nullable but contains
            // null values", naming the column of the rows written
            quoted("Column '").and_then(|name| input.index_of(&name).ok())
        };
        if let Some(field) = index.and_then(|i| schema.fields().get(i)) {
            return to_datafusion(
                Error::new(
                    pintail_core::ErrorKind::Data,
                    format!("column '{}' of table '{table}' is NOT NULL, but a row gives it NULL", field.name()),
                )
                .with_hint("nothing was written; give the column a value"),
            );
        }
        to_datafusion(from_datafusion_in(table, e))
    }
}

impl DisplayAs for WriteErrorsExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::TreeRender => Ok(()),
            _ => write!(f, "WriteErrorsExec: table={}", self.table),
        }
    }
}

impl ExecutionPlan for WriteErrorsExec {
    fn name(&self) -> &'static str {
        "WriteErrorsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.inner]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self {
            inner: children.swap_remove(0),
            table: self.table.clone(),
            schema: Arc::clone(&self.schema),
            checkpoint: self.checkpoint.clone(),
        }))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DFResult<SendableRecordBatchStream> {
        let stream = self.inner.execute(partition, context)?;
        let out_schema = stream.schema();
        let (table, schema) = (self.table.clone(), Arc::clone(&self.schema));
        let input = self.inner.children().first().map_or_else(|| Arc::new(Schema::empty()), |c| c.schema());
        let name = table.clone();
        let mapped = stream.map(move |r| r.map_err(|e| Self::explain(&table, &schema, &input, e)));
        // after the last batch, that is after the commit (never reached
        // after an error: the stream is not read on)
        let checkpoint = self.checkpoint.clone();
        let after = futures::stream::once(async move {
            if let Some(c) = checkpoint {
                c.write_if_due(&name).await;
            }
        })
        .filter_map(|()| futures::future::ready(None));
        Ok(Box::pin(RecordBatchStreamAdapter::new(out_schema, mapped.chain(after))))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }
}
