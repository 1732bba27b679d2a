//! Running the connector as an operator does: SIGHUP for logrotate (known-failures 12),
//! `--daemon` with a locked pid file (40), where state lives and what an unwritable
//! state directory does (16), and what the log shows at each level (36). The real
//! binary, the simulator as its own process, and a raw TCP listener as the syslog
//! destination (these tests look at the connector, not at the records).

use crate::fixture::{Setup, TENANT, config, sim, tcp};
use crate::kit::{PATIENCE, Running, eventually, write_config};
use crate::receiver::RawTcpListener;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Records so far at the raw listener (LF framing: one per line).
fn records(listener: &RawTcpListener) -> usize {
    listener.received().iter().filter(|&&b| b == b'\n').count()
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

fn os(p: &Path) -> &OsStr {
    p.as_os_str()
}

/// Known-failures 12: rename the log file and send SIGHUP. A new file appears and gets
/// lines, the process (same pid) keeps running, and events keep flowing.
#[tokio::test]
async fn sighup_after_renaming_the_log_file_reopens_it_and_changes_nothing_else() {
    let listener = RawTcpListener::start().await;
    let sim = sim(&["--events", "10", "--rate", "10"]);
    let setup = Setup::new(&config(&sim.url(), &tcp(listener.port()), "", ""));
    let log = setup.path("connector.log");
    // -v: heartbeats every 200 ms give the log a steady stream of lines.
    let mut running = setup.spawn(
        &[OsStr::new("--log-file"), os(&log), OsStr::new("-v")],
        "connector.stderr",
        Some(&log),
    );
    let pid = running.pid();
    eventually(
        || format!("nothing logged to {}\n{}", log.display(), running.output()),
        PATIENCE,
        || !read(&log).is_empty(),
    )
    .await;

    let rotated = setup.path("connector.log.1");
    std::fs::rename(&log, &rotated).expect("rename the log file");
    let flowing = records(&listener);
    running.signal(Signal::SIGHUP);

    eventually(
        || {
            format!(
                "{} was not re-created with lines after SIGHUP",
                log.display()
            )
        },
        PATIENCE,
        || read(&log).lines().count() >= 2,
    )
    .await;
    assert!(
        running.is_running(),
        "SIGHUP ended the process:\n{}",
        running.output()
    );
    assert_eq!(running.pid(), pid);
    assert!(
        !read(&rotated).is_empty(),
        "the rotated file lost its lines"
    );
    eventually(
        || "no events after SIGHUP".into(),
        PATIENCE,
        || records(&listener) >= flowing + 5,
    )
    .await;
    running.stop().await;
}

/// Ends a daemon (not our child) when the test ends, however it ends.
struct Daemon(Vec<i32>);

impl Drop for Daemon {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Alive and not a zombie (a daemon is re-parented; its reaper may be slow).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

fn pid_in(file: &Path) -> Option<i32> {
    read(file).trim().parse().ok()
}

/// Known-failures 40: a second `--daemon` with the same pid file exits 1 with a message
/// naming the file, and the first keeps running.
#[tokio::test]
async fn a_second_daemon_on_the_same_pid_file_exits_1_naming_the_file() {
    let listener = RawTcpListener::start().await;
    let sim = sim(&["--events", "10", "--rate", "1"]);
    let setup = Setup::new(&config(&sim.url(), &tcp(listener.port()), "", ""));
    let pid_file = setup.path("connector.pid");
    let daemon = |log: &PathBuf, stderr: &str| {
        setup.spawn(
            &[
                OsStr::new("--log-file"),
                os(log),
                OsStr::new("--daemon"),
                OsStr::new("--pid-file"),
                os(&pid_file),
            ],
            stderr,
            Some(log),
        )
    };

    let first_log = setup.path("first.log");
    let mut launcher = daemon(&first_log, "first.stderr");
    let status = launcher.wait_exit(PATIENCE).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the first --daemon did not detach cleanly ({status:?}):\n{}",
        launcher.output()
    );
    eventually(
        || {
            format!(
                "no live pid in {}\n{}",
                pid_file.display(),
                launcher.output()
            )
        },
        PATIENCE,
        || pid_in(&pid_file).is_some_and(alive),
    )
    .await;
    let first = pid_in(&pid_file).expect("a pid");
    let mut cleanup = Daemon(vec![first]);
    // It works: events reach the destination.
    eventually(
        || "the daemon delivers nothing".into(),
        PATIENCE,
        || records(&listener) >= 10,
    )
    .await;

    let second_log = setup.path("second.log");
    let mut second = daemon(&second_log, "second.stderr");
    let status = second.wait_exit(PATIENCE).await;
    if let Some(pid) = pid_in(&pid_file).filter(|&p| p != first) {
        cleanup.0.push(pid);
    }
    let said = format!("{}{}", second.output(), read(&second_log));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "the second instance did not exit 1:\n{said}"
    );
    assert!(
        said.contains(&pid_file.display().to_string()),
        "the message does not name {}:\n{said}",
        pid_file.display()
    );
    assert!(alive(first), "the first instance is gone");
    assert_eq!(pid_in(&pid_file), Some(first), "the pid file changed");

    // A clean stop of the first: SIGTERM ends it.
    kill(Pid::from_raw(first), Signal::SIGTERM).expect("signal the daemon");
    eventually(
        || "the daemon ignored SIGTERM".into(),
        PATIENCE,
        || !alive(first),
    )
    .await;
}

/// Known-failures 16: a read-only `--state-dir` is a start-up error: exit 1, and the
/// message names the directory.
///
/// As root, file modes do not stop writes, so the directory is made read-only for real:
/// the connector runs in its own mount namespace with the directory bind-mounted
/// read-only (`unshare`, util-linux). Otherwise `chmod 555` does it.
#[tokio::test]
async fn a_read_only_state_dir_exits_1_naming_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (cfg, ro) = (
        dir.path().join("config.ini"),
        dir.path().join("read-only-state"),
    );
    std::fs::create_dir(&ro).expect("state directory");
    // Nothing listens there: if the connector started anyway it would only retry.
    write_config(&cfg, &config("http://127.0.0.1:9", &tcp(9), "", ""));
    let stderr = dir.path().join("connector.stderr");
    // The owner of a file we just made is our effective user.
    let root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&cfg).expect("config metadata").uid() == 0
    };
    let mut running = if root {
        let mut cmd = std::process::Command::new("unshare");
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .args(["--mount", "sh", "-c"])
            .arg(r#"mount --bind -o ro "$1" "$1" || exit 97; shift; exec "$@""#)
            .arg("sh")
            .arg(&ro)
            .arg(env!("CARGO_BIN_EXE_mrav2-syslog-connector"))
            .arg("--config")
            .arg(&cfg)
            .arg("--state-dir")
            .arg(&ro);
        Running::spawn_command(cmd, &stderr, None)
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        Running::spawn(
            &[
                OsStr::new("--config"),
                os(&cfg),
                OsStr::new("--state-dir"),
                os(&ro),
            ],
            &stderr,
            None,
        )
    };
    let status = running.wait_exit(PATIENCE).await;
    let said = running.output();
    assert_ne!(
        status.and_then(|s| s.code()),
        Some(97),
        "could not make a read-only bind mount (unshare needs CAP_SYS_ADMIN):\n{said}"
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "a read-only state directory did not exit 1 ({status:?}):\n{said}"
    );
    assert!(
        said.contains(&ro.display().to_string()),
        "the message does not name {}:\n{said}",
        ro.display()
    );
}

/// Known-failures 16: with neither `--state-dir` nor `state_dir`, `$STATE_DIRECTORY`
/// (systemd's `StateDirectory=`) holds the state file, not the config's directory.
#[tokio::test]
async fn state_directory_from_the_environment_holds_the_state_file() {
    let listener = RawTcpListener::start().await;
    let sim = sim(&["--events", "10", "--rate", "0"]);
    let config_dir = tempfile::tempdir().expect("temporary directory");
    let state_dir = tempfile::tempdir().expect("temporary directory");
    let cfg = config_dir.path().join("config.ini");
    write_config(&cfg, &config(&sim.url(), &tcp(listener.port()), "", ""));
    let mut running = Running::spawn_with_env(
        &[OsStr::new("--config"), os(&cfg)],
        &[("STATE_DIRECTORY", state_dir.path().as_os_str())],
        &config_dir.path().join("connector.stderr"),
        None,
    );
    let state_file = state_dir.path().join(format!("{TENANT}.position.json"));
    eventually(
        || format!("no {}\n{}", state_file.display(), running.output()),
        PATIENCE,
        || state_file.exists(),
    )
    .await;
    running.stop().await;
    assert!(
        !config_dir
            .path()
            .join(format!("{TENANT}.position.json"))
            .exists(),
        "a state file next to the config although STATE_DIRECTORY is set"
    );
}

/// Known-failures 36: at the default level the log has no heartbeat line and no record
/// content (`LEEF:`), while events and heartbeats flow; with `-v` heartbeats show.
///
/// The known failure's own test watches for 30 s; here heartbeats come every 200 ms, so the
/// ≥ 2 s it takes to deliver 40 records span ten heartbeats and many batches.
#[tokio::test]
async fn the_default_level_logs_no_heartbeats_or_records_and_verbose_shows_heartbeats() {
    let listener = RawTcpListener::start().await;
    let sim = sim(&["--events", "20", "--rate", "10"]);
    let setup = Setup::new(&config(&sim.url(), &tcp(listener.port()), "", ""));
    let run = |log: &Path, verbose: bool, stderr: &str| {
        let mut args = vec![OsStr::new("--log-file"), os(log)];
        if verbose {
            args.push(OsStr::new("-v"));
        }
        setup.spawn(&args, stderr, Some(log))
    };

    let info_log = setup.path("info.log");
    let mut quiet = run(&info_log, false, "info.stderr");
    eventually(
        || format!("records do not flow\n{}", quiet.output()),
        PATIENCE,
        || records(&listener) >= 40,
    )
    .await;
    quiet.stop().await;
    let text = quiet.output();
    assert!(
        !read(&info_log).is_empty(),
        "nothing in the log file:\n{text}"
    );
    let noisy: Vec<&str> = text
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("heartbeat") || l.contains("LEEF:"))
        .collect();
    assert!(
        noisy.is_empty(),
        "heartbeats or record contents at the default level:\n{}",
        noisy.join("\n")
    );

    let debug_log = setup.path("debug.log");
    let mut verbose = run(&debug_log, true, "debug.stderr");
    eventually(
        || format!("no heartbeat line with -v\n{}", verbose.output()),
        PATIENCE,
        || verbose.output().to_ascii_lowercase().contains("heartbeat"),
    )
    .await;
    verbose.stop().await;
}
