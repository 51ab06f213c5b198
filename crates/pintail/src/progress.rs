//! The progress line on stderr for queries that take a while.
//!
//! A query that is still running after a delay (a second, unless told
//! otherwise) gets a spinner on stderr with the rows its file scans
//! produced, the bytes read and the time taken, redrawn ten times a second:
//! `⠙ 1,234,567 rows · 45.3 MiB · 3.2 s`. Only when stderr is a terminal
//! and stdout is not a pipe (a pager would draw over it); never in colour,
//! so `NO_COLOR` has nothing to turn off. The line is cleared when the
//! query ends, and as soon as rows start to arrive when they are printed as
//! they come to the same terminal, so the two never mix.
//!
//! Not covered: statements DataFusion runs while planning them, such as
//! `CREATE TABLE ... AS SELECT`, show no progress.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pintail_core::ProgressHandle;
use tokio::task::JoinHandle;

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// A running query's progress line; clears it when finished or dropped.
pub struct Progress {
    bar: ProgressBar,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts watching a query, to show its progress once it has run for
    /// `after`; shows nothing when `after` is `None`, stderr is not a
    /// terminal or stdout is a pipe.
    pub fn start(handle: ProgressHandle, started: Instant, after: Option<Duration>) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        let Some(after) = after.filter(|_| std::io::stderr().is_terminal() && !stdout_is_pipe()) else {
            return Self { bar, ticker: None };
        };
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            tokio::time::sleep(after.saturating_sub(started.elapsed())).await;
            shown.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            shown.set_draw_target(ProgressDrawTarget::stderr());
            loop {
                shown.set_message(line(&handle, started.elapsed()));
                shown.tick();
                tokio::time::sleep(TICK).await;
            }
        });
        Self { bar, ticker: Some(ticker) }
    }

    /// Clears the line for good.
    pub fn finish(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Whether stdout is a pipe (to a pager, say) rather than a terminal or file.
fn stdout_is_pipe() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        std::fs::metadata("/dev/stdout").is_ok_and(|m| m.file_type().is_fifo())
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// `1,234,567 rows · 45.3 MiB · 3.2 s`
fn line(handle: &ProgressHandle, elapsed: Duration) -> String {
    let p = handle.get();
    format!(
        "{} rows · {} · {:.1} s",
        pintail_format::group_digits(p.rows_scanned),
        pintail_core::settings::format_bytes(p.bytes_read),
        elapsed.as_secs_f64()
    )
}
