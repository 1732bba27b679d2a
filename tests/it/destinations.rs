//! Several destinations per tenant (issue 16): the real binary, the simulator, a real
//! rsyslog (`[syslog]`, TCP) and the HEC test receiver (`[destination:splunk]`) for one
//! tenant, each (tenant, destination) pair with its own stream and state file.
//!
//! - a HEC destination refusing for a minute while live events arrive does not hold up
//!   the rsyslog destination (its added latency is measured per event and printed), and
//!   both receive every event once HEC takes events again; a restart re-sends at most a
//!   commit interval to each;
//! - kill -9 mid-run loses nothing at either destination;
//! - a destination added to a running setup starts by the tenant's start rules
//!   (`start_time`) without re-sending anything to the first;
//! - `/metrics` and `/health` show both pairs;
//! - an undecodable item is dead-lettered once, not once per destination.
//!
//! The simulator generates THREAT and DEVICE events only (one LEEF record and one HEC
//! envelope each), so a repeated id is a repeated delivery.

use crate::fixture::{KEY, Setup, SimSpec, TENANT, lookout};
use crate::hec::receiver::{HecReceiver, Script};
use crate::kit::{PATIENCE, Running, Sim, eventually, free_port, http_get, received_ids};
use crate::receiver::Rsyslog;
use mrav2_syslog_connector::observe::HealthReport;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SIM: SimSpec<'static> = SimSpec::new().seed("16");

/// The connector's commit interval in these tests.
const COMMIT_MS: u64 = 200;

/// One tenant to rsyslog over TCP (`[syslog]`) and to `hec` (`[destination:splunk]`),
/// with `lookout_extra` in `[lookout]` and `connector_extra` in `[connector]`.
fn two_destinations(
    sim: &Sim,
    rsyslog: &Rsyslog,
    hec: &HecReceiver,
    lookout_extra: &str,
    connector_extra: &str,
) -> String {
    format!(
        "{}sse_timeout = 10\n{lookout_extra}\n\
         [syslog]\nhost = 127.0.0.1\nprotocol = tcp\nport = {}\n\n\
         {}\
         [connector]\ncommit_interval_ms = {COMMIT_MS}\n{connector_extra}",
        lookout(&sim.url(), KEY, ""),
        rsyslog.tcp_port,
        hec_section(hec),
    )
}

/// `[destination:splunk]` at `hec`.
fn hec_section(hec: &HecReceiver) -> String {
    format!(
        "[destination:splunk]\ntype = splunk_hec\nurl = {}\ntoken = {}\n\n",
        hec.url(),
        Script::default().token
    )
}

/// The state file of the (tenant, `destination`) pair, parsed.
fn state(setup: &Setup, destination: &str) -> Option<serde_json::Value> {
    let name = if destination == "syslog" {
        format!("{TENANT}.position.json")
    } else {
        format!("{TENANT}@{destination}.position.json")
    };
    let text = std::fs::read_to_string(setup.state().join(name)).ok()?;
    Some(serde_json::from_str(&text).expect("a state file is JSON"))
}

/// How many times each id occurs.
fn counts(ids: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    counts
}

/// The ids of `expected` missing from `got`.
fn missing<'a>(expected: &'a [String], got: &[String]) -> Vec<&'a String> {
    let got: HashSet<&String> = got.iter().collect();
    expected.iter().filter(|id| !got.contains(id)).collect()
}

/// Waits until both destinations hold every id of `expected`. Polls every 200 ms:
/// copying thousands of indexed envelopes is not free, and the HEC receiver runs in
/// the test's own runtime.
async fn both_hold(
    expected: &[String],
    file: &Path,
    hec: &HecReceiver,
    within: Duration,
    connector: &Running,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (at_rsyslog, at_hec) = (received_ids(file), hec.indexed_ids());
        let (gone_rsyslog, gone_hec) = (missing(expected, &at_rsyslog), missing(expected, &at_hec));
        if gone_rsyslog.is_empty() && gone_hec.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let at = |gone: &[&String]| {
                let index =
                    |id: Option<&&String>| id.and_then(|id| expected.iter().position(|e| e == *id));
                format!(
                    "{} (first at {:?}, last at {:?})",
                    gone.len(),
                    index(gone.first()),
                    index(gone.last())
                )
            };
            panic!(
                "timed out after {within:?}: of {} events, rsyslog misses {}, HEC misses {}\n{}",
                expected.len(),
                at(&gone_rsyslog),
                at(&gone_hec),
                connector.output()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asserts that the pair's saved position is an event the destination holds, with
/// every event before it (in stream order) held too: a delivered position.
fn delivered_position(setup: &Setup, destination: &str, ids: &[String], got: &[String]) {
    let saved =
        state(setup, destination).unwrap_or_else(|| panic!("no state file for {destination}"));
    let position = saved["position"].as_str().expect("a position");
    let at = ids
        .iter()
        .position(|id| id == position)
        .unwrap_or_else(|| panic!("{destination}: position {position} is not an event id"));
    let not_there = missing(&ids[..=at], got);
    assert!(
        not_there.is_empty(),
        "{destination}: position {position} saved before {} of the events up to it arrived",
        not_there.len()
    );
    if destination == "syslog" {
        assert!(saved.get("destination").is_none(), "{saved}");
    } else {
        assert_eq!(saved["destination"], destination, "{saved}");
    }
}

/// Reads the records rsyslog appends to a file as they come, and notes for each the
/// wall-clock time it was first seen and its `devTime` (the event's `created_time`).
struct Tail {
    file: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// (id, created ms, first seen ms).
    seen: Vec<(String, i64, i64)>,
}

impl Tail {
    fn new(file: PathBuf) -> Tail {
        Tail {
            file,
            offset: 0,
            partial: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn poll(&mut self) {
        let Ok(mut f) = std::fs::File::open(&self.file) else {
            return;
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut more = Vec::new();
        let Ok(n) = f.read_to_end(&mut more) else {
            return;
        };
        let now = now_ms();
        self.offset += n as u64;
        self.partial.extend_from_slice(&more);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in String::from_utf8_lossy(&complete).lines() {
            let attr = |key: &str| line.split('\t').find_map(|a| a.strip_prefix(key));
            if let (Some(id), Some(created)) = (attr("lookoutId="), attr("devTime=")) {
                let created: i64 = created.parse().expect("devTime is epoch ms");
                self.seen.push((id.to_owned(), created, now));
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Issue 16's isolation test. HEC answers 503 (busy) to everything for a minute while
/// the simulator makes 20 live events a second; every live event reaches rsyslog within
/// a few seconds of its creation throughout that minute. Then HEC takes events again,
/// catches up from its own position and receives every event. Each pair's state file
/// holds a delivered position, and a restart re-sends at most a commit interval's
/// events to each destination. `/metrics` and `/health` show both pairs meanwhile, and
/// the pairs' log lines name their destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_destination_failing_for_a_minute_does_not_delay_the_other() {
    const RATE: u64 = 20;
    const FAILING: Duration = Duration::from_secs(60);
    let rsyslog = Rsyslog::start().await;
    let hec = HecReceiver::start(Script {
        busy: u32::MAX,
        retry_after: Some(1),
        ..Script::default()
    })
    .await;
    let sim = SIM.start(&["--events", "50", "--rate", &RATE.to_string()]);
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let setup = Setup::new(&two_destinations(
        &sim,
        &rsyslog,
        &hec,
        "",
        &format!("metrics_listen = {metrics}\n"),
    ));
    let file = rsyslog.path("tcp.log");
    let started = now_ms();
    let mut connector = setup.run(&[]);

    // Every live event created after a short warm-up (start-up and the 50 history
    // events) is timed from its creation to its arrival in rsyslog's file.
    let warm_up = started + 3_000;
    let mut tail = Tail::new(file.clone());
    let failing_until = tokio::time::Instant::now() + FAILING;
    let mut checked_observability = false;
    while tokio::time::Instant::now() < failing_until {
        tail.poll();
        if !checked_observability && tokio::time::Instant::now() + FAILING / 2 >= failing_until {
            // Half-way through: both pairs on /metrics and /health, HEC refusing.
            let (_, text) = http_get(metrics, "/metrics").unwrap();
            let syslog = r#"{tenant="acme",destination="syslog"}"#;
            let splunk = r#"{tenant="acme",destination="splunk"}"#;
            // A series appears at its first count: absent is zero.
            let delivered = |label: &str| {
                metric(&text, &format!("mrav2_events_delivered_total{label}")).unwrap_or(0.0)
            };
            assert!(delivered(syslog) >= 50.0, "{text}");
            assert_eq!(delivered(splunk), 0.0, "{text}");
            assert!(
                metric(&text, &format!("mrav2_events_received_total{splunk}"))
                    .is_some_and(|n| n > 0.0),
                "{text}"
            );
            let (_, body) = http_get(metrics, "/health").unwrap();
            let health: HealthReport = serde_json::from_str(&body).expect("/health JSON");
            let pairs: Vec<(&str, &str)> = health
                .tenants
                .iter()
                .map(|t| (t.tenant.as_str(), t.destination.as_str()))
                .collect();
            assert_eq!(pairs, [("acme", "syslog"), ("acme", "splunk")], "{body}");
            assert!(health.tenants[0].healthy, "{body}");
            assert!(health.tenants[0].delivered >= 50, "{body}");
            assert_eq!(health.tenants[1].delivered, 0, "{body}");
            assert!(health.tenants[1].position.is_none(), "{body}");
            assert!(
                metric(&text, &format!("mrav2_sink_reconnects_total{splunk}"))
                    .is_some_and(|n| n > 0.0),
                "{text}"
            );
            checked_observability = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tail.poll();
    assert!(
        hec.indexed_ids().is_empty(),
        "HEC indexed while it was meant to fail"
    );
    let refused = hec.log().iter().filter(|r| r.status == 503).count();
    // The backoff grows towards its cap (60 s), so a minute holds a handful of tries.
    assert!(refused >= 3, "HEC was asked only {refused} times");

    let mut latencies: Vec<i64> = tail
        .seen
        .iter()
        .filter(|(_, created, _)| *created >= warm_up)
        .map(|(_, created, seen)| seen - created)
        .collect();
    latencies.sort_unstable();
    let expected = (FAILING.as_secs() - 3) * RATE * 9 / 10;
    assert!(
        latencies.len() as u64 >= expected,
        "only {} live events reached rsyslog while HEC failed (expected about {})\n{}",
        latencies.len(),
        (FAILING.as_secs() - 3) * RATE,
        connector.output()
    );
    let p99 = latencies[latencies.len() * 99 / 100];
    let max = *latencies.last().unwrap();
    let p50 = latencies[latencies.len() / 2];
    println!(
        "rsyslog added latency while HEC failed for {}s: {} live events, p50 {p50} ms, p99 {p99} ms, max {max} ms",
        FAILING.as_secs(),
        latencies.len()
    );
    assert!(
        max <= 5_000,
        "an event took {max} ms to reach rsyslog while HEC failed (p99 {p99} ms)"
    );

    // The pairs' log lines say which destination they are about.
    let output = connector.output();
    let refusals: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("delivery failed"))
        .collect();
    assert!(!refusals.is_empty(), "{output}");
    assert!(
        refusals.iter().all(|l| l.contains("destination=splunk")),
        "{refusals:?}"
    );

    // HEC recovers: it catches up from its own position and gets every event.
    hec.script(|s| s.busy = 0);
    let ids = sim.event_ids(TENANT);
    both_hold(&ids, &file, &hec, Duration::from_secs(60), &connector).await;
    connector.stop().await;
    let ids = sim.event_ids(TENANT);
    let (at_rsyslog, at_hec) = (received_ids(&file), hec.indexed_ids());
    for (destination, got) in [("syslog", &at_rsyslog), ("splunk", &at_hec)] {
        let repeated = counts(got).values().filter(|&&n| n > 1).count();
        assert_eq!(repeated, 0, "{destination}: {repeated} ids delivered twice");
        delivered_position(&setup, destination, &ids, got);
    }

    // A restart re-sends at most a commit interval's worth to each destination.
    let mut connector = setup.run(&[]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids = sim.event_ids(TENANT);
    both_hold(&ids, &file, &hec, PATIENCE, &connector).await;
    connector.stop().await;
    let bound = (RATE * COMMIT_MS / 1000) as usize + 1;
    for (destination, before, after) in [
        ("syslog", &at_rsyslog, received_ids(&file)),
        ("splunk", &at_hec, hec.indexed_ids()),
    ] {
        let before: HashSet<&String> = before.iter().collect();
        let again = after[before.len()..]
            .iter()
            .filter(|id| before.contains(id))
            .count();
        println!("{destination}: {again} events sent again after the restart");
        assert!(
            again <= bound,
            "{destination}: {again} events sent again after a clean restart (at most {bound})"
        );
    }
}

/// kill -9 while live events flow to both destinations: after a restart, each
/// destination has every event; duplicates stay within what the killed run had not
/// committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_loses_nothing_at_either_destination() {
    const RATE: u64 = 300;
    let rsyslog = Rsyslog::start().await;
    let hec = HecReceiver::start(Script::default()).await;
    let sim = SIM.start(&["--events", "500", "--rate", &RATE.to_string()]);
    let setup = Setup::new(&two_destinations(&sim, &rsyslog, &hec, "", ""));
    let file = rsyslog.path("tcp.log");
    let mut connector = setup.run(&[]);
    eventually(
        || format!("no events yet\n{}", connector.output()),
        PATIENCE,
        || received_ids(&file).len() >= 800 && hec.indexed_ids().len() >= 800,
    )
    .await;
    connector.kill9();
    let killed_at = sim.event_ids(TENANT).len();

    let mut connector = setup.run(&[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ids = sim.event_ids(TENANT);
    both_hold(&ids, &file, &hec, PATIENCE, &connector).await;
    connector.stop().await;
    for (destination, got) in [
        ("syslog", received_ids(&file)),
        ("splunk", hec.indexed_ids()),
    ] {
        let counts = counts(&got);
        let twice = counts.values().filter(|&&n| n == 2).count();
        let more = counts.values().filter(|&&n| n > 2).count();
        println!(
            "{destination}: {twice} of {} events delivered twice",
            ids.len()
        );
        assert_eq!(more, 0, "{destination}: an event delivered three times");
        // At most what one commit interval and the batches in flight hold, at the
        // speed the events arrive (a generous second of them).
        assert!(
            twice <= RATE as usize,
            "{destination}: {twice} duplicates after one kill (killed with {killed_at} events generated)"
        );
    }
}

/// A second destination added to a running setup (stop, edit the file, start) starts
/// by the tenant's start rules (`start_time` = now: nothing older), while the first
/// goes on from its own state file without re-sending anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_destination_starts_by_the_start_rules_without_resending_to_the_first() {
    let rsyslog = Rsyslog::start().await;
    let hec = HecReceiver::start(Script::default()).await;
    let sim = SIM.start(&["--events", "40", "--rate", "5"]);
    let only_syslog = format!(
        "{}sse_timeout = 10\n\n[syslog]\nhost = 127.0.0.1\nprotocol = tcp\nport = {}\n\n\
         [connector]\ncommit_interval_ms = {COMMIT_MS}\n",
        lookout(&sim.url(), KEY, ""),
        rsyslog.tcp_port
    );
    let setup = Setup::new(&only_syslog);
    let file = rsyslog.path("tcp.log");
    let mut connector = setup.run(&[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first_ids = sim.event_ids(TENANT);
    eventually(
        || format!("history not delivered\n{}", connector.output()),
        PATIENCE,
        || missing(&first_ids, &received_ids(&file)).is_empty(),
    )
    .await;
    connector.stop().await;
    assert!(state(&setup, "syslog").is_some());
    let before = received_ids(&file);

    // "From now": start_time is the moment the destination is added (whole seconds).
    let from = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0).unwrap();
    setup.write(&two_destinations(
        &sim,
        &rsyslog,
        &hec,
        &format!(
            "start_time = {}\n",
            from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        "",
    ));
    let mut connector = setup.run(&[]);
    eventually(
        || format!("HEC got no live event\n{}", connector.output()),
        PATIENCE,
        || hec.indexed_ids().len() >= 5,
    )
    .await;
    let ids = sim.event_ids(TENANT);
    eventually(
        || format!("rsyslog did not get every event\n{}", connector.output()),
        PATIENCE,
        || missing(&ids, &received_ids(&file)).is_empty(),
    )
    .await;
    connector.stop().await;

    let at_rsyslog = received_ids(&file);
    let repeated = counts(&at_rsyslog).values().filter(|&&n| n > 1).count();
    assert_eq!(repeated, 0, "the first destination got events again");
    assert!(at_rsyslog.len() > before.len());

    let indexed = hec.indexed();
    let at_hec = hec.indexed_ids();
    let from_s = from.timestamp_millis() as f64 / 1000.0;
    for envelope in &indexed {
        let time = envelope["time"].as_f64().expect("envelope time");
        assert!(
            time >= from_s,
            "HEC got an event created before start_time: {envelope}"
        );
    }
    assert!(
        at_hec.iter().all(|id| !first_ids[..40].contains(id)),
        "HEC got events of the simulator's history"
    );
    // Every event created since start_time (rsyslog's records carry the creation
    // time), and only those, reached the new destination, once each.
    let mut tail = Tail::new(file.clone());
    tail.poll();
    let since: Vec<String> = tail
        .seen
        .iter()
        .filter(|(id, created, _)| *created >= from.timestamp_millis() && ids.contains(id))
        .map(|(id, _, _)| id.clone())
        .collect();
    assert!(
        since.len() < ids.len(),
        "no event older than start_time; the test proves nothing"
    );
    assert!(!since.is_empty());
    assert_eq!(missing(&since, &at_hec), Vec::<&String>::new());
    assert!(counts(&at_hec).values().all(|&n| n == 1));
    let splunk = state(&setup, "splunk").expect("the new destination's state file");

    // `status` prints a block per destination, each with its own position.
    let out = crate::kit::connector()
        .arg("status")
        .arg("--config")
        .arg(setup.config())
        .arg("--state-dir")
        .arg(setup.state())
        .output()
        .expect("run status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{text}");
    let syslog = state(&setup, "syslog").expect("the first destination's state file");
    for (block, destination, saved, file) in [
        (
            blocks[0],
            "syslog",
            &syslog,
            format!("{TENANT}.position.json"),
        ),
        (
            blocks[1],
            "splunk",
            &splunk,
            format!("{TENANT}@splunk.position.json"),
        ),
    ] {
        assert!(
            block.starts_with(&format!("tenant {TENANT}\n  destination: {destination}\n")),
            "{text}"
        );
        let position = saved["position"].as_str().unwrap();
        assert!(
            block.contains(&format!("  position:    {position}\n")),
            "{text}"
        );
        assert!(block.contains(&file), "{text}");
    }
}

/// An undecodable batch is met by both pairs of the tenant (each reads the stream on
/// its own), but the dead-letter file gets it once, without a destination; every
/// other event reaches both destinations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_batch_is_dead_lettered_once_not_once_per_destination() {
    // Both pairs' first stream requests (1 and 2) get the broken third batch.
    let scenario = r#"{"faults":[{"endpoint":"stream","request":[1,2],"after_batches":2,"action":"invalid_json"}]}"#;
    let rsyslog = Rsyslog::start().await;
    let hec = HecReceiver::start(Script::default()).await;
    let sim = SIM
        .scenario(scenario)
        .start(&["--events", "30", "--batch-size", "5", "--rate", "0"]);
    let setup = Setup::new(&two_destinations(&sim, &rsyslog, &hec, "", ""));
    let file = rsyslog.path("tcp.log");
    let mut connector = setup.run(&[]);
    let ids = sim.event_ids(TENANT);
    let delivered: Vec<String> = ids[..10].iter().chain(&ids[15..]).cloned().collect();
    both_hold(&delivered, &file, &hec, PATIENCE, &connector).await;
    eventually(
        || format!("positions not at the end\n{}", connector.output()),
        PATIENCE,
        || {
            ["syslog", "splunk"].iter().all(|d| {
                state(&setup, d)
                    .is_some_and(|s| s["position"].as_str() == ids.last().map(|x| x.as_str()))
            })
        },
    )
    .await;
    connector.stop().await;
    let letters = setup
        .state()
        .join("dead-letter")
        .join(format!("{TENANT}.jsonl"));
    let text = std::fs::read_to_string(&letters).expect("dead-letter file");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["tenant"], TENANT);
    assert!(lines[0].get("destination").is_none(), "{text}");
}
