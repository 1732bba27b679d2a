//! Golden tests (every file of `events/` in LEEF, Splunk json, Splunk kv, CEF and OCSF
//! (each OCSF record also validated against the vendored schema), compared byte for
//! byte with `tests/golden/`), the escape examples of `docs/formats/leef.md#escaping`,
//! and one test per row of `docs/formats/leef.md#missing-or-odd-fields`.
//!
//! The expected files under `tests/golden/` hold the message part of each record, one
//! record per line, with TAB bytes where LEEF has them; `tests/golden/README.md` says
//! where each line comes from.

use super::*;
use serde_json::{Value, json};

/// The configuration of `docs/formats/leef.md#worked-examples`: `entity_name = acme`, and a
/// log identifier that names the QRadar log source (so no custom attribute).
fn formatter(format: Format) -> Formatter {
    Formatter::new(
        format,
        "acme",
        Some((
            "qradarLogSourceIdentifier".to_string(),
            "lookout-mes".to_string(),
        )),
    )
}

const TAB: Format = Format::Leef { delimiter: '\t' };

fn event(value: Value) -> MraEvent<'static> {
    match value {
        Value::Object(fields) => MraEvent::from(&fields),
        other => panic!("test events are objects, not {other}"),
    }
}

/// Decodes `text` as the connector decodes a received event (borrowing from it).
fn parse_event(text: &str) -> MraEvent<'_> {
    MraEvent::new(crate::json::Object::parse(text).expect("example events are JSON objects"))
}

fn render(format: Format, event: &MraEvent) -> Vec<RenderedMessage> {
    let mut out = Vec::new();
    formatter(format).render(event, &mut out);
    out
}

fn texts(format: Format, event: &MraEvent) -> Vec<String> {
    render(format, event).into_iter().map(|m| m.text).collect()
}

/// The one record of a single-record event.
fn one(format: Format, value: Value) -> String {
    let mut records = texts(format, &event(value));
    assert_eq!(records.len(), 1, "{records:?}");
    records.remove(0)
}

/// Splits the attribute part of a LEEF record on unescaped delimiters.
pub(super) fn split_unescaped(s: &str, delimiter: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == delimiter {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The `(key, value)` attributes of a TAB-delimited record, values unescaped.
fn attributes(record: &str) -> Vec<(String, String)> {
    let attrs = record.splitn(6, '|').nth(5).expect("a LEEF header");
    split_unescaped(attrs, '\t')
        .into_iter()
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("key=value");
            (k.to_string(), unescape_leef(v, '\t'))
        })
        .collect()
}

fn attribute(record: &str, key: &str) -> Option<String> {
    attributes(record)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn event_id(record: &str) -> &str {
    record.split('|').nth(4).expect("a LEEF header")
}

// ---------------------------------------------------------------------------------
// Golden files

macro_rules! golden {
    ($($name:ident: $stem:literal => $severity:literal,)*) => {
        /// `(stem, event JSON, LEEF, Splunk json, Splunk kv, CEF, OCSF, severity)`.
        const GOLDEN: &[Golden] = &[$(Golden {
            stem: $stem,
            event: include_str!(concat!("../../tests/golden/events/", $stem, ".json")),
            leef: include_str!(concat!("../../tests/golden/leef/", $stem, ".txt")),
            json: include_str!(concat!("../../tests/golden/splunk-json/", $stem, ".txt")),
            kv: include_str!(concat!("../../tests/golden/splunk-kv/", $stem, ".txt")),
            cef: include_str!(concat!("../../tests/golden/cef/", $stem, ".txt")),
            ocsf: include_str!(concat!("../../tests/golden/ocsf/", $stem, ".txt")),
            severity: $severity,
        }),*];

        mod golden {
            use super::*;
            $(
                #[test]
                fn $name() {
                    let golden = GOLDEN.iter().find(|g| g.stem == $stem).expect("listed");
                    golden.check();
                }
            )*
        }
    };
}

pub(super) struct Golden {
    pub(super) stem: &'static str,
    pub(super) event: &'static str,
    leef: &'static str,
    json: &'static str,
    kv: &'static str,
    cef: &'static str,
    ocsf: &'static str,
    severity: u8,
}

impl Golden {
    fn check(&self) {
        let event = parse_event(self.event);
        for (format, expected) in [
            (TAB, self.leef),
            (Format::SplunkJson, self.json),
            (Format::SplunkKv, self.kv),
            (Format::Cef, self.cef),
            (Format::Ocsf, self.ocsf),
        ] {
            let messages = render(format, &event);
            let mut actual = String::new();
            for m in &messages {
                actual.push_str(&m.text);
                actual.push('\n');
            }
            assert_eq!(actual, expected, "{} in {format:?}", self.stem);
            if format == Format::Ocsf {
                for m in &messages {
                    let record: Value = serde_json::from_str(&m.text).expect("OCSF is JSON");
                    if let Err(problems) = super::ocsf_schema::validate(&record) {
                        panic!("{} is not valid OCSF 1.8.0:\n{problems}", self.stem);
                    }
                }
            }
            for m in &messages {
                assert_eq!(m.severity, self.severity, "{} severity", self.stem);
                assert_eq!(m.event_id.as_deref(), event.id());
                assert_eq!(m.msgid.as_deref(), event.event_type());
                let created = event.created_time().expect("examples have created_time");
                assert_eq!(
                    m.event_time
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)),
                    Some(created.to_string())
                );
            }
        }
    }
}

pub(super) fn golden_events() -> impl Iterator<Item = &'static Golden> {
    GOLDEN.iter()
}

// Severities: the PRIs of the golden records (facility user: <11> = 3, <12> = 4,
// <13> = 5, <14> = 6), by `docs/formats/syslog.md#severity-per-event`.
golden! {
    threat_network: "threat-network" => 3,
    threat_app: "threat-app" => 4,
    threat_os: "threat-os" => 6,
    threat_web_content: "threat-web-content" => 3,
    device_activated_secure: "device-activated-secure" => 6,
    device_deactivated: "device-deactivated" => 6,
    audit_policy_change: "audit-policy-change" => 5,
    audit_admin_login: "audit-admin-login" => 5,
    smishing_url: "smishing-url" => 4,
    smishing_ceo_fraud: "smishing-ceo-fraud" => 4,
    threat_empty_classifications: "threat-empty-classifications" => 5,
    threat_app_no_package: "threat-app-no-package" => 5,
    device_no_status: "device-no-status" => 6,
    event_with_tabs_newlines_unicode: "event-with-tabs-newlines-unicode" => 4,
}

#[test]
fn golden_covers_every_example() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/events");
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/golden/events exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_string))
        .collect();
    stems.sort();
    let mut listed: Vec<String> = GOLDEN.iter().map(|g| g.stem.to_string()).collect();
    listed.sort();
    assert_eq!(stems, listed);
    assert_eq!(listed.len(), 14);
}

#[test]
fn golden_caret_delimiter() {
    let golden = GOLDEN
        .iter()
        .find(|g| g.stem == "threat-network")
        .expect("listed");
    let expected = include_str!("../../tests/golden/leef-caret/threat-network.txt");
    let records = texts(Format::Leef { delimiter: '^' }, &parse_event(golden.event));
    assert_eq!(records.len(), 1);
    assert_eq!(format!("{}\n", records[0]), expected);
}

#[test]
fn pipe_delimiter_header_is_0x7c() {
    let golden = GOLDEN
        .iter()
        .find(|g| g.stem == "threat-network")
        .expect("listed");
    let records = texts(Format::Leef { delimiter: '|' }, &parse_event(golden.event));
    assert!(
        records[0].starts_with(
            "LEEF:2.0|Lookout|MRAv2 Client|2.0|THREAT,ACTIVE_MITM|0x7C|cat=ACTIVE_MITM|devTime=1793866364318|sev=8|lookoutEntName=acme|"
        ),
        "{}",
        records[0]
    );
}

// ---------------------------------------------------------------------------------
// The escape examples of `docs/formats/leef.md#escaping`, with delimiters TAB, ^ and |

#[test]
fn escape_vectors() {
    // input, then the output with TAB, ^ and | as the delimiter.
    let vectors: &[(&str, &str, &str, &str)] = &[
        (
            "Lobby\tGuest",
            r"Lobby\tGuest",
            r"Lobby\tGuest",
            r"Lobby\tGuest",
        ),
        (
            "ap-01\r\nap-02",
            r"ap-01\r\nap-02",
            r"ap-01\r\nap-02",
            r"ap-01\r\nap-02",
        ),
        (r"C:\corp\*", r"C:\\corp\\*", r"C:\\corp\\*", r"C:\\corp\\*"),
        ("a=b|c", "a=b|c", "a=b|c", r"a=b\|c"),
        ("x^y", "x^y", r"x\^y", "x^y"),
        ("a\0b", r"a\0b", r"a\0b", r"a\0b"),
        ("a\u{1b}b", r"a\x1Bb", r"a\x1Bb", r"a\x1Bb"),
        (
            "Café Wi‑Fi 東京",
            "Café Wi‑Fi 東京",
            "Café Wi‑Fi 東京",
            "Café Wi‑Fi 東京",
        ),
    ];
    for &(input, tab, caret, pipe) in vectors {
        for (delimiter, expected) in [('\t', tab), ('^', caret), ('|', pipe)] {
            // Through the renderer: the value of `networkName`, the last attribute.
            let record = one(
                Format::Leef { delimiter },
                json!({"type": "THREAT", "threat": {"details": {"network": {"network_name": input}}}}),
            );
            let tail = format!("{delimiter}networkName={expected}");
            assert!(
                record.ends_with(&tail),
                "{input:?} with {delimiter:?}: {record}"
            );
            assert_eq!(unescape_leef(expected, delimiter), input);
        }
    }
}

#[test]
fn escape_vector_header() {
    for delimiter in ['\t', '^', '|'] {
        let record = one(
            Format::Leef { delimiter },
            json!({"type": "THREAT", "threat": {"classifications": ["A|B"]}}),
        );
        assert!(
            record.starts_with(r"LEEF:2.0|Lookout|MRAv2 Client|2.0|THREAT,A\|B|"),
            "{record}"
        );
        let cat = if delimiter == '|' {
            r"cat=A\|B"
        } else {
            "cat=A|B"
        };
        assert!(record.contains(cat), "{record}");
    }
    // Every header escape, not only `|`.
    let record = one(TAB, json!({"change_type": "a\\b\tc\u{1}^"}));
    assert_eq!(event_id(&record), r"UNKNOWN,a\\b\tc\x01^");
}

// ---------------------------------------------------------------------------------
// `docs/formats/leef.md#missing-or-odd-fields`: one test per row

fn threat_app() -> Value {
    json!({
        "id": "e1",
        "created_time": "2026-11-05T08:31:09.907+00:00",
        "type": "THREAT",
        "change_type": "CREATED",
        "threat": {
            "severity": "MEDIUM",
            "classifications": ["RISKWARE"],
            "details": {"application_name": "QuickScan", "package_name": "com.quickscan"}
        }
    })
}

#[test]
fn edge_threat_with_empty_classifications() {
    let mut v = threat_app();
    v["threat"]["classifications"] = json!([]);
    let record = one(TAB, v);
    assert_eq!(event_id(&record), "THREAT,UNKNOWN");
    assert_eq!(attribute(&record, "cat").as_deref(), Some("UNKNOWN"));
    assert_eq!(attribute(&record, "lookoutClassifications"), None);
}

#[test]
fn edge_threat_without_threat_object() {
    let record = one(
        TAB,
        json!({
            "id": "e1",
            "enterprise_guid": "g",
            "created_time": "2026-11-05T08:31:09.907+00:00",
            "type": "THREAT",
            "change_type": "CREATED",
            "target": {"guid": "t", "type": "THREAT"},
            "actor": {"type": "SYSTEM"}
        }),
    );
    assert_eq!(
        record,
        "LEEF:2.0|Lookout|MRAv2 Client|2.0|THREAT,UNKNOWN|cat=UNKNOWN\tdevTime=1793867469907\t\
         sev=5\tlookoutEntName=acme\tlookoutChangeType=CREATED\t\
         lookoutEventTime=2026-11-05T08:31:09.907+00:00\tlookoutEnterpriseGuid=g\tlookoutId=e1\t\
         lookoutType=THREAT\tlookoutTargetId=t\ttargetType=THREAT\tlookoutActorType=SYSTEM"
    );
}

#[test]
fn edge_application_name_without_package_name() {
    let mut v = threat_app();
    v["threat"]["details"] = json!({"application_name": "QuickScan"});
    let record = one(TAB, v);
    assert_eq!(
        attribute(&record, "lookoutAppProcessDetails").as_deref(),
        Some("QuickScan")
    );
    assert_eq!(attribute(&record, "threatAppPackageName"), None);
}

#[test]
fn edge_package_name_without_application_name() {
    let mut v = threat_app();
    v["threat"]["details"] = json!({"package_name": "com.quickscan"});
    let record = one(TAB, v);
    assert_eq!(attribute(&record, "lookoutAppProcessDetails"), None);
    assert_eq!(
        attribute(&record, "threatAppPackageName").as_deref(),
        Some("com.quickscan")
    );
    // Both: the composite, and the package on its own as well.
    let record = one(TAB, threat_app());
    assert_eq!(
        attribute(&record, "lookoutAppProcessDetails").as_deref(),
        Some("QuickScan, com.quickscan")
    );
    assert_eq!(
        attribute(&record, "threatAppPackageName").as_deref(),
        Some("com.quickscan")
    );
}

#[test]
fn edge_client_package_name_without_version() {
    let base = json!({"type": "DEVICE", "change_type": "CREATED",
        "device": {"client": {"package_name": "com.lookout", "package_version": "1.2"}}});
    let record = one(TAB, base.clone());
    assert_eq!(
        attribute(&record, "lookoutClientPackageDetails").as_deref(),
        Some("com.lookout-1.2")
    );
    let mut v = base.clone();
    v["device"]["client"] = json!({"package_name": "com.lookout"});
    assert_eq!(
        attribute(&one(TAB, v), "lookoutClientPackageDetails").as_deref(),
        Some("com.lookout")
    );
    let mut v = base;
    v["device"]["client"] = json!({"package_version": "1.2"});
    assert_eq!(attribute(&one(TAB, v), "lookoutClientPackageDetails"), None);
}

#[test]
fn edge_device_without_status() {
    let record = one(
        TAB,
        json!({"type": "DEVICE", "change_type": "CREATED", "device": {"guid": "d"}}),
    );
    assert_eq!(event_id(&record), "DEVICE,CREATED");
    assert_eq!(attribute(&record, "cat").as_deref(), Some("CREATED"));
}

#[test]
fn edge_device_activated_without_security_status() {
    let record = one(
        TAB,
        json!({"type": "DEVICE", "change_type": "UPDATED",
            "device": {"status": {"activation_status": "ACTIVATED"}}}),
    );
    assert_eq!(event_id(&record), "DEVICE,UPDATED");
    // The three statuses that stand alone, with or without security_status.
    for status in ["DELETED", "DEACTIVATED", "PENDING"] {
        let record = one(
            TAB,
            json!({"type": "DEVICE", "change_type": "UPDATED",
                "device": {"status": {"activation_status": status, "security_status": "SECURE"}}}),
        );
        assert_eq!(event_id(&record), format!("DEVICE,{status}"));
    }
}

#[test]
fn edge_audit_without_audit_type() {
    let record = one(
        TAB,
        json!({"type": "AUDIT", "change_type": "UPDATED", "audit": {"attribute_changes": []}}),
    );
    assert_eq!(event_id(&record), "AUDIT,UPDATED");
}

#[test]
fn edge_event_without_type() {
    let record = one(TAB, json!({"change_type": "CREATED", "id": "x"}));
    assert_eq!(event_id(&record), "UNKNOWN,CREATED");
    assert_eq!(attribute(&record, "lookoutType"), None);
    assert_eq!(attribute(&record, "sev").as_deref(), Some("1"));
    let message = &render(TAB, &event(json!({"change_type": "CREATED"})))[0];
    assert_eq!(message.severity, 6);
    assert_eq!(message.msgid, None);
    // A `type` that is not a string counts as missing.
    let record = one(TAB, json!({"type": 7, "change_type": "CREATED"}));
    assert_eq!(event_id(&record), "UNKNOWN,CREATED");
    assert_eq!(attribute(&record, "lookoutType").as_deref(), Some("7"));
}

#[test]
fn edge_no_change_type_for_fallback() {
    for v in [
        json!({}),
        json!({"type": "DEVICE"}),
        json!({"type": "AUDIT", "change_type": {"x": 1}}),
        json!({"type": "OTHER", "change_type": null}),
        json!({"type": "SMISHING_ALERT"}),
    ] {
        let record = one(TAB, v.clone());
        assert!(event_id(&record).ends_with(",UNKNOWN"), "{v}: {record}");
        assert_eq!(attribute(&record, "cat").as_deref(), Some("UNKNOWN"));
    }
    // A number is a scalar, rendered as its JSON text.
    assert_eq!(event_id(&one(TAB, json!({"change_type": 5}))), "UNKNOWN,5");
}

#[test]
fn edge_created_time_missing_or_unparseable() {
    for created in [
        json!(null),
        json!("2026-11-05 08:31"),
        json!("2026-11-05T08:31:09.907"),
        json!("2026-11-05T08:31:09+0000"),
        json!("2026-11-05T08:31:09.907+00"),
        json!("2026-11-05"),
        json!(1793867469907u64),
        json!("yesterday"),
    ] {
        let messages = render(
            TAB,
            &event(json!({"type": "AUDIT", "created_time": created, "audit": {"type": "X"}})),
        );
        assert_eq!(messages.len(), 1);
        assert_eq!(attribute(&messages[0].text, "devTime"), None, "{created}");
        assert_eq!(messages[0].event_time, None);
        assert_eq!(messages[0].severity, 5);
    }
    // `Z` and other offsets; digits beyond milliseconds are truncated.
    for (created, ms) in [
        ("2026-11-05T08:31:09Z", "1793867469000"),
        ("2026-11-05T10:31:09.907999+02:00", "1793867469907"),
        ("1990-01-01T00:00:00Z", "0631152000000"),
    ] {
        let record = one(TAB, json!({"created_time": created}));
        assert_eq!(
            attribute(&record, "devTime").as_deref(),
            Some(ms),
            "{created}"
        );
    }
}

#[test]
fn edge_list_with_mixed_scalars() {
    let mut v = threat_app();
    v["threat"]["details"]["dns_ip_addresses"] = json!(["a", 7, true]);
    let record = one(TAB, v.clone());
    assert_eq!(
        attribute(&record, "lookoutDnsIpAddresses").as_deref(),
        Some("a,7,true")
    );
    assert!(one(Format::SplunkKv, v).contains(r#"threat.details.dns_ip_addresses="a,7,true""#));
}

#[test]
fn edge_value_of_unexpected_kind() {
    let mut v = threat_app();
    v["threat"]["details"]["url"] = json!({"href": "https://x/?a=b", "n": [1, null]});
    let record = one(TAB, v);
    assert_eq!(
        attribute(&record, "lookoutUrl").as_deref(),
        Some(r#"{"href":"https://x/?a=b","n":[1,null]}"#)
    );
}

// The last row of the missing-or-odd-fields table (an array item in the batch that is not
// an object) never reaches the formatter: `MraEvent` holds an object, and the source
// dead-letters the rest.

// ---------------------------------------------------------------------------------
// More LEEF rules

#[test]
fn smishing_without_detections_is_one_record() {
    for detections in [json!(null), json!([]), json!("x"), json!({"a": 1})] {
        let record = one(
            TAB,
            json!({"type": "SMISHING_ALERT", "change_type": "CREATED",
                "smishing_alert": {"guid": "g", "detections": detections}}),
        );
        assert_eq!(event_id(&record), "SMISHING_ALERT,CREATED");
        assert_eq!(attribute(&record, "smishingAlertId").as_deref(), Some("g"));
        assert_eq!(attribute(&record, "smishingDetectionIndex"), None);
        assert_eq!(attribute(&record, "sev").as_deref(), Some("7"));
    }
}

#[test]
fn smishing_detection_shapes() {
    let records = texts(
        TAB,
        &event(json!({"type": "SMISHING_ALERT", "change_type": "CREATED",
        "smishing_alert": {"detections": [
            "not an object",
            {"category": "CEO_FRAUD"},
            {"alert_type": "FRAUD_DETECTION", "impersonated_employee": {"name": "D", "title": "CEO"}}
        ]}})),
    );
    assert_eq!(records.len(), 3);
    assert_eq!(event_id(&records[0]), "SMISHING_ALERT,CREATED");
    assert_eq!(
        attribute(&records[0], "smishingDetectionIndex").as_deref(),
        Some("0")
    );
    assert_eq!(event_id(&records[1]), "SMISHING_ALERT,CEO_FRAUD");
    assert_eq!(event_id(&records[2]), "FRAUD_DETECTION,FRAUD_DETECTION");
    assert_eq!(
        attribute(&records[2], "lookoutType").as_deref(),
        Some("SMISHING_ALERT")
    );
    assert_eq!(
        attribute(&records[2], "smishingImpersonatedEmployee").as_deref(),
        Some(r#"{"name":"D","title":"CEO"}"#)
    );
    // The rename needs a SMISHING_ALERT event: other types are never split.
    let record = one(
        TAB,
        json!({"type": "THREAT", "smishing_alert": {"detections": [{"alert_type": "FRAUD_DETECTION"}]}}),
    );
    assert_eq!(event_id(&record), "THREAT,UNKNOWN");
}

#[test]
fn custom_identifier_is_last_and_qradar_key_is_never_written() {
    let v = json!({"type": "AUDIT", "audit": {"type": "X"}, "threat": {"status": "OPEN"}});
    let custom = Formatter::new(
        Format::Leef { delimiter: '^' },
        "acme",
        Some(("siteId".to_string(), "lon^1".to_string())),
    );
    let mut out = Vec::new();
    custom.render(&event(v.clone()), &mut out);
    assert!(
        out[0]
            .text
            .ends_with(r"^lookoutThreatStatus=OPEN^siteId=lon\^1"),
        "{}",
        out[0].text
    );
    for key in ["", "qradarLogSourceIdentifier"] {
        let f = Formatter::new(TAB, "acme", Some((key.to_string(), "v".to_string())));
        let mut out = Vec::new();
        f.render(&event(v.clone()), &mut out);
        assert!(
            out[0].text.ends_with("\tlookoutThreatStatus=OPEN"),
            "{key:?}"
        );
    }
    let f = Formatter::new(TAB, "acme", None);
    let mut out = Vec::new();
    f.render(&event(v), &mut out);
    assert!(out[0].text.ends_with("\tlookoutThreatStatus=OPEN"));
}

#[test]
fn entity_name_overrides_event_ent_name() {
    let record = one(TAB, json!({"entName": "other", "change_type": "X"}));
    assert_eq!(
        attribute(&record, "lookoutEntName").as_deref(),
        Some("acme")
    );
}

#[test]
fn one_zero_keys_and_other_booleans() {
    let record = one(
        TAB,
        json!({"type": "THREAT", "threat": {"details": {
            "vpn_present": true, "proxy_port": false,
            "network": {"connected": "yes", "proxy_config": true}}}}),
    );
    assert_eq!(
        attribute(&record, "lookoutVpnPresent").as_deref(),
        Some("1")
    );
    assert_eq!(
        attribute(&record, "lookoutProxyPort").as_deref(),
        Some("false")
    );
    assert_eq!(
        attribute(&record, "networkConnected").as_deref(),
        Some("yes")
    );
    assert_eq!(attribute(&record, "proxyConfig").as_deref(), Some("true"));
}

#[test]
fn sev_and_syslog_severity_tables() {
    for (severity, sev, syslog) in [
        (json!("CRITICAL"), "10", 2),
        (json!("HIGH"), "8", 3),
        (json!("MEDIUM"), "5", 4),
        (json!("LOW"), "3", 5),
        (json!("ADVISORY"), "2", 6),
        (json!("NONE"), "1", 6),
        (json!("high"), "5", 4),
        (json!(null), "5", 4),
    ] {
        let messages = render(
            TAB,
            &event(json!({"type": "THREAT", "threat": {"severity": severity}})),
        );
        assert_eq!(attribute(&messages[0].text, "sev").as_deref(), Some(sev));
        assert_eq!(messages[0].severity, syslog);
        let splunk = render(
            Format::SplunkKv,
            &event(json!({"type": "THREAT", "threat": {"severity": severity}})),
        );
        assert_eq!(splunk[0].severity, syslog);
    }
    for (t, sev, syslog) in [
        ("SMISHING_ALERT", "7", 4),
        ("AUDIT", "1", 5),
        ("DEVICE", "1", 6),
        ("OTHER", "1", 6),
    ] {
        let messages = render(TAB, &event(json!({"type": t})));
        assert_eq!(attribute(&messages[0].text, "sev").as_deref(), Some(sev));
        assert_eq!(messages[0].severity, syslog);
    }
}

#[test]
fn msgid_is_printable_ascii_up_to_32() {
    let msgid = |t: Value| {
        render(Format::SplunkJson, &event(json!({"type": t})))[0]
            .msgid
            .clone()
    };
    assert_eq!(msgid(json!("THREAT")), Some("THREAT".to_string()));
    assert_eq!(msgid(json!("A".repeat(32))), Some("A".repeat(32)));
    assert_eq!(msgid(json!("A".repeat(33))), None);
    assert_eq!(msgid(json!("")), None);
    assert_eq!(msgid(json!("A B")), None);
    assert_eq!(msgid(json!("É")), None);
    assert_eq!(msgid(json!(1)), None);
}

/// The table rows (header excluded) of the one table under `section` (a `## ` or `### `
/// heading of `docs/formats/leef.md`): for each row, the code spans of each cell.
fn documented_rows(section: &str) -> Vec<Vec<Vec<String>>> {
    let doc = include_str!("../../docs/formats/leef.md");
    let start = doc
        .lines()
        .position(|l| l.trim_start_matches('#').trim() == section)
        .unwrap_or_else(|| panic!("docs/formats/leef.md has no heading {section:?}"));
    doc.lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        // The first row is the table's header.
        .skip(1)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|cell| {
                    cell.split('`')
                        .skip(1)
                        .step_by(2)
                        .map(str::to_owned)
                        .collect()
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_documented_mapping_table_is_the_one_the_code_implements() {
    let rows = documented_rows("The mapping table");
    let code: Vec<(Vec<String>, String)> = leef::MAPPING
        .iter()
        .map(|attribute| {
            let paths = match attribute.source {
                leef::Source::EntityName => vec!["entName".to_string()],
                leef::Source::Path(path) | leef::Source::OneZero(path) => vec![path.join(".")],
                leef::Source::Composite { first, second, .. } => {
                    vec![first.join("."), second.join(".")]
                }
                other => panic!("{other:?} in MAPPING"),
            };
            (paths, attribute.key.to_string())
        })
        .collect();
    let documented: Vec<(Vec<String>, String)> = rows
        .iter()
        .map(|cells| (cells[1].clone(), cells[2].concat()))
        .collect();
    assert_eq!(
        documented, code,
        "docs/formats/leef.md#the-mapping-table differs"
    );

    let added: Vec<String> = documented_rows("Attributes this project adds")
        .iter()
        .map(|cells| cells[0].concat())
        .filter(|key| key != "devTime" && key != "sev")
        .collect();
    let code: Vec<&str> = leef::NEW_ATTRIBUTES.iter().map(|a| a.key).collect();
    assert_eq!(
        added, code,
        "docs/formats/leef.md#attributes-this-project-adds differs"
    );
}

#[test]
fn mapping_table_has_77_entries_in_spec_order() {
    let keys: Vec<&str> = leef::MAPPING.iter().map(|a| a.key).collect();
    assert_eq!(keys.len(), 77);
    assert_eq!(keys[0], "lookoutEntName");
    assert_eq!(keys[24], "LookoutMdmConnectorId");
    assert_eq!(keys[55], "lookoutAppProcessDetails");
    assert_eq!(keys[76], "wifiBSsid");
}

// ---------------------------------------------------------------------------------
// Splunk rules

#[test]
fn splunk_additions() {
    // entName replaced where it stands; type kept; custom identifier appended.
    let f = Formatter::new(
        Format::SplunkJson,
        "acme",
        Some(("site".to_string(), "lon\"1".to_string())),
    );
    let mut out = Vec::new();
    f.render(
        &event(json!({"entName": {"x": 1}, "type": null, "a": "/é\u{7f}"})),
        &mut out,
    );
    assert_eq!(
        out[0].text,
        "{\"entName\":\"acme\",\"type\":null,\"a\":\"/é\u{7f}\",\"site\":\"lon\\\"1\"}"
    );
    // type added when absent, before the custom identifier.
    let mut out = Vec::new();
    f.render(&event(json!({"a": 1})), &mut out);
    assert_eq!(
        out[0].text,
        r#"{"a":1,"entName":"acme","type":"UNKNOWN","site":"lon\"1"}"#
    );
    let f = Formatter::new(
        Format::SplunkKv,
        "acme",
        Some(("site".to_string(), "lon\"1".to_string())),
    );
    let mut out = Vec::new();
    f.render(&event(json!({"a": 1})), &mut out);
    assert_eq!(
        out[0].text,
        r#"a="1" entName="acme" type="UNKNOWN" site="lon\"1""#
    );
    // The QRadar key is never added.
    assert_eq!(
        one(Format::SplunkJson, json!({"type": "X"})),
        r#"{"type":"X","entName":"acme"}"#
    );
}

#[test]
fn splunk_kv_keys_values_and_omissions() {
    let record = one(
        Format::SplunkKv,
        json!({
            "type": "X",
            "a b": {"c/d": "v", "é": 1.5, "e": {"f": null, "g": []}, "h": {}},
            "n": null,
            "l": [{"k": "v"}, "s"],
            "t": true,
            "ctl": "\u{1}\"\\\t"
        }),
    );
    assert_eq!(
        record,
        r#"type="X" a_b.c_d="v" a_b._="1.5" l="[{\"k\":\"v\"},\"s\"]" t="true" ctl="\x01\"\\\t" entName="acme""#
    );
}
