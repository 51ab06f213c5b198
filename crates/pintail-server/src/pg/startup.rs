//! Connection startup: protocol negotiation, authentication (SCRAM-SHA-256
//! when users are configured, see [`super::scram`]), the client's session
//! (opened only once it has logged in, so a client that cannot log in
//! costs no database opening), the parameters a client is told
//! (`server_version`, ...), the key its cancel requests carry, and the
//! refusal of a connection the server cannot take (too many clients, a
//! database that cannot be opened) with a FATAL error the client shows.
//!
//! Every error while a client is starting up is FATAL: pgwire would answer
//! a plain ERROR with ReadyForQuery, which would let the client in.

use std::fmt::Debug;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, ConnectionGuard, ConnectionHandle, ConnectionManager, METADATA_USER, PgWireConnectionState, PgWireServerHandlers, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use pintail_core::Session;

use super::catalog::{self, PG_VERSION};
use super::errors::sqlstate;
use super::scram::{self, Failure, Pending};
use crate::ServeOptions;
use crate::auth::{Secret, Users};
use crate::log;

/// Accepts a client's startup: authenticates it when users are
/// configured, then registers its cancel key with `cancels`.
pub(crate) struct Startup {
    /// What each client's session is opened with.
    pub(crate) options: Arc<ServeOptions>,
    pub(crate) cancels: Arc<ConnectionManager>,
    /// The users who may connect (`None`: anyone, on loopback only).
    pub(crate) users: Option<Arc<Users>>,
    /// The hash of the TLS certificate, for `SCRAM-SHA-256-PLUS`.
    pub(crate) end_point: Option<Vec<u8>>,
    /// Whether TLS is configured: then clients on other machines must use it.
    pub(crate) tls: bool,
}

static KEYS: LazyLock<RandomPidSecretKeyGenerator> = LazyLock::new(RandomPidSecretKeyGenerator::default);

/// What the server tells every client on connecting.
fn parameters() -> DefaultServerParameterProvider {
    let mut parameters = DefaultServerParameterProvider::default();
    PG_VERSION.clone_into(&mut parameters.server_version);
    parameters
}

fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".to_owned(), code.to_owned(), message.into())))
}

/// The user name of the startup message.
fn user<C: ClientInfo>(client: &C) -> String {
    client.metadata().get(METADATA_USER).cloned().unwrap_or_default()
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.step(client, message).await.map_err(|e| {
            let mut info = ErrorInfo::from(e);
            "FATAL".clone_into(&mut info.severity);
            PgWireError::UserError(Box::new(info))
        })
    }
}

impl Startup {
    async fn step<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(users) = &self.users else {
            let PgWireFrontendMessage::Startup(startup) = &message else { return Ok(()) };
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            return self.admit(client).await;
        };
        match message {
            PgWireFrontendMessage::Startup(startup) if matches!(client.state(), PgWireConnectionState::AwaitingStartup) => {
                protocol_negotiation(client, &startup).await?;
                save_startup_parameters_to_metadata(client, &startup);
                if self.tls && !client.is_secure() && !client.socket_addr().ip().is_loopback() {
                    let mut e = ErrorInfo::new("FATAL".to_owned(), "28000".to_owned(), format!("connections from {} must use TLS", client.socket_addr().ip()));
                    e.hint = Some("connect with sslmode=require (or verify-full)".to_owned());
                    return Err(PgWireError::UserError(Box::new(e)));
                }
                if user(client).is_empty() {
                    return Err(fatal("28000", "no user name was given"));
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                let mechanisms = scram::mechanisms(self.end_point(client));
                client.send(PgWireBackendMessage::Authentication(Authentication::SASL(mechanisms))).await?;
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) if matches!(client.state(), PgWireConnectionState::AuthenticationInProgress) => {
                let name = user(client);
                let outcome = match client.session_extensions().get::<Pending>() {
                    None => {
                        let initial = password.into_sasl_initial_response()?;
                        let mechanism = initial.auth_method.as_str();
                        if !scram::mechanisms(self.end_point(client)).iter().any(|m| m == mechanism) {
                            return Err(fatal("28000", format!("authentication method '{mechanism}' is not supported")));
                        }
                        let data = initial.data.unwrap_or_default();
                        let secret = users.secret(&name).cloned().unwrap_or_else(|| Secret::unknown_user(&name));
                        scram::server_nonce()
                            .and_then(|nonce| scram::first(mechanism, &data, secret, self.end_point(client), &nonce))
                            .map(|(server_first, pending)| {
                                client.session_extensions().insert(pending);
                                Authentication::SASLContinue(server_first.into())
                            })
                    }
                    Some(pending) => {
                        let response = password.into_sasl_response()?;
                        pending.finish(&response.data).map(|server_final| Authentication::SASLFinal(server_final.into()))
                    }
                };
                let reply = outcome.map_err(|failure| {
                    let peer = client.socket_addr().to_string();
                    let (code, message) = match failure {
                        Failure::Malformed(why) => ("08P01", format!("malformed SCRAM message: {why}")),
                        Failure::WrongPassword => ("28P01", format!("password authentication failed for user \"{name}\"")),
                    };
                    log::line(&[("event", "auth_failed"), ("client", &peer), ("user", &name), ("error", &message)]);
                    fatal(code, message)
                })?;
                let done = matches!(reply, Authentication::SASLFinal(_));
                client.send(PgWireBackendMessage::Authentication(reply)).await?;
                if done {
                    self.admit(client).await?;
                }
                Ok(())
            }
            _ => Err(fatal("08P01", "expected a startup or password message")),
        }
    }

    /// The certificate hash to bind to, on a TLS connection.
    fn end_point<C: ClientInfo>(&self, client: &C) -> Option<&[u8]> {
        self.end_point.as_deref().filter(|_| client.is_secure())
    }

    /// Lets the client in: its session, its cancel key, the server's
    /// parameters, ready for queries.
    async fn admit<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self
            .options
            .session()
            .and_then(|s| catalog::install(&s).map(|()| s))
            .map_err(|e| fatal(sqlstate(&e), e.message()))?;
        let (pid, key) = KEYS.generate(client);
        client.set_pid_and_secret_key(pid, key.clone());
        let (handle, guard) = self.cancels.register(pid, key);
        client.session_extensions().insert(Admitted { session, handle, _registered: guard });
        finish_authentication(client, &parameters()).await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        Ok(())
    }
}

/// What `client` was given when it was let in; an error (FATAL) if it has
/// not been: a message pgwire reads after a failed startup (a query
/// pipelined behind a wrong password) must not run.
pub(crate) fn admitted<C: ClientInfo>(client: &C) -> PgWireResult<Arc<Admitted>> {
    client.session_extensions().get::<Admitted>().ok_or_else(|| fatal("28000", "the client has not logged in"))
}

/// A client let in: its session, and where its cancel requests arrive,
/// registered while the connection lasts. (Kept under a type of Pintail's
/// own: pgwire would race only the planning of a statement against a
/// handle stored as its own type, where [`crate::stop::Stop`] also ends
/// the streaming of rows.) The session ends with the connection, which
/// rolls back a transaction left open.
pub(crate) struct Admitted {
    pub(crate) session: Session,
    pub(crate) handle: Arc<ConnectionHandle>,
    _registered: ConnectionGuard,
}

/// A connection the server refuses at startup, with a FATAL error.
pub(crate) struct Refusal {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

#[async_trait]
impl StartupHandler for Refusal {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = &message {
            protocol_negotiation(client, startup).await?;
        }
        let info = ErrorInfo::new("FATAL".to_owned(), self.code.to_owned(), self.message.clone());
        Err(PgWireError::UserError(Box::new(info)))
    }
}

/// Hands pgwire the refusal; no query reaches it (the connection ends
/// after the FATAL error).
pub(crate) struct Refused(pub(crate) Arc<Refusal>, pub(crate) Arc<super::EndOnFatal>);

impl PgWireServerHandlers for Refused {
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.0)
    }

    fn error_handler(&self) -> Arc<impl pgwire::api::ErrorHandler> {
        Arc::clone(&self.1)
    }
}
