//! What every endpoint of one simulator shares: options, tenants with their events,
//! tokens, the request log, per-endpoint request counters, and the shutdown signal.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::event_log::EventLog;
use super::firehose::Firehose;
use super::options::SimOptions;
use super::requests::RequestLog;
use super::scenario::Endpoint;
use super::tokens::TokenStore;
use super::wire::WireStyle;

/// One tenant of the simulator.
#[derive(Debug)]
pub struct Tenant {
    /// The tenant name.
    pub name: String,
    /// Its Application Key; `POST /_sim/key` replaces it.
    pub key: Mutex<String>,
    /// Counts key rotations; open streams of the tenant end when it moves.
    pub rotations: tokio::sync::watch::Sender<u64>,
    /// Its events.
    pub log: EventLog,
    /// The pre-serialised history, in firehose mode.
    pub firehose: Option<Firehose>,
}

/// The state of one running simulator.
#[derive(Debug)]
pub struct Shared {
    /// The options it was started with.
    pub options: SimOptions,
    /// The wire style of every stream body.
    pub style: WireStyle,
    /// Tenants by name.
    pub tenants: BTreeMap<String, Arc<Tenant>>,
    /// Issued tokens.
    pub tokens: TokenStore,
    /// Every token and stream request.
    pub requests: RequestLog,
    /// Cancelled on shutdown; every task watches it.
    pub cancel: CancellationToken,
    /// Every task of the simulator, so that shutdown can wait for them.
    pub tracker: TaskTracker,
    counters: Mutex<HashMap<(Endpoint, Option<String>), u64>>,
}

impl Shared {
    /// Assembles the state.
    pub fn new(
        options: SimOptions,
        style: WireStyle,
        tenants: BTreeMap<String, Arc<Tenant>>,
    ) -> Shared {
        Shared {
            tokens: TokenStore::new(options.token_ttl),
            options,
            style,
            tenants,
            requests: RequestLog::default(),
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant whose Application Key is `key`.
    pub fn tenant_by_key(&self, key: &str) -> Option<&Arc<Tenant>> {
        self.tenants
            .values()
            .find(|tenant| *tenant.key.lock().unwrap_or_else(PoisonError::into_inner) == key)
    }

    /// Rotates `tenant`'s Application Key to `key`, as an operator does in the console
    /// when the old key is revoked: the old key is refused from now on, the tenant's
    /// tokens are revoked and its open streams end. The error says what is wrong.
    pub fn rotate_key(&self, tenant: &str, key: &str) -> Result<(), String> {
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the new key must be printable ascii without spaces".into());
        }
        let Some(found) = self.tenants.get(tenant) else {
            return Err(format!("unknown tenant {tenant:?}"));
        };
        if self
            .tenant_by_key(key)
            .is_some_and(|other| other.name != found.name)
        {
            return Err("another tenant has this key".into());
        }
        *found.key.lock().unwrap_or_else(PoisonError::into_inner) = key.to_owned();
        self.tokens.revoke_tenant(tenant);
        found.rotations.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Counts a request to `endpoint` for `tenant` (`None`: unknown) and returns its
    /// 1-based number, which fault selectors match against.
    pub fn count(&self, endpoint: Endpoint, tenant: Option<&str>) -> u64 {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let counter = counters
            .entry((endpoint, tenant.map(str::to_owned)))
            .or_insert(0);
        *counter += 1;
        *counter
    }
}
