//! What ends a running statement early: the client's cancel request
//! (psql's Ctrl-C, psycopg's `cancel()`; a Flight SQL client cancels by
//! dropping its call, which drops the statement), the server's time limit, or the
//! server's shutdown deadline ([`crate::shutdown`]). A statement's stop
//! also counts it as running on its connection for as long as any copy of
//! the stop lives (its rows' stream holds one), so a draining server knows
//! when the connection is idle.
//!
//! Both end the statement wherever it is: while it plans and runs before
//! its first row, and while its rows stream to the client. Dropping the
//! statement's stream stops its work in DataFusion; the client gets
//! the error as its protocol words it (SQLSTATE 57014 as from Postgres).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use futures::{Stream, StreamExt, stream};
use pintail_core::{Error, ErrorKind};
use tokio::time::Instant;

use crate::log::QueryLog;
use crate::shutdown::{Counted, Counter, Phase, Shutdown, terminated};

/// The end of one statement's run, if it comes.
#[derive(Clone)]
pub(crate) struct Stop {
    /// Resolves `true` when the client asks to cancel; `false` when the
    /// connection's next statement replaces the request channel.
    cancel: Option<Shared<BoxFuture<'static, bool>>>,
    deadline: Option<(Instant, Duration)>,
    shutdown: Shutdown,
    _running: Arc<Counted>,
}

impl Stop {
    /// The stop for a statement starting now, counted in its connection's
    /// `running` statements; `cancel` resolves `true` when its client asks
    /// to cancel it.
    pub(crate) fn start(
        cancel: Option<BoxFuture<'static, bool>>,
        timeout: Option<Duration>,
        shutdown: &Shutdown,
        running: &Arc<Counter>,
    ) -> Self {
        Self {
            cancel: cancel.map(FutureExt::shared),
            deadline: timeout.map(|t| (Instant::now() + t, t)),
            shutdown: shutdown.clone(),
            _running: Arc::new(running.enter().0),
        }
    }

    /// Waits for the stop and says why it came; never resolves if it does
    /// not come.
    pub(crate) async fn wait(self) -> Error {
        let cancel = async {
            let asked = match self.cancel {
                Some(cancel) => cancel.await,
                None => false,
            };
            if !asked {
                std::future::pending::<()>().await;
            }
        };
        let timeout = async {
            match self.deadline {
                Some((at, limit)) => {
                    tokio::time::sleep_until(at).await;
                    limit
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel => Error::new(ErrorKind::Cancelled, "canceling statement due to user request"),
            () = self.shutdown.reached(Phase::Cancelling) => terminated(),
            limit = timeout => Error::new(ErrorKind::Cancelled, "canceling statement due to statement timeout")
                .with_hint(format!("the server stops statements after {limit:?} (pintail serve --query-timeout)")),
        }
    }

    /// `rows`, ended by the stop with its error (made the protocol's by
    /// `error`).
    pub(crate) fn stream<T: Send + 'static, E: Send + 'static>(
        self,
        rows: impl Stream<Item = Result<T, E>> + Send + 'static,
        log: Arc<QueryLog>,
        error: fn(&Error) -> E,
    ) -> impl Stream<Item = Result<T, E>> + Send + 'static {
        let stopped: Arc<Mutex<Option<Error>>> = Arc::default();
        let noted = Arc::clone(&stopped);
        let until = async move {
            let e = self.wait().await;
            *noted.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
        };
        let why = stream::once(async move { stopped.lock().unwrap_or_else(PoisonError::into_inner).take() });
        rows.take_until(until).chain(why.filter_map(move |e| {
            let out = e.map(|e| {
                log.fail(&e);
                Err(error(&e))
            });
            std::future::ready(out)
        }))
    }
}
