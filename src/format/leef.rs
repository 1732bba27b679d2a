//! QRadar LEEF 2.0 (`docs/formats/leef.md`): one line per event, or one per smishing
//! detection.
//!
//! The attribute mapping is data: `MAPPING` is the Python connector's table
//! (`docs/formats/leef.md#the-mapping-table`) in its order, and `NEW_ATTRIBUTES` the keys
//! this project adds (`docs/formats/leef.md#attributes-this-project-adds`). The renderer
//! walks them once per record, looks each path up in the event, and writes `key=value`
//! pairs straight into the output string through an `Escaper`, so no value is copied or
//! escaped twice. The golden tests are the check on both tables, and a unit test keeps the
//! documented mapping table equal to `MAPPING`.
//!
//! This module does not know about syslog headers, framing or size limits.

use super::value::{Escaper, Out, is_present, is_scalar, write_display, write_value};
use super::{Envelope, RenderedMessage};
use crate::json::{Object, Value};
use std::sync::LazyLock;

/// Where an attribute's value comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// The configured `entity_name` (the event's `entName`, which is set before
    /// mapping).
    EntityName,
    /// A path into the event, rendered as any value.
    Path(&'static [&'static str]),
    /// A path whose boolean is written `1`/`0`.
    OneZero(&'static [&'static str]),
    /// Two paths joined by `separator` (`docs/formats/leef.md#composite-keys`). Omitted
    /// unless the first renders; the second is added only when it renders too.
    Composite {
        first: &'static [&'static str],
        second: &'static [&'static str],
        separator: &'static str,
    },
    /// The position of the record's detection in `smishing_alert.detections`; only on
    /// split records.
    DetectionIndex,
    /// A field of the record's smishing detection (`smishing_alert.detection.<field>` in
    /// the split view of `docs/formats/leef.md#smishing-alerts-one-record-per-detection`);
    /// only on split records.
    Detection(&'static str),
}

/// One LEEF attribute: its key and where its value comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attribute {
    pub(crate) key: &'static str,
    pub(crate) source: Source,
}

const fn at(key: &'static str, path: &'static [&'static str]) -> Attribute {
    Attribute {
        key,
        source: Source::Path(path),
    }
}

const fn one_zero(key: &'static str, path: &'static [&'static str]) -> Attribute {
    Attribute {
        key,
        source: Source::OneZero(path),
    }
}

const fn composite(
    key: &'static str,
    first: &'static [&'static str],
    second: &'static [&'static str],
    separator: &'static str,
) -> Attribute {
    Attribute {
        key,
        source: Source::Composite {
            first,
            second,
            separator,
        },
    }
}

/// `docs/formats/leef.md#the-mapping-table`: the mapping as the Python connector
/// emits it, in its order.
/// Duplicate keys (`lookoutEventType`, `latestOSVersion`) are kept: an event has only
/// one of each pair.
pub(crate) static MAPPING: [Attribute; 77] = [
    /* 1 */
    Attribute {
        key: "lookoutEntName",
        source: Source::EntityName,
    },
    /* 2 */ at("lookoutChangeType", &["change_type"]),
    /* 3 */ at("lookoutEventTime", &["created_time"]),
    /* 4 */ at("lookoutEnterpriseGuid", &["enterprise_guid"]),
    /* 5 */ at("lookoutId", &["id"]),
    /* 6 */ at("lookoutType", &["type"]),
    /* 7 */ at("lookoutTargetId", &["target", "guid"]),
    /* 8 */ at("targetType", &["target", "type"]),
    /* 9 */ at("lookoutActorId", &["actor", "guid"]),
    /* 10 */ at("lookoutActorType", &["actor", "type"]),
    /* 11 */ at("lookoutAttributeChanges", &["audit", "attribute_changes"]),
    /* 12 */ at("lookoutEventType", &["audit", "type"]),
    /* 13 */ at("lookoutDeviceGuid", &["device", "guid"]),
    /* 14 */ at("lookoutTargetPlatform", &["device", "platform"]),
    /* 15 */ at("deviceProfileType", &["device", "profile_type"]),
    /* 16 */
    at(
        "lookoutClientSDKVersion",
        &["device", "client", "lookout_sdk_version"],
    ),
    /* 17 */
    at(
        "lookoutClientOTAVersion",
        &["device", "client", "ota_version"],
    ),
    /* 18 */
    composite(
        "lookoutClientPackageDetails",
        &["device", "client", "package_name"],
        &["device", "client", "package_version"],
        "-",
    ),
    /* 19 */
    at(
        "deviceManufacturer",
        &["device", "hardware", "manufacturer"],
    ),
    /* 20 */ at("deviceModel", &["device", "hardware", "model"]),
    /* 21 */
    at(
        "customerDeviceId",
        &["device", "info", "customer_device_id"],
    ),
    /* 22 */
    at(
        "lookoutDeviceGroupGuids",
        &["device", "info", "device_group_guids"],
    ),
    /* 23 */ at("lookoutUser", &["device", "info", "email"]),
    /* 24 */
    at(
        "lookoutTargetExternalId",
        &["device", "info", "external_id"],
    ),
    /* 25 */
    at(
        "LookoutMdmConnectorId",
        &["device", "info", "mdm_connector_id"],
    ),
    /* 26 */ at("mdmType", &["device", "info", "mdm_type"]),
    /* 27 */
    at(
        "previousDeviceGroupGuids",
        &["device", "info", "previous_device_group_guids"],
    ),
    /* 28 */
    at(
        "parentActivationStatus",
        &["device", "parent_status", "activation_status"],
    ),
    /* 29 */
    at(
        "parentDeviceGuid",
        &["device", "parent_status", "parent_device_guid"],
    ),
    /* 30 */
    at(
        "parentProtectionStatus",
        &["device", "parent_status", "protection_status"],
    ),
    /* 31 */
    at(
        "parentSecurityStatus",
        &["device", "parent_status", "security_status"],
    ),
    /* 32 */
    at(
        "latestOSVersion",
        &["device", "software", "latest_os_version"],
    ),
    /* 33 */
    at(
        "latestSecurityPatch",
        &["device", "software", "latest_security_patch_level"],
    ),
    /* 34 */ at("lookoutOSVersion", &["device", "software", "os_version"]),
    /* 35 */ at("OSVersionDate", &["device", "software", "os_version_date"]),
    /* 36 */ at("OSVersionRSR", &["device", "software", "os_version_rsr"]),
    /* 37 */ at("SDKVersion", &["device", "software", "sdk_version"]),
    /* 38 */
    at(
        "securityPatch",
        &["device", "software", "security_patch_level"],
    ),
    /* 39 */
    at(
        "lookoutActivationStatus",
        &["device", "status", "activation_status"],
    ),
    /* 40 */ at("checkinTime", &["device", "status", "checkin_time"]),
    /* 41 */
    at(
        "lookoutProtectionStatus",
        &["device", "status", "protection_status"],
    ),
    /* 42 */
    at(
        "lookoutSecurityStatus",
        &["device", "status", "security_status"],
    ),
    /* 43 */ at("lookoutThreatId", &["threat", "guid"]),
    /* 44 */ at("lookoutSeverity", &["threat", "severity"]),
    /* 45 */ at("lookoutEventType", &["threat", "type"]),
    /* 46 */ at("lookoutClassifications", &["threat", "classifications"]),
    /* 47 */ at("threatAssessments", &["threat", "assessments"]),
    /* 48 */
    at(
        "lookoutDnsIpAddresses",
        &["threat", "details", "dns_ip_addresses"],
    ),
    /* 49 */ at("lookoutAppFileName", &["threat", "details", "file_name"]),
    /* 50 */
    at(
        "latestAgentConfig",
        &["threat", "details", "latest_agent_config"],
    ),
    /* 51 */
    at(
        "latestOSVersion",
        &["threat", "details", "latest_os_version"],
    ),
    /* 52 */ at("lookoutMacAddress", &["threat", "details", "mac_address"]),
    /* 53 */
    at(
        "threatMinOSVersion",
        &["threat", "details", "minimum_os_version"],
    ),
    /* 54 */ at("lookoutSSID", &["threat", "details", "network_ssid"]),
    /* 55 */ at("OSVersion", &["threat", "details", "os_version"]),
    /* 56 */
    composite(
        "lookoutAppProcessDetails",
        &["threat", "details", "application_name"],
        &["threat", "details", "package_name"],
        ", ",
    ),
    /* 57 */ at("threatAppPackageSHA", &["threat", "details", "package_sha"]),
    /* 58 */ at("lookoutAppFilePath", &["threat", "details", "path"]),
    /* 59 */
    at(
        "lookoutProxyAddress",
        &["threat", "details", "proxy_address"],
    ),
    /* 60 */ at("lookoutProxyPort", &["threat", "details", "proxy_port"]),
    /* 61 */
    at(
        "lookoutProxyProtocol",
        &["threat", "details", "proxy_protocol"],
    ),
    /* 62 */ at("threatReason", &["threat", "details", "reason"]),
    /* 63 */ at("threatResponse", &["threat", "details", "response"]),
    /* 64 */
    at(
        "lookoutTrustedSigningIdentity",
        &["threat", "details", "trusted_signing_identity"],
    ),
    /* 65 */ at("lookoutUrl", &["threat", "details", "url"]),
    /* 66 */
    at(
        "threatUserResponse",
        &["threat", "details", "user_response"],
    ),
    /* 67 */ at("threatVersionType", &["threat", "details", "version_type"]),
    /* 68 */
    at(
        "lookoutVpnLocalAddress",
        &["threat", "details", "vpn_local_address"],
    ),
    /* 69 */ one_zero("lookoutVpnPresent", &["threat", "details", "vpn_present"]),
    /* 70 */
    at(
        "accessPointHostname",
        &["threat", "details", "network", "access_point_hostname"],
    ),
    /* 71 */
    one_zero(
        "networkConnected",
        &["threat", "details", "network", "connected"],
    ),
    /* 72 */
    at(
        "dnsIpAddress",
        &["threat", "details", "network", "dns_ip_address"],
    ),
    /* 73 */
    at(
        "networkName",
        &["threat", "details", "network", "network_name"],
    ),
    /* 74 */
    at(
        "networkType",
        &["threat", "details", "network", "network_type"],
    ),
    /* 75 */
    at(
        "proxyConfig",
        &["threat", "details", "network", "proxy_config"],
    ),
    /* 76 */
    at(
        "vpnConfiguration",
        &["threat", "details", "network", "vpn_configuration"],
    ),
    /* 77 */ at("wifiBSsid", &["threat", "details", "network", "wifi_bssid"]),
];

/// `docs/formats/leef.md#attributes-this-project-adds`: the keys this project adds after
/// [`MAPPING`], in order (`devTime` and `sev` are written right after `cat` instead).
pub(crate) static NEW_ATTRIBUTES: [Attribute; 9] = [
    at("lookoutThreatStatus", &["threat", "status"]),
    at("threatReputation", &["threat", "details", "reputation"]),
    at(
        "threatAppPackageName",
        &["threat", "details", "package_name"],
    ),
    at("smishingAlertId", &["smishing_alert", "guid"]),
    Attribute {
        key: "smishingDetectionIndex",
        source: Source::DetectionIndex,
    },
    Attribute {
        key: "smishingAlertType",
        source: Source::Detection("alert_type"),
    },
    Attribute {
        key: "smishingCategory",
        source: Source::Detection("category"),
    },
    Attribute {
        key: "smishingOriginalUrl",
        source: Source::Detection("original_url"),
    },
    Attribute {
        key: "smishingImpersonatedEmployee",
        source: Source::Detection("impersonated_employee"),
    },
];

/// The log identifier key that names the QRadar log source (it goes into the syslog
/// HOSTNAME) and is therefore never written as an attribute.
pub(crate) const QRADAR_IDENTIFIER_KEY: &str = "qradarLogSourceIdentifier";

/// Undoes the escaping of one LEEF attribute value written with `delimiter`
/// (`docs/formats/leef.md#escaping`). With `'|'` it also undoes header escaping.
pub fn unescape_leef(value: &str, delimiter: char) -> String {
    super::value::unescape(value, delimiter)
}

/// What the LEEF renderer needs besides the event.
pub(crate) struct Settings<'a> {
    pub(crate) delimiter: char,
    pub(crate) entity_name: &'a str,
    /// The custom identifier attribute, already filtered (non-empty key, not
    /// [`QRADAR_IDENTIFIER_KEY`]).
    pub(crate) custom_identifier: Option<(&'a str, &'a str)>,
}

/// Appends the LEEF records of one event: one per smishing detection, else one.
pub(crate) fn render(
    settings: &Settings<'_>,
    fields: &Object<'_>,
    envelope: &Envelope<'_>,
    out: &mut Vec<RenderedMessage>,
) {
    let event_type = fields.get("type").and_then(Value::as_str);
    let dev_time = dev_time(envelope);
    match detections(fields) {
        Some(detections) => {
            for (index, detection) in detections.iter().enumerate() {
                let record = Record {
                    fields,
                    event_type,
                    detection: Some((index, detection)),
                    dev_time,
                };
                out.push(envelope.message(record.render(settings)));
            }
        }
        None => {
            let record = Record {
                fields,
                event_type,
                detection: None,
                dev_time,
            };
            out.push(envelope.message(record.render(settings)));
        }
    }
}

/// The smishing detections an event is split into
/// (`docs/formats/leef.md#smishing-alerts-one-record-per-detection`): `smishing_alert.detections` of a
/// SMISHING_ALERT, when it is a non-empty array.
pub(crate) fn detections<'a>(fields: &'a Object<'a>) -> Option<&'a [Value<'a>]> {
    if fields.get("type").and_then(Value::as_str) != Some("SMISHING_ALERT") {
        return None;
    }
    fields
        .get("smishing_alert")
        .and_then(|alert| alert.get("detections"))
        .and_then(Value::as_array)
        .filter(|detections| !detections.is_empty())
}

/// The LEEF severity `sev`, 1–10 (`docs/formats/leef.md#sev-the-leef-severity`).
pub(crate) fn leef_severity(fields: &Object<'_>) -> u8 {
    match fields.get("type").and_then(Value::as_str) {
        Some("THREAT") => match threat_severity(fields) {
            Some("CRITICAL") => 10,
            Some("HIGH") => 8,
            Some("MEDIUM") => 5,
            Some("LOW") => 3,
            Some("ADVISORY") => 2,
            Some("NONE") => 1,
            _ => 5,
        },
        Some("SMISHING_ALERT") => 7,
        _ => 1,
    }
}

/// `threat.severity`, when it is a string.
pub(crate) fn threat_severity<'a>(fields: &'a Object<'_>) -> Option<&'a str> {
    fields
        .get("threat")
        .and_then(|threat| threat.get("severity"))
        .and_then(Value::as_str)
}

/// `created_time` as epoch milliseconds, 13 digits.
pub(crate) fn dev_time(envelope: &Envelope<'_>) -> Option<i64> {
    envelope
        .event_time
        .map(|t| t.timestamp_millis())
        // 13 digits cover 2001-09-09 to 2286-11-20; earlier times are zero-padded, and
        // times that cannot be written in 13 digits are left out.
        .filter(|ms| (0..10_000_000_000_000).contains(ms))
}

/// One record: the event, seen with at most one smishing detection. CEF reuses it for
/// its EventClassID, which is the LEEF EventID.
pub(crate) struct Record<'a> {
    pub(crate) fields: &'a Object<'a>,
    event_type: Option<&'a str>,
    pub(crate) detection: Option<(usize, &'a Value<'a>)>,
    dev_time: Option<i64>,
}

/// The attribute tables, prepared once for the walk every record makes: each path is
/// split into its parent object and leaf key, and equal parents get the same number.
/// Most attributes share a parent with others (`device.info`, `threat.details`, …), so
/// a record finds each parent object at most once ([`Parents`]) and compares no path
/// strings while rendering (comparing them took about a fifth of the LEEF render time).
struct Walk {
    steps: Vec<Step>,
    /// The distinct parent paths, by number; `[]` is the event itself.
    parents: Vec<&'static [&'static str]>,
}

/// One attribute of the walk.
struct Step {
    attribute: &'static Attribute,
    /// Where the attribute's path (and a composite's second path) leads.
    first: Option<Lookup>,
    second: Option<Lookup>,
}

/// A path of the tables: a numbered parent object and the key in it.
#[derive(Clone, Copy)]
struct Lookup {
    parent: usize,
    leaf: &'static str,
}

/// More than the tables hold (15 parents); checked when the walk is prepared.
const MAX_PARENTS: usize = 24;

static WALK: LazyLock<Walk> = LazyLock::new(|| {
    let mut parents: Vec<&'static [&'static str]> = Vec::new();
    let mut lookup = |path: &'static [&'static str]| {
        let (leaf, parent) = path.split_last()?;
        let number = match parents.iter().position(|known| *known == parent) {
            Some(number) => number,
            None => {
                parents.push(parent);
                parents.len() - 1
            }
        };
        Some(Lookup {
            parent: number,
            leaf,
        })
    };
    let steps = MAPPING
        .iter()
        .chain(NEW_ATTRIBUTES.iter())
        .map(|attribute| {
            let (first, second) = match attribute.source {
                Source::Path(path) | Source::OneZero(path) => (lookup(path), None),
                Source::Composite { first, second, .. } => (lookup(first), lookup(second)),
                Source::EntityName | Source::DetectionIndex | Source::Detection(_) => (None, None),
            };
            Step {
                attribute,
                first,
                second,
            }
        })
        .collect();
    assert!(parents.len() <= MAX_PARENTS, "raise MAX_PARENTS");
    Walk { steps, parents }
});

/// The parent objects one record has looked up so far, by number: `None` when not yet
/// looked up, `Some(None)` when the event has no such object.
struct Parents<'a>([Option<Option<&'a Object<'a>>>; MAX_PARENTS]);

/// The category (`docs/formats/leef.md#eventid-and-category`), before rendering.
pub(crate) enum Category<'a> {
    One(&'a Value<'a>),
    Two(&'a Value<'a>, &'a Value<'a>),
    Unknown,
}

impl<'a> Record<'a> {
    /// The record of `fields` for the `index`-th smishing detection, or for the whole
    /// event.
    pub(crate) fn new(
        fields: &'a Object<'a>,
        detection: Option<(usize, &'a Value<'a>)>,
        dev_time: Option<i64>,
    ) -> Self {
        Self {
            fields,
            event_type: fields.get("type").and_then(Value::as_str),
            detection,
            dev_time,
        }
    }

    fn render(&self, settings: &Settings<'_>) -> String {
        let delimiter = settings.delimiter;
        let mut text = String::with_capacity(1536);
        let category = self.category();

        text.push_str("LEEF:2.0|Lookout|MRAv2 Client|2.0|");
        {
            let mut header = Escaper::new(&mut text, '|');
            header.put(self.eventid_type());
            header.put(",");
            write_category(&mut header, &category);
        }
        text.push('|');
        match delimiter {
            '\t' => {}
            '|' => text.push_str("0x7C|"),
            other => {
                text.push(other);
                text.push('|');
            }
        }

        text.push_str("cat=");
        write_category(&mut Escaper::new(&mut text, delimiter), &category);

        if let Some(ms) = self.dev_time {
            text.push(delimiter);
            text.push_str("devTime=");
            write_display(&mut text, &format_args!("{ms:013}"));
        }
        text.push(delimiter);
        text.push_str("sev=");
        write_display(&mut text, &leef_severity(self.fields));

        let walk = &*WALK;
        let mut parents = Parents([None; MAX_PARENTS]);
        for step in &walk.steps {
            self.write_attribute(&mut text, settings, step, &mut parents);
        }

        if let Some((key, value)) = settings.custom_identifier {
            text.push(delimiter);
            // The key was checked at start-up; escaping keeps the record sound anyway.
            Escaper::new(&mut text, delimiter).put(key);
            text.push('=');
            Escaper::new(&mut text, delimiter).put(value);
        }
        text
    }

    /// The `<type>` part of the EventID.
    pub(crate) fn eventid_type(&self) -> &'a str {
        if self.detection_field("alert_type").and_then(Value::as_str) == Some("FRAUD_DETECTION") {
            return "FRAUD_DETECTION";
        }
        self.event_type.unwrap_or("UNKNOWN")
    }

    /// The category: per type, with `change_type` as the usual fallback.
    pub(crate) fn category(&self) -> Category<'a> {
        let fallback = || match self.scalar(&["change_type"]) {
            Some(change_type) => Category::One(change_type),
            None => Category::Unknown,
        };
        match self.event_type {
            Some("THREAT") => match self
                .lookup(&["threat", "classifications"])
                .and_then(Value::as_array)
                .and_then(|classifications| classifications.first())
                .filter(|first| is_scalar(first))
            {
                Some(first) => Category::One(first),
                None => Category::Unknown,
            },
            Some("DEVICE") => {
                let activation = self.scalar(&["device", "status", "activation_status"]);
                let security = self.scalar(&["device", "status", "security_status"]);
                match (activation, security) {
                    (Some(a), _)
                        if matches!(a.as_str(), Some("DELETED" | "DEACTIVATED" | "PENDING")) =>
                    {
                        Category::One(a)
                    }
                    (Some(a), Some(s)) => Category::Two(a, s),
                    _ => fallback(),
                }
            }
            Some("AUDIT") => match self.scalar(&["audit", "type"]) {
                Some(audit_type) => Category::One(audit_type),
                None => fallback(),
            },
            Some("SMISHING_ALERT") => {
                let alert_type = self.detection_field("alert_type").filter(|v| is_scalar(v));
                let category = self.detection_field("category").filter(|v| is_scalar(v));
                match (alert_type, category) {
                    (Some(a), Some(c)) => Category::Two(a, c),
                    (Some(one), None) | (None, Some(one)) => Category::One(one),
                    (None, None) => fallback(),
                }
            }
            _ => fallback(),
        }
    }

    fn write_attribute(
        &self,
        text: &mut String,
        settings: &Settings<'_>,
        step: &Step,
        parents: &mut Parents<'a>,
    ) {
        let delimiter = settings.delimiter;
        let attribute = step.attribute;
        let begin = |text: &mut String| {
            text.push(delimiter);
            text.push_str(attribute.key);
            text.push('=');
        };
        let mut find = |lookup: Option<Lookup>| {
            self.find(lookup?, parents)
                .filter(|value| is_present(value))
        };
        match attribute.source {
            Source::EntityName => {
                begin(text);
                Escaper::new(text, delimiter).put(settings.entity_name);
            }
            Source::Path(_) | Source::OneZero(_) => {
                if let Some(value) = find(step.first) {
                    begin(text);
                    let one_zero = matches!(attribute.source, Source::OneZero(_));
                    write_value(&mut Escaper::new(text, delimiter), value, one_zero);
                }
            }
            Source::Composite { separator, .. } => {
                if let Some(first) = find(step.first) {
                    begin(text);
                    let mut value = Escaper::new(text, delimiter);
                    write_value(&mut value, first, false);
                    if let Some(second) = find(step.second) {
                        value.put(separator);
                        write_value(&mut value, second, false);
                    }
                }
            }
            Source::DetectionIndex => {
                if let Some((index, _)) = self.detection {
                    begin(text);
                    write_display(text, &index);
                }
            }
            Source::Detection(field) => {
                if let Some(value) = self.detection_field(field).filter(|v| is_present(v)) {
                    begin(text);
                    write_value(&mut Escaper::new(text, delimiter), value, false);
                }
            }
        }
    }

    /// The value at `path`, if every step is an object holding the next key.
    pub(crate) fn lookup(&self, path: &[&str]) -> Option<&'a Value<'a>> {
        let (first, rest) = path.split_first()?;
        let mut value = self.fields.get(first)?;
        for key in rest {
            value = value.as_object()?.get(key)?;
        }
        Some(value)
    }

    /// [`Record::lookup`] for the table walk: the parent object is looked up once per
    /// record, then only the leaf.
    fn find(&self, lookup: Lookup, parents: &mut Parents<'a>) -> Option<&'a Value<'a>> {
        let parent = parents.0.get_mut(lookup.parent)?;
        let object = *parent.get_or_insert_with(|| {
            let path = WALK.parents.get(lookup.parent)?;
            self.object_at(path)
        });
        object?.get(lookup.leaf)
    }

    /// The object at `path` (the event itself for an empty path).
    fn object_at(&self, path: &[&str]) -> Option<&'a Object<'a>> {
        let mut object = self.fields;
        for key in path {
            object = object.get(key)?.as_object()?;
        }
        Some(object)
    }

    /// The value at `path` when it is a string, number or boolean.
    fn scalar(&self, path: &[&str]) -> Option<&'a Value<'a>> {
        self.lookup(path).filter(|v| is_scalar(v))
    }

    /// `field` of this record's detection.
    pub(crate) fn detection_field(&self, field: &str) -> Option<&'a Value<'a>> {
        self.detection?.1.as_object()?.get(field)
    }
}

pub(crate) fn write_category<O: Out>(out: &mut O, category: &Category<'_>) {
    match category {
        Category::One(value) => write_value(out, value, false),
        Category::Two(first, second) => {
            write_value(out, first, false);
            out.put("_");
            write_value(out, second, false);
        }
        Category::Unknown => out.put("UNKNOWN"),
    }
}
