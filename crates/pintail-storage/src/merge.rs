//! `MERGE INTO` a database table: DataFusion plans the statement and hands
//! the table its source, `ON` condition and `WHEN` clauses; this module
//! turns them into deltalake's merge, which rewrites the touched files in
//! one commit.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use deltalake::DeltaTable;
use deltalake::operations::merge::MergeBuilder;
use pintail_core::datafusion::arrow::datatypes::SchemaRef;
use pintail_core::datafusion::catalog::Session as DFSession;
use pintail_core::datafusion::common::tree_node::{Transformed, TreeNode};
use pintail_core::datafusion::common::{Column, DFSchemaRef, Result as DFResult, TableReference};
use pintail_core::datafusion::dataframe::DataFrame;
use pintail_core::datafusion::datasource::{TableProvider, TableType, provider_as_source};
use pintail_core::datafusion::execution::SessionState;
use pintail_core::datafusion::logical_expr::dml::{MergeIntoAction, MergeIntoClause, MergeIntoClauseKind};
use pintail_core::datafusion::logical_expr::{Expr, LogicalPlanBuilder};
use pintail_core::datafusion::physical_plan::ExecutionPlan;
use pintail_core::datafusion::physical_plan::projection::ProjectionExec;

use crate::errors::{delta_error, to_datafusion};

const TARGET: &str = "target";
const SOURCE: &str = "source";

/// A merge, ready to run: expressions use the qualifiers `target` and
/// `source`, as deltalake's merge expects.
#[derive(Debug, Clone)]
pub struct Merge {
    source: Arc<dyn ExecutionPlan>,
    on: Expr,
    clauses: Vec<MergeIntoClause>,
}

impl Merge {
    /// Prepares the merge DataFusion planned: `merge_schema` holds the
    /// target's `target_columns` columns, then the source's, each with the
    /// qualifier the statement's expressions use.
    pub fn new(
        source: Arc<dyn ExecutionPlan>,
        merge_schema: &DFSchemaRef,
        target_columns: usize,
        on: Expr,
        clauses: Vec<MergeIntoClause>,
    ) -> DFResult<Self> {
        let qualifier = |i: usize| merge_schema.qualified_field(i).0.cloned();
        let target = (target_columns > 0).then(|| qualifier(0)).flatten();
        let source_q = (merge_schema.fields().len() > target_columns)
            .then(|| qualifier(target_columns))
            .flatten();
        let rename = |e: Expr| requalify(e, target.as_ref(), source_q.as_ref());
        let clauses = clauses
            .into_iter()
            .map(|c| {
                Ok(MergeIntoClause {
                    kind: c.kind,
                    predicate: c.predicate.map(rename).transpose()?,
                    action: match c.action {
                        MergeIntoAction::Update(sets) => MergeIntoAction::Update(
                            sets.into_iter().map(|(c, e)| Ok((c, rename(e)?))).collect::<DFResult<_>>()?,
                        ),
                        MergeIntoAction::Insert { columns, values } => MergeIntoAction::Insert {
                            columns,
                            values: values.into_iter().map(rename).collect::<DFResult<_>>()?,
                        },
                        MergeIntoAction::Delete => MergeIntoAction::Delete,
                    },
                })
            })
            .collect::<DFResult<Vec<_>>>()?;
        Ok(Self {
            source,
            on: rename(on)?,
            clauses,
        })
    }

    /// Runs the merge on `delta` (loaded at its latest version); returns the
    /// rows inserted, updated and deleted.
    pub async fn run(self, table: &str, delta: DeltaTable, state: &SessionState, target_schema: &SchemaRef) -> DFResult<u64> {
        let source_table = Arc::new(PlanTable { plan: self.source });
        let plan = LogicalPlanBuilder::scan(SOURCE, provider_as_source(source_table), None)?.build()?;
        let source = DataFrame::new(state.clone(), plan);
        let mut builder = delta
            .merge(source, self.on)
            .with_source_alias(SOURCE)
            .with_target_alias(TARGET)
            .with_session_state(crate::table::delta_state(state.clone()))
            .with_writer_properties(crate::table::writer_properties());
        let fail = |e| to_datafusion(delta_error(table, e));
        for clause in self.clauses {
            builder = add_clause(builder, clause, target_schema).map_err(fail)?;
        }
        let (_, metrics) = builder.await.map_err(fail)?;
        Ok((metrics.num_target_rows_inserted + metrics.num_target_rows_updated + metrics.num_target_rows_deleted) as u64)
    }
}

fn add_clause(
    builder: MergeBuilder,
    clause: MergeIntoClause,
    target_schema: &SchemaRef,
) -> deltalake::DeltaResult<MergeBuilder> {
    let MergeIntoClause { kind, predicate, action } = clause;
    let matched = matches!(kind, MergeIntoClauseKind::Matched);
    let by_source = matches!(kind, MergeIntoClauseKind::NotMatchedBySource);
    match action {
        MergeIntoAction::Update(sets) => {
            let build = |mut u: deltalake::operations::merge::UpdateBuilder| {
                if let Some(p) = predicate {
                    u = u.predicate(p);
                }
                for (column, value) in sets {
                    u = u.update(Column::new_unqualified(column), value);
                }
                u
            };
            if by_source {
                builder.when_not_matched_by_source_update(build)
            } else {
                builder.when_matched_update(build)
            }
        }
        MergeIntoAction::Delete => {
            let build = |mut d: deltalake::operations::merge::DeleteBuilder| {
                if let Some(p) = predicate {
                    d = d.predicate(p);
                }
                d
            };
            if by_source {
                builder.when_not_matched_by_source_delete(build)
            } else {
                builder.when_matched_delete(build)
            }
        }
        MergeIntoAction::Insert { columns, values } => {
            let columns: Vec<String> = if columns.is_empty() {
                target_schema.fields().iter().map(|f| f.name().clone()).collect()
            } else {
                columns
            };
            debug_assert!(!matched && !by_source);
            builder.when_not_matched_insert(|mut i| {
                if let Some(p) = predicate {
                    i = i.predicate(p);
                }
                for (column, value) in columns.into_iter().zip(values) {
                    i = i.set(Column::new_unqualified(column), value);
                }
                i
            })
        }
    }
}

/// `e` with the target's and the source's qualifiers replaced by `target`
/// and `source`.
fn requalify(e: Expr, target: Option<&TableReference>, source: Option<&TableReference>) -> DFResult<Expr> {
    e.transform_up(|e| {
        Ok(match e {
            Expr::Column(c) if c.relation.is_some() && c.relation.as_ref() == target => {
                Transformed::yes(Expr::Column(Column::new(Some(TARGET), c.name)))
            }
            Expr::Column(c) if c.relation.is_some() && c.relation.as_ref() == source => {
                Transformed::yes(Expr::Column(Column::new(Some(SOURCE), c.name)))
            }
            other => Transformed::no(other),
        })
    })
    .map(|t| t.data)
}

/// An already-planned source as a table, so deltalake's merge can read it
/// as a DataFrame.
struct PlanTable {
    plan: Arc<dyn ExecutionPlan>,
}

impl fmt::Debug for PlanTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlanTable")
    }
}

#[async_trait]
impl TableProvider for PlanTable {
    fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn DFSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        match projection {
            None => Ok(Arc::clone(&self.plan)),
            Some(p) => {
                let schema = self.plan.schema();
                let exprs: Vec<(Arc<dyn pintail_core::datafusion::physical_expr::PhysicalExpr>, String)> = p
                    .iter()
                    .map(|&i| {
                        let name = schema.field(i).name().clone();
                        (
                            Arc::new(pintail_core::datafusion::physical_expr::expressions::Column::new(&name, i)) as _,
                            name,
                        )
                    })
                    .collect();
                Ok(Arc::new(ProjectionExec::try_new(exprs, Arc::clone(&self.plan))?))
            }
        }
    }
}

