//! `scripts/test.sh`, the README's test command: it installs what the tests need on
//! Debian/Ubuntu, refuses with the install command where it cannot, and then runs
//! `cargo test --locked`.
//!
//! Each test runs the real script with a PATH of its own: a directory that links every
//! program of the system's bin directories except the ones a case hides, plus stand-ins
//! (`cargo`, `apt-get`, `id`) that record being run. So a case can take away apt-get,
//! shellcheck or root, and see whether the script would have built or installed.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The packages the script may ask for, in its order.
const PACKAGES: [&str; 7] = [
    "rsyslog",
    "rsyslog-gnutls",
    "rsyslog-relp",
    "shellcheck",
    "systemd",
    "prometheus",
    "git",
];

/// Programs no case may take from the system: each case hides them or stands in.
const ALWAYS_HIDDEN: [&str; 10] = [
    "apt-get",
    "apt",
    "cargo",
    "rustc",
    "rustup",
    "sudo",
    "shellcheck",
    "systemd-analyze",
    "promtool",
    "git",
];

struct Stage {
    dir: tempfile::TempDir,
}

impl Stage {
    /// A PATH directory linking the system's programs except [`ALWAYS_HIDDEN`] and
    /// `id` (added as a stand-in or a link by the case), with a `cargo` stand-in that
    /// records its arguments and directory.
    fn new() -> Stage {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).expect("mkdir bin");
        let mut linked = BTreeSet::new();
        for system in ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
            let Ok(entries) = fs::read_dir(system) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if ALWAYS_HIDDEN.contains(&name.as_str()) || name == "id" {
                    continue;
                }
                if linked.insert(name.clone()) {
                    std::os::unix::fs::symlink(entry.path(), bin.join(&name))
                        .unwrap_or_else(|e| panic!("link {name}: {e}"));
                }
            }
        }
        assert!(
            linked.contains("bash"),
            "no bash among the system's programs"
        );
        let stage = Stage { dir };
        stage.stand_in("cargo", "printf '%s\\n' \"$(pwd -P)\" \"$*\" >\"$0.ran\"");
        stage
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// Puts a shell script named `name` on the stage's PATH.
    fn stand_in(&self, name: &str, body: &str) {
        let path = self.bin().join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write stand-in");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn link_id(&self) {
        let id = ["/usr/bin/id", "/bin/id"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("id(1) is installed");
        std::os::unix::fs::symlink(id, self.bin().join("id")).expect("link id");
    }

    /// What a stand-in recorded, if it ran.
    fn ran(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.bin().join(format!("{name}.ran"))).ok()
    }

    /// Runs `scripts/test.sh args` from the stage's directory with only the stage's
    /// PATH in the environment.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(repo().join("scripts/test.sh"))
            .args(args)
            .env_clear()
            .env("PATH", self.bin())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/test.sh")
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Checks that the script refused: exit 1, and standard output is exactly one command
/// that installs at least `hidden` and nothing but the script's packages.
fn assert_refused_with_the_command(out: &Output, hidden: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "{}", describe(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prefix = "sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends ";
    let packages = stdout
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix("'\n"))
        .unwrap_or_else(|| panic!("not the one install command:\n{}", describe(out)));
    let packages: Vec<&str> = packages.split(' ').collect();
    for package in &packages {
        assert!(PACKAGES.contains(package), "{package}: {}", describe(out));
    }
    for package in hidden {
        assert!(packages.contains(package), "{package}: {}", describe(out));
    }
}

#[test]
fn without_apt_get_it_prints_the_install_command_and_builds_nothing() {
    let stage = Stage::new();
    stage.link_id();
    let out = stage.run(&["--test", "it"]);
    assert_refused_with_the_command(&out, &["shellcheck", "systemd", "prometheus", "git"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no apt-get"),
        "{}",
        describe(&out)
    );
    assert_eq!(stage.ran("cargo"), None, "it built: {}", describe(&out));
}

#[test]
fn without_root_it_prints_the_install_command_and_installs_and_builds_nothing() {
    let stage = Stage::new();
    stage.stand_in("id", "echo 1000");
    stage.stand_in("apt-get", "printf '%s\\n' \"$*\" >>\"$0.ran\"");
    let out = stage.run(&[]);
    assert_refused_with_the_command(&out, &["shellcheck", "systemd", "prometheus", "git"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs root"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        stage.ran("apt-get"),
        None,
        "it installed: {}",
        describe(&out)
    );
    assert_eq!(stage.ran("cargo"), None, "it built: {}", describe(&out));
}

/// Also needs the real rsyslog packages, as the whole suite does.
#[test]
fn with_everything_present_it_installs_nothing_and_runs_cargo_test_locked() {
    let stage = Stage::new();
    stage.link_id();
    stage.stand_in("apt-get", "printf '%s\\n' \"$*\" >>\"$0.ran\"");
    for present in ["shellcheck", "systemd-analyze", "promtool", "git"] {
        stage.stand_in(present, "exit 0");
    }
    let out = stage.run(&["--test", "it", "some::filter"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        stage.ran("apt-get"),
        None,
        "it installed: {}",
        describe(&out)
    );
    let root = repo().canonicalize().expect("repository path");
    assert_eq!(
        stage.ran("cargo").as_deref(),
        Some(format!("{}\ntest --locked --test it some::filter\n", root.display()).as_str()),
        "{}",
        describe(&out)
    );
}
