//! Known-failures 41: this project has tests for every failure of the Python connector,
//! and its dependencies are pinned.
//!
//! `tests/KNOWN-FAILURES.md` maps each of the Python connector's known failures 1–41 to
//! named tests (`path::function`). This module reads that file and the named source
//! files at test time, so a renamed or deleted test, or an item left out, fails here.

use std::collections::BTreeMap;
use std::path::Path;

const ITEMS: u32 = 41;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Item number → the `path::function` references of its row.
fn checklist() -> BTreeMap<u32, Vec<(String, String)>> {
    let text = read("tests/KNOWN-FAILURES.md");
    let mut items: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
    for line in text.lines() {
        let mut cells = line.split('|').map(str::trim).skip(1);
        let Some(Ok(number)) = cells.next().map(str::parse::<u32>) else {
            continue;
        };
        let tests = cells.nth(1).unwrap_or_default();
        let refs: Vec<(String, String)> = tests
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|r| {
                let (path, name) = r
                    .rsplit_once("::")
                    .unwrap_or_else(|| panic!("item {number}: `{r}` is not path::function"));
                (path.to_string(), name.to_string())
            })
            .collect();
        assert!(
            items.insert(number, refs).is_none(),
            "item {number} is listed twice"
        );
    }
    items
}

/// Whether `source` defines `name` as a test: `fn name(` with a `#[test]`,
/// `#[tokio::test…]` (or other `…test…` attribute) among the attributes, comments and
/// blank lines right above it.
fn defines_test(source: &str, name: &str) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        let code = line.trim_start();
        let code = code.strip_prefix("pub ").unwrap_or(code);
        let code = code.strip_prefix("async ").unwrap_or(code);
        if !code.starts_with(&format!("fn {name}(")) {
            return false;
        }
        lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.is_empty() || l.starts_with("#[") || l.starts_with("//"))
            .any(|l| l.starts_with("#[") && l.contains("test"))
    })
}

#[test]
fn every_known_failure_maps_to_tests_that_exist() {
    let items = checklist();
    let missing: Vec<u32> = (1..=ITEMS).filter(|n| !items.contains_key(n)).collect();
    assert!(missing.is_empty(), "items without a row: {missing:?}");
    let extra: Vec<&u32> = items.keys().filter(|&&n| n == 0 || n > ITEMS).collect();
    assert!(
        extra.is_empty(),
        "rows for items that do not exist: {extra:?}"
    );

    let mut problems = Vec::new();
    for (number, refs) in &items {
        if refs.is_empty() {
            problems.push(format!("item {number} names no test"));
        }
        for (path, name) in refs {
            match std::fs::read_to_string(root().join(path)) {
                Err(e) => problems.push(format!("item {number}: {path}: {e}")),
                Ok(source) if !defines_test(&source, name) => {
                    problems.push(format!("item {number}: no test `fn {name}` in {path}"))
                }
                Ok(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_tells_tests_from_other_functions() {
    let source = "/// Doc.\n#[tokio::test]\n/// More.\nasync fn real() {}\n\
                  fn helper() {}\n#[test]\n\nfn after_a_gap() {}\n\
                  proptest! {\n    #[test]\n    fn property(x in 0..1) {}\n}\n";
    assert!(defines_test(source, "real"));
    assert!(defines_test(source, "property"));
    assert!(!defines_test(source, "helper"));
    assert!(defines_test(source, "after_a_gap"));
    assert!(!defines_test(source, "absent"));
    assert!(!defines_test(source, "rea"));
}

#[test]
fn the_lock_file_is_committed_and_ci_builds_locked() {
    assert!(root().join("Cargo.lock").is_file(), "Cargo.lock is missing");
    let ignored = read(".gitignore");
    assert!(
        !ignored
            .lines()
            .any(|l| l.trim().trim_start_matches('/') == "Cargo.lock"),
        ".gitignore ignores Cargo.lock"
    );
    // CI's test step is the README's test command, which runs cargo itself.
    let ci = read(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == "scripts/test.sh"),
        ".ci/run does not run scripts/test.sh"
    );
    let steps = ci + &read("scripts/test.sh");
    let cargo_steps: Vec<&str> = steps
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with("echo") && !l.contains("--version"))
        .filter(|l| {
            ["cargo build", "cargo test", "cargo clippy", "cargo doc"]
                .iter()
                .any(|c| l.contains(c))
        })
        .collect();
    assert!(
        cargo_steps.iter().any(|l| l.contains("cargo test")),
        "neither .ci/run nor scripts/test.sh runs cargo test"
    );
    let unlocked: Vec<&&str> = cargo_steps
        .iter()
        .filter(|l| !l.contains("--locked"))
        .collect();
    assert!(
        unlocked.is_empty(),
        "CI steps without --locked: {unlocked:?}"
    );
}
