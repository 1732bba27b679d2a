//! ArcSight CEF (`forwarder_type = cef`), read by ArcSight SmartConnectors and by
//! Microsoft Sentinel's CEF connector (Azure Monitor Agent → `CommonSecurityLog`).
//!
//! ```text
//! CEF:0|Lookout|Mobile Risk API|2.0|<EventClassID>|<Name>|<Severity>|<Extension>
//! ```
//!
//! The EventClassID is the LEEF EventID (`leef::Record` computes both), the Severity
//! the LEEF `sev`, and a smishing alert is split one record per detection exactly as in
//! LEEF. The extension starts with the required keys (`rt`, `externalId`, `cat`,
//! `cs1Label=entName cs1=<entity_name>`), then walks `MAPPING`: standard CEF keys
//! where the meaning fits (so Sentinel fills its own columns), then custom keys named
//! like the LEEF attributes, one key per event leaf. Whatever the table does not place
//! (fields Lookout may add later) is kept as compact JSON under `lookoutUnmapped`, so no
//! field is dropped. Keys are unique within a record; the tests check it on the tables.
//!
//! Escaping is CEF's own: in the header `\` and `|` get a backslash and control
//! characters become spaces; in extension values `\` and `=` get a backslash, CR and LF
//! become `\r` and `\n`, other C0 controls and DEL become spaces. No raw CR, LF, TAB or
//! NUL can appear, and no value can start a new key (`x externalId=forged` is written
//! `x externalId\=forged`).
//!
//! This module does not know about syslog headers, framing or size limits.

use super::leef::{self, Category, Record};
use super::rest::{self, Tree, View};
use super::value::{Out, is_present, write_display, write_value};
use super::{Envelope, RenderedMessage};
use crate::json::{Object, Value};
use std::sync::LazyLock;

/// The constant part of every record's header.
pub(crate) const PREFIX: &str = "CEF:0|Lookout|Mobile Risk API|2.0|";

/// The longest Name, in characters (the CEF specification's limit).
pub(crate) const NAME_MAX: usize = 512;

/// The longest EventClassID, in characters (the CEF specification's limit).
pub(crate) const CLASS_ID_MAX: usize = 1023;

/// Where a key's value comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// A path into the event, rendered as LEEF renders values (`docs/formats/leef.md#rendering-values`).
    Path(&'static [&'static str]),
    /// A field of the record's smishing detection; only on split records.
    Detection(&'static str),
    /// The position of the record's detection in `smishing_alert.detections`.
    DetectionIndex,
    /// `request`: `threat.details.url`, else the detection's `original_url`.
    Request,
    /// The detection's `original_url` when `request` already holds
    /// `threat.details.url` (only an odd event has both).
    OriginalUrlBesideRequest,
}

/// One extension key and where its value comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub(crate) key: &'static str,
    pub(crate) source: Source,
}

const fn at(key: &'static str, path: &'static [&'static str]) -> Key {
    Key {
        key,
        source: Source::Path(path),
    }
}

const fn detection(key: &'static str, field: &'static str) -> Key {
    Key {
        key,
        source: Source::Detection(field),
    }
}

const URL: &[&str] = &["threat", "details", "url"];

/// The keys written after the required ones, in order: standard CEF keys first, then
/// custom keys. `docs/formats/cef.md` is this table in prose; the golden tests check
/// it. The required keys (`rt`, `externalId`, `cat`, `cs1Label`, `cs1`) and the tail
/// (`cs2Label`/`cs2` for a custom log identifier, `lookoutUnmapped`) are written by
/// [`render_record`].
pub(crate) static MAPPING: [Key; 85] = [
    // Standard keys (Sentinel: DeviceExternalID, SourceUserName, DeviceAction,
    // RequestURL, FileName, FilePath, FileHash, Reason).
    at("deviceExternalId", &["device", "guid"]),
    at("suser", &["device", "info", "email"]),
    at("act", &["threat", "details", "response"]),
    Key {
        key: "request",
        source: Source::Request,
    },
    at("fname", &["threat", "details", "file_name"]),
    at("filePath", &["threat", "details", "path"]),
    at("fileHash", &["threat", "details", "package_sha"]),
    at("reason", &["threat", "details", "reason"]),
    // Custom keys, in the order of the LEEF table.
    at("lookoutChangeType", &["change_type"]),
    at("lookoutEventTime", &["created_time"]),
    at("lookoutEnterpriseGuid", &["enterprise_guid"]),
    at("lookoutType", &["type"]),
    at("lookoutTargetId", &["target", "guid"]),
    at("targetType", &["target", "type"]),
    at("lookoutActorId", &["actor", "guid"]),
    at("lookoutActorType", &["actor", "type"]),
    at("lookoutAttributeChanges", &["audit", "attribute_changes"]),
    at("lookoutAuditType", &["audit", "type"]),
    at("lookoutTargetPlatform", &["device", "platform"]),
    at("deviceProfileType", &["device", "profile_type"]),
    at(
        "lookoutClientSDKVersion",
        &["device", "client", "lookout_sdk_version"],
    ),
    at(
        "lookoutClientOTAVersion",
        &["device", "client", "ota_version"],
    ),
    at(
        "lookoutClientPackageName",
        &["device", "client", "package_name"],
    ),
    at(
        "lookoutClientPackageVersion",
        &["device", "client", "package_version"],
    ),
    at(
        "deviceManufacturer",
        &["device", "hardware", "manufacturer"],
    ),
    at("deviceModel", &["device", "hardware", "model"]),
    at(
        "customerDeviceId",
        &["device", "info", "customer_device_id"],
    ),
    at(
        "lookoutDeviceGroupGuids",
        &["device", "info", "device_group_guids"],
    ),
    at(
        "lookoutTargetExternalId",
        &["device", "info", "external_id"],
    ),
    at(
        "LookoutMdmConnectorId",
        &["device", "info", "mdm_connector_id"],
    ),
    at("mdmType", &["device", "info", "mdm_type"]),
    at(
        "previousDeviceGroupGuids",
        &["device", "info", "previous_device_group_guids"],
    ),
    at(
        "parentActivationStatus",
        &["device", "parent_status", "activation_status"],
    ),
    at(
        "parentDeviceGuid",
        &["device", "parent_status", "parent_device_guid"],
    ),
    at(
        "parentProtectionStatus",
        &["device", "parent_status", "protection_status"],
    ),
    at(
        "parentSecurityStatus",
        &["device", "parent_status", "security_status"],
    ),
    at(
        "latestOSVersion",
        &["device", "software", "latest_os_version"],
    ),
    at(
        "latestSecurityPatch",
        &["device", "software", "latest_security_patch_level"],
    ),
    at("lookoutOSVersion", &["device", "software", "os_version"]),
    at("OSVersionDate", &["device", "software", "os_version_date"]),
    at("OSVersionRSR", &["device", "software", "os_version_rsr"]),
    at("SDKVersion", &["device", "software", "sdk_version"]),
    at(
        "securityPatch",
        &["device", "software", "security_patch_level"],
    ),
    at(
        "lookoutActivationStatus",
        &["device", "status", "activation_status"],
    ),
    at("checkinTime", &["device", "status", "checkin_time"]),
    at(
        "lookoutProtectionStatus",
        &["device", "status", "protection_status"],
    ),
    at(
        "lookoutSecurityStatus",
        &["device", "status", "security_status"],
    ),
    at("lookoutThreatId", &["threat", "guid"]),
    at("lookoutSeverity", &["threat", "severity"]),
    at("lookoutThreatType", &["threat", "type"]),
    at("lookoutClassifications", &["threat", "classifications"]),
    at("threatAssessments", &["threat", "assessments"]),
    at(
        "lookoutDnsIpAddresses",
        &["threat", "details", "dns_ip_addresses"],
    ),
    at(
        "latestAgentConfig",
        &["threat", "details", "latest_agent_config"],
    ),
    at(
        "threatLatestOSVersion",
        &["threat", "details", "latest_os_version"],
    ),
    at("lookoutMacAddress", &["threat", "details", "mac_address"]),
    at(
        "threatMinOSVersion",
        &["threat", "details", "minimum_os_version"],
    ),
    at("lookoutSSID", &["threat", "details", "network_ssid"]),
    at("OSVersion", &["threat", "details", "os_version"]),
    at("threatAppName", &["threat", "details", "application_name"]),
    at(
        "threatAppPackageName",
        &["threat", "details", "package_name"],
    ),
    at(
        "lookoutProxyAddress",
        &["threat", "details", "proxy_address"],
    ),
    at("lookoutProxyPort", &["threat", "details", "proxy_port"]),
    at(
        "lookoutProxyProtocol",
        &["threat", "details", "proxy_protocol"],
    ),
    at(
        "lookoutTrustedSigningIdentity",
        &["threat", "details", "trusted_signing_identity"],
    ),
    at(
        "threatUserResponse",
        &["threat", "details", "user_response"],
    ),
    at("threatVersionType", &["threat", "details", "version_type"]),
    at(
        "lookoutVpnLocalAddress",
        &["threat", "details", "vpn_local_address"],
    ),
    at("lookoutVpnPresent", &["threat", "details", "vpn_present"]),
    at(
        "accessPointHostname",
        &["threat", "details", "network", "access_point_hostname"],
    ),
    at(
        "networkConnected",
        &["threat", "details", "network", "connected"],
    ),
    at(
        "dnsIpAddress",
        &["threat", "details", "network", "dns_ip_address"],
    ),
    at(
        "networkName",
        &["threat", "details", "network", "network_name"],
    ),
    at(
        "networkType",
        &["threat", "details", "network", "network_type"],
    ),
    at(
        "proxyConfig",
        &["threat", "details", "network", "proxy_config"],
    ),
    at(
        "vpnConfiguration",
        &["threat", "details", "network", "vpn_configuration"],
    ),
    at("wifiBSsid", &["threat", "details", "network", "wifi_bssid"]),
    at("lookoutThreatStatus", &["threat", "status"]),
    at("threatReputation", &["threat", "details", "reputation"]),
    at("smishingAlertId", &["smishing_alert", "guid"]),
    Key {
        key: "smishingDetectionIndex",
        source: Source::DetectionIndex,
    },
    detection("smishingAlertType", "alert_type"),
    detection("smishingCategory", "category"),
    Key {
        key: "smishingOriginalUrl",
        source: Source::OriginalUrlBesideRequest,
    },
    detection("smishingImpersonatedEmployee", "impersonated_employee"),
];

/// The keys [`render_record`] writes itself, before and after [`MAPPING`].
#[cfg(test)]
pub(crate) const OWN_KEYS: [&str; 9] = [
    "rt",
    "externalId",
    "cat",
    "cs1Label",
    "cs1",
    "cs2Label",
    "cs2",
    "lookoutUnmapped",
    // Not a key of its own: the event's `entName`, replaced by the configured one.
    "entName",
];

/// What the CEF renderer needs besides the event.
pub(crate) struct Settings<'a> {
    pub(crate) entity_name: &'a str,
    /// The custom log identifier, already filtered, written as `cs2Label=<key>
    /// cs2=<value>` (a label is a value, so any key configured for LEEF fits).
    pub(crate) custom_identifier: Option<(&'a str, &'a str)>,
}

/// Appends the CEF records of one event: one per smishing detection, else one.
pub(crate) fn render(
    settings: &Settings<'_>,
    fields: &Object<'_>,
    envelope: &Envelope<'_>,
    out: &mut Vec<RenderedMessage>,
) {
    let dev_time = leef::dev_time(envelope);
    match leef::detections(fields) {
        Some(detections) => {
            for (index, detection) in detections.iter().enumerate() {
                let record = Record::new(fields, Some((index, detection)), dev_time);
                let (text, altered) = render_record(settings, &record, dev_time);
                out.push(envelope.message(text).altered(altered));
            }
        }
        None => {
            let record = Record::new(fields, None, dev_time);
            let (text, altered) = render_record(settings, &record, dev_time);
            out.push(envelope.message(text).altered(altered));
        }
    }
}

/// The paths [`MAPPING`] places, for the `lookoutUnmapped` walk: every path key, `id`
/// (`externalId`), the event's own `entName` (replaced by `cs1`), and the detection
/// fields of a split record.
static PLACED: LazyLock<Tree> = LazyLock::new(|| {
    let paths = MAPPING
        .iter()
        .filter_map(|key| match key.source {
            Source::Path(path) => Some(path),
            Source::Request => Some(URL),
            _ => None,
        })
        .chain([&["id"][..], &["entName"]]);
    // Mark 0 is `deviceExternalId`'s path, always "placed" here: CEF places every path
    // of its table whatever the value.
    let detection_keys = DETECTION_FIELDS.map(|field| (field, 0));
    Tree::new(paths).with_detections(&["smishing_alert", "detections"], &detection_keys)
});

/// [`MAPPING`]'s paths prepared for the walk every record makes, as LEEF does: each
/// path split into a numbered parent object and its leaf key, so a record finds each
/// parent object once and compares no path while rendering.
struct Walk {
    /// Per entry of [`MAPPING`], where its path leads (`None` for the other sources).
    lookups: Vec<Option<Lookup>>,
    /// Where `threat.details.url` leads (for `request`).
    url: Option<Lookup>,
    /// The distinct parent paths, by number; `[]` is the event itself.
    parents: Vec<&'static [&'static str]>,
}

#[derive(Clone, Copy)]
struct Lookup {
    parent: usize,
    leaf: &'static str,
}

/// More than the table holds (15 parents); checked when the walk is prepared.
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
    let lookups = MAPPING
        .iter()
        .map(|key| match key.source {
            Source::Path(path) => lookup(path),
            _ => None,
        })
        .collect();
    let url = lookup(URL);
    assert!(parents.len() <= MAX_PARENTS, "raise MAX_PARENTS");
    Walk {
        lookups,
        url,
        parents,
    }
});

/// The object at `path` (the event itself for an empty path).
fn object_at<'a>(fields: &'a Object<'a>, path: &[&str]) -> Option<&'a Object<'a>> {
    let mut object = fields;
    for key in path {
        object = object.get(key)?.as_object()?;
    }
    Some(object)
}

/// The fields of a smishing detection the table places (`Source::Detection` and the
/// detection's `original_url`).
const DETECTION_FIELDS: [&str; 4] = [
    "alert_type",
    "category",
    "original_url",
    "impersonated_employee",
];

/// Renders one record; the flag says whether a character was replaced by a space.
fn render_record(
    settings: &Settings<'_>,
    record: &Record<'_>,
    dev_time: Option<i64>,
) -> (String, bool) {
    let mut text = String::with_capacity(1536);
    let mut altered = false;
    let category = record.category();

    text.push_str(PREFIX);
    let start = text.len();
    {
        let mut header = Header {
            out: &mut text,
            altered: &mut altered,
        };
        header.put(record.eventid_type());
        header.put(",");
        leef::write_category(&mut header, &category);
    }
    limit_chars(&mut text, start, CLASS_ID_MAX);
    text.push('|');
    let start = text.len();
    write_name(
        &mut Header {
            out: &mut text,
            altered: &mut altered,
        },
        record,
        &category,
    );
    limit_chars(&mut text, start, NAME_MAX);
    text.push('|');
    write_display(&mut text, &leef::leef_severity(record.fields));
    text.push('|');

    let mut extension = Extension {
        text,
        empty: true,
        altered,
    };
    if let Some(ms) = dev_time {
        extension.begin("rt");
        write_display(&mut extension.text, &ms);
    }
    if let Some(id) = record.fields.get("id").filter(|v| is_present(v)) {
        extension.begin("externalId");
        write_value(&mut extension.value(), id, false);
    }
    extension.begin("cat");
    leef::write_category(&mut extension.value(), &category);
    extension.begin("cs1Label");
    extension.text.push_str("entName");
    extension.begin("cs1");
    extension.value().put(settings.entity_name);

    let detection = record.detection.map(|(_, detection)| detection);
    let walk = &*WALK;
    let mut parents: [Option<Option<&Object<'_>>>; MAX_PARENTS] = [None; MAX_PARENTS];
    let mut find = |lookup: Option<Lookup>| -> Option<&Value<'_>> {
        let lookup = lookup?;
        let parent = parents.get_mut(lookup.parent)?;
        let object = *parent
            .get_or_insert_with(|| object_at(record.fields, walk.parents.get(lookup.parent)?));
        object?.get(lookup.leaf)
    };
    let url_value = find(walk.url);
    // Values found at table paths: when they are all the event's members the walk would
    // consider (`rest::members`), nothing is left for `lookoutUnmapped` and the walk is
    // skipped.
    let mut hits = usize::from(url_value.is_some());
    let url = url_value.filter(|v| is_present(v));
    let original_url = record
        .detection_field("original_url")
        .filter(|v| is_present(v));
    for (key, lookup) in MAPPING.iter().zip(&walk.lookups) {
        let value = match key.source {
            Source::Path(_) => {
                let value = find(*lookup);
                hits += usize::from(value.is_some());
                value
            }
            Source::Detection(field) => record.detection_field(field),
            Source::DetectionIndex => {
                if let Some((index, _)) = record.detection {
                    extension.begin(key.key);
                    write_display(&mut extension.text, &index);
                }
                continue;
            }
            Source::Request => url.or(original_url),
            Source::OriginalUrlBesideRequest => url.and(original_url),
        };
        if let Some(value) = value.filter(|v| is_present(v)) {
            extension.begin(key.key);
            write_value(&mut extension.value(), value, false);
        }
    }

    if let Some((key, value)) = settings.custom_identifier {
        extension.begin("cs2Label");
        extension.value().put(key);
        extension.begin("cs2");
        extension.value().put(value);
    }

    let view = View {
        placed: u128::MAX,
        detection,
    };
    for own in ["id", "entName"] {
        hits += usize::from(record.fields.contains_key(own));
    }
    // On a split record the detections array is placed by the split when its
    // detection holds only the fields the table places.
    let detection_placed = match detection {
        None => true,
        Some(Value::Object(fields)) => {
            hits += 1;
            fields
                .iter()
                .all(|(key, _)| DETECTION_FIELDS.contains(&key))
        }
        Some(_) => false,
    };
    if detection_placed && hits == rest::members(record.fields, &PLACED) {
        return (extension.text, extension.altered);
    }
    // `cat` is always there, so this is never the first pair.
    let mark = extension.text.len();
    extension.text.push_str(" lookoutUnmapped=");
    let mut value = extension.value();
    value.put("{");
    let mut first = true;
    rest::write_members(&mut value, record.fields, &PLACED, &view, &mut first);
    if first {
        extension.text.truncate(mark);
    } else {
        value.put("}");
    }
    (extension.text, extension.altered)
}

/// The Name: `<type> <category>`, and for a threat ` (<severity>)`, e.g.
/// `THREAT ACTIVE_MITM (HIGH)`.
fn write_name<O: Out>(out: &mut O, record: &Record<'_>, category: &Category<'_>) {
    out.put(record.eventid_type());
    out.put(" ");
    leef::write_category(out, category);
    if record.fields.get("type").and_then(Value::as_str) == Some("THREAT")
        && let Some(severity) = record
            .lookup(&["threat", "severity"])
            .filter(|v| leef_scalar(v))
    {
        out.put(" (");
        write_value(out, severity, false);
        out.put(")");
    }
}

fn leef_scalar(value: &Value<'_>) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Cuts the header field that starts at byte `start` of `text` to at most `max`
/// characters, never between a backslash and the character it escapes.
fn limit_chars(text: &mut String, start: usize, max: usize) {
    // No more bytes than the limit: no more characters either.
    if text.len() - start <= max {
        return;
    }
    let Some((cut, _)) = text[start..].char_indices().nth(max) else {
        return;
    };
    text.truncate(start + cut);
    let backslashes = text[start..]
        .bytes()
        .rev()
        .take_while(|b| *b == b'\\')
        .count();
    if backslashes % 2 == 1 {
        text.pop();
    }
}

/// The extension being written: `key=value` pairs separated by one space.
struct Extension {
    text: String,
    empty: bool,
    /// A character was replaced by a space (header or extension).
    altered: bool,
}

impl Extension {
    /// An escaper for the current value.
    fn value(&mut self) -> ExtValue<'_> {
        ExtValue {
            out: &mut self.text,
            altered: &mut self.altered,
        }
    }

    /// Starts the pair for `key` (a constant of this module: letters and digits).
    fn begin(&mut self, key: &str) {
        if !std::mem::take(&mut self.empty) {
            self.text.push(' ');
        }
        self.text.push_str(key);
        self.text.push('=');
    }
}

/// Appends to a header field, escaping as CEF requires there: `\` → `\\`, `|` → `\|`,
/// every control character → a space.
struct Header<'a> {
    out: &'a mut String,
    /// Set when a character was replaced.
    altered: &'a mut bool,
}

impl Out for Header<'_> {
    #[inline]
    fn put(&mut self, s: &str) {
        // Branch-free over the bytes, so the compiler can scan many at once; 0xC2 leads
        // every C1 control character (U+0080–U+009F).
        let special = s.bytes().fold(false, |found, b| {
            found | (b < 0x20) | (b == 0x7f) | (b == b'\\') | (b == b'|') | (b == 0xc2)
        });
        if !special {
            self.out.push_str(s);
            return;
        }
        for c in s.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '|' => self.out.push_str("\\|"),
                c if c.is_control() => {
                    self.out.push(' ');
                    *self.altered = true;
                }
                c => self.out.push(c),
            }
        }
    }
}

/// Appends to an extension value, escaping as CEF requires there: `\` → `\\`,
/// `=` → `\=`, CR → `\r`, LF → `\n`, every other C0 control character and DEL → a
/// space. `|` and spaces stay as they are.
struct ExtValue<'a> {
    out: &'a mut String,
    /// Set when a character was replaced by a space.
    altered: &'a mut bool,
}

impl Out for ExtValue<'_> {
    #[inline]
    fn put(&mut self, s: &str) {
        // Branch-free over the bytes, so the compiler can scan many at once.
        let special = s.bytes().fold(false, |found, b| {
            found | (b < 0x20) | (b == 0x7f) | (b == b'\\') | (b == b'=')
        });
        if !special {
            self.out.push_str(s);
            return;
        }
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'\\' => "\\\\",
                b'=' => "\\=",
                b'\r' => "\\r",
                b'\n' => "\\n",
                0x00..=0x1f | 0x7f => {
                    *self.altered = true;
                    " "
                }
                _ => continue,
            };
            // `b` is ASCII, so `i` and `i + 1` are character boundaries.
            self.out.push_str(&s[start..i]);
            self.out.push_str(escape);
            start = i + 1;
        }
        self.out.push_str(&s[start..]);
    }
}

/// Escapes `s` as an extension value (for tests and tools that build CEF by hand).
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    ExtValue {
        out: &mut out,
        altered: &mut false,
    }
    .put(s);
    out
}

/// Undoes extension value escaping: `\\`, `\=`, `\r`, `\n`; any other backslash
/// sequence is kept as it stands.
pub fn unescape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('\\') => out.push('\\'),
            Some('=') => out.push('='),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    out
}

/// A CEF record read back: what a receiver's parser sees.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The seven header fields, unescaped (`CEF:0`, vendor, …, severity).
    pub header: Vec<String>,
    /// The extension pairs in order: keys as written, values unescaped.
    pub pairs: Vec<(String, String)>,
}

/// Reads a CEF record the way a CEF parser does: a header field ends at an unescaped
/// `|`, and a key is the word before an unescaped `=`. `None` when the record is not
/// CEF:0 with seven header fields, or a key is not preceded by a space.
pub fn parse(record: &str) -> Option<Parsed> {
    let mut header = Vec::with_capacity(7);
    let mut field = String::new();
    let mut chars = record.char_indices();
    let mut rest_at = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, next @ ('\\' | '|'))) => field.push(next),
                Some((_, next)) => {
                    field.push('\\');
                    field.push(next);
                }
                None => field.push('\\'),
            },
            '|' => {
                header.push(std::mem::take(&mut field));
                if header.len() == 7 {
                    rest_at = Some(i + 1);
                    break;
                }
            }
            c => field.push(c),
        }
    }
    let extension = &record[rest_at?..];
    if header.first().map(String::as_str) != Some("CEF:0") {
        return None;
    }

    // The byte offsets of every unescaped `=`.
    let mut equals = Vec::new();
    let mut escaped = false;
    for (i, b) in extension.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'=' {
            equals.push(i);
        }
    }
    let mut pairs = Vec::with_capacity(equals.len());
    let mut key_start = 0;
    for (n, &eq) in equals.iter().enumerate() {
        let key = &extension[key_start..eq];
        let value_end = match equals.get(n + 1) {
            Some(&next) => {
                let next_key_start = extension[..next].rfind(' ')? + 1;
                key_start = next_key_start;
                next_key_start - 1
            }
            None => extension.len(),
        };
        let value = extension.get(eq + 1..value_end)?;
        pairs.push((key.to_string(), unescape_value(value)));
    }
    Some(Parsed { header, pairs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;
    use crate::event::MraEvent;
    use crate::format::Formatter;
    use serde_json::json;

    fn records(event: serde_json::Value, identifier: Option<(&str, &str)>) -> Vec<String> {
        let serde_json::Value::Object(fields) = event else {
            panic!("test events are objects");
        };
        let formatter = Formatter::new(
            Format::Cef,
            "acme",
            identifier.map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut out = Vec::new();
        formatter.render(&MraEvent::from(&fields), &mut out);
        out.into_iter().map(|m| m.text).collect()
    }

    fn one(event: serde_json::Value) -> String {
        let mut all = records(event, None);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    fn pairs(record: &str) -> Vec<(String, String)> {
        parse(record).expect("a CEF record").pairs
    }

    fn value(record: &str, key: &str) -> Option<String> {
        pairs(record)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    #[test]
    fn keys_are_unique_cef_keys() {
        let mut keys: Vec<&str> = MAPPING.iter().map(|k| k.key).chain(OWN_KEYS).collect();
        for key in &keys {
            let mut chars = key.chars();
            assert!(
                chars.next().is_some_and(|c| c.is_ascii_alphabetic()),
                "{key}"
            );
            assert!(chars.all(|c| c.is_ascii_alphanumeric()), "{key}");
        }
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key appears twice");
    }

    #[test]
    fn every_path_is_placed_by_one_key() {
        // The `lookoutUnmapped` shortcut counts table hits as event leaves.
        let mut paths: Vec<&[&str]> = MAPPING
            .iter()
            .filter_map(|k| match k.source {
                Source::Path(path) => Some(path),
                Source::Request => Some(URL),
                _ => None,
            })
            .collect();
        let n = paths.len();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), n, "a path appears twice");
    }

    #[test]
    fn value_escaping() {
        // `docs/formats/cef.md#escaping`: `\` and `=` get a backslash, CR and LF become \r and \n, other
        // C0 controls and DEL become a space; `|`, spaces and non-ASCII stay.
        assert_eq!(escape_value("C:\\corp\\*"), "C:\\\\corp\\\\*");
        assert_eq!(escape_value("a=b|c d"), "a\\=b|c d");
        assert_eq!(escape_value("ap-01\r\nap-02"), "ap-01\\r\\nap-02");
        assert_eq!(escape_value("a\tb\0c\u{1b}[31md\u{7f}"), "a b c [31md ");
        assert_eq!(escape_value("trailing\\"), "trailing\\\\");
        assert_eq!(escape_value("Café\u{2028}😀"), "Café\u{2028}😀");
        assert_eq!(escape_value("x externalId=forged"), "x externalId\\=forged");
        for s in ["a=b\\", "\\=", "x\r\n\\n", "Café 東京"] {
            assert_eq!(unescape_value(&escape_value(s)), s);
        }
    }

    #[test]
    fn header_escaping_and_name() {
        let record = one(json!({
            "type": "THREAT",
            "id": "i",
            "threat": {"classifications": ["A|B\\C\r\nD\tE"], "severity": "HI|GH"},
        }));
        assert!(
            record.starts_with(
                "CEF:0|Lookout|Mobile Risk API|2.0|THREAT,A\\|B\\\\C  D E|THREAT A\\|B\\\\C  D E (HI\\|GH)|5|"
            ),
            "{record}"
        );
        let header = parse(&record).expect("CEF").header;
        assert_eq!(header[4], "THREAT,A|B\\C  D E");
        assert_eq!(value(&record, "cat").as_deref(), Some("A|B\\C\r\nD E"));
    }

    #[test]
    fn name_and_class_id_are_limited_without_splitting_an_escape() {
        let long = format!("{}\\{}", "x".repeat(NAME_MAX - 8), "é".repeat(2000));
        let record = one(json!({"type": "AUDIT", "audit": {"type": long}}));
        let header = parse(&record).expect("CEF").header;
        // Counted in written characters (escapes included).
        let raw: Vec<&str> = record.splitn(8, '|').collect();
        assert_eq!(raw.len(), 8, "{record}");
        let name_chars = record[PREFIX.len()..]
            .split_once("|AUDIT ")
            .map(|(_, rest)| rest)
            .expect("the name");
        assert!(header[5].starts_with("AUDIT xxx"));
        assert!(header[4].chars().count() <= CLASS_ID_MAX);
        assert!(header[5].chars().count() <= NAME_MAX);
        assert!(!name_chars.is_empty());
        // A backslash right at the limit is dropped rather than left half-escaped.
        let edge = format!("{}\\tail", "y".repeat(NAME_MAX - 7));
        let record = one(json!({"type": "AUDIT", "audit": {"type": edge}}));
        let header = parse(&record).expect("CEF").header;
        assert_eq!(header[5], format!("AUDIT {}", "y".repeat(NAME_MAX - 7)));
        assert_eq!(header[6], "1");
    }

    #[test]
    fn required_keys_come_first() {
        let record = one(json!({
            "id": "e1",
            "created_time": "2026-11-05T08:12:44.318+00:00",
            "type": "THREAT",
            "threat": {"classifications": ["ACTIVE_MITM"]},
        }));
        let keys: Vec<String> = pairs(&record).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys[..5],
            ["rt", "externalId", "cat", "cs1Label", "cs1"].map(String::from)
        );
        assert_eq!(value(&record, "rt").as_deref(), Some("1793866364318"));
        assert_eq!(value(&record, "cs1").as_deref(), Some("acme"));
    }

    #[test]
    fn missing_time_and_id_leave_their_keys_out() {
        let record = one(json!({"created_time": "yesterday", "change_type": "CREATED"}));
        assert_eq!(
            record,
            "CEF:0|Lookout|Mobile Risk API|2.0|UNKNOWN,CREATED|UNKNOWN CREATED|1|cat=CREATED cs1Label=entName cs1=acme lookoutChangeType=CREATED lookoutEventTime=yesterday"
        );
    }

    #[test]
    fn injection_cannot_add_a_key() {
        let record = one(json!({
            "type": "THREAT",
            "id": "x externalId=forged",
            "threat": {"guid": "x\tsev=1", "details": {"url": "u cs1=evil"}},
        }));
        let keys: Vec<String> = pairs(&record).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "externalId",
                "cat",
                "cs1Label",
                "cs1",
                "request",
                "lookoutType",
                "lookoutThreatId"
            ]
            .map(String::from)
        );
        assert_eq!(
            value(&record, "externalId").as_deref(),
            Some("x externalId=forged")
        );
        assert_eq!(
            value(&record, "lookoutThreatId").as_deref(),
            Some("x sev=1")
        );
        assert_eq!(value(&record, "cs1").as_deref(), Some("acme"));
    }

    #[test]
    fn unknown_fields_are_kept_under_lookout_unmapped() {
        let record = one(json!({
            "type": "DEVICE",
            "entName": "theirs",
            "device": {"guid": "g", "battery": {"level": 0.5}, "info": {"email": "a@b"}},
            "new_top": [1, {"k": "v=w"}],
        }));
        assert_eq!(value(&record, "deviceExternalId").as_deref(), Some("g"));
        assert_eq!(value(&record, "suser").as_deref(), Some("a@b"));
        assert_eq!(value(&record, "cs1").as_deref(), Some("acme"));
        assert_eq!(
            value(&record, "lookoutUnmapped").as_deref(),
            Some(r#"{"device":{"battery":{"level":0.5}},"new_top":[1,{"k":"v=w"}]}"#)
        );
    }

    #[test]
    fn smishing_splits_and_keeps_odd_detection_fields() {
        let all = records(
            json!({
                "type": "SMISHING_ALERT",
                "id": "s",
                "smishing_alert": {"guid": "a", "detections": [
                    {"alert_type": "URL_DETECTION", "original_url": "http://x", "score": 3},
                    "odd",
                ]},
                "threat": {"details": {"url": "http://threat"}},
            }),
            None,
        );
        assert_eq!(all.len(), 2);
        assert_eq!(value(&all[0], "request").as_deref(), Some("http://threat"));
        assert_eq!(
            value(&all[0], "smishingOriginalUrl").as_deref(),
            Some("http://x")
        );
        assert_eq!(
            value(&all[0], "smishingDetectionIndex").as_deref(),
            Some("0")
        );
        assert_eq!(
            value(&all[0], "lookoutUnmapped").as_deref(),
            Some(r#"{"smishing_alert":{"detection":{"score":3}}}"#)
        );
        assert_eq!(
            value(&all[1], "smishingDetectionIndex").as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&all[1], "lookoutUnmapped").as_deref(),
            Some(r#"{"smishing_alert":{"detection":"odd"}}"#)
        );
        assert!(all[1].contains("|SMISHING_ALERT,UNKNOWN|"), "{}", all[1]);
    }

    #[test]
    fn replaced_characters_mark_the_message_altered() {
        let render = |event: serde_json::Value| {
            let serde_json::Value::Object(fields) = event else {
                panic!("test events are objects");
            };
            let mut out = Vec::new();
            Formatter::new(Format::Cef, "acme", None).render(&MraEvent::from(&fields), &mut out);
            out.remove(0)
        };
        // CR, LF, `=` and `\` are escaped, nothing is lost.
        assert!(!render(json!({"type": "AUDIT", "id": "a\r\n=\\"})).altered);
        // TAB, NUL, ESC, DEL in a value, or a control character in the header, are not.
        for event in [
            json!({"type": "AUDIT", "id": "a\tb"}),
            json!({"type": "AUDIT", "id": "a\u{0}b"}),
            json!({"type": "AUDIT", "id": "a\u{1b}[0m"}),
            json!({"type": "AUDIT", "id": "a\u{7f}"}),
            json!({"type": "AUDIT", "audit": {"type": "A\u{85}B"}}),
        ] {
            assert!(render(event.clone()).altered, "{event}");
        }
    }

    #[test]
    fn custom_identifier_is_cs2() {
        let all = records(json!({"type": "AUDIT"}), Some(("site_id", "lon=1")));
        assert!(
            all[0].ends_with(" cs2Label=site_id cs2=lon\\=1"),
            "{}",
            all[0]
        );
        let all = records(
            json!({"type": "AUDIT"}),
            Some(("qradarLogSourceIdentifier", "x")),
        );
        assert!(!all[0].contains("cs2"), "{}", all[0]);
    }

    #[test]
    fn parse_reads_what_a_cef_parser_reads() {
        let Parsed { header, pairs } =
            parse("CEF:0|V|P|1|a\\|b|n\\\\|3|k=v w x\\=y k2= k3=z\\\\").expect("CEF");
        assert_eq!(header, ["CEF:0", "V", "P", "1", "a|b", "n\\", "3"]);
        assert_eq!(
            pairs,
            [("k", "v w x=y"), ("k2", ""), ("k3", "z\\")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(parse("LEEF:2.0|a|b|c|d|e|f|").is_none());
        assert!(parse("CEF:0|a|b").is_none());
    }
}
