//! Graceful shutdown, on SIGTERM or Ctrl-C.
//!
//! Three phases. While *serving*, all is as usual. Once *draining*, new
//! clients are refused (Postgres' `the database system is shutting down`,
//! SQLSTATE 57P03), each connection is closed as soon as it runs no
//! statement (one that is running finishes and its rows are sent), and
//! an open transaction is rolled back by the end of its session. At the
//! deadline (`--shutdown-timeout`), *cancelling*: statements still running
//! are stopped as a cancel request stops them, and their clients get
//! `terminating connection due to administrator command` (57P01). A
//! statement stopped mid-write commits nothing, so every table is left at
//! its last commit. A second signal stops the server at once.
//!
//! This module keeps the phase and each connection's running statements;
//! the accept loop and the statement runner act on them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

/// What a client whose statement the shutdown stopped is told (Postgres'
/// words, SQLSTATE 57P01).
pub(crate) const TERMINATED: &str = "terminating connection due to administrator command";

/// The error of a statement the shutdown stopped, or would not start.
pub(crate) fn terminated() -> pintail_core::Error {
    pintail_core::Error::new(pintail_core::ErrorKind::Cancelled, TERMINATED)
        .with_hint("the server is shutting down: run the statement again once it is back")
}

/// Where the server is in its shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Serving,
    Draining,
    Cancelling,
}

/// The server's phase, shared by every task.
#[derive(Clone)]
pub(crate) struct Shutdown {
    phase: Arc<watch::Sender<Phase>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self { phase: Arc::new(watch::Sender::new(Phase::Serving)) }
    }
}

impl Shutdown {
    /// Moves on to `phase` (never back).
    pub(crate) fn enter(&self, phase: Phase) {
        self.phase.send_if_modified(|now| {
            let later = phase > *now;
            if later {
                *now = phase;
            }
            later
        });
    }

    pub(crate) fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Resolves once the server is at `phase` or past it.
    pub(crate) async fn reached(&self, phase: Phase) {
        let mut rx = self.phase.subscribe();
        // the sender lives as long as `self`, so this cannot fail
        let _ = rx.wait_for(|now| *now >= phase).await;
    }
}

/// A count that can be waited on to reach zero: connected clients, or one
/// connection's running statements.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    count: AtomicUsize,
    zero: Notify,
}

impl Counter {
    /// Counts one more until the guard is dropped; returns the guard and
    /// the count with this one.
    pub(crate) fn enter(self: &Arc<Self>) -> (Counted, usize) {
        let count = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        (Counted(Arc::clone(self)), count)
    }

    /// How many are counted now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Resolves when nothing is counted.
    pub(crate) async fn zero(&self) {
        loop {
            let notified = self.zero.notified();
            tokio::pin!(notified);
            // registered before the check, so a drop to zero in between is seen
            notified.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One counted thing (a client, a statement), uncounted when dropped.
#[derive(Debug)]
pub(crate) struct Counted(Arc<Counter>);

impl Drop for Counted {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.zero.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn counters_wake_their_waiters_at_zero() {
        let counter = Arc::new(Counter::default());
        counter.zero().await;
        let (first, n) = counter.enter();
        assert_eq!(n, 1);
        let (second, n) = counter.enter();
        assert_eq!(n, 2);
        let waiter = tokio::spawn({
            let counter = Arc::clone(&counter);
            async move { counter.zero().await }
        });
        drop(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn phases_only_move_forward() {
        let shutdown = Shutdown::default();
        let waiter = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.reached(Phase::Draining).await }
        });
        shutdown.enter(Phase::Cancelling);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        shutdown.enter(Phase::Draining);
        assert_eq!(shutdown.phase(), Phase::Cancelling);
    }
}
