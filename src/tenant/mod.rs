//! One (tenant, destination) pair: source → format → sink → commit, supervised.
//!
//! A tenant with several destinations runs one pair per destination, and each pair
//! reads the tenant's stream on its own, from its own committed position: a
//! destination that is down, slow or refusing holds back only its own stream, and
//! catches up from its own position when it returns (ARCHITECTURE.md, "Several
//! destinations", says why and what it costs).
//!
//! Two tasks per pair, joined by a small bounded channel:
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
//!
//! `resend` runs the same two tasks once, without the supervisor and without the state
//! file ([`PairTask::resend`]): the reader reads a [`Window`] from `start_time = from`
//! and stops at its end, the writer commits nowhere and ends when the last event of the
//! window was delivered.

pub mod ledger;
mod progress;
mod window;
mod writer;

pub use window::{Reached, Window};

use crate::backoff::{Backoff, BackoffPolicy, Delay};
use crate::config::{DestinationConfig, ProxyConfig, TenantConfig};
use crate::dead_letter::DeadLetterFile;
use crate::event::{Batch, Position};
use crate::format::Formatter;
use crate::observe::PairObserver;
use crate::position::{SavedPosition, StateError, StateFile};
use crate::rate_limit::SharedLimit;
use crate::sink::Sink;
use crate::source::{EventSource, SourceSnapshot, SourceStatus, StartPoint};
use ledger::Ledger;
use progress::Progress;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing::error;
use writer::{Commit, Ended, Writer};

/// How many decoded batches may wait between reader and writer. Small on purpose: it
/// only smooths the hand-over between parsing and sending, and with many tenants
/// backfilling at once every queued batch is memory (tens of KB each). With one slot a
/// one-tenant backfill took about 10 % more CPU per event (reader and writer wait for
/// each other more often); two keep both busy.
const QUEUE_BATCHES: usize = 2;

/// How often the source's counters and health are copied into the metrics and
/// `/health`. Every pair's copying task wakes this often, also when nothing changed:
/// at once a second, 1,000 idle tenants spent 0.9–1.0 CPU-seconds a minute, at every
/// 5 seconds 0.4–0.5 (`docs/performance.md#idle-tenants-scriptsidle-costsh`). Five
/// seconds late is well inside the `/health` window (three `sse_timeout`s) and any
/// scrape interval.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// A normal (exponential, capped, jittered) backoff step.
const NORMAL: Delay = Delay::Normal { retry_after: None };

/// Everything one (tenant, destination) pair needs to run: the tenant's stream, read
/// for this destination alone, and the destination.
#[derive(Clone)]
pub struct PairTask {
    /// The tenant (its `destinations` may be narrowed to this pair's alone: what the
    /// pair owes its tenant's other pairs is in `role`).
    pub config: TenantConfig,
    /// One of the tenant's destinations.
    pub destination: DestinationConfig,
    pub role: PairRole,
    pub proxy: ProxyConfig,
    pub state_dir: PathBuf,
    pub commit_interval: Duration,
    pub observer: PairObserver,
}

/// The two shutdown signals of a tenant.
#[derive(Clone)]
pub struct Shutdown {
    /// Stop reading the stream; deliver and commit what was read.
    pub stop_reading: CancellationToken,
    /// Give up delivering (the grace period is over); commit what was delivered.
    pub give_up: CancellationToken,
}

impl PairTask {
    /// Runs until `shutdown.stop_reading` fires and the writer has drained, or
    /// `shutdown.give_up` fires. Returns an error only when the tenant cannot start at
    /// all (a corrupt state file).
    pub async fn run(self, shutdown: Shutdown) -> Result<(), StateError> {
        let name = self.config.entity_name.clone();
        let observer = self.observer.clone();
        let stop = shutdown.stop_reading.clone();
        // Every line of a pair says which destination it is about, but for `[syslog]`,
        // which logs exactly as before.
        let span = if self.role.names_destination {
            tracing::info_span!("pair", destination = %self.destination.name())
        } else {
            tracing::Span::none()
        };
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
                    let state = StateFile::for_destination(
                        &task.state_dir,
                        &task.config.entity_name,
                        task.destination.name(),
                    );
                    let saved = state.load()?;
                    Ok(task.run_once(saved, &state, &shutdown).await)
                }
            },
        )
        .instrument(span)
        .await
    }

    async fn run_once(
        &self,
        saved: Option<SavedPosition>,
        state: &StateFile,
        shutdown: &Shutdown,
    ) -> Outcome {
        let committed = saved
            .as_ref()
            .and_then(|s| Position::new(s.position.clone()));
        let start = StartPoint::resolve(committed.clone(), &self.config);
        let run = Run {
            start,
            committed,
            delivered_before: saved.as_ref().map_or(0, |s| s.delivered),
            commit: Commit::StateFile(state.clone()),
            window: None,
        };
        match self.pipeline(run, shutdown).await {
            Err(reason) => Outcome::Failed(reason),
            Ok(_) if shutdown.stop_reading.is_cancelled() => Outcome::Stopped,
            Ok(_) => Outcome::Failed("the event source ended unexpectedly".into()),
        }
    }

    /// `resend`: delivers the events created in `window` to this pair's destination,
    /// reading the stream from `start_time = window.from`. Never reads or writes the
    /// state file. Runs once (no supervisor): the source and the writer retry on their
    /// own; `shutdown.stop_reading` ends it early. `reached` follows delivery through
    /// the window.
    pub async fn resend(
        &self,
        window: Window,
        reached: Arc<Reached>,
        shutdown: &Shutdown,
    ) -> Result<Resent, String> {
        let run = Run {
            start: StartPoint::StartTime(window.from),
            committed: None,
            delivered_before: 0,
            commit: Commit::Never,
            window: Some((window, reached)),
        };
        match self.pipeline(run, shutdown).await? {
            Ended::WindowDelivered => Ok(Resent::Delivered),
            Ended::Stopped if shutdown.stop_reading.is_cancelled() => Ok(Resent::Stopped),
            Ended::Stopped => Err("the event source ended unexpectedly".into()),
        }
    }

    /// One run of the reader and the writer, until the writer ends.
    async fn pipeline(&self, run: Run, shutdown: &Shutdown) -> Result<Ended, String> {
        let name = &self.config.entity_name;
        let reader_cancel = shutdown.stop_reading.child_token();
        let source = EventSource::new(&self.config, &self.proxy, run.start, reader_cancel.clone())
            .map_err(|e| format!("cannot build the API client: {e}"))?;
        let destination = &self.destination;
        let sink = Sink::for_destination(destination, name, self.commit_interval)
            .map_err(|e| format!("cannot set up the destination {}: {e}", destination.name()))?;
        // HEC has its own `forwarder_type` (splunk or ocsf), whatever `[syslog]` says.
        let (format, custom_identifier) = match destination {
            DestinationConfig::Syslog { syslog, .. } => {
                (syslog.format, syslog.custom_identifier.clone())
            }
            DestinationConfig::SplunkHec(hec) => {
                (hec.format, self.config.syslog.custom_identifier.clone())
            }
        };
        let status = source.status();
        let bridge = tokio::spawn(bridge_status(
            source.status(),
            self.observer.clone(),
            reader_cancel.clone(),
        ));
        let (tx, rx) = mpsc::channel::<ReadBatch>(QUEUE_BATCHES);
        let (rewind_tx, rewind_rx) = mpsc::unbounded_channel();
        let (window, reached) = run.window.unzip();
        let reader = tokio::spawn(
            read_batches(source, tx, rewind_rx, window, reader_cancel.clone()).in_current_span(),
        );
        let writer = Writer {
            name: name.clone(),
            observer: self.observer.clone(),
            commit_every: self
                .commit_interval
                .saturating_sub(sink.confirmation_delay()),
            commit: run.commit,
            formatter: Formatter::new(format, name.clone(), custom_identifier),
            sink,
            dead_letters: DeadLetterFile::new(&self.state_dir, name),
            keeps_source_dead_letters: self.role.keeps_source_dead_letters,
            status,
            stop: shutdown.stop_reading.clone(),
            delivered_total: run.delivered_before,
            ledger: Ledger::new(run.committed),
            pending: None,
            epoch: 0,
            rewind: rewind_tx,
            backoff: Backoff::new(BackoffPolicy::default()),
            failures: 0,
            destination: Some(destination.name().to_owned()).filter(|n| n != "syslog"),
            misconfigured: false,
            last_commit: Instant::now(),
            progress: Progress::new(),
            messages: Vec::new(),
            window_read: false,
            limit: SharedLimit::for_destination(destination),
            reached,
        };
        let written =
            tokio::spawn(writer.run(rx, shutdown.give_up.clone()).in_current_span()).await;
        // The writer ends when the reader closed the channel, delivery was given up or
        // the window was delivered; in each case the reader has nothing more to do.
        reader_cancel.cancel();
        let read = reader.await;
        let _ = bridge.await;
        match (read, written) {
            (_, Err(join)) => Err(format!("writer task failed: {join}")),
            (Err(join), _) => Err(format!("reader task failed: {join}")),
            (Ok(()), Ok(ended)) => Ok(ended),
        }
    }
}

/// What a pair does for its tenant as a whole, decided from the tenant's full list of
/// destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairRole {
    /// The pair's log lines name its destination: every destination but `[syslog]`,
    /// whose lines read as before (as a Python connector's `config.ini` has them). It
    /// depends on this destination alone, so that a reload adding or removing another
    /// destination leaves the pair untouched.
    pub names_destination: bool,
    /// The pair writes the tenant's source-level dead letters (items that cannot be
    /// decoded, whatever the destination). Every pair reads the same stream and meets
    /// the same items, so only the pair of the tenant's first destination keeps them
    /// and the file gets each once. Records one destination refused are that pair's
    /// own and always kept.
    pub keeps_source_dead_letters: bool,
}

impl PairRole {
    /// The role of `tenant`'s pair with `destination`, `tenant` holding all of its
    /// destinations.
    pub fn of(tenant: &TenantConfig, destination: &DestinationConfig) -> Self {
        Self {
            names_destination: destination.name() != "syslog",
            keeps_source_dead_letters: tenant
                .destinations
                .first()
                .is_none_or(|first| first.name() == destination.name()),
        }
    }
}

/// How a `resend` of one pair ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    /// The last event of the window was delivered.
    Delivered,
    /// Stopped (interrupted) before the window was delivered.
    Stopped,
}

/// What one [`PairTask::pipeline`] starts from and commits to.
struct Run {
    start: StartPoint,
    /// The committed position the ledger starts from.
    committed: Option<Position>,
    /// Events delivered before this run (the state file's count).
    delivered_before: u64,
    commit: Commit,
    /// `resend`: the window the reader stops at, and where the writer reports how far
    /// delivery got.
    window: Option<(Window, Arc<Reached>)>,
}

/// What the reader hands the writer: a batch, tagged with the number of rewinds seen
/// so far so that the writer can drop batches read before its latest rewind request.
#[derive(Debug)]
pub(super) struct ReadBatch {
    epoch: u64,
    batch: Batch,
    /// `resend`: this is the last batch of the window.
    ends_window: bool,
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
    observer: &PairObserver,
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
        let reason = match tokio::spawn(attempt().in_current_span()).await {
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
///
/// With a `window` (`resend`), each batch is cut to the window; after the batch that
/// reaches its end the reader reads nothing more, and waits for a rewind (something
/// was lost and must be read again), the end of the writer or `cancel` (the source's
/// own token, which ends reading otherwise).
async fn read_batches(
    mut source: EventSource,
    tx: mpsc::Sender<ReadBatch>,
    mut rewinds: mpsc::UnboundedReceiver<Option<Position>>,
    window: Option<Window>,
    cancel: CancellationToken,
) {
    let mut epoch = 0u64;
    let mut window_read = false;
    loop {
        if window_read {
            tokio::select! {
                biased;
                Some(to) = rewinds.recv() => {
                    epoch += 1;
                    source.reset_to(to);
                    window_read = false;
                    continue;
                }
                () = tx.closed() => break,
                () = cancel.cancelled() => break,
            }
        }
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
        let Some(mut batch) = batch else { break };
        if let Some(window) = &window {
            window_read = window.cut(&mut batch);
        }
        permit.send(ReadBatch {
            epoch,
            batch,
            ends_window: window_read,
        });
    }
}

/// Copies the source's counters and health into the metrics and `/health`, once a
/// second and once more at the end. The source keeps its own counters so that it does
/// not depend on the metrics registry.
async fn bridge_status(
    status: Arc<SourceStatus>,
    observer: PairObserver,
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

fn apply_status(before: &SourceSnapshot, now: &SourceSnapshot, observer: &PairObserver) {
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
        let tenant = observer.pair("acme", "syslog", Duration::from_secs(15));
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
            text.contains("mrav2_tenant_restarts_total{tenant=\"acme\",destination=\"syslog\"} 1"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_retried_until_stop_and_never_end_the_tenant_alone() {
        let observer = Observer::new();
        let tenant = observer.pair("acme", "syslog", Duration::from_secs(15));
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
        let tenant = observer.pair("acme", "syslog", Duration::from_secs(15));
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
