//! Running Pintail's async work from Python threads.
//!
//! One multi-threaded tokio runtime serves every connection of the process.
//! [`block_on`] runs the work on it from the calling thread with the GIL
//! released, waking every [`SIGNAL_POLL`] to let Python run its signal
//! handlers: when one raises (Ctrl-C's `KeyboardInterrupt`), the work is
//! dropped, which drops the query's streams and so cancels it, and the
//! exception goes to the caller.
//!
//! A query that is still running after a second shows a progress line on
//! stderr, as the CLI does (`⠙ 1,234,567 rows · 45.3 MiB · 3.2 s`), redrawn
//! at each wake and cleared at the end: when stderr is a terminal or the
//! code runs in a Jupyter kernel, unless the connection's `progress_bar`
//! setting (or `PINTAIL_NO_PROGRESS`) says otherwise.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::FutureExt;
use pintail_core::ProgressHandle;

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

/// How long a query runs before its progress line shows.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// When a long query shows a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProgressMode {
    /// When stderr is a terminal or the code runs in a Jupyter kernel.
    Auto,
    Always,
    Never,
}

impl ProgressMode {
    /// The mode a `progress_bar` setting asks for: `True`, `False`, or
    /// `None` / `"auto"`.
    pub(crate) fn from_setting(value: &Bound<'_, PyAny>) -> PyResult<Self> {
        if value.is_none() {
            return Ok(Self::Auto);
        }
        if let Ok(on) = value.extract::<bool>() {
            return Ok(if on { Self::Always } else { Self::Never });
        }
        match value.extract::<String>().ok().as_deref() {
            Some("auto") => Ok(Self::Auto),
            _ => Err(crate::errors::InvalidOptionError::new_err(format!(
                "config 'progress_bar': expected True, False, None or 'auto', not {value}"
            ))),
        }
    }

    fn shows(self, py: Python<'_>) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => {
                std::env::var_os("PINTAIL_NO_PROGRESS").is_none()
                    && (stderr(py).and_then(|e| e.call_method0("isatty")?.extract::<bool>()).unwrap_or(false)
                        || py
                            .import("sys")
                            .and_then(|sys| sys.getattr("modules")?.contains("ipykernel"))
                            .unwrap_or(false))
            }
        }
    }
}

fn stderr(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("sys")?.getattr("stderr")
}

/// A query's progress line on Python's `sys.stderr`.
struct ProgressLine {
    handle: ProgressHandle,
    started: Instant,
    /// The width of the line drawn last, 0 before the first.
    drawn: usize,
    frame: usize,
}

impl ProgressLine {
    const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

    fn draw(&mut self, py: Python<'_>) {
        let elapsed = self.started.elapsed();
        if elapsed < PROGRESS_AFTER {
            return;
        }
        let p = self.handle.get();
        let line = format!(
            "{} {} rows · {} · {:.1} s",
            Self::SPINNER[self.frame % Self::SPINNER.len()],
            pintail_format::group_digits(p.rows_scanned),
            pintail_core::settings::format_bytes(p.bytes_read),
            elapsed.as_secs_f64()
        );
        self.frame += 1;
        let width = line.chars().count();
        let pad = " ".repeat(self.drawn.saturating_sub(width));
        self.drawn = width;
        write_stderr(py, &format!("\r{line}{pad}"));
    }

    fn clear(&mut self, py: Python<'_>) {
        if self.drawn > 0 {
            write_stderr(py, &format!("\r{}\r", " ".repeat(self.drawn)));
            self.drawn = 0;
        }
    }
}

/// Writes to `sys.stderr`; a failure to draw the progress line is not the
/// query's failure, so it is dropped.
fn write_stderr(py: Python<'_>, text: &str) {
    if let Ok(err) = stderr(py) {
        let _ = err.call_method1("write", (text,));
        let _ = err.call_method0("flush");
    }
}

/// Runs `work` to the end on the runtime with the GIL released, or until a
/// signal handler raises (then the work is cancelled and the exception
/// returned).
pub(crate) fn block_on<F, T>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: Future<Output = T> + Send,
    T: Send,
{
    block_on_progress(py, work, None)
}

/// [`block_on`], showing the progress of the query `progress` reads if it
/// runs a while and `mode` allows.
pub(crate) fn block_on_progress<F, T>(py: Python<'_>, work: F, progress: Option<(ProgressHandle, ProgressMode)>) -> PyResult<T>
where
    F: Future<Output = T> + Send,
    T: Send,
{
    let mut line = progress.filter(|(_, mode)| mode.shows(py)).map(|(handle, _)| ProgressLine {
        handle,
        started: Instant::now(),
        drawn: 0,
        frame: 0,
    });
    let out = wait(py, work, &mut line);
    if let Some(line) = &mut line {
        line.clear(py);
    }
    out
}

fn wait<F, T>(py: Python<'_>, work: F, line: &mut Option<ProgressLine>) -> PyResult<T>
where
    F: Future<Output = T> + Send,
    T: Send,
{
    let rt = runtime()?;
    // polled on this thread, not spawned onto a worker: a short statement
    // then costs no hand-over between threads (tasks the query spawns still
    // run on the runtime's workers); a panic is caught as a task's would be
    let mut work = std::pin::pin!(AssertUnwindSafe(work).catch_unwind());
    loop {
        let waited = py.detach(|| rt.block_on(async { tokio::time::timeout(SIGNAL_POLL, work.as_mut()).await }));
        match waited {
            Ok(Ok(done)) => return Ok(done),
            Ok(Err(panic)) => {
                return Err(PyRuntimeError::new_err(format!(
                    "internal error: a Pintail task panicked: {}",
                    pintail_core::panic_message(panic.as_ref())
                )));
            }
            Err(_elapsed) => {
                // on a raise, returning drops the work, which cancels the query
                py.check_signals()?;
                if let Some(line) = line {
                    line.draw(py);
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
