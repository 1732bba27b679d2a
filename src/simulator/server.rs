//! The listener: accepts TCP connections (HTTPS when a certificate is configured),
//! serves each with hyper's HTTP/1 server and the axum router, and stops on shutdown.
//!
//! Connections are served by hand rather than with `axum::serve` because the faults
//! need the socket itself: a [`ConnControl`] holding a duplicate of the socket's file
//! descriptor is attached to every request, so `reset` can set `SO_LINGER` to 0 and
//! turn the close into an RST; and a response marked [`AbortConnection`] makes the
//! connection close without any response at all.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::state::Shared;
use super::{oauth, stream};

/// How long shutdown lets a connection finish before dropping it.
const GRACE: Duration = Duration::from_secs(2);

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-connection handle on the socket, for the `reset` fault.
#[derive(Debug)]
pub struct ConnControl {
    socket: Option<socket2::Socket>,
}

/// A response extension: close the connection instead of sending this response.
#[derive(Debug, Clone, Copy)]
pub struct AbortConnection;

impl ConnControl {
    /// Makes the close of this connection an abort (RST) instead of a FIN.
    pub fn reset_on_close(&self) {
        if let Some(socket) = &self.socket
            && let Err(error) = socket.set_linger(Some(Duration::ZERO))
        {
            tracing::debug!(%error, "simulator: cannot set SO_LINGER for a reset");
        }
    }
}

/// The routes of `docs/event-stream.md#simulator-endpoints`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth2/token", post(oauth::handle))
        .route("/mra/stream/v2/events", get(stream::handle))
        .route("/_sim/requests", get(sim_requests))
        .route("/_sim/events", get(sim_events))
        .route("/_sim/key", post(sim_key))
        .with_state(shared)
}

/// Accepts connections until shutdown.
pub async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let router = router(shared.clone());
    loop {
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(error) => {
                // Out of file descriptors and the like: back off briefly, keep serving.
                tracing::warn!(%error, "simulator: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small messages (heartbeats, chunk_bytes pieces) must leave at once.
        let _ = tcp.set_nodelay(true);
        let control = Arc::new(ConnControl {
            socket: socket2::SockRef::from(&tcp).try_clone().ok(),
        });
        let router = router.clone();
        let cancel = shared.cancel.clone();
        match tls.clone() {
            None => {
                shared
                    .tracker
                    .spawn(serve_connection(tcp, router, control, cancel));
            }
            Some(acceptor) => {
                shared.tracker.spawn(async move {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                    match handshake.await {
                        Ok(Ok(stream)) => serve_connection(stream, router, control, cancel).await,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "simulator: TLS handshake failed")
                        }
                        Err(_) => tracing::debug!("simulator: TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Serves one connection until it ends, or until shutdown plus [`GRACE`].
async fn serve_connection<I>(
    io: I,
    router: Router,
    control: Arc<ConnControl>,
    cancel: tokio_util::sync::CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        let router = router.clone();
        let control = control.clone();
        async move {
            request.extensions_mut().insert(control);
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.extensions().get::<AbortConnection>().is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "simulated connection drop",
                ));
            }
            Ok(response)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = cancel.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(GRACE, connection).await;
        }
    }
}

/// Loads a PEM certificate chain and private key into a TLS acceptor.
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> io::Result<TlsAcceptor> {
    let named = |path: &std::path::Path, error: io::Error| {
        io::Error::new(error.kind(), format!("{}: {error}", path.display()))
    };
    let certs = {
        let mut reader = io::BufReader::new(std::fs::File::open(cert).map_err(|e| named(cert, e))?);
        rustls_pemfile::certs(&mut reader)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| named(cert, e))?
    };
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no PEM certificate found", cert.display()),
        ));
    }
    let private_key = {
        let mut reader = io::BufReader::new(std::fs::File::open(key).map_err(|e| named(key, e))?);
        rustls_pemfile::private_key(&mut reader)
            .map_err(|e| named(key, e))?
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: no PEM private key found", key.display()),
                )
            })?
    };
    let mut config = rustls::ServerConfig::builder_with_provider(crate::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(format!("simulator TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("simulator TLS: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// `GET /_sim/requests`.
async fn sim_requests(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
) -> axum::Json<Vec<super::requests::RequestRecord>> {
    axum::Json(shared.requests.all())
}

/// `POST /_sim/key?tenant=NAME` with the new Application Key as the body: rotates the
/// tenant's key (the old one is refused from now on), revokes its tokens and ends its
/// open streams. 204, or 400 with the reason.
async fn sim_key(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    body: bytes::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let tenant = query.get("tenant").cloned().unwrap_or_default();
    let rotated = std::str::from_utf8(&body)
        .map_err(|_| "the new key must be printable ascii without spaces".to_string())
        .and_then(|key| shared.rotate_key(&tenant, key));
    match rotated {
        Ok(()) => http::StatusCode::NO_CONTENT.into_response(),
        Err(error) => (
            http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response(),
    }
}

/// `GET /_sim/events?tenant=NAME`.
async fn sim_events(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let name = query.get("tenant").cloned().or_else(|| {
        // With a single tenant the parameter is a formality.
        (shared.tenants.len() == 1)
            .then(|| shared.tenants.keys().next().cloned())
            .flatten()
    });
    match name.and_then(|name| shared.tenants.get(&name)) {
        Some(tenant) => axum::Json(tenant.log.ids()).into_response(),
        None => (
            http::StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": "unknown tenant"})),
        )
            .into_response(),
    }
}
