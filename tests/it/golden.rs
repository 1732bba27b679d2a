//! Whole syslog records, header and message together, for every example event in
//! `tests/golden/events/` × {LEEF, Splunk json, Splunk kv, CEF, OCSF} × {RFC 3164,
//! RFC 5424}.
//!
//! The expected bytes are written literally: the headers in the table below (derived
//! by hand from each event's `created_time`, `type` and severity, and identical to the
//! RFC 3164 headers of `leef-mapping.md` §7 wherever that file gives one), the messages
//! in `tests/golden/<format>/<event>.txt` (see that folder's README for where each line
//! comes from). The configuration is `leef-mapping.md` §7's: entity `acme`, QRadar log
//! source identifier `lookout-mes` as HOSTNAME, `app_name` and facility at their
//! defaults, header time from the event, rendered in UTC.

use chrono::{FixedOffset, TimeZone, Utc};
use mrav2_syslog_connector::config::{self, Format};
use mrav2_syslog_connector::event::RawEvent;
use mrav2_syslog_connector::format::Formatter;
use mrav2_syslog_connector::sink::syslog::{RecordWriter, Zone};
use std::path::{Path, PathBuf};

/// (event file stem, RFC 3164 header, RFC 5424 header), each header with its trailing
/// space, exactly as it must appear before the message.
const HEADERS: &[(&str, &str, &str)] = &[
    (
        "audit-admin-login",
        "<13>Nov  5 08:40:51 lookout-mes lookout-mra: ",
        "<13>1 2026-11-05T08:40:51.020Z lookout-mes lookout-mra - AUDIT - ",
    ),
    (
        "audit-policy-change",
        "<13>Nov  5 08:47:15 lookout-mes lookout-mra: ",
        "<13>1 2026-11-05T08:47:15.662Z lookout-mes lookout-mra - AUDIT - ",
    ),
    (
        "device-activated-secure",
        "<14>Nov  5 07:58:02 lookout-mes lookout-mra: ",
        "<14>1 2026-11-05T07:58:02.114Z lookout-mes lookout-mra - DEVICE - ",
    ),
    (
        "device-deactivated",
        "<14>Nov  5 10:18:30 lookout-mes lookout-mra: ",
        "<14>1 2026-11-05T10:18:30.480Z lookout-mes lookout-mra - DEVICE - ",
    ),
    (
        "device-no-status",
        "<14>Nov  5 10:41:05 lookout-mes lookout-mra: ",
        "<14>1 2026-11-05T10:41:05.300Z lookout-mes lookout-mra - DEVICE - ",
    ),
    (
        "event-with-tabs-newlines-unicode",
        "<12>Nov  5 10:52:19 lookout-mes lookout-mra: ",
        "<12>1 2026-11-05T10:52:19.876Z lookout-mes lookout-mra - THREAT - ",
    ),
    (
        "smishing-ceo-fraud",
        "<12>Nov  5 10:05:56 lookout-mes lookout-mra: ",
        "<12>1 2026-11-05T10:05:56.139Z lookout-mes lookout-mra - SMISHING_ALERT - ",
    ),
    (
        "smishing-url",
        "<12>Nov  5 09:44:10 lookout-mes lookout-mra: ",
        "<12>1 2026-11-05T09:44:10.771Z lookout-mes lookout-mra - SMISHING_ALERT - ",
    ),
    (
        "threat-app-no-package",
        "<13>Nov  5 10:33:47 lookout-mes lookout-mra: ",
        "<13>1 2026-11-05T10:33:47.655Z lookout-mes lookout-mra - THREAT - ",
    ),
    (
        "threat-app",
        "<12>Nov  5 08:31:09 lookout-mes lookout-mra: ",
        "<12>1 2026-11-05T08:31:09.907Z lookout-mes lookout-mra - THREAT - ",
    ),
    (
        "threat-empty-classifications",
        "<13>Nov  5 10:26:12 lookout-mes lookout-mra: ",
        "<13>1 2026-11-05T10:26:12.009Z lookout-mes lookout-mra - THREAT - ",
    ),
    (
        "threat-network",
        "<11>Nov  5 08:12:44 lookout-mes lookout-mra: ",
        "<11>1 2026-11-05T08:12:44.318Z lookout-mes lookout-mra - THREAT - ",
    ),
    (
        "threat-os",
        "<14>Nov  5 09:03:27 lookout-mes lookout-mra: ",
        "<14>1 2026-11-05T09:03:27.250Z lookout-mes lookout-mra - THREAT - ",
    ),
    (
        "threat-web-content",
        "<11>Nov  5 09:20:38 lookout-mes lookout-mra: ",
        "<11>1 2026-11-05T09:20:38.004Z lookout-mes lookout-mra - THREAT - ",
    ),
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn config_for(format: &str, header: &str) -> config::SyslogConfig {
    let ini = format!(
        "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\napi_key = k\n\n\
         [syslog]\nhost = 127.0.0.1\nprotocol = tcp\nforwarder_type = {format}\n\
         syslog_format = {header}\n\
         log_identifier_key = qradarLogSourceIdentifier\nlog_identifier = lookout-mes\n"
    );
    let config = config::load_str_with_env(Path::new("golden.ini"), &ini, &|_| None)
        .unwrap_or_else(|e| panic!("golden configuration: {e}"));
    config.tenants[0].syslog.clone()
}

/// Renders `stem` and frames every record with LF, as a TCP receiver would get it.
fn records(stem: &str, format: Format, syslog: &config::SyslogConfig) -> String {
    let path = golden_dir().join("events").join(format!("{stem}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    // Decoded as the connector decodes a received event (borrowing from the text).
    let raw = RawEvent::new(&text, None);
    let event = raw.decode().unwrap();
    let formatter = Formatter::new(format, "acme", None);
    let mut messages = Vec::new();
    formatter.render(&event, &mut messages);
    let writer =
        RecordWriter::new(syslog).with_zone(Zone::Fixed(FixedOffset::east_opt(0).unwrap()));
    // A fixed "now" far from every event time: a header taken from it would show.
    let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let mut out = Vec::new();
    for message in &messages {
        writer.write(message, now, &mut out);
    }
    String::from_utf8(out).unwrap()
}

fn expected(stem: &str, folder: &str, header: &str) -> String {
    let path = golden_dir().join(folder).join(format!("{stem}.txt"));
    let messages = std::fs::read_to_string(&path).unwrap();
    messages
        .lines()
        .map(|message| format!("{header}{message}\n"))
        .collect()
}

#[test]
fn every_example_gives_exactly_the_golden_records() {
    let formats = [
        ("qradar", "leef", Format::Leef { delimiter: '\t' }),
        ("splunk", "splunk-json", Format::SplunkJson),
        ("splunk", "splunk-kv", Format::SplunkKv),
        ("cef", "cef", Format::Cef),
        ("ocsf", "ocsf", Format::Ocsf),
    ];
    let mut checked = 0;
    for (forwarder, folder, format) in formats {
        for (header_name, pick) in [("rfc3164", 1), ("rfc5424", 2)] {
            let syslog = config_for(forwarder, header_name);
            if matches!(format, Format::Cef | Format::Ocsf) {
                assert_eq!(syslog.format, format, "forwarder_type = {forwarder}");
            }
            for &(stem, h3164, h5424) in HEADERS {
                let header = if pick == 1 { h3164 } else { h5424 };
                let got = records(stem, format, &syslog);
                let want = expected(stem, folder, header);
                assert_eq!(
                    got, want,
                    "{stem} as {folder} with an {header_name} header differs"
                );
                checked += want.lines().count();
            }
        }
    }
    // 15 records in LEEF and CEF (smishing-url gives two), 14 in Splunk and OCSF, × 2
    // headers.
    assert_eq!(checked, (15 + 14 + 14 + 15 + 14) * 2);
}

#[test]
fn every_example_event_has_a_header_row() {
    let mut stems: Vec<String> = std::fs::read_dir(golden_dir().join("events"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_string()
        })
        .collect();
    stems.sort();
    let mut rows: Vec<String> = HEADERS.iter().map(|h| h.0.to_string()).collect();
    rows.sort();
    assert_eq!(stems, rows);
}
