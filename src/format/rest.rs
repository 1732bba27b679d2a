//! The part of an event that a mapping did not place: what CEF writes under
//! `lookoutUnmapped` and OCSF under `unmapped`, so that no field is silently dropped
//! whatever Lookout adds to its events later.
//!
//! A mapping describes the paths it can place as a [`Tree`] (built once from its table).
//! Walking the event alongside the tree finds the rest without building anything: a key
//! the tree does not know is kept with its whole value, as received; a key the tree
//! knows is dropped when the record placed it ([`View::placed`]), else kept; objects are
//! followed into, and an object with nothing left in it is left out: its key is written
//! only when its first member is, so the event is walked once and a fully placed event
//! costs no output.
//!
//! This module knows JSON, not CEF or OCSF: the caller's [`Out`] does any escaping.

use super::value::{Out, write_json, write_json_str};
use crate::json::{Object, Value};
use std::cell::Cell;

/// The paths one mapping knows, as a tree of keys.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    /// The number of this path in the mapping's placed set, when the mapping places it.
    mark: Option<u8>,
    /// `smishing_alert.detections`: on a split record the array is replaced by the
    /// record's own detection (`docs/formats/leef.md#smishing-alerts-one-record-per-detection`), whose keys are `children`.
    detections: bool,
    children: Vec<(&'static str, Tree)>,
}

/// Which marked paths one record placed, and the smishing detection it stands for.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    /// Bit `n` set: the path marked `n` was placed.
    pub(crate) placed: u128,
    /// The record's detection, on a split smishing record.
    pub(crate) detection: Option<&'a Value<'a>>,
}

impl Tree {
    /// A tree of `paths`, each marked with its position in the iterator (at most 128).
    pub(crate) fn new<'p>(paths: impl IntoIterator<Item = &'p [&'static str]>) -> Self {
        let mut root = Tree::default();
        for (n, path) in paths.into_iter().enumerate() {
            let mark = u8::try_from(n).ok().filter(|n| *n < 128);
            assert!(mark.is_some(), "a mapping places at most 128 paths");
            root.node(path).mark = mark;
        }
        root
    }

    /// Marks `path` as the smishing detections, whose own keys are `detection_keys`.
    pub(crate) fn with_detections(
        mut self,
        path: &[&'static str],
        detection_keys: &[(&'static str, u8)],
    ) -> Self {
        let node = self.node(path);
        node.detections = true;
        for &(key, mark) in detection_keys {
            node.node(&[key]).mark = Some(mark);
        }
        self
    }

    fn node(&mut self, path: &[&'static str]) -> &mut Tree {
        let mut node = self;
        for key in path {
            let at = match node.children.iter().position(|(k, _)| k == key) {
                Some(at) => at,
                None => {
                    node.children.push((key, Tree::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[at].1;
        }
        node
    }

    #[inline]
    fn child(&self, key: &str) -> Option<&Tree> {
        // Length and first byte first: most keys differ there, without a memcmp call.
        let first = key.as_bytes().first();
        self.children
            .iter()
            .find(|(k, _)| k.len() == key.len() && k.as_bytes().first() == first && *k == key)
            .map(|(_, node)| node)
    }

    #[inline]
    fn is_placed(&self, view: &View<'_>) -> bool {
        self.mark.is_some_and(|n| view.placed & (1u128 << n) != 0)
    }
}

/// The number of members of `fields` (at any depth) the walk would have to consider:
/// a member the tree does not know, or knows as a path a mapping places, counts one; an
/// object under a known interior path counts its own members (an empty one, none, as
/// the walk leaves it out). A mapping that found this many values at its paths placed
/// everything, so it can skip the walk; counting compares only the keys of objects.
pub(crate) fn members(fields: &Object<'_>, tree: &Tree) -> usize {
    fields
        .iter()
        .map(|(key, value)| match value {
            Value::Object(child) => match tree.child(key) {
                Some(node) if node.mark.is_none() && !node.detections => members(child, node),
                _ => 1,
            },
            _ => 1,
        })
        .sum()
}

/// Writes the members of the rest of `fields` (`"key":value` pairs, comma-separated,
/// starting with a comma unless `*first`), as compact JSON, and clears `*first` if it
/// wrote any. On a split smishing record the `detections` array is written as
/// `detection`: what is left of the record's own detection.
pub(crate) fn write_members<O: Out>(
    out: &mut O,
    fields: &Object<'_>,
    tree: &Tree,
    view: &View<'_>,
    first: &mut bool,
) {
    let root = Level {
        key: "",
        parent: None,
        started: Cell::new(true),
        members: Cell::new(!*first),
    };
    walk(out, fields, tree, view, &root);
    *first = !root.members.get();
}

/// One object on the way down. Its `"key":{` is written only when its first member is
/// (so an object with nothing left costs no output and no taking back).
struct Level<'p> {
    key: &'p str,
    parent: Option<&'p Level<'p>>,
    /// Its `"key":{` has been written.
    started: Cell<bool>,
    /// It has a member already (the next one needs a comma).
    members: Cell<bool>,
}

impl Level<'_> {
    /// Writes the `"key":{` of this level and of every level above not yet started.
    fn start<O: Out>(&self, out: &mut O) {
        if self.started.get() {
            return;
        }
        if let Some(parent) = self.parent {
            parent.member(out, self.key);
        }
        out.put("{");
        self.started.set(true);
    }

    /// Starts a member of this level: the comma if needed, then `"key":`.
    fn member<O: Out>(&self, out: &mut O, key: &str) {
        self.start(out);
        if self.members.replace(true) {
            out.put(",");
        }
        write_json_str(out, key);
        out.put(":");
    }
}

fn walk<O: Out>(out: &mut O, fields: &Object<'_>, tree: &Tree, view: &View<'_>, level: &Level<'_>) {
    for (key, value) in fields.iter() {
        let Some(node) = tree.child(key) else {
            level.member(out, key);
            write_json(out, value);
            continue;
        };
        if node.is_placed(view) {
            continue;
        }
        let (key, value) = match (node.detections, view.detection) {
            (true, Some(detection)) => ("detection", detection),
            // Not split: the array was not placed, so all of it stays.
            (true, None) => {
                level.member(out, key);
                write_json(out, value);
                continue;
            }
            (false, _) => (key, value),
        };
        match value {
            Value::Object(child) if !node.children.is_empty() => {
                let below = Level {
                    key,
                    parent: Some(level),
                    started: Cell::new(false),
                    members: Cell::new(false),
                };
                walk(out, child, node, view, &below);
                if below.started.get() {
                    out.put("}");
                }
            }
            other => {
                level.member(out, key);
                write_json(out, other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rest(event: serde_json::Value, tree: &Tree, view: &View<'_>) -> String {
        let value = Value::from(&event);
        let fields = value.as_object().expect("an object");
        let mut out = String::from("{");
        let mut first = true;
        write_members(&mut out, fields, tree, view, &mut first);
        if first {
            return String::new();
        }
        out.push('}');
        out
    }

    #[test]
    fn placed_paths_are_dropped_and_the_rest_kept_as_received() {
        let tree = Tree::new([&["a"][..], &["b", "c"], &["b", "d"]]);
        let all = View {
            placed: u128::MAX,
            detection: None,
        };
        let event = json!({"a": 1, "b": {"c": 2, "d": [3], "e": {"f": null}}, "g": {}});
        assert_eq!(
            rest(event.clone(), &tree, &all),
            r#"{"b":{"e":{"f":null}},"g":{}}"#
        );
        // Only `b.c` placed: `a` and `b.d` stay.
        let some = View {
            placed: 0b010,
            detection: None,
        };
        assert_eq!(
            rest(event, &tree, &some),
            r#"{"a":1,"b":{"d":[3],"e":{"f":null}},"g":{}}"#
        );
        // Nothing left: nothing written.
        assert_eq!(rest(json!({"a": "x", "b": {"c": 1}}), &tree, &all), "");
        // A known object path holding a scalar is kept.
        assert_eq!(rest(json!({"b": 7}), &tree, &all), r#"{"b":7}"#);
    }

    #[test]
    fn members_counts_what_the_walk_considers() {
        let tree = Tree::new([&["a"][..], &["b", "c"], &["b", "d"]]);
        let count = |event: serde_json::Value| {
            let value = Value::from(&event);
            members(value.as_object().expect("an object"), &tree)
        };
        // a, b.c, b.e (unknown: one, whatever it holds), g (unknown empty object).
        assert_eq!(
            count(json!({"a": 1, "b": {"c": 2, "e": {"x": 1}}, "g": {}})),
            4
        );
        // An empty object under a known path is left out by the walk: none.
        assert_eq!(count(json!({"b": {}})), 0);
        // A known object path holding a scalar, and a table path holding an object.
        assert_eq!(count(json!({"b": 7, "a": {"deep": [1]}})), 2);
    }

    #[test]
    fn a_split_record_keeps_what_is_left_of_its_detection() {
        let tree = Tree::new([&["x"][..]]).with_detections(&["s", "detections"], &[("url", 1)]);
        let detection = Value::from(&json!({"url": "u", "extra": true}));
        let view = View {
            placed: u128::MAX,
            detection: Some(&detection),
        };
        let event = json!({"x": 1, "s": {"detections": [{"url": "u"}, {"url": "v"}], "guid": "g"}});
        assert_eq!(
            rest(event.clone(), &tree, &view),
            r#"{"s":{"detection":{"extra":true},"guid":"g"}}"#
        );
        // Not split: the array is not placed by anything, so it stays as received, even
        // when it is an object holding keys a detection has.
        let unsplit = View {
            placed: u128::MAX,
            detection: None,
        };
        assert_eq!(
            rest(event, &tree, &unsplit),
            r#"{"s":{"detections":[{"url":"u"},{"url":"v"}],"guid":"g"}}"#
        );
        let odd = json!({"s": {"detections": {"url": "u"}}});
        assert_eq!(
            rest(odd, &tree, &unsplit),
            r#"{"s":{"detections":{"url":"u"}}}"#
        );
    }
}
