//! The Flight SQL service: logins, statements, prepared statements and
//! metadata, each call run on the session its token names
//! ([`super::sessions`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::SqlInfoData;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use futures::{Stream, StreamExt, TryStreamExt, stream};
use pintail_core::datafusion::common::ScalarValue;
use pintail_core::{Bindings, Error, Session, Statement, StatementKind, split_statements};
use prost::Message;
use tokio::runtime::Handle;
use tonic::{Request, Response, Status, Streaming};

use super::metadata;
use super::sessions::{Client, Minted, Pending, Prepared, Sessions, bearer, lock};
use super::{Peer, status};
use crate::log::QueryLog;
use crate::shutdown::{Phase, Shutdown, terminated};
use crate::statement::{Verb, describe};
use crate::stop::Stop;
use crate::work;

type Rows = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static>>;

/// The Flight SQL service of one server.
pub(crate) struct Service {
    sessions: Arc<Sessions>,
    info: SqlInfoData,
    timeout: Option<Duration>,
    shutdown: Shutdown,
    /// The runtime statements run on ([`crate::work`]).
    work: Handle,
}

impl Service {
    pub(crate) fn new(sessions: Arc<Sessions>, timeout: Option<Duration>, shutdown: Shutdown, work: Handle) -> Result<Self, Error> {
        let info = metadata::sql_info(&sessions.options).map_err(|s| Error::internal(s.message().to_owned(), None))?;
        Ok(Self { sessions, info, timeout, shutdown, work })
    }

    /// The client whose token `request` carries.
    fn client<T>(&self, request: &Request<T>) -> Result<Arc<Client>, Status> {
        let token = bearer(request.metadata());
        let minted = request.extensions().get::<Minted>().is_some();
        match token.map(|t| self.sessions.get(t, minted)).transpose()?.flatten() {
            Some(client) => Ok(client),
            None => Err(not_logged_in(token.is_some())),
        }
    }

    /// An error if the server no longer starts statements.
    fn admit(&self) -> Result<(), Status> {
        if self.shutdown.phase() >= Phase::Draining {
            return Err(status(&terminated()));
        }
        Ok(())
    }

    /// Plans `statement` (on the query runtime) to tell its parameters and
    /// columns; `SHOW`, `DESCRIBE` and `SUMMARIZE` are not run for it (their
    /// columns come when they run, under the statement's stop).
    async fn describe(&self, session: &Session, statement: Statement, count: usize) -> Result<(Statement, crate::statement::Described), Status> {
        if statement.kind() != StatementKind::Other {
            return Ok((statement, crate::statement::Described { params: vec![None; count], schema: None }));
        }
        let session = session.clone();
        let described = work::on(&self.work, async move {
            let parse = |session: &Session, statement: &Statement| session.parse_one(statement.text());
            describe(&session, &statement, count, parse).await.map(|d| (statement, d))
        });
        described.await.map_err(|e| status(&e))
    }

    /// Runs `statement` with `params` until it is planned; its rows come
    /// later, until the end or the statement's stop.
    async fn start(&self, client: &Client, peer: SocketAddr, statement: &Statement, params: Vec<ScalarValue>) -> Result<(work::Running, Stop, Arc<QueryLog>), Status> {
        self.admit()?;
        client.queries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = Arc::new(QueryLog::new(client.id, peer, statement.text()));
        let stop = Stop::start(None, self.timeout, &self.shutdown, &client.running);
        let bindings = Bindings { params, tables: Vec::new() };
        let running = tokio::select! {
            biased;
            running = work::execute(&self.work, &client.session, statement, bindings) => log.check(running),
            e = stop.clone().wait() => {
                log.fail(&e);
                Err(e)
            }
        };
        Ok((running.map_err(|e| status(&e))?, stop, log))
    }

    /// Starts `statement` with `params` for a `FlightInfo`: one that
    /// returns rows is held for the ticket's fetch, with the columns it
    /// runs with; any other runs to its end now (the ADBC driver fetches
    /// in the background, and the client's next statement must see what a
    /// `CREATE TABLE` or an `INSERT` did).
    async fn flight_info(
        &self,
        client: &Client,
        peer: SocketAddr,
        statement: &Statement,
        params: Vec<ScalarValue>,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        if !matches!(Verb::of(statement), Verb::Rows) {
            let changed = self.update(client, peer, statement, vec![params]).await?;
            let info = FlightInfo::new()
                .try_with_schema(&Schema::empty())
                .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
                .with_descriptor(descriptor)
                .with_total_records(changed);
            return Ok(Response::new(info));
        }
        let (running, stop, log) = self.start(client, peer, statement, params).await?;
        let schema = nullable(&running.schema());
        let id = client.hold(Pending { running, stop, log, schema: Arc::clone(&schema) });
        let ticket = TicketStatementQuery { statement_handle: id.to_be_bytes().to_vec().into() };
        Self::info(&schema, &ticket.as_any(), descriptor)
    }

    /// Streams the rows of a started statement as Flight data, each batch
    /// given the columns its `FlightInfo` told.
    fn rows(client: &Arc<Client>, pending: Pending) -> Response<Rows> {
        let Pending { running, stop, log, schema } = pending;
        let (counted, relabelled) = (Arc::clone(&log), Arc::clone(&schema));
        let batches = running.map(move |batch| {
            let batch = counted.check(batch).and_then(|b| {
                counted.rows(b.num_rows());
                RecordBatch::try_new(Arc::clone(&relabelled), b.columns().to_vec()).map_err(Error::from)
            });
            batch.map_err(|e| FlightError::Tonic(Box::new(status(&e))))
        });
        let fetched = Some(Arc::clone(&log));
        let batches = stop.stream(batches, log, |e| FlightError::Tonic(Box::new(status(e))));
        let encoded = FlightDataEncoderBuilder::new().with_schema(schema).build(batches).map_err(Status::from);
        Response::new(Box::pin(Fetch { rows: Box::pin(encoded), log: fetched, client: Arc::clone(client) }))
    }

    /// Runs `statement` once per row of `rows` (once, with none, if it
    /// takes no parameters); the rows it changed, or -1 if it changes none.
    async fn update(&self, client: &Client, peer: SocketAddr, statement: &Statement, rows: Vec<Vec<ScalarValue>>) -> Result<i64, Status> {
        let rows = if rows.is_empty() { vec![Vec::new()] } else { rows };
        let counts = matches!(Verb::of(statement), Verb::Changed(_));
        let mut changed = 0_i64;
        for params in rows {
            let (running, stop, log) = self.start(client, peer, statement, params).await?;
            let batches = tokio::select! {
                biased;
                batches = running.collect() => log.check(batches),
                e = stop.wait() => {
                    log.fail(&e);
                    Err(e)
                }
            };
            let batches = batches.map_err(|e| status(&e))?;
            let n = pintail_core::changed_rows(&batches).unwrap_or(0);
            log.rows(usize::try_from(n).unwrap_or(usize::MAX));
            changed = changed.saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Ok(if counts { changed } else { -1 })
    }

    /// A `FlightInfo` for rows of `schema` fetched with `ticket`.
    fn info(schema: &Schema, ticket: &Any, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
        let endpoint = FlightEndpoint::new().with_ticket(Ticket { ticket: ticket.encode_to_vec().into() });
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }
}

/// A statement's rows on their way to the client; if the client stops
/// reading (a cancel, a hang-up) before their end, the statement's log
/// line says so.
struct Fetch {
    rows: Rows,
    /// Until the rows end.
    log: Option<Arc<QueryLog>>,
    client: Arc<Client>,
}

impl Stream for Fetch {
    type Item = Result<arrow_flight::FlightData, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        let next = self.rows.as_mut().poll_next(cx);
        if matches!(next, std::task::Poll::Ready(None | Some(Err(_)))) {
            self.log = None;
        }
        next
    }
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.client.touch();
        if let Some(log) = self.log.take() {
            log.fail(&Error::new(pintail_core::ErrorKind::Cancelled, "the client stopped reading (cancelled or gone)"));
        }
    }
}

/// The refusal of a call that names no open session.
pub(crate) fn not_logged_in(sent_token: bool) -> Status {
    if sent_token {
        Status::unauthenticated("unknown or expired session token: the session ended (closed, idle for an hour, or the server restarted); connect again")
    } else {
        Status::unauthenticated("log in first: a Handshake with basic authentication (user and password) answers the bearer token to send with every call")
    }
}

/// The one statement of `query`.
fn one_statement(query: &str) -> Result<Statement, Status> {
    let mut statements = split_statements(query).map_err(|e| status(&e))?;
    match (statements.pop(), statements.is_empty()) {
        (Some(statement), true) => Ok(statement),
        (None, _) => Err(Status::invalid_argument("the query is empty")),
        (Some(_), false) => Err(Status::invalid_argument("a Flight SQL query holds one statement; send each on its own")),
    }
}

/// Refuses a Flight SQL transaction: Pintail does not offer them (its
/// clients run `BEGIN` and `COMMIT` as statements).
fn no_transaction(id: Option<&bytes::Bytes>) -> Result<(), Status> {
    match id {
        Some(id) if !id.is_empty() => Err(Status::invalid_argument(
            "this server offers no Flight SQL transactions (GetSqlInfo says so); run BEGIN and COMMIT as statements instead",
        )),
        _ => Ok(()),
    }
}

/// `schema` with every column nullable: what a statement's rows are sent
/// as, so that the columns its plan describes and those it runs with
/// (which may differ in what they know of nulls) are always the same.
fn nullable(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `schema` as the IPC message prepared statements describe it with.
fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(format!("cannot encode the schema: {e}")))?;
    Ok(bytes)
}

/// The most parameter values one `DoPut` may bind (rows times columns).
const MAX_VALUES: usize = 1_000_000;

/// The rows of parameters a client sent in a `DoPut`.
async fn parameter_rows(stream: PeekableFlightDataStream, count: usize) -> Result<Vec<Vec<ScalarValue>>, Status> {
    let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from))
        .try_collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("cannot read the parameters: {e}")))?;
    let values: usize = batches.iter().map(|b| b.num_rows().saturating_mul(b.num_columns())).sum();
    if values > MAX_VALUES {
        return Err(Status::invalid_argument(format!(
            "{values} parameter values in one call are more than the {MAX_VALUES} it takes; send the rows in several calls"
        )));
    }
    let mut rows = Vec::new();
    for batch in batches {
        if batch.num_columns() != count {
            return Err(Status::invalid_argument(format!(
                "the statement takes {count} parameter{}, but {} were sent",
                if count == 1 { "" } else { "s" },
                batch.num_columns()
            )));
        }
        for row in 0..batch.num_rows() {
            let values = batch.columns().iter().map(|column| ScalarValue::try_from_array(column, row));
            rows.push(values.collect::<Result<Vec<_>, _>>().map_err(|e| Status::invalid_argument(format!("cannot read a parameter: {e}")))?);
        }
    }
    Ok(rows)
}

/// The client's address, as the connection told it.
fn peer_of<T>(request: &Request<T>, client: &Client) -> SocketAddr {
    request
        .extensions()
        .get::<Peer>()
        .map(|p| p.addr)
        .or(client.peer)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// One batch as a `DoGet` answer.
fn one_batch(schema: SchemaRef, batch: RecordBatch) -> Response<Rows> {
    let stream = FlightDataEncoderBuilder::new().with_schema(schema).build(stream::once(async { Ok(batch) })).map_err(Status::from);
    Response::new(Box::pin(stream))
}

/// The user and password of a basic `authorization` header (base64 with
/// or without its padding, as the ADBC driver sends it).
fn basic(request: &Request<Streaming<HandshakeRequest>>) -> Option<(String, String)> {
    let value = request.metadata().get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let engine = GeneralPurpose::new(&base64::alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));
    let decoded = String::from_utf8(engine.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[tonic::async_trait]
impl FlightSqlService for Service {
    type FlightService = Self;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>, Status> {
        let peer = request.extensions().get::<Peer>().map(|p| p.addr);
        let token = match self.sessions.users() {
            // without users, the session [`Mint`] opened for this call (or
            // a new one, for a client that sent a user and password anyway)
            None => match bearer(request.metadata()) {
                Some(token) if self.sessions.get(token, true)?.is_some() => token.to_owned(),
                _ => self.sessions.open(None, peer)?.0,
            },
            Some(users) => {
                let Some((user, password)) = basic(&request) else {
                    return Err(Status::unauthenticated("a login needs basic authentication: authorization: Basic base64(user:password)"));
                };
                let secret = users.secret(&user).cloned();
                let name = user.clone();
                // 4096 rounds of PBKDF2: off the protocol's threads
                let matches = tokio::task::spawn_blocking(move || {
                    if let Some(secret) = secret {
                        secret.matches_password(&password)
                    } else {
                        // the same work as for a known user, so no name is learned from the time taken
                        let _ = crate::Secret::unknown_user(&name).matches_password(&password);
                        false
                    }
                });
                if !matches.await.unwrap_or(false) {
                    let client = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
                    let message = format!("password authentication failed for user \"{user}\"");
                    crate::log::line(&[("event", "connection_refused"), ("protocol", "flight"), ("client", &client), ("error", &message)]);
                    return Err(Status::unauthenticated(message));
                }
                self.sessions.open(Some(user), peer)?.0
            }
        };
        let header = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("the session token is not a valid header"))?;
        let answer = HandshakeResponse { protocol_version: 0, payload: token.into_bytes().into() };
        let mut response: Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>> =
            Response::new(Box::pin(stream::once(async { Ok(answer) })));
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    async fn get_flight_info_statement(&self, query: CommandStatementQuery, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let client = self.client(&request)?;
        no_transaction(query.transaction_id.as_ref())?;
        let statement = one_statement(&query.query)?;
        let peer = peer_of(&request, &client);
        self.flight_info(&client, peer, &statement, Vec::new(), request.into_inner()).await
    }

    async fn do_get_statement(&self, ticket: TicketStatementQuery, request: Request<Ticket>) -> Result<Response<Rows>, Status> {
        let client = self.client(&request)?;
        let pending = client.take(&ticket.statement_handle)?;
        Ok(Self::rows(&client, pending))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let client = self.client(&request)?;
        self.admit()?;
        no_transaction(query.transaction_id.as_ref())?;
        let (statement, count) = one_statement(&query.query)?.with_numbered_parameters().map_err(|e| status(&e))?;
        let (statement, described) = self.describe(&client.session, statement, count).await?;
        let dataset = nullable(described.schema.as_deref().unwrap_or(&Schema::empty()));
        let params: Vec<Field> =
            (1..=count).map(|n| Field::new(format!("${n}"), described.params[n - 1].clone().unwrap_or(DataType::Null), true)).collect();
        let result = ActionCreatePreparedStatementResult {
            prepared_statement_handle: Vec::new().into(),
            dataset_schema: schema_bytes(&dataset)?,
            parameter_schema: schema_bytes(&Schema::new(params))?,
        };
        let handle = client.prepare(Prepared { statement, count, bound: std::sync::Mutex::default() })?;
        Ok(ActionCreatePreparedStatementResult { prepared_statement_handle: handle.to_be_bytes().to_vec().into(), ..result })
    }

    async fn do_action_close_prepared_statement(&self, query: ActionClosePreparedStatementRequest, request: Request<Action>) -> Result<(), Status> {
        let client = self.client(&request)?;
        client.unprepare(&query.prepared_statement_handle)
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let client = self.client(&request)?;
        let prepared = client.prepared(&query.prepared_statement_handle)?;
        let rows = parameter_rows(request.into_inner(), prepared.count).await?;
        if rows.len() > 1 {
            return Err(Status::invalid_argument(format!(
                "a query takes one row of parameters, but {} were sent (statements that change data take many)",
                rows.len()
            )));
        }
        *lock(&prepared.bound) = rows;
        Ok(DoPutPreparedStatementResult { prepared_statement_handle: Some(query.prepared_statement_handle) })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let client = self.client(&request)?;
        let prepared = client.prepared(&query.prepared_statement_handle)?;
        let params = lock(&prepared.bound).first().cloned().unwrap_or_default();
        if params.len() != prepared.count {
            return Err(Status::invalid_argument(format!("the statement takes {} parameters: bind them first (DoPut)", prepared.count)));
        }
        let peer = peer_of(&request, &client);
        self.flight_info(&client, peer, &prepared.statement, params, request.into_inner()).await
    }

    async fn do_put_statement_update(&self, query: CommandStatementUpdate, request: Request<PeekableFlightDataStream>) -> Result<i64, Status> {
        let client = self.client(&request)?;
        no_transaction(query.transaction_id.as_ref())?;
        let statement = one_statement(&query.query)?;
        self.update(&client, peer_of(&request, &client), &statement, Vec::new()).await
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let client = self.client(&request)?;
        let prepared = client.prepared(&query.prepared_statement_handle)?;
        let peer = peer_of(&request, &client);
        let rows = parameter_rows(request.into_inner(), prepared.count).await?;
        if rows.is_empty() && prepared.count > 0 {
            return Ok(0);
        }
        self.update(&client, peer, &prepared.statement, rows).await
    }

    async fn get_flight_info_catalogs(&self, query: CommandGetCatalogs, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        Self::info(&query.into_builder().schema(), &query.as_any(), request.into_inner())
    }

    async fn do_get_catalogs(&self, query: CommandGetCatalogs, request: Request<Ticket>) -> Result<Response<Rows>, Status> {
        let client = self.client(&request)?;
        let (schema, batch) = metadata::catalogs(&client.session, query)?;
        Ok(one_batch(schema, batch))
    }

    async fn get_flight_info_schemas(&self, query: CommandGetDbSchemas, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        Self::info(&query.clone().into_builder().schema(), &query.as_any(), request.into_inner())
    }

    async fn do_get_schemas(&self, query: CommandGetDbSchemas, request: Request<Ticket>) -> Result<Response<Rows>, Status> {
        let client = self.client(&request)?;
        let (schema, batch) = metadata::schemas(&client.session, query)?;
        Ok(one_batch(schema, batch))
    }

    async fn get_flight_info_tables(&self, query: CommandGetTables, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        Self::info(&query.clone().into_builder().schema(), &query.as_any(), request.into_inner())
    }

    async fn do_get_tables(&self, query: CommandGetTables, request: Request<Ticket>) -> Result<Response<Rows>, Status> {
        let client = self.client(&request)?;
        let session = client.session.clone();
        let listed = work::on(&self.work, async move { Ok(metadata::tables(&session, query).await) });
        let (schema, batch) = listed.await.map_err(|e| status(&e))??;
        Ok(one_batch(schema, batch))
    }

    async fn get_flight_info_table_types(&self, query: CommandGetTableTypes, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        Self::info(&query.into_builder().schema(), &query.as_any(), request.into_inner())
    }

    async fn do_get_table_types(&self, query: CommandGetTableTypes, request: Request<Ticket>) -> Result<Response<Rows>, Status> {
        self.client(&request)?;
        let (schema, batch) = metadata::table_types(query)?;
        Ok(one_batch(schema, batch))
    }

    async fn get_flight_info_sql_info(&self, query: CommandGetSqlInfo, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        Self::info(&query.clone().into_builder(&self.info).schema(), &query.as_any(), request.into_inner())
    }

    async fn do_get_sql_info(&self, query: CommandGetSqlInfo, request: Request<Ticket>) -> Result<Response<Rows>, Status> {
        self.client(&request)?;
        let builder = query.into_builder(&self.info);
        let schema = builder.schema();
        let batch = builder.build().map_err(|e| Status::internal(format!("cannot build the SqlInfo answer: {e}")))?;
        Ok(one_batch(schema, batch))
    }

    async fn do_action_fallback(&self, request: Request<Action>) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        // CloseSession (Flight's session management): the ADBC driver
        // sends it when a connection closes
        if request.get_ref().r#type == "CloseSession" {
            if let Some(token) = bearer(request.metadata()) {
                self.sessions.close(token);
            }
            // CloseSessionResult { status: CLOSED }
            let closed = arrow_flight::Result { body: vec![0x08, 0x01].into() };
            return Ok(Response::new(Box::pin(stream::once(async { Ok(closed) }))));
        }
        Err(Status::invalid_argument(format!("unknown action '{}'", request.get_ref().r#type)))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
