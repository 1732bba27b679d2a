//! HEC request bodies (`docs/receivers/splunk-hec.md#what-is-sent`): one JSON envelope per event, grouped
//! into requests by the batch limits, optionally gzip-compressed.
//!
//! Pure: messages in, bytes out. The envelope's `event` is the Splunk JSON object the
//! formatter already rendered (`docs/formats/splunk.md#json-mode`), inserted as is; everything else
//! in the envelope is written here. Each envelope carries all of its own keys: HEC does
//! not carry `host`, `source` or `sourcetype` from one envelope to the next.

use crate::format::RenderedMessage;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::ops::Range;

/// The sourcetype prefix of the per-type default: `lookout:mra:threat`, …
const SOURCETYPE_PREFIX: &str = "lookout:mra:";

/// The envelope keys shared by every event of one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeFields {
    /// `host` of every envelope.
    pub host: String,
    /// `source` of every envelope.
    pub source: String,
    /// One sourcetype for every event, or `None` for `lookout:mra:<type lowercase>`.
    pub sourcetype: Option<String>,
    /// The Splunk index, or `None` for the token's default index (then no `index` key).
    pub index: Option<String>,
}

/// The envelopes of some messages, back to back, and where each one sits.
#[derive(Debug, Default, Clone)]
pub struct Envelopes {
    body: Vec<u8>,
    ranges: Vec<Range<usize>>,
}

impl Envelopes {
    /// No envelope yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one envelope for `message` (a Splunk JSON object).
    pub fn push(&mut self, fields: &EnvelopeFields, message: &RenderedMessage) {
        let start = self.body.len();
        write_envelope(&mut self.body, fields, message);
        self.ranges.push(start..self.body.len());
    }

    /// How many envelopes there are.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The bytes of envelope `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.ranges.get(i).and_then(|r| self.body.get(r.clone()))
    }

    /// The bytes of the envelopes `range` (indexes), back to back: a request body.
    pub fn body(&self, range: Range<usize>) -> &[u8] {
        let (Some(first), Some(last)) = (
            self.ranges.get(range.start),
            range.end.checked_sub(1).and_then(|i| self.ranges.get(i)),
        ) else {
            return &[];
        };
        if range.start >= range.end {
            return &[];
        }
        &self.body[first.start..last.end]
    }

    /// A copy of the envelopes `range` (indexes), as envelopes of their own; an empty
    /// set for a range outside.
    pub fn slice(&self, range: Range<usize>) -> Envelopes {
        let Some(first) = self.ranges.get(range.start).map(|r| r.start) else {
            return Envelopes::new();
        };
        let Some(ranges) = self.ranges.get(range.clone()) else {
            return Envelopes::new();
        };
        Envelopes {
            body: self.body(range).to_vec(),
            ranges: ranges
                .iter()
                .map(|r| r.start - first..r.end - first)
                .collect(),
        }
    }

    /// The size of each envelope in bytes.
    pub fn sizes(&self) -> impl Iterator<Item = usize> + '_ {
        self.ranges.iter().map(|r| r.len())
    }

    /// Forgets every envelope, keeping the memory.
    pub fn clear(&mut self) {
        self.body.clear();
        self.ranges.clear();
    }
}

/// Writes the envelope of `message` to `out`:
/// `{"time":…,"host":…,"source":…,"sourcetype":…,"index":…,"event":{…}}`. `time` is
/// left out when the event has no usable `created_time` (HEC then uses the time it
/// received the event), `index` when none is set.
pub fn write_envelope(out: &mut Vec<u8>, fields: &EnvelopeFields, message: &RenderedMessage) {
    out.push(b'{');
    if let Some(time) = message.event_time {
        out.extend_from_slice(b"\"time\":");
        write_time(out, time.timestamp_millis());
        out.push(b',');
    }
    out.extend_from_slice(b"\"host\":");
    write_str(out, &fields.host);
    out.extend_from_slice(b",\"source\":");
    write_str(out, &fields.source);
    out.extend_from_slice(b",\"sourcetype\":");
    match &fields.sourcetype {
        Some(sourcetype) => write_str(out, sourcetype),
        None => write_str(out, &default_sourcetype(message.msgid.as_deref())),
    }
    if let Some(index) = &fields.index {
        out.extend_from_slice(b",\"index\":");
        write_str(out, index);
    }
    out.extend_from_slice(b",\"event\":");
    out.extend_from_slice(message.text.as_bytes());
    out.push(b'}');
}

/// `lookout:mra:<type in lowercase>`; `lookout:mra:unknown` for an event without a
/// usable type.
pub fn default_sourcetype(event_type: Option<&str>) -> String {
    let event_type = event_type.unwrap_or("UNKNOWN");
    let mut sourcetype = String::with_capacity(SOURCETYPE_PREFIX.len() + event_type.len());
    sourcetype.push_str(SOURCETYPE_PREFIX);
    sourcetype.extend(event_type.chars().map(|c| c.to_ascii_lowercase()));
    sourcetype
}

/// Epoch milliseconds as seconds with a three-digit fraction, in plain decimal:
/// `1732276800123` → `1732276800.123`, never exponent notation.
pub fn write_time(out: &mut Vec<u8>, millis: i64) {
    // Sign, then the magnitude: -1 ms is `-0.001` (not `-1.999`).
    if millis < 0 {
        out.push(b'-');
    }
    let magnitude = millis.unsigned_abs();
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{}.{:03}", magnitude / 1000, magnitude % 1000);
}

/// Splits envelopes of the given sizes into requests of at most `max_events` envelopes
/// and `max_bytes` bytes each, in order. An envelope larger than `max_bytes` travels
/// alone (HEC answers 413 if it is too large for the receiver too). Limits below 1
/// count as 1.
pub fn plan(
    sizes: impl IntoIterator<Item = usize>,
    max_events: usize,
    max_bytes: usize,
) -> Vec<Range<usize>> {
    let max_events = max_events.max(1);
    let mut requests = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    let mut i = 0;
    for size in sizes {
        let count = i - start;
        if count > 0 && (count >= max_events || bytes + size > max_bytes) {
            requests.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
        i += 1;
    }
    if i > start {
        requests.push(start..i);
    }
    requests
}

/// `body` gzip-compressed, at the fast level: a request is compressed once per send,
/// and the level barely changes the ratio of repetitive JSON.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes exactly what JSON requires and writes UTF-8 as is; writing a
    // string to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use flate2::read::GzDecoder;
    use proptest::prelude::*;
    use std::io::Read;

    fn fields() -> EnvelopeFields {
        EnvelopeFields {
            host: "mra-connector-01".into(),
            source: "mrav2-syslog-connector".into(),
            sourcetype: None,
            index: None,
        }
    }

    fn message(text: &str, time: Option<&str>, event_type: Option<&str>) -> RenderedMessage {
        RenderedMessage {
            text: text.into(),
            severity: 4,
            event_time: time.map(|t| DateTime::parse_from_rfc3339(t).unwrap()),
            msgid: event_type.map(str::to_owned),
            event_id: None,
            altered: false,
        }
    }

    fn envelope(fields: &EnvelopeFields, message: &RenderedMessage) -> String {
        let mut out = Vec::new();
        write_envelope(&mut out, fields, message);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_envelope_has_every_key_and_the_event_as_rendered() {
        let m = message(
            r#"{"id":"a1","type":"THREAT","entName":"acme"}"#,
            Some("2026-11-05T08:12:44.318+00:00"),
            Some("THREAT"),
        );
        assert_eq!(
            envelope(&fields(), &m),
            r#"{"time":1793866364.318,"host":"mra-connector-01","source":"mrav2-syslog-connector","sourcetype":"lookout:mra:threat","event":{"id":"a1","type":"THREAT","entName":"acme"}}"#
        );
        let f = EnvelopeFields {
            sourcetype: Some("lookout".into()),
            index: Some("mobile".into()),
            ..fields()
        };
        assert_eq!(
            envelope(&f, &m),
            r#"{"time":1793866364.318,"host":"mra-connector-01","source":"mrav2-syslog-connector","sourcetype":"lookout","index":"mobile","event":{"id":"a1","type":"THREAT","entName":"acme"}}"#
        );
    }

    #[test]
    fn sourcetype_defaults_per_event_type() {
        assert_eq!(
            default_sourcetype(Some("SMISHING_ALERT")),
            "lookout:mra:smishing_alert"
        );
        assert_eq!(default_sourcetype(Some("DEVICE")), "lookout:mra:device");
        assert_eq!(default_sourcetype(None), "lookout:mra:unknown");
        let m = message("{}", None, Some("AUDIT"));
        assert_eq!(
            envelope(&fields(), &m),
            r#"{"host":"mra-connector-01","source":"mrav2-syslog-connector","sourcetype":"lookout:mra:audit","event":{}}"#
        );
    }

    #[test]
    fn time_is_plain_decimal_with_milliseconds() {
        let cases = [
            (1_732_276_800_123, "1732276800.123"),
            (1_732_276_800_000, "1732276800.000"),
            (5, "0.005"),
            (0, "0.000"),
            (-1_500, "-1.500"),
            (-1, "-0.001"),
            (253_402_300_799_999, "253402300799.999"),
        ];
        for (millis, text) in cases {
            let mut out = Vec::new();
            write_time(&mut out, millis);
            assert_eq!(String::from_utf8(out).unwrap(), text, "{millis}");
        }
        // An offset other than UTC gives the same instant.
        let m = message("{}", Some("2026-11-05T09:12:44.3+01:00"), Some("THREAT"));
        assert!(envelope(&fields(), &m).starts_with(r#"{"time":1793866364.300,"#));
    }

    #[test]
    fn strings_are_escaped_as_json_requires() {
        let f = EnvelopeFields {
            host: "h\"\\\n東".into(),
            ..fields()
        };
        let text = envelope(&f, &message("{}", None, Some("THREAT")));
        assert!(text.contains(r#""host":"h\"\\\n東""#), "{text}");
    }

    #[test]
    fn requests_respect_both_limits() {
        assert_eq!(plan([10, 10, 10, 10, 10], 2, 1000), [0..2, 2..4, 4..5]);
        assert_eq!(plan([10, 10, 10, 10, 10], 500, 25), [0..2, 2..4, 4..5]);
        assert_eq!(plan([10, 10, 10], 500, 30), [Range { start: 0, end: 3 }]);
        // Too large for any request: travels alone.
        assert_eq!(plan([5, 100, 5], 500, 50), [0..1, 1..2, 2..3]);
        assert_eq!(plan([], 500, 50), Vec::<Range<usize>>::new());
        assert_eq!(plan([1, 1], 0, 0), [0..1, 1..2]);
    }

    #[test]
    fn bodies_are_the_envelopes_back_to_back_and_gzip_round_trips() {
        let mut envelopes = Envelopes::new();
        for t in ["THREAT", "DEVICE", "AUDIT"] {
            envelopes.push(&fields(), &message("{\"a\":1}", None, Some(t)));
        }
        assert_eq!(envelopes.len(), 3);
        let whole = envelopes.body(0..3);
        let parts = [
            envelopes.get(0).unwrap(),
            envelopes.get(1).unwrap(),
            envelopes.get(2).unwrap(),
        ]
        .concat();
        assert_eq!(whole, parts.as_slice());
        assert_eq!(envelopes.body(1..2), envelopes.get(1).unwrap());
        assert!(envelopes.body(2..2).is_empty());
        assert!(envelopes.body(2..9).is_empty());
        let tail = envelopes.slice(1..3);
        assert_eq!(tail.len(), 2);
        assert_eq!(tail.get(0), envelopes.get(1));
        assert_eq!(tail.body(0..2), envelopes.body(1..3));
        assert!(envelopes.slice(3..4).is_empty());
        let mut plain = Vec::new();
        GzDecoder::new(gzip(whole).as_slice())
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, whole);
        // Every envelope is valid JSON on its own.
        for i in 0..3 {
            serde_json::from_slice::<serde_json::Value>(envelopes.get(i).unwrap()).unwrap();
        }
    }

    proptest! {
        #[test]
        fn plan_covers_every_envelope_once_within_limits(
            sizes in proptest::collection::vec(1usize..200, 0..60),
            max_events in 1usize..10,
            max_bytes in 1usize..500,
        ) {
            let requests = plan(sizes.iter().copied(), max_events, max_bytes);
            let mut next = 0;
            for r in &requests {
                prop_assert_eq!(r.start, next);
                prop_assert!(r.end > r.start);
                prop_assert!(r.len() <= max_events);
                let bytes: usize = sizes[r.clone()].iter().sum();
                prop_assert!(bytes <= max_bytes || r.len() == 1);
                next = r.end;
            }
            prop_assert_eq!(next, sizes.len());
        }

        #[test]
        fn envelopes_parse_as_json_for_any_strings(
            host in ".*", source in ".*", sourcetype in proptest::option::of(".*"),
            index in proptest::option::of(".*"), event_type in proptest::option::of("[A-Z_]{1,20}"),
            millis in -10_000_000_000_000i64..10_000_000_000_000,
        ) {
            let f = EnvelopeFields { host: host.clone(), source, sourcetype, index: index.clone() };
            let mut m = message("{\"x\":[1,2]}", None, event_type.as_deref());
            m.event_time = DateTime::from_timestamp_millis(millis).map(|t| t.fixed_offset());
            let v: serde_json::Value = serde_json::from_str(&envelope(&f, &m)).unwrap();
            prop_assert_eq!(v["host"].as_str(), Some(host.as_str()));
            prop_assert_eq!(v.get("index").and_then(|i| i.as_str()), index.as_deref());
            let time = v["time"].as_f64().unwrap();
            prop_assert!((time * 1000.0 - millis as f64).abs() < 2.0);
            prop_assert_eq!(&v["event"]["x"][1], 2);
        }
    }
}
