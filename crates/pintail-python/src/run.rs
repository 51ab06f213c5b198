//! Running Pintail's async work from Python threads.
//!
//! One multi-threaded tokio runtime serves every connection of the process.
//! [`block_on`] spawns the work on it and waits with the GIL released,
//! waking every [`SIGNAL_POLL`] to let Python run its signal handlers: when
//! one raises (Ctrl-C's `KeyboardInterrupt`), the task is aborted, which
//! drops the query's streams and so cancels it, and the exception goes to
//! the caller.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

/// How often a waiting thread takes the GIL back to check for signals.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

static RUNTIME: OnceLock<std::io::Result<Runtime>> = OnceLock::new();

/// The process's runtime, started on first use.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    RUNTIME
        .get_or_init(|| tokio::runtime::Builder::new_multi_thread().thread_name("pintail").enable_all().build())
        .as_ref()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start Pintail's runtime: {e}")))
}

/// Runs `work` to the end on the runtime with the GIL released, or until a
/// signal handler raises (then the work is cancelled and the exception
/// returned).
pub(crate) fn block_on<F, T>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime()?;
    let mut task = rt.spawn(work);
    loop {
        let waited = py.detach(|| rt.block_on(async { tokio::time::timeout(SIGNAL_POLL, &mut task).await }));
        match waited {
            Ok(Ok(done)) => return Ok(done),
            Ok(Err(e)) if e.is_panic() => {
                return Err(PyRuntimeError::new_err(format!("internal error: a Pintail task panicked: {e}")));
            }
            Ok(Err(e)) => return Err(PyRuntimeError::new_err(format!("internal error: a Pintail task failed: {e}"))),
            Err(_elapsed) => {
                if let Err(raised) = py.check_signals() {
                    task.abort();
                    return Err(raised);
                }
            }
        }
    }
}

/// Runs `work` to the end on the runtime from a thread that does not hold
/// the GIL (an Arrow stream being read by a consumer).
pub(crate) fn block_on_detached<F: Future>(work: F) -> PyResult<F::Output> {
    Ok(runtime()?.block_on(work))
}
