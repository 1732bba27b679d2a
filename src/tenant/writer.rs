//! The writer half of a tenant: render each batch, hand it to the sink in pieces,
//! feed the sink's receipts to the [`Ledger`], commit what the ledger confirms, and
//! have the reader rewind when the ledger says something was lost.
//!
//! The writer decides nothing about delivery itself: the sink says which pieces were
//! delivered or lost (see [`crate::sink`]), the ledger says which position that
//! confirms and where to re-read from. What stays here is the order of things and the
//! retry policy of the destination: after a sink error the writer waits its backoff,
//! then rewinds. And the pace: with `max_events_per_second` set, each piece waits for
//! its [`SharedLimit`] before it goes, which fills the queue and so slows the reader.

use super::ReadBatch;
use super::ledger::{Advance, Ledger, Rewind};
use super::progress::Progress;
use super::window::Reached;
use crate::backoff::{Backoff, Delay};
use crate::dead_letter::DeadLetterFile;
use crate::event::{Batch, DeadLetter, Position};
use crate::format::{Formatter, RenderedMessage};
use crate::observe::PairObserver;
use crate::position::{SavedPosition, StateFile};
use crate::rate_limit::SharedLimit;
use crate::sink::{Sink, SinkError, SinkErrorKind};
use crate::source::SourceStatus;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// About how many bytes of rendered messages are handed to the sink at a time (see
/// [`Writer::handle`]): a write per 30–40 LEEF records, and little memory held per
/// tenant for rendered and framed records. Half of this cost a one-tenant backfill
/// about 15 % more CPU per event (more writes and connection checks).
const SEND_PIECE: usize = 32 * 1024;

/// How often the progress line is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// How often a full dead-letter file is looked at again.
const DEAD_LETTER_RECHECK: Duration = Duration::from_secs(2);

/// The writer half: format, send, apply receipts, commit.
pub(super) struct Writer {
    pub(super) name: String,
    pub(super) observer: PairObserver,
    /// How often a confirmed position is written: `commit_interval − settle`, so a
    /// position reaches the disk within `commit_interval` of its batch being written.
    pub(super) commit_every: Duration,
    /// Where confirmed positions go.
    pub(super) commit: Commit,
    pub(super) formatter: Formatter,
    pub(super) sink: Sink,
    pub(super) dead_letters: DeadLetterFile,
    /// This pair writes the tenant's source-level dead letters (undecodable items);
    /// the tenant's other pairs meet the same items and drop them, so the file gets
    /// each once.
    pub(super) keeps_source_dead_letters: bool,
    /// Where a full dead-letter file is reported (`/health`, the healthy metric).
    pub(super) status: Arc<SourceStatus>,
    /// Shutdown was requested (stop reading; deliver what was read).
    pub(super) stop: CancellationToken,
    /// Events delivered since the state file was created.
    pub(super) delivered_total: u64,
    pub(super) ledger: Ledger,
    /// A confirmed position not yet written to the state file.
    pub(super) pending: Option<Position>,
    /// Rewinds requested so far; batches the reader tagged earlier are stale.
    pub(super) epoch: u64,
    pub(super) rewind: mpsc::UnboundedSender<Option<Position>>,
    pub(super) backoff: Backoff,
    pub(super) failures: u32,
    /// The destination's name in the state file (`None` for `syslog`).
    pub(super) destination: Option<String>,
    /// The destination refused records for its configuration (flagged in /health).
    pub(super) misconfigured: bool,
    pub(super) last_commit: Instant,
    pub(super) progress: Progress,
    /// Reused between batches.
    pub(super) messages: Vec<RenderedMessage>,
    /// `resend`: the last batch of the window was handed to the sink since the latest
    /// rewind; once the ledger has confirmed everything, the window is delivered.
    pub(super) window_read: bool,
    /// `max_events_per_second` of the destination, when set.
    pub(super) limit: Option<SharedLimit>,
    /// `resend`: where to report the `created_time` delivered up to.
    pub(super) reached: Option<Arc<Reached>>,
}

/// Where the writer writes the positions the ledger confirms.
pub(super) enum Commit {
    /// The pair's state file: the connector.
    StateFile(StateFile),
    /// Nowhere: `resend` never reads or writes saved positions, so that it can run
    /// beside the connector without moving the connector's positions.
    Never,
}

/// Why the writer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// The reader closed the queue (shutdown), or delivery was given up.
    Stopped,
    /// `resend`: every event of the window was delivered.
    WindowDelivered,
}

/// How sending one piece of a batch ended.
enum Piece {
    /// Handed to the sink.
    Sent,
    /// The source was rewound; the rest of the batch is dropped (it will be read again).
    Rewound,
    /// The shutdown deadline came first.
    GaveUp,
}

impl Writer {
    pub(super) async fn run(
        mut self,
        mut rx: mpsc::Receiver<ReadBatch>,
        give_up: CancellationToken,
    ) -> Ended {
        let mut progress_tick =
            tokio::time::interval_at(Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        let mut ended = Ended::Stopped;
        loop {
            if self.window_read && self.ledger.is_settled() {
                ended = Ended::WindowDelivered;
                break;
            }
            let commit_due = self.last_commit + self.commit_every;
            let awaiting = self.sink.awaiting();
            tokio::select! {
                item = rx.recv() => {
                    let Some(ReadBatch { epoch, batch, ends_window }) = item else { break };
                    if epoch != self.epoch {
                        continue; // read before the latest rewind; it will come again
                    }
                    if !self.handle(batch, &give_up).await {
                        if give_up.is_cancelled() {
                            warn!(tenant = %self.name, "shutdown deadline reached before the destination accepted the current batch; it is not committed and will be read again at the next start");
                        }
                        break;
                    }
                    // A rewind while sending means the window's end comes again.
                    self.window_read |= ends_window && self.epoch == epoch;
                }
                ready = self.sink.ready(), if awaiting => {
                    let collected = match ready {
                        Ok(()) => self.sink.collect().await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = collected
                        && !self.recover(e, &give_up).await
                    {
                        break;
                    }
                    self.apply_receipts();
                }
                _ = tokio::time::sleep_until(commit_due), if self.pending.is_some() => {
                    self.commit();
                }
                _ = progress_tick.tick() => self.log_progress("progress"),
            }
        }
        self.drain(&give_up).await;
        self.sink.close().await;
        // A sink may confirm more while it closes (RELP answers that arrive then).
        self.apply_receipts();
        self.commit();
        self.log_progress("stopped");
        // Stopped while the window's last receipts were awaited, and they came.
        if self.window_read && self.ledger.is_settled() {
            ended = Ended::WindowDelivered;
        }
        ended
    }

    /// Shutdown: waits for the receipts of what was sent (unless the grace period is
    /// over), so that what the destination confirms is committed.
    async fn drain(&mut self, give_up: &CancellationToken) {
        while self.sink.awaiting() && !give_up.is_cancelled() {
            let ready = tokio::select! {
                ready = self.sink.ready() => ready,
                _ = give_up.cancelled() => break,
            };
            let collected = match ready {
                Ok(()) => self.sink.collect().await,
                Err(e) => Err(e),
            };
            self.apply_receipts();
            if let Err(e) = collected {
                warn!(tenant = %self.name, error = %e, "destination failed while the last records awaited confirmation; they are not committed and will be read again at the next start");
                break;
            }
        }
    }

    /// Formats and sends one batch. Returns false only when `give_up` fired first.
    ///
    /// Records go to the sink in pieces of about [`SEND_PIECE`] bytes as they are
    /// rendered, so neither the rendered messages nor the framed bytes of a whole batch
    /// are held at once (with many tenants that is most of the memory). Each piece
    /// gets its own ticket; the batch's position goes to the ledger after its last
    /// piece, so it is confirmed only when every piece was delivered.
    async fn handle(&mut self, mut batch: Batch, give_up: &CancellationToken) -> bool {
        if !self.keeps_source_dead_letters {
            batch.dead_letters.clear();
        }
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
                Err(e) if self.keeps_source_dead_letters => batch.dead_letters.push(DeadLetter {
                    reason: format!("event cannot be decoded: {e}"),
                    raw: raw.json().to_string(),
                    destination: None,
                }),
                Err(_) => {}
            }
            events += 1;
            rendered += self.messages[before..]
                .iter()
                .map(|m| m.text.len())
                .sum::<usize>();
            // With a rate limit a piece is at most one burst, so that no piece goes
            // out faster than the limit allows.
            let piece_full = rendered >= SEND_PIECE
                || self
                    .limit
                    .as_ref()
                    .is_some_and(|l| self.messages.len() >= l.burst() as usize);
            if (!piece_full && i < last) || self.messages.is_empty() {
                continue;
            }
            match self.send_piece(std::mem::take(&mut events), give_up).await {
                Piece::Sent => {}
                Piece::Rewound => return true,
                Piece::GaveUp => return false,
            }
            self.messages.clear();
            rendered = 0;
        }
        if !batch.dead_letters.is_empty() {
            self.keep_dead_letters(&batch.dead_letters);
        }
        // Events after the last piece (only undecodable ones give no record) count with
        // the batch's end.
        self.ledger.end_batch(batch.position, events);
        self.apply_receipts();
        true
    }

    /// Waits until the dead-letter file has room for this batch's dead letters. While
    /// it is full the batch is neither sent nor committed, so the position stays at the
    /// last delivered batch and nothing is lost; the reader is held by the full queue.
    /// The tenant is reported unhealthy, with the file and the fix, until an operator
    /// moves the file away. Receipts for what was sent before still arrive and are
    /// committed. Returns false when shutdown comes first.
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
            let awaiting = self.sink.awaiting();
            tokio::select! {
                _ = tokio::time::sleep(DEAD_LETTER_RECHECK) => {}
                ready = self.sink.ready(), if awaiting => {
                    let collected = match ready {
                        Ok(()) => self.sink.collect().await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = collected
                        && !self.recover(e, give_up).await
                    {
                        return false;
                    }
                    self.apply_receipts();
                }
                _ = give_up.cancelled() => return false,
                _ = self.stop.cancelled() => {
                    info!(tenant = %self.name, "stopping while the dead-letter file is full; the held batch will be read again at the next start");
                    return false;
                }
            }
            if self.pending.is_some() {
                self.commit();
            }
        }
    }

    /// Hands the rendered messages of one piece (`events` events) to the sink.
    async fn send_piece(&mut self, events: u64, give_up: &CancellationToken) -> Piece {
        // The formatter already parsed the event's `created_time`.
        let lag = self
            .messages
            .last()
            .and_then(|m| m.event_time)
            .and_then(|created| (Utc::now() - created.with_timezone(&Utc)).to_std().ok());
        if let Some(stopped) = self.pace(give_up).await {
            return stopped;
        }
        let ticket = self.ledger.issue(events, lag);
        let sent = tokio::select! {
            sent = self.sink.send(ticket, &self.messages) => sent,
            _ = give_up.cancelled() => return Piece::GaveUp,
        };
        match sent {
            Ok(report) => {
                self.observer
                    .sent(report.bytes as u64, report.truncated as u64);
                if report.accepted {
                    self.destination_accepts();
                }
                if self.apply_receipts() {
                    Piece::Rewound
                } else {
                    Piece::Sent
                }
            }
            Err(e) => {
                if self.recover(e, give_up).await {
                    Piece::Rewound
                } else {
                    Piece::GaveUp
                }
            }
        }
    }

    /// Waits until the rate limit lets the current piece go (at once without a limit)
    /// and counts the wait. While it waits, the sink goes on with what it holds (a HEC
    /// sink sends what it gathered, receipts arrive), so records leave at the limit
    /// rather than in a lump after the wait. `None`: send the piece now; otherwise
    /// the piece is not to be sent (the source was rewound, or `give_up` fired).
    async fn pace(&mut self, give_up: &CancellationToken) -> Option<Piece> {
        let limit = self.limit.as_ref()?;
        let records = u32::try_from(self.messages.len()).unwrap_or(u32::MAX);
        let wait = limit.reserve(records, Instant::now());
        if wait.is_zero() {
            return None;
        }
        self.observer.rate_limited(wait);
        let until = Instant::now() + wait;
        loop {
            let awaiting = self.sink.awaiting();
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return None,
                ready = self.sink.ready(), if awaiting => {
                    let collected = match ready {
                        Ok(()) => self.sink.collect().await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = collected {
                        return Some(if self.recover(e, give_up).await {
                            Piece::Rewound
                        } else {
                            Piece::GaveUp
                        });
                    }
                    if self.apply_receipts() {
                        return Some(Piece::Rewound);
                    }
                }
                _ = give_up.cancelled() => return Some(Piece::GaveUp),
            }
        }
    }

    /// The destination took records after failing: the backoff starts over and a
    /// configuration flag is cleared.
    fn destination_accepts(&mut self) {
        if self.failures > 0 {
            info!(tenant = %self.name, destination = %self.sink.destination(), "destination accepts records again");
            self.failures = 0;
            self.backoff.reset();
            if self.misconfigured {
                self.misconfigured = false;
                self.observer.flag(None);
            }
        }
    }

    /// After a sink error: every piece not yet receipted is lost. Waits the backoff,
    /// then rewinds. Returns false when `give_up` fired during the wait.
    async fn recover(&mut self, e: SinkError, give_up: &CancellationToken) -> bool {
        // Receipts the sink produced before it failed still count.
        self.apply_receipts();
        self.failures += 1;
        let retry_after = e
            .retry_after()
            .map(|d| self.backoff.policy().clamp_retry_after(d));
        let delay = self
            .backoff
            .next_delay(Delay::Normal { retry_after }, &mut rand::rng());
        if e.kind() == SinkErrorKind::Misconfigured {
            // The receiver refuses every record until an operator acts: an error, and
            // /health shows the tenant failing until records are accepted again.
            error!(tenant = %self.name, error = %e, attempt = self.failures, delay_ms = delay.as_millis() as u64, "the destination refuses the records because of its configuration; nothing is skipped, retrying after the delay");
            self.misconfigured = true;
            self.observer
                .flag(Some(format!("destination refuses records: {e}")));
        } else {
            warn!(tenant = %self.name, error = %e, attempt = self.failures, delay_ms = delay.as_millis() as u64, "delivery failed; re-reading from the last delivered position after the delay");
        }
        self.observer.error(format!("delivery failed: {e}"));
        self.observer.sink_reconnect();
        let rewind = self.ledger.forget_unreceipted();
        self.sink.forget();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = give_up.cancelled() => return false,
        }
        self.rewind("delivery failed", rewind);
        true
    }

    /// Feeds the sink's receipts to the ledger and takes what became delivered.
    /// Returns true when a receipt reported a loss (the source was rewound).
    fn apply_receipts(&mut self) -> bool {
        // Records the destination refused are kept before their receipts count them
        // delivered, so a crash in between re-sends rather than loses them.
        if let Some((_, report)) = self.sink.take_report() {
            self.observer.hec(&report);
        }
        let refused = self.sink.take_dead_letters();
        if !refused.is_empty() {
            self.keep_dead_letters(&refused);
        }
        let mut lost = None;
        for receipt in self.sink.receipts() {
            if let Some(rewind) = self.ledger.apply(receipt) {
                lost = Some(rewind);
            }
        }
        self.take_delivered();
        match lost {
            Some(rewind) => {
                self.sink.forget();
                self.rewind(
                    "the destination did not confirm earlier records (connection closed, or no acknowledgement in time)",
                    rewind,
                );
                true
            }
            None => false,
        }
    }

    /// Counts what the ledger confirms and marks its position for the next commit.
    fn take_delivered(&mut self) {
        let Advance {
            events,
            lag,
            position,
        } = self.ledger.advance();
        if events > 0 {
            self.destination_accepts();
            self.delivered_total += events;
            self.observer.delivered(events, lag);
            // The lag was taken when the piece was sent: this is the newest delivered
            // `created_time` plus the (short) time delivery took; enough for progress.
            if let (Some(reached), Some(lag)) = (&self.reached, lag)
                && let Ok(lag) = chrono::Duration::from_std(lag)
            {
                reached.set(Utc::now() - lag);
            }
        }
        self.progress.add(events, lag, position.as_ref());
        if position.is_some() {
            self.pending = position;
        }
    }

    /// Has the reader re-read from where the ledger says; batches read before are
    /// dropped as they arrive.
    fn rewind(&mut self, reason: &str, rewind: Rewind) {
        warn!(
            tenant = %self.name,
            reason,
            unconfirmed_events = rewind.resent_events,
            from = rewind.from.as_ref().map_or("the start position", |p| p.as_str()),
            "re-reading the stream from the last delivered position"
        );
        self.epoch += 1;
        self.window_read = false;
        // The reader ends only after the writer; a closed channel means shutdown.
        let _ = self.rewind.send(rewind.from);
    }

    fn keep_dead_letters(&mut self, letters: &[DeadLetter]) {
        let n = letters.len() as u64;
        match self.dead_letters.append(letters) {
            Ok(()) => {
                warn!(tenant = %self.name, count = n, file = %self.dead_letters.path().display(), "items could not be decoded or were refused by the destination; written to the dead-letter file")
            }
            Err(e) => {
                error!(tenant = %self.name, count = n, file = %self.dead_letters.path().display(), error = %e, "cannot write the dead-letter file; the items are logged here instead");
                for letter in letters {
                    error!(tenant = %self.name, reason = %letter.reason, raw = %letter.raw, "item not in the dead-letter file");
                }
            }
        }
        self.observer.dead_lettered(n);
    }

    /// Writes the confirmed position, if it moved.
    fn commit(&mut self) {
        let Some(position) = self.pending.take() else {
            return;
        };
        let Commit::StateFile(state) = &self.commit else {
            return;
        };
        let saved = SavedPosition {
            entity_name: self.name.clone(),
            position: position.as_str().to_string(),
            saved_at: Utc::now(),
            delivered: self.delivered_total,
            destination: self.destination.clone(),
        };
        match state.save(&saved) {
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
