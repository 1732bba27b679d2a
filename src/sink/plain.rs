//! Plain syslog (UDP, TCP, TLS, standard output): no acknowledgement from the
//! receiver, so this sink decides on its own when a piece counts as delivered.
//!
//! - **UDP and stdout**: a piece is delivered once written (RFC 5426 gives UDP no more
//!   than that; a pipe reader has nothing to say).
//! - **TCP and TLS: the settle rule.** A piece is first *unconfirmed*. It becomes
//!   delivered once it was written at least `settle` ago and the connection that
//!   carried it is still open when read (the receiver did not close or reset it). A
//!   receiver that is shutting down closes its connections within that time, and that
//!   close is what the check sees; a record the kernel accepted on a connection the
//!   receiver then left unread is reported [`Receipt::Lost`], so the writer re-reads it.
//!   A receiver that stops reading for longer than `settle` and then vanishes can still
//!   lose what sat in its socket: only an application-level acknowledgement (RELP, HEC)
//!   closes that gap.
//!
//! How a connection is opened and judged healthy is [`super::transport`]'s business.

use super::transport::{Connector, Destination, Transport};
use super::{Records, SendReport, SinkError};
use crate::config::{Protocol, SyslogConfig};
use crate::format::RenderedMessage;
use crate::tenant::ledger::{Receipt, Ticket};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// The longest a written piece waits before its connection is checked to confirm it
/// (at most half the commit interval). The receiver reads records within
/// milliseconds; a receiver that is shutting down closes its connections within this
/// time, and that close is what the check sees.
const SETTLE_MAX: Duration = Duration::from_millis(250);

/// Time for a clean close on shutdown (close_notify, FIN, the receiver's FIN). Well
/// inside the 5 s shutdown budget.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time for a best-effort close of a connection that already failed.
const CLOSE_AFTER_ERROR_TIMEOUT: Duration = Duration::from_secs(1);

/// The syslog destination of one tenant over UDP, TCP, TLS or standard output.
pub struct PlainSink {
    tenant: String,
    records: Records,
    connector: Connector,
    transport: Option<Transport>,
    /// Whether pieces wait for the settle rule (TCP, TLS) or are delivered when written.
    settles: bool,
    settle: Duration,
    /// Counts the connections opened, so pieces can be matched to the connection that
    /// carried them.
    connections: u64,
    /// Pieces written on a stream and not yet confirmed, oldest first.
    unconfirmed: VecDeque<Unconfirmed>,
    receipts: Vec<Receipt>,
}

/// A piece written on a TCP or TLS connection, waiting for the settle rule.
#[derive(Debug)]
struct Unconfirmed {
    ticket: Ticket,
    at: Instant,
    connection: u64,
}

impl PlainSink {
    /// A sink for `config` (`protocol` UDP, TCP, TLS or stdout), for `tenant` (log
    /// lines); TCP and TLS pieces settle for 250 ms, or half of `commit_interval` if
    /// that is shorter. Does not connect: the first [`PlainSink::send`] does. For TLS
    /// the CA bundle and client certificate are read now, so a bad file is reported at
    /// start.
    pub fn new(
        config: &SyslogConfig,
        tenant: &str,
        commit_interval: Duration,
    ) -> Result<Self, SinkError> {
        Ok(Self {
            tenant: tenant.to_owned(),
            records: Records::new(config, tenant),
            connector: Connector::new(config)?,
            transport: None,
            settles: matches!(config.protocol, Protocol::Tcp | Protocol::Tls),
            settle: SETTLE_MAX.min(commit_interval / 2),
            connections: 0,
            unconfirmed: VecDeque::new(),
            receipts: Vec::new(),
        })
    }

    /// Where the records go.
    pub fn destination(&self) -> &Destination {
        self.connector.destination()
    }

    /// How long after writing a piece is confirmed at the earliest.
    pub fn confirmation_delay(&self) -> Duration {
        if self.settles {
            self.settle
        } else {
            Duration::ZERO
        }
    }

    /// Whether a connection is open (it may still turn out broken on the next send).
    pub fn is_connected(&self) -> bool {
        self.transport.is_some()
    }

    /// The record buffer, for tests that pin the time zone.
    pub(super) fn records_mut(&mut self) -> &mut Records {
        &mut self.records
    }

    /// Writes the piece `ticket`: connects (or replaces a connection the receiver
    /// closed), writes every record, flushes, and checks that the connection survived.
    /// Receipts follow (at once for UDP and stdout, by the settle rule for streams).
    ///
    /// On `Err` the connection is gone and every piece this sink held unconfirmed is
    /// forgotten: the caller counts them all lost. Dropping the future part-way (a
    /// shutdown deadline) is safe in the same sense.
    pub async fn send(
        &mut self,
        ticket: Ticket,
        messages: &[RenderedMessage],
    ) -> Result<SendReport, SinkError> {
        if messages.is_empty() {
            self.receipts.push(Receipt::Delivered(ticket));
            return Ok(SendReport::default());
        }
        let truncated = self.records.fill(messages, self.connector.destination());

        // A connection the receiver closed since the last piece is replaced before
        // anything is written, so a restarted receiver costs no failed piece. What went
        // out on it unconfirmed may never have been read: lost.
        if let Some(mut transport) = self.transport.take() {
            match transport.check_health().await {
                Ok(()) => self.transport = Some(transport),
                Err(e) => {
                    tracing::info!(tenant = %self.tenant, error = %e, "syslog connection lost; reconnecting");
                    transport.close(CLOSE_AFTER_ERROR_TIMEOUT).await;
                    if let Some(first) = self.unconfirmed.front() {
                        self.receipts.push(Receipt::Lost(first.ticket));
                        self.unconfirmed.clear();
                    }
                }
            }
        }
        let mut transport = match self.transport.take() {
            Some(transport) => transport,
            None => match self.connector.connect().await {
                Ok(transport) => {
                    self.connections += 1;
                    tracing::info!(tenant = %self.tenant, destination = %self.connector.destination(), "syslog connected");
                    transport
                }
                Err(e) => return Err(self.failed(e)),
            },
        };

        let outcome = match transport
            .write_batch(self.records.bytes(), self.records.ranges())
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                transport.close(CLOSE_AFTER_ERROR_TIMEOUT).await;
                return Err(self.failed(e));
            }
        };
        // Bytes written to a connection the receiver had already left are lost; only a
        // connection that is still open afterwards makes the piece count.
        if let Err(e) = transport.check_health().await {
            transport.close(CLOSE_AFTER_ERROR_TIMEOUT).await;
            return Err(self.failed(e));
        }
        self.transport = Some(transport);

        let now = Instant::now();
        if self.settles {
            self.unconfirmed.push_back(Unconfirmed {
                ticket,
                at: now,
                connection: self.connections,
            });
            // The connection was just read and found open: it vouches for what settled.
            self.confirm(Some(self.connections), now);
        } else {
            self.receipts.push(Receipt::Delivered(ticket));
        }
        let report = self.records.report(messages, &outcome.oversized, truncated);
        self.records.log_oversized(&outcome.oversized, messages);
        Ok(report)
    }

    /// Waits until the oldest unconfirmed piece has settled. Cancel-safe (a sleep);
    /// never resolves when nothing waits.
    pub async fn ready(&mut self) {
        match self.unconfirmed.front() {
            Some(first) => tokio::time::sleep_until(first.at + self.settle).await,
            None => std::future::pending().await,
        }
    }

    /// Reads the connection and confirms what it vouches for; a closed connection with
    /// unconfirmed pieces on it reports them lost.
    pub async fn collect(&mut self) {
        let healthy = self.healthy_connection().await;
        self.confirm(healthy, Instant::now());
        if let Some(first) = self.unconfirmed.front()
            && Some(first.connection) != healthy
        {
            self.receipts.push(Receipt::Lost(first.ticket));
            self.unconfirmed.clear();
        }
    }

    /// Receipts produced since the last call, oldest first.
    pub fn receipts(&mut self) -> std::vec::Drain<'_, Receipt> {
        self.receipts.drain(..)
    }

    /// Whether pieces wait for a receipt.
    pub fn awaiting(&self) -> bool {
        !self.unconfirmed.is_empty()
    }

    /// Forgets the pieces waiting for a receipt (the caller re-reads them).
    pub fn forget(&mut self) {
        self.unconfirmed.clear();
        self.receipts.clear();
    }

    /// Closes the connection cleanly (TLS close_notify, then FIN), within 2 s. The sink
    /// can still be used afterwards; the next send connects again.
    pub async fn close(&mut self) {
        if let Some(transport) = self.transport.take() {
            transport.close(CLOSE_TIMEOUT).await;
            tracing::info!(tenant = %self.tenant, destination = %self.connector.destination(), "syslog connection closed");
        }
    }

    /// The connection that is open and still healthy now (read without blocking), or
    /// `None`. A connection found closed by the receiver is dropped.
    async fn healthy_connection(&mut self) -> Option<u64> {
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

    /// Confirms, oldest first, the pieces written at least `settle` before `now` on the
    /// connection `healthy`.
    fn confirm(&mut self, healthy: Option<u64>, now: Instant) {
        while let Some(first) = self.unconfirmed.front() {
            if first.at + self.settle > now || Some(first.connection) != healthy {
                break;
            }
            self.receipts.push(Receipt::Delivered(first.ticket));
            self.unconfirmed.pop_front();
        }
    }

    /// After a failed send: nothing held unconfirmed can be trusted any more.
    fn failed(&mut self, error: SinkError) -> SinkError {
        self.unconfirmed.clear();
        error
    }
}
