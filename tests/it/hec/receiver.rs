//! A faithful Splunk HTTP Event Collector for the tests (no real Splunk can be
//! installed here): `/services/collector/event`, `/services/collector/ack` and
//! `/services/collector/health` with HEC's codes and texts (`docs/receivers/splunk-hec.md#troubleshooting-by-hec-answer`),
//! tokens, gzip bodies, request channels, acknowledgement ids per channel that are
//! forgotten once reported true, and scriptable trouble: acknowledgement delays, lost
//! acknowledgements, busy (503) storms, 413 above a size, a refused event, a disabled
//! token, a restricted set of indexes.
//!
//! Like Splunk, it parses the envelopes of a request in order and indexes each valid
//! one; at the first invalid envelope it stops and answers 400 with the envelope's
//! number (from 0): the envelopes before it stay indexed. What it indexed is kept, so
//! tests can check exactly-once delivery.

// A kit: not every test uses every helper.
#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flate2::read::GzDecoder;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What the receiver is told to do; change it while it runs with [`HecReceiver::script`].
#[derive(Debug, Clone)]
pub struct Script {
    /// The one valid token.
    pub token: String,
    /// Indexer acknowledgement on the token: a channel is required and successes carry
    /// an `ackId`.
    pub acks: bool,
    /// How long after indexing an acknowledgement id turns true.
    pub ack_delay: Duration,
    /// Every n-th acknowledgement id (1-based, per receiver) never turns true.
    pub lose_every: Option<u64>,
    /// The next this many event requests are answered 503 code 9 (busy).
    pub busy: u32,
    /// A `Retry-After` header (seconds) on busy answers.
    pub retry_after: Option<u64>,
    /// Decompressed bodies above this many bytes are answered 413.
    pub max_body: Option<usize>,
    /// An envelope whose event contains this text is refused with code 6.
    pub refuse: Option<String>,
    /// The token is disabled: 403 code 1.
    pub disabled: bool,
    /// The indexes the token may write to (`None`: any).
    pub indexes: Option<Vec<String>>,
    /// How long each event request waits before it is looked at (a slow collector).
    pub answer_delay: Duration,
}

/// The certificate of an HTTPS receiver ([`HecReceiver::start_https`]).
pub struct ServerTls {
    /// The certificate chain, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// Require a client certificate issued by this CA (PEM).
    pub client_ca_pem: Option<String>,
}

/// One request the receiver answered.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub status: u16,
    pub answer: Value,
    pub channel: Option<String>,
    pub gzip: bool,
    /// Envelopes in the body (event requests).
    pub envelopes: usize,
    /// The request body as received, decompressed (for transcripts).
    pub body: String,
}

/// A running receiver.
pub struct HecReceiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
    tls: bool,
}

struct Inner {
    script: Script,
    indexed: Vec<Value>,
    channels: HashMap<String, Channel>,
    acks_issued: u64,
    /// `event.id` of every envelope whose acknowledgement was reported true.
    acked: Vec<String>,
    log: Vec<Logged>,
    /// Event requests being answered now, and the most there ever were at once.
    answering: usize,
    most_at_once: usize,
}

#[derive(Default)]
struct Channel {
    next_id: u64,
    /// Pending ids: when each turns true (`None`: never), and the `event.id`s of the
    /// envelopes it covers.
    pending: HashMap<u64, (Option<Instant>, Vec<String>)>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            token: "11111111-2222-3333-4444-555555555555".into(),
            acks: false,
            ack_delay: Duration::ZERO,
            lose_every: None,
            busy: 0,
            retry_after: None,
            max_body: None,
            refuse: None,
            disabled: false,
            indexes: None,
            answer_delay: Duration::ZERO,
        }
    }
}

impl HecReceiver {
    /// Starts a receiver on a free loopback port.
    pub async fn start(script: Script) -> HecReceiver {
        let (state, app) = Self::app(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        HecReceiver {
            addr,
            state,
            task,
            tls: false,
        }
    }

    /// The same receiver over HTTPS with a self-signed certificate for `127.0.0.1`;
    /// returns it and the certificate (PEM), for `ca_file`.
    pub async fn start_tls(script: Script) -> (HecReceiver, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let pem = certified.cert.pem();
        let tls = ServerTls {
            cert_pem: pem.clone(),
            key_pem: certified.signing_key.serialize_pem(),
            client_ca_pem: None,
        };
        (Self::start_https(script, &tls).await, pem)
    }

    /// The same receiver over HTTPS with the given certificate, and asking for a
    /// client certificate when `tls.client_ca_pem` is set (a session without one is
    /// refused during the handshake, as a collector behind mutual TLS does).
    pub async fn start_https(script: Script, tls: &ServerTls) -> HecReceiver {
        mrav2_syslog_connector::tls::install_crypto_provider();
        let certs: Vec<_> = rustls_pemfile::certs(&mut tls.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut tls.key_pem.as_bytes())
            .unwrap()
            .unwrap();
        let builder = rustls::ServerConfig::builder();
        let builder = match &tls.client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut ca.as_bytes()) {
                    roots.add(cert.unwrap()).unwrap();
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (state, app) = Self::app(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |request: http::Request<hyper::body::Incoming>| {
                            use tower::ServiceExt as _;
                            app.clone().oneshot(request)
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        HecReceiver {
            addr,
            state,
            task,
            tls: true,
        }
    }

    fn app(script: Script) -> (Arc<Mutex<Inner>>, Router) {
        let state = Arc::new(Mutex::new(Inner {
            script,
            indexed: Vec::new(),
            channels: HashMap::new(),
            acks_issued: 0,
            acked: Vec::new(),
            log: Vec::new(),
            answering: 0,
            most_at_once: 0,
        }));
        let app = Router::new()
            .route("/services/collector/event", post(event))
            .route("/services/collector/ack", post(ack))
            .route("/services/collector/health", get(health))
            .with_state(state.clone());
        (state, app)
    }

    /// `http://127.0.0.1:PORT`, or `https://…` for [`HecReceiver::start_tls`].
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Changes the script.
    pub fn script(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.state.lock().unwrap().script);
    }

    /// Every envelope indexed so far, in order.
    pub fn indexed(&self) -> Vec<Value> {
        self.state.lock().unwrap().indexed.clone()
    }

    /// The `event.id` of every envelope indexed so far, in order.
    pub fn indexed_ids(&self) -> Vec<String> {
        self.indexed()
            .iter()
            .filter_map(|e| e["event"]["id"].as_str().map(str::to_owned))
            .collect()
    }

    /// The `event.id` of every envelope whose acknowledgement was reported true.
    pub fn acked_ids(&self) -> Vec<String> {
        self.state.lock().unwrap().acked.clone()
    }

    /// Every request answered so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// The most event requests that were being answered at once.
    pub fn most_at_once(&self) -> usize {
        self.state.lock().unwrap().most_at_once
    }

    /// Acknowledgement ids still pending in every channel.
    pub fn pending_acks(&self) -> usize {
        let inner = self.state.lock().unwrap();
        inner.channels.values().map(|c| c.pending.len()).sum()
    }
}

/// Asserts that `indexed` holds every id of `expected` exactly once and nothing else,
/// in any order: with two requests in flight the collector may index them in either
/// order (within a request, envelopes stay in order). Reports counts and the first
/// ids out of place rather than both lists.
pub fn assert_exactly_once(indexed: &[String], expected: &[String], what: &str) {
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for id in expected {
        *counts.entry(id).or_default() += 1;
    }
    for id in indexed {
        *counts.entry(id).or_default() -= 1;
    }
    let mut missing: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(id, _)| *id)
        .collect();
    let mut extra: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| **n < 0)
        .map(|(id, _)| *id)
        .collect();
    missing.sort_unstable();
    extra.sort_unstable();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} indexed for {} expected; {} missing (first {:?}), {} indexed too often or not expected (first {:?})",
        indexed.len(),
        expected.len(),
        missing.len(),
        missing.first(),
        extra.len(),
        extra.first()
    );
}

impl Drop for HecReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(status: u16, body: Value) -> (StatusCode, Value) {
    (StatusCode::from_u16(status).unwrap(), body)
}

fn hec(status: u16, code: i64, text: &str) -> (StatusCode, Value) {
    answer(status, json!({"text": text, "code": code}))
}

/// Checks the token; `Err` is HEC's answer.
fn authorize(script: &Script, headers: &HeaderMap) -> Result<(), (StatusCode, Value)> {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(hec(401, 2, "Token is required"));
    };
    let Some(token) = value.strip_prefix("Splunk ") else {
        return Err(hec(401, 3, "Invalid authorization"));
    };
    if token != script.token {
        return Err(hec(403, 4, "Invalid token"));
    }
    if script.disabled {
        return Err(hec(403, 1, "Token disabled"));
    }
    Ok(())
}

/// The request channel, required when acknowledgements are on; `Err` is HEC's answer.
fn channel(script: &Script, headers: &HeaderMap) -> Result<Option<String>, (StatusCode, Value)> {
    let channel = headers
        .get("x-splunk-request-channel")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match &channel {
        None if script.acks => Err(hec(400, 10, "Data channel is missing")),
        Some(c) if uuid::Uuid::parse_str(c).is_err() => Err(hec(400, 11, "Invalid data channel")),
        _ => Ok(channel),
    }
}

fn log(
    inner: &mut Inner,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    envelopes: usize,
    (status, answer): &(StatusCode, Value),
) {
    inner.log.push(Logged {
        path: path.into(),
        status: status.as_u16(),
        answer: answer.clone(),
        channel: headers
            .get("x-splunk-request-channel")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        gzip: headers.get("content-encoding").is_some_and(|v| v == "gzip"),
        envelopes,
        body: String::from_utf8_lossy(body).into_owned(),
    });
}

async fn event(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = {
        let mut inner = state.lock().unwrap();
        inner.answering += 1;
        inner.most_at_once = inner.most_at_once.max(inner.answering);
        inner.script.answer_delay
    };
    tokio::time::sleep(delay).await;
    let mut inner = state.lock().unwrap();
    let inner = &mut *inner;
    inner.answering -= 1;
    let gzip = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let plain = if gzip {
        let mut out = Vec::new();
        match GzDecoder::new(&body[..]).read_to_end(&mut out) {
            Ok(_) => out,
            Err(_) => {
                let a = hec(400, 6, "Invalid data format");
                log(inner, "event", &headers, &body, 0, &a);
                return a.into_response_json();
            }
        }
    } else {
        body.to_vec()
    };
    let (a, envelopes) = index(inner, &headers, &plain);
    log(inner, "event", &headers, &plain, envelopes, &a);
    let mut response = a.into_response_json();
    if response.status() == StatusCode::SERVICE_UNAVAILABLE
        && let Some(seconds) = inner.script.retry_after
    {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    response
}

/// Indexes what it can of one event request; returns HEC's answer and the number of
/// envelopes in the body.
fn index(inner: &mut Inner, headers: &HeaderMap, plain: &[u8]) -> ((StatusCode, Value), usize) {
    let script = inner.script.clone();
    if let Err(a) = authorize(&script, headers) {
        return (a, 0);
    }
    let channel = match channel(&script, headers) {
        Ok(c) => c,
        Err(a) => return (a, 0),
    };
    if inner.script.busy > 0 {
        inner.script.busy -= 1;
        return (hec(503, 9, "Server is busy"), 0);
    }
    if let Some(max) = script.max_body
        && plain.len() > max
    {
        return (
            hec(
                413,
                21,
                &format!(
                    "Content-Length of {} too large (maximum is {max})",
                    plain.len()
                ),
            ),
            0,
        );
    }
    let envelopes: Vec<Result<Value, ()>> = serde_json::Deserializer::from_slice(plain)
        .into_iter::<Value>()
        .map(|r| r.map_err(|_| ()))
        .collect();
    let count = envelopes.len();
    if count == 0 {
        return (hec(400, 5, "No data"), 0);
    }
    let first = inner.indexed.len();
    for (k, envelope) in envelopes.into_iter().enumerate() {
        let refused = |code: i64, text: &str| {
            answer(
                400,
                json!({"text": text, "code": code, "invalid-event-number": k}),
            )
        };
        let Ok(envelope) = envelope else {
            return (refused(6, "Invalid data format"), count);
        };
        match envelope.get("event") {
            None => return (refused(12, "Event field is required"), count),
            Some(Value::String(s)) if s.is_empty() => {
                return (refused(13, "Event field cannot be blank"), count);
            }
            Some(event) => {
                if let Some(text) = &script.refuse
                    && event.to_string().contains(text.as_str())
                {
                    return (refused(6, "Invalid data format"), count);
                }
            }
        }
        if let (Some(allowed), Some(index)) = (
            &script.indexes,
            envelope.get("index").and_then(Value::as_str),
        ) && !allowed.iter().any(|i| i == index)
        {
            return (refused(7, "Incorrect index"), count);
        }
        inner.indexed.push(envelope);
    }
    if !script.acks {
        return (hec(200, 0, "Success"), count);
    }
    inner.acks_issued += 1;
    let lost = script
        .lose_every
        .is_some_and(|n| inner.acks_issued.is_multiple_of(n));
    let ids = inner.indexed[first..]
        .iter()
        .filter_map(|e| e["event"]["id"].as_str().map(str::to_owned))
        .collect();
    let ch = inner
        .channels
        .entry(channel.unwrap_or_default())
        .or_default();
    let id = ch.next_id;
    ch.next_id += 1;
    ch.pending.insert(
        id,
        ((!lost).then(|| Instant::now() + script.ack_delay), ids),
    );
    (
        answer(200, json!({"text": "Success", "code": 0, "ackId": id})),
        count,
    )
}

async fn ack(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut inner = state.lock().unwrap();
    let inner = &mut *inner;
    let script = inner.script.clone();
    let a = (|| {
        authorize(&script, &headers)?;
        if !script.acks {
            return Err(hec(400, 14, "ACK is disabled"));
        }
        let channel = channel(&script, &headers)?.unwrap_or_default();
        let Ok(query) = serde_json::from_slice::<Value>(&body) else {
            return Err(hec(400, 6, "Invalid data format"));
        };
        let Some(ids) = query["acks"].as_array() else {
            return Err(hec(400, 6, "Invalid data format"));
        };
        let acked = &mut inner.acked;
        let ch = inner.channels.entry(channel).or_default();
        let now = Instant::now();
        let mut acks = serde_json::Map::new();
        for id in ids.iter().filter_map(Value::as_u64) {
            let done = matches!(ch.pending.get(&id), Some((Some(at), _)) if *at <= now);
            if done {
                // Reported true once, then forgotten.
                if let Some((_, events)) = ch.pending.remove(&id) {
                    acked.extend(events);
                }
            }
            acks.insert(id.to_string(), Value::Bool(done));
        }
        Ok(answer(200, json!({"acks": acks})))
    })()
    .unwrap_or_else(|e| e);
    log(inner, "ack", &headers, &body, 0, &a);
    a.into_response_json()
}

async fn health(State(_state): State<Arc<Mutex<Inner>>>) -> Response {
    hec(200, 17, "HEC is healthy").into_response_json()
}

trait IntoJson {
    fn into_response_json(self) -> Response;
}

impl IntoJson for (StatusCode, Value) {
    fn into_response_json(self) -> Response {
        (
            self.0,
            [("content-type", "application/json")],
            self.1.to_string(),
        )
            .into_response()
    }
}
