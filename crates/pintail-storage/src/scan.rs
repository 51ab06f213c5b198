//! deltalake's scan of a table, planned as DataFusion plans a scan of the
//! same Parquet files, so that a query over a table is as fast as over
//! the files.
//!
//! deltalake's scan differs from DataFusion's Parquet scan in three ways
//! that cost time (TPC-H SF1, fresh process, best of 3):
//!
//! - It turns on the Parquet reader's row filtering for every filtered scan,
//!   whatever `datafusion.execution.parquet.pushdown_filters` says. That is
//!   off by default in DataFusion because it is usually slower: q6 took
//!   0.25 s with it and 0.11 s without, as over the file.
//! - It gives the optimizer column statistics only for the columns a filter
//!   names, and a byte size that is the whole file's, however few columns
//!   are read. The optimizer sizes joins by those statistics, so it built
//!   hash tables on the larger side: q7 took 0.57 s against 0.18 s.
//!   [`with_file_statistics`] reads them from the files' Parquet footers,
//!   as DataFusion does for Parquet files, through the same footer cache
//!   the scan itself reads from.
//! - Its `DeltaScanExec` node sits between the Parquet scan and the rest of
//!   the plan even when it only drops a column; see [`without_delta_scan`].
//!
//! `crates/pintail-storage/tests/scan.rs` checks that the plans over a
//! table and over its files have the same operators and joins.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use pintail_core::datafusion::catalog::Session as DFSession;
use pintail_core::datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use pintail_core::datafusion::common::stats::Precision;
use pintail_core::datafusion::common::{DataFusionError, Result as DFResult, ScalarValue, Statistics};
use pintail_core::datafusion::datasource::file_format::FileFormat;
use pintail_core::datafusion::datasource::file_format::parquet::ParquetFormat;
use pintail_core::datafusion::datasource::listing::PartitionedFile;
use pintail_core::datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder, ParquetSource};
use pintail_core::datafusion::datasource::source::DataSourceExec;
use datafusion_datasource::compute_all_files_statistics;
use pintail_core::datafusion::physical_expr::PhysicalExpr;
use pintail_core::datafusion::physical_expr::expressions::Column;
use pintail_core::datafusion::physical_expr::utils::collect_columns;
use pintail_core::datafusion::physical_plan::ExecutionPlan;
use pintail_core::datafusion::physical_plan::projection::ProjectionExec;

/// Footers read at once, for stores where each read is a request.
const CONCURRENT_FOOTERS: usize = 16;

/// `plan`, deltalake's scan, with its Parquet scans set up as DataFusion
/// sets up a scan of Parquet files under `state`'s options.
pub async fn as_parquet_scan(plan: Arc<dyn ExecutionPlan>, state: &dyn DFSession) -> DFResult<Arc<dyn ExecutionPlan>> {
    let plan = without_delta_scan(plan)?;
    let options = state.config_options();
    let row_filters = options.execution.parquet.pushdown_filters;
    let plan = if row_filters { plan } else { without_row_filters(plan)? };
    if !options.execution.collect_statistics {
        return Ok(plan);
    }
    // the tree is walked twice, since a TreeNode rewrite cannot await
    let mut scans = Vec::new();
    plan.apply(|node| {
        if let Some(exec) = node.downcast_ref::<DataSourceExec>()
            && let Some((config, _)) = exec.downcast_to_file_source::<ParquetSource>()
        {
            scans.push(config.clone());
        }
        Ok(pintail_core::datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })?;
    let mut with_stats = Vec::with_capacity(scans.len());
    for config in scans {
        with_stats.push(with_file_statistics(config, state).await?);
    }
    let mut with_stats = with_stats.into_iter();
    plan.transform_up(|node| {
        let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
            return Ok(Transformed::no(node));
        };
        if exec.downcast_to_file_source::<ParquetSource>().is_none() {
            return Ok(Transformed::no(node));
        }
        // both walks visit the scans in the same order
        match with_stats.next().flatten() {
            Some(config) => Ok(Transformed::yes(
                Arc::new(exec.clone().with_data_source(Arc::new(config))) as Arc<dyn ExecutionPlan>
            )),
            None => Ok(Transformed::no(node)),
        }
    })
    .data()
}

/// `plan` without deltalake's `DeltaScanExec` where, for the table read,
/// it would only drop the file id column deltalake's Parquet scan adds:
/// the table has no partition columns, column mapping, deletion vectors or
/// row tracking columns in the scan, which all show as columns the Parquet
/// scan's output does not have, or differently named or typed. A
/// projection takes its place, which DataFusion folds into the scan.
///
/// Left in place, the node keeps the plan from being the one DataFusion
/// makes for the files: the optimizer, not knowing it passes rows through,
/// puts a round-robin repartition under it for a small table read by one
/// core (then gathers the rows again for a join's build side), and the
/// rows of a join's probe side get filtered twice (see pintail-core's
/// runtime filters). TPC-H q21 at SF1: 0.52 s with it, 0.39 s without.
fn without_delta_scan(plan: Arc<dyn ExecutionPlan>) -> DFResult<Arc<dyn ExecutionPlan>> {
    if plan.name() != "DeltaScanExec" {
        return Ok(plan);
    }
    let [child] = plan.children()[..] else {
        return Ok(plan);
    };
    let Some(exec) = child.downcast_ref::<DataSourceExec>() else {
        return Ok(plan);
    };
    let Some((config, _)) = exec.downcast_to_file_source::<ParquetSource>() else {
        return Ok(plan);
    };
    let file_id = config.table_partition_cols();
    let [file_id] = &file_id[..] else {
        return Ok(plan);
    };
    // a predicate on the file id keeps or drops whole files
    if let Some(filter) = config.file_source().filter()
        && collect_columns(&filter).iter().any(|c| c.name() == file_id.name())
    {
        return Ok(plan);
    }
    let input = child.schema();
    let kept: Vec<(Arc<dyn PhysicalExpr>, String)> = input
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name() != file_id.name())
        .map(|(i, f)| (Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>, f.name().clone()))
        .collect();
    let projection = ProjectionExec::try_new(kept, Arc::clone(child))?;
    if projection.schema().fields() != plan.schema().fields() {
        return Ok(plan);
    }
    Ok(Arc::new(projection))
}

/// `plan` with its Parquet scans reading whole row groups instead of
/// filtering rows as they decode them. The filter still prunes files, row
/// groups and pages. The rows are filtered by the `FilterExec` DataFusion
/// puts above the scan, since deltalake reports the filters it gives the
/// Parquet reader as inexact; with row filtering on, DataFusion's filter
/// pushdown folds that `FilterExec` into the scan, as it does for files.
fn without_row_filters(plan: Arc<dyn ExecutionPlan>) -> DFResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
            return Ok(Transformed::no(node));
        };
        let Some((config, parquet)) = exec.downcast_to_file_source::<ParquetSource>() else {
            return Ok(Transformed::no(node));
        };
        if !parquet.table_parquet_options().global.pushdown_filters {
            return Ok(Transformed::no(node));
        }
        let source = parquet.clone().with_pushdown_filters(false);
        let config = FileScanConfigBuilder::from(config.clone()).with_source(Arc::new(source)).build();
        Ok(Transformed::yes(Arc::new(exec.clone().with_data_source(Arc::new(config))) as Arc<dyn ExecutionPlan>))
    })
    .data()
}

/// `config` with the statistics of each of its files read from the file's
/// footer, and the scan's statistics made from them; `None` if the scan
/// has columns that are neither in the files nor partition values (the row
/// positions deltalake adds for deletion vectors), whose statistics the
/// footers cannot give.
async fn with_file_statistics(config: FileScanConfig, state: &dyn DFSession) -> DFResult<Option<FileScanConfig>> {
    let table_schema = Arc::clone(config.file_source().table_schema().table_schema());
    let file_schema = Arc::clone(config.file_schema());
    if file_schema.fields().len() + config.table_partition_cols().len() != table_schema.fields().len() {
        return Ok(None);
    }
    let store = state.runtime_env().object_store(&config.object_store_url)?;
    let Some(parquet) = config.file_source().downcast_ref::<ParquetSource>() else {
        return Ok(None);
    };
    let format = ParquetFormat::default().with_options(parquet.table_parquet_options().clone());
    // every group's files in one stream, so that the reads overlap
    let sizes: Vec<usize> = config.file_groups.iter().map(FileGroup::len).collect();
    let all: Vec<PartitionedFile> = config.file_groups.iter().flat_map(|g| g.files().iter().cloned()).collect();
    let mut files: Vec<PartitionedFile> = futures::stream::iter(all)
        .map(|file| {
            let (store, format, file_schema) = (&store, &format, Arc::clone(&file_schema));
            async move {
                let footer = format.infer_stats(state, store, file_schema, &file.object_meta).await?;
                Ok::<_, DataFusionError>(file.with_statistics(Arc::new(without_failed_bounds(footer))))
            }
        })
        .buffered(CONCURRENT_FOOTERS)
        .try_collect()
        .await?;
    let mut groups = Vec::with_capacity(sizes.len());
    for size in sizes.into_iter().rev() {
        groups.push(FileGroup::new(files.split_off(files.len() - size)));
    }
    groups.reverse();
    let (groups, statistics) = compute_all_files_statistics(groups, table_schema, true, false)?;
    Ok(Some(
        FileScanConfigBuilder::from(config)
            .with_file_groups(groups)
            .with_statistics(statistics)
            .build(),
    ))
}


/// `stats` of one file without the bounds DataFusion could not work out.
///
/// DataFusion 55 gathers a column's bounds over a file's row groups in the
/// table's type; where the file stores the column as another type (a table
/// first written by Spark keeps timestamps in milliseconds or INT96, and
/// later files in microseconds), that fails and the bound is left as an
/// exact NULL. Merged with the other files' bounds, a NULL reads as lower
/// than any value, so `max(ts)`, answered from statistics alone, came out
/// as the maximum of the other files. A NULL bound of a column that is not
/// all NULL is made unknown instead.
fn without_failed_bounds(mut stats: Statistics) -> Statistics {
    let rows = stats.num_rows;
    for column in &mut stats.column_statistics {
        let all_null = matches!((column.null_count, rows), (Precision::Exact(n), Precision::Exact(r)) if n == r);
        if all_null {
            continue;
        }
        for bound in [&mut column.min_value, &mut column.max_value] {
            if bound.get_value().is_some_and(ScalarValue::is_null) {
                *bound = Precision::Absent;
            }
        }
    }
    stats
}
