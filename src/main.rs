//! The process edge: parse the command line, load and validate the configuration before
//! anything touches the network, fork if asked (before any thread or runtime exists),
//! set up logging, build the runtime, run the subcommand, and map the outcome to an exit
//! code (`docs/operations.md#exit-codes`: 0 ok, 78 configuration problem, 2 usage,
//! 1 fatal).

use anyhow::Context;
use mrav2_syslog_connector::cli::{Cli, Command, DemoArgs, ResendArgs, SimulateArgs};
use mrav2_syslog_connector::config::{self, ApiKeys, Config};
use mrav2_syslog_connector::position::ensure_writable;
use mrav2_syslog_connector::state_lock::StateLock;
use mrav2_syslog_connector::{app, logging, resend, status};
use std::fs::TryLockError;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// EX_CONFIG: any configuration problem.
const EXIT_CONFIG: u8 = 78;

/// A command-line usage error: what clap exits with for its own, and `resend` for a
/// tenant or destination the configuration does not have.
const EXIT_USAGE: u8 = 2;

/// How long the runtime may take to stop its remaining tasks after `app::run`
/// returned.
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_millis(300);

fn main() -> ExitCode {
    // Before anything else: SIGTERM, SIGINT and SIGHUP wait (pending) until `run` has
    // its handlers, so that one arriving in the first milliseconds neither kills the
    // process (SIGHUP's default action) nor skips the orderly shutdown.
    let held = app::hold_signals();
    let cli = Cli::parse_or_exit();
    if !matches!(cli.subcommand(), Command::Run) {
        app::release_signals(held);
    }
    let outcome = match cli.subcommand() {
        Command::Run => run(&cli),
        Command::CheckConfig(args) => check_config(&cli, args.probe),
        Command::Status => show_status(&cli),
        Command::Demo(args) => demo(&cli, &args),
        Command::Simulate(args) => simulate(&cli, args),
        Command::Resend(args) => resend(&cli, &args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `run`: the connector in the foreground, or detached with `--daemon`.
fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = match load(cli, ApiKeys::Read) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let state_dir = state_dir(cli, &config);
    // Taken before forking, so that a second `--daemon` fails visibly; the detached
    // process inherits the locked file and keeps it until it ends.
    ensure_writable(&state_dir)?;
    if let (true, Some(pid_file)) = (cli.daemon, &cli.pid_file) {
        // The pid file is the lock an operator of `--daemon` named: report it first.
        refuse_if_locked(pid_file)?;
    }
    let mut lock = StateLock::acquire(&state_dir)?;
    if cli.daemon {
        let Some(pid_file) = &cli.pid_file else {
            // clap enforces this; keep the message for a library caller.
            anyhow::bail!("--daemon needs --pid-file PATH");
        };
        daemonize(pid_file)?;
        lock.record_pid()
            .context("cannot write the pid into the state directory lock")?;
    }
    // From here on threads may exist: the log writer's, then the runtime's.
    let log = logging::init(cli.log_file.as_deref(), cli.verbose)?;
    let runtime = runtime()?;
    let result = runtime.block_on(app::run(
        config,
        state_dir,
        Some(&log),
        CancellationToken::new(),
    ));
    if let Err(e) = &result {
        tracing::error!(error = format!("{e:#}"), "fatal");
    }
    // A task stuck in a blocking call (a write to a full pipe, name resolution) must
    // not hold the exit: app::run has already waited out the grace period.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    drop(log);
    drop(lock);
    result.map(|()| ExitCode::SUCCESS)
}

/// `check-config [--probe]`.
fn check_config(cli: &Cli, probe: bool) -> anyhow::Result<ExitCode> {
    let config = match load(cli, ApiKeys::Read) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    print!("{}", config.summary());
    if probe {
        let ok = runtime()?.block_on(app::probe(&config));
        if !ok {
            println!("probe failed");
            return Ok(ExitCode::FAILURE);
        }
        println!("probe ok");
    }
    println!("configuration ok: {}", config.path.display());
    Ok(ExitCode::SUCCESS)
}

/// `status`: each tenant's saved position.
fn show_status(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = match load(cli, ApiKeys::Skip) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let state_dir = state_dir(cli, &config);
    print!(
        "{}",
        status::render(&config, &state_dir, chrono::Utc::now())
    );
    Ok(ExitCode::SUCCESS)
}

/// `demo`: simulator and connector in one process, records on stdout.
fn demo(cli: &Cli, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let log = logging::init(cli.log_file.as_deref(), cli.verbose)?;
    let runtime = runtime()?;
    let result = runtime.block_on(app::demo(args));
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    drop(log);
    result.map(|()| ExitCode::SUCCESS)
}

/// `simulate`: only the built-in MRA v2 simulator.
fn simulate(cli: &Cli, args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let log = logging::init(cli.log_file.as_deref(), cli.verbose)?;
    let options = app::simulator_options(args)?;
    let result = runtime()?.block_on(mrav2_syslog_connector::simulator::run_until_ctrl_c(options));
    drop(log);
    result.context("simulator failed")?;
    Ok(ExitCode::SUCCESS)
}

/// `resend`: a tenant's events of a time window, sent again without touching saved
/// positions (so no state directory lock either: the connector may be running).
fn resend(cli: &Cli, args: &ResendArgs) -> anyhow::Result<ExitCode> {
    let config = match load(cli, ApiKeys::Read) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let request = match resend::Request::new(&config, args, chrono::Utc::now()) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    // Dead letters (records a destination refuses) go where the connector keeps them.
    let state_dir = state_dir(cli, &config);
    let log = logging::init(cli.log_file.as_deref(), cli.verbose)?;
    let runtime = runtime()?;
    let results = runtime.block_on(async {
        let stop = CancellationToken::new();
        let on_signal = stop.clone();
        tokio::spawn(async move {
            stop_signal().await;
            on_signal.cancel();
        });
        resend::run(&config, request, state_dir, stop).await
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    drop(log);
    let failed: Vec<_> = results.iter().filter(|r| r.error.is_some()).collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::bail!(
        "resend of {} incomplete for {}; run it again (it never moves saved positions)",
        args.tenant,
        failed
            .iter()
            .map(|r| r.destination.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// SIGINT or SIGTERM (for `resend`, which has no other signal handling).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        // Without handlers the signals keep their default action (the process ends).
        _ => std::future::pending().await,
    }
}

/// Loads `--config`; on problems prints every one to stderr and gives exit code 78.
fn load(cli: &Cli, api_keys: ApiKeys) -> Result<Config, ExitCode> {
    let Some(path) = &cli.config else {
        // `Cli::parse_or_exit` already insisted on --config for these subcommands.
        eprintln!("error: --config PATH is required");
        return Err(ExitCode::from(2));
    };
    config::load_file(path, api_keys).map_err(|e| {
        eprintln!("{e}");
        let n = e.problems.len();
        eprintln!(
            "{n} configuration problem{}; nothing was started",
            if n == 1 { "" } else { "s" }
        );
        ExitCode::from(EXIT_CONFIG)
    })
}

fn state_dir(cli: &Cli, config: &Config) -> PathBuf {
    config.connector.resolve_state_dir(
        cli.state_dir.as_deref(),
        std::env::var_os("STATE_DIRECTORY").as_deref(),
        &config.path,
    )
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Detaches from the terminal. Must run before any thread exists: `fork` copies only
/// the calling thread. The working directory is kept, so relative paths in the
/// configuration and on the command line mean what they meant.
fn daemonize(pid_file: &Path) -> anyhow::Result<()> {
    refuse_if_locked(pid_file)?;
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    daemonize::Daemonize::new()
        .pid_file(pid_file)
        .working_directory(cwd)
        .umask(0o027)
        .start()
        .with_context(|| format!("cannot daemonize with pid file {}", pid_file.display()))
}

/// `daemonize` locks the pid file only in the detached grandchild, after the parent
/// has already exited 0. Checking the lock here, in the parent, lets a second instance
/// on the same pid file fail visibly with exit code 1.
fn refuse_if_locked(pid_file: &Path) -> anyhow::Result<()> {
    let file = match std::fs::File::open(pid_file) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot open pid file {}", pid_file.display()));
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(pid_file).unwrap_or_default();
            anyhow::bail!(
                "another instance is running: pid file {} is locked by pid {}; stop it first or use another --pid-file",
                pid_file.display(),
                pid.trim()
            )
        }
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock pid file {}", pid_file.display()))
        }
    }
}
