//! SSE messages as bytes, in the wire style of the scenario
//! (`docs/event-stream.md#framing-as-lookout-sends-it`,
//! `docs/event-stream.md#scenario-file`).
//!
//! Pure: values in, bytes out. Whatever the style, the messages decode to the same
//! fields: line endings, the optional space after the colon, comment lines and the
//! splitting of `data` over several lines (only between array elements, so that the
//! LF-joined data is the same JSON) are all transparent to a WHATWG parser.

use bytes::Bytes;

use super::scenario::{LineEnding, Wire};

/// The UTF-8 byte order mark, written first in a body when `bom` is on.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Writes messages in one wire style.
#[derive(Debug, Clone)]
pub struct WireStyle {
    wire: Wire,
}

impl WireStyle {
    /// The style of a scenario's `wire` section.
    pub fn new(wire: Wire) -> WireStyle {
        WireStyle { wire }
    }

    /// The scenario options this style writes.
    pub fn wire(&self) -> &Wire {
        &self.wire
    }

    /// `event:heartbeat` + `data:{}`.
    pub fn heartbeat(&self) -> Bytes {
        let mut out = Vec::with_capacity(40);
        self.comment(&mut out);
        self.field(&mut out, "event", b"heartbeat");
        self.field(&mut out, "data", b"{}");
        self.eol(&mut out);
        Bytes::from(out)
    }

    /// An `events` message whose data is `{"events":[…]}` of the given serialised
    /// events, and whose `id:` is `id` (the batch's last event id).
    pub fn events(&self, id: &str, events: &[&[u8]]) -> Vec<u8> {
        let size: usize = events.iter().map(|event| event.len() + 8).sum();
        let mut out = Vec::with_capacity(size + 96);
        self.events_into(&mut out, id, events, None);
        out
    }

    /// [`WireStyle::events`], appended to `out`. When `ranges` is given, the byte
    /// range of each event's JSON inside `out` is pushed to it (the firehose keeps
    /// events as slices of its one big buffer instead of a second copy).
    pub fn events_into(
        &self,
        out: &mut Vec<u8>,
        id: &str,
        events: &[&[u8]],
        mut ranges: Option<&mut Vec<std::ops::Range<usize>>>,
    ) {
        let mut put = |out: &mut Vec<u8>, event: &[u8]| {
            let start = out.len();
            out.extend_from_slice(event);
            if let Some(ranges) = ranges.as_deref_mut() {
                ranges.push(start..out.len());
            }
        };
        self.comment(out);
        self.field(out, "id", id.as_bytes());
        self.field(out, "event", b"events");
        if self.wire.multiline_data {
            // One data line per array element: `{"events":[e1,` / `e2,` / `e3]}`.
            // Joined with LF, this is the same JSON with whitespace between elements.
            let last = events.len().saturating_sub(1);
            if events.is_empty() {
                self.field(out, "data", br#"{"events":[]}"#);
            }
            for (index, event) in events.iter().enumerate() {
                self.field_start(out, "data");
                if index == 0 {
                    out.extend_from_slice(br#"{"events":["#);
                }
                put(out, event);
                if index == last {
                    out.extend_from_slice(b"]}");
                } else {
                    out.push(b',');
                }
                self.eol(out);
            }
        } else {
            self.field_start(out, "data");
            out.extend_from_slice(br#"{"events":["#);
            for (index, event) in events.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                put(out, event);
            }
            out.extend_from_slice(b"]}");
            self.eol(out);
        }
        self.eol(out);
    }

    /// An `events` message whose data is the given text verbatim (the invalid_json
    /// fault). `data` must not contain a line break.
    pub fn raw_events(&self, id: &str, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        self.comment(&mut out);
        self.field(&mut out, "id", id.as_bytes());
        self.field(&mut out, "event", b"events");
        self.field(&mut out, "data", data);
        self.eol(&mut out);
        out
    }

    /// `event:reconnect` or `event:end`, with an optional `retry:` and `data:{}`.
    pub fn control(&self, event: &str, retry_ms: Option<u64>, with_data: bool) -> Bytes {
        let mut out = Vec::with_capacity(48);
        self.comment(&mut out);
        self.field(&mut out, "event", event.as_bytes());
        if let Some(retry) = retry_ms {
            self.field(&mut out, "retry", retry.to_string().as_bytes());
        }
        if with_data {
            self.field(&mut out, "data", b"{}");
        }
        self.eol(&mut out);
        Bytes::from(out)
    }

    fn comment(&self, out: &mut Vec<u8>) {
        if self.wire.comments {
            out.extend_from_slice(b":keep-alive");
            self.eol(out);
        }
    }

    fn field(&self, out: &mut Vec<u8>, name: &str, value: &[u8]) {
        self.field_start(out, name);
        out.extend_from_slice(value);
        self.eol(out);
    }

    fn field_start(&self, out: &mut Vec<u8>, name: &str) {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(if self.wire.space_after_colon {
            b": "
        } else {
            b":"
        });
    }

    fn eol(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.wire.line_ending {
            LineEnding::Lf => b"\n",
            LineEnding::Crlf => b"\r\n",
            LineEnding::Cr => b"\r",
        });
    }
}

/// Cuts `bytes` into pieces of at most `size` bytes (all of it when `size` is 0),
/// without copying.
pub fn pieces(bytes: Bytes, size: usize) -> Vec<Bytes> {
    if size == 0 || bytes.len() <= size {
        return vec![bytes];
    }
    let mut out = Vec::with_capacity(bytes.len().div_ceil(size));
    let mut start = 0;
    while start < bytes.len() {
        let end = (start + size).min(bytes.len());
        out.push(bytes.slice(start..end));
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookout_style_is_written_literally() {
        let style = WireStyle::new(Wire::default());
        assert_eq!(&style.heartbeat()[..], b"event:heartbeat\ndata:{}\n\n");
        assert_eq!(
            style.events("X", &[br#"{"a":1}"#, br#"{"b":2}"#]),
            b"id:X\nevent:events\ndata:{\"events\":[{\"a\":1},{\"b\":2}]}\n\n".to_vec()
        );
        assert_eq!(
            &style.control("reconnect", Some(2000), false)[..],
            b"event:reconnect\nretry:2000\n\n"
        );
    }

    #[test]
    fn every_option_is_applied() {
        let style = WireStyle::new(Wire {
            line_ending: LineEnding::Crlf,
            space_after_colon: true,
            comments: true,
            multiline_data: true,
            ..Wire::default()
        });
        assert_eq!(
            String::from_utf8(style.events("X", &[br#"{"a":1}"#, br#"{"b":2}"#])).expect("utf8"),
            ":keep-alive\r\nid: X\r\nevent: events\r\ndata: {\"events\":[{\"a\":1},\r\ndata: {\"b\":2}]}\r\n\r\n"
        );
        let cr = WireStyle::new(Wire {
            line_ending: LineEnding::Cr,
            ..Wire::default()
        });
        assert_eq!(
            &cr.control("end", None, true)[..],
            b"event:end\rdata:{}\r\r"
        );
    }

    #[test]
    fn pieces_cover_the_bytes_in_order() {
        let joined: Vec<u8> = pieces(Bytes::from_static(b"abcdefg"), 3)
            .iter()
            .flat_map(|piece| piece.to_vec())
            .collect();
        assert_eq!(joined, b"abcdefg");
        assert_eq!(pieces(Bytes::from_static(b"abcdefg"), 3).len(), 3);
        assert_eq!(pieces(Bytes::from_static(b"ab"), 0).len(), 1);
    }
}
