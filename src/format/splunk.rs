//! Splunk output (`docs/formats/splunk.md`): the event as one compact JSON object, or as
//! `key="value"` pairs of its leaves. One record per event; smishing alerts are not
//! split.
//!
//! Both modes see the event with the keys of
//! `docs/formats/splunk.md#keys-added-to-every-event` added (`Additions`): `entName`
//! replaced where it stands or appended, `type: "UNKNOWN"` when there is none, and the
//! custom identifier. The event itself is never copied: the writers walk it and
//! substitute or append as they go.

use super::value::{Escaper, Out, is_present, write_json, write_json_str, write_value};
use crate::json::{Object, Value};

/// The keys added to an event, with the semantics of assigning them in order to a
/// dictionary that keeps insertion order: a key the event already has keeps its place
/// and takes the new value; the others are appended in the order first assigned.
pub(crate) struct Additions<'a> {
    entries: [Option<(&'a str, &'a str)>; 3],
}

impl<'a> Additions<'a> {
    /// The additions for an event: `entName`, then `type` if absent, then the custom
    /// identifier (already filtered by the caller).
    pub(crate) fn new(
        fields: &Object<'_>,
        entity_name: &'a str,
        custom_identifier: Option<(&'a str, &'a str)>,
    ) -> Self {
        let mut additions = Self { entries: [None; 3] };
        additions.assign("entName", entity_name);
        if !fields.contains_key("type") {
            additions.assign("type", "UNKNOWN");
        }
        if let Some((key, value)) = custom_identifier {
            additions.assign(key, value);
        }
        additions
    }

    fn assign(&mut self, key: &'a str, value: &'a str) {
        for entry in self.entries.iter_mut() {
            match entry {
                Some((k, v)) if *k == key => {
                    *v = value;
                    return;
                }
                Some(_) => {}
                None => {
                    *entry = Some((key, value));
                    return;
                }
            }
        }
    }

    /// The value assigned to `key`, if any.
    #[inline]
    fn get(&self, key: &str) -> Option<&'a str> {
        self.entries
            .iter()
            .flatten()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// The assigned keys the event does not have, in order.
    fn appended<'s>(
        &'s self,
        fields: &'s Object<'_>,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 's {
        self.entries
            .iter()
            .flatten()
            .copied()
            .filter(|(k, _)| !fields.contains_key(k))
    }
}

/// Undoes the escaping of one kv value (the text between the quotes).
pub fn unescape_kv(value: &str) -> String {
    super::value::unescape(value, '"')
}

/// `json` mode (`docs/formats/splunk.md#json-mode`): the event as received, compact, with
/// the additions.
pub(crate) fn render_json(fields: &Object<'_>, additions: &Additions<'_>) -> String {
    let mut text = String::with_capacity(1536);
    text.push('{');
    let mut first = true;
    let mut comma = |text: &mut String| {
        if !std::mem::take(&mut first) {
            text.push(',');
        }
    };
    for (key, value) in fields.iter() {
        comma(&mut text);
        write_json_str(&mut text, key);
        text.push(':');
        match additions.get(key) {
            Some(added) => write_json_str(&mut text, added),
            None => write_json(&mut text, value),
        }
    }
    for (key, value) in additions.appended(fields) {
        comma(&mut text);
        write_json_str(&mut text, key);
        text.push(':');
        write_json_str(&mut text, value);
    }
    text.push('}');
    text
}

/// `kv` mode (`docs/formats/splunk.md#kv-mode`): `key="value"` per leaf, dotted paths depth
/// first, added keys last.
pub(crate) fn render_kv(fields: &Object<'_>, additions: &Additions<'_>) -> String {
    let mut kv = Kv {
        text: String::with_capacity(1536),
        path: String::with_capacity(64),
    };
    for (key, value) in fields.iter() {
        kv.path.clear();
        push_sanitised(&mut kv.path, key);
        match additions.get(key) {
            Some(added) => kv.pair(added),
            None => kv.walk(value),
        }
    }
    for (key, value) in additions.appended(fields) {
        kv.path.clear();
        push_sanitised(&mut kv.path, key);
        kv.pair(value);
    }
    kv.text
}

/// The kv writer: the output and the dotted path of the current value.
struct Kv {
    text: String,
    path: String,
}

impl Kv {
    /// Writes the leaves under the current path.
    fn walk(&mut self, value: &Value<'_>) {
        match value {
            Value::Object(fields) => {
                let len = self.path.len();
                for (key, child) in fields.iter() {
                    self.path.push('.');
                    push_sanitised(&mut self.path, key);
                    self.walk(child);
                    self.path.truncate(len);
                }
            }
            leaf if is_present(leaf) => {
                self.begin();
                write_value(&mut Escaper::new(&mut self.text, '"'), leaf, false);
                self.text.push('"');
            }
            _ => {}
        }
    }

    /// Writes `<path>="<value>"` for an added string.
    fn pair(&mut self, value: &str) {
        self.begin();
        Escaper::new(&mut self.text, '"').put(value);
        self.text.push('"');
    }

    fn begin(&mut self) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(&self.path);
        self.text.push_str("=\"");
    }
}

/// Appends `key` with every character outside `[A-Za-z0-9_.-]` replaced by `_`.
fn push_sanitised(path: &mut String, key: &str) {
    let clean = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if key.chars().all(clean) {
        path.push_str(key);
    } else {
        path.extend(key.chars().map(|c| if clean(c) { c } else { '_' }));
    }
}
