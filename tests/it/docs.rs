//! The documentation stays connected: every relative link in the README and under
//! `docs/` leads to a file (and heading) that exists, every `docs/….md#heading`
//! reference in the code does too, and `docs/configuration.md` documents every key the
//! validator accepts.
//!
//! Headings become anchors the way GitHub makes them: lower case, punctuation other
//! than `-` and `_` dropped, spaces turned into `-`, and a repeated anchor suffixed
//! `-1`, `-2`, ….

use mrav2_syslog_connector::config::load::{
    CONNECTOR_KEYS, HEC_KEYS, LOOKOUT_KEYS, PROXY_KEYS, SYSLOG_KEYS,
};
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The lines of `markdown` outside fenced code blocks, with their 1-based numbers.
pub(crate) fn prose_lines(markdown: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (i, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            lines.push((i + 1, line));
        }
    }
    lines
}

/// GitHub's anchor for a heading's text.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of every heading of `markdown`.
fn anchors(markdown: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (_, line) in prose_lines(markdown) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// The targets of the inline links `[text](target)` of one line.
pub(crate) fn link_targets(line: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        let target = after[..end].split_whitespace().next().unwrap_or_default();
        targets.push(target);
        rest = &after[end..];
    }
    targets
}

/// `base.join(relative)` with `.` and `..` resolved lexically.
fn resolve(base: &Path, relative: &str) -> PathBuf {
    let mut path = base.to_path_buf();
    for component in Path::new(relative).components() {
        match component {
            Component::ParentDir => {
                path.pop();
            }
            Component::CurDir => {}
            other => path.push(other),
        }
    }
    path
}

/// What is wrong with `target` (a path relative to `dir`, optionally `#anchor`, or an
/// anchor alone in `file`), if anything.
fn check_target(file: &Path, target: &str) -> Option<String> {
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let dir = file.parent().expect("a file has a directory");
    let resolved = if path.is_empty() {
        file.to_path_buf()
    } else {
        resolve(dir, path)
    };
    if !resolved.starts_with(root()) {
        return Some(format!("{target}: leads outside the repository"));
    }
    if !resolved.exists() {
        return Some(format!("{target}: no such file"));
    }
    if let Some(anchor) = anchor
        && resolved.extension().is_some_and(|e| e == "md")
        && !anchors(&read(&resolved)).contains(anchor)
    {
        return Some(format!(
            "{target}: {} has no heading with anchor #{anchor}",
            resolved.display()
        ));
    }
    None
}

/// `README.md`, `ARCHITECTURE.md` and every Markdown file under `docs/`.
fn documentation() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![root().join("README.md"), root().join("ARCHITECTURE.md")];
    walk(&root().join("docs"), &mut files);
    files.sort();
    files
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut problems = Vec::new();
    for file in documentation() {
        let text = read(&file);
        for (number, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                if let Some(problem) = check_target(&file, target) {
                    let shown = file.strip_prefix(root()).unwrap_or(&file);
                    problems.push(format!("{}:{number}: {problem}", shown.display()));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

/// Every `docs/<path>.md` (with an optional `#anchor`) mentioned in `text`.
fn docs_references(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("docs/") {
        let start = from + at;
        from = start + "docs/".len();
        let preceded_by_name = text[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '/' || c == '.');
        if preceded_by_name {
            continue;
        }
        let len = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_./-#".contains(c)))
            .unwrap_or(text.len() - start);
        let reference = text[start..start + len].trim_end_matches('.');
        let path = reference.split('#').next().unwrap_or_default();
        if path.ends_with(".md") {
            found.push(reference);
        }
    }
    found
}

#[test]
fn every_docs_reference_in_the_code_resolves() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path
                .extension()
                .is_some_and(|e| ["rs", "sh", "md", "toml", "ini"].iter().any(|x| e == *x))
            {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for dir in [
        "src",
        "tests",
        "benches",
        "scripts",
        "packaging",
        "examples",
        ".ci",
    ] {
        walk(&root().join(dir), &mut files);
    }
    files.push(root().join(".ci/run"));
    files.push(root().join("config.ini.example"));

    let mut problems = Vec::new();
    let mut checked = 0;
    // This file names missing docs on purpose, to test the checker.
    let this_file = root().join("tests/it/docs.rs");
    for file in files.iter().filter(|f| **f != this_file) {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for reference in docs_references(&text) {
            checked += 1;
            if let Some(problem) = check_target(&root().join("README.md"), reference) {
                let shown = file.strip_prefix(root()).unwrap_or(file);
                problems.push(format!("{}: {problem}", shown.display()));
            }
        }
    }
    assert!(
        checked > 0,
        "no docs/ reference found at all; is the scan broken?"
    );
    assert!(
        problems.is_empty(),
        "references to missing docs:\n{}",
        problems.join("\n")
    );
}

#[test]
fn configuration_md_documents_every_key_in_its_section() {
    let text = read(&root().join("docs/configuration.md"));
    // The first cell of every table row, per `## ` section.
    let mut section = String::new();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (_, line) in prose_lines(&text) {
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading.to_string();
            continue;
        }
        let Some(first_cell) = line.strip_prefix('|').and_then(|l| l.split('|').next()) else {
            continue;
        };
        for key in first_cell.split('`').skip(1).step_by(2) {
            documented.push((section.clone(), key.to_string()));
        }
    }
    let mut missing = Vec::new();
    for (name, keys) in [
        ("[lookout]", LOOKOUT_KEYS),
        ("[syslog]", SYSLOG_KEYS),
        ("[proxy]", PROXY_KEYS),
        ("[connector]", CONNECTOR_KEYS),
        ("[destination:NAME]", HEC_KEYS),
    ] {
        for key in keys {
            if !documented
                .iter()
                .any(|(s, k)| s.contains(&format!("`{name}`")) && k == key)
            {
                missing.push(format!("{name} {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys without a row in their section of docs/configuration.md: {missing:?}"
    );
}

/// Issue 13: the README's first commands are exactly two, run the product on its
/// embedded default and run the whole test suite.
#[test]
fn the_readme_opens_with_the_two_commands() {
    let readme = read(&root().join("README.md"));
    let mut blocks = readme.split("```").skip(1).step_by(2);
    let first = blocks.next().expect("README.md has no code block");
    let commands: Vec<&str> = first
        .lines()
        .skip(1) // the info string (`sh`)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(commands, ["cargo run --release -- demo", "scripts/test.sh"]);
    let before = &readme[..readme.find("```").expect("a code block")];
    assert!(
        !before
            .lines()
            .any(|l| l.starts_with("    ") || l.starts_with("$ ")),
        "a command appears before the two first commands"
    );
}

#[test]
fn the_checkers_find_what_they_should() {
    assert_eq!(slug("`[lookout]`: the tenant"), "lookout-the-tenant");
    assert_eq!(
        slug("End to end (`scripts/bench.sh`)"),
        "end-to-end-scriptsbenchsh"
    );
    assert_eq!(slug("`sev`: the LEEF severity"), "sev-the-leef-severity");
    let doc = "# A\n## Same\n```\n# not a heading\n```\n## Same\n";
    let found = anchors(doc);
    assert!(found.contains("same") && found.contains("same-1") && found.contains("a"));
    assert!(!found.contains("not-a-heading"));
    assert_eq!(
        link_targets("see [x](a.md#b) and [`y`](../c.md \"title\"), not (d)"),
        ["a.md#b", "../c.md"]
    );
    assert_eq!(
        docs_references("// see `docs/formats/leef.md#escaping`. And mydocs/x.md, docs/a.md."),
        ["docs/formats/leef.md#escaping", "docs/a.md"]
    );
    assert!(check_target(&root().join("README.md"), "docs/no-such-file.md").is_some());
    assert!(check_target(&root().join("README.md"), "#no-such-heading").is_some());
    assert!(check_target(&root().join("README.md"), "../outside.md").is_some());
    assert!(check_target(&root().join("README.md"), "docs/README.md").is_none());
}
