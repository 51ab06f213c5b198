//! Delta Lake's errors as Pintail's, naming the table they concern.

use deltalake::errors::DeltaTableError;
use deltalake::kernel::transaction::TransactionError;
use pintail_core::datafusion::error::DataFusionError;
use pintail_core::{Error, ErrorKind};

/// Converts an error from an operation on table `table`.
pub fn delta_error(table: &str, e: DeltaTableError) -> Error {
    if let DeltaTableError::GenericError { source } = e {
        return match source.downcast::<DataFusionError>() {
            Ok(df) => from_datafusion_in(table, *df),
            Err(other) => Error::new(ErrorKind::Execution, format!("table '{table}': {}", clean(&other.to_string()))),
        };
    }
    delta_error_ref(table, &e)
}

/// [`delta_error`] of an error held inside another (a DataFusion error).
pub fn delta_error_ref(table: &str, e: &DeltaTableError) -> Error {
    let message = clean(&e.to_string());
    if message.contains("rows failed validation check") {
        return Error::new(ErrorKind::Data, format!("table '{table}': {message}"))
            .with_hint("rows would break a rule of the table (a NOT NULL column or a CHECK constraint); nothing was written");
    }
    match e {
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(c),
        } => conflict(table, &c.to_string()),
        DeltaTableError::Transaction {
            source: TransactionError::VersionAlreadyExists(v),
        }
        | DeltaTableError::VersionAlreadyExists(v) => conflict(table, &format!("version {v} was written by another writer")),
        DeltaTableError::Transaction {
            source: TransactionError::MaxCommitAttempts(n),
        } => conflict(table, &format!("gave up after {n} attempts to commit")),
        DeltaTableError::InvalidJsonLog { .. } | DeltaTableError::InvalidStatsJson { .. } => {
            Error::new(ErrorKind::Data, format!("table '{table}' has a damaged log entry: {message}"))
                .with_hint("restore the file under _delta_log from a backup, or read an earlier version with AT (VERSION => n)")
        }
        DeltaTableError::SchemaMismatch { .. } => Error::plan(format!("table '{table}': {message}")),
        DeltaTableError::ObjectStore { source } => object_store_error(table, source),
        DeltaTableError::Parquet { .. } | DeltaTableError::Arrow { .. } | DeltaTableError::InvalidData { .. } => {
            Error::new(ErrorKind::Data, format!("table '{table}': {message}"))
        }
        DeltaTableError::NotATable(_) | DeltaTableError::NotInitialized => {
            Error::plan(format!("'{table}' is not a Delta table: {message}"))
        }
        DeltaTableError::InvalidVersion(v) => Error::plan(format!("table '{table}' has no version {v}")),
        DeltaTableError::Generic(m) if m.contains("already exists") => Error::plan(format!("table '{table}' already exists")),
        _ => Error::new(ErrorKind::Execution, format!("table '{table}': {message}")),
    }
}

/// A DataFusion error from work on table `table`: a Delta error inside it
/// is converted as such.
pub fn from_datafusion_in(table: &str, e: DataFusionError) -> Error {
    if let DataFusionError::External(ext) = e.find_root()
        && let Some(delta) = ext.downcast_ref::<DeltaTableError>()
    {
        return delta_error_ref(table, delta);
    }
    in_table(table, Error::from(e))
}

/// `e`, with the table named if its message does not already.
pub fn in_table(table: &str, e: Error) -> Error {
    if e.message().contains(&format!("'{table}'")) {
        return e;
    }
    let mut out = Error::new(e.kind(), format!("table '{table}': {}", e.message()));
    if let Some(hint) = e.hint() {
        out = out.with_hint(hint);
    }
    out
}

/// A message without the wrappers deltalake and DataFusion put around it.
fn clean(message: &str) -> String {
    let mut m = message.trim();
    for prefix in ["Generic DeltaTable error: ", "External error: ", "Generic error: "] {
        while let Some(rest) = m.strip_prefix(prefix) {
            m = rest;
        }
    }
    m.to_string()
}

pub fn object_store_error(table: &str, e: &deltalake::ObjectStoreError) -> Error {
    match e {
        deltalake::ObjectStoreError::NotFound { path, .. } => Error::io(format!("table '{table}': file '{path}' is missing"))
            .with_hint("a file the table's log names was deleted; restore it, or read an earlier version"),
        deltalake::ObjectStoreError::AlreadyExists { .. } => conflict(table, "another writer committed first"),
        other => Error::io(format!("table '{table}': {other}")),
    }
}

fn conflict(table: &str, detail: &str) -> Error {
    // deltalake's help line names settings Pintail does not have
    let detail = detail.lines().next().unwrap_or_default().trim_start_matches("Commit failed: ");
    Error::new(ErrorKind::Conflict, format!("table '{table}' was changed by another writer: {detail}"))
        .with_hint("nothing was written; run the statement again")
}

/// A Pintail error carried through DataFusion (out of a `TableProvider`).
pub fn to_datafusion(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
