//! Records as the SIEM sees them, through the real binary and the simulator: the
//! HOSTNAME field (known-failures 2), Splunk output over syslog (3), CEF and OCSF
//! output, and one long-lived connection with no descriptor leak (29).

use crate::fixture::{self, KEY, Setup, TENANT, lookout, sim, tcp};
use crate::kit::{PATIENCE, Sim, TICK, eventually};
use crate::receiver::{RawTcpListener, Rsyslog};
use mrav2_syslog_connector::config::load::sanitize_hostname;
use std::collections::BTreeSet;
use tokio::time::Instant;

/// A [`Setup`] with `[lookout]` for `sim` (the connector's own defaults otherwise) and
/// `syslog` as the `[syslog]` body.
fn setup(sim: &Sim, syslog: &str) -> Setup {
    Setup::new(&format!(
        "{}{}\n",
        lookout(&sim.url(), KEY, ""),
        fixture::syslog(syslog)
    ))
}

/// The records at a raw LF-framed listener.
fn lines(listener: &RawTcpListener) -> Vec<String> {
    let bytes = listener.received();
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..complete])
        .lines()
        .map(str::to_string)
        .collect()
}

/// The HOSTNAME of an RFC 3164 record: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG`.
fn hostname(record: &str) -> &str {
    record.split_whitespace().nth(3).unwrap_or_default()
}

/// Known-failures 2: without `log_identifier_*` records carry the machine's host name;
/// with `log_identifier_key = qradarLogSourceIdentifier` they carry `log_identifier`.
/// Neither crashes on the first event.
#[tokio::test]
async fn records_carry_the_machine_name_or_the_qradar_log_source_identifier() {
    let sim = sim(&["--events", "5", "--rate", "0"]);
    let machine = sanitize_hostname(
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .expect("the kernel's host name")
            .trim(),
    );
    for (extra, expected) in [
        ("", machine.as_str()),
        (
            "log_identifier_key = qradarLogSourceIdentifier\nlog_identifier = lookout-mes\n",
            "lookout-mes",
        ),
    ] {
        let listener = RawTcpListener::start().await;
        let setup = setup(&sim, &format!("{}{extra}", tcp(listener.port())));
        let mut connector = setup.run(&[]);
        eventually(
            || format!("fewer than 5 records\n{}", connector.output()),
            PATIENCE,
            || lines(&listener).len() >= 5,
        )
        .await;
        connector.stop().await;
        for record in lines(&listener) {
            assert_eq!(hostname(&record), expected, "{record}");
            assert!(
                !record.contains("qradarLogSourceIdentifier"),
                "the QRadar key is never an attribute: {record}"
            );
        }
    }
}

/// Known-failures 3: `forwarder_type = splunk` works. JSON and kv records reach rsyslog
/// with a syslog header, one per generated event, carrying each event's id.
#[tokio::test]
async fn splunk_json_and_kv_records_reach_rsyslog_with_every_event() {
    let rsyslog = Rsyslog::start().await;
    let file = rsyslog.path("tcp.log");
    let sim = sim(&["--events", "20", "--batch-size", "5", "--rate", "0"]);
    let ids: BTreeSet<String> = sim.event_ids(TENANT).into_iter().collect();
    for (format, tag) in [("json", "splunkjson"), ("kv", "splunkkv")] {
        let setup = setup(
            &sim,
            &format!(
                "protocol = tcp\nport = {}\nforwarder_type = splunk\nsplunk_format = {format}\n\
                 app_name = {tag}\n",
                rsyslog.tcp_port
            ),
        );
        let mut connector = setup.run(&[]);
        let bodies = || -> Vec<String> {
            std::fs::read_to_string(&file)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    l.split_once(&format!(" {tag}: "))
                        .map(|(_, b)| b.to_string())
                })
                .collect()
        };
        eventually(
            || {
                format!(
                    "{format}: {} records\n{}",
                    bodies().len(),
                    connector.output()
                )
            },
            PATIENCE,
            || bodies().len() >= ids.len(),
        )
        .await;
        connector.stop().await;
        let mut seen = BTreeSet::new();
        for body in bodies() {
            let id = if format == "json" {
                let value: serde_json::Value = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("not one JSON object ({e}): {body}"));
                value["id"].as_str().expect("an id").to_string()
            } else {
                body.strip_prefix("id=\"")
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("kv record does not start with id=: {body}"))
                    .to_string()
            };
            assert!(seen.insert(id), "{format}: an id twice");
        }
        assert_eq!(seen, ids, "{format}: not every event");
    }
}

/// `forwarder_type = cef` and `ocsf` through the real binary: every generated event
/// reaches rsyslog as CEF records a CEF parser reads (one per smishing detection) and
/// as one OCSF object each, carrying its id.
#[tokio::test]
async fn cef_and_ocsf_records_reach_rsyslog_with_every_event() {
    use mrav2_syslog_connector::format::cef;
    let rsyslog = Rsyslog::start().await;
    let file = rsyslog.path("tcp.log");
    let sim = sim(&["--events", "20", "--batch-size", "5", "--rate", "0"]);
    let ids: BTreeSet<String> = sim.event_ids(TENANT).into_iter().collect();
    for forwarder in ["cef", "ocsf"] {
        let tag = format!("lookout{forwarder}");
        let setup = setup(
            &sim,
            &format!(
                "protocol = tcp\nport = {}\nforwarder_type = {forwarder}\napp_name = {tag}\n",
                rsyslog.tcp_port
            ),
        );
        let mut connector = setup.run(&[]);
        let bodies = || -> Vec<String> {
            std::fs::read_to_string(&file)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    l.split_once(&format!(" {tag}: "))
                        .map(|(_, b)| b.to_string())
                })
                .collect()
        };
        let id_of = |body: &str| -> String {
            if forwarder == "cef" {
                let record = cef::parse(body).unwrap_or_else(|| panic!("not a CEF record: {body}"));
                assert_eq!(record.header[1..3], ["Lookout", "Mobile Risk API"]);
                record
                    .pairs
                    .into_iter()
                    .find(|(k, _)| k == "externalId")
                    .map(|(_, v)| v)
                    .unwrap_or_else(|| panic!("no externalId: {body}"))
            } else {
                let value: serde_json::Value = serde_json::from_str(body)
                    .unwrap_or_else(|e| panic!("not one JSON object ({e}): {body}"));
                assert_eq!(value["metadata"]["version"], "1.8.0", "{body}");
                assert_eq!(
                    value["type_uid"].as_i64(),
                    Some(
                        value["class_uid"].as_i64().expect("class_uid") * 100
                            + value["activity_id"].as_i64().expect("activity_id")
                    ),
                    "{body}"
                );
                value["metadata"]["uid"]
                    .as_str()
                    .expect("an id")
                    .to_string()
            }
        };
        let seen = || -> BTreeSet<String> { bodies().iter().map(|b| id_of(b)).collect() };
        eventually(
            || {
                format!(
                    "{forwarder}: {} records\n{}",
                    bodies().len(),
                    connector.output()
                )
            },
            PATIENCE,
            || seen().len() >= ids.len(),
        )
        .await;
        connector.stop().await;
        assert_eq!(seen(), ids, "{forwarder}: not every event");
        if forwarder == "ocsf" {
            assert_eq!(bodies().len(), ids.len(), "ocsf: one record per event");
        }
    }
}

fn descriptors(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Known-failures 29: 10,000 batches (of one event) go over one connection, and the
/// connector's open descriptors stay flat (the Python connector opened a connection
/// per batch and never closed one).
#[tokio::test]
async fn ten_thousand_batches_use_one_connection_and_no_more_descriptors() {
    const BATCHES: usize = 10_000;
    let listener = RawTcpListener::start().await;
    let sim = sim(&["--firehose", "--events", "10000", "--batch-size", "1"]);
    let setup = setup(&sim, &tcp(listener.port()));
    let mut connector = setup.run(&[]);
    let records = || listener.received().iter().filter(|&&b| b == b'\n').count();
    // Descriptors once the pipeline is warm (tokens, stream and sink open), then
    // throughout the rest of the run.
    eventually(|| connector.output(), PATIENCE, || records() >= 200).await;
    let warm = descriptors(connector.pid());
    let mut most = warm;
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    while records() < BATCHES {
        assert!(
            Instant::now() < deadline,
            "{} of {BATCHES} records\n{}",
            records(),
            connector.output()
        );
        most = most.max(descriptors(connector.pid()));
        tokio::time::sleep(TICK * 5).await;
    }
    connector.stop().await;
    assert_eq!(listener.accepts(), 1, "one connection for every batch");
    assert!(
        most <= warm + 2,
        "open descriptors grew from {warm} to {most} over {BATCHES} batches"
    );
}
