//! An `INSERT` that loses a race to commit runs again.
//!
//! Tables that several processes write (Delta Lake tables in a database)
//! commit optimistically: when another writer commits first, the commit is
//! checked against theirs and refused if it might depend on what they
//! changed, with an error of kind [`ErrorKind::Conflict`]. An append reads
//! nothing of its table, so it can always be planned and run again against
//! the newer version, and Delta's own isolation level for writes
//! (WriteSerializable) treats blind appends that way. So an `INSERT`
//! whose rows come from `VALUES` or files, and whose first result is a
//! conflict, is run again, up to
//! [`ATTEMPTS`] times in all; `UPDATE`, `DELETE` and `MERGE`, whose
//! outcome depends on the rows they read, report the conflict instead.

use datafusion::arrow::array::RecordBatch;
use datafusion::common::DataFusionError;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, ErrorKind};
use crate::scan::SCAN_CATALOG;

/// Runs of one `INSERT`, the first included.
pub(crate) const ATTEMPTS: usize = 10;

/// Whether `plan` is an append that may run again after a conflict: one
/// whose rows come from `VALUES` or files only. An `INSERT ... SELECT` that
/// reads a table (the target or another) is not retried, since the table
/// it read may be what the other writer changed.
pub(crate) fn applies(plan: &LogicalPlan) -> bool {
    let LogicalPlan::Dml(d) = plan else { return false };
    if !matches!(d.op, WriteOp::Insert(InsertOp::Append)) {
        return false;
    }
    let mut reads_tables = false;
    let _ = d.input.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && scan.table_name.catalog() != Some(SCAN_CATALOG)
        {
            reads_tables = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    !reads_tables
}

/// A way to plan and start the statement again.
pub(crate) type Restart =
    Box<dyn Fn() -> BoxFuture<'static, Result<SendableRecordBatchStream, DataFusionError>> + Send + Sync>;

/// `first`, or, while its first item is a conflict, the stream `restart`
/// makes, up to [`ATTEMPTS`] runs in all.
pub(crate) fn retrying(first: SendableRecordBatchStream, restart: Restart) -> SendableRecordBatchStream {
    let schema = first.schema();
    let chosen = stream::once(async move {
        let mut current = first;
        let mut runs = 1;
        loop {
            let rest: Batches = match current.next().await {
                Some(Err(e)) if runs < ATTEMPTS && is_conflict(&e) => {
                    drop(current);
                    runs += 1;
                    match restart().await {
                        Ok(next) => {
                            current = next;
                            continue;
                        }
                        Err(_) => stream::once(async { Err(e) }).boxed(),
                    }
                }
                Some(item) => stream::once(async { item }).chain(current).boxed(),
                None => stream::empty().boxed(),
            };
            return Ok::<_, DataFusionError>(rest);
        }
    })
    .try_flatten();
    Box::pin(RecordBatchStreamAdapter::new(schema, chosen))
}

type Batches = BoxStream<'static, Result<RecordBatch, DataFusionError>>;

fn is_conflict(e: &DataFusionError) -> bool {
    match e.find_root() {
        DataFusionError::External(ext) => ext.downcast_ref::<Error>().is_some_and(|e| e.kind() == ErrorKind::Conflict),
        _ => false,
    }
}
