//! One structured line per event on stderr ([`pintail_format::logfmt`]).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use pintail_core::{Error, Result};

/// Writes `pairs` as one logfmt line to stderr.
pub(crate) fn line(pairs: &[(&str, &str)]) {
    let mut out = pintail_format::logfmt(pairs);
    out.push('\n');
    // a log line that cannot be written is not the query's failure
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

/// A number for a new connection, unique across protocols, so the lines
/// of one connection can be told apart from those of another.
pub(crate) fn connection_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One log line per query, written when the query is done with: its
/// client, duration, rows and error.
pub(crate) struct QueryLog {
    connection: u64,
    peer: SocketAddr,
    query: String,
    started: Instant,
    rows: AtomicUsize,
    error: std::sync::Mutex<Option<String>>,
}

impl QueryLog {
    pub(crate) fn new(connection: u64, peer: SocketAddr, query: &str) -> Self {
        Self {
            connection,
            peer,
            query: query.to_owned(),
            started: Instant::now(),
            rows: AtomicUsize::new(0),
            error: std::sync::Mutex::new(None),
        }
    }

    pub(crate) fn rows(&self, n: usize) {
        self.rows.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn fail(&self, e: &Error) {
        if let Ok(mut error) = self.error.lock() {
            *error = Some(e.message().to_owned());
        }
    }

    /// `outcome`, its error noted for the log line.
    pub(crate) fn check<T>(&self, outcome: Result<T>) -> Result<T> {
        if let Err(e) = &outcome {
            self.fail(e);
        }
        outcome
    }
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        let connection = self.connection.to_string();
        let client = self.peer.to_string();
        let duration = format!("{:.3}", self.started.elapsed().as_secs_f64() * 1000.0);
        let rows = self.rows.load(Ordering::Relaxed).to_string();
        let mut line = vec![
            ("event", "query"),
            ("connection", connection.as_str()),
            ("client", client.as_str()),
            ("duration_ms", duration.as_str()),
            ("rows", rows.as_str()),
        ];
        let error = self.error.lock().ok().and_then(|e| e.clone());
        if let Some(e) = &error {
            line.push(("error", e));
        }
        line.push(("query", &self.query));
        self::line(&line);
    }
}
