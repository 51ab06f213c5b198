//! Keeps `input_file_name()` inside the file scan, where it has a value.
//!
//! DataFusion 55 replaces `input_file_name()` by the path of the file being
//! read only in a projection that has been pushed into the file scan; if the
//! projection stays above the scan, the function fails at run time
//! ("source dependent and cannot be evaluated directly"). The `filename`
//! option relies on it. DataFusion puts the projection right above the scan,
//! but when it then adds a round-robin repartition between the two (for
//! parallelism on a scan with fewer partitions than threads, such as one
//! small CSV file), its projection pushdown will not move a computed
//! projection below the repartition. This rule, run after DataFusion's own,
//! does that move, so the scan takes the projection in. It changes nothing
//! else: a projection that does not use `input_file_name()` is left alone.
//! It runs before DataFusion's final sanity check of the plan.
//!
//! It relies on DataFusion placing that projection right above the scan
//! (`datafusion.optimizer.enable_leaf_expression_pushdown`, on by default);
//! with that turned off, a `filename` column fails as described above.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};

/// The physical optimizer rule; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct FileNameToScan;

impl PhysicalOptimizerRule for FileNameToScan {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(projection) = node.downcast_ref::<ProjectionExec>() else {
                return Ok(Transformed::no(node));
            };
            if !uses_file_name(projection) {
                return Ok(Transformed::no(node));
            }
            let Some(repartition) = projection.input().downcast_ref::<RepartitionExec>() else {
                return Ok(Transformed::no(node));
            };
            let scan = repartition.input();
            if !matches!(repartition.partitioning(), Partitioning::RoundRobinBatch(_))
                || scan.downcast_ref::<DataSourceExec>().is_none()
            {
                return Ok(Transformed::no(node));
            }
            let below = ProjectionExec::try_new(projection.expr().to_vec(), Arc::clone(scan))?;
            let Some(pushed) = scan.try_swapping_with_projection(&below)? else {
                return Ok(Transformed::no(node));
            };
            // the same repartition (partitioning, order) over the scan
            let moved = replace_children_if_necessary(Arc::clone(projection.input()), vec![pushed])?;
            Ok(Transformed::yes(moved))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &'static str {
        "pintail_file_name_to_scan"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn uses_file_name(projection: &ProjectionExec) -> bool {
    projection.expr().iter().any(|e| {
        let mut found = false;
        // the closure never fails, so neither does the walk
        let _ = e.expr.apply(|x| {
            if x.downcast_ref::<ScalarFunctionExpr>().is_some_and(|f| f.name() == "input_file_name") {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found
    })
}
