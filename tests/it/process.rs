//! The process against an unlucky environment (issue 12, item 3): a stderr or stdout
//! pipe nobody reads must neither stop delivery nor shutdown. The real binary, the simulator as its own
//! process, a raw TCP listener as the destination.

use crate::fixture::{Setup, config, sim, stdout_config, tcp};
use crate::kit::{PATIENCE, connector};
use crate::receiver::RawTcpListener;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::Read;
use std::process::{Child, ExitStatus, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// Records so far at the raw listener (LF framing: one per line).
fn records(listener: &RawTcpListener) -> usize {
    listener.received().iter().filter(|&&b| b == b'\n').count()
}

/// Waits up to `within` for `child` to exit.
async fn exit_within(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn signal(child: &Child, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    kill(pid, signal).unwrap();
}

/// Kills and reaps the child when the test ends early.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Item 3: with `-v` and no `--log-file`, stderr is a pipe the test never reads. Every
/// event still arrives (the log drops lines instead of stalling the tenant), and
/// SIGTERM still ends the process cleanly within the 5-second grace period.
#[tokio::test]
async fn an_unread_stderr_pipe_stops_neither_delivery_nor_shutdown() {
    const EVENTS: usize = 15_000;
    let listener = RawTcpListener::start().await;
    // One event per message: one debug line per batch, far more than the log queue and
    // the pipe hold together.
    let sim = sim(&[
        "--events",
        &EVENTS.to_string(),
        "--batch-size",
        "1",
        "--rate",
        "0",
    ]);
    let setup = Setup::new(&config(&sim.url(), &tcp(listener.port()), "", ""));
    let child = connector()
        .arg("--config")
        .arg(setup.config())
        .arg("--state-dir")
        .arg(setup.state())
        .arg("-v")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    // Held open and never read until the process has exited.
    let mut stderr = child.0.stderr.take().unwrap();

    let deadline = Instant::now() + PATIENCE * 2;
    while records(&listener) < EVENTS {
        assert!(
            Instant::now() < deadline,
            "delivery stalled at {} of {EVENTS} records while nobody read stderr",
            records(&listener)
        );
        assert!(
            matches!(child.0.try_wait(), Ok(None)),
            "the connector exited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let asked = Instant::now();
    signal(&child.0, Signal::SIGTERM);
    let status = exit_within(&mut child.0, Duration::from_secs(7)).await;
    let took = asked.elapsed();
    let mut said = Vec::new();
    let _ = stderr.read_to_end(&mut said);
    assert!(
        status.is_some_and(|s| s.success()),
        "no clean exit within 7 s of SIGTERM with stderr unread ({status:?} after {took:?})"
    );
    assert!(took < Duration::from_secs(6), "exit took {took:?}");
}

/// Item 3: `protocol = stdout` into a pipe nobody reads. SIGTERM must end the process
/// within the grace period (plus a margin), although the write in progress never ends.
#[tokio::test]
async fn an_unread_stdout_pipe_does_not_stop_shutdown() {
    let sim = sim(&["--events", "3000", "--rate", "0"]);
    let setup = Setup::new(&stdout_config(&sim.url(), crate::fixture::KEY));
    let log = setup.path("connector.log");
    let child = connector()
        .arg("--config")
        .arg(setup.config())
        .arg("--state-dir")
        .arg(setup.state())
        .arg("--log-file")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    let _stdout = child.0.stdout.take().unwrap();
    // Wait until records were written (a token fetched and a stream opened) and the
    // pipe had time to fill.
    crate::kit::eventually(
        || std::fs::read_to_string(&log).unwrap_or_default(),
        PATIENCE,
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("started successfully")
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = Instant::now();
    signal(&child.0, Signal::SIGTERM);
    let status = exit_within(&mut child.0, Duration::from_secs(8)).await;
    assert!(
        status.is_some(),
        "still running 8 s after SIGTERM with stdout unread:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(7),
        "exit took {:?}",
        asked.elapsed()
    );
}
