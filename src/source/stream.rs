//! One authenticated connection to `GET /mra/stream/v2/events`
//! (`docs/event-stream.md#stream-endpoint`): the request, the response checks
//! (`docs/event-stream.md#stream-request-outcomes`), and reading frames under the idle
//! timeout.
//!
//! This module opens *one* connection and reads it until it ends. Reconnecting,
//! backoff, tokens and de-duplication belong to [`crate::source::EventSource`]. Where a
//! connection starts is a [`StartPoint`], defined here because the request encodes it.

use crate::backoff::{BackoffPolicy, Delay, parse_retry_after};
use crate::config::{Secret, TenantConfig};
use crate::event::{Batch, EventType, Position, Untrusted};
use crate::source::client::{body_excerpt, describe_transport_error, read_excerpt};
use crate::source::decode::{PositionSource, decode_batch};
use crate::source::oauth::endpoint;
use crate::source::sse::{Frame, Parser, SseError};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// Time allowed for the response headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Most body bytes logged for a rejected status.
pub const ERROR_BODY_LIMIT: usize = 1024;

/// Most body bytes logged for a 200 that is not an event stream.
pub const NON_SSE_BODY_LIMIT: usize = 512;

/// Where a tenant's stream starts, and how a request says so
/// (`docs/event-stream.md#query-parameters`).
///
/// When the process starts it is chosen by [`StartPoint::resolve`]
/// (`docs/configuration.md#where-a-tenant-starts`); on every reconnect the source asks
/// again from where it has got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPoint {
    /// A known position (state file, `stream_position` or the last batch received):
    /// `id=<position>` and `Last-Event-ID: <position>`.
    Position(Position),
    /// Replay from an instant: `start_time=YYYY-MM-DDTHH:MM:SS+00:00`, no `id`. Sent
    /// until the first `events` message arrives.
    StartTime(DateTime<Utc>),
    /// `id=0`.
    Beginning,
}

/// What a connection yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// A decoded `events` message, with its position.
    Batch(Batch),
    /// `heartbeat`.
    Heartbeat,
    /// `reconnect` or `end` (`end` = true): the server closes this connection on
    /// purpose.
    PlannedClose { end: bool, retry: Option<Duration> },
    /// Any other frame (unknown event name, id-only or retry-only message).
    Unknown { event: String },
}

/// Why a stream request did not give a readable event stream.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("stream request failed: {message}")]
    Transport { message: String, proxy_auth: bool },
    #[error("no response headers within {0:?}")]
    HeaderTimeout(Duration),
    #[error("stream answered HTTP {status}{}", excerpt(body))]
    Status {
        status: u16,
        /// The raw `Retry-After` header; the caller parses and clamps it.
        retry_after: Option<String>,
        body: String,
    },
    #[error(
        "stream answered 200 with content type {content_type:?}, not text/event-stream \
         (a captive portal or proxy error page?){}",
        excerpt(body)
    )]
    NotEventStream { content_type: String, body: String },
}

fn excerpt(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl OpenError {
    /// The status code, for a status error.
    pub fn status(&self) -> Option<u16> {
        match self {
            OpenError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Why reading a connection stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no byte from the stream for {0:?} (sse_timeout)")]
    Idle(Duration),
    #[error("stream read failed: {0}")]
    Transport(String),
    #[error(
        "a stream message is larger than max_event_size = {limit} bytes; raise \
         max_event_size in the [lookout] section if such messages are expected"
    )]
    TooLarge { limit: usize },
}

impl StartPoint {
    /// Applies the start-up precedence to the saved position and the configuration:
    /// state file > `stream_position` > `start_time` > `id=0`.
    pub fn resolve(saved: Option<Position>, tenant: &TenantConfig) -> Self {
        if let Some(p) = saved.or_else(|| tenant.stream_position.clone()) {
            StartPoint::Position(p)
        } else if let Some(t) = tenant.start_time {
            StartPoint::StartTime(t)
        } else {
            StartPoint::Beginning
        }
    }
}

/// The query URL of a stream request: `types` with a percent-encoded comma, then `id`
/// or `start_time` (never both).
pub fn stream_url(api_domain: &Url, types: &[EventType], start: &StartPoint) -> Url {
    let mut url = endpoint(api_domain, "/mra/stream/v2/events");
    // Url's form serializer encodes `,` as %2C and `+` as %2B.
    let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("types", &names.join(","));
        match start {
            StartPoint::Position(p) => q.append_pair("id", p.as_str()),
            StartPoint::StartTime(t) => q.append_pair("start_time", &format_start_time(t)),
            StartPoint::Beginning => q.append_pair("id", "0"),
        };
    }
    url
}

/// `YYYY-MM-DDTHH:MM:SS+00:00`: UTC, fractional seconds dropped.
pub fn format_start_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// An open event stream.
#[derive(Debug)]
pub struct Connection {
    response: reqwest::Response,
    parser: Parser,
    frames: VecDeque<Frame>,
    /// Reused for every read.
    scratch: Vec<Frame>,
    max_event_size: usize,
    sse_timeout: Duration,
    last_byte: Instant,
    opened: Instant,
    retry: Option<u64>,
    tenant: String,
}

/// The settings of one stream request that do not change between attempts.
#[derive(Debug, Clone, Copy)]
pub struct OpenParams<'a> {
    /// [`HEADER_TIMEOUT`] outside tests.
    pub header_timeout: Duration,
    /// `sse_timeout`: longest time without any byte.
    pub sse_timeout: Duration,
    /// `max_event_size`.
    pub max_event_size: usize,
    /// For log lines.
    pub tenant: &'a str,
}

/// Opens one stream: sends the request, waits for the headers and checks status and
/// content type.
pub async fn open(
    client: &reqwest::Client,
    url: Url,
    token: &Secret,
    last_event_id: Option<&Position>,
    params: OpenParams<'_>,
) -> Result<Connection, OpenError> {
    let header_timeout = params.header_timeout;
    let mut request = client
        .get(url)
        .bearer_auth(token.expose())
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .header(reqwest::header::CACHE_CONTROL, "no-cache");
    if let Some(p) = last_event_id {
        request = request.header("Last-Event-ID", p.as_str());
    }
    let response = match tokio::time::timeout(header_timeout, request.send()).await {
        Err(_) => return Err(OpenError::HeaderTimeout(header_timeout)),
        Ok(Err(e)) => {
            return Err(OpenError::Transport {
                message: describe_transport_error(&e),
                proxy_auth: crate::source::client::is_proxy_auth_error(&e),
            });
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = if status == reqwest::StatusCode::NO_CONTENT {
            Vec::new()
        } else {
            read_excerpt(response, ERROR_BODY_LIMIT, Duration::from_secs(5)).await
        };
        return Err(OpenError::Status {
            status: status.as_u16(),
            retry_after,
            body: body_excerpt(&body, ERROR_BODY_LIMIT),
        });
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| crate::untrusted::clean(v.as_bytes(), 256));
    let is_sse = content_type.as_deref().is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
    });
    if !is_sse {
        let body = read_excerpt(response, NON_SSE_BODY_LIMIT, Duration::from_secs(5)).await;
        return Err(OpenError::NotEventStream {
            content_type: content_type.unwrap_or_else(|| "(none)".into()),
            body: body_excerpt(&body, NON_SSE_BODY_LIMIT),
        });
    }
    let now = Instant::now();
    Ok(Connection {
        response,
        parser: Parser::new(params.max_event_size),
        frames: VecDeque::new(),
        scratch: Vec::new(),
        max_event_size: params.max_event_size,
        sse_timeout: params.sse_timeout,
        last_byte: now,
        opened: now,
        retry: None,
        tenant: params.tenant.to_string(),
    })
}

impl Connection {
    /// When the headers arrived.
    pub fn opened(&self) -> Instant {
        self.opened
    }

    /// When the last byte arrived (or the headers, before any byte).
    pub fn last_byte(&self) -> Instant {
        self.last_byte
    }

    /// The next item; `Ok(None)` when the server ended the body. A partial message at
    /// the end is discarded (and logged), never delivered.
    pub async fn next_item(&mut self) -> Result<Option<StreamItem>, ReadError> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Ok(Some(self.item(frame)));
            }
            let deadline = self.last_byte + self.sse_timeout;
            let chunk = match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return Err(ReadError::Idle(self.sse_timeout)),
                Ok(Err(e)) => return Err(ReadError::Transport(describe_transport_error(&e))),
                Ok(Ok(chunk)) => chunk,
            };
            let Some(chunk) = chunk else {
                // `finish` consumes the parser; the connection is over anyway.
                let parser = std::mem::replace(&mut self.parser, Parser::new(self.max_event_size));
                let discarded = parser.finish();
                if discarded.bytes > 0 {
                    tracing::warn!(
                        tenant = %self.tenant,
                        bytes = discarded.bytes,
                        "stream ended inside a message; the partial message is discarded"
                    );
                }
                return Ok(None);
            };
            self.last_byte = Instant::now();
            // Every byte goes to the parser at once; nothing waits for a buffer to fill.
            // A large read gives several batches here at once. Parsing it in steps
            // instead, one batch at a time, held more memory, not less: the unparsed rest
            // pins hyper's read buffer while hyper reads ahead into a second one (100
            // tenants backfilling: 150–152 MB against 133–142 MB, measured alternately).
            match self.parser.feed_into(&chunk, &mut self.scratch) {
                Ok(()) => self.frames.extend(self.scratch.drain(..)),
                Err(SseError::EventTooLarge { limit }) => {
                    return Err(ReadError::TooLarge { limit });
                }
            }
        }
    }

    fn item(&mut self, frame: Frame) -> StreamItem {
        if frame.retry.is_some() {
            self.retry = frame.retry;
        }
        match frame.event.as_str() {
            "events" => {
                let Some(data) = frame.data else {
                    return StreamItem::Unknown { event: frame.event };
                };
                let message_id = frame.id_field.then_some(&*frame.last_id);
                if let Some(Err(error)) = message_id.map(Position::parse) {
                    tracing::warn!(
                        tenant = %self.tenant,
                        id = %Untrusted(&frame.last_id),
                        %error,
                        "the message id cannot be sent back to the api, so it is not used as the position; the last usable event id is used instead"
                    );
                }
                let (batch, source) = decode_batch(data, message_id);
                if source == PositionSource::None {
                    tracing::warn!(
                        tenant = %self.tenant,
                        "events message without an id field or event ids; position unchanged"
                    );
                }
                StreamItem::Batch(batch)
            }
            "heartbeat" => StreamItem::Heartbeat,
            "reconnect" | "end" => StreamItem::PlannedClose {
                end: frame.event == "end",
                retry: frame.retry.map(Duration::from_millis),
            },
            _ => StreamItem::Unknown { event: frame.event },
        }
    }

    /// The last valid `retry:` (ms) read since the previous call, if any.
    pub fn take_retry(&mut self) -> Option<u64> {
        self.retry.take()
    }
}

/// Which backoff an open failure calls for, and whether it makes the tenant
/// unhealthy. 401 is handled by the caller before this is asked.
pub fn classify_open(policy: &BackoffPolicy, error: &OpenError) -> (Delay, bool) {
    let normal = Delay::Normal { retry_after: None };
    match error {
        OpenError::Transport {
            proxy_auth: true, ..
        } => (Delay::Long, true),
        OpenError::Transport { .. } | OpenError::HeaderTimeout(_) => (normal, false),
        OpenError::NotEventStream { .. } => (Delay::Long, true),
        OpenError::Status {
            status,
            retry_after,
            ..
        } => match *status {
            204 => (Delay::Long, false),
            429 | 503 => (
                Delay::Normal {
                    retry_after: retry_after
                        .as_deref()
                        .and_then(|v| parse_retry_after(v, Utc::now(), policy)),
                },
                false,
            ),
            401 => (normal, true),
            s if s >= 500 => (normal, false),
            _ => (Delay::Long, true),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_point_is_saved_then_stream_position_then_start_time_then_beginning() {
        let base =
            "[lookout]\nentity_name = a\napi_domain = https://api.lookout.com\napi_key = k\n";
        let tenant = |extra: &str| {
            let text = format!("{base}{extra}");
            let config = crate::config::load_str_with_env(
                std::path::Path::new("config.ini"),
                &text,
                &|_| None,
            )
            .unwrap();
            config.tenants[0].clone()
        };
        let both = tenant("stream_position = from-file\nstart_time = 2026-11-20T00:00:00Z\n");
        let saved = Position::new("saved").unwrap();
        assert_eq!(
            StartPoint::resolve(Some(saved.clone()), &both),
            StartPoint::Position(saved)
        );
        assert_eq!(
            StartPoint::resolve(None, &both),
            StartPoint::Position(Position::new("from-file").unwrap())
        );
        let t = DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            StartPoint::resolve(None, &tenant("start_time = 2026-11-20T00:00:00Z\n")),
            StartPoint::StartTime(t)
        );
        assert_eq!(
            StartPoint::resolve(None, &tenant("")),
            StartPoint::Beginning
        );
    }

    #[test]
    fn query_has_types_then_exactly_one_start_key() {
        let api = Url::parse("https://api.lookout.com").unwrap();
        let types = [EventType::Threat, EventType::Device];
        let p = Position::new("01a1aac4-759e-7c9d-bf7a-861b26a9b1a3").unwrap();
        assert_eq!(
            stream_url(&api, &types, &StartPoint::Position(p)).as_str(),
            "https://api.lookout.com/mra/stream/v2/events?types=THREAT%2CDEVICE&id=01a1aac4-759e-7c9d-bf7a-861b26a9b1a3"
        );
        assert_eq!(
            stream_url(&api, &types[..1], &StartPoint::Beginning).as_str(),
            "https://api.lookout.com/mra/stream/v2/events?types=THREAT&id=0"
        );
        let t = DateTime::parse_from_rfc3339("2026-11-20T08:09:10.123-02:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            stream_url(&api, &types, &StartPoint::StartTime(t)).as_str(),
            "https://api.lookout.com/mra/stream/v2/events?types=THREAT%2CDEVICE&start_time=2026-11-20T10%3A09%3A10%2B00%3A00"
        );
    }

    #[test]
    fn open_failures_are_classified_per_the_outcome_table() {
        let st = |status: u16, ra: Option<u64>| OpenError::Status {
            status,
            retry_after: ra.map(|s| s.to_string()),
            body: String::new(),
        };
        let n = Delay::Normal { retry_after: None };
        let p = BackoffPolicy::default();
        assert_eq!(classify_open(&p, &st(500, None)), (n, false));
        assert_eq!(classify_open(&p, &st(502, Some(9))), (n, false));
        assert_eq!(
            classify_open(&p, &st(429, Some(9))),
            (
                Delay::Normal {
                    retry_after: Some(Duration::from_secs(9))
                },
                false
            )
        );
        assert_eq!(classify_open(&p, &st(403, None)), (Delay::Long, true));
        assert_eq!(classify_open(&p, &st(404, None)), (Delay::Long, true));
        assert_eq!(classify_open(&p, &st(204, None)), (Delay::Long, false));
        assert_eq!(
            classify_open(
                &p,
                &OpenError::NotEventStream {
                    content_type: "text/html".into(),
                    body: String::new()
                }
            ),
            (Delay::Long, true)
        );
        assert_eq!(
            classify_open(&p, &OpenError::HeaderTimeout(HEADER_TIMEOUT)),
            (n, false)
        );
    }
}
