//! `SUMMARIZE <table | query | 'file'>`: per-column statistics in one scan.
//!
//! One aggregate query computes, for every column at once, DuckDB's
//! columns: `min, max, approx_unique, avg, std, q25, q50, q75, count,
//! null_percentage`. Statistics that do not apply to a type (the average of
//! a string) are NULL. Values are shown as text so one column can hold every
//! type, as in DuckDB.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::Column;
use datafusion::functions_aggregate::expr_fn::{
    approx_distinct, approx_percentile_cont, avg, count, max, min, stddev,
};
use datafusion::logical_expr::{Expr, cast as cast_expr, lit};
use pintail_format::format_cell;
use pintail_format::types::sql_type_name;

use crate::error::{Error, Result};
use crate::result::QueryResult;
use crate::session::Session;
use crate::statement::Statement;

#[derive(Clone, Copy)]
enum Stat {
    Min,
    Max,
    Unique,
    Avg,
    Std,
    Q25,
    Q50,
    Q75,
    Count,
}

const TEXT_STATS: [Stat; 7] = [Stat::Min, Stat::Max, Stat::Avg, Stat::Std, Stat::Q25, Stat::Q50, Stat::Q75];

fn alias(i: usize, stat: Stat) -> String {
    format!("s{i}_{}", stat as u8)
}

fn orderable(t: &DataType) -> bool {
    !(t.is_nested() || matches!(t, DataType::Null | DataType::Union(..) | DataType::Map(..)))
}

/// The aggregate expressions for one column; statistics left out are NULL.
fn column_stats(i: usize, c: Expr, t: &DataType) -> Vec<(Stat, Expr)> {
    let mut out = vec![(Stat::Count, count(c.clone()))];
    if orderable(t) {
        out.push((Stat::Min, min(c.clone())));
        out.push((Stat::Max, max(c.clone())));
    }
    let distinct_input = if matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64) {
        cast_expr(c.clone(), DataType::Utf8)
    } else {
        c.clone()
    };
    if !matches!(t, DataType::Null) {
        out.push((Stat::Unique, approx_distinct(distinct_input)));
    }
    if t.is_numeric() {
        let f = cast_expr(c, DataType::Float64);
        out.push((Stat::Avg, avg(f.clone())));
        out.push((Stat::Std, stddev(f.clone())));
        for (stat, p) in [(Stat::Q25, 0.25), (Stat::Q50, 0.5), (Stat::Q75, 0.75)] {
            out.push((stat, approx_percentile_cont(f.clone().sort(true, false), lit(p), None)));
        }
    }
    out.into_iter().map(|(s, e)| (s, e.alias(alias(i, s)))).collect()
}

pub(crate) async fn run(session: &Session, s: &Statement) -> Result<QueryResult> {
    let plan = session.plan_target(s, "SUMMARIZE").await?;
    let df = session.context().execute_logical_plan(plan).await?;
    let input = df.schema().clone();
    let columns: Vec<(String, DataType)> =
        input.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();

    let mut aggs = vec![count(lit(1)).alias("total")];
    for (i, (qualifier, field)) in input.iter().enumerate() {
        let c = Expr::Column(Column::new(qualifier.cloned(), field.name()));
        aggs.extend(column_stats(i, c, field.data_type()).into_iter().map(|(_, e)| e));
    }
    let batches = df.aggregate(vec![], aggs)?.collect().await?;
    let row = batches.iter().find(|b| b.num_rows() > 0).ok_or_else(|| {
        Error::internal("SUMMARIZE's aggregate returned no row", Some(s.text()))
    })?;
    let out_schema = row.schema();
    let get = |name: &str| -> Option<ArrayRef> {
        out_schema.index_of(name).ok().map(|idx| Arc::clone(row.column(idx)))
    };
    let total = get("total")
        .and_then(|a| a.as_any().downcast_ref::<Int64Array>().map(|a| a.value(0)))
        .unwrap_or(0);

    let n = columns.len();
    let mut text: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(n); TEXT_STATS.len()];
    let mut unique = Vec::with_capacity(n);
    let mut null_pct = Vec::with_capacity(n);
    for i in 0..n {
        for (k, stat) in TEXT_STATS.iter().enumerate() {
            text[k].push(get(&alias(i, *stat)).and_then(|a| format_cell(a.as_ref(), 0)));
        }
        let u = get(&alias(i, Stat::Unique))
            .and_then(|a| cast(&a, &DataType::Int64).ok())
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>().map(|a| a.value(0)));
        unique.push(u);
        let c = get(&alias(i, Stat::Count))
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>().map(|a| a.value(0)))
            .unwrap_or(0);
        // percent of nulls with two decimals, as DECIMAL(9,2) hundredths
        let pct = if total == 0 { 0 } else { (((total - c) as f64) * 10_000.0 / total as f64).round() as i128 };
        null_pct.push(pct);
    }

    let schema = Arc::new(Schema::new(vec![
        Field::new("column_name", DataType::Utf8, false),
        Field::new("column_type", DataType::Utf8, false),
        Field::new("min", DataType::Utf8, true),
        Field::new("max", DataType::Utf8, true),
        Field::new("approx_unique", DataType::Int64, true),
        Field::new("avg", DataType::Utf8, true),
        Field::new("std", DataType::Utf8, true),
        Field::new("q25", DataType::Utf8, true),
        Field::new("q50", DataType::Utf8, true),
        Field::new("q75", DataType::Utf8, true),
        Field::new("count", DataType::Int64, false),
        Field::new("null_percentage", DataType::Decimal128(9, 2), false),
    ]));
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(columns.iter().map(|(n, _)| n.as_str()))),
        Arc::new(StringArray::from_iter_values(columns.iter().map(|(_, t)| sql_type_name(t)))),
    ];
    let [mins, maxs, means, stds, p25, p50, p75] = <[Vec<Option<String>>; 7]>::try_from(text)
        .map_err(|_| Error::internal("SUMMARIZE built the wrong number of columns", Some(s.text())))?;
    arrays.push(Arc::new(StringArray::from(mins)));
    arrays.push(Arc::new(StringArray::from(maxs)));
    arrays.push(Arc::new(Int64Array::from(unique)));
    for v in [means, stds, p25, p50, p75] {
        arrays.push(Arc::new(StringArray::from(v)));
    }
    arrays.push(Arc::new(Int64Array::from(vec![total; n])));
    arrays.push(Arc::new(Decimal128Array::from(null_pct).with_precision_and_scale(9, 2)?));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    Ok(QueryResult::batches(schema, vec![batch], s.text(), session.memory_context()))
}
