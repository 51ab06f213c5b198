//! Command-line arguments. Doc comments here are the `--help` text; the
//! logic that acts on them lives in `main.rs` and `shell.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use clap_complete::Shell;

/// Pintail: SQL over Parquet, CSV, JSON and Arrow files where they live.
///
/// With no SQL to run, opens an interactive shell. Statements end with `;`.
/// Examples:
///
///   pintail -c "SELECT * FROM 'examples/data/cars.parquet' LIMIT 5"
///
///   pintail -f report.sql -m csv > report.csv
///
///   echo "SUMMARIZE 'data/*.csv'" | pintail
#[derive(Debug, Parser)]
#[command(name = "pintail", version, about, long_about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Database to open (a directory of Delta Lake tables), created if it
    /// does not exist. Without one, or with `:memory:`, the session is in
    /// memory; `ATTACH 'path'` adds databases later.
    #[arg(value_name = "DB")]
    pub database: Option<PathBuf>,

    /// Open the database read-only: statements that would change it fail.
    #[arg(long = "read-only", requires = "database")]
    pub read_only: bool,

    /// Run SQL (or a dot-command) and exit; may be given more than once.
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    pub commands: Vec<String>,

    /// Run the SQL in a file and exit (after any -c commands).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// How results are printed.
    #[arg(short = 'm', long = "mode", value_name = "MODE", default_value = "box",
          value_parser = ["box", "table", "csv", "tsv", "json", "jsonl", "markdown", "line"])]
    pub mode: String,

    /// Write the last statement's result to this file instead of printing it;
    /// the format comes from the extension (.parquet, .csv, .tsv, .json, .jsonl, .md).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Rows shown by the table modes before the middle is elided (0: all).
    #[arg(long = "maxrows", value_name = "N", default_value_t = 40)]
    pub max_rows: usize,

    /// Memory operators may use before spilling or failing, e.g. 4GB or 50%.
    #[arg(long = "memory-limit", value_name = "SIZE", env = "PINTAIL_MEMORY_LIMIT")]
    pub memory_limit: Option<String>,

    /// Parallelism of each query (default: the number of cores).
    #[arg(long = "threads", value_name = "N", env = "PINTAIL_THREADS")]
    pub threads: Option<String>,

    /// Directory where operators spill to disk; '' disables spilling.
    #[arg(long = "temp-directory", value_name = "DIR", env = "PINTAIL_TEMP_DIRECTORY")]
    pub temp_directory: Option<String>,

    /// Print how long each statement took (to stderr).
    #[arg(long = "timer")]
    pub timer: bool,

    /// Never show the progress line (shown on stderr for queries running
    /// over a second, when stderr is a terminal).
    #[arg(long = "no-progress", env = "PINTAIL_NO_PROGRESS")]
    pub no_progress: bool,

    /// Milliseconds a query runs before its progress line shows.
    #[arg(long = "progress-after", value_name = "MS", default_value_t = 1000, hide = true)]
    pub progress_after: u64,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a database over the Postgres wire protocol (psql, psycopg and
    /// any Postgres client) and Arrow Flight SQL (ADBC, JDBC Flight SQL):
    /// pintail serve my.db --pg 127.0.0.1:5433 --flight 127.0.0.1:50051
    Serve(Box<ServeArgs>),
    /// Serve an MCP server for AI agents (Claude, Cursor, ...), over stdio
    /// or streamable HTTP: tools to list, describe, query, summarize and
    /// explain, read-only by default: pintail mcp my.db --allow-path data
    Mcp(Box<McpArgs>),
    /// Print the SCRAM-SHA-256 secret of a password (read from stdin), for
    /// a `pintail serve --users` file: echo "alice:$(pintail hash-password)" >> users
    HashPassword,
    /// Print a shell completion script: pintail completions bash > /etc/bash_completion.d/pintail
    Completions {
        /// The shell to complete in.
        shell: Shell,
    },
}

/// `pintail serve`'s options.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Database every connection opens (a directory of Delta Lake
    /// tables), created if it does not exist; without one, each
    /// connection gets an in-memory session.
    #[arg(value_name = "DB")]
    pub database: Option<PathBuf>,

    /// Run only statements that read: queries, EXPLAIN, DESCRIBE, SHOW,
    /// SUMMARIZE (and BEGIN/COMMIT, which drivers send); anything that
    /// would write a table or a file, or change a setting, is refused.
    #[arg(long = "read-only")]
    pub read_only: bool,

    /// Let SQL read and write files only under this directory (or URL
    /// prefix, like s3://bucket/data/); repeatable. The served database is
    /// always allowed. Without it, any file the server can reach may be
    /// read.
    #[arg(long = "allow-path", value_name = "DIR")]
    pub allow_paths: Vec<String>,

    /// Address of the Postgres wire listener (loopback only, unless users
    /// are configured).
    #[arg(long = "pg", value_name = "ADDRESS")]
    pub pg: Option<std::net::SocketAddr>,

    /// Address of the Arrow Flight SQL listener (loopback only, unless
    /// users are configured): grpc://ADDRESS, or grpc+tls:// with
    /// --tls-cert.
    #[arg(long = "flight", value_name = "ADDRESS")]
    pub flight: Option<std::net::SocketAddr>,

    /// Users who may connect, one `name:secret` per line, the secret from
    /// `pintail hash-password` (or a password); clients then log in with
    /// SCRAM-SHA-256 (Postgres) or basic authentication for a bearer
    /// token (Flight SQL). `PINTAIL_PASSWORD` (for the user `PINTAIL_USER`,
    /// default `pintail`) adds one more.
    #[arg(long = "users", value_name = "FILE")]
    pub users: Option<PathBuf>,

    /// TLS certificate chain (PEM) to offer; clients on other machines
    /// must then use TLS.
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Memory each connection's running query may use before spilling or
    /// failing.
    #[arg(long = "memory-limit", value_name = "SIZE", env = "PINTAIL_MEMORY_LIMIT")]
    pub memory_limit: Option<String>,

    /// Parallelism of each query (default: the number of cores).
    #[arg(long = "threads", value_name = "N", env = "PINTAIL_THREADS")]
    pub threads: Option<String>,

    /// Cancel a statement that runs longer than this (30s, 500ms, 2min);
    /// no limit by default.
    #[arg(long = "query-timeout", value_name = "DURATION", value_parser = duration)]
    pub query_timeout: Option<std::time::Duration>,

    /// On SIGTERM or Ctrl-C, how long running statements may go on before
    /// they are cancelled (new clients are refused at once, idle ones
    /// closed).
    #[arg(long = "shutdown-timeout", value_name = "DURATION", value_parser = duration, default_value = "30s")]
    pub shutdown_timeout: std::time::Duration,

    /// How many clients (Postgres connections and Flight SQL sessions) may
    /// be connected at once; more are refused with "too many clients".
    #[arg(long = "max-connections", value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
}

/// `pintail mcp`'s options.
#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// Database the agent queries (a directory of Delta Lake tables);
    /// without one, an in-memory session.
    #[arg(value_name = "DB")]
    pub database: Option<PathBuf>,

    /// Let SQL read files only under this directory (or URL prefix) as
    /// well as the database and the current directory; repeatable.
    #[arg(long = "allow-path", value_name = "DIR")]
    pub allow_paths: Vec<String>,

    /// Let the agent write: INSERT, CREATE, COPY, SET and the rest. By
    /// default only statements that read are run.
    #[arg(long = "read-write")]
    pub read_write: bool,

    /// Serve streamable HTTP at http://ADDRESS/mcp instead of stdio;
    /// clients send `Authorization: Bearer TOKEN` (PINTAIL_MCP_TOKEN, or
    /// a token printed at start).
    #[arg(long = "http", value_name = "ADDRESS")]
    pub http: Option<std::net::SocketAddr>,

    /// With --http, a host name (or host:port) requests may be addressed
    /// to, besides loopback and the listening address; repeatable.
    #[arg(long = "allowed-host", value_name = "HOST", requires = "http")]
    pub allowed_hosts: Vec<String>,

    /// The bearer token HTTP clients must send (at least 16 characters).
    #[arg(long = "token", env = "PINTAIL_MCP_TOKEN", hide_env_values = true, hide = true)]
    pub token: Option<String>,

    /// Most rows a call may ask for (calls get 100 unless they ask).
    #[arg(long = "max-rows", value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_rows: u64,

    /// Most characters a reply may have (calls get 20000, about 5000
    /// tokens, unless they ask).
    #[arg(long = "max-chars", value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(2000..))]
    pub max_chars: u64,

    /// Cancel a call that runs longer than this.
    #[arg(long = "query-timeout", value_name = "DURATION", value_parser = duration, default_value = "30s")]
    pub query_timeout: std::time::Duration,

    /// Memory a query may use before spilling or failing.
    #[arg(long = "memory-limit", value_name = "SIZE", env = "PINTAIL_MEMORY_LIMIT")]
    pub memory_limit: Option<String>,

    /// Parallelism of each query (default: the number of cores).
    #[arg(long = "threads", value_name = "N", env = "PINTAIL_THREADS")]
    pub threads: Option<String>,
}

fn duration(text: &str) -> Result<std::time::Duration, String> {
    pintail_server::parse_duration(text).map_err(|e| e.message().to_string())
}
