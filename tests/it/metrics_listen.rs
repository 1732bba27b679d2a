//! `metrics_listen` cannot starve the tenants (issue 12, item 4): idle and half-sent
//! connections are closed, concurrent ones are capped, and the process raises its
//! soft open-files limit at start. The real binary, the simulator, a raw TCP listener.

use crate::fixture::{Setup, config, sim, tcp};
use crate::kit::{PATIENCE, Running, eventually, free_port, http_get};
use crate::receiver::RawTcpListener;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;

/// Records so far at the raw listener (LF framing: one per line).
fn records(listener: &RawTcpListener) -> usize {
    listener.received().iter().filter(|&&b| b == b'\n').count()
}

/// Open file descriptors of `pid`.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Starts a connector with `metrics_listen` and waits until `/health` answers.
async fn start(
    sim_url: &str,
    listener: &RawTcpListener,
    wrapper: Option<&[&str]>,
) -> (Setup, Running, SocketAddr) {
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let setup = Setup::new(&config(
        sim_url,
        &tcp(listener.port()),
        "",
        &format!("metrics_listen = {metrics}\n"),
    ));
    let mut cmd = match wrapper {
        Some(args) => {
            let mut cmd = Command::new(args[0]);
            cmd.args(&args[1..]);
            cmd.arg(env!("CARGO_BIN_EXE_mrav2-syslog-connector"));
            cmd
        }
        None => crate::kit::connector(),
    };
    cmd.arg("--config")
        .arg(setup.config())
        .arg("--state-dir")
        .arg(setup.state());
    let running = Running::spawn_command(cmd, &setup.stderr(), None);
    eventually(
        || format!("/health never answered:\n{}", running.output()),
        PATIENCE,
        || http_get(metrics, "/health").is_ok(),
    )
    .await;
    (setup, running, metrics)
}

/// Whether the server closed `stream` within `within` (EOF or reset on read).
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed() {
    let listener = RawTcpListener::start().await;
    let sim = sim(&["--events", "5", "--rate", "1"]);
    let (_setup, mut running, metrics) = start(&sim.url(), &listener, None).await;

    let mut idle = TcpStream::connect(metrics).unwrap();
    let mut half = TcpStream::connect(metrics).unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut idle, Duration::from_secs(20)),
        "an idle connection to metrics_listen stayed open for 20 s"
    );
    assert!(
        closed_within(&mut half, Duration::from_secs(20)),
        "a half-sent request to metrics_listen stayed open for 20 s"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    running.stop().await;
}

#[tokio::test]
async fn hundreds_of_connections_neither_exhaust_descriptors_nor_stop_the_tenant() {
    let listener = RawTcpListener::start().await;
    let sim = sim(&["--events", "5", "--rate", "5"]);
    let (_setup, mut running, metrics) = start(&sim.url(), &listener, None).await;
    let before = open_fds(running.pid());
    let mut held = Vec::new();
    for _ in 0..300 {
        if let Ok(s) = TcpStream::connect(metrics) {
            held.push(s);
        }
    }
    // Give the connector time to accept all it will accept.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = open_fds(running.pid());
    assert!(
        during < before + 80,
        "300 idle metrics connections took {} descriptors (from {before} to {during})",
        during - before
    );
    // The tenant keeps delivering meanwhile.
    let flowing = records(&listener);
    eventually(
        || "no records while metrics connections were held".into(),
        PATIENCE,
        || records(&listener) > flowing + 3,
    )
    .await;
    drop(held);
    // And once the attackers are gone, /health answers again.
    eventually(
        || "/health did not answer after the connections were closed".into(),
        PATIENCE,
        || http_get(metrics, "/health").is_ok_and(|(status, _)| status == 200),
    )
    .await;
    running.stop().await;
}

#[tokio::test]
async fn the_soft_open_files_limit_is_raised_to_the_hard_limit() {
    let listener = RawTcpListener::start().await;
    let sim = sim(&["--events", "5", "--rate", "1"]);
    let (_setup, mut running, _) = start(
        &sim.url(),
        &listener,
        Some(&["prlimit", "--nofile=256:4096", "--"]),
    )
    .await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", running.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    running.stop().await;
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{line}");
}
