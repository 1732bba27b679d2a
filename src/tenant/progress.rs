//! The figures of the per-tenant progress line: events delivered per second, lag and
//! position since the last line.

use crate::event::Position;
use std::time::Duration;
use tokio::time::Instant;

/// What the progress line reports about the last interval.
pub(super) struct Progress {
    since: Instant,
    events: u64,
    lag: Option<Duration>,
    position: Option<String>,
}

pub(super) struct ProgressReport {
    pub(super) rate: f64,
    pub(super) lag: Option<Duration>,
    pub(super) position: Option<String>,
}

impl Progress {
    pub(super) fn new() -> Self {
        Self {
            since: Instant::now(),
            events: 0,
            lag: None,
            position: None,
        }
    }

    pub(super) fn add(&mut self, events: u64, lag: Option<Duration>, position: Option<&Position>) {
        self.events += events;
        if lag.is_some() {
            self.lag = lag;
        }
        if let Some(p) = position {
            self.position = Some(p.as_str().to_string());
        }
    }

    /// The figures since the last call; the lag and position carry over.
    pub(super) fn take(&mut self) -> ProgressReport {
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
