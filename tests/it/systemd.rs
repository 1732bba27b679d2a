//! The service-manager handshake, against a notify socket of our own: `READY=1` once the
//! tenants run, watchdog pings while the runtime works, `STOPPING=1` on SIGTERM, exit 0.

use crate::fixture::stdout_config;
use crate::kit::connector;
use mrav2_syslog_connector::simulator::{self, SimOptions};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

/// Reads datagrams until one contains `wanted` or the deadline passes.
fn wait_for(socket: &UnixDatagram, wanted: &str, seen: &mut Vec<String>) -> bool {
    let deadline = std::time::SystemTime::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while std::time::SystemTime::now() < deadline {
        match socket.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let hit = text.lines().any(|l| l == wanted);
                seen.push(text);
                if hit {
                    return true;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("notify socket: {e}"),
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_watchdog_and_stopping_reach_the_notify_socket() {
    let options = SimOptions {
        events: 5,
        rate: 0,
        tenants: [("acme".to_string(), "acme-key".to_string())].into(),
        ..SimOptions::default()
    };
    let (addr, sim) = simulator::start(options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.ini");
    std::fs::write(
        &config,
        stdout_config(&format!("http://{addr}"), "acme-key"),
    )
    .unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    let mut child = connector()
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    assert!(
        wait_for(&socket, "READY=1", &mut seen),
        "no READY=1: {seen:?}"
    );
    assert!(
        wait_for(&socket, "WATCHDOG=1", &mut seen),
        "no watchdog ping: {seen:?}"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(
        wait_for(&socket, "STOPPING=1", &mut seen),
        "no STOPPING=1: {seen:?}"
    );
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    sim.shutdown().await;
}
