//! The running (tenant, destination) pairs: starting one, stopping some gracefully, and
//! reloading the configuration file (SIGHUP).
//!
//! Each running pair keeps what it was started from ([`PairSpec`]), its own shutdown
//! tokens (children of the process's, so SIGTERM still stops every pair, including
//! ones a reload started) and its task. A reload reads and validates the file exactly
//! as start-up does; a file with any problem changes nothing. Otherwise
//! [`crate::pairs::diff`] decides, and this module stops the removed and changed pairs
//! (deliver what was read, commit, close, under the same grace as SIGTERM), then starts
//! the added and changed ones from their saved positions. An unchanged pair is not
//! touched: same task, same token, same stream, same connection.
//!
//! Reloads run one at a time in one task ([`reload_on_request`]); a request that
//! arrives during a reload causes one more reload after it, so a burst of SIGHUPs ends
//! in the state of the file as it was at the last one.

use super::{DELIVERY_GRACE, GRACE, describe_start};
use crate::config::{ApiKeys, ConnectorConfig};
use crate::event::Position;
use crate::observe::Observer;
use crate::pairs::{self, PairKey, PairSpec};
use crate::position::StateFile;
use crate::source::StartPoint;
use crate::tenant::{PairTask, Shutdown};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

/// One running pair.
struct RunningPair {
    /// What it was started from; a reload compares the file's new spec with it.
    spec: PairSpec,
    /// Its own tokens: children of the process's root and give-up tokens.
    shutdown: Shutdown,
    /// Its supervised task (also tracked by the process's tracker).
    task: JoinHandle<()>,
}

/// Every running pair, and what a new pair is started under.
pub(super) struct Pairs {
    running: BTreeMap<PairKey, RunningPair>,
    observer: Arc<Observer>,
    state_dir: PathBuf,
    /// SIGTERM: stop reading.
    root: CancellationToken,
    /// The grace period is over: give up delivering.
    give_up: CancellationToken,
    tracker: TaskTracker,
}

impl Pairs {
    pub(super) fn new(
        observer: Arc<Observer>,
        state_dir: PathBuf,
        root: CancellationToken,
        give_up: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            running: BTreeMap::new(),
            observer,
            state_dir,
            root,
            give_up,
            tracker,
        }
    }

    /// The keys of the running pairs.
    pub(super) fn keys(&self) -> impl Iterator<Item = &PairKey> {
        self.running.keys()
    }

    /// Starts `spec` from its saved position. False (logged, and flagged in `/health`)
    /// when its state file cannot be read.
    pub(super) fn start(&mut self, spec: PairSpec) -> bool {
        let key = spec.key();
        // A pair that could not start before, or that is started again, begins anew.
        self.observer.forget(&key.tenant, &key.destination);
        let tenant = &spec.tenant;
        let destination = &spec.destination;
        let observer = self
            .observer
            .pair(&key.tenant, &key.destination, tenant.sse_timeout);
        let state = StateFile::for_destination(&self.state_dir, &key.tenant, &key.destination);
        let saved = match state.load() {
            Ok(saved) => saved,
            Err(e) => {
                error!(tenant = %key.tenant, destination = %key.destination, error = %e, "not started");
                observer.flag(Some(e.to_string()));
                return false;
            }
        };
        info!(
            tenant = %key.tenant,
            api = %tenant.api_base(),
            types = %tenant.types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","),
            start = %describe_start(&StartPoint::resolve(
                saved.as_ref().and_then(|s| Position::new(s.position.clone())),
                tenant
            )),
            destination = %destination.description(),
            format = %destination.format_description(),
            state_file = %state.path().display(),
            "tenant configured"
        );
        let shutdown = Shutdown {
            stop_reading: self.root.child_token(),
            give_up: self.give_up.child_token(),
        };
        let task = PairTask {
            config: spec.tenant.clone(),
            destination: spec.destination.clone(),
            role: spec.role,
            proxy: spec.proxy.clone(),
            state_dir: self.state_dir.clone(),
            commit_interval: spec.commit_interval,
            observer: observer.clone(),
        };
        let task = self.tracker.spawn({
            let shutdown = shutdown.clone();
            async move {
                if let Err(e) = task.run(shutdown).await {
                    error!(tenant = %observer.tenant(), destination = %observer.destination(), error = %e, "stopped");
                    observer.flag(Some(e.to_string()));
                }
            }
        });
        self.running.insert(
            key,
            RunningPair {
                spec,
                shutdown,
                task,
            },
        );
        true
    }

    /// Stops the pairs of `keys` as SIGTERM stops every pair: stop reading, deliver
    /// and commit what was read for up to [`DELIVERY_GRACE`], then give up delivering
    /// and commit what was delivered; waits until each has ended (a pair that outlives
    /// [`GRACE`] is logged and still waited for: its successor must not share its
    /// state file). Their `/health` entries and series go.
    async fn stop(&mut self, keys: &[PairKey]) {
        let mut stopping: Vec<(PairKey, RunningPair)> = keys
            .iter()
            .filter_map(|key| self.running.remove_entry(key))
            .collect();
        if stopping.is_empty() {
            return;
        }
        for (_, pair) in &stopping {
            pair.shutdown.stop_reading.cancel();
        }
        let started = Instant::now();
        wait_until(&mut stopping, started + DELIVERY_GRACE).await;
        if stopping.iter().any(|(_, p)| !p.task.is_finished()) {
            for (_, pair) in &stopping {
                pair.shutdown.give_up.cancel();
            }
            wait_until(&mut stopping, started + GRACE).await;
        }
        for (key, pair) in &mut stopping {
            if !pair.task.is_finished() {
                warn!(tenant = %key.tenant, destination = %key.destination, "did not stop within the grace period; waiting for it before going on");
                let _ = (&mut pair.task).await;
            }
            self.observer.forget(&key.tenant, &key.destination);
        }
    }

    /// Re-reads and validates `path` as start-up does and applies it (see the module
    /// documentation). `started_with` is the `[connector]` section the process started
    /// with: its `state_dir` and `metrics_listen` cannot change while running.
    pub(super) async fn reload(&mut self, path: &Path, started_with: &ConnectorConfig) {
        let loaded = {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || crate::config::load_file(&path, ApiKeys::Read))
                .await
        };
        let config = match loaded {
            Ok(Ok(config)) => config,
            Ok(Err(e)) => {
                for problem in &e.problems {
                    error!("{problem}");
                }
                self.observer.reload_failed();
                let n = e.problems.len();
                error!(
                    file = %path.display(),
                    problems = n,
                    "reload refused: {n} configuration problem{}; nothing was changed",
                    if n == 1 { "" } else { "s" }
                );
                return;
            }
            Err(join) => {
                self.observer.reload_failed();
                error!(file = %path.display(), error = %join, "reload failed: cannot read the configuration; nothing was changed");
                return;
            }
        };
        for warning in &config.warnings {
            warn!("{warning}");
        }
        if config.connector.state_dir != started_with.state_dir {
            warn!(
                file = %path.display(),
                "[connector] state_dir changed; it takes effect only after a restart (the running pairs keep their state directory)"
            );
        }
        if config.connector.metrics_listen != started_with.metrics_listen {
            warn!(
                file = %path.display(),
                "[connector] metrics_listen changed; it takes effect only after a restart"
            );
        }
        // A pair whose task ended (its state file could not be read) is started again.
        let ended: Vec<PairKey> = self
            .running
            .iter()
            .filter(|(_, pair)| pair.task.is_finished())
            .map(|(key, _)| key.clone())
            .collect();
        for key in ended {
            self.running.remove(&key);
        }
        let mut wanted: BTreeMap<PairKey, PairSpec> = pairs::wanted(&config)
            .into_iter()
            .map(|spec| (spec.key(), spec))
            .collect();
        let changes = {
            let running: BTreeMap<PairKey, &PairSpec> = self
                .running
                .iter()
                .map(|(key, pair)| (key.clone(), &pair.spec))
                .collect();
            let wanted: BTreeMap<PairKey, &PairSpec> = wanted
                .iter()
                .map(|(key, spec)| (key.clone(), spec))
                .collect();
            pairs::diff(&running, &wanted)
        };
        let going: Vec<PairKey> = changes
            .stop
            .iter()
            .chain(&changes.restart)
            .cloned()
            .collect();
        self.stop(&going).await;
        if self.root.is_cancelled() {
            // SIGTERM came meanwhile: start nothing new.
            return;
        }
        let mut not_started = 0usize;
        for key in changes.start.iter().chain(&changes.restart) {
            if let Some(spec) = wanted.remove(key)
                && !self.start(spec)
            {
                not_started += 1;
            }
        }
        info!(
            started = changes.start.len(),
            stopped = changes.stop.len(),
            restarted = changes.restart.len(),
            unchanged = changes.unchanged.len(),
            not_started,
            file = %path.display(),
            "configuration reloaded"
        );
    }
}

/// Waits for every pair of `stopping` to end, until `deadline`.
async fn wait_until(stopping: &mut [(PairKey, RunningPair)], deadline: Instant) {
    for (_, pair) in stopping.iter_mut() {
        if !pair.task.is_finished() {
            let _ = tokio::time::timeout_at(deadline, &mut pair.task).await;
        }
    }
}

/// Reloads `path` each time `requested` is notified, one reload at a time, until
/// `root` (SIGTERM) is cancelled; a reload in progress is then abandoned (the pairs it
/// started or was stopping are stopped by `root` like every other pair).
pub(super) async fn reload_on_request(
    mut pairs: Pairs,
    path: PathBuf,
    started_with: ConnectorConfig,
    requested: Arc<Notify>,
    root: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = root.cancelled() => return,
            _ = requested.notified() => {}
        }
        tokio::select! {
            _ = root.cancelled() => return,
            _ = pairs.reload(&path, &started_with) => {}
        }
    }
}
