//! The syslog destination of one tenant: record header and framing ([`syslog`], pure)
//! and the transports ([`transport`], I/O), put together by [`Sink`].
//!
//! [`Sink::send`] takes one batch of rendered messages and either delivers all of it
//! (the rule is in [`transport`]'s documentation) or returns an error after dropping the
//! connection. It never retries and never sleeps: the tenant's supervisor owns the retry
//! policy and sends the same batch again after its backoff, so a position is committed
//! only for batches that were delivered. Duplicates after a failure are possible; loss
//! is not.

pub mod syslog;
pub mod transport;

use crate::config::SyslogConfig;
use crate::format::RenderedMessage;
use chrono::Utc;
use std::fmt;
use std::ops::Range;
use std::time::Duration;
use tokio::time::Instant;
pub use transport::Destination;
use transport::{Connector, Transport};

/// At most one truncation warning per tenant in this interval.
const TRUNCATION_WARNING_INTERVAL: Duration = Duration::from_secs(60);
/// Time for a clean close on shutdown (close_notify, FIN, the receiver's FIN). Well
/// inside the 5 s shutdown budget.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time for a best-effort close of a connection that already failed.
const CLOSE_AFTER_ERROR_TIMEOUT: Duration = Duration::from_secs(1);

/// Bytes reserved per record for its syslog header and framing (an RFC 5424 header
/// with a long hostname is about 120).
const HEADER_ROOM: usize = 160;

/// One tenant's syslog destination.
pub struct Sink {
    tenant: String,
    writer: syslog::RecordWriter,
    connector: Connector,
    transport: Option<Transport>,
    /// Counts the connections opened, so a caller can tell whether two batches went
    /// out on the same connection.
    connections: u64,
    /// Framed records of the current batch, reused from batch to batch.
    buf: Vec<u8>,
    /// Where each record of the current batch sits in `buf`.
    records: Vec<Range<usize>>,
    truncation_warnings: RateLimit,
}

/// What one delivered batch amounted to, for the caller's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Records written (every message of the batch, minus `oversized`).
    pub records: usize,
    /// Bytes written, framing included.
    pub bytes: usize,
    /// Records cut to `max_message_size`.
    pub truncated: usize,
    /// UDP records the operating system refused as too large (`EMSGSIZE`); logged, and
    /// not sent. Always 0 for the stream transports.
    pub oversized: usize,
    /// Which connection carried the batch (1 for the first one the sink opened, and
    /// so on). 0 when nothing was written.
    pub connection: u64,
}

/// Why a batch was not delivered. The connection has been dropped; send the batch again
/// later.
#[derive(Debug, thiserror::Error)]
#[error("syslog {destination}: {message}")]
pub struct SinkError {
    kind: SinkErrorKind,
    destination: Destination,
    message: String,
}

/// The class of a [`SinkError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkErrorKind {
    /// Name resolution or the TCP connect failed (refused, unreachable).
    Connect,
    /// TLS setup, handshake or certificate verification failed, or the receiver ended
    /// the TLS session with an alert.
    Tls,
    /// Writing or flushing failed.
    Write,
    /// The receiver closed or reset the connection.
    PeerClosed,
    /// Connecting, the handshake or a write took too long.
    Timeout,
}

/// Lets a message through at most once per interval and counts the ones it held back.
#[derive(Debug, Default)]
struct RateLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl Sink {
    /// A sink for `config`, used by `tenant` (for log lines). Does not connect: the
    /// first [`Sink::send`] does. For TLS it reads the CA bundle and the client
    /// certificate now, so a bad file is reported at start, and it warns when
    /// `tls_verify = false`.
    pub fn new(config: &SyslogConfig, tenant: &str) -> Result<Self, SinkError> {
        Ok(Self {
            tenant: tenant.to_owned(),
            writer: syslog::RecordWriter::new(config),
            connector: Connector::new(config)?,
            transport: None,
            connections: 0,
            buf: Vec::new(),
            records: Vec::new(),
            truncation_warnings: RateLimit::default(),
        })
    }

    /// The same sink with RFC 3164 timestamps in `zone` rather than the host's zone.
    pub fn with_zone(mut self, zone: syslog::Zone) -> Self {
        self.writer = self.writer.with_zone(zone);
        self
    }

    /// Where the records go.
    pub fn destination(&self) -> &Destination {
        self.connector.destination()
    }

    /// Whether a connection is open (it may still turn out broken on the next send).
    pub fn is_connected(&self) -> bool {
        self.transport.is_some()
    }

    /// Delivers `messages` as one batch: connects (or replaces a connection the receiver
    /// closed), writes every record, flushes, and checks that the connection survived.
    /// On `Err` nothing of the batch may be counted as delivered and the connection is
    /// gone; call again with the same batch after a backoff.
    ///
    /// Dropping the future part-way (a shutdown deadline) is safe in the same sense:
    /// the batch does not count as delivered, and the connection, if one was being
    /// used, is dropped without close_notify.
    pub async fn send(&mut self, messages: &[RenderedMessage]) -> Result<SendReport, SinkError> {
        if messages.is_empty() {
            return Ok(SendReport::default());
        }
        let now = Utc::now();
        self.buf.clear();
        self.records.clear();
        // Room for these records and their headers, reserved exactly: the buffer stays
        // with the tenant between batches, and doubling would keep up to twice that.
        let estimate: usize = messages.iter().map(|m| m.text.len() + HEADER_ROOM).sum();
        self.buf.reserve_exact(estimate);
        let mut truncated = 0;
        for msg in messages {
            let start = self.buf.len();
            let written = self.writer.write(msg, now, &mut self.buf);
            self.records.push(start..self.buf.len());
            // A record whose format replaced characters (CEF controls) lost data as a
            // cut one did, so it is counted and reported the same way.
            if written.truncated || msg.altered {
                truncated += 1;
                if let Some(suppressed) = self.truncation_warnings.allow(Instant::now()) {
                    if written.truncated {
                        tracing::warn!(
                            tenant = %self.tenant,
                            event_id = msg.event_id.as_deref().unwrap_or("-"),
                            limit = self.writer.max_message_size(),
                            suppressed,
                            "syslog record longer than max_message_size; truncated (further warnings at most once a minute)"
                        );
                    } else {
                        tracing::warn!(
                            tenant = %self.tenant,
                            event_id = msg.event_id.as_deref().unwrap_or("-"),
                            suppressed,
                            "control characters the record format cannot carry were replaced by spaces; counted as truncated (further warnings at most once a minute)"
                        );
                    }
                }
            }
        }

        // A connection the receiver closed since the last batch is replaced before
        // anything is written, so a restarted receiver costs no failed batch.
        if let Some(mut transport) = self.transport.take() {
            match transport.check_health().await {
                Ok(()) => self.transport = Some(transport),
                Err(e) => {
                    tracing::info!(tenant = %self.tenant, error = %e, "syslog connection lost; reconnecting");
                    transport.close(CLOSE_AFTER_ERROR_TIMEOUT).await;
                }
            }
        }
        let mut transport = match self.transport.take() {
            Some(transport) => transport,
            None => {
                let transport = self.connector.connect().await?;
                self.connections += 1;
                tracing::info!(tenant = %self.tenant, destination = %self.connector.destination(), "syslog connected");
                transport
            }
        };

        let outcome = match transport.write_batch(&self.buf, &self.records).await {
            Ok(outcome) => outcome,
            Err(e) => {
                transport.close(CLOSE_AFTER_ERROR_TIMEOUT).await;
                return Err(e);
            }
        };
        // Bytes written to a connection the receiver had already left are lost; only a
        // connection that is still open afterwards makes the batch count.
        if let Err(e) = transport.check_health().await {
            transport.close(CLOSE_AFTER_ERROR_TIMEOUT).await;
            return Err(e);
        }
        self.transport = Some(transport);

        let mut bytes = self.buf.len();
        for &i in &outcome.oversized {
            let range = self.records.get(i).cloned().unwrap_or_default();
            bytes -= range.len();
            let event_id = messages.get(i).and_then(|m| m.event_id.as_deref());
            tracing::error!(
                tenant = %self.tenant,
                destination = %self.connector.destination(),
                event_id = event_id.unwrap_or("-"),
                bytes = range.len(),
                "syslog datagram refused by the operating system as too large (EMSGSIZE); record not sent, lower max_message_size"
            );
        }
        Ok(SendReport {
            records: messages.len() - outcome.oversized.len(),
            bytes,
            truncated,
            oversized: outcome.oversized.len(),
            connection: self.connections,
        })
    }

    /// The connection that is open and still healthy now (read without blocking, as
    /// before every write), or `None`. A connection found closed by the receiver is
    /// dropped. The caller uses this to confirm that batches written some time ago on
    /// that connection were not left unread by a receiver that went away.
    pub async fn healthy_connection(&mut self) -> Option<u64> {
        let mut transport = self.transport.take()?;
        match transport.check_health().await {
            Ok(()) => {
                self.transport = Some(transport);
                Some(self.connections)
            }
            Err(e) => {
                tracing::info!(tenant = %self.tenant, error = %e, "syslog connection lost");
                transport.close(CLOSE_AFTER_ERROR_TIMEOUT).await;
                None
            }
        }
    }

    /// Closes the connection cleanly (TLS close_notify, then FIN), within 2 s. The sink
    /// can still be used afterwards; the next send connects again.
    pub async fn close(&mut self) {
        if let Some(transport) = self.transport.take() {
            transport.close(CLOSE_TIMEOUT).await;
            tracing::info!(tenant = %self.tenant, destination = %self.connector.destination(), "syslog connection closed");
        }
    }
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("tenant", &self.tenant)
            .field("destination", self.connector.destination())
            .field("connected", &self.transport.is_some())
            .finish_non_exhaustive()
    }
}

impl SinkError {
    /// What kind of failure it was.
    pub fn kind(&self) -> SinkErrorKind {
        self.kind
    }

    /// The destination it concerns.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    fn new(kind: SinkErrorKind, destination: &Destination, message: impl Into<String>) -> Self {
        Self {
            kind,
            destination: destination.clone(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SinkErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SinkErrorKind::Connect => "connect",
            SinkErrorKind::Tls => "tls",
            SinkErrorKind::Write => "write",
            SinkErrorKind::PeerClosed => "peer_closed",
            SinkErrorKind::Timeout => "timeout",
        })
    }
}

impl RateLimit {
    /// `Some(number held back since the last one)` if a message may go out at `now`.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < TRUNCATION_WARNING_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn truncation_warnings_at_most_once_a_minute() {
        let mut limit = RateLimit::default();
        let t0 = Instant::now();
        assert_eq!(limit.allow(t0), Some(0));
        assert_eq!(limit.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(limit.allow(t0 + Duration::from_secs(59)), None);
        assert_eq!(limit.allow(t0 + Duration::from_secs(60)), Some(2));
        assert_eq!(limit.allow(t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn a_send_can_run_on_a_multi_threaded_runtime() {
        fn is_send<T: Send>(_: &T) {}
        let mut cfg = crate::config::SyslogConfig {
            host: "127.0.0.1".into(),
            port: 9,
            protocol: crate::config::Protocol::Tcp,
            framing: crate::config::Framing::Lf,
            format: crate::config::Format::SplunkJson,
            header: crate::config::HeaderFormat::Rfc5424,
            facility: 1,
            app_name: "lookout-mra".into(),
            header_time: crate::config::HeaderTime::Event,
            hostname: "h".into(),
            custom_identifier: None,
            max_message_size: 65536,
            tls: crate::config::TlsConfig {
                ca_file: None,
                client_auth: None,
                verify: false,
                server_name: "localhost".into(),
            },
        };
        let mut sink = Sink::new(&cfg, "acme").expect("valid");
        is_send(&sink.send(&[]));
        is_send(&sink.close());
        cfg.protocol = crate::config::Protocol::Tls;
        let sink = Sink::new(&cfg, "acme").expect("tls_verify = false needs no files");
        assert!(!sink.is_connected());
    }

    #[test]
    fn errors_name_the_destination_and_the_kind() {
        let e = SinkError::new(
            SinkErrorKind::Connect,
            &Destination {
                host: "127.0.0.1".into(),
                port: 10514,
                protocol: crate::config::Protocol::Tcp,
            },
            "cannot connect: Connection refused (os error 111)",
        );
        assert_eq!(
            e.to_string(),
            "syslog 127.0.0.1:10514 (tcp): cannot connect: Connection refused (os error 111)"
        );
        assert_eq!(e.kind().to_string(), "connect");
    }
}
