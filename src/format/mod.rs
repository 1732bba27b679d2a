//! Rendering events into the message part of a syslog record: QRadar LEEF 2.0
//! ([`leef`]) or Splunk JSON / kv ([`splunk`]).
//!
//! Everything here is pure: values in, strings out, no I/O, and no panic for any input.
//! Formatting is total: every event object gives at least one message (one per
//! smishing detection for LEEF). The syslog header and framing are the sink's job; this
//! module hands it, with each message, what the header needs (severity, event time,
//! MSGID).

pub mod leef;
pub mod splunk;

use crate::config::Format;
use crate::event::MraEvent;
use chrono::{DateTime, FixedOffset};

/// One message ready for a syslog header.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedMessage {
    /// The LEEF line, JSON object or kv line. Never contains CR, LF or NUL.
    pub text: String,
    /// Syslog severity 0–7 derived from the event (leef-mapping §6.5).
    pub severity: u8,
    /// The event's `created_time`, when it is RFC 3339 with an offset.
    pub event_time: Option<DateTime<FixedOffset>>,
    /// RFC 5424 MSGID: the event `type` when it is valid there.
    pub msgid: Option<String>,
    /// The event id, for log lines about this record (e.g. truncation warnings).
    pub event_id: Option<String>,
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
    /// in LEEF.
    pub fn render(&self, event: &MraEvent, out: &mut Vec<RenderedMessage>) {
        let _ = (
            event,
            out,
            &self.format,
            &self.entity_name,
            &self.custom_identifier,
        );
        unimplemented!("format helper fills this in")
    }
}
