//! The RELP session against a real rsyslog with `imrelp` (`docs/receivers/relp.md`): every
//! record delivered once and answered 200, windows, a receiver killed with records
//! unanswered, TLS with a client certificate, a wrong CA, a port that does not speak
//! RELP, and what `imrelp` does with a record above its `maxDataSize`.

use crate::receiver::{Rsyslog, wait_for_lines, wait_until};
use mrav2_syslog_connector::config::{
    Format, Framing, HeaderFormat, HeaderTime, Protocol, SyslogConfig, TlsConfig,
};
use mrav2_syslog_connector::sink::SinkErrorKind;
use mrav2_syslog_connector::sink::relp::{Answer, RelpSession, Txnr};
use mrav2_syslog_connector::sink::transport::Connector;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

/// Generous: rsyslog shares two CPUs with other test runs.
const ARRIVAL: Duration = Duration::from_secs(15);
const CLOSE: Duration = Duration::from_secs(2);

fn relp_config(protocol: Protocol, port: u16) -> SyslogConfig {
    SyslogConfig {
        host: "127.0.0.1".into(),
        port,
        protocol,
        framing: Framing::Lf,
        format: Format::Leef { delimiter: '\t' },
        header: HeaderFormat::Rfc5424,
        facility: 1,
        app_name: "lookout-mra".into(),
        header_time: HeaderTime::Event,
        hostname: "lookout-mes".into(),
        custom_identifier: None,
        max_message_size: 65536,
        tls: TlsConfig {
            ca_file: None,
            client_auth: None,
            verify: true,
            server_name: "localhost".into(),
        },
        relp_window: 128,
        max_events_per_second: 0,
    }
}

fn tls_config(rsyslog: &Rsyslog, port: u16) -> SyslogConfig {
    let mut cfg = relp_config(Protocol::RelpTls, port);
    cfg.tls.ca_file = Some(rsyslog.certs.ca.clone());
    cfg
}

/// RFC 5424 records with TABs and non-ASCII text; `batch` makes them unique.
fn records(batch: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "<11>1 2026-11-05T08:12:44.318Z lookout-mes lookout-mra - THREAT - \
                 LEEF:2.0|Lookout|MRAv2 Client|2.0|THREAT|lookoutSSID=Café 東京\tbatch={batch}\tseq={i}"
            )
        })
        .collect()
}

async fn open(cfg: &SyslogConfig, window: usize) -> RelpSession {
    let connector = Connector::new(cfg).expect("valid sink configuration");
    RelpSession::open(&connector, window)
        .await
        .unwrap_or_else(|e| panic!("relp session opens: {e}"))
}

/// Sends `records`, then reads answers until every one is answered; returns all
/// answers in arrival order and the most records ever unanswered after a send.
async fn deliver(session: &mut RelpSession, records: &[String]) -> (Vec<(Txnr, Answer)>, usize) {
    let mut answers = Vec::new();
    let mut most = 0;
    let mut sent = Vec::new();
    for record in records {
        sent.push(session.send(record.as_bytes()).await.expect("send"));
        most = most.max(session.unanswered());
        answers.extend(session.take_answers());
    }
    session.flush().await.expect("flush");
    let deadline = Instant::now() + ARRIVAL;
    while session.unanswered() > 0 {
        tokio::time::timeout_at(deadline, session.read_answers())
            .await
            .expect("every record is answered in time")
            .expect("read answers");
        answers.extend(session.take_answers());
    }
    answers.extend(session.take_answers());
    let answered: Vec<Txnr> = answers.iter().map(|(t, _)| *t).collect();
    assert_eq!(answered, sent, "one answer per record, in order");
    (answers, most)
}

#[tokio::test]
async fn every_record_is_delivered_once_and_answered_200() {
    let rsyslog = Rsyslog::start_relp().await;
    let cfg = relp_config(Protocol::Relp, rsyslog.relp().plain);
    let mut session = open(&cfg, 128).await;
    let sent = records("once", 1000);
    let (answers, most) = deliver(&mut session, &sent).await;
    assert_eq!(answers.len(), 1000);
    assert!(answers.iter().all(|(_, a)| *a == Answer::Accepted));
    // `open` was transaction 1; the records follow it.
    assert_eq!(answers[0].0.get(), 2);
    assert_eq!(answers[999].0.get(), 1001);
    assert!(most <= 128, "the window holds: {most}");
    assert!(session.close(CLOSE).await.is_empty());

    let lines = wait_for_lines(&rsyslog.path("relp.log"), 1000, ARRIVAL).await;
    assert_eq!(lines, sent);
    // The close was clean: rsyslog did not complain about the session.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        wait_for_lines(&rsyslog.path("relp.log"), 1000, ARRIVAL)
            .await
            .len(),
        1000,
        "nothing twice"
    );
}

#[tokio::test]
async fn a_window_smaller_than_the_batch_delivers_everything() {
    let rsyslog = Rsyslog::start_relp().await;
    let cfg = relp_config(Protocol::Relp, rsyslog.relp().plain);
    let mut session = open(&cfg, 3).await;
    assert_eq!(session.window(), 3);
    let sent = records("window", 100);
    let (answers, most) = deliver(&mut session, &sent).await;
    assert_eq!(most, 3, "the window fills and never overflows");
    assert!(answers.iter().all(|(_, a)| *a == Answer::Accepted));
    session.close(CLOSE).await;
    let lines = wait_for_lines(&rsyslog.path("relp.log"), 100, ARRIVAL).await;
    assert_eq!(lines, sent);
}

#[tokio::test]
async fn a_killed_rsyslog_breaks_the_session_and_leaves_the_unanswered_records_known() {
    let mut rsyslog = Rsyslog::start_relp().await;
    let cfg = relp_config(Protocol::Relp, rsyslog.relp().plain);
    let log = rsyslog.path("relp.log");
    let mut session = open(&cfg, 128).await;
    let first = records("before", 10);
    deliver(&mut session, &first).await;
    // Answered records are in rsyslog's queue; wait until they are in the file, since
    // SIGKILL throws away rsyslog's own (in-memory) queue.
    wait_for_lines(&log, 10, ARRIVAL).await;

    // Frozen: the kernel takes the records, nobody answers. Then killed.
    rsyslog.pause().await;
    let lost = records("unanswered", 5);
    let mut txnrs = Vec::new();
    for record in &lost {
        txnrs.push(session.send(record.as_bytes()).await.expect("send"));
    }
    session.flush().await.expect("the kernel takes the bytes");
    assert_eq!(session.unanswered(), 5);
    rsyslog.kill();
    let error = tokio::time::timeout(ARRIVAL, session.read_answers())
        .await
        .expect("the break is seen at once")
        .expect_err("the session broke");
    assert_eq!(error.kind(), SinkErrorKind::PeerClosed, "{error}");
    let text = error.to_string();
    assert!(text.contains("5 records unanswered"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{} (relp)", cfg.port)),
        "{text}"
    );
    assert_eq!(session.unanswered_txnrs().collect::<Vec<_>>(), txnrs);
    assert!(session.is_broken());
    assert!(
        session.send(b"more").await.is_err(),
        "a broken session stays broken"
    );

    // The caller sends the unanswered records again on a new session.
    rsyslog.start_again().await;
    let mut session = open(&cfg, 128).await;
    let (answers, _) = deliver(&mut session, &lost).await;
    assert!(answers.iter().all(|(_, a)| *a == Answer::Accepted));
    session.close(CLOSE).await;
    let lines = wait_for_lines(&log, 15, ARRIVAL).await;
    let mut expected = first;
    expected.extend(lost);
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn an_idle_session_learns_that_rsyslog_restarted() {
    let mut rsyslog = Rsyslog::start_relp().await;
    let cfg = relp_config(Protocol::Relp, rsyslog.relp().plain);
    let mut session = open(&cfg, 128).await;
    deliver(&mut session, &records("idle", 3)).await;
    rsyslog.restart().await;
    let error = tokio::time::timeout(ARRIVAL, session.read_answers())
        .await
        .expect("an idle session sees the server go")
        .expect_err("the session ended");
    assert_eq!(error.kind(), SinkErrorKind::PeerClosed, "{error}");
    assert_eq!(session.unanswered(), 0);
    let mut session = open(&cfg, 128).await;
    deliver(&mut session, &records("again", 3)).await;
    session.close(CLOSE).await;
    wait_for_lines(&rsyslog.path("relp.log"), 6, ARRIVAL).await;
}

/// Opens a session or fails the test with rsyslog's own account of why not.
async fn open_or_explain(rsyslog: &Rsyslog, cfg: &SyslogConfig, what: &str) -> RelpSession {
    let connector = Connector::new(cfg).expect("valid sink configuration");
    match RelpSession::open(&connector, 16).await {
        Ok(session) => session,
        Err(e) => panic!("{what}: {e}\nrsyslog says:\n{}", rsyslog.own_messages()),
    }
}

/// Opens a session that must be refused; returns the error.
async fn refused(cfg: &SyslogConfig) -> mrav2_syslog_connector::sink::SinkError {
    let connector = Connector::new(cfg).expect("valid sink configuration");
    RelpSession::open(&connector, 16)
        .await
        .expect_err("the receiver refuses this client")
}

#[tokio::test]
async fn relp_over_tls_with_a_client_certificate() {
    let rsyslog = Rsyslog::start_relp().await;
    let relp = rsyslog.relp();

    let mut cfg = tls_config(&rsyslog, relp.mtls);
    cfg.tls.client_auth = Some((
        rsyslog.certs.client_cert.clone(),
        rsyslog.certs.client_key.clone(),
    ));
    let mut session = open_or_explain(&rsyslog, &cfg, "relp-tls with a client certificate").await;
    let sent = records("mtls", 40);
    let (answers, _) = deliver(&mut session, &sent).await;
    assert!(answers.iter().all(|(_, a)| *a == Answer::Accepted));
    session.close(CLOSE).await;
    assert_eq!(
        wait_for_lines(&rsyslog.path("relp-mtls.log"), 40, ARRIVAL).await,
        sent
    );

    // The same input without a client certificate: refused, and the message says why.
    let mut no_cert = cfg.clone();
    no_cert.tls.client_auth = None;
    let error = refused(&no_cert).await;
    let text = error.to_string();
    assert_eq!(error.kind(), SinkErrorKind::Tls, "{text}");
    assert!(text.contains("client certificate"), "{text}");
    assert!(text.contains("cert_file and key_file"), "{text}");

    // With imrelp's default TLS library (GnuTLS), an input without tls.authMode takes
    // nobody, not even a client with a valid certificate (docs/receivers/relp.md).
    let mut no_auth_mode = cfg.clone();
    no_auth_mode.port = relp.tls;
    let error = refused(&no_auth_mode).await;
    assert_eq!(error.kind(), SinkErrorKind::Tls, "{error}");
    assert!(
        rsyslog.own_messages().contains("authentication error"),
        "{}",
        rsyslog.own_messages()
    );
}

#[tokio::test]
async fn relp_over_tls_without_a_client_certificate_needs_imrelp_on_openssl() {
    let rsyslog = Rsyslog::start_relp_openssl().await;
    let relp = rsyslog.relp();
    // tls.tlslib="openssl" and no tls.authMode: a server certificate only.
    let cfg = tls_config(&rsyslog, relp.tls);
    let mut session =
        open_or_explain(&rsyslog, &cfg, "relp-tls without a client certificate").await;
    let sent = records("tls", 5);
    deliver(&mut session, &sent).await;
    session.close(CLOSE).await;
    assert_eq!(
        wait_for_lines(&rsyslog.path("relp-tls.log"), 5, ARRIVAL).await,
        sent
    );

    // tls.authMode="certvalid" still asks for a certificate there, and takes ours.
    let mut cfg = tls_config(&rsyslog, relp.mtls);
    let error = refused(&cfg).await;
    assert!(error.to_string().contains("client certificate"), "{error}");
    cfg.tls.client_auth = Some((
        rsyslog.certs.client_cert.clone(),
        rsyslog.certs.client_key.clone(),
    ));
    let mut session =
        open_or_explain(&rsyslog, &cfg, "relp-tls on openssl with a certificate").await;
    deliver(&mut session, &records("mtls", 3)).await;
    session.close(CLOSE).await;
    wait_for_lines(&rsyslog.path("relp-mtls.log"), 3, ARRIVAL).await;
}

#[tokio::test]
async fn relp_tls_refuses_a_server_certificate_from_another_ca() {
    let rsyslog = Rsyslog::start_relp().await;
    let mut cfg = tls_config(&rsyslog, rsyslog.relp().tls);
    cfg.tls.ca_file = Some(rsyslog.certs.other_ca.clone());
    let connector = Connector::new(&cfg).expect("valid");
    let error = RelpSession::open(&connector, 16)
        .await
        .expect_err("a server signed by another CA is refused");
    assert_eq!(error.kind(), SinkErrorKind::Tls, "{error}");
    let text = error.to_string();
    assert!(text.contains("not trusted"), "{text}");
    assert!(text.contains("ca_file"), "{text}");
    assert!(text.contains("(relp-tls)"), "{text}");
}

#[tokio::test]
async fn a_plain_syslog_port_is_reported_as_not_speaking_relp() {
    let rsyslog = Rsyslog::start_relp().await;
    let cfg = relp_config(Protocol::Relp, rsyslog.tcp_port);
    let connector = Connector::new(&cfg).expect("valid");
    let started = Instant::now();
    let error = RelpSession::open(&connector, 16)
        .await
        .expect_err("imtcp does not answer the relp open");
    assert!(started.elapsed() < Duration::from_secs(12));
    let text = error.to_string();
    assert!(text.contains("does not speak relp"), "{text}");
    assert!(
        text.contains(&format!(
            "check that port {} is a relp input",
            rsyslog.tcp_port
        )),
        "{text}"
    );
    assert_eq!(error.kind(), SinkErrorKind::Timeout, "{text}");
}

#[tokio::test]
async fn a_peer_that_answers_garbage_is_reported_as_not_speaking_relp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        socket
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let connector = Connector::new(&relp_config(Protocol::Relp, port)).expect("valid");
    let started = Instant::now();
    let error = RelpSession::open(&connector, 16)
        .await
        .expect_err("http is not relp");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "at once, not after a timeout"
    );
    let text = error.to_string();
    assert!(text.contains("does not speak relp"), "{text}");
    assert!(text.contains("HTTP/1.1 400"), "{text}");
    assert_eq!(error.kind(), SinkErrorKind::Connect);
    server.abort();
}

/// `imrelp` with its defaults (`maxDataSize` = rsyslog's `maxMessageSize`, 8096 bytes;
/// `oversizeMode="truncate"`) answers a larger record `200 OK` and keeps only its first
/// 8096 bytes: the sender cannot see the cut. docs/receivers/relp.md says so.
#[tokio::test]
async fn imrelp_answers_an_oversized_record_200_and_cuts_it_to_max_data_size() {
    let rsyslog = Rsyslog::start_relp().await;
    let cfg = relp_config(Protocol::Relp, rsyslog.relp().plain);
    let mut session = open(&cfg, 16).await;
    let mut big = records("big", 1).remove(0);
    big.push('\t');
    while big.len() < 10_000 {
        big.push_str("x0123456789");
    }
    let small = records("after", 1);
    let (answers, _) = deliver(&mut session, &[big.clone(), small[0].clone()]).await;
    assert_eq!(answers[0].1, Answer::Accepted, "the cut is not reported");
    assert_eq!(answers[1].1, Answer::Accepted);
    session.close(CLOSE).await;
    let lines = wait_for_lines(&rsyslog.path("relp.log"), 2, ARRIVAL).await;
    assert_eq!(lines[0].len(), 8096, "cut to imrelp's default maxDataSize");
    assert_eq!(lines[0], big[..8096]);
    assert_eq!(lines[1], small[0], "the session goes on");
    // Only rsyslog's own log tells.
    wait_until("rsyslog logs the cut", ARRIVAL, || {
        rsyslog.own_messages().contains("frame too long")
    })
    .await;
}
