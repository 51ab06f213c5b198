//! Out of memory in a hash join: the query runs again with sort-merge joins.
//!
//! DataFusion 55's hash join holds its whole build side in memory and cannot
//! spill, so under a `memory_limit` smaller than a join's build side (TPC-H
//! q18 at SF10 under 2 GiB) the query fails, while the same query planned
//! with sort-merge joins, whose sorts spill to `temp_directory`, finishes.
//! So when a query whose plan has a hash join runs out of memory before it
//! has handed out a single row, writes nothing, and may spill, it is planned
//! again with `prefer_hash_join = false` and run from the start; the caller
//! sees only the second run. Once a row has been handed out the error stands,
//! since running again would repeat rows.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::DataFusionError;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};

/// Whether a failure of `plan` for lack of memory may be retried with
/// sort-merge joins: it has a hash join and writes nothing.
pub(crate) fn applies(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut has_hash_join = false;
    let mut todo = vec![plan];
    while let Some(node) = todo.pop() {
        if node.downcast_ref::<DataSinkExec>().is_some() {
            return false;
        }
        has_hash_join |= node.downcast_ref::<HashJoinExec>().is_some();
        todo.extend(node.children());
    }
    has_hash_join
}

/// `first`, unless its first item is an out-of-memory error: then `first` is
/// dropped (freeing what it held) and the stream `retry` makes runs instead.
pub(crate) fn or_else_retry(
    first: SendableRecordBatchStream,
    retry: BoxFuture<'static, Result<SendableRecordBatchStream, DataFusionError>>,
) -> SendableRecordBatchStream {
    let schema = first.schema();
    let chosen = stream::once(async move {
        let mut first = first;
        let rest: Batches = match first.next().await {
            Some(Err(e)) if out_of_memory(&e) => {
                drop(first);
                match retry.await {
                    Ok(second) => second.boxed(),
                    // the planning error of the retry would hide the real cause
                    Err(_) => stream::once(async { Err(e) }).boxed(),
                }
            }
            Some(item) => stream::once(async { item }).chain(first).boxed(),
            None => stream::empty().boxed(),
        };
        Ok::<_, DataFusionError>(rest)
    })
    .try_flatten();
    Box::pin(RecordBatchStreamAdapter::new(schema, chosen))
}

type Batches = BoxStream<'static, Result<RecordBatch, DataFusionError>>;

fn out_of_memory(e: &DataFusionError) -> bool {
    matches!(e.find_root(), DataFusionError::ResourcesExhausted(_))
}
