//! The event source against a scripted MRA v2 server: request shape, tokens, every fault of
//! `docs/event-stream.md#outcomes-and-reactions`, wire styles, de-duplication, cancellation
//! and probe.
//!
//! All waits run on the real clock with shortened backoff constants ([`stub::fast`]);
//! nothing sleeps a fixed time: tests read until the expected events arrived or poll
//! with a deadline.

pub mod stub;

mod sim;

use mrav2_syslog_connector::backoff::Delay;
use mrav2_syslog_connector::config::{ProxyConfig, Secret};
use mrav2_syslog_connector::event::Position;
use mrav2_syslog_connector::source::oauth::{TokenError, TokenSource};
use mrav2_syslog_connector::source::{EventSource, StartPoint, probe};
use std::time::Duration;
use stub::{Fault, Plan, Stub, TokenFault, Wire, collect, eventually, fast, tenant};
use tokio_util::sync::CancellationToken;

fn source_for(stub: &Stub, start: StartPoint) -> EventSource {
    source_with(stub, start, |_| {})
}

fn source_with(
    stub: &Stub,
    start: StartPoint,
    edit: impl FnOnce(&mut mrav2_syslog_connector::config::TenantConfig),
) -> EventSource {
    let mut t = tenant(&stub.url());
    edit(&mut t);
    EventSource::new(
        &t,
        &ProxyConfig::Explicit(no_proxy_at_all()),
        start,
        CancellationToken::new(),
    )
    .unwrap()
    .with_policy(fast())
    .with_seed(1)
}

/// An explicit proxy that every loopback host bypasses: keeps a developer's
/// `HTTP_PROXY` from interfering with tests that talk to the stub directly.
fn no_proxy_at_all() -> mrav2_syslog_connector::config::Proxy {
    mrav2_syslog_connector::config::Proxy {
        address: url::Url::parse("http://127.0.0.1:9").unwrap(),
        username: None,
        password: None,
        no_proxy: vec!["127.0.0.1".into(), "localhost".into()],
    }
}

fn all(stub: &Stub) -> Vec<String> {
    stub.plan().ids.clone()
}

// ---------------------------------------------------------------------------------
// Request shape (known-failures 17, 18, 34)

#[tokio::test]
async fn requests_carry_the_documented_query_and_headers() {
    let stub = Stub::start(Plan::new(6, 3)).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    assert_eq!(collect(&mut s, 6).await, all(&stub));

    let tokens = stub.token_requests();
    assert_eq!(tokens.len(), 1);
    let t = &tokens[0];
    assert_eq!(
        t.header("authorization"),
        Some(format!("Bearer {}", stub::KEY).as_str())
    );
    assert_eq!(t.header("accept"), Some("application/json"));
    assert_eq!(
        t.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        t.header("user-agent"),
        Some(mrav2_syslog_connector::USER_AGENT)
    );
    assert_eq!(t.body, "grant_type=client_credentials");

    let streams = stub.streams();
    assert_eq!(streams.len(), 1);
    let r = &streams[0];
    assert_eq!(r.keys(), ["types", "id"]);
    assert_eq!(r.param("id"), Some("0"));
    assert!(
        r.raw_query.starts_with("types=THREAT%2CDEVICE&"),
        "{}",
        r.raw_query
    );
    assert_eq!(r.header("accept"), Some("text/event-stream"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("authorization"), Some("Bearer tok-1"));
    assert_eq!(
        r.header("user-agent"),
        Some(concat!(
            "mrav2-syslog-connector/",
            env!("CARGO_PKG_VERSION")
        ))
    );
    assert_eq!(
        r.header_count("last-event-id"),
        0,
        "no position, no Last-Event-ID"
    );
    assert_eq!(
        r.header("accept-encoding"),
        None,
        "no compression advertised"
    );
}

#[tokio::test]
async fn a_known_position_is_sent_as_id_and_last_event_id() {
    let stub = Stub::start(Plan::new(9, 3)).await;
    let from = Position::new(stub.plan().batch_end(1)).unwrap();
    let mut s = source_for(&stub, StartPoint::Position(from.clone()));
    assert_eq!(collect(&mut s, 6).await, all(&stub)[3..]);
    let r = &stub.streams()[0];
    assert_eq!(r.keys(), ["types", "id"]);
    assert_eq!(r.param("id"), Some(from.as_str()));
    assert_eq!(r.header("last-event-id"), Some(from.as_str()));
    assert_eq!(r.header_count("last-event-id"), 1);
}

#[tokio::test]
async fn start_time_is_kept_after_an_early_503_and_dropped_after_the_first_batch() {
    // known-failures 17: request 1 answers 503, request 2 must still replay history.
    let plan = Plan::new(6, 3)
        .fault(1, Fault::status(503))
        .fault(2, Fault::Drop { after: 1 });
    let stub = Stub::start(plan).await;
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-20T08:09:10.750+01:00")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut s = source_for(&stub, StartPoint::StartTime(t));
    assert_eq!(collect(&mut s, 6).await, all(&stub));
    let streams = stub.streams();
    assert_eq!(streams.len(), 3);
    for r in &streams[..2] {
        assert_eq!(r.keys(), ["types", "start_time"]);
        assert_eq!(r.param("start_time"), Some("2026-11-20T07:09:10+00:00"));
        assert!(
            r.raw_query
                .contains("start_time=2026-11-20T07%3A09%3A10%2B00%3A00")
        );
        assert_eq!(r.header_count("last-event-id"), 0);
    }
    // After the first batch the received position takes over.
    assert_eq!(streams[2].keys(), ["types", "id"]);
    assert_eq!(streams[2].param("id"), Some(stub.plan().batch_end(1)));
}

// ---------------------------------------------------------------------------------
// Tokens (known-failures 31)

#[tokio::test]
async fn the_token_is_cached_across_reconnects() {
    let plan = Plan::new(9, 3)
        .fault(1, Fault::Drop { after: 1 })
        .fault(2, Fault::Drop { after: 1 });
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    assert_eq!(collect(&mut s, 9).await, all(&stub));
    assert_eq!(stub.streams().len(), 3);
    assert_eq!(stub.token_requests().len(), 1);
    assert_eq!(s.status().snapshot().token_fetches, 1);
    for r in stub.streams() {
        assert_eq!(r.header("authorization"), Some("Bearer tok-1"));
    }
}

#[tokio::test]
async fn an_expired_token_mid_stream_costs_exactly_one_token_request() {
    let plan = Plan::new(9, 3)
        .fault(1, Fault::Drop { after: 2 })
        .fault(2, Fault::ExpireTokens);
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    assert_eq!(collect(&mut s, 9).await, all(&stub));
    let streams = stub.streams();
    assert_eq!(streams.len(), 3);
    assert_eq!(stub.token_requests().len(), 2);
    assert_eq!(streams[2].header("authorization"), Some("Bearer tok-2"));
    assert_eq!(streams[1].param("id"), Some(stub.plan().batch_end(2)));
    assert_eq!(streams[2].param("id"), Some(stub.plan().batch_end(2)));
    // The immediate retry is not a backoff: no failure was counted as unhealthy.
    assert_eq!(s.status().snapshot().reconnects.get("status_401"), Some(&1));
}

#[tokio::test]
async fn a_second_401_backs_off_and_fetches_a_fresh_token_each_time() {
    let plan = Plan::new(3, 3)
        .fault(1, Fault::status(401))
        .fault(2, Fault::status(401))
        .fault(3, Fault::status(401));
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    assert_eq!(collect(&mut s, 3).await, all(&stub));
    // 1: 401 → new token at once → 2: 401 → backoff → new token → 3: 401 → backoff …
    assert_eq!(stub.streams().len(), 4);
    assert_eq!(stub.token_requests().len(), 4);
    let auths: Vec<_> = stub
        .streams()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_string())
        .collect();
    assert_eq!(
        auths,
        [
            "Bearer tok-1",
            "Bearer tok-2",
            "Bearer tok-3",
            "Bearer tok-4"
        ]
    );
    assert_eq!(s.status().snapshot().reconnects.get("status_401"), Some(&3));
}

#[tokio::test]
async fn token_source_caches_and_falls_back_to_expires_at() {
    let mut plan = Plan::new(1, 1);
    plan.expires_in = None;
    plan.expires_at_in_ms = Some(3_600_000);
    let stub = Stub::start(plan).await;
    let mut tokens = TokenSource::new(
        reqwest::Client::new(),
        &url::Url::parse(&stub.url()).unwrap(),
        Secret::new(stub::KEY),
        "acme",
    );
    let a = tokens.token().await.unwrap();
    let b = tokens.token().await.unwrap();
    assert_eq!(a.expose(), "tok-1");
    assert_eq!(b.expose(), "tok-1");
    assert_eq!(tokens.fetches(), 1);
    tokens.invalidate();
    assert_eq!(tokens.token().await.unwrap().expose(), "tok-2");

    // An expires_at in the past: the token is already stale, so every call fetches.
    let mut plan = Plan::new(1, 1);
    plan.expires_in = None;
    plan.expires_at_in_ms = Some(-1000);
    let stub = Stub::start(plan).await;
    let mut tokens = TokenSource::new(
        reqwest::Client::new(),
        &url::Url::parse(&stub.url()).unwrap(),
        Secret::new(stub::KEY),
        "acme",
    );
    tokens.token().await.unwrap();
    tokens.token().await.unwrap();
    assert_eq!(tokens.fetches(), 2);
}

#[tokio::test]
async fn a_rejected_key_names_the_fix_and_never_the_key() {
    let plan = Plan::new(1, 1).token_fault(
        1,
        TokenFault::Status {
            status: 400,
            body: r#"{"error":"invalid_client","error_description":"key expired"}"#.into(),
        },
    );
    let stub = Stub::start(plan).await;
    let mut tokens = TokenSource::new(
        reqwest::Client::new(),
        &url::Url::parse(&stub.url()).unwrap(),
        Secret::new(stub::KEY),
        "acme",
    );
    let err = tokens.token().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, TokenError::KeyRejected { .. }), "{err:?}");
    assert!(
        text.starts_with(
            "application key rejected for tenant acme: renew it in the Lookout console (keys expire after one year)"
        ),
        "{text}"
    );
    assert!(
        text.contains("invalid_client") && text.contains("key expired"),
        "{text}"
    );
    assert!(!text.contains(stub::KEY) && !format!("{err:?}").contains(stub::KEY));
    assert_eq!(err.delay(&fast()), Delay::Long);

    // Through the source: unhealthy, then the long backoff, then it recovers.
    let plan = Plan::new(3, 3).token_fault(
        1,
        TokenFault::Status {
            status: 401,
            body: r#"{"error":"unauthorized_client"}"#.into(),
        },
    );
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    let status = s.status();
    assert_eq!(collect(&mut s, 3).await, all(&stub));
    let snap = status.snapshot();
    assert_eq!(snap.reconnects.get("key_rejected"), Some(&1));
    assert!(
        snap.last_error
            .unwrap()
            .contains("renew it in the Lookout console")
    );
    assert!(snap.healthy, "healthy again after a batch");
    let tokens = stub.token_requests();
    assert!(tokens[1].at - tokens[0].at >= fast().long / 2);
}

#[tokio::test]
async fn a_garbage_token_body_or_a_500_is_retried_with_normal_backoff() {
    let plan = Plan::new(3, 3)
        .token_fault(1, TokenFault::Body("<html>not json</html>".into()))
        .token_fault(2, TokenFault::Body(r#"{"token_type":"Bearer"}"#.into()))
        .token_fault(
            3,
            TokenFault::Status {
                status: 500,
                body: "oops".into(),
            },
        );
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    let status = s.status();
    assert_eq!(collect(&mut s, 3).await, all(&stub));
    let snap = status.snapshot();
    assert_eq!(snap.reconnects.get("token_bad_body"), Some(&2));
    assert_eq!(snap.reconnects.get("token_unavailable"), Some(&1));
    assert_eq!(stub.token_requests().len(), 4);
    assert_eq!(snap.token_fetches, 4);
}

// ---------------------------------------------------------------------------------
// Stream outcomes (`docs/event-stream.md#stream-request-outcomes`), known failures 5, 6,
// 20, 33

#[tokio::test]
async fn retry_after_on_429_is_a_floor() {
    let plan = Plan::new(3, 3).fault(
        1,
        Fault::Status {
            status: 429,
            body: String::new(),
            retry_after: Some("1".into()),
            content_type: None,
        },
    );
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    assert_eq!(collect(&mut s, 3).await, all(&stub));
    let r = stub.streams();
    assert!(
        r[1].at - r[0].at >= Duration::from_secs(1),
        "{:?}",
        r[1].at - r[0].at
    );
}

#[tokio::test]
async fn many_503s_back_off_exponentially_with_a_cap_and_never_give_up() {
    // known-failures 5: twenty failures in a row, then success at request 21.
    let failures = 20;
    let mut plan = Plan::new(6, 3);
    for n in 1..=failures {
        plan = plan.fault(n, Fault::status(if n % 2 == 0 { 503 } else { 500 }));
    }
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    assert_eq!(collect(&mut s, 6).await, all(&stub));
    let r = stub.streams();
    assert_eq!(r.len(), failures + 1);
    let p = fast();
    for k in 1..r.len() {
        let gap = r[k].at - r[k - 1].at;
        let ceiling = p.normal_ceiling(k as u32);
        assert!(gap >= ceiling / 2, "gap {k}: {gap:?} < {:?}", ceiling / 2);
        // Generous slack for a loaded machine; the point is that it is capped (uncapped,
        // the twentieth wait would be over an hour).
        assert!(gap <= p.cap + Duration::from_secs(1), "gap {k}: {gap:?}");
    }
    let snap = s.status().snapshot();
    assert_eq!(snap.reconnects.get("status_503"), Some(&10));
    assert_eq!(snap.reconnects.get("status_500"), Some(&10));
}

#[tokio::test]
async fn a_failing_token_endpoint_is_retried_forever_with_capped_backoff() {
    let failures = 20;
    let mut plan = Plan::new(3, 3);
    for n in 1..=failures {
        plan = plan.token_fault(
            n,
            TokenFault::Status {
                status: 500,
                body: "{}".into(),
            },
        );
    }
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    assert_eq!(collect(&mut s, 3).await, all(&stub));
    let r = stub.token_requests();
    assert_eq!(r.len(), failures + 1);
    let p = fast();
    for k in 1..r.len() {
        let gap = r[k].at - r[k - 1].at;
        assert!(gap >= p.normal_ceiling(k as u32) / 2, "gap {k}: {gap:?}");
        assert!(gap <= p.cap + Duration::from_secs(1), "gap {k}: {gap:?}");
    }
    assert_eq!(stub.streams().len(), 1);
}

#[tokio::test]
async fn a_stalled_stream_is_abandoned_after_sse_timeout_and_resumed() {
    // Heartbeats far more often than the timeout, so that a loaded machine cannot
    // cause a second, spurious stall.
    let mut plan = Plan::new(9, 3).fault(1, Fault::Stall { after: 2 });
    plan.heartbeat = Duration::from_millis(50);
    let stub = Stub::start(plan).await;
    let sse_timeout = Duration::from_millis(600);
    let mut s = source_with(&stub, StartPoint::Beginning, |t| {
        t.sse_timeout = sse_timeout
    });
    assert_eq!(collect(&mut s, 9).await, all(&stub));
    let r = stub.streams();
    assert_eq!(r.len(), 2);
    assert!(r[1].at - r[0].at >= sse_timeout);
    assert_eq!(r[1].param("id"), Some(stub.plan().batch_end(2)));
    assert_eq!(s.status().snapshot().reconnects.get("stall"), Some(&1));
}

#[tokio::test]
async fn heartbeats_keep_a_quiet_stream_alive() {
    // Heartbeats every 50 ms, sse_timeout 500 ms: several timeouts' worth of quiet
    // passes before the fault-free stream ends the test, without a reconnect.
    let mut plan = Plan::new(3, 3);
    plan.heartbeat = Duration::from_millis(50);
    let stub = Stub::start(plan).await;
    let mut s = source_with(&stub, StartPoint::Beginning, |t| {
        t.sse_timeout = Duration::from_millis(500)
    });
    assert_eq!(collect(&mut s, 3).await, all(&stub));
    let status = s.status();
    let before = status.snapshot().last_activity.unwrap();
    // Keep reading (nothing more will come but heartbeats) until the last activity
    // is more than two timeouts after the batch.
    let reader = tokio::spawn(async move {
        let _ = s.next().await;
    });
    eventually("heartbeats", || {
        status
            .snapshot()
            .last_activity
            .is_some_and(|t| t - before > Duration::from_millis(1200))
    })
    .await;
    reader.abort();
    assert_eq!(stub.streams().len(), 1);
    assert!(status.healthy());
}

#[tokio::test]
async fn a_message_cut_in_half_is_discarded_and_resumed_without_loss() {
    let plan = Plan::new(12, 3)
        .fault(1, Fault::DropMidEvent { after: 2 })
        .fault(2, Fault::DropMidEvent { after: 0 });
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    assert_eq!(collect(&mut s, 12).await, all(&stub));
    let r = stub.streams();
    assert_eq!(r.len(), 3);
    assert_eq!(r[1].param("id"), Some(stub.plan().batch_end(2)));
    assert_eq!(r[2].param("id"), Some(stub.plan().batch_end(2)));
    assert_eq!(s.status().snapshot().reconnects.get("eof"), Some(&2));
}

#[tokio::test]
async fn reconnect_and_end_wait_for_retry_and_resume() {
    // known-failures 6: reconnect with retry 300 ms after 2 batches; then end without
    // retry (the 300 ms floor is kept per tenant), with data.
    let plan = Plan::new(12, 3)
        .fault(
            1,
            Fault::Planned {
                after: 2,
                name: "reconnect",
                retry_ms: Some(300),
                with_data: false,
            },
        )
        .fault(
            2,
            Fault::Planned {
                after: 1,
                name: "end",
                retry_ms: None,
                with_data: true,
            },
        );
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    assert_eq!(collect(&mut s, 12).await, all(&stub));
    let r = stub.streams();
    assert_eq!(r.len(), 3);
    let retry = Duration::from_millis(300);
    assert!(r[1].at - r[0].at >= retry, "{:?}", r[1].at - r[0].at);
    assert!(r[2].at - r[1].at >= retry, "{:?}", r[2].at - r[1].at);
    assert_eq!(r[1].param("id"), Some(stub.plan().batch_end(2)));
    assert_eq!(r[2].param("id"), Some(stub.plan().batch_end(3)));
    let snap = s.status().snapshot();
    assert_eq!(snap.reconnects.get("reconnect"), Some(&1));
    assert_eq!(snap.reconnects.get("end"), Some(&1));
    assert_eq!(snap.reconnects.len(), 2, "{:?}", snap.reconnects);
}

#[tokio::test]
async fn every_wire_style_decodes_to_the_same_events() {
    let styles = [
        Wire {
            line_ending: "\r\n",
            ..Wire::default()
        },
        Wire {
            line_ending: "\r",
            ..Wire::default()
        },
        Wire {
            bom: true,
            ..Wire::default()
        },
        Wire {
            comments: true,
            space_after_colon: true,
            ..Wire::default()
        },
        Wire {
            multiline_data: true,
            ..Wire::default()
        },
        Wire {
            line_ending: "\r\n",
            bom: true,
            comments: true,
            multiline_data: true,
            chunk_bytes: 7,
            ..Wire::default()
        },
        Wire {
            line_ending: "\r",
            chunk_bytes: 1,
            ..Wire::default()
        },
    ];
    for wire in styles {
        let mut plan = Plan::new(12, 4).fault(1, Fault::DropMidEvent { after: 1 });
        plan.wire = wire.clone();
        let stub = Stub::start(plan).await;
        let mut s = source_for(&stub, StartPoint::Beginning);
        let got = collect(&mut s, 12).await;
        assert_eq!(got, all(&stub), "{wire:?}");
        assert_eq!(
            stub.streams()[1].param("id"),
            Some(stub.plan().batch_end(1)),
            "{wire:?}"
        );
        assert_eq!(s.status().snapshot().duplicates_dropped, 0, "{wire:?}");
    }
}

#[tokio::test]
async fn an_inclusive_server_resume_is_de_duplicated() {
    // known-failures 20: the server resumes AT the id; the repeat is dropped and counted.
    let mut plan = Plan::new(9, 3).fault(1, Fault::Drop { after: 1 });
    plan.inclusive = true;
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    assert_eq!(collect(&mut s, 9).await, all(&stub));
    assert_eq!(s.status().snapshot().duplicates_dropped, 1);

    // Also across a restart: a new source resuming from a saved position.
    let mut plan = Plan::new(9, 3);
    plan.inclusive = true;
    let stub = Stub::start(plan).await;
    let saved = Position::new(stub.plan().batch_end(1)).unwrap();
    let mut s = source_for(&stub, StartPoint::Position(saved));
    assert_eq!(collect(&mut s, 6).await, all(&stub)[3..]);
    assert_eq!(s.status().snapshot().duplicates_dropped, 1);
}

#[tokio::test]
async fn invalid_json_is_a_dead_letter_and_the_stream_moves_past_it() {
    let plan = Plan::new(9, 3).fault(1, Fault::InvalidJson { after: 1 });
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    let mut ids = Vec::new();
    let mut dead = Vec::new();
    while ids.len() < 6 {
        let b = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .unwrap()
            .unwrap();
        ids.extend(b.events.iter().map(|e| e.id().unwrap().to_string()));
        if !b.dead_letters.is_empty() {
            // The position moved past the dead letter: its message id.
            assert_eq!(
                b.position.as_ref().map(|p| p.as_str()),
                Some(stub.plan().batch_end(2))
            );
            assert_eq!(s.received_position(), b.position.as_ref());
        }
        dead.extend(b.dead_letters);
    }
    let want: Vec<_> = all(&stub)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !(3..6).contains(i))
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, want);
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.starts_with("invalid json"), "{:?}", dead[0]);
    assert_eq!(s.status().snapshot().dead_letters, 1);
}

#[tokio::test]
async fn an_oversized_message_drops_the_connection_with_the_limit_and_key_named() {
    let plan = Plan::new(3, 3).fault(
        1,
        Fault::Huge {
            after: 0,
            bytes: 200_000,
        },
    );
    let stub = Stub::start(plan).await;
    let mut s = source_with(&stub, StartPoint::Beginning, |t| t.max_event_size = 65_536);
    let status = s.status();
    // The huge message is never skipped: request 2 resumes from the same place and
    // delivers the following events.
    assert_eq!(collect(&mut s, 3).await, all(&stub));
    let snap = status.snapshot();
    assert_eq!(snap.reconnects.get("too_large"), Some(&1));
    let err = snap.last_error.unwrap();
    assert!(
        err.contains("max_event_size = 65536") && err.contains("raise max_event_size"),
        "{err}"
    );
    assert_eq!(stub.streams()[1].param("id"), Some("0"));
}

#[tokio::test]
async fn a_200_that_is_not_an_event_stream_is_logged_and_backed_off_long() {
    let plan = Plan::new(3, 3).fault(
        1,
        Fault::Status {
            status: 200,
            body: "<html><body>Please log in to the guest Wi-Fi</body></html>".into(),
            retry_after: None,
            content_type: Some("text/html; charset=utf-8".into()),
        },
    );
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    let status = s.status();
    assert_eq!(collect(&mut s, 3).await, all(&stub));
    let snap = status.snapshot();
    let err = snap.last_error.unwrap();
    assert!(err.contains("text/html; charset=utf-8"), "{err}");
    assert!(err.contains("guest Wi-Fi"), "{err}");
    let r = stub.streams();
    assert!(r[1].at - r[0].at >= fast().long / 2);
}

#[tokio::test]
async fn a_403_is_unhealthy_with_a_permission_message() {
    let plan = Plan::new(3, 3)
        .fault(1, Fault::status(403))
        .fault(2, Fault::status(403));
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    let status = s.status();
    let reader = tokio::spawn(async move { collect(&mut s, 3).await });
    eventually("a 403", || {
        status.snapshot().reconnects.contains_key("status_403")
    })
    .await;
    let snap = status.snapshot();
    assert!(!snap.healthy);
    assert!(
        snap.last_error
            .unwrap()
            .contains("application key lacks permission for THREAT,DEVICE"),
    );
    assert_eq!(reader.await.unwrap().len(), 3);
    assert!(status.healthy());
}

#[tokio::test]
async fn reset_to_rewinds_to_the_committed_position() {
    let stub = Stub::start(Plan::new(9, 3)).await;
    let mut s = source_for(&stub, StartPoint::Beginning);
    assert_eq!(collect(&mut s, 9).await, all(&stub));
    // The sink failed after committing batch 1: events 4..9 must come again.
    s.reset_to(Position::new(stub.plan().batch_end(1)));
    assert_eq!(collect(&mut s, 6).await, all(&stub)[3..]);
    // Nothing committed at all: back to the start point.
    s.reset_to(None);
    assert_eq!(collect(&mut s, 9).await, all(&stub));
    let r = stub.streams();
    assert_eq!(r.len(), 3);
    assert_eq!(r[1].param("id"), Some(stub.plan().batch_end(1)));
    assert_eq!(r[2].param("id"), Some("0"));
}

#[tokio::test]
async fn cancellation_ends_a_backoff_wait_at_once() {
    let plan = Plan::new(3, 3).fault(1, Fault::status(404));
    let stub = Stub::start(plan).await;
    let cancel = CancellationToken::new();
    let mut policy = fast();
    policy.long = Duration::from_secs(3600);
    let mut s = EventSource::new(
        &tenant(&stub.url()),
        &ProxyConfig::Explicit(no_proxy_at_all()),
        StartPoint::Beginning,
        cancel.clone(),
    )
    .unwrap()
    .with_policy(policy);
    let status = s.status();
    let reader = tokio::spawn(async move { s.next().await });
    eventually("the 404", || {
        status.snapshot().reconnects.contains_key("status_404")
    })
    .await;
    cancel.cancel();
    let out = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .expect("next() returns promptly after cancel")
        .unwrap();
    assert!(out.is_none());
}

#[tokio::test]
async fn cancellation_ends_a_quiet_read_at_once() {
    let stub = Stub::start(Plan::new(3, 3)).await;
    let cancel = CancellationToken::new();
    let mut s = EventSource::new(
        &tenant(&stub.url()),
        &ProxyConfig::Explicit(no_proxy_at_all()),
        StartPoint::Beginning,
        cancel.clone(),
    )
    .unwrap()
    .with_policy(fast());
    assert_eq!(collect(&mut s, 3).await.len(), 3);
    let reader = tokio::spawn(async move { s.next().await });
    cancel.cancel();
    let out = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .unwrap()
        .unwrap();
    assert!(out.is_none());
}

#[tokio::test]
async fn probe_reports_each_step() {
    let stub = Stub::start(Plan::new(3, 3)).await;
    let t = tenant(&stub.url());
    let proxy = ProxyConfig::Explicit(no_proxy_at_all());
    let steps = probe(&t, &proxy).await;
    let names: Vec<_> = steps.iter().map(|s| s.step).collect();
    assert_eq!(names, ["http client", "token", "stream"]);
    assert!(steps.iter().all(|s| s.outcome.is_ok()), "{steps:?}");

    let stub = Stub::start(Plan::new(3, 3).fault(1, Fault::status(403))).await;
    let steps = probe(&tenant(&stub.url()), &proxy).await;
    let last = steps.last().unwrap();
    assert_eq!(last.step, "stream");
    assert!(
        last.outcome.as_ref().unwrap_err().contains("HTTP 403"),
        "{steps:?}"
    );

    let mut t = tenant(&stub.url());
    t.api_key = Secret::new("wrong-key");
    let steps = probe(&t, &proxy).await;
    assert_eq!(steps.len(), 2);
    let err = steps[1].outcome.as_ref().unwrap_err();
    assert!(
        err.contains("application key rejected for tenant acme"),
        "{err}"
    );
    assert!(!err.contains("wrong-key"));
}

#[tokio::test]
async fn missing_response_headers_time_out_and_are_retried() {
    let plan = Plan::new(3, 3).fault(1, Fault::Hang);
    let stub = Stub::start(plan).await;
    let timeout = Duration::from_millis(300);
    let mut s = source_for(&stub, StartPoint::Beginning).with_header_timeout(timeout);
    assert_eq!(collect(&mut s, 3).await, all(&stub));
    let r = stub.streams();
    assert!(r[1].at - r[0].at >= timeout);
    assert_eq!(
        s.status().snapshot().reconnects.get("header_timeout"),
        Some(&1)
    );
}

#[tokio::test]
async fn each_status_gets_its_backoff_class_and_health() {
    // (status, reason, long backoff?, unhealthy?). Request 1 delivers a batch (healthy),
    // request 2 fails with the status, request 3 delivers the rest.
    let table = [
        (204, "status_204", true, false),
        (400, "status_400", true, true),
        (404, "status_404", true, true),
        (500, "status_500", false, false),
        (502, "status_502", false, false),
        (504, "status_504", false, false),
        (503, "status_503", false, false),
    ];
    for (status, reason, long, unhealthy) in table {
        let plan = Plan::new(6, 3)
            .fault(1, Fault::Drop { after: 1 })
            .fault(2, Fault::status(status));
        let stub = Stub::start(plan).await;
        // A long backoff far from the normal ones, so that a loaded machine cannot blur
        // the two.
        let policy = mrav2_syslog_connector::backoff::BackoffPolicy {
            long: Duration::from_millis(800),
            ..fast()
        };
        let mut s = source_for(&stub, StartPoint::Beginning).with_policy(policy);
        let st = s.status();
        let reader = tokio::spawn(async move { collect(&mut s, 6).await });
        eventually("the failure", || {
            st.snapshot().reconnects.contains_key(reason)
        })
        .await;
        assert_eq!(st.healthy(), !unhealthy, "{status}");
        assert_eq!(reader.await.unwrap(), all(&stub), "{status}");
        let r = stub.streams();
        assert_eq!(r.len(), 3, "{status}");
        let gap = r[2].at - r[1].at;
        if long {
            assert!(gap >= policy.long / 2, "{status}: {gap:?}");
        } else {
            assert!(gap < policy.long / 2, "{status}: {gap:?}");
        }
        let err = st.snapshot().last_error.unwrap();
        assert!(err.contains(&format!("HTTP {status}")), "{err}");
        assert!(st.healthy(), "{status}: healthy again after a batch");
    }
}

#[tokio::test]
async fn a_connection_open_long_enough_resets_the_failure_counter() {
    // Four 500s push the ceiling to 1.6 s; then a connection stays open past
    // `stable_after` and ends: the next wait is back at the first ceiling.
    let policy = mrav2_syslog_connector::backoff::BackoffPolicy {
        base: Duration::from_millis(200),
        cap: Duration::from_millis(3200),
        stable_after: Duration::from_millis(300),
        ..fast()
    };
    let mut plan = Plan::new(0, 1).fault(5, Fault::Linger { ms: 600 });
    for n in 1..=4 {
        plan = plan.fault(n, Fault::status(500));
    }
    plan = plan.fault(6, Fault::status(500));
    let stub = Stub::start(plan).await;
    let mut s = source_for(&stub, StartPoint::Beginning).with_policy(policy);
    let reader = tokio::spawn(async move {
        let _ = s.next().await;
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while stub.streams().len() < 7 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            stub.streams().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reader.abort();
    let r = stub.streams();
    // Without the reset the wait after request 5 would be at least 3.2 s / 2.
    let after_linger = r[5].at - r[4].at;
    assert!(
        after_linger >= Duration::from_millis(600),
        "{after_linger:?}"
    );
    assert!(
        after_linger < Duration::from_millis(1500),
        "{after_linger:?}"
    );
    // And the failure after that is the second one: at most 400 ms.
    let next = r[6].at - r[5].at;
    assert!(next < Duration::from_millis(1000), "{next:?}");
}

/// Collects everything a test logs (current-thread runtime only).
#[derive(Clone, Default)]
struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn every_reconnect_is_logged_once_at_warn_and_no_secret_is_logged() {
    let capture = LogCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // tracing-core caches each callsite's interest when it is first hit. With a single
    // live dispatcher it asks only the *registering thread's* default, so a callsite
    // first hit by another test's thread would be cached as "never" and this test
    // would miss its lines. A second live dispatcher makes tracing ask every
    // dispatcher; then recompute what was cached before this test began.
    let _second = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .finish(),
    );
    tracing::callsite::rebuild_interest_cache();

    let plan = Plan::new(9, 3)
        .token_fault(
            1,
            TokenFault::Status {
                status: 401,
                body: r#"{"error":"invalid_client"}"#.into(),
            },
        )
        .fault(1, Fault::status(401))
        .fault(2, Fault::status(503))
        .fault(
            3,
            Fault::Planned {
                after: 1,
                name: "reconnect",
                retry_ms: Some(50),
                with_data: false,
            },
        )
        .fault(4, Fault::Stall { after: 1 });
    let mut plan = plan;
    plan.heartbeat = Duration::from_millis(50);
    let stub = Stub::start(plan).await;
    let mut s = source_with(&stub, StartPoint::Beginning, |t| {
        t.sse_timeout = Duration::from_millis(800)
    });
    assert_eq!(collect(&mut s, 9).await, all(&stub));
    drop(_guard);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let warns: Vec<&str> = logs.lines().filter(|l| l.contains(" WARN ")).collect();
    let reasons: Vec<&str> = warns
        .iter()
        .filter_map(|l| l.split("reason=").nth(1))
        .map(|r| r.split([' ', '"']).find(|s| !s.is_empty()).unwrap_or(""))
        .collect();
    assert_eq!(
        reasons,
        [
            "key_rejected",
            "status_401",
            "status_503",
            "reconnect",
            "stall"
        ],
        "{logs}"
    );
    assert!(warns.iter().all(|l| l.contains("delay=")), "{logs}");
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("heartbeat") && !l.contains("DEBUG")),
        "heartbeats only at debug: {logs}"
    );
    // Never the key, never a token.
    assert!(!logs.contains(stub::KEY), "{logs}");
    assert!(!logs.contains("tok-"), "{logs}");
}
