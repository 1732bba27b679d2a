//! `events` message data → [`Batch`] (`docs/event-stream.md#the-events-payload` and
//! `docs/event-stream.md#the-id-cursor-and-duplicates`). Pure.
//!
//! The envelope is parsed borrowing each array item as raw JSON, so that an item that
//! is not an object can be dead-lettered with exactly the text received while the
//! other items are still delivered. Nothing here fails: whatever cannot be decoded
//! becomes a [`DeadLetter`] and the position still advances past it.

use crate::event::{Batch, DeadLetter, Position, RawEvent, RawId};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::ops::Range;
use std::sync::{Arc, LazyLock};

/// Why a batch has no position of its own (for the caller's warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionSource {
    /// The message's `id:` field.
    MessageId,
    /// The last event carrying an `id`.
    LastEvent,
    /// Neither: the position is unchanged.
    None,
}

/// Decodes the data of one `events` message. `message_id` is the frame's last-event-id
/// when the message carried its own `id` field. The events keep `data` (shared, not
/// copied) and their place in it.
pub fn decode_batch(data: String, message_id: Option<&str>) -> (Batch, PositionSource) {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        events: Items<'a>,
    }

    /// An event object, reduced to its `id` (any JSON type; only a string counts).
    #[derive(Deserialize)]
    struct IdProbe<'a> {
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
    }

    let text = Arc::new(data);
    let mut batch = Batch::default();
    match serde_json::from_str::<Envelope<'_>>(&text) {
        Ok(envelope) => {
            batch.events.reserve(envelope.events.0.len());
            for raw in envelope.events.0 {
                // Only the `id` is read here; the rest of the object is skipped without
                // allocating and decoded when the event is formatted.
                let json = raw.get();
                let probe = match leading_id(json) {
                    Some(id) => Ok(span_in(&text, id).map_or(RawId::None, RawId::At)),
                    None => serde_json::from_str::<IdProbe<'_>>(json)
                        .map(|probe| probe.id.map_or(RawId::None, |id| raw_id(&text, id.get()))),
                };
                match probe {
                    Ok(id) => {
                        let event = match span_in(&text, json) {
                            Some(span) => RawEvent::within(&text, span, id),
                            None => {
                                // Not expected: serde_json borrows raw values from the
                                // text it parses. A copy is still correct.
                                let id = RawEvent::within(&text, 0..0, id).id().map(String::from);
                                RawEvent::new(json, id.as_deref())
                            }
                        };
                        batch.events.push(event);
                    }
                    Err(_) => batch.dead_letters.push(DeadLetter {
                        reason: "events item is not a JSON object".into(),
                        raw: json.to_string(),
                        destination: None,
                    }),
                }
            }
        }
        Err(e) => batch.dead_letters.push(DeadLetter {
            reason: if e.to_string().starts_with(TOO_MANY_ITEMS) {
                format!("{TOO_MANY_ITEMS} in one events message; the whole message is kept here")
            } else {
                envelope_reason(&text, &e)
            },
            raw: text.to_string(),
            destination: None,
        }),
    }

    let from_message = message_id.and_then(Position::new);
    let (position, source) = match from_message {
        Some(p) => (Some(p), PositionSource::MessageId),
        None => match batch
            .events
            .iter()
            .rev()
            .find_map(|e| e.id().and_then(Position::new))
        {
            Some(p) => (Some(p), PositionSource::LastEvent),
            None => (None, PositionSource::None),
        },
    };
    batch.position = position;
    (batch, source)
}

/// The most items one `events` message may hold. Each item costs about 50 bytes once
/// decoded, whatever its size as text, so a message of tiny items (`[1,1,1,…]`) would
/// otherwise multiply into gigabytes; a message with more is kept whole as one dead
/// letter (its text is bounded by `max_event_size`). Real batches hold hundreds.
pub const MAX_ITEMS_PER_MESSAGE: usize = 100_000;

/// The start of the error that stops reading an array with too many items.
const TOO_MANY_ITEMS: &str = "more than 100000 items";

// The message says the limit.
const _: () = assert!(MAX_ITEMS_PER_MESSAGE == 100_000);

/// The `events` array as raw items, refused (before it grows further) past
/// [`MAX_ITEMS_PER_MESSAGE`].
struct Items<'a>(Vec<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Items<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<Items<'a>>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Items<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element::<&'a RawValue>()? {
                    if items.len() == MAX_ITEMS_PER_MESSAGE {
                        return Err(serde::de::Error::custom(TOO_MANY_ITEMS));
                    }
                    items.push(item);
                }
                Ok(Items(items))
            }
        }
        deserializer.deserialize_seq(Visitor(std::marker::PhantomData))
    }
}

/// The searcher for `"id"`, built once rather than for every event.
static ID_KEY: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(br#""id""#));

/// The `id` of an event written the way the API writes them: the text begins
/// `{"id":"` and holds no backslash and no other `"id"`. Then that key is the object's
/// only `id` (a repeated one would be another `"id"` in the text, or an escaped one),
/// and its value is a string without escapes, taken as it stands. This spares a second
/// scan of every event (the envelope parse already checked that the text is JSON);
/// anything else is read by the full probe.
fn leading_id(json: &str) -> Option<&str> {
    let rest = json.strip_prefix(r#"{"id":""#)?;
    let id = rest.get(..memchr::memchr(b'"', rest.as_bytes())?)?;
    let bytes = json.as_bytes();
    if memchr::memchr(b'\\', bytes).is_some() || ID_KEY.find_iter(bytes).nth(1).is_some() {
        return None;
    }
    Some(id)
}

/// Where `part`, a slice of `whole`, lies in it; `None` if it is not a slice of it.
fn span_in(whole: &str, part: &str) -> Option<Range<usize>> {
    // Address arithmetic only; nothing is dereferenced.
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

/// The id of an event from the raw JSON of its `id` value (a slice of `text`): a string
/// without escapes is kept as its place in `text`; one with escapes is unescaped; any
/// other JSON type is no id.
fn raw_id(text: &str, id: &str) -> RawId {
    let inner = id.strip_prefix('"').and_then(|rest| rest.strip_suffix('"'));
    match inner {
        Some(inner) if !inner.contains('\\') => match span_in(text, inner) {
            Some(span) => RawId::At(span),
            None => RawId::Unescaped(inner.into()),
        },
        Some(_) => match serde_json::from_str::<String>(id) {
            Ok(id) => RawId::Unescaped(id.into()),
            Err(_) => RawId::None,
        },
        None => RawId::None,
    }
}

fn envelope_reason(data: &str, error: &serde_json::Error) -> String {
    // Tell "not JSON at all" from "JSON, but not {"events": [...]}".
    match serde_json::from_str::<serde::de::IgnoredAny>(data) {
        Ok(_) => format!("not an object with an events array: {error}"),
        Err(e) => format!("invalid json: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(data: &str, message_id: Option<&str>) -> (Batch, PositionSource) {
        decode_batch(data.to_string(), message_id)
    }

    #[test]
    fn a_batch_takes_the_message_id_as_position() {
        let (b, src) = decode(
            r#"{"events":[{"id":"a","type":"THREAT"},{"id":"b"}]}"#,
            Some("m"),
        );
        assert_eq!(b.events.len(), 2);
        assert_eq!(b.events[0].decode().unwrap().event_type(), Some("THREAT"));
        assert_eq!(b.position, Position::new("m"));
        assert_eq!(src, PositionSource::MessageId);
    }

    #[test]
    fn without_message_id_the_last_event_id_is_the_position() {
        let (b, src) = decode(r#"{"events":[{"id":"a"},{"id":"b"}]}"#, None);
        assert_eq!(b.position, Position::new("b"));
        assert_eq!(src, PositionSource::LastEvent);
        let (b, src) = decode(r#"{"events":[{"x":1}]}"#, None);
        assert_eq!((b.position, src), (None, PositionSource::None));
        assert_eq!(b.events.len(), 1);
    }

    #[test]
    fn key_order_and_unknown_fields_are_kept() {
        let (b, _) = decode(r#"{"events":[{"z":1,"id":"a","q":{"k":[1,2]}}]}"#, None);
        let keys: Vec<_> = b.events[0]
            .decode()
            .unwrap()
            .fields
            .iter()
            .map(|(k, _)| k.to_string())
            .collect();
        assert_eq!(keys, ["z", "id", "q"]);
    }

    #[test]
    fn invalid_json_is_one_dead_letter_and_the_position_still_advances() {
        let (b, _) = decode("{not json", Some("m7"));
        assert!(b.events.is_empty());
        assert_eq!(b.dead_letters.len(), 1);
        assert_eq!(b.dead_letters[0].raw, "{not json");
        assert!(
            b.dead_letters[0].reason.starts_with("invalid json"),
            "{:?}",
            b.dead_letters
        );
        assert_eq!(b.position, Position::new("m7"));
    }

    #[test]
    fn a_missing_or_wrong_events_member_is_a_dead_letter() {
        for data in [r#"{"foo":[]}"#, r#"{"events":{}}"#, "[]", "42"] {
            let (b, _) = decode(data, Some("m"));
            assert_eq!(b.dead_letters.len(), 1, "{data}");
            assert!(
                b.dead_letters[0].reason.starts_with("not an object"),
                "{data}"
            );
            assert_eq!(b.position, Position::new("m"));
        }
    }

    #[test]
    fn a_non_object_item_is_dead_lettered_alone() {
        let (b, _) = decode(r#"{"events":[{"id":"a"}, 5, "x", {"id":"b"}]}"#, None);
        assert_eq!(b.events.len(), 2);
        assert_eq!(b.dead_letters.len(), 2);
        assert_eq!(b.dead_letters[0].raw, "5");
        assert_eq!(b.dead_letters[1].raw, "\"x\"");
        assert_eq!(b.position, Position::new("b"));
    }

    #[test]
    fn events_keep_their_text_and_id_from_the_shared_message() {
        let data =
            r#"{"events":[ {"id":"a1","n":[1]} ,{"x":{"id":"inner"},"id":"b\u0032"},{"id":7},{}]}"#;
        let (b, _) = decode(data, None);
        let seen: Vec<_> = b.events.iter().map(|e| (e.json(), e.id())).collect();
        assert_eq!(
            seen,
            [
                (r#"{"id":"a1","n":[1]}"#, Some("a1")),
                (r#"{"x":{"id":"inner"},"id":"b\u0032"}"#, Some("b2")),
                (r#"{"id":7}"#, None),
                ("{}", None),
            ]
        );
        // The last event with a string id gives the position, unescaped.
        assert_eq!(b.position, Position::new("b2"));
        assert_eq!(
            b.events[1]
                .decode()
                .unwrap()
                .fields
                .get("x")
                .and_then(|x| x.get("id"))
                .and_then(|v| v.as_str()),
            Some("inner")
        );
    }

    #[test]
    fn the_leading_id_is_read_only_when_nothing_else_could_be_an_id() {
        assert_eq!(leading_id(r#"{"id":"a1","x":{"guid":"g"}}"#), Some("a1"));
        assert_eq!(leading_id(r#"{"id":"","x":1}"#), Some(""));
        for text in [
            r#"{"x":1,"id":"a1"}"#,              // not first
            r#"{ "id":"a1"}"#,                   // not written compactly
            r#"{"id":7}"#,                       // not a string
            r#"{"id":"a1","id":"b2"}"#,          // repeated
            r#"{"id":"a1","\u0069d":"b2"}"#,     // repeated, escaped
            r#"{"id":"a1","x":{"id":"inner"}}"#, // another "id", even nested
            r#"{"id":"a1","x":"id"}"#,           // another "id", as a value
            r#"{"id":"a\u0031"}"#,               // escaped id
            r#"{"id":"a1","note":"tab\there"}"#, // a backslash anywhere
        ] {
            assert_eq!(leading_id(text), None, "{text}");
        }
    }

    #[test]
    fn both_ways_of_reading_an_id_agree() {
        // The example events, as the API writes them (id first, compact), and the same
        // with the id moved last, which only the full probe reads.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/events");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            seen += 1;
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let compact = serde_json::to_string(&map).unwrap();
            let mut moved = map.clone();
            let id = moved.shift_remove("id").unwrap();
            moved.insert("id".into(), id);
            let moved = serde_json::to_string(&moved).unwrap();
            let data = format!(r#"{{"events":[{compact},{moved}]}}"#);
            let (b, _) = decode(&data, None);
            let expected = map["id"].as_str();
            assert_eq!(b.events[0].id(), expected, "{}", path.display());
            assert_eq!(b.events[1].id(), expected, "{}", path.display());
        }
        assert!(seen >= 14, "the example events are there");
    }

    #[test]
    fn an_id_the_next_request_cannot_carry_is_never_the_position() {
        let long = "7".repeat(1 << 20);
        for bad in ["m\u{1}", "m\u{0}x", "caf\u{e9}", "a b", long.as_str()] {
            // The message id is unusable: the last usable event id is the position.
            let data = r#"{"events":[{"id":"a"},{"id":"b"}]}"#;
            let (b, src) = decode(data, Some(bad));
            assert_eq!(b.position, Position::new("b"), "{bad:.20?}");
            assert_eq!(src, PositionSource::LastEvent);
            // An unusable event id is skipped for an earlier usable one.
            let escaped = serde_json::to_string(bad).unwrap();
            let data = format!(r#"{{"events":[{{"id":"a"}},{{"id":{escaped}}}]}}"#);
            let (b, _) = decode(&data, None);
            assert_eq!(b.events.len(), 2, "the event itself is still delivered");
            assert_eq!(b.position, Position::new("a"), "{bad:.20?}");
        }
    }

    #[test]
    fn a_message_with_too_many_items_is_kept_whole_as_one_dead_letter() {
        // Tiny items cost far more decoded than as text: 7.5 million of them in 15 MB
        // once took 1.7 GB and a 758 MB dead-letter file.
        let items = |n: usize| format!(r#"{{"events":[{}]}}"#, vec!["1"; n].join(","));
        let data = items(100_001);
        let (b, src) = decode(&data, Some("m"));
        assert!(b.events.is_empty());
        assert_eq!(b.dead_letters.len(), 1);
        assert_eq!(b.dead_letters[0].raw, data);
        assert_eq!(MAX_ITEMS_PER_MESSAGE, 100_000);
        assert!(
            b.dead_letters[0].reason.contains("more than 100000 items"),
            "{}",
            b.dead_letters[0].reason
        );
        assert_eq!(
            (b.position, src),
            (Position::new("m"), PositionSource::MessageId)
        );
        // At the limit, every item is still looked at on its own.
        let (b, _) = decode(&items(100_000), Some("m"));
        assert_eq!(b.dead_letters.len(), 100_000);
    }

    #[test]
    fn an_empty_array_delivers_nothing_but_moves_the_position() {
        let (b, _) = decode(r#"{"events":[]}"#, Some("m"));
        assert!(b.events.is_empty() && b.dead_letters.is_empty());
        assert_eq!(b.position, Position::new("m"));
    }
}
