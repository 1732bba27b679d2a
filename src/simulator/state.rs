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
    /// Its Application Key.
    pub key: String,
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
        self.tenants.values().find(|tenant| tenant.key == key)
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
