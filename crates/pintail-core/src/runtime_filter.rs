//! Join filters applied to the rows of a scan, where they pay.
//!
//! DataFusion 55 derives a filter from each hash join's build side (the
//! keys' bounds and a hash lookup) and hands it to the probe side's Parquet
//! scan. With `pushdown_filters` off, its default and ours (turning it on
//! slows most TPC-H queries, q12 0.130 s -> 0.217 s), the scan only prunes
//! row groups with it, so a join that keeps 6 thousand of 6 million rows
//! (TPC-H q17, q18, q20) still aggregates, repartitions and probes all 6
//! million. [`ScanFilterRule`] puts a [`RuntimeFilterExec`] over each such
//! scan that applies those filters to the rows, and stops applying them for
//! a while when they keep most rows, since the join does the same work again
//! anyway. Dropping rows there is always safe: DataFusion only hands out
//! filters that the join (or TopK) applies itself.

use std::collections::HashSet;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::array::{Array, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{filter_record_batch, prep_null_mask_filter};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::common::{Result, ScalarValue, Statistics};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::{Column, DynamicFilterPhysicalExpr, Literal};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::metrics::{BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::{
    ColumnarValue, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
};
use futures::{Stream, StreamExt};

/// Rows a filter is tried on before it is judged.
const TRIAL_ROWS: usize = 65_536;
/// A filter that keeps more than this share of the rows it sees is paused.
const KEEPS_TOO_MUCH: f64 = 0.7;
/// While paused, one batch in this many is still filtered, to notice a
/// filter that has become selective.
const PAUSED_SAMPLE: usize = 16;

/// Puts a [`RuntimeFilterExec`] over the file scans that hold dynamic
/// filters but do not apply them to rows, where dropping rows early saves
/// work: below an aggregation, a sort, or a hash join. A join's own filter
/// is not applied straight below its probe side: the probe checks each row
/// against the hash table about three times faster than the filter's
/// expression does (TPC-H q4 at SF10: 0.94 s without, 1.32 s with), and
/// rows it drops there would not have left the join anyway.
#[derive(Debug, Default)]
pub(crate) struct ScanFilterRule;

impl PhysicalOptimizerRule for ScanFilterRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if config.execution.parquet.pushdown_filters {
            return Ok(plan);
        }
        place(plan, false, &HashSet::new())
    }

    fn name(&self) -> &'static str {
        "PintailScanFilter"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` with filters placed under it; `worth` says whether what consumes
/// `node`'s rows (up to the first operator that does real work per row)
/// gains from getting fewer, `skip` names the filters of the joins whose
/// probe side that first operator is.
fn place(node: Arc<dyn ExecutionPlan>, worth: bool, skip: &HashSet<u64>) -> Result<Arc<dyn ExecutionPlan>> {
    if worth && let Some(wrapped) = wrap(&node, skip)? {
        return Ok(wrapped);
    }
    let children = node.children();
    if children.is_empty() {
        return Ok(node);
    }
    let cheap = node.downcast_ref::<FilterExec>().is_some()
        || node.downcast_ref::<ProjectionExec>().is_some()
        || node.downcast_ref::<RepartitionExec>().is_some()
        || node.downcast_ref::<CoalescePartitionsExec>().is_some()
        || node.downcast_ref::<CooperativeExec>().is_some();
    let join = node.downcast_ref::<HashJoinExec>().is_some();
    let no_skip = HashSet::new();
    let mut probe_skip = skip.clone();
    if join {
        probe_skip.extend(node.dynamic_expressions_produced().iter().filter_map(|f| f.expression_id()));
    }
    let mut changed = false;
    let mut new_children = Vec::with_capacity(children.len());
    for (i, child) in children.into_iter().enumerate() {
        // a hash join builds from its first input and probes with the second
        let (child_worth, child_skip) = match (join, cheap) {
            (true, _) if i == 1 => (true, &probe_skip),
            (false, true) => (worth, skip),
            _ => (true, &no_skip),
        };
        let new_child = place(Arc::clone(child), child_worth, child_skip)?;
        changed |= !Arc::ptr_eq(&new_child, child);
        new_children.push(new_child);
    }
    if changed { node.replace_children(new_children, recompute()) } else { Ok(node) }
}

/// `node` under a [`RuntimeFilterExec`] when it is a file scan with dynamic
/// filters, or a filter straight over one (the cheap static filter first).
fn wrap(node: &Arc<dyn ExecutionPlan>, skip: &HashSet<u64>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let (scan, over_filter) = match node.downcast_ref::<FilterExec>() {
        Some(f) => (f.input(), true),
        None => (node, false),
    };
    let Some(predicate) = scan
        .downcast_ref::<DataSourceExec>()
        .and_then(|s| s.data_source().downcast_ref::<FileScanConfig>())
        .and_then(|c| c.file_source().filter())
    else {
        return Ok(None);
    };
    if over_filter {
        let filters = dynamic_filters(&predicate, &node.schema(), skip)?;
        if !filters.is_empty() {
            return Ok(Some(Arc::new(RuntimeFilterExec::new(Arc::clone(node), filters))));
        }
    }
    let filters = dynamic_filters(&predicate, &scan.schema(), skip)?;
    if filters.is_empty() {
        return Ok(None);
    }
    let filtered: Arc<dyn ExecutionPlan> = Arc::new(RuntimeFilterExec::new(Arc::clone(scan), filters));
    Ok(Some(if over_filter { Arc::clone(node).replace_children(vec![filtered], recompute())? } else { filtered }))
}

fn recompute() -> ReplaceChildrenOptions {
    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute)
}

/// The dynamic filters inside a scan's predicate, their columns renamed to
/// the scan's output; a filter that needs a column the scan does not output
/// is left to the scan, and so are those in `skip`.
fn dynamic_filters(
    predicate: &Arc<dyn PhysicalExpr>,
    output: &SchemaRef,
    skip: &HashSet<u64>,
) -> Result<Vec<Arc<dyn PhysicalExpr>>> {
    let mut found = Vec::new();
    predicate.apply(|e| {
        if e.downcast_ref::<DynamicFilterPhysicalExpr>().is_some() {
            if !e.expression_id().is_some_and(|id| skip.contains(&id)) {
                found.push(Arc::clone(e));
            }
            return Ok(TreeNodeRecursion::Jump);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let mut out = Vec::new();
    for filter in found {
        let mut missing = false;
        let remapped = filter.transform_up(|e| match e.downcast_ref::<Column>() {
            Some(c) => match output.index_of(c.name()) {
                Ok(i) if i == c.index() => Ok(Transformed::no(e)),
                Ok(i) => Ok(Transformed::yes(Arc::new(Column::new(c.name(), i)) as _)),
                Err(_) => {
                    missing = true;
                    Ok(Transformed::no(e))
                }
            },
            None => Ok(Transformed::no(e)),
        })?;
        if !missing {
            out.push(remapped.data);
        }
    }
    Ok(out)
}

/// Applies a scan's join filters to its rows (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct RuntimeFilterExec {
    input: Arc<dyn ExecutionPlan>,
    filters: Vec<Arc<dyn PhysicalExpr>>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl RuntimeFilterExec {
    fn new(input: Arc<dyn ExecutionPlan>, filters: Vec<Arc<dyn PhysicalExpr>>) -> Self {
        let properties = Arc::clone(input.properties());
        Self {
            input,
            filters,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for RuntimeFilterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RuntimeFilterExec: filters=[")?;
        for (i, filter) in self.filters.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{filter}")?;
        }
        write!(f, "]")
    }
}

impl ExecutionPlan for RuntimeFilterExec {
    fn name(&self) -> &'static str {
        "RuntimeFilterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for filter in &self.filters {
            if f(filter)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        Ok(Arc::new(match options.children_properties {
            ChildrenPropertiesMode::Keep => Self { input, ..Self::clone(&self) },
            ChildrenPropertiesMode::Recompute => Self::new(input, self.filters.clone()),
        }))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn with_new_children_and_same_properties(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep))
    }

    /// Its input's, made inexact: the filters drop an unknown share of the
    /// rows. Nodes above it (joins sized by their inputs) plan as if it
    /// were not there.
    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(&self, input_stats: &[Arc<Statistics>], _args: &StatisticsArgs) -> Result<Arc<Statistics>> {
        Ok(Arc::new(match input_stats.first() {
            Some(input) => Statistics::clone(input).to_inexact(),
            None => Statistics::new_unknown(&self.schema()),
        }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        Ok(Box::pin(RuntimeFilterStream {
            input,
            trials: self.filters.iter().cloned().map(Trial::new).collect(),
            baseline: BaselineMetrics::new(&self.metrics, partition),
            dropped: MetricBuilder::new(&self.metrics).counter("rows_dropped", partition),
            paused: MetricBuilder::new(&self.metrics).counter("batches_unfiltered", partition),
        }))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// One filter and how it has done lately.
#[derive(Debug)]
struct Trial {
    filter: Arc<dyn PhysicalExpr>,
    seen: usize,
    kept: usize,
    /// The share of rows kept in the last finished trial (0 before one).
    share: f64,
    paused: bool,
    batches: usize,
    generation: u64,
}

impl Trial {
    fn new(filter: Arc<dyn PhysicalExpr>) -> Self {
        Self {
            filter,
            seen: 0,
            kept: 0,
            share: 0.0,
            paused: false,
            batches: 0,
            generation: 0,
        }
    }
}

struct RuntimeFilterStream {
    input: SendableRecordBatchStream,
    /// Most selective first, so the others see fewer rows.
    trials: Vec<Trial>,
    baseline: BaselineMetrics,
    dropped: Count,
    paused: Count,
}

impl RuntimeFilterStream {
    /// The batch with the filters applied, each in turn on the rows the
    /// ones before kept, skipping those paused or not yet known.
    fn apply(&mut self, mut batch: RecordBatch) -> Result<RecordBatch> {
        let before = batch.num_rows();
        let mut judged = false;
        for trial in &mut self.trials {
            let generation = trial.filter.snapshot_generation();
            if generation != trial.generation {
                // the filter changed (a build side finished, a TopK tightened)
                *trial = Trial { generation, ..Trial::new(Arc::clone(&trial.filter)) };
            }
            trial.batches += 1;
            if trial.paused && !trial.batches.is_multiple_of(PAUSED_SAMPLE) {
                self.paused.add(1);
                continue;
            }
            if is_true(&trial.filter) {
                continue;
            }
            let column = match trial.filter.evaluate(&batch)? {
                ColumnarValue::Array(a) => a,
                ColumnarValue::Scalar(s) => s.to_array_of_size(batch.num_rows())?,
            };
            let Some(mask) = column.as_any().downcast_ref::<BooleanArray>() else {
                continue; // not a predicate: leave it to the join
            };
            let mask = if mask.null_count() > 0 { prep_null_mask_filter(mask) } else { mask.clone() };
            let out = filter_record_batch(&batch, &mask)?;
            trial.seen += batch.num_rows();
            trial.kept += out.num_rows();
            batch = out;
            if trial.seen >= TRIAL_ROWS {
                #[expect(clippy::cast_precision_loss, reason = "a share of row counts")]
                let share = trial.kept as f64 / trial.seen as f64;
                trial.share = share;
                trial.paused = share > KEEPS_TOO_MUCH;
                trial.seen = 0;
                trial.kept = 0;
                judged = true;
            }
            if batch.num_rows() == 0 {
                break;
            }
        }
        if judged {
            self.trials.sort_by(|a, b| a.share.total_cmp(&b.share));
        }
        self.dropped.add(before - batch.num_rows());
        Ok(batch)
    }
}

/// Whether the filter is `true` as it stands (a build side not yet read).
fn is_true(filter: &Arc<dyn PhysicalExpr>) -> bool {
    let current = match filter.downcast_ref::<DynamicFilterPhysicalExpr>() {
        Some(d) => match d.current() {
            Ok(c) => c,
            Err(_) => return false,
        },
        None => Arc::clone(filter),
    };
    current
        .downcast_ref::<Literal>()
        .is_some_and(|l| l.value() == &ScalarValue::Boolean(Some(true)))
}

impl Stream for RuntimeFilterStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let polled = match self.input.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(batch))) => {
                    let elapsed = self.baseline.elapsed_compute().clone();
                    let timer = elapsed.timer();
                    let out = self.apply(batch);
                    timer.done();
                    match out {
                        Ok(b) if b.num_rows() == 0 => continue,
                        other => Poll::Ready(Some(other)),
                    }
                }
                other => other,
            };
            return self.baseline.record_poll(polled);
        }
    }
}

impl RecordBatchStream for RuntimeFilterStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}
