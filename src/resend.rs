//! `resend`: one tenant's events of a time window sent again, to one or all of its
//! destinations, beside (or without) the running connector.
//!
//! This module checks the request against the configuration, runs the tenant's real
//! pipeline once per destination in window mode ([`PairTask::resend`]), shows progress
//! on standard error and says how it ended. It owns no delivery logic of its own.
//!
//! What it deliberately never does: read or write a saved position, or take the state
//! directory's lock. Only dead letters (records a destination refused) are appended to
//! the tenant's dead-letter file, as the connector does.

use crate::cli::ResendArgs;
use crate::config::{Config, DestinationConfig, TenantConfig};
use crate::observe::{Observer, PairObserver};
use crate::tenant::{PairRole, PairTask, Reached, Resent, Shutdown, Window};
use chrono::{DateTime, SecondsFormat, Utc};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often a plain progress line is printed when standard error is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// How often the progress bar is redrawn on a terminal.
const BAR_EVERY: Duration = Duration::from_millis(200);

/// How often progress is looked at (for giving up) when no bar is drawn.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// After Ctrl-C or SIGTERM, how long what was already sent may still be confirmed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A checked `resend` request: the tenant, the destinations and the window.
#[derive(Debug, Clone)]
pub struct Request {
    pub tenant: TenantConfig,
    pub destinations: Vec<DestinationConfig>,
    pub window: Window,
    /// Give up on a destination that delivered nothing for this long while failing.
    pub give_up_after: Duration,
}

/// Why a `resend` command line does not fit the configuration (a usage error).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RequestError {
    #[error("--tenant {name:?}: {file} has no tenant of that name; its tenants are: {known}")]
    UnknownTenant {
        name: String,
        file: String,
        known: String,
    },
    #[error(
        "--destination {name:?}: tenant {tenant} has no destination of that name; its destinations are: {known}"
    )]
    UnknownDestination {
        name: String,
        tenant: String,
        known: String,
    },
    #[error(
        "--from {from} is not before now ({now}): the window [from, now) would be empty; give an earlier --from or a --to"
    )]
    FromInTheFuture { from: String, now: String },
}

/// How the resend of one destination ended.
#[derive(Debug)]
pub struct PairResult {
    pub destination: String,
    /// Events delivered.
    pub delivered: u64,
    /// `None`: the last event of the window was delivered.
    pub error: Option<String>,
}

impl Request {
    /// Checks `args` against `config`: the tenant and destination exist, and the window
    /// (with `--to` defaulting to `now`) is not empty.
    pub fn new(
        config: &Config,
        args: &ResendArgs,
        now: DateTime<Utc>,
    ) -> Result<Request, RequestError> {
        let tenant = config
            .tenants
            .iter()
            .find(|t| t.entity_name == args.tenant)
            .ok_or_else(|| RequestError::UnknownTenant {
                name: args.tenant.clone(),
                file: config.path.display().to_string(),
                known: config
                    .tenants
                    .iter()
                    .map(|t| t.entity_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let destinations: Vec<DestinationConfig> = match &args.destination {
            None => tenant.destinations.clone(),
            Some(name) => vec![
                tenant
                    .destinations
                    .iter()
                    .find(|d| d.name() == name)
                    .cloned()
                    .ok_or_else(|| RequestError::UnknownDestination {
                        name: name.clone(),
                        tenant: tenant.entity_name.clone(),
                        known: tenant
                            .destinations
                            .iter()
                            .map(DestinationConfig::name)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?,
            ],
        };
        let to = args.to.unwrap_or(now);
        if to <= args.from {
            // `Cli` already refused an explicit --to that is not after --from.
            return Err(RequestError::FromInTheFuture {
                from: shown(args.from),
                now: shown(now),
            });
        }
        Ok(Request {
            tenant: tenant.clone(),
            destinations,
            window: Window {
                from: args.from,
                to,
            },
            give_up_after: Duration::from_secs(args.give_up_after),
        })
    }
}

/// Runs the request: one pipeline per destination, all at once, until each has
/// delivered the last event of the window, failed, or `stop` fired. Progress goes to
/// standard error. Returns one result per destination, in configuration order.
pub async fn run(
    config: &Config,
    request: Request,
    state_dir: PathBuf,
    stop: CancellationToken,
) -> Vec<PairResult> {
    crate::tls::install_crypto_provider();
    let observer = Arc::new(Observer::new());
    let name = request.tenant.entity_name.clone();
    let mut pairs = Vec::new();
    // Each pipeline says when it ends, so that the last one's end is reported at once.
    let (ended_tx, mut ended_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for destination in &request.destinations {
        let pair_observer = observer.pair(&name, destination.name(), request.tenant.sse_timeout);
        let task = PairTask {
            config: request.tenant.clone(),
            destination: destination.clone(),
            role: PairRole::of(&request.tenant, destination),
            proxy: config.proxy.clone(),
            state_dir: state_dir.clone(),
            commit_interval: config.connector.commit_interval,
            observer: pair_observer.clone(),
        };
        let shutdown = Shutdown {
            stop_reading: stop.child_token(),
            give_up: CancellationToken::new(),
        };
        let reached = Arc::new(Reached::default());
        let window = request.window;
        let handle = {
            let shutdown = shutdown.clone();
            let reached = reached.clone();
            let ended = ended_tx.clone();
            tokio::spawn(async move {
                let result = task.resend(window, reached, &shutdown).await;
                let _ = ended.send(());
                result
            })
        };
        pairs.push(Pair {
            observer: pair_observer,
            shutdown,
            reached,
            handle,
            gave_up: None,
            last_delivered: 0,
            last_progress: Instant::now(),
            error_since_progress: None,
        });
    }
    let display = Display::new(&name, &request, &pairs);
    let started = Instant::now();
    let mut tick = tokio::time::interval(display.every());
    // After a stop request, when delivering what was already sent is given up.
    let mut give_up_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ended_rx.recv() => {}
            _ = stop.cancelled(), if give_up_at.is_none() => {
                // Reading stopped (the pipelines' tokens are children of `stop`); what
                // was sent may still be confirmed, so the count printed is true.
                give_up_at = Some(Instant::now() + STOP_GRACE);
            }
        }
        let now = Instant::now();
        if give_up_at.is_some_and(|at| now >= at) {
            for pair in &pairs {
                pair.shutdown.give_up.cancel();
            }
        }
        let health = observer.health();
        for (pair, report) in pairs.iter_mut().zip(&health.tenants) {
            if report.delivered != pair.last_delivered {
                pair.last_delivered = report.delivered;
                pair.last_progress = now;
                pair.error_since_progress = None;
            }
            // A heartbeat clears the reported error; the stall remembers it.
            if let Some(error) = &report.last_error {
                pair.error_since_progress = Some(error.clone());
            }
            let stalled = now.duration_since(pair.last_progress) >= request.give_up_after;
            if pair.gave_up.is_none()
                && stalled
                && let Some(error) = &pair.error_since_progress
            {
                pair.gave_up = Some(format!(
                    "gave up: nothing delivered for {} s (--give-up-after) while failing: {error}",
                    request.give_up_after.as_secs()
                ));
                pair.shutdown.stop_reading.cancel();
                pair.shutdown.give_up.cancel();
            }
        }
        display.show(&pairs, started.elapsed());
        if pairs.iter().all(|p| p.handle.is_finished()) {
            break;
        }
    }
    let mut results = Vec::new();
    for pair in pairs {
        let destination = pair.observer.destination().to_string();
        let ended = pair.handle.await;
        let delivered = observer
            .health()
            .tenants
            .iter()
            .find(|t| t.destination == destination)
            .map_or(0, |t| t.delivered);
        let error = match ended {
            Ok(Ok(Resent::Delivered)) => None,
            Ok(Ok(Resent::Stopped)) => Some(
                pair.gave_up
                    .unwrap_or_else(|| "interrupted before the window was delivered".into()),
            ),
            Ok(Err(e)) => Some(e),
            Err(join) => Some(format!("the resend task failed: {join}")),
        };
        results.push(PairResult {
            destination,
            delivered,
            error,
        });
    }
    display.finish(&name, &request.window, &results, started.elapsed());
    results
}

/// One destination being resent to.
struct Pair {
    observer: PairObserver,
    shutdown: Shutdown,
    reached: Arc<Reached>,
    handle: tokio::task::JoinHandle<Result<Resent, String>>,
    /// Why this pair was given up, if it was.
    gave_up: Option<String>,
    last_delivered: u64,
    last_progress: Instant,
    /// The last error reported since something was last delivered: a pair that
    /// delivers nothing without errors is waiting for events, not failing.
    error_since_progress: Option<String>,
}

/// Progress on standard error: a bar per destination on a terminal, otherwise a plain
/// line per destination every [`PLAIN_EVERY`].
enum Display {
    Bars {
        _multi: MultiProgress,
        bars: Vec<ProgressBar>,
        window: Window,
    },
    Lines {
        window: Window,
        tenant: String,
        last: std::sync::Mutex<Instant>,
    },
}

impl Display {
    fn new(tenant: &str, request: &Request, pairs: &[Pair]) -> Display {
        let window = request.window;
        eprintln!(
            "resend {tenant}: events created in [{}, {}) to {}",
            shown(window.from),
            shown(window.to),
            pairs
                .iter()
                .map(|p| p.observer.destination())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !std::io::stderr().is_terminal() {
            return Display::Lines {
                window,
                tenant: tenant.to_string(),
                last: std::sync::Mutex::new(Instant::now()),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {percent:>3}% {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let bars = pairs
            .iter()
            .map(|p| {
                let bar = multi.add(ProgressBar::new(1000));
                bar.set_style(style.clone());
                bar.set_prefix(p.observer.destination().to_string());
                bar
            })
            .collect();
        Display::Bars {
            _multi: multi,
            bars,
            window,
        }
    }

    fn every(&self) -> Duration {
        match self {
            Display::Bars { .. } => BAR_EVERY,
            Display::Lines { .. } => CHECK_EVERY,
        }
    }

    fn show(&self, pairs: &[Pair], elapsed: Duration) {
        match self {
            Display::Bars { bars, window, .. } => {
                for (pair, bar) in pairs.iter().zip(bars) {
                    let figures = Figures::of(pair, window, elapsed);
                    bar.set_position((figures.fraction * 1000.0) as u64);
                    bar.set_message(figures.text());
                }
            }
            Display::Lines {
                window,
                tenant,
                last,
            } => {
                let Ok(mut last) = last.lock() else { return };
                if last.elapsed() < PLAIN_EVERY {
                    return;
                }
                *last = Instant::now();
                for pair in pairs {
                    let figures = Figures::of(pair, window, elapsed);
                    eprintln!(
                        "resend {tenant} -> {}: {:.0}% of the window, {}",
                        pair.observer.destination(),
                        figures.fraction * 100.0,
                        figures.text()
                    );
                }
            }
        }
    }

    fn finish(&self, tenant: &str, window: &Window, results: &[PairResult], elapsed: Duration) {
        if let Display::Bars { bars, .. } = self {
            for (bar, result) in bars.iter().zip(results) {
                if result.error.is_none() {
                    bar.set_position(1000);
                }
                bar.finish();
            }
        }
        for result in results {
            match &result.error {
                None => eprintln!(
                    "resend {tenant} -> {}: done: {} events of [{}, {}) delivered in {:.1} s",
                    result.destination,
                    result.delivered,
                    shown(window.from),
                    shown(window.to),
                    elapsed.as_secs_f64()
                ),
                Some(error) => eprintln!(
                    "resend {tenant} -> {}: NOT complete after {} events delivered: {error}",
                    result.destination, result.delivered
                ),
            }
        }
    }
}

/// What a progress line or bar shows for one destination.
struct Figures {
    delivered: u64,
    rate: f64,
    fraction: f64,
    reached: Option<DateTime<Utc>>,
}

impl Figures {
    fn of(pair: &Pair, window: &Window, elapsed: Duration) -> Figures {
        let reached = pair.reached.get();
        Figures {
            delivered: pair.last_delivered,
            rate: pair.last_delivered as f64 / elapsed.as_secs_f64().max(0.001),
            fraction: reached.map_or(0.0, |t| window.fraction(t)),
            reached,
        }
    }

    fn text(&self) -> String {
        format!(
            "{} events delivered, {:.1} events/s, delivered up to created_time {}",
            self.delivered,
            self.rate,
            self.reached.map_or_else(|| "-".to_string(), shown)
        )
    }
}

/// An instant as the operator typed it: RFC 3339 in UTC.
fn shown(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeys;

    const CONFIG: &str = "\
[lookout]
entity_name = acme
api_domain = http://127.0.0.1:9
api_key = k

[syslog]
host = 127.0.0.1
port = 9

[lookout:beta]
api_domain = http://127.0.0.1:9
api_key = k2
";

    fn config() -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.ini");
        std::fs::write(&path, CONFIG).unwrap();
        crate::config::load_file(&path, ApiKeys::Read).unwrap()
    }

    fn args(tenant: &str, destination: Option<&str>, to: Option<&str>) -> ResendArgs {
        ResendArgs {
            tenant: tenant.into(),
            from: "2026-11-20T00:00:00Z".parse().unwrap(),
            to: to.map(|t| t.parse().unwrap()),
            destination: destination.map(str::to_string),
            give_up_after: 300,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-21T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_known_tenant_gets_all_its_destinations_and_to_defaults_to_now() {
        let request = Request::new(&config(), &args("acme", None, None), now()).unwrap();
        assert_eq!(request.tenant.entity_name, "acme");
        let names: Vec<_> = request.destinations.iter().map(|d| d.name()).collect();
        assert_eq!(names, ["syslog"]);
        assert_eq!(request.window.to, now());
        let request = Request::new(&config(), &args("beta", Some("syslog"), None), now()).unwrap();
        assert_eq!(request.destinations.len(), 1);
    }

    #[test]
    fn an_unknown_tenant_lists_the_known_ones() {
        let e = Request::new(&config(), &args("acne", None, None), now()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("--tenant \"acne\""), "{text}");
        assert!(text.contains("its tenants are: acme, beta"), "{text}");
    }

    #[test]
    fn an_unknown_destination_lists_the_tenants_destinations() {
        let e = Request::new(&config(), &args("acme", Some("qradar"), None), now()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--destination \"qradar\": tenant acme has no destination of that name; its destinations are: syslog"
        );
    }

    #[test]
    fn a_from_in_the_future_without_to_is_refused() {
        let later: DateTime<Utc> = "2026-11-19T00:00:00Z".parse().unwrap();
        let e = Request::new(&config(), &args("acme", None, None), later).unwrap_err();
        assert!(e.to_string().contains("is not before now"), "{e}");
    }
}
