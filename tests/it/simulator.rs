//! The built-in simulator, through real sockets: tokens, resume rules, type filter,
//! every scripted fault, every wire style, determinism, UUIDv7 ids, firehose and the
//! request log.
//!
//! The stream is decoded by a tiny test-only SSE splitter below (not the connector's
//! parser, which is written separately), so that a mistake in one cannot hide a
//! mistake in the other.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::time::Duration;

use mrav2_syslog_connector::simulator::{
    self, Auth, EventKind, IdZero, RequestRecord, Scenario, SimHandle, SimOptions,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const KEY: &str = "demo-key";
const DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------
// Test-only SSE splitter: the WHATWG rules this simulator uses, nothing more.

#[derive(Debug, Clone, Default, PartialEq)]
struct Message {
    event: String,
    id: Option<String>,
    data: Option<String>,
    retry: Option<u64>,
    comments: usize,
}

#[derive(Debug, Default)]
struct Splitter {
    buffer: Vec<u8>,
    started: bool,
    current: Message,
    seen_field: bool,
    messages: Vec<Message>,
    /// How much of `buffer` is known to hold no line end (tiny feeds stay linear).
    scanned: usize,
}

impl Splitter {
    fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        if !self.started {
            if self.buffer.len() < 3 && b"\xEF\xBB\xBF".starts_with(&self.buffer) {
                return;
            }
            if self.buffer.starts_with(b"\xEF\xBB\xBF") {
                self.buffer.drain(..3);
            }
            self.started = true;
        }
        loop {
            let Some(end) = self.buffer[self.scanned..]
                .iter()
                .position(|b| *b == b'\n' || *b == b'\r')
                .map(|at| at + self.scanned)
            else {
                self.scanned = self.buffer.len();
                return;
            };
            self.scanned = end;
            // A CR at the very end may be the first half of a CRLF.
            if self.buffer[end] == b'\r' && end + 1 == self.buffer.len() {
                return;
            }
            let skip = if self.buffer[end] == b'\r' && self.buffer[end + 1] == b'\n' {
                2
            } else {
                1
            };
            let line: Vec<u8> = self.buffer.drain(..end + skip).take(end).collect();
            self.scanned = 0;
            self.line(&String::from_utf8(line).expect("utf-8 line"));
        }
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            if self.seen_field {
                self.messages.push(std::mem::take(&mut self.current));
            }
            self.seen_field = false;
            return;
        }
        if line.starts_with(':') {
            self.current.comments += 1;
            return;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        self.seen_field = true;
        match name {
            "event" => self.current.event = value.to_owned(),
            "id" => self.current.id = Some(value.to_owned()),
            "retry" => self.current.retry = value.parse().ok(),
            "data" => match &mut self.current.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.current.data = Some(value.to_owned()),
            },
            other => panic!("unexpected field {other:?}"),
        }
    }
}

impl Message {
    fn events(&self) -> Vec<Value> {
        assert_eq!(self.event, "events");
        let data: Value = serde_json::from_str(self.data.as_deref().expect("data")).expect("json");
        data["events"].as_array().expect("events array").clone()
    }
}

fn event_ids(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.event == "events")
        .flat_map(|m| m.events())
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------
// Helpers.

fn client() -> reqwest::Client {
    mrav2_syslog_connector::tls::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .build()
        .expect("client")
}

fn options(events: usize) -> SimOptions {
    SimOptions {
        events,
        rate: 0,
        heartbeat: Duration::from_millis(200),
        ..SimOptions::default()
    }
}

async fn sim(options: SimOptions) -> SimHandle {
    simulator::start(options).await.expect("simulator starts").1
}

async fn token(sim: &SimHandle, key: &str) -> String {
    let response = client()
        .post(format!("{}/oauth2/token", sim.base_url()))
        .bearer_auth(key)
        .header("accept", "application/json")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn stream(
    sim: &SimHandle,
    token: &str,
    query: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut request = client()
        .get(format!("{}/mra/stream/v2/events?{query}", sim.base_url()))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .header("cache-control", "no-cache")
        .header("user-agent", mrav2_syslog_connector::USER_AGENT);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.expect("stream request")
}

/// How a read of the stream ended.
#[derive(Debug, PartialEq)]
enum Ending {
    /// The condition held.
    Done,
    /// The body ended cleanly.
    Eof,
    /// The body ended with an error (cut connection, incomplete chunked body).
    Error,
}

/// Reads until `until` holds for the messages so far, the body ends, or the deadline.
async fn read(
    response: &mut reqwest::Response,
    splitter: &mut Splitter,
    until: impl Fn(&[Message]) -> bool,
) -> Ending {
    let deadline = Instant::now() + DEADLINE;
    // The condition may parse every batch; ask it again only when a message arrived.
    let mut checked = None;
    loop {
        if checked != Some(splitter.messages.len()) {
            if until(&splitter.messages) {
                return Ending::Done;
            }
            checked = Some(splitter.messages.len());
        }
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => panic!("deadline; messages so far: {:#?}", splitter.messages),
            Ok(Ok(Some(bytes))) => splitter.feed(&bytes),
            Ok(Ok(None)) => return Ending::Eof,
            Ok(Err(_)) => return Ending::Error,
        }
    }
}

fn count_events(n: usize) -> impl Fn(&[Message]) -> bool {
    move |messages| event_ids(messages).len() >= n
}

fn heartbeats(n: usize) -> impl Fn(&[Message]) -> bool {
    move |messages| messages.iter().filter(|m| m.event == "heartbeat").count() >= n
}

/// Everything of the history, decoded.
async fn history(sim: &SimHandle, query: &str, n: usize) -> Vec<Message> {
    let token = token(sim, KEY).await;
    let mut response = stream(sim, &token, query, None).await;
    assert_eq!(response.status(), 200);
    let mut splitter = Splitter::default();
    assert_eq!(
        read(&mut response, &mut splitter, count_events(n)).await,
        Ending::Done
    );
    splitter.messages
}

fn with_scenario(mut options: SimOptions, json: &str) -> SimOptions {
    options.scenario = Scenario::from_json(json).expect("scenario");
    options
}

/// A raw HTTP/1.1 GET of the stream over TCP: the response head and a connected
/// socket positioned at the body.
async fn raw_stream(sim: &SimHandle, token: &str) -> (String, tokio::net::TcpStream, Vec<u8>) {
    let mut socket = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    let request = format!(
        "GET /mra/stream/v2/events?id=0 HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n",
        sim.addr()
    );
    socket.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        socket.read_exact(&mut byte).await.expect("head byte");
        head.push(byte[0]);
    }
    (String::from_utf8(head).expect("head"), socket, Vec::new())
}

fn record_of<'a>(records: &'a [RequestRecord], endpoint: &str, n: usize) -> &'a RequestRecord {
    records
        .iter()
        .filter(|r| r.endpoint == endpoint)
        .nth(n)
        .expect("record")
}

// ---------------------------------------------------------------------------------
// Tokens.

#[tokio::test]
async fn tokens_are_issued_with_all_fields_and_expire() {
    let sim = sim(SimOptions {
        token_ttl: Duration::from_secs(1),
        ..options(5)
    })
    .await;
    let response = client()
        .post(format!("{}/oauth2/token", sim.base_url()))
        .bearer_auth(KEY)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let fields: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "access_token",
            "token_type",
            "expires_at",
            "expires_in",
            "scope"
        ]
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "");
    assert_eq!(body["expires_in"], 1);
    let now = chrono::Utc::now().timestamp_millis();
    let expires_at = body["expires_at"].as_i64().expect("ms");
    assert!(
        (now..now + 2000).contains(&expires_at),
        "{expires_at} vs {now}"
    );
    let token = body["access_token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("eyJ"));
    assert_ne!(token, self::token(&sim, KEY).await, "tokens are random");

    assert_eq!(stream(&sim, &token, "id=0", None).await.status(), 200);
    // Poll until the token has expired (TTL 1 s).
    let deadline = Instant::now() + DEADLINE;
    let response = loop {
        let response = stream(&sim, &token, "id=0", None).await;
        if response.status() == 401 || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_token");
    let records = sim.requests();
    assert_eq!(records.last().expect("record").auth, Auth::Expired);
    assert_eq!(
        records.last().expect("record").tenant.as_deref(),
        Some("demo")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_keys_and_bodies_are_refused_oauth_style() {
    let sim = sim(options(5)).await;
    let url = format!("{}/oauth2/token", sim.base_url());
    let form = [("grant_type", "client_credentials")];
    let cases = [
        (
            client().post(&url).bearer_auth("wrong").form(&form),
            401,
            "invalid_client",
        ),
        (client().post(&url).form(&form), 401, "invalid_client"),
        (
            client()
                .post(&url)
                .bearer_auth(KEY)
                .form(&[("grant_type", "password")]),
            400,
            "unsupported_grant_type",
        ),
        (
            client().post(&url).bearer_auth(KEY).form(&[("scope", "x")]),
            400,
            "invalid_request",
        ),
        (
            client()
                .post(&url)
                .bearer_auth(KEY)
                .body("grant_type=client_credentials"),
            400,
            "invalid_request",
        ),
    ];
    for (request, status, error) in cases {
        let response = request.send().await.expect("response");
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], error);
    }
    let records = sim.requests();
    let auths: Vec<Auth> = records.iter().map(|r| r.auth).collect();
    assert_eq!(
        auths,
        [
            Auth::Invalid,
            Auth::Missing,
            Auth::Valid,
            Auth::Valid,
            Auth::Valid
        ]
    );
    assert_eq!(records[0].tenant, None);
    assert_eq!(records[2].tenant.as_deref(), Some("demo"));

    // Stream: missing, unknown token.
    let response = client()
        .get(format!("{}/mra/stream/v2/events?id=0", sim.base_url()))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 401);
    assert_eq!(stream(&sim, "nope", "id=0", None).await.status(), 401);
    let records = sim.requests();
    assert_eq!(records[5].auth, Auth::Missing);
    assert_eq!(records[6].auth, Auth::Invalid);
    sim.shutdown().await;
}

#[tokio::test]
async fn tenants_have_their_own_keys_tokens_and_events() {
    let sim = sim(SimOptions {
        tenants: BTreeMap::from([("a".into(), "key-a".into()), ("b".into(), "key-b".into())]),
        ..options(20)
    })
    .await;
    let token_b = token(&sim, "key-b").await;
    let mut response = stream(&sim, &token_b, "id=0", None).await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, count_events(20)).await;
    assert_eq!(event_ids(&splitter.messages), sim.event_ids("b"));
    assert_ne!(sim.event_ids("a"), sim.event_ids("b"));
    assert!(sim.event_ids("nobody").is_empty());
    let records = sim.requests();
    assert_eq!(records[1].tenant.as_deref(), Some("b"));
    let over_http: Vec<String> = client()
        .get(format!("{}/_sim/events?tenant=a", sim.base_url()))
        .send()
        .await
        .expect("events")
        .json()
        .await
        .expect("json");
    assert_eq!(over_http, sim.event_ids("a"));
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Stream basics and resume rules.

#[tokio::test]
async fn the_stream_has_the_headers_and_framing_of_lookout() {
    let sim = sim(options(25)).await;
    let token = token(&sim, KEY).await;
    let mut response = stream(
        &sim,
        &token,
        "types=THREAT%2CDEVICE%2CAUDIT%2CSMISHING_ALERT&id=0",
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["connection"], "keep-alive");
    assert_eq!(headers["transfer-encoding"], "chunked");
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, |m| {
        event_ids(m).len() >= 25 && heartbeats(3)(m)
    })
    .await;
    let messages = &splitter.messages;
    assert_eq!(messages[0].event, "heartbeat");
    assert_eq!(messages[0].data.as_deref(), Some("{}"));
    for message in messages.iter().filter(|m| m.event == "events") {
        let events = message.events();
        assert!((1..=10).contains(&events.len()));
        assert_eq!(
            message.id.as_deref(),
            events.last().expect("event")["id"].as_str()
        );
    }
    assert_eq!(event_ids(messages), sim.event_ids("demo"));
    sim.shutdown().await;
}

#[tokio::test]
async fn heartbeats_are_spaced_by_the_interval() {
    let sim = sim(SimOptions {
        heartbeat: Duration::from_millis(150),
        ..options(0)
    })
    .await;
    let token = token(&sim, KEY).await;
    let opened = Instant::now();
    let mut response = stream(&sim, &token, "id=0", None).await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, heartbeats(5)).await;
    // One at once, then one per interval: a slow reader may see them bunched, but
    // never sooner than the server wrote them.
    let elapsed = opened.elapsed();
    assert!(elapsed >= Duration::from_millis(4 * 150), "{elapsed:?}");
    assert!(splitter.messages.iter().all(|m| m.event == "heartbeat"));
    sim.shutdown().await;
}

#[tokio::test]
async fn resume_rules() {
    let sim = sim(options(60)).await;
    let ids = sim.event_ids("demo");
    let token = token(&sim, KEY).await;
    let first_after = |query: String, header: Option<String>| {
        let token = token.clone();
        let sim = &sim;
        async move {
            let mut response = stream(sim, &token, &query, header.as_deref()).await;
            assert_eq!(response.status(), 200, "{query}");
            let mut splitter = Splitter::default();
            read(&mut response, &mut splitter, count_events(1)).await;
            event_ids(&splitter.messages)[0].clone()
        }
    };
    // Strictly after a known id.
    assert_eq!(first_after(format!("id={}", ids[9]), None).await, ids[10]);
    // An invented id is placed by UUID order.
    let invented = uuid::Uuid::parse_str(&ids[20]).expect("uuid").as_u128() + 1;
    let invented = uuid::Uuid::from_u128(invented).hyphenated().to_string();
    assert!(!ids.contains(&invented));
    assert_eq!(first_after(format!("id={invented}"), None).await, ids[21]);
    // Last-Event-ID alone.
    assert_eq!(
        first_after(String::new(), Some(ids[30].clone())).await,
        ids[31]
    );
    // Both, differing: id wins and the log notes it.
    assert_eq!(
        first_after(format!("id={}", ids[40]), Some(ids[5].clone())).await,
        ids[41]
    );
    let note = sim.requests().last().expect("record").note.clone();
    assert!(note.expect("note").contains("differ"));
    // id=0: oldest by default.
    assert_eq!(first_after("id=0".into(), None).await, ids[0]);
    // start_time: the first event at or after it; both offset styles.
    let messages = history(&sim, "id=0", 60).await;
    let events: Vec<Value> = messages
        .iter()
        .filter(|m| m.event == "events")
        .flat_map(|m| m.events())
        .collect();
    let created = events[33]["created_time"]
        .as_str()
        .expect("time")
        .to_owned();
    let time = chrono::DateTime::parse_from_rfc3339(&created).expect("time");
    let encoded = created.replace('+', "%2B");
    assert_eq!(
        first_after(format!("start_time={encoded}"), None).await,
        ids[33]
    );
    let naive = time.naive_utc().format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    assert_eq!(
        first_after(format!("start_time={naive}"), None).await,
        ids[33]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn resume_at_id_resends_the_event() {
    let sim = sim(SimOptions {
        resume_at_id: true,
        ..options(30)
    })
    .await;
    let ids = sim.event_ids("demo");
    let token = token(&sim, KEY).await;
    let mut response = stream(&sim, &token, &format!("id={}", ids[12]), None).await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, count_events(18)).await;
    assert_eq!(event_ids(&splitter.messages), ids[12..]);
    sim.shutdown().await;
}

#[tokio::test]
async fn id_zero_now_serves_only_live_events() {
    let sim = sim(SimOptions {
        id_zero: IdZero::Now,
        rate: 20,
        ..options(30)
    })
    .await;
    let history_ids = sim.event_ids("demo");
    let token = token(&sim, KEY).await;
    let mut response = stream(&sim, &token, "id=0", None).await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, count_events(3)).await;
    let served = event_ids(&splitter.messages);
    assert!(
        served.iter().all(|id| !history_ids.contains(id)),
        "{served:?}"
    );
    let all = sim.event_ids("demo");
    assert!(all.len() > history_ids.len());
    // Live events follow the history in id order.
    assert!(
        served
            .iter()
            .all(|id| *id > history_ids[history_ids.len() - 1])
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn live_events_follow_the_history() {
    let sim = sim(SimOptions {
        rate: 50,
        ..options(10)
    })
    .await;
    let messages = history(&sim, "id=0", 15).await;
    let served = event_ids(&messages);
    let all = sim.event_ids("demo");
    assert_eq!(served[..], all[..served.len()]);
    sim.shutdown().await;
}

#[tokio::test]
async fn types_filter_and_bad_parameters() {
    let sim = sim(options(200)).await;
    let all = history(&sim, "id=0", 200).await;
    let all_events: Vec<Value> = all
        .iter()
        .filter(|m| m.event == "events")
        .flat_map(|m| m.events())
        .collect();
    let wanted: Vec<String> = all_events
        .iter()
        .filter(|e| e["type"] == "AUDIT" || e["type"] == "SMISHING_ALERT")
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(!wanted.is_empty());
    let filtered = history(&sim, "types=AUDIT%2CSMISHING_ALERT&id=0", wanted.len()).await;
    assert_eq!(event_ids(&filtered), wanted);
    // All four types appear in the unfiltered history.
    for kind in EventKind::ALL {
        assert!(
            all_events.iter().any(|e| e["type"] == kind.as_str()),
            "{kind}"
        );
    }

    let token = token(&sim, KEY).await;
    for query in [
        "types=THREAT%2CVIRUS&id=0",
        "start_time=last-tuesday",
        "id=not-a-uuid",
    ] {
        let response = stream(&sim, &token, query, None).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "invalid_request");
    }
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Generated events.

#[tokio::test]
async fn the_same_seed_and_times_give_identical_streams() {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-05T08:00:00+00:00")
        .expect("time")
        .to_utc();
    let pinned = |seed| SimOptions {
        seed,
        start_time: Some(start),
        history_end: Some(start + chrono::Duration::hours(1)),
        ..options(120)
    };
    let mut bodies = Vec::new();
    for seed in [7, 7, 8] {
        let sim = sim(pinned(seed)).await;
        let messages = history(&sim, "id=0", 120).await;
        let data: Vec<String> = messages
            .iter()
            .filter(|m| m.event == "events")
            .map(|m| format!("{:?}{:?}", m.id, m.data))
            .collect();
        bodies.push(data);
        sim.shutdown().await;
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_ne!(bodies[0], bodies[2]);
}

#[tokio::test]
async fn ids_are_uuid_v7_of_the_created_time() {
    let start = chrono::Utc::now() - chrono::Duration::minutes(10);
    let sim = sim(SimOptions {
        start_time: Some(start),
        ..options(300)
    })
    .await;
    let messages = history(&sim, "id=0", 300).await;
    let events: Vec<Value> = messages
        .iter()
        .filter(|m| m.event == "events")
        .flat_map(|m| m.events())
        .collect();
    let mut previous: Option<(u128, i64)> = None;
    for event in &events {
        let uuid = uuid::Uuid::parse_str(event["id"].as_str().expect("id")).expect("uuid");
        assert_eq!(uuid.get_version_num(), 7);
        assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
        let text = event["created_time"].as_str().expect("created_time");
        assert_eq!(text.len(), "2026-11-05T08:12:44.318+00:00".len());
        assert!(text.ends_with("+00:00"));
        let ms = chrono::DateTime::parse_from_rfc3339(text)
            .expect("time")
            .timestamp_millis();
        assert_eq!((uuid.as_u128() >> 80) as i64, ms);
        if let Some((id, time)) = previous {
            assert!(uuid.as_u128() > id);
            assert!(ms > time, "created_time strictly increasing");
        }
        previous = Some((uuid.as_u128(), ms));
    }
    let first =
        chrono::DateTime::parse_from_rfc3339(events[0]["created_time"].as_str().expect("t"))
            .expect("time");
    assert_eq!(first.timestamp_millis(), start.timestamp_millis());
    let last = previous.expect("events").1;
    assert!(last <= chrono::Utc::now().timestamp_millis());
    assert!(last > (chrono::Utc::now() - chrono::Duration::minutes(1)).timestamp_millis());
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Wire options.

#[tokio::test]
async fn every_wire_style_decodes_to_the_same_events() {
    // Pinned times: the history is spread between them, so every run is identical.
    let start = chrono::Utc::now() - chrono::Duration::hours(2);
    let pinned = SimOptions {
        batch_size: 7,
        start_time: Some(start),
        history_end: Some(start + chrono::Duration::hours(1)),
        ..options(40)
    };
    let baseline_sim = sim(pinned.clone()).await;
    let baseline = event_bodies(&history(&baseline_sim, "id=0", 40).await);
    baseline_sim.shutdown().await;
    let styles = [
        r#"{"line_ending":"crlf"}"#,
        r#"{"line_ending":"cr"}"#,
        r#"{"bom":true}"#,
        r#"{"space_after_colon":true}"#,
        r#"{"comments":true}"#,
        r#"{"multiline_data":true}"#,
        r#"{"chunk_bytes":7}"#,
        r#"{"transfer":"close-delimited"}"#,
        r#"{"line_ending":"crlf","bom":true,"space_after_colon":true,"comments":true,
            "multiline_data":true,"chunk_bytes":3,"transfer":"close-delimited"}"#,
    ];
    for wire in styles {
        let sim = sim(with_scenario(
            pinned.clone(),
            &format!(r#"{{"wire":{wire}}}"#),
        ))
        .await;
        let messages = history(&sim, "id=0", 40).await;
        assert!(
            event_bodies(&messages) == baseline,
            "{wire} decodes differently"
        );
        if wire.contains("comments") {
            assert!(messages.iter().all(|m| m.comments == 1), "{wire}");
        }
        if wire.contains("multiline") {
            let lines = messages
                .iter()
                .filter(|m| m.event == "events")
                .map(|m| m.data.as_deref().unwrap_or("").lines().count());
            assert!(
                lines.clone().all(|n| n >= 1) && lines.max() == Some(7),
                "{wire}"
            );
        }
        sim.shutdown().await;
    }
}

/// id and parsed events of every events message.
fn event_bodies(messages: &[Message]) -> Vec<(Option<String>, Vec<Value>)> {
    messages
        .iter()
        .filter(|m| m.event == "events")
        .map(|m| (m.id.clone(), m.events()))
        .collect()
}

/// Reads raw body bytes from a socket until `until` holds or the peer closes.
async fn raw_read(
    socket: &mut tokio::net::TcpStream,
    bytes: &mut Vec<u8>,
    until: impl Fn(&[u8]) -> bool,
) -> std::io::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    let mut buffer = [0u8; 4096];
    while !until(bytes) {
        let read = tokio::time::timeout_at(deadline, socket.read(&mut buffer))
            .await
            .expect("deadline")?;
        if read == 0 {
            return Ok(());
        }
        bytes.extend_from_slice(&buffer[..read]);
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn wire_bytes_are_what_the_scenario_says() {
    // CRLF + BOM, chunked: the first chunk's data starts with the BOM, and no bare LF
    // appears in the SSE text.
    let sim = sim(with_scenario(
        options(5),
        r#"{"wire":{"line_ending":"crlf","bom":true}}"#,
    ))
    .await;
    let token = token(&sim, KEY).await;
    let (head, mut socket, mut body) = raw_stream(&sim, &token).await;
    assert!(head.starts_with("HTTP/1.1 200"));
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
    );
    raw_read(&mut socket, &mut body, |b| contains(b, b"event:events"))
        .await
        .expect("read");
    // First chunk: "<size>\r\n" then the BOM.
    let first_line_end = body
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("chunk size");
    assert!(
        body[first_line_end + 2..].starts_with(b"\xEF\xBB\xBFevent:heartbeat\r\ndata:{}\r\n\r\n")
    );
    sim.shutdown().await;

    // Close-delimited: no chunk framing at all, and the body ends with the connection.
    let sim = self::sim(with_scenario(
        options(5),
        r#"{"wire":{"transfer":"close-delimited","line_ending":"cr"},
            "faults":[{"endpoint":"stream","after_batches":1,"action":"end","retry_ms":10}]}"#,
    ))
    .await;
    let token = self::token(&sim, KEY).await;
    let (head, mut socket, mut body) = raw_stream(&sim, &token).await;
    let lower = head.to_ascii_lowercase();
    assert!(!lower.contains("transfer-encoding"), "{head}");
    assert!(!lower.contains("content-length"), "{head}");
    assert!(lower.contains("connection: close"), "{head}");
    raw_read(&mut socket, &mut body, |_| false)
        .await
        .expect("read to close");
    assert!(
        body.starts_with(b"event:heartbeat\rdata:{}\r\r"),
        "{:?}",
        String::from_utf8_lossy(&body)
    );
    assert!(body.ends_with(b"event:end\rretry:10\r\r"));
    assert!(!body.contains(&b'\n'));
    sim.shutdown().await;
}

#[tokio::test]
async fn chunk_bytes_splits_the_body_into_separate_writes() {
    let sim = sim(with_scenario(
        options(3),
        r#"{"wire":{"chunk_bytes":5,"bom":true}}"#,
    ))
    .await;
    let token = token(&sim, KEY).await;
    let (_, mut socket, mut body) = raw_stream(&sim, &token).await;
    raw_read(&mut socket, &mut body, |b| contains(b, b"]}"))
        .await
        .expect("read");
    // Every HTTP chunk carries at most 5 bytes.
    let mut rest = &body[..];
    let mut sizes = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..end]).expect("hex"), 16)
            .expect("size");
        if rest.len() < end + 2 + size + 2 {
            break;
        }
        sizes.push(size);
        rest = &rest[end + 2 + size + 2..];
    }
    assert!(sizes.len() > 10);
    assert!(sizes.iter().all(|size| (1..=5).contains(size)), "{sizes:?}");
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Faults.

#[tokio::test]
async fn status_faults_on_the_stream() {
    let sim = sim(with_scenario(
        options(5),
        r#"{"faults":[
            {"endpoint":"stream","request":1,"action":"status","status":503,"retry_after":"2","body":"busy"},
            {"endpoint":"stream","request":2,"action":"status","status":429,"retry_after":7},
            {"endpoint":"stream","request":3,"action":"status","status":204},
            {"endpoint":"stream","request":4,"action":"status","status":200,"content_type":"text/html","body":"<html>portal</html>"},
            {"endpoint":"stream","request":[5,9],"action":"status","status":500},
            {"endpoint":"stream","request":10,"action":"status","status":401},
            {"endpoint":"stream","request":11,"action":"status","status":403},
            {"endpoint":"stream","request":12,"action":"status","status":404,"delay_ms":300}
        ]}"#,
    ))
    .await;
    let token = token(&sim, KEY).await;
    let response = stream(&sim, &token, "id=0", None).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(response.text().await.expect("body"), "busy");
    let response = stream(&sim, &token, "id=0", None).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let response = stream(&sim, &token, "id=0", None).await;
    assert_eq!(response.status(), 204);
    assert!(response.text().await.expect("body").is_empty());
    let response = stream(&sim, &token, "id=0", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html");
    assert_eq!(response.text().await.expect("body"), "<html>portal</html>");
    for _ in 5..=9 {
        let response = stream(&sim, &token, "id=0", None).await;
        assert_eq!(response.status(), 500);
        let body: Value = response.json().await.expect("default body is json");
        assert!(body["error"].is_string());
    }
    assert_eq!(stream(&sim, &token, "id=0", None).await.status(), 401);
    assert_eq!(stream(&sim, &token, "id=0", None).await.status(), 403);
    let started = Instant::now();
    assert_eq!(stream(&sim, &token, "id=0", None).await.status(), 404);
    assert!(started.elapsed() >= Duration::from_millis(300), "delay_ms");
    // Request 13 is normal.
    let response = stream(&sim, &token, "id=0", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let records = sim.requests();
    let statuses: Vec<u16> = records
        .iter()
        .filter(|r| r.endpoint == "stream")
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        [
            503, 429, 204, 200, 500, 500, 500, 500, 500, 401, 403, 404, 200
        ]
    );
    assert_eq!(record_of(&records, "stream", 0).faults, ["status"]);
    assert!(record_of(&records, "stream", 12).faults.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_select_by_tenant_and_request() {
    let sim = sim(with_scenario(
        SimOptions {
            tenants: BTreeMap::from([("a".into(), "key-a".into()), ("b".into(), "key-b".into())]),
            ..options(5)
        },
        r#"{"faults":[{"endpoint":"stream","tenant":"b","request":[2,3],"action":"status","status":503}]}"#,
    ))
    .await;
    let a = token(&sim, "key-a").await;
    let b = token(&sim, "key-b").await;
    let mut statuses = Vec::new();
    for token in [&a, &a, &a, &b, &b, &b, &b] {
        statuses.push(stream(&sim, token, "id=0", None).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 503, 503, 200]);
    sim.shutdown().await;
}

#[tokio::test]
async fn token_endpoint_faults() {
    let sim = sim(with_scenario(
        options(5),
        r#"{"faults":[
            {"endpoint":"token","request":1,"action":"status","status":500,"retry_after":"1"},
            {"endpoint":"token","request":2,"action":"drop"},
            {"endpoint":"token","request":3,"action":"reset"},
            {"endpoint":"token","request":4,"action":"stall","for_ms":200}
        ]}"#,
    ))
    .await;
    let post = || {
        client()
            .post(format!("{}/oauth2/token", sim.base_url()))
            .bearer_auth(KEY)
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let response = post().await.expect("response");
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(post().await.is_err(), "drop: no response");
    assert!(post().await.is_err(), "reset: no response");
    let started = Instant::now();
    assert_eq!(post().await.expect("response").status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(post().await.expect("response").status(), 200);
    let faults: Vec<Vec<String>> = sim.requests().into_iter().map(|r| r.faults).collect();
    assert_eq!(faults[0], ["status"]);
    assert_eq!(faults[1], ["drop"]);
    assert_eq!(faults[2], ["reset"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn expire_tokens_invalidates_every_token() {
    let sim = sim(with_scenario(
        options(5),
        r#"{"faults":[{"endpoint":"stream","request":2,"action":"expire_tokens"}]}"#,
    ))
    .await;
    let first = token(&sim, KEY).await;
    assert_eq!(stream(&sim, &first, "id=0", None).await.status(), 200);
    let response = stream(&sim, &first, "id=0", None).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(stream(&sim, &first, "id=0", None).await.status(), 401);
    let fresh = token(&sim, KEY).await;
    assert_eq!(stream(&sim, &fresh, "id=0", None).await.status(), 200);
    let streams: Vec<RequestRecord> = sim
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == "stream")
        .collect();
    assert_eq!(streams[1].auth, Auth::Expired);
    assert_eq!(streams[1].faults, ["expire_tokens"]);
    assert_eq!(streams[2].auth, Auth::Expired);
    assert_eq!(streams[3].auth, Auth::Valid);
    sim.shutdown().await;
}

/// Opens stream request 1 of a simulator with `faults` and reads it to the end.
async fn faulted(faults: &str, events: usize) -> (SimHandle, Vec<Message>, Ending, Vec<String>) {
    let sim = sim(with_scenario(
        options(events),
        &format!(r#"{{"faults":[{faults}]}}"#),
    ))
    .await;
    let token = token(&sim, KEY).await;
    let mut response = stream(&sim, &token, "id=0", None).await;
    assert_eq!(response.status(), 200);
    let mut splitter = Splitter::default();
    let ending = read(&mut response, &mut splitter, |_| false).await;
    let ids = sim.event_ids("demo");
    (sim, splitter.messages, ending, ids)
}

#[tokio::test]
async fn drop_mid_event_cuts_a_message_in_half() {
    let (sim, messages, ending, ids) = faulted(
        r#"{"endpoint":"stream","request":1,"after_batches":2,"action":"drop_mid_event"}"#,
        50,
    )
    .await;
    assert_eq!(ending, Ending::Error, "chunked body not terminated");
    // Two complete batches, then nothing: the half message never completes.
    assert_eq!(event_ids(&messages), ids[..20]);
    // A retry from the last complete batch gets the rest.
    let token = token(&sim, KEY).await;
    let mut response = stream(&sim, &token, &format!("id={}", ids[19]), None).await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, count_events(30)).await;
    assert_eq!(event_ids(&splitter.messages), ids[20..]);
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_mid_event_leaves_a_partial_message_on_the_wire() {
    let sim = sim(with_scenario(
        options(50),
        r#"{"faults":[{"endpoint":"stream","after_batches":1,"action":"drop_mid_event"}]}"#,
    ))
    .await;
    let token = token(&sim, KEY).await;
    let (_, mut socket, mut body) = raw_stream(&sim, &token).await;
    let _ = raw_read(&mut socket, &mut body, |_| false).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(text.matches("event:events").count(), 2, "{text}");
    assert!(!text.ends_with("0\r\n\r\n"), "no terminating chunk");
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_closes_after_a_complete_message() {
    let (sim, messages, ending, ids) = faulted(
        r#"{"endpoint":"stream","after_batches":3,"action":"drop"}"#,
        50,
    )
    .await;
    assert_eq!(ending, Ending::Error);
    assert_eq!(event_ids(&messages), ids[..30]);
    assert!(
        messages
            .iter()
            .all(|m| m.event != "end" && m.event != "reconnect")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn reset_aborts_the_connection() {
    let sim = sim(with_scenario(
        options(50),
        r#"{"faults":[{"endpoint":"stream","after_batches":1,"action":"reset"}]}"#,
    ))
    .await;
    let token = token(&sim, KEY).await;
    let (_, mut socket, mut body) = raw_stream(&sim, &token).await;
    let outcome = raw_read(&mut socket, &mut body, |_| false).await;
    let error = outcome.expect_err("an RST is an error, not an end of stream");
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
    assert!(contains(&body, b"event:events"));
    sim.shutdown().await;
}

#[tokio::test]
async fn stall_stops_every_byte() {
    let sim = sim(with_scenario(
        SimOptions {
            heartbeat: Duration::from_millis(50),
            ..options(20)
        },
        r#"{"faults":[
            {"endpoint":"stream","request":1,"after_batches":1,"action":"stall"},
            {"endpoint":"stream","request":2,"after_batches":1,"action":"stall","for_ms":400}
        ]}"#,
    ))
    .await;
    let ids = sim.event_ids("demo");
    let token = token(&sim, KEY).await;
    // Until the client goes away: nothing more after the first batch, heartbeats
    // included (a heartbeat is due every 50 ms).
    let mut response = stream(&sim, &token, "id=0", None).await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, count_events(10)).await;
    let silent = tokio::time::timeout(Duration::from_millis(400), response.chunk()).await;
    assert!(
        silent.is_err(),
        "a byte arrived during the stall: {silent:?}"
    );
    drop(response);
    // With for_ms: silence, then the stream carries on.
    let mut response = stream(&sim, &token, "id=0", None).await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, count_events(10)).await;
    let paused = Instant::now();
    read(&mut response, &mut splitter, count_events(20)).await;
    assert!(paused.elapsed() >= Duration::from_millis(250));
    assert_eq!(event_ids(&splitter.messages), ids);
    sim.shutdown().await;
}

#[tokio::test]
async fn reconnect_and_end_close_cleanly() {
    let (sim, messages, ending, ids) = faulted(
        r#"{"endpoint":"stream","after_batches":1,"action":"reconnect","retry_ms":1500}"#,
        30,
    )
    .await;
    assert_eq!(ending, Ending::Eof);
    assert_eq!(event_ids(&messages), ids[..10]);
    let last = messages.last().expect("message");
    assert_eq!(
        (last.event.as_str(), last.retry, last.data.as_deref()),
        ("reconnect", Some(1500), None)
    );
    sim.shutdown().await;

    let (sim, messages, ending, _) = faulted(
        r#"{"endpoint":"stream","after_batches":0,"action":"end","with_data":true}"#,
        30,
    )
    .await;
    assert_eq!(ending, Ending::Eof);
    let last = messages.last().expect("message");
    assert_eq!(
        (last.event.as_str(), last.retry, last.data.as_deref()),
        ("end", None, Some("{}"))
    );
    assert!(event_ids(&messages).is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_json_carries_a_proper_id_and_the_stream_goes_on() {
    let sim = sim(with_scenario(
        options(40),
        r#"{"faults":[{"endpoint":"stream","after_batches":1,"action":"invalid_json"}]}"#,
    ))
    .await;
    let ids = sim.event_ids("demo");
    let token = token(&sim, KEY).await;
    let mut response = stream(&sim, &token, "id=0", None).await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, |m| {
        m.iter().filter(|m| m.event == "events").count() >= 4
    })
    .await;
    let batches: Vec<&Message> = splitter
        .messages
        .iter()
        .filter(|m| m.event == "events")
        .collect();
    assert_eq!(batches[1].id.as_deref(), Some(ids[19].as_str()));
    let data = batches[1].data.as_deref().expect("data");
    assert!(serde_json::from_str::<Value>(data).is_err(), "{data}");
    assert_eq!(batches[2].events()[0]["id"], ids[20]);
    assert_eq!(batches[3].id.as_deref(), Some(ids[39].as_str()));
    sim.shutdown().await;
}

#[tokio::test]
async fn huge_event_replaces_the_next_batchs_first_event() {
    let (sim, messages, _, ids) = faulted(
        r#"{"endpoint":"stream","after_batches":1,"action":"huge_event","bytes":300000},
           {"endpoint":"stream","after_batches":3,"action":"reconnect"}"#,
        40,
    )
    .await;
    let batches: Vec<&Message> = messages.iter().filter(|m| m.event == "events").collect();
    let huge = &batches[1].events()[0];
    assert_eq!(huge["id"], ids[10]);
    assert_eq!(huge["type"], "THREAT");
    assert_eq!(
        huge["threat"]["details"]["url"].as_str().map(str::len),
        Some(300_000)
    );
    assert_eq!(event_ids(&messages), ids[..30]);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Firehose.

#[tokio::test]
async fn firehose_serves_every_event_once_in_order() {
    let sim = sim(SimOptions {
        firehose: true,
        rate: 5,
        batch_size: 100,
        ..options(3000)
    })
    .await;
    let ids = sim.event_ids("demo");
    assert_eq!(ids.len(), 3000);
    let messages = history(&sim, "id=0", 3000).await;
    assert_eq!(event_ids(&messages), ids);
    for message in messages.iter().filter(|m| m.event == "events") {
        assert_eq!(
            message.id.as_deref(),
            message.events().last().expect("e")["id"].as_str()
        );
    }
    // A resume in the middle of a batch.
    let messages = history(&sim, &format!("id={}", ids[149]), 2850).await;
    assert_eq!(event_ids(&messages), ids[150..]);
    // Only heartbeats afterwards: no live events in firehose mode.
    let token = token(&sim, KEY).await;
    let mut response = stream(&sim, &token, &format!("id={}", ids[2999]), None).await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, heartbeats(3)).await;
    assert!(event_ids(&splitter.messages).is_empty());
    assert_eq!(sim.event_ids("demo").len(), 3000);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Request log, TLS, shutdown.

#[tokio::test]
async fn the_request_log_records_shapes_but_no_secrets() {
    let sim = sim(options(20)).await;
    let ids = sim.event_ids("demo");
    let token = token(&sim, KEY).await;
    let mut response = stream(
        &sim,
        &token,
        &format!("types=THREAT%2CDEVICE&id={}", ids[3]),
        Some(&ids[3]),
    )
    .await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, heartbeats(1)).await;
    drop(response);

    let text = client()
        .get(format!("{}/_sim/requests", sim.base_url()))
        .send()
        .await
        .expect("requests")
        .text()
        .await
        .expect("text");
    assert!(
        !text.contains(KEY) && !text.contains(&token),
        "secrets leaked: {text}"
    );
    let records: Vec<RequestRecord> = serde_json::from_str(&text).expect("records");
    assert_eq!(records, sim.requests());
    let raw: Vec<Value> = serde_json::from_str(&text).expect("json");
    for name in [
        "seq",
        "at",
        "tenant",
        "endpoint",
        "status",
        "query",
        "user-agent",
        "accept",
        "cache-control",
        "content-type",
        "last-event-id",
        "auth",
    ] {
        assert!(raw[1].get(name).is_some(), "{name} missing");
    }
    let (token_record, stream_record) = (&records[0], &records[1]);
    assert_eq!((token_record.seq, stream_record.seq), (1, 2));
    assert_eq!(token_record.endpoint, "token");
    assert_eq!(
        token_record.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(token_record.accept.as_deref(), Some("application/json"));
    assert_eq!(token_record.status, 200);
    assert_eq!(stream_record.endpoint, "stream");
    assert_eq!(stream_record.tenant.as_deref(), Some("demo"));
    assert_eq!(stream_record.auth, Auth::Valid);
    assert_eq!(
        stream_record.query.as_deref(),
        Some(format!("types=THREAT%2CDEVICE&id={}", ids[3]).as_str())
    );
    assert_eq!(
        stream_record.user_agent.as_deref(),
        Some(mrav2_syslog_connector::USER_AGENT)
    );
    assert_eq!(stream_record.accept.as_deref(), Some("text/event-stream"));
    assert_eq!(stream_record.cache_control.as_deref(), Some("no-cache"));
    assert_eq!(
        stream_record.last_event_id.as_deref(),
        Some(ids[3].as_str())
    );
    assert_eq!(stream_record.note, None);
    assert!(chrono::DateTime::parse_from_rfc3339(&stream_record.at).is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn https_with_a_given_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("certificate");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let sim = sim(SimOptions {
        tls_cert: Some(cert),
        tls_key: Some(key),
        ..options(15)
    })
    .await;
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("pem"),
        )
        .build()
        .expect("client");
    let body: Value = client
        .post(format!("{}/oauth2/token", sim.base_url()))
        .bearer_auth(KEY)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token over https")
        .json()
        .await
        .expect("json");
    let token = body["access_token"].as_str().expect("token");
    let mut response = client
        .get(format!("{}/mra/stream/v2/events?id=0", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("stream over https");
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, count_events(15)).await;
    assert_eq!(event_ids(&splitter.messages), sim.event_ids("demo"));
    // Plain HTTP to the HTTPS port fails.
    let plain = self::client()
        .get(format!("http://{}/_sim/requests", sim.addr()))
        .send()
        .await;
    assert!(!plain.is_ok_and(|r| r.status().is_success()));
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_frees_the_port() {
    let sim = sim(options(10)).await;
    let addr = sim.addr();
    let token = token(&sim, KEY).await;
    let mut response = stream(&sim, &token, "id=0", None).await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, count_events(10)).await;
    tokio::time::timeout(Duration::from_secs(5), sim.shutdown())
        .await
        .expect("shutdown completes with a stream open");
    let ending = read(&mut response, &mut splitter, |_| false).await;
    assert_ne!(ending, Ending::Done);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn bad_options_are_refused_before_listening() {
    for bad in [
        SimOptions {
            batch_size: 0,
            ..SimOptions::default()
        },
        SimOptions {
            batch_size: 1001,
            ..SimOptions::default()
        },
        SimOptions {
            tenants: BTreeMap::new(),
            ..SimOptions::default()
        },
        SimOptions {
            tls_cert: Some("cert.pem".into()),
            ..SimOptions::default()
        },
        SimOptions {
            types: Vec::new(),
            ..SimOptions::default()
        },
    ] {
        let error = simulator::start(bad).await.expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
    }
}

#[tokio::test]
async fn heartbeats_keep_their_schedule_between_batches() {
    // A live batch every 5 ms; a heartbeat is due every 50 ms regardless.
    let sim = sim(SimOptions {
        heartbeat: Duration::from_millis(50),
        batch_size: 1,
        rate: 200,
        ..options(0)
    })
    .await;
    let token = token(&sim, KEY).await;
    let mut response = stream(&sim, &token, "id=0", None).await;
    let mut splitter = Splitter::default();
    read(&mut response, &mut splitter, count_events(100)).await;
    let messages = &splitter.messages;
    let first_batch = messages
        .iter()
        .position(|m| m.event == "events")
        .expect("batch");
    let between = messages[first_batch..]
        .iter()
        .filter(|m| m.event == "heartbeat")
        .count();
    assert!(between >= 3, "{between} heartbeats among the batches");
    sim.shutdown().await;
}

#[tokio::test]
async fn dropping_the_handle_stops_the_simulator() {
    let sim = sim(options(5)).await;
    let addr = sim.addr();
    drop(sim);
    let deadline = Instant::now() + DEADLINE;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still listening");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
