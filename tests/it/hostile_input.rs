//! Hostile input: what a misbehaving server or an unlucky operator can hand the
//! connector must neither wedge a tenant nor grow memory or disk without bound
//! (`docs/limits.md`).

use crate::fixture::{KEY, TENANT, stdout_config};
use crate::kit::{
    PATIENCE, Running, eventually, free_port, http_get, saved_position, write_config,
};
use crate::source::stub::{Fault, Plan, Stub, fast, tenant};
use mrav2_syslog_connector::config::{Proxy, ProxyConfig};
use mrav2_syslog_connector::source::{EventSource, StartPoint};
use std::ffi::OsStr;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn source_for(stub: &Stub) -> EventSource {
    let proxy = Proxy {
        address: url::Url::parse("http://127.0.0.1:9").unwrap(),
        username: None,
        password: None,
        no_proxy: vec!["127.0.0.1".into(), "localhost".into()],
    };
    let mut tenant = tenant(&stub.url());
    // Room for a message holding a 1 MiB id twice.
    tenant.max_event_size = 8 << 20;
    EventSource::new(
        &tenant,
        &ProxyConfig::Explicit(proxy),
        StartPoint::Beginning,
        CancellationToken::new(),
    )
    .unwrap()
    .with_policy(fast())
    .with_seed(1)
}

/// Reads batches until the stub saw `n` stream requests.
async fn read_until_streams(source: &mut EventSource, stub: &Stub, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while stub.streams().len() < n {
        assert!(
            tokio::time::timeout_at(deadline, source.next())
                .await
                .is_ok_and(|batch| batch.is_some()),
            "no stream request {n} within 20 s; requests so far: {:?}",
            stub.streams()
                .iter()
                .map(|r| r.raw_query.chars().take(120).collect::<String>())
                .collect::<Vec<_>>()
        );
    }
}

/// An id with a control byte (in the `id:` line) or of 1 MiB (in the `id:` line and
/// the event's JSON) is never taken as the position: the reconnect that follows
/// carries the last usable id instead of failing before a request leaves, forever.
#[tokio::test]
async fn an_id_no_request_can_carry_never_becomes_the_position() {
    for (bad, expected_resume) in [("bad\u{1}id", 2), (&*"7".repeat(1 << 20), 4)] {
        let mut plan = Plan::new(6, 3).fault(1, Fault::Drop { after: 2 });
        plan.ids[5] = bad.to_string();
        let resume = plan.ids[expected_resume].clone();
        let stub = Stub::start(plan).await;
        let mut source = source_for(&stub);
        read_until_streams(&mut source, &stub, 2).await;
        let second = &stub.streams()[1];
        assert_eq!(second.param("id"), Some(resume.as_str()), "{bad:.12?}");
        assert_eq!(second.header("last-event-id"), Some(resume.as_str()));
        let received = source.received_position().map(|p| p.as_str().len());
        assert!(received.is_some_and(|len| len <= 256), "{received:?}");
    }
}

/// A saved position that no request could carry stops that tenant at start-up with
/// an error naming the file and the fix; it is never sent (and never logged whole).
#[tokio::test]
async fn an_unusable_saved_position_is_a_start_up_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let file = state.join(format!("{TENANT}.position.json"));
    // Far longer than a position may be, yet a file small enough to be read.
    let long = "7".repeat(100_000);
    for bad in [r"a\u0001b".to_string(), long] {
        std::fs::write(
            &file,
            format!(
                r#"{{"entity_name":"{TENANT}","position":"{bad}","saved_at":"2026-11-22T12:00:00Z","delivered":1}}"#
            ),
        )
        .unwrap();
        let config = dir.path().join("config.ini");
        // Nothing listens on port 9: a request would fail, never succeed.
        write_config(
            &config,
            &format!(
                "{}\n[connector]\nstate_dir = {}\n",
                stdout_config("http://127.0.0.1:9", KEY),
                state.display()
            ),
        );
        let stderr = dir.path().join("stderr");
        let _ = std::fs::remove_file(&stderr);
        let mut running =
            Running::spawn(&[OsStr::new("--config"), config.as_os_str()], &stderr, None);
        let status = running.wait_exit(PATIENCE).await;
        let output = running.stderr();
        assert!(
            status.is_some_and(|s| !s.success()),
            "the only tenant cannot start, so the process ends ({status:?}):\n{output:.2000}"
        );
        assert!(
            output.contains(&file.display().to_string()),
            "{output:.2000}"
        );
        assert!(output.contains("remove the file"), "{output:.2000}");
        assert!(
            output.lines().all(|l| l.len() < 4096),
            "no unbounded log line"
        );
    }
}

/// A FIFO where the connector expects a small regular file (the config, the API key
/// file, a state file) must not block start-up forever, and `/dev/zero` must not be
/// read until memory runs out: each is refused at once with an error naming it.
#[tokio::test]
async fn special_files_are_refused_instead_of_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let config = dir.path().join("config.ini");
    let with_key_file = |key_file: &std::path::Path| {
        stdout_config("http://127.0.0.1:9", KEY).replace(
            &format!("api_key = {KEY}\n"),
            &format!("api_key_file = {}\n", key_file.display()),
        )
    };
    let fifo_state = state.join(format!("{TENANT}.position.json"));
    let cases: Vec<(&str, Vec<&OsStr>, String, std::path::PathBuf)> = vec![
        (
            "config",
            vec![
                OsStr::new("check-config"),
                OsStr::new("--config"),
                fifo.as_os_str(),
            ],
            String::new(),
            fifo.clone(),
        ),
        (
            "api_key_file",
            vec![
                OsStr::new("check-config"),
                OsStr::new("--config"),
                config.as_os_str(),
            ],
            with_key_file(&fifo),
            fifo.clone(),
        ),
        (
            "state file",
            vec![OsStr::new("--config"), config.as_os_str()],
            format!(
                "{}\n[connector]\nstate_dir = {}\n",
                stdout_config("http://127.0.0.1:9", KEY),
                state.display()
            ),
            fifo_state.clone(),
        ),
        // Last: before the fix this one read until memory ran out.
        (
            "api_key_file /dev/zero",
            vec![
                OsStr::new("check-config"),
                OsStr::new("--config"),
                config.as_os_str(),
            ],
            with_key_file(std::path::Path::new("/dev/zero")),
            "/dev/zero".into(),
        ),
    ];
    for (n, (what, args, text, named)) in cases.into_iter().enumerate() {
        if !text.is_empty() {
            write_config(&config, &text);
        }
        if what == "state file" {
            mkfifo(&fifo_state);
        }
        let stderr = dir.path().join(format!("case-{n}.stderr"));
        let mut running = Running::spawn(&args, &stderr, None);
        let status = running.wait_exit(Duration::from_secs(15)).await;
        let output = running.stderr();
        assert!(
            status.is_some_and(|s| !s.success()),
            "{what}: refused at once, not read ({status:?}):\n{output:.2000}"
        );
        assert!(
            output.contains(&named.display().to_string()) && output.contains("not a regular file"),
            "{what}: {output:.2000}"
        );
    }
}

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A full dead-letter file stops the tenant before the batch that needs room, with
/// the alert in `/health` and the log, and without committing past that batch; once
/// the file is moved away the tenant goes on by itself and loses nothing.
#[tokio::test]
async fn a_full_dead_letter_file_holds_the_tenant_at_its_position() {
    let plan = Plan::new(9, 3).fault(1, Fault::InvalidJson { after: 1 });
    let first = plan.batch_end(1).to_string();
    let last = plan.ids[8].clone();
    let stub = Stub::start(plan).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let dead = state.join("dead-letter");
    std::fs::create_dir_all(&dead).unwrap();
    let dead_file = dead.join(format!("{TENANT}.jsonl"));
    // Sparse: as large as the limit, yet no disk used.
    std::fs::File::create(&dead_file)
        .unwrap()
        .set_len(mrav2_syslog_connector::dead_letter::MAX_BYTES)
        .unwrap();
    let port = free_port();
    let config = dir.path().join("config.ini");
    write_config(
        &config,
        &format!(
            "{}\n[connector]\nstate_dir = {}\nmetrics_listen = 127.0.0.1:{port}\ncommit_interval_ms = 100\n",
            stdout_config(&stub.url(), crate::source::stub::KEY),
            state.display()
        ),
    );
    let stderr = dir.path().join("stderr");
    let mut running = Running::spawn(&[OsStr::new("--config"), config.as_os_str()], &stderr, None);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let health = || {
        http_get(addr, "/health")
            .map(|(_, body)| body)
            .unwrap_or_default()
    };
    eventually(
        || format!("held at {first}: {:?}\n{}", health(), running.output()),
        PATIENCE,
        || {
            saved_position(&state, TENANT).as_deref() == Some(first.as_str())
                && health().contains("dead-letter file")
        },
    )
    .await;
    let alert = health();
    assert!(alert.contains("\"healthy\":false"), "{alert}");
    assert!(alert.contains("move it away"), "{alert}");
    // Held: nothing past the batch that needs room is committed.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        saved_position(&state, TENANT).as_deref(),
        Some(first.as_str())
    );
    assert!(running.output().contains("dead-letter file full"));

    std::fs::rename(&dead_file, dir.path().join("moved-away.jsonl")).unwrap();
    eventually(
        || format!("goes on to {last}: {:?}\n{}", health(), running.output()),
        PATIENCE,
        || saved_position(&state, TENANT).as_deref() == Some(last.as_str()),
    )
    .await;
    let kept = std::fs::read_to_string(&dead_file).unwrap();
    assert_eq!(kept.lines().count(), 1, "{kept}");
    assert!(kept.contains("not json"), "{kept}");
    eventually(&health, PATIENCE, || health().contains("\"healthy\":true")).await;
    running.stop().await;
}
