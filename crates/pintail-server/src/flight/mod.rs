//! The Arrow Flight SQL front end (`pintail serve --flight ADDR`).
//!
//! Flight SQL is gRPC: a client's calls are independent requests, which
//! may even cross several HTTP/2 connections (gRPC reconnects on its
//! own). So a client's Pintail [`Session`](pintail_core::Session) is tied
//! to a bearer token, not to a connection ([`sessions`]): a login
//! (`Handshake` with basic auth) opens a session and answers its token,
//! which the client sends with every call; without users configured, the
//! first call that carries no token opens a session and gets its token in
//! the response headers, which the ADBC driver (and any client that keeps
//! the `authorization` header it is sent) uses from then on. `SET`,
//! `USE`, `BEGIN` and prepared statements stay with that session, until
//! the client closes it (`CloseSession`) or it is left idle for an hour.
//!
//! Statements are planned when a client asks for their `FlightInfo` (to
//! describe their columns) and run when it fetches the ticket (`DoGet`);
//! updates run in `DoPut`. Rows stream as Arrow record batches from the
//! query runtime ([`crate::work`]) through a small bounded channel, so a
//! client that reads slowly slows its own statement down and nothing
//! else, and one that hangs up stops it.
//!
//! # What is reused, and what Pintail adds
//!
//! - [`arrow_flight`] (59.3) with its `flight-sql` feature: the protocol's
//!   messages, the [`FlightSqlService`](arrow_flight::sql::server::FlightSqlService)
//!   dispatch of commands and actions, the metadata builders (which apply
//!   the clients' filters and give the schemas the ADBC driver checks), the
//!   `SqlInfo` encoding, and the Arrow IPC encoding of the result streams.
//! - `tonic` (0.14) serves gRPC over HTTP/2; TLS is Pintail's own rustls
//!   acceptor ([`crate::tls`]), as for the Postgres server.
//! - `datafusion-flight-sql-server` was evaluated and not used: its latest
//!   release (0.4.15) is built on DataFusion 52 and arrow-flight 57, where
//!   Pintail is on 55 and 59, and it runs every query on one shared
//!   DataFusion context with DataFusion's parser.
//! - Pintail adds: a session per client token, opened only after a login
//!   when users are configured; statements split, checked (`--read-only`,
//!   `--allow-path`) and run by Pintail as in every other front; prepared
//!   statements with parameters bound as typed values (never spliced into
//!   SQL); `--query-timeout`, `--max-connections` (shared with the
//!   Postgres server) and graceful shutdown; TLS required of clients on
//!   other machines once configured; one log line per session and per
//!   statement.

mod metadata;
mod service;
mod sessions;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use pintail_core::{Error, ErrorKind, Result};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::transport::server::Connected;

use crate::ServeOptions;
use crate::log;
use crate::shutdown::{Counter, Phase, Shutdown, TERMINATED};
use pgwire::tokio::tokio_rustls::TlsAcceptor;
use service::Service;
use sessions::{Mint, Sessions};

/// The largest message a client may send (parameters, `DoPut` batches):
/// tonic's default of 4 MiB is too small for a batch of bound rows.
const MAX_MESSAGE: usize = 64 << 20;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves Flight SQL on `listener` until the server has drained
/// ([`crate::shutdown`]): new connections are then refused, calls in
/// flight finish (or are cancelled at the deadline) and every session
/// ends, rolling back an open transaction.
pub(crate) async fn serve(listener: TcpListener, options: Arc<ServeOptions>, shutdown: Shutdown, work: Handle, clients: Arc<Counter>) -> Result<()> {
    let tls = match &options.tls {
        Some(tls) => Some(TlsAcceptor::from(Arc::new(tls.rustls_config(vec![b"h2".to_vec()])?))),
        None => None,
    };
    let sessions = Arc::new(Sessions::new(Arc::clone(&options), shutdown.clone(), clients));
    let service = Service::new(Arc::clone(&sessions), options.query_timeout, shutdown.clone(), work)?;
    let flight = FlightServiceServer::new(service).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE);
    let router = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .max_concurrent_streams(Some(100))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(Mint::new(flight, Arc::clone(&sessions), options.tls.is_some()));
    let (connections, incoming) = mpsc::channel(16);
    let accepting = tokio::spawn(accept(listener, tls, connections, shutdown.clone()));
    let sweeping = tokio::spawn(sessions::sweep(Arc::clone(&sessions)));
    // once draining, and nothing runs: tonic then closes the connections,
    // letting calls in flight end; until then, clients may still close
    // their statements and sessions
    let drained = async {
        shutdown.reached(Phase::Draining).await;
        sessions.nothing_running().await;
    };
    // the stream of connections never ends: tonic would take its end
    // for a shutdown, and stops only when `drained` says so
    let incoming = ReceiverStream::new(incoming).chain(futures::stream::pending());
    let served = router.serve_with_incoming_shutdown(incoming, drained).await;
    accepting.abort();
    sweeping.abort();
    // sessions end with the server: open transactions roll back
    sessions.close_all();
    served.map_err(|e| Error::io(format!("the Flight SQL server failed: {e}")))
}

/// Takes connections from `listener`, each made a [`Conn`] (TLS
/// negotiated off the loop, so a slow client holds up no other), until
/// the server drains: then the listener closes, and new clients are
/// refused.
async fn accept(listener: TcpListener, tls: Option<TlsAcceptor>, connections: mpsc::Sender<io::Result<Conn>>, shutdown: Shutdown) {
    let draining = shutdown.reached(Phase::Draining);
    tokio::pin!(draining);
    loop {
        let accepted = tokio::select! {
            () = &mut draining => return,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                log::line(&[("event", "accept_error"), ("protocol", "flight"), ("error", &e.to_string())]);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let tls = tls.clone();
        let connections = connections.clone();
        tokio::spawn(async move {
            let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, Conn::new(socket, peer, tls.as_ref())).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    log::line(&[("event", "connection_refused"), ("protocol", "flight"), ("client", &peer.to_string()), ("error", &e.to_string())]);
                    return;
                }
                Err(_) => return,
            };
            let _ = connections.send(Ok(conn)).await;
        });
    }
}

/// Where a call comes from: put in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    /// Whether the connection is TLS.
    pub(crate) secure: bool,
}

/// One accepted connection: plain TCP, or TLS when the client began a TLS
/// handshake (clients on this machine may also speak plain text).
struct Conn {
    io: Pin<Box<dyn Io>>,
    peer: Peer,
}

trait Io: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Io for T {}

impl Conn {
    async fn new(socket: TcpStream, addr: SocketAddr, tls: Option<&TlsAcceptor>) -> io::Result<Self> {
        let Some(tls) = tls else {
            return Ok(Self { io: Box::pin(socket), peer: Peer { addr, secure: false } });
        };
        // a TLS client's first byte is a handshake record (22)
        let mut first = [0u8; 1];
        let starts_tls = socket.peek(&mut first).await? == 1 && first[0] == 22;
        if !starts_tls {
            return Ok(Self { io: Box::pin(socket), peer: Peer { addr, secure: false } });
        }
        let stream = tls.accept(socket).await?;
        Ok(Self { io: Box::pin(stream), peer: Peer { addr, secure: true } })
    }
}

impl Connected for Conn {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        self.io.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

fn is_missing(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["no files match", "not found", "does not exist", "no such file"].iter().any(|m| message.contains(m))
}

/// `e` as a gRPC status: the code from its kind, the message with its hint.
pub(crate) fn status(e: &Error) -> Status {
    let message = match e.hint() {
        Some(hint) => format!("{}\nhint: {hint}", e.message()),
        None => e.message().to_owned(),
    };
    match e.kind() {
        ErrorKind::Syntax
        | ErrorKind::Plan
        | ErrorKind::InvalidOption
        | ErrorKind::Data
        | ErrorKind::Execution
        | ErrorKind::NotSupported => Status::invalid_argument(message),
        ErrorKind::ReadOnly | ErrorKind::NotAllowed => Status::permission_denied(message),
        // a file that is not there is the client's to fix; anything else
        // of the kind (a store that does not answer) may pass
        ErrorKind::Io if is_missing(&message) => Status::not_found(message),
        ErrorKind::Io => Status::unavailable(message),
        ErrorKind::OutOfMemory => Status::resource_exhausted(message),
        ErrorKind::Conflict => Status::aborted(message),
        // the server stopped it on its way down
        ErrorKind::Cancelled if e.message() == TERMINATED => Status::unavailable(message),
        ErrorKind::Cancelled if e.message().contains("timeout") => Status::deadline_exceeded(message),
        ErrorKind::Cancelled => Status::cancelled(message),
        ErrorKind::Internal => Status::internal(message),
    }
}
