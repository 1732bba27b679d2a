//! The access token of one tenant: fetch, cache, early refresh, invalidation
//! (`docs/event-stream.md#token-endpoint`, `docs/event-stream.md#token-request-outcomes`).
//!
//! The token request is built by hand with reqwest. Lookout wants the Application Key
//! as a *bearer token on the token request itself*, which the `oauth2` crate cannot
//! send without hacks. Expiry is kept on the monotonic clock (tokio's, so tests can
//! pause it), measured from when the request was sent, so that a skewed host clock
//! cannot make a valid token look expired or an expired one valid.
//!
//! When the endpoint refuses the key itself ([`refuses_key`]), the key is read again
//! from where it came from (`api_key_file`, or its environment variable) before the
//! next request, and a changed key is used at once: rotating a key never needs a
//! restart ([`TokenSource::reread_key`]).
//!
//! Neither the key nor the token ever reaches a log line or an error: errors carry the
//! server's OAuth `error` and `error_description` only.

use crate::backoff::{BackoffPolicy, Delay, parse_retry_after};
use crate::config::{Secret, SecretSource};
use crate::source::client::{body_excerpt, describe_transport_error, read_excerpt};
use serde::Deserialize;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// Timeout of the whole token request (`docs/event-stream.md#how-tokens-are-used`).
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest token response read. A token response is a few hundred bytes to a few
/// KiB (a JWT); anything past this is not a token response.
pub const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// Refresh margin ceiling: refresh when less than `min(300 s, lifetime/10)` remains.
pub const REFRESH_MARGIN_MAX: Duration = Duration::from_secs(300);

/// Why no token could be had. [`TokenError::delay`] says which backoff applies.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The key itself was refused (`invalid_client`, `unauthorized_client`,
    /// `invalid_grant`): only an operator can fix this.
    #[error(
        "application key rejected for tenant {tenant}: renew it in the Lookout console \
         (keys expire after one year) (HTTP {status}, {oauth})"
    )]
    KeyRejected {
        tenant: String,
        status: u16,
        oauth: OAuthError,
    },
    /// Another 4xx (or a redirect, which the token request does not follow).
    #[error(
        "token request for tenant {tenant} refused: HTTP {status}{}",
        detail(oauth, body)
    )]
    Refused {
        tenant: String,
        status: u16,
        oauth: Option<OAuthError>,
        body: String,
    },
    /// 429 or 5xx: retried with the normal backoff, `Retry-After` honoured.
    #[error(
        "token endpoint for tenant {tenant} answered HTTP {status}{}",
        detail(oauth, body)
    )]
    Unavailable {
        tenant: String,
        status: u16,
        /// The raw `Retry-After` header; [`TokenError::delay`] parses and clamps it.
        retry_after: Option<String>,
        oauth: Option<OAuthError>,
        body: String,
    },
    /// DNS, connect, TLS, proxy or timeout.
    #[error("token request for tenant {tenant} failed: {message}")]
    Transport {
        tenant: String,
        message: String,
        proxy_auth: bool,
    },
    /// HTTP 200 whose body is not a usable token response.
    #[error("token response for tenant {tenant} is unusable: {reason}")]
    BadBody { tenant: String, reason: String },
}

impl TokenError {
    /// The backoff this failure calls for.
    pub fn delay(&self, policy: &BackoffPolicy) -> Delay {
        match self {
            TokenError::KeyRejected { .. } | TokenError::Refused { .. } => Delay::Long,
            TokenError::Transport {
                proxy_auth: true, ..
            } => Delay::Long,
            TokenError::Unavailable { retry_after, .. } => Delay::Normal {
                retry_after: retry_after
                    .as_deref()
                    .and_then(|v| parse_retry_after(v, chrono::Utc::now(), policy)),
            },
            TokenError::Transport { .. } | TokenError::BadBody { .. } => {
                Delay::Normal { retry_after: None }
            }
        }
    }

    /// Whether the tenant must be reported unhealthy.
    pub fn makes_unhealthy(&self) -> bool {
        matches!(
            self,
            TokenError::KeyRejected { .. }
                | TokenError::Refused { .. }
                | TokenError::Transport {
                    proxy_auth: true,
                    ..
                }
        )
    }
}

/// Whether a token-endpoint answer refuses the Application Key itself, so that the
/// key is worth reading again: 401 or 400 with OAuth error `invalid_client`, or 401
/// without a body.
pub fn refuses_key(status: u16, oauth: Option<&OAuthError>, body_empty: bool) -> bool {
    match (status, oauth) {
        (400 | 401, Some(o)) => o.error == "invalid_client",
        (401, None) => body_empty,
        _ => false,
    }
}

/// What reading a refused key again found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reread {
    /// A different key, now in use.
    Changed,
    /// The same key (or none readable): the next attempt uses the key it had.
    Unchanged,
    /// The key is in the configuration file: nothing to read again.
    NotRereadable,
}

/// The RFC 6749 fields of an error body that are safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: String,
    pub description: Option<String>,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error={}", self.error)?;
        if let Some(d) = &self.description {
            write!(f, ", error_description={d:?}")?;
        }
        Ok(())
    }
}

fn detail(oauth: &Option<OAuthError>, body: &str) -> String {
    match oauth {
        Some(o) => format!(" ({o})"),
        None if body.is_empty() => String::new(),
        None => format!(": {body}"),
    }
}

/// The cached token of one tenant and how to get a new one.
#[derive(Debug)]
pub struct TokenSource {
    client: reqwest::Client,
    url: Url,
    key: Secret,
    key_source: SecretSource,
    /// The endpoint refused `key` last time ([`refuses_key`]): read it again first.
    key_refused: bool,
    tenant: String,
    timeout: Duration,
    cached: Option<Cached>,
    fetches: u64,
}

#[derive(Debug)]
struct Cached {
    token: Secret,
    /// When it stops being valid; `None` when the server gave no expiry.
    expires: Option<Instant>,
    /// `expires_in` (or the `expires_at` equivalent) at fetch time.
    lifetime: Option<Duration>,
}

impl TokenSource {
    /// A token source for `{api_domain}/oauth2/token`. `client` must not follow
    /// redirects (see [`crate::source::client::ApiClients::token`]).
    pub fn new(client: reqwest::Client, api_domain: &Url, key: Secret, tenant: &str) -> Self {
        Self {
            client,
            url: endpoint(api_domain, "/oauth2/token"),
            key,
            key_source: SecretSource::ConfigFile,
            key_refused: false,
            tenant: tenant.to_string(),
            timeout: TOKEN_TIMEOUT,
            cached: None,
            fetches: 0,
        }
    }

    /// Says where the key came from, so that a refused key is read again from there.
    pub fn with_key_source(mut self, source: SecretSource) -> Self {
        self.key_source = source;
        self
    }

    /// Whether the endpoint refused the key in use, and the key's source can change
    /// under a running process (a file): worth watching for a rotated key.
    pub fn awaits_new_key(&self) -> bool {
        self.key_refused && self.key_source.can_change()
    }

    /// Reads the key again from its source and takes it if it changed. Logs at info
    /// where it was read from and whether it changed (never the key).
    pub fn reread_key(&mut self) -> Reread {
        self.reread(true)
    }

    /// Like [`TokenSource::reread_key`], but quiet when nothing changed (for polling).
    pub fn poll_key(&mut self) -> Reread {
        self.reread(false)
    }

    fn reread(&mut self, log_unchanged: bool) -> Reread {
        if self.key_source == SecretSource::ConfigFile {
            return Reread::NotRereadable;
        }
        match self.key_source.read(crate::config::load::key_file_text) {
            Ok(Some(key)) if key != self.key => {
                crate::untrusted::remember(key.expose());
                self.key = key;
                self.key_refused = false;
                self.cached = None;
                tracing::info!(
                    tenant = %self.tenant,
                    source = %self.key_source,
                    "the token endpoint refused the application key; re-read it from its source and it changed; using the new key"
                );
                Reread::Changed
            }
            Ok(_) => {
                if log_unchanged {
                    let fix = if self.key_source.can_change() {
                        "put the new key there"
                    } else {
                        "a running process's environment does not change; restart with the new key"
                    };
                    tracing::info!(
                        tenant = %self.tenant,
                        source = %self.key_source,
                        "the token endpoint refused the application key; re-read it from its source, it is unchanged; {fix}"
                    );
                }
                Reread::Unchanged
            }
            Err(error) => {
                if log_unchanged {
                    tracing::warn!(
                        tenant = %self.tenant,
                        source = %self.key_source,
                        %error,
                        "the token endpoint refused the application key and it cannot be read again; keeping the key in use"
                    );
                }
                Reread::Unchanged
            }
        }
    }

    /// Shortens the request timeout (tests).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many token requests were sent.
    pub fn fetches(&self) -> u64 {
        self.fetches
    }

    /// Drops the cached token (after a 401 from the stream).
    pub fn invalidate(&mut self) {
        self.cached = None;
    }

    /// Whether a cached token is usable for opening a stream now.
    pub fn is_fresh(&self) -> bool {
        match &self.cached {
            None => false,
            Some(c) => match (c.expires, c.lifetime) {
                (None, _) => true,
                (Some(expires), lifetime) => {
                    let margin = lifetime
                        .map(|l| (l / 10).min(REFRESH_MARGIN_MAX))
                        .unwrap_or(REFRESH_MARGIN_MAX);
                    expires.saturating_duration_since(Instant::now()) > margin
                }
            },
        }
    }

    /// The token to open a stream with: the cached one while fresh, else a new one.
    pub async fn token(&mut self) -> Result<Secret, TokenError> {
        if self.is_fresh()
            && let Some(c) = &self.cached
        {
            return Ok(c.token.clone());
        }
        self.cached = None;
        // A refused key may have been rotated since: read it before asking again.
        let reread_before = self.key_refused;
        if reread_before {
            self.reread_key();
        }
        let mut fetched = self.fetch().await;
        if !reread_before && self.key_refused && self.reread_key() == Reread::Changed {
            // The key was rotated between the refusal and now: try the new one at once.
            fetched = self.fetch().await;
        }
        let fetched = fetched?;
        let token = fetched.token.clone();
        self.cached = Some(fetched);
        Ok(token)
    }

    /// One token request. Notes whether the endpoint refused the key itself.
    async fn fetch(&mut self) -> Result<Cached, TokenError> {
        let result = self.request().await;
        match &result {
            Ok(_) => self.key_refused = false,
            Err(TokenError::KeyRejected { status, oauth, .. }) => {
                self.key_refused = refuses_key(*status, Some(oauth), false);
            }
            Err(TokenError::Refused {
                status,
                oauth,
                body,
                ..
            }) => self.key_refused = refuses_key(*status, oauth.as_ref(), body.is_empty()),
            Err(_) => {}
        }
        result
    }

    async fn request(&mut self) -> Result<Cached, TokenError> {
        let tenant = self.tenant.clone();
        self.fetches += 1;
        let sent = Instant::now();
        let result = self
            .client
            .post(self.url.clone())
            .bearer_auth(self.key.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("grant_type", "client_credentials")])
            .timeout(self.timeout)
            .send()
            .await;
        let response = result.map_err(|e| TokenError::Transport {
            tenant: tenant.clone(),
            message: describe_transport_error(&e),
            proxy_auth: crate::source::client::is_proxy_auth_error(&e),
        })?;
        let status = response.status();
        if status.is_success() {
            let body = read_bounded(response, TOKEN_BODY_LIMIT)
                .await
                .map_err(|e| match e {
                    Bounded::Transport(e) => TokenError::Transport {
                        tenant: tenant.clone(),
                        message: describe_transport_error(&e),
                        proxy_auth: false,
                    },
                    Bounded::TooLarge => TokenError::BadBody {
                        tenant: tenant.clone(),
                        reason: format!(
                            "the token response is larger than {} KiB, far more than any token; not read further",
                            TOKEN_BODY_LIMIT / 1024
                        ),
                    },
                })?;
            let cached = parse_success(&body, sent, &tenant)?;
            crate::untrusted::remember_token(cached.token.expose());
            return Ok(cached);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let raw = read_excerpt(response, 1024, Duration::from_secs(5)).await;
        let oauth = parse_oauth_error(&raw);
        let body = body_excerpt(&raw, 1024);
        let code = status.as_u16();
        if let Some(o) = &oauth
            && matches!(
                o.error.as_str(),
                "invalid_client" | "unauthorized_client" | "invalid_grant"
            )
        {
            return Err(TokenError::KeyRejected {
                tenant,
                status: code,
                oauth: o.clone(),
            });
        }
        if code == 429 || status.is_server_error() {
            return Err(TokenError::Unavailable {
                tenant,
                status: code,
                retry_after,
                oauth,
                body,
            });
        }
        let body = if code == 407 {
            "the proxy refused the credentials; check [proxy] username and password".into()
        } else if status.is_redirection() {
            // The Application Key must not follow a redirect to another host.
            "the token request is not redirected; check api_domain".into()
        } else {
            body
        };
        Err(TokenError::Refused {
            tenant,
            status: code,
            oauth,
            body,
        })
    }
}

/// Why a body could not be read within its bound.
enum Bounded {
    Transport(reqwest::Error),
    TooLarge,
}

/// The whole body of `response`, or [`Bounded::TooLarge`] as soon as it passes
/// `limit` bytes (announced or received).
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, Bounded> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Bounded::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Bounded::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(Bounded::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `{api_domain}{path}`; `api_domain` has no trailing `/` (config validation).
pub(crate) fn endpoint(api_domain: &Url, path: &str) -> Url {
    let mut url = api_domain.clone();
    let base = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{base}{path}"));
    url.set_query(None);
    url
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: Option<String>,
    token_type: Option<String>,
    /// A number, or a string holding one (some servers quote it).
    expires_in: Option<serde_json::Value>,
    expires_at: Option<serde_json::Value>,
}

fn parse_success(body: &[u8], sent: Instant, tenant: &str) -> Result<Cached, TokenError> {
    let bad = |reason: String| TokenError::BadBody {
        tenant: tenant.to_string(),
        reason,
    };
    let parsed: TokenBody = serde_json::from_slice(body)
        .map_err(|e| bad(format!("not a JSON token response ({e})")))?;
    let token = parsed
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no access_token".into()))?;
    // RFC 6750's b64token is visible ASCII; a CR, LF, space or other byte would make
    // every stream request fail (or, worse, split its header), for the token's whole
    // lifetime if it were cached.
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "access_token cannot be sent in an Authorization header (it holds a control, space or non-ASCII character)".into(),
        ));
    }
    if let Some(t) = &parsed.token_type
        && !t.eq_ignore_ascii_case("bearer")
    {
        return Err(bad(format!("token_type {t:?} is not Bearer")));
    }
    let expires_in = parsed.expires_in.as_ref().filter(|v| !v.is_null());
    let expires_in_secs = expires_in.and_then(number_secs);
    if expires_in.is_some() && expires_in_secs.is_none() {
        tracing::warn!(
            tenant = %tenant,
            "token response: expires_in is not a number of seconds; ignoring it"
        );
    }
    let lifetime = if let Some(secs) = expires_in_secs {
        Some(Duration::from_secs_f64(secs))
    } else if let Some(ms) = parsed.expires_at.as_ref().and_then(number_secs) {
        // Only here does the wall clock matter: expires_at is absolute.
        let now_ms = chrono::Utc::now().timestamp_millis() as f64;
        Some(Duration::from_secs_f64(((ms - now_ms) / 1000.0).max(0.0)))
    } else {
        tracing::warn!(
            tenant = %tenant,
            "token response has neither expires_in nor expires_at; reusing the token until the stream answers 401"
        );
        None
    };
    Ok(Cached {
        token: Secret::new(token),
        expires: lifetime.map(|l| sent + l),
        lifetime,
    })
}

/// A JSON number, or a string holding a decimal number (surrounding spaces allowed),
/// that is finite, not negative and not absurdly large.
fn number_secs(v: &serde_json::Value) -> Option<f64> {
    let n = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => {
            let s = s.trim();
            // Only plain decimal text: no "inf", "NaN", "1e400" or hex.
            if s.is_empty() || s.len() > 24 || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return None;
            }
            s.parse::<f64>().ok()?
        }
        _ => return None,
    };
    Some(n).filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e15)
}

fn parse_oauth_error(body: &[u8]) -> Option<OAuthError> {
    #[derive(Deserialize)]
    struct Body {
        error: Option<String>,
        error_description: Option<String>,
    }
    let b: Body = serde_json::from_slice(body).ok()?;
    let clip = |s: String| -> String { body_excerpt(s.as_bytes(), 200) };
    Some(OAuthError {
        error: clip(b.error?),
        description: b.error_description.map(clip),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cached(lifetime: Option<Duration>) -> TokenSource {
        crate::tls::install_crypto_provider();
        let mut t = TokenSource::new(
            reqwest::Client::new(),
            &Url::parse("http://127.0.0.1:9").unwrap(),
            Secret::new("key"),
            "t",
        );
        t.cached = Some(Cached {
            token: Secret::new("tok"),
            expires: lifetime.map(|l| Instant::now() + l),
            lifetime,
        });
        t
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_when_less_than_a_tenth_of_the_lifetime_remains() {
        // 1000 s lifetime: the margin is 100 s.
        let t = with_cached(Some(Duration::from_secs(1000)));
        assert!(t.is_fresh());
        tokio::time::advance(Duration::from_secs(899)).await;
        assert!(t.is_fresh(), "101 s left of 1000");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!t.is_fresh(), "99 s left of 1000");
    }

    #[tokio::test(start_paused = true)]
    async fn the_refresh_margin_is_at_most_five_minutes() {
        // 7200 s lifetime: a tenth would be 720 s; the margin is capped at 300 s.
        let t = with_cached(Some(Duration::from_secs(7200)));
        tokio::time::advance(Duration::from_secs(6899)).await;
        assert!(t.is_fresh(), "301 s left");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!t.is_fresh(), "299 s left");
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_without_expiry_is_kept_until_invalidated() {
        let mut t = with_cached(None);
        tokio::time::advance(Duration::from_secs(86_400)).await;
        assert!(t.is_fresh());
        t.invalidate();
        assert!(!t.is_fresh());
    }

    #[test]
    fn endpoint_appends_to_the_domain() {
        let u = Url::parse("https://api.lookout.com").unwrap();
        assert_eq!(
            endpoint(&u, "/oauth2/token").as_str(),
            "https://api.lookout.com/oauth2/token"
        );
        let u = Url::parse("http://127.0.0.1:9/base").unwrap();
        assert_eq!(
            endpoint(&u, "/mra/stream/v2/events").as_str(),
            "http://127.0.0.1:9/base/mra/stream/v2/events"
        );
    }

    #[test]
    fn oauth_errors_are_read_and_clipped() {
        let o = parse_oauth_error(br#"{"error":"invalid_client","error_description":"bad"}"#);
        assert_eq!(
            o,
            Some(OAuthError {
                error: "invalid_client".into(),
                description: Some("bad".into())
            })
        );
        assert_eq!(parse_oauth_error(b"<html>"), None);
        assert_eq!(parse_oauth_error(br#"{"type":"x"}"#), None);
    }

    #[test]
    fn only_a_refusal_of_the_key_itself_makes_it_worth_reading_again() {
        let e = |error: &str| OAuthError {
            error: error.into(),
            description: Some("x".into()),
        };
        assert!(refuses_key(401, Some(&e("invalid_client")), false));
        assert!(refuses_key(400, Some(&e("invalid_client")), false));
        assert!(refuses_key(401, None, true), "401 without a body");
        assert!(
            !refuses_key(401, None, false),
            "401 with a body that is not OAuth"
        );
        assert!(!refuses_key(401, Some(&e("invalid_token")), false));
        assert!(!refuses_key(400, Some(&e("invalid_request")), false));
        assert!(!refuses_key(400, None, true));
        assert!(!refuses_key(403, Some(&e("invalid_client")), false));
        assert!(!refuses_key(429, None, true));
        assert!(!refuses_key(503, Some(&e("invalid_client")), false));
    }

    /// A simulator whose tenant `acme` has the key `new-key`, and a key file.
    async fn simulator_and_key_file(
        file_holds: &str,
    ) -> (
        crate::simulator::SimHandle,
        tempfile::TempDir,
        std::path::PathBuf,
    ) {
        let options = crate::simulator::SimOptions {
            tenants: [("acme".to_owned(), "new-key".to_owned())].into(),
            events: 0,
            rate: 0,
            ..Default::default()
        };
        let (_, sim) = crate::simulator::start(options).await.expect("simulator");
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("api_key");
        std::fs::write(&path, file_holds).expect("write the key file");
        (sim, dir, path)
    }

    fn source_for(
        sim: &crate::simulator::SimHandle,
        key: &str,
        path: &std::path::Path,
    ) -> TokenSource {
        crate::tls::install_crypto_provider();
        let api = Url::parse(&sim.base_url()).unwrap();
        TokenSource::new(reqwest::Client::new(), &api, Secret::new(key), "acme")
            .with_key_source(SecretSource::File(path.to_path_buf()))
    }

    #[tokio::test]
    async fn a_key_rotated_before_the_refusal_is_used_at_once() {
        // The file already holds the new key when the old one is refused.
        let (sim, _dir, path) = simulator_and_key_file("new-key\n").await;
        let mut tokens = source_for(&sim, "old-key", &path);
        tokens.token().await.expect("a token with the re-read key");
        assert_eq!(
            tokens.fetches(),
            2,
            "refused once, then the new key at once"
        );
        assert!(!tokens.awaits_new_key());
    }

    #[tokio::test]
    async fn a_refused_key_is_read_again_before_the_next_attempt() {
        let (sim, _dir, path) = simulator_and_key_file("old-key\n").await;
        let mut tokens = source_for(&sim, "old-key", &path);
        match tokens.token().await {
            Err(TokenError::KeyRejected { status: 401, .. }) => {}
            other => panic!("expected the key to be rejected, got {:?}", other.err()),
        }
        assert!(tokens.awaits_new_key(), "the file may still change");
        assert_eq!(tokens.poll_key(), Reread::Unchanged);
        std::fs::write(&path, "new-key\r\n").expect("rotate the key file");
        assert_eq!(tokens.poll_key(), Reread::Changed);
        tokens.token().await.expect("a token with the new key");
        assert!(!tokens.awaits_new_key());
        // A key in the configuration file cannot be read again.
        let mut inline = TokenSource::new(
            reqwest::Client::new(),
            &Url::parse(&sim.base_url()).unwrap(),
            Secret::new("old-key"),
            "acme",
        );
        assert!(inline.token().await.is_err());
        assert!(!inline.awaits_new_key());
        assert_eq!(inline.reread_key(), Reread::NotRereadable);
    }

    #[test]
    fn key_rejection_is_long_and_names_the_fix() {
        let e = TokenError::KeyRejected {
            tenant: "acme".into(),
            status: 401,
            oauth: OAuthError {
                error: "invalid_client".into(),
                description: None,
            },
        };
        assert_eq!(e.delay(&BackoffPolicy::default()), Delay::Long);
        assert!(e.to_string().starts_with(
            "application key rejected for tenant acme: renew it in the Lookout console (keys expire after one year)"
        ));
    }

    #[test]
    fn expires_in_as_a_string_is_read_as_the_api_could_send_it() {
        let sent = Instant::now();
        for (json, secs) in [
            (r#""3600""#, 3600.0),
            (r#"" 3600 ""#, 3600.0),
            (r#""3599.5""#, 3599.5),
            ("3600", 3600.0),
        ] {
            let body =
                format!(r#"{{"access_token":"eyJ","token_type":"Bearer","expires_in":{json}}}"#);
            let c = parse_success(body.as_bytes(), sent, "t")
                .unwrap_or_else(|e| panic!("expires_in {json}: {e}"));
            assert_eq!(c.lifetime, Some(Duration::from_secs_f64(secs)), "{json}");
        }
        // Unreadable: the token is still usable, without a known expiry (or with
        // expires_at's).
        let c = parse_success(br#"{"access_token":"eyJ","expires_in":"soon"}"#, sent, "t").unwrap();
        assert_eq!(c.lifetime, None);
        let far_ms = chrono::Utc::now().timestamp_millis() + 100_000;
        let body = format!(r#"{{"access_token":"eyJ","expires_in":null,"expires_at":"{far_ms}"}}"#);
        let c = parse_success(body.as_bytes(), sent, "t").unwrap();
        assert!(c.lifetime.is_some_and(|l| l > Duration::from_secs(90)));
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused_at_once() {
        let sent = Instant::now();
        for token in [
            r"a\r\nX-Injected: 1",
            r"a\nb",
            r"a\u0000b",
            r"a\u007fb",
            r"caf\u00e9",
        ] {
            let body = format!(r#"{{"access_token":"{token}","expires_in":3600}}"#);
            match parse_success(body.as_bytes(), sent, "t") {
                Err(TokenError::BadBody { reason, .. }) => {
                    assert!(reason.contains("header"), "{token}: {reason}")
                }
                other => panic!("{token}: accepted: {:?}", other.map(|c| c.lifetime)),
            }
        }
    }

    #[test]
    fn success_body_expiry_prefers_expires_in() {
        let sent = Instant::now();
        let far_ms = chrono::Utc::now().timestamp_millis() + 10_000_000;
        let body = format!(
            r#"{{"access_token":"eyJ","token_type":"bearer","expires_in":100,"expires_at":{far_ms},"scope":""}}"#
        );
        let c = parse_success(body.as_bytes(), sent, "t").unwrap();
        assert_eq!(c.lifetime, Some(Duration::from_secs(100)));
        assert_eq!(c.expires, Some(sent + Duration::from_secs(100)));
        assert!(matches!(
            parse_success(br#"{"token_type":"Bearer"}"#, sent, "t"),
            Err(TokenError::BadBody { .. })
        ));
        assert!(matches!(
            parse_success(br#"{"access_token":"x","token_type":"mac"}"#, sent, "t"),
            Err(TokenError::BadBody { .. })
        ));
    }
}
