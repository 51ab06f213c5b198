//! `Cursor`: the DB-API 2.0 (PEP 249) way to run statements.
//!
//! `execute()` runs a statement at once, with its parameters bound as typed
//! values, and keeps its result open; `fetchone()`, `fetchmany()` and
//! `fetchall()` read it a batch at a time. `description` names the
//! result's columns with their SQL types, and `rowcount` counts the rows an
//! `INSERT`, `UPDATE`, `DELETE` or `MERGE` changed (-1 for a query, whose
//! count is not known before it is read). Beyond PEP 249, the rest of a
//! result can be taken as Arrow, pandas or Polars (`fetch_arrow_table()`,
//! `df()`, `pl()`), as DuckDB's cursors do.

use std::sync::{Mutex, MutexGuard, PoisonError};

use pintail_core::Session;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use pyo3_arrow::PyTable;

use crate::connection::{Connection, returns_rows};
use crate::errors::{IntoPyResult, ProgrammingError};
use crate::params::scalars;
use crate::relation::{Rows, one_statement, open_statement};
use crate::tuples::tuples;
use crate::run::block_on_progress;

/// A DB-API cursor: runs statements and reads their results.
///
/// Made by `Connection.cursor()`, or by `Connection.execute()`, which
/// returns the cursor it ran the statement on.
#[pyclass(frozen, module = "pintail")]
pub struct Cursor {
    connection: Py<Connection>,
    state: Mutex<State>,
}

struct State {
    /// The open result of the last statement, if it returned rows.
    rows: Option<Rows>,
    /// `(name, type, nullable)` of each column of that result.
    columns: Option<Vec<(String, String, bool)>>,
    rowcount: i64,
    arraysize: usize,
    closed: bool,
}

impl Cursor {
    pub(crate) fn new(connection: Py<Connection>) -> Self {
        Self {
            connection,
            state: Mutex::new(State {
                rows: None,
                columns: None,
                rowcount: -1,
                arraysize: 1,
                closed: false,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn session(&self) -> PyResult<Session> {
        if self.state().closed {
            return Err(crate::errors::InterfaceError::new_err("the cursor is closed"));
        }
        self.connection.get().session()
    }

    /// Drops the last statement's result, before the next runs.
    fn forget_result(&self) {
        let mut state = self.state();
        state.rows = None;
        state.columns = None;
        state.rowcount = -1;
    }

    /// Runs `query` with `params`; returns the rows result and the changed
    /// row count.
    fn run(&self, py: Python<'_>, query: &str, params: Option<&Bound<'_, PyAny>>) -> PyResult<(Option<Rows>, i64)> {
        let session = self.session()?;
        let params = scalars(params)?;
        let statement = one_statement(query).py_err()?;
        let (statement, _) = statement.with_numbered_parameters().py_err()?;
        let bindings = self.connection.get().bindings(py, &session, &statement, params)?;
        let rows_back = returns_rows(&statement).is_some();
        let result = open_statement(py, &session, statement, &bindings)?;
        let mode = self.connection.get().progress;
        if rows_back {
            return Ok((Some(Rows::new(result, mode)), -1));
        }
        let progress = Some((result.progress(), mode));
        let batches = block_on_progress(py, result.collect(), progress)?.py_err()?;
        Ok((None, pintail_core::changed_rows(&batches).map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))))
    }

    /// The rows left of the open result.
    fn rest(&self, py: Python<'_>) -> PyResult<(arrow::datatypes::SchemaRef, Vec<arrow::array::RecordBatch>)> {
        let mut state = self.state();
        let rows = state.rows.as_mut().ok_or_else(no_result)?;
        let schema = rows.schema();
        let batches = rows.take(py, None)?;
        Ok((schema, batches))
    }

    fn fetch<'py>(&self, py: Python<'py>, n: Option<usize>) -> PyResult<Bound<'py, PyAny>> {
        let mut state = self.state();
        let rows = state.rows.as_mut().ok_or_else(no_result)?;
        let schema = rows.schema();
        let batches = rows.take(py, n)?;
        drop(state);
        if batches.is_empty() {
            return Ok(PyList::empty(py).into_any());
        }
        tuples(py, &schema, &batches)
    }
}

#[pymethods]
impl Cursor {
    /// Runs one statement, with `parameters` (a list or tuple) bound to its
    /// `?` or `$1`, `$2`, ... placeholders. Returns the cursor, so that
    /// `cur.execute(...).fetchall()` reads the result.
    #[pyo3(signature = (query, parameters=None))]
    fn execute<'py>(
        slf: &Bound<'py, Self>,
        query: &str,
        parameters: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let this = slf.get();
        let py = slf.py();
        this.forget_result();
        let (rows, rowcount) = this.run(py, query, parameters)?;
        let mut state = this.state();
        state.columns = rows.as_ref().map(columns_of);
        state.rows = rows;
        state.rowcount = rowcount;
        Ok(slf.clone())
    }

    /// Runs one statement once for each item of `seq_of_parameters`;
    /// `rowcount` is then the sum of the rows each changed.
    fn executemany<'py>(
        slf: &Bound<'py, Self>,
        query: &str,
        seq_of_parameters: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        let this = slf.get();
        let py = slf.py();
        this.forget_result();
        let mut total = 0_i64;
        let mut last = None;
        for params in seq_of_parameters.try_iter()? {
            let (rows, count) = this.run(py, query, Some(&params?))?;
            total += count.max(0);
            last = rows;
        }
        let mut state = this.state();
        // a query run many times: the last one's rows can be fetched
        state.columns = last.as_ref().map(columns_of);
        state.rowcount = if last.is_some() { -1 } else { total };
        state.rows = last;
        Ok(slf.clone())
    }

    /// The next row as a tuple, or `None` when there are no more.
    fn fetchone<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let rows = self.fetch(py, Some(1))?;
        if rows.len()? == 0 {
            return Ok(None);
        }
        Ok(Some(rows.get_item(0)?))
    }

    /// The next `size` rows (`arraysize` if not given) as a list of tuples;
    /// fewer, or none, at the end.
    #[pyo3(signature = (size=None))]
    fn fetchmany<'py>(&self, py: Python<'py>, size: Option<usize>) -> PyResult<Bound<'py, PyAny>> {
        let size = size.unwrap_or_else(|| self.state().arraysize);
        self.fetch(py, Some(size))
    }

    /// Every row left, as a list of tuples.
    fn fetchall<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.fetch(py, None)
    }

    /// The rows left as a `pyarrow.Table`.
    fn fetch_arrow_table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (schema, batches) = self.rest(py)?;
        PyTable::try_new(batches, schema)?.into_pyarrow(py)
    }

    /// The rows left as a `pyarrow.Table` (as `fetch_arrow_table()`).
    fn arrow<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.fetch_arrow_table(py)
    }

    /// The rows left as a pandas DataFrame.
    fn df<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.fetch_arrow_table(py)?.call_method0("to_pandas")
    }

    /// The rows left as a pandas DataFrame (as `df()`).
    fn fetchdf<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.df(py)
    }

    /// The rows left as a Polars DataFrame.
    fn pl<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("polars")?.call_method1("from_arrow", (self.fetch_arrow_table(py)?,))
    }

    /// One 7-item tuple per column of the last result (`name`, `type_code`
    /// (the SQL type, which compares equal to the module's `STRING`,
    /// `NUMBER`, `DATETIME`, `BINARY` objects), three `None`s, and
    /// `null_ok`), or `None` if the last statement returned no rows.
    #[getter]
    fn description<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let state = self.state();
        let Some(columns) = &state.columns else { return Ok(None) };
        let items = columns
            .iter()
            .map(|(name, ty, nullable)| {
                PyTuple::new(
                    py,
                    [
                        name.into_pyobject(py)?.into_any(),
                        ty.into_pyobject(py)?.into_any(),
                        py.None().into_bound(py),
                        py.None().into_bound(py),
                        py.None().into_bound(py),
                        py.None().into_bound(py),
                        pyo3::types::PyBool::new(py, *nullable).to_owned().into_any(),
                    ],
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Some(PyList::new(py, items)?))
    }

    /// The number of rows the last `INSERT`, `UPDATE`, `DELETE` or `MERGE`
    /// changed; -1 after a query or before any statement.
    #[getter]
    fn rowcount(&self) -> i64 {
        self.state().rowcount
    }

    /// How many rows `fetchmany()` returns by default (1).
    #[getter]
    fn get_arraysize(&self) -> usize {
        self.state().arraysize
    }

    #[setter]
    fn set_arraysize(&self, size: usize) -> PyResult<()> {
        if size == 0 {
            return Err(ProgrammingError::new_err("arraysize must be at least 1"));
        }
        self.state().arraysize = size;
        Ok(())
    }

    /// The connection the cursor runs on.
    #[getter]
    fn connection(&self, py: Python<'_>) -> Py<Connection> {
        self.connection.clone_ref(py)
    }

    /// Does nothing (PEP 249 lets a driver ignore it).
    #[allow(clippy::unused_self, reason = "PEP 249 makes it a method of the cursor")]
    #[pyo3(signature = (*_sizes))]
    fn setinputsizes(&self, _sizes: &Bound<'_, PyTuple>) {}

    /// Does nothing (PEP 249 lets a driver ignore it).
    #[allow(clippy::unused_self, reason = "PEP 249 makes it a method of the cursor")]
    #[pyo3(signature = (_size, _column=None))]
    fn setoutputsize(&self, _size: &Bound<'_, PyAny>, _column: Option<&Bound<'_, PyAny>>) {}

    /// Closes the cursor and its open result; later calls raise
    /// `pintail.InterfaceError`.
    fn close(&self) {
        let mut state = self.state();
        state.rows = None;
        state.closed = true;
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.fetchone(py)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }
}

/// `(name, SQL type, nullable)` of each column of a result.
fn columns_of(rows: &Rows) -> Vec<(String, String, bool)> {
    rows.schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), pintail_format::types::sql_type_name(f.data_type()), f.is_nullable()))
        .collect()
}

/// The error for a fetch with no result to read.
fn no_result() -> PyErr {
    ProgrammingError::new_err("there is no result to fetch: the last statement returned no rows, or none ran")
}
