//! Configuration through the real binary: exit codes, what reaches stderr and stdout,
//! and `config.ini.example` kept in step with the validator.

use crate::kit::connector;
use mrav2_syslog_connector::config::load::{
    CONNECTOR_KEYS, HEC_KEYS, LOOKOUT_KEYS, PROXY_KEYS, SYSLOG_KEYS,
};
use mrav2_syslog_connector::config::{Format, load_str_with_env};
use std::path::{Path, PathBuf};
use std::process::Output;

const EXAMPLE: &str = include_str!("../../config.ini.example");

const GOOD: &str = "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = sekrit-key\n\
                    [syslog]\nhost = 127.0.0.1\nport = 10514\n";

/// Writes `text` as `config.ini` (mode 0600) in a fresh directory.
fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("config.ini");
    std::fs::write(&path, text).expect("write config");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod config");
    }
    (dir, path)
}

fn run(args: &[&str]) -> Output {
    connector().args(args).output().expect("run the binary")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn the_example_loads_with_its_placeholder_key() {
    let config = load_str_with_env(Path::new("config.ini.example"), EXAMPLE, &|_| None)
        .unwrap_or_else(|e| panic!("config.ini.example does not load:\n{e}"));
    assert_eq!(config.tenants.len(), 1);
    let t = &config.tenants[0];
    assert_eq!(t.entity_name, "acme");
    assert_eq!(t.api_key.expose(), "REPLACE_WITH_YOUR_APPLICATION_KEY");
    assert_eq!(t.syslog.format, Format::Leef { delimiter: '\t' });
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn the_example_documents_every_key_in_its_section() {
    // Keys per real `[section]` header of the example, commented (`# key =`) or not.
    let mut current = String::new();
    let mut documented: Vec<(String, String)> = Vec::new();
    for line in EXAMPLE.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            continue;
        }
        let body = line.trim_start_matches(['#', ';']).trim_start();
        if let Some((key, _)) = body.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                documented.push((current.clone(), key.to_string()));
            }
        }
    }
    let mut missing = Vec::new();
    for (section, keys) in [
        ("lookout", LOOKOUT_KEYS),
        ("syslog", SYSLOG_KEYS),
        ("proxy", PROXY_KEYS),
        ("connector", CONNECTOR_KEYS),
    ] {
        for key in keys {
            if !documented.iter().any(|(s, k)| s == section && k == key) {
                missing.push(format!("[{section}] {key}"));
            }
        }
    }
    // The HEC keys, in the commented [destination:NAME] example at the end.
    let hec = EXAMPLE
        .split_once("# [destination:")
        .map_or("", |(_, rest)| rest);
    for key in HEC_KEYS {
        if !hec.contains(&format!("# {key} =")) {
            missing.push(format!("[destination:NAME] {key}"));
        }
    }
    assert!(
        missing.is_empty(),
        "not documented in config.ini.example: {missing:?}"
    );
}

#[test]
fn check_config_prints_a_summary_without_secrets() {
    let (_dir, path) = config_file(GOOD);
    let out = run(&["check-config", "--config", path_arg(&path)]);
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{so}\nstderr:\n{se}");
    for expected in [
        "tenant acme [lookout]",
        "https://api.lookout.com",
        "THREAT,DEVICE",
        "id=0",
        "tcp 127.0.0.1:10514 (lf framing)",
        "qradar leef 2.0",
        "configuration ok",
    ] {
        assert!(so.contains(expected), "{expected:?} not in:\n{so}");
    }
    assert!(
        !so.contains("sekrit") && !se.contains("sekrit"),
        "{so}\n{se}"
    );
}

#[test]
fn known_failures_37_every_problem_at_once_exit_78() {
    let (_dir, path) = config_file(
        "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\n\
         threat_enabled = false\ndevice_enabled = false\naudit_enabled = false\nsmishing_enabled = false\n\
         [syslog]\nport = 99999\n",
    );
    for args in [
        vec!["check-config", "--config", path_arg(&path)],
        vec!["--config", path_arg(&path)],
        vec!["run", "--config", path_arg(&path)],
    ] {
        let out = run(&args);
        let se = stderr(&out);
        assert_eq!(out.status.code(), Some(78), "{args:?}\n{se}");
        let file = path.display();
        for line in [
            format!(
                "{file}: [lookout] api_key: missing; set api_key, api_key_file or MRAV2_API_KEY"
            ),
            format!(
                "{file}: [lookout]: threat_enabled, device_enabled, audit_enabled and smishing_enabled are all false; enable at least one event type"
            ),
            format!(
                "{file}: [syslog] port = \"99999\": not a port; expected a number from 1 to 65535"
            ),
        ] {
            assert!(se.lines().any(|l| l == line), "missing {line:?} in:\n{se}");
        }
        assert!(se.contains("3 configuration problems"), "{se}");
        assert!(
            !se.contains("not implemented"),
            "config is checked first:\n{se}"
        );
    }
}

#[test]
fn known_failures_3_unknown_forwarder_type_exits_78() {
    let (_dir, path) = config_file(&format!("{GOOD}forwarder_type = splunkk\n"));
    let out = run(&["check-config", "--config", path_arg(&path)]);
    let se = stderr(&out);
    assert_eq!(out.status.code(), Some(78), "{se}");
    assert!(se.contains("[syslog] forwarder_type = \"splunkk\""), "{se}");
}

#[test]
fn the_environment_supplies_the_key() {
    let (_dir, path) =
        config_file("[lookout]\nentity_name = acme-eu\napi_domain = https://api.lookout.com\n");
    let out = connector()
        .args(["check-config", "--config", path_arg(&path)])
        .env("MRAV2_API_KEY_ACME_EU", "from-env")
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).contains("from-env"));
}

#[cfg(unix)]
#[test]
fn known_failures_38_readable_config_with_a_key_warns() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = config_file(GOOD);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run(&["check-config", "--config", path_arg(&path)]);
    let se = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{se}");
    assert!(
        se.contains(&format!("warning: {}: holds an api_key", path.display()))
            && se.contains("chmod 600"),
        "{se}"
    );
}

#[test]
fn status_runs_without_the_key_that_only_the_service_can_read() {
    // Under systemd `api_key_file` names a credential that exists only for the service;
    // `status` reads state files, not the API, so it does not need the key.
    let (dir, path) = config_file(
        "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\n\
         api_key_file = /run/credentials/mrav2-connector@acme.service/api-key\n\
         [syslog]\nhost = 127.0.0.1\nport = 10514\n",
    );
    let state = dir.path().join("state");
    let out = run(&[
        "status",
        "--config",
        path_arg(&path),
        "--state-dir",
        path_arg(&state),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("acme"), "{}", stdout(&out));
    // `check-config` still insists on a readable key.
    let out = run(&["check-config", "--config", path_arg(&path)]);
    let se = stderr(&out);
    assert_eq!(out.status.code(), Some(78), "{se}");
    assert!(se.contains("api_key_file"), "{se}");
}

#[test]
fn a_missing_file_exits_78() {
    let out = run(&["check-config", "--config", "/nonexistent/config.ini"]);
    let se = stderr(&out);
    assert_eq!(out.status.code(), Some(78), "{se}");
    assert!(
        se.contains("/nonexistent/config.ini: cannot read the file: no such file"),
        "{se}"
    );
}

/// `check-config --probe` against the built-in simulator and a local TCP listener:
/// every step is reported, a good setup exits 0, a rejected key exits 1 and says why.
#[tokio::test(flavor = "multi_thread")]
async fn probe_reports_each_step_against_loopback_services() {
    use mrav2_syslog_connector::simulator::{self, SimOptions};
    let options = SimOptions {
        events: 3,
        rate: 0,
        tenants: [("acme".to_string(), "acme-key".to_string())].into(),
        ..SimOptions::default()
    };
    let (addr, sim) = simulator::start(options).await.unwrap();
    let syslog = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = syslog.local_addr().unwrap().port();
    for (key, code, needle) in [
        ("acme-key", 0, "syslog: ok: connected to"),
        ("wrong-key", 1, "application key rejected for tenant acme"),
    ] {
        let text = format!(
            "[lookout]\nentity_name = acme\napi_domain = http://{addr}\napi_key = {key}\n\n\
             [syslog]\nhost = 127.0.0.1\nport = {port}\n"
        );
        let (_dir, path) = config_file(&text);
        let path = path.clone();
        let out = tokio::task::spawn_blocking(move || {
            run(&["check-config", "--probe", "--config", path_arg(&path)])
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(code), "{stdout}{}", stderr(&out));
        assert!(stdout.contains("probe acme:"), "{stdout}");
        assert!(stdout.contains(needle), "{stdout}");
        if code == 0 {
            assert!(stdout.contains("token: ok"), "{stdout}");
            assert!(
                stdout.contains("stream: ok: 200 text/event-stream"),
                "{stdout}"
            );
        }
    }
    sim.shutdown().await;
}

#[test]
fn daemon_without_pid_file_is_a_usage_error() {
    let (_dir, path) = config_file(GOOD);
    let out = run(&["--config", path_arg(&path), "--daemon"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--pid-file"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["run"],
        &["--bogus"],
        &["simulate"],
        &["demo", "--format", "cef"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn version_prints_the_version() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out).trim(),
        format!("mrav2-syslog-connector {}", env!("CARGO_PKG_VERSION"))
    );
}
