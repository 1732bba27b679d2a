//! Command-line syntax: the clap types of `docs/operations.md#command-line`, and
//! nothing else.
//!
//! This module says what may be typed, not what it does: `main.rs` maps the parsed
//! [`Cli`] to actions. Syntax errors (unknown flags, `--daemon` without `--pid-file`, a
//! missing `--config`) are clap usage errors and exit 2.
//!
//! `mrav2-syslog-connector --config PATH` with no subcommand means `run`.

use crate::event::EventType;
use chrono::{DateTime, Utc};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Moves Lookout Mobile Risk API v2 events into a SIEM (QRadar LEEF, Splunk) over syslog.
#[derive(Debug, Clone, Parser)]
#[command(name = "mrav2-syslog-connector", version, about)]
pub struct Cli {
    /// Configuration file (INI)
    #[arg(short = 'c', long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Write the connector's own log to PATH instead of stderr
    #[arg(short = 'l', long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// Debug logging (heartbeats, per-batch lines); the default level is info
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,

    /// Where stream positions and dead letters live
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Detach from the terminal (needs --pid-file)
    #[arg(long, global = true, requires = "pid_file")]
    pub daemon: bool,

    /// Pid file, held locked while the connector runs
    #[arg(long, global = true, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum Command {
    /// Run the connector in the foreground (the default)
    Run,
    /// Parse and validate the configuration; print a summary per tenant
    CheckConfig(CheckConfigArgs),
    /// Print each tenant's saved position and its age
    Status,
    /// Run the built-in simulator and a connector against it, records to stdout
    Demo(DemoArgs),
    /// Run only the built-in MRA v2 simulator
    Simulate(SimulateArgs),
    /// Send a tenant's events of a time window again; saved positions are not touched
    Resend(ResendArgs),
}

/// `resend`: the window `[from, to)` by `created_time`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ResendArgs {
    /// The tenant, by its `entity_name`
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// Start of the window, included (ISO-8601, e.g. 2026-11-20T00:00:00Z; UTC without an offset)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: DateTime<Utc>,
    /// End of the window, excluded (ISO-8601); default: now
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
    /// Only this destination of the tenant (default: all of them)
    #[arg(long, value_name = "NAME")]
    pub destination: Option<String>,
    /// Give up when a destination has had nothing delivered for this long while
    /// failing (errors from the API or the destination)
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub give_up_after: u64,
}

/// `check-config`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct CheckConfigArgs {
    /// Also fetch a token, open the stream once and connect to the syslog destination
    #[arg(long)]
    pub probe: bool,
}

/// `demo`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct DemoArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = DemoFormat::Qradar)]
    pub format: DemoFormat,
    /// History length of the simulated tenant (100 when absent)
    #[arg(long, value_name = "N")]
    pub events: Option<u64>,
}

/// `demo --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoFormat {
    Qradar,
    Splunk,
}

/// `simulate`: every option of `docs/event-stream.md#simulate-options`, as typed. The
/// simulator converts this into its own options type.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct SimulateArgs {
    /// Address to listen on, e.g. 127.0.0.1:0 (port 0 picks a free port)
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// NAME=KEY: one Application Key per tenant (repeatable)
    #[arg(long = "tenant", value_name = "NAME=KEY", value_parser = parse_tenant_key, default_value = "demo=demo-key")]
    pub tenants: Vec<TenantKey>,
    /// Lifetime of issued tokens, seconds
    #[arg(long, value_name = "SECS", default_value_t = 7200)]
    pub token_ttl: u64,
    /// Heartbeat interval, milliseconds
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub heartbeat_ms: u64,
    /// Generator seed
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// History length per tenant
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub events: u64,
    /// created_time of the first history event (default: start-up minus one hour)
    #[arg(long, value_name = "TS", value_parser = parse_time)]
    pub start_time: Option<DateTime<Utc>>,
    /// Live events per second after the history (0 = none)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub rate: u64,
    /// Most events per `events` message
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Types to generate, comma-separated (THREAT,DEVICE,AUDIT,SMISHING_ALERT)
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_event_type, default_value = "THREAT,DEVICE,AUDIT,SMISHING_ALERT")]
    pub types: Vec<EventType>,
    /// Meaning of id=0
    #[arg(long, value_enum, default_value_t = IdZero::Oldest)]
    pub id_zero: IdZero,
    /// Resume at the given id instead of after it (an inclusive server)
    #[arg(long)]
    pub resume_at_id: bool,
    /// Serve HTTPS with this certificate (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key for --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Firehose mode (benchmarks)
    #[arg(long)]
    pub firehose: bool,
    /// Scenario file (JSON): wire style and scripted faults
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
}

/// `simulate --tenant NAME=KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantKey {
    pub name: String,
    pub key: String,
}

/// `simulate --id-zero`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdZero {
    /// id=0 starts at the oldest retained event
    Oldest,
    /// id=0 starts at the live tail
    Now,
}

impl Cli {
    /// Parses the process arguments; on a usage error prints it and exits 2 (clap's
    /// convention).
    pub fn parse_or_exit() -> Self {
        match Self::try_parse().and_then(Self::checked) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        }
    }

    /// Parses `args` (the first is the program name), with the checks clap's derive
    /// cannot express.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(args).and_then(Self::checked)
    }

    /// The subcommand, `run` when none was given.
    pub fn subcommand(&self) -> Command {
        self.command.clone().unwrap_or(Command::Run)
    }

    /// `run`, `check-config`, `status` and `resend` need `--config`; a `resend`
    /// window must not be empty or reversed.
    fn checked(self) -> Result<Self, clap::Error> {
        let command = self.subcommand();
        let needs_config = matches!(
            command,
            Command::Run | Command::CheckConfig(_) | Command::Status | Command::Resend(_)
        );
        if needs_config && self.config.is_none() {
            return Err(Self::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the following required argument was not provided: --config <PATH>",
            ));
        }
        if let Command::Resend(ResendArgs {
            from, to: Some(to), ..
        }) = &command
            && to <= from
        {
            return Err(Self::command().error(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "--to {} is not after --from {}: the window [from, to) would be empty; give a --to later than --from",
                    to.to_rfc3339(),
                    from.to_rfc3339()
                ),
            ));
        }
        Ok(self)
    }
}

fn parse_tenant_key(s: &str) -> Result<TenantKey, String> {
    let (name, key) = s
        .split_once('=')
        .ok_or_else(|| "expected NAME=KEY".to_string())?;
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !name_ok {
        return Err("NAME must be letters, digits, '.', '_' and '-'".to_string());
    }
    if key.is_empty() {
        return Err("KEY must not be empty".to_string());
    }
    Ok(TenantKey {
        name: name.to_string(),
        key: key.to_string(),
    })
}

fn parse_event_type(s: &str) -> Result<EventType, String> {
    EventType::from_wire(&s.trim().to_ascii_uppercase())
        .ok_or_else(|| "expected THREAT, DEVICE, AUDIT or SMISHING_ALERT".to_string())
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    crate::config::load::parse_timestamp(s)
        .map(|(t, _)| t)
        .ok_or_else(|| "expected an ISO-8601 time such as 2026-11-20T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_args(std::iter::once("mrav2-syslog-connector").chain(args.iter().copied()))
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_alone_means_run() {
        let cli = parse(&["--config", "c.ini"]).unwrap();
        assert_eq!(cli.subcommand(), Command::Run);
        assert_eq!(cli.config, Some(PathBuf::from("c.ini")));
        let cli = parse(&["-c", "c.ini", "-v", "-l", "log.txt"]).unwrap();
        assert!(cli.verbose);
        assert_eq!(cli.log_file, Some(PathBuf::from("log.txt")));
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = parse(&["status", "--config", "c.ini", "--state-dir", "/s"]).unwrap();
        assert_eq!(cli.subcommand(), Command::Status);
        assert_eq!(cli.state_dir, Some(PathBuf::from("/s")));
        let cli = parse(&["check-config", "-c", "c.ini", "--probe"]).unwrap();
        assert_eq!(
            cli.subcommand(),
            Command::CheckConfig(CheckConfigArgs { probe: true })
        );
    }

    #[test]
    fn run_without_config_is_a_usage_error() {
        let e = parse(&["run"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(parse(&[]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["check-config"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn daemon_requires_a_pid_file() {
        let e = parse(&["--config", "c.ini", "--daemon"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let cli = parse(&["--config", "c.ini", "--daemon", "--pid-file", "/run/x.pid"]).unwrap();
        assert!(cli.daemon);
    }

    #[test]
    fn demo_defaults_and_format() {
        let cli = parse(&["demo"]).unwrap();
        assert_eq!(
            cli.subcommand(),
            Command::Demo(DemoArgs {
                format: DemoFormat::Qradar,
                events: None
            })
        );
        let cli = parse(&["demo", "--format", "splunk", "--events", "5"]).unwrap();
        assert_eq!(
            cli.subcommand(),
            Command::Demo(DemoArgs {
                format: DemoFormat::Splunk,
                events: Some(5)
            })
        );
        assert!(parse(&["demo", "--format", "cef"]).is_err());
    }

    #[test]
    fn simulate_defaults() {
        let cli = parse(&["simulate", "--listen", "127.0.0.1:0"]).unwrap();
        let Command::Simulate(s) = cli.subcommand() else {
            panic!("not simulate")
        };
        assert_eq!(s.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(
            s.tenants,
            [TenantKey {
                name: "demo".into(),
                key: "demo-key".into()
            }]
        );
        assert_eq!(
            (
                s.token_ttl,
                s.heartbeat_ms,
                s.seed,
                s.events,
                s.rate,
                s.batch_size
            ),
            (7200, 5000, 1, 1000, 1, 10)
        );
        assert_eq!(s.types, EventType::ALL);
        assert_eq!(s.id_zero, IdZero::Oldest);
        assert!(!s.resume_at_id && !s.firehose);
        assert_eq!((s.start_time, s.tls_cert, s.scenario), (None, None, None));
    }

    #[test]
    fn simulate_every_flag() {
        let cli = parse(&[
            "simulate",
            "--listen",
            "127.0.0.1:8080",
            "--tenant",
            "a=ka",
            "--tenant",
            "b=kb=x",
            "--token-ttl",
            "5",
            "--heartbeat-ms",
            "100",
            "--seed",
            "7",
            "--events",
            "20",
            "--start-time",
            "2026-11-20T00:00:00Z",
            "--rate",
            "0",
            "--batch-size",
            "1000",
            "--types",
            "threat,AUDIT",
            "--id-zero",
            "now",
            "--resume-at-id",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--firehose",
            "--scenario",
            "s.json",
        ])
        .unwrap();
        let Command::Simulate(s) = cli.subcommand() else {
            panic!("not simulate")
        };
        assert_eq!(s.tenants.len(), 2);
        assert_eq!(s.tenants[1].key, "kb=x");
        assert_eq!(s.batch_size, 1000);
        assert_eq!(s.types, [EventType::Threat, EventType::Audit]);
        assert_eq!(s.id_zero, IdZero::Now);
        assert_eq!(
            s.start_time.map(|t| t.to_rfc3339()),
            Some("2026-11-20T00:00:00+00:00".to_string())
        );
        assert!(s.resume_at_id && s.firehose);
        assert_eq!(s.scenario, Some(PathBuf::from("s.json")));
    }

    #[test]
    fn resend_takes_a_window() {
        let cli = parse(&[
            "resend",
            "-c",
            "c.ini",
            "--tenant",
            "acme",
            "--from",
            "2026-11-20T00:00:00Z",
            "--to",
            "2026-11-20T02:00:00+01:00",
            "--destination",
            "siem2",
        ])
        .unwrap();
        let Command::Resend(args) = cli.subcommand() else {
            panic!("not resend")
        };
        assert_eq!(args.tenant, "acme");
        assert_eq!(args.from.to_rfc3339(), "2026-11-20T00:00:00+00:00");
        assert_eq!(
            args.to.map(|t| t.to_rfc3339()),
            Some("2026-11-20T01:00:00+00:00".to_string())
        );
        assert_eq!(args.destination.as_deref(), Some("siem2"));
        assert_eq!(args.give_up_after, 300);
        let cli = parse(&[
            "resend",
            "-c",
            "c.ini",
            "--tenant",
            "a",
            "--from",
            "2026-11-20",
        ])
        .unwrap();
        let Command::Resend(args) = cli.subcommand() else {
            panic!("not resend")
        };
        assert_eq!((args.to, args.destination), (None, None));
    }

    #[test]
    fn resend_rejects_a_bad_window_as_a_usage_error() {
        let base = ["resend", "-c", "c.ini", "--tenant", "acme"];
        for (extra, needle) in [
            (&["--from", "yesterday"][..], "ISO-8601"),
            (
                &["--from", "2026-11-20T00:00:00Z", "--to", "soon"],
                "ISO-8601",
            ),
            (
                &[
                    "--from",
                    "2026-11-20T01:00:00Z",
                    "--to",
                    "2026-11-20T00:00:00Z",
                ],
                "is not after --from",
            ),
            (
                &[
                    "--from",
                    "2026-11-20T01:00:00Z",
                    "--to",
                    "2026-11-20T01:00:00Z",
                ],
                "would be empty",
            ),
            (&["--to", "2026-11-20T01:00:00Z"], "--from"),
        ] {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            let e = parse(&args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains(needle), "{args:?}: {e}");
        }
        let e = parse(&["resend", "--tenant", "a", "--from", "2026-11-20"]).unwrap_err();
        assert!(e.to_string().contains("--config"), "{e}");
    }

    #[test]
    fn simulate_rejects_bad_values() {
        for args in [
            &["simulate"][..],
            &["simulate", "--listen", "nowhere"],
            &["simulate", "--listen", "127.0.0.1:0", "--batch-size", "0"],
            &[
                "simulate",
                "--listen",
                "127.0.0.1:0",
                "--batch-size",
                "1001",
            ],
            &["simulate", "--listen", "127.0.0.1:0", "--tenant", "nokey"],
            &["simulate", "--listen", "127.0.0.1:0", "--types", "THREAT,X"],
            &["simulate", "--listen", "127.0.0.1:0", "--tls-cert", "c.pem"],
        ] {
            assert_eq!(parse(args).unwrap_err().exit_code(), 2, "{args:?}");
        }
    }
}
