//! The real binary, the simulator and the HEC test receiver: exactly-once delivery,
//! acknowledgements delayed and lost, kill -9, a refused event, a disabled token.
//!
//! The simulator generates THREAT and DEVICE events only (one envelope each), so a
//! repeated `event.id` at the receiver is a repeated delivery.

use super::receiver::{HecReceiver, Script, assert_exactly_once};
use crate::fixture::{KEY, Setup, SimSpec, TENANT, lookout};
use crate::kit::{PATIENCE, Sim, eventually, free_port, http_get};
use mrav2_syslog_connector::observe::HealthReport;
use nix::sys::signal::Signal;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

const SIM: SimSpec<'static> = SimSpec::new().seed("15");

/// One tenant sending to `[destination:splunk]` at `receiver`, with `extra` HEC keys.
fn hec_config(sim: &Sim, receiver: &HecReceiver, extra: &str, connector: &str) -> String {
    format!(
        "{}sse_timeout = 10\n\n[destination:splunk]\ntype = splunk_hec\nurl = {}\ntoken = {}\n{extra}\n[connector]\ncommit_interval_ms = 200\n{connector}",
        lookout(&sim.url(), KEY, ""),
        receiver.url(),
        Script::default().token,
    )
}

/// The state file of the (tenant, splunk) pair.
fn position(setup: &Setup) -> Option<String> {
    let text =
        std::fs::read_to_string(setup.state().join(format!("{TENANT}@splunk.position.json")))
            .ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    assert_eq!(v["destination"], "splunk", "{text}");
    v["position"].as_str().map(str::to_owned)
}

/// Asserts that the saved position is not ahead of what `confirmed` holds: every id up
/// to and including it (in stream order) was acknowledged (or indexed).
fn not_ahead(setup: &Setup, ids: &[String], confirmed: &[String]) {
    let Some(p) = position(setup) else { return };
    let Some(at) = ids.iter().position(|i| *i == p) else {
        return;
    };
    let confirmed: HashSet<&String> = confirmed.iter().collect();
    let missing: Vec<&String> = ids[..=at]
        .iter()
        .filter(|i| !confirmed.contains(i))
        .collect();
    assert!(
        missing.is_empty(),
        "position {p} committed ahead of its acknowledgements: {} ids up to it not acknowledged, first {:?}",
        missing.len(),
        missing.first()
    );
}

fn counts(ids: &[String]) -> HashMap<&String, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_few_thousand_events_are_indexed_exactly_once() {
    let sim = SIM.start(&["--events", "3000", "--batch-size", "100", "--rate", "0"]);
    let receiver = HecReceiver::start(Script::default()).await;
    let setup = Setup::new(&hec_config(&sim, &receiver, "batch_max_events = 250\n", ""));
    let mut connector = setup.run(&[]);
    let ids = sim.event_ids(TENANT);
    assert_eq!(ids.len(), 3000);
    eventually(
        || {
            format!(
                "{} of 3000 indexed\n{}",
                receiver.indexed_ids().len(),
                connector.output()
            )
        },
        PATIENCE,
        || receiver.indexed_ids().len() >= 3000,
    )
    .await;
    eventually(
        || "position of the last event".into(),
        PATIENCE,
        || position(&setup).as_ref() == ids.last(),
    )
    .await;
    connector.stop().await;
    assert_exactly_once(&receiver.indexed_ids(), &ids, "the 3000 ids");
    let log = receiver.log();
    assert!(
        log.iter()
            .all(|r| r.gzip && r.envelopes <= 250 && r.channel.is_some())
    );
    assert!(
        !setup
            .state()
            .join(format!("{TENANT}.position.json"))
            .exists(),
        "the syslog pair's file is not the HEC pair's"
    );
}

#[tokio::test]
async fn delayed_and_lost_acknowledgements_resend_lose_nothing_and_never_commit_ahead() {
    let sim = SIM.start(&["--events", "1000", "--batch-size", "100", "--rate", "0"]);
    let receiver = HecReceiver::start(Script {
        acks: true,
        ack_delay: Duration::from_millis(700),
        lose_every: Some(4),
        ..Script::default()
    })
    .await;
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let setup = Setup::new(&hec_config(
        &sim,
        &receiver,
        "acknowledgements = true\nack_timeout = 2\nbatch_max_events = 200\n",
        &format!("metrics_listen = {metrics}\n"),
    ));
    let mut connector = setup.run(&[]);
    let ids = sim.event_ids(TENANT);
    eventually(
        || {
            let acked: HashSet<String> = receiver.acked_ids().into_iter().collect();
            format!(
                "{} of {} acknowledged\n{}",
                ids.iter().filter(|i| acked.contains(*i)).count(),
                ids.len(),
                connector.output()
            )
        },
        Duration::from_secs(90),
        || {
            let acked = receiver.acked_ids();
            not_ahead(&setup, &ids, &acked);
            let acked: HashSet<String> = acked.into_iter().collect();
            ids.iter().all(|i| acked.contains(i))
        },
    )
    .await;
    eventually(
        || {
            format!(
                "position {:?}, not of the last event {:?}\n{}",
                position(&setup),
                ids.last(),
                connector.output()
            )
        },
        Duration::from_secs(60),
        || {
            not_ahead(&setup, &ids, &receiver.acked_ids());
            position(&setup).as_ref() == ids.last()
        },
    )
    .await;
    let (_, text) = http_get(metrics, "/metrics").unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let label = r#"{tenant="acme",destination="splunk"}"#;
    assert!(
        value(&format!("mrav2_hec_requests_total{label}")) >= 5.0,
        "{text}"
    );
    assert!(
        value(&format!("mrav2_hec_ack_timeouts_total{label}")) >= 1.0,
        "{text}"
    );
    assert!(
        value(&format!("mrav2_hec_resent_events_total{label}")) >= 1.0,
        "{text}"
    );
    assert!(
        value(&format!("mrav2_hec_acks_total{label}")) >= 5.0,
        "{text}"
    );
    assert!(
        value(&format!("mrav2_hec_ack_latency_seconds_total{label}")) >= 0.7 * 5.0,
        "{text}"
    );
    assert!(
        value(
            r#"mrav2_hec_responses_total{tenant="acme",destination="splunk",status="200",code="0"}"#
        ) >= 5.0,
        "{text}"
    );
    connector.stop().await;
    let indexed = receiver.indexed_ids();
    let resent = indexed.len() - ids.len();
    assert!(resent > 0, "lost acknowledgements must cause resends");
    let output = connector.output();
    assert!(output.contains("ack_timeout"), "{output}");
    eprintln!(
        "{} events, {} indexed ({resent} resent after lost acknowledgements)",
        ids.len(),
        indexed.len()
    );
}

#[tokio::test]
async fn kill_9_twice_with_acknowledgements_loses_nothing() {
    let sim = SIM.start(&["--events", "3000", "--batch-size", "50", "--rate", "0"]);
    let receiver = HecReceiver::start(Script {
        acks: true,
        ack_delay: Duration::from_millis(300),
        ..Script::default()
    })
    .await;
    let setup = Setup::new(&hec_config(
        &sim,
        &receiver,
        "acknowledgements = true\nbatch_max_events = 100\n",
        "",
    ));
    let ids = sim.event_ids(TENANT);
    for kill in 0..2 {
        let mut connector = setup.run(&[]);
        let before = receiver.indexed_ids().len();
        eventually(
            || format!("kill {kill}: nothing new indexed\n{}", connector.output()),
            PATIENCE,
            || receiver.indexed_ids().len() >= before + 300,
        )
        .await;
        connector.signal(Signal::SIGKILL);
        assert!(connector.wait_exit(PATIENCE).await.is_some());
        not_ahead(&setup, &ids, &receiver.acked_ids());
    }
    let mut connector = setup.run(&[]);
    eventually(
        || format!("not every id acknowledged\n{}", connector.output()),
        PATIENCE,
        || {
            let acked: HashSet<String> = receiver.acked_ids().into_iter().collect();
            ids.iter().all(|i| acked.contains(i))
        },
    )
    .await;
    connector.stop().await;
    let indexed = receiver.indexed_ids();
    let seen = counts(&indexed);
    assert!(
        ids.iter().all(|i| seen.contains_key(i)),
        "an event was lost"
    );
    eprintln!(
        "{} events, {} indexed over three runs",
        ids.len(),
        indexed.len()
    );
}

#[tokio::test]
async fn one_refused_event_is_dead_lettered_and_its_requests_prefix_indexed_once() {
    let sim = SIM.start(&["--events", "500", "--batch-size", "100", "--rate", "0"]);
    let ids = sim.event_ids(TENANT);
    let refused = ids[137].clone();
    let receiver = HecReceiver::start(Script {
        refuse: Some(format!("\"id\":\"{refused}\"")),
        ..Script::default()
    })
    .await;
    let setup = Setup::new(&hec_config(&sim, &receiver, "batch_max_events = 100\n", ""));
    let mut connector = setup.run(&[]);
    eventually(
        || {
            format!(
                "{} indexed\n{}",
                receiver.indexed_ids().len(),
                connector.output()
            )
        },
        PATIENCE,
        || position(&setup).as_ref() == ids.last(),
    )
    .await;
    connector.stop().await;
    let expected: Vec<String> = ids.iter().filter(|i| **i != refused).cloned().collect();
    assert_exactly_once(
        &receiver.indexed_ids(),
        &expected,
        "every other event exactly once, the prefix never resent",
    );
    let letters = std::fs::read_to_string(
        setup
            .state()
            .join("dead-letter")
            .join(format!("{TENANT}.jsonl")),
    )
    .unwrap();
    let lines: Vec<serde_json::Value> = letters
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{letters}");
    let letter = &lines[0];
    assert_eq!(letter["destination"], "splunk");
    assert_eq!(
        letter["reason"],
        "splunk hec refused the event: HTTP 400 code 6: Invalid data format"
    );
    let envelope: serde_json::Value =
        serde_json::from_str(letter["raw"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["event"]["id"], refused.as_str());
}

#[tokio::test]
async fn a_disabled_token_dead_letters_nothing_shows_in_health_and_all_arrive_after() {
    let sim = SIM.start(&["--events", "300", "--batch-size", "50", "--rate", "0"]);
    let receiver = HecReceiver::start(Script {
        disabled: true,
        ..Script::default()
    })
    .await;
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let setup = Setup::new(&hec_config(
        &sim,
        &receiver,
        "",
        &format!("metrics_listen = {metrics}\n"),
    ));
    let mut connector = setup.run(&[]);
    let health = || {
        http_get(metrics, "/health")
            .ok()
            .and_then(|(status, body)| {
                Some((status, serde_json::from_str::<HealthReport>(&body).ok()?))
            })
    };
    eventually(
        || {
            format!(
                "/health never named the refused token: {:?}\n{}",
                health(),
                connector.output()
            )
        },
        PATIENCE,
        || {
            receiver.log().iter().filter(|r| r.status == 403).count() >= 2
                && health().is_some_and(|(status, report)| {
                    status == 503
                        && report.tenants.iter().any(|t| {
                            t.last_error
                                .as_deref()
                                .is_some_and(|e| e.contains("code 1: Token disabled"))
                        })
                })
        },
    )
    .await;
    let refused = receiver.log().iter().filter(|r| r.status == 403).count();
    assert!(refused >= 2, "retried with the backoff: {refused} attempts");
    assert!(receiver.indexed().is_empty());
    assert_eq!(position(&setup), None);
    let output = connector.output();
    assert!(output.contains("enable the HEC token"), "{output}");
    assert!(
        !output.contains(&Script::default().token),
        "the token is never logged"
    );

    receiver.script(|s| s.disabled = false);
    let ids = sim.event_ids(TENANT);
    eventually(
        || {
            format!(
                "{} indexed after the token was enabled\n{}",
                receiver.indexed_ids().len(),
                connector.output()
            )
        },
        Duration::from_secs(60),
        || position(&setup).as_ref() == ids.last(),
    )
    .await;
    eventually(
        || format!("/health stays failing: {:?}", health()),
        PATIENCE,
        || health().is_some_and(|(status, _)| status == 200),
    )
    .await;
    connector.stop().await;
    assert_exactly_once(
        &receiver.indexed_ids(),
        &ids,
        "every event after the token was enabled",
    );
    assert!(
        !setup.state().join("dead-letter").exists(),
        "nothing dead-lettered"
    );
}

/// `check-config --probe --config config.ini`: exit code and stdout.
async fn probe(setup: &Setup) -> (Option<i32>, String) {
    let config = setup.config();
    tokio::task::spawn_blocking(move || {
        let o = crate::kit::connector()
            .args(["check-config", "--probe", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn check_config_probe_checks_health_and_the_token_without_indexing() {
    let sim = SIM.start(&["--events", "10", "--rate", "0"]);
    let receiver = HecReceiver::start(Script::default()).await;
    let setup = Setup::new(&hec_config(&sim, &receiver, "", ""));
    let (code, out) = probe(&setup).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("splunk_hec splunk: ok:") && out.contains("accepts the token"),
        "{out}"
    );
    assert!(receiver.indexed().is_empty(), "the probe indexes nothing");
    assert!(
        receiver
            .log()
            .iter()
            .any(|r| r.path == "event" && r.status == 400 && r.answer["code"] == 5)
    );

    receiver.script(|s| s.token = "another".into());
    let (code, out) = probe(&setup).await;
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("splunk_hec splunk: FAILED") && out.contains("code 4: Invalid token"),
        "{out}"
    );
    assert!(!out.contains(&Script::default().token), "{out}");

    // Every destination of the tenant is probed, each on its own line.
    receiver.script(|s| s.token = Script::default().token);
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = crate::kit::free_port();
    let with_syslog = |port: u16| {
        Setup::new(&hec_config(
            &sim,
            &receiver,
            "",
            &format!("\n[destination:lake]\nprotocol = tcp\nhost = 127.0.0.1\nport = {port}\n"),
        ))
    };
    let (code, out) = probe(&with_syslog(listening.local_addr().unwrap().port())).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("splunk_hec splunk: ok:")
            && out.contains("syslog lake: ok: connected to 127.0.0.1"),
        "{out}"
    );
    let (code, out) = probe(&with_syslog(closed)).await;
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("splunk_hec splunk: ok:") && out.contains("syslog lake: FAILED"),
        "{out}"
    );
}

/// The example events of `tests/golden/events/` in file-name order: stem and the
/// event as one line (the whitespace between tokens dropped, so keys keep their order).
fn examples() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/events");
    let mut stems: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    assert!(stems.len() >= 14, "{stems:?}");
    stems
        .into_iter()
        .map(|stem| {
            let text = std::fs::read_to_string(dir.join(format!("{stem}.json"))).unwrap();
            let mut line = String::with_capacity(text.len());
            let (mut in_string, mut escaped) = (false, false);
            for c in text.chars() {
                if in_string {
                    in_string = escaped || c != '"';
                    escaped = !escaped && c == '\\';
                } else if c == '"' {
                    in_string = true;
                } else if c.is_whitespace() {
                    continue;
                }
                line.push(c);
            }
            (stem, line)
        })
        .collect()
}

/// Every example event, read from a stream by the real binary, is indexed exactly once
/// with acknowledgements on: as its Splunk JSON object (`forwarder_type = splunk`, the
/// default) and as its OCSF 1.8.0 object (`forwarder_type = ocsf`), byte for byte the
/// golden record, the OCSF one valid against the vendored schema.
#[tokio::test]
async fn every_example_event_is_indexed_once_as_splunk_json_or_ocsf() {
    use crate::source::stub::{self, Plan, Stub};
    let examples = examples();
    let texts: Vec<String> = examples.iter().map(|(_, t)| t.clone()).collect();
    for (forwarder, golden) in [("splunk", "splunk-json"), ("ocsf", "ocsf")] {
        let stub = Stub::start(Plan::new(0, 4).with_events(&texts)).await;
        let ids = stub.plan().ids.clone();
        let receiver = HecReceiver::start(Script {
            acks: true,
            ..Script::default()
        })
        .await;
        let setup = Setup::new(&format!(
            "{}sse_timeout = 10\n\n[destination:splunk]\ntype = splunk_hec\nurl = {}\ntoken = {}\nforwarder_type = {forwarder}\nacknowledgements = true\nbatch_max_events = 4\n\n[connector]\ncommit_interval_ms = 200\n",
            lookout(&stub.url(), stub::KEY, ""),
            receiver.url(),
            Script::default().token,
        ));
        let mut connector = setup.run(&[]);
        eventually(
            || {
                format!(
                    "{forwarder}: position {:?}, {} indexed\n{}",
                    position(&setup),
                    receiver.indexed().len(),
                    connector.output()
                )
            },
            PATIENCE,
            || position(&setup).as_ref() == ids.last(),
        )
        .await;
        connector.stop().await;
        let indexed = receiver.indexed();
        let bodies: String = receiver
            .log()
            .iter()
            .filter(|r| r.path == "event")
            .map(|r| r.body.clone())
            .collect();
        let event_id = |envelope: &serde_json::Value| {
            let event = &envelope["event"];
            let id = if forwarder == "ocsf" {
                &event["metadata"]["uid"]
            } else {
                &event["id"]
            };
            id.as_str().unwrap_or_default().to_owned()
        };
        let indexed_ids: Vec<String> = indexed.iter().map(event_id).collect();
        assert_exactly_once(&indexed_ids, &ids, forwarder);
        for ((stem, _), id) in examples.iter().zip(&ids) {
            let envelope = &indexed[indexed_ids.iter().position(|i| i == id).unwrap()];
            let expected = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/golden")
                    .join(golden)
                    .join(format!("{stem}.txt")),
            )
            .unwrap();
            assert!(
                bodies.contains(&format!("\"event\":{}}}", expected.trim_end())),
                "{forwarder} {stem}: the event is not byte for byte the golden record"
            );
            if forwarder == "ocsf"
                && let Err(problems) = super::ocsf_schema::validate(&envelope["event"])
            {
                panic!("{stem} is not valid OCSF 1.8.0:\n{problems}");
            }
            assert!(
                envelope["sourcetype"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("lookout:mra:")),
                "{forwarder} {stem}: {envelope}"
            );
            assert!(envelope["time"].is_f64(), "{forwarder} {stem}");
        }
        assert_eq!(
            receiver.pending_acks(),
            0,
            "{forwarder}: every ack reported"
        );
    }
}
