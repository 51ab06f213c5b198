//! The result of a statement: a schema and a stream of record batches.
//!
//! The stream converts DataFusion errors into Pintail's [`Error`] and turns a
//! panic while producing a batch into an internal error naming the query, so
//! no front end can be brought down by a bug in an operator. Dropping the
//! result cancels the query.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use futures::{Stream, StreamExt};

use crate::counted::BytesRead;
use crate::error::{Error, ErrorKind, Result};
use crate::settings::format_bytes;

/// What an out-of-memory error should say about the session's limits.
#[derive(Debug, Clone)]
pub(crate) struct MemoryContext {
    pub limit: u64,
    pub can_spill: bool,
}

impl MemoryContext {
    /// Rewrites an out-of-memory error to name the limit and say what to do.
    pub(crate) fn explain(&self, e: Error) -> Error {
        if e.kind() != ErrorKind::OutOfMemory || e.message().starts_with("the query needs") {
            return e;
        }
        let limit = format_bytes(self.limit);
        let detail = e.message().lines().next().unwrap_or_default().to_string();
        let err = Error::new(
            ErrorKind::OutOfMemory,
            format!("the query needs more memory than memory_limit ({limit}) allows: {detail}"),
        );
        if self.can_spill {
            err.with_hint("raise the limit with SET memory_limit = '...' (this operator could not spill to disk)")
        } else {
            err.with_hint(
                "raise the limit with SET memory_limit = '...', or let sorts, joins and aggregations spill to disk with SET temp_directory = '/some/dir'",
            )
        }
    }
}

/// How far a running query has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Rows produced so far by the plan's sources (file scans, after the
    /// filters they apply themselves).
    pub rows_scanned: u64,
    /// Bytes read from files and URLs by the session since the query
    /// started (by every query of the session running at the time).
    pub bytes_read: u64,
}

/// Reads a running query's [`Progress`]: cheap to clone, and usable from
/// another task or thread while the result is being consumed.
#[derive(Debug, Clone)]
pub struct ProgressHandle {
    // replaced when the query is planned again (see `join_fallback`)
    plan: Arc<Mutex<Option<Arc<dyn ExecutionPlan>>>>,
    read: Arc<BytesRead>,
    start: u64,
}

impl ProgressHandle {
    pub(crate) fn new(plan: Option<Arc<dyn ExecutionPlan>>, read: Arc<BytesRead>) -> Self {
        let start = read.get();
        Self {
            plan: Arc::new(Mutex::new(plan)),
            read,
            start,
        }
    }

    /// Counts rows from `plan` from now on, the query's plan having been
    /// made again.
    pub(crate) fn replace_plan(&self, plan: Arc<dyn ExecutionPlan>) {
        *self.plan.lock().unwrap_or_else(PoisonError::into_inner) = Some(plan);
    }

    /// The progress now.
    pub fn get(&self) -> Progress {
        let mut rows = 0u64;
        let plan = self.plan.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(plan) = &plan {
            let mut todo: Vec<&Arc<dyn ExecutionPlan>> = vec![plan];
            while let Some(node) = todo.pop() {
                let children = node.children();
                if children.is_empty() {
                    let n = node.metrics().and_then(|m| m.output_rows()).unwrap_or(0);
                    rows += u64::try_from(n).unwrap_or(u64::MAX);
                }
                todo.extend(children);
            }
        }
        Progress {
            rows_scanned: rows,
            bytes_read: self.read.get().saturating_sub(self.start),
        }
    }
}

/// The rows of one statement, streamed.
pub struct QueryResult {
    schema: SchemaRef,
    stream: Option<SendableRecordBatchStream>,
    batches: std::vec::IntoIter<RecordBatch>,
    query: Arc<str>,
    memory: MemoryContext,
    progress: ProgressHandle,
    on_error: Option<ErrorHook>,
}

/// Told of an error the result's stream ends with.
pub(crate) type ErrorHook = Arc<dyn Fn(&Error) + Send + Sync>;

impl QueryResult {
    /// The same result, with `hook` told of an error its stream ends with.
    pub(crate) fn on_error(mut self, hook: ErrorHook) -> Self {
        self.on_error = Some(hook);
        self
    }

    fn failed(&self, e: Error) -> Poll<Option<Result<RecordBatch>>> {
        if let Some(hook) = &self.on_error {
            hook(&e);
        }
        Poll::Ready(Some(Err(e)))
    }
    pub(crate) fn streaming(
        stream: SendableRecordBatchStream,
        query: &str,
        memory: MemoryContext,
        progress: ProgressHandle,
    ) -> Self {
        Self {
            schema: stream.schema(),
            stream: Some(stream),
            batches: Vec::new().into_iter(),
            query: query.into(),
            memory,
            progress,
            on_error: None,
        }
    }

    pub(crate) fn batches(schema: SchemaRef, batches: Vec<RecordBatch>, query: &str, memory: MemoryContext) -> Self {
        Self {
            schema,
            stream: None,
            batches: batches.into_iter(),
            query: query.into(),
            memory,
            progress: ProgressHandle::new(None, Arc::default()),
            on_error: None,
        }
    }

    /// A handle on the query's progress, to show while it runs.
    pub fn progress(&self) -> ProgressHandle {
        self.progress.clone()
    }

    pub(crate) fn empty(query: &str, memory: MemoryContext) -> Self {
        Self::batches(Arc::new(Schema::empty()), vec![], query, memory)
    }

    /// The columns of the result. A statement that returns nothing (`CREATE
    /// TABLE`, `SET`) has none.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Whether the statement returns rows to show.
    pub fn has_columns(&self) -> bool {
        !self.schema.fields().is_empty()
    }

    /// The statement's text.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Reads every batch.
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        while let Some(b) = self.next().await {
            out.push(b?);
        }
        Ok(out)
    }

    /// Runs the statement to the end, dropping its rows.
    pub async fn drain(mut self) -> Result<()> {
        while let Some(b) = self.next().await {
            b?;
        }
        Ok(())
    }
}

impl Stream for QueryResult {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(b) = self.batches.next() {
            return Poll::Ready(Some(Ok(b)));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| stream.poll_next_unpin(cx)));
        match polled {
            Ok(Poll::Ready(Some(Err(e)))) => {
                self.stream = None;
                let e = self.memory.explain(Error::from(e));
                let e = if e.kind() == ErrorKind::Internal { Error::internal(e.message(), Some(&self.query)) } else { e };
                self.failed(e)
            }
            Ok(Poll::Ready(Some(Ok(b)))) => Poll::Ready(Some(Ok(b))),
            Ok(Poll::Ready(None)) => {
                self.stream = None;
                Poll::Ready(None)
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => {
                self.stream = None;
                self.failed(Error::internal(
                    format!("panic while running the query: {}", panic_message(panic.as_ref())),
                    Some(&self.query),
                ))
            }
        }
    }
}

/// The text of a panic payload (`"unknown panic"` if it is not text),
/// for fronts that catch panics of their own.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// The number of rows an `INSERT`, `UPDATE`, `DELETE` or `MERGE` changed,
/// read from its result (one `count` column of `UInt64`); `None` for the
/// result of any other statement.
pub fn changed_rows(batches: &[RecordBatch]) -> Option<u64> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{DataType, UInt64Type};
    let mut total = None;
    for batch in batches {
        let schema = batch.schema();
        let [field] = schema.fields().as_ref() else { return None };
        if field.name() != "count" || *field.data_type() != DataType::UInt64 {
            return None;
        }
        let column = batch.column(0).as_primitive::<UInt64Type>();
        total = Some(total.unwrap_or(0) + column.iter().flatten().sum::<u64>());
    }
    total
}
