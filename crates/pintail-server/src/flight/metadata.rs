//! The Flight SQL metadata commands: catalogs, schemas, tables (with their
//! columns), table types and `SqlInfo`, read from the client's session.
//! arrow-flight's builders give each answer the schema the protocol (and
//! the ADBC driver, which checks it) expects, and apply the client's
//! filters (catalog, `LIKE` patterns, table types).

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables, SqlInfo, SqlNullOrdering, SqlSupportedTransaction,
};
use pintail_core::Session;
use pintail_core::datafusion::datasource::TableType;
use tonic::Status;

use crate::ServeOptions;

/// The table types a session has, as Flight SQL names them.
const TABLE_TYPES: [&str; 3] = ["TABLE", "VIEW", "LOCAL TEMPORARY"];

fn type_name(table_type: TableType) -> &'static str {
    match table_type {
        TableType::Base => TABLE_TYPES[0],
        TableType::View => TABLE_TYPES[1],
        TableType::Temporary => TABLE_TYPES[2],
    }
}

fn failed(e: &impl std::fmt::Display) -> Status {
    Status::internal(format!("cannot build the metadata result: {e}"))
}

/// What the server tells of itself (`GetSqlInfo`).
pub(crate) fn sql_info(options: &ServeOptions) -> Result<SqlInfoData, Status> {
    let mut info = SqlInfoDataBuilder::new();
    info.append(SqlInfo::FlightSqlServerName, "Pintail");
    info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    info.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    info.append(SqlInfo::FlightSqlServerReadOnly, options.read_only);
    info.append(SqlInfo::FlightSqlServerSql, true);
    info.append(SqlInfo::FlightSqlServerSubstrait, false);
    // Pintail's transactions refuse DDL; a client told they exist (the
    // ADBC driver, by default) would run every statement inside one
    info.append(SqlInfo::FlightSqlServerTransaction, SqlSupportedTransaction::None as i32);
    info.append(SqlInfo::FlightSqlServerCancel, false);
    let timeout = options.query_timeout.map_or(0, |t| i32::try_from(t.as_secs()).unwrap_or(i32::MAX));
    info.append(SqlInfo::FlightSqlServerStatementTimeout, timeout);
    info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    info.append(SqlInfo::SqlNullOrdering, SqlNullOrdering::SqlNullsSortedHigh as i32);
    info.append(SqlInfo::SqlDdlCatalog, false);
    info.append(SqlInfo::SqlDdlSchema, true);
    info.append(SqlInfo::SqlDdlTable, true);
    info.append(SqlInfo::SqlTransactionsSupported, false);
    info.build().map_err(|e| failed(&e))
}

/// `GetCatalogs`.
pub(crate) fn catalogs(session: &Session, query: CommandGetCatalogs) -> Result<(SchemaRef, RecordBatch), Status> {
    let mut builder = query.into_builder();
    let mut names: Vec<String> = session.schemas().into_iter().map(|(catalog, _)| catalog).collect();
    names.dedup();
    for name in names {
        builder.append(name);
    }
    Ok((builder.schema(), builder.build().map_err(|e| failed(&e))?))
}

/// `GetDbSchemas`.
pub(crate) fn schemas(session: &Session, query: CommandGetDbSchemas) -> Result<(SchemaRef, RecordBatch), Status> {
    let mut builder = query.into_builder();
    for (catalog, schema) in session.schemas() {
        builder.append(catalog, schema);
    }
    Ok((builder.schema(), builder.build().map_err(|e| failed(&e))?))
}

/// `GetTables`, with each table's columns if asked.
pub(crate) async fn tables(session: &Session, query: CommandGetTables) -> Result<(SchemaRef, RecordBatch), Status> {
    let tables = session.tables().await.map_err(|e| super::status(&e))?;
    let mut builder = query.into_builder();
    for table in tables {
        builder
            .append(&table.catalog, &table.schema, &table.name, type_name(table.table_type), &table.columns)
            .map_err(|e| failed(&e))?;
    }
    Ok((builder.schema(), builder.build().map_err(|e| failed(&e))?))
}

/// `GetTableTypes`.
pub(crate) fn table_types(query: CommandGetTableTypes) -> Result<(SchemaRef, RecordBatch), Status> {
    let mut builder = query.into_builder();
    for name in TABLE_TYPES {
        builder.append(name);
    }
    Ok((builder.schema(), builder.build().map_err(|e| failed(&e))?))
}
