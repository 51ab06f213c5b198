//! The progress line on stderr for queries that take a while.
//!
//! A query that is still running after [`DELAY`] gets a spinner on stderr
//! with the rows its file scans produced, the bytes read and the time
//! taken, redrawn ten times a second: `⠙ 1,234,567 rows · 45.3 MiB · 3.2 s`.
//! Only when stderr is a terminal; never in colour, so `NO_COLOR` has
//! nothing to turn off. The line is cleared when the query ends, and as
//! soon as rows start to arrive when they are printed as they come to the
//! same terminal, so the two never mix.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pintail_core::ProgressHandle;
use tokio::task::JoinHandle;

/// How long a query runs before its progress is shown.
const DELAY: Duration = Duration::from_secs(1);
/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// A running query's progress line; clears it when finished or dropped.
pub struct Progress {
    bar: ProgressBar,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts watching a query; shows nothing unless stderr is a terminal.
    pub fn start(handle: ProgressHandle, started: Instant) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if !std::io::stderr().is_terminal() || std::env::var_os("PINTAIL_NO_PROGRESS").is_some() {
            return Self { bar, ticker: None };
        }
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            tokio::time::sleep(DELAY.saturating_sub(started.elapsed())).await;
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

/// `1,234,567 rows · 45.3 MiB · 3.2 s`
fn line(handle: &ProgressHandle, elapsed: Duration) -> String {
    let p = handle.get();
    format!(
        "{} rows · {} · {:.1} s",
        thousands(p.rows_scanned),
        pintail_core::settings::format_bytes(p.bytes_read),
        elapsed.as_secs_f64()
    )
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
