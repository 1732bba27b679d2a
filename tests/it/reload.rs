//! Reload on SIGHUP (issue 18, item 1): the real binary, the simulator as its own
//! process (it logs every token and stream request per tenant), rsyslog where delivery
//! matters and a raw TCP listener where only connections are counted.
//!
//! An unchanged pair must not be touched by a reload: no token request, no stream
//! request, no new connection to its receiver. Added pairs start, removed ones stop and
//! commit what they delivered, changed ones restart from their saved position without
//! loss, and a file with problems changes nothing.

use crate::fixture::{Setup, TENANT, config, sim, tcp};
use crate::kit::{
    PATIENCE, Running, Sim, TICK, eventually, free_port, http_get, query_params, received,
    received_ids, saved_position,
};
use crate::receiver::{RawTcpListener, Rsyslog};
use mrav2_syslog_connector::observe::HealthReport;
use nix::sys::signal::Signal;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// The simulator of the multi-tenant tests: `alpha`, `beta` and `gamma`, live events
/// at 20/s in batches of 5 (a reload always finds the streams busy).
fn three_tenants() -> Sim {
    Sim::start(&[
        "--tenant",
        "alpha=alpha-key",
        "--tenant",
        "beta=beta-key",
        "--tenant",
        "gamma=gamma-key",
        "--types",
        "THREAT,DEVICE",
        "--heartbeat-ms",
        "200",
        "--events",
        "5000",
        "--batch-size",
        "5",
        "--rate",
        "20",
    ])
}

/// A config with `tenants` of [`three_tenants`] (each `(name, syslog_port override)`),
/// `[syslog]` TCP to `port` and metrics on `metrics`.
fn tenants_config(
    api: &str,
    port: u16,
    metrics: SocketAddr,
    tenants: &[(&str, Option<u16>)],
) -> String {
    let mut text = format!("[lookout]\napi_domain = {api}\nsse_timeout = 10\n");
    for (name, own_port) in tenants {
        text.push_str(&format!("[lookout:{name}]\napi_key = {name}-key\n"));
        if let Some(p) = own_port {
            text.push_str(&format!("syslog_port = {p}\n"));
        }
    }
    text.push_str(&format!(
        "[syslog]\nhost = 127.0.0.1\n{}\n[connector]\nmetrics_listen = {metrics}\ncommit_interval_ms = 200\n",
        tcp(port)
    ));
    text
}

/// Replaces `path` in one step (write aside, rename), as an editor or a deployment
/// tool that writes atomically does: a reload never reads half a file.
fn replace(path: &Path, text: &str) {
    let aside = path.with_extension("ini.new");
    crate::kit::write_config(&aside, text);
    std::fs::rename(&aside, path).expect("rename the new config into place");
}

/// Token or stream requests (`endpoint`) of `tenant` at the simulator so far.
fn requests(sim: &Sim, tenant: &str, endpoint: &str) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r["endpoint"] == endpoint && r["tenant"] == tenant)
        .count()
}

/// The connector's log lines that say a reload finished.
fn reload_lines(connector: &Running) -> Vec<String> {
    connector
        .output()
        .lines()
        .filter(|l| l.contains("configuration reloaded"))
        .map(str::to_owned)
        .collect()
}

/// Waits for the `n`th "configuration reloaded" line and returns it.
async fn reloaded(connector: &Running, n: usize) -> String {
    eventually(
        || format!("no reload #{n} logged\n{}", connector.output()),
        PATIENCE,
        || reload_lines(connector).len() >= n,
    )
    .await;
    reload_lines(connector)[n - 1].clone()
}

/// `/health`, parsed.
fn health(metrics: SocketAddr) -> HealthReport {
    let (_, body) = http_get(metrics, "/health").expect("GET /health");
    serde_json::from_str(&body).expect("/health is JSON")
}

/// The tenants `/health` lists.
fn health_tenants(metrics: SocketAddr) -> BTreeSet<String> {
    health(metrics)
        .tenants
        .into_iter()
        .map(|t| t.tenant)
        .collect()
}

/// Records of `tenant` in an rsyslog output file.
fn records_of(file: &Path, tenant: &str) -> Vec<String> {
    received(file)
        .into_iter()
        .filter(|r| r.tenant == tenant)
        .map(|r| r.id)
        .collect()
}

/// Records at a raw listener (LF framing: one per line).
fn raw_records(listener: &RawTcpListener) -> usize {
    listener.received().iter().filter(|&&b| b == b'\n').count()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// alpha is unchanged (its own raw listener), gamma is removed, beta is added (both to
/// rsyslog). alpha keeps its token, stream and connection; gamma stops, and its state
/// file holds the last record rsyslog got from it; beta starts and delivers;
/// `/health` and the metrics forget gamma.
#[tokio::test]
async fn a_reload_leaves_an_unchanged_tenant_alone_starts_an_added_one_and_stops_a_removed_one() {
    let rsyslog = Rsyslog::start().await;
    let file = rsyslog.path("tcp.log");
    let alpha_receiver = RawTcpListener::start().await;
    let sim = three_tenants();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let alpha = ("alpha", Some(alpha_receiver.port()));
    let setup = Setup::new(&tenants_config(
        &sim.url(),
        rsyslog.tcp_port,
        metrics,
        &[alpha, ("gamma", None)],
    ));
    let mut connector = setup.run(&[]);
    eventually(
        || format!("alpha and gamma do not deliver\n{}", connector.output()),
        PATIENCE,
        || raw_records(&alpha_receiver) >= 10 && records_of(&file, "gamma").len() >= 10,
    )
    .await;
    let (tokens, streams) = (
        requests(&sim, "alpha", "token"),
        requests(&sim, "alpha", "stream"),
    );
    assert_eq!((tokens, streams, alpha_receiver.accepts()), (1, 1, 1));

    setup.write(&tenants_config(
        &sim.url(),
        rsyslog.tcp_port,
        metrics,
        &[alpha, ("beta", None)],
    ));
    connector.signal(Signal::SIGHUP);
    let line = reloaded(&connector, 1).await;
    for part in ["started=1", "stopped=1", "restarted=0", "unchanged=1"] {
        assert!(line.contains(part), "{part} missing in {line:?}");
    }

    // gamma stopped gracefully: what it delivered is committed, and nothing follows.
    let committed = saved_position(&setup.state(), "gamma").expect("gamma's state file");
    eventually(
        || format!("gamma's committed {committed} never reached rsyslog"),
        PATIENCE,
        || records_of(&file, "gamma").contains(&committed),
    )
    .await;
    let gamma = records_of(&file, "gamma");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        records_of(&file, "gamma"),
        gamma,
        "gamma still delivers after it was removed"
    );
    assert_eq!(
        gamma.last(),
        Some(&committed),
        "gamma's last delivery is not committed"
    );

    // beta started and delivers everything generated for it.
    let beta_ids = sim.event_ids("beta");
    assert!(!beta_ids.is_empty());
    eventually(
        || format!("beta's events did not all arrive\n{}", connector.output()),
        PATIENCE,
        || {
            let got: BTreeSet<String> = records_of(&file, "beta").into_iter().collect();
            beta_ids.iter().all(|id| got.contains(id))
        },
    )
    .await;

    // alpha was not touched and still delivers.
    let flowing = raw_records(&alpha_receiver);
    eventually(
        || "alpha stopped delivering after the reload".into(),
        PATIENCE,
        || raw_records(&alpha_receiver) >= flowing + 10,
    )
    .await;
    assert_eq!(
        requests(&sim, "alpha", "token"),
        tokens,
        "alpha fetched a new token"
    );
    assert_eq!(
        requests(&sim, "alpha", "stream"),
        streams,
        "alpha opened a new stream"
    );
    assert_eq!(alpha_receiver.accepts(), 1, "alpha opened a new connection");

    assert_eq!(health_tenants(metrics), set(&["alpha", "beta"]));
    let (_, text) = http_get(metrics, "/metrics").expect("GET /metrics");
    assert!(
        !text.contains("tenant=\"gamma\""),
        "gamma's series remain:\n{text}"
    );
    assert!(text.contains("tenant=\"beta\""), "{text}");
    connector.stop().await;
}

/// The [`TENANT`]'s syslog port changes to a second rsyslog: the pair stops, commits,
/// and resumes on the new receiver right after its committed position. Nothing is lost
/// and nothing is sent twice.
#[tokio::test]
async fn a_changed_syslog_port_restarts_the_pair_from_its_saved_position_without_loss() {
    let first = Rsyslog::start().await;
    let second = Rsyslog::start().await;
    let (file_1, file_2) = (first.path("tcp.log"), second.path("tcp.log"));
    let sim = sim(&["--events", "5000", "--batch-size", "5", "--rate", "20"]);
    let setup = Setup::new(&config(&sim.url(), &tcp(first.tcp_port), "", ""));
    let mut connector = setup.run(&[]);
    eventually(
        || format!("nothing reached the first rsyslog\n{}", connector.output()),
        PATIENCE,
        || received_ids(&file_1).len() >= 20,
    )
    .await;
    let streams = sim.stream_requests(TENANT).len();

    setup.write(&config(&sim.url(), &tcp(second.tcp_port), "", ""));
    connector.signal(Signal::SIGHUP);
    let line = reloaded(&connector, 1).await;
    for part in ["started=0", "stopped=0", "restarted=1", "unchanged=0"] {
        assert!(line.contains(part), "{part} missing in {line:?}");
    }
    eventually(
        || {
            format!(
                "no new stream request after the reload\n{}",
                connector.output()
            )
        },
        PATIENCE,
        || sim.stream_requests(TENANT).len() > streams,
    )
    .await;
    let request = sim.stream_requests(TENANT)[streams].clone();
    let resumed_at = query_params(&request)
        .get("id")
        .cloned()
        .unwrap_or_else(|| panic!("the restarted stream carries no id: {request}"));
    assert_eq!(request["last-event-id"], resumed_at.as_str(), "{request}");
    eventually(
        || format!("{resumed_at} never reached the first rsyslog"),
        PATIENCE,
        || received_ids(&file_1).contains(&resumed_at),
    )
    .await;
    assert_eq!(
        received_ids(&file_1).last(),
        Some(&resumed_at),
        "the restart did not resume from the last delivered record"
    );

    // Every event generated until a while after the reload arrives, once, in order.
    let target = sim.event_ids(TENANT).len() + 20;
    eventually(
        || "live events".into(),
        PATIENCE,
        || sim.event_ids(TENANT).len() >= target,
    )
    .await;
    let generated = sim.event_ids(TENANT);
    let both = || {
        let mut ids = received_ids(&file_1);
        ids.extend(received_ids(&file_2));
        ids
    };
    eventually(
        || {
            let got: BTreeSet<String> = both().into_iter().collect();
            let missing = generated.iter().filter(|id| !got.contains(*id)).count();
            format!("{missing} ids never arrived\n{}", connector.output())
        },
        PATIENCE,
        || {
            let got: BTreeSet<String> = both().into_iter().collect();
            generated.iter().all(|id| got.contains(id))
        },
    )
    .await;
    connector.stop().await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for id in both() {
        *counts.entry(id).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "ids delivered twice: {repeated:?}");
    let at = generated
        .iter()
        .position(|id| *id == resumed_at)
        .expect("the resume position is a generated id");
    assert_eq!(
        received_ids(&file_2).first(),
        generated.get(at + 1),
        "the second receiver's first record is not the one after the saved position"
    );
}

/// A file with two problems: every problem is logged as `check-config` prints it, the
/// failure counter rises, and the running tenant keeps its token, stream and
/// connection and goes on delivering.
#[tokio::test]
async fn an_invalid_file_changes_nothing_counts_a_failure_and_logs_every_problem() {
    let listener = RawTcpListener::start().await;
    let sim = sim(&["--events", "5000", "--batch-size", "5", "--rate", "20"]);
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let connector_section = format!("metrics_listen = {metrics}\n");
    let setup = Setup::new(&config(
        &sim.url(),
        &tcp(listener.port()),
        "",
        &connector_section,
    ));
    let mut connector = setup.run(&[]);
    eventually(
        || format!("nothing delivered\n{}", connector.output()),
        PATIENCE,
        || raw_records(&listener) >= 10,
    )
    .await;

    setup.write(&config(
        &sim.url(),
        "protocol = tcp\nport = 99999\n",
        "sse_timeout = soon\n",
        &connector_section,
    ));
    let check = crate::kit::connector()
        .arg("check-config")
        .arg("--config")
        .arg(setup.config())
        .output()
        .expect("run check-config");
    assert_eq!(check.status.code(), Some(78));
    let problems: Vec<String> = String::from_utf8_lossy(&check.stderr)
        .lines()
        .filter(|l| l.contains("config.ini: ["))
        .map(str::to_owned)
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");

    connector.signal(Signal::SIGHUP);
    eventually(
        || format!("no failed reload counted\n{}", connector.output()),
        PATIENCE,
        || {
            http_get(metrics, "/metrics")
                .is_ok_and(|(_, t)| t.contains("mrav2_config_reload_failures_total 1"))
        },
    )
    .await;
    let output = connector.output();
    for problem in &problems {
        assert!(
            output.contains(problem.as_str()),
            "{problem:?} not logged:\n{output}"
        );
    }
    assert!(
        output.contains("reload refused: 2 configuration problems; nothing was changed"),
        "{output}"
    );
    assert!(reload_lines(&connector).is_empty(), "{output}");

    let flowing = raw_records(&listener);
    eventually(
        || "no delivery after the refused reload".into(),
        PATIENCE,
        || raw_records(&listener) >= flowing + 10,
    )
    .await;
    assert_eq!(requests(&sim, TENANT, "token"), 1);
    assert_eq!(requests(&sim, TENANT, "stream"), 1);
    assert_eq!(listener.accepts(), 1);
    assert_eq!(health_tenants(metrics), set(&[TENANT]));
    connector.stop().await;
}

/// Twenty SIGHUPs while the file flips between "alpha" and "alpha and beta" (the last
/// write: both) end with both running; alpha, the same in both files, is never
/// restarted. Then a SIGTERM right behind two more reloads still stops everything
/// within the grace period.
#[tokio::test]
async fn a_sighup_storm_ends_in_the_last_files_state_and_sigterm_still_stops_in_time() {
    let listener = RawTcpListener::start().await;
    let sim = three_tenants();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let only_alpha = tenants_config(&sim.url(), listener.port(), metrics, &[("alpha", None)]);
    let both = tenants_config(
        &sim.url(),
        listener.port(),
        metrics,
        &[("alpha", None), ("beta", None)],
    );
    let setup = Setup::new(&only_alpha);
    let mut connector = setup.run(&[]);
    eventually(
        || format!("alpha does not deliver\n{}", connector.output()),
        PATIENCE,
        || raw_records(&listener) >= 5,
    )
    .await;

    for i in 0..20 {
        replace(
            &setup.config(),
            if i % 2 == 0 { &only_alpha } else { &both },
        );
        connector.signal(Signal::SIGHUP);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Settled: the reload count stops moving for two seconds.
    let mut seen = reload_lines(&connector).len();
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + PATIENCE;
    while quiet_since.elapsed() < Duration::from_secs(2) {
        assert!(Instant::now() < deadline, "reloads never settled");
        tokio::time::sleep(TICK).await;
        let now = reload_lines(&connector).len();
        if now != seen {
            (seen, quiet_since) = (now, Instant::now());
        }
    }
    println!("20 SIGHUPs gave {seen} reloads");
    assert!((1..=20).contains(&seen), "{seen} reloads for 20 SIGHUPs");
    assert_eq!(health_tenants(metrics), set(&["alpha", "beta"]));
    assert_eq!(requests(&sim, "alpha", "stream"), 1, "alpha was restarted");
    let beta_streams = requests(&sim, "beta", "stream");
    eventually(
        || "beta does not deliver".into(),
        PATIENCE,
        || {
            String::from_utf8_lossy(&listener.received())
                .lines()
                .filter(|l| l.contains("beta"))
                .count()
                >= 5
        },
    )
    .await;

    // SIGTERM while reloads are under way: every pair stops within the grace period.
    replace(&setup.config(), &only_alpha);
    connector.signal(Signal::SIGHUP);
    replace(&setup.config(), &both);
    connector.signal(Signal::SIGHUP);
    let asked = Instant::now();
    connector.signal(Signal::SIGTERM);
    let status = connector.wait_exit(Duration::from_secs(10)).await;
    let took = asked.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "no clean exit after SIGTERM ({status:?}):\n{}",
        connector.output()
    );
    println!("SIGTERM during reloads: exited after {took:?}");
    // The 5 s grace period, plus the process's own start of the shutdown.
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(
        saved_position(&setup.state(), "beta").is_some(),
        "beta, started by a reload, saved no position (beta streams: {beta_streams})"
    );
}

/// A removed tenant whose receiver never answers (RELP to a listener that reads and
/// stays silent) cannot deliver what it read: the reload gives it the same grace as
/// SIGTERM (4 s of trying, then it gives up), commits nothing it did not deliver, and
/// goes on; the other tenant is not held up or touched.
#[tokio::test]
async fn removing_a_tenant_whose_receiver_never_answers_ends_within_the_grace_period() {
    let listener = RawTcpListener::start().await;
    let silent = RawTcpListener::start().await;
    let sim = three_tenants();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let mut with_gamma = tenants_config(
        &sim.url(),
        listener.port(),
        metrics,
        &[("alpha", None), ("gamma", Some(silent.port()))],
    );
    with_gamma = with_gamma.replace(
        "api_key = gamma-key\n",
        "api_key = gamma-key\nsyslog_protocol = relp\n",
    );
    let setup = Setup::new(&with_gamma);
    let mut connector = setup.run(&[]);
    eventually(
        || {
            format!(
                "alpha does not deliver, or gamma sent nothing\n{}",
                connector.output()
            )
        },
        PATIENCE,
        || raw_records(&listener) >= 5 && !silent.received().is_empty(),
    )
    .await;

    setup.write(&tenants_config(
        &sim.url(),
        listener.port(),
        metrics,
        &[("alpha", None)],
    ));
    let asked = Instant::now();
    connector.signal(Signal::SIGHUP);
    let line = reloaded(&connector, 1).await;
    let took = asked.elapsed();
    println!("removing an undeliverable tenant took {took:?}");
    for part in ["stopped=1", "unchanged=1"] {
        assert!(line.contains(part), "{part} missing in {line:?}");
    }
    // It kept trying for the delivery grace, and ended within the whole grace period.
    assert!(
        took > Duration::from_secs(3) && took < Duration::from_secs(7),
        "the reload took {took:?}"
    );
    assert_eq!(
        saved_position(&setup.state(), "gamma"),
        None,
        "gamma committed what it never delivered"
    );
    assert_eq!(health_tenants(metrics), set(&["alpha"]));
    assert_eq!(requests(&sim, "alpha", "stream"), 1);
    assert_eq!(listener.accepts(), 1);
    connector.stop().await;
}
