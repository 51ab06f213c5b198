//! Flight SQL clients and their sessions, by bearer token.
//!
//! A token is 32 random bytes, issued when a session opens: by a login
//! (`Handshake` with `authorization: Basic`, checked against the users'
//! SCRAM secrets), or, when no users are configured, by [`Mint`] for the
//! first call that carries none, in that call's response headers. Every
//! later call names its session with `authorization: Bearer <token>`.
//!
//! A session ends when the client sends `CloseSession`, when it has been
//! idle (no call, nothing running) for [`IDLE`], or when the server stops;
//! ending it rolls back an open transaction. Gone clients send no
//! `CloseSession` (a killed script), so a server at `--max-connections`
//! makes room by closing the session idle the longest, if that has been
//! idle for [`EVICTABLE`] at least. A session [`Mint`] opened counts
//! towards `--max-connections` only once its token comes back: a client
//! that never keeps the header (a health check) holds no place, and its
//! session is closed after [`UNUSED`].

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
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
use crate::log::{self, QueryLog};
use crate::shutdown::{Counted, Counter, Phase, Shutdown};
use crate::stop::Stop;
use crate::work::Running;

/// How long a session may sit idle before it is closed.
pub(crate) const IDLE: Duration = Duration::from_hours(1);

/// How long a session idle for a full server to close it has been idle.
pub(crate) const EVICTABLE: Duration = Duration::from_mins(10);

/// How long a session whose token never came back is kept.
pub(crate) const UNUSED: Duration = Duration::from_mins(1);

/// How many prepared statements one session may hold open.
const MAX_PREPARED: usize = 4096;

/// How many started statements one session may hold for their fetch; the
/// oldest is dropped (and stopped) for a new one.
const MAX_PENDING: usize = 16;

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
    /// Statements started by `GetFlightInfo`, waiting for their `DoGet`.
    pending: Mutex<VecDeque<(u64, Pending)>>,
    next_handle: AtomicU64,
    pub(crate) queries: AtomicUsize,
    /// Statements running (or streaming rows) for the client.
    pub(crate) running: Arc<Counter>,
    last_used: Mutex<Instant>,
    started: Instant,
    /// The client's place in `--max-connections`, once it has one.
    slot: Mutex<Option<Counted>>,
}

/// A prepared statement: its text with numbered placeholders, how many
/// parameters it takes, and those bound last (it is planned again when it
/// runs, so it sees the tables as they are then).
pub(crate) struct Prepared {
    pub(crate) statement: Statement,
    pub(crate) count: usize,
    pub(crate) bound: Mutex<Vec<Vec<pintail_core::datafusion::common::ScalarValue>>>,
}

/// A statement started (planned, its first rows on their way) when its
/// `FlightInfo` was asked for, so its columns are those it runs with and
/// it sees the session as it was then; its rows go to the first `DoGet`
/// of its ticket.
pub(crate) struct Pending {
    pub(crate) running: Running,
    pub(crate) stop: Stop,
    pub(crate) log: Arc<QueryLog>,
    /// The columns as the `FlightInfo` gave them.
    pub(crate) schema: SchemaRef,
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
    /// token; refused while the server shuts down or is full. A login's
    /// session takes its place in `--max-connections` at once, one
    /// [`Mint`] opens when its token comes back.
    pub(crate) fn open(&self, user: Option<String>, peer: Option<SocketAddr>) -> Result<(String, Arc<Client>), Status> {
        let client = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        let refuse = |status: Status| {
            log::line(&[("event", "connection_refused"), ("protocol", "flight"), ("client", &client), ("error", status.message())]);
            status
        };
        if self.shutdown.phase() >= Phase::Draining {
            return Err(refuse(Status::unavailable("the database system is shutting down")));
        }
        // sessions that hold no place are bounded too
        let most = self.options.max_connections.saturating_mul(4).saturating_add(64);
        if lock(&self.by_token).len() >= most {
            self.close_idle(UNUSED.min(Duration::from_secs(5)));
            if lock(&self.by_token).len() >= most {
                return Err(refuse(Status::resource_exhausted("sorry, too many clients already")));
            }
        }
        let slot = match user {
            Some(_) => Some(self.place().map_err(refuse)?),
            None => None,
        };
        let session = self.options.session().map_err(|e| refuse(super::status(&e)))?;
        let token = new_token().ok_or_else(|| refuse(Status::internal("the system's random number generator failed")))?;
        let now = Instant::now();
        let entry = Arc::new(Client {
            id: log::connection_id(),
            session,
            peer,
            user,
            prepared: Mutex::default(),
            pending: Mutex::default(),
            next_handle: AtomicU64::new(1),
            queries: AtomicUsize::new(0),
            running: Arc::default(),
            last_used: Mutex::new(now),
            started: now,
            slot: Mutex::new(slot),
        });
        let id = entry.id.to_string();
        let mut line = vec![("event", "connect"), ("protocol", "flight"), ("connection", id.as_str()), ("client", client.as_str())];
        if let Some(user) = &entry.user {
            line.push(("user", user));
        }
        log::line(&line);
        lock(&self.by_token).insert(token.clone(), Arc::clone(&entry));
        Ok((token, entry))
    }

    /// A place in `--max-connections`, closing the session idle the
    /// longest (for [`EVICTABLE`] at least) if there is none.
    fn place(&self) -> Result<Counted, Status> {
        let (slot, count) = self.clients.enter();
        if count <= self.options.max_connections {
            return Ok(slot);
        }
        drop(slot);
        if self.close_longest_idle() {
            let (slot, count) = self.clients.enter();
            if count <= self.options.max_connections {
                return Ok(slot);
            }
        }
        Err(Status::resource_exhausted("sorry, too many clients already"))
    }

    /// The session of `token`, marked as used now; a session [`Mint`]
    /// opened takes its place in `--max-connections` when its token
    /// comes back (`minted`: the call that opened it).
    pub(crate) fn get(&self, token: &str, minted: bool) -> Result<Option<Arc<Client>>, Status> {
        let Some(client) = lock(&self.by_token).get(token).cloned() else { return Ok(None) };
        client.touch();
        if !minted && lock(&client.slot).is_none() {
            // refused until a place frees (or closed, unused, after a minute)
            *lock(&client.slot) = Some(self.place()?);
        }
        Ok(Some(client))
    }

    /// Whether `token` names an open session.
    fn knows(&self, token: &str) -> bool {
        lock(&self.by_token).contains_key(token)
    }

    /// Ends the session of `token`, if there is one.
    pub(crate) fn close(&self, token: &str) {
        let closed = lock(&self.by_token).remove(token);
        // the session ends (rolls back, logs) outside the lock
        drop(closed);
    }

    /// Ends every session.
    pub(crate) fn close_all(&self) {
        let all = std::mem::take(&mut *lock(&self.by_token));
        drop(all);
    }

    /// Resolves once no session runs a statement; statements started but
    /// not fetched are dropped once the server cancels.
    pub(crate) async fn nothing_running(&self) {
        loop {
            let clients: Vec<Arc<Client>> = lock(&self.by_token).values().cloned().collect();
            if self.shutdown.phase() >= Phase::Cancelling {
                for client in &clients {
                    let dropped = std::mem::take(&mut *lock(&client.pending));
                    drop(dropped);
                }
            }
            if clients.iter().all(|c| c.running.count() == 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the sessions idle for longer than [`IDLE`], and those idle
    /// for `unused` that never took a place.
    fn close_idle(&self, unused: Duration) {
        let expired: Vec<Arc<Client>> = {
            let mut by_token = lock(&self.by_token);
            let tokens: Vec<String> = by_token
                .iter()
                .filter(|(_, c)| c.idle().is_some_and(|idle| idle > IDLE || (idle > unused && lock(&c.slot).is_none())))
                .map(|(t, _)| t.clone())
                .collect();
            tokens.iter().filter_map(|t| by_token.remove(t)).collect()
        };
        // sessions end (and log) outside the lock
        drop(expired);
    }

    /// Ends the session idle the longest, if it has been for
    /// [`EVICTABLE`]; whether there was one.
    fn close_longest_idle(&self) -> bool {
        let closed = {
            let mut by_token = lock(&self.by_token);
            let longest = by_token
                .iter()
                .filter(|(_, c)| lock(&c.slot).is_some())
                .filter_map(|(t, c)| c.idle().filter(|idle| *idle > EVICTABLE).map(|idle| (idle, t.clone())))
                .max();
            longest.and_then(|(_, token)| by_token.remove(&token))
        };
        let Some(closed) = closed else { return false };
        // its place is free once nothing else holds the session
        lock(&closed.slot).take();
        true
    }
}

/// Closes idle sessions once a minute, for as long as the server runs.
pub(crate) async fn sweep(sessions: Arc<Sessions>) {
    let mut ticks = tokio::time::interval(Duration::from_mins(1));
    loop {
        ticks.tick().await;
        sessions.close_idle(UNUSED);
    }
}

impl Client {
    /// Marks the session used now.
    pub(crate) fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// How long the session has been idle (`None`: a statement runs, or
    /// waits for its fetch).
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

    /// Holds a started statement for its fetch; returns its ticket.
    pub(crate) fn hold(&self, pending: Pending) -> u64 {
        let id = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let dropped = {
            let mut all = lock(&self.pending);
            all.push_back((id, pending));
            if all.len() > MAX_PENDING { all.pop_front() } else { None }
        };
        if let Some((_, dropped)) = dropped {
            dropped.log.fail(&pintail_core::Error::new(pintail_core::ErrorKind::Cancelled, "never fetched: the session started too many statements"));
        }
        id
    }

    /// The started statement of `ticket`, taken for its fetch.
    pub(crate) fn take(&self, ticket: &[u8]) -> Result<Pending, Status> {
        let id = parse_handle(ticket);
        let mut all = lock(&self.pending);
        let at = all.iter().position(|(i, _)| Some(*i) == id);
        at.and_then(|at| all.remove(at)).map(|(_, p)| p).ok_or_else(|| {
            Status::not_found("no such result in this session: a ticket is fetched once, by the session that asked for it")
        })
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
    bearer_of(headers.get("authorization")?.to_str().ok()?)
}

fn bearer_of(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Marks the call whose session [`Mint`] opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Minted;

/// The one call a client may make before it logs in.
const HANDSHAKE: &str = "/arrow.flight.protocol.FlightService/Handshake";

/// In front of the Flight service: refuses clients on other machines that
/// did not use TLS (once TLS is configured); when users are configured,
/// refuses any call but a login that names no open session, before its
/// message is read; and when none are, opens a session for each call
/// that names none, telling the client its token in the response headers.
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
        if self.sessions.users().is_some() && request.uri().path() != HANDSHAKE {
            let token = request.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer_of);
            if !token.is_some_and(|t| self.sessions.knows(t)) {
                let refused = super::service::not_logged_in(token.is_some());
                return Box::pin(async move { Ok(refused.into_http()) });
            }
        }
        let mut minted = None;
        if self.sessions.users().is_none() && !request.headers().contains_key(http::header::AUTHORIZATION) {
            match self.sessions.open(None, peer.map(|p| p.addr)) {
                Ok((token, _)) => {
                    let value = HeaderValue::from_str(&format!("Bearer {token}"));
                    if let Ok(value) = value {
                        request.headers_mut().insert(http::header::AUTHORIZATION, value.clone());
                        request.extensions_mut().insert(Minted);
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
