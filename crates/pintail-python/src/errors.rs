//! Pintail's errors as Python exceptions.
//!
//! The classes follow PEP 249 (DB-API 2.0): `Error` at the top,
//! `DatabaseError` under it for everything a statement can fail with, and
//! the standard subclasses under that. Each [`ErrorKind`] maps to one
//! Pintail class under the standard one it belongs to, so code written for
//! any DB-API driver catches Pintail's errors, and code written for Pintail
//! can tell a missing file from a bad query. The message is Pintail's own,
//! with its hint on a second line.

use pintail_core::{Error, ErrorKind};
use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;

pyo3::create_exception!(pintail, Warning, PyException, "A warning (PEP 249); Pintail raises none yet.");
pyo3::create_exception!(pintail, PintailError, PyException, "Every Pintail error (PEP 249's `Error`).");
pyo3::create_exception!(pintail, InterfaceError, PintailError, "The API was misused: a closed connection, say.");
pyo3::create_exception!(pintail, DatabaseError, PintailError, "A statement failed.");
pyo3::create_exception!(pintail, DataError, DatabaseError, "Data that cannot be read or converted.");
pyo3::create_exception!(pintail, OperationalError, DatabaseError, "A failure outside the query text.");
pyo3::create_exception!(pintail, IntegrityError, DatabaseError, "A rule of the data was broken.");
pyo3::create_exception!(pintail, InternalError, DatabaseError, "A bug in Pintail or a library under it.");
pyo3::create_exception!(pintail, ProgrammingError, DatabaseError, "A mistake in the SQL or its use.");
pyo3::create_exception!(pintail, NotSupportedError, DatabaseError, "Something Pintail does not do (yet).");
pyo3::create_exception!(pintail, ParserError, ProgrammingError, "SQL that does not parse.");
pyo3::create_exception!(pintail, CatalogError, ProgrammingError, "An unknown or mistyped table, column or function.");
pyo3::create_exception!(pintail, InvalidOptionError, ProgrammingError, "An unknown setting or option, or a bad value.");
pyo3::create_exception!(pintail, IOError, OperationalError, "A file, directory or URL that cannot be read or written.");
pyo3::create_exception!(pintail, ConversionError, DataError, "A value that does not fit, or a malformed file.");
pyo3::create_exception!(pintail, ExecutionError, OperationalError, "A query failed while running.");
pyo3::create_exception!(pintail, OutOfMemoryError, OperationalError, "A query needed more than `memory_limit`.");
pyo3::create_exception!(pintail, ConflictError, OperationalError, "Another writer changed the table first; run it again.");

/// Adds the classes to the module, `Error` under its PEP 249 name.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<PintailError>())?;
    m.add("Warning", py.get_type::<Warning>())?;
    m.add("InterfaceError", py.get_type::<InterfaceError>())?;
    m.add("DatabaseError", py.get_type::<DatabaseError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("OperationalError", py.get_type::<OperationalError>())?;
    m.add("IntegrityError", py.get_type::<IntegrityError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add("ProgrammingError", py.get_type::<ProgrammingError>())?;
    m.add("NotSupportedError", py.get_type::<NotSupportedError>())?;
    m.add("ParserError", py.get_type::<ParserError>())?;
    m.add("CatalogError", py.get_type::<CatalogError>())?;
    m.add("InvalidOptionError", py.get_type::<InvalidOptionError>())?;
    m.add("IOError", py.get_type::<IOError>())?;
    m.add("ConversionError", py.get_type::<ConversionError>())?;
    m.add("ExecutionError", py.get_type::<ExecutionError>())?;
    m.add("OutOfMemoryError", py.get_type::<OutOfMemoryError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    Ok(())
}

/// The Python exception for a Pintail error.
pub(crate) fn to_py(e: &Error) -> PyErr {
    let message = match e.hint() {
        Some(hint) => format!("{}\nhint: {hint}", e.message()),
        None => e.message().to_string(),
    };
    match e.kind() {
        ErrorKind::Syntax => ParserError::new_err(message),
        ErrorKind::Plan => CatalogError::new_err(message),
        ErrorKind::InvalidOption => InvalidOptionError::new_err(message),
        ErrorKind::Io => IOError::new_err(message),
        ErrorKind::Data => ConversionError::new_err(message),
        ErrorKind::Execution => ExecutionError::new_err(message),
        ErrorKind::OutOfMemory => OutOfMemoryError::new_err(message),
        ErrorKind::NotSupported | ErrorKind::ReadOnly | ErrorKind::NotAllowed => NotSupportedError::new_err(message),
        ErrorKind::Cancelled => PyKeyboardInterrupt::new_err(message),
        ErrorKind::Conflict => ConflictError::new_err(message),
        ErrorKind::Internal => InternalError::new_err(message),
    }
}

/// `Result<T, pintail_core::Error>` into a `PyResult`.
pub(crate) trait IntoPyResult<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(|e| to_py(&e))
    }
}

/// The error for a call on a closed connection.
pub(crate) fn closed() -> PyErr {
    InterfaceError::new_err("the connection is closed")
}
