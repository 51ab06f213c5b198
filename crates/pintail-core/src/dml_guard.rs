//! `DELETE` and `UPDATE` that DataFusion would get wrong are refused or
//! answered here.
//!
//! DataFusion 55 hands a table's `delete_from` / `update` only the filters
//! it finds on the target in the optimized plan, and an empty list means
//! "every row". A `WHERE` with a subquery (rewritten into a join), a
//! `LIMIT`, or a condition the optimizer folds to false or NULL (turned into
//! an empty relation) leaves no filter behind, so the statement would change
//! every row. Such statements are refused with a clear error, and those
//! that provably touch no row return a count of 0 without reaching the
//! table.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, WriteOp};

use crate::error::{Error, ErrorKind, Result};

/// What to do with a statement.
pub(crate) enum Verdict {
    /// Run it as planned.
    Run,
    /// It changes no row: answer 0 without running it.
    NoRows,
}

/// Checks `plan` if it is a `DELETE` or `UPDATE`.
pub(crate) fn check(state: &SessionState, plan: &LogicalPlan) -> Result<Verdict> {
    let LogicalPlan::Dml(dml) = plan else { return Ok(Verdict::Run) };
    let verb = match dml.op {
        WriteOp::Delete => "DELETE",
        WriteOp::Update => "UPDATE",
        _ => return Ok(Verdict::Run),
    };
    let mut refusal = None;
    dml.input.apply(|node| {
        let allowed = matches!(
            node,
            LogicalPlan::Filter(_) | LogicalPlan::Projection(_) | LogicalPlan::TableScan(_) | LogicalPlan::SubqueryAlias(_)
        );
        if !allowed {
            refusal = Some(format!("{verb} with {} is not supported yet", describe(node)));
            return Ok(TreeNodeRecursion::Stop);
        }
        let has_subquery = node.expressions().iter().any(|e| {
            e.exists(|e| Ok(matches!(e, Expr::Exists(_) | Expr::InSubquery(_) | Expr::ScalarSubquery(_))))
                .unwrap_or(true)
        });
        if has_subquery {
            refusal = Some(format!("{verb} with a subquery in WHERE or SET is not supported yet"));
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if let Some(message) = refusal {
        return Err(Error::new(ErrorKind::NotSupported, message).with_hint(format!(
            "write it as MERGE INTO {} USING (query) ON ... WHEN MATCHED THEN {}",
            dml.table_name,
            if verb == "DELETE" { "DELETE" } else { "UPDATE SET ..." }
        )));
    }
    let optimized = state.optimize(plan)?;
    let mut empty = false;
    optimized.apply(|node| {
        if matches!(node, LogicalPlan::EmptyRelation(e) if !e.produce_one_row) {
            empty = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(if empty { Verdict::NoRows } else { Verdict::Run })
}

fn describe(node: &LogicalPlan) -> &'static str {
    match node {
        LogicalPlan::Limit(_) => "LIMIT",
        LogicalPlan::Sort(_) => "ORDER BY",
        LogicalPlan::Join(_) => "a join",
        LogicalPlan::Subquery(_) => "a subquery",
        LogicalPlan::Aggregate(_) => "an aggregate",
        _ => "this kind of input",
    }
}
