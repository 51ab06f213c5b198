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

mod catalog;
mod copy;
mod cursor;
mod errors;
mod params;
mod scram;
mod startup;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use futures::{FutureExt, Sink, StreamExt, TryStreamExt, stream};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler, PgWireServerHandlers, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::Bind;
use pgwire::tokio::TlsAcceptor;
use pintail_core::datafusion::common::ScalarValue;
use pintail_core::{Bindings, Error, ErrorKind, Result, Session, Statement, split_statements};
use tokio::net::TcpListener;
use tokio::runtime::Handle;

use crate::ServeOptions;
use crate::log::{self, QueryLog};
use crate::statement::{Verb, describe};
use crate::stop::Stop;
use errors::{to_pg, user};
use startup::{Refusal, Refused, Startup};

use crate::shutdown::{Counted, Counter, Phase, Shutdown};
use crate::work;

/// Takes connections from `listener` until the server has drained
/// ([`crate::shutdown`]): then every connection has ended.
pub(crate) async fn serve(listener: TcpListener, options: Arc<ServeOptions>, shutdown: Shutdown, work: Handle, clients: Arc<Counter>) -> Result<()> {
    let tls = match &options.tls {
        Some(tls) => Some(TlsAcceptor::from(Arc::new(tls.rustls_config(vec![b"postgresql".to_vec()])?))),
        None => None,
    };
    let end_point = options.tls.as_ref().and_then(|tls| scram::end_point_hash(&tls.certificates[0]));
    let startup = Arc::new(Startup {
        options: Arc::clone(&options),
        cancels: Arc::new(ConnectionManager::new()),
        users: options.users.clone(),
        end_point,
        tls: tls.is_some(),
    });
    let connected = Arc::new(Counter::default());
    let drained = async {
        shutdown.reached(Phase::Draining).await;
        connected.zero().await;
    };
    tokio::pin!(drained);
    loop {
        let accepted = tokio::select! {
            () = &mut drained => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // out of file descriptors and the like: the listener itself is fine
                log::line(&[("event", "accept_error"), ("error", &e.to_string())]);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = log::connection_id();
        let options = Arc::clone(&options);
        let startup = Arc::clone(&startup);
        let tls = tls.clone();
        let slot = connected.enter().0;
        let (client_slot, count) = clients.enter();
        let shutdown = shutdown.clone();
        let client = Client { socket, peer, id, slot: (slot, client_slot), count };
        tokio::spawn(connection(client, options, startup, tls, shutdown, work.clone()));
    }
}

/// One accepted client, counted in the connected clients while it lasts.
struct Client {
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
    id: u64,
    /// Counted in this server's connections, and in the clients of both
    /// protocols.
    slot: (Counted, Counted),
    /// How many clients are connected, this one included.
    count: usize,
}

/// Serves one client from startup to disconnect: refuses it if the server
/// is full or shutting down, else runs its statements on a session of its
/// own, opened when it has logged in ([`startup`]).
async fn connection(client: Client, options: Arc<ServeOptions>, startup: Arc<Startup>, tls: Option<TlsAcceptor>, shutdown: Shutdown, work: Handle) {
    let Client { socket, peer, id, slot, count } = client;
    let started = Instant::now();
    let refusal = if shutdown.phase() >= Phase::Draining {
        Some(Refusal { code: "57P03", message: "the database system is shutting down".to_owned() })
    } else if count > options.max_connections {
        Some(Refusal { code: "53300", message: "sorry, too many clients already".to_owned() })
    } else {
        None
    };
    if let Some(refusal) = refusal {
        log::line(&[("event", "connection_refused"), ("client", &peer.to_string()), ("error", &refusal.message)]);
        // a client that never sends its startup is not waited for long
        // (pgwire would wait a minute, holding up a shutdown)
        if let Ok((socket, reader)) = socket_reader(socket) {
            let ender = Arc::new(EndOnFatal(Arc::new(reader)));
            let refused = pgwire::tokio::process_socket(socket, tls, Refused(Arc::new(refusal), ender));
            let _ = tokio::time::timeout(Duration::from_secs(5), refused).await;
        }
        return;
    }
    log::line(&[("event", "connect"), ("connection", &id.to_string()), ("client", &peer.to_string())]);
    let handlers = Arc::new(Handlers::new(peer, id, startup, options.query_timeout, shutdown.clone(), work));
    let idle_in_shutdown = async {
        shutdown.reached(Phase::Draining).await;
        handlers.parser.running.zero().await;
    };
    // A connection running nothing is closed as the server drains:
    // its reading side is shut, so pgwire ends the connection once
    // it has sent what it was sending (a result's last rows may
    // still be on their way when the statement is done). Ending
    // the session rolls back an open transaction.
    let reader = socket_reader(socket);
    let outcome = match reader {
        Err(e) => Err(e.to_string()),
        Ok((socket, reader)) => {
            let reader = Arc::new(reader);
            let ender = Arc::new(EndOnFatal(Arc::clone(&reader)));
            let connection = pgwire::tokio::process_socket(socket, tls, Factory(Arc::clone(&handlers), ender));
            tokio::pin!(connection);
            tokio::select! {
                outcome = &mut connection => outcome.map_err(|e| e.to_string()),
                () = idle_in_shutdown => {
                    let _ = reader.shutdown(std::net::Shutdown::Read);
                    connection.await.map_err(|e| e.to_string()).and(Err("closed by the server's shutdown".to_owned()))
                }
            }
        }
    };
    // the slot is free before the line says so
    drop(slot);
    let queries = handlers.queries.load(Ordering::Relaxed).to_string();
    let duration = format!("{:.3}", started.elapsed().as_secs_f64());
    let id = id.to_string();
    let mut line = vec![
        ("event", "disconnect"),
        ("connection", id.as_str()),
        ("queries", queries.as_str()),
        ("duration_s", duration.as_str()),
    ];
    if let Err(e) = &outcome {
        line.push(("error", e));
    }
    log::line(&line);
}

/// `socket`, and a second handle on it to shut its reading side from
/// outside pgwire.
fn socket_reader(socket: tokio::net::TcpStream) -> std::io::Result<(tokio::net::TcpStream, std::net::TcpStream)> {
    let socket = socket.into_std()?;
    let reader = socket.try_clone()?;
    Ok((tokio::net::TcpStream::from_std(socket)?, reader))
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
    /// The SQL cursor this is the portal of ([`cursor`]): executing it
    /// fetches the cursor's rows.
    cursor: Option<String>,
}

/// One connection's handlers.
pub(crate) struct Handlers {
    peer: SocketAddr,
    id: u64,
    queries: AtomicUsize,
    parser: Arc<Parser>,
    startup: Arc<Startup>,
}

impl Handlers {
    fn new(peer: SocketAddr, id: u64, startup: Arc<Startup>, timeout: Option<Duration>, shutdown: Shutdown, work: Handle) -> Self {
        Self {
            parser: Arc::new(Parser { work, timeout, shutdown, running: Arc::default(), cursors: cursor::Cursors::default() }),
            peer,
            id,
            queries: AtomicUsize::new(0),
            startup,
        }
    }

    /// Runs `statement` with `params` in `session`, until it is done or
    /// `stop` comes; a result with rows is streamed in `format`.
    async fn run(&self, session: &Session, statement: &Statement, params: Vec<ScalarValue>, format: &Format, stop: &Stop) -> Result<Response> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let log = Arc::new(QueryLog::new(self.id, self.peer, statement.text()));
        tokio::select! {
            biased;
            response = self.respond(session, statement, params, format, stop, Arc::clone(&log)) => response,
            e = stop.clone().wait() => {
                log.fail(&e);
                Err(e)
            }
        }
    }

    async fn respond(
        &self,
        session: &Session,
        statement: &Statement,
        params: Vec<ScalarValue>,
        format: &Format,
        stop: &Stop,
        log: Arc<QueryLog>,
    ) -> Result<Response> {
        let verb = Verb::of(statement);
        let bindings = Bindings { params, tables: Vec::new() };
        if let Some(command) = log.check(cursor::parse(statement))? {
            let response = self.cursor(session, command, bindings, format, stop, Arc::clone(&log)).await;
            return log.check(response);
        }
        if let Some(copy) = log.check(copy::parse(statement))? {
            let result = log.check(work::execute(&self.parser.work, session, &copy.query, bindings).await)?;
            return copy::response(&copy, result, stop.clone(), log).map(Response::CopyOut);
        }
        let result = log.check(work::execute(&self.parser.work, session, statement, bindings).await)?;
        match verb {
            Verb::Rows if result.has_columns() => Ok(Response::Query(rows_response(&result.schema(), result, format, stop, log)?)),
            Verb::Changed(tag) => {
                let batches = log.check(result.collect().await)?;
                let count = pintail_core::changed_rows(&batches).map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
                log.rows(count);
                let tag = if tag == "INSERT" { Tag::new(tag).with_oid(0) } else { Tag::new(tag) };
                Ok(Response::Execution(tag.with_rows(count)))
            }
            verb => {
                log.check(result.drain().await)?;
                if matches!(verb, Verb::Commit | Verb::Rollback) {
                    self.parser.cursors.end_transaction();
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

impl Handlers {
    /// Runs a cursor statement ([`cursor`]).
    async fn cursor(
        &self,
        session: &Session,
        command: cursor::Command,
        bindings: Bindings,
        format: &Format,
        stop: &Stop,
        log: Arc<QueryLog>,
    ) -> Result<Response> {
        match command {
            cursor::Command::Declare { name, hold, query } => {
                if !hold && !pintail_storage::install(session).in_transaction() {
                    return Err(Error::new(ErrorKind::Plan, "DECLARE CURSOR can only be used in transaction blocks")
                        .with_hint("BEGIN first, or declare it WITH HOLD"));
                }
                if !matches!(Verb::of(&query), Verb::Rows) {
                    return Err(Error::new(ErrorKind::Plan, "a cursor is declared for a query (SELECT, VALUES, WITH ...), not for a statement that changes anything"));
                }
                let result = work::execute(&self.parser.work, session, &query, bindings).await?;
                if !result.has_columns() {
                    return Err(Error::new(ErrorKind::Plan, "a cursor is declared for a query that returns rows"));
                }
                self.parser.cursors.declare(&name, cursor::Cursor::new(result, hold))?;
                Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
            }
            cursor::Command::Fetch { name, count } => {
                let cursor = self.parser.cursors.get(&name)?;
                // read before the statement ends: the statements after it
                // in the same simple query run before its rows are sent
                let batches: Vec<RecordBatch> = cursor.rows(&name, count)?.try_collect().await?;
                let mut response = rows_response(&cursor.schema(), stream::iter(batches.into_iter().map(Ok)), format, stop, log)?;
                response.set_command_tag("FETCH");
                Ok(Response::Query(response))
            }
            cursor::Command::Move { name, count } => {
                let mut rows = self.parser.cursors.get(&name)?.rows(&name, count)?.boxed();
                let mut moved = 0;
                while let Some(batch) = rows.next().await {
                    moved += batch?.num_rows();
                }
                Ok(Response::Execution(Tag::new("MOVE").with_rows(moved)))
            }
            cursor::Command::Close { name } => {
                self.parser.cursors.close(name.as_deref())?;
                Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
            }
        }
    }
}

/// `rows` (of `schema`) as a query's response, encoded in `format` as
/// they stream, until `stop` comes.
fn rows_response(
    schema: &SchemaRef,
    rows: impl futures::Stream<Item = Result<RecordBatch>> + Send + 'static,
    format: &Format,
    stop: &Stop,
    log: Arc<QueryLog>,
) -> Result<QueryResponse> {
    let fields = Arc::new(pg_fields(schema, format)?);
    let encoded = Arc::clone(&fields);
    let rows = encode(rows, Arc::clone(&log), move |batch| {
        arrow_pg::datatypes::encode_recordbatch(Arc::clone(&encoded), batch.clone()).collect()
    });
    Ok(QueryResponse::new(fields, stop.clone().stream(rows, log, to_pg)))
}

/// The Postgres columns of `schema`, in `format`.
fn pg_fields(schema: &SchemaRef, format: &Format) -> Result<Vec<FieldInfo>> {
    arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, None)
        .map_err(|e| Error::new(ErrorKind::NotSupported, e.to_string()))
}

/// A result's batches as protocol messages, each batch made into messages
/// by `batch_messages`; its rows and error logged.
fn encode<T: Send + 'static>(
    result: impl futures::Stream<Item = Result<RecordBatch>> + Send + 'static,
    log: Arc<QueryLog>,
    mut batch_messages: impl FnMut(&RecordBatch) -> Vec<PgWireResult<T>> + Send + 'static,
) -> impl futures::Stream<Item = PgWireResult<T>> + Send + 'static {
    result.flat_map(move |batch| {
        let messages = match batch {
            Ok(batch) => {
                log.rows(batch.num_rows());
                batch_messages(&batch)
            }
            Err(e) => {
                log.fail(&e);
                vec![Err(to_pg(&e))]
            }
        };
        stream::iter(messages)
    })
}

#[async_trait]
impl SimpleQueryHandler for Handlers {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
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
        let (stop, session) = self.parser.stop(client).await?;
        for statement in &statements {
            match self.run(&session, statement, Vec::new(), &Format::UnifiedText, &stop).await {
                Ok(response) => out.push(response),
                Err(e) => {
                    // Postgres runs none of the statements after a failed one
                    out.push(Response::Error(Box::new(errors::info(&e))));
                    break;
                }
            }
        }
        for name in self.parser.cursors.take_closed() {
            client.portal_store().rm_portal(&name);
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

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Self::Statement>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let values = params::values(portal)?;
        let prepared = &portal.statement.statement;
        let (stop, session) = self.parser.stop(client).await?;
        let fetch;
        let statement = match &prepared.cursor {
            // the portal of a cursor: executing it reads the cursor on
            // (pgwire sends the rows an Execute asks for at a time)
            Some(name) => {
                fetch = split_statements(&format!("FETCH ALL FROM \"{}\"", name.replace('"', "\"\"")))
                    .ok()
                    .and_then(|mut s| s.pop())
                    .ok_or_else(|| to_pg(&cursor::missing(name)))?;
                &fetch
            }
            None => &prepared.statement,
        };
        let response = self.run(&session, statement, values, &portal.result_column_format, &stop).await.map_err(|e| to_pg(&e))?;
        for name in self.parser.cursors.take_closed() {
            client.portal_store().rm_portal(&name);
        }
        // a cursor declared here is a portal too, which a client may
        // describe (psycopg does) or execute
        if let Ok(Some(cursor::Command::Declare { name, query, .. })) = cursor::parse(statement)
            && let Ok(declared) = self.parser.cursors.get(&name)
        {
            let prepared = Prepared { statement: query, param_types: Vec::new(), schema: Some(declared.schema()), cursor: Some(name.clone()) };
            let stored = Arc::new(StoredStatement::new(name.clone(), prepared, Vec::new()));
            let codes = match &portal.result_column_format {
                Format::UnifiedText => Vec::new(),
                Format::UnifiedBinary => vec![1],
                Format::Individual(codes) => codes.clone(),
            };
            let bind = Bind::new(Some(name), None, Vec::new(), Vec::new(), codes);
            client.portal_store().put_portal(Arc::new(Portal::try_new(&bind, stored)?));
        }
        Ok(response)
    }
}

/// Hands pgwire one connection's handlers.
struct Factory(Arc<Handlers>, Arc<EndOnFatal>);

/// Ends the connection after a FATAL error: pgwire sends the error and a
/// ReadyForQuery, shuts only its own writing side, and would read the
/// client's next message (a query pipelined after a failed login, say).
/// Shutting the reading side too makes that read the end; messages
/// pgwire has already read are refused by [`startup::admitted`].
pub(crate) struct EndOnFatal(Arc<std::net::TcpStream>);

impl ErrorHandler for EndOnFatal {
    fn on_error<C: ClientInfo>(&self, _client: &C, error: &mut PgWireError) {
        if let PgWireError::UserError(info) = error
            && info.is_fatal()
        {
            let _ = self.0.shutdown(std::net::Shutdown::Read);
        }
    }
}

impl PgWireServerHandlers for Factory {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.0)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.0)
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::clone(&self.0.startup)
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(DefaultCancelHandler::new(Arc::clone(&self.0.startup.cancels)))
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::clone(&self.1)
    }
}

/// Plans the statements of one connection to describe them, and says
/// when each of its statements must stop.
pub(crate) struct Parser {
    /// The runtime statements are planned and run on ([`crate::work`]).
    work: Handle,
    timeout: Option<Duration>,
    shutdown: Shutdown,
    /// Statements running (or streaming rows) on the connection.
    running: Arc<Counter>,
    /// The connection's SQL cursors.
    cursors: cursor::Cursors,
}

impl Parser {
    /// Runs `describe`: planning may read files (a schema to infer), and
    /// SHOW, DESCRIBE and SUMMARIZE run, so it runs on the query runtime,
    /// as statements do, until `stop` comes.
    async fn describe<T: Send + 'static>(&self, stop: &Stop, describe: impl Future<Output = Result<T>> + Send + 'static) -> Result<T> {
        tokio::select! {
            biased;
            described = work::on(&self.work, describe) => described,
            e = stop.clone().wait() => Err(e),
        }
    }

    /// The session of `client`, and the stop of a statement it starts now
    /// (planned to be described, or run); an error (ending the connection)
    /// if it has not logged in or the server is shutting down.
    async fn stop<C: ClientInfo>(&self, client: &C) -> PgWireResult<(Stop, Session)> {
        let admitted = startup::admitted(client)?;
        if self.shutdown.phase() >= Phase::Draining {
            return Err(to_pg(&crate::shutdown::terminated()));
        }
        let cancel = admitted.handle.start_query().await.map(|r| r.is_ok()).boxed();
        Ok((Stop::start(Some(cancel), self.timeout, &self.shutdown, &self.running), admitted.session.clone()))
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(&self, client: &C, sql: &str, _types: &[Option<Type>]) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let (stop, session) = self.stop(client).await?;
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
        match cursor::parse(&statement).map_err(|e| to_pg(&e))? {
            None => {}
            // a cursor's query is described (for its parameters); a FETCH
            // gives the cursor's columns
            Some(cursor::Command::Declare { query, .. }) => {
                let session = session.clone();
                let described = self.describe(&stop, async move { describe(&session, &query, count, |s, q| s.parse_one(q.text())).await });
                let described = described.await.map_err(|e| to_pg(&e))?;
                let param_types = described.params.iter().map(|t| params::pg_type(t.as_ref())).collect();
                return Ok(Some(Prepared { statement, param_types, schema: None, cursor: None }));
            }
            Some(cursor::Command::Fetch { name, .. }) => {
                let schema = self.cursors.get(&name).map_err(|e| to_pg(&e))?.schema();
                return Ok(Some(Prepared { statement, param_types: Vec::new(), schema: Some(schema), cursor: None }));
            }
            Some(cursor::Command::Move { .. } | cursor::Command::Close { .. }) => {
                return Ok(Some(Prepared { statement, param_types: Vec::new(), schema: None, cursor: None }));
            }
        }
        let described = self.describe(&stop, async move {
            let parse = |session: &Session, statement: &Statement| match catalog::reads_catalog(statement).then(|| catalog::parse(statement)) {
                Some(Ok(parsed)) => Ok(parsed),
                _ => session.parse_one(statement.text()),
            };
            describe(&session, &statement, count, parse).await.map(|d| (statement, d))
        });
        let (statement, described) = described.await.map_err(|e| to_pg(&e))?;
        let param_types = described.params.iter().map(|t| params::pg_type(t.as_ref())).collect();
        Ok(Some(Prepared { statement, param_types, schema: described.schema, cursor: None }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt.param_types.clone())
    }

    fn get_result_schema(&self, stmt: &Prepared, column_format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        let Some(schema) = &stmt.schema else { return Ok(Vec::new()) };
        pg_fields(schema, column_format.unwrap_or(&Format::UnifiedText)).map_err(|e| to_pg(&e))
    }
}

