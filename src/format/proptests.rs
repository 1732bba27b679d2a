//! Property tests (`docs/formats/leef.md#how-the-tests-check-it`): arbitrary JSON objects
//! and mutations of the example events never make the formatter panic, always give exactly
//! one record per event (or per smishing detection), and never a record with CR, LF, NUL or
//! an unescaped delimiter. Every format round-trips: LEEF values unescape to their
//! rendering, kv values unescape to the leaves, and the JSON parses back to the event plus
//! the added keys.
//!
//! CEF and OCSF (`check_cef`, `check_ocsf`): no raw control character, CEF header
//! fields that parse back to LEEF's EventID and sev, only the extension keys the
//! mapping defines (so no value can inject one), each unique, each value the
//! rendering of its field, and every leaf of the event either placed or found under
//! `lookoutUnmapped` / `unmapped`; every OCSF record valid JSON that validates against
//! the vendored OCSF 1.8.0 schema.

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
            "RESOLVED",
            "OPEN",
            "CREATED",
            "ANDROID",
            "x externalId=forged",
            "x\tsev=1",
            "x cs1=forged",
            "a|b",
            "trailing\\",
            "'single' \"double\"",
            "\u{1b}[31mred\u{1b}[0m",
            "line\u{2028}separator",
            "😀 emoji",
            "\r",
            "\n",
            "\u{7f}",
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

// ---------------------------------------------------------------------------------
// CEF and OCSF

/// Renders `fields` as CEF and OCSF and checks every property of both.
fn check_cef_ocsf(fields: &Map<String, Value>) -> Result<(), TestCaseError> {
    let event = MraEvent::from(fields);
    let mut leef = Vec::new();
    formatter(Format::Leef { delimiter: '\t' }).render(&event, &mut leef);
    let mut cef = Vec::new();
    formatter(Format::Cef).render(&event, &mut cef);
    prop_assert_eq!(cef.len(), leef.len());
    for (i, (record, leef)) in cef.iter().zip(&leef).enumerate() {
        let detection = detections(fields).map(|d| (i, &d[i]));
        check_cef(&record.text, &leef.text, fields, detection)?;
        prop_assert_eq!(record.severity, leef.severity);
    }
    let mut ocsf = Vec::new();
    formatter(Format::Ocsf).render(&event, &mut ocsf);
    prop_assert_eq!(ocsf.len(), 1);
    check_ocsf(&ocsf[0].text, fields)
}

fn check_cef(
    text: &str,
    leef: &str,
    fields: &Map<String, Value>,
    detection: Option<(usize, &Value)>,
) -> Result<(), TestCaseError> {
    use super::cef::{self, MAPPING, OWN_KEYS, Source};
    prop_assert!(
        !text.contains(|c: char| c.is_ascii_control()),
        "raw control character in {:?}",
        text
    );
    let parsed = cef::parse(text);
    prop_assert!(parsed.is_some(), "not CEF: {:?}", text);
    let cef::Parsed { header, pairs } = parsed.unwrap_or_else(|| unreachable!());
    prop_assert_eq!(
        &header[..4],
        &["CEF:0", "Lookout", "Mobile Risk API", "2.0"]
    );

    // EventClassID and Severity are LEEF's EventID and sev; controls became spaces.
    let leef_id = unescape(split_unescaped(leef, '|')[4], '|');
    let leef_id: String = leef_id
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if leef_id.chars().count() <= cef::CLASS_ID_MAX {
        prop_assert_eq!(&header[4], &leef_id);
    } else {
        prop_assert!(leef_id.starts_with(header[4].trim_end_matches('\\')));
    }
    prop_assert!(header[5].chars().count() <= cef::NAME_MAX);
    let sev = leef.split('\t').find_map(|a| a.strip_prefix("sev="));
    prop_assert_eq!(Some(header[6].as_str()), sev);

    // Only the mapping's keys, each once: nothing a value holds can start a key.
    let allowed: Vec<&str> = MAPPING.iter().map(|k| k.key).chain(OWN_KEYS).collect();
    let mut seen: Vec<&str> = Vec::new();
    for (key, _) in &pairs {
        prop_assert!(
            allowed.contains(&key.as_str()),
            "injected key {} in {:?}",
            key,
            text
        );
        prop_assert!(!seen.contains(&key.as_str()), "{} twice in {:?}", key, text);
        seen.push(key);
    }
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let cef_text = |s: String| -> String {
        s.chars()
            .map(|c| match c {
                '\r' | '\n' => c,
                c if c.is_ascii_control() => ' ',
                c => c,
            })
            .collect()
    };
    prop_assert_eq!(get("cs1"), Some("acme".to_string()));
    prop_assert_eq!(get("cs2Label"), Some(CUSTOM_KEY.to_string()));
    prop_assert_eq!(get("cs2"), Some(cef_text(CUSTOM_VALUE.to_string())));

    // Each value is the rendering of its field.
    let url = lookup(fields, &["threat", "details", "url"]).filter(|v| present(v));
    let original_url = detection
        .and_then(|(_, d)| d.get("original_url"))
        .filter(|v| present(v));
    for key in &MAPPING {
        let value = match key.source {
            Source::Path(path) => lookup(fields, path),
            Source::Detection(field) => detection.and_then(|(_, d)| d.get(field)),
            Source::DetectionIndex => {
                prop_assert_eq!(get(key.key), detection.map(|(i, _)| i.to_string()));
                continue;
            }
            Source::Request => url.or(original_url),
            Source::OriginalUrlBesideRequest => url.and(original_url),
        };
        let expected = value
            .filter(|v| present(v))
            .map(|v| cef_text(rendered(v, false)));
        prop_assert_eq!(get(key.key), expected, "{}", key.key);
    }

    // Every leaf is placed by a key or kept in lookoutUnmapped.
    let unmapped = get("lookoutUnmapped").map(|json| serde_json::from_str::<Value>(&json));
    let unmapped = match unmapped {
        Some(Ok(value)) => Some(value),
        Some(Err(e)) => return Err(TestCaseError::fail(format!("lookoutUnmapped: {e}"))),
        None => None,
    };
    let placed: Vec<Vec<&str>> = MAPPING
        .iter()
        .filter_map(|k| match k.source {
            Source::Path(path) => Some(path.to_vec()),
            Source::Request => Some(vec!["threat", "details", "url"]),
            _ => None,
        })
        .chain([vec!["id"], vec!["entName"]])
        .collect();
    let is_placed = |path: &[String]| placed.iter().any(|p| p.iter().eq(path.iter()));
    for (path, value) in leaves_of(fields, &is_placed) {
        if is_placed(&path) {
            continue;
        }
        if detection.is_some() && path.starts_with(&["smishing_alert".into(), "detections".into()])
        {
            continue; // split: the record's own detection is checked below
        }
        // CEF turns DEL into a space, also inside the JSON text.
        let cef_path: Vec<String> = path.iter().map(|k| cef_key(k)).collect();
        let expected = cef_json(value);
        prop_assert_eq!(
            json_at(unmapped.as_ref(), &cef_path).cloned(),
            expected,
            "leaf {:?} neither placed nor unmapped in {:?}",
            path,
            text
        );
    }
    if let Some((_, detection)) = detection {
        let known = [
            "alert_type",
            "category",
            "original_url",
            "impersonated_employee",
        ];
        let rest = json_at(
            unmapped.as_ref(),
            &["smishing_alert".into(), "detection".into()],
        );
        match detection {
            Value::Object(d) => {
                for (key, value) in d.iter().filter(|(k, _)| !known.contains(&k.as_str())) {
                    prop_assert_eq!(
                        rest.and_then(|r| r.get(cef_key(key))).cloned(),
                        cef_json(value)
                    );
                }
            }
            other => prop_assert_eq!(rest.cloned(), cef_json(other)),
        }
    }
    Ok(())
}

fn check_ocsf(text: &str, fields: &Map<String, Value>) -> Result<(), TestCaseError> {
    // As in Splunk json: JSON escapes every C0 control character; DEL and C1 controls
    // are legal raw in JSON and, as serde_json does, are written as they are.
    prop_assert!(
        !text.contains(|c: char| c < ' '),
        "raw control character in {:?}",
        text
    );
    let record: Result<Value, _> = serde_json::from_str(text);
    prop_assert!(record.is_ok(), "not JSON: {}", text);
    let record = record.unwrap_or_default();
    if let Err(problems) = super::ocsf_schema::validate(&record) {
        return Err(TestCaseError::fail(format!(
            "invalid OCSF 1.8.0:\n{problems}\n{text}"
        )));
    }
    let unmapped = record.get("unmapped");
    prop_assert_eq!(
        unmapped.and_then(|u| u.get("entName")),
        Some(&Value::from("acme"))
    );
    // A leaf the mapping cannot place is under `unmapped` as received; one it can
    // place is either there or written (as JSON) before `unmapped`.
    let mapped_part = text
        .rsplit_once(",\"unmapped\":")
        .map_or("", |(head, _)| head);
    let placeable = |path: &[String]| super::ocsf::PATHS.iter().any(|p| p.iter().eq(path.iter()));
    for (path, value) in leaves_of(fields, &placeable) {
        let kept = json_at(unmapped, &path).cloned() == Some(normalise(value));
        if placeable(&path) && path != ["entName"] {
            // An array may be placed item by item (detections as evidences).
            let items = match value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            let written = serde_json::to_string(value).unwrap_or_default();
            let all_written = items
                .iter()
                .all(|item| mapped_part.contains(&serde_json::to_string(item).unwrap_or_default()));
            prop_assert!(
                kept || all_written,
                "leaf {:?} = {} neither placed nor unmapped in {}",
                path,
                written,
                text
            );
        } else if path != ["entName"] {
            prop_assert!(kept, "leaf {:?} not under unmapped in {}", path, text);
        }
    }
    Ok(())
}

/// What a value under `lookoutUnmapped` reads back as: its compact JSON, with DEL
/// (the one control character JSON leaves raw) turned into a space by CEF.
fn cef_json(value: &Value) -> Option<Value> {
    let json = serde_json::to_string(value).ok()?;
    serde_json::from_str(&json.replace('\u{7f}', " ")).ok()
}

/// A key of a `lookoutUnmapped` object as it reads back (see [`cef_json`]).
fn cef_key(key: &str) -> String {
    match cef_json(&Value::from(key)) {
        Some(Value::String(key)) => key,
        _ => String::new(),
    }
}

/// The leaves of `fields` with their paths: every value that is not an object, every
/// empty object, and every value at a path `stop` accepts (whatever it holds).
fn leaves_of<'a>(
    fields: &'a Map<String, Value>,
    stop: &dyn Fn(&[String]) -> bool,
) -> Vec<(Vec<String>, &'a Value)> {
    fn walk<'a>(
        fields: &'a Map<String, Value>,
        prefix: &mut Vec<String>,
        stop: &dyn Fn(&[String]) -> bool,
        out: &mut Vec<(Vec<String>, &'a Value)>,
    ) {
        for (key, value) in fields {
            prefix.push(key.clone());
            match value {
                Value::Object(child) if !child.is_empty() && !stop(prefix) => {
                    walk(child, prefix, stop, out);
                }
                // An empty object at a path the mapping knows carries nothing.
                Value::Object(_) if !stop(prefix) => {}
                _ => out.push((prefix.clone(), value)),
            }
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    walk(fields, &mut Vec::new(), stop, &mut out);
    out
}

fn json_at<'a>(root: Option<&'a Value>, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(root?, |value, key| value.get(key))
}

/// A value as serde_json reads its own compact text, which is what the renderers write
/// (floats are not always exactly round-trip through its default parser, so the value
/// read back from a record is compared with this, not with the original).
fn normalise(value: &Value) -> Value {
    serde_json::to_string(value)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cef_and_ocsf_arbitrary_objects(fields in arb_object()) {
        check_cef_ocsf(&fields)?;
    }

    #[test]
    fn cef_and_ocsf_mutated_examples(mut fields in example(), mutations in arb_mutations()) {
        mutate(&mut fields, mutations);
        check_cef_ocsf(&fields)?;
    }

    #[test]
    fn cef_and_ocsf_examples_as_is(fields in example()) {
        check_cef_ocsf(&fields)?;
    }

    #[test]
    fn cef_values_round_trip(s in arb_string()) {
        let escaped = super::cef::escape_value(&s);
        prop_assert!(!escaped.contains(|c: char| c.is_ascii_control()));
        let expected: String = s
            .chars()
            .map(|c| match c {
                '\r' | '\n' => c,
                c if c.is_ascii_control() => ' ',
                c => c,
            })
            .collect();
        prop_assert_eq!(super::cef::unescape_value(&escaped), expected);
    }
}
