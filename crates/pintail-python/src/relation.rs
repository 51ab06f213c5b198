//! `Relation`: a query that runs when its rows are asked for.
//!
//! A relation is the text of one statement that returns rows, with the
//! session to run it in. Nothing runs when it is made or composed; each
//! `to_arrow()`, `fetchall()` or Arrow export runs it again, so it always
//! shows the data as it is now. Composing (`filter`, `project`, `order`,
//! ...) wraps the query in another `SELECT`, which DataFusion's optimizer
//! flattens, so a chain of calls costs the same as the one query written
//! out. `fetchone()` and `fetchmany()` keep an open result between calls,
//! reading one batch at a time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{ArrayRef, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::error::ArrowError;
use futures::StreamExt;
use pintail_core::{Bindings, Error, ErrorKind, QueryResult, Session, Statement, split_statements};
use pintail_format::{OutputMode, TableLimits};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyList};
use pyo3_arrow::PyTable;
use pyo3_arrow::ffi::{ArrayIterator, to_stream_pycapsule};

use crate::errors::{IntoPyResult, NotSupportedError};
use crate::replacement::tables_for;
use crate::tuples::tuples;
use crate::run::{ProgressMode, block_on, block_on_detached, block_on_progress};

/// The name a composed relation gives the one it wraps.
const INNER: &str = "pintail_relation";

/// A query, run when its rows are asked for (and each time they are).
///
/// Made by `Connection.sql()`, `Connection.table()` and the `read_*`
/// methods. Compose with `filter()`, `project()`, `aggregate()`, `order()`,
/// `limit()` and `sql()`; read with `to_arrow()`, `df()`, `pl()`,
/// `fetchall()`, `fetchone()`, `fetchmany()`, or hand it to anything that
/// takes an Arrow stream (`pyarrow.table(rel)`, `polars.DataFrame(rel)`).
#[pyclass(frozen, module = "pintail")]
pub struct Relation {
    session: Session,
    sql: String,
    /// The values of the query's `$n` placeholders, and the Python
    /// variables it reads.
    bindings: Bindings,
    /// The `ORDER BY` list the rows come in, kept apart from the text so
    /// that relations composed on this one keep the order (a subquery's
    /// `ORDER BY` does not order the query around it).
    order: Option<String>,
    /// `LIMIT` and `OFFSET` after the order, kept apart like it.
    limit: Option<(u64, u64)>,
    /// When a long run shows a progress line.
    progress: ProgressMode,
    /// Whether the text is a query that can be wrapped in another `SELECT`
    /// (not `DESCRIBE`, `SUMMARIZE`, `SHOW` or `EXPLAIN`).
    composable: bool,
    /// The open result of `fetchone()` / `fetchmany()`.
    cursor: Mutex<Option<Rows>>,
}

/// A result being read a few rows at a time.
pub(crate) struct Rows {
    schema: SchemaRef,
    progress: ProgressMode,
    /// The result, until its end was read.
    result: Option<QueryResult>,
    /// Rows read from the result and not yet taken.
    pending: VecDeque<RecordBatch>,
}

impl Rows {
    pub(crate) fn new(result: QueryResult, progress: ProgressMode) -> Self {
        Self {
            schema: result.schema(),
            progress,
            result: Some(result),
            pending: VecDeque::new(),
        }
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The next `n` rows (all that are left, if `None`); fewer, or none, at
    /// the end.
    pub(crate) fn take(&mut self, py: Python<'_>, n: Option<usize>) -> PyResult<Vec<RecordBatch>> {
        let mut taken = Vec::new();
        let mut wanted = n.unwrap_or(usize::MAX);
        while wanted > 0 {
            if self.pending.is_empty() {
                let Some(mut result) = self.result.take() else { break };
                let progress = Some((result.progress(), self.progress));
                if n.is_none() {
                    // everything left, in one wait
                    self.pending.extend(block_on_progress(py, result.collect(), progress)?.py_err()?);
                    continue;
                }
                let (result, next) = block_on_progress(
                    py,
                    async move {
                        let next = result.next().await;
                        (result, next)
                    },
                    progress,
                )?;
                if let Some(batch) = next.transpose().py_err()? {
                    self.pending.push_back(batch);
                    self.result = Some(result);
                }
                continue;
            }
            let Some(batch) = self.pending.pop_front() else { break };
            if batch.num_rows() > wanted {
                self.pending.push_front(batch.slice(wanted, batch.num_rows() - wanted));
                taken.push(batch.slice(0, wanted));
                wanted = 0;
            } else {
                wanted -= batch.num_rows();
                taken.push(batch);
            }
        }
        Ok(taken)
    }
}

/// Runs the one statement `sql` with `bindings` and opens its result.
pub(crate) fn open(py: Python<'_>, session: &Session, sql: &str, bindings: &Bindings) -> PyResult<QueryResult> {
    open_statement(py, session, one_statement(sql).py_err()?, bindings)
}

/// Runs a statement already split off its text with `bindings` and opens
/// its result.
pub(crate) fn open_statement(
    py: Python<'_>,
    session: &Session,
    statement: Statement,
    bindings: &Bindings,
) -> PyResult<QueryResult> {
    let (session, bindings) = (session.clone(), bindings.clone());
    block_on(py, async move { session.execute_with(&statement, bindings).await })?.py_err()
}

/// The one statement of `sql`.
pub(crate) fn one_statement(sql: &str) -> Result<Statement, Error> {
    let mut statements = split_statements(sql)?;
    match (statements.pop(), statements.is_empty()) {
        (Some(one), true) => Ok(one),
        (None, _) => Err(Error::new(ErrorKind::Syntax, "no statement to run")),
        (Some(_), false) => Err(Error::new(ErrorKind::Syntax, "parameters can be given to one statement only")
            .with_hint("run the other statements first, without parameters")),
    }
}

impl Relation {
    /// A relation running `sql` (one statement, its `?` placeholders
    /// already numbered) with `bindings`.
    pub(crate) fn new(session: Session, sql: String, bindings: Bindings, composable: bool, progress: ProgressMode) -> Self {
        Self {
            progress,
            session,
            sql,
            bindings,
            order: None,
            limit: None,
            composable,
            cursor: Mutex::new(None),
        }
    }

    /// The whole query: the text, its order and its limit.
    fn text(&self) -> String {
        let mut text = self.sql.clone();
        if let Some(order) = &self.order {
            text = format!("{text}\nORDER BY {order}");
        }
        if let Some((n, offset)) = self.limit {
            text = format!("{text}\nLIMIT {n} OFFSET {offset}");
        }
        text
    }

    /// A relation over this one's rows, in `order`, reading the Python
    /// variables it names besides those this one reads.
    fn wrap(&self, py: Python<'_>, sql: String, order: Option<String>) -> PyResult<Self> {
        self.check_composable()?;
        let mut bindings = self.bindings.clone();
        let statement = one_statement(&sql).py_err()?;
        for (name, table) in tables_for(py, &self.session, &statement)? {
            if !bindings.tables.iter().any(|(n, _)| *n == name) {
                bindings.tables.push((name, table));
            }
        }
        let mut out = Self::new(self.session.clone(), sql, bindings, true, self.progress);
        out.order = order;
        Ok(out)
    }

    /// The session, text and bindings of a relation that can be read as a
    /// table (planned as a view of another statement).
    pub(crate) fn parts(&self) -> PyResult<(Session, String, Bindings)> {
        self.check_composable()?;
        Ok((self.session.clone(), self.text(), self.bindings.clone()))
    }

    fn check_composable(&self) -> PyResult<()> {
        if self.composable {
            return Ok(());
        }
        Err(NotSupportedError::new_err(format!(
            "a relation made from '{}' cannot be composed\nhint: read it with .to_arrow() and register the result, \
             or write the query as a SELECT",
            first_words(&self.sql)
        )))
    }

    /// This relation as a subquery; its order is left to the query
    /// around it, unless it has a limit, which needs it.
    fn inner(&self) -> String {
        let body = if self.limit.is_some() { self.text() } else { self.sql.clone() };
        format!("(\n{body}\n) AS {INNER}")
    }

    fn run(&self, py: Python<'_>) -> PyResult<QueryResult> {
        open(py, &self.session, &self.text(), &self.bindings)
    }

    fn collect(&self, py: Python<'_>) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
        let result = self.run(py)?;
        let schema = result.schema();
        let progress = Some((result.progress(), self.progress));
        Ok((schema, block_on_progress(py, result.collect(), progress)?.py_err()?))
    }

    fn schema(&self, py: Python<'_>) -> PyResult<SchemaRef> {
        let (session, sql, bindings) = (self.session.clone(), self.text(), self.bindings.clone());
        if self.composable {
            let plan = block_on(py, async move { session.plan_relation_with(&sql, bindings).await })?.py_err()?;
            Ok(Arc::new(plan.schema().as_arrow().clone()))
        } else {
            // DESCRIBE and the like: their columns are known once they run
            Ok(self.run(py)?.schema())
        }
    }

    /// The result as a box table; the rows stream through the renderer,
    /// which keeps only those it shows.
    fn render(&self, py: Python<'_>) -> PyResult<String> {
        let failed = |e: std::io::Error| PyValueError::new_err(format!("cannot render the result: {e}"));
        let mut rows = Rows::new(self.run(py)?, self.progress);
        let mut buf = Vec::new();
        {
            let mut renderer =
                pintail_format::renderer(OutputMode::Box, rows.schema(), Box::new(&mut buf), TableLimits::default());
            loop {
                let batches = rows.take(py, Some(RENDER_CHUNK))?;
                if batches.is_empty() {
                    break;
                }
                for batch in &batches {
                    renderer.push(batch).map_err(failed)?;
                }
            }
            renderer.finish().map_err(failed)?;
        }
        String::from_utf8(buf).map_err(|e| PyValueError::new_err(format!("cannot render the result: {e}")))
    }

    /// The first [`HTML_ROWS`] rows, and how many there are in all.
    fn head(&self, py: Python<'_>) -> PyResult<(SchemaRef, Vec<RecordBatch>, usize)> {
        let mut rows = Rows::new(self.run(py)?, self.progress);
        let head = rows.take(py, Some(HTML_ROWS))?;
        let mut total: usize = head.iter().map(RecordBatch::num_rows).sum();
        loop {
            let more = rows.take(py, Some(RENDER_CHUNK))?;
            if more.is_empty() {
                break;
            }
            total += more.iter().map(RecordBatch::num_rows).sum::<usize>();
        }
        Ok((rows.schema(), head, total))
    }

    /// The next `n` rows (all, if `None`) of the open result as tuples,
    /// opening one if none is; `None` if the open result had no more.
    fn fetch<'py>(&self, py: Python<'py>, n: Option<usize>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let mut guard = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rows = match guard.take() {
            Some(rows) => rows,
            None => Rows::new(self.run(py)?, self.progress),
        };
        let schema = rows.schema();
        let taken = rows.take(py, n)?;
        // a result is closed by fetchall() or by a fetch that finds no more
        // rows (a short fetchmany() is not the end yet): the next fetch
        // runs the query again
        if n.is_some() && !taken.is_empty() {
            *guard = Some(rows);
        }
        drop(guard);
        if taken.is_empty() && n.is_some() {
            return Ok(None);
        }
        Ok(Some(tuples(py, &schema, &taken)?))
    }
}

#[pymethods]
impl Relation {
    /// The query's text.
    #[getter]
    fn sql_text(&self) -> String {
        self.text()
    }

    /// The names of the result's columns, found by planning the query.
    #[getter]
    fn columns(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(self.schema(py)?.fields().iter().map(|f| f.name().clone()).collect())
    }

    /// The SQL types of the result's columns (`BIGINT`, `VARCHAR`, ...).
    #[getter]
    fn types(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(self.schema(py)?.fields().iter().map(|f| pintail_format::types::sql_type_name(f.data_type())).collect())
    }

    /// Runs the query and returns its rows as a `pyarrow.Table`.
    fn to_arrow<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (schema, batches) = self.collect(py)?;
        PyTable::try_new(batches, schema)?.into_pyarrow(py)
    }

    /// The same as `to_arrow()`.
    fn arrow<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.to_arrow(py)
    }

    /// Runs the query and returns its rows as a pandas DataFrame.
    fn df<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.to_arrow(py)?.call_method0("to_pandas")
    }

    /// Runs the query and returns its rows as a Polars DataFrame.
    fn pl<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("polars")?.call_method1("from_arrow", (self.to_arrow(py)?,))
    }

    /// Runs the query and returns every row as a tuple; after
    /// `fetchone()`/`fetchmany()`, the rows they have not returned.
    fn fetchall<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.fetch(py, None)? {
            Some(rows) => Ok(rows),
            None => Ok(PyList::empty(py).into_any()),
        }
    }

    /// The next row as a tuple, or `None` after the last (the next call
    /// then runs the query again, as after `fetchall()`).
    fn fetchone<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.fetch(py, Some(1))? {
            Some(rows) => Ok(Some(rows.get_item(0)?)),
            None => Ok(None),
        }
    }

    /// The next `size` rows as tuples; fewer (or none) at the end.
    #[pyo3(signature = (size=1))]
    fn fetchmany<'py>(&self, py: Python<'py>, size: usize) -> PyResult<Bound<'py, PyAny>> {
        match self.fetch(py, Some(size))? {
            Some(rows) => Ok(rows),
            None => Ok(PyList::empty(py).into_any()),
        }
    }

    /// Prints the result as a table.
    fn show(&self, py: Python<'_>) -> PyResult<()> {
        let text = self.render(py)?;
        py.import("builtins")?.call_method1("print", (text.trim_end(),))?;
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.render(py)?.trim_end().to_string())
    }

    /// The result as an HTML table, for notebooks: the first rows, the
    /// types under the names, and how many rows there are.
    fn _repr_html_(&self, py: Python<'_>) -> PyResult<String> {
        let (schema, head, total) = self.head(py)?;
        html_table(&schema, &head, total).map_err(|e| PyValueError::new_err(format!("cannot render the result: {e}")))
    }

    /// The rows as an Arrow C stream, read batch by batch as the consumer
    /// asks: `pyarrow.table(rel)`, `polars.DataFrame(rel)`.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let result = self.run(py)?;
        let field = Arc::new(Field::new(
            "",
            DataType::Struct(result.schema().fields().clone()),
            false,
        ));
        let mut result = result;
        let batches = std::iter::from_fn(move || {
            let next = block_on_detached(result.next()).map_err(|e| ArrowError::ExternalError(Box::new(e)));
            match next {
                Ok(Some(Ok(batch))) => Some(Ok(Arc::new(StructArray::from(batch)) as ArrayRef)),
                Ok(Some(Err(e))) => Some(Err(ArrowError::ExternalError(Box::new(e)))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        });
        Ok(to_stream_pycapsule(py, Box::new(ArrayIterator::new(batches, field)), requested_schema)?)
    }

    /// The rows for which the SQL condition `condition` holds.
    fn filter(&self, py: Python<'_>, condition: &str) -> PyResult<Self> {
        self.wrap(py, format!("SELECT * FROM {} WHERE {condition}", self.inner()), self.order.clone())
    }

    /// The given SQL expressions as columns (`project("a", "b * 2 AS c")`).
    #[pyo3(signature = (*expressions))]
    #[allow(clippy::needless_pass_by_value, reason = "PyO3 gives *args as an owned Vec")]
    fn project(&self, py: Python<'_>, expressions: Vec<String>) -> PyResult<Self> {
        if expressions.is_empty() {
            return Err(PyValueError::new_err("project() needs at least one expression"));
        }
        self.wrap(py, format!("SELECT {} FROM {}", expressions.join(", "), self.inner()), self.order.clone())
    }

    /// The SQL aggregates `aggregates` (`"g, sum(x) AS total"`), grouped by
    /// `group_by` if given.
    #[pyo3(signature = (aggregates, group_by=None))]
    fn aggregate(&self, py: Python<'_>, aggregates: &str, group_by: Option<&str>) -> PyResult<Self> {
        let group = group_by.map(|g| format!(" GROUP BY {g}")).unwrap_or_default();
        self.wrap(py, format!("SELECT {aggregates} FROM {}{group}", self.inner()), None)
    }

    /// The rows sorted by the SQL `ORDER BY` list `order_by`; relations
    /// made from this one keep the order.
    fn order(&self, py: Python<'_>, order_by: &str) -> PyResult<Self> {
        let sql = if self.limit.is_some() { format!("SELECT * FROM {}", self.inner()) } else { self.sql.clone() };
        self.wrap(py, sql, Some(order_by.to_string()))
    }

    /// At most `n` rows, after skipping `offset`.
    #[pyo3(signature = (n, offset=0))]
    fn limit(&self, py: Python<'_>, n: u64, offset: u64) -> PyResult<Self> {
        let sql = if self.limit.is_some() { format!("SELECT * FROM {}", self.inner()) } else { self.sql.clone() };
        let mut out = self.wrap(py, sql, self.order.clone())?;
        out.limit = Some((n, offset));
        Ok(out)
    }

    /// A query over this relation, which it names `name`:
    /// `rel.sql("SELECT count(*) FROM rel")`.
    #[pyo3(signature = (query, *, name="rel"))]
    fn sql(&self, py: Python<'_>, query: &str, name: &str) -> PyResult<Self> {
        let quoted = quote_identifier(name);
        let trimmed = query.trim_start();
        // a query with its own WITH gets this relation as its first CTE
        let sql = match trimmed.get(..4) {
            Some(word) if word.eq_ignore_ascii_case("with") && trimmed[4..].starts_with(char::is_whitespace) => {
                format!("WITH {quoted} AS (\n{}\n), {}", self.text(), &trimmed[4..])
            }
            _ => format!("WITH {quoted} AS (\n{}\n) {trimmed}", self.text()),
        };
        self.wrap(py, sql, None)
    }

    /// Summary statistics of every column (Pintail's `SUMMARIZE`).
    fn describe(&self) -> PyResult<Self> {
        self.check_composable()?;
        Ok(Self::new(self.session.clone(), format!("SUMMARIZE {}", self.text()), self.bindings.clone(), false, self.progress))
    }

    /// Writes the rows to a Parquet file.
    fn write_parquet(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        self.copy_to(py, path, "parquet")
    }

    /// Writes the rows to a CSV file with a header row.
    fn write_csv(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        self.copy_to(py, path, "csv")
    }

    /// Writes the rows to a JSON lines file.
    fn write_json(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        self.copy_to(py, path, "json")
    }
}

impl Relation {
    fn copy_to(&self, py: Python<'_>, path: &str, format: &str) -> PyResult<()> {
        self.check_composable()?;
        let copy = format!("COPY ({}) TO {} (FORMAT {format})", self.text(), quote_string(path));
        let result = open(py, &self.session, &copy, &self.bindings)?;
        let progress = Some((result.progress(), self.progress));
        block_on_progress(py, result.drain(), progress)?.py_err()
    }
}

/// Rows an HTML table shows.
const HTML_ROWS: usize = 40;

/// Rows read from a result at a time while rendering it.
const RENDER_CHUNK: usize = 65_536;

/// `batches`, the first rows of a result of `total`, as an HTML table of
/// at most [`HTML_ROWS`] rows.
fn html_table(schema: &SchemaRef, batches: &[RecordBatch], total: usize) -> Result<String, ArrowError> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use std::fmt::Write as _;
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let mut out = String::from("<table class=\"pintail\">\n<thead><tr>");
    for field in schema.fields() {
        let ty = pintail_format::types::sql_type_name(field.data_type());
        let _ = write!(out, "<th>{}<br><small>{}</small></th>", escape(field.name()), escape(&ty));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let options = FormatOptions::default().with_null("NULL");
    let mut shown = 0;
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            if shown == HTML_ROWS {
                break;
            }
            out.push_str("<tr>");
            for f in &formatters {
                let _ = write!(out, "<td>{}</td>", escape(&f.value(row).try_to_string()?));
            }
            out.push_str("</tr>\n");
            shown += 1;
        }
    }
    let columns = schema.fields().len();
    let rows = if total == 1 { "row" } else { "rows" };
    let _ = write!(out, "</tbody>\n</table>\n<p>{total} {rows} × {columns} columns");
    if shown < total {
        let _ = write!(out, " ({shown} shown)");
    }
    out.push_str("</p>");
    Ok(out)
}

/// `text` as a SQL string literal.
pub(crate) fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The first two words of a statement, for messages.
fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}
