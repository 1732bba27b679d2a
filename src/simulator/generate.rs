//! Generated MRA v2 events (`docs/event-stream.md#generated-events`), written from the
//! documented event fields and the example files, not from the connector's own types.
//!
//! One [`Generator`] per tenant owns a seeded ChaCha8 generator and the id clock, so the
//! same seed, tenant, options and times give byte-identical events. Each event is
//! serialised once, at generation, to compact JSON; the server only ever copies those
//! bytes. Optional parts are left out now and then, and some values carry TAB, CR/LF,
//! `|`, `=`, quotes, backslashes and non-ASCII text, so formatters meet them in normal
//! operation.

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use super::id::{self, IdClock};

/// The four event types of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// `THREAT`
    Threat,
    /// `DEVICE`
    Device,
    /// `AUDIT`
    Audit,
    /// `SMISHING_ALERT`
    SmishingAlert,
}

/// One generated event: its id, time, type and serialised JSON object.
#[derive(Debug, Clone)]
pub struct SimEvent {
    /// The UUIDv7 id as a number; ids sort like the events.
    pub id: u128,
    /// `created_time` in ms since the Unix epoch.
    pub created_ms: i64,
    /// The `type` field.
    pub kind: EventKind,
    /// The compact JSON object, exactly as it is written inside a batch.
    pub json: Bytes,
}

/// Generates one tenant's events.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: ChaCha8Rng,
    clock: IdClock,
    last_ms: i64,
    kinds: Vec<EventKind>,
    enterprise_guid: String,
    admins: Vec<String>,
    devices: Vec<Device>,
}

/// A device that events refer to again and again.
#[derive(Debug, Clone)]
struct Device {
    guid: String,
    platform: &'static str,
    email: String,
}

impl EventKind {
    /// All four, in the fixed order of the `types` parameter.
    pub const ALL: [EventKind; 4] = [
        EventKind::Threat,
        EventKind::Device,
        EventKind::Audit,
        EventKind::SmishingAlert,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Threat => "THREAT",
            EventKind::Device => "DEVICE",
            EventKind::Audit => "AUDIT",
            EventKind::SmishingAlert => "SMISHING_ALERT",
        }
    }

    /// Parses a wire name (exact, upper case).
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The relative weight of each type: 40/40/15/5.
    fn weight(self) -> u32 {
        match self {
            EventKind::Threat => 40,
            EventKind::Device => 40,
            EventKind::Audit => 15,
            EventKind::SmishingAlert => 5,
        }
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        EventKind::from_name(text).ok_or_else(|| {
            format!("unknown event type {text:?}; expected THREAT, DEVICE, AUDIT or SMISHING_ALERT")
        })
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Generator {
    /// A generator for `tenant`, seeded from `seed` and the tenant name so that two
    /// tenants get different but reproducible streams. `kinds` must not be empty.
    pub fn new(seed: u64, tenant: &str, kinds: &[EventKind]) -> Generator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(tenant.as_bytes()));
        let enterprise_guid = id::random_v4(&mut rng);
        let admins = (0..3).map(|_| id::random_v4(&mut rng)).collect();
        let devices = (0..40)
            .map(|i| {
                let platform = if rng.random_bool(0.6) {
                    "ANDROID"
                } else {
                    "IOS"
                };
                Device {
                    guid: id::random_v4(&mut rng),
                    platform,
                    email: format!("{}@example.com", PEOPLE[i % PEOPLE.len()]),
                }
            })
            .collect();
        let mut kinds = kinds.to_vec();
        kinds.sort();
        kinds.dedup();
        if kinds.is_empty() {
            kinds = EventKind::ALL.to_vec();
        }
        Generator {
            rng,
            clock: IdClock::new(),
            last_ms: i64::MIN,
            kinds,
            enterprise_guid,
            admins,
            devices,
        }
    }

    /// The next event, created at `wanted_ms` or, to keep `created_time` strictly
    /// increasing, 1 ms after the previous event.
    pub fn next_event(&mut self, wanted_ms: i64) -> SimEvent {
        let kind = self.pick_kind();
        // "Strictly increasing created_time" is a rule of generated events, not of
        // UUIDv7 (which allows shared milliseconds), so it is enforced here.
        let (ms, id) = self
            .clock
            .next(wanted_ms.max(self.last_ms.saturating_add(1)), &mut self.rng);
        self.last_ms = ms;
        let value = self.event_value(kind, id, ms);
        SimEvent {
            id,
            created_ms: ms,
            kind,
            // Serialising a `Value` cannot fail (its keys are strings).
            json: Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
        }
    }

    /// A THREAT that replaces `original` (same id, time and enterprise), with a
    /// `details.url` of exactly `url_bytes` bytes (huge_event fault).
    pub fn huge_threat(original: &SimEvent, url_bytes: usize) -> Bytes {
        let prefix = "https://huge.example/";
        let mut url = String::with_capacity(url_bytes.max(prefix.len()));
        url.push_str(prefix);
        while url.len() < url_bytes {
            url.push('a');
        }
        url.truncate(url_bytes.max(1));
        let parsed: Value = serde_json::from_slice(&original.json).unwrap_or(Value::Null);
        let field = |name: &str| parsed.get(name).cloned().unwrap_or(Value::Null);
        let value = json!({
            "id": field("id"),
            "enterprise_guid": field("enterprise_guid"),
            "created_time": field("created_time"),
            "type": "THREAT",
            "change_type": "CREATED",
            "threat": {
                "guid": "00000000-0000-4000-8000-000000000000",
                "status": "OPEN",
                "severity": "HIGH",
                "type": "WEB_CONTENT",
                "classifications": ["PHISHING_CONTENT"],
                "assessments": [{"classification": "PHISHING_CONTENT"}],
                "details": {"url": url, "reason": "MALICIOUS", "response": "BLOCKED"}
            },
            "target": {"guid": "00000000-0000-4000-8000-000000000000", "type": "THREAT"},
            "actor": {"type": "SYSTEM"}
        });
        Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
    }

    fn pick_kind(&mut self) -> EventKind {
        let total: u32 = self.kinds.iter().map(|kind| kind.weight()).sum();
        let mut roll = self.rng.random_range(0..total);
        for kind in &self.kinds {
            if roll < kind.weight() {
                return *kind;
            }
            roll -= kind.weight();
        }
        self.kinds[0]
    }

    fn event_value(&mut self, kind: EventKind, id: u128, ms: i64) -> Value {
        let change_type = self.pick(&[
            ("CREATED", 60),
            ("UPDATED", 30),
            ("DELETED", 7),
            ("PURGED", 3),
        ]);
        let device = self.devices[self.rng.random_range(0..self.devices.len())].clone();
        let mut event = Map::new();
        event.insert("id".into(), Value::String(id::format(id)));
        event.insert(
            "enterprise_guid".into(),
            Value::String(self.enterprise_guid.clone()),
        );
        event.insert("created_time".into(), Value::String(created_time(ms)));
        event.insert("type".into(), Value::String(kind.as_str().into()));
        event.insert("change_type".into(), Value::String(change_type.into()));
        let (block, target) = match kind {
            EventKind::Threat => (
                ("threat", self.threat()),
                json!({"guid": device.guid, "type": "THREAT"}),
            ),
            EventKind::Device => (
                ("device", self.device(&device, ms)),
                json!({"guid": device.guid, "type": "DEVICE"}),
            ),
            EventKind::Audit => (
                ("audit", self.audit()),
                json!({"guid": self.enterprise_guid, "type": "ENTERPRISE"}),
            ),
            EventKind::SmishingAlert => (
                ("smishing_alert", self.smishing()),
                json!({"guid": device.guid, "type": "SMISHING_ALERT"}),
            ),
        };
        event.insert(block.0.into(), block.1);
        event.insert("target".into(), target);
        let actor = match kind {
            EventKind::Audit => self.admin_actor(),
            _ => match self.rng.random_range(0..10) {
                0..=4 => json!({"guid": device.guid, "type": "DEVICE"}),
                5..=7 => json!({"type": "SYSTEM"}),
                _ => self.admin_actor(),
            },
        };
        event.insert("actor".into(), actor);
        Value::Object(event)
    }

    fn admin_actor(&mut self) -> Value {
        let guid = self.admins[self.rng.random_range(0..self.admins.len())].clone();
        json!({"guid": guid, "type": "ADMIN"})
    }

    fn threat(&mut self) -> Value {
        let threat_type = self.pick(&[
            ("APPLICATION", 35),
            ("NETWORK", 25),
            ("OS", 15),
            ("WEB_CONTENT", 15),
            ("CONFIGURATION", 5),
            ("FILE", 5),
        ]);
        let classification = match threat_type {
            "APPLICATION" => self.one_of(&["RISKWARE", "ADWARE", "TROJAN", "SPYWARE"]),
            "NETWORK" => self.one_of(&["ROGUE_WIFI", "ACTIVE_MITM"]),
            "OS" => self.one_of(&["OUT_OF_DATE_ASPL", "OUT_OF_DATE_OS"]),
            "WEB_CONTENT" => self.one_of(&["PHISHING_CONTENT", "MALICIOUS_CONTENT"]),
            "FILE" => self.one_of(&["MALWARE", "RISKWARE"]),
            _ => self.one_of(&["USB_DEBUGGING", "UNKNOWN_SOURCES"]),
        };
        let empty = self.rng.random_bool(0.08);
        let (classifications, assessments) = if empty {
            (json!([]), json!([]))
        } else {
            (
                json!([classification]),
                json!([{"classification": classification}]),
            )
        };
        let mut details = match threat_type {
            "APPLICATION" | "FILE" => self.app_details(),
            "NETWORK" => self.network_details(),
            "OS" => self.os_details(),
            "WEB_CONTENT" => self.web_details(),
            _ => Map::new(),
        };
        // Drop a detail key now and then: no field of v2 is guaranteed.
        if !details.is_empty() && self.rng.random_bool(0.2) {
            let victim = self.rng.random_range(0..details.len());
            if let Some(key) = details.keys().nth(victim).cloned() {
                details.shift_remove(&key);
            }
        }
        json!({
            "guid": id::random_v4(&mut self.rng),
            "status": self.pick(&[("OPEN", 60), ("RESOLVED", 25), ("IGNORED", 10), ("DETECTED", 5)]),
            "severity": self.pick(&[("LOW", 25), ("MEDIUM", 35), ("HIGH", 25), ("ADVISORY", 10), ("CRITICAL", 3), ("NONE", 2)]),
            "type": threat_type,
            "classifications": classifications,
            "assessments": assessments,
            "details": Value::Object(details),
        })
    }

    fn app_details(&mut self) -> Map<String, Value> {
        let (name, package) = APPS[self.rng.random_range(0..APPS.len())];
        let mut details = Map::new();
        details.insert("application_name".into(), json!(name));
        // An application name without a package name happens in real traffic.
        if self.rng.random_bool(0.8) {
            details.insert("package_name".into(), json!(package));
            details.insert("package_sha".into(), json!(self.hex(40)));
            details.insert("path".into(), json!(format!("package://{package}")));
        }
        details.insert("file_name".into(), json!("base.apk"));
        let reputation = f64::from(self.rng.random_range(0..=100u32)) / 100.0;
        details.insert("reputation".into(), json!(reputation));
        details.insert(
            "response".into(),
            json!(self.one_of(&["NONE", "ALERT", "BLOCKED"])),
        );
        details
    }

    fn network_details(&mut self) -> Map<String, Value> {
        let ssid = self.one_of(SSIDS);
        let mac = self.mac();
        let mut details = Map::new();
        details.insert("network_ssid".into(), json!(ssid));
        details.insert("mac_address".into(), json!(mac));
        details.insert(
            "dns_ip_addresses".into(),
            json!([
                format!("192.168.{}.1", self.rng.random_range(0..255)),
                "fe80::1"
            ]),
        );
        if self.rng.random_bool(0.3) {
            details.insert("proxy_address".into(), json!("10.0.0.5"));
            details.insert("proxy_port".into(), json!(8080));
            details.insert("proxy_protocol".into(), json!("HTTP"));
        }
        details.insert("vpn_present".into(), json!(self.rng.random_bool(0.3)));
        let mut network = Map::new();
        network.insert("network_name".into(), json!(self.one_of(SSIDS)));
        network.insert("network_type".into(), json!("WIFI"));
        network.insert("wifi_bssid".into(), json!(mac));
        if self.rng.random_bool(0.15) {
            network.insert("access_point_hostname".into(), json!("ap-01\r\nap-02"));
            network.insert(
                "proxy_config".into(),
                json!("host=\"10.0.0.5\" bypass=C:\\corp\\*|*.local"),
            );
        }
        network.insert("connected".into(), json!(self.rng.random_bool(0.7)));
        details.insert("network".into(), Value::Object(network));
        details
    }

    fn os_details(&mut self) -> Map<String, Value> {
        let mut details = Map::new();
        details.insert("version_type".into(), json!("ASPL"));
        details.insert(
            "os_version".into(),
            json!(format!("2026-{:02}-01", self.rng.random_range(1..=6))),
        );
        details.insert("minimum_os_version".into(), json!("2026-08-01"));
        details.insert("latest_os_version".into(), json!("2026-11-01"));
        details
    }

    fn web_details(&mut self) -> Map<String, Value> {
        let mut details = Map::new();
        details.insert("url".into(), json!(self.one_of(URLS)));
        details.insert(
            "reason".into(),
            json!(self.one_of(&["MALICIOUS", "PHISHING", "DENYLISTED"])),
        );
        details.insert("response".into(), json!(self.one_of(&["BLOCKED", "ALERT"])));
        details
    }

    fn device(&mut self, device: &Device, ms: i64) -> Value {
        let ios = device.platform == "IOS";
        let mut block = Map::new();
        block.insert("guid".into(), json!(device.guid));
        block.insert("platform".into(), json!(device.platform));
        if !ios && self.rng.random_bool(0.5) {
            block.insert(
                "profile_type".into(),
                json!(self.one_of(&["WORK", "PERSONAL"])),
            );
        }
        // A device without a status block is a documented edge case.
        if self.rng.random_bool(0.85) {
            let mut status = Map::new();
            status.insert(
                "activation_status".into(),
                json!(self.one_of(&["ACTIVATED", "DEACTIVATED", "PENDING"])),
            );
            status.insert(
                "protection_status".into(),
                json!(self.one_of(&["PROTECTED", "DISCONNECTED", "UNPROTECTED"])),
            );
            status.insert(
                "security_status".into(),
                json!(self.one_of(&["SECURE", "THREATS_LOW", "THREATS_MEDIUM", "THREATS_HIGH"])),
            );
            if self.rng.random_bool(0.7) {
                let back = self.rng.random_range(1_000..600_000);
                status.insert("checkin_time".into(), json!(created_time(ms - back)));
            }
            block.insert("status".into(), Value::Object(status));
        }
        if self.rng.random_bool(0.5) {
            block.insert("parent_status".into(), json!({}));
        }
        let mut info = Map::new();
        info.insert("external_id".into(), json!(id::random_v4(&mut self.rng)));
        if self.rng.random_bool(0.5) {
            info.insert(
                "mdm_connector_id".into(),
                json!(self.rng.random_range(100_000..999_999).to_string()),
            );
            info.insert(
                "mdm_type".into(),
                json!(self.one_of(&["INTUNE", "WORKSPACE_ONE", "MOBILEIRON"])),
            );
        }
        info.insert("email".into(), json!(device.email));
        if self.rng.random_bool(0.3) {
            info.insert(
                "customer_device_id".into(),
                json!(self.one_of(&["FLEET-0417", "Gerät|Lager=3", "név \"kiosk\"\tB"])),
            );
        }
        if self.rng.random_bool(0.5) {
            let groups: Vec<String> = (0..self.rng.random_range(0..3))
                .map(|_| id::random_v4(&mut self.rng))
                .collect();
            info.insert("device_group_guids".into(), json!(groups));
            info.insert("previous_device_group_guids".into(), json!([]));
        }
        block.insert("info".into(), Value::Object(info));
        let (manufacturer, model, os, sdk) = if ios {
            (
                "apple",
                self.one_of(&["iphone17,3", "iphone16,2", "ipad14,1"]),
                self.one_of(&["26.1", "18.7"]),
                None,
            )
        } else {
            (
                self.one_of(&["samsung", "google", "motorola"]),
                self.one_of(&["sm-s921b", "pixel 9", "moto g84"]),
                self.one_of(&["15", "16", "14"]),
                Some(self.one_of(&["35", "36", "34"])),
            )
        };
        block.insert(
            "hardware".into(),
            json!({"manufacturer": manufacturer, "model": model}),
        );
        let mut software = Map::new();
        software.insert("os_version".into(), json!(os));
        if let Some(sdk) = sdk {
            software.insert("sdk_version".into(), json!(sdk));
            software.insert("security_patch_level".into(), json!("2026-10-01"));
            software.insert("latest_os_version".into(), json!("16"));
            software.insert("latest_security_patch_level".into(), json!("2026-11-01"));
        }
        block.insert("software".into(), Value::Object(software));
        if self.rng.random_bool(0.8) {
            let package = if ios {
                "com.lookout.work"
            } else {
                "com.lookout.enterprise"
            };
            block.insert(
                "client".into(),
                json!({"package_name": package, "package_version": self.one_of(&["10.2.0.2231", "10.1.3"])}),
            );
        }
        Value::Object(block)
    }

    fn audit(&mut self) -> Value {
        let audit_type = self.one_of(&[
            "CLASSIFICATION_POLICY",
            "ENTERPRISE",
            "ADMIN_LOGIN",
            "ADMIN_LOGOUT",
            "MDM_CONNECTOR",
            "DEVICE",
            "DEVICE_GROUP_CHANGE",
        ]);
        let changes = match audit_type {
            "ADMIN_LOGIN" | "ADMIN_LOGOUT" => json!([]),
            "CLASSIFICATION_POLICY" => json!([
                {"name": "severity", "from": "MEDIUM", "to": "HIGH"},
                {"name": "response_actions", "from": "[\"ALERT\"]", "to": "[\"ALERT\",\"BLOCK\"]"}
            ]),
            "ENTERPRISE" => json!([
                {"name": "display_name", "from": "Acme | Ops", "to": "Acme Ops — Zürich"}
            ]),
            "DEVICE_GROUP_CHANGE" => json!([
                {"name": "device_group_guids", "to": format!("[\"{}\"]", id::random_v4(&mut self.rng))}
            ]),
            _ => json!([{"name": "enabled", "from": "false", "to": "true"}]),
        };
        json!({"type": audit_type, "attribute_changes": changes})
    }

    fn smishing(&mut self) -> Value {
        let detections = if self.rng.random_bool(0.6) {
            let count = self.rng.random_range(1..=2);
            (0..count)
                .map(|_| {
                    json!({
                        "category": "EMBEDDED_PHISHING_URL",
                        "alert_type": "URL_DETECTION",
                        "original_url": self.one_of(URLS),
                    })
                })
                .collect::<Vec<_>>()
        } else {
            vec![json!({
                "category": "CEO_FRAUD",
                "alert_type": "FRAUD_DETECTION",
                "impersonated_employee": self.one_of(&["Dana Whitfield", "Zoë O'Brien", "José \"Pepe\" Núñez"]),
            })]
        };
        json!({"guid": id::random_v4(&mut self.rng), "detections": detections})
    }

    fn pick(&mut self, weighted: &[(&'static str, u32)]) -> &'static str {
        let total: u32 = weighted.iter().map(|(_, weight)| weight).sum();
        let mut roll = self.rng.random_range(0..total.max(1));
        for (value, weight) in weighted {
            if roll < *weight {
                return value;
            }
            roll -= weight;
        }
        weighted
            .first()
            .map(|(value, _)| *value)
            .unwrap_or_default()
    }

    fn one_of(&mut self, values: &[&'static str]) -> &'static str {
        values[self.rng.random_range(0..values.len())]
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from(b"0123456789abcdef"[self.rng.random_range(0..16)]))
            .collect()
    }

    fn mac(&mut self) -> String {
        let bytes: [u8; 6] = self.rng.random();
        bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// `created_time` text: `2026-11-05T08:12:44.318+00:00`.
pub fn created_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(time) => time.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string(),
        None => "1970-01-01T00:00:00.000+00:00".to_owned(),
    }
}

/// FNV-1a, a stable hash for deriving per-tenant seeds (std's hasher is not stable
/// across releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

const PEOPLE: &[&str] = &[
    "m.okafor",
    "l.tanaka",
    "r.silva",
    "a.schmidt",
    "j.dupont",
    "s.kowalski",
    "p.nguyen",
];

const APPS: &[(&str, &str)] = &[
    ("QuickScan PDF Reader", "com.quickscan.pdfreader"),
    ("Sunny Weather Widget", "com.sunny.weather"),
    ("Flashlight | Pro", "com.torch.pro"),
    ("Café Finder 東京", "jp.cafe.finder"),
    ("Key=Value \"Notes\"", "org.example.notes"),
];

const SSIDS: &[&str] = &[
    "Harbour-Hotel-Guest",
    "Café Wi‑Fi 東京",
    "Lobby\tGuest",
    "Airport_Free|WiFi",
    "corp=guest \\ 2G",
];

const URLS: &[&str] = &[
    "https://secure-login.payroll.example.net/verify?session=8f2c",
    "https://parcel-redelivery.example.org/r/7Qx2",
    "http://short.example/3kLm9",
    "https://bank.example.com/login?a=1&b=\"x\"|y",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn history(seed: u64, kinds: &[EventKind], n: usize) -> Vec<SimEvent> {
        let mut generator = Generator::new(seed, "demo", kinds);
        (0..n)
            .map(|i| generator.next_event(1_762_330_000_000 + i as i64 * 5))
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let a = history(3, &EventKind::ALL, 300);
        let b = history(3, &EventKind::ALL, 300);
        let c = history(4, &EventKind::ALL, 300);
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.json == y.json && x.id == y.id)
        );
        assert!(a.iter().zip(&c).any(|(x, y)| x.json != y.json));
    }

    #[test]
    fn events_have_the_envelope_and_strictly_increasing_times() {
        let events = history(1, &EventKind::ALL, 2000);
        let mut counts = std::collections::HashMap::new();
        let mut special = false;
        for pair in events.windows(2) {
            assert!(pair[1].created_ms > pair[0].created_ms);
            assert!(pair[1].id > pair[0].id);
        }
        for event in &events {
            let value: Value = serde_json::from_slice(&event.json).expect("json");
            assert_eq!(value["id"], id::format(event.id));
            assert_eq!(value["created_time"], created_time(event.created_ms));
            assert_eq!(value["type"], event.kind.as_str());
            let block = match event.kind {
                EventKind::Threat => "threat",
                EventKind::Device => "device",
                EventKind::Audit => "audit",
                EventKind::SmishingAlert => "smishing_alert",
            };
            assert!(value[block].is_object(), "{value}");
            assert!(value["actor"]["type"].is_string());
            *counts.entry(event.kind).or_insert(0) += 1;
            let text = String::from_utf8_lossy(&event.json);
            special |= text.contains("\\t") && text.contains('|') && text.contains("東京");
            special |= text.contains("\\r\\n");
        }
        assert!(
            special,
            "some values carry control characters and non-ASCII"
        );
        // 40/40/15/5 within generous bounds.
        assert!(counts[&EventKind::Threat] > 650 && counts[&EventKind::Threat] < 950);
        assert!(counts[&EventKind::SmishingAlert] > 50 && counts[&EventKind::SmishingAlert] < 170);
        assert!(
            created_time(1_793_866_364_318) == "2026-11-05T08:12:44.318+00:00",
            "time format"
        );
    }

    #[test]
    fn only_enabled_types_are_generated() {
        let events = history(1, &[EventKind::Audit, EventKind::SmishingAlert], 200);
        assert!(
            events
                .iter()
                .all(|e| matches!(e.kind, EventKind::Audit | EventKind::SmishingAlert))
        );
    }

    #[test]
    fn a_huge_threat_keeps_the_id_and_has_the_url_length() {
        let events = history(1, &EventKind::ALL, 1);
        let huge = Generator::huge_threat(&events[0], 100_000);
        let value: Value = serde_json::from_slice(&huge).expect("json");
        assert_eq!(value["id"], id::format(events[0].id));
        assert_eq!(
            value["threat"]["details"]["url"].as_str().map(str::len),
            Some(100_000)
        );
    }
}
