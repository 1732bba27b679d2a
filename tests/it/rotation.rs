//! Key rotation (`docs/operations.md#key-rotation`) with the real binary: the
//! simulator (whose `POST /_sim/key` rotates a tenant's Application Key, revoking its
//! tokens and ending its streams) with a real rsyslog, and the HEC test receiver
//! (whose accepted token the test changes). The connector is never restarted; every
//! event generated before, during and after a rotation arrives; no key or token ever
//! appears in its output.

use crate::fixture::{KEY, Setup, SimSpec, TENANT, config, lookout, tcp};
use crate::hec::receiver::{HecReceiver, Script};
use crate::kit::{PATIENCE, Running, Sim, eventually, http_request, received_ids};
use crate::receiver::Rsyslog;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

const OLD: &str = "rotation-old-key-4f1c7a";
const NEW: &str = "rotation-new-key-9b2e55";
const NEWER: &str = "rotation-newer-key-d01f3c";

/// Rotates [`TENANT`]'s key at the simulator, as an operator does in the console.
fn rotate_at_simulator(sim: &Sim, key: &str) {
    let (status, body) = http_request(
        sim.addr,
        "POST",
        &format!("/_sim/key?tenant={TENANT}"),
        &[],
        key.as_bytes(),
    )
    .expect("POST /_sim/key");
    assert_eq!(status, 204, "{body}");
}

/// Token requests the simulator refused for an unknown key.
fn refused_token_requests(sim: &Sim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r["endpoint"] == "token" && r["status"] == 401 && r["auth"] == "invalid")
        .count()
}

/// Token requests the simulator answered with a token.
fn granted_token_requests(sim: &Sim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r["endpoint"] == "token" && r["status"] == 200)
        .count()
}

/// Waits until the connector got a token after `granted` earlier ones, then a second
/// more (so that events generated after the rotation exist too).
async fn a_new_token_is_granted(sim: &Sim, granted: usize, running: &Running) {
    eventually(
        || format!("no token granted with the new key\n{}", running.output()),
        PATIENCE,
        || granted_token_requests(sim) > granted,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Waits until every event the simulator generated so far was delivered, as
/// `delivered` reports the ids.
async fn everything_so_far_arrives(
    sim: &Sim,
    what: &str,
    running: &Running,
    delivered: impl Fn() -> Vec<String>,
) {
    let generated = sim.event_ids(TENANT);
    eventually(
        || {
            let got: HashSet<String> = delivered().into_iter().collect();
            let missing = generated.iter().filter(|id| !got.contains(*id)).count();
            format!(
                "{what}: {missing} of {} events generated so far never arrived\n{}",
                generated.len(),
                running.output()
            )
        },
        PATIENCE,
        || {
            let got: HashSet<String> = delivered().into_iter().collect();
            generated.iter().all(|id| got.contains(id))
        },
    )
    .await;
}

fn write_secret(path: &Path, secret: &str) {
    std::fs::write(path, format!("{secret}\n")).expect("write the secret file");
}

fn assert_no_secret(output: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !output.contains(secret),
            "a secret reached the output:\n{output}"
        );
    }
}

#[tokio::test]
async fn a_rotated_application_key_is_read_again_from_its_file_without_a_restart() {
    let rsyslog = Rsyslog::start().await;
    let sim = SimSpec::new()
        .key(OLD)
        .start(&["--events", "200", "--rate", "20"]);
    let setup = Setup::new("");
    let key_file = setup.path("api_key");
    write_secret(&key_file, OLD);
    // `api_key_file` wins over the `api_key` the fixture writes.
    setup.write(&config(
        &sim.url(),
        &tcp(rsyslog.tcp_port),
        &format!("api_key_file = {}\n", key_file.display()),
        "",
    ));
    let mut running = setup.run(&[]);
    let records = rsyslog.path("tcp.log");
    let delivered = || received_ids(&records);
    everything_so_far_arrives(&sim, "the history", &running, delivered).await;

    // The usual order: the new key goes in the file, then the old one is revoked.
    // The stream ends, the old key is refused once, the file is read again and the
    // new key is used at once.
    let granted = granted_token_requests(&sim);
    write_secret(&key_file, NEW);
    rotate_at_simulator(&sim, NEW);
    a_new_token_is_granted(&sim, granted, &running).await;
    assert_eq!(
        refused_token_requests(&sim),
        1,
        "the old key was not refused exactly once"
    );
    everything_so_far_arrives(&sim, "after the first rotation", &running, delivered).await;

    // The other order: the key is revoked first. The connector is refused, finds the
    // file unchanged and waits (the long backoff, minutes); the file changes a moment
    // later and the new key is in use within about a second, not after the backoff.
    let refused = refused_token_requests(&sim);
    let granted = granted_token_requests(&sim);
    rotate_at_simulator(&sim, NEWER);
    eventually(
        || format!("the revoked key was not refused\n{}", running.output()),
        PATIENCE,
        || refused_token_requests(&sim) > refused,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    write_secret(&key_file, NEWER);
    // Within a few seconds, far less than the long backoff (150 s or more).
    let written = tokio::time::Instant::now();
    a_new_token_is_granted(&sim, granted, &running).await;
    assert!(
        written.elapsed() < Duration::from_secs(10),
        "the new key was used only after {:?}",
        written.elapsed()
    );
    everything_so_far_arrives(&sim, "after the second rotation", &running, delivered).await;

    assert!(running.is_running(), "the connector ended");
    running.stop().await;
    let output = running.output();
    let source = format!("source=file {}", key_file.display());
    let changed = output
        .lines()
        .filter(|l| l.contains("re-read it from its source and it changed") && l.contains(&source))
        .count();
    assert_eq!(
        changed, 2,
        "one info line per rotation, naming the file:\n{output}"
    );
    let unchanged = output
        .lines()
        .filter(|l| l.contains("re-read it from its source, it is unchanged"))
        .count();
    assert_eq!(
        unchanged, 1,
        "the one refusal before the file changed is logged once:\n{output}"
    );
    // Only the second rotation, where the file changed after the refusal, waited.
    let waited = output
        .lines()
        .filter(|l| l.contains("stream reconnect") && l.contains("reason=\"key_rejected\""))
        .count();
    assert_eq!(
        waited, 1,
        "a refusal with a changed key file must not wait:\n{output}"
    );
    assert_no_secret(&output, &[OLD, NEW, NEWER, KEY]);
}

const HEC_NEW: &str = "99999999-8888-7777-6666-555555555555";

#[tokio::test]
async fn a_rotated_hec_token_is_read_again_from_token_file_without_a_restart() {
    let sim = SimSpec::new().start(&["--events", "200", "--rate", "20"]);
    let receiver = HecReceiver::start(Script::default()).await;
    let old = Script::default().token;
    let setup = Setup::new("");
    let token_file = setup.path("hec_token");
    write_secret(&token_file, &old);
    setup.write(&format!(
        "{}sse_timeout = 10\ndestinations = splunk\n\n[destination:splunk]\ntype = splunk_hec\n\
         url = {}\ntoken_file = {}\n\n[connector]\ncommit_interval_ms = 200\n",
        lookout(&sim.url(), KEY, ""),
        receiver.url(),
        token_file.display(),
    ));
    let mut running = setup.run(&[]);
    let delivered = || receiver.indexed_ids();
    everything_so_far_arrives(&sim, "the history", &running, delivered).await;

    // Splunk's side changes first: every request is refused (403) until the file
    // holds the new token, which is then used without a restart.
    receiver.script(|s| s.token = HEC_NEW.into());
    eventually(
        || format!("the old token was never refused\n{}", running.output()),
        PATIENCE,
        || receiver.log().iter().any(|r| r.status == 403),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    write_secret(&token_file, HEC_NEW);
    everything_so_far_arrives(&sim, "after the rotation", &running, delivered).await;

    assert!(running.is_running(), "the connector ended");
    running.stop().await;
    let output = running.output();
    let source = format!("source=file {}", token_file.display());
    assert!(
        output.lines().any(|l| l.contains(
            "hec refused the token; re-read it from its source and it changed; using the new token"
        ) && l.contains(&source)),
        "no info line naming the token file:\n{output}"
    );
    assert_no_secret(&output, &[&old, HEC_NEW, KEY]);
}
