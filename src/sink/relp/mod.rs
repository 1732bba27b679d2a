//! RELP, rsyslog's Reliable Event Logging Protocol (version 0, as librelp and rsyslog's
//! `imrelp` speak it): every record is answered, so a record counts as delivered when
//! the receiver's `200` for it arrived, and nothing else does.
//!
//! - [`frame`]: frames, transaction numbers and answers on the wire (pure).
//! - [`session`]: one session over TCP or TLS: `open`, a window of `syslog` commands,
//!   their answers, `close` (I/O).
//!
//! - [`RelpSink`]: the tenant's RELP destination: maps answers to the ledger's
//!   tickets. A refusal or a broken session fails the sink; the tenant backs off and
//!   re-reads from the first unanswered record, so everything unanswered is sent again
//!   on the next session, in order.

pub mod frame;
pub mod session;

pub use frame::Txnr;
pub use session::{Answer, RelpSession};

use super::transport::{Connector, Destination};
use super::{Records, SendReport, SinkError, SinkErrorKind};
use crate::config::SyslogConfig;
use crate::format::RenderedMessage;
use crate::tenant::ledger::{Receipt, Ticket};
use std::collections::VecDeque;
use std::time::Duration;

/// Time for an orderly `close` on shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// One tenant's RELP destination: a piece is delivered when the receiver answered
/// `200` to every one of its records. A refusal (any other code) or a broken session
/// fails the sink, so that the tenant backs off and sends everything unanswered again
/// on a new session, in order.
pub struct RelpSink {
    tenant: String,
    records: Records,
    connector: Connector,
    window: usize,
    /// Boxed: a session holds its stream and buffers inline.
    session: Option<Box<RelpSession>>,
    /// Each record sent and not answered: its transaction number and piece.
    waiting: VecDeque<(Txnr, Ticket)>,
    /// Pieces sent: how many of their records still wait for an answer, oldest first.
    pieces: VecDeque<(Ticket, usize)>,
    receipts: Vec<Receipt>,
}

impl RelpSink {
    /// A sink for `config` (`protocol` relp or relp-tls), for `tenant` (log lines). Does
    /// not connect; for relp-tls the CA bundle and client certificate are read now.
    pub fn new(config: &SyslogConfig, tenant: &str) -> Result<Self, SinkError> {
        Ok(Self {
            tenant: tenant.to_owned(),
            records: Records::new(config, tenant),
            connector: Connector::new(config)?,
            window: config.relp_window,
            session: None,
            waiting: VecDeque::new(),
            pieces: VecDeque::new(),
            receipts: Vec::new(),
        })
    }

    /// Where the records go.
    pub fn destination(&self) -> &Destination {
        self.connector.destination()
    }

    /// Whether a session is open.
    pub fn is_connected(&self) -> bool {
        self.session.is_some()
    }

    /// The record buffer, for tests that pin the time zone.
    pub(in crate::sink) fn records_mut(&mut self) -> &mut Records {
        &mut self.records
    }

    /// Sends every record of the piece `ticket` as a `syslog` command (opening a
    /// session first if there is none) and flushes them. Receipts follow as answers
    /// arrive. On `Err` the session is gone and every unanswered piece is forgotten.
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
        if self.session.is_none() {
            match RelpSession::open(&self.connector, self.window).await {
                Ok(session) => {
                    tracing::info!(tenant = %self.tenant, destination = %self.connector.destination(), window = self.window, "relp session open");
                    self.session = Some(Box::new(session));
                }
                Err(e) => return Err(self.broken(e)),
            }
        }
        // Counted before the records go out: answers may arrive while they are sent.
        self.pieces.push_back((ticket, self.records.ranges().len()));
        if let Err(e) = self.send_records(ticket).await {
            let _ = self.absorb();
            return Err(self.broken(e));
        }
        if let Err(e) = self.absorb() {
            return Err(self.broken(e));
        }
        Ok(self.records.report(messages, &[], truncated))
    }

    /// Waits for answers. Cancel-safe; never resolves while nothing is unanswered. On
    /// `Err` the session broke: answers read before count, everything else
    /// unanswered is forgotten.
    pub async fn ready(&mut self) -> Result<(), SinkError> {
        let read = match &mut self.session {
            Some(session) if !self.pieces.is_empty() => session.read_answers().await,
            _ => std::future::pending().await,
        };
        match read {
            Ok(()) => Ok(()),
            Err(e) => {
                // Nothing below awaits, so a `select!` that drops this future cannot
                // leave the sink half-failed.
                let _ = self.absorb();
                Err(self.broken(e))
            }
        }
    }

    /// Turns the answers read into receipts. On `Err` (a refusal) the session is
    /// dropped and every unanswered piece forgotten.
    pub async fn collect(&mut self) -> Result<(), SinkError> {
        self.absorb().map_err(|e| self.broken(e))
    }

    /// Receipts produced since the last call, oldest first.
    pub fn receipts(&mut self) -> std::vec::Drain<'_, Receipt> {
        self.receipts.drain(..)
    }

    /// Whether pieces wait for answers.
    pub fn awaiting(&self) -> bool {
        !self.pieces.is_empty()
    }

    /// Forgets every piece waiting for answers: the caller re-reads them.
    pub fn forget(&mut self) {
        self.waiting.clear();
        self.pieces.clear();
        self.receipts.clear();
    }

    /// Ends the session in order (`close`, its answer, then the connection), within
    /// 2 s. Answers that arrive while closing still count.
    pub async fn close(&mut self) {
        if let Some(session) = self.session.take() {
            let late = session.close(CLOSE_TIMEOUT).await;
            // Answers that arrived while closing still deliver their pieces.
            for (txnr, answer) in late {
                let _ = self.answer(txnr, answer);
            }
            tracing::info!(tenant = %self.tenant, destination = %self.connector.destination(), "relp session closed");
        }
    }

    async fn send_records(&mut self, ticket: Ticket) -> Result<(), SinkError> {
        let Some(session) = self.session.as_mut() else {
            return Ok(());
        };
        for range in self.records.ranges() {
            let record = &self.records.bytes()[range.clone()];
            let txnr = session.send(record).await?;
            self.waiting.push_back((txnr, ticket));
        }
        session.flush().await
    }

    /// Applies the answers the session has read.
    fn absorb(&mut self) -> Result<(), SinkError> {
        let Some(session) = self.session.as_mut() else {
            return Ok(());
        };
        let answers: Vec<_> = session.take_answers().collect();
        let mut result = Ok(());
        for (txnr, answer) in answers {
            if let Err(e) = self.answer(txnr, answer) {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// One answer: a `200` counts its record; a refusal fails the sink.
    fn answer(&mut self, txnr: Txnr, answer: Answer) -> Result<(), SinkError> {
        let Some(i) = self.waiting.iter().position(|(t, _)| *t == txnr) else {
            return Ok(()); // forgotten after an earlier failure
        };
        let (_, ticket) = self.waiting.remove(i).expect("the index was just found");
        match answer {
            Answer::Accepted => {
                if let Some(piece) = self.pieces.iter_mut().find(|(t, _)| *t == ticket) {
                    piece.1 -= 1;
                }
                while let Some(&(t, 0)) = self.pieces.front() {
                    self.receipts.push(Receipt::Delivered(t));
                    self.pieces.pop_front();
                }
                Ok(())
            }
            Answer::Refused { code, text } => {
                tracing::error!(tenant = %self.tenant, destination = %self.connector.destination(), code, text = %text, "the relp receiver refused a record; sending it again after a backoff");
                Err(SinkError::new(
                    SinkErrorKind::Refused,
                    self.connector.destination(),
                    format!("the receiver refused a record: {code} {text}"),
                ))
            }
        }
    }

    /// After a failure: the session is dropped (a broken session has nothing left to
    /// close in order) and everything unanswered forgotten. Receipts already produced
    /// stay for the caller.
    fn broken(&mut self, error: SinkError) -> SinkError {
        self.session = None;
        self.waiting.clear();
        self.pieces.clear();
        error
    }
}
