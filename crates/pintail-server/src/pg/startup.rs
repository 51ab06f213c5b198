//! Connection startup: protocol negotiation, the parameters a client is
//! told (`server_version`, ...), the key its cancel requests carry, and the
//! refusal of a connection the server cannot take (too many clients, a
//! database that cannot be opened) with a FATAL error the client shows.

use std::fmt::Debug;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, ConnectionGuard, ConnectionHandle, ConnectionManager, PgWireConnectionState, PgWireServerHandlers, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::catalog::PG_VERSION;

/// Accepts a client's startup: no authentication yet (the server listens
/// on loopback only), a cancel key registered with `cancels`.
pub(crate) struct Startup {
    pub(crate) cancels: Arc<ConnectionManager>,
}

static KEYS: LazyLock<RandomPidSecretKeyGenerator> = LazyLock::new(RandomPidSecretKeyGenerator::default);

/// What the server tells every client on connecting.
fn parameters() -> DefaultServerParameterProvider {
    let mut parameters = DefaultServerParameterProvider::default();
    PG_VERSION.clone_into(&mut parameters.server_version);
    parameters
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let PgWireFrontendMessage::Startup(startup) = &message else { return Ok(()) };
        protocol_negotiation(client, startup).await?;
        save_startup_parameters_to_metadata(client, startup);
        let (pid, key) = KEYS.generate(client);
        client.set_pid_and_secret_key(pid, key.clone());
        let (handle, guard) = self.cancels.register(pid, key);
        client.session_extensions().insert(CancelKey { handle, _registered: guard });
        finish_authentication(client, &parameters()).await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        Ok(())
    }
}

/// Where a connection's cancel requests arrive, registered while the
/// connection lasts. (Kept under a type of Pintail's own: pgwire would race
/// only the planning of a statement against a handle stored as its own
/// type, where [`super::stop::Stop`] also ends the streaming of rows.)
pub(crate) struct CancelKey {
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

/// Hands pgwire the refusal; no query reaches it.
pub(crate) struct Refused(pub(crate) Arc<Refusal>);

impl PgWireServerHandlers for Refused {
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.0)
    }
}
