//! `DESCRIBE <table | query | 'file'>`: the columns of anything queryable.
//!
//! The target is planned (never run) and its schema listed in DuckDB's
//! shape: `column_name, column_type, null, key, default, extra`.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use pintail_format::types::sql_type_name;

use crate::error::Result;
use crate::result::QueryResult;
use crate::session::Session;
use crate::statement::Statement;

pub(crate) async fn run(session: &Session, s: &Statement) -> Result<QueryResult> {
    let plan = session.plan_target(s, "DESCRIBE").await?;
    let fields = plan.schema().fields();
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    let types: Vec<String> = fields.iter().map(|f| sql_type_name(f.data_type())).collect();
    let nulls: Vec<&str> = fields.iter().map(|f| if f.is_nullable() { "YES" } else { "NO" }).collect();
    let none: Vec<Option<&str>> = vec![None; fields.len()];
    let schema = Arc::new(Schema::new(vec![
        Field::new("column_name", DataType::Utf8, false),
        Field::new("column_type", DataType::Utf8, false),
        Field::new("null", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, true),
        Field::new("default", DataType::Utf8, true),
        Field::new("extra", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(names)),
            Arc::new(StringArray::from(types)),
            Arc::new(StringArray::from(nulls)),
            Arc::new(StringArray::from(none.clone())),
            Arc::new(StringArray::from(none.clone())),
            Arc::new(StringArray::from(none)),
        ],
    )?;
    Ok(QueryResult::batches(schema, vec![batch], s.text(), session.memory_context()))
}
