//! A JSON value tree that borrows from the text it was parsed from: the decoded form of
//! one event, read by the formatters and dropped right after.
//!
//! `serde_json::Value` owns every string and keeps each object in a hash map; for an
//! event that lives for one render, building and freeing those allocations cost more
//! than the rendering itself (half of the connector's CPU in the end-to-end profile).
//! Here a string is a slice of the event's text unless it had escapes, and an object is
//! a vector of entries in the order received, so decoding an event allocates one
//! vector per object or array and nothing per string.
//!
//! The tree means what `serde_json::Value` with `preserve_order` means, so formatting
//! did not change: numbers are `serde_json::Number` (same parsing, same `Display`), and
//! a key that appears twice keeps its first position and its last value. Lookups scan
//! the entries, which is faster than hashing for the small objects events are made of.
//! Parsing itself is serde_json's (with its nesting limit); this module only decides
//! what the parsed values are stored in.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// One JSON value. Strings borrow from the parsed text where they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Object<'a>),
}

/// A JSON object: its entries in the order received, each key once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object<'a> {
    entries: Vec<(Cow<'a, str>, Value<'a>)>,
}

impl<'a> Value<'a> {
    /// The string, when this is one.
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The items, when this is an array.
    #[inline]
    pub fn as_array(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The object, when this is one.
    #[inline]
    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Value::Object(object) => Some(object),
            _ => None,
        }
    }

    /// `self[key]` when this is an object holding `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.as_object()?.get(key)
    }
}

impl<'a> Object<'a> {
    /// An object of `entries`; for a key given more than once, the first position and
    /// the last value are kept (what `serde_json::Map` with `preserve_order` and a
    /// Python `dict` do).
    pub fn from_entries(entries: Vec<(Cow<'a, str>, Value<'a>)>) -> Self {
        if has_duplicate_keys(&entries) {
            Self {
                entries: merge_duplicate_keys(entries),
            }
        } else {
            Self { entries }
        }
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v)
    }

    /// Whether the object holds `key`.
    #[inline]
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The entries, in the order received.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value<'a>)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Parses the JSON text of one object. Anything but an object is an error.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Objects up to this size are checked for duplicate keys pair by pair; larger ones
/// with a hash set, so that no input makes the check quadratic.
const PAIRWISE_LIMIT: usize = 16;

fn has_duplicate_keys(entries: &[(Cow<'_, str>, Value<'_>)]) -> bool {
    if entries.len() <= PAIRWISE_LIMIT {
        entries
            .iter()
            .enumerate()
            .any(|(i, (key, _))| entries[i + 1..].iter().any(|(other, _)| other == key))
    } else {
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        !entries.iter().all(|(key, _)| seen.insert(key.as_ref()))
    }
}

#[cold]
fn merge_duplicate_keys<'a>(
    entries: Vec<(Cow<'a, str>, Value<'a>)>,
) -> Vec<(Cow<'a, str>, Value<'a>)> {
    let mut merged: Vec<(Cow<'a, str>, Value<'a>)> = Vec::with_capacity(entries.len());
    let mut index: HashMap<Cow<'a, str>, usize> = HashMap::with_capacity(entries.len());
    for (key, value) in entries {
        match index.get(&key) {
            Some(&at) => merged[at].1 = value,
            None => {
                index.insert(key.clone(), merged.len());
                merged.push((key, value));
            }
        }
    }
    merged
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        Deserialize::deserialize(d)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value<'de>, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value<'de>, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value<'de>, E> {
        // JSON text has no NaN or infinity; serde_json's own Value does the same.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value<'de>, A::Error> {
        ObjectVisitor.visit_map(map).map(Value::Object)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Object<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(Key(key)) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Object::from_entries(entries))
    }
}

/// An object key, borrowed when it had no escapes (`Cow<str>`'s own `Deserialize`
/// always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// An owned copy of a `serde_json` value (tests, benchmarks, and events built in code).
impl From<&serde_json::Value> for Value<'static> {
    fn from(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.clone()),
            serde_json::Value::String(s) => Value::String(Cow::Owned(s.clone())),
            serde_json::Value::Array(items) => {
                Value::Array(items.iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => Value::Object(Object::from(map)),
        }
    }
}

impl From<&serde_json::Map<String, serde_json::Value>> for Object<'static> {
    fn from(map: &serde_json::Map<String, serde_json::Value>) -> Self {
        Object {
            entries: map
                .iter()
                .map(|(k, v)| (Cow::Owned(k.clone()), Value::from(v)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(text: &str) -> Object<'_> {
        Object::parse(text).expect("test text is a JSON object")
    }

    #[test]
    fn strings_and_keys_borrow_unless_escaped() {
        let text = r#"{"plain":"abc","esc\u0061ped":"a\"b","n":[1,"x"]}"#;
        let object = parse(text);
        let keys: Vec<_> = object.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["plain", "escaped", "n"]);
        assert!(matches!(object.entries[0].0, Cow::Borrowed(_)));
        assert!(matches!(object.entries[1].0, Cow::Owned(_)));
        assert!(matches!(
            object.get("plain"),
            Some(Value::String(Cow::Borrowed("abc")))
        ));
        assert_eq!(object.get("escaped").and_then(Value::as_str), Some("a\"b"));
        assert!(matches!(
            object.get("n").and_then(Value::as_array),
            Some([Value::Number(_), Value::String(Cow::Borrowed("x"))])
        ));
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_last_value() {
        let object = parse(r#"{"a":1,"b":2,"a":3}"#);
        let entries: Vec<_> = object.iter().map(|(k, v)| (k, v.clone())).collect();
        assert_eq!(
            entries,
            [
                ("a", Value::Number(3.into())),
                ("b", Value::Number(2.into()))
            ]
        );
        // The same with more keys than the pairwise check covers.
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        text.push_str("\"k7\":\"last\"}");
        let object = parse(&text);
        assert_eq!(object.len(), 40);
        assert_eq!(object.iter().nth(7).map(|(k, _)| k), Some("k7"));
        assert_eq!(object.get("k7").and_then(Value::as_str), Some("last"));
    }

    #[test]
    fn only_an_object_parses_as_an_object() {
        for text in ["[1]", "\"x\"", "1", "null", "{", "{\"a\":}", "{} x"] {
            assert!(Object::parse(text).is_err(), "{text}");
        }
        let nested = format!(
            "{}{}",
            "{\"a\":".repeat(200),
            "1".to_owned() + &"}".repeat(200)
        );
        assert!(
            Object::parse(&nested).is_err(),
            "serde_json's nesting limit holds"
        );
    }

    proptest! {
        /// The tree holds what `serde_json::Value` (with `preserve_order`) holds, for any
        /// JSON text: same keys in the same order, same values, same number text.
        #[test]
        fn the_tree_means_what_serde_json_means(value in arb_json()) {
            let text = serde_json::to_string(&json!({ "v": value })).expect("serialises");
            let ours = parse(&text);
            let theirs: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).expect("parses");
            prop_assert_eq!(ours, Object::from(&theirs));
        }
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "\\PC{0,8}|[\"\\\\\u{0}-\u{1f}]{0,4}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::vec(("[a-c]{1,2}", inner), 0..6)
                    .prop_map(|entries| serde_json::Value::Object(entries.into_iter().collect())),
            ]
        })
    }
}
