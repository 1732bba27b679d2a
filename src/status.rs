//! The `status` report: where each (tenant, destination) pair stands, read from its
//! state file.
//!
//! [`render`] reads the state file of every pair (`<state_dir>/<entity_name>.position.json`
//! for the destination `syslog`, `<entity_name>@<NAME>.position.json` for any other) and
//! describes it in plain text, one block per pair, so an operator can see at a glance
//! how far each pair got and how long ago its position was last saved. It takes the
//! state directory and the clock as arguments and does no I/O besides reading the state
//! files: resolving the directory (`--state-dir`, `$STATE_DIRECTORY`, …), printing and
//! the exit code belong to the binary. It never writes or repairs a state file; a
//! corrupt one is reported with the same message the connector gives at start-up.
//!
//! The layout is stable for scripts: a `tenant NAME` line, then indented `key: value`
//! lines whose values start in one column, and a blank line between blocks:
//!
//! ```text
//! tenant acme
//!   position:   0192b3e8-5a21-7c44-8e0f-6f1d2c3b4a59
//!   saved_at:   2026-11-22T12:00:00Z
//!   age:        5m03s
//!   delivered:  12345
//!   state_file: /var/lib/mrav2-syslog-connector/acme.position.json
//! ```
//!
//! Every block has `position` and `state_file`. A saved position adds `saved_at`, `age`
//! and `delivered`; a state file that cannot be read adds `error` (and `position` is
//! `unreadable`). A tenant that delivers anywhere but to `[syslog]` alone gets one block
//! per destination, in its `destinations` order, each with a `destination: NAME` line
//! first; in such a report every value starts one column further right (after
//! `destination: `). A file with only `[syslog]` (a Python connector's) prints exactly
//! the layout above.

use crate::config::{Config, TenantConfig};
use crate::position::{SavedPosition, StateFile};
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Write as _;
use std::path::Path;

/// The `status` report for every (tenant, destination) pair of `config`, in
/// configuration order, with the state files read from `state_dir` and ages measured
/// against `now`.
pub fn render(config: &Config, state_dir: &Path, now: DateTime<Utc>) -> String {
    let column = if config.tenants.iter().any(names_destinations) {
        WIDE_VALUE_COLUMN
    } else {
        VALUE_COLUMN
    };
    let blocks: Vec<String> = config
        .tenants
        .iter()
        .flat_map(|tenant| {
            let named = names_destinations(tenant);
            tenant.destinations.iter().map(move |destination| {
                let shown = named.then(|| destination.name());
                pair_block(tenant, destination.name(), shown, state_dir, now, column)
            })
        })
        .collect();
    blocks.join("\n")
}

/// Whether the tenant's blocks name their destination: it delivers anywhere but to
/// `[syslog]` alone.
fn names_destinations(tenant: &TenantConfig) -> bool {
    match tenant.destinations.as_slice() {
        [only] => only.name() != "syslog",
        _ => true,
    }
}

/// How long ago `then` was, in at most two units: `12s`, `5m03s`, `2h04m`, `3d02h`. A
/// time in the future (the clock moved back since the save) says so instead.
pub fn age(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = now.signed_duration_since(then).num_seconds();
    if seconds < 0 {
        return format!(
            "{} in the future (check the clock)",
            short_duration(seconds.unsigned_abs())
        );
    }
    short_duration(seconds.unsigned_abs())
}

/// A value that came from outside (a saved position is an id the server chose):
/// control characters escaped, secrets redacted, bounded (see [`crate::untrusted`]).
fn shown(text: &str) -> String {
    crate::untrusted::clean(text.as_bytes(), 1024)
}

/// The width of the longest key (`state_file:`) plus one space: where values start.
const VALUE_COLUMN: usize = "state_file: ".len();

/// Where values start when blocks have a `destination:` line.
const WIDE_VALUE_COLUMN: usize = "destination: ".len();

fn pair_block(
    tenant: &TenantConfig,
    destination: &str,
    shown_destination: Option<&str>,
    state_dir: &Path,
    now: DateTime<Utc>,
    column: usize,
) -> String {
    let file = StateFile::for_destination(state_dir, &tenant.entity_name, destination);
    let mut lines: Vec<(&str, String)> = Vec::new();
    if let Some(name) = shown_destination {
        lines.push(("destination", name.to_string()));
    }
    match file.load() {
        Ok(Some(saved)) => saved_lines(&saved, now, &mut lines),
        Ok(None) => {
            // `load` treats an empty file like a missing one (a crash before the first
            // write); say which it is, since an operator may be looking for the file.
            let why = if file.path().exists() {
                "state file is empty"
            } else {
                "no state file yet"
            };
            lines.push((
                "position",
                format!("none ({why}; starts from {})", tenant.start_description()),
            ));
        }
        Err(e) => {
            lines.push(("position", "unreadable".to_string()));
            lines.push(("error", shown(&e.to_string())));
        }
    }
    lines.push(("state_file", file.path().display().to_string()));

    let mut out = format!("tenant {}\n", tenant.entity_name);
    for (key, value) in lines {
        let label = format!("{key}:");
        // Writing into a String cannot fail.
        let _ = writeln!(out, "  {label:<column$}{value}");
    }
    out
}

fn saved_lines(saved: &SavedPosition, now: DateTime<Utc>, lines: &mut Vec<(&str, String)>) {
    lines.push(("position", shown(&saved.position)));
    lines.push((
        "saved_at",
        saved.saved_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    ));
    lines.push(("age", age(saved.saved_at, now)));
    lines.push(("delivered", saved.delivered.to_string()));
}

fn short_duration(seconds: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    if seconds < MINUTE {
        format!("{seconds}s")
    } else if seconds < HOUR {
        format!("{}m{:02}s", seconds / MINUTE, seconds % MINUTE)
    } else if seconds < DAY {
        format!("{}h{:02}m", seconds / HOUR, seconds % HOUR / MINUTE)
    } else {
        format!("{}d{:02}h", seconds / DAY, seconds % DAY / HOUR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config(text: &str) -> Config {
        crate::config::load_str_with_env(Path::new("/etc/conn/config.ini"), text, &|_| None)
            .unwrap()
    }

    fn one_tenant() -> Config {
        config("[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = k\n")
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn save(dir: &Path, name: &str, position: &str, saved_at: &str, delivered: u64) -> PathBuf {
        let file = StateFile::new(dir, name);
        file.save(&SavedPosition {
            destination: None,
            entity_name: name.into(),
            position: position.into(),
            saved_at: at(saved_at),
            delivered,
        })
        .unwrap();
        file.path().to_path_buf()
    }

    #[test]
    fn ages_use_at_most_two_units() {
        let now = at("2026-11-22T12:00:00Z");
        let ago = |secs: i64| age(now - chrono::Duration::seconds(secs), now);
        assert_eq!(ago(0), "0s");
        assert_eq!(ago(12), "12s");
        assert_eq!(ago(59), "59s");
        assert_eq!(ago(60), "1m00s");
        assert_eq!(ago(5 * 60 + 3), "5m03s");
        assert_eq!(ago(3599), "59m59s");
        assert_eq!(ago(3600), "1h00m");
        assert_eq!(ago(2 * 3600 + 4 * 60 + 59), "2h04m");
        assert_eq!(ago(86_399), "23h59m");
        assert_eq!(ago(86_400), "1d00h");
        assert_eq!(ago(3 * 86_400 + 2 * 3600 + 59 * 60), "3d02h");
        assert_eq!(ago(400 * 86_400), "400d00h");
        assert_eq!(ago(-7), "7s in the future (check the clock)");
    }

    #[test]
    fn a_saved_position_shows_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = save(
            dir.path(),
            "acme",
            "0192b3e8-5a21-7c44-8e0f-6f1d2c3b4a59",
            "2026-11-22T12:00:00Z",
            12345,
        );
        let report = render(&one_tenant(), dir.path(), at("2026-11-22T12:05:03Z"));
        assert_eq!(
            report,
            format!(
                "tenant acme\n\
                 \x20 position:   0192b3e8-5a21-7c44-8e0f-6f1d2c3b4a59\n\
                 \x20 saved_at:   2026-11-22T12:00:00Z\n\
                 \x20 age:        5m03s\n\
                 \x20 delivered:  12345\n\
                 \x20 state_file: {}\n",
                path.display()
            )
        );
    }

    #[test]
    fn a_missing_state_file_says_where_the_tenant_starts() {
        let dir = tempfile::tempdir().unwrap();
        let report = render(&one_tenant(), dir.path(), at("2026-11-22T12:00:00Z"));
        assert_eq!(
            report,
            format!(
                "tenant acme\n\
                 \x20 position:   none (no state file yet; starts from id=0)\n\
                 \x20 state_file: {}\n",
                dir.path().join("acme.position.json").display()
            )
        );

        let with_start = config(
            "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = k\n\
             start_time = 2026-11-20T00:00:00Z\n",
        );
        let report = render(&with_start, dir.path(), at("2026-11-22T12:00:00Z"));
        assert!(
            report.contains(
                "position:   none (no state file yet; starts from start_time 2026-11-20T00:00:00+00:00)\n"
            ),
            "{report}"
        );
    }

    #[test]
    fn an_empty_state_file_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("acme.position.json"), "").unwrap();
        let report = render(&one_tenant(), dir.path(), at("2026-11-22T12:00:00Z"));
        assert!(
            report.contains("position:   none (state file is empty; starts from id=0)\n"),
            "{report}"
        );
    }

    #[test]
    fn a_corrupt_state_file_is_reported_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acme.position.json");
        std::fs::write(&path, "{not json").unwrap();
        let report = render(&one_tenant(), dir.path(), at("2026-11-22T12:00:00Z"));
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[0], "tenant acme");
        assert_eq!(lines[1], "  position:   unreadable");
        let error = lines[2]
            .strip_prefix("  error:      ")
            .unwrap_or_else(|| panic!("no error line in\n{report}"));
        assert!(
            error.starts_with(&format!("{}: the state file is corrupt (", path.display())),
            "{error}"
        );
        assert!(
            error.ends_with("fix or remove it to start from the configured position"),
            "{error}"
        );
        assert_eq!(lines[3], format!("  state_file: {}", path.display()));
        assert_eq!(lines.len(), 4);
        // Reporting never repairs or replaces the file.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{not json");
    }

    #[test]
    fn two_tenants_give_two_blocks_in_configuration_order() {
        let dir = tempfile::tempdir().unwrap();
        let two = config(
            "[lookout]\napi_domain = https://api.lookout.com\n\
             [lookout:zeta]\napi_key = a\n\
             [lookout:alpha]\napi_key = b\nstream_position = 01a1aac4-759e-7c9d-bf7a-861b26a9b1a3\n",
        );
        save(
            dir.path(),
            "zeta",
            "0192",
            "2026-11-19T09:00:00Z",
            7_000_000,
        );
        let report = render(&two, dir.path(), at("2026-11-22T11:30:00Z"));
        let blocks: Vec<&str> = report.split("\n\n").collect();
        assert_eq!(blocks.len(), 2, "{report}");
        assert!(blocks[0].starts_with("tenant zeta\n"), "{report}");
        assert!(blocks[0].contains("  age:        3d02h\n"), "{report}");
        assert!(blocks[0].contains("  delivered:  7000000\n"), "{report}");
        assert!(blocks[1].starts_with("tenant alpha\n"), "{report}");
        assert!(
            blocks[1].contains(
                "  position:   none (no state file yet; starts from stream_position 01a1aac4-759e-7c9d-bf7a-861b26a9b1a3)\n"
            ),
            "{report}"
        );
        assert!(
            blocks[1].ends_with(&format!(
                "  state_file: {}\n",
                dir.path().join("alpha.position.json").display()
            )),
            "{report}"
        );
    }

    #[test]
    fn every_line_parses_as_key_and_value() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), "acme", "p", "2026-11-22T12:00:00Z", 1);
        let report = render(&one_tenant(), dir.path(), at("2026-11-22T12:00:12Z"));
        let mut keys = Vec::new();
        for line in report.lines().skip(1) {
            let (key, value) = line.trim_start().split_once(':').unwrap();
            assert_eq!(&line[..2], "  ");
            // The value starts in the same column on every line.
            assert_eq!(
                line.len() - value.trim_start().len(),
                2 + VALUE_COLUMN,
                "{line}"
            );
            keys.push(key);
        }
        assert_eq!(
            keys,
            ["position", "saved_at", "age", "delivered", "state_file"]
        );
    }

    #[test]
    fn each_destination_of_a_tenant_gets_its_own_block_and_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let two = config(
            "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = k\n\
             start_time = 2026-11-20T00:00:00Z\n\
             [syslog]\nhost = 127.0.0.1\n\
             [destination:splunk]\ntype = splunk_hec\nurl = https://hec.example.com:8088\ntoken = t\n",
        );
        let syslog_file = save(dir.path(), "acme", "0192", "2026-11-22T11:59:00Z", 40);
        let report = render(&two, dir.path(), at("2026-11-22T12:00:00Z"));
        assert_eq!(
            report,
            format!(
                "tenant acme\n\
                 \x20 destination: syslog\n\
                 \x20 position:    0192\n\
                 \x20 saved_at:    2026-11-22T11:59:00Z\n\
                 \x20 age:         1m00s\n\
                 \x20 delivered:   40\n\
                 \x20 state_file:  {}\n\
                 \n\
                 tenant acme\n\
                 \x20 destination: splunk\n\
                 \x20 position:    none (no state file yet; starts from start_time 2026-11-20T00:00:00+00:00)\n\
                 \x20 state_file:  {}\n",
                syslog_file.display(),
                dir.path().join("acme@splunk.position.json").display()
            )
        );

        // Once the new destination saved a position, its block shows it.
        StateFile::for_destination(dir.path(), "acme", "splunk")
            .save(&SavedPosition {
                destination: Some("splunk".into()),
                entity_name: "acme".into(),
                position: "0190".into(),
                saved_at: at("2026-11-22T11:00:00Z"),
                delivered: 7,
            })
            .unwrap();
        let report = render(&two, dir.path(), at("2026-11-22T12:00:00Z"));
        let blocks: Vec<&str> = report.split("\n\n").collect();
        assert_eq!(blocks.len(), 2, "{report}");
        assert!(blocks[1].contains("  position:    0190\n"), "{report}");
        assert!(blocks[1].contains("  age:         1h00m\n"), "{report}");
        assert!(blocks[1].contains("  delivered:   7\n"), "{report}");
    }

    #[test]
    fn a_single_destination_other_than_syslog_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let hec_only = config(
            "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = k\n\
             [destination:splunk]\ntype = splunk_hec\nurl = https://hec.example.com:8088\ntoken = t\n",
        );
        let report = render(&hec_only, dir.path(), at("2026-11-22T12:00:00Z"));
        assert_eq!(
            report,
            format!(
                "tenant acme\n\
                 \x20 destination: splunk\n\
                 \x20 position:    none (no state file yet; starts from id=0)\n\
                 \x20 state_file:  {}\n",
                dir.path().join("acme@splunk.position.json").display()
            )
        );
    }
}
