//! The syslog sink against a real rsyslog
//! (`docs/receivers/rsyslog.md#rsyslog-in-the-test-suite`) and against raw listeners that
//! keep the exact bytes (`tests/KNOWN-FAILURES.md` items 7, 27–30).

use crate::receiver::{RawTcpListener, RawUdpListener, Rsyslog, wait_for_lines, wait_until};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use mrav2_syslog_connector::config::{
    Format, Framing, HeaderFormat, HeaderTime, Protocol, SyslogConfig, TlsConfig,
};
use mrav2_syslog_connector::format::RenderedMessage;
use mrav2_syslog_connector::sink::syslog::RecordWriter;
use mrav2_syslog_connector::sink::{SendReport, Sink, SinkError, SinkErrorKind};
use mrav2_syslog_connector::tenant::ledger::Ledger;
use std::path::PathBuf;
use std::time::Duration;

/// Generous: rsyslog shares two CPUs with other test runs.
const ARRIVAL: Duration = Duration::from_secs(15);

fn syslog_config(protocol: Protocol, port: u16, framing: Framing) -> SyslogConfig {
    SyslogConfig {
        host: "127.0.0.1".into(),
        port,
        protocol,
        framing,
        format: Format::Leef { delimiter: '\t' },
        header: HeaderFormat::Rfc3164,
        facility: 1,
        app_name: "lookout-mra".into(),
        header_time: HeaderTime::Event,
        hostname: "lookout-mes".into(),
        custom_identifier: None,
        max_message_size: 65536,
        relp_window: 128,
        max_events_per_second: 0,
        tls: TlsConfig {
            ca_file: None,
            client_auth: None,
            verify: true,
            server_name: "localhost".into(),
        },
    }
}

fn tls_config(rsyslog: &Rsyslog, port: u16, framing: Framing) -> SyslogConfig {
    let mut cfg = syslog_config(Protocol::Tls, port, framing);
    cfg.tls.ca_file = Some(rsyslog.certs.ca.clone());
    cfg
}

/// LEEF-like messages with TABs and non-ASCII text; `batch` makes them unique.
fn messages(batch: &str, n: usize) -> Vec<RenderedMessage> {
    let base: DateTime<Utc> = "2026-11-05T08:12:44.318Z".parse().expect("valid time");
    (0..n)
        .map(|i| RenderedMessage {
            text: format!(
                "LEEF:2.0|Lookout|MRAv2 Client|2.0|THREAT,ROGUE_WIFI|cat=ROGUE_WIFI\t\
                 lookoutSSID=Café Wi‑Fi 東京\tproxyConfig=C:\\\\corp\\\\*\tbatch={batch}\tseq={i}"
            ),
            severity: [3, 4, 5, 6][i % 4],
            event_time: Some((base + ChronoDuration::seconds(i as i64)).fixed_offset()),
            msgid: Some("THREAT".into()),
            event_id: Some(format!("{batch}-{i}")),
            altered: false,
        })
        .collect()
}

/// The records (header + message, no framing) the sink should produce.
fn records(cfg: &SyslogConfig, msgs: &[RenderedMessage]) -> Vec<String> {
    let writer = RecordWriter::new(cfg);
    msgs.iter()
        .map(|m| {
            let mut out = Vec::new();
            writer.write_record(m, Utc::now(), &mut out);
            String::from_utf8(out).expect("records are UTF-8")
        })
        .collect()
}

async fn sink(cfg: &SyslogConfig) -> Tested {
    Tested {
        sink: Sink::new(cfg, "acme", COMMIT_INTERVAL).expect("sink configuration is valid"),
        ledger: Ledger::new(None),
    }
}

/// The commit interval the sinks are built for (it sets the settle time of TCP/TLS).
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// A sink with a ledger of its own, so that a test can send pieces without a tenant.
struct Tested {
    sink: Sink,
    ledger: Ledger,
}

impl Tested {
    async fn send(&mut self, msgs: &[RenderedMessage]) -> Result<SendReport, SinkError> {
        let ticket = self.ledger.issue(msgs.len() as u64, None);
        self.sink.send(ticket, msgs).await
    }

    async fn close(&mut self) {
        self.sink.close().await
    }

    fn is_connected(&self) -> bool {
        self.sink.is_connected()
    }
}

#[tokio::test]
async fn udp_records_arrive_intact() {
    let rsyslog = Rsyslog::start().await;
    let mut cfg = syslog_config(Protocol::Udp, rsyslog.udp_port, Framing::Lf);
    cfg.header = HeaderFormat::Rfc5424;
    cfg.max_message_size = 8192;
    let msgs = messages("udp", 20);
    let report = sink(&cfg).await.send(&msgs).await.expect("udp send");
    assert_eq!((report.records, report.truncated), (20, 0));

    let lines = wait_for_lines(&rsyslog.path("udp.log"), 20, ARRIVAL).await;
    assert_eq!(lines, records(&cfg, &msgs));
    assert!(lines[0].starts_with(
        "<11>1 2026-11-05T08:12:44.318Z lookout-mes lookout-mra - THREAT - LEEF:2.0|"
    ));
}

#[tokio::test]
async fn tcp_lf_records_arrive_split_correctly() {
    let rsyslog = Rsyslog::start().await;
    let cfg = syslog_config(Protocol::Tcp, rsyslog.tcp_port, Framing::Lf);
    let mut sink = sink(&cfg).await;
    let mut expected = Vec::new();
    for batch in ["a", "b", "c"] {
        let msgs = messages(batch, 30);
        let report = sink.send(&msgs).await.expect("tcp send");
        assert_eq!(report.records, 30);
        expected.extend(records(&cfg, &msgs));
    }
    sink.close().await;

    let lines = wait_for_lines(&rsyslog.path("tcp.log"), 90, ARRIVAL).await;
    assert_eq!(lines, expected);
    assert!(lines[1].contains("\tlookoutSSID=Café Wi‑Fi 東京\t"));
}

#[tokio::test]
async fn tcp_octet_counted_records_arrive_split_correctly() {
    let rsyslog = Rsyslog::start().await;
    let mut cfg = syslog_config(Protocol::Tcp, rsyslog.tcp_port, Framing::OctetCounting);
    cfg.app_name = String::new();
    let mut msgs = messages("octets", 25);
    // Octet counting carries an LF inside a record; LF framing would split it in two.
    msgs[7].text.push_str("\nsecond line of record 7");
    let report = sink(&cfg).await.send(&msgs).await.expect("tcp send");
    assert_eq!(report.records, 25);

    let expected = records(&cfg, &msgs);
    // tcp.log writes each record followed by LF, so the embedded LF adds a line.
    wait_for_lines(&rsyslog.path("tcp.log"), 26, ARRIVAL).await;
    assert_eq!(rsyslog.read("tcp.log"), expected.join("\n") + "\n");
    // app_name = "" gives the Python connector's layout: no TAG, no colon.
    assert!(
        expected[0].contains(" lookout-mes LEEF:2.0|"),
        "{}",
        expected[0]
    );

    // all.jsonl keeps record boundaries: record 7 arrived as one message.
    let all: Vec<serde_json::Value> = rsyslog
        .read("all.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("all.jsonl lines are JSON"))
        .collect();
    assert_eq!(all.len(), 25);
    assert_eq!(all[7]["msg"].as_str(), Some(expected[7].as_str()));
    assert_eq!(all[7]["input"].as_str(), Some("tcp"));
}

#[tokio::test]
async fn tls_octet_counting_and_lf_arrive_and_close_cleanly() {
    let rsyslog = Rsyslog::start().await;
    let mut expected = Vec::new();
    let mut total = 0;
    for framing in [Framing::OctetCounting, Framing::Lf] {
        let mut cfg = tls_config(&rsyslog, rsyslog.tls_port, framing);
        cfg.header = HeaderFormat::Rfc5424;
        let mut sink = sink(&cfg).await;
        for batch in 0..3 {
            let msgs = messages(&format!("{framing:?}-{batch}"), 10);
            sink.send(&msgs).await.expect("tls send");
            expected.extend(records(&cfg, &msgs));
        }
        sink.close().await;
        total += 30;
        // Each sink's records are in before the next connects, so the order is known.
        wait_for_lines(&rsyslog.path("tls.log"), total, ARRIVAL).await;
    }
    let lines = wait_for_lines(&rsyslog.path("tls.log"), 60, ARRIVAL).await;
    assert_eq!(lines, expected);

    // Closing sent close_notify: rsyslog complains about every session ended without.
    let complaints = rsyslog.own_messages();
    assert!(
        !complaints.contains("non-properly terminated"),
        "rsyslog saw a tls session end without close_notify:\n{complaints}"
    );

    // The check above can fail: a sink dropped without close() ends its session
    // without close_notify, and rsyslog says so.
    let cfg = tls_config(&rsyslog, rsyslog.tls_port, Framing::OctetCounting);
    let mut rude = sink(&cfg).await;
    rude.send(&messages("rude", 1)).await.expect("tls send");
    drop(rude);
    wait_until(
        "rsyslog reports the session ended without close_notify",
        ARRIVAL,
        || rsyslog.own_messages().contains("non-properly terminated"),
    )
    .await;
}

#[tokio::test]
async fn mutual_tls_delivers_with_a_client_certificate_and_is_refused_without() {
    let rsyslog = Rsyslog::start().await;
    let mut cfg = tls_config(&rsyslog, rsyslog.mtls_port, Framing::OctetCounting);
    cfg.tls.client_auth = Some((
        rsyslog.certs.client_cert.clone(),
        rsyslog.certs.client_key.clone(),
    ));
    let mut with_cert = sink(&cfg).await;
    let first = messages("mtls-1", 10);
    with_cert.send(&first).await.expect("mutual tls send");
    wait_for_lines(&rsyslog.path("mtls.log"), 10, ARRIVAL).await;

    // Without a certificate: the handshake completes on the client's side (TLS 1.3),
    // then rsyslog refuses. The sink must notice and report it, not count it delivered.
    let mut no_cert_cfg = cfg.clone();
    no_cert_cfg.tls.client_auth = None;
    let mut no_cert = sink(&no_cert_cfg).await;
    let deadline = tokio::time::Instant::now() + ARRIVAL;
    let error = loop {
        match no_cert.send(&messages("refused", 3)).await {
            Err(e) => break e,
            Ok(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "a client without a certificate was never refused"
            ),
        }
    };
    assert!(
        matches!(error.kind(), SinkErrorKind::Tls | SinkErrorKind::PeerClosed),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{}", rsyslog.mtls_port)),
        "{text}"
    );
    assert!(text.contains("refused"), "{text}");

    // The authenticated client still works, and nothing of the refused one got in.
    let second = messages("mtls-2", 5);
    with_cert.send(&second).await.expect("mutual tls send");
    with_cert.close().await;
    let lines = wait_for_lines(&rsyslog.path("mtls.log"), 15, ARRIVAL).await;
    let mut expected = records(&cfg, &first);
    expected.extend(records(&cfg, &second));
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn tls_refuses_an_untrusted_ca_and_a_wrong_name() {
    let rsyslog = Rsyslog::start().await;

    let mut cfg = tls_config(&rsyslog, rsyslog.tls_port, Framing::OctetCounting);
    cfg.tls.ca_file = Some(rsyslog.certs.other_ca.clone());
    let error = sink(&cfg)
        .await
        .send(&messages("wrong-ca", 1))
        .await
        .expect_err("a server signed by another CA is refused");
    assert_eq!(error.kind(), SinkErrorKind::Tls, "{error}");
    let text = error.to_string();
    assert!(text.contains("not trusted"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{}", rsyslog.tls_port)),
        "{text}"
    );
    assert!(text.contains("ca_file"), "{text}");

    let mut cfg = tls_config(&rsyslog, rsyslog.tls_port, Framing::OctetCounting);
    cfg.tls.server_name = "wrong.example".into();
    let error = sink(&cfg)
        .await
        .send(&messages("wrong-name", 1))
        .await
        .expect_err("a certificate for another name is refused");
    assert_eq!(error.kind(), SinkErrorKind::Tls, "{error}");
    let text = error.to_string();
    assert!(text.contains("does not match"), "{text}");
    assert!(text.contains("wrong.example"), "{text}");

    // tls_verify = false accepts both, and the records arrive.
    cfg.tls.verify = false;
    cfg.tls.ca_file = Some(rsyslog.certs.other_ca.clone());
    let mut unverified = sink(&cfg).await;
    let msgs = messages("unverified", 2);
    unverified.send(&msgs).await.expect("unverified tls send");
    unverified.close().await;
    let lines = wait_for_lines(&rsyslog.path("tls.log"), 2, ARRIVAL).await;
    assert_eq!(lines, records(&cfg, &msgs));
}

#[tokio::test]
async fn a_restarted_rsyslog_is_noticed_and_nothing_is_lost() {
    let mut rsyslog = Rsyslog::start().await;
    for (cfg, log) in [
        (
            syslog_config(Protocol::Tcp, rsyslog.tcp_port, Framing::Lf),
            "tcp.log",
        ),
        (
            tls_config(&rsyslog, rsyslog.tls_port, Framing::OctetCounting),
            "tls.log",
        ),
    ] {
        let file = rsyslog.path(log);
        let mut sink = sink(&cfg).await;
        let mut expected = Vec::new();

        let a = messages(&format!("{log}-a"), 10);
        sink.send(&a).await.expect("first batch");
        expected.extend(records(&cfg, &a));
        wait_for_lines(&file, expected.len(), ARRIVAL).await;

        // Receiver down: the send fails (the read side sees the close, the reconnect is
        // refused); the caller keeps the batch.
        rsyslog.stop().await;
        let b = messages(&format!("{log}-b"), 10);
        let error = sink.send(&b).await.expect_err("nothing listens");
        assert_eq!(error.kind(), SinkErrorKind::Connect, "{error}");
        assert!(!sink.is_connected());

        // Back up: the same batch goes out on a new connection.
        rsyslog.start_again().await;
        sink.send(&b).await.expect("batch b after the restart");
        expected.extend(records(&cfg, &b));
        wait_for_lines(&file, expected.len(), ARRIVAL).await;

        // Restarted while the sink is idle: the next send notices by reading and
        // reconnects before writing, so no batch fails and none is lost.
        rsyslog.restart().await;
        let c = messages(&format!("{log}-c"), 10);
        sink.send(&c).await.expect("batch c after an idle restart");
        expected.extend(records(&cfg, &c));
        sink.close().await;

        let lines = wait_for_lines(&file, expected.len(), ARRIVAL).await;
        assert_eq!(lines, expected, "{log}");
    }
}

#[tokio::test]
async fn one_connection_carries_a_thousand_batches_in_exact_lf_frames() {
    let listener = RawTcpListener::start().await;
    let cfg = syslog_config(Protocol::Tcp, listener.port(), Framing::Lf);
    let mut sink = sink(&cfg).await;
    let mut expected = Vec::new();
    for i in 0..1000 {
        let msgs = messages(&format!("b{i}"), 1);
        let report = sink.send(&msgs).await.expect("send");
        assert_eq!(report.records, 1);
        for record in records(&cfg, &msgs) {
            assert_eq!(report.bytes, record.len() + 1);
            expected.extend_from_slice(record.as_bytes());
            expected.push(b'\n');
        }
    }
    sink.close().await;
    let received = listener.wait_for_bytes(expected.len(), ARRIVAL).await;
    assert_eq!(listener.accepts(), 1, "one long-lived connection");
    assert!(!received.contains(&0), "no NUL byte");
    assert_eq!(received.len(), expected.len());
    assert!(received == expected, "exactly `record\\n` per record");
}

#[tokio::test]
async fn octet_counted_frames_are_exact() {
    let listener = RawTcpListener::start().await;
    let cfg = syslog_config(Protocol::Tcp, listener.port(), Framing::OctetCounting);
    let mut sink = sink(&cfg).await;
    let mut expected = Vec::new();
    for i in 0..20 {
        let msgs = messages(&format!("o{i}"), 3);
        sink.send(&msgs).await.expect("send");
        for record in records(&cfg, &msgs) {
            expected.extend_from_slice(format!("{} {record}", record.len()).as_bytes());
        }
    }
    sink.close().await;
    let received = listener.wait_for_bytes(expected.len(), ARRIVAL).await;
    assert!(!received.contains(&0), "no NUL byte");
    assert!(received == expected, "exactly `LEN SP record` per record");
    assert_eq!(listener.accepts(), 1);

    // Parse it back as a receiver would: every count is the byte length.
    let mut rest = &received[..];
    let mut frames = 0;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .expect("count then space");
        assert_ne!(rest[0], b'0', "no leading zero");
        let len: usize = std::str::from_utf8(&rest[..sp])
            .expect("ASCII digits")
            .parse()
            .expect("a number");
        let record = &rest[sp + 1..sp + 1 + len];
        assert!(record.starts_with(b"<"), "a frame is a whole record");
        rest = &rest[sp + 1 + len..];
        frames += 1;
    }
    assert_eq!(frames, 60);
}

#[tokio::test]
async fn a_connection_closed_between_batches_is_replaced_before_writing() {
    let listener = RawTcpListener::start().await;
    let cfg = syslog_config(Protocol::Tcp, listener.port(), Framing::Lf);
    let mut sink = sink(&cfg).await;
    let first = messages("before", 2);
    sink.send(&first).await.expect("first batch");
    let mut expected: Vec<u8> = records(&cfg, &first)
        .iter()
        .flat_map(|r| format!("{r}\n").into_bytes())
        .collect();
    listener.wait_for_bytes(expected.len(), ARRIVAL).await;

    listener.close_connections().await;
    let second = messages("after", 2);
    sink.send(&second)
        .await
        .expect("the closed connection is noticed and replaced");
    expected.extend(
        records(&cfg, &second)
            .iter()
            .flat_map(|r| format!("{r}\n").into_bytes()),
    );
    let received = listener.wait_for_bytes(expected.len(), ARRIVAL).await;
    assert_eq!(listener.accepts(), 2);
    assert!(received == expected, "nothing lost, nothing doubled");
    sink.close().await;
}

#[tokio::test]
async fn an_oversized_udp_record_is_truncated_into_one_valid_datagram() {
    let listener = RawUdpListener::start().await;
    let mut cfg = syslog_config(Protocol::Udp, listener.port(), Framing::Lf);
    cfg.max_message_size = 1024;
    let mut msgs = messages("huge", 1);
    // 200 KiB of one-, two-, three- and four-byte characters and backslashes.
    while msgs[0].text.len() < 200 * 1024 {
        msgs[0].text.push_str("aé東\u{1F600}\\");
    }
    let report = sink(&cfg).await.send(&msgs).await.expect("udp send");
    assert_eq!((report.records, report.truncated), (1, 1));
    assert!(report.bytes <= 1024);

    let datagrams = listener.wait_for_datagrams(1, ARRIVAL).await;
    assert_eq!(datagrams.len(), 1);
    let datagram = &datagrams[0];
    assert!(datagram.len() <= 1024, "{} bytes", datagram.len());
    assert!(
        datagram.len() >= 1020,
        "cut at most one character and one backslash short"
    );
    let text = std::str::from_utf8(datagram).expect("valid UTF-8");
    assert!(text.starts_with("<11>"));
    let trailing = text.bytes().rev().take_while(|&b| b == b'\\').count();
    assert_eq!(trailing % 2, 0, "no half escape at the end");
    assert!(!datagram.contains(&0));
}

#[tokio::test]
async fn a_bad_ca_file_is_reported_when_the_sink_is_created() {
    let mut cfg = syslog_config(Protocol::Tls, 6514, Framing::OctetCounting);
    cfg.tls.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
    let error = Sink::new(&cfg, "acme", COMMIT_INTERVAL).expect_err("missing CA file");
    assert_eq!(error.kind(), SinkErrorKind::Tls);
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    assert!(error.to_string().contains("ca_file"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_stops_reading_makes_the_write_time_out() {
    // Accepted by the kernel, never read: the buffers fill and the write blocks.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let cfg = syslog_config(Protocol::Tcp, port, Framing::Lf);
    let mut msgs = messages("stuck", 512);
    for m in &mut msgs {
        m.text.push_str(&"x".repeat(60_000));
    }
    let mut sink = sink(&cfg).await;
    let started = tokio::time::Instant::now();
    let error = sink.send(&msgs).await.expect_err("nobody reads 30 MB");
    assert_eq!(error.kind(), SinkErrorKind::Timeout, "{error}");
    assert!(
        error.to_string().contains("write timed out after 30s"),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert!(
        !sink.is_connected(),
        "a timed-out connection counts as broken"
    );
    drop(listener);
}

#[tokio::test]
async fn a_datagram_too_large_for_udp_is_counted_not_silently_lost() {
    let listener = RawUdpListener::start().await;
    let mut cfg = syslog_config(Protocol::Udp, listener.port(), Framing::Lf);
    // Beyond the largest IPv4 UDP payload (configuration refuses this; the sink must
    // still not lose the record silently if the kernel refuses a datagram).
    cfg.max_message_size = 70_000;
    let mut msgs = messages("emsgsize", 2);
    msgs[0].text.push_str(&"x".repeat(69_000));
    let report = sink(&cfg)
        .await
        .send(&msgs)
        .await
        .expect("the batch goes on");
    assert_eq!((report.records, report.oversized), (1, 1));
    let datagrams = listener.wait_for_datagrams(1, ARRIVAL).await;
    assert_eq!(
        datagrams,
        vec![records(&cfg, &msgs[1..])[0].clone().into_bytes()]
    );
}
