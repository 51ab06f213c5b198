//! The `pintail` binary: picks the input (-c, -f, stdin or the REPL), runs
//! it through [`shell::Shell`], prints errors and chooses the exit code:
//! 0 ok, 1 query error, 2 usage error, 130 interrupted. A closed stdout pipe
//! (`pintail ... | head`) ends the run quietly with 0.

#![expect(clippy::print_stdout, clippy::print_stderr, reason = "the binary prints results and errors")]

mod cli;
mod progress;
mod repl;
mod shell;

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use pintail_core::{Session, SettingName, Settings};
use pintail_format::OutputMode;

use crate::cli::{Cli, Command};
use crate::shell::{Flow, Shell, ShellError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    if let Some(Command::Completions { shell }) = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "pintail", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    if let Some(Command::HashPassword) = cli.command {
        return hash_password();
    }
    quiet_panics();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(Command::Mcp(args)) = cli.command {
        let code = runtime.block_on(mcp(*args));
        runtime.shutdown_background();
        return code;
    }
    if let Some(Command::Serve(args)) = cli.command {
        let code = runtime.block_on(serve(*args));
        // a statement cancelled by the shutdown may not have reached a
        // point where it yields: do not wait for it
        runtime.shutdown_background();
        return code;
    }
    runtime.block_on(run(cli))
}

/// The settings of a server's sessions: this machine's, with the
/// `--memory-limit` and `--threads` given.
fn server_settings(memory_limit: Option<String>, threads: Option<String>) -> pintail_core::Result<Settings> {
    let mut settings = Settings::for_this_machine();
    if let Some(limit) = memory_limit {
        settings.set(SettingName::MemoryLimit, &limit)?;
    }
    if let Some(threads) = threads {
        settings.set(SettingName::Threads, &threads)?;
    }
    Ok(settings)
}

/// `pintail serve`: runs until Ctrl-C or SIGTERM.
async fn serve(args: cli::ServeArgs) -> ExitCode {
    let color = color_stderr();
    let configured = server_settings(args.memory_limit, args.threads);
    let users = configured.and_then(|settings| {
        pintail_server::Users::load(args.users.as_deref(), |name| std::env::var(name).ok()).map(|users| (settings, users))
    });
    let tls = users.and_then(|(settings, users)| match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => pintail_server::Tls::load(cert, key).map(|tls| (settings, users, Some(tls))),
        _ => Ok((settings, users, None)),
    });
    let (settings, users, tls) = match tls {
        Ok(loaded) => loaded,
        Err(e) => {
            report(&ShellError::Query(e), color);
            return ExitCode::from(2);
        }
    };
    let options = pintail_server::ServeOptions {
        database: args.database.filter(|d| d.as_os_str() != ":memory:"),
        read_only: args.read_only,
        allow_paths: args.allow_paths,
        pg: args.pg,
        flight: args.flight,
        settings,
        query_timeout: args.query_timeout,
        shutdown_timeout: args.shutdown_timeout,
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        users: users.map(std::sync::Arc::new),
        tls,
    };
    match pintail_server::serve(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&ShellError::Query(e), color);
            ExitCode::from(2)
        }
    }
}

/// `pintail mcp`: serves MCP until the client goes (stdio) or Ctrl-C.
async fn mcp(args: cli::McpArgs) -> ExitCode {
    let color = color_stderr();
    let settings = match server_settings(args.memory_limit, args.threads) {
        Ok(settings) => settings,
        Err(e) => {
            report(&ShellError::Query(e), color);
            return ExitCode::from(2);
        }
    };
    let usize_of = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let options = pintail_mcp::McpOptions {
        allow_paths: args.allow_paths,
        read_write: args.read_write,
        settings,
        query_timeout: args.query_timeout,
        ceiling: pintail_mcp::Budget { max_rows: usize_of(args.max_rows), max_chars: usize_of(args.max_chars) },
        http: args.http,
        allowed_hosts: args.allowed_hosts,
        token: args.token,
        ..pintail_mcp::McpOptions::new(args.database.filter(|d| d.as_os_str() != ":memory:"))
    };
    match pintail_mcp::serve(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&ShellError::Query(e), color);
            ExitCode::from(2)
        }
    }
}

/// `pintail hash-password`: the SCRAM-SHA-256 secret of the password on
/// stdin (asked for twice, unechoed, on a terminal).
fn hash_password() -> ExitCode {
    let password = if std::io::stdin().is_terminal() {
        match (repl::read_hidden("Password: "), repl::read_hidden("Again: ")) {
            (Ok(first), Ok(again)) if first == again => first,
            (Ok(_), Ok(_)) => {
                eprintln!("error: the passwords differ");
                return ExitCode::from(2);
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: cannot read the password: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        let mut line = String::new();
        if let Err(e) = std::io::stdin().read_line(&mut line) {
            eprintln!("error: cannot read the password from stdin: {e}");
            return ExitCode::from(1);
        }
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        eprintln!("error: the password is empty");
        return ExitCode::from(2);
    }
    match pintail_server::Secret::from_password(&password) {
        Ok(secret) => {
            println!("{secret}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.message());
            ExitCode::from(1)
        }
    }
}

/// Panics are reported as internal errors by the session, with the query;
/// the default hook's message would only repeat them on stderr. Set
/// `RUST_BACKTRACE` to see the hook's output again.
fn quiet_panics() {
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
}

fn color_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Prints an error to stderr, with the label in colour on a terminal.
pub(crate) fn report(e: &ShellError, color: bool) {
    let style = repl::error_style(color);
    match e {
        ShellError::Query(err) => {
            let label = err.kind().label();
            eprintln!("{}: {}", style.paint(label), err.message());
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
        }
        ShellError::Usage(m) => eprintln!("{}: {m}", style.paint("error")),
        ShellError::Io(io) => eprintln!("{}: {io}", style.paint("io error")),
        ShellError::Cancelled => eprintln!("cancelled"),
    }
}

fn settings_from(cli: &Cli) -> Result<Settings, pintail_core::Error> {
    let mut s = Settings::for_this_machine();
    if let Some(v) = &cli.memory_limit {
        s.set(SettingName::MemoryLimit, v)?;
    }
    if let Some(v) = &cli.threads {
        s.set(SettingName::Threads, v)?;
    }
    if let Some(v) = &cli.temp_directory {
        s.set(SettingName::TempDirectory, v)?;
    }
    Ok(s)
}

async fn run(cli: Cli) -> ExitCode {
    let color = color_stderr();
    let session = match settings_from(&cli).and_then(Session::with_settings) {
        Ok(s) => s,
        Err(e) => {
            report(&ShellError::Query(e), color);
            return ExitCode::from(2);
        }
    };
    // ATTACH works in every session; a path argument also opens one
    pintail_storage::install(&session);
    if let Some(db) = cli.database.as_ref().filter(|d| d.as_os_str() != ":memory:") {
        let options = pintail_storage::AttachOptions {
            name: None,
            read_only: cli.read_only,
        };
        if let Err(e) = pintail_storage::open_with(&session, db, &options) {
            report(&ShellError::Query(e), color);
            return ExitCode::from(2);
        }
    }
    let mode: OutputMode = cli.mode.parse().unwrap_or_default();
    let mut shell = Shell::new(session, mode, cli.max_rows);
    shell.timer = cli.timer;
    shell.progress_after = (!cli.no_progress).then(|| std::time::Duration::from_millis(cli.progress_after));
    if let Err(e) = shell.set_output(cli.output.as_deref()) {
        report(&e, color);
        return ExitCode::from(2);
    }

    let batch = !cli.commands.is_empty() || cli.file.is_some() || !std::io::stdin().is_terminal();
    let outcome = if batch {
        let work = run_batch(&mut shell, &cli);
        tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err(ShellError::Cancelled),
        }
    } else {
        repl::run(&mut shell, color).await.map(|()| Flow::Quit)
    };
    let closed = shell.close_output();
    match outcome.and(closed.map(|()| Flow::Quit)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(ShellError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(ShellError::Cancelled) => {
            report(&ShellError::Cancelled, color);
            ExitCode::from(130)
        }
        Err(e @ ShellError::Usage(_)) => {
            report(&e, color);
            ExitCode::from(2)
        }
        Err(e) => {
            report(&e, color);
            ExitCode::from(1)
        }
    }
}

async fn run_batch(shell: &mut Shell, cli: &Cli) -> Result<Flow, ShellError> {
    for command in &cli.commands {
        if shell.run_script(command).await? == Flow::Quit {
            return Ok(Flow::Quit);
        }
    }
    if let Some(path) = &cli.file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ShellError::Usage(format!("cannot read '{}': {e}", path.display())))?;
        if shell.run_script(&text).await? == Flow::Quit {
            return Ok(Flow::Quit);
        }
    }
    if cli.commands.is_empty() && cli.file.is_none() {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        return shell.run_script(&text).await;
    }
    Ok(Flow::Continue)
}
