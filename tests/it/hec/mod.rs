//! Splunk HEC: the sink against the test receiver ([`receiver`]), through the
//! library's sink and ledger as the writer drives them.

mod binary;
pub mod receiver;
// The OCSF 1.8.0 validator the library's unit tests use, built from the vendored
// schema (`tests/ocsf-1.8.0`).
#[path = "../../../src/format/ocsf_schema.rs"]
mod ocsf_schema;

use mrav2_syslog_connector::config::{Format, HecConfig, Secret, TlsConfig};
use mrav2_syslog_connector::event::Position;
use mrav2_syslog_connector::format::RenderedMessage;
use mrav2_syslog_connector::sink::{Sink, SinkErrorKind};
use mrav2_syslog_connector::tenant::ledger::{Ledger, Receipt};
use receiver::{HecReceiver, Script, assert_exactly_once};
use std::time::Duration;

fn config(receiver: &HecReceiver, token: &str) -> HecConfig {
    HecConfig {
        name: "splunk".into(),
        url: receiver.url().parse().unwrap(),
        token: Secret::new(token),
        token_source: mrav2_syslog_connector::config::SecretSource::ConfigFile,
        index: None,
        sourcetype: None,
        source: "mrav2-syslog-connector".into(),
        host: "mra-connector-01".into(),
        format: Format::SplunkJson,
        acknowledgements: false,
        batch_max_events: 500,
        batch_max_bytes: 1_000_000,
        gzip: true,
        request_timeout: Duration::from_secs(5),
        ack_timeout: Duration::from_secs(300),
        tls: TlsConfig {
            ca_file: None,
            client_auth: None,
            verify: true,
            server_name: "127.0.0.1".into(),
        },
        max_events_per_second: 0,
    }
}

fn message(id: usize) -> RenderedMessage {
    RenderedMessage {
        text: format!(
            r#"{{"id":"e{id}","type":"THREAT","created_time":"2026-11-05T08:12:44.318+00:00","entName":"acme"}}"#
        ),
        severity: 4,
        event_time: chrono::DateTime::parse_from_rfc3339("2026-11-05T08:12:44.318+00:00").ok(),
        msgid: Some("THREAT".into()),
        event_id: Some(format!("e{id}")),
        altered: false,
    }
}

/// What a run of [`drive`] ended with.
struct Run {
    /// The confirmed position (the last batch's number) at the end.
    confirmed: Option<String>,
    error: Option<SinkErrorKind>,
    /// The error's text.
    message: Option<String>,
    retry_after: Option<Duration>,
    lost: bool,
    dead_letters: Vec<mrav2_syslog_connector::event::DeadLetter>,
}

/// Sends `events` events in pieces of `piece` (each piece its own batch, position =
/// its last event's number), then waits for every receipt as the writer does, up to
/// `within`.
async fn drive(sink: &mut Sink, events: usize, piece: usize, within: Duration) -> Run {
    let mut ledger = Ledger::new(None);
    let mut run = Run {
        confirmed: None,
        error: None,
        message: None,
        retry_after: None,
        lost: false,
        dead_letters: Vec::new(),
    };
    let apply = |sink: &mut Sink, ledger: &mut Ledger, run: &mut Run| {
        run.dead_letters.extend(sink.take_dead_letters());
        let receipts: Vec<Receipt> = sink.receipts().collect();
        for r in receipts {
            if ledger.apply(r).is_some() {
                run.lost = true;
            }
        }
        if let Some(p) = ledger.advance().position {
            run.confirmed = Some(p.as_str().to_owned());
        }
    };
    let mut start = 0;
    while start < events {
        let end = (start + piece).min(events);
        let messages: Vec<_> = (start..end).map(message).collect();
        let ticket = ledger.issue((end - start) as u64, None);
        if let Err(e) = sink.send(ticket, &messages).await {
            run.error = Some(e.kind());
            run.message = Some(e.to_string());
            run.retry_after = e.retry_after();
            return run;
        }
        ledger.end_batch(Position::new(format!("{}", end - 1)), 0);
        apply(sink, &mut ledger, &mut run);
        if run.lost {
            return run;
        }
        start = end;
    }
    let deadline = tokio::time::Instant::now() + within;
    while sink.awaiting() && tokio::time::Instant::now() < deadline {
        let _ = tokio::time::timeout_at(deadline, sink.ready()).await;
        if let Err(e) = sink.collect().await {
            run.error = Some(e.kind());
            run.message = Some(e.to_string());
            run.retry_after = e.retry_after();
            break;
        }
        apply(sink, &mut ledger, &mut run);
        if run.lost {
            break;
        }
    }
    apply(sink, &mut ledger, &mut run);
    run
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("e{i}")).collect()
}

#[tokio::test]
async fn batches_are_gzip_envelopes_in_one_channel_and_delivered_on_success() {
    let receiver = HecReceiver::start(Script::default()).await;
    let mut cfg = config(&receiver, &Script::default().token);
    cfg.batch_max_events = 7;
    let mut sink = Sink::for_destination(
        &mrav2_syslog_connector::config::DestinationConfig::SplunkHec(cfg),
        "acme",
        Duration::from_secs(1),
    )
    .unwrap();
    let run = drive(&mut sink, 40, 3, Duration::from_secs(5)).await;
    assert_eq!(run.error, None);
    assert_eq!(run.confirmed.as_deref(), Some("39"));
    assert_exactly_once(&receiver.indexed_ids(), &ids(40), "indexed");
    let log = receiver.log();
    assert!(
        log.iter()
            .all(|r| r.gzip && r.envelopes <= 7 && r.status == 200)
    );
    let channels: std::collections::HashSet<_> = log.iter().map(|r| r.channel.clone()).collect();
    assert_eq!(channels.len(), 1, "one channel per destination");
    let first = &receiver.indexed()[0];
    assert_eq!(first["time"].to_string(), "1793866364.318");
    assert_eq!(first["sourcetype"], "lookout:mra:threat");
    assert_eq!(first["host"], "mra-connector-01");
    assert!(first.get("index").is_none());
}

fn hec_sink(cfg: HecConfig) -> Sink {
    Sink::for_destination(
        &mrav2_syslog_connector::config::DestinationConfig::SplunkHec(cfg),
        "acme",
        Duration::from_secs(1),
    )
    .unwrap()
}

#[tokio::test]
async fn two_requests_travel_at_once_and_no_more() {
    let script = Script {
        answer_delay: Duration::from_millis(400),
        ..Script::default()
    };
    let receiver = HecReceiver::start(script.clone()).await;
    let mut cfg = config(&receiver, &script.token);
    cfg.batch_max_events = 10;
    let mut sink = hec_sink(cfg);
    let run = drive(&mut sink, 60, 10, Duration::from_secs(10)).await;
    assert_eq!(run.error, None, "{:?}", run.message);
    assert_eq!(run.confirmed.as_deref(), Some("59"));
    assert_exactly_once(&receiver.indexed_ids(), &ids(60), "indexed");
    // Each request waits 0.4 s at the collector: two were there at once, never more.
    assert_eq!(receiver.most_at_once(), 2);
    assert_eq!(mrav2_syslog_connector::sink::hec::MAX_IN_FLIGHT, 2);
}

#[tokio::test]
async fn with_acknowledgements_only_a_true_ack_delivers() {
    let script = Script {
        acks: true,
        ack_delay: Duration::from_millis(1500),
        ..Script::default()
    };
    let receiver = HecReceiver::start(script.clone()).await;
    let mut cfg = config(&receiver, &script.token);
    cfg.acknowledgements = true;
    cfg.batch_max_events = 10;
    let mut sink = hec_sink(cfg);
    // Nothing confirmed while the acks are not true yet.
    let early = drive(&mut sink, 30, 10, Duration::from_millis(800)).await;
    assert_eq!(early.confirmed, None, "no position ahead of its acks");
    assert_exactly_once(&receiver.indexed_ids(), &ids(30), "indexed");
    sink.forget();
    let mut sink2 = {
        let mut cfg = config(&receiver, &script.token);
        cfg.acknowledgements = true;
        cfg.batch_max_events = 10;
        hec_sink(cfg)
    };
    let run = drive(&mut sink2, 30, 10, Duration::from_secs(10)).await;
    assert_eq!(run.error, None);
    assert_eq!(run.confirmed.as_deref(), Some("29"));
    // Several ids per poll, and every id forgotten once reported true.
    let polls: Vec<_> = receiver
        .log()
        .into_iter()
        .filter(|r| r.path == "ack")
        .collect();
    assert!(
        polls.iter().any(|p| p.body.matches(',').count() >= 1),
        "{polls:?}"
    );
    let acked_ids: usize = polls
        .iter()
        .map(|p| {
            p.answer["acks"]
                .as_object()
                .unwrap()
                .values()
                .filter(|v| **v == true)
                .count()
        })
        .sum();
    assert_eq!(acked_ids, 3);
    // A transcript of one batch with its acknowledgement, for the docs (run with
    // --nocapture to see it): the first request whose ackId was reported true, its
    // answer, and that poll (with the ids of the requests polled with it).
    let log = receiver.log();
    let (request, poll) = log
        .iter()
        .filter(|r| r.path == "event")
        .find_map(|r| {
            let id = r.answer["ackId"].as_u64()?.to_string();
            let poll = polls
                .iter()
                .find(|p| p.answer["acks"][id.as_str()] == true)?;
            Some((r, poll))
        })
        .unwrap();
    let envelope = request
        .body
        .split_inclusive("}}")
        .next()
        .unwrap_or_default();
    eprintln!(
        "POST /services/collector/event (X-Splunk-Request-Channel: {}, Content-Encoding: {}, {} envelopes; the first:)\n{envelope}\n-> {} {}\nPOST /services/collector/ack (same channel) {}\n-> {} {}",
        request.channel.as_deref().unwrap_or("-"),
        if request.gzip { "gzip" } else { "none" },
        request.envelopes,
        request.status,
        request.answer,
        poll.body,
        poll.status,
        poll.answer
    );
}

#[tokio::test]
async fn an_ack_never_given_is_lost_after_ack_timeout() {
    let script = Script {
        acks: true,
        lose_every: Some(2),
        ..Script::default()
    };
    let receiver = HecReceiver::start(script.clone()).await;
    let mut cfg = config(&receiver, &script.token);
    cfg.acknowledgements = true;
    cfg.batch_max_events = 10;
    cfg.ack_timeout = Duration::from_secs(2);
    let mut sink = hec_sink(cfg);
    let run = drive(&mut sink, 30, 10, Duration::from_secs(10)).await;
    assert!(run.lost, "the request without ack is reported lost");
    // The first request was acknowledged, the second never: position stops at 9.
    assert_eq!(run.confirmed.as_deref(), Some("9"));
}

#[tokio::test]
async fn a_refused_event_is_a_dead_letter_and_its_prefix_is_never_resent() {
    let script = Script {
        refuse: Some("\"e13\"".into()),
        ..Script::default()
    };
    let receiver = HecReceiver::start(script.clone()).await;
    let mut cfg = config(&receiver, &script.token);
    cfg.batch_max_events = 10;
    let mut sink = hec_sink(cfg);
    let run = drive(&mut sink, 30, 10, Duration::from_secs(5)).await;
    assert_eq!(run.error, None);
    assert_eq!(run.confirmed.as_deref(), Some("29"));
    let expected: Vec<String> = ids(30).into_iter().filter(|i| i != "e13").collect();
    assert_exactly_once(
        &receiver.indexed_ids(),
        &expected,
        "exactly once, the prefix not resent",
    );
    assert_eq!(run.dead_letters.len(), 1);
    let letter = &run.dead_letters[0];
    assert!(letter.raw.contains("\"id\":\"e13\""), "{}", letter.raw);
    assert_eq!(
        letter.reason,
        "splunk hec refused the event: HTTP 400 code 6: Invalid data format"
    );
    assert_eq!(letter.destination.as_deref(), Some("splunk"));
}

#[tokio::test]
async fn too_large_requests_are_split_down_to_one_envelope() {
    let script = Script {
        max_body: Some(1200),
        ..Script::default()
    };
    let receiver = HecReceiver::start(script.clone()).await;
    let mut cfg = config(&receiver, &script.token);
    cfg.batch_max_events = 16;
    let mut sink = hec_sink(cfg);
    let run = drive(&mut sink, 32, 16, Duration::from_secs(5)).await;
    assert_eq!(run.error, None);
    assert_eq!(run.confirmed.as_deref(), Some("31"));
    assert_exactly_once(&receiver.indexed_ids(), &ids(32), "indexed");
    assert!(receiver.log().iter().any(|r| r.status == 413));
    assert!(run.dead_letters.is_empty());
}

#[tokio::test]
async fn receiver_configuration_problems_are_errors_never_dead_letters() {
    for (change, code) in [
        (
            Box::new(|s: &mut Script| s.disabled = true) as Box<dyn Fn(&mut Script)>,
            "code 1",
        ),
        (
            Box::new(|s: &mut Script| s.token = "other".into()),
            "code 4",
        ),
        (
            Box::new(|s: &mut Script| s.indexes = Some(vec!["main".into()])),
            "code 7",
        ),
    ] {
        let receiver = HecReceiver::start(Script::default()).await;
        let mut cfg = config(&receiver, &Script::default().token);
        cfg.index = Some("mobile".into());
        receiver.script(|s| change(s));
        let mut sink = hec_sink(cfg);
        let run = drive(&mut sink, 5, 5, Duration::from_secs(5)).await;
        assert_eq!(run.error, Some(SinkErrorKind::Misconfigured), "{code}");
        assert!(run.dead_letters.is_empty(), "{code}");
        assert_eq!(run.confirmed, None, "{code}");
        assert!(receiver.indexed().is_empty());
        let _ = code;
    }
    // Acknowledgements asked of a token without them: code 14 at the ack endpoint is
    // not reached, the missing ackId is the sign.
    let receiver = HecReceiver::start(Script::default()).await;
    let mut cfg = config(&receiver, &Script::default().token);
    cfg.acknowledgements = true;
    let mut sink = hec_sink(cfg);
    let run = drive(&mut sink, 5, 5, Duration::from_secs(5)).await;
    assert_eq!(run.error, Some(SinkErrorKind::Misconfigured));
}

#[tokio::test]
async fn busy_is_a_retry_with_the_receivers_retry_after() {
    let script = Script {
        busy: 1,
        retry_after: Some(7),
        ..Script::default()
    };
    let receiver = HecReceiver::start(script.clone()).await;
    let mut sink = hec_sink(config(&receiver, &script.token));
    let run = drive(&mut sink, 5, 5, Duration::from_secs(5)).await;
    assert_eq!(run.error, Some(SinkErrorKind::Busy));
    assert_eq!(run.retry_after, Some(Duration::from_secs(7)));
    assert!(receiver.indexed().is_empty());
    // The next attempt goes through.
    let run = drive(&mut sink, 5, 5, Duration::from_secs(5)).await;
    assert_eq!(run.error, None);
    assert_exactly_once(&receiver.indexed_ids(), &ids(5), "indexed");
}

/// Every example event of `tests/golden/events/`, formatted as the connector does for
/// HEC, arrives exactly once, and its `event` is byte for byte the Splunk JSON object
/// of `tests/golden/splunk-json/` (`docs/formats/splunk.md#json-mode`), smishing alerts unsplit.
#[tokio::test]
async fn every_example_event_is_indexed_once_as_its_splunk_json_object() {
    use mrav2_syslog_connector::config::Format;
    use mrav2_syslog_connector::event::RawEvent;
    use mrav2_syslog_connector::format::Formatter;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut stems: Vec<String> = std::fs::read_dir(dir.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    assert!(stems.len() >= 14, "{stems:?}");
    let formatter = Formatter::new(Format::SplunkJson, "acme", None);
    let mut messages = Vec::new();
    for stem in &stems {
        let text =
            std::fs::read_to_string(dir.join("events").join(format!("{stem}.json"))).unwrap();
        let raw = RawEvent::new(&text, None);
        let before = messages.len();
        formatter.render(&raw.decode().unwrap(), &mut messages);
        assert_eq!(messages.len(), before + 1, "{stem}: one envelope per event");
    }
    let script = Script {
        acks: true,
        ..Script::default()
    };
    let receiver = HecReceiver::start(script.clone()).await;
    let mut cfg = config(&receiver, &script.token);
    cfg.acknowledgements = true;
    cfg.batch_max_events = 4;
    let mut sink = hec_sink(cfg);
    let mut ledger = Ledger::new(None);
    let ticket = ledger.issue(messages.len() as u64, None);
    sink.send(ticket, &messages).await.unwrap();
    ledger.end_batch(Position::new("end"), 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut confirmed = None;
    while confirmed.is_none() && tokio::time::Instant::now() < deadline {
        if sink.awaiting() {
            let _ = tokio::time::timeout_at(deadline, sink.ready()).await;
            sink.collect().await.unwrap();
        }
        let receipts: Vec<Receipt> = sink.receipts().collect();
        for r in receipts {
            assert!(ledger.apply(r).is_none());
        }
        confirmed = ledger.advance().position;
    }
    assert_eq!(
        confirmed.map(|p| p.as_str().to_owned()).as_deref(),
        Some("end")
    );
    let indexed = receiver.indexed();
    assert_eq!(indexed.len(), stems.len(), "exactly once");
    for (stem, envelope) in stems.iter().zip(&indexed) {
        let golden =
            std::fs::read_to_string(dir.join("splunk-json").join(format!("{stem}.txt"))).unwrap();
        let wire = receiver
            .log()
            .iter()
            .find(|r| r.path == "event" && r.body.contains(golden.trim_end()))
            .map(|r| r.path.clone());
        assert!(
            wire.is_some(),
            "{stem}: the event object is not byte for byte the golden one"
        );
        let event_type = envelope["event"]["type"].as_str().unwrap().to_lowercase();
        assert_eq!(
            envelope["sourcetype"],
            format!("lookout:mra:{event_type}"),
            "{stem}"
        );
        assert!(envelope["time"].is_f64(), "{stem}");
    }
    assert_eq!(receiver.acked_ids().len(), stems.len());
}

#[tokio::test]
async fn a_token_disabled_while_acknowledgements_are_pending_is_a_configuration_error() {
    let script = Script {
        acks: true,
        ack_delay: Duration::from_secs(10),
        ..Script::default()
    };
    let receiver = HecReceiver::start(script.clone()).await;
    let mut cfg = config(&receiver, &script.token);
    cfg.acknowledgements = true;
    let mut sink = hec_sink(cfg);
    let disable = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        receiver.script(|s| s.disabled = true);
    };
    let (run, ()) = tokio::join!(drive(&mut sink, 5, 5, Duration::from_secs(5)), disable);
    assert_eq!(run.error, Some(SinkErrorKind::Misconfigured));
    assert!(run.dead_letters.is_empty());
    assert_eq!(run.confirmed, None);
    let polls: Vec<_> = receiver
        .log()
        .into_iter()
        .filter(|r| r.path == "ack")
        .collect();
    assert_eq!(polls.last().map(|p| p.status), Some(403), "{polls:?}");
}

#[tokio::test]
async fn https_verifies_the_collector_with_ca_file_by_default() {
    let (receiver, pem) = HecReceiver::start_tls(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pem).unwrap();
    assert!(receiver.url().starts_with("https://127.0.0.1:"));

    // Verification on, the system store only: the self-signed collector is refused.
    let mut sink = hec_sink(config(&receiver, &Script::default().token));
    let run = drive(&mut sink, 3, 3, Duration::from_secs(5)).await;
    assert!(run.error.is_some() && run.confirmed.is_none());
    assert!(receiver.indexed().is_empty());

    // With ca_file it is trusted.
    let mut cfg = config(&receiver, &Script::default().token);
    cfg.tls.ca_file = Some(ca.clone());
    let run = drive(&mut hec_sink(cfg), 3, 3, Duration::from_secs(5)).await;
    assert_eq!(run.error, None);
    assert_eq!(run.confirmed.as_deref(), Some("2"));
    assert_exactly_once(&receiver.indexed_ids(), &ids(3), "indexed");

    // A ca_file without a certificate is reported when the sink is built.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let mut cfg = config(&receiver, &Script::default().token);
    cfg.tls.ca_file = Some(bad);
    let error = Sink::for_destination(
        &mrav2_syslog_connector::config::DestinationConfig::SplunkHec(cfg),
        "acme",
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert_eq!(error.kind(), SinkErrorKind::Tls);
    assert!(error.to_string().contains("ca_file"), "{error}");
}

#[tokio::test]
async fn tls_server_name_is_the_name_the_collectors_certificate_must_hold() {
    // A collector reached by address whose certificate names it collector.test only.
    let certified = rcgen::generate_simple_self_signed(vec!["collector.test".to_owned()]).unwrap();
    let tls = receiver::ServerTls {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
        client_ca_pem: None,
    };
    let receiver = HecReceiver::start_https(Script::default(), &tls).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.cert_pem).unwrap();
    let named = |name: &str| {
        let mut cfg = config(&receiver, &Script::default().token);
        cfg.tls.ca_file = Some(ca.clone());
        cfg.tls.server_name = name.into();
        cfg
    };

    // Without tls_server_name the URL's host is checked, and the certificate does not
    // hold it: refused, saying which setting to change.
    let run = drive(
        &mut hec_sink(named("127.0.0.1")),
        3,
        3,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(run.error, Some(SinkErrorKind::Tls), "{:?}", run.message);
    let message = run.message.unwrap_or_default();
    assert!(
        message.contains("does not match the name \"127.0.0.1\"")
            && message.contains("tls_server_name")
            && message.contains("collector.test"),
        "{message}"
    );
    assert!(receiver.indexed().is_empty() && run.confirmed.is_none());

    // Another name the certificate does not hold: refused too.
    let run = drive(
        &mut hec_sink(named("other.test")),
        3,
        3,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(run.error, Some(SinkErrorKind::Tls), "{:?}", run.message);
    assert!(receiver.indexed().is_empty());

    // tls_server_name = the certificate's name: delivered.
    let run = drive(
        &mut hec_sink(named("collector.test")),
        3,
        3,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(run.error, None, "{:?}", run.message);
    assert_eq!(run.confirmed.as_deref(), Some("2"));
    assert_exactly_once(&receiver.indexed_ids(), &ids(3), "indexed");

    // The name does not lift the other checks: a certificate no ca_file vouches for
    // is refused whatever the name.
    let mut cfg = named("collector.test");
    cfg.tls.ca_file = None;
    let run = drive(&mut hec_sink(cfg), 3, 3, Duration::from_secs(5)).await;
    assert_eq!(run.error, Some(SinkErrorKind::Tls), "{:?}", run.message);
    assert_exactly_once(&receiver.indexed_ids(), &ids(3), "indexed");
}

#[tokio::test]
async fn a_collector_requiring_a_client_certificate_gets_the_configured_one() {
    let dir = tempfile::tempdir().unwrap();
    let certs = crate::receiver::Certs::generate(dir.path());
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    let tls = receiver::ServerTls {
        cert_pem: read(&certs.server_cert),
        key_pem: read(&certs.server_key),
        client_ca_pem: Some(read(&certs.ca)),
    };
    let receiver = HecReceiver::start_https(Script::default(), &tls).await;
    let with_ca = || {
        let mut cfg = config(&receiver, &Script::default().token);
        cfg.tls.ca_file = Some(certs.ca.clone());
        cfg
    };

    // No client certificate: the collector ends the session; a TLS error that names
    // the keys to set, nothing dead-lettered, nothing delivered.
    let run = drive(&mut hec_sink(with_ca()), 3, 3, Duration::from_secs(5)).await;
    assert_eq!(run.error, Some(SinkErrorKind::Tls), "{:?}", run.message);
    let message = run.message.unwrap_or_default();
    assert!(
        message.contains("client certificate") && message.contains("cert_file and key_file"),
        "{message}"
    );
    assert!(run.dead_letters.is_empty() && run.confirmed.is_none());
    assert!(receiver.indexed().is_empty() && receiver.log().is_empty());

    // With cert_file and key_file: delivered.
    let mut cfg = with_ca();
    cfg.tls.client_auth = Some((certs.client_cert.clone(), certs.client_key.clone()));
    let run = drive(&mut hec_sink(cfg), 3, 3, Duration::from_secs(5)).await;
    assert_eq!(run.error, None, "{:?}", run.message);
    assert_eq!(run.confirmed.as_deref(), Some("2"));
    assert_exactly_once(&receiver.indexed_ids(), &ids(3), "indexed");
    assert!(run.dead_letters.is_empty());
}

#[tokio::test]
async fn the_token_is_a_secret_from_the_start_even_quoted_back() {
    let receiver = HecReceiver::start(Script::default()).await;
    let token = "0f6a2c1e-hec-token-quoted-back";
    let quoted = format!("proxy refused header Authorization: Splunk {token}");
    assert!(
        mrav2_syslog_connector::untrusted::clean(quoted.as_bytes(), 1000).contains(token),
        "the token is not known before the sink is built"
    );
    let _sink = hec_sink(config(&receiver, token));
    let shown = mrav2_syslog_connector::untrusted::clean(quoted.as_bytes(), 1000);
    assert!(!shown.contains(token), "{shown}");
}
