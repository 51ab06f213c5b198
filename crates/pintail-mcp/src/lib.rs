//! Pintail's MCP server (`pintail mcp`): lets an AI agent explore and query
//! data in place through the Model Context Protocol, with each answer kept
//! within a budget of rows and characters, and nothing read or written that
//! should not be.
//!
//! Reused: the protocol, its stdio and streamable HTTP transports and the
//! tools' JSON schemas are the official Rust SDK's (`rmcp`, with `schemars`);
//! the HTTP service is mounted on axum. Pintail adds the tools themselves
//! ([`tools`]: `list_tables`, `describe`, `query`, `summarize`, `explain`),
//! the budgets that cut long and wide results and say what was left out
//! ([`budget`]), tables and views as resources, a prompt for exploring a
//! dataset, and the safety of one Pintail session:
//!
//! - read-only unless `--read-write`: the statement-kind allowlist of
//!   [`pintail_core::ReadOnly`], applied to every statement of a call before
//!   any of them runs, and again to every plan;
//! - files and URLs only under the allowed roots ([`pintail_core::AllowedPaths`]:
//!   the database, the current directory and each `--allow-path`);
//! - a time limit on each call and the session's memory limit;
//! - over HTTP, a bearer token on every request ([`http`]).

mod budget;
mod catalog;
mod http;
mod tools;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pintail_core::{AllowedPaths, Error, ErrorKind, ReadOnly, Result, Session, Settings};
use rmcp::ServiceExt as _;

pub use budget::Budget;

/// How `pintail mcp` serves.
#[derive(Debug, Clone)]
pub struct McpOptions {
    /// The database the session opens (a directory of Delta tables),
    /// created if it does not exist; `None`: an in-memory session.
    pub database: Option<PathBuf>,
    /// Roots SQL may read files and URLs under, besides the database and
    /// the current directory.
    pub allow_paths: Vec<String>,
    /// Let statements write (tables, files) and change settings.
    pub read_write: bool,
    /// The session's settings (memory limit, threads).
    pub settings: Settings,
    /// How long one tool call may run.
    pub query_timeout: Duration,
    /// The most a call may ask for; calls that ask for nothing get
    /// [`Budget::DEFAULT`] (or this, if it is lower).
    pub ceiling: Budget,
    /// Serve streamable HTTP on this address instead of stdio.
    pub http: Option<SocketAddr>,
    /// Host names (besides loopback and the listening address) HTTP
    /// requests may be addressed to.
    pub allowed_hosts: Vec<String>,
    /// The bearer token HTTP clients must send; `None`: one is made and
    /// printed to stderr.
    pub token: Option<String>,
}

impl McpOptions {
    /// Options for `database` with the defaults `pintail mcp` documents.
    pub fn new(database: Option<PathBuf>) -> Self {
        Self {
            database,
            allow_paths: Vec::new(),
            read_write: false,
            settings: Settings::for_this_machine(),
            query_timeout: Duration::from_secs(30),
            ceiling: Budget::CEILING,
            http: None,
            allowed_hosts: Vec::new(),
            token: None,
        }
    }

    /// The one session every client of this server shares.
    fn session(&self) -> Result<(Session, Vec<PathBuf>)> {
        let session = Session::with_settings(self.settings.clone())?;
        // a statement may lower the memory limit, never raise it
        session.cap_memory();
        if !self.read_write {
            // first, to see every statement before the others
            session.add_extension(Arc::new(ReadOnly::new()));
        }
        pintail_storage::install(&session);
        if let Some(path) = &self.database {
            let options = pintail_storage::AttachOptions { name: None, read_only: !self.read_write };
            pintail_storage::open_with(&session, path, &options)?;
        }
        let cwd = std::env::current_dir().map_err(|e| Error::io(format!("cannot tell the current directory: {e}")))?;
        let mut roots: Vec<String> = vec![cwd.to_string_lossy().into_owned()];
        roots.extend(self.database.iter().map(|d| d.to_string_lossy().into_owned()));
        roots.extend(self.allow_paths.iter().cloned());
        session.allow_only(AllowedPaths::new(roots.iter().cloned())?);
        // the local roots, for listing data files: the current directory
        // and the --allow-path directories (the database's files are its
        // tables)
        let mut local: Vec<PathBuf> = vec![cwd];
        local.extend(self.allow_paths.iter().map(PathBuf::from).filter(|p| p.is_dir()));
        Ok((session, local))
    }
}

/// Writes one logfmt line to stderr (MCP clients keep a server's stderr
/// as its log; stdout is the protocol's, over stdio).
fn log(pairs: &[(&str, &str)]) {
    use std::io::Write as _;
    let mut line = pintail_format::logfmt(pairs);
    line.push('\n');
    // a log line that cannot be written is not the call's failure
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Serves MCP until the client goes (stdio) or Ctrl-C / SIGTERM (HTTP).
pub async fn serve(options: McpOptions) -> Result<()> {
    let (session, roots) = options.session()?;
    let server = tools::Pintail::new(session, &options, roots);
    match options.http {
        None => {
            let running = server
                .serve(rmcp::transport::stdio())
                .await
                .map_err(|e| Error::new(ErrorKind::Io, format!("MCP over stdio did not start: {e}")))?;
            running.waiting().await.map_err(|e| Error::internal(format!("MCP over stdio failed: {e}"), None))?;
            Ok(())
        }
        Some(address) => http::serve(server, address, &options).await,
    }
}
