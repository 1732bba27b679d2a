//! Syslog records: the RFC 3164 or RFC 5424 header in front of a rendered message, the
//! `max_message_size` cut, and the transport framing (`docs/formats/syslog.md`).
//!
//! Everything here is pure: a [`RenderedMessage`], a clock reading and a time zone in,
//! bytes appended to a caller-owned buffer out. No I/O, no allocation per record beyond
//! the buffer's growth, and no panic for any input. Which bytes go into which datagram or
//! stream, and when they count as delivered, is [`super::transport`]'s business.
//!
//! Guarantees for every record written:
//!
//! - `PRI = facility × 8 + severity`, the severity taken from the message (clamped to 7).
//! - The record (header + message, framing excluded) is at most `max_message_size`
//!   bytes, cut on a UTF-8 character boundary, and never ends in half of a backslash
//!   escape.
//! - No NUL byte, ever: a NUL in the message (the formatters never produce one) is
//!   written as a space, so a receiver that splits on NUL cannot be confused.
//! - With LF framing the record contains no LF (a debug assertion checks the
//!   formatters' promise; a release build writes a space instead of splitting the
//!   record in two).

use crate::config::{Framing, HeaderFormat, HeaderTime, Protocol, SyslogConfig};
use crate::format::RenderedMessage;
use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDateTime, Timelike, Utc};

/// Writes framed syslog records for one destination.
#[derive(Debug, Clone)]
pub struct RecordWriter {
    header: HeaderFormat,
    facility: u8,
    app_name: String,
    hostname: String,
    header_time: HeaderTime,
    max_message_size: usize,
    framing: WireFraming,
    zone: Zone,
}

/// What [`RecordWriter::write`] did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The record was longer than `max_message_size` and was cut.
    pub truncated: bool,
    /// Bytes of the record (header + message) as written, framing excluded.
    pub record_len: usize,
    /// Bytes appended to the buffer, framing included.
    pub frame_len: usize,
}

/// How records are delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFraming {
    /// Nothing: one record per datagram (UDP).
    None,
    /// The record followed by one LF (TCP/TLS `lf`, stdout).
    Lf,
    /// `MSG-LEN SP RECORD` (RFC 6587 octet counting).
    OctetCounting,
}

/// The time zone of RFC 3164 timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The host's local zone (RFC 3164's convention; honours `TZ`).
    Local,
    /// A fixed offset, for tests and for operators who want one regardless of `TZ`.
    Fixed(FixedOffset),
}

impl WireFraming {
    /// The framing a protocol uses: none for UDP, LF for stdout, the configured one for
    /// TCP and TLS.
    pub fn for_protocol(protocol: Protocol, framing: Framing) -> Self {
        match (protocol, framing) {
            // RELP carries each record in a frame of its own (`super::relp::frame`).
            (Protocol::Udp | Protocol::Relp | Protocol::RelpTls, _) => WireFraming::None,
            (Protocol::Stdout, _) => WireFraming::Lf,
            (Protocol::Tcp | Protocol::Tls, Framing::Lf) => WireFraming::Lf,
            (Protocol::Tcp | Protocol::Tls, Framing::OctetCounting) => WireFraming::OctetCounting,
        }
    }
}

impl Zone {
    fn local_time(self, t: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Local => t.with_timezone(&Local).naive_local(),
            Zone::Fixed(offset) => t.with_timezone(&offset).naive_local(),
        }
    }
}

impl RecordWriter {
    /// A writer for `config`, with RFC 3164 timestamps in the host's local zone.
    pub fn new(config: &SyslogConfig) -> Self {
        Self {
            header: config.header,
            facility: config.facility.min(23),
            app_name: config.app_name.clone(),
            hostname: config.hostname.clone(),
            header_time: config.header_time,
            max_message_size: config.max_message_size,
            framing: WireFraming::for_protocol(config.protocol, config.framing),
            zone: Zone::Local,
        }
    }

    /// The same writer with RFC 3164 timestamps in `zone` instead.
    pub fn with_zone(mut self, zone: Zone) -> Self {
        self.zone = zone;
        self
    }

    /// The framing this writer appends.
    pub fn framing(&self) -> WireFraming {
        self.framing
    }

    /// The largest record it writes, in bytes.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Appends one framed record for `msg` to `out`. `now` is the formatting time (the
    /// header time for `header_time = sent`, and the fallback for `event`).
    pub fn write(&self, msg: &RenderedMessage, now: DateTime<Utc>, out: &mut Vec<u8>) -> Written {
        let start = out.len();
        let (record_len, truncated) = self.write_record(msg, now, out);
        match self.framing {
            WireFraming::None => {}
            WireFraming::Lf => {
                debug_assert!(
                    !out[start..].contains(&b'\n'),
                    "an LF-framed record contains an LF: {:?}",
                    String::from_utf8_lossy(&out[start..])
                );
                // A release build must still not split the record in two.
                if memchr::memchr(b'\n', &out[start..]).is_some() {
                    for b in &mut out[start..] {
                        if *b == b'\n' {
                            *b = b' ';
                        }
                    }
                }
                out.push(b'\n');
            }
            WireFraming::OctetCounting => {
                let mut digits = [0u8; 20];
                let prefix = decimal(record_len, &mut digits);
                // The record is already in place; slide it right by the prefix. Records
                // are small next to a network round trip, so one move is cheaper than
                // rendering twice to learn the length first.
                out.splice(start..start, prefix.iter().copied().chain([b' ']));
            }
        }
        Written {
            truncated,
            record_len,
            frame_len: out.len() - start,
        }
    }

    /// Appends the record for `msg` (header + message, cut to `max_message_size`) to
    /// `out`, without framing. Returns its length and whether it was cut.
    pub fn write_record(
        &self,
        msg: &RenderedMessage,
        now: DateTime<Utc>,
        out: &mut Vec<u8>,
    ) -> (usize, bool) {
        let start = out.len();
        let time = self.header_time(msg, now);
        let pri = u32::from(self.facility) * 8 + u32::from(msg.severity.min(7));
        out.push(b'<');
        push_decimal(out, pri as usize);
        out.push(b'>');
        match self.header {
            HeaderFormat::Rfc3164 => {
                push_rfc3164_time(out, self.zone.local_time(time));
                out.push(b' ');
                push_field(out, &self.hostname);
                out.push(b' ');
                if !self.app_name.is_empty() {
                    out.extend_from_slice(self.app_name.as_bytes());
                    out.extend_from_slice(b": ");
                }
            }
            HeaderFormat::Rfc5424 => {
                out.extend_from_slice(b"1 ");
                push_rfc5424_time(out, time);
                out.push(b' ');
                push_field(out, &self.hostname);
                out.push(b' ');
                push_field(out, &self.app_name);
                out.extend_from_slice(b" - ");
                match msg.msgid.as_deref().filter(|id| is_valid_msgid(id)) {
                    Some(id) => out.extend_from_slice(id.as_bytes()),
                    None => out.push(b'-'),
                }
                out.extend_from_slice(b" - ");
            }
        }
        let text_start = out.len();
        out.extend_from_slice(msg.text.as_bytes());
        if memchr::memchr(0, &out[text_start..]).is_some() {
            for b in &mut out[text_start..] {
                if *b == 0 {
                    *b = b' ';
                }
            }
        }
        let len = out.len() - start;
        if len <= self.max_message_size {
            return (len, false);
        }
        let cut = truncation_point(&out[start..], self.max_message_size);
        out.truncate(start + cut);
        (cut, true)
    }

    fn header_time(&self, msg: &RenderedMessage, now: DateTime<Utc>) -> DateTime<Utc> {
        let chosen = match self.header_time {
            HeaderTime::Event => msg.event_time.map(|t| t.with_timezone(&Utc)),
            HeaderTime::Sent => None,
        };
        // A year outside 0000–9999 cannot be written as an RFC 3339 timestamp; such an
        // event time is as unusable as an unparseable one.
        chosen
            .filter(|t| (0..=9999).contains(&t.year()))
            .unwrap_or(now)
    }
}

/// The length to cut `record` to so that it fits in `max` bytes: the last UTF-8
/// character boundary at or below `max`, one byte less if that leaves an odd number of
/// trailing backslashes (half of an escape). `record` must be valid UTF-8 for the
/// boundary rule to mean anything; any byte string gives a result `≤ max`.
pub fn truncation_point(record: &[u8], max: usize) -> usize {
    if record.len() <= max {
        return record.len();
    }
    let mut cut = max;
    // A UTF-8 continuation byte (10xxxxxx) cannot start a character.
    while cut > 0 && (record[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    let backslashes = record[..cut]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    if backslashes % 2 == 1 {
        cut -= 1;
    }
    cut
}

/// Whether `id` may be an RFC 5424 MSGID: 1–32 printable US-ASCII characters (33–126).
pub fn is_valid_msgid(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| (33..=126).contains(&b))
}

/// Appends `value` escaped as an RFC 5424 SD-PARAM value (RFC 5424 section 6.3.3): `"`, `\` and `]`
/// get a backslash in front. The sink writes STRUCTURED-DATA as `-` today; this is for
/// the day it carries parameters.
pub fn escape_sd_param_value(value: &str, out: &mut String) {
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// An RFC 5424 header field: the value, or the NILVALUE `-` when it is empty.
fn push_field(out: &mut Vec<u8>, value: &str) {
    if value.is_empty() {
        out.push(b'-');
    } else {
        out.extend_from_slice(value.as_bytes());
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Mmm dd hh:mm:ss`, the day padded with a space.
fn push_rfc3164_time(out: &mut Vec<u8>, t: NaiveDateTime) {
    out.extend_from_slice(MONTHS[t.month0() as usize % 12]);
    out.push(b' ');
    let day = t.day();
    out.push(if day < 10 {
        b' '
    } else {
        b'0' + (day / 10) as u8
    });
    out.push(b'0' + (day % 10) as u8);
    out.push(b' ');
    push_hms(out, t.hour(), t.minute(), t.second());
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` in UTC.
fn push_rfc5424_time(out: &mut Vec<u8>, t: DateTime<Utc>) {
    let year = t.year().clamp(0, 9999) as u32;
    push_padded(out, year, 4);
    out.push(b'-');
    push_padded(out, t.month(), 2);
    out.push(b'-');
    push_padded(out, t.day(), 2);
    out.push(b'T');
    push_hms(out, t.hour(), t.minute(), t.second());
    out.push(b'.');
    // A leap second shows as nanoseconds ≥ 1e9; keep three digits.
    push_padded(out, (t.nanosecond() / 1_000_000).min(999), 3);
    out.push(b'Z');
}

fn push_hms(out: &mut Vec<u8>, h: u32, m: u32, s: u32) {
    push_padded(out, h, 2);
    out.push(b':');
    push_padded(out, m, 2);
    out.push(b':');
    push_padded(out, s.min(59), 2);
}

/// `value` in decimal, left-padded with zeros to `width` digits.
fn push_padded(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut digits = [0u8; 20];
    let d = decimal(value as usize, &mut digits);
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(d.len())));
    out.extend_from_slice(d);
}

fn push_decimal(out: &mut Vec<u8>, value: usize) {
    let mut digits = [0u8; 20];
    out.extend_from_slice(decimal(value, &mut digits));
}

/// `value` in decimal without leading zeros, written into the end of `buf`.
fn decimal(mut value: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, TlsConfig};
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn config(header: HeaderFormat, protocol: Protocol, framing: Framing) -> SyslogConfig {
        SyslogConfig {
            host: "127.0.0.1".into(),
            port: 514,
            protocol,
            framing,
            format: Format::Leef { delimiter: '\t' },
            header,
            facility: 1,
            app_name: "lookout-mra".into(),
            header_time: HeaderTime::Event,
            hostname: "lookout-mes".into(),
            custom_identifier: None,
            max_message_size: 65536,
            relp_window: 128,
            max_events_per_second: 0,
            tls: TlsConfig {
                ca_file: None,
                client_auth: None,
                verify: true,
                server_name: "127.0.0.1".into(),
            },
        }
    }

    fn writer(header: HeaderFormat) -> RecordWriter {
        RecordWriter::new(&config(header, Protocol::Udp, Framing::Lf)).with_zone(utc())
    }

    fn utc() -> Zone {
        Zone::Fixed(FixedOffset::east_opt(0).expect("0 is a valid offset"))
    }

    fn message(text: &str) -> RenderedMessage {
        RenderedMessage {
            text: text.into(),
            severity: 3,
            event_time: Some(
                DateTime::parse_from_rfc3339("2026-11-05T08:12:44.318+00:00")
                    .expect("valid RFC 3339"),
            ),
            msgid: Some("THREAT".into()),
            event_id: Some("01a1aac4-759e-7c9d-bf7a-861b26a9b1a3".into()),
            altered: false,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 14, 3, 9)
            .single()
            .expect("valid date")
    }

    fn render(w: &RecordWriter, msg: &RenderedMessage) -> String {
        let mut out = Vec::new();
        w.write(msg, now(), &mut out);
        String::from_utf8(out).expect("records are UTF-8")
    }

    // The golden lines of `docs/formats/leef.md#worked-examples` (threat-network.json),
    // header part.
    #[test]
    fn golden_rfc3164_header() {
        let line = render(
            &writer(HeaderFormat::Rfc3164),
            &message("LEEF:2.0|Lookout|"),
        );
        assert_eq!(
            line,
            "<11>Nov  5 08:12:44 lookout-mes lookout-mra: LEEF:2.0|Lookout|"
        );
    }

    #[test]
    fn golden_rfc5424_header() {
        let line = render(
            &writer(HeaderFormat::Rfc5424),
            &message("LEEF:2.0|Lookout|"),
        );
        assert_eq!(
            line,
            "<11>1 2026-11-05T08:12:44.318Z lookout-mes lookout-mra - THREAT - LEEF:2.0|Lookout|"
        );
    }

    #[test]
    fn pri_is_facility_times_eight_plus_severity() {
        let mut cfg = config(HeaderFormat::Rfc3164, Protocol::Udp, Framing::Lf);
        for (facility, severity, pri) in [(1, 3, "<11>"), (20, 3, "<163>"), (0, 0, "<0>")] {
            cfg.facility = facility;
            let w = RecordWriter::new(&cfg).with_zone(utc());
            let mut m = message("x");
            m.severity = severity;
            assert!(render(&w, &m).starts_with(pri), "{facility} {severity}");
        }
        cfg.facility = 23;
        let w = RecordWriter::new(&cfg).with_zone(utc());
        let mut m = message("x");
        m.severity = 7;
        assert!(render(&w, &m).starts_with("<191>"));
        // An out-of-range severity cannot push the PRI past 191.
        m.severity = 200;
        assert!(render(&w, &m).starts_with("<191>"));
    }

    #[test]
    fn rfc3164_day_is_space_padded_and_two_digit_days_are_not() {
        let w = writer(HeaderFormat::Rfc3164);
        let mut m = message("x");
        m.event_time =
            Some(DateTime::parse_from_rfc3339("2026-01-09T00:00:00Z").expect("valid RFC 3339"));
        assert!(render(&w, &m).starts_with("<11>Jan  9 00:00:00 "));
        m.event_time =
            Some(DateTime::parse_from_rfc3339("2026-12-31T23:59:59Z").expect("valid RFC 3339"));
        assert!(render(&w, &m).starts_with("<11>Dec 31 23:59:59 "));
    }

    #[test]
    fn rfc3164_uses_the_given_zone() {
        let plus2 = Zone::Fixed(FixedOffset::east_opt(2 * 3600).expect("valid offset"));
        let w = writer(HeaderFormat::Rfc3164).with_zone(plus2);
        assert!(render(&w, &message("x")).starts_with("<11>Nov  5 10:12:44 "));
        // An event time with its own offset is the same instant.
        let mut m = message("x");
        m.event_time = Some(
            DateTime::parse_from_rfc3339("2026-11-05T03:12:44-05:00").expect("valid RFC 3339"),
        );
        assert!(render(&w, &m).starts_with("<11>Nov  5 10:12:44 "));
    }

    #[test]
    fn rfc3164_empty_app_name_omits_tag_and_colon() {
        let mut cfg = config(HeaderFormat::Rfc3164, Protocol::Udp, Framing::Lf);
        cfg.app_name = String::new();
        let w = RecordWriter::new(&cfg).with_zone(utc());
        assert_eq!(
            render(&w, &message("LEEF:2.0|x")),
            "<11>Nov  5 08:12:44 lookout-mes LEEF:2.0|x"
        );
    }

    #[test]
    fn rfc5424_nilvalues() {
        let mut cfg = config(HeaderFormat::Rfc5424, Protocol::Udp, Framing::Lf);
        cfg.app_name = String::new();
        let w = RecordWriter::new(&cfg);
        let mut m = message("{}");
        m.msgid = None;
        assert_eq!(
            render(&w, &m),
            "<11>1 2026-11-05T08:12:44.318Z lookout-mes - - - - {}"
        );
    }

    #[test]
    fn rfc5424_msgid_is_sanitised() {
        let w = writer(HeaderFormat::Rfc5424);
        let long = "A".repeat(33);
        for (id, field) in [
            ("SMISHING_ALERT", "SMISHING_ALERT"),
            ("", "-"),
            ("HAS SPACE", "-"),
            ("TÜRKÇE", "-"),
            ("TAB\tX", "-"),
            (long.as_str(), "-"),
            (&long[..32], &long[..32]),
        ] {
            let mut m = message("x");
            m.msgid = Some(id.into());
            let line = render(&w, &m);
            let expected = format!("lookout-mra - {field} - x");
            assert!(line.ends_with(&expected), "{id:?}: {line}");
        }
    }

    #[test]
    fn rfc5424_time_is_utc_with_milliseconds() {
        let w = writer(HeaderFormat::Rfc5424);
        let mut m = message("x");
        m.event_time = Some(
            DateTime::parse_from_rfc3339("2026-11-05T13:00:02+02:00").expect("valid RFC 3339"),
        );
        assert!(render(&w, &m).starts_with("<11>1 2026-11-05T11:00:02.000Z "));
        m.event_time = Some(
            DateTime::parse_from_rfc3339("2026-11-05T11:00:02.123456789Z").expect("valid RFC 3339"),
        );
        assert!(render(&w, &m).starts_with("<11>1 2026-11-05T11:00:02.123Z "));
    }

    #[test]
    fn header_time_event_falls_back_to_now_and_sent_uses_now() {
        let w = writer(HeaderFormat::Rfc5424);
        let mut m = message("x");
        m.event_time = None;
        assert!(render(&w, &m).starts_with("<11>1 2026-11-22T14:03:09.000Z "));

        let mut cfg = config(HeaderFormat::Rfc5424, Protocol::Udp, Framing::Lf);
        cfg.header_time = HeaderTime::Sent;
        let w = RecordWriter::new(&cfg);
        assert!(render(&w, &message("x")).starts_with("<11>1 2026-11-22T14:03:09.000Z "));

        cfg.header = HeaderFormat::Rfc3164;
        let w = RecordWriter::new(&cfg).with_zone(utc());
        assert!(render(&w, &message("x")).starts_with("<11>Nov 22 14:03:09 "));
    }

    #[test]
    fn framing_per_protocol() {
        let cases = [
            (
                Protocol::Udp,
                Framing::OctetCounting,
                "<11>1 2026-11-05T08:12:44.318Z lookout-mes lookout-mra - THREAT - é",
            ),
            (
                Protocol::Stdout,
                Framing::OctetCounting,
                "<11>1 2026-11-05T08:12:44.318Z lookout-mes lookout-mra - THREAT - é\n",
            ),
            (
                Protocol::Tcp,
                Framing::Lf,
                "<11>1 2026-11-05T08:12:44.318Z lookout-mes lookout-mra - THREAT - é\n",
            ),
            (
                Protocol::Tls,
                Framing::OctetCounting,
                "68 <11>1 2026-11-05T08:12:44.318Z lookout-mes lookout-mra - THREAT - é",
            ),
        ];
        for (protocol, framing, expected) in cases {
            let w = RecordWriter::new(&config(HeaderFormat::Rfc5424, protocol, framing));
            let mut out = b"previous".to_vec();
            let written = w.write(&message("é"), now(), &mut out);
            assert_eq!(&out[..8], b"previous", "appends");
            assert_eq!(String::from_utf8_lossy(&out[8..]), expected, "{protocol:?}");
            assert_eq!(written.frame_len, expected.len());
            assert_eq!(written.record_len, 68);
        }
    }

    #[test]
    fn nul_is_never_written() {
        let w = RecordWriter::new(&config(
            HeaderFormat::Rfc3164,
            Protocol::Tcp,
            Framing::OctetCounting,
        ));
        let mut out = Vec::new();
        w.write(&message("a\0b\0"), now(), &mut out);
        assert!(!out.contains(&0));
        assert!(out.ends_with(b"a b "));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "contains an LF")]
    fn lf_in_an_lf_framed_record_is_a_bug() {
        let w = RecordWriter::new(&config(HeaderFormat::Rfc3164, Protocol::Tcp, Framing::Lf));
        w.write(&message("a\nb"), now(), &mut Vec::new());
    }

    #[test]
    fn truncation_cuts_on_a_character_boundary() {
        let mut cfg = config(HeaderFormat::Rfc5424, Protocol::Udp, Framing::Lf);
        let header = "<11>1 2026-11-05T08:12:44.318Z lookout-mes lookout-mra - THREAT - ";
        // "é" is two bytes; a limit that falls inside the third one backs off.
        cfg.max_message_size = header.len() + 5;
        let w = RecordWriter::new(&cfg);
        let mut out = Vec::new();
        let written = w.write(&message("éééé"), now(), &mut out);
        assert!(written.truncated);
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            format!("{header}éé")
        );
        assert_eq!(written.record_len, header.len() + 4);

        // Exactly at the limit: not truncated.
        cfg.max_message_size = header.len() + 8;
        let w = RecordWriter::new(&cfg);
        let written = w.write(&message("éééé"), now(), &mut Vec::new());
        assert!(!written.truncated);
    }

    #[test]
    fn truncation_never_leaves_half_an_escape() {
        assert_eq!(truncation_point(b"ab\\\\cd", 3), 2); // "ab\" → "ab"
        assert_eq!(truncation_point(b"ab\\\\cd", 4), 4); // "ab\\" is a whole escape
        assert_eq!(truncation_point(b"a\\\\\\x", 4), 3); // three backslashes → two
        assert_eq!(truncation_point(b"abc", 10), 3);
        assert_eq!(truncation_point(b"abc", 0), 0);
    }

    #[test]
    fn sd_param_values_are_escaped() {
        let mut out = String::new();
        escape_sd_param_value(r#"a"b\c]d[e"#, &mut out);
        assert_eq!(out, r#"a\"b\\c\]d[e"#);
    }

    #[test]
    fn decimal_has_no_leading_zeros() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(1024, &mut buf), b"1024");
        assert_eq!(
            decimal(usize::MAX, &mut buf),
            usize::MAX.to_string().as_bytes()
        );
    }

    proptest! {
        #[test]
        fn truncation_never_splits_a_character(text in "\\PC{0,64}", max in 0usize..300) {
            let cut = truncation_point(text.as_bytes(), max);
            prop_assert!(cut <= max);
            prop_assert!(cut <= text.len());
            prop_assert!(text.is_char_boundary(cut));
            if text.len() <= max {
                prop_assert_eq!(cut, text.len());
            } else {
                let trailing = text[..cut].bytes().rev().take_while(|&b| b == b'\\').count();
                prop_assert_eq!(trailing % 2, 0);
                // Only the boundary and escape rules shorten it further.
                prop_assert!(max - cut <= 4);
            }
        }

        #[test]
        fn records_fit_the_limit_and_stay_utf8(
            text in "[a-z\\\\é東\u{1F600}\t\"]{0,200}",
            max in 1usize..400,
            octets in any::<bool>(),
        ) {
            let mut cfg = config(
                HeaderFormat::Rfc3164,
                Protocol::Tcp,
                if octets { Framing::OctetCounting } else { Framing::Lf },
            );
            cfg.max_message_size = max;
            let w = RecordWriter::new(&cfg).with_zone(utc());
            let mut out = Vec::new();
            let written = w.write(&message(&text), now(), &mut out);
            prop_assert!(written.record_len <= max);
            let record = if octets {
                let sp = out.iter().position(|&b| b == b' ').expect("octet count then space");
                let len: usize = std::str::from_utf8(&out[..sp]).expect("ASCII").parse().expect("number");
                prop_assert_eq!(len, out.len() - sp - 1);
                prop_assert!(out[0] != b'0');
                &out[sp + 1..]
            } else {
                prop_assert_eq!(out.last(), Some(&b'\n'));
                &out[..out.len() - 1]
            };
            prop_assert_eq!(record.len(), written.record_len);
            prop_assert!(std::str::from_utf8(record).is_ok());
            prop_assert!(!out.contains(&0));
        }

        #[test]
        fn octet_count_is_the_byte_length(text in "\\PC{0,300}", with_nul in any::<bool>()) {
            let text = if with_nul { format!("{text}\0{text}") } else { text };
            let w = RecordWriter::new(&config(
                HeaderFormat::Rfc5424,
                Protocol::Tls,
                Framing::OctetCounting,
            ));
            let mut out = Vec::new();
            let written = w.write(&message(&text), now(), &mut out);
            let prefix = format!("{} ", written.record_len);
            prop_assert!(out.starts_with(prefix.as_bytes()));
            prop_assert_eq!(out.len(), prefix.len() + written.record_len);
            prop_assert!(!out.contains(&0));
            prop_assert!(!written.truncated);
        }
    }
}
