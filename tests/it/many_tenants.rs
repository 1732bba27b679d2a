//! Many tenants in one process (`docs/limits.md`, open files): 1,000 tenants, each with
//! its stream and a TCP connection to rsyslog, started under a soft open-files limit of
//! 1,024. With a higher hard limit the connector raises the soft one and delivers every
//! history event of every tenant; with a hard limit of 1,024 too it warns at start that
//! the 2,064 descriptors it needs do not fit.
//!
//! The real binary under `prlimit`, one simulator serving all tenants, a real rsyslog.

use crate::fixture::Setup;
use crate::kit::{Running, Sim, eventually, received_ids};
use crate::receiver::Rsyslog;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;

const TENANTS: usize = 1000;
/// History events per tenant.
const HISTORY: usize = 3;
/// What the connector needs for them: 64 + 1,000 × (stream + one destination).
const NEEDED: u64 = 2064;

fn names() -> Vec<String> {
    (0..TENANTS).map(|i| format!("t{i:04}")).collect()
}

/// The simulator serving every tenant (`NAME=key-NAME`), `HISTORY` THREAT and DEVICE
/// events each and nothing live.
fn simulator() -> Sim {
    let keys: Vec<String> = names().iter().map(|n| format!("{n}=key-{n}")).collect();
    let mut args: Vec<&str> = Vec::with_capacity(2 * TENANTS + 8);
    for key in &keys {
        args.extend(["--tenant", key.as_str()]);
    }
    let history = HISTORY.to_string();
    args.extend([
        "--events",
        &history,
        "--rate",
        "0",
        "--types",
        "THREAT,DEVICE",
    ]);
    Sim::start(&args)
}

/// A config with every tenant as a `[lookout:NAME]` section, all sending to `port`.
fn config(api: &str, port: u16) -> String {
    let mut text = format!("[lookout]\napi_domain = {api}\nsse_timeout = 60\n\n");
    for name in names() {
        let _ = write!(text, "[lookout:{name}]\napi_key = key-{name}\n\n");
    }
    let _ = write!(
        text,
        "[syslog]\nhost = 127.0.0.1\nprotocol = tcp\nport = {port}\n"
    );
    text
}

/// The connector under `prlimit --nofile=1024:HARD`.
fn start(setup: &Setup, hard: u64) -> Running {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile=1024:{hard}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_mrav2-syslog-connector"))
        .arg("--config")
        .arg(setup.config())
        .arg("--state-dir")
        .arg(setup.state())
        .env_clear();
    Running::spawn_command(cmd, &setup.stderr(), None)
}

/// `Max open files` of `pid`: (soft, hard).
fn open_files_limit(pid: i32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    (numbers[0].to_owned(), numbers[1].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tenants_under_a_soft_limit_of_1024_deliver_every_event() {
    let began = Instant::now();
    let sim = simulator();
    let rsyslog = Rsyslog::start().await;
    let setup = Setup::new(&config(&sim.url(), rsyslog.tcp_port));
    let mut connector = start(&setup, 4096);

    let log = rsyslog.path("tcp.log");
    let want = TENANTS * HISTORY;
    eventually(
        || {
            format!(
                "{} of {want} records arrived; connector:\n{}",
                received_ids(&log).len(),
                connector.output()
            )
        },
        Duration::from_secs(50),
        || received_ids(&log).len() >= want,
    )
    .await;
    assert_eq!(
        open_files_limit(connector.pid()),
        ("4096".to_owned(), "4096".to_owned())
    );
    connector.stop().await;

    let got: Vec<String> = received_ids(&log);
    let unique: HashSet<&String> = got.iter().collect();
    for name in names() {
        let ids = sim.event_ids(&name);
        assert_eq!(ids.len(), HISTORY, "{name}: {ids:?}");
        let missing: Vec<&String> = ids.iter().filter(|id| !unique.contains(id)).collect();
        assert!(missing.is_empty(), "{name}: not delivered: {missing:?}");
    }
    assert_eq!(unique.len(), want, "records of unknown events arrived");
    let output = connector.output();
    assert!(
        output.contains("raised the open-files limit from=1024 to=4096"),
        "{output}"
    );
    assert!(!output.contains("open-files limit is too low"), "{output}");
    eprintln!("1,000 tenants delivered in {:?}", began.elapsed());
}

#[tokio::test]
async fn a_thousand_tenants_under_a_hard_limit_of_1024_are_warned_about() {
    let sim = simulator();
    let setup = Setup::new(&config(&sim.url(), 9));
    let mut connector = start(&setup, 1024);
    let warning = format!("limit=1024 needed={NEEDED} tenants={TENANTS}");
    eventually(
        || format!("no warning {warning:?}:\n{}", connector.output()),
        Duration::from_secs(30),
        || {
            connector.output().lines().any(|l| {
                l.contains("WARN")
                    && l.contains("the open-files limit is too low for this many tenants")
                    && l.contains("LimitNOFILE=")
                    && l.contains(&warning)
            })
        },
    )
    .await;
    assert_eq!(
        open_files_limit(connector.pid()),
        ("1024".to_owned(), "1024".to_owned())
    );
    assert!(connector.is_running(), "{}", connector.output());
    connector.stop().await;
}
