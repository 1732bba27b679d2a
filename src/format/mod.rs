//! Rendering events into the message part of a syslog record: QRadar LEEF 2.0
//! ([`leef`]), Splunk JSON / kv ([`splunk`]), ArcSight CEF ([`cef`]) or OCSF 1.8.0
//! ([`ocsf`]).
//!
//! Everything here is pure: values in, strings out, no I/O, and no panic for any input.
//! Formatting is total: every event object gives at least one message (one per
//! smishing detection for LEEF). The syslog header and framing are the sink's job; this
//! module hands it, with each message, what the header needs (severity, event time,
//! MSGID).

pub mod cef;
pub mod leef;
pub mod ocsf;
mod rest;
pub mod splunk;
mod value;

#[cfg(test)]
mod ocsf_schema;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use crate::config::Format;
use crate::event::MraEvent;
use crate::json::{Object, Value};
use chrono::{DateTime, FixedOffset};

pub use leef::unescape_leef;
pub use splunk::unescape_kv;

/// One message ready for a syslog header.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedMessage {
    /// The LEEF line, JSON object or kv line. Never contains CR, LF or NUL.
    pub text: String,
    /// Syslog severity 0–7 derived from the event.
    pub severity: u8,
    /// The event's `created_time`, when it is RFC 3339 with an offset.
    pub event_time: Option<DateTime<FixedOffset>>,
    /// RFC 5424 MSGID: the event `type` when it is valid there.
    pub msgid: Option<String>,
    /// The event id, for log lines about this record (e.g. truncation warnings).
    pub event_id: Option<String>,
    /// Characters the format cannot carry were replaced (CEF: control characters other
    /// than CR and LF, by spaces). The sink counts it like a truncation.
    pub altered: bool,
}

impl RenderedMessage {
    /// This message, marked as altered when `altered`.
    pub(crate) fn altered(mut self, altered: bool) -> Self {
        self.altered = altered;
        self
    }
}

/// Renders events of one tenant.
#[derive(Debug, Clone)]
pub struct Formatter {
    format: Format,
    entity_name: String,
    custom_identifier: Option<(String, String)>,
}

impl Formatter {
    /// A formatter for `format`, adding `entName = entity_name` and, if configured, the
    /// custom identifier attribute to every event.
    pub fn new(
        format: Format,
        entity_name: impl Into<String>,
        custom_identifier: Option<(String, String)>,
    ) -> Self {
        Self {
            format,
            entity_name: entity_name.into(),
            custom_identifier,
        }
    }

    /// Appends the messages for `event` to `out`: one, or one per smishing detection
    /// in LEEF and CEF. A custom identifier whose key is empty or `qradarLogSourceIdentifier`
    /// is not added (that one names the log source in the syslog header instead).
    pub fn render(&self, event: &MraEvent<'_>, out: &mut Vec<RenderedMessage>) {
        let fields = &event.fields;
        let envelope = Envelope::of(fields);
        let custom_identifier = self
            .custom_identifier
            .as_ref()
            .filter(|(key, _)| !key.is_empty() && key != leef::QRADAR_IDENTIFIER_KEY)
            .map(|(key, value)| (key.as_str(), value.as_str()));
        match self.format {
            Format::Leef { delimiter } => {
                let settings = leef::Settings {
                    delimiter,
                    entity_name: &self.entity_name,
                    custom_identifier,
                };
                leef::render(&settings, fields, &envelope, out);
            }
            Format::SplunkJson => {
                let additions =
                    splunk::Additions::new(fields, &self.entity_name, custom_identifier);
                out.push(envelope.message(splunk::render_json(fields, &additions)));
            }
            Format::SplunkKv => {
                let additions =
                    splunk::Additions::new(fields, &self.entity_name, custom_identifier);
                out.push(envelope.message(splunk::render_kv(fields, &additions)));
            }
            Format::Cef => {
                let settings = cef::Settings {
                    entity_name: &self.entity_name,
                    custom_identifier,
                };
                cef::render(&settings, fields, &envelope, out);
            }
            Format::Ocsf => {
                ocsf::render(&self.entity_name, custom_identifier, fields, &envelope, out);
            }
        }
    }
}

/// What every message of one event shares, whatever the format.
pub(crate) struct Envelope<'a> {
    severity: u8,
    event_time: Option<DateTime<FixedOffset>>,
    msgid: Option<&'a str>,
    event_id: Option<&'a str>,
}

impl<'a> Envelope<'a> {
    fn of(fields: &'a Object<'_>) -> Self {
        let event_type = fields.get("type").and_then(Value::as_str);
        Self {
            severity: syslog_severity(fields),
            event_time: fields
                .get("created_time")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok()),
            msgid: event_type.filter(|t| is_msgid(t)),
            event_id: fields.get("id").and_then(Value::as_str),
        }
    }

    /// A message with this envelope and `text`.
    pub(crate) fn message(&self, mut text: String) -> RenderedMessage {
        // Renderers start with room for a large record; a batch of messages waits for
        // the sink in every tenant at once, so give back what was not used (an
        // in-place shrink, not a copy).
        text.shrink_to_fit();
        RenderedMessage {
            text,
            severity: self.severity,
            event_time: self.event_time,
            msgid: self.msgid.map(str::to_owned),
            event_id: self.event_id.map(str::to_owned),
            altered: false,
        }
    }
}

/// The syslog severity of an event's records, 0–7
/// (`docs/formats/syslog.md#severity-per-event`). The same
/// for LEEF and Splunk.
pub fn syslog_severity(fields: &Object<'_>) -> u8 {
    match fields.get("type").and_then(Value::as_str) {
        Some("THREAT") => match leef::threat_severity(fields) {
            Some("CRITICAL") => 2,
            Some("HIGH") => 3,
            Some("MEDIUM") => 4,
            Some("LOW") => 5,
            Some("ADVISORY" | "NONE") => 6,
            _ => 4,
        },
        Some("SMISHING_ALERT") => 4,
        Some("AUDIT") => 5,
        _ => 6,
    }
}

/// Whether `s` can be an RFC 5424 MSGID: 1–32 printable US-ASCII characters.
fn is_msgid(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}
