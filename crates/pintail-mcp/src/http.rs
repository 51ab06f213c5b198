//! MCP over streamable HTTP (`pintail mcp --http ADDRESS`), at `/mcp`.
//!
//! Every request must carry `Authorization: Bearer TOKEN`; others get 401
//! before the MCP service sees them. The token is the one given
//! (`PINTAIL_MCP_TOKEN`) or one made from 32 random bytes and printed to
//! stderr. The token is compared in constant time. Requests must be
//! addressed to a loopback name, the listening address or an
//! `--allowed-host` (rmcp's guard against DNS rebinding). Ctrl-C or
//! SIGTERM stops the server.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use pintail_core::{Error, ErrorKind, Result};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::McpOptions;
use crate::tools::Pintail;

/// Serves `server` at `http://address/mcp` until Ctrl-C or SIGTERM.
pub(crate) async fn serve(server: Pintail, address: SocketAddr, options: &McpOptions) -> Result<()> {
    let token = match &options.token {
        Some(token) if token.len() < 16 => {
            return Err(Error::new(ErrorKind::InvalidOption, "the MCP bearer token is too short (at least 16 characters)")
                .with_hint("leave PINTAIL_MCP_TOKEN unset and pintail mcp makes a random one"));
        }
        Some(token) => token.clone(),
        None => random_token()?,
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot listen on {address}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| Error::io(e.to_string()))?;
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !bound.ip().is_unspecified() {
        hosts.push(bound.ip().to_string());
    }
    hosts.extend(options.allowed_hosts.iter().cloned());
    let config = StreamableHttpServerConfig::default().with_allowed_hosts(hosts);
    let service = StreamableHttpService::new(move || Ok(server.clone()), Arc::new(LocalSessionManager::default()), config);
    let expected = Arc::new(format!("Bearer {token}"));
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn(move |request: Request, next: Next| bearer(Arc::clone(&expected), request, next)));
    let shown = if options.token.is_some() { "from PINTAIL_MCP_TOKEN".to_owned() } else { token };
    let url = format!("http://{bound}/mcp");
    crate::log(&[("event", "listening"), ("protocol", "mcp"), ("url", &url), ("token", &shown)]);
    axum::serve(listener, app)
        .with_graceful_shutdown(stopped())
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("the MCP HTTP server failed: {e}")))
}

/// 401 unless the request has the bearer token.
async fn bearer(expected: Arc<String>, request: Request, next: Next) -> Response {
    let given = request.headers().get(header::AUTHORIZATION).map(axum::http::HeaderValue::as_bytes).unwrap_or_default();
    if same(given, expected.as_bytes()) {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "a bearer token is required\n").into_response()
    }
}

/// Whether `a` and `b` are equal, in time that does not depend on where
/// they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("no random bytes for a token: {e}"), None))?;
    Ok(bytes.iter().fold(String::with_capacity(64), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    }))
}

/// Resolves at Ctrl-C or SIGTERM.
async fn stopped() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            let _ = interrupt.await;
            return;
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"Bearer abc", b"Bearer abc"));
        assert!(!same(b"Bearer abd", b"Bearer abc"));
        assert!(!same(b"Bearer ab", b"Bearer abc"));
        assert!(!same(b"", b"Bearer abc"));
        let token = random_token().unwrap_or_default();
        assert_eq!(token.len(), 64);
        assert_ne!(token, random_token().unwrap_or_default());
    }
}
