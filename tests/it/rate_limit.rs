//! `max_events_per_second` (`docs/operations.md#rate-limit`) with the real binary, the
//! simulator and a real rsyslog that notes when each record arrived (microseconds):
//! a backfill is paced at the limit, nothing is dropped, the wait is counted, and a
//! value that is not a rate is a configuration error.

use crate::fixture::{KEY, Setup, TENANT, config, lookout, sim, tcp};
use crate::hec::receiver::{HecReceiver, Script};
use crate::kit::{connector, eventually, free_port, http_get, received};
use crate::receiver::Rsyslog;
use chrono::DateTime;
use std::collections::HashSet;
use std::time::Duration;

/// The limit of the backfill test, and how many events the backfill holds (six
/// seconds' worth at the limit).
const LIMIT: u32 = 500;
const EVENTS: usize = 3000;

/// The value of the series `name{labels}` in a `/metrics` text.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// The most arrival times in any window of `width` that starts at an arrival.
fn busiest_window(times: &[f64], width: f64) -> usize {
    let mut most = 0;
    let mut end = 0;
    for (start, &t) in times.iter().enumerate() {
        while end < times.len() && times[end] < t + width {
            end += 1;
        }
        most = most.max(end - start);
    }
    most
}

#[tokio::test]
async fn a_backfill_reaches_rsyslog_at_the_limit_and_nothing_is_dropped() {
    let rsyslog = Rsyslog::start().await;
    let sim = sim(&[
        "--events",
        &EVENTS.to_string(),
        "--batch-size",
        "100",
        "--rate",
        "0",
    ]);
    let metrics = free_port();
    let setup = Setup::new(&config(
        &sim.url(),
        &format!("{}max_events_per_second = {LIMIT}\n", tcp(rsyslog.tcp_port)),
        "",
        &format!("metrics_listen = 127.0.0.1:{metrics}\n"),
    ));
    let mut running = setup.run(&[]);
    let ids = sim.event_ids(TENANT);
    assert_eq!(ids.len(), EVENTS);
    let timed = rsyslog.path("tcp-timed.log");
    // Six seconds at the limit; a generous deadline for a busy machine.
    eventually(
        || {
            format!(
                "{} of {EVENTS} records at rsyslog\n{}",
                received(&timed).len(),
                running.output()
            )
        },
        Duration::from_secs(60),
        || received(&timed).len() >= EVENTS,
    )
    .await;
    let addr = format!("127.0.0.1:{metrics}").parse().unwrap();
    let (status, text) = http_get(addr, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{text}");
    running.stop().await;

    let records = received(&timed);
    let got: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let missing = ids.iter().filter(|id| !got.contains(id.as_str())).count();
    assert_eq!(missing, 0, "events dropped under the rate limit");

    // The arrival time is the first word of each line, before the record's header.
    let times: Vec<f64> = records
        .iter()
        .map(|r| {
            let stamp = r.header.split(' ').next().unwrap_or_default();
            let t = DateTime::parse_from_rfc3339(stamp)
                .unwrap_or_else(|e| panic!("arrival time {stamp:?}: {e}"));
            t.timestamp_micros() as f64 / 1e6
        })
        .collect();
    let span = times[times.len() - 1] - times[0];
    let average = (times.len() - 1) as f64 / span;
    let busiest = busiest_window(&times, 2.0);
    let waited = metric(
        &text,
        &format!(
            "mrav2_rate_limit_wait_seconds_total{{tenant=\"{TENANT}\",destination=\"syslog\"}}"
        ),
    )
    .unwrap_or_else(|| panic!("no rate-limit wait series in /metrics:\n{text}"));
    println!(
        "rate limit {LIMIT}/s, {} records in {span:.2} s: average {average:.1}/s ({:+.1} %), \
         busiest 2-second window {busiest} records ({:.1}/s, {:+.1} %), waited {waited:.2} s",
        times.len(),
        (average / f64::from(LIMIT) - 1.0) * 100.0,
        busiest as f64 / 2.0,
        (busiest as f64 / (2.0 * f64::from(LIMIT)) - 1.0) * 100.0,
    );
    assert!(
        busiest as f64 <= 2.0 * f64::from(LIMIT) * 1.10,
        "a 2-second window held {busiest} records, more than 10 % above {LIMIT}/s"
    );
    assert!(
        (average - f64::from(LIMIT)).abs() <= f64::from(LIMIT) * 0.15,
        "average {average:.1}/s is not within 15 % of {LIMIT}/s"
    );
    // Unlimited, the backfill takes a fraction of a second; at the limit nearly six
    // seconds, most of it waiting.
    assert!(waited >= 2.5, "waited only {waited} s for the limit");
}

/// The same limit on a Splunk HEC destination, whose burst is one second's worth: the
/// collector indexes the backfill at the limit after that burst, and the wait is
/// counted under the destination's name.
// The receiver runs in this test's runtime: give it threads of its own, so that the
// test's polling never delays its answers (which would slow the connector's writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hec_destination_is_paced_too() {
    const RATE: u32 = 200;
    const N: usize = 1000;
    let sim = sim(&[
        "--events",
        &N.to_string(),
        "--batch-size",
        "100",
        "--rate",
        "0",
    ]);
    let receiver = HecReceiver::start(Script::default()).await;
    let metrics = free_port();
    let setup = Setup::new(&format!(
        "{}sse_timeout = 10\ndestinations = splunk\n\n[destination:splunk]\ntype = splunk_hec\n\
         url = {}\ntoken = {}\nmax_events_per_second = {RATE}\n\n\
         [connector]\ncommit_interval_ms = 200\nmetrics_listen = 127.0.0.1:{metrics}\n",
        lookout(&sim.url(), KEY, ""),
        receiver.url(),
        Script::default().token,
    ));
    let mut running = setup.run(&[]);
    eventually(
        || format!("nothing indexed\n{}", running.output()),
        Duration::from_secs(30),
        || !receiver.indexed_ids().is_empty(),
    )
    .await;
    let first = tokio::time::Instant::now();
    eventually(
        || {
            format!(
                "{} of {N} indexed\n{}",
                receiver.indexed_ids().len(),
                running.output()
            )
        },
        Duration::from_secs(30),
        || receiver.indexed_ids().len() >= N,
    )
    .await;
    let span = first.elapsed().as_secs_f64();
    let addr = format!("127.0.0.1:{metrics}").parse().unwrap();
    let (_, text) = http_get(addr, "/metrics").expect("GET /metrics");
    running.stop().await;
    let waited = metric(
        &text,
        &format!(
            "mrav2_rate_limit_wait_seconds_total{{tenant=\"{TENANT}\",destination=\"splunk\"}}"
        ),
    )
    .unwrap_or_else(|| panic!("no rate-limit wait series for splunk in /metrics:\n{text}"));
    // The first request carries the burst (one second's worth, 200) and what came in
    // the 100 ms the sink gathers (20); after it, at most another burst (time the
    // writer lost is made up, up to the burst) and then the limit: the other 780
    // take at least (780 - 200) / 200 = 2.9 s, and 780 / 200 = 3.9 s when nothing is
    // lost. Unlimited, all 1000 go in two requests at once.
    let after = (N - 220) as f64;
    let fastest = (after - f64::from(RATE)) / f64::from(RATE);
    let expected = after / f64::from(RATE);
    println!(
        "hec rate limit {RATE}/s: {N} events, the last {after} indexed {span:.2} s after the first \
         request (expected {expected:.1} s, at least {fastest:.1} s), waited {waited:.2} s"
    );
    assert!(
        span >= fastest,
        "{span:.2} s: faster than the limit allows ({fastest:.1} s)"
    );
    assert!(
        span <= expected * 1.15,
        "{span:.2} s: more than 15 % slower than the limit ({expected:.1} s)"
    );
    // The writer's own work (each request, gzip) takes part of the time it would
    // otherwise wait, and varies with the machine's load; unlimited, it never waits.
    assert!(waited >= 0.5, "waited only {waited} s for the limit");
}

#[test]
fn a_rate_that_is_not_a_whole_number_is_a_configuration_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let lookout =
        "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = k\n";
    let cases = [
        (
            "syslog",
            "-5",
            format!("{lookout}[syslog]\nhost = 127.0.0.1\nmax_events_per_second = -5\n"),
        ),
        (
            "destination:splunk",
            "fast",
            format!(
                "{lookout}destinations = splunk\n[destination:splunk]\ntype = splunk_hec\n\
                 url = https://s.example:8088\ntoken = t\nmax_events_per_second = fast\n"
            ),
        ),
    ];
    for (name, value, text) in cases {
        let path = dir.path().join("config.ini");
        crate::kit::write_config(&path, &text);
        let out = connector()
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("run the binary");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "[{name}] max_events_per_second = \"{value}\": not a rate; expected a whole number of events per second"
            )),
            "{stderr}"
        );
    }
}

#[test]
fn the_busiest_window_counts_what_it_should() {
    // 0.0, 0.5, … 4.5: four arrivals in any 2-second window starting at one.
    let times: Vec<f64> = (0..10).map(|i| f64::from(i) * 0.5).collect();
    assert_eq!(busiest_window(&times, 2.0), 4);
    let bunched = [0.0, 0.1, 0.2, 1.9, 2.0, 5.0];
    assert_eq!(busiest_window(&bunched, 2.0), 4);
}
