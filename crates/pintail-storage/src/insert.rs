//! `INSERT` into a database table: Pintail's own DataFusion sink.
//!
//! deltalake's sink (`DeltaDataSink`) ran deltalake's post-commit step
//! after every INSERT, which brings the snapshot up to date and then lists
//! the whole `_delta_log` to find entries older than the log retention
//! (`delta.enableExpiredLogCleanup`, on by default): a table written by
//! single-row INSERTs got slower with every commit. It also wrote row groups
//! of the parquet crate's default size, 1,048,576 rows, unlike Pintail's
//! other writes.
//!
//! This sink writes with [`writer_properties`] and skips the post-commit
//! step: [`Checkpoint`] writes a checkpoint when one is due, knowing the
//! version just committed, and only then drops expired log entries, as
//! Spark's Delta Lake does.
//!
//! Tables with column mapping keep deltalake's sink, which renames columns
//! to their physical names as it writes (an internal of deltalake's).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_datasource::sink::DataSink;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, DataType, EagerSnapshot, StructField};
use deltalake::logstore::LogStoreRef;
use deltalake::operations::write::WriterStatsConfig;
use deltalake::datafile::writer::{DeltaWriter, WriterConfig};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TablePropertiesExt;
use deltalake::DeltaTableError;
use futures::{StreamExt, TryStreamExt};
use pintail_core::datafusion::arrow::datatypes::SchemaRef;
use pintail_core::datafusion::common::{DataFusionError, Result as DFResult};
use pintail_core::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use pintail_core::datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use pintail_core::datafusion::physical_plan::{DisplayAs, DisplayFormatType};

use crate::table::{Checkpoint, writer_properties};

/// Why rows cannot be inserted into the table at `snapshot` without
/// breaking a rule of the table that no `INSERT` here checks, if one: CHECK
/// constraints, column invariants, and generated or identity columns,
/// which tables written by Spark may have. (deltalake's `UPDATE` and
/// `MERGE` check them; its DataFusion sink did not, and wrote such rows.)
pub(crate) fn unenforced(snapshot: &EagerSnapshot) -> Option<String> {
    if let Some(key) = snapshot.metadata().configuration().keys().find(|k| k.starts_with("delta.constraints.")) {
        let name = key.trim_start_matches("delta.constraints.");
        return Some(format!("its CHECK constraint '{name}'"));
    }
    rule_of(snapshot.schema().fields(), "")
}

/// The first rule no `INSERT` here checks on `fields` (of the struct at
/// `path`) or on the fields nested in them, as [`unenforced`] says it.
fn rule_of<'a>(fields: impl Iterator<Item = &'a StructField>, path: &str) -> Option<String> {
    const RULES: [(&str, &str); 3] = [
        ("delta.invariants", "an invariant"),
        ("delta.generationExpression", "a generated value"),
        ("delta.identity.start", "an identity value"),
    ];
    fields.into_iter().find_map(|field| {
        let name = format!("{path}{}", field.name());
        if let Some((_, what)) = RULES.iter().find(|(key, _)| field.metadata().contains_key(*key)) {
            return Some(format!("{what} for its column '{name}'"));
        }
        nested_rule(field.data_type(), &name)
    })
}

/// [`rule_of`] the fields inside a value of type `data_type` at `path`.
fn nested_rule(data_type: &DataType, path: &str) -> Option<String> {
    match data_type {
        DataType::Struct(inner) => rule_of(inner.fields(), &format!("{path}.")),
        DataType::Array(array) => nested_rule(array.element_type(), &format!("{path}[]")),
        DataType::Map(map) => nested_rule(map.key_type(), &format!("{path}{{key}}"))
            .or_else(|| nested_rule(map.value_type(), &format!("{path}{{value}}"))),
        DataType::Primitive(_) | DataType::Variant(_) => None,
    }
}

/// Writes the rows of an `INSERT` as new files of one table and commits
/// them, with the removal of every current file for `INSERT OVERWRITE`.
pub(crate) struct InsertSink {
    table: String,
    log_store: LogStoreRef,
    /// The newest version when the `INSERT` was planned, which the commit
    /// follows (Delta's conflict check moves it past later commits).
    snapshot: EagerSnapshot,
    mode: SaveMode,
    schema: SchemaRef,
    /// Whether a checkpoint may also drop expired log entries: not inside
    /// a transaction, whose log store stages what it writes.
    cleanup: bool,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for InsertSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InsertSink").field("table", &self.table).field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl InsertSink {
    /// A sink into `table` at `snapshot`, or `None` if the table needs
    /// deltalake's own sink (column mapping).
    pub(crate) fn try_new(
        table: &str,
        log_store: LogStoreRef,
        snapshot: EagerSnapshot,
        mode: SaveMode,
        cleanup: bool,
    ) -> Option<Self> {
        use deltalake::delta_datafusion::DataFusionMixins;
        let mapping = snapshot.metadata().configuration().get("delta.columnMapping.mode");
        if !matches!(mapping.map(String::as_str), None | Some("none")) {
            return None;
        }
        Some(Self {
            table: table.to_string(),
            log_store,
            schema: snapshot.read_schema(),
            snapshot,
            mode,
            cleanup,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// Writes the rows of `data` and commits them: the number of rows and
    /// the version committed.
    async fn write(&self, mut data: SendableRecordBatchStream) -> DFResult<(u64, u64)> {
        use deltalake::delta_datafusion::DataFusionMixins;
        let delta = |e: DeltaTableError| DataFusionError::External(Box::new(e));
        let target = self.snapshot.input_schema();
        let partition_columns = self.snapshot.metadata().partition_columns().to_vec();
        let stats = WriterStatsConfig::from_config(self.snapshot.table_configuration());
        let config = WriterConfig::new(
            self.snapshot.read_schema(),
            partition_columns.clone(),
            Some(writer_properties()),
            Some(self.snapshot.table_properties().target_file_size()),
            None,
            stats.num_indexed_cols,
            stats.stats_columns,
        );
        let started = std::time::Instant::now();
        let operation_id = uuid::Uuid::new_v4();
        let mut writer = DeltaWriter::new(self.log_store.object_store(Some(operation_id)), config);
        let rows = MetricBuilder::new(&self.metrics).counter("total_rows", 0);
        let mut written = 0u64;
        while let Some(batch) = data.next().await {
            let step = async {
                // dictionary columns as the table's plain types
                let batch = deltalake::kernel::schema::cast_record_batch(&batch?, Arc::clone(&target), false, true)
                    .map_err(delta)?;
                writer.write(&batch).await.map_err(delta)?;
                Ok::<_, DataFusionError>(batch.num_rows())
            };
            match step.await {
                Ok(n) => {
                    written += n as u64;
                    rows.add(n);
                }
                Err(e) => {
                    // files already finished are left for VACUUM
                    let _ = writer.abort().await;
                    return Err(e);
                }
            }
        }
        let adds = writer.close().await.map_err(delta)?;
        let added = adds.len();
        let partitions = if partition_columns.is_empty() {
            0
        } else {
            adds.iter().map(|a| a.partition_values.iter().collect::<BTreeMap<_, _>>()).collect::<HashSet<_>>().len()
        };
        let mut actions: Vec<Action> = adds.into_iter().map(Action::Add).collect();
        if self.mode == SaveMode::Overwrite {
            let removes: Vec<Action> = self
                .snapshot
                .file_views(&self.log_store, None)
                .map_ok(|f| Action::Remove(f.remove_action(true)))
                .try_collect()
                .await
                .map_err(delta)?;
            actions.extend(removes);
        }
        let removed = actions.len() - added;
        let operation = DeltaOperation::Write {
            mode: self.mode,
            partition_by: (!partition_columns.is_empty()).then_some(partition_columns),
            predicate: None,
        };
        let metrics = serde_json::json!({
            "num_added_files": added,
            "num_removed_files": removed,
            "num_partitions": partitions,
            "num_added_rows": written,
            "execution_time_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "num_retries": 0,
        });
        // no post-commit step: write_all's Checkpoint does what it would
        let properties = CommitProperties::default()
            .with_metadata([("operationMetrics".to_string(), metrics)])
            .with_create_checkpoint(false)
            .with_cleanup_expired_logs(Some(false));
        let committed = CommitBuilder::from(properties)
            .with_actions(actions)
            .with_operation_id(operation_id)
            .build(Some(&self.snapshot), Arc::clone(&self.log_store), operation)
            .into_prepared_commit_future()
            .await
            .map_err(delta)?
            .await
            .map_err(delta)?;
        Ok((written, committed.version))
    }
}

impl DisplayAs for InsertSink {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InsertSink: table={}", self.table)
    }
}

#[async_trait]
impl DataSink for InsertSink {
    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(&self, data: SendableRecordBatchStream, _: &Arc<TaskContext>) -> DFResult<u64> {
        let (rows, version) = self.write(data).await?;
        let interval = self.snapshot.table_properties().checkpoint_interval().get();
        Checkpoint::new(Arc::clone(&self.log_store), self.snapshot.version(), interval)
            .with_cleanup(self.cleanup)
            .with_snapshot(self.snapshot.clone())
            .write_if_due_at(&self.table, version)
            .await;
        Ok(rows)
    }
}
