//! One tenant: source → format → sink → commit, supervised.
//!
//! Two tasks per tenant, joined by a small bounded channel:
//!
//! - the **reader** pulls decoded batches from [`EventSource`] (which reconnects forever
//!   on its own) and puts them in the channel. When the channel is full, because the
//!   syslog destination is slow or down, the reader waits: the stream is not read, and
//!   nothing is dropped or buffered without limit;
//! - the **writer** formats each batch and hands it to the [`Sink`].
//!
//! Plain syslog over TCP or TLS has no acknowledgement: a record the kernel accepted
//! can still be lost if the receiver goes away before reading it. So a written batch is
//! first *unconfirmed*. It becomes *delivered* once it was written at least `settle`
//! ago and the connection that carried it is still open when read (the receiver did
//! not close or reset it). A delivered position is written to the state file at most
//! `commit_interval` after the batch was written, and at shutdown.
//!
//! When a write fails, or a connection that carried unconfirmed batches turns out to be
//! closed, nothing in memory is trusted: the writer tells the reader to **rewind** the
//! source to the last delivered position and re-reads from there. Duplicates are
//! possible after a failure; gaps are not. After a crash the stream resumes from the
//! committed position, so duplicates are bounded by one commit interval.
//!
//! The supervisor around the two tasks restarts them from the last committed position
//! if either ends unexpectedly (a panic included), after a backoff. A tenant never ends
//! on its own and never touches another tenant.

use crate::backoff::{Backoff, BackoffPolicy, Delay};
use crate::config::{ProxyConfig, TenantConfig};
use crate::dead_letter::DeadLetterFile;
use crate::event::{Batch, DeadLetter, Position};
use crate::format::{Formatter, RenderedMessage};
use crate::observe::TenantObserver;
use crate::position::{SavedPosition, StateError, StateFile};
use crate::sink::Sink;
use crate::source::{EventSource, SourceSnapshot, SourceStatus, StartPoint};
use chrono::Utc;
use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// How many decoded batches may wait between reader and writer. Small on purpose: it
/// only smooths the hand-over between parsing and sending, and with many tenants
/// backfilling at once every queued batch is memory (tens of KB each). With one slot a
/// one-tenant backfill took about 10 % more CPU per event (reader and writer wait for
/// each other more often); two keep both busy.
const QUEUE_BATCHES: usize = 2;

/// About how many bytes of rendered messages are handed to the sink at a time (see
/// [`Writer::handle`]): a write per 30–40 LEEF records, and little memory held per
/// tenant for rendered and framed records. Half of this cost a one-tenant backfill
/// about 15 % more CPU per event (more writes and connection checks).
const SEND_PIECE: usize = 32 * 1024;

/// The longest a written batch waits before its connection is checked to confirm it.
/// The receiver reads records within milliseconds; a receiver that is shutting down
/// closes its connections within this time, and that close is what the check sees.
const SETTLE_MAX: Duration = Duration::from_millis(250);

/// How often the progress line is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// How often a full dead-letter file is looked at again.
const DEAD_LETTER_RECHECK: Duration = Duration::from_secs(2);

/// How often the source's counters are copied into the metrics.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// A normal (exponential, capped, jittered) backoff step.
const NORMAL: Delay = Delay::Normal { retry_after: None };

/// Everything a tenant needs to run.
#[derive(Clone)]
pub struct TenantTask {
    pub config: TenantConfig,
    pub proxy: ProxyConfig,
    pub state_dir: PathBuf,
    pub commit_interval: Duration,
    pub observer: TenantObserver,
}

/// The two shutdown signals of a tenant.
#[derive(Clone)]
pub struct Shutdown {
    /// Stop reading the stream; deliver and commit what was read.
    pub stop_reading: CancellationToken,
    /// Give up delivering (the grace period is over); commit what was delivered.
    pub give_up: CancellationToken,
}

impl TenantTask {
    /// Runs until `shutdown.stop_reading` fires and the writer has drained, or
    /// `shutdown.give_up` fires. Returns an error only when the tenant cannot start at
    /// all (a corrupt state file).
    pub async fn run(self, shutdown: Shutdown) -> Result<(), StateError> {
        let name = self.config.entity_name.clone();
        let observer = self.observer.clone();
        let stop = shutdown.stop_reading.clone();
        let task = Arc::new(self);
        supervise(
            &name,
            &observer,
            &stop,
            BackoffPolicy::default(),
            move || {
                let task = Arc::clone(&task);
                let shutdown = shutdown.clone();
                async move {
                    // Re-read the file on every (re)start: it is the truth about delivery.
                    let state = StateFile::new(&task.state_dir, &task.config.entity_name);
                    let saved = state.load()?;
                    Ok(task.run_once(saved, &state, &shutdown).await)
                }
            },
        )
        .await
    }

    async fn run_once(
        &self,
        saved: Option<SavedPosition>,
        state: &StateFile,
        shutdown: &Shutdown,
    ) -> Outcome {
        let name = &self.config.entity_name;
        let committed = saved
            .as_ref()
            .and_then(|s| Position::new(s.position.clone()));
        let start = StartPoint::resolve(committed.clone(), &self.config);
        let reader_cancel = shutdown.stop_reading.child_token();
        let source = match EventSource::new(&self.config, &self.proxy, start, reader_cancel.clone())
        {
            Ok(source) => source,
            Err(e) => return Outcome::Failed(format!("cannot build the API client: {e}")),
        };
        let sink = match Sink::new(&self.config.syslog, name) {
            Ok(sink) => sink,
            Err(e) => return Outcome::Failed(format!("cannot set up the syslog destination: {e}")),
        };
        let status = source.status();
        let bridge = tokio::spawn(bridge_status(
            source.status(),
            self.observer.clone(),
            reader_cancel.clone(),
        ));
        let (tx, rx) = mpsc::channel::<(u64, Batch)>(QUEUE_BATCHES);
        let (rewind_tx, rewind_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_batches(source, tx, rewind_rx));
        let settle = SETTLE_MAX.min(self.commit_interval / 2);
        let writer = Writer {
            name: name.clone(),
            observer: self.observer.clone(),
            settle,
            commit_every: self.commit_interval.saturating_sub(settle),
            state: state.clone(),
            formatter: Formatter::new(
                self.config.syslog.format,
                name.clone(),
                self.config.syslog.custom_identifier.clone(),
            ),
            sink,
            dead_letters: DeadLetterFile::new(&self.state_dir, name),
            status,
            stop: shutdown.stop_reading.clone(),
            delivered_total: saved.as_ref().map_or(0, |s| s.delivered),
            confirmed: committed,
            pending: None,
            unconfirmed: VecDeque::new(),
            epoch: 0,
            rewind: rewind_tx,
            backoff: Backoff::new(BackoffPolicy::default()),
            failures: 0,
            last_commit: Instant::now(),
            progress: Progress::new(),
            messages: Vec::new(),
        };
        let written = tokio::spawn(writer.run(rx, shutdown.give_up.clone())).await;
        // The writer ends when the reader closed the channel or delivery was given up;
        // either way the reader has nothing more to do.
        reader_cancel.cancel();
        let read = reader.await;
        let _ = bridge.await;
        match (read, written) {
            (_, Err(join)) => Outcome::Failed(format!("writer task failed: {join}")),
            (Err(join), _) => Outcome::Failed(format!("reader task failed: {join}")),
            (Ok(()), Ok(())) if shutdown.stop_reading.is_cancelled() => Outcome::Stopped,
            (Ok(()), Ok(())) => Outcome::Failed("the event source ended unexpectedly".into()),
        }
    }
}

/// How one run of a tenant's pipeline ended.
#[derive(Debug)]
pub enum Outcome {
    /// Shutdown was requested and the pipeline drained.
    Stopped,
    /// Something ended the pipeline that should not have; restart it.
    Failed(String),
}

/// Runs `attempt` (in its own task, so that a panic is caught) until it reports
/// [`Outcome::Stopped`] or a start-up error, restarting it after a backoff whenever it
/// fails or panics. Failures are logged and counted; shutdown cancels the wait at once.
/// This is the only place that restarts a tenant.
pub async fn supervise<F, Fut>(
    name: &str,
    observer: &TenantObserver,
    stop: &CancellationToken,
    policy: BackoffPolicy,
    mut attempt: F,
) -> Result<(), StateError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Outcome, StateError>> + Send + 'static,
{
    let mut backoff = Backoff::new(policy);
    loop {
        let reason = match tokio::spawn(attempt()).await {
            Ok(Ok(Outcome::Stopped)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(Outcome::Failed(reason))) => reason,
            Err(join) if join.is_panic() => {
                let payload = join.into_panic();
                let text = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                format!("the tenant pipeline panicked: {text}")
            }
            Err(join) => format!("the tenant pipeline was cancelled: {join}"),
        };
        observer.restarted();
        observer.error(reason.clone());
        let delay = backoff.next_delay(NORMAL, &mut rand::rng());
        error!(
            tenant = %name,
            reason = %reason,
            delay_ms = delay.as_millis() as u64,
            "tenant pipeline failed; restarting from the last committed position"
        );
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// The reader task: the source reconnects on its own and ends only on cancellation.
/// Each batch carries the number of rewinds seen so far, so the writer can drop
/// batches read before its latest rewind request.
async fn read_batches(
    mut source: EventSource,
    tx: mpsc::Sender<(u64, Batch)>,
    mut rewinds: mpsc::UnboundedReceiver<Option<Position>>,
) {
    let mut epoch = 0u64;
    loop {
        // Room in the queue first, then the next batch: a batch is read from the
        // stream only when it can be handed on, so a stalled writer holds the stream
        // (back-pressure) without a decoded batch waiting here as well.
        let permit = tokio::select! {
            biased;
            Some(to) = rewinds.recv() => {
                epoch += 1;
                source.reset_to(to);
                continue;
            }
            permit = tx.reserve() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let batch = tokio::select! {
            biased;
            Some(to) = rewinds.recv() => {
                epoch += 1;
                source.reset_to(to);
                continue;
            }
            batch = source.next() => batch,
        };
        let Some(batch) = batch else { break };
        permit.send((epoch, batch));
    }
}

/// Copies the source's counters and health into the metrics and `/health`, once a
/// second and once more at the end. The source keeps its own counters so that it does
/// not depend on the metrics registry.
async fn bridge_status(
    status: Arc<SourceStatus>,
    observer: TenantObserver,
    cancel: CancellationToken,
) {
    let mut seen = status.snapshot();
    let mut tick = tokio::time::interval(STATUS_EVERY);
    loop {
        let stop = tokio::select! {
            _ = tick.tick() => false,
            _ = cancel.cancelled() => true,
        };
        let now = status.snapshot();
        apply_status(&seen, &now, &observer);
        seen = now;
        if stop {
            return;
        }
    }
}

fn apply_status(before: &SourceSnapshot, now: &SourceSnapshot, observer: &TenantObserver) {
    observer.received(now.received_events.saturating_sub(before.received_events));
    observer.duplicates(
        now.duplicates_dropped
            .saturating_sub(before.duplicates_dropped),
    );
    observer.token_fetches(now.token_fetches.saturating_sub(before.token_fetches));
    for (reason, count) in &now.reconnects {
        let old = before.reconnects.get(reason).copied().unwrap_or(0);
        observer.stream_reconnects(reason, count.saturating_sub(old));
    }
    if now.last_activity != before.last_activity && now.last_activity.is_some() {
        observer.alive();
    }
    if now.healthy {
        observer.flag(None);
    } else {
        observer.flag(Some(
            now.last_error
                .clone()
                .unwrap_or_else(|| "the event stream is failing".into()),
        ));
    }
    if let Some(error) = &now.last_error
        && now.last_error != before.last_error
    {
        observer.error(error.clone());
    }
}

/// The writer half: format, send, confirm, commit.
struct Writer {
    name: String,
    observer: TenantObserver,
    /// How long a written batch waits before its connection can confirm it.
    settle: Duration,
    /// How often a delivered position is written: `commit_interval − settle`, so a
    /// position reaches the disk within `commit_interval` of its batch being written.
    commit_every: Duration,
    state: StateFile,
    formatter: Formatter,
    sink: Sink,
    dead_letters: DeadLetterFile,
    /// Where a full dead-letter file is reported (`/health`, the healthy metric).
    status: Arc<SourceStatus>,
    /// Shutdown was requested (stop reading; deliver what was read).
    stop: CancellationToken,
    /// Events delivered since the state file was created.
    delivered_total: u64,
    /// The last delivered position (where a rewind goes back to).
    confirmed: Option<Position>,
    /// A delivered position not yet written to the state file.
    pending: Option<Position>,
    /// Batches written but not yet confirmed, oldest first.
    unconfirmed: VecDeque<Written>,
    /// Rewinds requested so far; batches the reader tagged earlier are stale.
    epoch: u64,
    rewind: mpsc::UnboundedSender<Option<Position>>,
    backoff: Backoff,
    failures: u32,
    last_commit: Instant,
    progress: Progress,
    /// Reused between batches.
    messages: Vec<RenderedMessage>,
}

/// How sending one piece of a batch ended.
enum Piece {
    /// Written on this connection.
    Sent(u64),
    /// The source was rewound; the rest of the batch is dropped (it will be read again).
    Rewound,
    /// The shutdown deadline came first.
    GaveUp,
}

/// A batch handed to the sink, waiting for confirmation.
struct Written {
    at: Instant,
    /// The sink connection that carried it; 0 when there was nothing to write.
    connection: u64,
    position: Option<Position>,
    events: u64,
    lag: Option<Duration>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<(u64, Batch)>, give_up: CancellationToken) {
        let mut progress_tick =
            tokio::time::interval_at(Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        loop {
            let commit_due = self.last_commit + self.commit_every;
            let confirm_due = self.unconfirmed.front().map(|w| w.at + self.settle);
            tokio::select! {
                item = rx.recv() => {
                    let Some((epoch, batch)) = item else { break };
                    if epoch != self.epoch {
                        continue; // read before the latest rewind; it will come again
                    }
                    if !self.handle(batch, &give_up).await {
                        if give_up.is_cancelled() {
                            warn!(tenant = %self.name, "shutdown deadline reached before the destination accepted the current batch; it is not committed and will be read again at the next start");
                        }
                        break;
                    }
                }
                _ = sleep_until_some(confirm_due), if confirm_due.is_some() => {
                    self.check_connection().await;
                }
                _ = tokio::time::sleep_until(commit_due), if self.pending.is_some() => {
                    self.commit();
                }
                _ = progress_tick.tick() => self.log_progress("progress"),
            }
        }
        // Shutdown: give the last batches their settle time (unless the grace period is
        // over), confirm what the connection vouches for, and commit that.
        if let Some(last) = self.unconfirmed.back() {
            let until = last.at + self.settle;
            tokio::select! {
                _ = tokio::time::sleep_until(until) => self.check_connection().await,
                _ = give_up.cancelled() => {}
            }
        }
        self.commit();
        self.sink.close().await;
        self.log_progress("stopped");
    }

    /// Formats and sends one batch. Returns false only when `give_up` fired first.
    ///
    /// Records go to the sink in pieces of about [`SEND_PIECE`] bytes as they are
    /// rendered, so neither the rendered messages nor the framed bytes of a whole batch
    /// are held at once (with many tenants that is most of the memory). Each piece
    /// waits for confirmation like a batch of its own; only the last carries the
    /// batch's position, so the position is committed only when every piece was
    /// confirmed.
    async fn handle(&mut self, mut batch: Batch, give_up: &CancellationToken) -> bool {
        if !batch.dead_letters.is_empty() {
            let epoch = self.epoch;
            if !self.wait_for_dead_letter_room(give_up).await {
                return false;
            }
            if self.epoch != epoch {
                // A rewind while waiting: this batch comes again after the ones it
                // rewound to, and must not be delivered before them.
                return true;
            }
        }
        self.messages.clear();
        let mut rendered = 0;
        let mut events = 0;
        let last = batch.events.len().saturating_sub(1);
        for (i, raw) in batch.events.iter().enumerate() {
            // Each event is decoded just before it is formatted and dropped right
            // after, so only JSON text waits in the queue.
            let before = self.messages.len();
            match raw.decode() {
                Ok(event) => self.formatter.render(&event, &mut self.messages),
                // The source checked that the item is a JSON object, so this is not
                // expected; if it happens, the event is kept, not lost.
                Err(e) => batch.dead_letters.push(DeadLetter {
                    reason: format!("event cannot be decoded: {e}"),
                    raw: raw.json().to_string(),
                }),
            }
            events += 1;
            rendered += self.messages[before..]
                .iter()
                .map(|m| m.text.len())
                .sum::<usize>();
            if (rendered < SEND_PIECE && i < last) || self.messages.is_empty() {
                continue;
            }
            let at = Instant::now();
            let connection = match self.send_piece(give_up).await {
                Piece::Sent(connection) => connection,
                Piece::Rewound => return true,
                Piece::GaveUp => return false,
            };
            // The formatter already parsed the event's `created_time`.
            let lag = self
                .messages
                .last()
                .and_then(|m| m.event_time)
                .and_then(|created| (Utc::now() - created.with_timezone(&Utc)).to_std().ok());
            self.unconfirmed.push_back(Written {
                at,
                connection,
                position: None,
                events: std::mem::take(&mut events),
                lag,
            });
            self.messages.clear();
            rendered = 0;
        }
        if !batch.dead_letters.is_empty() {
            let n = batch.dead_letters.len() as u64;
            match self.dead_letters.append(&batch.dead_letters) {
                Ok(()) => {
                    warn!(tenant = %self.name, count = n, file = %self.dead_letters.path().display(), "items could not be decoded; written to the dead-letter file")
                }
                Err(e) => {
                    error!(tenant = %self.name, count = n, file = %self.dead_letters.path().display(), error = %e, "cannot write the dead-letter file; the undecodable items are logged here instead");
                    for letter in &batch.dead_letters {
                        error!(tenant = %self.name, reason = %letter.reason, raw = %letter.raw, "undecodable item, not in the dead-letter file");
                    }
                }
            }
            self.observer.dead_lettered(n);
        }
        // The batch's position goes with its last piece. Events after that piece (only
        // undecodable ones give no record) or an empty batch make an entry of their
        // own, with no connection.
        match self.unconfirmed.back_mut() {
            Some(piece) if events == 0 && !batch.events.is_empty() && piece.position.is_none() => {
                piece.position = batch.position;
            }
            _ => self.unconfirmed.push_back(Written {
                at: Instant::now(),
                connection: 0,
                position: batch.position,
                events,
                lag: None,
            }),
        }
        true
    }

    /// Waits until the dead-letter file has room for this batch's dead letters. While
    /// it is full the batch is neither sent nor committed, so the position stays at the
    /// last delivered batch and nothing is lost; the reader is held by the full queue.
    /// The tenant is reported unhealthy, with the file and the fix, until an operator
    /// moves the file away. Earlier batches are still confirmed and committed. Returns
    /// false when shutdown comes first.
    async fn wait_for_dead_letter_room(&mut self, give_up: &CancellationToken) -> bool {
        let mut held = false;
        loop {
            match self.dead_letters.check_room() {
                Ok(()) => {
                    if held {
                        info!(tenant = %self.name, file = %self.dead_letters.path().display(), "the dead-letter file has room again; going on");
                        self.status.hold(None);
                    }
                    return true;
                }
                Err(e) => {
                    if !held {
                        error!(tenant = %self.name, error = %e, "dead-letter file full; this tenant waits at its last delivered position");
                        self.status.hold(Some(e.to_string()));
                        self.observer.flag(Some(e.to_string()));
                        held = true;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(DEAD_LETTER_RECHECK) => {}
                _ = give_up.cancelled() => return false,
                _ = self.stop.cancelled() => {
                    info!(tenant = %self.name, "stopping while the dead-letter file is full; the held batch will be read again at the next start");
                    return false;
                }
            }
            // What was written before the held batch is still confirmed and saved.
            if !self.unconfirmed.is_empty() {
                self.check_connection().await;
            }
            if self.pending.is_some() {
                self.commit();
            }
        }
    }

    /// Sends the rendered messages of one piece of a batch.
    async fn send_piece(&mut self, give_up: &CancellationToken) -> Piece {
        let sent = tokio::select! {
            sent = self.sink.send(&self.messages) => sent,
            _ = give_up.cancelled() => return Piece::GaveUp,
        };
        match sent {
            Ok(report) => {
                self.observer
                    .sent(report.bytes as u64, report.truncated as u64);
                if self.failures > 0 {
                    info!(tenant = %self.name, "syslog destination accepts records again");
                    self.failures = 0;
                    self.backoff.reset();
                }
                let connection = report.connection;
                if self
                    .unconfirmed
                    .iter()
                    .any(|w| w.connection != 0 && w.connection != connection)
                {
                    // The sink found its previous connection closed and opened a new
                    // one: what went out on the old one may never have been read.
                    self.rewind(
                        "the syslog connection closed before earlier records were confirmed",
                    );
                    return Piece::Rewound;
                }
                // `send` has just read the connection and found it open.
                self.confirm(Some(connection), Instant::now());
                Piece::Sent(connection)
            }
            Err(e) => {
                self.failures += 1;
                let delay = self.backoff.next_delay(NORMAL, &mut rand::rng());
                warn!(tenant = %self.name, error = %e, attempt = self.failures, delay_ms = delay.as_millis() as u64, "syslog delivery failed; re-reading from the last delivered position after the delay");
                self.observer.error(format!("syslog delivery failed: {e}"));
                self.observer.sink_reconnect();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = give_up.cancelled() => return Piece::GaveUp,
                }
                self.rewind("syslog delivery failed");
                Piece::Rewound
            }
        }
    }

    /// Reads the sink's connection and confirms what it vouches for; a closed
    /// connection with unconfirmed batches on it means a rewind.
    async fn check_connection(&mut self) {
        let healthy = self.sink.healthy_connection().await;
        self.confirm(healthy, Instant::now());
        let lost = self
            .unconfirmed
            .iter()
            .any(|w| w.connection != 0 && Some(w.connection) != healthy);
        if lost {
            self.rewind("the syslog connection closed before the last records were confirmed");
        }
    }

    /// Confirms, oldest first, the batches written at least `settle` before `now` on
    /// the connection `healthy` (or with nothing to write).
    fn confirm(&mut self, healthy: Option<u64>, now: Instant) {
        while let Some(w) = self.unconfirmed.front() {
            let settled = w.at + self.settle <= now;
            let vouched = w.connection == 0 || Some(w.connection) == healthy;
            if !(settled && vouched) {
                break;
            }
            let Some(w) = self.unconfirmed.pop_front() else {
                break;
            };
            self.delivered_total += w.events;
            self.observer.delivered(w.events, w.lag);
            self.progress.add(w.events, w.lag, w.position.as_ref());
            if let Some(position) = w.position {
                self.confirmed = Some(position.clone());
                self.pending = Some(position);
            }
        }
    }

    /// Forgets every unconfirmed batch and has the reader re-read from the last
    /// delivered position.
    fn rewind(&mut self, reason: &str) {
        let events: u64 = self.unconfirmed.iter().map(|w| w.events).sum();
        warn!(
            tenant = %self.name,
            reason,
            unconfirmed_events = events,
            from = self.confirmed.as_ref().map_or("the start position", |p| p.as_str()),
            "re-reading the stream from the last delivered position"
        );
        self.unconfirmed.clear();
        self.epoch += 1;
        // The reader ends only after the writer; a closed channel means shutdown.
        let _ = self.rewind.send(self.confirmed.clone());
    }

    /// Writes the delivered position, if it moved.
    fn commit(&mut self) {
        let Some(position) = self.pending.take() else {
            return;
        };
        let saved = SavedPosition {
            entity_name: self.name.clone(),
            position: position.as_str().to_string(),
            saved_at: Utc::now(),
            delivered: self.delivered_total,
        };
        match self.state.save(&saved) {
            Ok(()) => {
                self.observer.committed(position.as_str());
                self.last_commit = Instant::now();
            }
            Err(e) => {
                error!(tenant = %self.name, error = %e, "cannot save the stream position; will try again");
                self.pending = Some(position);
                // Try again after one interval rather than in a tight loop.
                self.last_commit = Instant::now();
            }
        }
    }

    fn log_progress(&mut self, what: &'static str) {
        let report = self.progress.take();
        info!(
            tenant = %self.name,
            delivered = self.delivered_total,
            events_per_second = format_args!("{:.1}", report.rate),
            lag_seconds = report.lag.map(|l| l.as_secs()),
            position = report.position.as_deref().unwrap_or("-"),
            "{what}"
        );
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for (the caller's
/// `select!` guard keeps that branch off then).
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the progress line reports about the last interval.
struct Progress {
    since: Instant,
    events: u64,
    lag: Option<Duration>,
    position: Option<String>,
}

struct ProgressReport {
    rate: f64,
    lag: Option<Duration>,
    position: Option<String>,
}

impl Progress {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            events: 0,
            lag: None,
            position: None,
        }
    }

    fn add(&mut self, events: u64, lag: Option<Duration>, position: Option<&Position>) {
        self.events += events;
        if lag.is_some() {
            self.lag = lag;
        }
        if let Some(p) = position {
            self.position = Some(p.as_str().to_string());
        }
    }

    /// The figures since the last call; the lag and position carry over.
    fn take(&mut self) -> ProgressReport {
        let secs = self.since.elapsed().as_secs_f64().max(0.001);
        let report = ProgressReport {
            rate: self.events as f64 / secs,
            lag: self.lag,
            position: self.position.clone(),
        };
        self.since = Instant::now();
        self.events = 0;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Observer;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick() -> BackoffPolicy {
        BackoffPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(20),
            ..BackoffPolicy::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stage_that_panics_once_is_restarted_and_goes_on() {
        let observer = Observer::new();
        let tenant = observer.tenant("acme", Duration::from_secs(15));
        let attempts = Arc::new(AtomicU32::new(0));
        let counted = attempts.clone();
        let stop = CancellationToken::new();
        let result = supervise("acme", &tenant, &stop, quick(), move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("stage blew up");
                }
                Ok(Outcome::Stopped)
            }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        let text = observer.metrics_text();
        assert!(
            text.contains("mrav2_tenant_restarts_total{tenant=\"acme\"} 1"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_retried_until_stop_and_never_end_the_tenant_alone() {
        let observer = Observer::new();
        let tenant = observer.tenant("acme", Duration::from_secs(15));
        let attempts = Arc::new(AtomicU32::new(0));
        let counted = attempts.clone();
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        let result = supervise("acme", &tenant, &stop, quick(), move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            if n == 5 {
                stopper.cancel();
            }
            async move { Ok(Outcome::Failed(format!("failure {n}"))) }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(attempts.load(Ordering::SeqCst), 6);
        assert_eq!(
            observer.health().tenants[0].last_error.as_deref(),
            Some("failure 5")
        );
    }

    #[tokio::test]
    async fn a_corrupt_state_file_is_a_start_up_error_not_a_retry() {
        let observer = Observer::new();
        let tenant = observer.tenant("acme", Duration::from_secs(15));
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path(), "acme");
        std::fs::write(file.path(), "garbage").unwrap();
        let stop = CancellationToken::new();
        let result = supervise("acme", &tenant, &stop, quick(), move || {
            let file = file.clone();
            async move {
                file.load()?;
                Ok(Outcome::Stopped)
            }
        })
        .await;
        let err = result.unwrap_err().to_string();
        assert!(err.contains("acme.position.json"), "{err}");
    }
}
