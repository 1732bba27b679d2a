//! The `text/event-stream` parser: bytes in, [`Frame`]s out.
//!
//! This is a plain, synchronous state machine that follows the WHATWG HTML "event stream"
//! rules (see `docs/event-stream.md#parser-rules`), with two additions the connector needs:
//! messages that carry only `event`, `id` or `retry` fields are reported as frames with
//! `data: None`, and a message larger than `max_event_size` is an error. It does no I/O,
//! knows no clock and never panics, whatever the bytes; reconnecting, timeouts and what
//! each frame means belong to [`crate::source::stream`].
//!
//! The parser works on bytes. CR and LF never occur inside a multi-byte UTF-8
//! sequence, so lines are split on bytes and each complete line is decoded on its own,
//! replacing invalid sequences with U+FFFD. Bytes are looked at once: a read is scanned
//! for line ends with `memchr2`, and the value of a `data` line, which holds a whole
//! batch of events, is decoded straight into the data buffer as it arrives instead of
//! being collected and copied again when its line ends.

use std::mem;
use std::sync::Arc;

use memchr::{memchr, memchr2};

/// The size limit used when the configuration does not set `max_event_size`: 16 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

/// One message of the stream, produced at the blank line that ends it.
///
/// A frame is produced for every message that contained at least one `event`, `data`,
/// `id` or `retry` field line, whether or not the value was accepted. Comment-only and
/// blank-only messages produce nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The event type, or `message` if the message set none (or set it empty).
    pub event: String,
    /// The joined `data` lines; `None` when the message had no `data` line, which in
    /// the HTML spec's terms means nothing is dispatched.
    pub data: Option<String>,
    /// The last-event-id buffer after this message. It carries over from earlier
    /// messages; see [`Frame::id_field`] to know whether this message set it. Shared
    /// between the frames it applies to, never copied: a long id followed by many
    /// short messages in one read would otherwise multiply its size by their number.
    pub last_id: Arc<str>,
    /// Whether this message contained an `id` field that was accepted (no NUL).
    pub id_field: bool,
    /// The last valid `retry` field of this message, in milliseconds.
    pub retry: Option<u64>,
}

/// What [`Parser::finish`] threw away: the bytes of a message that never got its
/// terminating blank line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discarded {
    /// Bytes of the unfinished message: its complete lines with their terminators,
    /// plus the unterminated last line. A leading BOM is not counted.
    pub bytes: usize,
}

/// Why the parser gave up. After an error the parser is poisoned: every further
/// [`Parser::feed`] returns the same error, and the caller drops the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// The current message grew beyond the configured limit.
    #[error(
        "event stream message larger than {limit} bytes; raise max_event_size in [lookout] if the api really sends messages this large"
    )]
    EventTooLarge {
        /// The configured `max_event_size`, in bytes.
        limit: usize,
    },
}

/// The event-stream parser for one response body.
///
/// Feed it every read with [`Parser::feed`] (or [`Parser::feed_into`]), in order and
/// in any sizes, and call [`Parser::finish`] when the body ends.
#[derive(Debug)]
pub struct Parser {
    max_event_size: usize,
    bom: Bom,
    poisoned: bool,
    /// The last byte seen was a CR, which already ended its line; an LF arriving next
    /// is the second half of a CRLF and is skipped.
    after_cr: bool,
    /// Complete lines of the current message, with their terminators.
    message_bytes: usize,
    /// Bytes of the unterminated current line seen so far.
    line_bytes: usize,
    line: Line,
    /// Scratch for the current line, reused across lines: the field name until its
    /// colon, then the value of an `event`, `id` or `retry` field, or for a `data`
    /// field only an incomplete UTF-8 sequence at the end of a read (at most 3 bytes).
    tail: Vec<u8>,
    data: String,
    /// Capacity to reserve for a data buffer whose line spans reads: the size of the
    /// last such message, so that a large batch is not grown by repeated doubling.
    data_hint: usize,
    data_spanned_reads: bool,
    event: String,
    last_id: Arc<str>,
    id_field: bool,
    retry: Option<u64>,
    has_field: bool,
}

/// Progress on the optional byte order mark at the very start of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bom {
    /// This many leading bytes matched `EF BB BF` so far and are held back.
    Pending(usize),
    Decided,
}

/// The four field names the parser acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Event,
    Data,
    Id,
    Retry,
}

/// What the unterminated current line is known to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// No colon yet; `tail` holds the name so far (never longer than a known name).
    Name,
    /// A comment or a field the parser ignores: its bytes are only counted.
    Ignored,
    /// The colon of a known field was seen; the optional space is not decided yet.
    ValueStart(Field),
    /// Inside the value of a known field.
    Value(Field),
}

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// The longest field name the parser acts on (`event`, `retry`). A name that has grown
/// longer is ignored without being buffered.
const LONGEST_NAME: usize = 5;

/// The most room the line scratch keeps between lines; ids and names fit easily.
const TAIL_KEEP: usize = 4096;

impl Parser {
    /// A parser for a new response body that rejects messages over `max_event_size`
    /// bytes (see [`DEFAULT_MAX_EVENT_SIZE`]).
    pub fn new(max_event_size: usize) -> Parser {
        Parser {
            max_event_size,
            bom: Bom::Pending(0),
            poisoned: false,
            after_cr: false,
            message_bytes: 0,
            line_bytes: 0,
            line: Line::Name,
            tail: Vec::new(),
            data: String::new(),
            data_hint: 0,
            data_spanned_reads: false,
            event: String::new(),
            last_id: Arc::from(""),
            id_field: false,
            retry: None,
            has_field: false,
        }
    }

    /// Parses the next read and returns the frames of the messages it completed.
    ///
    /// On error the frames completed earlier in the same read are dropped with it; the
    /// connection is dropped too, and the stream resumes from the last committed
    /// position. Use [`Parser::feed_into`] to keep them.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Frame>, SseError> {
        let mut frames = Vec::new();
        self.feed_into(bytes, &mut frames)?;
        Ok(frames)
    }

    /// Like [`Parser::feed`], but appends the frames to `out`, so that a read loop can
    /// reuse one vector. On error, frames completed before the offending byte stay in
    /// `out`, so the frames and the error do not depend on how the stream was cut
    /// into reads.
    pub fn feed_into(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), SseError> {
        if self.poisoned {
            return Err(self.too_large());
        }
        let mut input = bytes;
        if let Bom::Pending(mut matched) = self.bom {
            while matched < BOM.len() {
                match input.split_first() {
                    Some((&byte, rest)) if BOM.get(matched) == Some(&byte) => {
                        matched += 1;
                        input = rest;
                    }
                    Some(_) => break,
                    // Undecided: hold the matching bytes until the next read.
                    None => {
                        self.bom = Bom::Pending(matched);
                        return Ok(());
                    }
                }
            }
            self.bom = Bom::Decided;
            if matched < BOM.len() {
                // Not a BOM after all: the bytes held back are ordinary content.
                self.scan(BOM.get(..matched).unwrap_or_default(), out)?;
            }
        }
        self.scan(input, out)
    }

    /// Ends the stream. A message without its terminating blank line is never
    /// produced; this reports how many bytes of it were thrown away. After an error it
    /// reports 0: the error already said that the message was lost.
    pub fn finish(self) -> Discarded {
        if self.poisoned {
            return Discarded { bytes: 0 };
        }
        let held_bom = match self.bom {
            Bom::Pending(matched) => matched,
            Bom::Decided => 0,
        };
        Discarded {
            bytes: self
                .message_bytes
                .saturating_add(self.line_bytes)
                .saturating_add(held_bom),
        }
    }

    fn too_large(&self) -> SseError {
        SseError::EventTooLarge {
            limit: self.max_event_size,
        }
    }

    /// Fails, and poisons the parser, if `more` bytes would take the current message
    /// over the limit. Called before those bytes are buffered or acted on.
    fn admit(&mut self, more: usize) -> Result<(), SseError> {
        if self.message_bytes.saturating_add(more) > self.max_event_size {
            self.poisoned = true;
            return Err(self.too_large());
        }
        Ok(())
    }

    /// Splits content bytes (the BOM already handled) into lines.
    fn scan(&mut self, mut input: &[u8], out: &mut Vec<Frame>) -> Result<(), SseError> {
        if input.is_empty() {
            return Ok(());
        }
        if mem::take(&mut self.after_cr)
            && let Some((b'\n', rest)) = input.split_first()
        {
            self.skip_lf()?;
            input = rest;
        }
        while let Some(end) = memchr2(b'\r', b'\n', input) {
            let (line, rest) = input.split_at(end);
            let Some((&terminator, mut rest)) = rest.split_first() else {
                break; // unreachable: memchr2 found a byte at `end`
            };
            let line_len = self.line_bytes.saturating_add(line.len());
            if line_len == 0 {
                self.dispatch(out);
            } else {
                self.admit(line_len.saturating_add(1))?;
                self.push(line, false);
                self.end_line();
                self.message_bytes = self
                    .message_bytes
                    .saturating_add(line_len)
                    .saturating_add(1);
            }
            if terminator == b'\r' {
                match rest.split_first() {
                    Some((b'\n', after)) => {
                        self.skip_lf()?;
                        rest = after;
                    }
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            input = rest;
        }
        if !input.is_empty() {
            self.admit(self.line_bytes.saturating_add(input.len()))?;
            self.push(input, true);
        }
        Ok(())
    }

    /// Accounts for the LF of a CRLF whose CR already ended the line. It belongs to
    /// the message when that line was not the blank line that ended the message.
    fn skip_lf(&mut self) -> Result<(), SseError> {
        if self.message_bytes > 0 {
            self.admit(1)?;
            self.message_bytes = self.message_bytes.saturating_add(1);
        }
        Ok(())
    }

    /// Takes the next bytes of the current line; `more` says the line continues in a
    /// later read.
    fn push(&mut self, mut bytes: &[u8], more: bool) {
        self.line_bytes = self.line_bytes.saturating_add(bytes.len());
        loop {
            match self.line {
                Line::Ignored => return,
                Line::Name => {
                    let Some(colon) = memchr(b':', bytes) else {
                        if self.tail.len().saturating_add(bytes.len()) > LONGEST_NAME {
                            self.tail.clear();
                            self.line = Line::Ignored;
                        } else {
                            self.tail.extend_from_slice(bytes);
                        }
                        return;
                    };
                    let (name, rest) = bytes.split_at(colon);
                    // A comment has an empty name, which like any unknown name
                    // makes the line ignored.
                    self.line = if self.tail.len().saturating_add(name.len()) > LONGEST_NAME {
                        Line::Ignored
                    } else {
                        self.tail.extend_from_slice(name);
                        field_named(&self.tail).map_or(Line::Ignored, Line::ValueStart)
                    };
                    self.tail.clear();
                    bytes = rest.get(1..).unwrap_or_default();
                }
                Line::ValueStart(field) => {
                    let Some((&first, rest)) = bytes.split_first() else {
                        return;
                    };
                    if first == b' ' {
                        bytes = rest;
                    }
                    self.line = Line::Value(field);
                }
                Line::Value(Field::Data) => {
                    self.push_data(bytes, more);
                    return;
                }
                Line::Value(_) => {
                    self.tail.extend_from_slice(bytes);
                    return;
                }
            }
        }
    }

    /// Decodes part of a `data` value into the data buffer. A UTF-8 sequence cut by
    /// the end of the read waits in `tail`; the result equals decoding the whole line
    /// at once with [`String::from_utf8_lossy`].
    fn push_data(&mut self, mut bytes: &[u8], more: bool) {
        if bytes.is_empty() {
            return;
        }
        if self.data.capacity() == 0 {
            let mut hint = bytes.len() + 1;
            if more {
                self.data_spanned_reads = true;
                hint = hint.max(self.data_hint);
            }
            self.data.reserve(hint);
        } else if more {
            self.data_spanned_reads = true;
        }
        // Complete a sequence left from the previous read, one byte at a time (at most
        // three). A byte that makes it invalid is not taken: it starts the next part.
        while !self.tail.is_empty() {
            let Some((&byte, rest)) = bytes.split_first() else {
                return;
            };
            self.tail.push(byte);
            match std::str::from_utf8(&self.tail) {
                Ok(complete) => {
                    self.data.push_str(complete);
                    self.tail.clear();
                    bytes = rest;
                }
                Err(error) if error.error_len().is_none() => bytes = rest,
                Err(_) => {
                    self.data.push(char::REPLACEMENT_CHARACTER);
                    self.tail.clear();
                }
            }
        }
        // The usual case, valid UTF-8 throughout, checked the fast way first
        // (`utf8_chunks` goes byte by byte).
        if let Ok(text) = std::str::from_utf8(bytes) {
            self.data.push_str(text);
            return;
        }
        let mut chunks = bytes.utf8_chunks().peekable();
        while let Some(chunk) = chunks.next() {
            self.data.push_str(chunk.valid());
            let invalid = chunk.invalid();
            if invalid.is_empty() {
                continue;
            }
            let at_end = chunks.peek().is_none();
            if at_end && std::str::from_utf8(invalid).is_err_and(|e| e.error_len().is_none()) {
                // Possibly the first bytes of a character that continues in the next
                // read; decided there, or at the end of the line.
                self.tail.extend_from_slice(invalid);
            } else {
                self.data.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }

    /// Acts on the line that just ended.
    fn end_line(&mut self) {
        match mem::replace(&mut self.line, Line::Name) {
            Line::Ignored => {}
            Line::Name => {
                if let Some(field) = field_named(&self.tail) {
                    self.apply(field, b"");
                }
            }
            Line::ValueStart(field) => self.apply(field, b""),
            Line::Value(Field::Data) => {
                if !self.tail.is_empty() {
                    // The line ended inside a character.
                    self.data.push(char::REPLACEMENT_CHARACTER);
                }
                self.data.push('\n');
                self.has_field = true;
            }
            Line::Value(field) => {
                let value = mem::take(&mut self.tail);
                self.apply(field, &value);
                self.tail = value;
            }
        }
        self.tail.clear();
        if self.tail.capacity() > TAIL_KEEP {
            // A long `event` or `id` value is rare; its room is not kept for good.
            self.tail = Vec::new();
        }
        self.line_bytes = 0;
    }

    fn apply(&mut self, field: Field, value: &[u8]) {
        self.has_field = true;
        match field {
            Field::Event => {
                self.event.clear();
                self.event.push_str(&String::from_utf8_lossy(value));
            }
            Field::Data => {
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
            }
            Field::Id => {
                if !value.contains(&0) {
                    self.last_id = Arc::from(String::from_utf8_lossy(value));
                    self.id_field = true;
                }
            }
            Field::Retry => {
                if let Some(ms) = retry_ms(value) {
                    self.retry = Some(ms);
                }
            }
        }
    }

    /// A blank line: produce the frame of the message it ends, if any.
    fn dispatch(&mut self, out: &mut Vec<Frame>) {
        self.message_bytes = 0;
        if !mem::take(&mut self.has_field) {
            return;
        }
        let data = if self.data.is_empty() {
            None
        } else {
            let mut data = mem::take(&mut self.data);
            data.pop(); // the LF after the last data line
            if mem::take(&mut self.data_spanned_reads) {
                self.data_hint = data.len().saturating_add(1).min(self.max_event_size);
            }
            // The frame's data waits in the tenant's queue; room left over from the size
            // hint or from growing is given back (an in-place shrink, not a copy).
            if data.capacity() > data.len() + data.len() / 16 + 64 {
                data.shrink_to_fit();
            }
            Some(data)
        };
        let event = if self.event.is_empty() {
            String::from("message")
        } else {
            mem::take(&mut self.event)
        };
        out.push(Frame {
            event,
            data,
            last_id: Arc::clone(&self.last_id),
            id_field: mem::take(&mut self.id_field),
            retry: self.retry.take(),
        });
    }
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(DEFAULT_MAX_EVENT_SIZE)
    }
}

fn field_named(name: &[u8]) -> Option<Field> {
    match name {
        b"event" => Some(Field::Event),
        b"data" => Some(Field::Data),
        b"id" => Some(Field::Id),
        b"retry" => Some(Field::Retry),
        _ => None,
    }
}

/// A `retry` value: ASCII digits only, at least one; too large saturates.
fn retry_ms(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |ms, digit| {
        ms.saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// Everything observable about parsing one stream: the frames, the error (after
    /// which the parser was fed no more) and what `finish()` discarded.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Outcome {
        frames: Vec<Frame>,
        error: Option<SseError>,
        discarded: usize,
    }

    /// Feeds `reads` in order through `feed_into`, checks that a poisoned parser stays
    /// poisoned, and finishes.
    fn run<'a>(reads: impl IntoIterator<Item = &'a [u8]>, limit: usize) -> Outcome {
        let mut parser = Parser::new(limit);
        let mut frames = Vec::new();
        let mut error = None;
        for read in reads {
            if let Err(e) = parser.feed_into(read, &mut frames) {
                let before = frames.len();
                assert_eq!(parser.feed(b"data:x\n\n"), Err(e.clone()), "poisoned");
                assert_eq!(parser.feed_into(b"", &mut frames), Err(e.clone()));
                assert_eq!(frames.len(), before, "no frames after an error");
                error = Some(e);
                break;
            }
        }
        Outcome {
            frames,
            error,
            discarded: parser.finish().bytes,
        }
    }

    /// Splits `input` at the given positions (any order, repeats allowed, so empty
    /// reads happen too).
    fn cut(input: &[u8], mut at: Vec<usize>) -> Vec<&[u8]> {
        at.iter_mut().for_each(|p| *p = (*p).min(input.len()));
        at.sort_unstable();
        let mut reads = Vec::with_capacity(at.len() + 1);
        let mut start = 0;
        for p in at {
            reads.push(&input[start..p]);
            start = p;
        }
        reads.push(&input[start..]);
        reads
    }

    fn ev(event: &str, data: &str, last_id: &str) -> Frame {
        Frame {
            event: event.to_owned(),
            data: Some(data.to_owned()),
            last_id: Arc::from(last_id),
            id_field: false,
            retry: None,
        }
    }

    /// A frame with `data: None` and every other field at its default.
    fn no_data() -> Frame {
        Frame {
            data: None,
            ..ev("message", "", "")
        }
    }

    struct Vector {
        reads: &'static [&'static [u8]],
        limit: usize,
        frames: Vec<Frame>,
        discarded: usize,
        error: Option<SseError>,
    }

    fn vector(n: u32) -> Vector {
        let ok = |reads: &'static [&'static [u8]], frames: Vec<Frame>| Vector {
            reads,
            limit: DEFAULT_MAX_EVENT_SIZE,
            frames,
            discarded: 0,
            error: None,
        };
        let msg = |data: &str| ev("message", data, "");
        let with_id = |frame: Frame| Frame {
            id_field: true,
            ..frame
        };
        let retry = |ms: Option<u64>| Frame {
            retry: ms,
            ..no_data()
        };
        match n {
            1 => ok(
                &[b"event:heartbeat\ndata:{}\n\n"],
                vec![ev("heartbeat", "{}", "")],
            ),
            2 => ok(
                &[b"id:A1\nevent:events\ndata:{\"events\":[]}\n\n"],
                vec![with_id(ev("events", "{\"events\":[]}", "A1"))],
            ),
            3 => ok(&[b"data: x\n\n"], vec![msg("x")]),
            4 => ok(&[b"data:  x\n\n"], vec![msg(" x")]),
            5 => ok(&[b"data:\tx\n\n"], vec![msg("\tx")]),
            6 => ok(&[b"data:a:b\n\n"], vec![msg("a:b")]),
            7 => ok(&[b"data\n\n"], vec![msg("")]),
            8 => ok(&[b"data:\n\n"], vec![msg("")]),
            9 => ok(&[b"data:a\ndata:b\n\n"], vec![msg("a\nb")]),
            10 => ok(&[b"data:a\ndata:\n\n"], vec![msg("a\n")]),
            11 => ok(&[b"data:x\n\n"], vec![msg("x")]),
            12 => ok(&[b"event:\ndata:x\n\n"], vec![msg("x")]),
            13 => ok(
                &[b"event:foo\ndata:a\n\ndata:b\n\n"],
                vec![ev("foo", "a", ""), msg("b")],
            ),
            14 => ok(
                &[b"event:reconnect\n\ndata:b\n\n"],
                vec![
                    Frame {
                        event: "reconnect".to_owned(),
                        ..no_data()
                    },
                    msg("b"),
                ],
            ),
            15 => ok(&[b":hello\ndata:x\n\n"], vec![msg("x")]),
            16 => ok(&[b":keep-alive\n\n"], vec![]),
            17 => ok(&[b"foo:bar\ndata:x\n\n"], vec![msg("x")]),
            18 => ok(&[b"Data:x\n\n"], vec![]),
            19 => ok(&[b" data:x\n\n"], vec![]),
            20 => ok(
                &[b"event:heartbeat\r\ndata:{}\r\n\r\n"],
                vec![ev("heartbeat", "{}", "")],
            ),
            21 => ok(
                &[b"event:heartbeat\rdata:{}\r\r"],
                vec![ev("heartbeat", "{}", "")],
            ),
            22 => ok(&[b"data:a\r\ndata:b\rdata:c\n\n"], vec![msg("a\nb\nc")]),
            23 => ok(&[b"data:a\r", b"\ndata:b\n\n"], vec![msg("a\nb")]),
            24 => ok(&[b"data:x\r\r"], vec![msg("x")]),
            25 => ok(&[b"\n\n\n"], vec![]),
            26 => ok(&[b"\xEF\xBB\xBFdata:x\n\n"], vec![msg("x")]),
            27 => ok(&[b"\xEF", b"\xBB", b"\xBFdata:x\n\n"], vec![msg("x")]),
            28 => ok(
                &[b"\xEF\xBB\xBF\xEF\xBB\xBFdata:x\n\ndata:y\n\n"],
                vec![msg("y")],
            ),
            29 => ok(&[b"data:x\n\n\xEF\xBB\xBFdata:y\n\n"], vec![msg("x")]),
            30 => ok(
                &[b"data:a\xFFb\n\ndata:c\n\n"],
                vec![msg("a\u{FFFD}b"), msg("c")],
            ),
            31 => ok(&[b"data:caf\xC3", b"\xA9\n\n"], vec![msg("caf\u{e9}")]),
            32 => ok(&[b"data:a\x00b\n\n"], vec![msg("a\u{0}b")]),
            33 => ok(
                &[b"id:1\ndata:a\n\ndata:b\n\n"],
                vec![with_id(ev("message", "a", "1")), ev("message", "b", "1")],
            ),
            34 => ok(
                &[b"id:1\ndata:a\n\nid\ndata:b\n\n"],
                vec![with_id(ev("message", "a", "1")), with_id(msg("b"))],
            ),
            35 => ok(
                &[b"id:1\ndata:a\n\nid:2\x003\ndata:b\n\n"],
                vec![with_id(ev("message", "a", "1")), ev("message", "b", "1")],
            ),
            36 => ok(
                &[b"id:7\n\ndata:b\n\n"],
                vec![
                    with_id(Frame {
                        last_id: Arc::from("7"),
                        ..no_data()
                    }),
                    ev("message", "b", "7"),
                ],
            ),
            37 => ok(
                &[b"id: 9\ndata:b\n\n"],
                vec![with_id(ev("message", "b", "9"))],
            ),
            38 => ok(&[b"retry:2500\n\n"], vec![retry(Some(2500))]),
            39 => ok(&[b"retry: 2500\n\n"], vec![retry(Some(2500))]),
            40 => ok(&[b"retry:+500\n\n"], vec![retry(None)]),
            41 => ok(&[b"retry:5s\n\n"], vec![retry(None)]),
            42 => ok(&[b"retry:-1\n\n"], vec![retry(None)]),
            43 => ok(&[b"retry:1.5\n\n"], vec![retry(None)]),
            44 => ok(&[b"retry:\n\n"], vec![retry(None)]),
            45 => ok(
                &[b"event:reconnect\nretry:2000\n\n"],
                vec![Frame {
                    event: "reconnect".to_owned(),
                    ..retry(Some(2000))
                }],
            ),
            46 => ok(
                &[b"event:end\nretry:1000\ndata:{}\n\n"],
                vec![Frame {
                    retry: Some(1000),
                    ..ev("end", "{}", "")
                }],
            ),
            47 => Vector {
                discarded: 6,
                ..ok(&[b"data:a\n\ndata:b"], vec![msg("a")])
            },
            48 => Vector {
                discarded: 7,
                ..ok(&[b"data:a\n\ndata:b\n"], vec![msg("a")])
            },
            49 => ok(
                &[b"id:A1\nevent:events\ndata:{\"events\":[]}\n\nevent:heartbeat\ndata:{}\n\n"],
                vec![
                    with_id(ev("events", "{\"events\":[]}", "A1")),
                    ev("heartbeat", "{}", "A1"),
                ],
            ),
            50 => Vector {
                limit: 16,
                error: Some(SseError::EventTooLarge { limit: 16 }),
                ..ok(&[b"data:xxxxxxxxxxxxxxxxxxxx\n\n"], vec![])
            },
            51 => Vector {
                limit: 16,
                error: Some(SseError::EventTooLarge { limit: 16 }),
                ..ok(&[b"data:", b"xxxxxxxxxxxxxxxxxxxx"], vec![])
            },
            _ => panic!("there is no vector {n}"),
        }
    }

    /// Runs vector `n` as written (through `feed`), one byte per read, and split
    /// into two reads at every position.
    fn check_vector(n: u32) {
        let v = vector(n);
        let expected = Outcome {
            frames: v.frames.clone(),
            error: v.error.clone(),
            discarded: v.discarded,
        };

        // As written, through `feed`, remembering which read returned what.
        let mut parser = Parser::new(v.limit);
        let mut per_read = Vec::new();
        for read in v.reads {
            per_read.push(parser.feed(read));
        }
        let frames: Vec<Frame> = per_read
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .flatten()
            .cloned()
            .collect();
        let error = per_read.iter().find_map(|r| r.as_ref().err()).cloned();
        let discarded = parser.finish().bytes;
        assert_eq!(
            Outcome {
                frames,
                error,
                discarded
            },
            expected,
            "vector {n} as written"
        );
        match n {
            24 => assert_eq!(
                per_read,
                vec![Ok(v.frames.clone())],
                "vector 24: frame before finish()"
            ),
            50 => assert_eq!(
                per_read,
                vec![Err(SseError::EventTooLarge { limit: 16 })],
                "vector 50"
            ),
            51 => assert_eq!(
                per_read,
                vec![Ok(vec![]), Err(SseError::EventTooLarge { limit: 16 })],
                "vector 51: the error comes from the second feed()"
            ),
            _ => {}
        }

        let whole = v.reads.concat();
        assert_eq!(
            run(whole.chunks(1), v.limit),
            expected,
            "vector {n} one byte per read"
        );
        for at in 0..=whole.len() {
            let (a, b) = whole.split_at(at);
            assert_eq!(
                run([a, b], v.limit),
                expected,
                "vector {n} split into two reads at {at}"
            );
        }
    }

    macro_rules! vector_tests {
        ($($name:ident => $n:literal,)*) => {
            $(
                #[test]
                fn $name() {
                    check_vector($n);
                }
            )*
        };
    }

    vector_tests! {
        vector_01_lookout_heartbeat => 1,
        vector_02_lookout_batch => 2,
        vector_03_one_space_removed => 3,
        vector_04_only_one_space_removed => 4,
        vector_05_tab_is_not_a_space => 5,
        vector_06_first_colon_splits => 6,
        vector_07_no_colon_empty_value => 7,
        vector_08_empty_data_line => 8,
        vector_09_data_lines_joined => 9,
        vector_10_one_trailing_lf_stripped => 10,
        vector_11_default_type => 11,
        vector_12_empty_event_is_default => 12,
        vector_13_type_reset_after_dispatch => 13,
        vector_14_type_without_data_does_not_leak => 14,
        vector_15_comment => 15,
        vector_16_comment_only_message => 16,
        vector_17_unknown_field => 17,
        vector_18_names_case_sensitive => 18,
        vector_19_leading_space_in_name => 19,
        vector_20_crlf => 20,
        vector_21_cr_only => 21,
        vector_22_mixed_endings => 22,
        vector_23_crlf_split_across_reads => 23,
        vector_24_cr_at_end_of_read_dispatches_now => 24,
        vector_25_blank_lines_only => 25,
        vector_26_bom => 26,
        vector_27_bom_split_over_three_reads => 27,
        vector_28_second_bom_is_content => 28,
        vector_29_bom_later_is_content => 29,
        vector_30_invalid_utf8 => 30,
        vector_31_utf8_split_across_reads => 31,
        vector_32_nul_in_data => 32,
        vector_33_id_persists => 33,
        vector_34_empty_id_resets => 34,
        vector_35_id_with_nul_ignored => 35,
        vector_36_id_only_message => 36,
        vector_37_id_after_one_space => 37,
        vector_38_retry_digits => 38,
        vector_39_retry_one_space => 39,
        vector_40_retry_sign => 40,
        vector_41_retry_unit => 41,
        vector_42_retry_negative => 42,
        vector_43_retry_decimal => 43,
        vector_44_retry_empty => 44,
        vector_45_lookout_reconnect => 45,
        vector_46_end_with_data => 46,
        vector_47_partial_message_at_eof => 47,
        vector_48_complete_line_no_blank_line => 48,
        vector_49_id_carries_into_heartbeat => 49,
        vector_50_size_limit => 50,
        vector_51_size_limit_unterminated_line => 51,
    }

    // Vector 52: a stream captured from the API, kept in the repository as a fixture.
    const CAPTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stream-sample.txt"
    );
    const FIRST_ID: &str = "01a1aac4-759e-7c9d-bf7a-861b26a9b1a3";
    const SECOND_ID: &str = "01a1aae4-10ce-72b7-b78e-476c6c761a48";

    fn capture() -> Vec<u8> {
        std::fs::read(CAPTURE).unwrap_or_else(|e| panic!("cannot read the capture {CAPTURE}: {e}"))
    }

    /// The frames of the capture, with the two batches taken from its `data:` lines.
    fn capture_frames(capture: &[u8]) -> Vec<Frame> {
        let text = std::str::from_utf8(capture).expect("the capture is UTF-8");
        let batches: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter(|data| data.starts_with("{\"events\":["))
            .collect();
        assert_eq!(batches.len(), 2, "the capture holds two batches");
        for batch in &batches {
            let json: serde_json::Value = serde_json::from_str(batch).expect("batch is JSON");
            assert!(json["events"].as_array().is_some_and(|a| !a.is_empty()));
        }
        let with_id = |frame: Frame| Frame {
            id_field: true,
            ..frame
        };
        vec![
            ev("heartbeat", "{}", ""),
            with_id(ev("events", batches[0], FIRST_ID)),
            ev("heartbeat", "{}", FIRST_ID),
            ev("heartbeat", "{}", FIRST_ID),
            with_id(ev("events", batches[1], SECOND_ID)),
            ev("heartbeat", "{}", SECOND_ID),
            Frame {
                event: "reconnect".to_owned(),
                data: None,
                last_id: Arc::from(SECOND_ID),
                id_field: false,
                retry: Some(2000),
            },
        ]
    }

    fn check_capture(input: &[u8], expected_frames: &[Frame], what: &str) {
        let expected = Outcome {
            frames: expected_frames.to_vec(),
            error: None,
            discarded: 0,
        };
        assert_eq!(run([input], 1 << 16), expected, "vector 52 {what} whole");
        assert_eq!(
            run(input.chunks(1), 1 << 16),
            expected,
            "vector 52 {what} one byte per read"
        );
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(
                run([a, b], 1 << 16),
                expected,
                "vector 52 {what} split at {at}"
            );
        }
    }

    fn replace_lf(input: &[u8], with: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() * 2);
        for &b in input {
            if b == b'\n' {
                out.extend_from_slice(with);
            } else {
                out.push(b);
            }
        }
        out
    }

    #[test]
    fn vector_52_whole_capture() {
        let capture = capture();
        let frames = capture_frames(&capture);
        assert_eq!(frames.iter().filter(|f| f.data.is_some()).count(), 6);
        check_capture(&capture, &frames, "LF");
    }

    #[test]
    fn vector_52_capture_with_crlf() {
        let capture = capture();
        check_capture(
            &replace_lf(&capture, b"\r\n"),
            &capture_frames(&capture),
            "CRLF",
        );
    }

    #[test]
    fn vector_52_capture_with_cr() {
        let capture = capture();
        check_capture(
            &replace_lf(&capture, b"\r"),
            &capture_frames(&capture),
            "CR",
        );
    }

    #[test]
    fn vector_52_capture_with_bom() {
        let capture = capture();
        let with_bom = [BOM.as_slice(), &capture].concat();
        check_capture(&with_bom, &capture_frames(&capture), "BOM");
    }

    #[test]
    fn error_names_the_limit_and_the_key() {
        let message = SseError::EventTooLarge { limit: 65536 }.to_string();
        assert!(message.contains("65536"), "{message}");
        assert!(message.contains("max_event_size"), "{message}");
    }

    #[test]
    fn message_exactly_at_the_limit_is_accepted() {
        // "data:ab\n" is 8 bytes; the blank line that ends the message is not counted.
        assert_eq!(run([b"data:ab\n\n".as_slice()], 8).error, None);
        assert!(run([b"data:ab\n\n".as_slice()], 7).error.is_some());
        // The LF of a CRLF counts, wherever the read boundary falls.
        let crlf = b"data:ab\r\n\r\n";
        for at in 0..=crlf.len() {
            let (a, b) = crlf.split_at(at);
            assert_eq!(run([a, b], 9).frames, vec![ev("message", "ab", "")]);
            assert!(run([a, b], 8).error.is_some(), "split at {at}");
        }
    }

    #[test]
    fn limit_counts_comment_lines() {
        let out = run([b":".as_slice(), &[b'x'; 100]], 64);
        assert_eq!(out.error, Some(SseError::EventTooLarge { limit: 64 }));
    }

    #[test]
    fn finish_counts_a_held_back_bom_prefix() {
        assert_eq!(run([b"\xEF\xBB".as_slice()], 64).discarded, 2);
        assert_eq!(run([b"\xEF\xBB\xBF".as_slice()], 64).discarded, 0);
        assert_eq!(run([b"\xEF\xBB\xBFdata:b".as_slice()], 64).discarded, 6);
        assert_eq!(run([b"data:b\r\n".as_slice()], 64).discarded, 8);
    }

    #[test]
    fn retry_saturates() {
        assert_eq!(
            run([b"retry:99999999999999999999999\n\n".as_slice()], 64).frames,
            vec![Frame {
                retry: Some(u64::MAX),
                ..no_data()
            }]
        );
    }

    #[test]
    fn last_valid_retry_of_a_message_wins() {
        let out = run([b"retry:5\nretry:x\nretry:7\nretry:\n\n".as_slice()], 64);
        assert_eq!(out.frames[0].retry, Some(7));
    }

    #[test]
    fn line_ending_inside_a_character_is_one_replacement() {
        let out = run([b"data:a\xE2\x82".as_slice(), b"\n\n"], 64);
        assert_eq!(out.frames, vec![ev("message", "a\u{FFFD}", "")]);
    }

    #[test]
    fn large_batch_in_small_reads_is_linear() {
        // 256 KiB in one-byte reads: a parser that rescans its tail on every read
        // would do tens of billions of steps here.
        let batch = "{\"events\":[".to_owned() + &"{\"id\":\"é\"},".repeat(23_000) + "]}";
        let input = format!("id:A\nevent:events\ndata:{batch}\n\n");
        let mut parser = Parser::default();
        let mut frames = Vec::new();
        for byte in input.as_bytes().chunks(1) {
            parser
                .feed_into(byte, &mut frames)
                .expect("under the limit");
            // The tail holds a field name, a short value or a cut character, never
            // the batch.
            assert!(parser.tail.len() <= "events".len());
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data.as_deref(), Some(batch.as_str()));
        // The next batch over 16 KiB reads gets a buffer sized from the last one.
        let mut frames = Vec::new();
        for read in input.as_bytes().chunks(16 * 1024) {
            parser
                .feed_into(read, &mut frames)
                .expect("under the limit");
        }
        assert_eq!(frames[0].data.as_deref(), Some(batch.as_str()));
        assert!(
            frames[0]
                .data
                .as_ref()
                .is_some_and(|d| d.capacity() <= batch.len() + 1)
        );
        // A heartbeat cut by a read boundary does not keep that batch-sized buffer.
        let mut frames = Vec::new();
        for read in [b"event:heartbeat\ndata:{".as_slice(), b"}\n\n"] {
            parser.feed_into(read, &mut frames).expect("small");
        }
        assert_eq!(frames, vec![ev("heartbeat", "{}", "A")]);
        assert!(frames[0].data.as_ref().is_some_and(|d| d.capacity() <= 64));
    }

    #[test]
    fn heartbeat_in_one_read() {
        let mut parser = Parser::default();
        let mut frames = Vec::with_capacity(4);
        for _ in 0..3 {
            parser
                .feed_into(b"event:heartbeat\ndata:{}\n\n", &mut frames)
                .expect("small");
        }
        assert_eq!(frames, vec![ev("heartbeat", "{}", ""); 3]);
    }

    // Property tests: any split of the input gives the same frames, and arbitrary bytes
    // never panic.

    /// Pieces that make interesting streams: field names, line ends, BOMs, bytes that
    /// split or break UTF-8, digits and letters, and any byte at all.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop_oneof![
                Just(&b"data:"[..]),
                Just(&b"data: "[..]),
                Just(&b"data"[..]),
                Just(&b"event:"[..]),
                Just(&b"id:"[..]),
                Just(&b"id"[..]),
                Just(&b"retry:"[..]),
                Just(&b"\n"[..]),
                Just(&b"\n\n"[..]),
                Just(&b"\r"[..]),
                Just(&b"\r\n"[..]),
                Just(&b":"[..]),
                Just(&b" "[..]),
                Just(&b"\xEF\xBB\xBF"[..]),
                Just(&b"\xEF\xBB"[..]),
                Just(&b"\0"[..]),
                Just(&b"\xC3\xA9"[..]),
                Just(&b"\xC3"[..]),
                Just(&b"\xF0\x9F\x98"[..]),
                Just(&b"\xFF"[..]),
            ]
            .prop_map(<[u8]>::to_vec),
            "[0-9]{1,3}".prop_map(String::into_bytes),
            "[a-z]{1,6}".prop_map(String::into_bytes),
            any::<u8>().prop_map(|b| vec![b]),
        ]
    }

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(piece(), 0..48).prop_map(|pieces| pieces.concat())
    }

    fn cuts() -> impl Strategy<Value = Vec<prop::sample::Index>> {
        prop::collection::vec(any::<prop::sample::Index>(), 0..10)
    }

    fn positions(input: &[u8], cuts: &[prop::sample::Index]) -> Vec<usize> {
        cuts.iter().map(|c| c.index(input.len() + 1)).collect()
    }

    fn limit() -> impl Strategy<Value = usize> {
        prop_oneof![Just(DEFAULT_MAX_EVENT_SIZE), 0usize..48]
    }

    /// One message as the simulator would send it.
    #[derive(Debug, Clone)]
    struct Message {
        event: Option<String>,
        id: Option<String>,
        retry: Option<u64>,
        data: Option<Vec<String>>,
    }

    #[derive(Debug, Clone)]
    struct Wire {
        line_ending: &'static str,
        bom: bool,
        space_after_colon: bool,
        comments: bool,
    }

    fn message() -> impl Strategy<Value = Message> {
        (
            prop::option::of("[^\r\n]{0,6}"),
            prop::option::of("[^\r\n\0]{0,6}"),
            prop::option::of(any::<u64>()),
            prop::option::of(prop::collection::vec("[^\r\n]{0,8}", 1..4)),
        )
            .prop_map(|(event, id, retry, data)| Message {
                event,
                id,
                retry,
                data,
            })
    }

    fn wire() -> impl Strategy<Value = Wire> {
        (
            prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(line_ending, bom, space_after_colon, comments)| Wire {
                line_ending,
                bom,
                space_after_colon,
                comments,
            })
    }

    fn serialise(messages: &[Message], wire: &Wire) -> Vec<u8> {
        let mut out = String::new();
        if wire.bom {
            out.push('\u{FEFF}');
        }
        let field = |out: &mut String, name: &str, value: &str| {
            out.push_str(name);
            out.push(':');
            // A value that starts with a space needs the separating space, or the
            // parser would take its first space for the separator.
            if wire.space_after_colon || value.starts_with(' ') {
                out.push(' ');
            }
            out.push_str(value);
            out.push_str(wire.line_ending);
        };
        for m in messages {
            if wire.comments {
                out.push_str(":keep-alive");
                out.push_str(wire.line_ending);
            }
            if let Some(event) = &m.event {
                field(&mut out, "event", event);
            }
            if let Some(id) = &m.id {
                field(&mut out, "id", id);
            }
            if let Some(retry) = m.retry {
                field(&mut out, "retry", &retry.to_string());
            }
            for line in m.data.iter().flatten() {
                field(&mut out, "data", line);
            }
            out.push_str(wire.line_ending);
        }
        out.into_bytes()
    }

    /// The frames `messages` must parse back to.
    fn expected_frames(messages: &[Message]) -> Vec<Frame> {
        let mut last_id = String::new();
        let mut frames = Vec::new();
        for m in messages {
            if m.event.is_none() && m.id.is_none() && m.retry.is_none() && m.data.is_none() {
                continue;
            }
            if let Some(id) = &m.id {
                last_id.clone_from(id);
            }
            frames.push(Frame {
                event: m
                    .event
                    .clone()
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "message".to_owned()),
                data: m.data.as_ref().map(|lines| lines.join("\n")),
                last_id: Arc::from(last_id.as_str()),
                id_field: m.id.is_some(),
                retry: m.retry,
            });
        }
        frames
    }

    /// One read that sets a long id and then completes many messages must not copy
    /// the id into every frame: all frames share one copy (a 1 MiB id and a thousand
    /// tiny messages once took a gigabyte).
    #[test]
    fn frames_of_one_read_share_the_last_event_id() {
        let id = "x".repeat(1 << 20);
        let mut input = format!("id:{id}\n\n").into_bytes();
        for _ in 0..1000 {
            input.extend_from_slice(b"data:{}\n\n");
        }
        let frames = Parser::default().feed(&input).unwrap();
        assert_eq!(frames.len(), 1001);
        assert!(frames.iter().all(|f| *f.last_id == *id));
        let copies: HashSet<*const u8> = frames.iter().map(|f| f.last_id.as_ptr()).collect();
        assert_eq!(copies.len(), 1, "the id is held once, not once per frame");
    }

    proptest! {
        #[test]
        fn chunking_does_not_matter(input in stream(), cuts in cuts(), limit in limit()) {
            let whole = run([input.as_slice()], limit);
            let reads = cut(&input, positions(&input, &cuts));
            prop_assert_eq!(&run(reads.iter().copied(), limit), &whole);

            // Through `feed`, the frames of the read that failed are dropped with it.
            let mut parser = Parser::new(limit);
            let mut frames = Vec::new();
            let mut error = None;
            for read in &reads {
                match parser.feed(read) {
                    Ok(more) => frames.extend(more),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            prop_assert_eq!(&error, &whole.error);
            if error.is_none() {
                prop_assert_eq!(&frames, &whole.frames);
            } else {
                prop_assert!(whole.frames.starts_with(&frames));
            }
        }

        #[test]
        fn chunking_does_not_matter_for_arbitrary_bytes(
            input in prop::collection::vec(any::<u8>(), 0..256),
            cuts in cuts(),
            limit in limit(),
        ) {
            let whole = run([input.as_slice()], limit);
            let reads = cut(&input, positions(&input, &cuts));
            prop_assert_eq!(run(reads.iter().copied(), limit), whole);
        }

        #[test]
        fn line_endings_do_not_matter(input in stream(), cuts in cuts()) {
            // Turn every CR that is followed by LF into a space; the rest stays random.
            let lf: Vec<u8> = input
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    if b == b'\r' && input.get(i + 1) == Some(&b'\n') {
                        b' '
                    } else {
                        b
                    }
                })
                .collect();
            let reference = run([lf.as_slice()], DEFAULT_MAX_EVENT_SIZE);
            let crlf = replace_lf(&lf, b"\r\n");
            let cr = replace_lf(&lf, b"\r");
            let as_crlf = run(cut(&crlf, positions(&crlf, &cuts)), DEFAULT_MAX_EVENT_SIZE);
            let as_cr = run(cut(&cr, positions(&cr, &cuts)), DEFAULT_MAX_EVENT_SIZE);
            prop_assert_eq!(&as_crlf.frames, &reference.frames);
            prop_assert_eq!(&as_cr, &reference);
        }

        #[test]
        fn never_panics_and_memory_stays_bounded(
            input in prop_oneof![stream(), prop::collection::vec(any::<u8>(), 0..512)],
            cuts in cuts(),
            limit in 0usize..64,
        ) {
            let mut parser = Parser::new(limit);
            let mut frames = Vec::new();
            for read in cut(&input, positions(&input, &cuts)) {
                let result = parser.feed_into(read, &mut frames);
                // Raw bytes held never exceed the limit (the read itself is the
                // caller's). Decoded text can be up to three times its bytes: each
                // invalid byte becomes a three-byte U+FFFD.
                prop_assert!(parser.tail.len() <= limit);
                prop_assert!(parser.message_bytes + parser.line_bytes <= limit);
                prop_assert!(parser.data.len() + parser.event.len() <= 3 * limit);
                prop_assert!(parser.last_id.len() <= 3 * limit);
                if result.is_err() {
                    break;
                }
            }
            let _ = parser.finish();
        }

        #[test]
        fn round_trip(
            messages in prop::collection::vec(message(), 0..8),
            wire in wire(),
            chunk_bytes in prop_oneof![Just(0usize), 1usize..64],
        ) {
            let bytes = serialise(&messages, &wire);
            let reads: Vec<&[u8]> = if chunk_bytes == 0 {
                vec![&bytes]
            } else {
                bytes.chunks(chunk_bytes).collect()
            };
            let out = run(reads, DEFAULT_MAX_EVENT_SIZE);
            prop_assert_eq!(
                out,
                Outcome { frames: expected_frames(&messages), error: None, discarded: 0 }
            );
        }

        #[test]
        fn values_decode_like_from_utf8_lossy(
            value in prop::collection::vec(any::<u8>().prop_filter("no line end", |b| *b != b'\r' && *b != b'\n'), 0..64),
            cuts in cuts(),
        ) {
            let lossy = String::from_utf8_lossy(&value).into_owned();
            let input = [b"event: ".as_slice(), &value, b"\ndata: ", &value, b"\nid: ", &value, b"\n\n"].concat();
            let out = run(cut(&input, positions(&input, &cuts)), DEFAULT_MAX_EVENT_SIZE);
            let frame = &out.frames[0];
            prop_assert_eq!(frame.data.as_deref(), Some(lossy.as_str()));
            if !value.is_empty() {
                prop_assert_eq!(&frame.event, &lossy);
            }
            if !value.contains(&0) {
                prop_assert_eq!(&*frame.last_id, lossy.as_str());
            }
        }
    }
}
