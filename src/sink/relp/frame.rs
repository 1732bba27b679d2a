//! RELP frames on the wire: the encoder, an incremental parser, transaction numbers and
//! the data of a `rsp` answer. Pure: bytes and values in, bytes and values out, no I/O,
//! and no panic for any input.
//!
//! A frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`:
//!
//! - `TXNR`: 1 to 9 digits. A session numbers its commands from 1 to 999,999,999 and then
//!   wraps to 1; the server's answer (`rsp`) carries the number of the command it
//!   answers, and a server's own hint (`serverclose`) carries 0.
//! - `COMMAND`: 1 to 32 ASCII letters (`open`, `syslog`, `close`, `rsp`, `serverclose`).
//! - `DATALEN`: 1 to 9 digits, the length of `DATA` in bytes. With `DATALEN` 0 there is
//!   neither the space nor data: the LF follows the digits at once.
//! - `DATA`: any bytes, LFs included; only `DATALEN` delimits it.
//!
//! The parser is fed whatever the socket delivered (any split, any size) and keeps only
//! the frame in progress: its data is bounded by the `max_data` it was made with, and a
//! frame that announces more is an error before a byte of it is stored. Anything that
//! is not a frame (a digit missing, a letter too many, no LF where one must be) is a
//! [`FrameError`]; after one the stream cannot be trusted and the parser says so again
//! on every call.
//!
//! The data of a `rsp` is `CODE SP TEXT`, optionally followed by LF-separated lines;
//! the answer to `open` uses those lines for the server's offers
//! (`relp_version=0`, `commands=syslog`, …). [`Response::parse`] reads it.

use std::fmt;

/// The largest transaction number; the next one is 1 again.
pub const MAX_TXNR: u32 = 999_999_999;
/// The largest `DATALEN` that fits in nine digits.
pub const MAX_DATALEN: usize = 999_999_999;
/// A sensible bound for what a RELP server sends a client: its answers are a few bytes,
/// the answer to `open` a few hundred. librelp's clients use the same bound.
pub const DEFAULT_MAX_ANSWER_DATA: usize = 128 * 1024;
/// The longest command name.
pub const MAX_COMMAND_LEN: usize = 32;
/// At most this many bytes of a server's text go into a message; more is cut.
pub const MAX_TEXT_LEN: usize = 200;

/// A RELP transaction number: 0 (server hints only) to [`MAX_TXNR`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Txnr(u32);

/// The commands this crate writes or understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Client → server: begin a session, with the client's offers as data.
    Open,
    /// Client → server: one syslog record as data.
    Syslog,
    /// Client → server: end the session.
    Close,
    /// Server → client: the answer to the command with the same number.
    Rsp,
    /// Server → client, number 0: the server is ending the session.
    ServerClose,
}

/// One parsed frame, borrowed from the [`Parser`] until it is fed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The transaction number.
    pub txnr: Txnr,
    /// The command name as sent (ASCII letters).
    pub command: &'a str,
    /// The data, `DATALEN` bytes.
    pub data: &'a [u8],
}

/// Why bytes are not a RELP frame. After one the parser stays failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A byte that has no place where it was found.
    #[error("not a relp frame: expected {expected} but got {found}")]
    Unexpected {
        /// What the grammar allows at that point.
        expected: &'static str,
        /// The byte found, printable.
        found: Byte,
    },
    /// More digits than nine in the transaction number or the data length.
    #[error("not a relp frame: {field} has more than 9 digits")]
    TooManyDigits {
        /// `TXNR` or `DATALEN`.
        field: &'static str,
    },
    /// A command name longer than [`MAX_COMMAND_LEN`].
    #[error("not a relp frame: command longer than {MAX_COMMAND_LEN} letters")]
    CommandTooLong,
    /// A frame announcing more data than this side accepts.
    #[error("relp frame announces {datalen} bytes of data, more than the {max} accepted")]
    DataTooLong {
        /// `DATALEN` as announced (or the length of data to encode).
        datalen: usize,
        /// The bound.
        max: usize,
    },
}

/// A byte for messages: printable ASCII as itself, anything else as `0xNN`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Byte(pub u8);

/// Incremental frame parser. See the module documentation.
#[derive(Debug)]
pub struct Parser {
    max_data: usize,
    state: State,
    txnr: u32,
    digits: u8,
    command: [u8; MAX_COMMAND_LEN],
    command_len: usize,
    datalen: usize,
    /// The data of the frame in progress, or of the frame last returned.
    data: Vec<u8>,
}

/// The data of a `rsp`: `CODE SP TEXT [LF LINES]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The three-digit status code; 200 means success.
    pub code: u16,
    /// The text after the code, up to the first LF (not checked for UTF-8).
    pub text: &'a [u8],
    /// Everything after that LF: the offers of an answer to `open`, one per line.
    pub rest: &'a [u8],
}

/// Why the data of a `rsp` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a relp answer: {0}")]
pub struct ResponseError(String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Txnr,
    Command,
    Datalen,
    Data,
    Trailer,
    /// A frame was returned; the next byte starts a new one.
    Done,
    Failed(FrameError),
}

impl Txnr {
    /// The first number of every session.
    pub const FIRST: Txnr = Txnr(1);
    /// The number of a server's hint such as `serverclose`.
    pub const HINT: Txnr = Txnr(0);

    /// `n` as a transaction number, if it is at most [`MAX_TXNR`].
    pub fn new(n: u32) -> Option<Txnr> {
        (n <= MAX_TXNR).then_some(Txnr(n))
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The number after this one: 1 after [`MAX_TXNR`] (and after 0).
    #[must_use]
    pub fn next(self) -> Txnr {
        if self.0 >= MAX_TXNR {
            Txnr::FIRST
        } else {
            Txnr(self.0 + 1)
        }
    }
}

impl fmt::Display for Txnr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Command {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Open => "open",
            Command::Syslog => "syslog",
            Command::Close => "close",
            Command::Rsp => "rsp",
            Command::ServerClose => "serverclose",
        }
    }

    /// The command of that name, if it is one of these.
    pub fn from_name(name: &str) -> Option<Command> {
        Some(match name {
            "open" => Command::Open,
            "syslog" => Command::Syslog,
            "close" => Command::Close,
            "rsp" => Command::Rsp,
            "serverclose" => Command::ServerClose,
            _ => return None,
        })
    }
}

impl Frame<'_> {
    /// The command, if it is one this crate knows.
    pub fn known_command(&self) -> Option<Command> {
        Command::from_name(self.command)
    }
}

impl fmt::Debug for Byte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Byte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b' ' => f.write_str("a space"),
            b'\n' => f.write_str("LF"),
            b @ 0x21..=0x7e => write!(f, "{:?}", char::from(b)),
            b => write!(f, "byte 0x{b:02x}"),
        }
    }
}

/// Appends one frame to `out`. Fails only when `data` is longer than [`MAX_DATALEN`]
/// (nothing is appended then).
pub fn encode(
    out: &mut Vec<u8>,
    txnr: Txnr,
    command: Command,
    data: &[u8],
) -> Result<(), FrameError> {
    if data.len() > MAX_DATALEN {
        return Err(FrameError::DataTooLong {
            datalen: data.len(),
            max: MAX_DATALEN,
        });
    }
    // 9 + 1 + 11 + 1 + 9 + 1 + data + 1.
    out.reserve(33 + data.len());
    push_decimal(out, txnr.0 as usize);
    out.push(b' ');
    out.extend_from_slice(command.as_str().as_bytes());
    out.push(b' ');
    push_decimal(out, data.len());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
    Ok(())
}

/// The bytes of one frame, for tests and one-off frames.
pub fn encoded(txnr: Txnr, command: Command, data: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode(&mut out, txnr, command, data)?;
    Ok(out)
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

impl Parser {
    /// A parser that accepts frames with at most `max_data` bytes of data.
    pub fn new(max_data: usize) -> Parser {
        Parser {
            max_data: max_data.min(MAX_DATALEN),
            state: State::Txnr,
            txnr: 0,
            digits: 0,
            command: [0; MAX_COMMAND_LEN],
            command_len: 0,
            datalen: 0,
            data: Vec::new(),
        }
    }

    /// Reads from the front of `input` until one frame is complete and returns it, or
    /// until `input` is used up (`Ok(None)`: feed more). `input` is advanced past the
    /// bytes consumed, so call again with the rest for further frames.
    pub fn next_frame<'s>(
        &'s mut self,
        input: &mut &[u8],
    ) -> Result<Option<Frame<'s>>, FrameError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        if self.state == State::Done {
            self.start_frame();
        }
        match self.advance(input) {
            Ok(true) => {
                self.state = State::Done;
                let command = std::str::from_utf8(&self.command[..self.command_len])
                    .expect("a command is ASCII letters only, checked byte by byte");
                Ok(Some(Frame {
                    txnr: Txnr(self.txnr),
                    command,
                    data: &self.data,
                }))
            }
            Ok(false) => Ok(None),
            Err(e) => {
                self.state = State::Failed(e.clone());
                self.data = Vec::new();
                Err(e)
            }
        }
    }

    /// Whether the parser holds part of a frame (bytes that are not a frame yet).
    pub fn is_mid_frame(&self) -> bool {
        match self.state {
            State::Txnr => self.digits > 0,
            State::Done | State::Failed(_) => false,
            _ => true,
        }
    }

    /// Bytes the parser holds right now (the data of the frame in progress).
    pub fn buffered(&self) -> usize {
        self.data.len()
    }

    fn start_frame(&mut self) {
        self.state = State::Txnr;
        self.txnr = 0;
        self.digits = 0;
        self.command_len = 0;
        self.datalen = 0;
        self.data.clear();
        // A large answer (an `open` reply) must not keep its buffer for the session.
        if self.data.capacity() > 4096 {
            self.data = Vec::new();
        }
    }

    /// Consumes bytes; `Ok(true)` when a frame is complete.
    fn advance(&mut self, input: &mut &[u8]) -> Result<bool, FrameError> {
        while let Some((&byte, rest)) = input.split_first() {
            match self.state {
                State::Data => {
                    let want = self.datalen - self.data.len();
                    let take = want.min(input.len());
                    self.data.extend_from_slice(&input[..take]);
                    *input = &input[take..];
                    if self.data.len() == self.datalen {
                        self.state = State::Trailer;
                    }
                    continue;
                }
                State::Txnr => match byte {
                    b'0'..=b'9' => {
                        self.txnr = self.push_digit(self.txnr as usize, byte, "TXNR")? as u32;
                    }
                    b' ' if self.digits > 0 => {
                        self.state = State::Command;
                        self.digits = 0;
                    }
                    _ => return Err(unexpected("a digit of TXNR", byte)),
                },
                State::Command => match byte {
                    b'a'..=b'z' | b'A'..=b'Z' => {
                        if self.command_len == MAX_COMMAND_LEN {
                            return Err(FrameError::CommandTooLong);
                        }
                        self.command[self.command_len] = byte;
                        self.command_len += 1;
                    }
                    b' ' if self.command_len > 0 => self.state = State::Datalen,
                    _ => return Err(unexpected("a letter of COMMAND", byte)),
                },
                State::Datalen => match byte {
                    b'0'..=b'9' => {
                        self.datalen = self.push_digit(self.datalen, byte, "DATALEN")?;
                    }
                    b'\n' if self.digits > 0 && self.datalen == 0 => {
                        *input = rest;
                        return Ok(true);
                    }
                    b' ' if self.digits > 0 && self.datalen > 0 => {
                        if self.datalen > self.max_data {
                            return Err(FrameError::DataTooLong {
                                datalen: self.datalen,
                                max: self.max_data,
                            });
                        }
                        self.data.reserve_exact(self.datalen);
                        self.state = State::Data;
                    }
                    _ if self.digits > 0 && self.datalen == 0 => {
                        return Err(unexpected("LF after DATALEN 0", byte));
                    }
                    _ if self.digits > 0 => {
                        return Err(unexpected("a space before DATA", byte));
                    }
                    _ => return Err(unexpected("a digit of DATALEN", byte)),
                },
                State::Trailer => {
                    if byte != b'\n' {
                        return Err(unexpected("LF after DATA", byte));
                    }
                    *input = rest;
                    return Ok(true);
                }
                // `next_frame` starts a new frame (or stops) before advancing.
                State::Done | State::Failed(_) => return Ok(false),
            }
            *input = rest;
        }
        Ok(false)
    }

    fn push_digit(
        &mut self,
        value: usize,
        byte: u8,
        field: &'static str,
    ) -> Result<usize, FrameError> {
        if self.digits == 9 {
            return Err(FrameError::TooManyDigits { field });
        }
        self.digits += 1;
        Ok(value * 10 + usize::from(byte - b'0'))
    }
}

fn unexpected(expected: &'static str, byte: u8) -> FrameError {
    FrameError::Unexpected {
        expected,
        found: Byte(byte),
    }
}

impl<'a> Response<'a> {
    /// Reads the data of a `rsp`.
    pub fn parse(data: &'a [u8]) -> Result<Response<'a>, ResponseError> {
        let (head, rest) = match memchr::memchr(b'\n', data) {
            Some(lf) => (&data[..lf], &data[lf + 1..]),
            None => (data, &data[data.len()..]),
        };
        let code = match head.get(..3) {
            Some(digits) if digits.iter().all(u8::is_ascii_digit) => digits
                .iter()
                .fold(0u16, |n, d| n * 10 + u16::from(d - b'0')),
            _ => {
                return Err(ResponseError(format!(
                    "expected a three-digit status code, got {}",
                    printable(head, 40)
                )));
            }
        };
        let text = match head.get(3) {
            None => &head[3..],
            Some(b' ') => &head[4..],
            Some(&other) => {
                return Err(ResponseError(format!(
                    "expected a space after the status code, got {}",
                    Byte(other)
                )));
            }
        };
        Ok(Response { code, text, rest })
    }

    /// Whether the command was carried out (`200`).
    pub fn is_ok(&self) -> bool {
        self.code == 200
    }

    /// The lines after the first, as `(name, value)`; a line without `=` has an empty
    /// value, and empty lines are skipped.
    pub fn offers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.rest
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| match memchr::memchr(b'=', line) {
                Some(eq) => (&line[..eq], &line[eq + 1..]),
                None => (line, &line[line.len()..]),
            })
    }

    /// The value of offer `name`, if the answer has it.
    pub fn offer(&self, name: &str) -> Option<&'a [u8]> {
        self.offers()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }
}

/// `bytes` for a log line or an error: at most `limit` bytes of it, valid UTF-8 kept,
/// control characters, backslashes and invalid bytes escaped (`\n`, `\x1b`), and
/// `…` when it was cut. Whatever a peer sends, the result is one harmless line.
pub fn printable(bytes: &[u8], limit: usize) -> String {
    let mut out = String::with_capacity(bytes.len().min(limit) + 8);
    let cut = bytes.len() > limit;
    let mut rest = &bytes[..bytes.len().min(limit)];
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(all) => (all, &rest[rest.len()..]),
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                (
                    std::str::from_utf8(good).expect("valid_up_to marks valid UTF-8"),
                    bad,
                )
            }
        };
        for c in valid.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    out.push_str(&c.escape_unicode().to_string());
                }
                c => out.push(c),
            }
        }
        if let Some((&b, after)) = bad.split_first() {
            out.push_str(&format!("\\x{b:02x}"));
            rest = after;
        } else {
            rest = bad;
        }
    }
    if cut {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every frame in `bytes`, fed in pieces of the given sizes (cycled).
    fn parse_all(
        parser: &mut Parser,
        bytes: &[u8],
        sizes: &[usize],
    ) -> Result<Vec<(u32, String, Vec<u8>)>, FrameError> {
        let mut frames = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < bytes.len() {
            let size = sizes
                .get(i % sizes.len().max(1))
                .copied()
                .unwrap_or(bytes.len())
                .max(1);
            i += 1;
            let end = (at + size).min(bytes.len());
            let mut chunk = &bytes[at..end];
            while let Some(frame) = parser.next_frame(&mut chunk)? {
                frames.push((
                    frame.txnr.get(),
                    frame.command.to_owned(),
                    frame.data.to_vec(),
                ));
            }
            assert!(
                chunk.is_empty(),
                "a chunk is used up when no frame completes"
            );
            at = end;
        }
        Ok(frames)
    }

    fn one(bytes: &[u8]) -> Result<Vec<(u32, String, Vec<u8>)>, FrameError> {
        parse_all(
            &mut Parser::new(DEFAULT_MAX_ANSWER_DATA),
            bytes,
            &[bytes.len()],
        )
    }

    #[test]
    fn encodes_the_frames_of_the_protocol() {
        let mut out = Vec::new();
        encode(&mut out, Txnr::FIRST, Command::Syslog, b"<13>hello").unwrap();
        encode(&mut out, Txnr::new(2).unwrap(), Command::Close, b"").unwrap();
        assert_eq!(out, b"1 syslog 9 <13>hello\n2 close 0\n");
        assert_eq!(
            encoded(Txnr::new(MAX_TXNR).unwrap(), Command::Rsp, b"200 OK").unwrap(),
            b"999999999 rsp 6 200 OK\n"
        );
        assert_eq!(
            encoded(Txnr::HINT, Command::ServerClose, b"").unwrap(),
            b"0 serverclose 0\n"
        );
    }

    #[test]
    fn parses_answers_hints_and_data_with_lf() {
        let frames = one(b"1 rsp 6 200 OK\n0 serverclose 0\n12 syslog 7 a\nb\nc d\n").unwrap();
        assert_eq!(
            frames,
            vec![
                (1, "rsp".into(), b"200 OK".to_vec()),
                (0, "serverclose".into(), Vec::new()),
                (12, "syslog".into(), b"a\nb\nc d".to_vec()),
            ]
        );
    }

    #[test]
    fn rejects_what_is_not_a_frame() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"<13>Nov  5 hello\n",
                "expected a digit of TXNR but got '<'",
            ),
            (b"1234567890 rsp 0\n", "TXNR has more than 9 digits"),
            (b" 1 rsp 0\n", "expected a digit of TXNR but got a space"),
            (b"1 r5p 0\n", "expected a letter of COMMAND but got '5'"),
            (
                b"1  rsp 0\n",
                "expected a letter of COMMAND but got a space",
            ),
            (b"1 rsp x\n", "expected a digit of DATALEN but got 'x'"),
            (b"1 rsp 0 \n", "expected LF after DATALEN 0 but got a space"),
            (b"1 rsp 3\nabc\n", "expected a space before DATA but got LF"),
            (b"1 rsp 3 abcd\n", "expected LF after DATA but got 'd'"),
            (b"1 rsp 1234567890 x", "DATALEN has more than 9 digits"),
            (
                b"1 rsp 131073 ",
                "announces 131073 bytes of data, more than the 131072",
            ),
            (
                b"1 rsp 2 \x00\xff\x1b",
                "expected LF after DATA but got byte 0x1b",
            ),
        ];
        for (bytes, message) in cases {
            let error = one(bytes).expect_err(&String::from_utf8_lossy(bytes));
            assert!(error.to_string().contains(message), "{error} for {bytes:?}");
        }
        let long_command = format!("1 {} 0\n", "a".repeat(33));
        assert_eq!(
            one(long_command.as_bytes()),
            Err(FrameError::CommandTooLong)
        );
        assert!(one(format!("1 {} 0\n", "a".repeat(32)).as_bytes()).is_ok());
    }

    #[test]
    fn a_failed_parser_stays_failed() {
        let mut parser = Parser::new(16);
        let mut input: &[u8] = b"x";
        let first = parser.next_frame(&mut input).unwrap_err();
        let mut valid: &[u8] = b"1 rsp 6 200 OK\n";
        assert_eq!(parser.next_frame(&mut valid).unwrap_err(), first);
    }

    #[test]
    fn an_oversized_frame_is_refused_before_its_data_is_stored() {
        let mut parser = Parser::new(10);
        let mut input: &[u8] = b"1 rsp 11 ";
        let error = parser.next_frame(&mut input).unwrap_err();
        assert_eq!(
            error,
            FrameError::DataTooLong {
                datalen: 11,
                max: 10
            }
        );
        assert_eq!(parser.buffered(), 0);
        let mut parser = Parser::new(10);
        let mut input: &[u8] = b"1 rsp 10 0123456789\n";
        assert!(parser.next_frame(&mut input).unwrap().is_some());
    }

    #[test]
    fn transaction_numbers_wrap_to_one() {
        assert_eq!(Txnr::FIRST.next().get(), 2);
        assert_eq!(Txnr::new(MAX_TXNR).unwrap().next(), Txnr::FIRST);
        assert_eq!(Txnr::HINT.next(), Txnr::FIRST);
        assert_eq!(Txnr::new(MAX_TXNR + 1), None);
        let mut n = Txnr::new(MAX_TXNR - 2).unwrap();
        let seen: Vec<u32> = (0..5)
            .map(|_| {
                let now = n;
                n = n.next();
                now.get()
            })
            .collect();
        assert_eq!(seen, [999_999_997, 999_999_998, 999_999_999, 1, 2]);
    }

    #[test]
    fn responses_and_offers() {
        let open = Response::parse(
            b"200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,https://librelp.adiscon.com\ncommands=syslog\n",
        )
        .unwrap();
        assert!(open.is_ok());
        assert_eq!(open.text, b"OK");
        assert_eq!(open.offer("relp_version"), Some(&b"0"[..]));
        assert_eq!(open.offer("commands"), Some(&b"syslog"[..]));
        assert_eq!(open.offer("missing"), None);
        assert_eq!(open.offers().count(), 3);

        let refused = Response::parse(b"500 command disabled").unwrap();
        assert_eq!(
            (refused.code, refused.text),
            (500, &b"command disabled"[..])
        );
        assert!(!refused.is_ok());
        assert_eq!(Response::parse(b"200").unwrap().text, b"");
        assert!(Response::parse(b"").is_err());
        assert!(Response::parse(b"20x OK").is_err());
        assert!(Response::parse(b"200-OK").is_err());
    }

    #[test]
    fn printable_escapes_and_bounds() {
        assert_eq!(
            printable(b"500 bad\n\x1b[31m\\ \xff caf\xc3\xa9", 100),
            "500 bad\\n\\u{1b}[31m\\\\ \\xff café"
        );
        assert_eq!(printable(b"abcdef", 3), "abc…");
        assert_eq!(
            printable(&[b'x'; 10_000], MAX_TEXT_LEN).chars().count(),
            MAX_TEXT_LEN + 1
        );
    }

    /// Frames with arbitrary numbers, known or invented commands and arbitrary data.
    fn frame_strategy() -> impl Strategy<Value = (u32, Command, Vec<u8>)> {
        (
            0..=MAX_TXNR,
            prop_oneof![
                Just(Command::Open),
                Just(Command::Syslog),
                Just(Command::Close),
                Just(Command::Rsp),
                Just(Command::ServerClose),
            ],
            proptest::collection::vec(any::<u8>(), 0..300),
        )
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_frames(
            frames in proptest::collection::vec(frame_strategy(), 1..20),
            sizes in proptest::collection::vec(1usize..40, 1..10),
        ) {
            let mut bytes = Vec::new();
            for (txnr, command, data) in &frames {
                encode(&mut bytes, Txnr::new(*txnr).unwrap(), *command, data).unwrap();
            }
            let expected: Vec<(u32, String, Vec<u8>)> = frames
                .iter()
                .map(|(t, c, d)| (*t, c.as_str().to_owned(), d.clone()))
                .collect();
            let whole = parse_all(&mut Parser::new(300), &bytes, &[bytes.len()]).unwrap();
            prop_assert_eq!(&whole, &expected);
            let split = parse_all(&mut Parser::new(300), &bytes, &sizes).unwrap();
            prop_assert_eq!(&split, &expected);
            let bytewise = parse_all(&mut Parser::new(300), &bytes, &[1]).unwrap();
            prop_assert_eq!(&bytewise, &expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_stay_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
            max in 0usize..64,
        ) {
            let mut parser = Parser::new(max);
            for chunk in &chunks {
                let mut input = &chunk[..];
                loop {
                    match parser.next_frame(&mut input) {
                        Ok(Some(frame)) => prop_assert!(frame.data.len() <= max),
                        Ok(None) => break,
                        Err(_) => break,
                    }
                    prop_assert!(parser.buffered() <= max);
                }
                prop_assert!(parser.buffered() <= max);
            }
        }

        #[test]
        fn mutated_frames_never_panic(
            frames in proptest::collection::vec(frame_strategy(), 1..5),
            flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = Vec::new();
            for (txnr, command, data) in &frames {
                encode(&mut bytes, Txnr::new(*txnr).unwrap(), *command, data).unwrap();
            }
            for (at, byte) in flips {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let mut parser = Parser::new(300);
            let _ = parse_all(&mut parser, &bytes, &[7]);
            prop_assert!(parser.buffered() <= 300);
        }

        #[test]
        fn responses_round_trip(code in 100u16..1000, text in "[ -~]{0,40}", offers in proptest::collection::vec(("[a-z_]{1,12}", "[ -~&&[^=]]{0,20}"), 0..5)) {
            let mut data = format!("{code} {text}").into_bytes();
            for (name, value) in &offers {
                data.push(b'\n');
                data.extend_from_slice(format!("{name}={value}").as_bytes());
            }
            let response = Response::parse(&data).unwrap();
            prop_assert_eq!(response.code, code);
            prop_assert_eq!(response.text, text.as_bytes());
            let parsed: Vec<(Vec<u8>, Vec<u8>)> = response.offers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
            let wanted: Vec<(Vec<u8>, Vec<u8>)> = offers.iter().map(|(n, v)| (n.clone().into_bytes(), v.clone().into_bytes())).collect();
            prop_assert_eq!(parsed, wanted);
        }

        #[test]
        fn printable_is_one_bounded_line(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let text = printable(&bytes, MAX_TEXT_LEN);
            prop_assert!(!text.chars().any(char::is_control));
            // Each input byte becomes at most 10 characters (`\u{1b}`-style escapes).
            prop_assert!(text.len() <= MAX_TEXT_LEN * 10 + 3);
        }
    }
}
