//! No secret ever reaches a log line, an error message or any output
//! (`docs/operations.md#logs`; `ARCHITECTURE.md` invariants): the API key, a wrong API key,
//! the proxy password and the access tokens the simulator issued.
//!
//! The connector runs at debug level (`-v`, the most talkative) through the paths that
//! handle secrets: token fetches, forced refreshes (`expire_tokens`, short token
//! lifetimes), a rejected key, an unreachable proxy with credentials, and
//! `check-config`/`status` on good and broken configs. Every byte of stdout, stderr and
//! the log file is then scanned.
//!
//! The connector's own tokens cannot be seen from outside (the simulator stores none,
//! and making them predictable would test a different program). So the test fetches a
//! token of its own with the same key to learn what issued tokens look like, and scans
//! for that token and for its prefix, which every token of this simulator shares.

use crate::fixture::{self, SimSpec, TENANT, tcp};
use crate::kit::{PATIENCE, Running, base64, connector, free_port, write_config};
use crate::receiver::RawTcpListener;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// A key of its own for [`TENANT`], distinctive enough to find in any output.
const KEY: &str = "k3y-9f2c41d7e0b85a36-Distinctive";
const WRONG_KEY: &str = "wr0ng-5be1c09a77d3f4e2-Distinctive";
const PROXY_USER: &str = "proxyuser-3c1f";
const PROXY_PASSWORD: &str = "pr0xyPass-d41e8a90c7b2";

/// `[lookout]` with `key` at `api_domain`, and a short `sse_timeout`.
fn lookout(api_domain: &str, key: &str) -> String {
    fixture::lookout(api_domain, key, "sse_timeout = 5\n")
}

/// `[syslog]` for LF-framed TCP to `port`.
fn syslog(port: u16) -> String {
    fixture::syslog(&tcp(port))
}

/// `[proxy]` with credentials, on a port where nothing listens.
fn proxy(port: u16) -> String {
    format!(
        "[proxy]\naddress = http://127.0.0.1:{port}\nusername = {PROXY_USER}\npassword = {PROXY_PASSWORD}\n"
    )
}

/// `check-config` (and `status`) on `text`: everything they print.
fn one_shot(dir: &Path, name: &str, text: &str) -> String {
    let cfg = dir.join(format!("{name}.ini"));
    write_config(&cfg, text);
    let mut said = String::new();
    for args in [
        vec!["check-config", "--config"],
        vec!["status", "--state-dir", "state", "--config"],
    ] {
        let out = connector()
            .current_dir(dir)
            .args(&args)
            .arg(&cfg)
            .output()
            .expect("run the binary");
        said += &String::from_utf8_lossy(&out.stdout);
        said += &String::from_utf8_lossy(&out.stderr);
    }
    said
}

/// Runs the connector with `-v` on `text` until `done` holds (or `within` passes, for
/// runs that only produce errors), stops it and returns stderr plus its log file.
async fn run(
    dir: &Path,
    name: &str,
    text: &str,
    within: Duration,
    mut done: impl FnMut(&str) -> bool,
) -> String {
    let cfg = dir.join(format!("{name}.ini"));
    let log = dir.join(format!("{name}.log"));
    write_config(&cfg, text);
    let state = dir.join(format!("{name}-state"));
    let mut running = Running::spawn(
        &[
            OsStr::new("--config"),
            cfg.as_os_str(),
            OsStr::new("--state-dir"),
            state.as_os_str(),
            OsStr::new("--log-file"),
            log.as_os_str(),
            OsStr::new("-v"),
        ],
        &dir.join(format!("{name}.stderr")),
        Some(&log),
    );
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && !done(&running.output()) {
        assert!(running.is_running(), "{name} ended:\n{}", running.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    running.output()
}

/// Every way a secret could appear: as is, percent-encoded, or in a Basic header.
fn forms(secret: &str) -> Vec<String> {
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    vec![secret.to_string(), encoded]
}

#[tokio::test]
async fn no_secret_appears_in_any_output() {
    let listener = RawTcpListener::start().await;
    // Tokens live 2 s and the second stream request invalidates them: several token
    // fetches and a 401 on the stream.
    let scenario = r#"{"faults":[
        {"endpoint":"stream","request":1,"after_batches":2,"action":"drop"},
        {"endpoint":"stream","request":2,"action":"expire_tokens"}
    ]}"#;
    let sim = SimSpec::new().key(KEY).scenario(scenario).start(&[
        "--token-ttl",
        "2",
        "--events",
        "20",
        "--batch-size",
        "5",
        "--rate",
        "5",
    ]);
    let dir = tempfile::tempdir().expect("temporary directory");
    let dir = dir.path();
    let api = sim.url();
    let good = format!("{}{}", lookout(&api, KEY), syslog(listener.port()));
    let wrong = format!("{}{}", lookout(&api, WRONG_KEY), syslog(listener.port()));
    let proxied = format!("{good}{}", proxy(free_port()));
    let broken = format!(
        "{}{}{}",
        lookout(&api, KEY),
        fixture::syslog("port = 99999\n"),
        proxy(free_port())
    );

    let mut said = String::new();
    for (name, text) in [
        ("good", &good),
        ("wrong", &wrong),
        ("proxied", &proxied),
        ("broken", &broken),
    ] {
        said += &one_shot(dir, &format!("check-{name}"), text);
    }

    // Working, with token refreshes: until records flow and a second token was issued.
    let token_fetches = || {
        sim.requests()
            .iter()
            .filter(|r| r["endpoint"] == "token" && r["status"] == 200 && r["tenant"] == TENANT)
            .count()
    };
    said += &run(dir, "good", &good, PATIENCE, |_| {
        token_fetches() >= 2 && listener.received().iter().filter(|&&b| b == b'\n').count() >= 30
    })
    .await;
    assert!(
        token_fetches() >= 2,
        "the connector fetched {} tokens; the scan would prove little",
        token_fetches()
    );
    let requests = sim.requests();
    assert!(
        requests
            .iter()
            .any(|r| r["endpoint"] == "stream" && r["auth"] == "valid"),
        "no stream request with a valid token: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r["endpoint"] == "stream" && r["auth"] == "expired"),
        "the expire_tokens fault did not apply: {requests:?}"
    );

    // A rejected key: until the simulator answered 401 and the connector said so.
    let rejected = || {
        sim.requests()
            .iter()
            .any(|r| r["endpoint"] == "token" && r["status"] == 401)
    };
    said += &run(dir, "wrong", &wrong, Duration::from_secs(10), |output| {
        rejected() && output.contains("401")
    })
    .await;
    assert!(rejected(), "the wrong key never reached the token endpoint");

    // An unreachable proxy with credentials: a few seconds of connection errors.
    said += &run(dir, "proxied", &proxied, Duration::from_secs(4), |_| false).await;

    let token = sim.fetch_token(KEY);
    let prefix: String = token.chars().take(12).collect();
    let mut secrets = Vec::new();
    secrets.extend(forms(KEY));
    secrets.extend(forms(WRONG_KEY));
    secrets.extend(forms(PROXY_PASSWORD));
    secrets.push(base64(format!("{PROXY_USER}:{PROXY_PASSWORD}").as_bytes()));
    secrets.push(token.clone());
    secrets.push(prefix);
    // Long pieces of a key are leaks too (a key cut to fit a line is still a key).
    for key in [KEY, WRONG_KEY] {
        for start in 0..=key.len() - 16 {
            secrets.push(key[start..start + 16].to_string());
        }
    }
    assert!(said.len() > 1000, "suspiciously little output:\n{said}");
    for secret in &secrets {
        let hits: Vec<&str> = said
            .lines()
            .filter(|l| l.contains(secret.as_str()))
            .collect();
        assert!(
            hits.is_empty(),
            "a secret ({} characters, starting {:?}) appears in the output:\n{}",
            secret.len(),
            &secret[..4],
            hits.join("\n")
        );
    }
    // Whatever the simulator's tokens look like, a JWT-looking string has no place in
    // a log.
    assert!(
        !said.contains("eyJ"),
        "a token-shaped string in the output:\n{}",
        said.lines()
            .filter(|l| l.contains("eyJ"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
