//! Where a tenant's records go, and when they count as delivered there.
//!
//! A [`Sink`] takes pieces of rendered messages, each with the [`Ticket`] the
//! tenant's delivery ledger issued for it, and answers later with [`Receipt`]s: the
//! piece was delivered, or it (and everything after it) was lost. **Each sink decides
//! what "delivered" means for its transport**; the tenant only applies receipts:
//!
//! | sink | transport | a piece is delivered when |
//! |---|---|---|
//! | [`plain::PlainSink`] | UDP, stdout | it was written |
//! | [`plain::PlainSink`] | TCP, TLS | it was written and the connection was still open `settle` later (the settle rule) |
//! | [`relp::RelpSink`] | RELP, RELP over TLS | the receiver answered `200` to each of its records |
//! | [`hec::HecSink`] | Splunk HEC | HEC answered 200 code 0; with acknowledgements, its ack id was reported true |
//!
//! A sink never retries and never sleeps for a backoff: on `Err` it has dropped its
//! connection and forgotten what it held, the tenant counts every outstanding piece
//! lost, waits its backoff and re-reads the source from the last confirmed position.
//! Duplicates after a failure are possible; loss is not.
//!
//! The parts: record header and framing ([`syslog`], pure), connections
//! ([`transport`]), and the sinks themselves.

pub mod hec;
pub mod plain;
pub mod relp;
pub mod syslog;
pub mod transport;

use crate::config::{DestinationConfig, SyslogConfig};
use crate::event::{DeadLetter, Untrusted};
use crate::format::RenderedMessage;
use crate::tenant::ledger::{Receipt, Ticket};
use chrono::Utc;
use std::fmt;
use std::ops::Range;
use std::time::Duration;
use tokio::time::Instant;
pub use transport::Destination;

/// At most one truncation warning per tenant in this interval.
const TRUNCATION_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Bytes reserved per record for its syslog header and framing (an RFC 5424 header
/// with a long hostname is about 120).
const HEADER_ROOM: usize = 160;

/// One tenant's destination: a closed set of sinks.
pub enum Sink {
    /// UDP, TCP, TLS or standard output.
    Plain(plain::PlainSink),
    /// RELP, plain or over TLS.
    Relp(relp::RelpSink),
    /// Splunk HTTP Event Collector.
    Hec(hec::HecSink),
}

/// What one piece written amounted to, for the caller's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Records written (every message of the piece, minus `oversized`).
    pub records: usize,
    /// Bytes written, framing included.
    pub bytes: usize,
    /// Records cut to `max_message_size`.
    pub truncated: usize,
    /// UDP records the operating system refused as too large (`EMSGSIZE`); logged, and
    /// not sent. Always 0 for the stream transports.
    pub oversized: usize,
    /// Whether the destination took something of this piece now (syslog: written;
    /// HEC: a request was answered with success). False when the sink only gathered
    /// the piece for a later request.
    pub accepted: bool,
}

/// Why a piece was not delivered. The connection has been dropped; everything the sink
/// held unreceipted is to be sent again later.
#[derive(Debug, thiserror::Error)]
#[error("{destination}: {message}")]
pub struct SinkError {
    kind: SinkErrorKind,
    /// `syslog 127.0.0.1:514 (tcp)`, `splunk_hec NAME (URL)`.
    destination: String,
    message: String,
    /// How long the receiver asked to be left alone (HTTP `Retry-After`).
    retry_after: Option<Duration>,
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
    /// The receiver answered that it did not take a record (RELP: a code other than
    /// 200).
    Refused,
    /// The receiver answered that it cannot take records now (HEC busy, internal
    /// error, rate limit): send them again after the backoff.
    Busy,
    /// The receiver is not set up to take these records (HEC token refused or
    /// disabled, index not allowed, acknowledgement off): an operator must fix it.
    /// Nothing is dead-lettered; the records are sent again after the backoff.
    Misconfigured,
}

/// The framed records of the piece being sent, reused from piece to piece, and the
/// truncation warnings about them.
pub(crate) struct Records {
    tenant: String,
    writer: syslog::RecordWriter,
    /// Framed records back to back.
    buf: Vec<u8>,
    /// Where each record sits in `buf`.
    ranges: Vec<Range<usize>>,
    truncation_warnings: RateLimit,
}

/// Lets a message through at most once per interval and counts the ones it held back.
#[derive(Debug, Default)]
struct RateLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl Sink {
    /// The sink `config` asks for, for `tenant` (log lines), whose position is
    /// committed every `commit_interval`. Does not connect; files it needs (CA bundle,
    /// client certificate) are read now, so a bad one is reported at start.
    pub fn new(
        config: &SyslogConfig,
        tenant: &str,
        commit_interval: Duration,
    ) -> Result<Self, SinkError> {
        if config.protocol.is_relp() {
            Ok(Sink::Relp(relp::RelpSink::new(config, tenant)?))
        } else {
            Ok(Sink::Plain(plain::PlainSink::new(
                config,
                tenant,
                commit_interval,
            )?))
        }
    }

    /// The sink of `destination`, for `tenant`; see [`Sink::new`].
    pub fn for_destination(
        destination: &DestinationConfig,
        tenant: &str,
        commit_interval: Duration,
    ) -> Result<Self, SinkError> {
        match destination {
            DestinationConfig::Syslog { syslog, .. } => Self::new(syslog, tenant, commit_interval),
            DestinationConfig::SplunkHec(config) => {
                Ok(Sink::Hec(hec::HecSink::new(config, tenant)?))
            }
        }
    }

    /// How long after sending a piece is receipted at the earliest (the settle time of
    /// plain TCP/TLS; zero where the receipt depends only on the receiver).
    pub fn confirmation_delay(&self) -> Duration {
        match self {
            Sink::Plain(sink) => sink.confirmation_delay(),
            Sink::Relp(_) => Duration::ZERO,
            Sink::Hec(_) => Duration::ZERO,
        }
    }

    /// The same sink with RFC 3164 timestamps in `zone` rather than the host's zone.
    pub fn with_zone(mut self, zone: syslog::Zone) -> Self {
        match &mut self {
            Sink::Plain(sink) => sink.records_mut().set_zone(zone),
            Sink::Relp(sink) => sink.records_mut().set_zone(zone),
            // HEC envelopes carry epoch seconds: no zone.
            Sink::Hec(_) => {}
        }
        self
    }

    /// Where the records go, as log lines name it.
    pub fn destination(&self) -> &dyn fmt::Display {
        match self {
            Sink::Plain(sink) => sink.destination(),
            Sink::Relp(sink) => sink.destination(),
            Sink::Hec(sink) => sink.label_string(),
        }
    }

    /// Whether a connection is open (it may still turn out broken on the next send).
    pub fn is_connected(&self) -> bool {
        match self {
            Sink::Plain(sink) => sink.is_connected(),
            Sink::Relp(sink) => sink.is_connected(),
            Sink::Hec(_) => true,
        }
    }

    /// Sends the piece `ticket`. Receipts for it (and earlier pieces) may be ready
    /// afterwards ([`Sink::receipts`]). On `Err`, every piece not yet receipted is lost.
    pub async fn send(
        &mut self,
        ticket: Ticket,
        messages: &[RenderedMessage],
    ) -> Result<SendReport, SinkError> {
        match self {
            Sink::Plain(sink) => sink.send(ticket, messages).await,
            Sink::Relp(sink) => sink.send(ticket, messages).await,
            Sink::Hec(sink) => sink.send(ticket, messages).await,
        }
    }

    /// Waits until [`Sink::collect`] has something to look at. Cancel-safe, so it can
    /// race new batches in a `select!`; never resolves while nothing awaits a receipt.
    pub async fn ready(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Plain(sink) => {
                sink.ready().await;
                Ok(())
            }
            Sink::Relp(sink) => sink.ready().await,
            Sink::Hec(sink) => {
                sink.ready().await;
                Ok(())
            }
        }
    }

    /// Turns what [`Sink::ready`] waited for into receipts. Not cancel-safe: call it to
    /// completion. On `Err`, every piece not yet receipted is lost.
    pub async fn collect(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Plain(sink) => {
                sink.collect().await;
                Ok(())
            }
            Sink::Relp(sink) => sink.collect().await,
            Sink::Hec(sink) => sink.collect().await,
        }
    }

    /// Receipts produced since the last call, oldest first.
    pub fn receipts(&mut self) -> std::vec::Drain<'_, Receipt> {
        match self {
            Sink::Plain(sink) => sink.receipts(),
            Sink::Relp(sink) => sink.receipts(),
            Sink::Hec(sink) => sink.receipts(),
        }
    }

    /// Records the destination refused for what they are (HEC per-event errors),
    /// for the dead-letter file; they count as delivered in the receipts. Plain syslog
    /// never refuses a record.
    pub fn take_dead_letters(&mut self) -> Vec<DeadLetter> {
        match self {
            Sink::Plain(_) | Sink::Relp(_) => Vec::new(),
            Sink::Hec(sink) => sink.take_dead_letters(),
        }
    }

    /// The destination's name and what it did since the last call, for the metrics
    /// (HEC only).
    pub fn take_report(&mut self) -> Option<(&str, crate::observe::HecReport)> {
        match self {
            Sink::Plain(_) | Sink::Relp(_) => None,
            Sink::Hec(sink) => {
                let report = sink.take_report();
                Some((sink.name(), report))
            }
        }
    }

    /// Whether pieces wait for a receipt.
    pub fn awaiting(&self) -> bool {
        match self {
            Sink::Plain(sink) => sink.awaiting(),
            Sink::Relp(sink) => sink.awaiting(),
            Sink::Hec(sink) => sink.awaiting(),
        }
    }

    /// Forgets every piece waiting for a receipt: the caller re-reads them.
    pub fn forget(&mut self) {
        match self {
            Sink::Plain(sink) => sink.forget(),
            Sink::Relp(sink) => sink.forget(),
            Sink::Hec(sink) => sink.forget(),
        }
    }

    /// Closes the connection cleanly, within 2 s. The sink can still be used
    /// afterwards; the next send connects again.
    pub async fn close(&mut self) {
        match self {
            Sink::Plain(sink) => sink.close().await,
            Sink::Relp(sink) => sink.close().await,
            Sink::Hec(sink) => sink.close().await,
        }
    }
}

impl Records {
    pub(crate) fn new(config: &SyslogConfig, tenant: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            writer: syslog::RecordWriter::new(config),
            buf: Vec::new(),
            ranges: Vec::new(),
            truncation_warnings: RateLimit::default(),
        }
    }

    pub(crate) fn set_zone(&mut self, zone: syslog::Zone) {
        self.writer = self.writer.clone().with_zone(zone);
    }

    /// Renders and frames `messages`, replacing the previous piece. Returns how many
    /// records were cut to `max_message_size` (warned about at most once a minute).
    pub(crate) fn fill(
        &mut self,
        messages: &[RenderedMessage],
        destination: &Destination,
    ) -> usize {
        let now = Utc::now();
        self.buf.clear();
        self.ranges.clear();
        // Room for these records and their headers, reserved exactly: the buffer stays
        // with the tenant between pieces, and doubling would keep up to twice that.
        let estimate: usize = messages.iter().map(|m| m.text.len() + HEADER_ROOM).sum();
        self.buf.reserve_exact(estimate);
        let mut truncated = 0;
        for msg in messages {
            let start = self.buf.len();
            let written = self.writer.write(msg, now, &mut self.buf);
            self.ranges.push(start..self.buf.len());
            // A record whose format replaced characters (CEF controls) lost data as a
            // cut one did, so it is counted and reported the same way.
            if written.truncated || msg.altered {
                truncated += 1;
                if let Some(suppressed) = self.truncation_warnings.allow(Instant::now()) {
                    let event_id = Untrusted(msg.event_id.as_deref().unwrap_or("-"));
                    if written.truncated {
                        tracing::warn!(
                            tenant = %self.tenant,
                            destination = %destination,
                            event_id = %event_id,
                            limit = self.writer.max_message_size(),
                            suppressed,
                            "syslog record longer than max_message_size; truncated (further warnings at most once a minute)"
                        );
                    } else {
                        tracing::warn!(
                            tenant = %self.tenant,
                            destination = %destination,
                            event_id = %event_id,
                            suppressed,
                            "control characters the record format cannot carry were replaced by spaces; counted as truncated (further warnings at most once a minute)"
                        );
                    }
                }
            }
        }
        truncated
    }

    /// The framed records back to back.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Where each record sits in [`Records::bytes`].
    pub(crate) fn ranges(&self) -> &[Range<usize>] {
        &self.ranges
    }

    /// The figures of the piece just written, `oversized` records left out.
    pub(crate) fn report(
        &self,
        messages: &[RenderedMessage],
        oversized: &[usize],
        truncated: usize,
    ) -> SendReport {
        let dropped: usize = oversized
            .iter()
            .filter_map(|&i| self.ranges.get(i))
            .map(|r| r.len())
            .sum();
        SendReport {
            records: messages.len() - oversized.len(),
            bytes: self.buf.len() - dropped,
            truncated,
            oversized: oversized.len(),
            accepted: true,
        }
    }

    /// Logs each UDP record the operating system refused as too large.
    pub(crate) fn log_oversized(&self, oversized: &[usize], messages: &[RenderedMessage]) {
        for &i in oversized {
            let bytes = self.ranges.get(i).map_or(0, |r| r.len());
            let event_id = messages.get(i).and_then(|m| m.event_id.as_deref());
            tracing::error!(
                tenant = %self.tenant,
                event_id = %Untrusted(event_id.unwrap_or("-")),
                bytes,
                "syslog datagram refused by the operating system as too large (EMSGSIZE); record not sent, lower max_message_size"
            );
        }
    }
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("destination", &self.destination().to_string())
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl SinkError {
    /// What kind of failure it was.
    pub fn kind(&self) -> SinkErrorKind {
        self.kind
    }

    /// The destination it concerns, as log lines name it.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The delay the receiver asked for before the next attempt, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    pub(crate) fn new(
        kind: SinkErrorKind,
        destination: &Destination,
        message: impl Into<String>,
    ) -> Self {
        Self::labelled(kind, format!("syslog {destination}"), message)
    }

    /// An error of the destination named `destination` (the whole label).
    pub(crate) fn labelled(
        kind: SinkErrorKind,
        destination: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            destination: destination.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, with the receiver's `Retry-After`.
    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
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
            SinkErrorKind::Refused => "refused",
            SinkErrorKind::Busy => "busy",
            SinkErrorKind::Misconfigured => "misconfigured",
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
            relp_window: 128,
            max_events_per_second: 0,
            tls: crate::config::TlsConfig {
                ca_file: None,
                client_auth: None,
                verify: false,
                server_name: "localhost".into(),
            },
        };
        let mut sink = Sink::new(&cfg, "acme", Duration::from_secs(1)).expect("valid");
        let mut ledger = crate::tenant::ledger::Ledger::new(None);
        is_send(&sink.send(ledger.issue(0, None), &[]));
        is_send(&sink.ready());
        is_send(&sink.collect());
        is_send(&sink.close());
        cfg.protocol = crate::config::Protocol::Tls;
        let sink = Sink::new(&cfg, "acme", Duration::from_secs(1))
            .expect("tls_verify = false needs no files");
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
