//! What an operator can see from outside: Prometheus metrics on `/metrics` and tenant
//! health on `/health`, served on `[connector] metrics_listen`.
//!
//! Each (tenant, destination) pair gets a [`PairObserver`]: a cheap handle that counts
//! what happens to it and records when it last showed life; every series carries the
//! labels `tenant` and `destination`. The observer never decides anything; the pair
//! reports, and `/health` judges each pair by the contract's rule: healthy when it
//! delivered a batch or received a heartbeat within `3 × sse_timeout` and is not
//! flagged unhealthy (a rejected key, a 403, an oversized message, a destination that
//! refuses its configuration).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Every series is per (tenant, destination) pair: each pair reads its own stream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PairLabel {
    tenant: String,
    destination: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    tenant: String,
    destination: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabel {
    tenant: String,
    destination: String,
    status: String,
    code: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

/// Every metric family of the process.
#[derive(Default)]
struct Metrics {
    events_received: Family<PairLabel, Counter>,
    events_delivered: Family<PairLabel, Counter>,
    events_dead_lettered: Family<PairLabel, Counter>,
    duplicates_dropped: Family<PairLabel, Counter>,
    records_truncated: Family<PairLabel, Counter>,
    bytes_sent: Family<PairLabel, Counter>,
    stream_reconnects: Family<ReasonLabel, Counter>,
    token_fetches: Family<PairLabel, Counter>,
    sink_reconnects: Family<PairLabel, Counter>,
    lag_seconds: Family<PairLabel, FloatGauge>,
    seconds_since_commit: Family<PairLabel, FloatGauge>,
    healthy: Family<PairLabel, Gauge>,
    tenant_restarts: Family<PairLabel, Counter>,
    log_lines_dropped: Counter,
    hec_requests: Family<PairLabel, Counter>,
    hec_responses: Family<ResponseLabel, Counter>,
    hec_resent: Family<PairLabel, Counter>,
    hec_acks: Family<PairLabel, Counter>,
    hec_ack_latency: Family<PairLabel, FloatCounter>,
    hec_ack_timeouts: Family<PairLabel, Counter>,
    config_reload_failures: Counter,
    rate_limit_wait: Family<PairLabel, FloatCounter>,
}

impl Metrics {
    /// The counters every pair has from its start, at 0 ([`Observer::pair`]).
    fn pair_counters(&self) -> [&Family<PairLabel, Counter>; 9] {
        [
            &self.events_received,
            &self.events_delivered,
            &self.events_dead_lettered,
            &self.duplicates_dropped,
            &self.records_truncated,
            &self.bytes_sent,
            &self.token_fetches,
            &self.sink_reconnects,
            &self.tenant_restarts,
        ]
    }

    /// The counters of a HEC destination, there from its first report.
    fn hec_counters(&self) -> [&Family<PairLabel, Counter>; 4] {
        [
            &self.hec_requests,
            &self.hec_resent,
            &self.hec_acks,
            &self.hec_ack_timeouts,
        ]
    }
}

/// The process-wide registry and the tenants it watches.
pub struct Observer {
    registry: Registry,
    metrics: Arc<Metrics>,
    tenants: Mutex<Vec<Arc<TenantHealth>>>,
}

/// What `/health` knows of one (tenant, destination) pair.
#[derive(Debug)]
struct TenantHealth {
    name: String,
    destination: String,
    window: Duration,
    state: Mutex<HealthState>,
    delivered: AtomicU64,
    /// The `reason` and (`status`, `code`) label values this pair's series were
    /// created with, so that [`Observer::forget`] can remove those series too.
    reasons: Mutex<BTreeSet<String>>,
    responses: Mutex<BTreeSet<(String, String)>>,
}

#[derive(Debug)]
struct HealthState {
    last_activity: Instant,
    last_commit: Option<Instant>,
    flagged: Option<String>,
    /// The reason [`PairObserver::flag`] was last given, before cleaning: the same
    /// reason again (the tenant reports every second) is not cleaned again.
    flagged_as: Option<String>,
    last_error: Option<String>,
    position: Option<String>,
}

/// One (tenant, destination) pair's reporting handle. Cloning is cheap.
#[derive(Clone)]
pub struct PairObserver {
    label: PairLabel,
    metrics: Arc<Metrics>,
    health: Arc<TenantHealth>,
}

/// What a Splunk HEC destination did since its last report ([`PairObserver::hec`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HecReport {
    /// Event requests sent (answered or not).
    pub requests: u64,
    /// Answers: (HTTP status, HEC code or -1, how many).
    pub responses: Vec<(u16, i64, u64)>,
    /// Events sent again within the sink.
    pub resent: u64,
    /// Acknowledgement ids reported true, and the sum of their latencies.
    pub acked: u64,
    pub ack_latency: Duration,
    /// Requests whose acknowledgement did not come within `ack_timeout`.
    pub ack_timeouts: u64,
}

/// `/health`'s JSON body.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct HealthReport {
    /// `ok` or `unhealthy`.
    pub status: String,
    /// One entry per tenant, in start order.
    pub tenants: Vec<TenantReport>,
}

/// One tenant in [`HealthReport`].
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct TenantReport {
    pub tenant: String,
    /// The destination this entry delivers to (`syslog` for `[syslog]`).
    pub destination: String,
    pub healthy: bool,
    /// Seconds since the last delivered batch or heartbeat (or since start).
    pub seconds_since_activity: f64,
    pub delivered: u64,
    pub position: Option<String>,
    /// Why the tenant is unhealthy, or its last error while it recovers.
    pub last_error: Option<String>,
}

impl Default for Observer {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer {
    /// A registry with every metric family registered.
    pub fn new() -> Self {
        let metrics = Arc::new(Metrics::default());
        let mut registry = Registry::with_prefix("mrav2");
        let m = &metrics;
        registry.register(
            "events_received",
            "Events received from the stream",
            m.events_received.clone(),
        );
        registry.register(
            "events_delivered",
            "Events whose records the syslog destination accepted",
            m.events_delivered.clone(),
        );
        registry.register(
            "events_dead_lettered",
            "Events or batches written to the dead-letter file",
            m.events_dead_lettered.clone(),
        );
        registry.register(
            "duplicates_dropped",
            "Events dropped because their id was already delivered",
            m.duplicates_dropped.clone(),
        );
        registry.register(
            "records_truncated",
            "Records cut to max_message_size",
            m.records_truncated.clone(),
        );
        registry.register(
            "bytes_sent",
            "Bytes written to the syslog destination",
            m.bytes_sent.clone(),
        );
        registry.register(
            "stream_reconnects",
            "Stream reconnects, by reason",
            m.stream_reconnects.clone(),
        );
        registry.register(
            "token_fetches",
            "Access tokens fetched",
            m.token_fetches.clone(),
        );
        registry.register(
            "sink_reconnects",
            "Failed deliveries to the syslog destination; each is followed by a reconnect",
            m.sink_reconnects.clone(),
        );
        registry.register(
            "last_delivered_lag_seconds",
            "Now minus created_time of the last delivered event, at delivery",
            m.lag_seconds.clone(),
        );
        registry.register(
            "seconds_since_last_commit",
            "Seconds since the position was last written to disk",
            m.seconds_since_commit.clone(),
        );
        registry.register(
            "tenant_restarts",
            "Times a tenant's pipeline failed or panicked and was restarted",
            m.tenant_restarts.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Lines of the connector's own log dropped because its output did not keep up",
            m.log_lines_dropped.clone(),
        );
        registry.register(
            "tenant_healthy",
            "1 when the tenant passes the /health rule",
            m.healthy.clone(),
        );
        registry.register(
            "hec_requests",
            "Event requests sent to a Splunk HEC destination",
            m.hec_requests.clone(),
        );
        registry.register(
            "hec_responses",
            "Splunk HEC answers to event requests, by HTTP status and HEC code (-1: none)",
            m.hec_responses.clone(),
        );
        registry.register(
            "hec_resent_events",
            "Events sent to a HEC destination again (413 halves, the rest after a refused event, requests whose acknowledgement timed out)",
            m.hec_resent.clone(),
        );
        registry.register(
            "hec_acks",
            "HEC acknowledgement ids reported true",
            m.hec_acks.clone(),
        );
        registry.register(
            "hec_ack_latency_seconds",
            "Sum of the times from a HEC request's answer to its acknowledgement (divide by mrav2_hec_acks_total for the mean)",
            m.hec_ack_latency.clone(),
        );
        registry.register(
            "hec_ack_timeouts",
            "HEC requests whose acknowledgement did not come within ack_timeout",
            m.hec_ack_timeouts.clone(),
        );
        registry.register(
            "config_reload_failures",
            "Reloads (SIGHUP) refused because the configuration file had problems; nothing was changed",
            m.config_reload_failures.clone(),
        );
        registry.register(
            "rate_limit_wait_seconds",
            "Seconds the writer waited before sending because of the destination's max_events_per_second",
            m.rate_limit_wait.clone(),
        );
        Self {
            registry,
            metrics,
            tenants: Mutex::new(Vec::new()),
        }
    }

    /// Registers a (tenant, destination) pair; `sse_timeout` sets its health window
    /// (three times it).
    pub fn pair(&self, name: &str, destination: &str, sse_timeout: Duration) -> PairObserver {
        let health = Arc::new(TenantHealth {
            name: name.to_string(),
            destination: destination.to_string(),
            window: sse_timeout.saturating_mul(3),
            state: Mutex::new(HealthState {
                last_activity: Instant::now(),
                last_commit: None,
                flagged: None,
                flagged_as: None,
                last_error: None,
                position: None,
            }),
            delivered: AtomicU64::new(0),
            reasons: Mutex::new(BTreeSet::new()),
            responses: Mutex::new(BTreeSet::new()),
        });
        lock(&self.tenants).push(health.clone());
        let label = PairLabel {
            tenant: name.to_string(),
            destination: destination.to_string(),
        };
        // Every counter of the pair exists from its start, at 0: a scraper then sees
        // the first dead letter or restart as an increase (`increase()` over a series
        // that appears at 1 gives 0, so an alert on it would miss the first one), and
        // a dashboard shows 0 rather than "no data".
        let m = &self.metrics;
        for family in m.pair_counters() {
            drop(family.get_or_create(&label));
        }
        drop(m.rate_limit_wait.get_or_create(&label));
        PairObserver {
            label,
            metrics: self.metrics.clone(),
            health,
        }
    }

    /// Forgets a pair that a reload stopped or is about to start again: its `/health`
    /// entry and every series with its labels go. A handle still held keeps counting
    /// into series that are no longer exported, so call this once the pair has ended.
    pub fn forget(&self, tenant: &str, destination: &str) {
        let mut tenants = lock(&self.tenants);
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut *tenants)
            .into_iter()
            .partition(|t| t.name == tenant && t.destination == destination);
        *tenants = kept;
        drop(tenants);
        let label = PairLabel {
            tenant: tenant.to_owned(),
            destination: destination.to_owned(),
        };
        let m = &self.metrics;
        // Every family labelled by pair: a family added to `Metrics` belongs here too
        // (the test `forget_removes_every_series_of_the_pair` checks the exposition).
        for family in m.pair_counters().into_iter().chain(m.hec_counters()) {
            family.remove(&label);
        }
        for family in [&m.lag_seconds, &m.seconds_since_commit] {
            family.remove(&label);
        }
        m.healthy.remove(&label);
        m.hec_ack_latency.remove(&label);
        m.rate_limit_wait.remove(&label);
        for health in gone {
            for reason in std::mem::take(&mut *lock(&health.reasons)) {
                m.stream_reconnects.remove(&ReasonLabel {
                    tenant: tenant.to_owned(),
                    destination: destination.to_owned(),
                    reason,
                });
            }
            for (status, code) in std::mem::take(&mut *lock(&health.responses)) {
                m.hec_responses.remove(&ResponseLabel {
                    tenant: tenant.to_owned(),
                    destination: destination.to_owned(),
                    status,
                    code,
                });
            }
        }
    }

    /// A reload found problems in the configuration file and changed nothing.
    pub fn reload_failed(&self) {
        self.metrics.config_reload_failures.inc();
    }

    /// The health of every tenant now.
    pub fn health(&self) -> HealthReport {
        let now = Instant::now();
        let tenants: Vec<TenantReport> =
            lock(&self.tenants).iter().map(|t| t.report(now)).collect();
        let all_ok = tenants.iter().all(|t| t.healthy);
        HealthReport {
            status: if all_ok { "ok" } else { "unhealthy" }.into(),
            tenants,
        }
    }

    /// The Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let now = Instant::now();
        for t in lock(&self.tenants).iter() {
            let label = PairLabel {
                tenant: t.name.clone(),
                destination: t.destination.clone(),
            };
            let state = lock(&t.state);
            if let Some(at) = state.last_commit {
                self.metrics
                    .seconds_since_commit
                    .get_or_create(&label)
                    .set(now.saturating_duration_since(at).as_secs_f64());
            }
            drop(state);
            let healthy = t.report(now).healthy;
            self.metrics
                .healthy
                .get_or_create(&label)
                .set(i64::from(healthy));
        }
        let dropped = crate::logging::dropped_lines();
        let counted = self.metrics.log_lines_dropped.get();
        self.metrics
            .log_lines_dropped
            .inc_by(dropped.saturating_sub(counted));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

impl TenantHealth {
    fn report(&self, now: Instant) -> TenantReport {
        let state = lock(&self.state);
        let idle = now.saturating_duration_since(state.last_activity);
        let healthy = state.flagged.is_none() && idle <= self.window;
        let last_error = state.flagged.clone().or_else(|| state.last_error.clone());
        TenantReport {
            tenant: self.name.clone(),
            destination: self.destination.clone(),
            healthy,
            seconds_since_activity: idle.as_secs_f64(),
            delivered: self.delivered.load(Ordering::Relaxed),
            position: state.position.clone(),
            last_error,
        }
    }
}

impl PairObserver {
    /// The tenant's name.
    pub fn tenant(&self) -> &str {
        &self.label.tenant
    }

    /// The destination's name.
    pub fn destination(&self) -> &str {
        &self.label.destination
    }

    /// Events received from the stream (before de-duplication).
    pub fn received(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.metrics
            .events_received
            .get_or_create(&self.label)
            .inc_by(n);
    }

    /// A batch was delivered: `events` events, the last created `lag` ago.
    pub fn delivered(&self, events: u64, lag: Option<Duration>) {
        self.metrics
            .events_delivered
            .get_or_create(&self.label)
            .inc_by(events);
        self.health.delivered.fetch_add(events, Ordering::Relaxed);
        if let Some(lag) = lag {
            self.metrics
                .lag_seconds
                .get_or_create(&self.label)
                .set(lag.as_secs_f64());
        }
        self.alive();
    }

    /// A heartbeat or batch arrived: the stream is alive. Clears a transient error.
    pub fn alive(&self) {
        let mut state = lock(&self.health.state);
        state.last_activity = Instant::now();
        state.last_error = None;
    }

    /// Items moved to the dead-letter file.
    pub fn dead_lettered(&self, n: u64) {
        self.metrics
            .events_dead_lettered
            .get_or_create(&self.label)
            .inc_by(n);
    }

    /// Duplicates dropped by id.
    pub fn duplicates(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.metrics
            .duplicates_dropped
            .get_or_create(&self.label)
            .inc_by(n);
    }

    /// Records truncated and bytes written for one delivered batch.
    pub fn sent(&self, bytes: u64, truncated: u64) {
        self.metrics
            .bytes_sent
            .get_or_create(&self.label)
            .inc_by(bytes);
        self.metrics
            .records_truncated
            .get_or_create(&self.label)
            .inc_by(truncated);
    }

    /// `n` stream reconnects with a short reason (`status_503`, `stall`, `end`, …).
    pub fn stream_reconnects(&self, reason: &str, n: u64) {
        if n == 0 {
            return;
        }
        lock(&self.health.reasons).insert(reason.to_string());
        self.metrics
            .stream_reconnects
            .get_or_create(&ReasonLabel {
                tenant: self.label.tenant.clone(),
                destination: self.label.destination.clone(),
                reason: reason.to_string(),
            })
            .inc_by(n);
    }

    /// Access tokens fetched.
    pub fn token_fetches(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.metrics
            .token_fetches
            .get_or_create(&self.label)
            .inc_by(n);
    }

    /// What a Splunk HEC destination did since the last report: requests sent,
    /// answers by (HTTP status, HEC code), events sent again, acknowledgements with
    /// their summed latency, acknowledgement timeouts.
    pub fn hec(&self, report: &HecReport) {
        let label = &self.label;
        let m = &self.metrics;
        // Every counter of the destination exists from its first report, at 0 (see
        // [`Observer::pair`]); only the answers, labelled by status, appear as they come.
        m.hec_requests.get_or_create(label).inc_by(report.requests);
        for &(status, code, n) in &report.responses {
            lock(&self.health.responses).insert((status.to_string(), code.to_string()));
            m.hec_responses
                .get_or_create(&ResponseLabel {
                    tenant: label.tenant.clone(),
                    destination: label.destination.clone(),
                    status: status.to_string(),
                    code: code.to_string(),
                })
                .inc_by(n);
        }
        m.hec_resent.get_or_create(label).inc_by(report.resent);
        m.hec_acks.get_or_create(label).inc_by(report.acked);
        m.hec_ack_latency
            .get_or_create(label)
            .inc_by(report.ack_latency.as_secs_f64());
        m.hec_ack_timeouts
            .get_or_create(label)
            .inc_by(report.ack_timeouts);
    }

    /// The writer waited `wait` for the destination's `max_events_per_second`.
    pub fn rate_limited(&self, wait: Duration) {
        self.metrics
            .rate_limit_wait
            .get_or_create(&self.label)
            .inc_by(wait.as_secs_f64());
    }

    /// The sink opened a new connection after a failure.
    pub fn sink_reconnect(&self) {
        self.metrics
            .sink_reconnects
            .get_or_create(&self.label)
            .inc();
    }

    /// The tenant's pipeline failed or panicked and is being restarted.
    pub fn restarted(&self) {
        self.metrics
            .tenant_restarts
            .get_or_create(&self.label)
            .inc();
    }

    /// The position was written to disk.
    pub fn committed(&self, position: &str) {
        // An id the server chose: shown cleaned, like an error.
        let position = shown(position);
        let mut state = lock(&self.health.state);
        state.last_commit = Some(Instant::now());
        state.position = Some(position);
    }

    /// A transient error: shown in `/health` until the tenant shows life again. It
    /// may quote a server, so it is cleaned ([`crate::untrusted`]) first.
    pub fn error(&self, message: impl Into<String>) {
        let message = shown(&message.into());
        lock(&self.health.state).last_error = Some(message);
    }

    /// Marks the tenant unhealthy regardless of activity (rejected key, 403, …), or
    /// clears that mark with `None`. The reason is cleaned like [`Self::error`]'s.
    pub fn flag(&self, reason: Option<String>) {
        if lock(&self.health.state).flagged_as == reason {
            return;
        }
        let shown_reason = reason.as_deref().map(shown);
        let mut state = lock(&self.health.state);
        state.flagged = shown_reason;
        state.flagged_as = reason;
    }
}

/// The longest error text `/health` shows per tenant.
pub const HEALTH_TEXT_LIMIT: usize = 1024;

/// Text for `/health`: secrets redacted, control characters escaped, bounded.
fn shown(text: &str) -> String {
    crate::untrusted::clean(text.as_bytes(), HEALTH_TEXT_LIMIT)
}

/// A poisoned lock only means another thread panicked while holding it; the data (a
/// few counters and strings) is still usable, and health reporting must keep working.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds the router serving `/metrics` and `/health`.
pub fn router(observer: Arc<Observer>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/health", get(health_handler))
        .with_state(observer)
}

/// Most connections served at once; further ones are closed as soon as they are
/// accepted, so that the endpoint can never take the descriptors the tenants need.
pub const MAX_CONNECTIONS: usize = 32;

/// A request head must arrive within this after the connection opened (or after the
/// previous response); a silent or half-sent connection is closed then.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection is closed after this, whatever it is doing: a scraper reconnects, a
/// client that stopped reading its response does not keep a descriptor.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(15);

/// Serves `/metrics` and `/health` on `listener` until `cancel` fires, within the
/// bounds above.
pub async fn serve(
    listener: tokio::net::TcpListener,
    observer: Arc<Observer>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let app = router(observer);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let connections = tokio_util::task::TaskTracker::new();
    let mut refused = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (or another transient failure): wait instead of
                // spinning on an accept that fails at once.
                tracing::warn!(error = %e, "metrics_listen: cannot accept a connection");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
                }
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            if refused == 0 {
                tracing::warn!(
                    limit = MAX_CONNECTIONS,
                    "metrics_listen: too many connections at once; closing new ones until some end"
                );
            }
            refused += 1;
            drop(stream);
            continue;
        };
        if slots.available_permits() == MAX_CONNECTIONS - 1 {
            refused = 0;
        }
        let service = TowerToHyperService::new(app.clone());
        let cancel = cancel.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(REQUEST_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = tokio::time::sleep(CONNECTION_LIFETIME) => {}
                _ = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
                }
            }
        });
    }
    connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), connections.wait()).await;
    Ok(())
}

/// OpenMetrics for a client that asks for it in `Accept` (Prometheus does), the
/// classic Prometheus text format (0.0.4) for any other (curl, `promtool check
/// metrics`, older agents), as the reference client libraries do.
async fn metrics_handler(
    State(observer): State<Arc<Observer>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let text = observer.metrics_text();
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            classic_text(&text),
        )
    }
}

/// The classic Prometheus text format of an OpenMetrics exposition as
/// [`Observer::metrics_text`] writes it. The two differ, for what this registry holds,
/// only in three ways: a counter's `# HELP` and `# TYPE` lines name its samples
/// (`x_total`) instead of its family (`x`); there is no `# UNIT` line; and there is no
/// `# EOF`. Help texts hold no quote or backslash, so their escaping is the same.
fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                if !tail.is_empty() {
                    out.push(' ');
                    out.push_str(tail);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

async fn health_handler(State(observer): State<Arc<Observer>>) -> impl IntoResponse {
    let report = observer.health();
    let status = if report.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn health_follows_the_three_timeouts_rule() {
        let observer = Observer::new();
        let good = observer.pair("good", "syslog", Duration::from_secs(15));
        let bad = observer.pair("bad", "syslog", Duration::from_secs(15));
        assert_eq!(observer.health().status, "ok");

        tokio::time::advance(Duration::from_secs(44)).await;
        good.alive();
        tokio::time::advance(Duration::from_secs(2)).await;
        let report = observer.health();
        assert_eq!(report.status, "unhealthy");
        assert!(report.tenants[0].healthy);
        assert!(!report.tenants[1].healthy);

        bad.alive();
        assert_eq!(observer.health().status, "ok");
        bad.flag(Some("application key rejected".into()));
        let report = observer.health();
        assert_eq!(report.status, "unhealthy");
        assert_eq!(
            report.tenants[1].last_error.as_deref(),
            Some("application key rejected")
        );
        assert_eq!(report.tenants[0].last_error, None);
    }

    #[test]
    fn metrics_are_exposed_per_tenant() {
        let observer = Observer::new();
        let t = observer.pair("acme", "syslog", Duration::from_secs(15));
        t.received(5);
        t.delivered(4, Some(Duration::from_millis(1500)));
        t.stream_reconnects("status_503", 1);
        t.sent(1000, 1);
        t.committed("abc");
        t.rate_limited(Duration::from_millis(1000));
        t.rate_limited(Duration::from_millis(500));
        observer
            .pair("acme", "splunk", Duration::from_secs(15))
            .rate_limited(Duration::from_millis(250));
        let text = observer.metrics_text();
        for needle in [
            "mrav2_events_received_total{tenant=\"acme\",destination=\"syslog\"} 5",
            "mrav2_events_delivered_total{tenant=\"acme\",destination=\"syslog\"} 4",
            "mrav2_stream_reconnects_total{tenant=\"acme\",destination=\"syslog\",reason=\"status_503\"} 1",
            "mrav2_bytes_sent_total{tenant=\"acme\",destination=\"syslog\"} 1000",
            "mrav2_records_truncated_total{tenant=\"acme\",destination=\"syslog\"} 1",
            "mrav2_last_delivered_lag_seconds{tenant=\"acme\",destination=\"syslog\"} 1.5",
            "mrav2_seconds_since_last_commit{tenant=\"acme\",destination=\"syslog\"}",
            "mrav2_tenant_healthy{tenant=\"acme\",destination=\"syslog\"} 1",
            "mrav2_rate_limit_wait_seconds_total{tenant=\"acme\",destination=\"syslog\"} 1.5",
            "mrav2_rate_limit_wait_seconds_total{tenant=\"acme\",destination=\"splunk\"} 0.25",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert_eq!(observer.health().tenants[0].delivered, 4);
        assert_eq!(
            observer.health().tenants[0].position.as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn forget_removes_every_series_of_the_pair_and_its_health_entry() {
        let observer = Observer::new();
        let kept = observer.pair("acme", "syslog", Duration::from_secs(15));
        let gone = observer.pair("beta", "syslog", Duration::from_secs(15));
        for t in [&kept, &gone] {
            t.received(5);
            t.delivered(4, Some(Duration::from_millis(1500)));
            t.dead_lettered(1);
            t.duplicates(1);
            t.sent(1000, 1);
            t.stream_reconnects("status_503", 1);
            t.token_fetches(1);
            t.sink_reconnect();
            t.restarted();
            t.committed("abc");
            t.rate_limited(Duration::from_millis(1));
            t.hec(&HecReport {
                requests: 1,
                responses: vec![(200, 0, 1), (503, 9, 1)],
                resent: 1,
                acked: 1,
                ack_latency: Duration::from_millis(5),
                ack_timeouts: 1,
            });
        }
        let before = observer.metrics_text();
        assert!(before.contains("tenant=\"beta\""), "{before}");
        observer.forget("beta", "syslog");
        let after = observer.metrics_text();
        let beta: Vec<&str> = after
            .lines()
            .filter(|l| l.contains("tenant=\"beta\""))
            .collect();
        assert!(beta.is_empty(), "series of a forgotten pair: {beta:?}");
        let acme = |text: &str| {
            text.lines()
                .filter(|l| l.contains("tenant=\"acme\""))
                .count()
        };
        assert_eq!(acme(&after), acme(&before));
        let health = observer.health();
        assert_eq!(health.tenants.len(), 1);
        assert_eq!(health.tenants[0].tenant, "acme");
        // Registered again (a restart), the pair starts from nothing.
        observer.pair("beta", "syslog", Duration::from_secs(15));
        assert_eq!(observer.health().tenants[1].delivered, 0);
    }

    #[test]
    fn reload_failures_are_counted() {
        let observer = Observer::new();
        assert!(
            observer
                .metrics_text()
                .contains("mrav2_config_reload_failures_total 0")
        );
        observer.reload_failed();
        observer.reload_failed();
        assert!(
            observer
                .metrics_text()
                .contains("mrav2_config_reload_failures_total 2")
        );
    }

    #[test]
    fn every_counter_of_a_tenant_exists_from_its_start() {
        let observer = Observer::new();
        observer.pair("acme", "syslog", Duration::from_secs(15));
        let text = observer.metrics_text();
        for name in [
            "events_received",
            "events_delivered",
            "events_dead_lettered",
            "duplicates_dropped",
            "records_truncated",
            "bytes_sent",
            "token_fetches",
            "sink_reconnects",
            "tenant_restarts",
        ] {
            let needle =
                format!("mrav2_{name}_total{{tenant=\"acme\",destination=\"syslog\"}} 0\n");
            assert!(text.contains(&needle), "missing {needle:?} in\n{text}");
        }
        // A gauge has no value before its first measurement.
        assert!(
            !text.contains("mrav2_last_delivered_lag_seconds{"),
            "{text}"
        );
    }

    #[test]
    fn a_hec_destination_shows_every_counter_from_its_first_report() {
        let observer = Observer::new();
        let t = observer.pair("acme", "splunk", Duration::from_secs(15));
        t.hec(&HecReport {
            requests: 2,
            responses: vec![(200, 0, 2)],
            ..HecReport::default()
        });
        let text = observer.metrics_text();
        let label = "{tenant=\"acme\",destination=\"splunk\"}";
        for sample in [
            format!("mrav2_hec_requests_total{label} 2"),
            format!("mrav2_hec_resent_events_total{label} 0"),
            format!("mrav2_hec_acks_total{label} 0"),
            format!("mrav2_hec_ack_latency_seconds_total{label} 0"),
            format!("mrav2_hec_ack_timeouts_total{label} 0"),
            "mrav2_hec_responses_total{tenant=\"acme\",destination=\"splunk\",status=\"200\",code=\"0\"} 2".into(),
        ] {
            assert!(text.contains(&sample), "missing {sample:?} in\n{text}");
        }
    }

    #[test]
    fn the_classic_text_names_counter_samples_in_help_and_type() {
        let openmetrics = "# HELP mrav2_bytes_sent Bytes written.\n\
                           # TYPE mrav2_bytes_sent counter\n\
                           mrav2_bytes_sent_total{tenant=\"a\"} 5\n\
                           # HELP mrav2_tenant_healthy 1 when healthy.\n\
                           # TYPE mrav2_tenant_healthy gauge\n\
                           # UNIT mrav2_tenant_healthy ratio\n\
                           mrav2_tenant_healthy{tenant=\"a\"} 1\n\
                           # EOF\n";
        assert_eq!(
            classic_text(openmetrics),
            "# HELP mrav2_bytes_sent_total Bytes written.\n\
             # TYPE mrav2_bytes_sent_total counter\n\
             mrav2_bytes_sent_total{tenant=\"a\"} 5\n\
             # HELP mrav2_tenant_healthy 1 when healthy.\n\
             # TYPE mrav2_tenant_healthy gauge\n\
             mrav2_tenant_healthy{tenant=\"a\"} 1\n"
        );
        assert_eq!(classic_text(""), "");
    }

    #[tokio::test]
    async fn the_endpoints_answer_over_http() {
        crate::tls::install_crypto_provider();
        let observer = Arc::new(Observer::new());
        let t = observer.pair("acme", "syslog", Duration::from_secs(15));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let server = tokio::spawn(serve(listener, observer.clone(), cancel.clone()));
        let client = reqwest::Client::new();
        let health = client
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let report: HealthReport = health.json().await.unwrap();
        assert_eq!(report.tenants[0].tenant, "acme");
        t.flag(Some("key rejected".into()));
        let health = client
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 503);
        let metrics = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("mrav2_tenant_healthy{tenant=\"acme\",destination=\"syslog\"} 0"));
        assert!(
            metrics.contains("# TYPE mrav2_bytes_sent_total counter\n")
                && !metrics.contains("# EOF"),
            "without Accept: the classic text format\n{metrics}"
        );
        let openmetrics = client
            .get(format!("http://{addr}/metrics"))
            .header(
                "accept",
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            )
            .send()
            .await
            .unwrap();
        assert!(
            openmetrics.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        let openmetrics = openmetrics.text().await.unwrap();
        assert!(
            openmetrics.contains("# TYPE mrav2_bytes_sent counter\n")
                && openmetrics.ends_with("# EOF\n"),
            "{openmetrics}"
        );
        cancel.cancel();
        server.await.unwrap().unwrap();
    }
}
