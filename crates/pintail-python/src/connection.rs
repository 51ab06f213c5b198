//! `Connection`: one Pintail session, in memory or on a database.
//!
//! A connection is shared freely between threads: each call clones the
//! session handle (an `Arc`) and runs without the GIL, so two threads'
//! queries on one connection run at once, as on two connections. `close()`
//! drops the connection's handle; queries already running finish with
//! their own.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use arrow::array::RecordBatchReader;
use pintail_core::datafusion::catalog::TableProvider;
use pintail_core::datafusion::common::ScalarValue;
use pintail_core::datafusion::datasource::MemTable;
use pintail_core::{Bindings, Error, SettingName, Session, Settings, Statement, StatementKind, split_statements};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::PyRecordBatchReader;

use crate::errors::{CatalogError, IntoPyResult, InvalidOptionError, closed};
use crate::cursor::Cursor;
use crate::params::scalars;
use crate::relation::{Relation, one_statement, open_statement, quote_identifier, quote_string};
use crate::replacement::{tables_for, with_schema, without_metadata};
use crate::run::{ProgressMode, block_on, block_on_progress};

/// A connection to an in-memory session or a database directory.
///
/// `pintail.connect()` makes one; `pintail.connect("my.db")` opens (or
/// creates) a database of Delta Lake tables. Use it as a context manager
/// to close it at the end of a `with` block.
#[pyclass(frozen, module = "pintail")]
pub struct Connection {
    session: RwLock<Option<Session>>,
    /// The tables `register()` made, by name: bound to every statement, so
    /// they are found from any current schema, before Python variables.
    registered: RwLock<Vec<(String, Arc<dyn TableProvider>)>>,
    /// When a long query shows a progress line (`progress_bar` in config).
    pub(crate) progress: ProgressMode,
}

impl Connection {
    pub(crate) fn session(&self) -> PyResult<Session> {
        self.session.read().unwrap_or_else(PoisonError::into_inner).clone().ok_or_else(closed)
    }
}

#[pymethods]
impl Connection {
    /// Opens a connection: in memory without `path`, else to the database
    /// directory at `path` (created if missing, unless `read_only`).
    /// `config` maps setting names (`threads`, `memory_limit`,
    /// `temp_directory`, or any `datafusion.*` option) to values.
    #[new]
    #[pyo3(signature = (path=None, *, read_only=false, config=None))]
    fn new(py: Python<'_>, path: Option<PathBuf>, read_only: bool, config: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut settings = Settings::for_this_machine();
        let mut others = Vec::new();
        let mut progress = ProgressMode::Auto;
        for (key, value) in config.map(|c| c.iter().collect::<Vec<_>>()).unwrap_or_default() {
            let name: String = key.extract().map_err(|_| InvalidOptionError::new_err("config keys must be strings"))?;
            if name == "progress_bar" {
                progress = ProgressMode::from_setting(&value)?;
                continue;
            }
            let value = setting_value(&name, &value)?;
            match SettingName::parse(&name) {
                Some(setting) => settings.set(setting, &value).py_err()?,
                None => others.push((name, value)),
            }
        }
        let session = Session::with_settings(settings).py_err()?;
        pintail_storage::install(&session);
        for (name, value) in others {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                return Err(InvalidOptionError::new_err(format!("'{name}' is not a setting name")));
            }
            let set = format!("SET {name} = {}", quote_string(&value));
            let s = session.clone();
            block_on(py, async move { s.sql(&set).await?.drain().await })?.py_err()?;
        }
        if let Some(path) = path {
            let options = pintail_storage::AttachOptions { name: None, read_only };
            pintail_storage::open_with(&session, &path, &options).py_err()?;
        } else if read_only {
            return Err(InvalidOptionError::new_err("read_only needs a database path"));
        }
        Ok(Self {
            session: RwLock::new(Some(session)),
            registered: RwLock::new(Vec::new()),
            progress,
        })
    }

    /// Runs `query` (one statement, or several separated by `;`). A query
    /// that returns rows (`SELECT`, `WITH`, `VALUES`, `FROM`, `DESCRIBE`,
    /// `SUMMARIZE`, `SHOW`, `EXPLAIN`) comes back as a `Relation`, which
    /// runs when its rows are asked for; anything else (`CREATE`, `INSERT`,
    /// `COPY`, `SET`, ...) runs at once and returns `None`. Statements
    /// before the last run at once, in order. `params` (a list or tuple)
    /// are bound to the `?` or `$1`, `$2`, ... placeholders of a single
    /// statement as typed values.
    #[pyo3(signature = (query, params=None))]
    fn sql(&self, py: Python<'_>, query: &str, params: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Relation>> {
        let session = self.session()?;
        let values = scalars(params)?;
        let statements = if values.is_empty() {
            split_statements(query).py_err()?
        } else {
            vec![one_statement(query).py_err()?]
        };
        let Some((last, first)) = statements.split_last() else { return Ok(None) };
        for statement in first {
            self.run_now(py, &session, statement.clone())?;
        }
        let (last, _) = last.with_numbered_parameters().py_err()?;
        let bindings = self.bindings(py, &session, &last, values)?;
        if let Some(composable) = returns_rows(&last) {
            return Ok(Some(Relation::new(session, last.text().to_string(), bindings, composable, self.progress)));
        }
        let result = open_statement(py, &session, last, &bindings)?;
        let progress = Some((result.progress(), self.progress));
        block_on_progress(py, result.drain(), progress)?.py_err()?;
        Ok(None)
    }

    /// A new DB-API cursor on this connection.
    fn cursor(slf: Py<Self>) -> Cursor {
        Cursor::new(slf)
    }

    /// Runs one statement on a new cursor, with `parameters` bound to its
    /// placeholders, and returns the cursor: `con.execute(q, [1]).fetchall()`.
    #[pyo3(signature = (query, parameters=None))]
    fn execute<'py>(
        slf: &Bound<'py, Self>,
        query: &str,
        parameters: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cursor = Bound::new(slf.py(), Cursor::new(slf.clone().unbind()))?;
        cursor.call_method1("execute", (query, parameters))
    }

    /// Runs one statement once per item of `seq_of_parameters` on a new
    /// cursor, and returns the cursor.
    fn executemany<'py>(
        slf: &Bound<'py, Self>,
        query: &str,
        seq_of_parameters: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cursor = Bound::new(slf.py(), Cursor::new(slf.clone().unbind()))?;
        cursor.call_method1("executemany", (query, seq_of_parameters))
    }

    /// Commits the open transaction (`BEGIN`), if there is one; statements
    /// outside a transaction commit on their own.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.end_transaction(py, "COMMIT")
    }

    /// Rolls back the open transaction, if there is one.
    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        self.end_transaction(py, "ROLLBACK")
    }

    /// The table or view `name` (`"t"`, `"schema.t"`, `"db.schema.t"`) as a
    /// relation.
    fn table(&self, py: Python<'_>, name: &str) -> PyResult<Relation> {
        let session = self.session()?;
        let quoted = name.split('.').map(quote_identifier).collect::<Vec<_>>().join(".");
        let sql = format!("SELECT * FROM {quoted}");
        let bindings = self.bindings(py, &session, &one_statement(&sql).py_err()?, Vec::new())?;
        let (s, planned, b) = (session.clone(), sql.clone(), bindings.clone());
        block_on(py, async move { s.plan_relation_with(&planned, b).await })?
            .map_err(|e| CatalogError::new_err(format!("no table or view '{name}': {}", e.message())))?;
        Ok(Relation::new(session, sql, bindings, true, self.progress))
    }

    /// Parquet files (a path, a glob or a URL) as a relation; `options` are
    /// those of SQL's `read_parquet` (`hive_partitioning=True`, ...).
    #[pyo3(signature = (path, **options))]
    fn read_parquet(&self, path: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Relation> {
        self.read("read_parquet", path, options)
    }

    /// CSV files as a relation; `options` are those of SQL's `read_csv`
    /// (`delim="|"`, `header=False`, ...).
    #[pyo3(signature = (path, **options))]
    fn read_csv(&self, path: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Relation> {
        self.read("read_csv", path, options)
    }

    /// JSON or JSON lines files as a relation; `options` are those of SQL's
    /// `read_json`.
    #[pyo3(signature = (path, **options))]
    fn read_json(&self, path: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Relation> {
        self.read("read_json", path, options)
    }

    /// Makes the Arrow data in `data` (a `pyarrow.Table`, a pandas or
    /// Polars DataFrame, or anything with `__arrow_c_stream__`) a table
    /// named `name` for this connection's statements, replacing one of that
    /// name; a table of the database with the same name comes first. The
    /// batches are imported without copying their buffers.
    fn register(&self, py: Python<'_>, name: &str, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.session()?;
        let reader = arrow_stream(data)?;
        let schema = without_metadata(&reader.schema());
        let batches = py
            .detach(|| reader.map(|b| with_schema(&b?, &schema)).collect::<Result<Vec<_>, _>>())
            .map_err(to_py_error)?;
        let table: Arc<dyn TableProvider> = Arc::new(MemTable::try_new(schema, vec![batches]).map_err(to_py_error)?);
        let mut registered = self.registered.write().unwrap_or_else(PoisonError::into_inner);
        registered.retain(|(n, _)| n != name);
        registered.push((name.to_string(), table));
        Ok(())
    }

    /// Removes a table made by `register()`.
    fn unregister(&self, name: &str) -> PyResult<()> {
        self.session()?;
        let mut registered = self.registered.write().unwrap_or_else(PoisonError::into_inner);
        let before = registered.len();
        registered.retain(|(n, _)| n != name);
        if registered.len() == before {
            return Err(CatalogError::new_err(format!("no registered table '{name}'")));
        }
        Ok(())
    }

    /// Closes the connection; later calls raise `pintail.InterfaceError`.
    /// Closing twice is harmless.
    fn close(&self) {
        self.session.write().unwrap_or_else(PoisonError::into_inner).take();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }
}

impl Connection {
    fn end_transaction(&self, py: Python<'_>, verb: &str) -> PyResult<()> {
        let session = self.session()?;
        if !pintail_storage::install(&session).in_transaction() {
            return Ok(());
        }
        let statement = one_statement(verb).py_err()?;
        self.run_now(py, &session, statement)
    }

    fn read(&self, function: &str, path: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Relation> {
        let session = self.session()?;
        let mut args = vec![quote_string(path)];
        for (key, value) in options.map(|o| o.iter().collect::<Vec<_>>()).unwrap_or_default() {
            let key: String = key.extract()?;
            args.push(format!("{key} => {}", sql_literal(&key, &value)?));
        }
        let sql = format!("SELECT * FROM {function}({})", args.join(", "));
        Ok(Relation::new(session, sql, Bindings::default(), true, self.progress))
    }
}

impl Connection {
    /// What `statement` runs with: `params`, the registered tables, and the
    /// Python variables it names.
    pub(crate) fn bindings(
        &self,
        py: Python<'_>,
        session: &Session,
        statement: &Statement,
        params: Vec<ScalarValue>,
    ) -> PyResult<Bindings> {
        let mut tables = self.registered.read().unwrap_or_else(PoisonError::into_inner).clone();
        for (name, table) in tables_for(py, session, statement)? {
            if !tables.iter().any(|(n, _)| *n == name) {
                tables.push((name, table));
            }
        }
        Ok(Bindings { params, tables })
    }

    /// Runs a statement to its end.
    fn run_now(&self, py: Python<'_>, session: &Session, statement: Statement) -> PyResult<()> {
        let bindings = self.bindings(py, session, &statement, Vec::new())?;
        let session = session.clone();
        block_on(py, async move { session.execute_with(&statement, bindings).await?.drain().await })?.py_err()
    }
}

/// Whether a statement returns rows, and if so whether it is a query that
/// can be wrapped in another `SELECT`; `None` for one that only does
/// something.
pub(crate) fn returns_rows(statement: &Statement) -> Option<bool> {
    use pintail_core::datafusion::sql::sqlparser::keywords::Keyword;
    use pintail_core::datafusion::sql::sqlparser::tokenizer::Token;
    match statement.kind() {
        StatementKind::Summarize | StatementKind::Describe | StatementKind::Show => Some(false),
        StatementKind::Copy | StatementKind::Set | StatementKind::Reset => None,
        StatementKind::Other => match statement.tokens().first().map(|t| &t.token) {
            Some(Token::LParen) => Some(true),
            Some(Token::Word(w)) => match w.keyword {
                Keyword::SELECT | Keyword::WITH | Keyword::VALUES | Keyword::FROM => Some(true),
                Keyword::EXPLAIN => Some(false),
                _ => None,
            },
            _ => None,
        },
    }
}

/// A Python value given for a setting, as the text `SET` takes.
fn setting_value(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(b) = value.extract::<bool>() {
        return Ok(b.to_string());
    }
    if let Ok(i) = value.extract::<i64>() {
        return Ok(i.to_string());
    }
    if let Ok(s) = value.extract::<String>() {
        return Ok(s);
    }
    Err(InvalidOptionError::new_err(format!(
        "config '{name}': expected a string, an integer or a boolean, not {}",
        value.get_type().name()?
    )))
}

/// A Python value given as a table-function option, as a SQL literal.
fn sql_literal(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    if value.is_none() {
        return Ok("NULL".into());
    }
    if let Ok(b) = value.extract::<bool>() {
        return Ok(if b { "true" } else { "false" }.into());
    }
    if let Ok(i) = value.extract::<i64>() {
        return Ok(i.to_string());
    }
    if let Ok(f) = value.extract::<f64>()
        && f.is_finite()
    {
        return Ok(format!("{f:?}"));
    }
    if let Ok(s) = value.extract::<String>() {
        return Ok(quote_string(&s));
    }
    if let Ok(items) = value.extract::<Vec<Bound<'_, PyAny>>>() {
        let items = items.iter().map(|v| sql_literal(name, v)).collect::<PyResult<Vec<_>>>()?;
        return Ok(format!("[{}]", items.join(", ")));
    }
    Err(InvalidOptionError::new_err(format!(
        "option '{name}': expected a string, a number, a boolean, None or a list of them, not {}",
        value.get_type().name()?
    )))
}

/// An Arrow stream over `data`: anything with `__arrow_c_stream__`, or a
/// pandas DataFrame (through `pyarrow.Table.from_pandas`).
fn arrow_stream(data: &Bound<'_, PyAny>) -> PyResult<Box<dyn RecordBatchReader + Send>> {
    let py = data.py();
    let stream = if data.hasattr("__arrow_c_stream__")? {
        data.clone()
    } else if py.import("sys")?.getattr("modules")?.contains("pandas")?
        && data.is_instance(&py.import("pandas")?.getattr("DataFrame")?)?
    {
        py.import("pyarrow")?.getattr("Table")?.call_method1("from_pandas", (data,))?
    } else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "expected Arrow data (a pyarrow Table, a pandas or Polars DataFrame, or an object with \
             __arrow_c_stream__), not {}",
            data.get_type().name()?
        )));
    };
    stream.extract::<PyRecordBatchReader>()?.into_reader()
}

fn to_py_error(e: impl Into<Error>) -> PyErr {
    crate::errors::to_py(&e.into())
}
