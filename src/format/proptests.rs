//! Property tests (`leef-mapping.md` §6.6, §8): arbitrary JSON objects and mutations of
//! the example events never make the formatter panic, always give exactly one record per
//! event (or per smishing detection), and never a record with CR, LF, NUL or an
//! unescaped delimiter. Every format round-trips: LEEF values unescape to their §6.2
//! rendering, kv values unescape to the leaves, and the JSON parses back to the event
//! plus the added keys.

use super::leef::{MAPPING, NEW_ATTRIBUTES, Source};
use super::tests::{golden_events, split_unescaped};
use super::value::{Escaper, Out, is_present, unescape, write_value};
use super::*;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Number, Value};

const CUSTOM_KEY: &str = "siteId";
const CUSTOM_VALUE: &str = "lon^1|\"x\"\t\\";

/// Keys the formatter branches on, so random objects hit the interesting paths.
const KEYS: &[&str] = &[
    "type",
    "change_type",
    "created_time",
    "id",
    "entName",
    "threat",
    "classifications",
    "severity",
    "status",
    "details",
    "network",
    "application_name",
    "package_name",
    "vpn_present",
    "connected",
    "device",
    "activation_status",
    "security_status",
    "client",
    "package_version",
    "audit",
    "smishing_alert",
    "detections",
    "detection",
    "alert_type",
    "category",
    "guid",
    CUSTOM_KEY,
];

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_ ]{0,8}",
        any::<String>(),
        "[\\x00-\\x7f]{0,8}",
        select(vec![
            "THREAT",
            "DEVICE",
            "AUDIT",
            "SMISHING_ALERT",
            "FRAUD_DETECTION",
            "DEACTIVATED",
            "HIGH",
            "2026-11-05T08:12:44.318+00:00",
            "2026-11-05T08:12:44Z",
            "\t",
            "|",
            "^",
            "\\",
            "\\t",
            "=",
            "\"",
            "\r\n",
            "\0",
            "",
        ])
        .prop_map(str::to_string),
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![3 => select(KEYS).prop_map(str::to_string), 1 => arb_string()]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

fn arb_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((arb_key(), arb_json()), 0..10)
        .prop_map(|pairs| pairs.into_iter().collect())
}

/// One edit of an event: at the `Index`-th node, replace it, delete it, or add a key.
fn arb_mutations() -> impl Strategy<Value = Vec<(Index, u8, String, Value)>> {
    prop::collection::vec((any::<Index>(), 0..3u8, arb_key(), arb_json()), 1..5)
}

fn mutate(fields: &mut Map<String, Value>, mutations: Vec<(Index, u8, String, Value)>) {
    for (index, op, key, value) in mutations {
        let mut paths = Vec::new();
        collect_paths(fields, &mut Vec::new(), &mut paths);
        if paths.is_empty() {
            fields.insert(key, value);
            continue;
        }
        let path = &paths[index.index(paths.len())];
        let (last, parent) = path.split_last().expect("paths are non-empty");
        let Some(parent) = object_at(fields, parent) else {
            continue;
        };
        match op {
            0 => {
                parent.insert(last.clone(), value);
            }
            1 => {
                parent.shift_remove(last);
            }
            _ => match parent.get_mut(last) {
                Some(Value::Object(child)) => {
                    child.insert(key, value);
                }
                Some(Value::Array(items)) => items.push(value),
                _ => {
                    parent.insert(key, value);
                }
            },
        }
    }
}

fn collect_paths(
    fields: &Map<String, Value>,
    prefix: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    for (key, value) in fields {
        prefix.push(key.clone());
        out.push(prefix.clone());
        if let Value::Object(child) = value {
            collect_paths(child, prefix, out);
        }
        prefix.pop();
    }
}

fn object_at<'a>(
    fields: &'a mut Map<String, Value>,
    path: &[String],
) -> Option<&'a mut Map<String, Value>> {
    let mut current = fields;
    for key in path {
        current = current.get_mut(key)?.as_object_mut()?;
    }
    Some(current)
}

fn example() -> impl Strategy<Value = Map<String, Value>> {
    let events: Vec<Map<String, Value>> = golden_events()
        .map(|g| serde_json::from_str(g.event).expect("example events are valid JSON"))
        .collect();
    select(events)
}

fn delimiters() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => select(vec!['\t', '^', '|']),
        1 => select("!\"#$%&'()*+,-./:;<>?@[]^_{|}~`".chars().collect::<Vec<_>>()),
    ]
}

fn formatter(format: Format) -> Formatter {
    Formatter::new(
        format,
        "acme",
        Some((CUSTOM_KEY.to_string(), CUSTOM_VALUE.to_string())),
    )
}

/// Renders `fields` in every format and checks every property.
fn check_all(fields: &Map<String, Value>, delimiter: char) -> Result<(), TestCaseError> {
    let event = MraEvent::from(fields);
    for format in [
        Format::Leef { delimiter },
        Format::SplunkJson,
        Format::SplunkKv,
    ] {
        let mut out = Vec::new();
        formatter(format).render(&event, &mut out);
        let expected = match format {
            Format::Leef { .. } => detections(fields).map_or(1, <[Value]>::len),
            _ => 1,
        };
        prop_assert_eq!(out.len(), expected);
        for (i, message) in out.iter().enumerate() {
            prop_assert!(
                !message.text.contains(['\r', '\n', '\0']),
                "raw CR, LF or NUL in {:?}",
                message.text
            );
            prop_assert!(message.severity <= 7);
            match format {
                Format::Leef { delimiter } => {
                    let detection = detections(fields).map(|d| (i, &d[i]));
                    check_leef(&message.text, delimiter, fields, detection)?;
                }
                Format::SplunkJson => check_json(&message.text, fields)?,
                Format::SplunkKv => check_kv(&message.text, fields)?,
                // Not in the list above: their own property tests check these.
                Format::Cef | Format::Ocsf => prop_assert!(false, "not checked here"),
            }
        }
    }
    Ok(())
}

fn detections(fields: &Map<String, Value>) -> Option<&[Value]> {
    if fields.get("type").and_then(Value::as_str) != Some("SMISHING_ALERT") {
        return None;
    }
    fields
        .get("smishing_alert")?
        .get("detections")?
        .as_array()
        .map(Vec::as_slice)
        .filter(|d| !d.is_empty())
}

fn rendered(value: &Value, one_zero: bool) -> String {
    let mut out = String::new();
    write_value(&mut out, &crate::json::Value::from(value), one_zero);
    out
}

fn present(value: &Value) -> bool {
    is_present(&crate::json::Value::from(value))
}

fn lookup<'a>(fields: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(fields.get(*first)?, |v, key| v.as_object()?.get(*key))
}

fn check_leef(
    text: &str,
    delimiter: char,
    fields: &Map<String, Value>,
    detection: Option<(usize, &Value)>,
) -> Result<(), TestCaseError> {
    let rest = text.strip_prefix("LEEF:2.0|Lookout|MRAv2 Client|2.0|");
    prop_assert!(rest.is_some(), "header: {}", text);
    let rest = rest.unwrap_or_default();
    let header = split_unescaped(rest, '|');
    let event_id = header[0];
    // The attributes start after the EventID and, unless TAB, the delimiter field.
    let mut attrs = &rest[event_id.len() + 1..];
    match delimiter {
        '\t' => {}
        '|' => {
            prop_assert!(attrs.starts_with("0x7C|"));
            attrs = &attrs[5..];
        }
        d => {
            let field = format!("{d}|");
            prop_assert!(attrs.starts_with(&field), "delimiter field in {}", text);
            attrs = &attrs[field.len()..];
        }
    }

    // The order every key must follow, and the keys whose value is one path.
    let order: Vec<&str> = ["cat", "devTime", "sev"]
        .into_iter()
        .chain(MAPPING.iter().chain(NEW_ATTRIBUTES.iter()).map(|a| a.key))
        .chain([CUSTOM_KEY])
        .collect();
    let mut position = 0;
    let mut category = None;
    let mut seen = Vec::new();
    for pair in split_unescaped(attrs, delimiter) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(TestCaseError::fail(format!(
                "no `=` in {pair:?} of {text:?}"
            )));
        };
        let Some(offset) = order[position..].iter().position(|k| *k == key) else {
            return Err(TestCaseError::fail(format!(
                "{key} out of order in {text:?}"
            )));
        };
        position += offset + 1;
        prop_assert!(
            !value.contains(|c: char| c.is_ascii_control()),
            "raw control in {:?}",
            value
        );
        let plain = unescape(value, delimiter);
        // Escaping is canonical: escaping the unescaped value gives the value back.
        let mut again = String::new();
        Escaper::new(&mut again, delimiter).put(&plain);
        prop_assert_eq!(&again, value);
        if key == "cat" {
            category = Some(plain.clone());
        }
        seen.push((key.to_string(), plain));
    }

    // EventID = <type>,<cat>, header-escaped.
    let ty = match detection.and_then(|(_, d)| d.get("alert_type")?.as_str()) {
        Some("FRAUD_DETECTION") => "FRAUD_DETECTION",
        _ => fields
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN"),
    };
    prop_assert_eq!(
        unescape(event_id, '|'),
        format!("{ty},{}", category.unwrap_or_default())
    );

    // Round trip: every single-path attribute is there exactly when its value renders,
    // and unescapes to that rendering.
    let get = |key: &str| {
        seen.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    for attribute in MAPPING.iter().chain(NEW_ATTRIBUTES.iter()) {
        if matches!(attribute.key, "lookoutEventType" | "latestOSVersion") {
            continue; // two paths share these keys
        }
        let expected = match attribute.source {
            Source::EntityName => Some("acme".to_string()),
            Source::Path(path) => lookup(fields, path)
                .filter(|v| present(v))
                .map(|v| rendered(v, false)),
            Source::OneZero(path) => lookup(fields, path)
                .filter(|v| present(v))
                .map(|v| rendered(v, true)),
            Source::Composite { .. } => continue,
            Source::DetectionIndex => detection.map(|(i, _)| i.to_string()),
            Source::Detection(field) => detection
                .and_then(|(_, d)| d.get(field))
                .filter(|v| present(v))
                .map(|v| rendered(v, false)),
        };
        prop_assert_eq!(
            get(attribute.key),
            expected.as_deref().into_iter().collect::<Vec<_>>(),
            "{}",
            attribute.key
        );
    }
    prop_assert_eq!(get(CUSTOM_KEY), vec![CUSTOM_VALUE]);
    Ok(())
}

/// The event with the Splunk additions, as a map that keeps insertion order.
fn with_additions(fields: &Map<String, Value>) -> Map<String, Value> {
    let mut expected = fields.clone();
    expected.insert("entName".to_string(), Value::from("acme"));
    if !expected.contains_key("type") {
        expected.insert("type".to_string(), Value::from("UNKNOWN"));
    }
    expected.insert(CUSTOM_KEY.to_string(), Value::from(CUSTOM_VALUE));
    expected
}

fn check_json(text: &str, fields: &Map<String, Value>) -> Result<(), TestCaseError> {
    let expected = with_additions(fields);
    // Byte for byte what serde_json's compact writer gives.
    let compact = serde_json::to_string(&expected).unwrap_or_default();
    prop_assert_eq!(compact.as_str(), text);
    // And it parses back to the event plus the added keys. serde_json's default float
    // parser is not exactly round-trip, so both sides go through it.
    let parsed: Result<Value, _> = serde_json::from_str(text);
    prop_assert!(parsed.is_ok(), "not JSON: {}", text);
    let reference: Result<Value, _> = serde_json::from_str(&compact);
    prop_assert_eq!(parsed.unwrap_or_default(), reference.unwrap_or_default());
    Ok(())
}

fn check_kv(text: &str, fields: &Map<String, Value>) -> Result<(), TestCaseError> {
    let mut expected = Vec::new();
    for (key, value) in &with_additions(fields) {
        leaves(&sanitise(key), value, &mut expected);
    }
    let parsed = parse_kv(text);
    prop_assert!(parsed.is_some(), "unparseable kv: {}", text);
    prop_assert_eq!(parsed.unwrap_or_default(), expected);
    Ok(())
}

fn sanitise(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn leaves(path: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                leaves(&format!("{path}.{}", sanitise(key)), child, out);
            }
        }
        leaf if present(leaf) => out.push((path.to_string(), rendered(leaf, false))),
        _ => {}
    }
}

/// Parses `key="value" key="value"`, unescaping the values.
fn parse_kv(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let eq = rest.find("=\"")?;
        let key = &rest[..eq];
        if key.contains([' ', '"']) {
            return None;
        }
        let body = &rest[eq + 2..];
        let mut escaped = false;
        let end = body.char_indices().find_map(|(i, c)| {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                return Some(i);
            }
            None
        })?;
        let value = &body[..end];
        if value.contains(|c: char| c.is_ascii_control()) {
            return None;
        }
        out.push((key.to_string(), unescape(value, '"')));
        rest = &body[end + 1..];
        if !rest.is_empty() {
            rest = rest.strip_prefix(' ')?;
        }
    }
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_objects(fields in arb_object(), delimiter in delimiters()) {
        check_all(&fields, delimiter)?;
    }

    #[test]
    fn mutated_examples(mut fields in example(), mutations in arb_mutations(), delimiter in delimiters()) {
        mutate(&mut fields, mutations);
        check_all(&fields, delimiter)?;
    }

    #[test]
    fn examples_as_is(fields in example(), delimiter in delimiters()) {
        check_all(&fields, delimiter)?;
    }

    #[test]
    fn strings_round_trip_through_leef(s in arb_string(), delimiter in delimiters()) {
        let mut out = String::new();
        Escaper::new(&mut out, delimiter).put(&s);
        prop_assert!(!out.contains(['\r', '\n', '\0']));
        prop_assert!(split_unescaped(&out, delimiter).len() == 1);
        prop_assert_eq!(unescape_leef(&out, delimiter), s);
    }
}
