//! Shared test kit: free ports, polling with deadlines, the real binary.

// A kit: not every test module uses every helper.
#![allow(dead_code)]

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// The real binary, with an empty environment (so a developer's `MRAV2_API_KEY` or
/// proxy variables cannot change the outcome); add variables with `.env(…)`.
#[allow(dead_code)]
pub fn connector() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mrav2-syslog-connector"));
    cmd.env_clear();
    cmd
}

// ---------------------------------------------------------------------------------
// End-to-end kit: the simulator as a process, the connector as a process, a raw HTTP
// client for the simulator's and the connector's endpoints, and readers for what
// rsyslog and the state directory hold. Everything is loopback; every wait polls a
// condition under a deadline.
// ---------------------------------------------------------------------------------

/// How often the e2e helpers look again.
pub const TICK: Duration = Duration::from_millis(20);

/// Generous: two shared CPUs, debug builds, rsyslog and the simulator in the same box.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The `simulate` subcommand of the real binary, on a free loopback port.
pub struct Sim {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Sim {
    /// `simulate --listen 127.0.0.1:0 ARGS…`; waits for `listening on http://ADDR`.
    pub fn start(args: &[&str]) -> Sim {
        Sim::start_with_scenario(None, args)
    }

    /// The same with a scenario file holding `scenario` (JSON,
    /// `docs/event-stream.md#scenario-file`).
    pub fn start_with_scenario(scenario: Option<&str>, args: &[&str]) -> Sim {
        Sim::start_at("127.0.0.1:0", scenario, args)
    }

    /// The same on a chosen address (e.g. where a stopped simulator was).
    pub fn start_at(listen: &str, scenario: Option<&str>, args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().expect("temporary directory");
        let stderr = std::fs::File::create(dir.path().join("sim.stderr")).expect("stderr file");
        let mut cmd = connector();
        cmd.args(["simulate", "--listen", listen]).args(args);
        if let Some(text) = scenario {
            let path = dir.path().join("scenario.json");
            std::fs::write(&path, text).expect("write scenario");
            cmd.arg("--scenario").arg(&path);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn the simulator");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = tx.send(first);
            // Keep draining so the simulator never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let first = rx.recv_timeout(PATIENCE).unwrap_or_default();
        let addr = first
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the simulator did not announce `listening on http://ADDR` (got {first:?}):\n{}",
                std::fs::read_to_string(dir.path().join("sim.stderr")).unwrap_or_default()
            );
        };
        Sim { child, addr, dir }
    }

    /// `http://ADDR`, for `api_domain`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /_sim/requests`.
    pub fn requests(&self) -> Vec<Value> {
        let (status, body) = http_get(self.addr, "/_sim/requests").expect("GET /_sim/requests");
        assert_eq!(status, 200, "/_sim/requests: {body}");
        serde_json::from_str(&body).expect("/_sim/requests is a JSON array")
    }

    /// The stream requests of `tenant`, in order.
    pub fn stream_requests(&self, tenant: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["endpoint"] == "stream" && r["tenant"] == tenant)
            .collect()
    }

    /// `GET /_sim/events?tenant=NAME`: every id generated so far, in order.
    pub fn event_ids(&self, tenant: &str) -> Vec<String> {
        let (status, body) = http_get(self.addr, &format!("/_sim/events?tenant={tenant}"))
            .expect("GET /_sim/events");
        assert_eq!(status, 200, "/_sim/events?tenant={tenant}: {body}");
        serde_json::from_str(&body).expect("/_sim/events is a JSON array of ids")
    }

    /// A token request of our own with `key` (`docs/event-stream.md#token-endpoint`): the
    /// access token.
    pub fn fetch_token(&self, key: &str) -> String {
        let (status, body) = http_request(
            self.addr,
            "POST",
            "/oauth2/token",
            &[
                ("Authorization", &format!("Bearer {key}")),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", "application/json"),
            ],
            b"grant_type=client_credentials",
        )
        .expect("POST /oauth2/token");
        assert_eq!(status, 200, "token request: {body}");
        let json: Value = serde_json::from_str(&body).expect("token response is JSON");
        json["access_token"]
            .as_str()
            .expect("access_token is a string")
            .to_string()
    }

    /// What the simulator wrote to stderr (for failure messages).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sim.stderr")).unwrap_or_default()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The query parameters of a `/_sim/requests` entry, decoded.
pub fn query_params(request: &Value) -> HashMap<String, String> {
    let query = request["query"].as_str().unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// A plain `GET` over a fresh connection; `(status, body)`.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, &[], b"")
}

/// One HTTP/1.1 request with `Connection: close`; `(status, body)`, chunked bodies
/// decoded. Enough for the simulator's and the connector's small JSON/text answers.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of the response head"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut payload = raw[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        payload = dechunk(&payload);
    }
    Ok((status, String::from_utf8_lossy(&payload).into_owned()))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = data.get(end + 2..).unwrap_or_default();
    }
    out
}

/// A free loopback TCP port (bound, then released), e.g. for `metrics_listen`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Writes `text` as a config file (mode 0600, so no permission warning) at `path`.
pub fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write config");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod config");
}

/// A running connector process: its own log and stderr are kept in files.
pub struct Running {
    child: Option<Child>,
    pid: i32,
    stderr: PathBuf,
    log: Option<PathBuf>,
}

impl Running {
    /// Spawns the real binary with `args`; stderr goes to `stderr` (appended).
    pub fn spawn(args: &[&std::ffi::OsStr], stderr: &Path, log: Option<&Path>) -> Running {
        Running::spawn_with_env(args, &[], stderr, log)
    }

    /// The same with extra environment variables.
    pub fn spawn_with_env(
        args: &[&std::ffi::OsStr],
        env: &[(&str, &std::ffi::OsStr)],
        stderr: &Path,
        log: Option<&Path>,
    ) -> Running {
        let mut cmd = connector();
        cmd.args(args);
        for (name, value) in env {
            cmd.env(name, value);
        }
        Running::spawn_command(cmd, stderr, log)
    }

    /// Spawns `cmd` (e.g. the binary under a wrapper); stdout and stderr go to `stderr`.
    pub fn spawn_command(mut cmd: Command, stderr: &Path, log: Option<&Path>) -> Running {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(stderr)
            .expect("stderr file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone file handle"))
            .stderr(file)
            .spawn()
            .expect("spawn the connector");
        let pid = i32::try_from(child.id()).expect("pid fits i32");
        Running {
            child: Some(child),
            pid,
            stderr: stderr.to_path_buf(),
            log: log.map(Path::to_path_buf),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid), signal).expect("signal the connector");
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits up to `within` for the exit; `None` if it is still running.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// SIGKILL, and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default()).into_owned()
    }

    /// Its stderr and its log file so far (for failure messages and log assertions).
    pub fn output(&self) -> String {
        let log = self
            .log
            .as_ref()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned())
            .unwrap_or_default();
        format!("{}{log}", self.stderr())
    }

    /// SIGTERM, then waits for a clean exit; fails the test otherwise.
    pub async fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        self.signal(Signal::SIGTERM);
        let status = self.wait_exit(Duration::from_secs(10)).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "the connector did not stop cleanly after SIGTERM ({status:?}):\n{}",
            self.output()
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `condition` until it holds; fails the test with `what` after `within`.
pub async fn eventually(
    what: impl Fn() -> String,
    within: Duration,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?}: {}",
            what()
        );
        tokio::time::sleep(TICK).await;
    }
}

/// One record as rsyslog wrote it (`%rawmsg%`), with what the tests look at.
#[derive(Debug, Clone)]
pub struct Received {
    /// The syslog header up to `LEEF:` (PRI, time, HOSTNAME, TAG).
    pub header: String,
    /// `lookoutId`.
    pub id: String,
    /// `lookoutEntName`.
    pub tenant: String,
}

/// Every complete LEEF record in `file` (an rsyslog `exact` output) whose `lookoutId`
/// is a whole UUID; a record cut by a killed sender may lack it and is skipped.
pub fn received(file: &Path) -> Vec<Received> {
    let bytes = std::fs::read(file).unwrap_or_default();
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..complete])
        .lines()
        .filter_map(|line| {
            let at = line.find("LEEF:")?;
            let attr = |key: &str| {
                line.split('\t')
                    .find_map(|a| a.strip_prefix(key))
                    .map(str::to_string)
            };
            let id = attr("lookoutId=")?;
            (id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then(|| {
                Received {
                    header: line[..at].to_string(),
                    id,
                    tenant: attr("lookoutEntName=").unwrap_or_default(),
                }
            })
        })
        .collect()
}

/// The ids in `file`, in arrival order (repeats kept).
pub fn received_ids(file: &Path) -> Vec<String> {
    received(file).into_iter().map(|r| r.id).collect()
}

/// The state file of `entity` in `state_dir`, parsed; `None` while it does not exist.
pub fn saved_state(state_dir: &Path, entity: &str) -> Option<Value> {
    let text = std::fs::read_to_string(state_dir.join(format!("{entity}.position.json"))).ok()?;
    Some(
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{entity}.position.json is not JSON ({e}): {text:?}")),
    )
}

/// The saved position of `entity`, if any.
pub fn saved_position(state_dir: &Path, entity: &str) -> Option<String> {
    saved_state(state_dir, entity).map(|s| {
        s["position"]
            .as_str()
            .expect("the state file's position is a string")
            .to_string()
    })
}

/// A deterministic generator for "random" moments (splitmix64): a failing run can be
/// repeated exactly.
pub struct Seeded(pub u64);

impl Seeded {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[low, high)` milliseconds.
    pub fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next_u64() % (high - low))
    }
}

pub use connect_proxy::{ConnectProxy, base64};

/// A small HTTP CONNECT proxy on loopback for the proxy tests: it records what passed
/// (method, target, `Proxy-Authorization`), answers 407 when credentials are required
/// and wrong, and otherwise tunnels bytes both ways.
mod connect_proxy {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// One request head the proxy received.
    #[derive(Debug, Clone)]
    pub struct ProxyRequest {
        pub method: String,
        pub target: String,
        pub proxy_authorization: Option<String>,
    }

    /// A running proxy.
    pub struct ConnectProxy {
        pub addr: SocketAddr,
        log: Arc<Mutex<Vec<ProxyRequest>>>,
    }

    impl ConnectProxy {
        /// Starts a proxy; with `credentials`, only `Basic user:password` passes.
        pub async fn start(credentials: Option<(&str, &str)>) -> ConnectProxy {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let log = Arc::new(Mutex::new(Vec::new()));
            let expected = credentials
                .map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes())));
            let task_log = Arc::clone(&log);
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let log = Arc::clone(&task_log);
                    let expected = expected.clone();
                    tokio::spawn(async move {
                        let _ = serve(client, log, expected).await;
                    });
                }
            });
            ConnectProxy { addr, log }
        }

        /// `http://127.0.0.1:<port>`.
        pub fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        /// Every request head received so far.
        pub fn requests(&self) -> Vec<ProxyRequest> {
            self.log.lock().unwrap().clone()
        }
    }

    async fn serve(
        mut client: TcpStream,
        log: Arc<Mutex<Vec<ProxyRequest>>>,
        expected: Option<String>,
    ) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = client.read(&mut buf).await?;
            if n == 0 || head.len() > 16 * 1024 {
                return Ok(());
            }
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or_default();
        let mut parts = first.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let proxy_authorization = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("proxy-authorization"))
            .map(|(_, v)| v.trim().to_string());
        log.lock().unwrap().push(ProxyRequest {
            method: method.clone(),
            target: target.clone(),
            proxy_authorization: proxy_authorization.clone(),
        });
        if expected.is_some() && proxy_authorization != expected {
            client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
                )
                .await?;
            return Ok(());
        }
        if method != "CONNECT" {
            client
                .write_all(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Ok(());
        }
        let Ok(mut upstream) = TcpStream::connect(&target).await else {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Ok(());
        };
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        Ok(())
    }

    /// Standard base64 with padding (enough for a Basic credential).
    pub fn base64(input: &[u8]) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
