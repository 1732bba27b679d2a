//! A server that is not on our side (issue 12, items 5 and 7): it echoes the request
//! headers (the application key, the access token, the proxy's `user:password`) in
//! error bodies and OAuth `error_description`, forges log lines with CR/LF and sends
//! terminal escapes, redirects the stream to another origin, and sends a huge token
//! response. The real binary against a scriptable loopback HTTP server.

use crate::fixture::Setup;
use crate::kit::{PATIENCE, base64, free_port, http_get};
use crate::receiver::RawTcpListener;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// A key with characters that percent-encoding changes.
const KEY: &str = "k3y/Hostile+Echo=9f2c41d7e0b8";
const PROXY_USER: &str = "proxyuser-77ab";
const PROXY_PASSWORD: &str = "pr0xy/Pass+w0rd-e41d";
/// The access token the script hands out.
const TOKEN: &str = "tok-Hostile-5be1c09a77d3f4e2";
/// A log line a body tries to forge.
const FORGED: &str = "2026-12-06T00:00:00.000000Z  INFO forged line";

/// One request as the script sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub target: String,
    pub head: String,
}

impl Request {
    fn is_token(&self) -> bool {
        self.target.contains("/oauth2/token")
    }
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// What the script answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// `(bytes, times)`: the body is `bytes` repeated `times` times.
    pub body: (Vec<u8>, usize),
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: (body.into(), 1),
        }
    }
}

type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// A scripted HTTP/1.1 server on loopback: one reply per connection.
pub struct Scripted {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl Scripted {
    pub async fn start(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let count = Arc::new(AtomicUsize::new(0));
        let log = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, log, count) = (handler.clone(), log.clone(), count.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &*handler, &log, &count).await;
                });
            }
        });
        Scripted { addr, requests }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<Request>>,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let request = Request {
        target: text.split(' ').nth(1).unwrap_or_default().to_string(),
        head: text.clone(),
    };
    // Read (and ignore) a request body.
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut have = head.len() - end - 4;
    while have < length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    log.lock().unwrap().push(request.clone());
    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
    let reply = handler(&request, n);
    let (chunk, times) = &reply.body;
    let mut out = format!(
        "HTTP/1.1 {} Scripted\r\nConnection: close\r\nContent-Length: {}\r\n",
        reply.status,
        chunk.len() * times
    );
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).await?;
    for _ in 0..*times {
        stream.write_all(chunk).await?;
    }
    stream.shutdown().await?;
    // Wait for the client to close, so the body is not cut by a reset.
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    Ok(())
}

/// The head of `request` as a hostile server would echo it: the secret-bearing
/// headers first, then the head percent-encoded (as in a redirect URL), then a forged
/// log line, terminal escapes and a long tail.
fn echo(request: &Request) -> String {
    let mut out = String::new();
    for name in ["authorization", "proxy-authorization"] {
        if let Some(v) = request.header(name) {
            out.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    let encoded: String = url::form_urlencoded::byte_serialize(request.head.as_bytes()).collect();
    out.push_str(&encoded);
    out.push_str(&format!("\r\n{FORGED}\n\x1b[2J\x1b]0;owned\x07"));
    out.push_str(&"x".repeat(100_000));
    out
}

fn token_ok() -> Reply {
    Reply::new(
        200,
        "application/json",
        format!(r#"{{"access_token":"{TOKEN}","token_type":"Bearer","expires_in":3600}}"#),
    )
}

/// Every form in which a secret of this module could leak.
fn leaked_forms() -> Vec<(String, &'static str)> {
    let mut forms = Vec::new();
    for (secret, what) in [
        (KEY.to_string(), "the application key"),
        (PROXY_PASSWORD.to_string(), "the proxy password"),
        (TOKEN.to_string(), "the access token"),
        (
            base64(format!("{PROXY_USER}:{PROXY_PASSWORD}").as_bytes()),
            "base64 of the proxy user:password",
        ),
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        forms.push((encoded, what));
        forms.push((secret, what));
    }
    forms
}

/// Fails the test if `output` holds a secret, an escape byte, a forged line or an
/// unbounded line.
fn assert_clean(what: &str, output: &str) {
    for (form, secret) in leaked_forms() {
        assert!(
            !output.contains(&form),
            "{what} shows {secret} ({form:?}):\n{output}"
        );
    }
    assert!(
        !output.contains('\x1b') && !output.contains('\x07'),
        "{what} holds a raw terminal escape:\n{output:?}"
    );
    for line in output.lines() {
        assert!(
            !line.starts_with(FORGED),
            "{what} holds a forged log line:\n{output}"
        );
        assert!(
            line.len() <= 8 * 1024,
            "{what} holds a line of {} bytes: server text is not bounded",
            line.len()
        );
    }
}

/// `[lookout]` at `api` through the script as an HTTP proxy with credentials.
fn config(proxy: &Scripted, metrics: &str) -> String {
    format!(
        "[lookout]\nentity_name = acme\napi_domain = http://api.hostile.test\napi_key = {KEY}\n\
         sse_timeout = 5\n\n[syslog]\nprotocol = stdout\n\n\
         [proxy]\naddress = {}\nusername = {PROXY_USER}\npassword = {PROXY_PASSWORD}\n\n\
         [connector]\nmetrics_listen = {metrics}\n",
        proxy.url()
    )
}

/// Runs the connector (`-v`) against `server` until its log shows `until`, reads
/// `/health` meanwhile, stops it; then runs `check-config --probe`. Everything each
/// printed or served must be clean.
async fn run_against(name: &str, server: &Scripted, until: &str) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let setup = Setup::new(&config(server, &metrics));
    let log = setup.path("connector.log");
    let mut running = setup.spawn(
        &[OsStr::new("--log-file"), log.as_os_str(), OsStr::new("-v")],
        "connector.stderr",
        Some(&log),
    );
    crate::kit::eventually(
        || format!("{name}: no {until:?} in the log:\n{}", running.output()),
        PATIENCE,
        || running.output().contains(until),
    )
    .await;
    let (_, health) = http_get(metrics.parse().unwrap(), "/health").expect("GET /health");
    running.stop().await;
    assert!(
        !server.requests().is_empty(),
        "{name}: the connector never reached the server"
    );
    assert_clean(&format!("{name}: the log"), &running.output());
    assert_clean(&format!("{name}: /health"), &health);
    let probe = crate::kit::connector()
        .arg("check-config")
        .arg("--probe")
        .arg("--config")
        .arg(setup.config())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&probe.stdout),
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(
        said.contains("FAILED"),
        "{name}: the probe must fail:\n{said}"
    );
    assert_clean(&format!("{name}: check-config --probe"), &said);
}

/// Item 5: OAuth `error_description` echoing the request.
#[tokio::test]
async fn an_echoed_oauth_error_description_is_filtered() {
    let server = Scripted::start(|r, _| {
        let body = serde_json::json!({"error": "invalid_request", "error_description": echo(r)});
        Reply::new(400, "application/json", body.to_string())
    })
    .await;
    run_against("error_description", &server, "stream reconnect").await;
}

/// Item 5: a proxy error page (HTML) echoing the request, on the token request.
#[tokio::test]
async fn an_echoing_proxy_error_page_is_filtered() {
    let server = Scripted::start(|r, _| Reply::new(502, "text/html", echo(r))).await;
    run_against("proxy page", &server, "stream reconnect").await;
}

/// Item 5: the stream answers an error body and then a non-event-stream body, each
/// echoing the request (with the access token in it).
#[tokio::test]
async fn echoed_stream_bodies_are_filtered() {
    let server = Scripted::start(|r, n| {
        if r.is_token() {
            token_ok()
        } else if n % 2 == 0 {
            Reply::new(500, "text/plain", echo(r))
        } else {
            Reply::new(200, "text/html", echo(r))
        }
    })
    .await;
    run_against("stream bodies", &server, "not text/event-stream").await;
}

/// Item 5: `status` prints a saved position that came from outside; an escape in it
/// must not reach the terminal raw.
#[tokio::test]
async fn status_escapes_a_saved_position() {
    let setup = Setup::new(
        "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = k\n\n\
         [syslog]\nprotocol = stdout\n",
    );
    std::fs::create_dir_all(setup.state()).unwrap();
    std::fs::write(
        setup.state().join("acme.position.json"),
        "{\"entity_name\":\"acme\",\"position\":\"abc\\u001b[2J\\u0007\\nforged: line\",\"saved_at\":\"2026-11-22T12:00:00Z\",\"delivered\":1}\n",
    )
    .unwrap();
    let out = crate::kit::connector()
        .arg("status")
        .arg("--config")
        .arg(setup.config())
        .arg("--state-dir")
        .arg(setup.state())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !said.contains('\x1b') && !said.contains('\x07'),
        "status printed a raw escape: {said:?}"
    );
    assert!(
        !said.lines().any(|l| l.starts_with("forged")),
        "status printed a forged line: {said}"
    );
}

/// Item 7: a redirect from the stream URL to another origin is not followed, so what
/// that origin serves never reaches the destination; a redirect within the origin
/// still is.
#[tokio::test]
async fn a_cross_origin_redirect_of_the_stream_is_not_followed() {
    let evil_event = r#"{"events":[{"id":"0190ec04-a5f0-731e-bb68-00000000e111","type":"THREAT","created_time":"2026-11-22T12:00:00.000+00:00","threat":{"severity":"LOW","details":{"note":"from-the-other-origin"}}}]}"#;
    let evil = Scripted::start(move |_, _| {
        Reply::new(
            200,
            "text/event-stream",
            format!(
                "id: 0190ec04-a5f0-731e-bb68-00000000e111\nevent: events\ndata: {evil_event}\n\n"
            ),
        )
    })
    .await;
    let evil_url = evil.url();
    let api = Scripted::start(move |r, _| {
        if r.is_token() {
            token_ok()
        } else if r.target.starts_with("/same-origin") {
            let own = r#"{"events":[{"id":"0190ec04-a5f0-731e-bb68-00000000a001","type":"THREAT","created_time":"2026-11-22T12:00:00.000+00:00","threat":{"severity":"LOW","details":{"note":"from-the-api"}}}]}"#;
            Reply::new(
                200,
                "text/event-stream",
                format!("id: 0190ec04-a5f0-731e-bb68-00000000a001\nevent: events\ndata: {own}\n\n"),
            )
        } else if r.target.contains("id=0190ec04-a5f0-731e-bb68-00000000a001") {
            // After the same-origin events: away to the other origin.
            let mut reply = Reply::new(302, "text/plain", "");
            reply
                .headers
                .push(("Location".into(), format!("{evil_url}/mra/stream/v2/events")));
            reply
        } else {
            let mut reply = Reply::new(302, "text/plain", "");
            reply
                .headers
                .push(("Location".into(), "/same-origin/stream".into()));
            reply
        }
    })
    .await;
    let listener = RawTcpListener::start().await;
    let setup = Setup::new(&format!(
        "[lookout]\nentity_name = acme\napi_domain = {}\napi_key = {KEY}\nsse_timeout = 5\n\n\
         [syslog]\nhost = 127.0.0.1\nprotocol = tcp\nport = {}\n\n[connector]\ncommit_interval_ms = 200\n",
        api.url(),
        listener.port()
    ));
    let log = setup.path("connector.log");
    let mut running = setup.spawn(
        &[OsStr::new("--log-file"), log.as_os_str()],
        "connector.stderr",
        Some(&log),
    );
    let received = || String::from_utf8_lossy(&listener.received()).into_owned();
    crate::kit::eventually(
        || {
            format!(
                "the same-origin redirect was not followed:\n{}",
                running.output()
            )
        },
        PATIENCE,
        || received().contains("00000000a001"),
    )
    .await;
    // Several reconnects to the redirecting URL.
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await;
    assert!(
        !received().contains("00000000e111"),
        "events of another origin were forwarded as the tenant's:\n{}",
        received()
    );
    assert!(
        evil.requests().is_empty(),
        "the stream request followed a redirect to another origin: {:?}",
        evil.requests()
    );
    assert!(
        running.output().contains("redirect"),
        "the log says why: {}",
        running.output()
    );
}

/// Item 7: a token response of 200 MB is not read whole: the connector stops reading
/// at its bound and says so; its memory never approaches the body's size.
#[tokio::test]
async fn a_huge_token_response_is_not_read_whole() {
    let server = Scripted::start(|r, _| {
        if r.is_token() {
            // Whitespace is valid JSON padding: read whole, this parses.
            let mut reply = Reply::new(200, "application/json", vec![b' '; 1 << 20]);
            reply.body.1 = 200;
            reply
        } else {
            Reply::new(500, "text/plain", "no")
        }
    })
    .await;
    let setup = Setup::new(&format!(
        "[lookout]\nentity_name = acme\napi_domain = {}\napi_key = {KEY}\n\n[syslog]\nprotocol = stdout\n",
        server.url()
    ));
    let log = setup.path("connector.log");
    let mut running = setup.spawn(
        &[OsStr::new("--log-file"), log.as_os_str()],
        "connector.stderr",
        Some(&log),
    );
    let pid = running.pid();
    crate::kit::eventually(
        || format!("no token failure logged:\n{}", running.output()),
        PATIENCE,
        || running.output().contains("stream reconnect"),
    )
    .await;
    // Let it try more than once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    running.stop().await;
    assert!(
        peak_kb < 100 * 1024,
        "peak memory {peak_kb} kB: the token response was read whole"
    );
    assert!(
        running.output().contains("larger than"),
        "the log names the bound:\n{}",
        running.output()
    );
}
