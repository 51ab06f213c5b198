//! What ends a running statement early: the client's cancel request
//! (psql's Ctrl-C, psycopg's `cancel()`), the server's time limit, or the
//! server's shutdown deadline ([`crate::shutdown`]). A statement's stop
//! also counts it as running on its connection for as long as any copy of
//! the stop lives (its rows' stream holds one), so a draining server knows
//! when the connection is idle.
//!
//! Both end the statement wherever it is: while it plans and runs before
//! its first row, and while its rows stream to the client. Dropping the
//! statement's stream stops its work in DataFusion; the client gets
//! SQLSTATE 57014 as from Postgres.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use futures::{Stream, StreamExt, stream};
use pgwire::api::ConnectionHandle;
use pgwire::error::PgWireResult;
use pintail_core::{Error, ErrorKind};
use tokio::time::Instant;

use super::QueryLog;
use super::errors::to_pg;
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
    /// The stop for a statement starting now on the connection `handle`
    /// belongs to, counted in its `running` statements.
    pub(crate) async fn start(
        handle: Option<Arc<ConnectionHandle>>,
        timeout: Option<Duration>,
        shutdown: &Shutdown,
        running: &Arc<Counter>,
    ) -> Self {
        let cancel = match handle {
            Some(handle) => Some(handle.start_query().await.map(|r| r.is_ok()).boxed().shared()),
            None => None,
        };
        Self {
            cancel,
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

    /// `rows`, ended by the stop with its error.
    pub(crate) fn stream<T: Send + 'static>(
        self,
        rows: impl Stream<Item = PgWireResult<T>> + Send + 'static,
        log: Arc<QueryLog>,
    ) -> impl Stream<Item = PgWireResult<T>> + Send + 'static {
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
                Err(to_pg(&e))
            });
            std::future::ready(out)
        }))
    }
}
