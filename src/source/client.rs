//! The HTTP clients of one tenant: TLS roots, proxy, timeouts and redirects for the
//! token and stream requests.
//!
//! Two clients are built from one recipe, because reqwest fixes the redirect policy per
//! client: the stream client follows at most 5 redirects, all within the origin of
//! `api_domain` (another origin's events must not pass as the tenant's), the token
//! client none (the Application Key must never follow a redirect to another host).
//! Neither advertises a compressed encoding (`docs/event-stream.md#request-headers`):
//! reqwest is built without its decompression features, so it sends no
//! `Accept-Encoding`.
//!
//! The trusted roots (the system's, plus `ca_file`'s) are loaded once per distinct
//! `ca_file` content and shared by every client that uses them: left to itself, each
//! reqwest client loads the system store into a verifier of its own, about 65 KB per
//! client, two clients per tenant, and many tenants per process. Connections and
//! connection pools are not shared; each tenant's clients are its own.

use crate::config::{ProxyConfig, TenantConfig};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

/// Connect (TCP + TLS) timeout of every API request
/// (`docs/event-stream.md#response-and-timeouts`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most redirects followed by a stream request
/// (`docs/event-stream.md#response-and-timeouts`).
pub const MAX_REDIRECTS: usize = 5;

/// Why the clients of a tenant cannot be built. Most are configuration problems (an
/// unreadable `ca_file`, one without a usable certificate, a bad proxy address). The
/// source does not retry them; the tenant supervisor restarts the whole pipeline after
/// a backoff, which reads `ca_file` again.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("[lookout] ca_file {path}: {source}")]
    CaFileRead {
        path: PathBuf,
        source: crate::small_file::SmallFileError,
    },
    #[error("[lookout] ca_file {path}: {reason}")]
    CaFilePem { path: PathBuf, reason: String },
    #[error("[proxy] address {address}: {source}")]
    Proxy {
        address: String,
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Build(reqwest::Error),
    #[error("cannot build the TLS configuration of the HTTP client: {0}")]
    Tls(rustls::Error),
}

/// The pair of clients one tenant uses. Its `Debug` shows nothing of the clients:
/// they hold the proxy credentials.
#[derive(Clone)]
pub struct ApiClients {
    /// Follows at most [`MAX_REDIRECTS`] redirects.
    pub stream: reqwest::Client,
    /// Follows no redirect.
    pub token: reqwest::Client,
}

impl std::fmt::Debug for ApiClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClients").finish_non_exhaustive()
    }
}

impl ApiClients {
    /// Builds both clients for a tenant. Their TLS configuration names the ring
    /// provider itself; the process-wide default is installed as well, for any other
    /// reqwest client (see [`crate::tls`]).
    pub fn new(tenant: &TenantConfig, proxy: &ProxyConfig) -> Result<Self, ClientError> {
        crate::tls::install_crypto_provider();
        let ca_pem = match &tenant.ca_file {
            None => None,
            Some(path) => Some(
                crate::small_file::read(path, crate::small_file::PEM_LIMIT).map_err(|source| {
                    ClientError::CaFileRead {
                        path: path.clone(),
                        source,
                    }
                })?,
            ),
        };
        let roots = shared_roots(ca_pem.as_deref()).map_err(|reason| ClientError::CaFilePem {
            path: tenant.ca_file.clone().unwrap_or_default(),
            reason,
        })?;
        remember_secrets(tenant, proxy);
        let stream = builder(&roots, proxy)?
            .redirect(same_origin_redirects())
            .build()
            .map_err(ClientError::Build)?;
        let token = builder(&roots, proxy)?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self { stream, token })
    }
}

/// Registers the tenant's key and the proxy credentials with [`crate::untrusted`], so
/// that no server can echo them into a log line or `/health`.
fn remember_secrets(tenant: &TenantConfig, proxy: &ProxyConfig) {
    crate::untrusted::remember(tenant.api_key.expose());
    let credentials = |user: &str, password: &str| {
        crate::untrusted::remember(password);
        crate::untrusted::remember(&format!("{user}:{password}"));
    };
    match proxy {
        ProxyConfig::Explicit(p) => {
            if let Some(password) = &p.password {
                credentials(p.username.as_deref().unwrap_or(""), password.expose());
            }
        }
        // reqwest takes these from the environment; their credentials are as secret.
        ProxyConfig::FromEnvironment => {
            for name in [
                "HTTPS_PROXY",
                "https_proxy",
                "HTTP_PROXY",
                "http_proxy",
                "ALL_PROXY",
                "all_proxy",
            ] {
                let Some(url) = std::env::var(name)
                    .ok()
                    .and_then(|v| url::Url::parse(&v).ok())
                else {
                    continue;
                };
                if let Some(password) = url.password() {
                    credentials(&percent_decode(url.username()), &percent_decode(password));
                }
            }
        }
    }
}

/// `%XX` sequences of a URL's user information decoded (invalid ones kept as they are).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The stream's redirect policy: at most [`MAX_REDIRECTS`] (`docs/event-stream.md`),
/// and only within the origin of `api_domain`. A redirect to another origin is
/// refused: what that origin serves would be forwarded as the tenant's events.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let to = attempt.url().origin();
        let from = attempt.previous().first().map(url::Url::origin);
        if from.as_ref() != Some(&to) {
            let to = to.ascii_serialization();
            attempt.error(format!(
                "the stream was redirected to another origin ({to}); not followed, since \
                 its events would pass as this tenant's: check api_domain"
            ))
        } else if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// The root stores in use, by the `ca_file` content they were built with (`None`: the
/// system store alone). Held weakly: a store is dropped with the last client using it,
/// so a tenant restarted later reads its `ca_file` and the system store afresh.
static ROOT_STORES: Mutex<Vec<RootStoreEntry>> = Mutex::new(Vec::new());

/// The `ca_file` content a root store was built with, and the store.
type RootStoreEntry = (Option<Vec<u8>>, Weak<RootCertStore>);

/// The system's roots plus the certificates of `ca_pem`, shared with every other client
/// built with the same `ca_pem`. Errors name what is wrong with `ca_pem`.
fn shared_roots(ca_pem: Option<&[u8]>) -> Result<Arc<RootCertStore>, String> {
    // Held while a store is built, so that tenants starting together load it once.
    let mut stores = ROOT_STORES.lock().unwrap_or_else(PoisonError::into_inner);
    stores.retain(|(_, store)| store.strong_count() > 0);
    if let Some(store) = stores
        .iter()
        .filter(|(pem, _)| pem.as_deref() == ca_pem)
        .find_map(|(_, store)| store.upgrade())
    {
        return Ok(store);
    }
    let mut roots = RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    for e in &system.errors {
        tracing::debug!(error = %e, "skipping part of the system trust store");
    }
    roots.add_parsable_certificates(system.certs);
    if let Some(pem) = ca_pem {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot read it as PEM: {e}"))?;
        if certs.is_empty() {
            return Err("no PEM certificate in it".to_owned());
        }
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err("no usable CA certificate in it".to_owned());
        }
    }
    let store = Arc::new(roots);
    stores.push((ca_pem.map(<[u8]>::to_vec), Arc::downgrade(&store)));
    Ok(store)
}

fn builder(
    roots: &Arc<RootCertStore>,
    proxy: &ProxyConfig,
) -> Result<reqwest::ClientBuilder, ClientError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(ClientError::Tls)?
        .with_root_certificates(Arc::clone(roots))
        .with_no_client_auth();
    // rustls' default session cache holds 256 sessions (32 servers, 8 TLS 1.3 tickets
    // each) and is allocated up front, per client. A client talks to one or two TLS
    // servers (the API, and an https proxy if there is one, which shares this
    // configuration): 16 sessions hold both.
    tls.resumption = rustls::client::Resumption::in_memory_sessions(16);
    // What reqwest offers when it builds the configuration itself (it clears this for
    // TLS to a proxy).
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut b = reqwest::Client::builder()
        .user_agent(crate::USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .tls_backend_preconfigured(tls);
    match proxy {
        // reqwest reads HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY by default.
        ProxyConfig::FromEnvironment => {}
        ProxyConfig::Explicit(p) => {
            let address = p.address.to_string();
            // `all`: the proxy applies to https API URLs too (known-failures 35).
            let mut rp =
                reqwest::Proxy::all(p.address.as_str()).map_err(|source| ClientError::Proxy {
                    address: address.clone(),
                    source,
                })?;
            if let Some(user) = &p.username {
                let password = p.password.as_ref().map(|s| s.expose()).unwrap_or("");
                rp = rp.basic_auth(user, password);
            }
            if !p.no_proxy.is_empty() {
                rp = rp.no_proxy(reqwest::NoProxy::from_string(&p.no_proxy.join(",")));
            }
            b = b.proxy(rp);
        }
    }
    Ok(b)
}

/// A transport error as an operator reads it: the whole cause chain on one line, with
/// the proxy's 407 spelled out. reqwest's messages name the request URL (never the
/// proxy credentials, which travel in a header).
pub fn describe_transport_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    let mut proxy_auth = false;
    while let Some(e) = source {
        let s = e.to_string();
        if s.contains("proxy authorization required") {
            proxy_auth = true;
        }
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    // The chain may quote a server (a redirect target, a proxy's answer).
    let text = crate::untrusted::clean(text.as_bytes(), TRANSPORT_ERROR_LIMIT);
    if proxy_auth {
        format!(
            "the proxy refused the credentials (HTTP 407 Proxy Authentication Required); \
             check [proxy] username and password: {text}"
        )
    } else {
        text
    }
}

/// The longest transport error text kept.
const TRANSPORT_ERROR_LIMIT: usize = 2048;

/// Whether a transport error is the proxy answering 407 to CONNECT.
pub fn is_proxy_auth_error(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if e.to_string().contains("proxy authorization required") {
            return true;
        }
        source = e.source();
    }
    false
}

/// Up to `limit` bytes of a body, as text fit for a log line or `/health`: known
/// secrets redacted, control characters escaped, the tail marked when cut (see
/// [`crate::untrusted`]).
pub fn body_excerpt(bytes: &[u8], limit: usize) -> String {
    crate::untrusted::clean(bytes, limit)
}

/// Reads a response body until more than `limit` bytes have arrived (whole chunks, so
/// [`body_excerpt`] can tell it was cut), the body ends or fails, or `within` has
/// passed; returns what arrived. Used only for log excerpts of rejected responses.
pub async fn read_excerpt(
    mut response: reqwest::Response,
    limit: usize,
    within: Duration,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while buf.len() <= limit {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("empty SAN list");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().expect("a key pair");
        let cert = params.self_signed(&key).expect("a self-signed CA");
        cert.pem().into_bytes()
    }

    #[test]
    fn clients_with_the_same_roots_share_one_store() {
        let a = ca_pem("a");
        let b = ca_pem("b");
        let with_a = shared_roots(Some(&a)).unwrap();
        let system = shared_roots(None).unwrap();
        assert!(Arc::ptr_eq(&with_a, &shared_roots(Some(&a)).unwrap()));
        assert!(Arc::ptr_eq(&system, &shared_roots(None).unwrap()));
        let with_b = shared_roots(Some(&b)).unwrap();
        assert!(!Arc::ptr_eq(&with_a, &with_b));
        assert!(!Arc::ptr_eq(&with_a, &system));
        assert_eq!(with_a.len(), system.len() + 1, "the system roots stay");
        // Once no client holds it, a store is built afresh.
        let weak = Arc::downgrade(&with_b);
        drop(with_b);
        assert!(weak.upgrade().is_none());
        assert_eq!(shared_roots(Some(&b)).unwrap().len(), system.len() + 1);
    }

    #[test]
    fn a_ca_file_without_a_usable_certificate_is_refused() {
        assert_eq!(
            shared_roots(Some(b"not pem")).unwrap_err(),
            "no PEM certificate in it"
        );
        let text = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(shared_roots(Some(text)).is_err());
    }

    #[test]
    fn excerpts_are_bounded_and_printable() {
        assert_eq!(body_excerpt(b"abc", 10), "abc");
        assert_eq!(body_excerpt(b"abcdef", 3), "abc…");
        assert_eq!(body_excerpt(b"a\nb\x00\xff", 20), "a\\nb\\u{0}\u{fffd}");
        // The bound applies to what is shown, escapes included.
        assert_eq!(body_excerpt(b"a\nb\x00\xff", 6), "a\\nb\\u…");
    }
}
