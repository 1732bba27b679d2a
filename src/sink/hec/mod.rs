//! Splunk HTTP Event Collector (`docs/receivers/splunk-hec.md`): events as JSON envelopes over
//! HTTPS, delivered when HEC says so.
//!
//! - **Without acknowledgements**, a request is delivered when HEC answers 200 with
//!   code 0.
//! - **With acknowledgements** (`acknowledgements = true`, Splunk Enterprise), a 200
//!   carries an `ackId`; the request is delivered once `/services/collector/ack` reports
//!   that id `true`. Ids are polled about once a second, all pending ids in one query.
//!   An id not reported within `ack_timeout` counts as lost: its pieces, and every
//!   piece after them, are read and sent again (duplicates possible, loss not).
//!
//! The writer hands pieces (a ticket and its messages); this sink gathers their
//! envelopes until a request is full or the writer is idle, then sends. Up to
//! [`MAX_IN_FLIGHT`] requests travel at once, each in a task of its own that
//! compresses and sends it: the writer renders the next request while the previous
//! ones are compressed and answered. Answers are acted on oldest first; two requests
//! in flight may be indexed in either order. A piece may
//! span several requests and a request may hold several pieces: every envelope knows
//! its ticket, and a ticket is delivered when all its envelopes are (indexed, or kept
//! as a dead letter).
//!
//! Each response is classified by [`response::classify`]. HEC's per-event refusals
//! (`invalid-event-number`, or a request refused as a whole and narrowed down by
//! splitting, like 413) make a dead letter of exactly the refused envelope, with HEC's
//! code and text; the indexed prefix of that request is never sent again. Receiver
//! configuration problems (401, 403, code 7, code 14) and passing conditions (busy,
//! internal errors) are returned as [`SinkError`]s, so the writer backs off and re-reads:
//! nothing is dead-lettered or skipped for them.
//!
//! A token refused with 401 or 403 is read again from `token_file` (or its
//! environment variable) before the next request, and a changed token is used at once
//! (`HecSink::reread_token`): rotating the token never needs a restart.
//!
//! The request bodies and the response rules are pure ([`request`], [`response`]);
//! this module is the HTTP shell around them.

pub mod request;
pub mod response;

use super::{SendReport, SinkError, SinkErrorKind};
use crate::config::{HecConfig, Secret, SecretSource};
use crate::event::DeadLetter;
use crate::format::RenderedMessage;
use crate::observe::HecReport;
use crate::tenant::ledger::{Receipt, Ticket};
use request::{EnvelopeFields, Envelopes};
use response::Action;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

/// How often pending acknowledgement ids are polled.
pub const ACK_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The longest gathered envelopes wait for more before they are sent in a request
/// that is not full.
pub const LINGER: Duration = Duration::from_millis(100);

/// Most ids in one acknowledgement query.
const ACK_POLL_MAX_IDS: usize = 1000;

/// Connect (TCP + TLS) timeout of every HEC request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of a response body read (HEC's are tiny; anything longer is cut).
const RESPONSE_MAX: usize = 64 * 1024;

/// Most event requests sent and not answered yet. With one, the writer waits for
/// every answer before it renders more; with two, one request is compressed and
/// answered while the next is gathered. More would hold more memory for no gain on a
/// single tenant's stream.
pub const MAX_IN_FLIGHT: usize = 2;

/// One tenant's HEC destination.
pub struct HecSink {
    tenant: String,
    /// NAME of `[destination:NAME]`.
    name: String,
    fields: EnvelopeFields,
    /// How to reach the collector; shared with the tasks sending event requests.
    collector: Arc<Collector>,
    /// The token in the collector's `authorization`, for reading it again (boxed:
    /// rarely used, and it keeps [`super::Sink`]'s variants of similar size).
    token: Box<HecToken>,
    acknowledgements: bool,
    batch_max_events: usize,
    batch_max_bytes: usize,
    ack_timeout: Duration,
    /// Envelopes gathered for the next request, and the ticket of each, and when the
    /// first of them was gathered.
    filling: Envelopes,
    gathered_at: Option<Instant>,
    filling_owners: Vec<Ticket>,
    /// Requests to send (whole ones, or what is left of one HEC refused part of),
    /// in order, waiting for room in flight.
    to_send: VecDeque<Request>,
    /// Requests sent and not acted on yet, oldest first.
    in_flight: VecDeque<InFlight>,
    /// A request was answered with success since the last `send` returned.
    answered: bool,
    /// Envelopes sent or gathered and not yet delivered, per ticket.
    remaining: HashMap<Ticket, usize>,
    /// Requests answered with an `ackId`, oldest first.
    unacknowledged: VecDeque<AwaitingAck>,
    /// When acknowledgements were last polled.
    last_poll: Option<Instant>,
    receipts: Vec<Receipt>,
    dead_letters: Vec<DeadLetter>,
    stats: HecReport,
}

/// The token in use, where it came from, and whether HEC refused it (401 or 403)
/// since it was last read.
struct HecToken {
    value: Secret,
    source: SecretSource,
    refused: bool,
}

/// A request whose `ackId` awaits `true`.
#[derive(Debug)]
struct AwaitingAck {
    id: u64,
    sent: Instant,
    owners: Vec<Ticket>,
}

/// One request to send: envelopes and the ticket of each.
struct Request {
    envelopes: Envelopes,
    owners: Vec<Ticket>,
}

/// What a request needs to reach the collector. A new token makes a new one; requests
/// in flight keep the one they were sent with.
#[derive(Clone)]
struct Collector {
    client: reqwest::Client,
    event_url: String,
    ack_url: String,
    authorization: reqwest::header::HeaderValue,
    channel: String,
    gzip: bool,
    /// `splunk_hec NAME (URL)`, for messages.
    label: String,
    /// The name the collector's certificate must hold, and where trust comes from
    /// (for messages).
    server_name: String,
    trust: String,
}

/// A status, the parsed `Retry-After` and up to [`RESPONSE_MAX`] bytes of the body.
type Answer = (u16, Option<Duration>, Vec<u8>);

/// What the task sending an event request gives back: its envelopes and the answer.
type Sent = (Envelopes, Result<Answer, SinkError>);

/// An event request sent and not acted on yet.
struct InFlight {
    owners: Vec<Ticket>,
    /// The task compressing and sending it (aborted when dropped).
    task: AbortOnDropHandle<Sent>,
    /// Its outcome, once [`HecSink::ready`] saw the task end.
    done: Option<Sent>,
}

/// The `Authorization` header of `token`, marked sensitive; the error says why it
/// cannot be one.
fn authorization(token: &Secret) -> Result<reqwest::header::HeaderValue, String> {
    let mut value = reqwest::header::HeaderValue::try_from(format!("Splunk {}", token.expose()))
        .map_err(|_| {
            "the token contains characters that cannot be sent in an HTTP header; copy it again from Splunk".to_string()
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The request channel of each (tenant, destination) for the life of the process: a
/// pipeline restarted after a failure keeps polling in the same channel.
static CHANNELS: Mutex<Vec<((String, String), String)>> = Mutex::new(Vec::new());

impl HecSink {
    /// A sink for `config`, for `tenant` (log lines). Builds the HTTP client (reads
    /// `ca_file` and the client certificate now, so a bad file is reported at start);
    /// sends nothing.
    pub fn new(config: &HecConfig, tenant: &str) -> Result<Self, SinkError> {
        let label = format!("splunk_hec {} ({})", config.name, config.url);
        let error = |kind, message: String| SinkError::labelled(kind, label.clone(), message);
        crate::tls::install_crypto_provider();
        // The certificate must hold `tls_server_name` (default: the URL's host).
        let (mut tls, trust) =
            super::transport::client_config(&config.tls, &label, "HEC collector", true)
                .map_err(|m| error(SinkErrorKind::Tls, m))?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .user_agent(crate::USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| {
                error(
                    SinkErrorKind::Tls,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        let base = config.url.as_str().trim_end_matches('/');
        // The token is a secret like the application key: never in a log line, even
        // quoted back by a collector or a proxy.
        crate::untrusted::remember(config.token.expose());
        let authorization =
            authorization(&config.token).map_err(|m| error(SinkErrorKind::Misconfigured, m))?;
        if config.url.scheme() == "http" {
            tracing::warn!(tenant, destination = %label, "HEC over plain http: the token and the events travel unencrypted");
        }
        Ok(Self {
            tenant: tenant.to_owned(),
            name: config.name.clone(),
            fields: EnvelopeFields {
                host: config.host.clone(),
                source: config.source.clone(),
                sourcetype: config.sourcetype.clone(),
                index: config.index.clone(),
            },
            collector: Arc::new(Collector {
                client,
                event_url: format!("{base}/services/collector/event"),
                ack_url: format!("{base}/services/collector/ack"),
                authorization,
                channel: channel(tenant, &config.name),
                gzip: config.gzip,
                label,
                server_name: config.tls.server_name.clone(),
                trust,
            }),
            token: Box::new(HecToken {
                value: config.token.clone(),
                source: config.token_source.clone(),
                refused: false,
            }),
            acknowledgements: config.acknowledgements,
            batch_max_events: config.batch_max_events,
            batch_max_bytes: config.batch_max_bytes,
            ack_timeout: config.ack_timeout,
            to_send: VecDeque::new(),
            in_flight: VecDeque::new(),
            answered: false,
            filling: Envelopes::new(),
            gathered_at: None,
            filling_owners: Vec::new(),
            remaining: HashMap::new(),
            unacknowledged: VecDeque::new(),
            last_poll: None,
            receipts: Vec::new(),
            dead_letters: Vec::new(),
            stats: HecReport::default(),
        })
    }

    /// After HEC refused the token (401 or 403): reads it again from `token_file` or its
    /// environment variable, and takes it if it changed. Logs at info where it was
    /// read from and whether it changed (never the token).
    fn reread_token(&mut self) {
        if !self.token.refused || self.token.source == SecretSource::ConfigFile {
            return;
        }
        let changed = match self.token.source.read(crate::config::load::token_text) {
            Ok(Some(token)) if token != self.token.value => match authorization(&token) {
                Ok(value) => {
                    crate::untrusted::remember(token.expose());
                    let mut collector = Collector::clone(&self.collector);
                    collector.authorization = value;
                    self.collector = Arc::new(collector);
                    self.token.value = token;
                    true
                }
                Err(problem) => {
                    tracing::warn!(tenant = %self.tenant, destination = %self.collector.label, source = %self.token.source, %problem, "hec refused the token and the one read again cannot be used; keeping the token in use");
                    return;
                }
            },
            Ok(_) => false,
            Err(problem) => {
                tracing::warn!(tenant = %self.tenant, destination = %self.collector.label, source = %self.token.source, %problem, "hec refused the token and it cannot be read again; keeping the token in use");
                return;
            }
        };
        if changed {
            self.token.refused = false;
            tracing::info!(tenant = %self.tenant, destination = %self.collector.label, source = %self.token.source, "hec refused the token; re-read it from its source and it changed; using the new token");
        } else {
            let fix = if self.token.source.can_change() {
                "put the new token there"
            } else {
                "a running process's environment does not change; restart with the new token"
            };
            tracing::info!(tenant = %self.tenant, destination = %self.collector.label, source = %self.token.source, "hec refused the token; re-read it from its source, it is unchanged; {fix}");
        }
    }

    /// `splunk_hec NAME (URL)`.
    pub fn label(&self) -> &str {
        &self.collector.label
    }

    /// NAME of `[destination:NAME]`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The label, as the writer logs it.
    pub(super) fn label_string(&self) -> &String {
        &self.collector.label
    }

    /// The request channel (a UUID) this sink sends in.
    pub fn channel(&self) -> &str {
        &self.collector.channel
    }

    /// What happened since the last call, for the metrics.
    pub fn take_report(&mut self) -> HecReport {
        std::mem::take(&mut self.stats)
    }

    /// Gathers the envelopes of the piece `ticket`; sends whole requests once the
    /// gathered envelopes reach a batch limit (the rest go when the writer is idle:
    /// [`HecSink::ready`]), waiting for the answer to the oldest request in flight
    /// when [`MAX_IN_FLIGHT`] are. On `Err` every piece not yet receipted is lost.
    pub async fn send(
        &mut self,
        ticket: Ticket,
        messages: &[RenderedMessage],
    ) -> Result<SendReport, SinkError> {
        if messages.is_empty() {
            self.receipts.push(Receipt::Delivered(ticket));
            return Ok(SendReport::default());
        }
        let before = self.filling.sizes().sum::<usize>();
        if self.filling.is_empty() {
            self.gathered_at = Some(Instant::now());
        }
        for message in messages {
            self.filling.push(&self.fields, message);
            self.filling_owners.push(ticket);
        }
        *self.remaining.entry(ticket).or_default() += messages.len();
        let bytes = self.filling.sizes().sum::<usize>() - before;
        let full = self.filling.len() >= self.batch_max_events
            || self.filling_bytes() >= self.batch_max_bytes;
        if full {
            self.flush(false).await?;
        }
        Ok(SendReport {
            records: messages.len(),
            bytes,
            truncated: 0,
            oversized: 0,
            accepted: std::mem::take(&mut self.answered),
        })
    }

    /// Waits until there is something to do: the oldest request in flight answered,
    /// gathered envelopes to send (at once), or acknowledgements to poll (about once
    /// a second). Cancel-safe (an answer seen is kept for [`HecSink::collect`]); never
    /// resolves while nothing awaits a receipt.
    pub async fn ready(&mut self) {
        let answered = self.in_flight.front().is_some_and(|f| f.done.is_some());
        let room = !self.to_send.is_empty() && self.in_flight.len() < MAX_IN_FLIGHT;
        if answered || room {
            return;
        }
        let due = self.flush_due().into_iter().chain(self.poll_due()).min();
        let timer = async move {
            match due {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending().await,
            }
        };
        match self.in_flight.front_mut() {
            Some(oldest) => tokio::select! {
                sent = &mut oldest.task => oldest.done = Some(joined(sent, &self.collector.label)),
                () = timer => {}
            },
            None => timer.await,
        }
    }

    /// Acts on the answers that came, sends what was gathered or is to be sent again,
    /// and polls the acknowledgements that are due. Not cancel-safe. On `Err` every
    /// piece not yet receipted is lost.
    pub async fn collect(&mut self) -> Result<(), SinkError> {
        while self
            .in_flight
            .front()
            .is_some_and(|f| f.done.is_some() || f.task.is_finished())
        {
            self.settle_oldest().await?;
        }
        self.pump().await?;
        let now = Instant::now();
        if self.flush_due().is_some_and(|due| due <= now) {
            self.flush(true).await?;
        }
        if self.poll_due().is_some_and(|due| due <= now) {
            self.poll_acks().await?;
        }
        Ok(())
    }

    /// When the gathered envelopes are to be sent although no request is full: at
    /// most [`LINGER`] after the first of them, so that a backfill fills requests
    /// and a trickle of live events is not held for long.
    fn flush_due(&self) -> Option<Instant> {
        self.gathered_at
            .filter(|_| !self.filling.is_empty())
            .map(|at| at + LINGER)
    }

    /// When pending acknowledgements are to be polled next.
    fn poll_due(&self) -> Option<Instant> {
        let oldest = self.unacknowledged.front()?;
        Some(match self.last_poll {
            Some(t) => t + ACK_POLL_INTERVAL,
            // The first poll goes at once.
            None => oldest.sent,
        })
    }

    /// Receipts produced since the last call, oldest first.
    pub fn receipts(&mut self) -> std::vec::Drain<'_, Receipt> {
        self.receipts.drain(..)
    }

    /// Events HEC refused for what they are, for the dead-letter file.
    pub fn take_dead_letters(&mut self) -> Vec<DeadLetter> {
        std::mem::take(&mut self.dead_letters)
    }

    /// Whether pieces wait for a receipt.
    pub fn awaiting(&self) -> bool {
        !self.filling.is_empty()
            || !self.to_send.is_empty()
            || !self.in_flight.is_empty()
            || !self.unacknowledged.is_empty()
    }

    /// Forgets every piece waiting for a receipt (the caller re-reads them); requests
    /// in flight are abandoned.
    pub fn forget(&mut self) {
        self.filling.clear();
        self.filling_owners.clear();
        self.to_send.clear();
        self.in_flight.clear();
        self.remaining.clear();
        self.unacknowledged.clear();
        self.receipts.clear();
    }

    /// Nothing to close: connections are pooled by the HTTP client and dropped with it.
    pub async fn close(&mut self) {}

    fn filling_bytes(&self) -> usize {
        self.filling.sizes().sum()
    }

    /// Sends the gathered envelopes in requests within the batch limits: all of them
    /// (`everything`, when the writer is idle), or all but a last request that is not
    /// full yet. Returns once every request is in flight (at most [`MAX_IN_FLIGHT`],
    /// acting on the oldest answers to make room).
    async fn flush(&mut self, everything: bool) -> Result<(), SinkError> {
        let envelopes = std::mem::take(&mut self.filling);
        let owners = std::mem::take(&mut self.filling_owners);
        let mut ranges = request::plan(
            envelopes.sizes(),
            self.batch_max_events,
            self.batch_max_bytes,
        );
        // While the writer is busy, a request that is not full yet waits for more.
        let tail = if everything || ranges.len() < 2 {
            None
        } else {
            ranges.pop()
        };
        for range in ranges {
            self.to_send.push_back(Request {
                envelopes: envelopes.slice(range.clone()),
                owners: owners[range].to_vec(),
            });
        }
        match tail {
            Some(range) => {
                self.filling = envelopes.slice(range.clone());
                self.filling_owners = owners[range].to_vec();
                self.gathered_at = Some(Instant::now());
            }
            None => {
                // Keep the buffer's memory for the next requests.
                self.filling = envelopes;
                self.filling.clear();
            }
        }
        self.pump().await
    }

    /// Puts the requests waiting in `to_send` in flight, in order, waiting for the
    /// answer to the oldest one in flight (and acting on it) while there is no room.
    async fn pump(&mut self) -> Result<(), SinkError> {
        loop {
            while self.in_flight.len() < MAX_IN_FLIGHT
                && let Some(request) = self.to_send.pop_front()
            {
                self.start(request);
            }
            if self.to_send.is_empty() {
                return Ok(());
            }
            self.settle_oldest().await?;
        }
    }

    /// Sends `request` in a task of its own, which compresses it, sends it and reads
    /// the answer.
    fn start(&mut self, request: Request) {
        self.reread_token();
        let Request { envelopes, owners } = request;
        let collector = Arc::clone(&self.collector);
        self.stats.requests += 1;
        let task = tokio::spawn(async move {
            let answer = collector.send_events(&envelopes).await;
            (envelopes, answer)
        });
        self.in_flight.push_back(InFlight {
            owners,
            task: AbortOnDropHandle::new(task),
            done: None,
        });
    }

    /// Waits for the answer to the oldest request in flight and acts on it. On `Err`
    /// every piece not yet receipted is forgotten (and lost for the caller).
    async fn settle_oldest(&mut self) -> Result<(), SinkError> {
        let Some(mut oldest) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let (envelopes, answer) = match oldest.done.take() {
            Some(done) => done,
            None => joined((&mut oldest.task).await, &self.collector.label),
        };
        let request = Request {
            envelopes,
            owners: oldest.owners,
        };
        let acted = self.act(request, answer);
        if acted.is_err() {
            self.forget();
        }
        acted
    }

    /// Acts on the answer to one request; envelopes to send again go to the front of
    /// `to_send`, in order.
    fn act(
        &mut self,
        request: Request,
        answer: Result<Answer, SinkError>,
    ) -> Result<(), SinkError> {
        let (status, retry_after, answer) = answer?;
        self.token.refused = matches!(status, 401 | 403);
        let count = request.envelopes.len();
        let action = response::classify(status, &answer, count, self.acknowledgements, retry_after);
        let parsed = response::Body::parse(&answer);
        self.count_code(status, parsed.code.unwrap_or(-1));
        tracing::debug!(tenant = %self.tenant, destination = %self.collector.label, status, envelopes = count, ?action, "hec request answered");
        match action {
            Action::Delivered => {
                self.answered = true;
                for ticket in request.owners {
                    self.done(ticket);
                }
            }
            Action::AwaitAck(id) => {
                self.answered = true;
                self.unacknowledged.push_back(AwaitingAck {
                    id,
                    sent: Instant::now(),
                    owners: request.owners,
                });
            }
            Action::Rejected { index, reason } => {
                for &ticket in &request.owners[..index] {
                    self.done(ticket);
                }
                self.dead_letter(&request, index, &reason);
                if index + 1 < count {
                    self.stats.resent += (count - index - 1) as u64;
                    self.to_send.push_front(Request {
                        envelopes: request.envelopes.slice(index + 1..count),
                        owners: request.owners[index + 1..].to_vec(),
                    });
                }
            }
            Action::Split(reason) => {
                if count <= 1 {
                    self.dead_letter(&request, 0, &reason);
                } else {
                    let half = count / 2;
                    self.stats.resent += count as u64;
                    self.to_send.push_front(Request {
                        envelopes: request.envelopes.slice(half..count),
                        owners: request.owners[half..].to_vec(),
                    });
                    self.to_send.push_front(Request {
                        envelopes: request.envelopes.slice(0..half),
                        owners: request.owners[..half].to_vec(),
                    });
                }
            }
            Action::Misconfigured { reason, fix } => {
                return Err(SinkError::labelled(
                    SinkErrorKind::Misconfigured,
                    self.collector.label.clone(),
                    format!("the collector refused the events ({reason}); {fix}"),
                ));
            }
            Action::Retry {
                reason,
                retry_after,
            } => {
                return Err(SinkError::labelled(
                    SinkErrorKind::Busy,
                    self.collector.label.clone(),
                    format!("the collector cannot take events now ({reason}); sending them again after the backoff"),
                )
                .with_retry_after(retry_after));
            }
        }
        Ok(())
    }

    /// Polls every pending acknowledgement id (up to [`ACK_POLL_MAX_IDS`]) in one
    /// query; delivers what is reported true, and reports the oldest request whose
    /// acknowledgement is overdue as lost. A failed poll is logged and tried again at
    /// the next one (`ack_timeout` bounds how long that can go on), except a receiver
    /// configuration problem (token refused, acknowledgement off), which is an error.
    async fn poll_acks(&mut self) -> Result<(), SinkError> {
        self.reread_token();
        self.last_poll = Some(Instant::now());
        let ids: Vec<u64> = self
            .unacknowledged
            .iter()
            .take(ACK_POLL_MAX_IDS)
            .map(|a| a.id)
            .collect();
        let builder = self
            .collector
            .post(&self.collector.ack_url)
            .body(response::ack_query(ids));
        let answer = self.collector.exchange(builder).await;
        if let Ok((status, _, _)) = &answer {
            self.token.refused = matches!(status, 401 | 403);
        }
        match answer {
            Ok((200, _, body)) => {
                let acked = response::acknowledged(&body);
                let now = Instant::now();
                let mut delivered = Vec::new();
                self.unacknowledged.retain_mut(|a| {
                    if acked.contains(&a.id) {
                        delivered.push((std::mem::take(&mut a.owners), now - a.sent));
                        false
                    } else {
                        true
                    }
                });
                for (owners, latency) in delivered {
                    self.stats.acked += 1;
                    self.stats.ack_latency += latency;
                    for ticket in owners {
                        self.done(ticket);
                    }
                }
            }
            Ok((status, _, body)) => {
                // A token or acknowledgement setting refused here needs an operator as
                // much as on an event request; anything else may pass.
                if let Action::Misconfigured { reason, fix } =
                    response::classify(status, &body, 1, true, None)
                {
                    return Err(SinkError::labelled(
                        SinkErrorKind::Misconfigured,
                        self.collector.label.clone(),
                        format!(
                            "the collector refused the acknowledgement query ({reason}); {fix}"
                        ),
                    ));
                }
                let reason = response::Reason::describe(status, &body);
                tracing::warn!(tenant = %self.tenant, destination = %self.collector.label, %reason, "hec acknowledgement query refused; trying again in a second");
            }
            Err(e) => {
                tracing::warn!(tenant = %self.tenant, error = %e, "hec acknowledgement query failed; trying again in a second");
            }
        }
        if let Some(oldest) = self.unacknowledged.front()
            && oldest.sent.elapsed() >= self.ack_timeout
        {
            self.stats.ack_timeouts += 1;
            self.stats.resent += oldest.owners.len() as u64;
            tracing::warn!(
                tenant = %self.tenant,
                destination = %self.collector.label,
                ack_id = oldest.id,
                ack_timeout_s = self.ack_timeout.as_secs(),
                "hec acknowledgement not received within ack_timeout; the events are sent again"
            );
            let first = oldest.owners.first().copied();
            if let Some(ticket) = first {
                self.receipts.push(Receipt::Lost(ticket));
            }
        }
        Ok(())
    }

    /// One envelope of `ticket` is done (indexed or kept as a dead letter).
    fn done(&mut self, ticket: Ticket) {
        if let Some(left) = self.remaining.get_mut(&ticket) {
            *left -= 1;
            if *left == 0 {
                self.remaining.remove(&ticket);
                self.receipts.push(Receipt::Delivered(ticket));
            }
        }
    }

    /// Keeps envelope `index` of `request` as a dead letter with HEC's code and text.
    fn dead_letter(&mut self, request: &Request, index: usize, reason: &response::Reason) {
        let raw = request
            .envelopes
            .get(index)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        tracing::error!(tenant = %self.tenant, destination = %self.collector.label, %reason, "hec refused an event; it is kept in the dead-letter file");
        self.dead_letters.push(DeadLetter {
            reason: format!("splunk hec refused the event: {reason}"),
            raw,
            destination: Some(self.name.clone()),
        });
        if let Some(&ticket) = request.owners.get(index) {
            self.done(ticket);
        }
    }

    fn count_code(&mut self, status: u16, code: i64) {
        match self
            .stats
            .responses
            .iter_mut()
            .find(|(s, c, _)| *s == status && *c == code)
        {
            Some((_, _, n)) => *n += 1,
            None => self.stats.responses.push((status, code, 1)),
        }
    }
}

impl Collector {
    /// A POST to `url` with the token, the content type and the channel.
    fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.client
            .post(url)
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Splunk-Request-Channel", &self.channel)
    }

    /// Sends `envelopes` as one event request, gzip-compressed unless compression is
    /// off.
    async fn send_events(&self, envelopes: &Envelopes) -> Result<Answer, SinkError> {
        let plain = envelopes.body(0..envelopes.len());
        let mut builder = self.post(&self.event_url);
        let body = if self.gzip {
            builder = builder.header(reqwest::header::CONTENT_ENCODING, "gzip");
            request::gzip(plain)
        } else {
            plain.to_vec()
        };
        self.exchange(builder.body(body)).await
    }

    /// Sends a request; returns the status, the parsed `Retry-After` and up to
    /// [`RESPONSE_MAX`] bytes of the body.
    async fn exchange(&self, builder: reqwest::RequestBuilder) -> Result<Answer, SinkError> {
        let transport = |e: reqwest::Error| {
            let tls = rustls_error(&e);
            let kind = if tls.is_some() {
                SinkErrorKind::Tls
            } else if e.is_timeout() {
                SinkErrorKind::Timeout
            } else if e.is_connect() {
                SinkErrorKind::Connect
            } else {
                SinkErrorKind::Write
            };
            let message = match tls {
                Some(tls) => format!(
                    "tls: {}",
                    super::transport::describe_rustls(tls, &self.server_name, &self.trust)
                ),
                None => crate::source::client::describe_transport_error(&e),
            };
            SinkError::labelled(kind, self.label.clone(), message)
        };
        let mut response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                crate::backoff::parse_retry_after(
                    v,
                    chrono::Utc::now(),
                    &crate::backoff::BackoffPolicy::default(),
                )
            });
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            let room = RESPONSE_MAX.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
        Ok((status, retry_after, body))
    }
}

/// The outcome of a request's task; a task that panicked or was cancelled counts as a
/// failed request.
fn joined(sent: Result<Sent, tokio::task::JoinError>, label: &str) -> Sent {
    sent.unwrap_or_else(|e| {
        (
            Envelopes::new(),
            Err(SinkError::labelled(
                SinkErrorKind::Write,
                label.to_owned(),
                format!("the request was not completed: {e}"),
            )),
        )
    })
}

/// `check-config --probe` for a HEC destination: `GET /services/collector/health`,
/// then an event request with an empty body, which HEC answers after checking the
/// token and before indexing anything (400 code 5 "No data" for a good token). Returns
/// the lines to print; `Err` when the collector is unreachable, unhealthy or refuses
/// the token.
pub async fn probe(config: &HecConfig) -> Result<String, String> {
    let sink = HecSink::new(config, "probe").map_err(|e| e.to_string())?;
    let sink = &sink.collector;
    let base = config.url.as_str().trim_end_matches('/');
    let (status, _, body) = sink
        .exchange(sink.client.get(format!("{base}/services/collector/health")))
        .await
        .map_err(|e| e.to_string())?;
    if let response::Health::Unhealthy(reason) = response::health(status, &body) {
        return Err(format!("{}: health check: {reason}", sink.label));
    }
    let request = sink.post(&sink.event_url);
    let (status, _, body) = sink.exchange(request).await.map_err(|e| e.to_string())?;
    let parsed = response::Body::parse(&body);
    match (status, parsed.code) {
        (400, Some(5)) | (200, Some(0)) => Ok(format!(
            "{}: HEC is healthy and accepts the token (checked with an empty request; nothing indexed)",
            sink.label
        )),
        _ => match response::classify(status, &body, 1, config.acknowledgements, None) {
            Action::Misconfigured { reason, fix } => Err(format!(
                "{}: HEC is healthy but refuses the token ({reason}); {fix}",
                sink.label
            )),
            _ => Ok(format!(
                "{}: HEC is healthy; token not checked (the empty request was answered {})",
                sink.label,
                response::Reason::describe(status, &body)
            )),
        },
    }
}

/// The rustls error somewhere in the cause chain of an HTTP client error (a refused
/// certificate, an alert from the collector), if there is one. The TLS layers wrap it
/// in I/O errors, sometimes twice; an I/O error's `source` skips what it wraps, so
/// those are opened here.
fn rustls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    fn inside<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let wrapped: &(dyn std::error::Error + 'static) =
            e.downcast_ref::<std::io::Error>()?.get_ref()?;
        inside(wrapped)
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(tls) = inside(cause) {
            return Some(tls);
        }
        source = cause.source();
    }
    None
}

/// The channel of (`tenant`, `destination`) in this process: a random UUID made on
/// first use.
fn channel(tenant: &str, destination: &str) -> String {
    let mut channels = CHANNELS.lock().unwrap_or_else(PoisonError::into_inner);
    let key = (tenant.to_owned(), destination.to_owned());
    if let Some((_, uuid)) = channels.iter().find(|(k, _)| *k == key) {
        return uuid.clone();
    }
    let uuid = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .to_string();
    channels.push((key, uuid.clone()));
    uuid
}
