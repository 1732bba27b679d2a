//! The scenario file (`docs/event-stream.md#scenario-file`): how the stream is written on
//! the wire, and which requests get a scripted fault.
//!
//! This module owns the JSON shape and the question "which faults apply to the N-th
//! request of this endpoint for this tenant". It does not act on faults; the token and
//! stream endpoints do that.

use serde::{Deserialize, Serialize};

/// A parsed scenario: wire style plus scripted faults. The default is Lookout's own
/// style (LF, no space after the colon, chunked) and no faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// How every stream body is written.
    #[serde(default)]
    pub wire: Wire,
    /// Scripted faults, in file order.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// Wire options: every variant must decode to the same events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Wire {
    /// Line terminator for every line.
    pub line_ending: LineEnding,
    /// Start each response body with `EF BB BF`.
    pub bom: bool,
    /// Write `field: value` instead of `field:value`.
    pub space_after_colon: bool,
    /// Put a `:keep-alive` comment line before each message.
    pub comments: bool,
    /// Split each batch over several `data:` lines, between array elements only.
    pub multiline_data: bool,
    /// 0, or write the body in pieces of this many bytes with a flush after each.
    pub chunk_bytes: usize,
    /// HTTP framing of the stream body.
    pub transfer: Transfer,
}

/// Line terminator of the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    /// `\n`, as Lookout sends it.
    #[default]
    Lf,
    /// `\r\n`.
    Crlf,
    /// `\r`.
    Cr,
}

/// HTTP framing of the stream body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transfer {
    /// `Transfer-Encoding: chunked`, as Lookout sends it.
    #[default]
    #[serde(rename = "chunked")]
    Chunked,
    /// No length and no chunking: the body ends when the connection closes.
    #[serde(rename = "close-delimited")]
    CloseDelimited,
}

/// The endpoint a fault applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `POST /oauth2/token`.
    Token,
    /// `GET /mra/stream/v2/events`.
    #[default]
    Stream,
}

/// Which requests (1-based, per endpoint and tenant) a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestSelector {
    /// Exactly the N-th request.
    One(u64),
    /// Requests `from..=to`.
    Range([u64; 2]),
}

/// One scripted fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawFault", into = "RawFault")]
pub struct Fault {
    /// The endpoint it applies to.
    pub endpoint: Endpoint,
    /// Only this tenant's requests, when given.
    pub tenant: Option<String>,
    /// Which requests; `None` means every request.
    pub request: Option<RequestSelector>,
    /// Stream only: act after this many `events` messages on the connection.
    pub after_batches: u64,
    /// Wait this long before acting.
    pub delay_ms: u64,
    /// What to do.
    pub action: Action,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer with this status instead of the normal response.
    Status {
        /// HTTP status code.
        status: u16,
        /// Response body; a small JSON error when absent (nothing for 204).
        body: Option<String>,
        /// `Retry-After` header value, verbatim.
        retry_after: Option<String>,
        /// `Content-Type`; `application/json` when absent.
        content_type: Option<String>,
    },
    /// Invalidate every token issued so far, then answer 401.
    ExpireTokens,
    /// Write the first half of the next `events` message, then close.
    DropMidEvent,
    /// Close after a complete message, with no `end`.
    Drop,
    /// Abort the TCP connection (RST).
    Reset,
    /// Stop writing (heartbeats included) for `for_ms`, or until the client goes away.
    Stall {
        /// How long; `None` means until the client goes away.
        for_ms: Option<u64>,
    },
    /// Send `event:reconnect`, then close.
    Reconnect {
        /// `retry:` value to send.
        retry_ms: Option<u64>,
        /// Also send `data:{}`.
        with_data: bool,
    },
    /// Send `event:end`, then close.
    End {
        /// `retry:` value to send.
        retry_ms: Option<u64>,
        /// Also send `data:{}`.
        with_data: bool,
    },
    /// The next `events` message carries data that is not JSON.
    InvalidJson,
    /// The next batch carries one THREAT whose `details.url` is `bytes` long.
    HugeEvent {
        /// Length of `details.url`.
        bytes: usize,
    },
}

impl Scenario {
    /// Parses the JSON of a scenario file.
    pub fn from_json(text: &str) -> Result<Scenario, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Reads and parses a scenario file; the error names the file.
    pub fn from_file(path: &std::path::Path) -> std::io::Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
        })?;
        Scenario::from_json(&text).map_err(|error| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: invalid scenario: {error}", path.display()),
            )
        })
    }

    /// The faults that apply to request number `n` (1-based) of `endpoint` for
    /// `tenant`, in file order.
    pub fn faults_for(&self, endpoint: Endpoint, tenant: Option<&str>, n: u64) -> Vec<Fault> {
        self.faults
            .iter()
            .filter(|fault| fault.endpoint == endpoint)
            .filter(|fault| match &fault.tenant {
                Some(wanted) => tenant == Some(wanted.as_str()),
                None => true,
            })
            .filter(|fault| match fault.request {
                None => true,
                Some(RequestSelector::One(k)) => k == n,
                Some(RequestSelector::Range([from, to])) => (from..=to).contains(&n),
            })
            .cloned()
            .collect()
    }
}

impl Action {
    /// True for actions decided before any response byte is written.
    pub fn is_before_response(&self) -> bool {
        matches!(self, Action::Status { .. } | Action::ExpireTokens)
    }

    /// The `action` name of the scenario file, for the request log.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Status { .. } => "status",
            Action::ExpireTokens => "expire_tokens",
            Action::DropMidEvent => "drop_mid_event",
            Action::Drop => "drop",
            Action::Reset => "reset",
            Action::Stall { .. } => "stall",
            Action::Reconnect { .. } => "reconnect",
            Action::End { .. } => "end",
            Action::InvalidJson => "invalid_json",
            Action::HugeEvent { .. } => "huge_event",
        }
    }
}

/// The flat JSON object of one fault, before its parameters are checked against its
/// action. A flat struct (rather than a tagged enum) lets `deny_unknown_fields` catch
/// typos such as `retry-after`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    endpoint: Endpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<RequestSelector>,
    #[serde(default, skip_serializing_if = "is_zero")]
    after_batches: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    delay_ms: u64,
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after: Option<TextOrNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    for_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    with_data: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<usize>,
}

/// `retry_after` is a header value; the example writes it as a string, but a number is
/// an easy mistake to forgive.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum TextOrNumber {
    Text(String),
    Number(u64),
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl TryFrom<RawFault> for Fault {
    type Error = String;

    fn try_from(raw: RawFault) -> Result<Self, Self::Error> {
        let action = match raw.action.as_str() {
            "status" => Action::Status {
                status: raw
                    .status
                    .ok_or("action \"status\" needs a \"status\" code")?,
                body: raw.body,
                retry_after: raw.retry_after.map(|value| match value {
                    TextOrNumber::Text(text) => text,
                    TextOrNumber::Number(number) => number.to_string(),
                }),
                content_type: raw.content_type,
            },
            "expire_tokens" => Action::ExpireTokens,
            "drop_mid_event" => Action::DropMidEvent,
            "drop" => Action::Drop,
            "reset" => Action::Reset,
            "stall" => Action::Stall { for_ms: raw.for_ms },
            "reconnect" => Action::Reconnect {
                retry_ms: raw.retry_ms,
                with_data: raw.with_data,
            },
            "end" => Action::End {
                retry_ms: raw.retry_ms,
                with_data: raw.with_data,
            },
            "invalid_json" => Action::InvalidJson,
            "huge_event" => Action::HugeEvent {
                bytes: raw.bytes.ok_or("action \"huge_event\" needs \"bytes\"")?,
            },
            other => {
                return Err(format!(
                    "unknown action {other:?}; expected status, expire_tokens, drop_mid_event, \
                     drop, reset, stall, reconnect, end, invalid_json or huge_event"
                ));
            }
        };
        if raw.endpoint == Endpoint::Token && !action.is_before_response() {
            let allowed = matches!(action, Action::Drop | Action::Reset | Action::Stall { .. });
            if !allowed {
                return Err(format!(
                    "action {:?} applies to the stream endpoint only",
                    action.name()
                ));
            }
        }
        if let Some(RequestSelector::Range([from, to])) = raw.request
            && (from > to || from == 0)
        {
            return Err(format!(
                "request range [{from}, {to}] is empty or not 1-based"
            ));
        }
        Ok(Fault {
            endpoint: raw.endpoint,
            tenant: raw.tenant,
            request: raw.request,
            after_batches: raw.after_batches,
            delay_ms: raw.delay_ms,
            action,
        })
    }
}

impl From<Fault> for RawFault {
    fn from(fault: Fault) -> Self {
        let mut raw = RawFault {
            endpoint: fault.endpoint,
            tenant: fault.tenant,
            request: fault.request,
            after_batches: fault.after_batches,
            delay_ms: fault.delay_ms,
            action: fault.action.name().to_owned(),
            ..RawFault::default()
        };
        match fault.action {
            Action::Status {
                status,
                body,
                retry_after,
                content_type,
            } => {
                raw.status = Some(status);
                raw.body = body;
                raw.retry_after = retry_after.map(TextOrNumber::Text);
                raw.content_type = content_type;
            }
            Action::Stall { for_ms } => raw.for_ms = for_ms,
            Action::Reconnect {
                retry_ms,
                with_data,
            }
            | Action::End {
                retry_ms,
                with_data,
            } => {
                raw.retry_ms = retry_ms;
                raw.with_data = with_data;
            }
            Action::HugeEvent { bytes } => raw.bytes = Some(bytes),
            Action::ExpireTokens
            | Action::DropMidEvent
            | Action::Drop
            | Action::Reset
            | Action::InvalidJson => {}
        }
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_of_the_spec_parses() {
        let scenario = Scenario::from_json(
            r#"{
              "wire": {"line_ending": "crlf", "bom": true, "space_after_colon": true,
                       "comments": true, "multiline_data": true, "chunk_bytes": 7,
                       "transfer": "close-delimited"},
              "faults": [
                {"endpoint": "stream", "request": 1, "action": "status", "status": 503, "retry_after": "2"},
                {"endpoint": "stream", "request": 2, "after_batches": 3, "action": "drop_mid_event"},
                {"endpoint": "token", "tenant": "b", "request": [2, 4], "action": "status", "status": 500}
              ]
            }"#,
        )
        .expect("valid scenario");
        assert_eq!(scenario.wire.line_ending, LineEnding::Crlf);
        assert_eq!(scenario.wire.transfer, Transfer::CloseDelimited);
        assert_eq!(scenario.wire.chunk_bytes, 7);
        assert_eq!(
            scenario.faults[0].action,
            Action::Status {
                status: 503,
                body: None,
                retry_after: Some("2".into()),
                content_type: None
            }
        );
        assert_eq!(scenario.faults_for(Endpoint::Stream, Some("x"), 1).len(), 1);
        assert_eq!(
            scenario.faults_for(Endpoint::Stream, Some("x"), 2)[0].after_batches,
            3
        );
        assert!(
            scenario
                .faults_for(Endpoint::Stream, Some("x"), 3)
                .is_empty()
        );
        assert!(
            scenario
                .faults_for(Endpoint::Token, Some("a"), 3)
                .is_empty()
        );
        assert_eq!(scenario.faults_for(Endpoint::Token, Some("b"), 3).len(), 1);
        assert!(
            scenario
                .faults_for(Endpoint::Token, Some("b"), 5)
                .is_empty()
        );

        let again = serde_json::to_string(&scenario).expect("serialises");
        assert_eq!(Scenario::from_json(&again).expect("round trip"), scenario);
    }

    #[test]
    fn mistakes_are_reported() {
        for bad in [
            r#"{"faults":[{"endpoint":"stream","action":"explode"}]}"#,
            r#"{"faults":[{"endpoint":"stream","action":"status"}]}"#,
            r#"{"faults":[{"endpoint":"stream","action":"drop","retry-after":"1"}]}"#,
            r#"{"faults":[{"endpoint":"token","action":"invalid_json"}]}"#,
            r#"{"wire":{"line_ending":"lfcr"}}"#,
            r#"{"wire":{"chunk":3}}"#,
        ] {
            assert!(Scenario::from_json(bad).is_err(), "accepted {bad}");
        }
        assert_eq!(
            Scenario::from_json("{}").expect("empty"),
            Scenario::default()
        );
    }

    #[test]
    fn a_file_error_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scenario.json");
        std::fs::write(&path, r#"{"wire":{"bom":true}}"#).expect("write");
        assert!(Scenario::from_file(&path).expect("parses").wire.bom);
        std::fs::write(&path, r#"{"wire":{"bom":"yes"}}"#).expect("write");
        let error = Scenario::from_file(&path).expect_err("invalid");
        assert!(error.to_string().contains("scenario.json"), "{error}");
        let missing = Scenario::from_file(&dir.path().join("nope.json")).expect_err("missing");
        assert!(missing.to_string().contains("nope.json"), "{missing}");
    }
}
