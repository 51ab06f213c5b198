//! Replacement scans: Python variables as tables.
//!
//! `con.sql("SELECT * FROM df")` reads the pandas or Polars DataFrame,
//! Polars LazyFrame, PyArrow Table, RecordBatchReader or Dataset, or any
//! object with `__arrow_c_stream__`, bound to `df` in the calling code,
//! when the session has no table named `df`. The variable is looked up when
//! the statement is made (the caller's locals, then its globals, then those
//! of the frames further out, as DuckDB does), and read through the Arrow
//! C stream interface each time the query runs: the query gets the
//! object's own buffers, with no copy.
//!
//! A stream is opened once when the variable is found, to learn its
//! columns, and that stream serves the first scan; each later scan asks
//! the object for a new one, so a relation over a DataFrame can run again,
//! and one over a `RecordBatchReader` (which can be read once) says so.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{RecordBatch, RecordBatchOptions, RecordBatchReader};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use pintail_core::datafusion::catalog::TableProvider;
use pintail_core::datafusion::catalog::streaming::StreamingTable;
use pintail_core::datafusion::catalog::view::ViewTable;
use pintail_core::datafusion::error::DataFusionError;
use pintail_core::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use pintail_core::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use pintail_core::datafusion::physical_plan::streaming::PartitionStream;
use pintail_core::datafusion::sql::sqlparser::keywords::Keyword;
use pintail_core::datafusion::sql::sqlparser::tokenizer::Token;
use pintail_core::{Session, Statement};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use pyo3::intern;
use pyo3_arrow::PyRecordBatchReader;

use crate::errors::IntoPyResult;
use crate::relation::Relation;
use crate::run::block_on;

/// The tables for the names in `statement` that are no table of `session`
/// and are bound, in the calling Python code, to Arrow data.
pub(crate) fn tables_for(
    py: Python<'_>,
    session: &Session,
    statement: &Statement,
) -> PyResult<Vec<(String, Arc<dyn TableProvider>)>> {
    let tokens = statement.tokens();
    // `name AS (`: a common table expression, which a variable never replaces
    let ctes: HashSet<&str> = tokens
        .windows(3)
        .filter_map(|w| match (&w[0].token, &w[1].token, &w[2].token) {
            (Token::Word(name), Token::Word(kw), Token::LParen) if kw.keyword == Keyword::AS => Some(name.value.as_str()),
            _ => None,
        })
        .collect();
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for t in tokens {
        let Token::Word(w) = &t.token else { continue };
        if !matches!(w.quote_style, None | Some('"'))
            || (w.quote_style.is_none() && NEVER_A_TABLE.contains(&w.keyword))
            || !is_identifier(&w.value)
            || ctes.contains(w.value.as_str())
            || !seen.insert(w.value.as_str())
        {
            continue;
        }
        let as_table = if w.quote_style.is_some() { w.value.clone() } else { w.value.to_lowercase() };
        if !session.context().table_exist(as_table.as_str()).unwrap_or(false) {
            names.push(w.value.as_str());
        }
    }
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let found = find_variables(py, &names)?;
    let mut out = Vec::new();
    for (name, value) in names.into_iter().zip(found) {
        let Some(value) = value else { continue };
        // a relation: its query, planned as a view
        if let Ok(relation) = value.cast::<Relation>() {
            let (inner, sql, bindings) = relation.get().parts()?;
            let plan = block_on(py, async move { inner.plan_relation_with(&sql, bindings).await })?.py_err()?;
            out.push((name.to_string(), Arc::new(ViewTable::new(plan, None)) as Arc<dyn TableProvider>));
            continue;
        }
        let Some(source) = Source::of(&value)? else { continue };
        let first = source.open(&value)?;
        let schema = without_metadata(&first.schema());
        let stream = Arc::new(PythonStream {
            name: name.to_string(),
            object: value.unbind(),
            source,
            schema: Arc::clone(&schema),
            first: Mutex::new(Some(first)),
        });
        let table = StreamingTable::try_new(schema, vec![stream])
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        out.push((name.to_string(), Arc::new(table) as Arc<dyn TableProvider>));
    }
    Ok(out)
}

/// Keywords that, unquoted, begin or join a clause and so never name a
/// table: no variable is looked up for them (`SELECT 42` looks up none).
const NEVER_A_TABLE: &[Keyword] = &[
    Keyword::SELECT,
    Keyword::FROM,
    Keyword::WHERE,
    Keyword::GROUP,
    Keyword::BY,
    Keyword::HAVING,
    Keyword::ORDER,
    Keyword::LIMIT,
    Keyword::OFFSET,
    Keyword::AS,
    Keyword::AND,
    Keyword::OR,
    Keyword::NOT,
    Keyword::NULL,
    Keyword::TRUE,
    Keyword::FALSE,
    Keyword::ON,
    Keyword::JOIN,
    Keyword::UNION,
    Keyword::EXCEPT,
    Keyword::INTERSECT,
    Keyword::DISTINCT,
    Keyword::CASE,
    Keyword::WHEN,
    Keyword::THEN,
    Keyword::ELSE,
    Keyword::END,
    Keyword::IN,
    Keyword::IS,
    Keyword::LIKE,
    Keyword::BETWEEN,
    Keyword::WITH,
    Keyword::INSERT,
    Keyword::INTO,
    Keyword::VALUES,
];

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// The value each of `names` is bound to in the nearest frame outside this
/// package that binds it (its locals, then its globals), going outwards:
/// one walk of the frames for all of them.
fn find_variables<'py>(py: Python<'py>, names: &[&str]) -> PyResult<Vec<Option<Bound<'py, PyAny>>>> {
    static GETFRAME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let getframe = GETFRAME.get_or_try_init(py, || py.import("sys")?.getattr("_getframe").map(Bound::unbind))?;
    let mut found: Vec<Option<Bound<'py, PyAny>>> = vec![None; names.len()];
    let mut left = names.len();
    let mut frame = Some(getframe.bind(py).call1((0,))?);
    while let Some(f) = frame.filter(|f| !f.is_none() && left > 0) {
        let globals = f.getattr(intern!(py, "f_globals"))?.cast_into::<PyDict>()?;
        let module: Option<String> = globals.get_item(intern!(py, "__name__"))?.and_then(|n| n.extract().ok());
        let ours = module.as_deref().is_some_and(|m| m == "pintail" || m.starts_with("pintail."));
        if !ours {
            let locals = f.getattr(intern!(py, "f_locals"))?;
            for (name, slot) in names.iter().zip(found.iter_mut()).filter(|(_, slot)| slot.is_none()) {
                let value = if locals.contains(*name)? { Some(locals.get_item(*name)?) } else { globals.get_item(*name)? };
                if value.is_some() {
                    *slot = value;
                    left -= 1;
                }
            }
        }
        frame = Some(f.getattr(intern!(py, "f_back"))?);
    }
    Ok(found)
}

/// `schema` without its schema-level metadata: pandas writes its own
/// there, which a table written from the rows must not inherit (Delta
/// tables refuse rows whose schema differs from theirs in it).
pub(crate) fn without_metadata(schema: &SchemaRef) -> SchemaRef {
    if schema.metadata().is_empty() {
        return Arc::clone(schema);
    }
    Arc::new(Schema::new(schema.fields().clone()))
}

/// `batch`'s columns under `schema` (the same fields): no data is copied.
pub(crate) fn with_schema(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::clone(schema), batch.columns().to_vec(), &options)
}

/// How an object gives its rows as an Arrow stream.
enum Source {
    /// `__arrow_c_stream__()`: a PyArrow Table or reader, a Polars
    /// DataFrame, a pandas DataFrame (pandas 2.2 and later), ...
    Stream,
    /// A pandas DataFrame without `__arrow_c_stream__`: through
    /// `pyarrow.Table.from_pandas`.
    Pandas,
    /// A Polars LazyFrame: collected for each scan.
    LazyFrame,
    /// A PyArrow Dataset: a scanner's reader for each scan.
    Dataset,
    /// A reader (`pyarrow.RecordBatchReader`, ...): read once.
    Reader,
}

impl Source {
    /// How `value` is read, or `None` if it is not Arrow data.
    fn of(value: &Bound<'_, PyAny>) -> PyResult<Option<Self>> {
        let ty = value.get_type();
        let module = ty.module()?.to_string();
        let name = ty.name()?.to_string();
        if name == "LazyFrame" && module.starts_with("polars") {
            return Ok(Some(Self::LazyFrame));
        }
        if module.starts_with("pyarrow") && value.hasattr("scanner")? && value.hasattr("schema")? {
            return Ok(Some(Self::Dataset));
        }
        if value.hasattr("__arrow_c_stream__")? {
            return Ok(Some(if name.ends_with("Reader") { Self::Reader } else { Self::Stream }));
        }
        if name == "DataFrame" && module.starts_with("pandas") {
            return Ok(Some(Self::Pandas));
        }
        Ok(None)
    }

    /// A new stream of `value`'s rows.
    fn open(&self, value: &Bound<'_, PyAny>) -> PyResult<Box<dyn RecordBatchReader + Send>> {
        let py = value.py();
        let stream = match self {
            Self::Stream | Self::Reader => value.clone(),
            Self::Pandas => py.import("pyarrow")?.getattr("Table")?.call_method1("from_pandas", (value,))?,
            Self::LazyFrame => value.call_method0("collect")?,
            Self::Dataset => value.call_method0("scanner")?.call_method0("to_reader")?,
        };
        stream.extract::<PyRecordBatchReader>()?.into_reader()
    }
}

/// One Python object's rows, as the single partition of a table.
struct PythonStream {
    name: String,
    object: Py<PyAny>,
    source: Source,
    schema: SchemaRef,
    /// The stream opened when the variable was found, for the first scan.
    first: Mutex<Option<Box<dyn RecordBatchReader + Send>>>,
}

impl std::fmt::Debug for PythonStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonStream").field("name", &self.name).finish_non_exhaustive()
    }
}

impl PythonStream {
    fn reader(&self) -> Result<Box<dyn RecordBatchReader + Send>, DataFusionError> {
        if let Some(first) = self.first.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Ok(first);
        }
        if matches!(self.source, Source::Reader) {
            return Err(DataFusionError::Execution(format!(
                "the Python variable '{}' is a reader, which can be read once, and was read\nhint: make the reader again, \
                 or read it into a table first (reader.read_all())",
                self.name
            )));
        }
        let reader = Python::attach(|py| self.source.open(self.object.bind(py)))
            .map_err(|e| DataFusionError::Execution(format!("cannot read the Python variable '{}': {e}", self.name)))?;
        if reader.schema().fields() != self.schema.fields() {
            return Err(DataFusionError::Execution(format!(
                "the Python variable '{}' has other columns than when the query was made\nhint: make the query again",
                self.name
            )));
        }
        Ok(reader)
    }
}

impl PartitionStream for PythonStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches: Box<dyn Iterator<Item = _> + Send> = match self.reader() {
            Ok(reader) => {
                let schema = Arc::clone(&self.schema);
                Box::new(reader.map(move |b| Ok(with_schema(&b?, &schema)?)))
            }
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.schema), futures::stream::iter(batches)))
    }
}
