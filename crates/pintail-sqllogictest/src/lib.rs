//! Runs sqllogictest files against a Pintail [`Session`].
//!
//! Each `.slt` file gets a fresh in-memory session whose working directory
//! is the repository root, so tests name files as `examples/data/...` or
//! `tests/data/...`. Values are printed as the CLI prints them, with `NULL`
//! for nulls and `(empty)` for empty strings. The test binary
//! (`tests/slt.rs`) finds the files and offers `--complete` to rewrite
//! expectations.

pub mod azure;
pub mod http;
pub mod s3;
pub mod servers;

use async_trait::async_trait;
use futures::StreamExt;
use pintail_core::datafusion::arrow::datatypes::DataType;
use pintail_core::datafusion::arrow::record_batch::RecordBatch;
use pintail_core::{Session, split_statements};
use pintail_format::format_cell;
use sqllogictest::{DBOutput, DefaultColumnType};

/// A Pintail session as a sqllogictest database.
pub struct PintailDb {
    session: Session,
}

impl PintailDb {
    /// A fresh in-memory session, able to ATTACH databases.
    pub fn new() -> Result<Self, pintail_core::Error> {
        let session = Session::new()?;
        pintail_storage::install(&session);
        Ok(Self { session })
    }
}

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => DefaultColumnType::FloatingPoint,
        DataType::Dictionary(_, v) => column_type(v),
        _ => DefaultColumnType::Text,
    }
}

fn rows_of(batch: &RecordBatch) -> Vec<Vec<String>> {
    (0..batch.num_rows())
        .map(|r| {
            batch
                .columns()
                .iter()
                .map(|c| match format_cell(c.as_ref(), r) {
                    None => "NULL".to_string(),
                    Some(s) if s.is_empty() => "(empty)".to_string(),
                    Some(s) => s,
                })
                .collect()
        })
        .collect()
}

#[async_trait]
impl sqllogictest::AsyncDB for PintailDb {
    type Error = pintail_core::Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let statements = split_statements(sql)?;
        let Some((last, first)) = statements.split_last() else {
            return Ok(DBOutput::StatementComplete(0));
        };
        for s in first {
            self.session.execute(s).await?.drain().await?;
        }
        let mut result = self.session.execute(last).await?;
        if !result.has_columns() {
            result.drain().await?;
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = result.schema().fields().iter().map(|f| column_type(f.data_type())).collect();
        let mut rows = Vec::new();
        while let Some(batch) = result.next().await {
            rows.extend(rows_of(&batch?));
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &'static str {
        "pintail"
    }
}
