//! Statements run on a runtime of their own, never on the one that
//! accepts clients and speaks the protocols.
//!
//! DataFusion's operators spawn their tasks on whatever runtime polls the
//! plan, and a CPU-heavy operator (a big join, a sort) can hold a worker
//! thread for seconds without yielding. Were statements polled on the
//! server's runtime, two such queries on two cores would stall the accept
//! loop, every other client, cancel requests and the shutdown signal. So
//! each statement is planned and polled by a task on the query runtime
//! ([`Work`]), and its batches cross to the connection's task through a
//! small bounded channel: a client that reads slowly slows its own query
//! down and nothing else. Dropping a [`Running`] (the client went away, a
//! cancel, a timeout) aborts the statement's task, which stops its work in
//! DataFusion.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::{FutureExt, Stream, StreamExt};
use pintail_core::{Bindings, Error, Result, Session, Statement};
use tokio::sync::{mpsc, oneshot};

use crate::shutdown::terminated;

/// Batches a statement may have in flight before it waits for its client.
const IN_FLIGHT: usize = 2;

/// The runtime statements run on.
pub(crate) struct Work {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Work {
    /// A runtime for statements planned with `threads` partitions: twice
    /// as many workers, because some of DataFusion's operators (the nested
    /// loop join) hold a worker for seconds without yielding, and one such
    /// statement takes `threads` of them; with spare workers the next
    /// client's statement still starts, and the OS shares the cores.
    pub(crate) fn new(threads: usize) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1) * 2)
            .thread_name("pintail-query")
            .enable_all()
            .build()
            .map_err(|e| Error::io(format!("cannot start the query runtime: {e}")))?;
        Ok(Self { runtime: Some(runtime) })
    }

    /// Where statements are sent to run.
    pub(crate) fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }
}

impl Drop for Work {
    /// Statements still running (stopped by a shutdown, but not yet at a
    /// point where they notice) are not waited for.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `statement` of `session` with `bindings` on the query runtime;
/// resolves once it is planned, with its rows to come.
pub(crate) async fn execute(runtime: &tokio::runtime::Handle, session: &Session, statement: &Statement, bindings: Bindings) -> Result<Running> {
    let (planned_tx, planned) = oneshot::channel();
    let (rows_tx, rows) = mpsc::channel(IN_FLIGHT);
    let finished = Arc::new(AtomicBool::new(false));
    let (session, owned, done) = (session.clone(), statement.clone(), Arc::clone(&finished));
    // aborted however this function ends: a cancel or timeout that drops
    // it while the statement plans (a CREATE TABLE AS, a COMMIT) must stop
    // the statement, not leave it to finish unseen
    let mut task = Abort(runtime.spawn(async move {
        let result = match session.execute_with(&owned, bindings).await {
            Ok(result) => result,
            Err(e) => {
                let _ = planned_tx.send(Err(e));
                return;
            }
        };
        if planned_tx.send(Ok((result.schema(), result.has_columns()))).is_err() {
            return;
        }
        let mut result = result;
        while let Some(batch) = result.next().await {
            let failed = batch.is_err();
            if rows_tx.send(batch).await.is_err() || failed {
                break;
            }
        }
        // anything else that ends the rows is the task's end before its time
        done.store(true, Ordering::Release);
    }));
    match planned.await {
        Ok(Ok((schema, has_columns))) => Ok(Running { schema, has_columns, rows, finished, ended: false, _task: task }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(match (&mut task.0).await {
            Err(e) if e.is_panic() => Error::internal(
                format!("panic while running the statement: {}", pintail_core::panic_message(e.into_panic().as_ref())),
                Some(statement.text()),
            ),
            _ => terminated(),
        }),
    }
}

/// Runs `work` (planning that is not a statement's run: the description of
/// a prepared statement) on the query runtime; it is aborted if the caller
/// stops waiting.
pub(crate) async fn on<T: Send + 'static>(runtime: &tokio::runtime::Handle, work: impl Future<Output = Result<T>> + Send + 'static) -> Result<T> {
    let mut task = Abort(runtime.spawn(work));
    match (&mut task.0).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(Error::internal(format!("panic while planning: {}", pintail_core::panic_message(e.into_panic().as_ref())), None)),
        Err(_) => Err(terminated()),
    }
}

/// Aborts its task when dropped (a task already done is left as it is).
struct Abort<T = ()>(tokio::task::JoinHandle<T>);

impl<T> Drop for Abort<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A planned statement whose rows arrive from the query runtime.
pub(crate) struct Running {
    schema: SchemaRef,
    has_columns: bool,
    rows: mpsc::Receiver<Result<RecordBatch>>,
    /// Set by the task once its rows are all sent.
    finished: Arc<AtomicBool>,
    /// Whether the stream has ended (after an error if the task stopped early).
    ended: bool,
    _task: Abort,
}

impl Running {
    /// The columns of the rows.
    pub(crate) fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Whether the statement returns rows at all.
    pub(crate) fn has_columns(&self) -> bool {
        self.has_columns
    }

    /// Every batch, or the first error.
    pub(crate) async fn collect(self) -> Result<Vec<RecordBatch>> {
        StreamExt::collect::<Vec<_>>(self).map(|batches| batches.into_iter().collect()).await
    }

    /// Runs the statement to its end, keeping nothing.
    pub(crate) async fn drain(mut self) -> Result<()> {
        while let Some(batch) = self.next().await {
            batch?;
        }
        Ok(())
    }
}

impl Stream for Running {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rows.poll_recv(cx) {
            Poll::Ready(None) => {
                self.ended = true;
                // rows cut short must never read as a complete result
                let early = !self.finished.load(Ordering::Acquire);
                Poll::Ready(early.then(|| Err(terminated())))
            }
            other => other,
        }
    }
}
