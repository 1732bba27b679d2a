//! One RELP session over TCP or TLS: `open` and the check of the server's answer, a
//! window of `syslog` commands, their answers, `serverclose` and `close`.
//!
//! This module owns the stream, the transaction numbers and the bookkeeping of which
//! records are still unanswered. It does not decide what a lost session means for the
//! records it carried, and it does not retry: when the session breaks, every call
//! returns an error, [`RelpSession::unanswered_txnrs`] says which records never got an
//! answer, and the caller sends those again on a new session.
//!
//! # Writing and reading
//!
//! [`RelpSession::send`] only appends a frame to an output buffer; the buffer goes to
//! the socket in one write per [`RelpSession::flush`] (and when it grows past
//! [`FLUSH_AT`] bytes), so a batch of records costs one system call, not one per
//! record. When `window` records are unanswered, `send` flushes and reads answers until
//! at most half the window is unanswered: refilling it then takes one write of many
//! records rather than one write per answer that came back. Answers are parsed as they
//! arrive and kept inside until [`RelpSession::take_answers`] collects them.
//!
//! [`RelpSession::read_answers`] and [`RelpSession::flush`] are cancel-safe: each await
//! point is a single read or write whose result is recorded before the next one, so a
//! `tokio::select!` that drops them loses no byte and no answer.
//!
//! # Timeouts
//!
//! Connecting and the TLS handshake: [`super::super::transport::CONNECT_TIMEOUT`] each.
//! The server's answer to `open`: [`OPEN_TIMEOUT`]; a peer that stays silent (a plain
//! syslog port takes `open` for a message) or answers with something that is not a
//! RELP frame is reported as not speaking RELP. Writing: `WRITE_TIMEOUT` per flush.
//! Answers: with records unanswered, [`ANSWER_TIMEOUT`] without any answer breaks the
//! session (a receiver that stopped working while keeping the connection open).

use super::frame::{
    self, Command, DEFAULT_MAX_ANSWER_DATA, FrameError, MAX_TEXT_LEN, Parser, Response, Txnr,
    printable,
};
use crate::sink::transport::{
    Connector, Destination, Stream, WRITE_TIMEOUT, describe_stream_error, is_tls_error,
};
use crate::sink::{SinkError, SinkErrorKind};
use std::collections::VecDeque;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

/// What this client says it is in its `open` offer: name, version, project URL (none
/// published yet, so empty).
pub const SOFTWARE: &str = concat!("mrav2-syslog-connector,", env!("CARGO_PKG_VERSION"), ",");
/// How long the server has to answer `open`.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// With records unanswered, how long the session waits for the next answer before it
/// counts as broken.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The output buffer is written out when it grows past this, even inside a window.
pub const FLUSH_AT: usize = 256 * 1024;
/// Bytes read from the socket at once.
const READ_SIZE: usize = 64 * 1024;

/// The server's answer to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `200`: the receiver took the record. This, and only this, makes it delivered.
    Accepted,
    /// Any other code: the receiver did not take the record.
    Refused {
        /// The status code (e.g. 500).
        code: u16,
        /// The server's text, at most [`MAX_TEXT_LEN`] bytes of it, control characters
        /// and invalid UTF-8 escaped: safe to log.
        text: String,
    },
}

/// An open RELP session. See the module documentation.
pub struct RelpSession {
    stream: Stream,
    destination: Destination,
    window: usize,
    /// The number of the next command.
    next: Txnr,
    /// Encoded frames not written yet; `out[..written]` already went out.
    out: Vec<u8>,
    written: usize,
    /// Records sent (or buffered) without an answer, oldest first.
    unanswered: VecDeque<Txnr>,
    /// Answers read and not yet taken.
    answers: Vec<(Txnr, Answer)>,
    parser: Parser,
    read_buf: Box<[u8]>,
    /// Since when an answer is awaited: the first unanswered record's send, or the last
    /// answer, whichever is later.
    waiting_since: Instant,
    /// The number of our `close`, once sent, and whether its answer came.
    closing: Option<(Txnr, bool)>,
    /// Why the session is unusable, repeated by every later call.
    broken: Option<(SinkErrorKind, String)>,
}

/// What one frame from the server means.
enum Incoming {
    Answer(Txnr, Answer),
    ServerClose,
    Invalid(String),
}

impl RelpSession {
    /// Connects to `connector`'s destination (TCP, or TLS with the configured trust,
    /// server name and client certificate), sends `open` and checks the answer: `200`,
    /// and `syslog` among the commands the server accepts. At most `window` records
    /// (at least 1) will be unanswered at any time.
    pub async fn open(connector: &Connector, window: usize) -> Result<RelpSession, SinkError> {
        let stream = connector.connect_stream().await?;
        let mut session = RelpSession {
            stream,
            destination: connector.destination().clone(),
            window: window.max(1),
            next: Txnr::FIRST,
            out: Vec::with_capacity(4096),
            written: 0,
            unanswered: VecDeque::with_capacity(window.max(1)),
            answers: Vec::with_capacity(window.max(1)),
            parser: Parser::new(DEFAULT_MAX_ANSWER_DATA),
            read_buf: vec![0; READ_SIZE].into_boxed_slice(),
            waiting_since: Instant::now(),
            closing: None,
            broken: None,
        };
        session.handshake().await?;
        Ok(session)
    }

    /// The destination, for messages.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The window: records that may be unanswered at once.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Records sent on this session (or waiting in the output buffer) and not answered.
    pub fn unanswered(&self) -> usize {
        self.unanswered.len()
    }

    /// Their transaction numbers, oldest first. After the session broke these are the
    /// records that must be sent again.
    pub fn unanswered_txnrs(&self) -> impl Iterator<Item = Txnr> + '_ {
        self.unanswered.iter().copied()
    }

    /// Whether the session broke (every call returns an error then).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Adds one `syslog` command carrying `record` (header and message, without any
    /// framing) to the output buffer and returns its transaction number. When the
    /// window is full it first flushes and reads answers until one arrived (they are
    /// kept for [`RelpSession::take_answers`]).
    pub async fn send(&mut self, record: &[u8]) -> Result<Txnr, SinkError> {
        self.check()?;
        if self.unanswered.len() >= self.window {
            self.flush().await?;
            let low_water = self.window - (self.window / 2).max(1);
            while self.unanswered.len() > low_water {
                self.read_once().await?;
            }
        }
        let txnr = self.next;
        if let Err(e) = frame::encode(&mut self.out, txnr, Command::Syslog, record) {
            // Nothing was appended: the session is still good, only this record is not.
            return Err(self.error(
                SinkErrorKind::Write,
                format!("record of {} bytes cannot be sent: {e}", record.len()),
            ));
        }
        self.next = txnr.next();
        if self.unanswered.is_empty() {
            self.waiting_since = Instant::now();
        }
        self.unanswered.push_back(txnr);
        if self.out.len() - self.written >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(txnr)
    }

    /// Writes everything buffered to the socket (one write when the kernel takes it
    /// all) and flushes TLS. Cancel-safe.
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        self.check()?;
        let deadline = Instant::now() + WRITE_TIMEOUT;
        while self.written < self.out.len() {
            match timeout_at(deadline, self.stream.write(&self.out[self.written..])).await {
                Ok(Ok(0)) => {
                    return Err(self.fail(
                        SinkErrorKind::Write,
                        "write failed: the connection takes no more bytes".into(),
                    ));
                }
                Ok(Ok(n)) => self.written += n,
                Ok(Err(e)) => return Err(self.io_failed("write failed", &e)),
                Err(_) => return Err(self.write_timed_out()),
            }
        }
        match timeout_at(deadline, self.stream.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.io_failed("write failed", &e)),
            Err(_) => return Err(self.write_timed_out()),
        }
        self.out.clear();
        self.written = 0;
        // A burst of large records must not keep a large buffer for the session.
        if self.out.capacity() > 4 * FLUSH_AT {
            self.out = Vec::with_capacity(4096);
        }
        Ok(())
    }

    /// Waits until at least one answer is waiting to be taken: returns at once if one
    /// is, else flushes what is buffered and reads. Cancel-safe (for `tokio::select!`).
    /// `Err` when the session broke: the connection closed or failed, the server sent
    /// `serverclose` or something that is not RELP, or no answer came for
    /// [`ANSWER_TIMEOUT`] with records unanswered. Answers read before the break are
    /// still kept for [`RelpSession::take_answers`].
    ///
    /// With nothing unanswered it waits without a deadline, which is how an idle
    /// session learns that the server closed it.
    pub async fn read_answers(&mut self) -> Result<(), SinkError> {
        self.check()?;
        if !self.answers.is_empty() {
            return Ok(());
        }
        self.flush().await?;
        while self.answers.is_empty() {
            self.read_once().await?;
        }
        Ok(())
    }

    /// The answers read so far, in the order they arrived, each with the transaction
    /// number [`RelpSession::send`] returned for its record.
    pub fn take_answers(&mut self) -> impl Iterator<Item = (Txnr, Answer)> + '_ {
        self.answers.drain(..)
    }

    /// Ends the session within `within`: sends `close`, waits for its answer (and for
    /// the answers still due), then closes the stream (TLS close_notify, FIN). Returns
    /// the answers not taken yet, including those that arrived while closing. Never
    /// fails: a peer that does not cooperate is dropped when the time is up.
    pub async fn close(mut self, within: Duration) -> Vec<(Txnr, Answer)> {
        let deadline = Instant::now() + within;
        if self.broken.is_none() {
            let txnr = self.next;
            self.next = txnr.next();
            self.closing = Some((txnr, false));
            let orderly = async {
                frame::encode(&mut self.out, txnr, Command::Close, b"")
                    .expect("an empty close frame always encodes");
                self.flush().await?;
                while self.closing != Some((txnr, true)) {
                    self.read_once().await?;
                }
                Ok::<(), SinkError>(())
            };
            match timeout_at(deadline, orderly).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(destination = %self.destination, error = %e, "relp close was not answered");
                }
                Err(_) => {
                    tracing::debug!(destination = %self.destination, "relp close was not answered in time");
                }
            }
        }
        let finish = async {
            // For TLS, shutdown sends close_notify before the TCP FIN.
            let _ = self.stream.shutdown().await;
            loop {
                match self.stream.read(&mut self.read_buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        if timeout_at(deadline, finish).await.is_err() {
            tracing::debug!(destination = %self.destination, "relp connection did not close in time; dropped");
        }
        std::mem::take(&mut self.answers)
    }

    /// Sends `open` and reads the server's answer.
    async fn handshake(&mut self) -> Result<(), SinkError> {
        let offer = format!("relp_version=0\nrelp_software={SOFTWARE}\ncommands=syslog");
        let txnr = self.next;
        frame::encode(&mut self.out, txnr, Command::Open, offer.as_bytes())
            .expect("the open offer is far below the frame size limit");
        self.next = txnr.next();
        self.flush().await?;

        let port = self.destination.port;
        let not_relp = |why: String| {
            format!(
                "{why}: the receiver does not speak relp; check that port {port} is a relp input (rsyslog imrelp) and that protocol matches it"
            )
        };
        // A TLS receiver that wants a client certificate it did not get (or does not
        // trust) ends the session right after the handshake, which the client already
        // counted as complete.
        let cert_hint = match self.stream {
            Stream::Tls(_) => {
                " (does it require a client certificate? check cert_file and key_file)"
            }
            Stream::Tcp(_) => "",
        };
        let deadline = Instant::now() + OPEN_TIMEOUT;
        let mut buf = std::mem::take(&mut self.read_buf);
        let answer = loop {
            let n = match timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => {
                    break Err((
                        SinkErrorKind::Timeout,
                        not_relp(format!(
                            "no answer to the relp open within {}s",
                            OPEN_TIMEOUT.as_secs()
                        )),
                    ));
                }
                Ok(Ok(0)) if !cert_hint.is_empty() => {
                    break Err((
                        SinkErrorKind::Tls,
                        format!(
                            "the receiver closed the tls session without answering the relp open{cert_hint}"
                        ),
                    ));
                }
                Ok(Ok(0)) => {
                    break Err((
                        SinkErrorKind::Connect,
                        "the receiver closed the connection without answering the relp open; it may not speak relp (check port and protocol) or may refuse this client (check its allowed senders, and its log)".to_owned(),
                    ));
                }
                Ok(Err(e)) => {
                    let tls = !cert_hint.is_empty()
                        && (is_tls_error(&e) || e.kind() == io::ErrorKind::UnexpectedEof);
                    let mut why = describe_stream_error(&e);
                    if tls && !why.contains("cert_file") {
                        why.push_str(cert_hint);
                    }
                    let kind = if tls {
                        SinkErrorKind::Tls
                    } else {
                        SinkErrorKind::Connect
                    };
                    break Err((
                        kind,
                        format!("waiting for the answer to the relp open: {why}"),
                    ));
                }
                Ok(Ok(n)) => n,
            };
            let mut input = &buf[..n];
            match self.parser.next_frame(&mut input) {
                Err(e) => {
                    break Err((
                        SinkErrorKind::Connect,
                        not_relp(format!(
                            "the answer to the relp open is not relp ({e}; it began {})",
                            printable(&buf[..n.min(40)], 40)
                        )),
                    ));
                }
                Ok(None) => continue,
                Ok(Some(frame)) => {
                    let result = check_open_answer(&frame, txnr);
                    // The server sends nothing else before our first record.
                    let extra = !input.is_empty();
                    break match result {
                        Ok(()) if extra => Err((
                            SinkErrorKind::Connect,
                            "the receiver sent more than the answer to the relp open".to_owned(),
                        )),
                        Ok(()) => Ok(()),
                        Err(e) => Err((SinkErrorKind::Connect, e)),
                    };
                }
            }
        };
        self.read_buf = buf;
        match answer {
            Ok(()) => Ok(()),
            Err((kind, message)) => Err(self.fail(kind, message)),
        }
    }

    /// One read from the socket, with every complete frame in it handled. Cancel-safe:
    /// nothing changes until the read returned.
    async fn read_once(&mut self) -> Result<(), SinkError> {
        let waiting = !self.unanswered.is_empty() || self.closing.is_some();
        let read = if waiting {
            let deadline = self.waiting_since + ANSWER_TIMEOUT;
            match timeout_at(deadline, self.stream.read(&mut self.read_buf)).await {
                Ok(read) => read,
                Err(_) => {
                    return Err(self.fail(
                        SinkErrorKind::Timeout,
                        format!(
                            "no answer from the receiver for {}s",
                            ANSWER_TIMEOUT.as_secs()
                        ),
                    ));
                }
            }
        } else {
            self.stream.read(&mut self.read_buf).await
        };
        match read {
            Ok(0) => {
                if matches!(self.closing, Some((_, true))) {
                    return Ok(());
                }
                Err(self.fail(
                    SinkErrorKind::PeerClosed,
                    "the receiver closed the connection".into(),
                ))
            }
            Ok(n) => self.absorb(n),
            Err(e) => Err(self.io_failed("the connection is broken", &e)),
        }
    }

    /// Handles the frames in `read_buf[..n]`.
    fn absorb(&mut self, n: usize) -> Result<(), SinkError> {
        let buf = std::mem::take(&mut self.read_buf);
        let result = self.absorb_from(&buf[..n]);
        self.read_buf = buf;
        result
    }

    fn absorb_from(&mut self, mut input: &[u8]) -> Result<(), SinkError> {
        loop {
            let incoming = match self.parser.next_frame(&mut input) {
                Ok(Some(frame)) => classify(&frame),
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.protocol_error(&e)),
            };
            match incoming {
                Incoming::Answer(txnr, answer) => self.answered(txnr, answer)?,
                Incoming::ServerClose => {
                    return Err(self.fail(
                        SinkErrorKind::PeerClosed,
                        "the receiver ended the relp session (serverclose)".into(),
                    ));
                }
                Incoming::Invalid(why) => {
                    return Err(self.fail(
                        SinkErrorKind::PeerClosed,
                        format!("the receiver broke the relp protocol: {why}"),
                    ));
                }
            }
        }
    }

    fn answered(&mut self, txnr: Txnr, answer: Answer) -> Result<(), SinkError> {
        if let Some((close, done)) = &mut self.closing
            && *close == txnr
        {
            *done = true;
            return Ok(());
        }
        // Servers answer in order, so this is nearly always the first one.
        let Some(at) = self.unanswered.iter().position(|&t| t == txnr) else {
            return Err(self.fail(
                SinkErrorKind::PeerClosed,
                format!(
                    "the receiver broke the relp protocol: an answer for transaction {txnr}, which is not waiting for one"
                ),
            ));
        };
        self.unanswered.remove(at);
        self.answers.push((txnr, answer));
        self.waiting_since = Instant::now();
        Ok(())
    }

    fn check(&self) -> Result<(), SinkError> {
        match &self.broken {
            Some((kind, message)) => Err(self.error(*kind, message.clone())),
            None => Ok(()),
        }
    }

    /// Marks the session broken and returns the error, with the unanswered count.
    fn fail(&mut self, kind: SinkErrorKind, message: String) -> SinkError {
        let message = match self.unanswered.len() {
            0 => message,
            1 => format!("{message} (1 record unanswered on this session)"),
            n => format!("{message} ({n} records unanswered on this session)"),
        };
        self.broken = Some((kind, message.clone()));
        self.error(kind, message)
    }

    fn io_failed(&mut self, what: &str, e: &io::Error) -> SinkError {
        let kind = if is_tls_error(e) {
            SinkErrorKind::Tls
        } else if what.starts_with("write") {
            SinkErrorKind::Write
        } else {
            SinkErrorKind::PeerClosed
        };
        self.fail(kind, format!("{what}: {}", describe_stream_error(e)))
    }

    fn write_timed_out(&mut self) -> SinkError {
        self.fail(
            SinkErrorKind::Timeout,
            format!(
                "write timed out after {}s (the receiver is not reading)",
                WRITE_TIMEOUT.as_secs()
            ),
        )
    }

    fn protocol_error(&mut self, e: &FrameError) -> SinkError {
        self.fail(
            SinkErrorKind::PeerClosed,
            format!("the receiver broke the relp protocol: {e}"),
        )
    }

    fn error(&self, kind: SinkErrorKind, message: impl Into<String>) -> SinkError {
        SinkError::new(kind, &self.destination, message)
    }
}

impl std::fmt::Debug for RelpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelpSession")
            .field("destination", &self.destination)
            .field("window", &self.window)
            .field("next", &self.next)
            .field("unanswered", &self.unanswered.len())
            .field("answers", &self.answers.len())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// What a frame from the server means for this client.
fn classify(frame: &frame::Frame<'_>) -> Incoming {
    match frame.known_command() {
        Some(Command::Rsp) => match Response::parse(frame.data) {
            Ok(rsp) if rsp.is_ok() => Incoming::Answer(frame.txnr, Answer::Accepted),
            Ok(rsp) => Incoming::Answer(
                frame.txnr,
                Answer::Refused {
                    code: rsp.code,
                    text: printable(rsp.text, MAX_TEXT_LEN),
                },
            ),
            Err(e) => Incoming::Invalid(format!("{e} (transaction {})", frame.txnr)),
        },
        Some(Command::ServerClose) => Incoming::ServerClose,
        _ => Incoming::Invalid(format!(
            "unexpected command {:?} from the server",
            frame.command
        )),
    }
}

/// Checks the answer to `open` (transaction `txnr`): `200`, and `syslog` accepted.
fn check_open_answer(frame: &frame::Frame<'_>, txnr: Txnr) -> Result<(), String> {
    match frame.known_command() {
        Some(Command::Rsp) if frame.txnr == txnr => {}
        Some(Command::ServerClose) => {
            return Err(
                "the receiver ended the relp session (serverclose) instead of answering the open"
                    .to_owned(),
            );
        }
        _ => {
            return Err(format!(
                "the receiver sent {:?} (transaction {}) instead of the answer to the relp open",
                frame.command, frame.txnr
            ));
        }
    }
    let rsp = Response::parse(frame.data).map_err(|e| format!("answer to the relp open: {e}"))?;
    if !rsp.is_ok() {
        return Err(format!(
            "the receiver refused the relp session: {} {}",
            rsp.code,
            printable(rsp.text, MAX_TEXT_LEN)
        ));
    }
    let commands = rsp.offer("commands").unwrap_or_default();
    if !commands.split(|&b| b == b',').any(|c| c == b"syslog") {
        return Err(format!(
            "the receiver does not accept relp syslog commands (it offers commands={})",
            printable(commands, MAX_TEXT_LEN)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame<'a>(txnr: u32, command: &'a str, data: &'a [u8]) -> frame::Frame<'a> {
        frame::Frame {
            txnr: Txnr::new(txnr).unwrap(),
            command,
            data,
        }
    }

    #[test]
    fn the_open_answer_must_be_200_and_accept_syslog() {
        let ok = b"200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n";
        assert_eq!(check_open_answer(&frame(1, "rsp", ok), Txnr::FIRST), Ok(()));
        let several = b"200 OK\ncommands=foo,syslog";
        assert_eq!(
            check_open_answer(&frame(1, "rsp", several), Txnr::FIRST),
            Ok(())
        );

        let refused = check_open_answer(
            &frame(1, "rsp", b"500 required command not supported by client"),
            Txnr::FIRST,
        )
        .unwrap_err();
        assert_eq!(
            refused,
            "the receiver refused the relp session: 500 required command not supported by client"
        );
        let no_syslog =
            check_open_answer(&frame(1, "rsp", b"200 OK\ncommands=other\x1b"), Txnr::FIRST)
                .unwrap_err();
        assert_eq!(
            no_syslog,
            "the receiver does not accept relp syslog commands (it offers commands=other\\u{1b})"
        );
        assert!(check_open_answer(&frame(2, "rsp", ok), Txnr::FIRST).is_err());
        assert!(
            check_open_answer(&frame(0, "serverclose", b""), Txnr::FIRST)
                .unwrap_err()
                .contains("serverclose")
        );
        assert!(check_open_answer(&frame(1, "rsp", b"OK"), Txnr::FIRST).is_err());
    }

    #[test]
    fn answers_are_classified_and_refusal_text_is_made_safe() {
        assert!(matches!(
            classify(&frame(7, "rsp", b"200 OK")),
            Incoming::Answer(t, Answer::Accepted) if t.get() == 7
        ));
        let long = [b"500 no\n\x1b[2J".as_slice(), &[b'x'; 1000]].concat();
        match classify(&frame(8, "rsp", &long)) {
            Incoming::Answer(t, Answer::Refused { code, text }) => {
                assert_eq!((t.get(), code), (8, 500));
                // The text ends at the first LF; what follows is not part of it.
                assert_eq!(text, "no");
            }
            _ => panic!("a refusal"),
        }
        let long = [b"503 ".as_slice(), &[b'y'; 1000]].concat();
        match classify(&frame(9, "rsp", &long)) {
            Incoming::Answer(_, Answer::Refused { text, .. }) => {
                assert_eq!(text.len(), MAX_TEXT_LEN + '…'.len_utf8());
            }
            _ => panic!("a refusal"),
        }
        assert!(matches!(
            classify(&frame(0, "serverclose", b"")),
            Incoming::ServerClose
        ));
        assert!(matches!(
            classify(&frame(3, "syslog", b"x")),
            Incoming::Invalid(_)
        ));
        assert!(matches!(
            classify(&frame(3, "rsp", b"x")),
            Incoming::Invalid(_)
        ));
    }

    /// A RELP server in this process: answers `open` with `open_answer`, then runs
    /// `script` with the accepted socket and a parser for what the client sends.
    async fn scripted_server<F, Fut>(open_answer: &'static [u8], script: F) -> Connector
    where
        F: FnOnce(tokio::net::TcpStream, Parser) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut parser = Parser::new(1 << 20);
            let open = read_frame(&mut socket, &mut parser).await;
            assert_eq!((open.0, open.1.as_str()), (1, "open"));
            let offer = String::from_utf8(open.2).unwrap();
            assert_eq!(
                offer,
                format!("relp_version=0\nrelp_software={SOFTWARE}\ncommands=syslog")
            );
            let mut answer = Vec::new();
            frame::encode(&mut answer, Txnr::FIRST, Command::Rsp, open_answer).unwrap();
            socket.write_all(&answer).await.unwrap();
            script(socket, parser).await;
        });
        let mut config = crate::config::SyslogConfig {
            host: "127.0.0.1".into(),
            port,
            protocol: crate::config::Protocol::Relp,
            framing: crate::config::Framing::Lf,
            format: crate::config::Format::SplunkJson,
            header: crate::config::HeaderFormat::Rfc5424,
            facility: 1,
            app_name: "lookout-mra".into(),
            header_time: crate::config::HeaderTime::Event,
            hostname: "h".into(),
            custom_identifier: None,
            max_message_size: 65536,
            tls: crate::config::TlsConfig {
                ca_file: None,
                client_auth: None,
                verify: false,
                server_name: "localhost".into(),
            },
            relp_window: 128,
            max_events_per_second: 0,
        };
        config.port = port;
        Connector::new(&config).unwrap()
    }

    /// The next whole frame from `socket`, owned.
    async fn read_frame(
        socket: &mut tokio::net::TcpStream,
        parser: &mut Parser,
    ) -> (u32, String, Vec<u8>) {
        let mut byte = [0u8; 1];
        loop {
            assert_eq!(socket.read(&mut byte).await.unwrap(), 1, "client closed");
            let mut input = &byte[..];
            if let Some(f) = parser.next_frame(&mut input).unwrap() {
                return (f.txnr.get(), f.command.to_owned(), f.data.to_vec());
            }
        }
    }

    const OPEN_OK: &[u8] = b"200 OK\nrelp_version=0\nrelp_software=test\ncommands=syslog";

    #[tokio::test]
    async fn refusals_are_answers_and_serverclose_breaks_the_session() {
        let connector = scripted_server(OPEN_OK, |mut socket, mut parser| async move {
            for expected in 2..=4 {
                let (txnr, command, data) = read_frame(&mut socket, &mut parser).await;
                assert_eq!((txnr, command.as_str()), (expected, "syslog"));
                assert_eq!(data, format!("record {expected}").into_bytes());
            }
            socket
                .write_all(b"2 rsp 6 200 OK\n3 rsp 18 500 queue full\x1b[1m\n0 serverclose 0\n")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let mut session = RelpSession::open(&connector, 8).await.unwrap();
        for n in 2..=4 {
            let txnr = session
                .send(format!("record {n}").as_bytes())
                .await
                .unwrap();
            assert_eq!(txnr.get(), n);
        }
        assert_eq!(session.unanswered(), 3);
        let error = loop {
            match session.read_answers().await {
                Ok(()) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(error.kind(), SinkErrorKind::PeerClosed);
        assert_eq!(
            error.to_string(),
            format!(
                "syslog 127.0.0.1:{} (relp): the receiver ended the relp session (serverclose) (1 record unanswered on this session)",
                connector.destination().port
            )
        );
        let answers: Vec<_> = session.take_answers().collect();
        assert_eq!(
            answers,
            vec![
                (Txnr::new(2).unwrap(), Answer::Accepted),
                (
                    Txnr::new(3).unwrap(),
                    Answer::Refused {
                        code: 500,
                        text: "queue full\\u{1b}[1m".into()
                    }
                ),
            ]
        );
        assert_eq!(
            session.unanswered_txnrs().collect::<Vec<_>>(),
            [Txnr::new(4).unwrap()]
        );
        assert_eq!(
            session.flush().await.unwrap_err().kind(),
            SinkErrorKind::PeerClosed
        );
    }

    #[tokio::test]
    async fn read_answers_survives_being_cancelled_mid_frame() {
        const RECORDS: u32 = 50;
        let connector = scripted_server(OPEN_OK, |mut socket, mut parser| async move {
            let mut answers = Vec::new();
            for _ in 0..RECORDS {
                let (txnr, _, _) = read_frame(&mut socket, &mut parser).await;
                frame::encode(
                    &mut answers,
                    Txnr::new(txnr).unwrap(),
                    Command::Rsp,
                    b"200 OK",
                )
                .unwrap();
            }
            // Dribbled out in small pieces, so that reads end inside frames.
            for piece in answers.chunks(5) {
                socket.write_all(piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // Then answer the close.
            let (txnr, command, _) = read_frame(&mut socket, &mut parser).await;
            assert_eq!(command, "close");
            let mut rsp = Vec::new();
            frame::encode(&mut rsp, Txnr::new(txnr).unwrap(), Command::Rsp, b"").unwrap();
            socket.write_all(&rsp).await.unwrap();
        })
        .await;
        let mut session = RelpSession::open(&connector, 64).await.unwrap();
        for n in 0..RECORDS {
            session.send(format!("r{n}").as_bytes()).await.unwrap();
        }
        let mut answered = Vec::new();
        let mut cancelled = 0;
        while answered.len() < RECORDS as usize {
            tokio::select! {
                result = session.read_answers() => result.unwrap(),
                () = tokio::time::sleep(Duration::from_micros(300)) => cancelled += 1,
            }
            answered.extend(session.take_answers());
        }
        let expected: Vec<_> = (2..RECORDS + 2)
            .map(|n| (Txnr::new(n).unwrap(), Answer::Accepted))
            .collect();
        assert_eq!(answered, expected);
        assert!(
            cancelled > 0,
            "the race was never lost, so nothing was tested"
        );
        assert_eq!(session.unanswered(), 0);
        assert!(session.close(Duration::from_secs(2)).await.is_empty());
    }

    #[tokio::test]
    async fn records_wait_for_a_flush_and_a_full_window_drains_to_half() {
        let (told, mut nothing_yet) = tokio::sync::oneshot::channel();
        let connector = scripted_server(OPEN_OK, |mut socket, mut parser| async move {
            // Three records are sent but not flushed: nothing arrives.
            let mut byte = [0u8; 1];
            let quiet =
                tokio::time::timeout(Duration::from_millis(200), socket.read(&mut byte)).await;
            told.send(quiet.is_err()).unwrap();
            let mut txnrs = Vec::new();
            for _ in 0..8 {
                txnrs.push(read_frame(&mut socket, &mut parser).await.0);
            }
            assert_eq!(txnrs, (2..10).collect::<Vec<_>>());
            // Answered one by one, slowly.
            for txnr in txnrs {
                let mut rsp = Vec::new();
                frame::encode(&mut rsp, Txnr::new(txnr).unwrap(), Command::Rsp, b"200 OK").unwrap();
                socket.write_all(&rsp).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let mut session = RelpSession::open(&connector, 8).await.unwrap();
        for n in 0..3 {
            session.send(format!("r{n}").as_bytes()).await.unwrap();
        }
        assert!(
            (&mut nothing_yet).await.unwrap(),
            "records went out before a flush"
        );
        for n in 3..8 {
            session.send(format!("r{n}").as_bytes()).await.unwrap();
        }
        assert_eq!(session.unanswered(), 8);
        // The window is full: this send flushes and waits until half of it is answered.
        session.send(b"r8").await.unwrap();
        assert_eq!(session.take_answers().count(), 4);
        assert_eq!(session.unanswered(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_receiver_that_stops_answering_breaks_the_session_after_the_answer_timeout() {
        let connector = scripted_server(OPEN_OK, |mut socket, mut parser| async move {
            for _ in 0..3 {
                read_frame(&mut socket, &mut parser).await;
            }
            // Reads, never answers, keeps the connection open.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        })
        .await;
        let mut session = RelpSession::open(&connector, 8).await.unwrap();
        // Idle with nothing unanswered: no deadline applies.
        let idle = tokio::time::timeout(Duration::from_secs(120), session.read_answers()).await;
        assert!(idle.is_err(), "an idle session waits as long as it takes");
        for n in 0..3 {
            session.send(format!("r{n}").as_bytes()).await.unwrap();
        }
        let started = Instant::now();
        let error = session.read_answers().await.unwrap_err();
        assert_eq!(error.kind(), SinkErrorKind::Timeout);
        assert!(started.elapsed() >= ANSWER_TIMEOUT);
        assert!(
            error.to_string().ends_with(
                "no answer from the receiver for 30s (3 records unanswered on this session)"
            ),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_refused_open_and_a_missing_syslog_command_are_errors() {
        let connector = scripted_server(
            b"500 required command not supported by client",
            |_, _| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
            },
        )
        .await;
        let error = RelpSession::open(&connector, 8).await.unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("the receiver refused the relp session: 500 required command not supported by client"),
            "{error}"
        );
        let connector = scripted_server(b"200 OK\ncommands=other", |_, _| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let error = RelpSession::open(&connector, 8).await.unwrap_err();
        assert!(error.to_string().contains("commands=other"), "{error}");
    }

    #[test]
    fn the_offer_names_this_software() {
        assert!(SOFTWARE.starts_with("mrav2-syslog-connector,"));
        assert!(SOFTWARE.contains(env!("CARGO_PKG_VERSION")));
        assert!(!SOFTWARE.contains('\n'));
    }
}
