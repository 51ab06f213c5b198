//! Running input the way the shell does: SQL statements and dot-commands,
//! results rendered in the current mode to stdout or an output file.
//!
//! Shared by `-c`, `-f`, stdin and the REPL, so a script behaves exactly as
//! typed. Reading lines, history and completion are the REPL's (`repl.rs`);
//! parsing arguments is `cli.rs`'s.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use pintail_core::datafusion::arrow::record_batch::RecordBatch;
use pintail_core::datafusion::parquet::arrow::ArrowWriter;
use pintail_core::{QueryResult, Session, SettingName, Statement, is_complete, split_statements};
use pintail_format::types::sql_type_name;
use pintail_format::{OutputMode, TableLimits, renderer};

use crate::progress::Progress;

/// Why running input stopped.
#[derive(Debug)]
pub enum ShellError {
    /// A statement failed.
    Query(pintail_core::Error),
    /// A dot-command was misused.
    Usage(String),
    /// Writing output failed (a closed pipe included).
    Io(io::Error),
    /// The user pressed Ctrl-C.
    Cancelled,
}

impl From<pintail_core::Error> for ShellError {
    fn from(e: pintail_core::Error) -> Self {
        ShellError::Query(e)
    }
}

impl From<io::Error> for ShellError {
    fn from(e: io::Error) -> Self {
        ShellError::Io(e)
    }
}

/// Whether to keep going after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// Where results go.
enum Output {
    Stdout,
    /// text in the current mode, appended result after result
    Text { file: BufWriter<File> },
    /// one result as a Parquet file
    Parquet { path: PathBuf, written: bool },
}

/// The shell's state: the session and the display settings.
pub struct Shell {
    pub session: Session,
    pub mode: OutputMode,
    pub max_rows: usize,
    pub timer: bool,
    /// How long a query runs before its progress line shows; `None`: never.
    pub progress_after: Option<std::time::Duration>,
    output: Output,
}

const HELP: &str = "\
.help                 show this list
.tables               list tables and views
.schema [NAME]        show CREATE statements for tables (or one table)
.mode [MODE]          show or set the output mode: box table csv tsv json jsonl markdown line
.timer on|off         print how long each statement takes
.maxrows N            rows the table modes show before eliding the middle (0: all)
.read FILE            run the SQL in FILE
.output [FILE]        send results to FILE (format from its extension), or back to stdout
.quit / .exit         leave the shell
SQL statements end with ';'. Files are tables: SELECT * FROM 'data/*.parquet';
";

impl Shell {
    pub fn new(session: Session, mode: OutputMode, max_rows: usize) -> Self {
        Self {
            session,
            mode,
            max_rows,
            timer: false,
            progress_after: None,
            output: Output::Stdout,
        }
    }

    /// Sends results to `path`; the format follows its extension.
    pub fn set_output(&mut self, path: Option<&Path>) -> Result<(), ShellError> {
        self.close_output()?;
        let Some(path) = path else {
            return Ok(());
        };
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
        if ext == "parquet" {
            self.output = Output::Parquet { path: path.to_path_buf(), written: false };
            return Ok(());
        }
        if let Some(mode) = mode_for_extension(&ext) {
            self.mode = mode;
        }
        let file = File::create(path)
            .map_err(|e| ShellError::Usage(format!("cannot write '{}': {e}", path.display())))?;
        self.output = Output::Text { file: BufWriter::new(file) };
        Ok(())
    }

    /// Flushes and closes an output file.
    pub fn close_output(&mut self) -> Result<(), ShellError> {
        if let Output::Text { file, .. } = &mut self.output {
            file.flush()?;
        }
        self.output = Output::Stdout;
        Ok(())
    }

    /// Runs a script: SQL statements ending in `;` and dot-commands, each on
    /// its own line. A final statement without `;` runs too.
    pub async fn run_script(&mut self, text: &str) -> Result<Flow, ShellError> {
        let mut buffer = String::new();
        for line in text.lines() {
            if buffer.trim().is_empty() && line.trim_start().starts_with('.') {
                buffer.clear();
                if self.dot(line.trim()).await? == Flow::Quit {
                    return Ok(Flow::Quit);
                }
                continue;
            }
            buffer.push_str(line);
            buffer.push('\n');
            if is_complete(&buffer) {
                self.run_sql(&buffer).await?;
                buffer.clear();
            }
        }
        if !buffer.trim().is_empty() {
            self.run_sql(&buffer).await?;
        }
        Ok(Flow::Continue)
    }

    /// Runs SQL text, printing each statement's result.
    pub async fn run_sql(&mut self, sql: &str) -> Result<(), ShellError> {
        for statement in split_statements(sql)? {
            self.run_statement(&statement).await?;
        }
        Ok(())
    }

    async fn run_statement(&mut self, statement: &Statement) -> Result<(), ShellError> {
        let started = Instant::now();
        let result = self.session.execute(statement).await?;
        let progress = Progress::start(result.progress(), started, self.progress_after);
        self.render(result, progress).await?;
        if self.timer {
            eprintln!("Run Time: {:.3} s", started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    async fn render(&mut self, mut result: QueryResult, mut progress: Progress) -> Result<(), ShellError> {
        if !result.has_columns() {
            result.drain().await?;
            return Ok(());
        }
        let schema = result.schema();
        match &mut self.output {
            Output::Parquet { path, written } => {
                if *written {
                    return Err(ShellError::Usage(format!(
                        "'{}' already holds a result; a Parquet output file takes one",
                        path.display()
                    )));
                }
                let file = File::create(&*path)
                    .map_err(|e| ShellError::Usage(format!("cannot write '{}': {e}", path.display())))?;
                let mut writer = ArrowWriter::try_new(file, schema, None).map_err(parquet_error)?;
                while let Some(batch) = result.next().await {
                    writer.write(&batch?).map_err(parquet_error)?;
                }
                progress.finish();
                writer.close().map_err(parquet_error)?;
                *written = true;
                Ok(())
            }
            Output::Text { file, .. } => {
                let limits = TableLimits { max_rows: self.max_rows, ..TableLimits::default() };
                stream_into(result, renderer(self.mode, schema, Box::new(file), limits), progress, false).await
            }
            Output::Stdout => {
                let stdout = io::stdout();
                let max_width = if stdout.is_terminal() {
                    crossterm::terminal::size().ok().map(|(w, _)| usize::from(w))
                } else {
                    None
                };
                let limits = TableLimits { max_rows: self.max_rows, max_width, ..TableLimits::default() };
                // rows printed as they come to the terminal would mix with the progress line
                let clear_early = stdout.is_terminal() && !self.mode.writes_at_end();
                let out = BufWriter::new(stdout);
                stream_into(result, renderer(self.mode, schema, Box::new(out), limits), progress, clear_early).await
            }
        }
    }

    /// Runs one dot-command.
    pub async fn dot(&mut self, line: &str) -> Result<Flow, ShellError> {
        let mut parts = line.split_whitespace();
        let command = parts.next().unwrap_or_default();
        let args: Vec<&str> = parts.collect();
        match command {
            ".help" => print!("{HELP}"),
            ".quit" | ".exit" | ".q" => return Ok(Flow::Quit),
            ".mode" => match args.as_slice() {
                [] => println!("{}", self.mode),
                [m] => self.mode = m.parse().map_err(|e: pintail_format::UnknownMode| ShellError::Usage(e.to_string()))?,
                _ => return Err(usage(".mode [MODE]")),
            },
            ".timer" => match args.as_slice() {
                ["on"] => self.timer = true,
                ["off"] => self.timer = false,
                _ => return Err(usage(".timer on|off")),
            },
            ".maxrows" => match args.as_slice() {
                [n] => self.max_rows = n.parse().map_err(|_| usage(".maxrows N (a whole number, 0 for all)"))?,
                [] => println!("{}", self.max_rows),
                _ => return Err(usage(".maxrows N")),
            },
            ".tables" => self.tables().await?,
            ".schema" => self.schema(args.first().copied()).await?,
            ".read" => match args.as_slice() {
                [path] => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| ShellError::Usage(format!("cannot read '{path}': {e}")))?;
                    return Box::pin(self.run_script(&text)).await;
                }
                _ => return Err(usage(".read FILE")),
            },
            ".output" | ".once" => match args.as_slice() {
                [] => self.set_output(None)?,
                [path] => self.set_output(Some(Path::new(path)))?,
                _ => return Err(usage(".output [FILE]")),
            },
            ".memory_limit" | ".threads" => {
                let name = SettingName::parse(&command[1..]).ok_or_else(|| usage(".help"))?;
                match args.as_slice() {
                    [] => println!("{}", self.session.settings().get(name)),
                    [v] => self.session.set(name, v)?,
                    _ => return Err(usage(&format!("{command} [VALUE]"))),
                }
            }
            other => {
                return Err(ShellError::Usage(format!("unknown command '{other}'; .help lists the commands")));
            }
        }
        Ok(Flow::Continue)
    }

    async fn tables(&mut self) -> Result<(), ShellError> {
        let tables = self.session.tables().await?;
        let (catalog, schema) = self.session.current_schema();
        let mut out = io::stdout().lock();
        for t in tables {
            let name = if t.catalog == catalog && t.schema == schema {
                t.name
            } else {
                format!("{}.{}.{}", t.catalog, t.schema, t.name)
            };
            writeln!(out, "{name}")?;
        }
        Ok(())
    }

    async fn schema(&mut self, only: Option<&str>) -> Result<(), ShellError> {
        let tables = self.session.tables().await?;
        let mut out = io::stdout().lock();
        let mut found = false;
        for t in tables {
            if only.is_some_and(|n| !n.eq_ignore_ascii_case(&t.name)) {
                continue;
            }
            found = true;
            let cols: Vec<String> = t
                .columns
                .fields()
                .iter()
                .map(|f| {
                    let not_null = if f.is_nullable() { "" } else { " NOT NULL" };
                    format!("{} {}{not_null}", quote_ident(f.name()), sql_type_name(f.data_type()))
                })
                .collect();
            writeln!(out, "CREATE TABLE {}({});", quote_ident(&t.name), cols.join(", "))?;
        }
        if let (Some(name), false) = (only, found) {
            return Err(ShellError::Usage(format!("no table named '{name}'")));
        }
        Ok(())
    }
}

/// Feeds the result to a renderer; the progress line goes before anything
/// is written, or at the first rows when `clear_early`.
async fn stream_into(
    mut result: QueryResult,
    mut r: Box<dyn pintail_format::Renderer + '_>,
    mut progress: Progress,
    clear_early: bool,
) -> Result<(), ShellError> {
    while let Some(batch) = result.next().await {
        let batch: RecordBatch = batch?;
        if clear_early {
            progress.finish();
        }
        r.push(&batch)?;
    }
    progress.finish();
    r.finish()?;
    Ok(())
}

#[expect(clippy::needless_pass_by_value, reason = "used as map_err(parquet_error)")]
fn parquet_error(e: pintail_core::datafusion::parquet::errors::ParquetError) -> ShellError {
    ShellError::Io(io::Error::other(e.to_string()))
}

fn usage(text: &str) -> ShellError {
    ShellError::Usage(format!("usage: {text}"))
}

fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

/// The text mode an output file's extension asks for.
pub fn mode_for_extension(ext: &str) -> Option<OutputMode> {
    Some(match ext {
        "csv" => OutputMode::Csv,
        "tsv" | "tab" => OutputMode::Tsv,
        "json" => OutputMode::Json,
        "jsonl" | "ndjson" => OutputMode::Jsonl,
        "md" | "markdown" => OutputMode::Markdown,
        "txt" => OutputMode::Box,
        _ => return None,
    })
}
