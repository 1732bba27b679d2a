//! `demo`: one command shows real records. The built-in simulator and a connector run in
//! one process and LEEF (or Splunk) records appear on standard output; Ctrl-C ends it
//! cleanly.

use crate::kit::connector;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

/// Runs `demo ARGS`, reads `n` stdout lines, sends SIGINT and returns the lines and
/// whether the process exited 0.
async fn demo(args: &[&str], n: usize) -> (Vec<String>, bool) {
    let mut child = connector()
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    while lines.len() < n {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    (lines, status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_prints_leef_records_and_stops_cleanly_on_ctrl_c() {
    let (lines, ok) = demo(&["--events", "20"], 20).await;
    assert_eq!(lines.len(), 20, "fewer records than events: {lines:?}");
    for line in &lines {
        assert!(
            line.starts_with('<')
                && line.contains(" lookout-mra: LEEF:2.0|Lookout|MRAv2 Client|2.0|"),
            "not a LEEF syslog record: {line}"
        );
        assert!(line.contains("\tlookoutEntName=demo\t"), "{line}");
    }
    assert!(ok, "demo did not exit 0 on SIGINT");
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_speaks_splunk_json_when_asked() {
    let (lines, ok) = demo(&["--format", "splunk", "--events", "5"], 5).await;
    assert_eq!(lines.len(), 5, "{lines:?}");
    for line in &lines {
        let json = &line[line.find(": {").expect("a JSON message after the header") + 2..];
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(value["entName"], "demo", "{line}");
    }
    assert!(ok);
}
