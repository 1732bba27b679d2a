//! A small scripted MRA v2 server (axum) for the source and proxy tests: the token
//! endpoint, the stream endpoint with per-request faults and wire styles, and a log of
//! every request. It follows `docs/event-stream.md#the-built-in-simulator` loosely: ids are
//! served strictly after the resume id (or at it, with `inclusive`).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use mrav2_syslog_connector::backoff::BackoffPolicy;
use mrav2_syslog_connector::config::{
    Format, Framing, HeaderFormat, HeaderTime, Protocol, Secret, SyslogConfig, TenantConfig,
    TlsConfig,
};
use mrav2_syslog_connector::event::EventType;
use mrav2_syslog_connector::source::EventSource;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The Application Key the stub accepts.
pub const KEY: &str = "app-key-0123456789-secret";

/// One request as the stub saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub endpoint: &'static str,
    pub at: Instant,
    pub raw_query: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn header_count(&self, name: &str) -> usize {
        self.headers.get_all(name).iter().count()
    }
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn keys(&self) -> Vec<&str> {
        self.query.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// How the stub writes the body (the wire options of `docs/event-stream.md#scenario-file`).
#[derive(Debug, Clone)]
pub struct Wire {
    pub line_ending: &'static str,
    pub bom: bool,
    pub space_after_colon: bool,
    pub comments: bool,
    pub multiline_data: bool,
    pub chunk_bytes: usize,
}

impl Default for Wire {
    fn default() -> Self {
        Self {
            line_ending: "\n",
            bom: false,
            space_after_colon: false,
            comments: false,
            multiline_data: false,
            chunk_bytes: 0,
        }
    }
}

/// A scripted stream fault; `after` counts complete `events` messages on that
/// connection.
#[derive(Debug, Clone)]
pub enum Fault {
    Status {
        status: u16,
        body: String,
        retry_after: Option<String>,
        content_type: Option<String>,
    },
    ExpireTokens,
    /// Never send the response headers.
    Hang,
    /// Serve the batches, then heartbeats for `ms`, then end the body.
    Linger {
        ms: u64,
    },
    DropMidEvent {
        after: usize,
    },
    Drop {
        after: usize,
    },
    Stall {
        after: usize,
    },
    Planned {
        after: usize,
        name: &'static str,
        retry_ms: Option<u64>,
        with_data: bool,
    },
    InvalidJson {
        after: usize,
    },
    Huge {
        after: usize,
        bytes: usize,
    },
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Fault::Status {
            status,
            body: format!("{{\"error\":\"status {status}\"}}"),
            retry_after: None,
            content_type: Some("application/json".into()),
        }
    }
    fn after(&self) -> Option<usize> {
        match self {
            Fault::DropMidEvent { after }
            | Fault::Drop { after }
            | Fault::Stall { after }
            | Fault::Planned { after, .. }
            | Fault::InvalidJson { after }
            | Fault::Huge { after, .. } => Some(*after),
            Fault::Status { .. } | Fault::ExpireTokens | Fault::Hang | Fault::Linger { .. } => None,
        }
    }
}

/// A scripted token fault.
#[derive(Debug, Clone)]
pub enum TokenFault {
    Status { status: u16, body: String },
    Body(String),
}

/// What the stub serves.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ids: Vec<String>,
    pub batch: usize,
    pub wire: Wire,
    pub stream_faults: HashMap<usize, Fault>,
    pub token_faults: HashMap<usize, TokenFault>,
    pub expires_in: Option<u64>,
    /// `expires_at` relative to now, in ms (may be negative).
    pub expires_at_in_ms: Option<i64>,
    /// Resume *at* the id instead of after it (an inclusive server).
    pub inclusive: bool,
    pub heartbeat: Duration,
    /// The JSON of the event with this id, instead of [`event_json`].
    pub bodies: HashMap<String, String>,
}

impl Plan {
    pub fn new(events: usize, batch: usize) -> Self {
        Self {
            ids: (1..=events)
                .map(|i| format!("0190ec04-a5f0-731e-bb68-{i:012}"))
                .collect(),
            batch,
            wire: Wire::default(),
            stream_faults: HashMap::new(),
            token_faults: HashMap::new(),
            expires_in: Some(7200),
            expires_at_in_ms: Some(7_200_000),
            inclusive: false,
            heartbeat: Duration::from_millis(200),
            bodies: HashMap::new(),
        }
    }
    pub fn fault(mut self, request: usize, fault: Fault) -> Self {
        self.stream_faults.insert(request, fault);
        self
    }
    pub fn token_fault(mut self, request: usize, fault: TokenFault) -> Self {
        self.token_faults.insert(request, fault);
        self
    }
    /// Serves these events (JSON texts with distinct `id`s), in this order.
    pub fn with_events(mut self, events: &[String]) -> Self {
        self.ids.clear();
        for text in events {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let id = value["id"].as_str().unwrap().to_owned();
            self.bodies.insert(id.clone(), text.clone());
            self.ids.push(id);
        }
        self
    }
    /// The id that ends batch `k` (1-based) of a connection starting at the beginning.
    pub fn batch_end(&self, k: usize) -> &str {
        &self.ids[k * self.batch - 1]
    }
}

struct StubState {
    plan: Plan,
    requests: Mutex<Vec<Recorded>>,
    tokens: Mutex<HashSet<String>>,
}

/// A running stub.
pub struct Stub {
    pub addr: SocketAddr,
    state: Arc<StubState>,
}

impl Stub {
    /// Plain HTTP on a free loopback port.
    pub async fn start(plan: Plan) -> Stub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Self::state(plan);
        let app = router(Arc::clone(&state));
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Stub { addr, state }
    }

    /// HTTPS with the given certificate chain and key (PEM).
    pub async fn start_tls(plan: Plan, cert_pem: &str, key_pem: &str) -> Stub {
        use hyper_util::rt::TokioIo;
        use hyper_util::service::TowerToHyperService;
        mrav2_syslog_connector::tls::install_crypto_provider();
        let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
            .unwrap()
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(
            mrav2_syslog_connector::tls::crypto_provider(),
        )
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Self::state(plan);
        let app = router(Arc::clone(&state));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        Stub { addr, state }
    }

    fn state(plan: Plan) -> Arc<StubState> {
        Arc::new(StubState {
            plan,
            requests: Mutex::new(Vec::new()),
            tokens: Mutex::new(HashSet::new()),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn plan(&self) -> &Plan {
        &self.state.plan
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn streams(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.endpoint == "stream")
            .collect()
    }

    pub fn token_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.endpoint == "token")
            .collect()
    }
}

fn router(state: Arc<StubState>) -> Router {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/mra/stream/v2/events", get(events))
        .with_state(state)
}

fn record(
    state: &StubState,
    endpoint: &'static str,
    raw: Option<String>,
    headers: &HeaderMap,
    body: String,
) -> usize {
    let raw_query = raw.unwrap_or_default();
    let query = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let mut requests = state.requests.lock().unwrap();
    requests.push(Recorded {
        endpoint,
        at: Instant::now(),
        raw_query,
        query,
        headers: headers.clone(),
        body,
    });
    requests.iter().filter(|r| r.endpoint == endpoint).count()
}

fn reply(status: u16, content_type: &str, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap()
}

async fn token(State(state): State<Arc<StubState>>, headers: HeaderMap, body: String) -> Response {
    let n = record(&state, "token", None, &headers, body.clone());
    if let Some(fault) = state.plan.token_faults.get(&n) {
        return match fault {
            TokenFault::Status { status, body } => reply(*status, "application/json", body.clone()),
            TokenFault::Body(body) => reply(200, "application/json", body.clone()),
        };
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {KEY}")) {
        return reply(
            401,
            "application/json",
            r#"{"error":"invalid_client","error_description":"unknown application key"}"#,
        );
    }
    if body != "grant_type=client_credentials" {
        return reply(400, "application/json", r#"{"error":"invalid_request"}"#);
    }
    let token = format!("tok-{n}");
    state.tokens.lock().unwrap().insert(token.clone());
    let mut json = serde_json::json!({"access_token": token, "token_type": "Bearer", "scope": ""});
    if let Some(e) = state.plan.expires_in {
        json["expires_in"] = e.into();
    }
    if let Some(ms) = state.plan.expires_at_in_ms {
        json["expires_at"] = (chrono::Utc::now().timestamp_millis() + ms).into();
    }
    reply(200, "application/json", json.to_string())
}

async fn events(
    State(state): State<Arc<StubState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let n = record(&state, "stream", raw.clone(), &headers, String::new());
    let plan = &state.plan;
    let fault = plan.stream_faults.get(&n).cloned();
    match &fault {
        Some(Fault::Status {
            status,
            body,
            retry_after,
            content_type,
        }) => {
            let mut r = Response::builder().status(*status);
            if let Some(ct) = content_type {
                r = r.header(header::CONTENT_TYPE, ct);
            }
            if let Some(ra) = retry_after {
                r = r.header(header::RETRY_AFTER, ra);
            }
            return r.body(Body::from(body.clone())).unwrap();
        }
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::ExpireTokens) => {
            state.tokens.lock().unwrap().clear();
            return reply(401, "application/json", r#"{"error":"invalid_token"}"#);
        }
        _ => {}
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !state.tokens.lock().unwrap().contains(bearer) {
        return reply(401, "application/json", r#"{"error":"invalid_token"}"#);
    }
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let id = query
        .iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.clone())
        .filter(|v| v != "0");
    let start = match id {
        Some(id) => match plan.ids.iter().position(|x| *x == id) {
            Some(i) if plan.inclusive => i,
            Some(i) => i + 1,
            None => 0,
        },
        None => 0,
    };
    let body = serve(plan, start, fault.as_ref());
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap()
}

type Chunks = BoxStream<'static, Result<Bytes, std::io::Error>>;

fn serve(plan: &Plan, start: usize, fault: Option<&Fault>) -> Chunks {
    let w = &plan.wire;
    let mut text: Vec<u8> = Vec::new();
    if w.bom {
        text.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let batches: Vec<&[String]> = plan.ids[start..].chunks(plan.batch.max(1)).collect();
    let mut tail: Chunks = heartbeats(plan);
    let mut k = 0;
    let mut stopped = false;
    let mut skip_batch = false;
    loop {
        if let Some(f) = fault
            && f.after() == Some(k)
            && !stopped
        {
            stopped = true;
            match f {
                Fault::DropMidEvent { .. } => {
                    if let Some(b) = batches.get(k) {
                        let m = events_message(b, w, &plan.bodies);
                        text.extend_from_slice(&m.as_bytes()[..m.len() / 2]);
                    }
                    tail = stream::empty().boxed();
                    break;
                }
                Fault::Drop { .. } => {
                    tail = stream::empty().boxed();
                    break;
                }
                Fault::Stall { .. } => {
                    tail = stream::pending().boxed();
                    break;
                }
                Fault::Planned {
                    name,
                    retry_ms,
                    with_data,
                    ..
                } => {
                    let mut fields = vec![("event", name.to_string())];
                    if let Some(r) = retry_ms {
                        fields.push(("retry", r.to_string()));
                    }
                    if *with_data {
                        fields.push(("data", "{}".into()));
                    }
                    text.extend_from_slice(message(&fields, w).as_bytes());
                    tail = stream::empty().boxed();
                    break;
                }
                Fault::InvalidJson { .. } => {
                    if let Some(b) = batches.get(k) {
                        let last = b.last().cloned().unwrap_or_default();
                        let fields = vec![
                            ("id", last),
                            ("event", "events".into()),
                            ("data", "{\"events\":[{not json".into()),
                        ];
                        text.extend_from_slice(message(&fields, w).as_bytes());
                        skip_batch = true;
                    }
                }
                Fault::Huge { bytes, .. } => {
                    let data = format!(
                        "{{\"events\":[{{\"id\":\"huge\",\"type\":\"THREAT\",\"threat\":{{\"details\":{{\"url\":\"{}\"}}}}}}]}}",
                        "x".repeat(*bytes)
                    );
                    let fields = vec![
                        ("id", "huge".to_string()),
                        ("event", "events".into()),
                        ("data", data),
                    ];
                    text.extend_from_slice(message(&fields, w).as_bytes());
                }
                Fault::Status { .. } | Fault::ExpireTokens | Fault::Hang | Fault::Linger { .. } => {
                }
            }
        }
        let Some(b) = batches.get(k) else { break };
        if skip_batch {
            skip_batch = false;
        } else {
            text.extend_from_slice(events_message(b, w, &plan.bodies).as_bytes());
        }
        k += 1;
    }
    if let Some(Fault::Linger { ms }) = fault {
        let until = tokio::time::sleep(Duration::from_millis(*ms));
        tail = tail.take_until(until).boxed();
    }
    let pieces: Vec<Result<Bytes, std::io::Error>> = if w.chunk_bytes > 0 {
        text.chunks(w.chunk_bytes)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    } else {
        vec![Ok(Bytes::from(text))]
    };
    stream::iter(pieces).chain(tail).boxed()
}

fn heartbeats(plan: &Plan) -> Chunks {
    let every = plan.heartbeat;
    let beat = Bytes::from(message(
        &[("event", "heartbeat".into()), ("data", "{}".into())],
        &plan.wire,
    ));
    stream::unfold((), move |()| {
        let beat = beat.clone();
        async move {
            tokio::time::sleep(every).await;
            Some((Ok(beat), ()))
        }
    })
    .boxed()
}

/// A JSON event as the stub serves it.
pub fn event_json(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"THREAT","created_time":"2026-11-22T12:00:00.000+00:00","threat":{{"severity":"LOW","details":{{"note":"é ✓"}}}}}}"#
    )
}

fn events_message(ids: &[String], w: &Wire, bodies: &HashMap<String, String>) -> String {
    let items: Vec<String> = ids
        .iter()
        .map(|id| bodies.get(id).cloned().unwrap_or_else(|| event_json(id)))
        .collect();
    let last = ids.last().cloned().unwrap_or_default();
    let mut fields = vec![("id", last), ("event", "events".to_string())];
    if w.multiline_data && items.len() > 1 {
        // Break only between array elements: the LF-joined text is the same JSON.
        let n = items.len();
        for (i, item) in items.into_iter().enumerate() {
            let mut line = String::new();
            if i == 0 {
                line.push_str("{\"events\":[");
            }
            line.push_str(&item);
            line.push_str(if i + 1 == n { "]}" } else { "," });
            fields.push(("data", line));
        }
    } else {
        fields.push(("data", format!("{{\"events\":[{}]}}", items.join(","))));
    }
    message(&fields, w)
}

fn message(fields: &[(&str, String)], w: &Wire) -> String {
    let le = w.line_ending;
    let mut out = String::new();
    if w.comments {
        out.push_str(":keep-alive");
        out.push_str(le);
    }
    for (k, v) in fields {
        out.push_str(k);
        out.push(':');
        if w.space_after_colon {
            out.push(' ');
        }
        out.push_str(v);
        out.push_str(le);
    }
    out.push_str(le);
    out
}

/// A tenant pointed at `api`, with a short `sse_timeout`.
pub fn tenant(api: &str) -> TenantConfig {
    TenantConfig {
        entity_name: "acme".into(),
        section: "lookout".into(),
        api_domain: url::Url::parse(api).unwrap(),
        api_key: Secret::new(KEY),
        api_key_source: mrav2_syslog_connector::config::SecretSource::ConfigFile,
        types: vec![EventType::Threat, EventType::Device],
        stream_position: None,
        start_time: None,
        sse_timeout: Duration::from_secs(2),
        ca_file: None,
        max_event_size: 1 << 20,
        destinations: Vec::new(),
        syslog: SyslogConfig {
            host: "localhost".into(),
            port: 514,
            protocol: Protocol::Tcp,
            framing: Framing::Lf,
            format: Format::SplunkJson,
            header: HeaderFormat::Rfc5424,
            facility: 1,
            app_name: "lookout-mra".into(),
            header_time: HeaderTime::Event,
            hostname: "test".into(),
            custom_identifier: None,
            max_message_size: 65536,
            relp_window: 128,
            max_events_per_second: 0,
            tls: TlsConfig {
                ca_file: None,
                client_auth: None,
                verify: true,
                server_name: "localhost".into(),
            },
        },
    }
}

/// Backoff constants short enough for tests on the real clock. `Retry-After` keeps its
/// 1 s minimum so that the 429 test can see it.
pub fn fast() -> BackoffPolicy {
    BackoffPolicy {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(80),
        long: Duration::from_millis(150),
        stable_after: Duration::from_secs(30),
        retry_max: Duration::from_secs(600),
        retry_after_min: Duration::from_secs(1),
        retry_after_max: Duration::from_secs(900),
        planned_min: Duration::from_millis(20),
        planned_jitter: Duration::from_millis(10),
    }
}

/// Reads batches until `n` events arrived (or 20 s passed); returns their ids in
/// arrival order.
pub async fn collect(source: &mut EventSource, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ids = Vec::new();
    while ids.len() < n {
        match tokio::time::timeout_at(deadline, source.next()).await {
            Ok(Some(batch)) => ids.extend(
                batch
                    .events
                    .iter()
                    .map(|e| e.id().unwrap_or("<no id>").to_string()),
            ),
            Ok(None) => panic!("source ended"),
            Err(_) => panic!("timed out with {} of {n} events: {ids:?}", ids.len()),
        }
    }
    ids
}

/// Polls `cond` every 10 ms until it holds or 10 s pass.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
