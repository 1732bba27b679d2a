//! Shared end-to-end fixture: the one tenant most tests use, its simulator, its
//! config text and the directory a connector runs in.

// A kit: not every test module uses every helper.
#![allow(dead_code)]

use crate::kit::{Running, Sim, saved_position, write_config};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The tenant of the one-tenant tests.
pub const TENANT: &str = "acme";
/// Its application key (unless a test needs a key of its own, see [`SimSpec::key`]).
pub const KEY: &str = "acme-application-key";

/// A one-tenant simulator to start: [`TENANT`] with a key, the connector's default types
/// and fast heartbeats (so a short `sse_timeout` never fires by accident).
#[derive(Clone, Copy)]
pub struct SimSpec<'a> {
    key: &'a str,
    seed: Option<&'a str>,
    scenario: Option<&'a str>,
    listen: &'a str,
}

impl<'a> SimSpec<'a> {
    /// [`KEY`], the simulator's default seed, no scenario, a free loopback port.
    pub const fn new() -> SimSpec<'a> {
        SimSpec {
            key: KEY,
            seed: None,
            scenario: None,
            listen: "127.0.0.1:0",
        }
    }

    /// Another application key for [`TENANT`].
    pub const fn key(self, key: &'a str) -> SimSpec<'a> {
        SimSpec { key, ..self }
    }

    /// A fixed generator seed (`--seed`).
    pub const fn seed(self, seed: &'a str) -> SimSpec<'a> {
        SimSpec {
            seed: Some(seed),
            ..self
        }
    }

    /// A scenario file holding `scenario` (JSON, `docs/event-stream.md#scenario-file`).
    pub const fn scenario(self, scenario: &'a str) -> SimSpec<'a> {
        SimSpec {
            scenario: Some(scenario),
            ..self
        }
    }

    /// A chosen address (e.g. where a stopped simulator was).
    pub const fn at(self, listen: &'a str) -> SimSpec<'a> {
        SimSpec { listen, ..self }
    }

    /// Starts it with `extra` after the shared arguments.
    pub fn start(self, extra: &[&str]) -> Sim {
        let tenant = format!("{TENANT}={}", self.key);
        let mut args = vec![
            "--tenant",
            &tenant,
            "--types",
            "THREAT,DEVICE",
            "--heartbeat-ms",
            "200",
        ];
        if let Some(seed) = self.seed {
            args.extend_from_slice(&["--seed", seed]);
        }
        args.extend_from_slice(extra);
        Sim::start_at(self.listen, self.scenario, &args)
    }
}

/// The default one-tenant simulator ([`SimSpec::new`]) with `extra` arguments.
pub fn sim(extra: &[&str]) -> Sim {
    SimSpec::new().start(extra)
}

/// The `[syslog]` lines for LF-framed TCP to `port` on loopback.
pub fn tcp(port: u16) -> String {
    format!("protocol = tcp\nport = {port}\n")
}

/// `[lookout]` for [`TENANT`] with `key` at `api_domain`, then `extra` lines.
pub fn lookout(api_domain: &str, key: &str, extra: &str) -> String {
    format!(
        "[lookout]\nentity_name = {TENANT}\napi_domain = {api_domain}\napi_key = {key}\n{extra}"
    )
}

/// `[syslog]` to loopback, then the `body` lines (e.g. [`tcp`]).
pub fn syslog(body: &str) -> String {
    format!("[syslog]\nhost = 127.0.0.1\n{body}")
}

/// A one-tenant config for `api_domain` with `key`, writing records to stdout.
pub fn stdout_config(api_domain: &str, key: &str) -> String {
    format!(
        "{}\n[syslog]\nprotocol = stdout\n",
        lookout(api_domain, key, "")
    )
}

/// A one-tenant config for `api_domain`: `syslog` and `connector` are the bodies of
/// those sections, `lookout` is added to `[lookout]`. Unless set there, `sse_timeout`
/// is 10 s and `commit_interval_ms` 200.
pub fn config(api_domain: &str, syslog: &str, lookout: &str, connector: &str) -> String {
    // Defaults for these tests, unless the caller sets them (a key twice is an error).
    let sse_timeout = if lookout.contains("sse_timeout") {
        ""
    } else {
        "sse_timeout = 10\n"
    };
    let commit = if connector.contains("commit_interval_ms") {
        ""
    } else {
        "commit_interval_ms = 200\n"
    };
    format!(
        "{}\n{}\n[connector]\n{commit}{connector}\n",
        self::lookout(api_domain, KEY, &format!("{sse_timeout}{lookout}")),
        self::syslog(syslog),
    )
}

/// One connector installation: a directory with `config.ini`, `state/` and the
/// stderr of every run.
pub struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// A fresh directory with `config` as `config.ini`.
    pub fn new(config: &str) -> Setup {
        let setup = Setup {
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        setup.write(config);
        setup
    }

    /// Replaces `config.ini`.
    pub fn write(&self, config: &str) {
        write_config(&self.config(), config);
    }

    /// `name` inside the directory (e.g. a log file).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `config.ini`.
    pub fn config(&self) -> PathBuf {
        self.path("config.ini")
    }

    /// `state/`.
    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// `connector.stderr`.
    pub fn stderr(&self) -> PathBuf {
        self.path("connector.stderr")
    }

    /// `mrav2-syslog-connector --config config.ini --state-dir state EXTRA…`.
    pub fn run(&self, extra: &[&str]) -> Running {
        let extra: Vec<&OsStr> = extra.iter().map(OsStr::new).collect();
        self.spawn(&extra, "connector.stderr", None)
    }

    /// The same with path arguments, stderr to the file `stderr` of the directory and
    /// `log` as the log file [`Running::output`] reads.
    pub fn spawn(&self, extra: &[&OsStr], stderr: &str, log: Option<&Path>) -> Running {
        let (config, state) = (self.config(), self.state());
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("--config"),
            config.as_os_str(),
            OsStr::new("--state-dir"),
            state.as_os_str(),
        ];
        args.extend_from_slice(extra);
        Running::spawn(&args, &self.path(stderr), log)
    }

    /// The saved position of [`TENANT`], if any.
    pub fn position(&self) -> Option<String> {
        saved_position(&self.state(), TENANT)
    }
}
