//! Pintail for Python: the `pintail._pintail` extension module.
//!
//! A [`Connection`] owns a Pintail [`Session`](pintail_core::Session) (in
//! memory, or on a database directory); its `sql()` runs statements and
//! returns a [`Relation`] for a query, which runs only when its rows are
//! asked for and can be asked again. Results cross to Python through the
//! Arrow C stream interface (`__arrow_c_stream__`), so PyArrow, pandas and
//! Polars take the buffers without a copy.
//!
//! Every query is driven from the calling thread on one shared tokio
//! runtime with the GIL released (`Python::detach`); the thread wakes every
//! 50 ms to let Python deliver signals, so Ctrl-C raises `KeyboardInterrupt`
//! and cancels the query. The classes are `frozen` and `Send + Sync`, and the module
//! declares that it does not need the GIL, so free-threaded CPython runs
//! queries from many threads at once.
//!
//! The Python package (`python/pintail`) re-exports these classes and adds
//! the module-level `sql()` and `connect()`; this crate knows nothing of
//! pandas or Polars beyond calling their Arrow constructors.

mod connection;
mod cursor;
mod errors;
mod params;
mod relation;
mod replacement;
mod run;
mod tuples;

use pyo3::prelude::*;

pub use connection::Connection;
pub use cursor::Cursor;
pub use relation::Relation;

/// The extension module. It keeps no state of its own and never needs the
/// GIL for its own consistency.
#[pymodule(gil_used = false)]
fn _pintail(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Connection>()?;
    m.add_class::<Relation>()?;
    m.add_class::<Cursor>()?;
    errors::register(m)?;
    Ok(())
}
