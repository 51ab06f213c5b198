//! The MCP server's tools, resources and prompt over one Pintail session.
//!
//! A tool's failure (bad SQL, a refused statement, the time limit) is a
//! tool result marked as an error, with Pintail's message and hint, so the
//! model reads it and can correct itself; protocol errors are kept for
//! protocol mistakes (an unknown resource).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pintail_core::{Error, ErrorKind, QueryResult, ReadOnly, Result, Session, StatementKind, split_statements};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourcesResult, PaginatedRequestParams,
    PromptMessage, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, Role,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, prompt, prompt_handler, prompt_router, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::time::Instant;

use crate::McpOptions;
use crate::budget::{self, Budget, Format};
use crate::catalog;

/// The scheme of the tables' resources: `pintail://table/NAME`.
const TABLE_URI: &str = "pintail://table/";

/// What the server tells a client about itself, for the model.
const INSTRUCTIONS: &str = "Pintail is an analytical SQL engine (DuckDB-like SQL on Apache DataFusion). \
Start with list_tables, then describe a table or file, then query. Files are queried in place: \
SELECT * FROM 'data/sales.parquet', globs like 'logs/*.csv', and read_csv/read_json/read_parquet. \
Results are cut to a budget of rows and characters; aggregate, filter or select fewer columns to see what matters.";

/// The server: a session and what calls may ask of it.
#[derive(Clone)]
pub(crate) struct Pintail {
    inner: Arc<Inner>,
    tool_router: ToolRouter<Self>,
    prompt_router: PromptRouter<Self>,
}

struct Inner {
    session: Session,
    read_only: bool,
    timeout: Duration,
    ceiling: Budget,
    /// Local directories whose data files `list_tables` shows.
    roots: Vec<PathBuf>,
    database: Option<PathBuf>,
}

/// `query`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct QueryArgs {
    /// One SQL statement (DuckDB-style SQL). Read files in place with
    /// FROM 'path/file.parquet' or a glob.
    sql: String,
    /// Most rows to return (default 100).
    max_rows: Option<u64>,
    /// Most characters of the reply (default 20000, about 5000 tokens).
    max_chars: Option<u64>,
    /// Table format: markdown (default) or csv (shorter for wide results).
    format: Option<Format>,
}

/// Arguments naming what to look at.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct TargetArgs {
    /// A table or view name, a file path or glob (data/*.parquet), or a
    /// SELECT query.
    target: String,
    /// Most rows to return (default 100).
    max_rows: Option<u64>,
    /// Most characters of the reply (default 20000, about 5000 tokens).
    max_chars: Option<u64>,
}

/// `explain`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ExplainArgs {
    /// The query to explain (it is planned, not run).
    sql: String,
}

/// The prompt's arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ExploreArgs {
    /// What to explore: a table, a file or glob, or a question about the
    /// data (optional).
    focus: Option<String>,
}

/// A tool's reply: its text, or its error as the model should read it.
fn reply(result: Result<String>) -> CallToolResult {
    match result {
        Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
        Err(e) => {
            let mut text = format!("error: {}", e.message());
            if let Some(hint) = e.hint() {
                let _ = write!(text, "\nhint: {hint}");
            }
            CallToolResult::error(vec![ContentBlock::text(text)])
        }
    }
}

#[tool_router]
impl Pintail {
    pub(crate) fn new(session: Session, options: &McpOptions, roots: Vec<PathBuf>) -> Self {
        let inner = Inner {
            session,
            read_only: !options.read_write,
            timeout: options.query_timeout,
            ceiling: options.ceiling,
            roots,
            database: options.database.clone(),
        };
        Self { inner: Arc::new(inner), tool_router: Self::tool_router(), prompt_router: Self::prompt_router() }
    }

    #[tool(
        description = "List the tables and views of the database, and the data files (Parquet, CSV, JSON, Arrow, Avro) \
                       this server may read, with their column and row counts where they are cheap to know. Start here.",
        annotations(read_only_hint = true)
    )]
    async fn list_tables(&self) -> CallToolResult {
        let inner = &self.inner;
        reply(self.limited("list_tables", "", catalog::list(&inner.session, &inner.roots, inner.database.as_deref())).await)
    }

    #[tool(
        description = "Describe a table, view, file, glob or query: its columns with their types and null counts, \
                       the row count, and a few sample rows.",
        annotations(read_only_hint = true)
    )]
    async fn describe(&self, Parameters(args): Parameters<TargetArgs>) -> CallToolResult {
        let (budget, capped) = Budget::asked(args.max_rows.or(Some(5)), args.max_chars, self.inner.ceiling);
        reply(self.limited("describe", &args.target, self.describe_target(&args.target, budget, capped)).await)
    }

    #[tool(
        description = "Run SQL and return the result as a compact table (markdown or csv). Results are cut at max_rows \
                       rows and max_chars characters; the reply then says how many rows and columns were left out. \
                       Prefer aggregates, filters and a few columns over reading raw rows.",
        annotations(read_only_hint = true)
    )]
    async fn query(&self, Parameters(args): Parameters<QueryArgs>) -> CallToolResult {
        let (budget, capped) = Budget::asked(args.max_rows, args.max_chars, self.inner.ceiling);
        let format = args.format.unwrap_or_default();
        reply(
            self.limited("query", &args.sql, async {
                let (result, deadline) = self.run(&args.sql, true).await?;
                let read = budget::read(result, budget.max_rows, deadline).await?;
                Ok(with_note(budget::table(&read, budget, format)?, capped))
            })
            .await,
        )
    }

    #[tool(
        description = "Summary statistics of every column of a table, view, file or query (SUMMARIZE): type, min, max, \
                       approximate distinct count, average, standard deviation, quartiles, count and null percentage.",
        annotations(read_only_hint = true)
    )]
    async fn summarize(&self, Parameters(args): Parameters<TargetArgs>) -> CallToolResult {
        let (budget, capped) = Budget::asked(args.max_rows, args.max_chars, self.inner.ceiling);
        reply(
            self.limited("summarize", &args.target, async {
                let relation = relation(&args.target)?;
                let (result, deadline) = self.run(&format!("SUMMARIZE {relation}"), false).await?;
                let read = budget::read(result, budget.max_rows, deadline).await?;
                Ok(with_note(budget::table(&read, budget, Format::Markdown)?, capped))
            })
            .await,
        )
    }

    #[tool(
        description = "Show the plan of a query without running it (EXPLAIN): the tables and files it reads, its \
                       filters, joins and aggregates, to check the cost before running it.",
        annotations(read_only_hint = true)
    )]
    async fn explain(&self, Parameters(args): Parameters<ExplainArgs>) -> CallToolResult {
        reply(
            self.limited("explain", &args.sql, async {
                let sql = args.sql.trim().trim_end_matches(';');
                let first = sql.split_whitespace().next().unwrap_or_default();
                if first.eq_ignore_ascii_case("EXPLAIN") {
                    return Err(Error::new(ErrorKind::Syntax, "give the query alone; explain adds EXPLAIN"));
                }
                // EXPLAIN ANALYZE would run it (and any write in it)
                if first.eq_ignore_ascii_case("ANALYZE") {
                    return Err(Error::new(ErrorKind::Syntax, "explain shows the plan without running the query")
                        .with_hint("give the query alone; to run it, use the query tool"));
                }
                let (result, _) = self.run(&format!("EXPLAIN {sql}"), false).await?;
                let batches = result.collect().await?;
                let mut out = String::new();
                for batch in &batches {
                    for row in 0..batch.num_rows() {
                        let cell = |c: usize| pintail_format::format_cell(batch.column(c).as_ref(), row).unwrap_or_default();
                        let _ = writeln!(out, "## {}\n```\n{}\n```", cell(0), cell(1));
                    }
                }
                Ok(budget::text(out, Budget::DEFAULT.max_chars))
            })
            .await,
        )
    }
}

impl Pintail {
    /// `work`, the call of `tool` on `subject` (its SQL or target), within
    /// the call's time limit; logged as one line on stderr.
    async fn limited(&self, tool: &str, subject: &str, work: impl Future<Output = Result<String>>) -> Result<String> {
        let started = Instant::now();
        let timeout = self.inner.timeout;
        let outcome = tokio::time::timeout(timeout, work).await.unwrap_or_else(|_| {
            Err(Error::new(ErrorKind::Cancelled, format!("the call ran over its time limit ({})", duration(timeout)))
                .with_hint("narrow the query (filter, LIMIT, fewer files), or ask EXPLAIN what it reads"))
        });
        let elapsed = format!("{:.3}", started.elapsed().as_secs_f64() * 1000.0);
        let chars = outcome.as_ref().map(|text| text.chars().count().to_string()).unwrap_or_default();
        let mut line = vec![("event", "call"), ("tool", tool), ("duration_ms", elapsed.as_str())];
        match &outcome {
            Ok(_) => line.push(("chars", chars.as_str())),
            Err(e) => line.push(("error", e.message())),
        }
        if !subject.is_empty() {
            line.push(("sql", subject));
        }
        crate::log(&line);
        outcome
    }

    /// Runs `sql`: every statement in it is checked before any runs (in a
    /// read-only server, each must be one that only reads); the last one's
    /// result is returned with the call's deadline. `many`: whether more
    /// than one statement may be given (the query tool), else exactly one.
    async fn run(&self, sql: &str, many: bool) -> Result<(QueryResult, Instant)> {
        let deadline = Instant::now() + self.inner.timeout;
        let statements = split_statements(sql)?;
        let Some((last, before)) = statements.split_last() else {
            return Err(Error::new(ErrorKind::Syntax, "there is no SQL statement to run"));
        };
        if !many && !before.is_empty() {
            return Err(Error::new(ErrorKind::Syntax, "give one table, file or query, not several statements"));
        }
        if self.inner.read_only {
            for statement in &statements {
                ReadOnly::new().check(statement).map_err(|e| {
                    let hint = "this MCP server is read-only (pintail mcp --read-write lets statements write)";
                    e.with_hint(hint)
                })?;
            }
        }
        let session = &self.inner.session;
        for statement in before {
            session.execute(statement).await?.drain().await?;
        }
        Ok((session.execute(last).await?, deadline))
    }

    async fn describe_target(&self, target: &str, budget: Budget, capped: Option<String>) -> Result<String> {
        let from = from_clause(&relation(target)?);
        // the sample rows first: their result gives the columns
        let (result, deadline) = self.run(&format!("SELECT * FROM {from} LIMIT {}", budget.max_rows), false).await?;
        let sample = budget::read(result, budget.max_rows, deadline).await?;
        let schema = Arc::clone(&sample.schema);
        if schema.fields().is_empty() {
            return Ok(format!("{target} has no columns"));
        }
        // one pass for the row count and each column's nulls
        let counts: Vec<String> = std::iter::once("count(*)".to_owned())
            .chain(schema.fields().iter().map(|f| format!("count(\"{}\")", f.name().replace('"', "\"\""))))
            .collect();
        let (result, _) = self.run(&format!("SELECT {} FROM {from}", counts.join(", ")), false).await?;
        let batches = result.collect().await?;
        let batch = batches.iter().find(|b| b.num_rows() > 0).ok_or_else(|| Error::internal("no counts", None))?;
        let number = |c: usize| {
            pintail_format::format_cell(batch.column(c).as_ref(), 0).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        let rows = number(0);
        let mut out = format!(
            "{target}: {} rows, {} columns\n\n| column | type | nulls |\n| --- | --- | ---: |\n",
            pintail_format::group_digits(rows),
            schema.fields().len()
        );
        for (i, f) in schema.fields().iter().enumerate() {
            let nulls = rows.saturating_sub(number(i + 1));
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                f.name().replace('|', "\\|"),
                pintail_format::types::sql_type_name(f.data_type()),
                pintail_format::group_digits(nulls)
            );
        }
        let left = Budget { max_rows: budget.max_rows, max_chars: budget.max_chars.saturating_sub(out.len()) };
        out.push_str("\nSample rows:\n");
        out.push_str(&budget::table(&sample, left, Format::Markdown)?);
        Ok(with_note(out, capped))
    }
}

/// `text` with the note that a call asked for more than the server gives.
fn with_note(text: String, note: Option<String>) -> String {
    match note {
        Some(note) => format!("{text}\n{note}"),
        None => text,
    }
}

fn duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) { format!("{} s", d.as_secs()) } else { format!("{} ms", d.as_millis()) }
}

/// What `describe` or `summarize` was given, as SQL that names it: a query
/// as is, a table as is, and a file path or glob quoted. One statement
/// only.
fn relation(target: &str) -> Result<String> {
    let target = target.trim().trim_end_matches(';').trim();
    if target.is_empty() {
        return Err(Error::new(ErrorKind::Syntax, "give a table, a file or a query"));
    }
    let query = is_query(target);
    // a path or glob, unquoted (no SQL: `logs/*.csv` would be a comment)
    let lower = target.to_ascii_lowercase();
    let file_ending = [".parquet", ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".arrow", ".feather", ".ipc", ".avro", ".gz", ".zst"]
        .iter()
        .any(|end| lower.ends_with(end));
    let path_like = !query && !target.contains(['\'', '"', '(', ' ']) && (target.contains(['/', '\\', '*']) || file_ending);
    if path_like {
        return Ok(format!("'{target}'"));
    }
    let statements = split_statements(target)?;
    if statements.len() > 1 {
        return Err(Error::new(ErrorKind::Syntax, "give one table, file or query, not several statements"));
    }
    // a table name, a quoted path, a function call or a query
    if statements.first().is_some_and(|s| s.kind() != StatementKind::Other) {
        return Err(Error::new(ErrorKind::Syntax, "give a table, a file or a query"));
    }
    Ok(target.to_owned())
}

/// Whether `text` is a query (as `Session::plan_relation` tells one from
/// a table or file).
fn is_query(text: &str) -> bool {
    let first = text.split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or_default().to_ascii_uppercase();
    matches!(first.as_str(), "SELECT" | "WITH" | "VALUES" | "FROM") || text.starts_with('(')
}

/// `relation` as a FROM clause: a query in parentheses.
fn from_clause(relation: &str) -> String {
    if is_query(relation) {
        format!("({relation}) AS t")
    } else {
        relation.to_owned()
    }
}

#[prompt_router]
impl Pintail {
    #[prompt(
        name = "explore_dataset",
        description = "Explore the data this server can reach: what there is, its shape and quality, and what questions it can answer"
    )]
    async fn explore_dataset(&self, Parameters(args): Parameters<ExploreArgs>) -> Vec<PromptMessage> {
        let focus = args.focus.as_deref().map(str::trim).filter(|f| !f.is_empty());
        let start = match focus {
            Some(focus) => format!("Explore {focus} with the Pintail tools."),
            None => "Explore the data available through the Pintail tools.".to_owned(),
        };
        let text = format!(
            "{start}\n\n\
             1. Call list_tables to see the tables, views and data files, with their sizes.\n\
             2. For the most relevant ones, call describe: columns, types, null counts and sample rows.\n\
             3. Call summarize for value ranges, distinct counts and missing values of the main columns.\n\
             4. Ask a few questions with query, using aggregates (GROUP BY, count, avg) and filters rather than \
             reading raw rows; use explain first for a query over large files.\n\
             5. Report what the data holds, how its tables and files relate (keys shared between them), \
             data quality problems you saw, and questions it can answer, with the SQL you ran."
        );
        vec![PromptMessage::new_text(Role::User, text)]
    }
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for Pintail {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_tools().enable_resources().enable_prompts().build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("pintail", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListResourcesResult, ErrorData> {
        let session = &self.inner.session;
        let tables = catalog::tables(session).await.map_err(|e| ErrorData::internal_error(e.message().to_owned(), None))?;
        let resources = tables
            .iter()
            .map(|t| {
                let name = catalog::sql_name(session, t);
                Resource::new(format!("{TABLE_URI}{name}"), name.clone())
                    .with_description(format!("columns and types of {name}"))
                    .with_mime_type("text/markdown")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ReadResourceResponse, ErrorData> {
        let session = &self.inner.session;
        let not_found = || ErrorData::resource_not_found(format!("no resource '{}'", request.uri), None);
        let name = request.uri.strip_prefix(TABLE_URI).ok_or_else(not_found)?;
        let tables = catalog::tables(session).await.map_err(|e| ErrorData::internal_error(e.message().to_owned(), None))?;
        let table = tables.iter().find(|t| catalog::sql_name(session, t) == name).ok_or_else(not_found)?;
        let text = catalog::schema_text(session, table);
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri.clone())]).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_named_as_sql() {
        let named = |t: &str| relation(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(named("cars"), "cars");
        assert_eq!(named("main.cars;"), "main.cars");
        assert_eq!(named("data/cars.parquet"), "'data/cars.parquet'");
        assert_eq!(named("logs/*.csv"), "'logs/*.csv'");
        assert_eq!(named("'o''brien.csv'"), "'o''brien.csv'");
        assert_eq!(named("read_csv('data/a.csv')"), "read_csv('data/a.csv')");
        assert_eq!(named("'x.csv'"), "'x.csv'");
        assert_eq!(named("SELECT 1 AS x"), "SELECT 1 AS x");
        assert_eq!(named("read_csv('a.csv')"), "read_csv('a.csv')");
        assert!(relation("cars; DROP TABLE cars").is_err());
        assert!(relation("  ").is_err());
        assert_eq!(from_clause("SELECT 1"), "(SELECT 1) AS t");
        assert_eq!(from_clause("'a.csv'"), "'a.csv'");
    }
}
