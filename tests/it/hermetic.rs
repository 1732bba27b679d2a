//! The repository stands on its own: no tracked file points outside it.
//!
//! A clone of this repository alone must build, test and document itself. The project
//! was written next to a directory of reference material that is not part of it; a
//! path into that directory works on the author's machine and fails on everyone
//! else's. This module lists the tracked files with `git ls-files` and fails if any of
//! them names that directory. The needles are assembled at run time, so this file does
//! not match itself.

use std::path::Path;
use std::process::Command;

/// Top-level directories whose files are code, tests or tooling: none of them may name
/// the reference material at all, not even in a comment.
const CODE_DIRS: [&str; 7] = [
    "src",
    "tests",
    "benches",
    "scripts",
    "packaging",
    ".ci",
    "examples",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The reference directory, relative to a checkout beside it: banned in every file.
fn escape() -> String {
    ["..", "shared"].join("/")
}

/// The reference directory's parts: banned in code, tests and tooling.
fn reference_parts() -> [String; 2] {
    ["spec", "docs"].map(|part| ["shared", part].join("/"))
}

/// Every tracked file, as `git ls-files` names it. Fails (never skips) without git or
/// outside a git checkout: the check cannot be made then.
fn tracked_files() -> Vec<String> {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `git ls-files` in {}: {e}; install git",
                root().display()
            )
        });
    assert!(
        out.status.success(),
        "`git ls-files` failed in {} ({}): {}; these tests need a git checkout",
        root().display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("git prints tracked paths as UTF-8")
        .split('\0')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// `path: needle` for every banned reference in `files` (path, contents).
fn offences<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<String> {
    let escape = escape();
    let parts = reference_parts();
    let mut found = Vec::new();
    for (path, body) in files {
        if contains(body, &escape) {
            found.push(format!("{path}: {escape}"));
        }
        let in_code = CODE_DIRS
            .iter()
            .any(|dir| path.strip_prefix(dir).is_some_and(|r| r.starts_with('/')));
        if in_code {
            for part in &parts {
                if contains(body, part) {
                    found.push(format!("{path}: {part}"));
                }
            }
        }
    }
    found
}

#[test]
fn no_tracked_file_points_outside_the_repository() {
    let files = tracked_files();
    for expected in ["Cargo.toml", "src/lib.rs", "tests/it/main.rs"] {
        assert!(
            files.iter().any(|f| f == expected),
            "`git ls-files` does not list {expected}: {} files listed",
            files.len()
        );
    }
    let mut bodies = Vec::new();
    for path in &files {
        match std::fs::read(root().join(path)) {
            Ok(body) => bodies.push((path.as_str(), body)),
            // Deleted in the work tree and not yet committed: nothing to read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot read {path}: {e}"),
        }
    }
    let found = offences(bodies.iter().map(|(p, b)| (*p, b.as_slice())));
    assert!(
        found.is_empty(),
        "tracked files reference material outside the repository; copy the facts or \
         data into the repository (fixtures under tests/, prose under docs/) and point \
         there instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_finds_every_kind_of_reference() {
    let escape = escape();
    let [spec, docs] = reference_parts();
    let planted = [
        ("README.md", format!("see {escape}/spec")),
        ("src/source/sse.rs", format!("read(\"{spec}/x\")")),
        ("tests/it/x.rs", format!("// {docs}/style.md")),
        (".ci/run", format!("cat {spec}")),
        ("examples/e.rs", format!("let d = \"{docs}\";")),
        // Outside the code directories, naming the material is allowed...
        ("ARCHITECTURE.md", format!("`{spec}/sse.md`")),
        // ...and a directory that merely starts like one of them is not one.
        ("srcx/a.rs", format!("// {spec}")),
        ("src/clean.rs", "nothing to see".to_owned()),
    ];
    let found = offences(planted.iter().map(|(p, b)| (*p, b.as_bytes())));
    assert_eq!(
        found,
        [
            format!("README.md: {escape}"),
            format!("src/source/sse.rs: {spec}"),
            format!("tests/it/x.rs: {docs}"),
            format!(".ci/run: {spec}"),
            format!("examples/e.rs: {docs}"),
        ]
    );
}
