//! `resend` (docs/operations.md#resending-a-time-window): the real binary sends a
//! tenant's events of a time window to a real rsyslog, beside a running connector,
//! without touching a saved position; its command-line errors name the problem.

use crate::fixture::{Setup, TENANT, config, sim, tcp};
use crate::kit::{PATIENCE, Running, eventually, received};
use crate::receiver::Rsyslog;
use chrono::{DateTime, Duration as Span, SecondsFormat, Utc};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// One record rsyslog wrote: its TAG, `lookoutId` and `devTime` (`created_time`, ms).
#[derive(Debug, Clone, PartialEq)]
struct Record {
    tag: String,
    id: String,
    created: DateTime<Utc>,
}

/// Every record in rsyslog's TCP file, in arrival order.
fn records(file: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    received(file)
        .into_iter()
        .map(|r| {
            let line = text
                .lines()
                .find(|l| l.contains(&format!("lookoutId={}", r.id)))
                .expect("the record's line");
            let ms: i64 = line
                .split('\t')
                .find_map(|a| a.strip_prefix("devTime="))
                .expect("devTime")
                .parse()
                .expect("devTime is epoch ms");
            let tag = r
                .header
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .trim_end_matches(':')
                .to_string();
            Record {
                tag,
                id: r.id,
                created: DateTime::from_timestamp_millis(ms).unwrap(),
            }
        })
        .collect()
}

fn tagged(file: &Path, tag: &str) -> Vec<Record> {
    records(file).into_iter().filter(|r| r.tag == tag).collect()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// The `created_time` a simulator id carries (UUIDv7: the first 48 bits are Unix ms).
fn id_time(id: &str) -> DateTime<Utc> {
    let hex: String = id.chars().filter(|c| *c != '-').take(12).collect();
    DateTime::from_timestamp_millis(i64::from_str_radix(&hex, 16).unwrap()).unwrap()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `resend --config CONFIG --state-dir STATE ARGS…`, waited for.
async fn resend(setup: &Setup, config: &Path, args: &[&str]) -> (ExitStatus, String) {
    let state = setup.state();
    let mut all: Vec<&OsStr> = vec![
        OsStr::new("resend"),
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--state-dir"),
        state.as_os_str(),
        OsStr::new("--tenant"),
        OsStr::new(TENANT),
    ];
    all.extend(args.iter().map(OsStr::new));
    let stderr = setup.path("resend.stderr");
    let _ = std::fs::remove_file(&stderr);
    let mut run = Running::spawn(&all, &stderr, None);
    let status = run
        .wait_exit(PATIENCE)
        .await
        .unwrap_or_else(|| panic!("resend did not end:\n{}", run.stderr()));
    (status, run.stderr())
}

/// The window is exact by `created_time` (the event at `from` is sent, the one just
/// before it and the one at `to` are not), every event of it reaches rsyslog, and the
/// state directory is byte for byte what it was, all while the connector runs on the
/// same state directory.
#[tokio::test]
async fn resend_sends_exactly_the_window_beside_a_running_connector_and_moves_no_position() {
    let rsyslog = Rsyslog::start().await;
    let file = rsyslog.path("tcp.log");
    let start = iso(Utc::now() - Span::minutes(20));
    let sim = sim(&["--events", "60", "--rate", "0", "--start-time", &start]);
    let syslog = format!("{}app_name = daemon\n", tcp(rsyslog.tcp_port));
    let setup = Setup::new(&config(&sim.url(), &syslog, "", ""));
    let mut connector = setup.run(&[]);
    let history = sim.event_ids(TENANT);
    let last = history.last().cloned();
    eventually(
        || {
            format!(
                "the connector did not deliver and commit the history:\n{}",
                connector.output()
            )
        },
        PATIENCE,
        || tagged(&file, "daemon").len() >= 60 && setup.position() == last,
    )
    .await;
    let all = tagged(&file, "daemon");
    assert_eq!(
        all.iter().map(|r| &r.id).collect::<Vec<_>>(),
        history.iter().collect::<Vec<_>>()
    );
    let before = snapshot(&setup.state());
    assert!(!before.is_empty());

    // The same tenant and destination, records tagged `resend`.
    let resend_config = setup.path("resend.ini");
    std::fs::write(
        &resend_config,
        config(
            &sim.url(),
            &format!("{}app_name = resend\n", tcp(rsyslog.tcp_port)),
            "",
            "",
        ),
    )
    .unwrap();

    // (a) [t20, t40): event 20 (at `from`) in, 19 (before) and 40 (at `to`) out.
    let (from, to) = (all[20].created, all[40].created);
    let (status, stderr) = resend(
        &setup,
        &resend_config,
        &["--from", &iso(from), "--to", &iso(to)],
    )
    .await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("done: 20 events"), "{stderr}");
    let sent: Vec<_> = tagged(&file, "resend").into_iter().map(|r| r.id).collect();
    let expected: Vec<_> = all[20..40].iter().map(|r| r.id.clone()).collect();
    assert_eq!(sent, expected);

    // (b) One millisecond later: the API's start_time has whole seconds, so the stream
    // still begins with event k; the connector drops it (created 1 ms before `from`)
    // and keeps event 40 (1 ms before `to`). k's millisecond must leave room for +1.
    let k = (21..40)
        .find(|&i| all[i].created.timestamp_subsec_millis() < 999)
        .expect("an event not at .999");
    let (from, to) = (
        all[k].created + Span::milliseconds(1),
        all[40].created + Span::milliseconds(1),
    );
    let (status, stderr) = resend(
        &setup,
        &resend_config,
        &["--from", &iso(from), "--to", &iso(to)],
    )
    .await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    let sent: Vec<_> = tagged(&file, "resend").into_iter().map(|r| r.id).collect();
    let expected_b: Vec<_> = all[k + 1..=40].iter().map(|r| r.id.clone()).collect();
    assert_eq!(sent[expected.len()..], expected_b[..]);

    // The connector never noticed, and no saved position moved by a byte.
    assert!(connector.is_running(), "{}", connector.output());
    assert_eq!(snapshot(&setup.state()), before);
    assert_eq!(tagged(&file, "daemon").len(), 60);
    connector.stop().await;
}

/// Without `--to` the window ends now: resend stops at the first live event created
/// after it started, having sent everything from `from` on.
#[tokio::test]
async fn without_to_the_window_ends_at_now() {
    let rsyslog = Rsyslog::start().await;
    let file = rsyslog.path("tcp.log");
    let start = iso(Utc::now() - Span::minutes(10));
    let sim = sim(&["--events", "30", "--rate", "5", "--start-time", &start]);
    let setup = Setup::new(&config(&sim.url(), &tcp(rsyslog.tcp_port), "", ""));
    let config = setup.config();
    let from = Utc::now() - Span::minutes(5);
    let started = Utc::now();
    let (status, stderr) = resend(&setup, &config, &["--from", &iso(from)]).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    let sent = records(&file);
    assert!(!sent.is_empty(), "{stderr}");
    assert!(sent.iter().all(|r| r.created >= from), "{sent:?}");
    // A contiguous run of the simulator's events from the first at or after `from`,
    // ended by the first one created at or after the window's end, which is when
    // resend started (the simulator's ids carry their created_time).
    let ids = sim.event_ids(TENANT);
    let first = ids.iter().position(|id| *id == sent[0].id).unwrap();
    let got: Vec<_> = sent.iter().map(|r| r.id.clone()).collect();
    assert_eq!(got[..], ids[first..first + got.len()]);
    assert!(first == 0 || id_time(&ids[first - 1]) < from, "{sent:?}");
    assert!(
        sent.last().unwrap().created < started + Span::seconds(5),
        "{sent:?}"
    );
    let next = ids
        .get(first + got.len())
        .unwrap_or_else(|| panic!("no event ended the window: {ids:?}"));
    assert!(
        id_time(next) >= started,
        "{next} ended the window:\n{stderr}"
    );
    // Nothing was saved.
    assert!(
        !setup
            .state()
            .join(format!("{TENANT}.position.json"))
            .exists()
    );
}

/// A destination that refuses connections: resend gives up after --give-up-after with
/// the error, exits 1 and saves nothing. Standard error is not a terminal, so progress
/// is a plain line every 5 seconds.
#[tokio::test]
async fn an_unreachable_destination_ends_in_exit_1_with_the_error() {
    let sim = sim(&["--events", "10", "--rate", "0"]);
    let port = crate::kit::free_port();
    let setup = Setup::new(&config(&sim.url(), &tcp(port), "", ""));
    let config = setup.config();
    let from = iso(Utc::now() - Span::hours(2));
    let (status, stderr) =
        resend(&setup, &config, &["--from", &from, "--give-up-after", "6"]).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("resend acme -> syslog: 0% of the window, 0 events delivered, 0.0 events/s, delivered up to created_time -"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert!(stderr.contains("gave up"), "{stderr}");
    assert!(stderr.contains(&port.to_string()), "{stderr}");
    assert!(
        stderr.contains("resend of acme incomplete for syslog"),
        "{stderr}"
    );
    assert!(
        !setup
            .state()
            .join(format!("{TENANT}.position.json"))
            .exists()
    );
}

/// Without `--destination`, every destination of the tenant gets the window (each
/// through its own pipeline); with it, only the one named.
#[tokio::test]
async fn every_destination_by_default_or_only_the_one_named() {
    use crate::hec::receiver::{HecReceiver, Script};
    let rsyslog = Rsyslog::start().await;
    let file = rsyslog.path("tcp.log");
    let hec = HecReceiver::start(Script::default()).await;
    let start = iso(Utc::now() - Span::minutes(10));
    let sim = sim(&["--events", "40", "--rate", "0", "--start-time", &start]);
    let text = format!(
        "{}\n[destination:splunk]\ntype = splunk_hec\nurl = {}\ntoken = {}\n",
        config(
            &sim.url(),
            &tcp(rsyslog.tcp_port),
            "destinations = syslog, splunk\n",
            ""
        ),
        hec.url(),
        Script::default().token
    );
    let setup = Setup::new(&text);
    let config = setup.config();
    let ids = sim.event_ids(TENANT);
    let window = &ids[10..30];
    let (from, to) = (iso(id_time(&ids[10])), iso(id_time(&ids[30])));

    let (status, stderr) = resend(&setup, &config, &["--from", &from, "--to", &to]).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("resend acme -> syslog: done: 20 events"),
        "{stderr}"
    );
    assert!(
        stderr.contains("resend acme -> splunk: done: 20 events"),
        "{stderr}"
    );
    let to_syslog: Vec<_> = records(&file).into_iter().map(|r| r.id).collect();
    assert_eq!(to_syslog, window);
    assert_eq!(hec.indexed_ids(), window);

    let (status, stderr) = resend(
        &setup,
        &config,
        &["--from", &from, "--to", &to, "--destination", "splunk"],
    )
    .await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("-> syslog"), "{stderr}");
    assert_eq!(records(&file).len(), 20);
    assert_eq!(hec.indexed_ids(), [window, window].concat());
    assert!(
        !setup
            .state()
            .join(format!("{TENANT}.position.json"))
            .exists()
    );
    assert!(
        !setup
            .state()
            .join(format!("{TENANT}@splunk.position.json"))
            .exists()
    );
}

/// The window's end has not come yet (no live events): resend delivers the history
/// and waits; SIGINT ends it with exit 1, saying the window is incomplete.
#[tokio::test]
async fn interrupted_before_the_end_of_the_window_exits_1() {
    let rsyslog = Rsyslog::start().await;
    let file = rsyslog.path("tcp.log");
    let sim = sim(&["--events", "10", "--rate", "0"]);
    let setup = Setup::new(&config(&sim.url(), &tcp(rsyslog.tcp_port), "", ""));
    let (config, state) = (setup.config(), setup.state());
    let from = iso(Utc::now() - Span::hours(2));
    let args: Vec<&OsStr> = [
        OsStr::new("resend"),
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--state-dir"),
        state.as_os_str(),
        OsStr::new("--tenant"),
        OsStr::new(TENANT),
        OsStr::new("--from"),
        OsStr::new(&from),
    ]
    .to_vec();
    let mut run = Running::spawn(&args, &setup.path("resend.stderr"), None);
    eventually(
        || format!("the history did not arrive:\n{}", run.stderr()),
        PATIENCE,
        || records(&file).len() == 10,
    )
    .await;
    assert!(run.is_running(), "{}", run.stderr());
    run.signal(nix::sys::signal::Signal::SIGINT);
    let status = run
        .wait_exit(PATIENCE)
        .await
        .expect("resend ends on SIGINT");
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("NOT complete after 10 events delivered: interrupted"),
        "{stderr}"
    );
    assert!(!state.join(format!("{TENANT}.position.json")).exists());
}

/// On a terminal, progress is a bar per destination (drawn by indicatif), ending full.
#[tokio::test]
async fn on_a_terminal_progress_is_a_bar() {
    let rsyslog = Rsyslog::start().await;
    let file = rsyslog.path("tcp.log");
    let start = iso(Utc::now() - Span::minutes(10));
    let sim = sim(&["--events", "40", "--rate", "0", "--start-time", &start]);
    let setup = Setup::new(&config(&sim.url(), &tcp(rsyslog.tcp_port), "", ""));
    let ids = sim.event_ids(TENANT);
    let (from, to) = (id_time(&ids[5]), id_time(&ids[35]));
    // `script` gives the command a pseudo-terminal and copies what it draws.
    let command = format!(
        "{} resend --config {} --state-dir {} --tenant {TENANT} --from {} --to {}",
        env!("CARGO_BIN_EXE_mrav2-syslog-connector"),
        setup.config().display(),
        setup.state().display(),
        iso(from),
        iso(to)
    );
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-qfec", &command, "/dev/null"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("TERM", "xterm")
            .output()
            .expect("script (util-linux) runs")
    })
    .await
    .unwrap();
    let drawn = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{drawn}");
    assert!(drawn.contains("syslog ["), "{drawn}");
    assert!(drawn.contains("] 100% 30 events delivered"), "{drawn}");
    assert!(drawn.contains('\u{1b}'), "no terminal control: {drawn}");
    assert!(drawn.contains("done: 30 events"), "{drawn}");
    assert_eq!(records(&file).len(), 30);
}

/// Each command-line problem exits 2 with a message naming it, before any request.
#[tokio::test]
async fn command_line_problems_exit_2_and_name_the_problem() {
    let sim = sim(&["--events", "1", "--rate", "0"]);
    let setup = Setup::new(&config(&sim.url(), &tcp(9), "", ""));
    let config = setup.config();
    let config = config.to_str().unwrap();
    for (args, needle) in [
        (
            &["--tenant", "acne", "--from", "2026-11-20T00:00:00Z"][..],
            "--tenant \"acne\"",
        ),
        (
            &[
                "--tenant",
                TENANT,
                "--from",
                "2026-11-20T00:00:00Z",
                "--destination",
                "qradar",
            ],
            "its destinations are: syslog",
        ),
        (
            &[
                "--tenant",
                TENANT,
                "--from",
                "2026-11-20T01:00:00Z",
                "--to",
                "2026-11-20T00:00:00Z",
            ],
            "is not after --from",
        ),
        (&["--tenant", TENANT, "--from", "last tuesday"], "ISO-8601"),
        (
            &["--tenant", TENANT, "--from", "2999-01-01T00:00:00Z"],
            "is not before now",
        ),
    ] {
        let output = crate::kit::connector()
            .args(["resend", "--config", config])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let output = crate::kit::connector()
        .args([
            "resend",
            "--config",
            config,
            "--tenant",
            "acne",
            "--from",
            "2026-11-20",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("its tenants are: acme"),
        "{output:?}"
    );
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert!(!setup.state().exists());
}
