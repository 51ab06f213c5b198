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
//!   record batches as data rows, in text and binary formats, and the
//!   values of `COPY ... TO STDOUT` (with pgwire's `CopyEncoder`).
//! - `datafusion-pg-catalog` (0.19) supplies `pg_catalog` (tables built
//!   from the session's catalog, the rest as snapshots of an empty
//!   Postgres), the catalog functions and the rewrites that let psql's and
//!   SQLAlchemy's introspection queries plan. Pintail routes only catalog
//!   queries through them (see `pg::catalog`), shows a client only the
//!   served database, and adds what those clients still needed
//!   (`to_regtype`, `pg_type_is_visible`, `pg_get_indexdef`, `version()`
//!   in Postgres' words, `pg_table_is_visible` by search path, `pg_index`
//!   with array keys, the `pg_class` columns SQLAlchemy reads, `SHOW` of
//!   Postgres settings).
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
//!   cancel requests and `--query-timeout` that stop a statement while it
//!   plans, runs or streams its rows (pgwire's own cancel covers only the
//!   first), `--max-connections` with Postgres' FATAL refusal, logins
//!   ([`auth`]: SCRAM-SHA-256, and `-PLUS` bound to the TLS certificate,
//!   checked against Postgres-style verifiers; pgwire's own SCRAM keeps the
//!   salted password, which is enough to log in), TLS from PEM files
//!   ([`tls`], rustls with ring) required of non-loopback clients once
//!   given, the refusal to listen beyond loopback without users,
//!   `--allow-path` ([`pintail_core::AllowedPaths`]) and graceful shutdown
//!   (`shutdown`).

pub mod auth;
pub mod flight;
pub mod pg;
pub mod tls;

mod log;
mod shutdown;
mod statement;
mod stop;
mod work;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shutdown::{Counter, Phase, Shutdown};
use work::Work;
use pintail_core::{AllowedPaths, Error, ErrorKind, ReadOnly, Result, Session, Settings};

pub use auth::{Secret, Users};
pub use tls::Tls;

/// What `pintail serve` serves, and how.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The database each connection opens (`None`: an in-memory session
    /// per connection).
    pub database: Option<PathBuf>,
    /// Run only statements that read (queries, `EXPLAIN`, `DESCRIBE`,
    /// `SHOW`, `SUMMARIZE`, and transaction control), and open the
    /// database read-only.
    pub read_only: bool,
    /// The only directories (or URL prefixes) SQL may read and write files
    /// under, besides the served database (empty: anywhere the server can
    /// reach).
    pub allow_paths: Vec<String>,
    /// The address of the Postgres wire listener.
    pub pg: Option<SocketAddr>,
    /// The address of the Arrow Flight SQL listener.
    pub flight: Option<SocketAddr>,
    /// Settings every connection's session starts with.
    pub settings: Settings,
    /// How long one statement may run before it is cancelled (`None`: no
    /// limit).
    pub query_timeout: Option<Duration>,
    /// How long a shutdown lets running statements finish before it
    /// cancels them.
    pub shutdown_timeout: Duration,
    /// How many clients may be connected at once; more are refused
    /// (`pintail serve` takes 100 by default, as Postgres).
    pub max_connections: usize,
    /// The users who may connect, each proving its password with
    /// SCRAM-SHA-256 (`None`: anyone may connect, so the server listens on
    /// loopback only).
    pub users: Option<Arc<Users>>,
    /// The certificate and key to offer TLS with; once given, clients on
    /// other machines must use it.
    pub tls: Option<Tls>,
}

/// Reads a duration as `--query-timeout` takes it: `30s`, `1.5s`,
/// `500ms`, `2min`, `1h`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = |why: &str| {
        Error::new(ErrorKind::InvalidOption, format!("'{text}' is not a duration{why}")).with_hint("write 30s, 500ms, 2min or 1h")
    };
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad(""))?;
    let seconds_per = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" | "millisecond" | "milliseconds" => 0.001,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        other => return Err(bad(&format!(": unknown unit '{other}'"))),
    };
    Duration::try_from_secs_f64(value * seconds_per).ok().filter(|d| !d.is_zero()).ok_or_else(|| bad(": it must be more than zero"))
}

impl ServeOptions {
    /// A new session for one client connection.
    pub(crate) fn session(&self) -> Result<Session> {
        let session = Session::with_settings(self.settings.clone())?;
        // clients may lower the memory limit, never raise it
        session.cap_memory();
        if self.read_only {
            // first, to see every statement before the others
            session.add_extension(Arc::new(ReadOnly::with_transactions()));
        }
        pintail_storage::install(&session);
        if let Some(path) = &self.database {
            let options = pintail_storage::AttachOptions { name: None, read_only: self.read_only };
            pintail_storage::open_with(&session, path, &options)?;
        }
        if !self.allow_paths.is_empty() {
            // the database exists now, so it can be a root
            let database = self.database.as_ref().map(|d| d.to_string_lossy().into_owned());
            session.allow_only(AllowedPaths::new(self.allow_paths.iter().cloned().chain(database))?);
        }
        Ok(session)
    }
}

/// Serves until Ctrl-C or SIGTERM, then shuts down gracefully
/// ([`shutdown`]).
pub async fn serve(options: ServeOptions) -> Result<()> {
    if options.pg.is_none() && options.flight.is_none() {
        return Err(Error::option("serve", "nothing to serve: give --pg ADDRESS, --flight ADDRESS or both"));
    }
    for addr in [options.pg, options.flight].into_iter().flatten() {
        if !addr.ip().is_loopback() && options.users.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidOption,
                format!("refusing to listen on {addr}: clients beyond this machine must authenticate, and no users are configured"),
            )
            .with_hint("give --users FILE or set PINTAIL_PASSWORD, or listen on 127.0.0.1 (or ::1)"));
        }
    }
    // a bad database fails here, not at the first client
    options.session()?;
    let pg = listen(options.pg, "postgres", &options).await?;
    let flight = listen(options.flight, "flight", &options).await?;
    let grace = options.shutdown_timeout;
    let shutdown = Shutdown::default();
    let work = Work::new(options.settings.threads)?;
    let runtime = work.handle().ok_or_else(|| Error::internal("the query runtime is gone", None))?;
    let clients = Arc::new(Counter::default());
    let options = Arc::new(options);
    let pg = async {
        match pg {
            Some(listener) => pg::serve(listener, Arc::clone(&options), shutdown.clone(), runtime.clone(), Arc::clone(&clients)).await,
            None => Ok(()),
        }
    };
    let flight = async {
        match flight {
            Some(listener) => flight::serve(listener, Arc::clone(&options), shutdown.clone(), runtime.clone(), Arc::clone(&clients)).await,
            None => Ok(()),
        }
    };
    let server = async { futures::try_join!(pg, flight).map(|((), ())| ()) };
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        () = shutdown_signal() => {}
    }
    log::line(&[("event", "shutdown"), ("phase", "draining"), ("deadline_s", &grace.as_secs_f64().to_string())]);
    shutdown.enter(Phase::Draining);
    tokio::select! {
        result = &mut server => return result.map(|()| log::line(&[("event", "stopped")])),
        () = tokio::time::sleep(grace) => {}
        () = shutdown_signal() => {
            log::line(&[("event", "stopped"), ("reason", "a second signal")]);
            return Ok(());
        }
    }
    log::line(&[("event", "shutdown"), ("phase", "cancelling")]);
    shutdown.enter(Phase::Cancelling);
    // cancelled statements end within moments; a client that does not
    // read its error is not waited for long
    tokio::select! {
        result = &mut server => result.map(|()| log::line(&[("event", "stopped")])),
        () = tokio::time::sleep(Duration::from_secs(5)) => {
            log::line(&[("event", "stopped"), ("reason", "connections still open 5 s after the deadline")]);
            Ok(())
        }
        () = shutdown_signal() => {
            log::line(&[("event", "stopped"), ("reason", "a second signal")]);
            Ok(())
        }
    }
}

/// Binds the listener for `protocol` at `addr`, if given.
async fn listen(addr: Option<SocketAddr>, protocol: &str, options: &ServeOptions) -> Result<Option<tokio::net::TcpListener>> {
    let Some(addr) = addr else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().map_err(|e| Error::io(e.to_string()))?;
    let users = options.users.as_ref().map_or(0, |u| u.len()).to_string();
    let tls = if options.tls.is_some() { "on" } else { "off" };
    log::line(&[("event", "listening"), ("protocol", protocol), ("address", &local.to_string()), ("users", &users), ("tls", tls)]);
    if !addr.ip().is_loopback() && options.tls.is_none() {
        let message = if protocol == "flight" {
            "no TLS: passwords (basic authentication), queries and results cross the network in clear; give --tls-cert and --tls-key"
        } else {
            "no TLS: passwords are never sent (SCRAM), but queries and results cross the network in clear; give --tls-cert and --tls-key"
        };
        log::line(&[("event", "warning"), ("protocol", protocol), ("message", message)]);
    }
    Ok(Some(listener))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_refuse_nonsense() {
        let ok = |t: &str| parse_duration(t).map_err(|e| e.message().to_owned());
        assert_eq!(ok("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(ok("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(ok("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(ok("2 min"), Ok(Duration::from_mins(2)));
        assert_eq!(ok("1h"), Ok(Duration::from_hours(1)));
        assert_eq!(ok("soon"), Err("'soon' is not a duration".to_owned()));
        assert_eq!(ok("5 parsecs"), Err("'5 parsecs' is not a duration: unknown unit 'parsecs'".to_owned()));
        assert_eq!(ok("0s"), Err("'0s' is not a duration: it must be more than zero".to_owned()));
        assert!(ok("1e400").is_err());
    }
}
