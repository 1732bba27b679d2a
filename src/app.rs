//! Process lifetime: from a validated configuration to a clean exit.
//!
//! Order matters and is fixed here: the configuration is already valid (nothing has
//! touched the network), the process is already daemonized if asked (before any thread
//! existed) and logging is up. This module then checks the state directory, starts the
//! metrics endpoint, spawns one supervised task per (tenant, destination) pair under a
//! root cancellation token, tells systemd it is ready, and waits for signals:
//!
//! - SIGTERM / SIGINT: stop reading, let every tenant deliver and commit what it read,
//!   and return within the grace deadline even if the destination is unreachable;
//! - SIGHUP: re-open the log file, then re-read the configuration file and apply what
//!   changed: start added pairs, stop removed ones, restart changed ones, leave the
//!   others alone (`app/running.rs`); a file with any problem changes nothing.

use crate::cli::{DemoArgs, DemoFormat, SimulateArgs};
use crate::config::{Config, DestinationConfig};
use crate::logging::LogHandle;
use crate::observe::Observer;
use crate::position::ensure_writable;
use crate::simulator::{EventKind, IdZero as SimIdZero, Scenario, SimOptions};
use crate::source::StartPoint;
use anyhow::Context;
use running::Pairs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

mod running;

/// The whole shutdown must finish within this.
pub const GRACE: Duration = Duration::from_secs(5);

/// Of the grace period, how long tenants may keep trying to deliver what they read
/// before they give up (the rest is for committing and closing connections).
const DELIVERY_GRACE: Duration = Duration::from_millis(4000);

/// Runs every tenant until SIGTERM or SIGINT (or until `stop` fires, for tests and
/// `demo`). Errors are the fatal start-up problems of exit code 1.
pub async fn run(
    config: Config,
    state_dir: PathBuf,
    log: Option<&LogHandle>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut signals = Signals::register()?;
    // Signals held since `main` began are delivered now, to the handlers above.
    release_signals(signal_set());
    crate::tls::install_crypto_provider();
    ensure_writable(&state_dir)?;
    for warning in &config.warnings {
        warn!("{warning}");
    }
    check_open_files(&config);

    let observer = Arc::new(Observer::new());
    let root = CancellationToken::new();
    let give_up = CancellationToken::new();
    let tracker = TaskTracker::new();

    if let Some(addr) = config.connector.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on metrics_listen = {addr}"))?;
        info!(address = %addr, "serving /metrics and /health");
        tracker.spawn(crate::observe::serve(
            listener,
            observer.clone(),
            root.clone(),
        ));
    }

    let started_with = config.connector.clone();
    let mut pairs = Pairs::new(
        observer.clone(),
        state_dir,
        root.clone(),
        give_up.clone(),
        tracker.clone(),
    );
    let mut started = 0usize;
    for spec in crate::pairs::wanted(&config) {
        started += usize::from(pairs.start(spec));
    }
    let tenants_started = pairs
        .keys()
        .map(|key| key.tenant.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if started == 0 {
        anyhow::bail!("no tenant could be started; see the errors above");
    }
    // Closed: `wait` returns once every task has ended. Pairs a reload starts later
    // are still tracked (a closed tracker keeps tracking what it spawns).
    tracker.close();
    info!(
        tenants = tenants_started,
        pairs = started,
        "MRAv2 Syslog Connector started successfully"
    );
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    let watchdog = spawn_watchdog(root.clone());
    let reload = Arc::new(Notify::new());
    let reloader = tokio::spawn(running::reload_on_request(
        pairs,
        config.path.clone(),
        started_with,
        reload.clone(),
        root.clone(),
    ));

    wait_for_stop(&mut signals, log, &stop, &reload).await?;

    info!("shutting down: delivering what was read, then saving positions");
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    root.cancel();
    if tokio::time::timeout(DELIVERY_GRACE, tracker.wait())
        .await
        .is_err()
    {
        give_up.cancel();
        if tokio::time::timeout(GRACE - DELIVERY_GRACE, tracker.wait())
            .await
            .is_err()
        {
            warn!("some tenants did not stop within the grace period");
        }
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    reloader.abort();
    info!("stopped");
    Ok(())
}

/// Raises the soft open-files limit and warns when the tenants may not fit in it.
fn check_open_files(config: &Config) {
    let metrics = if config.connector.metrics_listen.is_some() {
        crate::observe::MAX_CONNECTIONS
    } else {
        0
    };
    let needed =
        crate::open_files::needed(config.tenants.iter().map(|t| t.destinations.len()), metrics);
    match crate::open_files::raise() {
        Ok(limit) => {
            if let Some(from) = limit.raised_from {
                info!(from, to = limit.soft, "raised the open-files limit");
            }
            if let Some(needed) = crate::open_files::shortfall(limit.soft, needed) {
                warn!(
                    limit = limit.soft,
                    needed,
                    tenants = config.tenants.len(),
                    "the open-files limit is too low for this many tenants (two connections per tenant and destination: its stream and the destination); raise the hard limit (systemd: LimitNOFILE=; a shell: ulimit -n N as root)"
                );
            }
        }
        Err(e) => warn!(error = %e, "cannot raise the open-files limit"),
    }
}

/// The signals `run` handles.
fn signal_set() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set
}

/// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and in every thread it
/// starts later: until [`release_signals`], they stay pending instead of taking their
/// default action (which ends the process). Call it first thing in `main`, before any
/// thread exists.
pub fn hold_signals() -> nix::sys::signal::SigSet {
    let set = signal_set();
    // Blocking signals cannot fail for a valid set; if it did, the defaults remain.
    let _ = set.thread_block();
    set
}

/// Unblocks `held` in the calling thread: pending signals are delivered now. [`run`]
/// calls it once its handlers are installed (it runs on the thread that called
/// [`hold_signals`]); other subcommands call it at once.
pub fn release_signals(held: nix::sys::signal::SigSet) {
    let _ = held.thread_unblock();
}

fn describe_start(start: &StartPoint) -> String {
    match start {
        StartPoint::Position(p) => format!("after id {p}"),
        StartPoint::StartTime(t) => format!("from start_time {}", t.to_rfc3339()),
        StartPoint::Beginning => "id=0 (no saved position)".into(),
    }
}

/// The signals the connector handles, registered before anything else starts so that
/// an early SIGHUP (logrotate) cannot take the default action and end the process.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> anyhow::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
        })
    }
}

/// Waits for SIGTERM, SIGINT or `stop`; SIGHUP re-opens the log file meanwhile and
/// asks for a reload of the configuration (`reload`: one pending request at most, so
/// SIGHUPs during a reload cause one more reload after it).
async fn wait_for_stop(
    signals: &mut Signals,
    log: Option<&LogHandle>,
    stop: &CancellationToken,
    reload: &Notify,
) -> anyhow::Result<()> {
    let Signals { term, int, hup } = signals;
    loop {
        tokio::select! {
            _ = term.recv() => { info!(signal = "SIGTERM", "stop requested"); return Ok(()) }
            _ = int.recv() => { info!(signal = "SIGINT", "stop requested"); return Ok(()) }
            _ = stop.cancelled() => return Ok(()),
            _ = hup.recv() => {
                match log.map(LogHandle::reopen) {
                    Some(Err(e)) => error!(error = %e, "cannot re-open the log file"),
                    _ => info!("SIGHUP: log file re-opened; reloading the configuration"),
                }
                reload.notify_one();
            }
        }
    }
}

fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(false, state)
    {
        warn!(error = %e, "cannot notify systemd");
    }
}

/// Pings the systemd watchdog at half its interval from a runtime task, so a stuck
/// runtime stops the pings and systemd restarts the service.
fn spawn_watchdog(cancel: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
    let usec = watchdog_usec(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )?;
    let every = Duration::from_micros(usec / 2).max(Duration::from_millis(50));
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => notify_systemd(&[sd_notify::NotifyState::Watchdog]),
            }
        }
    }))
}

/// libsystemd's `sd_watchdog_enabled` rule: the watchdog is on when `WATCHDOG_USEC` is
/// a positive number, and `WATCHDOG_PID`, if set, names this process. (The sd-notify
/// crate also insists that `WATCHDOG_PID` is present, which systemd does not require.)
fn watchdog_usec(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<u64> {
    let usec = usec?.trim().parse::<u64>().ok().filter(|&u| u > 0)?;
    match pid {
        Some(pid) if pid.trim().parse::<u32>().ok() != Some(own_pid) => None,
        _ => Some(usec),
    }
}

/// `check-config --probe`: for each tenant, fetch a token, open the stream once and
/// connect to the syslog destination (or check a HEC destination's health and token),
/// printing each step. True when every step passed.
pub async fn probe(config: &Config) -> bool {
    crate::tls::install_crypto_provider();
    let mut all_ok = true;
    for tenant in &config.tenants {
        println!("probe {}:", tenant.entity_name);
        for step in crate::source::probe(tenant, &config.proxy).await {
            match step.outcome {
                Ok(found) => println!("  {}: ok: {}", step.step, shown(&found)),
                Err(e) => {
                    all_ok = false;
                    println!("  {}: FAILED: {}", step.step, shown(&e));
                }
            }
        }
        for destination in &tenant.destinations {
            let (step, outcome) = match destination {
                DestinationConfig::SplunkHec(hec) => (
                    format!("splunk_hec {}", hec.name),
                    crate::sink::hec::probe(hec).await,
                ),
                DestinationConfig::Syslog { name, syslog } => {
                    let step = if name == "syslog" {
                        "syslog".to_owned()
                    } else {
                        format!("syslog {name}")
                    };
                    (step, probe_syslog(syslog).await)
                }
            };
            match outcome {
                Ok(found) => println!("  {step}: ok: {found}"),
                Err(e) => {
                    all_ok = false;
                    println!("  {step}: FAILED: {e}");
                }
            }
        }
    }
    all_ok
}

/// Connects to a syslog destination and closes the connection again. The text may
/// quote the receiver, so it is cleaned like a log line.
async fn probe_syslog(syslog: &crate::config::SyslogConfig) -> Result<String, String> {
    let connector =
        crate::sink::transport::Connector::new(syslog).map_err(|e| shown(&e.to_string()))?;
    let transport = connector
        .connect()
        .await
        .map_err(|e| shown(&e.to_string()))?;
    transport.close(Duration::from_secs(2)).await;
    Ok(format!(
        "connected to {}",
        shown(&connector.destination().to_string())
    ))
}

/// A probe step's text, which may quote a server: cleaned like a log line.
fn shown(text: &str) -> String {
    crate::untrusted::clean(text.as_bytes(), PROBE_TEXT_LIMIT)
}

/// The longest text one probe step prints.
const PROBE_TEXT_LIMIT: usize = 2048;

/// `simulate`: the command-line flags as the simulator's options.
pub fn simulator_options(args: SimulateArgs) -> anyhow::Result<SimOptions> {
    let mut types = Vec::new();
    for t in &args.types {
        types.push(
            t.as_str()
                .parse::<EventKind>()
                .map_err(|e| anyhow::anyhow!("--types: {e}"))?,
        );
    }
    let scenario = match &args.scenario {
        Some(path) => Scenario::from_file(path)?,
        None => Scenario::default(),
    };
    let options = SimOptions {
        listen: args.listen,
        tenants: args.tenants.into_iter().map(|t| (t.name, t.key)).collect(),
        token_ttl: Duration::from_secs(args.token_ttl),
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        seed: args.seed,
        events: usize::try_from(args.events).context("--events is too large")?,
        start_time: args.start_time,
        rate: u32::try_from(args.rate).context("--rate is too large")?,
        batch_size: usize::from(args.batch_size),
        types,
        id_zero: match args.id_zero {
            crate::cli::IdZero::Oldest => SimIdZero::Oldest,
            crate::cli::IdZero::Now => SimIdZero::Now,
        },
        resume_at_id: args.resume_at_id,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        firehose: args.firehose,
        scenario,
        ..SimOptions::default()
    };
    options.validate()?;
    Ok(options)
}

/// `demo`: the built-in simulator on a loopback port and one tenant pointed at it,
/// writing its syslog records to standard output until Ctrl-C.
pub async fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    crate::tls::install_crypto_provider();
    let mut options = SimOptions {
        events: usize::try_from(args.events.unwrap_or(100)).context("--events is too large")?,
        ..SimOptions::default()
    };
    options.tenants = [("demo".to_string(), "demo-key".to_string())].into();
    let (addr, simulator) = crate::simulator::start(options)
        .await
        .context("cannot start the built-in simulator")?;
    let state_dir = std::env::temp_dir().join(format!("mrav2-demo-{}", std::process::id()));
    let forwarder = match args.format {
        DemoFormat::Qradar => "qradar",
        DemoFormat::Splunk => "splunk",
    };
    // The demo is configured through the same loader as a real installation, so what
    // it shows is what an operator gets from these keys.
    let ini = format!(
        "[lookout]\nentity_name = demo\napi_domain = http://{addr}\napi_key = demo-key\n\
         audit_enabled = true\nsmishing_enabled = true\n\n\
         [syslog]\nprotocol = stdout\nforwarder_type = {forwarder}\n\n\
         [connector]\nstate_dir = {}\n",
        state_dir.display()
    );
    let config = crate::config::load_str(&state_dir.join("demo.ini"), &ini)
        .map_err(|e| anyhow::anyhow!("the demo configuration is invalid: {e}"))?;
    eprintln!(
        "demo: built-in simulator on http://{addr}; {forwarder} records follow on stdout; Ctrl-C stops"
    );
    let result = run(config, state_dir.clone(), None, CancellationToken::new()).await;
    simulator.shutdown().await;
    let _ = std::fs::remove_dir_all(&state_dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_follows_libsystemd_rules() {
        assert_eq!(watchdog_usec(Some("30000000"), None, 7), Some(30_000_000));
        assert_eq!(
            watchdog_usec(Some("30000000"), Some("7"), 7),
            Some(30_000_000)
        );
        assert_eq!(watchdog_usec(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_usec(Some("0"), None, 7), None);
        assert_eq!(watchdog_usec(Some("soon"), None, 7), None);
        assert_eq!(watchdog_usec(None, Some("7"), 7), None);
    }
}
