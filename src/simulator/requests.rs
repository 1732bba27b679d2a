//! The request log behind `GET /_sim/requests`: every token and stream request, in
//! order, with the headers tests assert on. Secrets are never stored; only what the
//! simulator made of them ([`Auth`]).

use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

pub use super::tokens::Auth;

/// One received request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// 1-based, in arrival order.
    pub seq: u64,
    /// Arrival time, RFC 3339 with ms.
    pub at: String,
    /// The tenant the key or token belongs to; `null` when unknown.
    pub tenant: Option<String>,
    /// `token` or `stream`.
    pub endpoint: String,
    /// The status answered.
    pub status: u16,
    /// The raw query string.
    pub query: Option<String>,
    /// `User-Agent` header.
    #[serde(rename = "user-agent")]
    pub user_agent: Option<String>,
    /// `Accept` header.
    pub accept: Option<String>,
    /// `Cache-Control` header.
    #[serde(rename = "cache-control")]
    pub cache_control: Option<String>,
    /// `Content-Type` header.
    #[serde(rename = "content-type")]
    pub content_type: Option<String>,
    /// `Last-Event-ID` header.
    #[serde(rename = "last-event-id")]
    pub last_event_id: Option<String>,
    /// valid, invalid, expired or missing.
    pub auth: Auth,
    /// Remarks, e.g. that `id` and `Last-Event-ID` differ.
    pub note: Option<String>,
    /// The scripted fault actions that applied to this request.
    pub faults: Vec<String>,
}

/// Every request so far.
#[derive(Debug, Default)]
pub struct RequestLog {
    records: Mutex<Vec<RequestRecord>>,
}

impl RequestLog {
    /// Appends `record`, numbering it.
    pub fn push(&self, mut record: RequestRecord) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        record.seq = records.len() as u64 + 1;
        records.push(record);
    }

    /// A copy of every record.
    pub fn all(&self) -> Vec<RequestRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl RequestRecord {
    /// A record of `endpoint` with the headers of `headers`, to be completed by the
    /// endpoint (status, tenant, auth).
    pub fn new(endpoint: &str, query: Option<&str>, headers: &http::HeaderMap) -> RequestRecord {
        let header = |name: http::header::HeaderName| {
            headers
                .get(name)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        };
        RequestRecord {
            seq: 0,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            tenant: None,
            endpoint: endpoint.to_owned(),
            status: 0,
            query: query.map(str::to_owned),
            user_agent: header(http::header::USER_AGENT),
            accept: header(http::header::ACCEPT),
            cache_control: header(http::header::CACHE_CONTROL),
            content_type: header(http::header::CONTENT_TYPE),
            last_event_id: header(http::header::HeaderName::from_static("last-event-id")),
            auth: Auth::Missing,
            note: None,
            faults: Vec::new(),
        }
    }
}
