//! The HTTP clients of one tenant: TLS roots, proxy, timeouts and redirects for the
//! token and stream requests.
//!
//! Two clients are built from one recipe, because reqwest fixes the redirect policy per
//! client: the stream client follows at most 5 redirects (§5.2), the token client none
//! (the Application Key must never follow a redirect to another host). Neither
//! advertises a compressed encoding (§3.2): reqwest is built without its decompression
//! features, so it sends no `Accept-Encoding`.

use crate::config::{ProxyConfig, TenantConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Connect (TCP + TLS) timeout of every API request (§3.3).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most redirects followed by a stream request (§5.2).
pub const MAX_REDIRECTS: usize = 5;

/// Why the clients of a tenant cannot be built. None of these is retried: they are
/// configuration problems found on the first start.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("[lookout] ca_file {path}: {source}")]
    CaFileRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("[lookout] ca_file {path}: no usable PEM certificate: {source}")]
    CaFilePem {
        path: PathBuf,
        source: reqwest::Error,
    },
    #[error("[proxy] address {address}: {source}")]
    Proxy {
        address: String,
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Build(reqwest::Error),
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
    /// Builds both clients for a tenant. Installs the ring provider first (reqwest is
    /// built with `rustls-no-provider`).
    pub fn new(tenant: &TenantConfig, proxy: &ProxyConfig) -> Result<Self, ClientError> {
        crate::tls::install_crypto_provider();
        let roots = match &tenant.ca_file {
            None => Vec::new(),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| ClientError::CaFileRead {
                    path: path.clone(),
                    source,
                })?;
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                    ClientError::CaFilePem {
                        path: path.clone(),
                        source,
                    }
                })?
            }
        };
        let stream = builder(&roots, proxy)?
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(ClientError::Build)?;
        let token = builder(&roots, proxy)?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self { stream, token })
    }
}

fn builder(
    roots: &[reqwest::Certificate],
    proxy: &ProxyConfig,
) -> Result<reqwest::ClientBuilder, ClientError> {
    let mut b = reqwest::Client::builder()
        .user_agent(crate::USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        // The system roots stay; the ca_file roots are added to them.
        .tls_certs_merge(roots.iter().cloned());
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
    if proxy_auth {
        format!(
            "the proxy refused the credentials (HTTP 407 Proxy Authentication Required); \
             check [proxy] username and password: {text}"
        )
    } else {
        text
    }
}

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

/// Up to `limit` bytes of a body, as printable text for a log line: invalid UTF-8
/// replaced, control characters escaped, the tail marked when cut.
pub fn body_excerpt(bytes: &[u8], limit: usize) -> String {
    let cut = bytes.len() > limit;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(limit)]);
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut {
        out.push('…');
    }
    out
}

/// Reads at most `limit` bytes of a response body within `within`; whatever arrived
/// by then is returned. Used only for log excerpts of rejected responses.
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

    #[test]
    fn excerpts_are_bounded_and_printable() {
        assert_eq!(body_excerpt(b"abc", 10), "abc");
        assert_eq!(body_excerpt(b"abcdef", 3), "abc…");
        assert_eq!(body_excerpt(b"a\nb\x00\xff", 10), "a\\nb\\u{0}\u{fffd}");
    }
}
