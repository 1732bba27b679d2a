//! HEC responses (`docs/receivers/splunk-hec.md#troubleshooting-by-hec-answer`): parse what the collector answered and
//! decide what the sink does about it.
//!
//! Pure, and total: every status and every body (JSON or not, truncated, hostile) gives
//! an [`Action`]; nothing here panics. Splunk's `invalid-event-number` counts from 0:
//! the envelopes before it were indexed.

use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// HEC's status codes that this module branches on.
pub mod code {
    /// Success.
    pub const SUCCESS: i64 = 0;
    /// Token disabled (403).
    pub const TOKEN_DISABLED: i64 = 1;
    /// Token is required (401).
    pub const TOKEN_REQUIRED: i64 = 2;
    /// Invalid authorization (401).
    pub const INVALID_AUTHORIZATION: i64 = 3;
    /// Invalid token (403).
    pub const INVALID_TOKEN: i64 = 4;
    /// Incorrect index (400).
    pub const INCORRECT_INDEX: i64 = 7;
    /// Server is busy (503).
    pub const SERVER_BUSY: i64 = 9;
    /// Data channel is missing (400).
    pub const CHANNEL_MISSING: i64 = 10;
    /// Invalid data channel (400).
    pub const CHANNEL_INVALID: i64 = 11;
    /// ACK is disabled (400).
    pub const ACK_DISABLED: i64 = 14;
    /// HEC is healthy (health endpoint).
    pub const HEALTHY: i64 = 17;
}

/// A response body as HEC writes it: `{"text":"…","code":N}`, plus `ackId` or
/// `invalid-event-number`. Every field is optional, so a body from something else (a
/// proxy's error page) parses to all `None` rather than failing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    /// `text`.
    pub text: Option<String>,
    /// `code`.
    pub code: Option<i64>,
    /// `ackId`, on success with acknowledgements.
    pub ack_id: Option<u64>,
    /// `invalid-event-number`: the index (from 0) of the first envelope not indexed.
    pub invalid_event: Option<usize>,
}

/// What to do after one `/services/collector/event` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Every envelope of the request was accepted: delivered, when acknowledgements
    /// are off.
    Delivered,
    /// Accepted; delivered once the acknowledgement `ack_id` is reported true.
    AwaitAck(u64),
    /// Envelopes `..index` were indexed (delivered, never to be resent); envelope
    /// `index` was refused for what it is (dead letter, with HEC's code and text); the
    /// envelopes after it are to be sent again.
    Rejected {
        /// The refused envelope, from 0.
        index: usize,
        /// HEC's code and text for it.
        reason: Reason,
    },
    /// The request as a whole was refused for its content or its size: split it in
    /// halves and send them; a single envelope refused so is a dead letter.
    Split(Reason),
    /// The receiver is not set up to take these events (token, index, acknowledgement):
    /// nothing is dead-lettered; retry with the normal backoff and tell the operator.
    Misconfigured {
        /// HEC's code and text.
        reason: Reason,
        /// What the operator should fix.
        fix: &'static str,
    },
    /// A passing condition (busy, internal error, rate limit, something unexpected):
    /// send the same events again after the normal backoff, at least `retry_after`.
    Retry {
        /// HEC's code and text, or the HTTP status when there is no HEC body.
        reason: Reason,
        /// The `Retry-After` the receiver asked for, if any.
        retry_after: Option<Duration>,
    },
}

/// The HTTP status, HEC's code and text of a response: what log lines and dead letters
/// quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// HTTP status.
    pub status: u16,
    /// HEC's `code`, when the body had one.
    pub code: Option<i64>,
    /// HEC's `text`, or a short description of the body when it had none.
    pub text: String,
}

/// What the collector's health endpoint said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// 200 (code 17): HEC takes events.
    Healthy,
    /// Anything else, with HEC's code and text.
    Unhealthy(Reason),
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    text: Option<serde_json::Value>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default, rename = "ackId")]
    ack_id: Option<serde_json::Value>,
    #[serde(default, rename = "invalid-event-number")]
    invalid_event: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct AckWire {
    acks: serde_json::Map<String, serde_json::Value>,
}

/// The longest `text` kept from a body, in bytes: enough for any HEC message, and a
/// bound on what a hostile receiver can put in a log line or dead letter.
const TEXT_MAX: usize = 512;

impl Body {
    /// Parses a response body. Never fails: fields that are missing, of the wrong type
    /// or out of range are `None`; a body that is not a JSON object gives all `None`.
    pub fn parse(bytes: &[u8]) -> Self {
        let Ok(wire) = serde_json::from_slice::<Wire>(bytes) else {
            return Self::default();
        };
        Self {
            text: wire
                .text
                .as_ref()
                .and_then(serde_json::Value::as_str)
                .map(|t| bounded(t).to_owned()),
            code: wire.code.as_ref().and_then(as_integer),
            ack_id: wire
                .ack_id
                .as_ref()
                .and_then(as_integer)
                .and_then(|n| u64::try_from(n).ok()),
            invalid_event: wire
                .invalid_event
                .as_ref()
                .and_then(as_integer)
                .and_then(|n| usize::try_from(n).ok()),
        }
    }
}

/// Decides what to do with the answer (`status`, `body`) to a request of `envelopes`
/// envelopes sent with or without `acknowledgements`. `retry_after` is the parsed
/// `Retry-After` header.
pub fn classify(
    status: u16,
    body: &[u8],
    envelopes: usize,
    acknowledgements: bool,
    retry_after: Option<Duration>,
) -> Action {
    let parsed = Body::parse(body);
    let reason = Reason::new(status, &parsed, body);
    let retry = |reason| Action::Retry {
        reason,
        retry_after,
    };
    match (status, parsed.code) {
        (200, Some(code::SUCCESS)) => match (acknowledgements, parsed.ack_id) {
            (false, _) => Action::Delivered,
            (true, Some(id)) => Action::AwaitAck(id),
            // Acknowledgements asked for and none given: the token does not use them.
            (true, None) => Action::Misconfigured {
                reason,
                fix: "the token answered without an ackId: enable indexer acknowledgement on the HEC token, or set acknowledgements = false",
            },
        },
        (401, _) | (403, _) => Action::Misconfigured {
            fix: match parsed.code {
                Some(code::TOKEN_DISABLED) => {
                    "enable the HEC token in Splunk (Settings > Data inputs > HTTP Event Collector)"
                }
                Some(code::TOKEN_REQUIRED | code::INVALID_AUTHORIZATION) => {
                    "set token or token_file of the destination"
                }
                _ => {
                    "check the token of the destination: it is not a valid HEC token for this Splunk"
                }
            },
            reason,
        },
        (400, Some(code::INCORRECT_INDEX)) => Action::Misconfigured {
            reason,
            fix: "set index to an index the token may write to, or leave it empty for the token's default index",
        },
        (400, Some(code::ACK_DISABLED)) => Action::Misconfigured {
            reason,
            fix: "enable indexer acknowledgement on the HEC token, or set acknowledgements = false",
        },
        (400, Some(code::CHANNEL_MISSING | code::CHANNEL_INVALID)) => Action::Misconfigured {
            reason,
            fix: "the collector refused the request channel; check that nothing between the connector and Splunk strips the X-Splunk-Request-Channel header",
        },
        (400, _) => match parsed.invalid_event {
            Some(index) if index < envelopes => Action::Rejected { index, reason },
            _ => Action::Split(reason),
        },
        (413, _) => Action::Split(reason),
        _ => retry(reason),
    }
}

/// Parses the answer to `/services/collector/ack`: `{"acks":{"id":true|false,…}}`.
/// Returns the ids reported true; anything unparsable reports none.
pub fn acknowledged(body: &[u8]) -> Vec<u64> {
    let Ok(wire) = serde_json::from_slice::<AckWire>(body) else {
        return Vec::new();
    };
    wire.acks
        .iter()
        .filter(|(_, v)| v.as_bool() == Some(true))
        .filter_map(|(k, _)| k.parse().ok())
        .collect()
}

/// The body of an acknowledgement query for `ids`: `{"acks":[1,2,3]}`.
pub fn ack_query(ids: impl IntoIterator<Item = u64>) -> String {
    let mut body = String::from("{\"acks\":[");
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&id.to_string());
    }
    body.push_str("]}");
    body
}

/// Reads the answer of `GET /services/collector/health`.
pub fn health(status: u16, body: &[u8]) -> Health {
    let parsed = Body::parse(body);
    if status == 200 && matches!(parsed.code, None | Some(code::HEALTHY)) {
        Health::Healthy
    } else {
        Health::Unhealthy(Reason::new(status, &parsed, body))
    }
}

impl Reason {
    /// The reason of an answer, for messages.
    pub fn describe(status: u16, body: &[u8]) -> Reason {
        Reason::new(status, &Body::parse(body), body)
    }

    fn new(status: u16, parsed: &Body, raw: &[u8]) -> Self {
        let text = match &parsed.text {
            Some(text) => text.clone(),
            None if raw.is_empty() => "empty body".to_owned(),
            None => format!(
                "not a HEC response: {}",
                bounded(&String::from_utf8_lossy(&raw[..raw.len().min(TEXT_MAX)]))
                    .replace(['\r', '\n'], " ")
            ),
        };
        Self {
            status,
            code: parsed.code,
            text,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "HTTP {} code {}: {}", self.status, code, self.text),
            None => write!(f, "HTTP {}: {}", self.status, self.text),
        }
    }
}

fn as_integer(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        // Some proxies and old versions write numbers as strings.
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `s` cut to at most [`TEXT_MAX`] bytes at a character boundary.
fn bounded(s: &str) -> &str {
    if s.len() <= TEXT_MAX {
        return s;
    }
    let mut end = TEXT_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn act(status: u16, body: &str) -> Action {
        classify(status, body.as_bytes(), 10, false, None)
    }

    fn reason(status: u16, code: i64, text: &str) -> Reason {
        Reason {
            status,
            code: Some(code),
            text: text.into(),
        }
    }

    #[test]
    fn success_delivers_or_awaits_the_ack() {
        let ok = r#"{"text":"Success","code":0}"#;
        assert_eq!(act(200, ok), Action::Delivered);
        let with_ack = r#"{"text":"Success","code":0,"ackId":42}"#;
        assert_eq!(
            classify(200, with_ack.as_bytes(), 3, true, None),
            Action::AwaitAck(42)
        );
        assert_eq!(act(200, with_ack), Action::Delivered);
        assert!(matches!(
            classify(200, ok.as_bytes(), 3, true, None),
            Action::Misconfigured { .. }
        ));
    }

    #[test]
    fn an_invalid_event_number_splits_prefix_letter_and_rest() {
        let body = r#"{"text":"Invalid data format","code":6,"invalid-event-number":3}"#;
        assert_eq!(
            act(400, body),
            Action::Rejected {
                index: 3,
                reason: reason(400, 6, "Invalid data format")
            }
        );
        // A number outside the request cannot name an envelope: split to find it.
        let outside = r#"{"text":"Invalid data format","code":6,"invalid-event-number":10}"#;
        assert!(matches!(act(400, outside), Action::Split(_)));
        assert!(matches!(
            act(400, r#"{"text":"Event field is required","code":12}"#),
            Action::Split(_)
        ));
    }

    #[test]
    fn receiver_configuration_problems_never_dead_letter() {
        for (status, body, code) in [
            (403, r#"{"text":"Token disabled","code":1}"#, 1),
            (401, r#"{"text":"Token is required","code":2}"#, 2),
            (401, r#"{"text":"Invalid authorization","code":3}"#, 3),
            (403, r#"{"text":"Invalid token","code":4}"#, 4),
            (
                400,
                r#"{"text":"Incorrect index","code":7,"invalid-event-number":1}"#,
                7,
            ),
            (400, r#"{"text":"ACK is disabled","code":14}"#, 14),
            (400, r#"{"text":"Data channel is missing","code":10}"#, 10),
            (400, r#"{"text":"Invalid data channel","code":11}"#, 11),
        ] {
            match act(status, body) {
                Action::Misconfigured { reason, fix } => {
                    assert_eq!(reason.code, Some(code));
                    assert!(!fix.is_empty());
                }
                other => panic!("{status} {body}: {other:?}"),
            }
        }
    }

    #[test]
    fn too_large_splits_and_passing_conditions_retry() {
        assert!(matches!(
            act(413, "<html>too large</html>"),
            Action::Split(_)
        ));
        let busy = classify(
            503,
            br#"{"text":"Server is busy","code":9}"#,
            2,
            true,
            Some(Duration::from_secs(7)),
        );
        assert_eq!(
            busy,
            Action::Retry {
                reason: reason(503, 9, "Server is busy"),
                retry_after: Some(Duration::from_secs(7))
            }
        );
        for status in [429, 500, 502, 504] {
            assert!(matches!(act(status, ""), Action::Retry { .. }), "{status}");
        }
        // Success status with a body that is not HEC's: not counted delivered.
        assert!(matches!(act(200, "<html>ok</html>"), Action::Retry { .. }));
    }

    #[test]
    fn reasons_quote_hec_or_describe_the_body() {
        let Action::Retry { reason, .. } = act(502, "Bad\r\nGateway") else {
            panic!()
        };
        assert_eq!(
            reason.to_string(),
            "HTTP 502: not a HEC response: Bad  Gateway"
        );
        assert_eq!(
            reason_of(act(403, r#"{"text":"Token disabled","code":"1"}"#)).to_string(),
            "HTTP 403 code 1: Token disabled"
        );
    }

    fn reason_of(action: Action) -> Reason {
        match action {
            Action::Misconfigured { reason, .. }
            | Action::Retry { reason, .. }
            | Action::Split(reason)
            | Action::Rejected { reason, .. } => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ack_answers_and_queries() {
        assert_eq!(
            {
                let mut ids = acknowledged(br#"{"acks":{"1":true,"2":false,"7":true,"x":true}}"#);
                ids.sort();
                ids
            },
            [1, 7]
        );
        assert!(acknowledged(b"{}").is_empty());
        assert!(acknowledged(b"garbage").is_empty());
        assert_eq!(ack_query([1, 2, 30]), r#"{"acks":[1,2,30]}"#);
        assert_eq!(ack_query([]), r#"{"acks":[]}"#);
    }

    #[test]
    fn health_answers() {
        assert_eq!(
            health(200, br#"{"text":"HEC is healthy","code":17}"#),
            Health::Healthy
        );
        assert_eq!(
            health(
                503,
                br#"{"text":"HEC is unhealthy, queues are full","code":18}"#
            ),
            Health::Unhealthy(reason(503, 18, "HEC is unhealthy, queues are full"))
        );
        assert!(matches!(health(404, b""), Health::Unhealthy(_)));
    }

    #[test]
    fn long_texts_are_bounded() {
        let body = format!(r#"{{"text":"{}","code":8}}"#, "é".repeat(1000));
        let text = Body::parse(body.as_bytes()).text.unwrap();
        assert!(text.len() <= TEXT_MAX && text.chars().all(|c| c == 'é'));
    }

    proptest! {
        #[test]
        fn any_body_and_status_give_an_action(
            status in 100u16..600,
            body in proptest::collection::vec(any::<u8>(), 0..300),
            envelopes in 0usize..20,
            acks: bool,
        ) {
            let action = classify(status, &body, envelopes, acks, None);
            if let Action::Rejected { index, .. } = action {
                prop_assert!(index < envelopes);
            }
            let _ = acknowledged(&body);
            let _ = health(status, &body);
        }

        #[test]
        fn hec_shaped_bodies_with_any_values_give_an_action(
            status in prop_oneof![Just(200u16), Just(400), Just(403), Just(413), Just(503)],
            text in ".*",
            code in any::<i64>(),
            number in any::<i64>(),
            envelopes in 0usize..20,
        ) {
            let body = serde_json::json!({"text": text, "code": code, "invalid-event-number": number, "ackId": number});
            let action = classify(status, body.to_string().as_bytes(), envelopes, true, None);
            if let Action::Rejected { index, .. } = action {
                prop_assert!(index < envelopes && index as i64 == number);
            }
        }
    }
}
