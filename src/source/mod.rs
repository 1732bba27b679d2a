//! Token lifecycle, the SSE parser and the authenticated event stream of one tenant.
//!
//! [`EventSource`] is what a tenant task reads: decoded batches, in order, from a stream
//! that reconnects forever (`docs/event-stream.md#outcomes-and-reactions`). It owns the
//! token, the HTTP clients, the backoff state, the *received* position and the
//! de-duplication window. It does not own the *committed* position: after a sink failure
//! the caller rewinds with [`EventSource::reset_to`].
//!
//! - [`client`]: the per-tenant reqwest clients (TLS roots, proxy, timeouts).
//! - [`oauth`]: token fetch, cache, refresh.
//! - [`sse`]: the event-stream parser (bytes in, frames out).
//! - [`stream`]: one connection: the request, status checks, reads under `sse_timeout`.
//! - [`decode`]: `events` data → [`Batch`].

pub mod client;
pub mod decode;
pub mod oauth;
pub mod sse;
pub mod stream;

pub use stream::StartPoint;

use crate::backoff::{Backoff, BackoffPolicy, Delay};
use crate::config::{ProxyConfig, TenantConfig};
use crate::event::{Batch, EventType, MAX_POSITION_LEN, Position, Untrusted};
use chrono::{DateTime, Utc};
use client::{ApiClients, ClientError};
use hashbrown::HashTable;
use oauth::{TokenError, TokenSource};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use stream::{
    Connection, HEADER_TIMEOUT, OpenError, OpenParams, ReadError, StreamItem, classify_open,
    stream_url,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

/// How many delivered event ids are remembered for de-duplication
/// (`docs/event-stream.md#the-id-cursor-and-duplicates`).
pub const DEDUP_WINDOW: usize = 10_000;

/// How often a refused key's file is looked at while the source waits to try again.
pub const KEY_POLL: Duration = Duration::from_secs(1);

/// What the caller can read about a source at any time (metrics, `/health`).
#[derive(Debug, Default)]
pub struct SourceStatus {
    healthy: AtomicBool,
    token_fetches: AtomicU64,
    duplicates_dropped: AtomicU64,
    dead_letters: AtomicU64,
    received_events: AtomicU64,
    inner: Mutex<StatusInner>,
}

#[derive(Debug, Default, Clone)]
struct StatusInner {
    last_error: Option<String>,
    /// Set while the tenant's writer holds the stream (see [`SourceStatus::hold`]).
    held: Option<String>,
    last_activity: Option<Instant>,
    reconnects: BTreeMap<String, u64>,
}

/// A copy of [`SourceStatus`] at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSnapshot {
    /// A heartbeat or batch arrived since the last failure that makes a tenant
    /// unhealthy (rejected key, 403, other 4xx, not an event stream, oversized message).
    pub healthy: bool,
    /// The last failure, as logged.
    pub last_error: Option<String>,
    /// The last time the stream showed life (connection opened, heartbeat, batch).
    pub last_activity: Option<Instant>,
    /// Reconnects by reason: `status_503`, `stall`, `end`, `reconnect`, `eof`,
    /// `transport`, `token_unavailable`, … (the `reason` label of the metric).
    pub reconnects: BTreeMap<String, u64>,
    /// Token requests sent.
    pub token_fetches: u64,
    /// Events dropped as duplicates.
    pub duplicates_dropped: u64,
    /// Dead letters produced by decoding.
    pub dead_letters: u64,
    /// Events received and passed on (after de-duplication).
    pub received_events: u64,
}

impl SourceStatus {
    /// A consistent-enough copy for metrics and `/health`.
    pub fn snapshot(&self) -> SourceSnapshot {
        let inner = self.lock().clone();
        SourceSnapshot {
            healthy: self.healthy.load(Ordering::Relaxed) && inner.held.is_none(),
            last_error: inner.held.or(inner.last_error),
            last_activity: inner.last_activity,
            reconnects: inner.reconnects,
            token_fetches: self.token_fetches.load(Ordering::Relaxed),
            duplicates_dropped: self.duplicates_dropped.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.load(Ordering::Relaxed),
            received_events: self.received_events.load(Ordering::Relaxed),
        }
    }

    /// Marks the tenant unhealthy with `reason` while the writer cannot go on (the
    /// dead-letter file is full), or clears that mark with `None`. The stream itself
    /// is fine; it is simply not read until the mark is cleared.
    pub fn hold(&self, reason: Option<String>) {
        self.lock().held = reason;
    }

    /// Whether the source is healthy now.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, StatusInner> {
        // A panic while holding this lock cannot leave the counters inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn alive(&self) {
        self.healthy.store(true, Ordering::Relaxed);
        self.lock().last_activity = Some(Instant::now());
    }

    fn reconnect(&self, reason: &str, error: Option<String>, unhealthy: bool) {
        if unhealthy {
            self.healthy.store(false, Ordering::Relaxed);
        }
        let mut inner = self.lock();
        match inner.reconnects.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                inner.reconnects.insert(reason.to_string(), 1);
            }
        }
        if error.is_some() {
            inner.last_error = error;
        }
    }
}

/// The ids of the last [`DEDUP_WINDOW`] delivered events: a ring of keys in arrival
/// order, and a hash table holding each key's slot in the ring. Every tenant keeps one
/// at all times, so it is built for size: 16 bytes per id in the ring plus about 5 in
/// the table (about 210 KB when full), where a `VecDeque` and a `HashSet` of the keys
/// took over 1 MB per tenant.
///
/// Ids are compared only for equality. A lowercase hyphenated UUID (what Lookout
/// sends) maps one-to-one onto its 128 bits, which is what the ring holds. Any other id
/// is kept as text in `others`, by slot, and its ring entry is [`OTHER`]; a UUID whose
/// bits happen to equal [`OTHER`] is told apart by having no entry in `others`.
#[derive(Default)]
struct RecentIds {
    /// Grows to [`DEDUP_WINDOW`]; then `next` names the oldest slot, overwritten next.
    ring: Vec<[u64; 2]>,
    next: usize,
    /// The ids that are not UUIDs, by ring slot.
    others: HashMap<u16, Box<str>>,
    /// Ring slots, found by the hash of the id they hold.
    slots: HashTable<u16>,
    hasher: foldhash::fast::RandomState,
}

/// The ring entry of an id that is not a UUID.
const OTHER: [u64; 2] = [u64::MAX; 2];

// Ring slots are stored as `u16`.
const _: () = assert!(DEDUP_WINDOW <= u16::MAX as usize + 1);

impl std::fmt::Debug for RecentIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentIds")
            .field("len", &self.ring.len())
            .finish_non_exhaustive()
    }
}

/// An event id as the window sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IdKey<'a> {
    Uuid([u64; 2]),
    Other(&'a str),
}

impl<'a> IdKey<'a> {
    fn new(id: &'a str) -> Self {
        let b = id.as_bytes();
        let canonical = b.len() == 36
            && b.iter().enumerate().all(|(i, &c)| match i {
                8 | 13 | 18 | 23 => c == b'-',
                _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
            });
        match uuid::Uuid::try_parse(id) {
            Ok(uuid) if canonical => {
                let (high, low) = uuid.as_u64_pair();
                IdKey::Uuid([high, low])
            }
            _ => IdKey::Other(id),
        }
    }
}

impl RecentIds {
    /// Records `id`; false when it was already there. An id longer than a position
    /// may be ([`MAX_POSITION_LEN`]) is not kept, so that the window stays small
    /// whatever ids the stream sends; such an event is never taken for a repeat.
    fn insert(&mut self, id: &str) -> bool {
        if id.len() > MAX_POSITION_LEN {
            return true;
        }
        let key = IdKey::new(id);
        let hash = self.hasher.hash_one(key);
        if self
            .slots
            .find(hash, |&slot| self.key_at(slot) == Some(key))
            .is_some()
        {
            return false;
        }
        let slot = if self.ring.len() < DEDUP_WINDOW {
            if self.ring.len() == self.ring.capacity() {
                // Grow by doubling, but never past the window.
                let more = self
                    .ring
                    .capacity()
                    .max(64)
                    .min(DEDUP_WINDOW - self.ring.len());
                self.ring.reserve_exact(more);
            }
            self.ring.push(OTHER);
            self.ring.len() - 1
        } else {
            let slot = self.next;
            self.next = (slot + 1) % DEDUP_WINDOW;
            // `slot < DEDUP_WINDOW`, which fits in a u16 (asserted above).
            let slot = slot as u16;
            if let Some(old) = self.key_at(slot) {
                let old = self.hasher.hash_one(old);
                if let Ok(entry) = self.slots.find_entry(old, |&s| s == slot) {
                    entry.remove();
                }
            }
            self.others.remove(&slot);
            usize::from(slot)
        };
        let slot16 = slot as u16;
        match key {
            IdKey::Uuid(bits) => self.ring[slot] = bits,
            IdKey::Other(text) => {
                self.ring[slot] = OTHER;
                self.others.insert(slot16, text.into());
            }
        }
        let Self {
            ring,
            others,
            slots,
            hasher,
            ..
        } = self;
        slots.insert_unique(hash, slot16, |&s| hasher.hash_one(key_in(ring, others, s)));
        true
    }

    /// The id in `slot`.
    fn key_at(&self, slot: u16) -> Option<IdKey<'_>> {
        self.ring
            .get(usize::from(slot))
            .map(|_| key_in(&self.ring, &self.others, slot))
    }

    fn clear(&mut self) {
        self.ring.clear();
        self.next = 0;
        self.others.clear();
        self.slots.clear();
    }
}

/// The id in `slot` of `ring`, which must be a slot in use.
fn key_in<'a>(ring: &[[u64; 2]], others: &'a HashMap<u16, Box<str>>, slot: u16) -> IdKey<'a> {
    let bits = ring.get(usize::from(slot)).copied().unwrap_or(OTHER);
    // `others` is looked at only for the marker, not for every UUID compared.
    match (bits == OTHER).then(|| others.get(&slot)).flatten() {
        Some(text) => IdKey::Other(text),
        None => IdKey::Uuid(bits),
    }
}

/// The unknown message names already logged, so that each is logged once. Bounded:
/// at most [`SeenNames::MOST`] names of at most [`SeenNames::LONGEST`] bytes are kept
/// (400 distinct 1 MB names once stayed in memory, 413 MB). A name beyond that is not
/// remembered and is logged again each time it comes, cut (at debug level).
#[derive(Debug, Default)]
struct SeenNames(HashSet<Box<str>>);

impl SeenNames {
    const MOST: usize = 64;
    const LONGEST: usize = 64;

    /// Whether `name` should be logged: not seen before, or not remembered.
    fn first_time(&mut self, name: &str) -> bool {
        if self.0.contains(name) {
            return false;
        }
        if name.len() <= Self::LONGEST && self.0.len() < Self::MOST {
            self.0.insert(name.into());
        }
        true
    }

    /// Bytes of names kept.
    #[cfg(test)]
    fn kept_bytes(&self) -> usize {
        self.0.iter().map(|n| n.len()).sum()
    }
}

/// Why a connection attempt or a connection failed.
enum Failure {
    Token(TokenError),
    Open(OpenError),
    Read { error: ReadError, stable: bool },
    Eof { stable: bool },
}

/// One tenant's event stream: yields decoded batches in order and reconnects forever.
#[derive(Debug)]
pub struct EventSource {
    tenant: String,
    api_domain: Url,
    types: Vec<EventType>,
    sse_timeout: Duration,
    max_event_size: usize,
    header_timeout: Duration,
    clients: ApiClients,
    tokens: TokenSource,
    backoff: Backoff,
    rng: StdRng,
    initial: StartPoint,
    /// The position of the last received batch (or the start position).
    received: Option<Position>,
    /// Sent while no position is known, until the first `events` message.
    start_time: Option<DateTime<Utc>>,
    conn: Option<Connection>,
    /// The `id` the open connection resumed from; an event with this id is a repeat.
    conn_resume: Option<Position>,
    /// The wait before the next connection attempt.
    wait: Option<Duration>,
    /// The last 401 was already answered with one immediate retry.
    retried_401: bool,
    recent: RecentIds,
    unknown_seen: SeenNames,
    status: Arc<SourceStatus>,
    cancel: CancellationToken,
}

impl EventSource {
    /// A source for one tenant, starting at `start`. Fails only when the HTTP client
    /// cannot be built (an unreadable `ca_file`, a bad proxy URL). Nothing is sent
    /// until [`EventSource::next`] is called.
    pub fn new(
        tenant: &TenantConfig,
        proxy: &ProxyConfig,
        start: StartPoint,
        cancel: CancellationToken,
    ) -> Result<Self, ClientError> {
        let clients = ApiClients::new(tenant, proxy)?;
        let tokens = TokenSource::new(
            clients.token.clone(),
            &tenant.api_domain,
            tenant.api_key.clone(),
            &tenant.entity_name,
        )
        .with_key_source(tenant.api_key_source.clone());
        let mut source = Self {
            tenant: tenant.entity_name.clone(),
            api_domain: tenant.api_domain.clone(),
            types: tenant.types.clone(),
            sse_timeout: tenant.sse_timeout,
            max_event_size: tenant.max_event_size,
            header_timeout: HEADER_TIMEOUT,
            clients,
            tokens,
            backoff: Backoff::new(BackoffPolicy::default()),
            rng: StdRng::from_os_rng(),
            initial: start.clone(),
            received: None,
            start_time: None,
            conn: None,
            conn_resume: None,
            wait: None,
            retried_401: false,
            recent: RecentIds::default(),
            unknown_seen: SeenNames::default(),
            status: Arc::new(SourceStatus::default()),
            cancel,
        };
        source.rewind(None);
        Ok(source)
    }

    /// Replaces the backoff constants (tests shorten them).
    pub fn with_policy(mut self, policy: BackoffPolicy) -> Self {
        self.backoff = Backoff::new(policy);
        self
    }

    /// Replaces the response-header timeout (30 s; tests shorten it).
    pub fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Seeds the jitter (tests).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = StdRng::seed_from_u64(seed);
        self
    }

    /// The shared status, for metrics and `/health`.
    pub fn status(&self) -> Arc<SourceStatus> {
        Arc::clone(&self.status)
    }

    /// The position of the last received batch (or the start position).
    pub fn received_position(&self) -> Option<&Position> {
        self.received.as_ref()
    }

    /// Rewinds to `committed` (the last position delivered downstream), or to the
    /// start point when nothing was committed yet. The open connection is dropped and
    /// the de-duplication window cleared, so the next [`EventSource::next`] reconnects
    /// at once and the events after `committed` arrive again.
    pub fn reset_to(&mut self, committed: Option<Position>) {
        self.conn = None;
        self.wait = None;
        self.recent.clear();
        self.rewind(committed);
    }

    fn rewind(&mut self, committed: Option<Position>) {
        self.received = None;
        self.start_time = None;
        match committed {
            Some(p) => self.received = Some(p),
            None => match &self.initial {
                StartPoint::Position(p) => self.received = Some(p.clone()),
                StartPoint::StartTime(t) => self.start_time = Some(*t),
                StartPoint::Beginning => {}
            },
        }
    }

    /// The next batch, in stream order. Reconnects (with backoff) as often as needed;
    /// returns `None` only once `cancel` fires. A batch may hold no events (all were
    /// duplicates, or the array was empty): its position still advances and should be
    /// committed like any other.
    pub async fn next(&mut self) -> Option<Batch> {
        let cancel = self.cancel.clone();
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            if self.conn.is_none() {
                if let Some(wait) = self.wait.take() {
                    tokio::select! {
                        _ = cancel.cancelled() => return None,
                        _ = self.wait_or_new_key(wait) => {}
                    }
                }
                let attempt = tokio::select! {
                    _ = cancel.cancelled() => return None,
                    r = self.connect() => r,
                };
                match attempt {
                    Ok(conn) => self.conn = Some(conn),
                    Err(failure) => {
                        self.fail(failure);
                        continue;
                    }
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let read = tokio::select! {
                _ = cancel.cancelled() => return None,
                r = conn.next_item() => r,
            };
            if let Some(ms) = conn.take_retry() {
                self.backoff.set_retry(ms);
            }
            let stable = conn.opened().elapsed() >= self.backoff.policy().stable_after;
            match read {
                Ok(Some(StreamItem::Batch(batch))) => return Some(self.accept(batch)),
                Ok(Some(StreamItem::Heartbeat)) => {
                    tracing::debug!(tenant = %self.tenant, "heartbeat");
                    self.status.alive();
                }
                Ok(Some(StreamItem::PlannedClose { end, retry })) => {
                    self.conn = None;
                    let reason = if end { "end" } else { "reconnect" };
                    if stable {
                        self.backoff.reset();
                    }
                    let wait = self.backoff.planned_delay(&mut self.rng);
                    tracing::warn!(
                        tenant = %self.tenant,
                        reason,
                        retry = ?retry,
                        delay = ?wait,
                        "stream closed by the server (reconnect/end); reconnecting"
                    );
                    self.status.reconnect(reason, None, false);
                    self.wait = Some(wait);
                }
                Ok(Some(StreamItem::Unknown { event })) => {
                    if self.unknown_seen.first_time(&event) {
                        tracing::debug!(tenant = %self.tenant, event = %Untrusted(&event), "ignoring unknown stream message");
                    }
                }
                Ok(None) => {
                    self.conn = None;
                    self.fail(Failure::Eof { stable });
                }
                Err(error) => {
                    self.conn = None;
                    self.fail(Failure::Read { error, stable });
                }
            }
        }
    }

    /// Sleeps `wait`; but while the token endpoint refuses the key and the key is in a
    /// file, looks at the file every [`KEY_POLL`] and ends the wait as soon as it
    /// holds a new key, so that a rotated key is used within a second rather than
    /// after the long backoff.
    async fn wait_or_new_key(&mut self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        while self.tokens.awaits_new_key() {
            let now = tokio::time::Instant::now();
            if now >= until {
                return;
            }
            tokio::time::sleep_until(until.min(now + KEY_POLL)).await;
            if self.tokens.poll_key() == oauth::Reread::Changed {
                return;
            }
        }
        tokio::time::sleep_until(until).await;
    }

    /// Takes a received batch: advances the position, drops repeats, counts.
    fn accept(&mut self, mut batch: Batch) -> Batch {
        self.backoff.reset();
        self.status.alive();
        if let Some(p) = &batch.position {
            self.received = Some(p.clone());
            self.start_time = None;
        }
        let before = batch.events.len();
        let resume = self.conn_resume.as_ref();
        let recent = &mut self.recent;
        batch.events.retain(|event| match event.id() {
            None => true,
            Some(id) => resume.is_none_or(|r| r.as_str() != id) && recent.insert(id),
        });
        let dropped = (before - batch.events.len()) as u64;
        if dropped > 0 {
            tracing::debug!(tenant = %self.tenant, dropped, "dropped duplicate events");
            self.status
                .duplicates_dropped
                .fetch_add(dropped, Ordering::Relaxed);
        }
        self.status
            .received_events
            .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
        if !batch.dead_letters.is_empty() {
            self.status
                .dead_letters
                .fetch_add(batch.dead_letters.len() as u64, Ordering::Relaxed);
        }
        tracing::debug!(
            tenant = %self.tenant,
            events = batch.events.len(),
            position = ?batch.position.as_ref().map(Position::as_str),
            "batch received"
        );
        batch
    }

    /// Where the next connection starts: after the last position received, else from
    /// `start_time` (until the first `events` message), else from the beginning.
    fn start_point(&self) -> StartPoint {
        match (&self.received, self.start_time) {
            (Some(p), _) => StartPoint::Position(p.clone()),
            (None, Some(t)) => StartPoint::StartTime(t),
            (None, None) => StartPoint::Beginning,
        }
    }

    /// One connection attempt: a token (cached or new), then the stream request. A 401
    /// is answered once with a new token at once.
    async fn connect(&mut self) -> Result<Connection, Failure> {
        loop {
            let token = self.tokens.token().await;
            self.status
                .token_fetches
                .store(self.tokens.fetches(), Ordering::Relaxed);
            let token = token.map_err(Failure::Token)?;
            let start = self.start_point();
            let url = stream_url(&self.api_domain, &self.types, &start);
            let last_event_id = match start {
                StartPoint::Position(p) => Some(p),
                _ => None,
            };
            let params = OpenParams {
                header_timeout: self.header_timeout,
                sse_timeout: self.sse_timeout,
                max_event_size: self.max_event_size,
                tenant: &self.tenant,
            };
            let opened = stream::open(
                &self.clients.stream,
                url,
                &token,
                last_event_id.as_ref(),
                params,
            )
            .await;
            match opened {
                Ok(conn) => {
                    self.retried_401 = false;
                    self.conn_resume = last_event_id;
                    self.status.lock().last_activity = Some(Instant::now());
                    tracing::debug!(tenant = %self.tenant, "stream open");
                    return Ok(conn);
                }
                Err(e) if e.status() == Some(401) => {
                    // Never reuse a token the stream refused.
                    self.tokens.invalidate();
                    if self.retried_401 {
                        return Err(Failure::Open(e));
                    }
                    self.retried_401 = true;
                    tracing::warn!(
                        tenant = %self.tenant,
                        reason = "status_401",
                        error = %e,
                        delay = ?Duration::ZERO,
                        "stream refused the access token; fetching a new one and retrying once"
                    );
                    self.status
                        .reconnect("status_401", Some(e.to_string()), false);
                }
                Err(e) => return Err(Failure::Open(e)),
            }
        }
    }

    /// Schedules the next attempt after a failure, logs it once and counts it.
    fn fail(&mut self, failure: Failure) {
        let policy = *self.backoff.policy();
        let (delay, unhealthy, reason, message) = match &failure {
            Failure::Token(e) => (
                e.delay(&policy),
                e.makes_unhealthy(),
                Cow::Borrowed(token_reason(e)),
                e.to_string(),
            ),
            Failure::Open(e) => {
                let (delay, unhealthy) = classify_open(&policy, e);
                let message = match e.status() {
                    Some(407) => format!(
                        "the proxy refused the credentials (HTTP 407 Proxy Authentication \
                         Required); check [proxy] username and password: {e}"
                    ),
                    Some(403) => format!(
                        "application key lacks permission for {}: {e}",
                        self.types
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                    _ => e.to_string(),
                };
                (delay, unhealthy, open_reason(e), message)
            }
            Failure::Read { error, stable } => {
                if *stable {
                    self.backoff.reset();
                }
                let (reason, unhealthy) = match error {
                    ReadError::Idle(_) => ("stall", false),
                    ReadError::Transport(_) => ("read_error", false),
                    ReadError::TooLarge { .. } => ("too_large", true),
                };
                let reason = Cow::Borrowed(reason);
                (
                    Delay::Normal { retry_after: None },
                    unhealthy,
                    reason,
                    error.to_string(),
                )
            }
            Failure::Eof { stable } => {
                if *stable {
                    self.backoff.reset();
                }
                (
                    Delay::Normal { retry_after: None },
                    false,
                    Cow::Borrowed("eof"),
                    "stream ended without reconnect or end".to_string(),
                )
            }
        };
        let reason: &str = &reason;
        let wait = self.backoff.next_delay(delay, &mut self.rng);
        let failures = self.backoff.failures();
        if matches!(
            &failure,
            Failure::Read {
                error: ReadError::TooLarge { .. },
                ..
            }
        ) {
            tracing::error!(tenant = %self.tenant, reason, error = %message, delay = ?wait, failures, "stream reconnect");
        } else {
            tracing::warn!(tenant = %self.tenant, reason, error = %message, delay = ?wait, failures, "stream reconnect");
        }
        self.status.reconnect(reason, Some(message), unhealthy);
        self.wait = Some(wait);
    }
}

fn token_reason(e: &TokenError) -> &'static str {
    match e {
        TokenError::KeyRejected { .. } => "key_rejected",
        TokenError::Refused { .. } => "token_refused",
        TokenError::Unavailable { .. } => "token_unavailable",
        TokenError::Transport {
            proxy_auth: true, ..
        } => "proxy_auth",
        TokenError::Transport { .. } => "token_transport",
        TokenError::BadBody { .. } => "token_bad_body",
    }
}

fn open_reason(e: &OpenError) -> Cow<'static, str> {
    match e {
        OpenError::Transport {
            proxy_auth: true, ..
        } => "proxy_auth".into(),
        OpenError::Transport { .. } => "transport".into(),
        OpenError::HeaderTimeout(_) => "header_timeout".into(),
        OpenError::NotEventStream { .. } => "not_event_stream".into(),
        OpenError::Status { status: 407, .. } => "proxy_auth".into(),
        OpenError::Status { status, .. } => format!("status_{status}").into(),
    }
}

/// One step of `check-config --probe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeStep {
    /// `http client`, `token` or `stream`.
    pub step: &'static str,
    /// What was found, or the error.
    pub outcome: Result<String, String>,
}

/// `check-config --probe` for one tenant: build the client, fetch a token, open the
/// stream once (expecting 200 and `text/event-stream`). Stops at the first failing
/// step. Nothing is retried and no position is used beyond the configured start.
pub async fn probe(tenant: &TenantConfig, proxy: &ProxyConfig) -> Vec<ProbeStep> {
    let mut steps = Vec::new();
    let clients = match ApiClients::new(tenant, proxy) {
        Ok(c) => {
            steps.push(ProbeStep {
                step: "http client",
                outcome: Ok(match proxy {
                    ProxyConfig::Explicit(p) => format!("via proxy {}", p.address),
                    ProxyConfig::FromEnvironment => "direct or environment proxy".into(),
                }),
            });
            c
        }
        Err(e) => {
            steps.push(ProbeStep {
                step: "http client",
                outcome: Err(e.to_string()),
            });
            return steps;
        }
    };
    let mut tokens = TokenSource::new(
        clients.token.clone(),
        &tenant.api_domain,
        tenant.api_key.clone(),
        &tenant.entity_name,
    );
    let token = match tokens.token().await {
        Ok(t) => {
            steps.push(ProbeStep {
                step: "token",
                outcome: Ok(format!("access token received from {}", tenant.api_domain)),
            });
            t
        }
        Err(e) => {
            steps.push(ProbeStep {
                step: "token",
                outcome: Err(e.to_string()),
            });
            return steps;
        }
    };
    let start = StartPoint::resolve(None, tenant);
    let last_event_id = match &start {
        StartPoint::Position(p) => Some(p.clone()),
        _ => None,
    };
    let url = stream_url(&tenant.api_domain, &tenant.types, &start);
    let params = OpenParams {
        header_timeout: HEADER_TIMEOUT,
        sse_timeout: tenant.sse_timeout,
        max_event_size: tenant.max_event_size,
        tenant: &tenant.entity_name,
    };
    let outcome =
        match stream::open(&clients.stream, url, &token, last_event_id.as_ref(), params).await {
            Ok(_) => Ok("200 text/event-stream".to_string()),
            Err(e) => Err(e.to_string()),
        };
    steps.push(ProbeStep {
        step: "stream",
        outcome,
    });
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_equal_only_when_their_text_is() {
        let mut ids = RecentIds::default();
        assert!(ids.insert("01a1aac4-759e-7c9d-bf7a-861b26a9b1a3"));
        assert!(!ids.insert("01a1aac4-759e-7c9d-bf7a-861b26a9b1a3"));
        // The same UUID in upper case, or without hyphens, is a different id.
        assert!(ids.insert("01A1AAC4-759E-7C9D-BF7A-861B26A9B1A3"));
        assert!(ids.insert("01a1aac4759e7c9dbf7a861b26a9b1a3"));
        assert!(ids.insert("not-a-uuid"));
        assert!(!ids.insert("not-a-uuid"));
        // The UUID whose bits mark a text id in the ring is still a UUID of its own.
        assert!(ids.insert("ffffffff-ffff-ffff-ffff-ffffffffffff"));
        assert!(!ids.insert("ffffffff-ffff-ffff-ffff-ffffffffffff"));
        assert!(ids.insert("another-text-id"));
        assert!(!ids.insert("another-text-id"));
        assert!(!ids.insert("not-a-uuid"));
        assert_eq!(
            IdKey::new("01a1aac4-759e-7c9d-bf7a-861b26a9b1a3"),
            IdKey::Uuid([0x01a1_aac4_759e_7c9d, 0xbf7a_861b_26a9_b1a3])
        );
    }

    #[test]
    fn the_dedup_window_answers_like_a_queue_and_a_set() {
        // The model: the last DEDUP_WINDOW accepted ids, oldest first.
        let mut model_order = std::collections::VecDeque::new();
        let mut model_set = HashSet::new();
        let mut window = RecentIds::default();
        let mut rng = StdRng::seed_from_u64(7);
        // Ids drawn from a range a little wider than the window, so that repeats fall
        // both inside it (dropped) and just outside it (accepted again); every fourth
        // is not a UUID.
        for round in 0..4 * DEDUP_WINDOW {
            let n: u64 = rand::Rng::random_range(&mut rng, 0..(DEDUP_WINDOW as u64 * 5 / 4));
            let id = if n.is_multiple_of(4) {
                format!("id-{n}")
            } else if n == 7 {
                // Its bits are the ring entry of text ids.
                "ffffffff-ffff-ffff-ffff-ffffffffffff".to_string()
            } else {
                format!("01a1aac4-759e-7c9d-bf7a-{n:012x}")
            };
            let expected = !model_set.contains(&id);
            if expected {
                if model_order.len() == DEDUP_WINDOW
                    && let Some(old) = model_order.pop_front()
                {
                    model_set.remove(&old);
                }
                model_order.push_back(id.clone());
                model_set.insert(id.clone());
            }
            assert_eq!(window.insert(&id), expected, "round {round}, id {id}");
        }
        assert_eq!(window.slots.len(), DEDUP_WINDOW);
        window.clear();
        assert!(window.insert(model_order.back().expect("ids were accepted")));
    }

    #[test]
    fn the_dedup_window_does_not_keep_ids_longer_than_a_position() {
        // 10,000 ids of 200 KB each once held 431 MB per tenant.
        let mut r = RecentIds::default();
        for i in 0..50 {
            let id = format!("{i}{}", "x".repeat(200_000));
            assert!(r.insert(&id));
            assert!(
                r.insert(&id),
                "not remembered, so never dropped as a repeat"
            );
        }
        let longest = "a".repeat(crate::event::MAX_POSITION_LEN);
        assert!(r.insert(&longest));
        assert!(!r.insert(&longest));
        let kept: usize = r.others.values().map(|id| id.len()).sum();
        assert_eq!(kept, crate::event::MAX_POSITION_LEN);
    }

    #[test]
    fn unknown_names_are_remembered_within_bounds() {
        let mut seen = SeenNames::default();
        assert!(seen.first_time("news"));
        assert!(!seen.first_time("news"), "logged once");
        for i in 0..400 {
            let name = format!("{i}{}", "n".repeat(1 << 20));
            assert!(seen.first_time(&name));
        }
        for i in 0..100 {
            seen.first_time(&format!("short-{i}"));
        }
        assert!(seen.0.len() <= SeenNames::MOST);
        assert!(seen.kept_bytes() <= SeenNames::MOST * SeenNames::LONGEST);
        assert!(
            !seen.first_time("short-1"),
            "the first names stay remembered"
        );
    }

    #[test]
    fn the_dedup_window_forgets_the_oldest_id() {
        let mut r = RecentIds::default();
        assert!(r.insert("a"));
        assert!(!r.insert("a"));
        for i in 0..DEDUP_WINDOW {
            assert!(r.insert(&i.to_string()));
        }
        assert_eq!(r.ring.len(), DEDUP_WINDOW);
        assert_eq!(
            r.ring.capacity(),
            DEDUP_WINDOW,
            "the ring never over-allocates"
        );
        // "a" was pushed out by the 10,000 newer ids.
        assert!(r.insert("a"));
        assert!(!r.insert(&(DEDUP_WINDOW - 1).to_string()));
    }
}
