//! OCSF 1.8.0 (`forwarder_type = ocsf`): each event as one compact JSON object of the
//! Open Cybersecurity Schema Framework, the schema Amazon Security Lake, Google SecOps
//! and most data pipelines normalise to.
//!
//! | Lookout `type` | OCSF class |
//! |---|---|
//! | `THREAT` | Detection Finding (2004) |
//! | `SMISHING_ALERT` | Detection Finding (2004), detections as `evidences` (no split) |
//! | `DEVICE` | Device Inventory Info (5001) |
//! | `AUDIT` | Entity Management (3004) |
//! | anything else | Base Event (0) |
//!
//! An event that cannot fill the required attributes of its class (a threat without a
//! `threat.guid` string, a device without `device.guid`, a smishing alert without
//! `smishing_alert.guid`, an audit without `target.guid`) is written as a Base Event
//! rather than with invented values. Every record validates against the schema; the
//! tests check each one with a validator built from the vendored schema files.
//!
//! Values are only placed in an OCSF attribute when their JSON type is the attribute's
//! (a number where OCSF wants a string stays out). Whatever was not placed, including
//! the fields the ids are derived from (`threat.severity`, `threat.status`,
//! `change_type`), is kept under `unmapped` as received (`super::rest`), followed by
//! the tenant's `entName`. `docs/formats/ocsf.md` is the mapping in prose.
//!
//! The renderer is pure and writes straight into the output string; it does not know
//! about syslog or HTTP, so the HEC sink can use [`render_event`] as it is.

use super::rest::{self, Tree, View};
use super::value::{write_display, write_json, write_json_str};
use super::{Envelope, RenderedMessage};
use crate::json::{Object, Value};
use chrono::{DateTime, FixedOffset};
use std::sync::LazyLock;

/// The OCSF version every record declares (`metadata.version`).
pub const VERSION: &str = "1.8.0";

/// Renders one event as an OCSF record, outside the syslog pipeline (e.g. for HTTP
/// Event Collector bodies). `entity_name` goes to `unmapped.entName`.
pub fn render_event(fields: &Object<'_>, entity_name: &str) -> String {
    let event_time = fields
        .get("created_time")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    render_record(fields, entity_name, None, event_time)
}

/// Appends the one OCSF record of an event.
pub(crate) fn render(
    entity_name: &str,
    custom_identifier: Option<(&str, &str)>,
    fields: &Object<'_>,
    envelope: &Envelope<'_>,
    out: &mut Vec<RenderedMessage>,
) {
    let text = render_record(fields, entity_name, custom_identifier, envelope.event_time);
    out.push(envelope.message(text));
}

/// The event paths the mapping can place, numbered for the `unmapped` walk. A path is
/// placed by a record only when its value had the type OCSF wants there.
pub(crate) static PATHS: [&[&str]; 21] = [
    &["id"],
    &["enterprise_guid"],
    &["created_time"],
    &["threat", "guid"],
    &["threat", "classifications"],
    &["threat", "details", "url"],
    &["smishing_alert", "guid"],
    &["smishing_alert", "detections"],
    &["device", "guid"],
    &["device", "platform"],
    &["device", "software", "os_version"],
    &["device", "hardware", "model"],
    &["device", "hardware", "manufacturer"],
    &["device", "info", "email"],
    &["device", "info", "external_id"],
    &["actor", "guid"],
    &["target", "guid"],
    &["target", "type"],
    &["audit", "type"],
    &["audit", "attribute_changes"],
    &["entName"],
];

const ID: u8 = 0;
const ENTERPRISE_GUID: u8 = 1;
const CREATED_TIME: u8 = 2;
const THREAT_GUID: u8 = 3;
const CLASSIFICATIONS: u8 = 4;
const URL: u8 = 5;
const SMISHING_GUID: u8 = 6;
const DETECTIONS: u8 = 7;
const DEVICE_GUID: u8 = 8;
const PLATFORM: u8 = 9;
const OS_VERSION: u8 = 10;
const MODEL: u8 = 11;
const MANUFACTURER: u8 = 12;
const EMAIL: u8 = 13;
const EXTERNAL_ID: u8 = 14;
const ACTOR_GUID: u8 = 15;
const TARGET_GUID: u8 = 16;
const TARGET_TYPE: u8 = 17;
const AUDIT_TYPE: u8 = 18;
const ATTRIBUTE_CHANGES: u8 = 19;
/// The event's own `entName` is replaced by the configured one, as in every format.
const ENT_NAME: u8 = 20;

static PLACED: LazyLock<Tree> = LazyLock::new(|| Tree::new(PATHS.iter().copied()));

/// The OCSF class of a record, with the constants its header needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    DetectionFinding,
    DeviceInventoryInfo,
    EntityManagement,
    BaseEvent,
}

impl Class {
    /// `(category_uid, category_name, class_uid, class_name)`.
    fn ids(self) -> (u32, &'static str, u32, &'static str) {
        match self {
            Class::DetectionFinding => (2, "Findings", 2004, "Detection Finding"),
            Class::DeviceInventoryInfo => (5, "Discovery", 5001, "Device Inventory Info"),
            Class::EntityManagement => {
                (3, "Identity & Access Management", 3004, "Entity Management")
            }
            Class::BaseEvent => (0, "Uncategorized", 0, "Base Event"),
        }
    }
}

/// Renders one record.
fn render_record(
    fields: &Object<'_>,
    entity_name: &str,
    custom_identifier: Option<(&str, &str)>,
    event_time: Option<DateTime<FixedOffset>>,
) -> String {
    let mut w = Writer {
        text: String::with_capacity(1536),
        fields,
        placed: 1 << ENT_NAME,
        first: true,
    };
    let event_type = fields.get("type").and_then(Value::as_str);
    let class = class_of(fields, event_type);
    let change_type = fields.get("change_type").and_then(Value::as_str);
    let threat_status = w.string(&["threat", "status"]);

    let (activity_id, activity_name): (u32, &str) = match class {
        Class::DetectionFinding if event_type == Some("THREAT") => {
            if threat_status == Some("RESOLVED") {
                (3, "Close")
            } else if change_type == Some("CREATED") {
                (1, "Create")
            } else {
                (2, "Update")
            }
        }
        Class::DetectionFinding => match change_type {
            Some("CREATED") => (1, "Create"),
            _ => (2, "Update"),
        },
        Class::DeviceInventoryInfo => (1, "Log"),
        Class::EntityManagement => match change_type {
            Some("CREATED") => (1, "Create"),
            Some("UPDATED") => (3, "Update"),
            Some("DELETED") => (4, "Delete"),
            _ => (99, "Other"),
        },
        Class::BaseEvent => (0, "Unknown"),
    };
    let (category_uid, category_name, class_uid, class_name) = class.ids();

    w.text.push('{');
    w.number("activity_id", activity_id);
    w.str("activity_name", activity_name);
    w.number("category_uid", category_uid);
    w.str("category_name", category_name);
    w.number("class_uid", class_uid);
    w.str("class_name", class_name);
    w.number(
        "type_uid",
        u64::from(class_uid) * 100 + u64::from(activity_id),
    );
    w.key("type_name");
    w.text.push('"');
    w.text.push_str(class_name);
    w.text.push_str(": ");
    w.text.push_str(activity_name);
    w.text.push('"');

    let (severity_id, severity) = severity(fields, event_type);
    w.number("severity_id", severity_id);
    match severity {
        Severity::Caption(caption) => w.str("severity", caption),
        Severity::Source(raw) => w.str("severity", raw),
    }
    w.key("time");
    let ms = event_time.map_or(0, |t| t.timestamp_millis());
    write_display(&mut w.text, &ms);

    w.open("metadata");
    w.str("version", VERSION);
    w.open("product");
    w.str("name", "Mobile Risk API");
    w.str("vendor_name", "Lookout");
    w.close();
    w.place_string("uid", ID);
    w.place_string("tenant_uid", ENTERPRISE_GUID);
    w.place_string("original_time", CREATED_TIME);
    if class == Class::EntityManagement {
        w.place_string("event_code", AUDIT_TYPE);
    }
    if let Some((key, value)) = custom_identifier {
        w.key("labels");
        w.text.push('[');
        write_json_str(&mut w.text, &format_label(key, value));
        w.text.push(']');
    }
    w.close();

    match class {
        Class::DetectionFinding if event_type == Some("THREAT") => w.threat(threat_status),
        Class::DetectionFinding => w.smishing(),
        Class::DeviceInventoryInfo => w.device(),
        Class::EntityManagement => w.audit(),
        Class::BaseEvent => {}
    }

    let view = View {
        placed: w.placed,
        detection: None,
    };
    w.key("unmapped");
    w.text.push('{');
    let mut first = true;
    rest::write_members(&mut w.text, fields, &PLACED, &view, &mut first);
    if !first {
        w.text.push(',');
    }
    w.text.push_str("\"entName\":");
    write_json_str(&mut w.text, entity_name);
    w.text.push_str("}}");
    w.text
}

/// `<key>:<value>`, the form of the custom log identifier in `metadata.labels`.
fn format_label(key: &str, value: &str) -> String {
    let mut label = String::with_capacity(key.len() + 1 + value.len());
    label.push_str(key);
    label.push(':');
    label.push_str(value);
    label
}

/// The class an event is written as: its type's class when it has what that class
/// requires, else Base Event.
pub(crate) fn class_of(fields: &Object<'_>, event_type: Option<&str>) -> Class {
    let has_string = |path: &[&str]| lookup(fields, path).and_then(Value::as_str).is_some();
    match event_type {
        Some("THREAT") if has_string(&["threat", "guid"]) => Class::DetectionFinding,
        Some("SMISHING_ALERT") if has_string(&["smishing_alert", "guid"]) => {
            Class::DetectionFinding
        }
        Some("DEVICE") if has_string(&["device", "guid"]) => Class::DeviceInventoryInfo,
        Some("AUDIT") if has_string(&["target", "guid"]) => Class::EntityManagement,
        _ => Class::BaseEvent,
    }
}

/// `severity` next to `severity_id`: the id's caption, or the source's own word for
/// 99 Other.
enum Severity<'a> {
    Caption(&'static str),
    Source(&'a str),
}

/// `severity_id` (0 Unknown … 5 Critical, 99 Other) from the event.
fn severity<'a>(fields: &'a Object<'_>, event_type: Option<&str>) -> (u8, Severity<'a>) {
    match event_type {
        Some("THREAT") => match lookup(fields, &["threat", "severity"]) {
            Some(Value::String(s)) => match s.as_ref() {
                "CRITICAL" => (5, Severity::Caption("Critical")),
                "HIGH" => (4, Severity::Caption("High")),
                "MEDIUM" => (3, Severity::Caption("Medium")),
                "LOW" => (2, Severity::Caption("Low")),
                "ADVISORY" | "NONE" => (1, Severity::Caption("Informational")),
                other => (99, Severity::Source(other)),
            },
            _ => (0, Severity::Caption("Unknown")),
        },
        // The syslog severity of a smishing alert is that of a MEDIUM threat.
        Some("SMISHING_ALERT") => (3, Severity::Caption("Medium")),
        _ => (1, Severity::Caption("Informational")),
    }
}

/// The value at `path`, if every step is an object holding the next key.
fn lookup<'a>(fields: &'a Object<'a>, path: &[&str]) -> Option<&'a Value<'a>> {
    let (first, rest) = path.split_first()?;
    let mut value = fields.get(first)?;
    for key in rest {
        value = value.as_object()?.get(key)?;
    }
    Some(value)
}

/// The record being written: the output, the event, which paths were placed, and
/// whether the current object has no member yet.
struct Writer<'a> {
    text: String,
    fields: &'a Object<'a>,
    placed: u128,
    first: bool,
}

impl<'a> Writer<'a> {
    /// Writes `"key":`, after a comma unless it is the object's first member.
    fn key(&mut self, key: &str) {
        if !std::mem::take(&mut self.first) {
            self.text.push(',');
        }
        self.text.push('"');
        self.text.push_str(key);
        self.text.push_str("\":");
    }

    fn open(&mut self, key: &str) {
        self.key(key);
        self.text.push('{');
        self.first = true;
    }

    fn close(&mut self) {
        self.text.push('}');
        self.first = false;
    }

    /// A constant string member (the constants need no JSON escaping).
    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        write_json_str(&mut self.text, value);
    }

    fn number(&mut self, key: &str, value: impl std::fmt::Display) {
        self.key(key);
        write_display(&mut self.text, &value);
    }

    /// The string at `path`, if it is one.
    fn string(&self, path: &[&str]) -> Option<&'a str> {
        lookup(self.fields, path).and_then(Value::as_str)
    }

    /// The value of mark `mark`'s path.
    fn at(&self, mark: u8) -> Option<&'a Value<'a>> {
        lookup(self.fields, PATHS[usize::from(mark)])
    }

    fn placed(&mut self, mark: u8) {
        self.placed |= 1u128 << mark;
    }

    /// Writes `"key":"<string>"` when mark `mark`'s path holds a string, and marks it
    /// placed. Returns whether it did.
    fn place_string(&mut self, key: &str, mark: u8) -> bool {
        match self.at(mark).and_then(Value::as_str) {
            Some(s) => {
                self.key(key);
                write_json_str(&mut self.text, s);
                self.placed(mark);
                true
            }
            None => false,
        }
    }

    /// Detection Finding for a THREAT.
    fn threat(&mut self, status: Option<&str>) {
        self.open("finding_info");
        self.place_string("uid", THREAT_GUID);
        let classifications = self
            .at(CLASSIFICATIONS)
            .and_then(Value::as_array)
            .filter(|items| items.iter().all(|item| item.as_str().is_some()));
        let title = classifications
            .and_then(|items| items.first())
            .and_then(Value::as_str)
            .or_else(|| self.string(&["threat", "type"]))
            .unwrap_or("Lookout threat");
        self.str("title", title);
        if let Some(items) = classifications {
            self.key("types");
            self.text.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                write_json(&mut self.text, item);
            }
            self.text.push(']');
            self.placed(CLASSIFICATIONS);
        }
        self.close();

        if let Some(url) = self.at(URL).and_then(Value::as_str) {
            self.key("evidences");
            self.text.push_str("[{\"url\":{\"url_string\":");
            write_json_str(&mut self.text, url);
            self.text.push_str("}}]");
            self.placed(URL);
        }
        match status {
            Some("OPEN") => {
                self.number("status_id", 1);
                self.str("status", "New");
            }
            Some("RESOLVED") => {
                self.number("status_id", 4);
                self.str("status", "Resolved");
            }
            Some(other) => {
                self.number("status_id", 99);
                self.str("status", other);
            }
            None => {}
        }
    }

    /// Detection Finding for a SMISHING_ALERT: one record, each detection an
    /// evidence whose `data` is the detection as received.
    fn smishing(&mut self) {
        self.open("finding_info");
        self.place_string("uid", SMISHING_GUID);
        self.str("title", "Smishing alert");
        self.close();
        let detections = self
            .at(DETECTIONS)
            .and_then(Value::as_array)
            .filter(|items| {
                !items.is_empty()
                    && items
                        .iter()
                        .all(|item| item.as_object().is_some_and(|o| !o.is_empty()))
            });
        if let Some(items) = detections {
            self.key("evidences");
            self.text.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str("{\"data\":");
                write_json(&mut self.text, item);
                if let Some(url) = item.get("original_url").and_then(Value::as_str) {
                    self.text.push_str(",\"url\":{\"url_string\":");
                    write_json_str(&mut self.text, url);
                    self.text.push('}');
                }
                self.text.push('}');
            }
            self.text.push(']');
            self.placed(DETECTIONS);
        }
    }

    /// Device Inventory Info for a DEVICE.
    fn device(&mut self) {
        self.open("device");
        self.number("type_id", 5);
        self.str("type", "Mobile");
        self.place_string("uid", DEVICE_GUID);
        self.place_string("uid_alt", EXTERNAL_ID);
        self.place_string("model", MODEL);
        self.place_string("vendor_name", MANUFACTURER);
        if let Some(platform) = self.at(PLATFORM).and_then(Value::as_str) {
            let (type_id, os_type) = match platform {
                "ANDROID" => (201, "Android"),
                "IOS" => (301, "iOS"),
                _ => (99, "Other"),
            };
            self.open("os");
            self.str("name", platform);
            self.placed(PLATFORM);
            self.number("type_id", type_id);
            self.str("type", os_type);
            self.place_string("version", OS_VERSION);
            self.close();
        }
        if let Some(email) = self.at(EMAIL).and_then(Value::as_str) {
            // Lookout names a device's user by email only; OCSF wants a name too.
            self.open("owner");
            self.str("email_addr", email);
            self.str("name", email);
            self.placed(EMAIL);
            self.close();
        }
        self.close();
        self.actor();
    }

    /// Entity Management for an AUDIT: the audited target is the managed entity.
    fn audit(&mut self) {
        self.open("entity");
        self.place_string("uid", TARGET_GUID);
        self.place_string("type", TARGET_TYPE);
        if let Some(changes) = self
            .at(ATTRIBUTE_CHANGES)
            .filter(|v| !matches!(v, Value::Null))
        {
            self.key("data");
            write_json(&mut self.text, changes);
            self.placed(ATTRIBUTE_CHANGES);
        }
        self.close();
        self.actor();
    }

    /// `actor.user.uid` from `actor.guid`.
    fn actor(&mut self) {
        if let Some(guid) = self.at(ACTOR_GUID).and_then(Value::as_str) {
            self.open("actor");
            self.open("user");
            self.str("uid", guid);
            self.placed(ACTOR_GUID);
            self.close();
            self.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;
    use crate::event::MraEvent;
    use crate::format::Formatter;
    use crate::format::ocsf_schema::validate;
    use serde_json::{Value as Json, json};

    /// Renders `event` through the formatter, validates it, and returns it parsed.
    fn record(event: Json, identifier: Option<(&str, &str)>) -> Json {
        let Json::Object(fields) = event else {
            panic!("test events are objects");
        };
        let formatter = Formatter::new(
            Format::Ocsf,
            "acme",
            identifier.map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut out = Vec::new();
        formatter.render(&MraEvent::from(&fields), &mut out);
        assert_eq!(out.len(), 1);
        let text = &out[0].text;
        assert!(!text.contains(|c: char| c < ' '), "{text}");
        let parsed: Json = serde_json::from_str(text).expect("OCSF is JSON");
        if let Err(problems) = validate(&parsed) {
            panic!("invalid OCSF:\n{problems}\n{text}");
        }
        parsed
    }

    #[test]
    fn threat_activity_and_status() {
        let threat = |change: &str, status: &str| {
            record(
                json!({"type": "THREAT", "change_type": change,
                       "threat": {"guid": "g", "status": status, "severity": "CRITICAL"}}),
                None,
            )
        };
        let r = threat("CREATED", "OPEN");
        assert_eq!(
            (r["activity_id"].clone(), r["type_uid"].clone()),
            (json!(1), json!(200401))
        );
        assert_eq!(
            (r["status_id"].clone(), r["severity_id"].clone()),
            (json!(1), json!(5))
        );
        let r = threat("UPDATED", "OPEN");
        assert_eq!(r["type_uid"], 200402);
        let r = threat("CREATED", "RESOLVED");
        assert_eq!(
            (r["type_uid"].clone(), r["status_id"].clone()),
            (json!(200403), json!(4))
        );
        let r = threat("UPDATED", "IGNORED");
        assert_eq!(
            (r["status_id"].clone(), r["status"].clone()),
            (json!(99), json!("IGNORED"))
        );
        // The raw fields behind the ids stay under `unmapped`.
        assert_eq!(r["unmapped"]["threat"]["status"], "IGNORED");
        assert_eq!(r["unmapped"]["threat"]["severity"], "CRITICAL");
        assert_eq!(r["unmapped"]["change_type"], "UPDATED");
    }

    #[test]
    fn severity_ids() {
        for (severity, id) in [
            (json!("CRITICAL"), 5),
            (json!("HIGH"), 4),
            (json!("MEDIUM"), 3),
            (json!("LOW"), 2),
            (json!("ADVISORY"), 1),
            (json!("NONE"), 1),
            (json!("SEVERE"), 99),
            (json!(7), 0),
            (Json::Null, 0),
        ] {
            let r = record(
                json!({"type": "THREAT", "threat": {"guid": "g", "severity": severity}}),
                None,
            );
            assert_eq!(r["severity_id"], id, "{severity}");
        }
        let r = record(
            json!({"type": "THREAT", "threat": {"guid": "g", "severity": "SEVERE"}}),
            None,
        );
        assert_eq!(r["severity"], "SEVERE");
    }

    #[test]
    fn events_missing_what_their_class_requires_are_base_events() {
        for event in [
            json!({"type": "THREAT", "threat": {"severity": "HIGH"}}),
            json!({"type": "THREAT", "threat": {"guid": 12}}),
            json!({"type": "DEVICE", "device": {"platform": "IOS"}}),
            json!({"type": "SMISHING_ALERT", "smishing_alert": {"detections": []}}),
            json!({"type": "AUDIT", "audit": {"type": "ADMIN_LOGIN"}}),
            json!({"type": "SOMETHING_NEW", "id": "x"}),
            json!({}),
        ] {
            let r = record(event.clone(), None);
            assert_eq!(
                (r["class_uid"].clone(), r["type_uid"].clone()),
                (json!(0), json!(0)),
                "{event}"
            );
            // Everything but `id` (metadata.uid) is kept as received.
            let mut expected = event.as_object().cloned().unwrap_or_default();
            expected.remove("id");
            expected.insert("entName".into(), json!("acme"));
            assert_eq!(r["unmapped"], Json::Object(expected), "{event}");
        }
    }

    #[test]
    fn values_of_the_wrong_type_stay_unmapped() {
        let r = record(
            json!({"type": "DEVICE", "id": 5, "created_time": "not a time",
                   "device": {"guid": "g", "platform": 3, "hardware": {"model": ["x"]},
                              "software": {"os_version": "17"}}}),
            None,
        );
        assert_eq!(r["time"], 0);
        assert_eq!(r["metadata"]["original_time"], "not a time");
        assert!(r["metadata"].get("uid").is_none());
        assert!(r["device"].get("os").is_none());
        assert_eq!(
            r["unmapped"],
            json!({"type": "DEVICE", "id": 5, "device": {"platform": 3,
                   "hardware": {"model": ["x"]}, "software": {"os_version": "17"}},
                   "entName": "acme"})
        );
    }

    #[test]
    fn smishing_detections_become_evidences_unless_odd() {
        let r = record(
            json!({"type": "SMISHING_ALERT", "smishing_alert": {"guid": "a",
                   "detections": [{"category": "CEO_FRAUD", "alert_type": "FRAUD_DETECTION"}]}}),
            None,
        );
        assert_eq!(
            r["evidences"],
            json!([{"data": {"category": "CEO_FRAUD", "alert_type": "FRAUD_DETECTION"}}])
        );
        let r = record(
            json!({"type": "SMISHING_ALERT", "smishing_alert": {"guid": "a",
                   "detections": [{"category": "C"}, "odd"]}}),
            None,
        );
        assert!(r.get("evidences").is_none());
        assert_eq!(
            r["unmapped"]["smishing_alert"]["detections"],
            json!([{"category": "C"}, "odd"])
        );
    }

    #[test]
    fn entity_name_and_custom_identifier() {
        let r = record(
            json!({"type": "AUDIT", "entName": "theirs", "target": {"guid": "t"}}),
            Some(("site_id", "lon \"1\"")),
        );
        assert_eq!(r["unmapped"]["entName"], "acme");
        assert_eq!(r["metadata"]["labels"], json!(["site_id:lon \"1\""]));
        assert_eq!(r["activity_id"], 99);
        assert_eq!(r["type_uid"], 300499);
    }

    #[test]
    fn render_event_is_the_formatter_record() {
        let event = json!({"type": "THREAT", "created_time": "2026-11-05T08:12:44.318+00:00",
                           "threat": {"guid": "g", "classifications": ["A"]}});
        let Json::Object(fields) = &event else {
            unreachable!()
        };
        let standalone = render_event(&MraEvent::from(fields).fields, "acme");
        let via_formatter = record(event.clone(), None);
        assert_eq!(
            serde_json::from_str::<Json>(&standalone).ok(),
            Some(via_formatter)
        );
    }
}
