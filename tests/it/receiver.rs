//! Receivers for sink tests: a real `rsyslogd`
//! (`docs/receivers/rsyslog.md#rsyslog-in-the-test-suite`) with UDP, TCP, TLS and
//! mutual-TLS listeners on free loopback ports, certificates made at test time, and raw
//! TCP/UDP listeners that keep the exact bytes they get (for framing assertions, which
//! rsyslog cannot make: it accepts either framing on one port).
//!
//! [`Rsyslog::start_relp`] starts an rsyslog with `imrelp` inputs instead (plain, TLS
//! with a server certificate, TLS requiring a client certificate) and one plain `imtcp`
//! input, with rsyslog's default message size, as an operator would run it.
//!
//! A test that needs rsyslog FAILS when `rsyslogd` is not installed; it never passes by
//! skipping.

// A kit: not every test module uses every helper.
#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often the polling helpers look again.
const POLL: Duration = Duration::from_millis(20);

/// PEM files made for one test run: a CA, a server certificate for `localhost` and
/// `127.0.0.1`, a client certificate for mutual TLS, and an unrelated CA.
#[derive(Debug, Clone)]
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing here: trusting only it must fail.
    pub other_ca: PathBuf,
}

/// A running (or stopped) `rsyslogd` with its own directory, config and ports.
pub struct Rsyslog {
    dir: tempfile::TempDir,
    pub certs: Certs,
    pub udp_port: u16,
    pub tcp_port: u16,
    /// TLS, server certificate only (`authMode="anon"`).
    pub tls_port: u16,
    /// TLS requiring a client certificate signed by the CA (`x509/certvalid`).
    pub mtls_port: u16,
    /// The `imrelp` inputs, when started with [`Rsyslog::start_relp`].
    pub relp: Option<RelpPorts>,
    /// TCP ports that must be listening before the daemon counts as up.
    tcp_ports: Vec<u16>,
    /// The UDP port that must be bound too, if any.
    udp_wait: Option<u16>,
    conf: PathBuf,
    pid_file: PathBuf,
    child: Option<Child>,
}

/// The `imrelp` inputs of [`Rsyslog::start_relp`]; each writes `relp.log`,
/// `relp-tls.log` or `relp-mtls.log` (`%rawmsg%` and LF per record).
#[derive(Debug, Clone, Copy)]
pub struct RelpPorts {
    /// Plain RELP.
    pub plain: u16,
    /// RELP over TLS with the server certificate and no `tls.authMode`. With imrelp's
    /// default TLS library (GnuTLS) this input refuses every client, with or without a
    /// certificate; with `tls.tlslib="openssl"` it asks for none.
    pub tls: u16,
    /// RELP over TLS requiring a client certificate signed by the CA
    /// (`tls.authMode="certvalid"`).
    pub mtls: u16,
}

/// A TCP listener that records every byte of every connection.
pub struct RawTcpListener {
    port: u16,
    state: Arc<Mutex<RawTcpState>>,
    accept_task: JoinHandle<()>,
}

/// A UDP socket that records every datagram.
pub struct RawUdpListener {
    port: u16,
    datagrams: Arc<Mutex<Vec<Vec<u8>>>>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct RawTcpState {
    accepts: usize,
    /// Bytes per connection, in accept order.
    received: Vec<Arc<Mutex<Vec<u8>>>>,
    /// Per open connection: a trigger that closes it, and its reading task.
    connections: Vec<(tokio::sync::oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Certs {
    /// Generates the certificates into `dir`.
    pub fn generate(dir: &Path) -> Certs {
        let ca = new_ca("mrav2 test CA");
        let other = new_ca("mrav2 other CA");

        let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("valid subject alt names");
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().expect("key generation");
        let server_cert = server
            .signed_by(&server_key, &ca)
            .expect("CA signs the server certificate");

        let mut client = CertificateParams::new(Vec::<String>::new()).expect("no names is valid");
        client
            .distinguished_name
            .push(DnType::CommonName, "mrav2 test client");
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().expect("key generation");
        let client_cert = client
            .signed_by(&client_key, &ca)
            .expect("CA signs the client certificate");

        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write a PEM file");
            path
        };
        Certs {
            ca: write("ca.pem", ca.pem()),
            server_cert: write("server.pem", server_cert.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            client_cert: write("client.pem", client_cert.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
            other_ca: write("other-ca.pem", other.pem()),
        }
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names is valid");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("key generation");
    CertifiedIssuer::self_signed(params, key).expect("self-signed CA")
}

impl Rsyslog {
    /// Writes certificates and a config for free ports, starts `rsyslogd` and waits
    /// until all four listeners are bound. Panics (the test fails) if rsyslog is not
    /// installed or does not come up.
    pub async fn start() -> Rsyslog {
        let binary = rsyslogd();
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir_all(dir.path().join("work")).expect("work directory");
        let certs = Certs::generate(dir.path());
        let [tcp_port, tls_port, mtls_port] = free_tcp_ports();
        let udp_port = free_udp_port();
        let conf = dir.path().join("receiver.conf");
        std::fs::write(
            &conf,
            config(dir.path(), &certs, udp_port, tcp_port, tls_port, mtls_port),
        )
        .expect("write receiver.conf");

        let check = Command::new(&binary)
            .args(["-N1", "-f"])
            .arg(&conf)
            .output()
            .expect("run rsyslogd -N1");
        assert!(
            check.status.success(),
            "rsyslogd rejects the test config ({}); is rsyslog-gnutls installed? \
             (run the suite with scripts/test.sh, which installs them)\n{}{}",
            check.status,
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr),
        );

        let mut rsyslog = Rsyslog {
            pid_file: dir.path().join("receiver.pid"),
            dir,
            certs,
            udp_port,
            tcp_port,
            tls_port,
            mtls_port,
            relp: None,
            tcp_ports: vec![tcp_port, tls_port, mtls_port],
            udp_wait: Some(udp_port),
            conf,
            child: None,
        };
        rsyslog.start_again().await;
        rsyslog
    }

    /// Like [`Rsyslog::start`], but with three `imrelp` inputs ([`RelpPorts`]) and one
    /// plain `imtcp` input (`tcp_port`, writing `tcp.log`), and rsyslog's default
    /// message size (8096 bytes, which is also `imrelp`'s default `maxDataSize`).
    /// `tls_port`, `mtls_port` and `udp_port` are 0: those inputs are not there.
    pub async fn start_relp() -> Rsyslog {
        Rsyslog::start_relp_with(None).await
    }

    /// [`Rsyslog::start_relp`] with imrelp's `tls.tlslib="openssl"`, under which an
    /// input without `tls.authMode` takes clients without a certificate.
    pub async fn start_relp_openssl() -> Rsyslog {
        Rsyslog::start_relp_with(Some("openssl")).await
    }

    async fn start_relp_with(tls_lib: Option<&str>) -> Rsyslog {
        let binary = rsyslogd();
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir_all(dir.path().join("work")).expect("work directory");
        let certs = Certs::generate(dir.path());
        let [tcp_port, plain, tls, mtls] = free_tcp_ports();
        let relp = RelpPorts { plain, tls, mtls };
        let conf = dir.path().join("receiver.conf");
        std::fs::write(
            &conf,
            relp_config(dir.path(), &certs, tcp_port, relp, tls_lib),
        )
        .expect("write receiver.conf");
        let check = Command::new(&binary)
            .args(["-N1", "-f"])
            .arg(&conf)
            .output()
            .expect("run rsyslogd -N1");
        assert!(
            check.status.success(),
            "rsyslogd rejects the relp test config ({}); is rsyslog-relp installed? \
             (apt-get install -y rsyslog rsyslog-relp; .ci/run installs it)\n{}{}",
            check.status,
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr),
        );
        let mut rsyslog = Rsyslog {
            pid_file: dir.path().join("receiver.pid"),
            dir,
            certs,
            udp_port: 0,
            tcp_port,
            tls_port: 0,
            mtls_port: 0,
            relp: Some(relp),
            tcp_ports: vec![tcp_port, plain, tls, mtls],
            udp_wait: None,
            conf,
            child: None,
        };
        rsyslog.start_again().await;
        rsyslog
    }

    /// The `imrelp` ports; panics unless started with [`Rsyslog::start_relp`].
    pub fn relp(&self) -> RelpPorts {
        self.relp
            .expect("this rsyslog was started without relp inputs (use Rsyslog::start_relp)")
    }

    /// Freezes the daemon (SIGSTOP) and waits until every thread of it stopped:
    /// connections stay open, nothing is read or answered.
    pub async fn pause(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
        let Some(child) = &self.child else {
            return;
        };
        let tasks = PathBuf::from(format!("/proc/{}/task", child.id()));
        wait_until(
            "every rsyslogd thread is stopped",
            Duration::from_secs(10),
            || {
                std::fs::read_dir(&tasks).is_ok_and(|entries| {
                    entries.flatten().all(|task| {
                        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                            // The state follows the ")" that ends the command name.
                            stat.rsplit_once(')')
                                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
                        })
                    })
                })
            },
        )
        .await;
    }

    /// Lets a frozen daemon run again (SIGCONT).
    pub fn resume(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    /// Kills the daemon at once (SIGKILL), as a crash would, and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(child) = &self.child {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
            nix::sys::signal::kill(pid, signal).expect("signal rsyslogd");
        }
    }

    /// Starts the stopped daemon again on the same ports and config.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "rsyslogd is already running");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("rsyslogd.stderr"))
            .expect("stderr file");
        let child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(&self.pid_file)
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().expect("clone file handle"))
            .stderr(stderr)
            .spawn()
            .expect("spawn rsyslogd");
        self.child = Some(child);

        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let tcp = self
                .tcp_ports
                .iter()
                .all(|&p| listening("/proc/net/tcp", p, true));
            if tcp
                && self
                    .udp_wait
                    .is_none_or(|p| listening("/proc/net/udp", p, false))
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!(
                    "rsyslogd exited during start-up ({status}):\n{}",
                    self.read("rsyslogd.stderr")
                );
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not bind its ports within 15 s:\n{}",
                self.read("rsyslogd.stderr")
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops the daemon with SIGTERM (as an operator would) and waits until it exited.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops and starts again on the same ports.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// A file in the receiver's directory: `udp.log`, `tcp.log`, `tls.log`,
    /// `mtls.log`, `all.jsonl`, `internal.log` and `rsyslogd.stderr`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// rsyslog's own messages (errors such as a TLS session ended without
    /// close_notify): its standard error and `internal.log`.
    pub fn own_messages(&self) -> String {
        self.read("rsyslogd.stderr") + &self.read("internal.log")
    }

    /// The content of such a file, empty if it does not exist yet.
    pub fn read(&self, name: &str) -> String {
        String::from_utf8_lossy(&std::fs::read(self.path(name)).unwrap_or_default()).into_owned()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The receiver config of `docs/receivers/rsyslog.md#rsyslog-in-the-test-suite`: UDP,
/// TCP, TLS and mutual-TLS inputs, each writing exact records, and a file for
/// rsyslog's own messages.
fn config(dir: &Path, certs: &Certs, udp: u16, tcp: u16, tls: u16, mtls: u16) -> String {
    let d = dir.display();
    let (ca, cert, key) = (
        certs.ca.display(),
        certs.server_cert.display(),
        certs.server_key.display(),
    );
    format!(
        r#"global(
  workDirectory="{d}/work"
  maxMessageSize="64k"
  parser.escapeControlCharactersOnReceive="off"
  defaultNetstreamDriverCAFile="{ca}"
  defaultNetstreamDriverCertFile="{cert}"
  defaultNetstreamDriverKeyFile="{key}"
)
module(load="imudp")
# rsyslog's default of 200 sessions is too few for the many-tenants test.
module(load="imtcp" maxSessions="4000")

template(name="exact" type="string" string="%rawmsg%\n")
template(name="jsonl" type="string" string="{{\"input\":\"%inputname%\",\"msg\":\"%rawmsg:::json%\"}}\n")
# When each record arrived (microseconds), for the rate-limit tests.
template(name="timed" type="string" string="%timegenerated:::date-rfc3339% %rawmsg%\n")

# rsyslog's own messages (TLS errors and the like) go to the default ruleset.
action(type="omfile" file="{d}/internal.log")

ruleset(name="udp_in") {{
  action(type="omfile" file="{d}/udp.log" template="exact")
  action(type="omfile" file="{d}/all.jsonl" template="jsonl")
}}
ruleset(name="tcp_in") {{
  action(type="omfile" file="{d}/tcp.log" template="exact")
  action(type="omfile" file="{d}/tcp-timed.log" template="timed")
  action(type="omfile" file="{d}/all.jsonl" template="jsonl")
}}
ruleset(name="tls_in") {{
  action(type="omfile" file="{d}/tls.log" template="exact")
  action(type="omfile" file="{d}/all.jsonl" template="jsonl")
}}
ruleset(name="mtls_in") {{
  action(type="omfile" file="{d}/mtls.log" template="exact")
  action(type="omfile" file="{d}/all.jsonl" template="jsonl")
}}

input(type="imudp" address="127.0.0.1" port="{udp}" name="udp" ruleset="udp_in")
input(type="imtcp" address="127.0.0.1" port="{tcp}" name="tcp" ruleset="tcp_in")
input(type="imtcp" address="127.0.0.1" port="{tls}" name="tls" ruleset="tls_in"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="{mtls}" name="mtls" ruleset="mtls_in"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
"#
    )
}

/// The config of [`Rsyslog::start_relp`]: rsyslog's defaults (no `maxMessageSize`),
/// imrelp inputs as an operator would write them, and one plain imtcp input.
fn relp_config(
    dir: &Path,
    certs: &Certs,
    tcp: u16,
    relp: RelpPorts,
    tls_lib: Option<&str>,
) -> String {
    let module = match tls_lib {
        Some(lib) => format!(r#"module(load="imrelp" tls.tlslib="{lib}")"#),
        None => r#"module(load="imrelp")"#.to_owned(),
    };
    let d = dir.display();
    let (ca, cert, key) = (
        certs.ca.display(),
        certs.server_cert.display(),
        certs.server_key.display(),
    );
    let RelpPorts { plain, tls, mtls } = relp;
    format!(
        r#"global(
  workDirectory="{d}/work"
  parser.escapeControlCharactersOnReceive="off"
)
{module}
module(load="imtcp")

template(name="exact" type="string" string="%rawmsg%\n")

action(type="omfile" file="{d}/internal.log")

ruleset(name="relp_in" queue.type="Direct") {{
  action(type="omfile" file="{d}/relp.log" template="exact")
}}
ruleset(name="relp_tls_in" queue.type="Direct") {{
  action(type="omfile" file="{d}/relp-tls.log" template="exact")
}}
ruleset(name="relp_mtls_in" queue.type="Direct") {{
  action(type="omfile" file="{d}/relp-mtls.log" template="exact")
}}
ruleset(name="tcp_in") {{
  action(type="omfile" file="{d}/tcp.log" template="exact")
}}

input(type="imrelp" address="127.0.0.1" port="{plain}" name="relp" ruleset="relp_in")
input(type="imrelp" address="127.0.0.1" port="{tls}" name="relp-tls" ruleset="relp_tls_in"
      tls="on" tls.caCert="{ca}" tls.myCert="{cert}" tls.myPrivKey="{key}")
input(type="imrelp" address="127.0.0.1" port="{mtls}" name="relp-mtls" ruleset="relp_mtls_in"
      tls="on" tls.caCert="{ca}" tls.myCert="{cert}" tls.myPrivKey="{key}"
      tls.authMode="certvalid")
input(type="imtcp" address="127.0.0.1" port="{tcp}" name="tcp" ruleset="tcp_in")
"#
    )
}

/// The `rsyslogd` binary, or a failing test that says how to get it.
fn rsyslogd() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("rsyslogd"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "rsyslogd not found: these tests need a real rsyslog; run the suite with \
                 scripts/test.sh, which installs rsyslog and rsyslog-gnutls"
            )
        })
}

/// Whether `/proc/net/{tcp,udp}` shows a socket bound to 127.0.0.1:`port` (listening,
/// for TCP).
fn listening(table: &str, port: u16, tcp: bool) -> bool {
    let wanted = format!("0100007F:{port:04X}");
    std::fs::read_to_string(table)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&wanted.as_str()) && (!tcp || fields.get(3) == Some(&"0A"))
        })
}

/// Distinct free TCP ports on loopback (bound together, then released).
fn free_tcp_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local addr").port())
}

/// A free UDP port on loopback.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Waits until `file` has at least `n` complete lines and returns them all (without
/// their LF). Fails the test with what it found if `within` passes first.
pub async fn wait_for_lines(file: &Path, n: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let bytes = std::fs::read(file).unwrap_or_default();
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let lines: Vec<String> = bytes[..complete]
            .split(|&b| b == b'\n')
            .take(bytes[..complete].iter().filter(|&&b| b == b'\n').count())
            .map(|line| String::from_utf8(line.to_vec()).expect("received lines are UTF-8"))
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} of {n} lines after {within:?}:\n{}",
            file.display(),
            lines.len(),
            lines.join("\n")
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `condition` until it holds; fails the test with `what` after `within`.
pub async fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?}: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

impl RawTcpListener {
    /// Listens on a free loopback port.
    pub async fn start() -> RawTcpListener {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(Mutex::new(RawTcpState::default()));
        let shared = state.clone();
        let accept_task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let bytes = Arc::new(Mutex::new(Vec::new()));
                let sink = bytes.clone();
                let (close, mut closing) = tokio::sync::oneshot::channel::<()>();
                let task = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        tokio::select! {
                            read = stream.read(&mut buf) => match read {
                                Ok(0) | Err(_) => return,
                                Ok(n) => sink.lock().expect("lock").extend_from_slice(&buf[..n]),
                            },
                            _ = &mut closing => {
                                // shutdown() sends the FIN now, even if a child process
                                // spawned meanwhile by another test still holds a copy
                                // of the descriptor (closing it alone would not).
                                let _ = stream.shutdown().await;
                                return;
                            }
                        }
                    }
                });
                let mut state = shared.lock().expect("lock");
                state.accepts += 1;
                state.received.push(bytes);
                state.connections.push((close, task));
            }
        });
        RawTcpListener {
            port,
            state,
            accept_task,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.state.lock().expect("lock").accepts
    }

    /// Everything received, all connections in accept order.
    pub fn received(&self) -> Vec<u8> {
        let state = self.state.lock().expect("lock");
        state
            .received
            .iter()
            .flat_map(|c| c.lock().expect("lock").clone())
            .collect()
    }

    /// Waits until at least `n` bytes arrived, and returns them all.
    pub async fn wait_for_bytes(&self, n: usize, within: Duration) -> Vec<u8> {
        wait_until(&format!("{n} bytes at the raw listener"), within, || {
            self.received().len() >= n
        })
        .await;
        self.received()
    }

    /// Closes every accepted connection from the server side and waits until they are
    /// closed (the FIN is on its way when this returns).
    pub async fn close_connections(&self) {
        let connections = std::mem::take(&mut self.state.lock().expect("lock").connections);
        for (close, task) in connections {
            let _ = close.send(());
            let _ = task.await;
        }
    }
}

impl Drop for RawTcpListener {
    fn drop(&mut self) {
        self.accept_task.abort();
        if let Ok(state) = self.state.lock() {
            for (_, task) in &state.connections {
                task.abort();
            }
        }
    }
}

impl RawUdpListener {
    /// Receives on a free loopback port.
    pub async fn start() -> RawUdpListener {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback");
        let port = socket.local_addr().expect("local addr").port();
        let datagrams = Arc::new(Mutex::new(Vec::new()));
        let sink = datagrams.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 70_000];
            while let Ok(n) = socket.recv(&mut buf).await {
                sink.lock().expect("lock").push(buf[..n].to_vec());
            }
        });
        RawUdpListener {
            port,
            datagrams,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits until at least `n` datagrams arrived, and returns them all.
    pub async fn wait_for_datagrams(&self, n: usize, within: Duration) -> Vec<Vec<u8>> {
        wait_until(
            &format!("{n} datagrams at the raw listener"),
            within,
            || self.datagrams.lock().expect("lock").len() >= n,
        )
        .await;
        self.datagrams.lock().expect("lock").clone()
    }
}

impl Drop for RawUdpListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
