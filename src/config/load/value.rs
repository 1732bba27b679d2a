//! Value rules: how one configuration value is read, whatever section it is in.
//!
//! Pure functions from the text of a value to what it means (`parse_*`, `None` when the
//! text is not acceptable) or to whether it is acceptable (`is_*`). They know nothing of
//! sections, inheritance or messages; the section loaders pick the rule, the default and
//! the message. Enumerated values are case-insensitive.

use crate::config::{Framing, HeaderFormat, HeaderTime, Protocol};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// The message for a value [`parse_bool`] rejects.
pub(super) const BOOL_MSG: &str = "not a boolean; expected true, false, yes, no, on, off, 1 or 0";

/// A machine host name made usable as a syslog HOSTNAME: every character outside
/// printable ASCII (33–126) becomes `-`, at most 255 characters, `localhost` if empty.
pub fn sanitize_hostname(raw: &str) -> String {
    let name: String = raw
        .chars()
        .take(255)
        .map(|c| if ('!'..='~').contains(&c) { c } else { '-' })
        .collect();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

/// Parses an ISO-8601 / RFC 3339 instant as `start_time` accepts it: a date, optionally
/// a time (`T` or space, optional fraction), optionally an offset (`Z`, `±hh:mm`,
/// `±hhmm`, `±hh`). Returns the instant in UTC and whether an offset was given (without
/// one the time is taken as UTC).
pub fn parse_timestamp(text: &str) -> Option<(DateTime<Utc>, bool)> {
    let text = text.trim();
    if !text.is_ascii() || text.len() < 10 {
        return None;
    }
    let (local, offset_secs) = split_offset(text)?;
    let naive = parse_naive(local)?;
    let utc = naive.checked_sub_signed(chrono::Duration::seconds(offset_secs.unwrap_or(0)))?;
    Some((Utc.from_utc_datetime(&utc), offset_secs.is_some()))
}

/// `%XX` sequences decoded (invalid ones kept as they are), as URL user information is.
pub(super) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

pub(super) fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Decimal digits only (no sign, no spaces), as `u64`.
pub(super) fn parse_uint(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

pub(super) fn parse_size(v: &str, min: usize, max: usize) -> Option<usize> {
    parse_uint(v)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (min..=max).contains(n))
}

pub(super) fn parse_facility(v: &str) -> Option<u8> {
    const NAMES: [(&str, u8); 21] = [
        ("kern", 0),
        ("user", 1),
        ("mail", 2),
        ("daemon", 3),
        ("auth", 4),
        ("syslog", 5),
        ("lpr", 6),
        ("news", 7),
        ("uucp", 8),
        ("cron", 9),
        ("authpriv", 10),
        ("ftp", 11),
        ("ntp", 12),
        ("local0", 16),
        ("local1", 17),
        ("local2", 18),
        ("local3", 19),
        ("local4", 20),
        ("local5", 21),
        ("local6", 22),
        ("local7", 23),
    ];
    let lower = v.to_ascii_lowercase();
    if let Some((_, n)) = NAMES.iter().find(|(name, _)| *name == lower) {
        return Some(*n);
    }
    parse_uint(v)
        .filter(|n| *n <= 23)
        .and_then(|n| u8::try_from(n).ok())
}

/// `docs/formats/leef.md#header-and-delimiter`: TAB, or ASCII punctuation other than `=`
/// and `\`; written as the character, `0xHH` / `xHH`, or (for TAB) `\t` or `tab`.
pub(super) fn parse_leef_delimiter(v: &str) -> Option<char> {
    let hex = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .or_else(|| v.strip_prefix('x'))
        .or_else(|| v.strip_prefix('X'))
        .filter(|h| h.len() == 2 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let c = if let Some(hex) = hex {
        char::from(u8::from_str_radix(hex, 16).ok()?)
    } else if v == "\\t" || v.eq_ignore_ascii_case("tab") {
        '\t'
    } else {
        let mut chars = v.chars();
        let c = chars.next()?;
        if chars.next().is_some() {
            return None;
        }
        c
    };
    (c == '\t' || (c.is_ascii_punctuation() && c != '=' && c != '\\')).then_some(c)
}

/// `protocol`: `udp`, `tcp`, `tls` or `stdout`.
pub(super) fn parse_protocol(v: &str) -> Option<Protocol> {
    match v.to_ascii_lowercase().as_str() {
        "udp" => Some(Protocol::Udp),
        "tcp" => Some(Protocol::Tcp),
        "tls" => Some(Protocol::Tls),
        "relp" => Some(Protocol::Relp),
        "relp-tls" => Some(Protocol::RelpTls),
        "stdout" => Some(Protocol::Stdout),
        _ => None,
    }
}

/// `framing`: `lf` or `octet-counting`.
pub(super) fn parse_framing(v: &str) -> Option<Framing> {
    match v.to_ascii_lowercase().as_str() {
        "lf" => Some(Framing::Lf),
        "octet-counting" => Some(Framing::OctetCounting),
        _ => None,
    }
}

/// `syslog_format`: `rfc3164` or `rfc5424`.
pub(super) fn parse_header_format(v: &str) -> Option<HeaderFormat> {
    match v.to_ascii_lowercase().as_str() {
        "rfc3164" => Some(HeaderFormat::Rfc3164),
        "rfc5424" => Some(HeaderFormat::Rfc5424),
        _ => None,
    }
}

/// `header_time`: `event` or `sent`.
pub(super) fn parse_header_time(v: &str) -> Option<HeaderTime> {
    match v.to_ascii_lowercase().as_str() {
        "event" => Some(HeaderTime::Event),
        "sent" => Some(HeaderTime::Sent),
        _ => None,
    }
}

pub(super) fn is_entity_name(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub(super) fn is_event_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= 256 && v.chars().all(|c| c.is_ascii_graphic())
}

pub(super) fn is_host(v: &str) -> bool {
    !v.is_empty() && v.len() <= 255 && v.chars().all(|c| c.is_ascii_graphic())
}

pub(super) fn is_hostname(v: &str) -> bool {
    !v.is_empty() && v.len() <= 255 && v.bytes().all(|b| (33..=126).contains(&b))
}

pub(super) fn is_app_name(v: &str) -> bool {
    v.len() <= 32
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub(super) fn is_attribute_key(v: &str) -> bool {
    !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn is_server_name(v: &str) -> bool {
    rustls::pki_types::ServerName::try_from(v.to_string()).is_ok()
}

/// Splits a trailing UTC offset off an ASCII timestamp: `(rest, seconds east)`.
fn split_offset(text: &str) -> Option<(&str, Option<i64>)> {
    if let Some(rest) = text.strip_suffix(['Z', 'z']) {
        return Some((rest, Some(0)));
    }
    // A sign after the date (position 10 on) starts an offset.
    let Some(pos) = text
        .char_indices()
        .skip(10)
        .find(|(_, c)| matches!(c, '+' | '-'))
        .map(|(i, _)| i)
    else {
        return Some((text, None));
    };
    let (rest, offset) = text.split_at(pos);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || offset[1..].matches(':').count() > 1 {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i64>().ok()?, 0),
        4 => (
            digits[..2].parse::<i64>().ok()?,
            digits[2..].parse::<i64>().ok()?,
        ),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some((rest, Some(sign * (h * 3600 + m * 60))))
}

fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    if text.len() == 10 {
        return NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(NaiveTime::MIN));
    }
    let sep = text.as_bytes().get(10).copied();
    if !matches!(sep, Some(b'T' | b't' | b' ')) {
        return None;
    }
    let normalised = format!("{}T{}", &text[..10], &text[11..]);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&normalised, f).ok())
}
