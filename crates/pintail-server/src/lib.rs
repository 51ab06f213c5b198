//! Pintail's servers: `pintail serve`.
//!
//! A Postgres wire protocol front end ([`pg`]) puts Pintail behind every
//! Postgres client (psql, psycopg, JDBC, BI tools). Each client connection
//! gets its own Pintail [`Session`](pintail_core::Session), opened on the
//! served database, so `SET`, `BEGIN` and `USE` stay with the connection
//! that ran them; statements are split, checked and run by Pintail itself,
//! exactly as the CLI and the Python package run them.
//!
//! # What is reused, and what Pintail adds
//!
//! - [`pgwire`] (0.41) speaks the protocol: startup, the simple and extended
//!   query flows (parse, bind, describe, execute, portals with row limits),
//!   message framing and TLS negotiation.
//! - [`arrow_pg`] (0.16) maps Arrow types to Postgres types and encodes
//!   record batches as data rows, in text and binary formats.
//! - `datafusion-postgres` (0.19), the ready-made server over a DataFusion
//!   `SessionContext`, was evaluated and not used: it runs every query
//!   through one shared context with DataFusion's own parser, where Pintail
//!   needs a session per connection, its own statement splitting and file
//!   resolution, its refusal rules and SQLSTATE mapping. Its design (hooks
//!   for `SET`/`SHOW`/transactions) was the model for [`pg`].
//! - Pintail adds: the per-connection session on the served database,
//!   statement routing and command tags, typed parameters bound as values
//!   (never spliced into SQL), errors mapped to SQLSTATE codes with
//!   Pintail's message and hint, one log line per connection and per query,
//!   and the refusal to listen beyond loopback while no authentication is
//!   configured.

pub mod pg;

mod log;

use std::net::SocketAddr;
use std::path::PathBuf;

use pintail_core::{Error, ErrorKind, Result, Session, Settings};

/// What `pintail serve` serves, and how.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The database each connection opens (`None`: an in-memory session
    /// per connection).
    pub database: Option<PathBuf>,
    /// Open the database read-only.
    pub read_only: bool,
    /// The address of the Postgres wire listener.
    pub pg: Option<SocketAddr>,
    /// Settings every connection's session starts with.
    pub settings: Settings,
}

impl ServeOptions {
    /// A new session for one client connection.
    pub(crate) fn session(&self) -> Result<Session> {
        let session = Session::with_settings(self.settings.clone())?;
        pintail_storage::install(&session);
        if let Some(path) = &self.database {
            let options = pintail_storage::AttachOptions { name: None, read_only: self.read_only };
            pintail_storage::open_with(&session, path, &options)?;
        }
        Ok(session)
    }
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn serve(options: ServeOptions) -> Result<()> {
    let Some(addr) = options.pg else {
        return Err(Error::option("serve", "nothing to serve: give --pg ADDRESS"));
    };
    if !addr.ip().is_loopback() {
        return Err(Error::new(
            ErrorKind::InvalidOption,
            format!("refusing to listen on {addr}: clients beyond this machine must authenticate, and no users are configured"),
        )
        .with_hint("listen on 127.0.0.1 (or ::1)"));
    }
    // a bad database fails here, not at the first client
    options.session()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().map_err(|e| Error::io(e.to_string()))?;
    log::line(&[("event", "listening"), ("protocol", "postgres"), ("address", &local.to_string())]);
    let server = pg::serve(listener, options);
    tokio::select! {
        () = server => {}
        () = shutdown_signal() => {
            log::line(&[("event", "shutdown")]);
        }
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
