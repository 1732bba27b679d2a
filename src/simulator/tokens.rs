//! Access tokens issued by the simulated token endpoint: random opaque strings, each
//! bound to one tenant, expiring after the configured TTL on tokio's clock (so a test
//! on a paused clock can expire them without waiting).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// What the simulator made of a request's credentials; logged instead of the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// A known key or a live token.
    Valid,
    /// An unknown key or token, or a header that is not `Bearer …`.
    Invalid,
    /// A token that expired or was invalidated by `expire_tokens`.
    Expired,
    /// No `Authorization` header.
    Missing,
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The opaque token.
    pub access_token: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Absolute expiry, ms since the Unix epoch.
    pub expires_at: i64,
}

/// Every token issued so far.
#[derive(Debug)]
pub struct TokenStore {
    ttl: Duration,
    tokens: Mutex<HashMap<String, Token>>,
}

#[derive(Debug)]
struct Token {
    tenant: String,
    expires: Instant,
    revoked: bool,
}

impl TokenStore {
    /// A store whose tokens live `ttl`.
    pub fn new(ttl: Duration) -> TokenStore {
        TokenStore {
            ttl,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Issues a new token for `tenant`.
    pub fn issue(&self, tenant: &str) -> Issued {
        let random: [u8; 24] = rand::rng().random();
        let hex: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        // JWT-like on the outside (`eyJ` is the base64 of `{"`); opaque inside.
        let access_token = format!("eyJzaW0iOnRydWV9.{hex}");
        let token = Token {
            tenant: tenant.to_owned(),
            expires: Instant::now() + self.ttl,
            revoked: false,
        };
        self.lock().insert(access_token.clone(), token);
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        Issued {
            access_token,
            expires_in: self.ttl.as_secs(),
            expires_at: chrono::Utc::now().timestamp_millis().saturating_add(ttl_ms),
        }
    }

    /// Classifies the `Authorization` header of a stream request and names the tenant
    /// of a known token (live or not).
    pub fn check(&self, authorization: Option<&str>) -> (Auth, Option<String>) {
        let Some(header) = authorization else {
            return (Auth::Missing, None);
        };
        let Some(token) = bearer(header) else {
            return (Auth::Invalid, None);
        };
        match self.lock().get(token) {
            None => (Auth::Invalid, None),
            Some(known) if known.revoked || Instant::now() >= known.expires => {
                (Auth::Expired, Some(known.tenant.clone()))
            }
            Some(known) => (Auth::Valid, Some(known.tenant.clone())),
        }
    }

    /// Invalidates every token issued so far (the `expire_tokens` fault).
    pub fn revoke_all(&self) {
        for token in self.lock().values_mut() {
            token.revoked = true;
        }
    }

    /// Invalidates every token issued to `tenant` (its key was rotated).
    pub fn revoke_tenant(&self, tenant: &str) {
        for token in self.lock().values_mut() {
            if token.tenant == tenant {
                token.revoked = true;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Token>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The credential of an `Authorization: Bearer <credential>` header; the scheme is
/// case-insensitive.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, credential) = header.trim().split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokens_expire_and_can_be_revoked() {
        let store = TokenStore::new(Duration::from_secs(10));
        let issued = store.issue("demo");
        let header = format!("Bearer {}", issued.access_token);
        assert_eq!(
            store.check(Some(&header)),
            (Auth::Valid, Some("demo".into()))
        );
        assert_eq!(store.check(None).0, Auth::Missing);
        assert_eq!(store.check(Some("Bearer nope")).0, Auth::Invalid);
        assert_eq!(store.check(Some("Basic abc")).0, Auth::Invalid);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(store.check(Some(&header)).0, Auth::Expired);
        let second = store.issue("demo");
        store.revoke_all();
        assert_eq!(
            store
                .check(Some(&format!("bearer {}", second.access_token)))
                .0,
            Auth::Expired
        );
        assert_ne!(issued.access_token, second.access_token);
    }
}
