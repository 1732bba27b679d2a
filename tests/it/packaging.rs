//! The operator-facing files: the release tarball, `install.sh`/`uninstall.sh`, the
//! control scripts, the systemd units and the launchd job.
//!
//! These tests run the real tools an operator's machine has: `shellcheck`,
//! `systemd-analyze`, GNU `tar`, and the shell scripts themselves against the real
//! binary and its built-in simulator. The tarball tests hand `packaging/package.sh`
//! the binary this test run built (`MRAV2_PACKAGE_BINARY`), named for its profile
//! (debug under a plain `cargo test`), so packaging builds nothing and only archives.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mrav2-syslog-connector"))
}

/// Panics with an install hint when `tool` is not on PATH, so a missing tool is a
/// failure that says what to do, never a silently skipped test.
fn require_tool(tool: &str, hint: &str) {
    let found = Command::new("sh")
        .args(["-c", "command -v \"$1\" >/dev/null 2>&1", "sh", tool])
        .status()
        .expect("run sh")
        .success();
    assert!(found, "`{tool}` is not installed; {hint}");
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every flag (`--name`) that the real binary's `--help` and `run --help` mention.
fn cli_flags() -> BTreeSet<String> {
    let mut help = String::new();
    for args in [&["--help"][..], &["run", "--help"][..]] {
        let out = run(Command::new(binary()).args(args));
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        help.push_str(&text(&out.stdout));
    }
    help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_owned)
        .collect()
}

/// Checks that every `--flag` in `args` is a flag of the real binary, that `run` is the
/// subcommand, and that nothing asks for a second process (`--daemon`) under a service
/// manager that supervises the first.
fn assert_service_args(what: &str, args: &[String]) {
    let flags = cli_flags();
    for arg in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            flags.contains(arg),
            "{what}: {arg} is not a flag of the binary (its --help lists {flags:?})"
        );
    }
    assert_eq!(
        args.last().map(String::as_str),
        Some("run"),
        "{what}: {args:?}"
    );
    for forbidden in ["--daemon", "--pid-file"] {
        assert!(
            !args.iter().any(|a| a == forbidden),
            "{what}: {forbidden} under a service manager"
        );
    }
}

// ---------------------------------------------------------------------------------
// shellcheck

/// Every shell script of the repository: `scripts/*.sh`, `packaging/*.sh` and CI's
/// `.ci/run`.
fn shell_scripts() -> Vec<PathBuf> {
    let mut scripts = Vec::new();
    for dir in ["scripts", "packaging"] {
        let Ok(entries) = fs::read_dir(repo().join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("read dir entry").path();
            if path.extension().is_some_and(|e| e == "sh") {
                scripts.push(path);
            }
        }
    }
    let ci = repo().join(".ci/run");
    if ci.is_file() {
        scripts.push(ci);
    }
    scripts.sort();
    scripts
}

#[test]
fn every_shell_script_passes_shellcheck() {
    require_tool(
        "shellcheck",
        "scripts/test.sh installs it on Debian/Ubuntu; elsewhere: dnf install ShellCheck, brew install shellcheck",
    );
    let scripts = shell_scripts();
    for ours in [
        "packaging/package.sh",
        "packaging/install.sh",
        "packaging/uninstall.sh",
        "scripts/start-connector.sh",
        "scripts/stop-connector.sh",
        "scripts/status-connector.sh",
        "scripts/reload-connector.sh",
        "scripts/restart-connector.sh",
        "scripts/connector-lib.sh",
        "scripts/bench.sh",
        "scripts/idle-cost.sh",
        "scripts/test.sh",
        ".ci/run",
    ] {
        assert!(
            scripts.iter().any(|s| s.ends_with(ours)),
            "{ours} is missing: {scripts:?}"
        );
    }
    for script in &scripts {
        let name = script.display();
        let body = fs::read_to_string(script).expect("read script");
        // A library is sourced, never run: it names its shell for shellcheck instead.
        let sourced = body.starts_with("# shellcheck shell=");
        if !sourced {
            let first = body.lines().next().unwrap_or_default();
            let strict = match first {
                "#!/bin/sh" => "set -eu",
                "#!/bin/bash" | "#!/usr/bin/env bash" => "set -euo pipefail",
                other => panic!("{name}: unexpected interpreter line {other:?}"),
            };
            assert!(
                body.lines().any(|l| l == strict || l == "set -eu"),
                "{name}: must `{strict}`"
            );
            assert!(mode(script) & 0o111 == 0o111, "{name}: must be executable");
        }
        let out = run(Command::new("shellcheck")
            .args(["--external-sources", "--severity=style"])
            .arg(script));
        assert!(
            out.status.success(),
            "shellcheck {name}:\n{}",
            describe(&out)
        );
    }
}

// ---------------------------------------------------------------------------------
// systemd

/// `Key=value` lines of a unit file (comments and section headers left out).
fn unit_entries(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("unit line is Key=value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn unit_values<'a>(entries: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    entries
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Checks one unit's contract: readiness and watchdog, restart policy, reload,
/// journal logging, credentials, and hardening that leaves only the state directory
/// writable.
fn assert_unit_contract(name: &str, unit: &str, config: &str, key: &str, state: &str) {
    let entries = unit_entries(unit);
    let one = |key: &str| -> &str {
        let values = unit_values(&entries, key);
        assert_eq!(
            values.len(),
            1,
            "{name}: {key}= must be set once: {values:?}"
        );
        values[0]
    };
    assert_eq!(one("Type"), "notify", "{name}");
    assert!(one("WatchdogSec").ends_with('s'), "{name}: WatchdogSec");
    assert_eq!(one("Restart"), "on-failure", "{name}");
    assert!(
        one("RestartPreventExitStatus")
            .split_whitespace()
            .any(|s| s == "78"),
        "{name}: exit 78 (configuration error) must not be restarted"
    );
    assert_eq!(one("ExecReload"), "/bin/kill -HUP $MAINPID", "{name}");
    assert_eq!(one("StateDirectory"), state, "{name}");
    let credentials = unit_values(&entries, "LoadCredential");
    assert!(
        credentials.contains(&format!("config.ini:{config}").as_str()),
        "{name}: {credentials:?}"
    );
    assert!(
        credentials.contains(&format!("api-key:{key}").as_str()),
        "{name}: {credentials:?}"
    );
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(one(key), value, "{name}: {key}");
    }
    assert!(
        unit_values(&entries, "SystemCallFilter").contains(&"@system-service"),
        "{name}: SystemCallFilter=@system-service"
    );
    for writable in [
        "ReadWritePaths",
        "ReadWriteDirectories",
        "LogsDirectory",
        "CacheDirectory",
        "RuntimeDirectory",
        "ProtectSystem=full",
    ] {
        assert!(
            unit_values(&entries, writable).is_empty(),
            "{name}: {writable}= would make more than the state directory writable"
        );
    }

    let exec: Vec<String> = one("ExecStart")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        exec[0], "/opt/mrav2-connector/bin/mrav2-syslog-connector",
        "{name}: install.sh rewrites this path to the prefix"
    );
    assert!(
        !exec.iter().any(|a| a == "--log-file"),
        "{name}: logs go to the journal"
    );
    assert!(
        exec.windows(2)
            .any(|w| w[0] == "--config" && w[1] == "%d/config.ini"),
        "{name}: the config is read from the credentials directory: {exec:?}"
    );
    assert_service_args(name, &exec[1..]);
}

#[test]
fn systemd_units_keep_their_contract() {
    let single = fs::read_to_string(repo().join("systemd/mrav2-connector.service"))
        .expect("read mrav2-connector.service");
    let template = fs::read_to_string(repo().join("systemd/mrav2-connector@.service"))
        .expect("read mrav2-connector@.service");
    assert_unit_contract(
        "mrav2-connector.service",
        &single,
        "/etc/mrav2-connector/config.ini",
        "/etc/mrav2-connector/config.key",
        "mrav2-connector/config",
    );
    assert_unit_contract(
        "mrav2-connector@.service",
        &template,
        "/etc/mrav2-connector/%i.ini",
        "/etc/mrav2-connector/%i.key",
        "mrav2-connector/%i",
    );
}

#[test]
fn systemd_units_pass_systemd_analyze() {
    require_tool(
        "systemd-analyze",
        "scripts/test.sh installs it on Debian/Ubuntu; elsewhere: dnf install systemd",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = binary().to_str().expect("binary path is UTF-8");
    for file in ["mrav2-connector.service", "mrav2-connector@.service"] {
        let unit = fs::read_to_string(repo().join("systemd").join(file)).expect("read unit");
        // verify checks that ExecStart= names an executable: point it at the real one.
        let unit = unit.replace("/opt/mrav2-connector/bin/mrav2-syslog-connector", exe);
        fs::write(dir.path().join(file), unit).expect("write unit");
    }
    // The template is verified through an instance, so that %i is expanded.
    for name in ["mrav2-connector.service", "mrav2-connector@acme.service"] {
        let path = dir.path().join(name);
        let out = run(Command::new("systemd-analyze").arg("verify").arg(&path));
        // verify exits 0 on unknown keys and only warns; any warning about our
        // files is a failure too.
        let complaints: Vec<String> = text(&out.stderr)
            .lines()
            .filter(|l| l.contains("mrav2-connector"))
            .map(str::to_owned)
            .collect();
        assert!(
            out.status.success() && complaints.is_empty(),
            "systemd-analyze verify {name}:\n{}",
            describe(&out)
        );

        let out = run(Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&path));
        let report = text(&out.stdout);
        let exposure: f64 = report
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|rest| rest.split(": ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level for {name}:\n{}", describe(&out)));
        assert!(
            exposure <= 2.0,
            "{name}: systemd-analyze security exposure {exposure} > 2.0:\n{report}"
        );
    }
}

// ---------------------------------------------------------------------------------
// launchd

/// A property-list value: the subset of Apple's XML plist format that launchd jobs use.
#[derive(Debug, Clone, PartialEq)]
enum Plist {
    String(String),
    Integer(i64),
    Bool(bool),
    Array(Vec<Plist>),
    Dict(Vec<(String, Plist)>),
}

impl Plist {
    fn get(&self, key: &str) -> Option<&Plist> {
        match self {
            Plist::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn string(&self, key: &str) -> &str {
        match self.get(key) {
            Some(Plist::String(s)) => s,
            other => panic!("{key}: expected a string, found {other:?}"),
        }
    }
}

/// A strict reader of XML property lists: it accepts the XML declaration, the plist
/// DOCTYPE, comments and whitespace between elements, and rejects anything else it
/// does not understand (unknown elements, attributes on values, stray text, unknown
/// entities, duplicate keys, trailing content).
struct PlistReader<'a> {
    rest: &'a str,
}

impl<'a> PlistReader<'a> {
    fn parse(text: &'a str) -> Result<Plist, String> {
        let mut r = PlistReader { rest: text };
        r.eat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
        r.skip_misc()?;
        if r.rest.starts_with("<!DOCTYPE") {
            let end = r.rest.find('>').ok_or("unterminated DOCTYPE")?;
            let doctype = &r.rest[..end];
            if !doctype.contains("\"-//Apple//DTD PLIST 1.0//EN\"") {
                return Err(format!("unexpected DOCTYPE: {doctype}"));
            }
            r.rest = &r.rest[end + 1..];
        }
        r.skip_misc()?;
        r.eat("<plist version=\"1.0\">")?;
        let value = r.value()?;
        r.skip_misc()?;
        r.eat("</plist>")?;
        r.skip_misc()?;
        if !r.rest.is_empty() {
            return Err(format!("trailing content: {:.40}", r.rest));
        }
        Ok(value)
    }

    fn eat(&mut self, s: &str) -> Result<(), String> {
        match self.rest.strip_prefix(s) {
            Some(rest) => {
                self.rest = rest;
                Ok(())
            }
            None => Err(format!("expected {s:?} at {:.40?}", self.rest)),
        }
    }

    /// Skips whitespace and comments.
    fn skip_misc(&mut self) -> Result<(), String> {
        loop {
            self.rest = self.rest.trim_start();
            if let Some(after) = self.rest.strip_prefix("<!--") {
                let end = after.find("-->").ok_or("unterminated comment")?;
                if after[..end].contains("--") {
                    return Err("`--` inside a comment is not XML".into());
                }
                self.rest = &after[end + 3..];
            } else {
                return Ok(());
            }
        }
    }

    /// Reads `<name>` or `<name/>` and returns the name and whether it was empty.
    fn open_tag(&mut self) -> Result<(&'a str, bool), String> {
        self.skip_misc()?;
        let after = self
            .rest
            .strip_prefix('<')
            .ok_or_else(|| format!("expected an element at {:.40?}", self.rest))?;
        let end = after.find('>').ok_or("unterminated tag")?;
        let (inner, empty) = match after[..end].strip_suffix('/') {
            Some(inner) => (inner, true),
            None => (&after[..end], false),
        };
        if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!("unexpected tag <{}>", &after[..end]));
        }
        self.rest = &after[end + 1..];
        Ok((inner, empty))
    }

    /// Reads character data up to `</name>` and decodes the five XML entities.
    fn text_until(&mut self, name: &str) -> Result<String, String> {
        let close = format!("</{name}>");
        let end = self
            .rest
            .find(&close)
            .ok_or_else(|| format!("missing {close}"))?;
        let raw = &self.rest[..end];
        if raw.contains('<') {
            return Err(format!("markup inside <{name}>: {raw:.40}"));
        }
        let mut out = String::new();
        let mut parts = raw.split('&');
        out.push_str(parts.next().unwrap_or_default());
        for part in parts {
            let (entity, tail) = part
                .split_once(';')
                .ok_or_else(|| format!("bare & in <{name}>"))?;
            out.push(match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                other => return Err(format!("unknown entity &{other};")),
            });
            out.push_str(tail);
        }
        self.rest = &self.rest[end + close.len()..];
        Ok(out)
    }

    fn closes(&mut self, name: &str) -> Result<bool, String> {
        self.skip_misc()?;
        let close = format!("</{name}>");
        Ok(match self.rest.strip_prefix(close.as_str()) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        })
    }

    fn value(&mut self) -> Result<Plist, String> {
        let (name, empty) = self.open_tag()?;
        match (name, empty) {
            ("true", true) => Ok(Plist::Bool(true)),
            ("false", true) => Ok(Plist::Bool(false)),
            ("string", true) => Ok(Plist::String(String::new())),
            ("string", false) => Ok(Plist::String(self.text_until("string")?)),
            ("integer", false) => {
                let digits = self.text_until("integer")?;
                digits
                    .trim()
                    .parse()
                    .map(Plist::Integer)
                    .map_err(|e| format!("<integer>{digits}</integer>: {e}"))
            }
            ("array", true) => Ok(Plist::Array(Vec::new())),
            ("array", false) => {
                let mut items = Vec::new();
                while !self.closes("array")? {
                    items.push(self.value()?);
                }
                Ok(Plist::Array(items))
            }
            ("dict", true) => Ok(Plist::Dict(Vec::new())),
            ("dict", false) => {
                let mut entries: Vec<(String, Plist)> = Vec::new();
                while !self.closes("dict")? {
                    match self.open_tag()? {
                        ("key", false) => {}
                        other => return Err(format!("expected <key> in <dict>, found {other:?}")),
                    }
                    let key = self.text_until("key")?;
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(format!("duplicate key {key}"));
                    }
                    let value = self.value()?;
                    entries.push((key, value));
                }
                Ok(Plist::Dict(entries))
            }
            other => Err(format!("unsupported plist element {other:?}")),
        }
    }
}

#[test]
fn plist_reader_is_strict() {
    let ok = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\
              <dict><key>A</key><string>x &amp; y</string><key>B</key><true/>\
              <key>C</key><array><integer>7</integer></array></dict></plist>\n";
    assert_eq!(
        PlistReader::parse(ok),
        Ok(Plist::Dict(vec![
            ("A".into(), Plist::String("x & y".into())),
            ("B".into(), Plist::Bool(true)),
            ("C".into(), Plist::Array(vec![Plist::Integer(7)])),
        ]))
    );
    for bad in [
        ok.replace("<true/>", "<yes/>"),
        ok.replace("<key>B</key>", "<key>A</key>"),
        ok.replace("&amp;", "&"),
        ok.replace("</plist>", ""),
        ok.replace("<string>x", "<string a=\"1\">x"),
        format!("{ok}<plist/>"),
    ] {
        assert!(PlistReader::parse(&bad).is_err(), "accepted: {bad}");
    }
}

#[test]
fn launchd_job_matches_the_cli() {
    let path = repo().join("launchd/com.lookout.mrav2-connector.plist");
    let body = fs::read_to_string(&path).expect("read plist");
    let job = PlistReader::parse(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));

    assert_eq!(job.string("Label"), "com.lookout.mrav2-connector");
    assert_eq!(job.get("RunAtLoad"), Some(&Plist::Bool(true)));
    match job.get("KeepAlive") {
        Some(Plist::Bool(true)) => {}
        Some(keep @ Plist::Dict(_)) => assert_eq!(
            keep.get("SuccessfulExit"),
            Some(&Plist::Bool(false)),
            "KeepAlive must restart after a failure"
        ),
        other => panic!("KeepAlive: {other:?}"),
    }

    let prefix = "/opt/mrav2-connector";
    assert_eq!(job.string("WorkingDirectory"), prefix);
    for key in ["StandardOutPath", "StandardErrorPath"] {
        assert!(
            job.string(key).starts_with(&format!("{prefix}/logs/")),
            "{key}: {}",
            job.string(key)
        );
    }

    let Some(Plist::Array(items)) = job.get("ProgramArguments") else {
        panic!("ProgramArguments must be an array");
    };
    let args: Vec<String> = items
        .iter()
        .map(|item| match item {
            Plist::String(s) => s.clone(),
            other => panic!("ProgramArguments holds a non-string {other:?}"),
        })
        .collect();
    assert_eq!(args[0], format!("{prefix}/bin/mrav2-syslog-connector"));
    // The same layout as the control scripts use for <prefix>/config.ini.
    let value_of = |flag: &str| {
        args.windows(2)
            .find(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .unwrap_or_else(|| panic!("ProgramArguments lacks {flag}: {args:?}"))
    };
    assert_eq!(value_of("--config"), format!("{prefix}/config.ini"));
    assert_eq!(value_of("--state-dir"), format!("{prefix}/state/config"));
    assert_eq!(value_of("--log-file"), format!("{prefix}/logs/config.log"));
    assert_service_args("launchd ProgramArguments", &args[1..]);
}

// ---------------------------------------------------------------------------------
// the tarball

/// The profile the binary under test was built with: the one its archive is named for.
fn profile() -> &'static str {
    let exe_dir = binary().parent().expect("binary has a directory");
    match exe_dir.file_name().and_then(|n| n.to_str()) {
        Some("release") => "release",
        _ => "debug",
    }
}

/// Runs `packaging/package.sh` into `dist` and returns the archive's path. The script
/// is handed the binary under test (`MRAV2_PACKAGE_BINARY`), so nothing is built again
/// and the archive ships the very binary these tests run. `CARGO` names no program:
/// if the script ran cargo anyway, it would fail.
fn package(dist: &Path) -> PathBuf {
    let out = run(Command::new(repo().join("packaging/package.sh"))
        .env("MRAV2_PACKAGE_PROFILE", profile())
        .env("MRAV2_PACKAGE_BINARY", binary())
        .env("MRAV2_PACKAGE_DIST", dist)
        .env("CARGO", "/nonexistent/package.sh-must-not-run-cargo"));
    assert!(out.status.success(), "package.sh:\n{}", describe(&out));
    let stdout = text(&out.stdout);
    let archive = PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("package.sh prints the archive"),
    );
    assert!(archive.is_file(), "{}", archive.display());
    archive
}

#[test]
fn package_sh_refuses_a_binary_that_is_not_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-binary");
    let out = run(Command::new(repo().join("packaging/package.sh"))
        .env("MRAV2_PACKAGE_PROFILE", profile())
        .env("MRAV2_PACKAGE_BINARY", &missing)
        .env("MRAV2_PACKAGE_DIST", dir.path().join("dist"))
        .env("CARGO", "/nonexistent/package.sh-must-not-run-cargo"));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "MRAV2_PACKAGE_BINARY={} is not an executable file",
            missing.display()
        )),
        "{}",
        describe(&out)
    );
    assert!(
        !dir.path().join("dist").exists(),
        "nothing is written before the binary is known: {}",
        describe(&out)
    );
}

/// Every Markdown file that git tracks under `docs/`, as `git ls-files docs` names it:
/// what the tarball must ship and `install.sh` must install.
fn tracked_docs() -> Vec<String> {
    let out = run(Command::new("git")
        .args(["-c", "core.quotePath=false", "ls-files", "docs"])
        .current_dir(repo()));
    assert!(
        out.status.success(),
        "git ls-files docs:\n{}",
        describe(&out)
    );
    let docs: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|path| path.ends_with(".md"))
        .map(str::to_owned)
        .collect();
    assert!(
        docs.iter().any(|d| d == "docs/operations.md"),
        "git ls-files docs lists no docs/operations.md: {docs:?}"
    );
    docs
}

/// The directories (`docs/`, `docs/formats/`, ...) that hold `docs`, each once, named
/// as tar lists them (with a trailing `/`).
fn doc_dirs(docs: &[String]) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for doc in docs {
        let mut dir = Path::new(doc).parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(format!("{}/", d.display()));
            dir = d.parent();
        }
    }
    dirs
}

/// The order of `tar --sort=name`: each directory's entries sorted by name, a directory
/// followed by its contents, i.e. the path compared component by component.
fn archive_order(rel: &str) -> Vec<&str> {
    rel.trim_end_matches('/').split('/').collect()
}

fn archive_base(archive: &Path) -> String {
    let name = archive.file_name().expect("archive name").to_string_lossy();
    name.strip_suffix(".tar.gz").expect(".tar.gz").to_owned()
}

#[test]
fn tarball_is_complete_and_reproducible() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = package(&dir.path().join("a"));
    let second = package(&dir.path().join("b"));
    assert_eq!(
        fs::read(&first).expect("read archive"),
        fs::read(&second).expect("read archive"),
        "two builds of the same tree differ"
    );

    let base = archive_base(&first);
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        base.starts_with(&format!("mrav2-syslog-connector-{version}-")),
        "{base}"
    );

    // The checksum file verifies, with the archive's bare name in it.
    let out = run(Command::new("sha256sum")
        .args(["-c", &format!("{base}.tar.gz.sha256")])
        .current_dir(first.parent().expect("dist dir")));
    assert!(out.status.success(), "sha256sum -c:\n{}", describe(&out));

    // Names, order, modes, owners and times.
    let epoch: i64 = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => epoch.parse().expect("SOURCE_DATE_EPOCH is a number"),
        Err(_) => {
            let out = run(Command::new("git")
                .args(["log", "-1", "--format=%ct"])
                .current_dir(repo()));
            assert!(out.status.success(), "git log:\n{}", describe(&out));
            text(&out.stdout).trim().parse().expect("commit time")
        }
    };
    let mtime = chrono::DateTime::from_timestamp(epoch, 0)
        .expect("a representable time")
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let out = run(Command::new("tar")
        .args(["--numeric-owner", "--full-time", "-tvzf"])
        .arg(&first)
        .env("TZ", "UTC"));
    assert!(out.status.success(), "tar -t:\n{}", describe(&out));
    let listing = text(&out.stdout);
    let mut names = Vec::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (perms, owner, date, time, name) =
            (fields[0], fields[1], fields[3], fields[4], fields[5]);
        assert_eq!(owner, "0/0", "{line}");
        assert_eq!(format!("{date} {time}"), mtime, "{line}");
        let rel = name
            .strip_prefix(&format!("{base}/"))
            .unwrap_or_else(|| panic!("{name} is outside {base}/"));
        let expected_perms = if rel.is_empty() || rel.ends_with('/') {
            "drwxr-xr-x"
        } else if rel.ends_with(".sh") && rel != "bin/connector-lib.sh"
            || rel == "bin/mrav2-syslog-connector"
        {
            "-rwxr-xr-x"
        } else {
            "-rw-r--r--"
        };
        assert_eq!(perms, expected_perms, "{line}");
        names.push(rel.to_owned());
    }
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| archive_order(a).cmp(&archive_order(b)));
    assert_eq!(names, sorted, "entries must be sorted by name");
    let mut expected: Vec<String> = [
        "",
        "CHANGELOG.md",
        "LICENSE",
        "README.md",
        "bin/",
        "bin/connector-lib.sh",
        "bin/mrav2-syslog-connector",
        "bin/reload-connector.sh",
        "bin/restart-connector.sh",
        "bin/start-connector.sh",
        "bin/status-connector.sh",
        "bin/stop-connector.sh",
        "config.ini.example",
        "install.sh",
        "launchd/",
        "launchd/com.lookout.mrav2-connector.plist",
        "monitoring/",
        "monitoring/grafana-dashboard.json",
        "monitoring/prometheus-rules.yml",
        "systemd/",
        "systemd/mrav2-connector.service",
        "systemd/mrav2-connector@.service",
        "uninstall.sh",
    ]
    .map(str::to_owned)
    .to_vec();
    // The operator reference: every Markdown file git tracks under docs/, with its
    // directories, so a new page needs no edit here.
    let docs = tracked_docs();
    expected.extend(docs.iter().cloned());
    expected.extend(doc_dirs(&docs));
    expected.sort_by(|a, b| archive_order(a).cmp(&archive_order(b)));
    assert_eq!(names, expected);

    // The archive ships the very binary these tests ran.
    let extract = dir.path().join("x");
    fs::create_dir(&extract).expect("mkdir");
    let out = run(Command::new("tar")
        .arg("-xzf")
        .arg(&first)
        .arg("-C")
        .arg(&extract));
    assert!(out.status.success(), "tar -x:\n{}", describe(&out));
    assert!(
        fs::read(extract.join(&base).join("bin/mrav2-syslog-connector")).expect("read")
            == fs::read(binary()).expect("read"),
        "the packaged binary is not the one under test"
    );
}

// ---------------------------------------------------------------------------------
// end to end

/// Everything the end-to-end test started, stopped on drop even when it panics:
/// connector daemons (by the pid files in `<prefix>/state`) and the simulator.
struct Stage {
    dir: tempfile::TempDir,
    prefix: PathBuf,
    simulator: Option<Child>,
}

impl Stage {
    fn bin(&self, name: &str) -> PathBuf {
        self.prefix.join("bin").join(name)
    }

    /// Runs a control script with an optional config, failing with every log file
    /// attached when the exit status is not `code`.
    fn script(&self, script: &str, config: Option<&Path>, code: i32) -> Output {
        let mut cmd = Command::new(self.bin(script));
        if let Some(config) = config {
            cmd.arg(config);
        }
        cmd.env("MRAV2_START_TIMEOUT", "60");
        let out = run(&mut cmd);
        if out.status.code() != Some(code) {
            panic!(
                "{script} {config:?}: expected exit {code}\n{}\n{}",
                describe(&out),
                self.logs()
            );
        }
        out
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for dir in [self.prefix.join("logs"), self.dir.path().to_path_buf()] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "log") {
                    let body = fs::read_to_string(&path).unwrap_or_default();
                    all.push_str(&format!("--- {}\n{body}", path.display()));
                }
            }
        }
        all
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Ok(entries) = fs::read_dir(self.prefix.join("state")) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "pid") {
                    let pid = fs::read_to_string(&path).unwrap_or_default();
                    if let Ok(pid) = pid.trim().parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
        }
        if let Some(mut simulator) = self.simulator.take() {
            let _ = simulator.kill();
            let _ = simulator.wait();
        }
    }
}

fn read_pid(pid_file: &Path) -> i32 {
    fs::read_to_string(pid_file)
        .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()))
}

/// True if `pid` is a process that is not a zombie.
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok(),
    }
}

/// A syslog receiver on a loopback TCP port: every received line is sent to the
/// returned channel. The thread ends with the test binary.
fn receiver() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    let port = listener.local_addr().expect("receiver address").port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

/// The relative link targets of a Markdown text's inline links, outside code blocks
/// and without their `#fragment`, found as the repository's link check finds them;
/// web, mail and in-page links are left out.
fn relative_links(markdown: &str) -> Vec<String> {
    crate::docs::prose_lines(markdown)
        .into_iter()
        .flat_map(|(_, line)| crate::docs::link_targets(line))
        .filter(|t| !t.is_empty() && !t.starts_with('#'))
        .filter(|t| !t.contains("://") && !t.starts_with("mailto:"))
        .map(|t| t.split('#').next().unwrap_or(t).to_owned())
        .collect()
}

fn write_config(path: &Path, tenant: &str, api: &str, syslog_port: u16) {
    let body = format!(
        "[lookout]\n\
         entity_name = {tenant}\n\
         api_domain = http://{api}\n\
         api_key = key-{tenant}\n\
         \n\
         [syslog]\n\
         host = 127.0.0.1\n\
         port = {syslog_port}\n\
         protocol = tcp\n"
    );
    fs::write(path, body).expect("write config");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod config");
}

#[test]
fn tarball_installs_and_runs_two_instances() {
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = package(&dir.path().join("dist"));
    let base = archive_base(&archive);
    let out = run(Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path()));
    assert!(out.status.success(), "tar -x:\n{}", describe(&out));
    let unpacked = dir.path().join(&base);
    // A space in the prefix proves the scripts quote every path.
    let prefix = dir.path().join("opt dir").join("mrav2-connector");
    let mut stage = Stage {
        prefix: prefix.clone(),
        dir,
        simulator: None,
    };

    // install.sh without root, into a fresh prefix.
    let out = run(Command::new(unpacked.join("install.sh"))
        .arg("--prefix")
        .arg(&prefix));
    assert!(out.status.success(), "install.sh:\n{}", describe(&out));
    assert!(
        text(&out.stdout).contains("Next steps"),
        "{}",
        describe(&out)
    );
    for sub in [
        "bin",
        "logs",
        "state",
        "share/systemd",
        "share/launchd",
        "share/monitoring",
    ] {
        assert!(prefix.join(sub).is_dir(), "{sub}/ missing");
    }
    for file in ["grafana-dashboard.json", "prometheus-rules.yml"] {
        let installed = prefix.join("share/monitoring").join(file);
        assert_eq!(
            fs::read(&installed).unwrap_or_else(|e| panic!("{}: {e}", installed.display())),
            fs::read(repo().join("packaging/monitoring").join(file)).expect("read"),
            "{file}"
        );
        assert_eq!(mode(&installed), 0o644, "{file}");
    }
    for script in [
        "start-connector.sh",
        "stop-connector.sh",
        "status-connector.sh",
        "reload-connector.sh",
        "restart-connector.sh",
        "mrav2-syslog-connector",
    ] {
        assert_eq!(mode(&stage.bin(script)) & 0o111, 0o111, "{script}");
    }
    assert_eq!(mode(&prefix.join("config.ini")), 0o600);
    assert!(prefix.join("config.ini.example").is_file());

    // The operator reference sits beside README.md, as in the repository, so every
    // relative link of the installed README.md leads to an installed file.
    let doc = prefix.join("share/doc");
    let docs = tracked_docs();
    for page in &docs {
        let installed = doc.join(page);
        assert_eq!(
            fs::read(&installed).unwrap_or_else(|e| panic!("{}: {e}", installed.display())),
            fs::read(repo().join(page)).expect("read doc"),
            "{page}"
        );
        assert_eq!(mode(&installed), 0o644, "{page}");
    }
    let links = relative_links(&fs::read_to_string(doc.join("README.md")).expect("read README"));
    assert!(
        links.iter().any(|l| l.starts_with("docs/")),
        "the installed README.md links nowhere into docs/: {links:?}"
    );
    let dangling: Vec<&String> = links.iter().filter(|l| !doc.join(l).is_file()).collect();
    assert!(
        dangling.is_empty(),
        "links of {}/README.md that lead to no installed file: {dangling:?}",
        doc.display()
    );
    assert!(
        text(&out.stdout).contains(&format!(
            "{}/share/doc/docs/operations.md,\n  \"Running as a service\"",
            prefix.display()
        )),
        "install.sh must point to the installed operations.md: {}",
        describe(&out)
    );
    let operations = fs::read_to_string(doc.join("docs/operations.md")).expect("read");
    assert!(
        operations.lines().any(|l| l == "## Running as a service"),
        "install.sh names a section that docs/operations.md does not have"
    );
    // Neither an upgrade nor uninstall.sh touches a file of the operator's that is not
    // one of ours, while a page that the new release no longer ships goes.
    fs::write(doc.join("docs/notes.txt"), "the operator's\n").expect("write notes");
    let own_rules = prefix.join("share/monitoring/my-rules.yml");
    fs::write(&own_rules, "groups: []\n").expect("write own rules");
    // (Named in two parts: the docs check reads a whole `docs/….md` as a link to check.)
    let retired = doc.join("docs/formats").join("retired.md");
    fs::write(&retired, "# a page of an old release\n").expect("write retired page");

    // A second install never overwrites a config, and keeps it private.
    fs::write(prefix.join("config.ini"), "# the operator's\n").expect("write config");
    fs::set_permissions(prefix.join("config.ini"), fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let out = run(Command::new(unpacked.join("install.sh"))
        .arg("--prefix")
        .arg(&prefix));
    assert!(
        out.status.success(),
        "install.sh again:\n{}",
        describe(&out)
    );
    assert_eq!(
        fs::read_to_string(prefix.join("config.ini")).expect("read config"),
        "# the operator's\n"
    );
    assert_eq!(mode(&prefix.join("config.ini")), 0o600);
    assert!(
        !retired.exists(),
        "an upgrade left a page of the old release"
    );
    assert!(doc.join("docs/formats/leef.md").is_file());
    assert!(doc.join("docs/notes.txt").is_file());

    // The simulator serving two tenants, and one syslog receiver per instance.
    let sim_log = fs::File::create(stage.dir.path().join("simulator.log")).expect("sim log");
    let mut simulator = Command::new(stage.bin("mrav2-syslog-connector"))
        .args(["simulate", "--listen", "127.0.0.1:0", "--events", "20"])
        .args(["--tenant", "alpha=key-alpha", "--tenant", "bravo=key-bravo"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(sim_log)
        .spawn()
        .expect("start the simulator");
    let sim_stdout = simulator.stdout.take().expect("simulator stdout");
    stage.simulator = Some(simulator);
    let (line_tx, line_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(sim_stdout);
        let mut first = String::new();
        let _ = reader.read_line(&mut first);
        let _ = line_tx.send(first);
        // Keep draining so the simulator never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let first = line_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the simulator prints its address within 30 s");
    let api = first
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("simulator's first line: {first:?}\n{}", stage.logs()))
        .trim()
        .to_owned();

    let (port_a, records_a) = receiver();
    let (port_b, records_b) = receiver();
    let alpha = prefix.join("alpha.ini");
    let bravo = prefix.join("bravo.ini");
    write_config(&alpha, "alpha", &api, port_a);
    write_config(&bravo, "bravo", &api, port_b);

    let out = stage.script("start-connector.sh", Some(&alpha), 0);
    assert!(text(&out.stdout).contains("started"), "{}", describe(&out));
    stage.script("start-connector.sh", Some(&bravo), 0);
    let out = stage.script("start-connector.sh", Some(&alpha), 1);
    assert!(
        text(&out.stderr).contains("already running"),
        "a second copy must be refused: {}",
        describe(&out)
    );

    // Both deliver to their own receiver.
    for (name, records) in [("alpha", &records_a), ("bravo", &records_b)] {
        let record = records
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no record from {name} in 60 s\n{}", stage.logs()));
        assert!(record.contains("LEEF:"), "{name}: {record}");
    }

    for (config, tenant) in [(&alpha, "alpha"), (&bravo, "bravo")] {
        let out = stage.script("status-connector.sh", Some(config), 0);
        let stdout = text(&out.stdout);
        assert!(stdout.contains("running (pid "), "{}", describe(&out));
        // The per-tenant block of `mrav2-syslog-connector status`.
        assert!(
            stdout.contains(&format!("tenant {tenant}\n")) && stdout.contains("position:"),
            "{}",
            describe(&out)
        );
    }

    // Reload: a changed config applies in the same process and the script shows what
    // the reload did; a broken one is refused by the script before anything is sent;
    // a stopped instance has nothing to reload (exit 7).
    let pid_a = read_pid(&prefix.join("state/alpha.pid"));
    let good = fs::read_to_string(&alpha).expect("read alpha.ini");
    // Appended to [syslog]: a new TAG, so alpha's one pair restarts.
    fs::write(&alpha, format!("{good}app_name = reloaded\n")).expect("write alpha.ini");
    let out = stage.script("reload-connector.sh", Some(&alpha), 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("reloaded (pid {pid_a})")) && stdout.contains("restarted=1"),
        "{}",
        describe(&out)
    );
    assert_eq!(read_pid(&prefix.join("state/alpha.pid")), pid_a);
    fs::write(
        &alpha,
        good.replace(&format!("port = {port_a}"), "port = 99999"),
    )
    .expect("write alpha.ini");
    let log_a = prefix.join("logs/alpha.log");
    let before = fs::read_to_string(&log_a).expect("read alpha.log");
    let out = stage.script("reload-connector.sh", Some(&alpha), 78);
    assert!(
        text(&out.stderr).contains("port") && text(&out.stderr).contains("nothing was sent"),
        "{}",
        describe(&out)
    );
    let after = fs::read_to_string(&log_a).expect("read alpha.log");
    assert!(
        !after[before.len()..].contains("SIGHUP"),
        "a refused reload-connector.sh must not signal the connector:\n{after}"
    );
    fs::write(&alpha, &good).expect("write alpha.ini");
    stage.script("status-connector.sh", Some(&alpha), 0);

    // Stop one: SIGTERM suffices, its position is saved, the other keeps running.
    let out = stage.script("stop-connector.sh", Some(&bravo), 0);
    assert!(
        text(&out.stdout).contains("stopped with SIGTERM"),
        "{}",
        describe(&out)
    );
    assert!(!prefix.join("state/bravo.pid").exists());
    let position = prefix.join("state/bravo/bravo.position.json");
    let saved = fs::read_to_string(&position)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", position.display(), stage.logs()));
    assert!(saved.contains("\"entity_name\":\"bravo\""), "{saved}");
    let out = stage.script("status-connector.sh", Some(&bravo), 3);
    assert!(text(&out.stdout).contains("stopped"), "{}", describe(&out));
    let out = stage.script("reload-connector.sh", Some(&bravo), 7);
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        describe(&out)
    );
    stage.script("status-connector.sh", Some(&alpha), 0);

    // A crash (kill -9) leaves the pid file behind: status says "dead" (LSB 1) until
    // stop or start clears it, and the instance starts again from its saved position.
    stage.script("start-connector.sh", Some(&bravo), 0);
    let pid_b = read_pid(&prefix.join("state/bravo.pid"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid_b),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 bravo");
    // SIGKILL is not instantaneous; a few status runs (each a fork and exec) bound the wait.
    let dead = (0..200).any(|_| {
        run(Command::new(stage.bin("status-connector.sh")).arg(&bravo))
            .status
            .code()
            == Some(1)
    });
    assert!(
        dead,
        "status never reported bravo dead after kill -9\n{}",
        stage.logs()
    );
    let out = stage.script("status-connector.sh", Some(&bravo), 1);
    assert!(text(&out.stdout).contains("dead"), "{}", describe(&out));
    let out = stage.script("start-connector.sh", Some(&bravo), 0);
    assert!(
        text(&out.stdout).contains("stale pid file"),
        "{}",
        describe(&out)
    );
    stage.script("stop-connector.sh", Some(&bravo), 0);
    stage.script("status-connector.sh", Some(&bravo), 3);

    // A broken config is reported at start, with the problem, and nothing runs.
    let broken = prefix.join("broken.ini");
    write_config(&broken, "broken", &api, port_a);
    let body = fs::read_to_string(&broken).expect("read");
    fs::write(
        &broken,
        body.replace(&format!("port = {port_a}"), "port = 99999"),
    )
    .expect("write");
    let out = stage.script("start-connector.sh", Some(&broken), 78);
    assert!(text(&out.stderr).contains("port"), "{}", describe(&out));
    stage.script("status-connector.sh", Some(&broken), 3);

    // Uninstall stops the running instance and keeps configs and state.
    let pid_a = read_pid(&prefix.join("state/alpha.pid"));
    let out = run(&mut Command::new(prefix.join("uninstall.sh")));
    assert!(out.status.success(), "uninstall.sh:\n{}", describe(&out));
    assert!(!alive(pid_a), "uninstall left alpha running");
    assert!(!stage.bin("mrav2-syslog-connector").exists());
    assert!(alpha.is_file() && position.is_file());
    // Nothing of the program is left: only the configs, logs, state, the marker and
    // the operator's own file.
    let mut left = BTreeSet::new();
    let mut walk = vec![prefix.clone()];
    while let Some(dir) = walk.pop() {
        for entry in fs::read_dir(&dir).expect("read prefix") {
            let path = entry.expect("dir entry").path();
            let rel = path.strip_prefix(&prefix).expect("under prefix");
            left.insert(rel.display().to_string());
            if path.is_dir()
                && !path.is_symlink()
                && !["logs", "state"].contains(&rel.to_str().unwrap_or_default())
            {
                walk.push(path);
            }
        }
    }
    let kept: BTreeSet<String> = [
        ".mrav2-connector",
        "alpha.ini",
        "bravo.ini",
        "broken.ini",
        "config.ini",
        "logs",
        "state",
        "share",
        "share/doc",
        "share/doc/docs",
        "share/doc/docs/notes.txt",
        "share/monitoring",
        "share/monitoring/my-rules.yml",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(
        left,
        kept,
        "uninstall.sh left these behind:\n{}",
        describe(&out)
    );
    fs::remove_file(doc.join("docs/notes.txt")).expect("remove notes");
    fs::remove_file(&own_rules).expect("remove own rules");

    // --purge removes the rest.
    let out = run(Command::new(unpacked.join("uninstall.sh"))
        .arg("--prefix")
        .arg(&prefix)
        .arg("--purge"));
    assert!(
        out.status.success(),
        "uninstall.sh --purge:\n{}",
        describe(&out)
    );
    assert!(!prefix.exists(), "{}", describe(&out));
}
