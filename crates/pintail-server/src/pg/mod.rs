//! The Postgres wire protocol front end.
//!
//! Each accepted connection runs as its own task with its own
//! [`Session`]; a statement runs inside that task, so a slow query holds up
//! only its own client (DataFusion spreads the query's work over the
//! runtime's threads), and the accept loop keeps taking connections.
//!
//! The simple query flow splits the text into statements and runs them in
//! order, stopping at the first error, as Postgres does. The extended flow
//! plans a statement when it is parsed, to describe its parameters and its
//! columns, and runs it with its parameters bound as typed values.

mod errors;
mod params;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use futures::{Sink, StreamExt, stream};
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pintail_core::datafusion::common::ScalarValue;
use pintail_core::datafusion::sql::sqlparser::keywords::Keyword;
use pintail_core::datafusion::sql::sqlparser::tokenizer::Token;
use pintail_core::{Bindings, Error, Result, Session, Statement, StatementKind, split_statements};
use tokio::net::TcpListener;

use crate::ServeOptions;
use crate::log;
use errors::{to_pg, user};

/// Takes connections from `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, options: ServeOptions) {
    let options = Arc::new(options);
    let ids = AtomicU64::new(1);
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // out of file descriptors and the like: the listener itself is fine
                log::line(&[("event", "accept_error"), ("error", &e.to_string())]);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let options = Arc::clone(&options);
        tokio::spawn(async move {
            let started = Instant::now();
            let session = match options.session() {
                Ok(s) => s,
                Err(e) => {
                    log::line(&[("event", "connection_refused"), ("client", &peer.to_string()), ("error", e.message())]);
                    return;
                }
            };
            log::line(&[("event", "connect"), ("connection", &id.to_string()), ("client", &peer.to_string())]);
            let handlers = Arc::new(Handlers::new(session, peer, id));
            let outcome = pgwire::tokio::process_socket(socket, None, Factory(Arc::clone(&handlers))).await;
            let queries = handlers.queries.load(Ordering::Relaxed).to_string();
            let duration = format!("{:.3}", started.elapsed().as_secs_f64());
            let id = id.to_string();
            let mut line = vec![
                ("event", "disconnect"),
                ("connection", id.as_str()),
                ("queries", queries.as_str()),
                ("duration_s", duration.as_str()),
            ];
            let error = outcome.err().map(|e| e.to_string());
            if let Some(e) = &error {
                line.push(("error", e));
            }
            log::line(&line);
        });
    }
}

/// A statement prepared by the extended flow: the statement with its
/// placeholders numbered, the types of its parameters and its columns, as
/// far as planning tells.
#[derive(Debug, Clone)]
pub struct Prepared {
    statement: Statement,
    param_types: Vec<Type>,
    /// `None`: the statement returns no rows.
    schema: Option<SchemaRef>,
}

/// One connection's handlers, over its session.
pub(crate) struct Handlers {
    session: Session,
    peer: SocketAddr,
    id: u64,
    queries: AtomicUsize,
    parser: Arc<Parser>,
}

impl Handlers {
    fn new(session: Session, peer: SocketAddr, id: u64) -> Self {
        Self {
            parser: Arc::new(Parser { session: session.clone() }),
            session,
            peer,
            id,
            queries: AtomicUsize::new(0),
        }
    }

    /// Runs `statement` with `params`; a result with rows is streamed in
    /// `format`.
    async fn run(&self, statement: &Statement, params: Vec<ScalarValue>, format: &Format) -> Result<Response> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let log = QueryLog::new(self.id, self.peer, statement.text());
        let verb = Verb::of(statement);
        let bindings = Bindings { params, tables: Vec::new() };
        let result = match self.session.execute_with(statement, bindings).await {
            Ok(r) => r,
            Err(e) => {
                log.fail(&e);
                return Err(e);
            }
        };
        match verb {
            Verb::Rows if result.has_columns() => {
                let fields = Arc::new(
                    arrow_pg::datatypes::arrow_schema_to_pg_fields(&result.schema(), format, None)
                        .map_err(|e| Error::new(pintail_core::ErrorKind::NotSupported, e.to_string()))?,
                );
                let rows = encode(result, Arc::clone(&fields), log);
                Ok(Response::Query(QueryResponse::new(fields, rows)))
            }
            Verb::Changed(tag) => {
                let batches = match result.collect().await {
                    Ok(b) => b,
                    Err(e) => {
                        log.fail(&e);
                        return Err(e);
                    }
                };
                let count = pintail_core::changed_rows(&batches).map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
                log.rows(count);
                let tag = if tag == "INSERT" { Tag::new(tag).with_oid(0) } else { Tag::new(tag) };
                Ok(Response::Execution(tag.with_rows(count)))
            }
            verb => {
                if let Err(e) = result.drain().await {
                    log.fail(&e);
                    return Err(e);
                }
                Ok(match verb {
                    Verb::Begin => Response::TransactionStart(Tag::new("BEGIN")),
                    Verb::Commit => Response::TransactionEnd(Tag::new("COMMIT")),
                    Verb::Rollback => Response::TransactionEnd(Tag::new("ROLLBACK")),
                    Verb::Other(tag) => Response::Execution(Tag::new(&tag)),
                    Verb::Rows | Verb::Changed(_) => Response::Execution(Tag::new("SELECT").with_rows(0)),
                })
            }
        }
    }
}

/// What a statement answers, by its first words.
enum Verb {
    /// Rows (a query, `SHOW`, `DESCRIBE`, `EXPLAIN`, ...).
    Rows,
    /// A count of changed rows under this command tag.
    Changed(&'static str),
    Begin,
    Commit,
    Rollback,
    /// Nothing but a command tag (`CREATE TABLE`, `SET`).
    Other(String),
}

impl Verb {
    fn of(statement: &Statement) -> Self {
        let words: Vec<&str> = statement
            .tokens()
            .iter()
            .filter_map(|t| match &t.token {
                Token::Word(w) if w.quote_style.is_none() => Some(w.value.as_str()),
                _ => None,
            })
            .take(2)
            .collect();
        let first = statement.tokens().first().map(|t| &t.token);
        let keyword = match first {
            Some(Token::Word(w)) => w.keyword,
            Some(Token::LParen) => return Self::Rows,
            _ => Keyword::NoKeyword,
        };
        match keyword {
            Keyword::INSERT => Self::Changed("INSERT"),
            Keyword::UPDATE => Self::Changed("UPDATE"),
            Keyword::DELETE => Self::Changed("DELETE"),
            Keyword::MERGE => Self::Changed("MERGE"),
            Keyword::BEGIN | Keyword::START => Self::Begin,
            Keyword::COMMIT | Keyword::END => Self::Commit,
            Keyword::ROLLBACK | Keyword::ABORT => Self::Rollback,
            Keyword::CREATE | Keyword::DROP | Keyword::ALTER => {
                Self::Other(words.iter().map(|w| w.to_ascii_uppercase()).collect::<Vec<_>>().join(" "))
            }
            Keyword::SET | Keyword::RESET | Keyword::ATTACH | Keyword::DETACH | Keyword::USE | Keyword::COPY | Keyword::VACUUM
            | Keyword::OPTIMIZE => Self::Other(words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default()),
            _ if statement.kind() == StatementKind::Set || statement.kind() == StatementKind::Reset => {
                Self::Other("SET".to_owned())
            }
            _ => Self::Rows,
        }
    }
}

/// A result's batches as data rows, logged when the stream ends or is
/// dropped.
fn encode(
    result: pintail_core::QueryResult,
    fields: Arc<Vec<FieldInfo>>,
    log: QueryLog,
) -> impl futures::Stream<Item = PgWireResult<pgwire::messages::data::DataRow>> + Send + 'static {
    let log = Arc::new(log);
    result.flat_map(move |batch| {
        let rows: Vec<PgWireResult<_>> = match batch {
            Ok(batch) => {
                log.rows(batch.num_rows());
                arrow_pg::datatypes::encode_recordbatch(Arc::clone(&fields), batch).collect()
            }
            Err(e) => {
                log.fail(&e);
                vec![Err(to_pg(&e))]
            }
        };
        stream::iter(rows)
    })
}

/// One log line per query, written when the query is done with: its
/// client, duration, rows and error.
struct QueryLog {
    connection: u64,
    peer: SocketAddr,
    query: String,
    started: Instant,
    rows: AtomicUsize,
    error: std::sync::Mutex<Option<String>>,
}

impl QueryLog {
    fn new(connection: u64, peer: SocketAddr, query: &str) -> Self {
        Self {
            connection,
            peer,
            query: query.to_owned(),
            started: Instant::now(),
            rows: AtomicUsize::new(0),
            error: std::sync::Mutex::new(None),
        }
    }

    fn rows(&self, n: usize) {
        self.rows.fetch_add(n, Ordering::Relaxed);
    }

    fn fail(&self, e: &Error) {
        if let Ok(mut error) = self.error.lock() {
            *error = Some(e.message().to_owned());
        }
    }
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        let connection = self.connection.to_string();
        let client = self.peer.to_string();
        let duration = format!("{:.3}", self.started.elapsed().as_secs_f64() * 1000.0);
        let rows = self.rows.load(Ordering::Relaxed).to_string();
        let mut line = vec![
            ("event", "query"),
            ("connection", connection.as_str()),
            ("client", client.as_str()),
            ("duration_ms", duration.as_str()),
            ("rows", rows.as_str()),
        ];
        let error = self.error.lock().ok().and_then(|e| e.clone());
        if let Some(e) = &error {
            line.push(("error", e));
        }
        line.push(("query", &self.query));
        log::line(&line);
    }
}

#[async_trait]
impl SimpleQueryHandler for Handlers {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = match split_statements(query) {
            Ok(s) => s,
            Err(e) => return Ok(vec![Response::Error(Box::new(errors::info(&e)))]),
        };
        let mut out = Vec::with_capacity(statements.len());
        for statement in &statements {
            match self.run(statement, Vec::new(), &Format::UnifiedText).await {
                Ok(response) => out.push(response),
                Err(e) => {
                    // Postgres runs none of the statements after a failed one
                    out.push(Response::Error(Box::new(errors::info(&e))));
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Handlers {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(&self, _client: &mut C, portal: &Portal<Self::Statement>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let values = params::values(portal)?;
        let prepared = &portal.statement.statement;
        self.run(&prepared.statement, values, &portal.result_column_format).await.map_err(|e| to_pg(&e))
    }
}

impl NoopStartupHandler for Handlers {}

/// Hands pgwire one connection's handlers.
struct Factory(Arc<Handlers>);

impl PgWireServerHandlers for Factory {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.0)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.0)
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::clone(&self.0)
    }
}

/// Plans statements for the extended flow.
pub(crate) struct Parser {
    session: Session,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, _types: &[Option<Type>]) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = split_statements(sql).map_err(|e| to_pg(&e))?;
        let statement = match (statements.pop(), statements.is_empty()) {
            (None, _) => return Ok(None),
            (Some(s), true) => s,
            (Some(_), false) => {
                return Err(user(
                    "42601",
                    "a prepared statement holds one statement; send each on its own or use the simple query protocol",
                ));
            }
        };
        let (statement, count) = statement.with_numbered_parameters().map_err(|e| to_pg(&e))?;
        let (param_types, schema) = describe(&self.session, &statement, count).await.map_err(|e| to_pg(&e))?;
        Ok(Some(Prepared { statement, param_types, schema }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt.param_types.clone())
    }

    fn get_result_schema(&self, stmt: &Prepared, column_format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        let Some(schema) = &stmt.schema else { return Ok(Vec::new()) };
        arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, column_format.unwrap_or(&Format::UnifiedText), None)
    }
}

/// The parameter types and the columns of `statement`: from its plan, for
/// a statement DataFusion plans; `SHOW`, `DESCRIBE` and `SUMMARIZE`, which
/// take no parameters, are run once to learn their columns.
async fn describe(session: &Session, statement: &Statement, count: usize) -> Result<(Vec<Type>, Option<SchemaRef>)> {
    let returns_rows = matches!(Verb::of(statement), Verb::Rows);
    if statement.kind() != StatementKind::Other {
        if !returns_rows || count > 0 {
            return Ok((vec![Type::UNKNOWN; count], None));
        }
        let result = session.execute(statement).await?;
        let schema = result.schema();
        return Ok((Vec::new(), Some(schema).filter(|s| !s.fields().is_empty())));
    }
    let plan = session.plan_statement(session.parse_one(statement.text())?).await?;
    let types = plan.get_parameter_types().map_err(Error::from)?;
    let param_types = (1..=count).map(|n| params::pg_type(types.get(&format!("${n}")).cloned().flatten().as_ref())).collect();
    let schema = returns_rows.then(|| Arc::clone(plan.schema().inner())).filter(|s| !s.fields().is_empty());
    Ok((param_types, schema))
}
