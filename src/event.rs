//! The words every stage shares: an MRA v2 event, a batch of them, and a stream position.
//!
//! Events are kept as the JSON object received (key order preserved, unknown fields
//! kept) with the few envelope fields that stages branch on pulled out once. Nothing
//! here does I/O.

use crate::json::{Object, Value};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// One event object exactly as received, decoded into a tree that borrows from the
/// event's JSON text (see [`crate::json`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MraEvent<'a> {
    /// The whole event object, key order as received.
    pub fields: Object<'a>,
}

impl<'a> MraEvent<'a> {
    /// Wraps a decoded JSON object.
    pub fn new(fields: Object<'a>) -> Self {
        Self { fields }
    }

    /// The event's `id`, when it is a string.
    pub fn id(&self) -> Option<&str> {
        self.fields.get("id").and_then(Value::as_str)
    }

    /// The event's `type` (`THREAT`, `DEVICE`, …), when it is a string.
    pub fn event_type(&self) -> Option<&str> {
        self.fields.get("type").and_then(Value::as_str)
    }

    /// The event's `created_time` as received, when it is a string.
    pub fn created_time(&self) -> Option<&str> {
        self.fields.get("created_time").and_then(Value::as_str)
    }
}

/// An owned copy of an event built with `serde_json` (tests, benchmarks).
impl From<&serde_json::Map<String, serde_json::Value>> for MraEvent<'static> {
    fn from(fields: &serde_json::Map<String, serde_json::Value>) -> Self {
        Self::new(Object::from(fields))
    }
}

/// One event as it travels from the stream to the writer: the object's JSON text as
/// received, and its `id`. Decoding into an [`MraEvent`] waits until the event is
/// formatted, one at a time: a decoded event takes several times the memory of its
/// text, and batches wait in a queue per tenant (many tenants, long backfills).
///
/// The text is not copied out of the message it arrived in: every event of a batch
/// shares that message's `data` string and keeps its place in it (one allocation per
/// batch instead of two or three per event).
#[derive(Clone)]
pub struct RawEvent {
    /// The `data` of the message the event arrived in.
    text: Arc<String>,
    /// Where the event's object is in `text`.
    json: Range<usize>,
    id: RawId,
}

/// Where a [`RawEvent`]'s `id` is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawId {
    /// No `id`, or one that is not a string.
    None,
    /// In the text, between these bytes (a JSON string without escapes).
    At(Range<usize>),
    /// A JSON string that had escapes, unescaped.
    Unescaped(Box<str>),
}

impl RawEvent {
    /// An event of its own: a copy of the JSON text of one object whose `id` was
    /// already read (tests, benchmarks, events built in code).
    pub fn new(json: &str, id: Option<&str>) -> Self {
        Self {
            text: Arc::new(json.to_owned()),
            json: 0..json.len(),
            id: id.map_or(RawId::None, |id| RawId::Unescaped(id.into())),
        }
    }

    /// The event whose object is `text[json]`. The caller found `json` and `id` in
    /// `text`; a range that does not lie on character boundaries in `text` reads as
    /// empty text (and decodes as an error), never panics.
    pub(crate) fn within(text: &Arc<String>, json: Range<usize>, id: RawId) -> Self {
        Self {
            text: Arc::clone(text),
            json,
            id,
        }
    }

    /// The event's `id`, when it is a string.
    pub fn id(&self) -> Option<&str> {
        match &self.id {
            RawId::None => None,
            RawId::At(span) => self.text.get(span.clone()),
            RawId::Unescaped(id) => Some(id),
        }
    }

    /// The JSON text as received.
    pub fn json(&self) -> &str {
        self.text.get(self.json.clone()).unwrap_or_default()
    }

    /// Decodes the object (key order as received), borrowing from this event's text.
    pub fn decode(&self) -> Result<MraEvent<'_>, serde_json::Error> {
        Object::parse(self.json()).map(MraEvent::new)
    }
}

impl PartialEq for RawEvent {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json() && self.id() == other.id()
    }
}

impl fmt::Debug for RawEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawEvent")
            .field("id", &self.id())
            .field("json", &self.json())
            .finish()
    }
}

/// The event types the stream can be asked for, in the fixed order of the `types`
/// query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    Threat,
    Device,
    Audit,
    SmishingAlert,
}

impl EventType {
    /// Every type, in query order.
    pub const ALL: [EventType; 4] = [
        EventType::Threat,
        EventType::Device,
        EventType::Audit,
        EventType::SmishingAlert,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Threat => "THREAT",
            EventType::Device => "DEVICE",
            EventType::Audit => "AUDIT",
            EventType::SmishingAlert => "SMISHING_ALERT",
        }
    }

    /// Parses a wire name (exact, upper case).
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An opaque stream position: an event id (usually a UUIDv7). Compared only for
/// equality, never parsed or ordered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position(String);

impl Position {
    /// Wraps an id. `0` and the empty string mean "no position" and give `None`.
    pub fn new(id: impl Into<String>) -> Option<Self> {
        let id = id.into();
        if id.is_empty() || id == "0" {
            None
        } else {
            Some(Self(id))
        }
    }

    /// The id as sent back to the server.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An item of a batch that could not be turned into an event, kept for the dead-letter
/// file.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Short reason, e.g. `invalid json: expected value at line 1 column 1`.
    pub reason: String,
    /// The raw text that was received (for a record a destination refused: what was
    /// sent to it).
    pub raw: String,
    /// The destination that refused the record (`None`: it was never sent anywhere,
    /// e.g. undecodable input).
    pub destination: Option<String>,
}

/// One `events` message of the stream, decoded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// Where the stream stands after this batch (§4.4 of the API notes): the message's
    /// `id:` if it carried one, else the last event's `id`, else `None` (unchanged).
    pub position: Option<Position>,
    /// The events, in stream order.
    pub events: Vec<RawEvent>,
    /// Items (or the whole message) that could not be decoded.
    pub dead_letters: Vec<DeadLetter>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_empty_are_no_position() {
        assert_eq!(Position::new("0"), None);
        assert_eq!(Position::new(""), None);
        assert_eq!(
            Position::new("01a1aac4-759e-7c9d-bf7a-861b26a9b1a3").map(|p| p.to_string()),
            Some("01a1aac4-759e-7c9d-bf7a-861b26a9b1a3".to_string())
        );
    }

    #[test]
    fn a_raw_event_decodes_with_its_key_order() {
        let raw = RawEvent::new(
            r#"{"type":"THREAT","id":"a1","x":{"b":1,"a":2}}"#,
            Some("a1"),
        );
        assert_eq!(raw.id(), Some("a1"));
        let event = raw.decode().unwrap();
        assert_eq!(event.id(), Some("a1"));
        let keys: Vec<_> = event.fields.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["type", "id", "x"]);
        assert!(RawEvent::new("[1]", None).decode().is_err());
    }

    #[test]
    fn event_types_round_trip_in_query_order() {
        let names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, ["THREAT", "DEVICE", "AUDIT", "SMISHING_ALERT"]);
        for t in EventType::ALL {
            assert_eq!(EventType::from_wire(t.as_str()), Some(t));
        }
        assert_eq!(EventType::from_wire("threat"), None);
    }
}
