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
///
/// A position is sent back to the server twice on every reconnect, as the `id` query
/// parameter and as the `Last-Event-ID` header, so only an id that both can carry is a
/// position: 1 to [`MAX_POSITION_LEN`] bytes of printable ASCII without spaces (`!` to
/// `~`). The API's ids are UUIDs (36 bytes); anything else a server sends as an id is
/// never committed, because a position the next request cannot carry would stop the
/// tenant for good. See `docs/limits.md`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position(String);

/// The longest id accepted as a position, in bytes.
pub const MAX_POSITION_LEN: usize = 256;

/// Why an id cannot be a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPosition {
    /// Longer than [`MAX_POSITION_LEN`].
    #[error("it is {len} bytes long; at most {MAX_POSITION_LEN} are accepted")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A byte outside printable ASCII (a control byte, a space, non-ASCII text).
    #[error(
        "it holds the byte 0x{byte:02x} at offset {at}; only printable ASCII without spaces is accepted"
    )]
    BadByte {
        /// The offending byte.
        byte: u8,
        /// Its offset in the id.
        at: usize,
    },
}

impl Position {
    /// Wraps an id. `0` and the empty string mean "no position", and so does an id
    /// that is not acceptable as a position (see [`Position::parse`]): all give `None`.
    pub fn new(id: impl AsRef<str>) -> Option<Self> {
        Self::parse(id.as_ref()).ok().flatten()
    }

    /// Checks an id: `Ok(None)` for `0` and the empty string (no position), an error
    /// for an id no request could carry, else the position.
    pub fn parse(id: &str) -> Result<Option<Self>, BadPosition> {
        if id.is_empty() || id == "0" {
            return Ok(None);
        }
        if id.len() > MAX_POSITION_LEN {
            return Err(BadPosition::TooLong { len: id.len() });
        }
        if let Some((at, &byte)) = id
            .as_bytes()
            .iter()
            .enumerate()
            .find(|(_, b)| !b.is_ascii_graphic())
        {
            return Err(BadPosition::BadByte { byte, at });
        }
        Ok(Some(Self(id.to_string())))
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

/// Text that came from outside (an id, an event name) as it may appear in a log line:
/// at most [`Untrusted::SHOWN`] characters, control characters escaped, and the
/// length said when it was cut.
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

impl Untrusted<'_> {
    /// The most characters shown.
    pub const SHOWN: usize = 64;
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(Self::SHOWN) {
            write!(f, "{}", c.escape_debug())?;
        }
        if chars.next().is_some() {
            write!(f, "… ({} bytes)", self.0.len())?;
        }
        Ok(())
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
    /// Where the stream stands after this batch
    /// (`docs/event-stream.md#the-id-cursor-and-duplicates`): the message's
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
    fn a_position_is_printable_ascii_of_bounded_length() {
        let longest = "a".repeat(MAX_POSITION_LEN);
        assert_eq!(
            Position::parse(&longest).unwrap().unwrap().as_str(),
            longest
        );
        assert_eq!(Position::parse("0"), Ok(None));
        assert_eq!(Position::parse("!~"), Ok(Position::new("!~")));
        assert_eq!(
            Position::parse(&format!("{longest}a")),
            Err(BadPosition::TooLong {
                len: MAX_POSITION_LEN + 1
            })
        );
        for (id, byte, at) in [
            ("a\u{0}", 0, 1),
            ("\u{1}", 1, 0),
            ("a b", b' ', 1),
            ("a\r\nb", b'\r', 1),
            ("\u{7f}", 0x7f, 0),
            ("caf\u{e9}", 0xc3, 3),
        ] {
            assert_eq!(Position::parse(id), Err(BadPosition::BadByte { byte, at }));
            assert_eq!(Position::new(id), None);
        }
    }

    #[test]
    fn untrusted_text_is_cut_and_escaped_for_logs() {
        assert_eq!(Untrusted("a\u{1}b\n").to_string(), "a\\u{1}b\\n");
        let long = "x".repeat(1 << 20);
        let shown = Untrusted(&long).to_string();
        assert_eq!(shown, format!("{}… (1048576 bytes)", "x".repeat(64)));
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
