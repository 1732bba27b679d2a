//! Getting framed records to the receiver: UDP datagrams, a TCP or TLS stream, or
//! standard output. This module owns sockets, TLS sessions, timeouts and the question
//! "is the connection still good?". It does not render records ([`super::syslog`]) and
//! does not retry ([`super::Sink`] reports, the tenant's supervisor decides when to try
//! again).
//!
//! # Is the connection good?
//!
//! Plain TCP and TLS syslog have no acknowledgements, so the strongest signal available
//! is that the kernel took the bytes while the connection was demonstrably alive. A
//! write of a piece is **good** when all three hold (and [`super::plain`] then applies
//! the settle rule before it counts the piece as delivered):
//!
//! 1. the connection was healthy just before the piece was written (a broken one is
//!    closed and replaced before anything is written);
//! 2. every record was written and flushed without error within the write timeout
//!    (TLS: the TLS records too, not just the plaintext buffer);
//! 3. the connection is still healthy right after the flush.
//!
//! "Healthy" is decided by **reading**, not by writing: a write to a socket whose peer
//! has gone keeps succeeding until a reset comes back, so a restarted receiver would
//! otherwise swallow a whole piece unnoticed. [`Transport::check_health`] peeks at the
//! socket without blocking; end of stream (FIN, or TLS close_notify) or a reset means
//! the connection is broken. Bytes a syslog receiver has no reason to send are read and
//! dropped (for TLS they go through the TLS session, which is how a session ticket, an
//! alert or close_notify is seen).
//!
//! A **new** TCP or TLS connection is watched for a moment ([`REFUSAL_WATCH`]) before
//! the first batch goes out. Receivers that refuse a client do it right after accepting
//! the connection (rsyslog closes it for a sender not in its allowed list, and checks a
//! TLS client certificate only after the handshake, which the client already counts as
//! complete); records written in that window would be thrown away while looking
//! delivered. Such a refusal is reported as a connect (or TLS) error instead.
//!
//! If any step fails, the piece is **not** delivered: the caller drops the connection
//! (TLS: close_notify, best effort) and the tenant later sends it again. Duplicates
//! are therefore possible, loss is not, except for what no sender can see: bytes the
//! receiver's kernel accepted and the receiver then threw away (a receiver killed a
//! moment after our health check, or one slower than [`REFUSAL_WATCH`] to refuse a new
//! connection).
//!
//! UDP has no connection: a datagram the kernel accepted is "delivered" and anything
//! the network drops is gone (RFC 5426). A datagram the kernel refuses for its size
//! (`EMSGSIZE`) is reported per record to the caller, which logs it with the event id
//! (it is not sent: lower `max_message_size`); any other send error (such as a refused
//! port reported by ICMP) fails the piece so that it is sent again.
//!
//! # Connections
//!
//! One long-lived connection per tenant destination, opened lazily and reused across
//! batches. TCP sockets get `TCP_NODELAY` and keepalive. Connecting (name resolution and
//! TCP) and the TLS handshake each have a [`CONNECT_TIMEOUT`]; writing a batch, including
//! the flush, has a [`WRITE_TIMEOUT`], after which the connection counts as broken.
//! Closing sends TLS close_notify, shuts down the TCP write side, and reads until the
//! receiver closes too, all under a deadline, so shutdown never hangs on a dead peer.

use super::{SinkError, SinkErrorKind};
use crate::config::{Protocol, SyslogConfig, TlsConfig};
use crate::small_file;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use socket2::{SockRef, TcpKeepalive};
use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Limit for name resolution plus TCP connect, and separately for the TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit for writing and flushing one batch; after it the connection counts as broken.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle time before the first TCP keepalive probe, and the interval between probes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 6;
/// How long a new connection is watched for an immediate refusal before it is used.
pub const REFUSAL_WATCH: Duration = Duration::from_millis(200);
/// How long a health check waits for the TLS session to decode bytes that are already
/// in the socket (they are there, so this is only ever the runtime's reaction time).
const TLS_DECODE_WAIT: Duration = Duration::from_millis(200);

/// Where records go, for log lines and errors: `host:port (protocol)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Configured host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport.
    pub protocol: Protocol,
}

/// Opens [`Transport`]s to one destination. Holds the TLS client configuration, built
/// once (CA bundle and client certificate are read when the sink is created).
pub struct Connector {
    destination: Destination,
    tls: Option<TlsSetup>,
}

/// One open connection (or socket) to the destination.
pub struct Transport {
    link: Link,
    destination: Destination,
}

/// A connected TCP or TLS byte stream, for protocols that frame and acknowledge records
/// themselves (RELP, [`super::relp::session`]). Unlike a [`Transport`] it has no
/// delivery rule of its own.
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// What happened to a batch that was written without a fatal error.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Indices of UDP records the kernel refused as too large (`EMSGSIZE`).
    pub oversized: Vec<usize>,
}

struct TlsSetup {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    /// `tls_server_name` as configured, for messages.
    name: String,
    /// Where the trusted roots come from, for messages.
    trust: String,
}

enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Standard output, written from a blocking thread (the crate does not enable
    /// tokio's `io-std`; a slow pipe reader must not stall a runtime thread either way).
    Stdout,
}

/// The state of a socket's read side, seen without blocking.
#[derive(Debug)]
enum Peek {
    /// Nothing to read: the connection is open.
    Quiet,
    /// Bytes are waiting.
    Data,
    /// End of stream: the peer closed.
    Eof,
    /// An error such as a reset.
    Failed(io::Error),
}

/// `tls_verify = false`: accepts every certificate for every name. Handshake signatures
/// are still checked against the certificate presented, which proves nothing about who
/// the peer is but keeps the handshake well-formed.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<rustls::crypto::CryptoProvider>);

/// Verifies the server's certificate as usual (chain to a trusted root, validity), but
/// for a fixed name instead of the name the connection was made to. HEC goes through
/// an HTTP client that checks the URL's host; `tls_server_name` asks for another name
/// (a collector reached by address, or behind a name its certificate does not hold).
#[derive(Debug)]
struct NamedServerCert {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.protocol {
            Protocol::Stdout => return f.write_str("stdout"),
            other => other.as_str(),
        };
        if self.host.contains(':') {
            write!(f, "[{}]:{} ({protocol})", self.host, self.port)
        } else {
            write!(f, "{}:{} ({protocol})", self.host, self.port)
        }
    }
}

impl Connector {
    /// Prepares connections to `config`'s destination without opening any. For TLS this
    /// reads the CA bundle (or the system store) and the client certificate and key, and
    /// logs a warning when `tls_verify = false`.
    pub fn new(config: &SyslogConfig) -> Result<Self, SinkError> {
        let destination = Destination {
            host: config.host.clone(),
            port: config.port,
            protocol: config.protocol,
        };
        let tls = match config.protocol {
            Protocol::Tls | Protocol::RelpTls => Some(TlsSetup::new(&config.tls, &destination)?),
            _ => None,
        };
        Ok(Self { destination, tls })
    }

    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Opens a connection: resolves the host, connects (TCP: with `TCP_NODELAY` and
    /// keepalive), and for TLS completes the handshake and verifies the server.
    pub async fn connect(&self) -> Result<Transport, SinkError> {
        let link = match self.destination.protocol {
            Protocol::Stdout => Link::Stdout,
            Protocol::Udp => Link::Udp(self.connect_udp().await?),
            Protocol::Tcp => Link::Tcp(self.connect_tcp().await?),
            // A RELP session owns its stream (`super::relp::session`); records never go
            // to a RELP port as plain syslog.
            Protocol::Relp | Protocol::RelpTls => {
                return Err(self.error(
                    SinkErrorKind::Connect,
                    "relp is sent by the relp session, not the plain syslog transport",
                ));
            }
            Protocol::Tls => {
                let tcp = self.connect_tcp().await?;
                match &self.tls {
                    Some(tls) => Link::Tls(Box::new(tls.handshake(tcp, &self.destination).await?)),
                    None => {
                        return Err(self.error(SinkErrorKind::Tls, "no tls configuration"));
                    }
                }
            }
        };
        let mut transport = Transport {
            link,
            destination: self.destination.clone(),
        };
        transport.watch_for_refusal().await?;
        Ok(transport)
    }

    /// Opens a byte stream for a protocol with its own handshake (relp, relp-tls):
    /// connects (with `TCP_NODELAY` and keepalive) and, for relp-tls, completes the TLS
    /// handshake and verifies the server. No settle wait: the protocol's own first
    /// exchange shows whether the receiver took the connection.
    pub async fn connect_stream(&self) -> Result<Stream, SinkError> {
        match (self.destination.protocol, &self.tls) {
            (Protocol::Tcp | Protocol::Relp, _) => Ok(Stream::Tcp(self.connect_tcp().await?)),
            (Protocol::Tls | Protocol::RelpTls, Some(tls)) => {
                let tcp = self.connect_tcp().await?;
                let tls = tls.handshake(tcp, &self.destination).await?;
                Ok(Stream::Tls(Box::new(tls)))
            }
            (Protocol::Tls | Protocol::RelpTls, None) => {
                Err(self.error(SinkErrorKind::Tls, "no tls configuration"))
            }
            (Protocol::Udp | Protocol::Stdout, _) => Err(self.error(
                SinkErrorKind::Connect,
                "udp and stdout have no byte stream to open",
            )),
        }
    }

    async fn resolve(&self) -> Result<Vec<std::net::SocketAddr>, SinkError> {
        let host = self.destination.host.as_str();
        let found = tokio::net::lookup_host((host, self.destination.port))
            .await
            .map_err(|e| {
                self.error(
                    SinkErrorKind::Connect,
                    format!("cannot resolve host {host:?}: {e}"),
                )
            })?;
        let addrs: Vec<_> = found.collect();
        if addrs.is_empty() {
            return Err(self.error(
                SinkErrorKind::Connect,
                format!("host {host:?} has no address"),
            ));
        }
        Ok(addrs)
    }

    async fn connect_udp(&self) -> Result<UdpSocket, SinkError> {
        let connect = async {
            let addrs = self.resolve().await?;
            let mut last = None;
            for addr in addrs {
                let local = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let attempt = async {
                    let socket = UdpSocket::bind(local).await?;
                    socket.connect(addr).await?;
                    Ok::<_, io::Error>(socket)
                };
                match attempt.await {
                    Ok(socket) => return Ok(socket),
                    Err(e) => last = Some(e),
                }
            }
            Err(self.error(
                SinkErrorKind::Connect,
                format!("cannot open a udp socket: {}", describe_io(last)),
            ))
        };
        timeout(CONNECT_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| Err(self.connect_timed_out()))
    }

    async fn connect_tcp(&self) -> Result<TcpStream, SinkError> {
        let connect = async {
            let addrs = self.resolve().await?;
            let mut last = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => last = Some(e),
                }
            }
            Err(self.error(
                SinkErrorKind::Connect,
                format!("cannot connect: {}", describe_io(last)),
            ))
        };
        let stream = timeout(CONNECT_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| Err(self.connect_timed_out()))?;
        // Records are flushed once per batch, so Nagle would only add latency; keepalive
        // finds a peer that vanished without a FIN while the sink is idle.
        let keepalive = TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_RETRIES);
        let socket = SockRef::from(&stream);
        if let Err(e) = socket
            .set_tcp_nodelay(true)
            .and_then(|()| socket.set_tcp_keepalive(&keepalive))
        {
            tracing::warn!(destination = %self.destination, error = %e, "cannot set TCP_NODELAY or keepalive on the syslog connection");
        }
        Ok(stream)
    }

    fn connect_timed_out(&self) -> SinkError {
        self.error(
            SinkErrorKind::Timeout,
            format!("connect timed out after {}s", CONNECT_TIMEOUT.as_secs()),
        )
    }

    fn error(&self, kind: SinkErrorKind, message: impl Into<String>) -> SinkError {
        SinkError::new(kind, &self.destination, message)
    }
}

impl TlsSetup {
    fn new(tls: &TlsConfig, destination: &Destination) -> Result<Self, SinkError> {
        let error = |message: String| SinkError::new(SinkErrorKind::Tls, destination, message);
        let (config, trust) =
            client_config(tls, &destination.to_string(), "syslog server", false).map_err(error)?;
        let server_name = ServerName::try_from(tls.server_name.clone()).map_err(|e| {
            error(format!(
                "tls_server_name {:?} is not a host name or address: {e}",
                tls.server_name
            ))
        })?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            name: tls.server_name.clone(),
            trust,
        })
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
        destination: &Destination,
    ) -> Result<TlsStream<TcpStream>, SinkError> {
        match timeout(
            CONNECT_TIMEOUT,
            self.connector.connect(self.server_name.clone(), tcp),
        )
        .await
        {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(SinkError::new(
                SinkErrorKind::Tls,
                destination,
                format!("tls handshake failed: {}", self.describe(&e)),
            )),
            Err(_) => Err(SinkError::new(
                SinkErrorKind::Timeout,
                destination,
                format!(
                    "tls handshake timed out after {}s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// Says what a TLS failure means for the operator, naming the setting to check.
    fn describe(&self, e: &io::Error) -> String {
        let Some(tls) = rustls_error(e) else {
            return match e.kind() {
                io::ErrorKind::UnexpectedEof => {
                    "the receiver closed the connection during the handshake (is the port a tls listener?)".to_owned()
                }
                _ => e.to_string(),
            };
        };
        describe_rustls(tls, &self.name, &self.trust)
    }
}

impl Transport {
    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Checks, without blocking, that the receiver has not closed or reset the
    /// connection. Always `Ok` for UDP and stdout.
    pub async fn check_health(&mut self) -> Result<(), SinkError> {
        let destination = &self.destination;
        let closed = |what: String| SinkError::new(SinkErrorKind::PeerClosed, destination, what);
        match &mut self.link {
            Link::Udp(_) | Link::Stdout => Ok(()),
            Link::Tcp(stream) => {
                // A syslog receiver never sends; whatever it does send is read and
                // dropped so that an end of stream behind it is seen. The bound only
                // guards against a peer that floods us.
                for _ in 0..64 {
                    match peek(stream) {
                        Peek::Quiet => return Ok(()),
                        Peek::Eof => {
                            return Err(closed("the receiver closed the connection".into()));
                        }
                        Peek::Failed(e) => {
                            return Err(closed(format!("the connection is broken: {e}")));
                        }
                        Peek::Data => {
                            let mut sink = [MaybeUninit::<u8>::uninit(); 4096];
                            match SockRef::from(&*stream).recv(&mut sink) {
                                Ok(0) => {
                                    return Err(closed(
                                        "the receiver closed the connection".into(),
                                    ));
                                }
                                Ok(_) => {}
                                Err(e) if would_block(&e) => return Ok(()),
                                Err(e) => {
                                    return Err(closed(format!("the connection is broken: {e}")));
                                }
                            }
                        }
                    }
                }
                Ok(())
            }
            Link::Tls(stream) => {
                for _ in 0..64 {
                    match peek(stream.get_ref().0) {
                        Peek::Quiet => return Ok(()),
                        Peek::Failed(e) => {
                            return Err(closed(format!("the connection is broken: {e}")));
                        }
                        // Bytes or an end of stream are waiting: let the TLS session
                        // decode them, so that a session ticket is absorbed and an alert
                        // or close_notify is told apart from a plain FIN.
                        Peek::Data | Peek::Eof => {
                            let mut buf = [0u8; 4096];
                            match timeout(TLS_DECODE_WAIT, stream.read(&mut buf)).await {
                                Ok(Ok(0)) => {
                                    return Err(closed(
                                        "the receiver closed the tls session".into(),
                                    ));
                                }
                                Ok(Ok(_)) => {}
                                Ok(Err(e)) => {
                                    let kind = if rustls_error(&e).is_some() {
                                        SinkErrorKind::Tls
                                    } else {
                                        SinkErrorKind::PeerClosed
                                    };
                                    return Err(SinkError::new(
                                        kind,
                                        destination,
                                        format!(
                                            "the tls session is broken: {}",
                                            describe_io_tls(&e)
                                        ),
                                    ));
                                }
                                // Only handshake messages (a session ticket) or part of
                                // a record were there: nothing says the session ended.
                                Err(_) => return Ok(()),
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Watches a new connection for [`REFUSAL_WATCH`]: a receiver that accepted it only
    /// to refuse this client closes it (or sends a TLS alert) within that time.
    async fn watch_for_refusal(&mut self) -> Result<(), SinkError> {
        let destination = &self.destination;
        let refused = |kind: SinkErrorKind, why: String| {
            SinkError::new(
                kind,
                destination,
                format!("the receiver accepted the connection and then refused it: {why}"),
            )
        };
        let deadline = tokio::time::Instant::now() + REFUSAL_WATCH;
        match &mut self.link {
            Link::Udp(_) | Link::Stdout => Ok(()),
            Link::Tcp(stream) => loop {
                match tokio::time::timeout_at(deadline, stream.readable()).await {
                    Err(_) => return Ok(()),
                    Ok(Err(e)) => return Err(refused(SinkErrorKind::Connect, e.to_string())),
                    Ok(Ok(())) => {}
                }
                let mut buf = [0u8; 4096];
                match stream.try_read(&mut buf) {
                    Ok(0) => {
                        return Err(refused(
                            SinkErrorKind::Connect,
                            "it closed the connection (is this client an allowed sender?)".into(),
                        ));
                    }
                    Ok(_) => {}
                    Err(e) if would_block(&e) => {}
                    Err(e) => return Err(refused(SinkErrorKind::Connect, e.to_string())),
                }
            },
            Link::Tls(stream) => loop {
                let mut buf = [0u8; 4096];
                match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                    Err(_) => return Ok(()),
                    Ok(Ok(0)) => {
                        return Err(refused(
                            SinkErrorKind::Tls,
                            "it closed the tls session (does it require a client certificate? check cert_file and key_file)".into(),
                        ));
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        let mut why = describe_io_tls(&e);
                        if !why.contains("cert_file") {
                            why.push_str(" (does it require a client certificate? check cert_file and key_file)");
                        }
                        return Err(refused(SinkErrorKind::Tls, why));
                    }
                }
            },
        }
    }

    /// Writes a batch and flushes it. `buf` holds the framed records back to back and
    /// `records` their ranges; UDP sends one datagram per range, streams write `buf`
    /// whole. An `Err` means the batch must be sent again on a new connection.
    pub async fn write_batch(
        &mut self,
        buf: &[u8],
        records: &[Range<usize>],
    ) -> Result<BatchOutcome, SinkError> {
        let destination = &self.destination;
        let failed = |e: io::Error| {
            let kind = if rustls_error(&e).is_some() {
                SinkErrorKind::Tls
            } else {
                SinkErrorKind::Write
            };
            SinkError::new(
                kind,
                destination,
                format!("write failed: {}", describe_io_tls(&e)),
            )
        };
        let mut outcome = BatchOutcome::default();
        let written = match &mut self.link {
            Link::Udp(socket) => {
                let send_all = async {
                    for (i, range) in records.iter().enumerate() {
                        let Some(datagram) = buf.get(range.clone()) else {
                            continue;
                        };
                        match socket.send(datagram).await {
                            Ok(_) => {}
                            Err(e) if is_message_too_long(&e) => outcome.oversized.push(i),
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(())
                };
                timeout(WRITE_TIMEOUT, send_all).await
            }
            Link::Tcp(stream) => timeout(WRITE_TIMEOUT, write_flush(stream, buf)).await,
            Link::Tls(stream) => timeout(WRITE_TIMEOUT, write_flush(stream, buf)).await,
            Link::Stdout => timeout(WRITE_TIMEOUT, write_stdout(buf.to_vec())).await,
        };
        match written {
            Ok(Ok(())) => Ok(outcome),
            Ok(Err(e)) => Err(failed(e)),
            Err(_) => Err(SinkError::new(
                SinkErrorKind::Timeout,
                destination,
                format!(
                    "write timed out after {}s (the receiver is not reading)",
                    WRITE_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// Closes the connection cleanly within `within`: TLS close_notify, TCP shutdown of
    /// the write side, then reading until the receiver closes too (closing with unread
    /// bytes would make the kernel send a reset instead of a FIN). Never fails; a peer
    /// that does not cooperate is simply dropped when the time is up.
    pub async fn close(self, within: Duration) {
        let destination = self.destination;
        let done = match self.link {
            Link::Udp(_) => Ok(()),
            Link::Stdout => Ok(()),
            Link::Tcp(mut stream) => timeout(within, shutdown_and_drain(&mut stream))
                .await
                .map_err(|_| ()),
            Link::Tls(mut stream) => timeout(within, shutdown_and_drain(&mut *stream))
                .await
                .map_err(|_| ()),
        };
        if done.is_err() {
            tracing::debug!(destination = %destination, "syslog connection did not close in time; dropped");
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => std::pin::Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => std::pin::Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// Says what an I/O error on a [`Stream`] means, naming the TLS cause when there is one.
pub fn describe_stream_error(e: &io::Error) -> String {
    describe_io_tls(e)
}

/// Whether an I/O error on a [`Stream`] came from TLS.
pub fn is_tls_error(e: &io::Error) -> bool {
    rustls_error(e).is_some()
}

impl ServerCertVerifier for NamedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls client configuration of `tls` (trusted roots or `tls_verify = false`,
/// client certificate), with a description of where trust comes from. `destination`
/// and `what` (`"syslog server"`) name the peer in the warning logged when
/// verification is off. With `check_name`, the certificate must hold that name
/// (`tls.server_name`) whatever name the connection is made to: for clients that
/// connect by a URL, where the URL's host is not the name to check. Errors name the
/// setting and the file.
pub(crate) fn client_config(
    tls: &TlsConfig,
    destination: &str,
    what: &str,
    check_name: bool,
) -> Result<(rustls::ClientConfig, String), String> {
    let provider = crate::tls::crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls setup: {e}"))?;
    let (builder, trust) = if tls.verify && check_name {
        let (roots, trust) = load_roots(tls.ca_file.as_deref())?;
        let name = ServerName::try_from(tls.server_name.clone()).map_err(|e| {
            format!(
                "tls_server_name {:?} is not a host name or address: {e}",
                tls.server_name
            )
        })?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| format!("tls setup: {e}"))?;
        let verifier = Arc::new(NamedServerCert { inner, name });
        (
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier),
            trust,
        )
    } else if tls.verify {
        let (roots, trust) = load_roots(tls.ca_file.as_deref())?;
        (builder.with_root_certificates(roots), trust)
    } else {
        tracing::warn!(
            destination = %destination,
            "tls_verify = false: the {what}'s certificate and name are not checked, so anyone on the path can read and alter the records"
        );
        let verifier = Arc::new(AcceptAnyServerCert(provider));
        (
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier),
            "nothing (tls_verify = false)".to_owned(),
        )
    };
    let config = match &tls.client_auth {
        Some((cert_file, key_file)) => {
            let certs = load_certs(cert_file, "cert_file")?;
            let pem = small_file::read(key_file, small_file::TEXT_LIMIT)
                .map_err(|e| format!("key_file {}: cannot read it: {e}", key_file.display()))?;
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                format!(
                    "key_file {}: cannot read a private key: {e}",
                    key_file.display()
                )
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("cert_file and key_file do not fit: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok((config, trust))
}

/// Trusted roots: the PEM bundle `ca_file`, or the system store. Returns them and a
/// description for messages.
fn load_roots(ca_file: Option<&Path>) -> Result<(rustls::RootCertStore, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = load_certs(path, "ca_file")?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "ca_file {}: no usable CA certificate in it",
                    path.display()
                ));
            }
            Ok((roots, format!("ca_file {}", path.display())))
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::debug!(error = %e, "skipping part of the system trust store");
            }
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "the system trust store has no usable CA certificate; set ca_file".to_owned(),
                );
            }
            Ok((roots, "the system trust store".to_owned()))
        }
    }
}

/// All certificates in a PEM file; `key` names the setting for messages.
fn load_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = small_file::read(path, small_file::PEM_LIMIT)
        .map_err(|e| format!("{key} {}: cannot read it: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{key} {}: cannot read certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{key} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// Looks at the read side of a connected TCP socket without blocking and without going
/// through the runtime's readiness cache, so a FIN or reset that the kernel has already
/// seen is seen here too.
fn peek(stream: &TcpStream) -> Peek {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    loop {
        // Tokio's sockets are non-blocking, so this returns at once.
        return match SockRef::from(stream).peek(&mut byte) {
            Ok(0) => Peek::Eof,
            Ok(_) => Peek::Data,
            Err(e) if would_block(&e) => Peek::Quiet,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Peek::Failed(e),
        };
    }
}

impl Peek {
    #[cfg(test)]
    fn is_quiet(&self) -> bool {
        matches!(self, Peek::Quiet)
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

async fn write_flush<S: AsyncWrite + Unpin>(stream: &mut S, buf: &[u8]) -> io::Result<()> {
    stream.write_all(buf).await?;
    stream.flush().await
}

/// Writes `buf` to standard output through [`stdout_writer`]. Waiting for the queue
/// and for the write are both plain awaits, so the caller's write timeout and
/// cancellation apply; the write itself may go on in the writer thread.
async fn write_stdout(buf: Vec<u8>) -> io::Result<()> {
    let stopped = || io::Error::other("the standard output writer has stopped");
    let (done, result) = tokio::sync::oneshot::channel();
    stdout_writer()?
        .send((buf, done))
        .await
        .map_err(|_| stopped())?;
    result.await.map_err(|_| stopped())?
}

/// One write to standard output and where its outcome goes.
type StdoutJob = (Vec<u8>, tokio::sync::oneshot::Sender<io::Result<()>>);

/// The queue of the one thread that writes standard output. A reader that stops
/// reading blocks that thread alone: no runtime thread waits on the pipe, writes of
/// several tenants never interleave, and the process can exit while a write hangs
/// (the runtime does not wait for a thread of its own, and the standard library's
/// exit-time flush skips a locked stdout).
fn stdout_writer() -> io::Result<&'static tokio::sync::mpsc::Sender<StdoutJob>> {
    static QUEUE: std::sync::OnceLock<tokio::sync::mpsc::Sender<StdoutJob>> =
        std::sync::OnceLock::new();
    if let Some(queue) = QUEUE.get() {
        return Ok(queue);
    }
    let (queue, mut jobs) = tokio::sync::mpsc::channel::<StdoutJob>(1);
    std::thread::Builder::new()
        .name("stdout-writer".into())
        .spawn(move || {
            use std::io::Write;
            while let Some((buf, done)) = jobs.blocking_recv() {
                let mut out = std::io::stdout().lock();
                let written = out.write_all(&buf).and_then(|()| out.flush());
                drop(out);
                let _ = done.send(written);
            }
        })?;
    // Two first writers may race here; the loser's thread ends with its queue.
    Ok(QUEUE.get_or_init(|| queue))
}

async fn shutdown_and_drain<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    // For TLS, shutdown sends close_notify, flushes, then shuts down the TCP write side.
    let _ = stream.shutdown().await;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The rustls error inside an I/O error from tokio-rustls, if there is one.
fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

fn describe_io_tls(e: &io::Error) -> String {
    match rustls_error(e) {
        Some(tls) => describe_tls(tls),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the receiver closed the connection without tls close_notify".to_owned()
        }
        None => e.to_string(),
    }
}

/// Says what a TLS failure means for the operator, naming the setting to check: `name`
/// is the name the certificate had to hold, `trust` where trusted roots come from.
pub(crate) fn describe_rustls(tls: &rustls::Error, name: &str, trust: &str) -> String {
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => format!(
                "the server certificate is not trusted: it was not issued by a CA in {trust} (check ca_file)"
            ),
            CertificateError::NotValidForName => format!(
                "the server certificate does not match the name {name:?} (check tls_server_name)"
            ),
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "the server certificate does not match the name {name:?} (check tls_server_name); it is valid for {}",
                presented.join(", ")
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server certificate has expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server certificate is not valid yet (check the clock)".to_owned()
            }
            other => format!("the server certificate is not acceptable: {other:?}"),
        },
        other => describe_tls(other),
    }
}

fn describe_tls(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::AlertReceived(
            alert @ (A::CertificateRequired
            | A::HandshakeFailure
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::AccessDenied),
        ) => format!(
            "the receiver refused the tls session (alert {alert:?}): it may require a client certificate it trusts (check cert_file and key_file)"
        ),
        rustls::Error::AlertReceived(alert) => {
            format!("the receiver ended the tls session with alert {alert:?}")
        }
        other => format!("tls error: {other}"),
    }
}

fn describe_io(e: Option<io::Error>) -> String {
    e.map_or_else(|| "no address to try".to_owned(), |e| e.to_string())
}

/// Whether a send failed because the datagram is larger than the path allows.
fn is_message_too_long(e: &io::Error) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const EMSGSIZE: i32 = if cfg!(any(target_arch = "mips", target_arch = "mips64")) {
        97
    } else {
        90
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const EMSGSIZE: i32 = 40; // the BSDs and macOS
    e.raw_os_error() == Some(EMSGSIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_names_host_port_and_protocol() {
        let d = Destination {
            host: "siem.example".into(),
            port: 6514,
            protocol: Protocol::Tls,
        };
        assert_eq!(d.to_string(), "siem.example:6514 (tls)");
        let d = Destination {
            host: "::1".into(),
            port: 514,
            protocol: Protocol::Udp,
        };
        assert_eq!(d.to_string(), "[::1]:514 (udp)");
    }

    #[test]
    fn emsgsize_is_recognised() {
        let e = io::Error::from_raw_os_error(if cfg!(target_os = "linux") { 90 } else { 40 });
        assert!(is_message_too_long(&e));
        assert!(!is_message_too_long(&io::Error::from(
            io::ErrorKind::ConnectionRefused
        )));
    }

    #[tokio::test]
    async fn a_peer_close_is_seen_by_reading_before_any_write_fails() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let connector = Connector {
            destination: Destination {
                host: "127.0.0.1".into(),
                port: addr.port(),
                protocol: Protocol::Tcp,
            },
            tls: None,
        };
        let (transport, accepted) = tokio::join!(connector.connect(), listener.accept());
        let mut transport = transport.expect("connects to the loopback listener");
        let (mut server, _) = accepted.expect("accepts");
        transport
            .check_health()
            .await
            .expect("open connection is healthy");

        // The receiver sends something (syslog receivers never do) and stays open.
        server.write_all(b"hello").await.expect("server writes");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while peek(match &transport.link {
            Link::Tcp(s) => s,
            _ => unreachable!("tcp link"),
        })
        .is_quiet()
        {
            assert!(tokio::time::Instant::now() < deadline, "data never arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        transport
            .check_health()
            .await
            .expect("stray bytes are dropped, not fatal");

        // Now it closes: the next check says so without writing anything.
        drop(server);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let error = loop {
            match transport.check_health().await {
                Err(e) => break e,
                Ok(()) => {
                    assert!(tokio::time::Instant::now() < deadline, "close never seen");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        assert_eq!(error.kind(), SinkErrorKind::PeerClosed);
        assert!(error.to_string().contains("127.0.0.1"), "{error}");
        assert!(error.to_string().contains("closed"), "{error}");
    }
}
