//! Flight SQL clients and their sessions, by bearer token.
//!
//! A token is 32 random bytes, issued when a session opens: by a login
//! (`Handshake` with `authorization: Basic`, checked against the users'
//! SCRAM secrets), or, when no users are configured, by [`Mint`] for the
//! first call that carries none, in that call's response headers. Every
//! later call names its session with `authorization: Bearer <token>`. A
//! session ends when the client sends `CloseSession`, when it has been
//! idle (no call, nothing running) for [`IDLE`], or when the server stops;
//! ending it rolls back an open transaction. Gone clients send no
//! `CloseSession` (a killed script, a health check that calls once), so
//! a session whose token never came back is closed after [`UNUSED`], and
//! a server at `--max-connections` makes room by closing the session
//! idle the longest, if it has been idle for [`UNUSED`] at least.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::BoxFuture;
use pintail_core::{Session, Statement};
use ring::rand::{SecureRandom as _, SystemRandom};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderValue};
use tonic::codegen::{Context, Poll, Service};
use tonic::server::NamedService;

use super::Peer;
use crate::ServeOptions;
use crate::log;
use crate::shutdown::{Counted, Counter, Phase, Shutdown};
use crate::statement::Described;

/// How long a session may sit idle before it is closed.
pub(crate) const IDLE: Duration = Duration::from_hours(1);

/// How long a session whose token no second call has carried, or one a
/// full server would close to make room, has been idle.
pub(crate) const UNUSED: Duration = Duration::from_mins(1);

/// How many prepared statements one session may hold open.
const MAX_PREPARED: usize = 4096;

/// Every open session, by token.
pub(crate) struct Sessions {
    by_token: Mutex<HashMap<String, Arc<Client>>>,
    pub(crate) options: Arc<ServeOptions>,
    shutdown: Shutdown,
    /// Clients of both protocols, for `--max-connections`.
    clients: Arc<Counter>,
}

/// One client's session and what it keeps between calls.
pub(crate) struct Client {
    pub(crate) id: u64,
    pub(crate) session: Session,
    pub(crate) peer: Option<SocketAddr>,
    user: Option<String>,
    prepared: Mutex<HashMap<u64, Arc<Prepared>>>,
    next_handle: AtomicU64,
    pub(crate) queries: AtomicUsize,
    /// Calls that named the session.
    calls: AtomicU64,
    /// Statements running (or streaming rows) for the client.
    pub(crate) running: Arc<Counter>,
    last_used: Mutex<Instant>,
    started: Instant,
    _slot: Counted,
}

/// A prepared statement: its text with numbered placeholders, what
/// planning told of it, and the parameters bound last.
pub(crate) struct Prepared {
    pub(crate) statement: Statement,
    pub(crate) count: usize,
    pub(crate) described: Described,
    pub(crate) bound: Mutex<Vec<Vec<pintail_core::datafusion::common::ScalarValue>>>,
}

impl Sessions {
    pub(crate) fn new(options: Arc<ServeOptions>, shutdown: Shutdown, clients: Arc<Counter>) -> Self {
        Self { by_token: Mutex::default(), options, shutdown, clients }
    }

    /// Whether clients must log in.
    pub(crate) fn users(&self) -> Option<&crate::Users> {
        self.options.users.as_deref()
    }

    /// Opens a session for `user` (a login, or `None`), returning its
    /// token; refused while the server shuts down or is full.
    pub(crate) fn open(&self, user: Option<String>, peer: Option<SocketAddr>) -> Result<(String, Arc<Client>), Status> {
        let client = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        let refuse = |status: Status| {
            log::line(&[("event", "connection_refused"), ("protocol", "flight"), ("client", &client), ("error", status.message())]);
            status
        };
        if self.shutdown.phase() >= Phase::Draining {
            return Err(refuse(Status::unavailable("the database system is shutting down")));
        }
        let (mut slot, mut count) = self.clients.enter();
        if count > self.options.max_connections && self.close_longest_idle() {
            drop(slot);
            (slot, count) = self.clients.enter();
        }
        if count > self.options.max_connections {
            return Err(refuse(Status::resource_exhausted("sorry, too many clients already")));
        }
        let session = self.options.session().map_err(|e| refuse(super::status(&e)))?;
        let token = new_token().ok_or_else(|| refuse(Status::internal("the system's random number generator failed")))?;
        let id = log::connection_id();
        let now = Instant::now();
        let entry = Arc::new(Client {
            id,
            session,
            peer,
            user,
            prepared: Mutex::default(),
            next_handle: AtomicU64::new(1),
            queries: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            running: Arc::default(),
            last_used: Mutex::new(now),
            started: now,
            _slot: slot,
        });
        let id = id.to_string();
        let mut line = vec![("event", "connect"), ("protocol", "flight"), ("connection", id.as_str()), ("client", client.as_str())];
        if let Some(user) = &entry.user {
            line.push(("user", user));
        }
        log::line(&line);
        lock(&self.by_token).insert(token.clone(), Arc::clone(&entry));
        Ok((token, entry))
    }

    /// The session of `token`, marked as used now.
    pub(crate) fn get(&self, token: &str) -> Option<Arc<Client>> {
        let client = lock(&self.by_token).get(token).cloned()?;
        *lock(&client.last_used) = Instant::now();
        client.calls.fetch_add(1, Ordering::Relaxed);
        Some(client)
    }

    /// Ends the session of `token`; whether there was one.
    pub(crate) fn close(&self, token: &str) -> bool {
        lock(&self.by_token).remove(token).is_some()
    }

    /// Resolves once no session runs a statement.
    pub(crate) async fn nothing_running(&self) {
        loop {
            let running = lock(&self.by_token).values().any(|c| c.running.count() > 0);
            if !running {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends every session.
    pub(crate) fn close_all(&self) {
        let all = std::mem::take(&mut *lock(&self.by_token));
        drop(all);
    }

    /// Ends the sessions idle for longer than [`IDLE`], and those idle
    /// for [`UNUSED`] whose token never came back.
    fn close_idle(&self) {
        let expired: Vec<Arc<Client>> = {
            let mut by_token = lock(&self.by_token);
            let tokens: Vec<String> = by_token
                .iter()
                .filter(|(_, c)| c.idle().is_some_and(|idle| idle > IDLE || (idle > UNUSED && c.calls.load(Ordering::Relaxed) <= 1)))
                .map(|(t, _)| t.clone())
                .collect();
            tokens.iter().filter_map(|t| by_token.remove(t)).collect()
        };
        // sessions end (and log) outside the lock
        drop(expired);
    }

    /// Ends the session idle the longest, if it has been for [`UNUSED`];
    /// whether there was one.
    fn close_longest_idle(&self) -> bool {
        let closed = {
            let mut by_token = lock(&self.by_token);
            let longest = by_token
                .iter()
                .filter_map(|(t, c)| c.idle().filter(|idle| *idle > UNUSED).map(|idle| (idle, t.clone())))
                .max();
            longest.and_then(|(_, token)| by_token.remove(&token))
        };
        closed.is_some()
    }
}

/// Closes idle sessions once a minute, for as long as the server runs.
pub(crate) async fn sweep(sessions: Arc<Sessions>) {
    let mut ticks = tokio::time::interval(Duration::from_mins(1));
    loop {
        ticks.tick().await;
        sessions.close_idle();
    }
}

impl Client {
    /// Marks the session used now (a statement's rows have all been sent).
    pub(crate) fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// How long the session has been idle (`None`: a statement runs).
    fn idle(&self) -> Option<Duration> {
        (self.running.count() == 0).then(|| lock(&self.last_used).elapsed())
    }

    /// Keeps `statement` as a prepared statement; returns its handle.
    pub(crate) fn prepare(&self, prepared: Prepared) -> Result<u64, Status> {
        let mut all = lock(&self.prepared);
        if all.len() >= MAX_PREPARED {
            return Err(Status::resource_exhausted(format!(
                "this session holds {MAX_PREPARED} prepared statements already; close some (ClosePreparedStatement) first"
            )));
        }
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        all.insert(handle, Arc::new(prepared));
        Ok(handle)
    }

    /// The prepared statement of `handle`.
    pub(crate) fn prepared(&self, handle: &[u8]) -> Result<Arc<Prepared>, Status> {
        parse_handle(handle).and_then(|h| lock(&self.prepared).get(&h).cloned()).ok_or_else(unknown_handle)
    }

    /// Forgets the prepared statement of `handle`.
    pub(crate) fn unprepare(&self, handle: &[u8]) -> Result<(), Status> {
        parse_handle(handle).and_then(|h| lock(&self.prepared).remove(&h)).map(drop).ok_or_else(unknown_handle)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let id = self.id.to_string();
        let queries = self.queries.load(Ordering::Relaxed).to_string();
        let duration = format!("{:.3}", self.started.elapsed().as_secs_f64());
        log::line(&[("event", "disconnect"), ("protocol", "flight"), ("connection", &id), ("queries", &queries), ("duration_s", &duration)]);
    }
}

fn parse_handle(handle: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(handle).ok().map(u64::from_be_bytes)
}

fn unknown_handle() -> Status {
    Status::not_found("no such prepared statement in this session (it was closed, or the session ended)")
}

fn new_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The bearer token of a request's `authorization` header.
pub(crate) fn bearer(headers: &tonic::metadata::MetadataMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// In front of the Flight service: refuses clients on other machines that
/// did not use TLS (once TLS is configured) and, when no users are
/// configured, opens a session for each call that names none, telling the
/// client its token in the response headers.
#[derive(Clone)]
pub(crate) struct Mint<S> {
    inner: S,
    sessions: Arc<Sessions>,
    tls: bool,
}

impl<S> Mint<S> {
    pub(crate) fn new(inner: S, sessions: Arc<Sessions>, tls: bool) -> Self {
        Self { inner, sessions, tls }
    }
}

impl<S: NamedService> NamedService for Mint<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Mint<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let peer = request.extensions().get::<Peer>().copied();
        if self.tls && peer.is_some_and(|p| !p.secure && !p.addr.ip().is_loopback()) {
            let refused = Status::unauthenticated("this server requires TLS of clients on other machines: connect with grpc+tls://");
            return Box::pin(async move { Ok(refused.into_http()) });
        }
        let mut minted = None;
        if self.sessions.users().is_none() && !request.headers().contains_key(http::header::AUTHORIZATION) {
            match self.sessions.open(None, peer.map(|p| p.addr)) {
                Ok((token, _)) => {
                    let value = HeaderValue::from_str(&format!("Bearer {token}"));
                    if let Ok(value) = value {
                        request.headers_mut().insert(http::header::AUTHORIZATION, value.clone());
                        minted = Some(value);
                    }
                }
                Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
            }
        }
        // the service that was made ready is the one called
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            if let Some(value) = minted {
                response.headers_mut().insert(http::header::AUTHORIZATION, value);
            }
            Ok(response)
        })
    }
}
