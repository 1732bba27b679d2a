//! The process against an unlucky or hostile environment (issue 12, items 3 and 7): a
//! stderr or stdout pipe nobody reads must neither stop delivery nor shutdown, a signal
//! in the first milliseconds must not kill the process, and a second instance on the
//! same state directory must refuse to run. The real binary, the simulator as its own
//! process, a raw TCP listener as the destination.

use crate::fixture::{Setup, config, sim, stdout_config, tcp};
use crate::kit::{PATIENCE, connector};
use crate::receiver::RawTcpListener;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
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

/// Item 3, as `connector 2>&1 | reader-that-hangs` runs it: stdout and stderr are one
/// pipe nobody reads. The log output is stuck, its queue full, and stdout full as well:
/// the exit must abandon the queued lines rather than wait on (or print into) the pipe.
#[tokio::test]
async fn one_unread_pipe_for_stdout_and_stderr_stops_neither_delivery_nor_shutdown() {
    const EVENTS: usize = 15_000;
    let listener = RawTcpListener::start().await;
    let sim = sim(&[
        "--events",
        &EVENTS.to_string(),
        "--batch-size",
        "1",
        "--rate",
        "0",
    ]);
    let setup = Setup::new(&config(&sim.url(), &tcp(listener.port()), "", ""));
    let (mut unread, both) = std::io::pipe().unwrap();
    let child = connector()
        .arg("--config")
        .arg(setup.config())
        .arg("--state-dir")
        .arg(setup.state())
        .arg("-v")
        .stdin(Stdio::null())
        .stdout(both.try_clone().unwrap())
        .stderr(both)
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    // The test's copy of the writing end is gone with `connector()`'s command; the
    // reading end is held open and never read until the process has exited.

    let deadline = Instant::now() + PATIENCE * 2;
    while records(&listener) < EVENTS {
        assert!(
            Instant::now() < deadline,
            "delivery stalled at {} of {EVENTS} records while nobody read the pipe",
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
    assert!(
        status.is_some_and(|s| s.success()),
        "no clean exit within 7 s of SIGTERM with stdout and stderr unread ({status:?} after {took:?})"
    );
    assert!(took < Duration::from_secs(6), "exit took {took:?}");
    let mut said = Vec::new();
    let _ = unread.read_to_end(&mut said);
    let said = String::from_utf8_lossy(&said);
    assert!(
        !said.contains("logging worker"),
        "a stray line on stdout:\n{said}"
    );
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

/// Waits (busily: this is about microseconds) until the connector's `main` has
/// blocked SIGHUP, SIGINT and SIGTERM (its first statement), as `/proc/PID/status`
/// shows in `SigBlk`, or already handles them (`SigCgt`). Before `main` no program can handle a signal (the dynamic loader
/// alone takes milliseconds for a debug build on a busy machine), so that is the
/// moment from which the promise holds; a build that never holds them fails here.
fn wait_until_signals_are_held(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_mrav2-syslog-connector"));
    // SIGHUP is signal 1 (bit 0), SIGINT 2 (bit 1), SIGTERM 15 (bit 14).
    let held: u64 = (1 << 0) | (1 << 1) | (1 << 14);
    loop {
        // Until `exec`, the child is a copy of this test process, mask and all.
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        let status = if exe == binary {
            std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
        } else {
            String::new()
        };
        let mask = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(0)
        };
        // Held by `main`, or already handled (the handlers are in and the signals
        // released again: a start-up can pass through the held phase between polls).
        if mask("SigBlk:") & held == held || mask("SigCgt:") & held == held {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the connector never held or handled SIGHUP, SIGINT and SIGTERM at start"
        );
        std::hint::spin_loop();
    }
}

/// Item 7: SIGHUP (logrotate) or SIGTERM a few milliseconds after `main` began, before
/// the runtime and its handlers exist. SIGHUP must not end the process; SIGTERM must
/// end it cleanly (exit 0), not by the signal's default action.
#[tokio::test]
async fn signals_in_the_first_milliseconds_do_not_kill_the_process() {
    let listener = RawTcpListener::start().await;
    let sim = sim(&["--events", "5", "--rate", "0"]);
    let setup = Setup::new(&config(&sim.url(), &tcp(listener.port()), "", ""));
    for delay_ms in [1u64, 3, 6, 12] {
        for sig in [Signal::SIGHUP, Signal::SIGTERM] {
            let log = setup.path(&format!("early-{delay_ms}-{sig}.log"));
            let child = connector()
                .arg("--config")
                .arg(setup.config())
                .arg("--state-dir")
                .arg(setup.state())
                .arg("--log-file")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut child = Reap(child);
            wait_until_signals_are_held(child.0.id());
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            signal(&child.0, sig);
            let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
            if sig == Signal::SIGHUP {
                let deadline = Instant::now() + PATIENCE;
                while !read_log().contains("started successfully") {
                    if let Ok(Some(status)) = child.0.try_wait() {
                        panic!(
                            "SIGHUP {delay_ms} ms after the start ended the process ({status:?}, signal {:?}):\n{}",
                            status.signal(),
                            read_log()
                        );
                    }
                    assert!(Instant::now() < deadline, "never started:\n{}", read_log());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                signal(&child.0, Signal::SIGTERM);
            }
            let status = exit_within(&mut child.0, Duration::from_secs(10)).await;
            assert!(
                status.is_some_and(|s| s.success()),
                "{sig} {delay_ms} ms after the start: not a clean exit ({status:?}, signal {:?}):\n{}",
                status.and_then(|s| s.signal()),
                read_log()
            );
        }
    }
}

/// Item 7: two instances on one state directory would deliver everything twice. The
/// second exits 1 and says which directory is in use; the first keeps running.
#[tokio::test]
async fn a_second_instance_on_the_same_state_directory_exits_1() {
    let listener = RawTcpListener::start().await;
    let sim = sim(&["--events", "5", "--rate", "1"]);
    let setup = Setup::new(&config(&sim.url(), &tcp(listener.port()), "", ""));
    let mut first = setup.run(&[]);
    crate::kit::eventually(
        || first.output(),
        PATIENCE,
        || first.output().contains("started successfully"),
    )
    .await;
    // Another config file (another log, same state directory), so only the state
    // directory is shared.
    let stderr = setup.path("second.stderr");
    let second = connector()
        .arg("--config")
        .arg(setup.config())
        .arg("--state-dir")
        .arg(setup.state())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut second = Reap(second);
    let status = exit_within(&mut second.0, Duration::from_secs(10)).await;
    let said = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "a second instance on the same state directory must exit 1 at once: {said}"
    );
    assert!(
        said.contains("another instance") && said.contains(&setup.state().display().to_string()),
        "the message names the cause and the directory: {said}"
    );
    assert!(first.is_running(), "the first instance must keep running");
    first.stop().await;
}
