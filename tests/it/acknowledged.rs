//! Acknowledged delivery end to end: the real binary, the simulator and a real rsyslog
//! with `imrelp`. With RELP a record counts as delivered only when rsyslog answered
//! `200` for it, so nothing is lost even when rsyslog is frozen with records unread in
//! its socket and then killed; plain TCP can lose exactly those (measured here for the
//! documentation, not asserted).
//!
//! The relp inputs of the test receiver run their ruleset without a queue
//! (`queue.type="Direct"`), so rsyslog answers a record only after it wrote it to the
//! output file; with rsyslog's default in-memory main queue, a SIGKILL would also
//! throw away records rsyslog had already acknowledged, which no sender can prevent.

use crate::fixture::{Setup, SimSpec, TENANT, config};
use crate::kit::{PATIENCE, Running, eventually, received_ids};
use crate::pipeline::{lines, metric, missing, wait_for_ids, with_metrics};
use crate::receiver::Rsyslog;
use std::path::Path;
use std::time::Duration;

/// The simulator of these tests: one tenant, a fixed seed.
const SIM: SimSpec<'static> = SimSpec::new().seed("11");

fn relp(rsyslog: &Rsyslog) -> String {
    format!("protocol = relp\nport = {}\n", rsyslog.relp().plain)
}

fn relp_mtls(rsyslog: &Rsyslog) -> String {
    format!(
        "protocol = relp-tls\nport = {}\nca_file = {}\ncert_file = {}\nkey_file = {}\ntls_server_name = localhost\n",
        rsyslog.relp().mtls,
        rsyslog.certs.ca.display(),
        rsyslog.certs.client_cert.display(),
        rsyslog.certs.client_key.display(),
    )
}

/// Bytes that arrived on established TCP connections to local `port` and were not read
/// by the receiver yet (`rx_queue` of `/proc/net/tcp`).
fn unread_bytes(port: u16) -> u64 {
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (address, state, queues) = (fields.get(1)?, fields.get(3)?, fields.get(4)?);
            if *address != local || *state != "01" {
                return None;
            }
            let rx = queues.split_once(':')?.1;
            u64::from_str_radix(rx, 16).ok()
        })
        .sum()
}

#[tokio::test]
async fn every_event_reaches_rsyslog_over_relp_exactly_once() {
    let rsyslog = Rsyslog::start_relp().await;
    let file = rsyslog.path("relp.log");
    let sim = SIM.start(&["--events", "2000", "--batch-size", "50", "--rate", "0"]);
    let setup = Setup::new(&config(&sim.url(), &relp(&rsyslog), "", ""));
    let mut connector = setup.run(&[]);
    let ids = sim.event_ids(TENANT);
    wait_for_ids(&file, &ids, PATIENCE, || connector.output()).await;
    connector.stop().await;
    let got = received_ids(&file);
    assert_eq!(got.len(), ids.len(), "every event exactly once over relp");
    assert_eq!(got, ids, "in order");
    let output = connector.output();
    assert!(output.contains("relp session open"), "{output}");
}

#[tokio::test]
async fn rsyslog_restarted_twice_mid_stream_over_relp_loses_nothing() {
    let mut rsyslog = Rsyslog::start_relp().await;
    let file = rsyslog.path("relp.log");
    let sim = SIM.start(&["--events", "3000", "--batch-size", "20", "--rate", "200"]);
    let setup = Setup::new(&config(&sim.url(), &relp(&rsyslog), "", ""));
    let mut connector = setup.run(&[]);
    for n in [300, 1200] {
        lines(&file, n, &connector).await;
        rsyslog.restart().await;
    }
    let ids = sim.event_ids(TENANT);
    wait_for_ids(&file, &ids, PATIENCE, || {
        format!(
            "{}\nrsyslog:\n{}",
            connector.output(),
            rsyslog.own_messages()
        )
    })
    .await;
    assert!(connector.is_running());
    connector.stop().await;
}

/// What [`frozen_then_killed`] saw.
struct Crash {
    /// Events the simulator generated.
    generated: usize,
    /// Of those, the ones rsyslog never wrote.
    lost: Vec<String>,
    /// Bytes unread in rsyslog's sockets when it was killed.
    unread: u64,
}

/// Streams a backfill to rsyslog over `syslog`, freezes rsyslog (SIGSTOP) once `file`
/// has some lines, lets records pile up unread in its socket, kills it (SIGKILL),
/// starts it again and waits until the connector delivered every event by its own
/// account (or `PATIENCE` passed). Returns what reached `file`.
async fn frozen_then_killed(
    mut rsyslog: Rsyslog,
    file: &Path,
    syslog: &str,
    port: u16,
) -> (Crash, Running) {
    let sim = SIM.start(&["--events", "4000", "--batch-size", "50", "--rate", "0"]);
    let (setup, metrics) = with_metrics(&sim, syslog, "");
    let connector = setup.run(&[]);
    lines(file, 200, &connector).await;
    rsyslog.pause().await;
    // The connector keeps writing until the socket buffers (or the relp window) are
    // full: records wait unread in rsyslog's socket.
    eventually(
        || format!("nothing piled up unread\n{}", connector.output()),
        PATIENCE,
        || unread_bytes(port) > 0,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let unread = unread_bytes(port);
    rsyslog.kill();
    rsyslog.start_again().await;
    let ids = sim.event_ids(TENANT);
    let generated = ids.len();
    // Done by the connector's own account: every event delivered at least once (or
    // out of patience: what is missing then is reported by the caller).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while (metric(metrics, "mrav2_events_delivered", TENANT) as usize) < generated
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What rsyslog wrote after its restart has reached the file.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lost = missing(&ids, file);
    drop(rsyslog);
    (
        Crash {
            generated,
            lost,
            unread,
        },
        connector,
    )
}

#[tokio::test]
async fn rsyslog_frozen_with_records_unread_then_killed_loses_nothing_over_relp() {
    let rsyslog = Rsyslog::start_relp().await;
    let file = rsyslog.path("relp.log");
    let port = rsyslog.relp().plain;
    let syslog = relp(&rsyslog);
    let (crash, mut connector) = frozen_then_killed(rsyslog, &file, &syslog, port).await;
    assert!(
        crash.unread > 0,
        "nothing was unread in rsyslog's socket at the kill, so this run proved nothing"
    );
    assert!(
        crash.lost.is_empty(),
        "{} of {} events lost over relp (unread at the kill: {} bytes), e.g. {:?}\n{}",
        crash.lost.len(),
        crash.generated,
        crash.unread,
        crash.lost.iter().take(5).collect::<Vec<_>>(),
        connector.output()
    );
    eprintln!(
        "relp: rsyslog frozen with {} bytes unread, killed, restarted: 0 of {} events lost",
        crash.unread, crash.generated
    );
    connector.stop().await;
}

/// The same crash over plain TCP, for the documentation: records the kernel accepted
/// while rsyslog was frozen are gone with it, and the settle rule cannot see that
/// (rsyslog did not close the connection while it was frozen). Prints the figure; it
/// asserts only that the connector keeps going.
#[tokio::test]
async fn the_same_crash_over_plain_tcp_shows_what_tcp_can_lose() {
    let rsyslog = Rsyslog::start_relp().await;
    let file = rsyslog.path("tcp.log");
    let port = rsyslog.tcp_port;
    let syslog = format!("protocol = tcp\nport = {port}\n");
    let (crash, mut connector) = frozen_then_killed(rsyslog, &file, &syslog, port).await;
    eprintln!(
        "plain tcp: rsyslog frozen with {} bytes unread, killed, restarted: {} of {} events lost",
        crash.unread,
        crash.lost.len(),
        crash.generated
    );
    assert!(connector.is_running());
    connector.stop().await;
}

#[tokio::test]
async fn relp_over_tls_with_a_client_certificate_delivers_everything() {
    let rsyslog = Rsyslog::start_relp().await;
    let file = rsyslog.path("relp-mtls.log");
    let sim = SIM.start(&["--events", "500", "--batch-size", "50", "--rate", "0"]);
    let setup = Setup::new(&config(&sim.url(), &relp_mtls(&rsyslog), "", ""));
    let mut connector = setup.run(&[]);
    let ids = sim.event_ids(TENANT);
    wait_for_ids(&file, &ids, PATIENCE, || {
        format!(
            "{}\nrsyslog:\n{}",
            connector.output(),
            rsyslog.own_messages()
        )
    })
    .await;
    connector.stop().await;
    assert_eq!(received_ids(&file).len(), ids.len());
}

#[tokio::test]
async fn relp_over_tls_with_the_wrong_ca_is_refused_with_a_message_that_says_so() {
    let rsyslog = Rsyslog::start_relp().await;
    let file = rsyslog.path("relp-mtls.log");
    let sim = SIM.start(&["--events", "50", "--batch-size", "50", "--rate", "0"]);
    let syslog = relp_mtls(&rsyslog).replace(
        &format!("ca_file = {}", rsyslog.certs.ca.display()),
        &format!("ca_file = {}", rsyslog.certs.other_ca.display()),
    );
    let setup = Setup::new(&config(&sim.url(), &syslog, "", ""));
    let mut connector = setup.run(&[]);
    eventually(
        || format!("no certificate error logged\n{}", connector.output()),
        PATIENCE,
        || connector.output().contains("not trusted"),
    )
    .await;
    let output = connector.output();
    assert!(output.contains("(relp-tls)"), "{output}");
    assert!(received_ids(&file).is_empty(), "nothing may arrive");
    assert!(
        connector.is_running(),
        "a refused destination is retried, not fatal"
    );
    connector.stop().await;
}
