//! `GET /mra/stream/v2/events`: checks, scripted faults, and the writer task that
//! produces one connection's event stream.
//!
//! The handler decides everything that comes before the first byte (auth, 400s,
//! `status` and `expire_tokens` faults) and answers 200 with a body fed by a
//! `Writer`. The writer sends a heartbeat at once and then every heartbeat interval
//! (measured from the previous heartbeat), batches as soon as events are available, and
//! acts on the in-stream faults of the request when their `after_batches` is reached.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, Version, header};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::body::{Piece, PieceBody};
use super::generate::{EventKind, Generator, SimEvent};
use super::id;
use super::requests::{Auth, RequestRecord};
use super::resume;
use super::scenario::{Action, Endpoint, Fault, Transfer};
use super::server::ConnControl;
use super::state::{Shared, Tenant};
use super::wire::{self, BOM};

/// How long a writer gives hyper to flush what it was handed before a scripted drop
/// or reset: the body reports "pending" after each piece so hyper flushes, but a
/// momentarily full socket could still hold the last bytes back.
const FLUSH_GRACE: Duration = Duration::from_millis(50);

/// Firehose pieces: large enough that per-write overhead vanishes.
const FIREHOSE_PIECE: usize = 1 << 20;

/// The handler.
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Arc<ConnControl>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = uri.query();
    let mut record = RequestRecord::new("stream", query, &headers);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let (auth, tenant_name) = shared.tokens.check(authorization);
    record.auth = auth;
    record.tenant = tenant_name.clone();
    let number = shared.count(Endpoint::Stream, tenant_name.as_deref());
    let faults =
        shared
            .options
            .scenario
            .faults_for(Endpoint::Stream, tenant_name.as_deref(), number);
    let (before, during): (Vec<Fault>, Vec<Fault>) = faults
        .into_iter()
        .partition(|fault| fault.action.is_before_response());

    if let Some(fault) = before.into_iter().next() {
        record.faults.push(fault.action.name().to_owned());
        pause(&shared, fault.delay_ms).await;
        let response = match fault.action {
            Action::ExpireTokens => {
                shared.tokens.revoke_all();
                record.auth = Auth::Expired;
                unauthorized("the access token has expired")
            }
            action => scripted_status(&action),
        };
        return finish(&shared, record, response);
    }

    let tenant = match (auth, tenant_name.and_then(|name| shared.tenants.get(&name))) {
        (Auth::Valid, Some(tenant)) => tenant.clone(),
        (Auth::Expired, _) => {
            return finish(
                &shared,
                record,
                unauthorized("the access token has expired"),
            );
        }
        (Auth::Missing, _) => {
            return finish(&shared, record, unauthorized("no access token"));
        }
        _ => return finish(&shared, record, unauthorized("unknown access token")),
    };

    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok());
    let start = match resume::start(query, last_event_id, &shared.options, &tenant.log) {
        Ok(start) => start,
        Err(description) => {
            let body =
                serde_json::json!({"error": "invalid_request", "error_description": description});
            return finish(
                &shared,
                record,
                (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
            );
        }
    };
    record.note = start.note.clone();
    record.faults = during
        .iter()
        .map(|fault| fault.action.name().to_owned())
        .collect();

    let (tx, rx) = mpsc::channel(1);
    let close_delimited = shared.style.wire().transfer == Transfer::CloseDelimited;
    let mut faults: Vec<Fault> = during;
    // Stable: faults with the same `after_batches` keep their file order.
    faults.sort_by_key(|fault| fault.after_batches);
    let writer = Writer {
        shared: shared.clone(),
        tenant,
        kinds: start.kinds,
        position: start.index,
        faults: faults.into(),
        batches: 0,
        tx,
        conn,
    };
    shared.tracker.spawn(writer.run());
    finish(&shared, record, event_stream(rx, close_delimited))
}

/// The 200 response whose body is fed by a writer, with the headers of
/// `docs/event-stream.md#response-and-timeouts`.
fn event_stream(rx: mpsc::Receiver<Piece>, close_delimited: bool) -> Response {
    let mut response = Response::new(Body::from_stream(PieceBody::new(rx)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if close_delimited {
        // hyper frames a body of unknown length by closing the connection only in an
        // HTTP/1.0 response; any HTTP/1.1 client reads that to the end of the stream.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        *response.version_mut() = Version::HTTP_10;
    } else {
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    response
}

/// A 401 with an OAuth-style body.
fn unauthorized(description: &str) -> Response {
    let body = serde_json::json!({"error": "invalid_token", "error_description": description});
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

/// The response of a `status` fault, on either endpoint.
pub fn scripted_status(action: &Action) -> Response {
    let Action::Status {
        status,
        body,
        retry_after,
        content_type,
    } = action
    else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let no_body = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let body = match body {
        _ if no_body => String::new(),
        Some(body) => body.clone(),
        None => serde_json::json!({
            "error": "simulated_status",
            "error_description": format!("scripted status {}", status.as_u16()),
        })
        .to_string(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if !no_body {
        let content_type = content_type.as_deref().unwrap_or("application/json");
        if let Ok(value) = HeaderValue::from_str(content_type) {
            headers.insert(header::CONTENT_TYPE, value);
        }
    }
    if let Some(value) = retry_after
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert(header::RETRY_AFTER, value);
    }
    response
}

/// Logs the request with the status of `response` and returns the response.
pub fn finish(shared: &Shared, mut record: RequestRecord, response: Response) -> Response {
    record.status = response.status().as_u16();
    shared.requests.push(record);
    response
}

/// Waits `delay_ms` (a fault's delay), or less if the simulator shuts down.
pub async fn pause(shared: &Shared, delay_ms: u64) {
    if delay_ms > 0 {
        tokio::select! {
            _ = shared.cancel.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(delay_ms)) => {}
        }
    }
}

/// The reader went away or the simulator is shutting down: stop writing.
struct Gone;

/// A change to the next `events` message, left by a fault.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Twist {
    Cut,
    Invalid,
    Huge(usize),
}

/// Produces one connection's stream.
struct Writer {
    shared: Arc<Shared>,
    tenant: Arc<Tenant>,
    kinds: Vec<EventKind>,
    position: usize,
    faults: VecDeque<Fault>,
    batches: u64,
    tx: mpsc::Sender<Piece>,
    conn: Arc<ConnControl>,
}

impl Writer {
    async fn run(mut self) {
        let _ = self.serve().await;
    }

    async fn serve(&mut self) -> Result<(), Gone> {
        let heartbeat = self.shared.options.heartbeat;
        let mut first = Vec::new();
        if self.shared.style.wire().bom {
            first.extend_from_slice(BOM);
        }
        first.extend_from_slice(&self.shared.style.heartbeat());
        self.send(Bytes::from(first)).await?;
        let mut next_heartbeat = Instant::now() + heartbeat;

        if self.firehose_applies() {
            self.firehose().await?;
        }

        let mut changes = self.tenant.log.subscribe();
        let mut rotations = self.tenant.rotations.subscribe();
        let mut twists: Vec<Twist> = Vec::new();
        loop {
            if rotations.has_changed().unwrap_or(true) {
                // The key this stream was opened with was rotated away.
                return self.abort(false).await;
            }
            while self
                .faults
                .front()
                .is_some_and(|fault| fault.after_batches <= self.batches)
            {
                let Some(fault) = self.faults.pop_front() else {
                    break;
                };
                self.wait(Duration::from_millis(fault.delay_ms)).await?;
                match fault.action {
                    Action::DropMidEvent => twists.push(Twist::Cut),
                    Action::InvalidJson => twists.push(Twist::Invalid),
                    Action::HugeEvent { bytes } => twists.push(Twist::Huge(bytes)),
                    Action::Drop => return self.abort(false).await,
                    Action::Reset => return self.abort(true).await,
                    Action::Stall { for_ms: Some(ms) } => {
                        self.wait(Duration::from_millis(ms)).await?;
                    }
                    Action::Stall { for_ms: None } => {
                        // Until the reader goes away (or shutdown): nothing more is
                        // written, heartbeats included.
                        tokio::select! {
                            _ = self.tx.closed() => {}
                            _ = self.shared.cancel.cancelled() => {}
                        }
                        return Err(Gone);
                    }
                    Action::Reconnect {
                        retry_ms,
                        with_data,
                    } => {
                        let message = self.shared.style.control("reconnect", retry_ms, with_data);
                        return self.send(message).await;
                    }
                    Action::End {
                        retry_ms,
                        with_data,
                    } => {
                        let message = self.shared.style.control("end", retry_ms, with_data);
                        return self.send(message).await;
                    }
                    Action::Status { .. } | Action::ExpireTokens => {}
                }
            }

            if Instant::now() >= next_heartbeat {
                self.send(self.shared.style.heartbeat()).await?;
                next_heartbeat = Instant::now() + heartbeat;
                continue;
            }

            // Mark the current length as seen before reading, so that an event added
            // right after the read still wakes the wait below.
            changes.borrow_and_update();
            let batch_size = self.shared.options.batch_size;
            let (batch, next) = self
                .tenant
                .log
                .batch(self.position, &self.kinds, batch_size);
            self.position = next;
            if !batch.is_empty() {
                self.batches += 1;
                let cut = twists.contains(&Twist::Cut);
                let message = self.message(&batch, &mut twists);
                if cut {
                    let half = message.len() / 2;
                    self.send(message.slice(..half)).await?;
                    return self.abort(false).await;
                }
                self.send(message).await?;
                continue;
            }

            tokio::select! {
                _ = tokio::time::sleep_until(next_heartbeat) => {}
                changed = changes.changed() => if changed.is_err() { return Err(Gone) },
                _ = rotations.changed() => return self.abort(false).await,
                _ = self.tx.closed() => return Err(Gone),
                _ = self.shared.cancel.cancelled() => return Err(Gone),
            }
        }
    }

    /// The `events` message of `batch`, with the pending twists applied (and used up).
    fn message(&self, batch: &[SimEvent], twists: &mut Vec<Twist>) -> Bytes {
        let style = &self.shared.style;
        let batch_id = batch
            .last()
            .map(|event| id::format(event.id))
            .unwrap_or_default();
        let mut json: Vec<Bytes> = batch.iter().map(|event| event.json.clone()).collect();
        let mut invalid = false;
        for twist in twists.drain(..) {
            match twist {
                Twist::Huge(bytes) => {
                    if let (Some(first), Some(slot)) = (batch.first(), json.first_mut()) {
                        *slot = Generator::huge_threat(first, bytes);
                    }
                }
                Twist::Invalid => invalid = true,
                Twist::Cut => {}
            }
        }
        if invalid {
            // The start of a real batch, cut short: what a broken upstream would send.
            let mut data = br#"{"events":["#.to_vec();
            let first = json.first().cloned().unwrap_or_default();
            data.extend_from_slice(&first[..first.len() / 2]);
            return Bytes::from(style.raw_events(&batch_id, &data));
        }
        let parts: Vec<&[u8]> = json.iter().map(|bytes| &bytes[..]).collect();
        Bytes::from(style.events(&batch_id, &parts))
    }

    /// True when the pre-serialised history can be sent as it is.
    fn firehose_applies(&self) -> bool {
        self.tenant.firehose.is_some()
            && self.faults.is_empty()
            && self
                .shared
                .options
                .types
                .iter()
                .all(|kind| self.kinds.contains(kind))
    }

    /// Writes the rest of the pre-serialised history as fast as the socket takes it.
    async fn firehose(&mut self) -> Result<(), Gone> {
        let Some(firehose) = self.tenant.firehose.as_ref() else {
            return Ok(());
        };
        let history = self.shared.options.events;
        if self.position >= history {
            return Ok(());
        }
        let started = Instant::now();
        let from = self.position;
        let batch_size = firehose.batch_size();
        // A resume in the middle of a batch: one message for the rest of that batch,
        // then the buffer from the next message on.
        let boundary = from.div_ceil(batch_size) * batch_size;
        if boundary > from {
            let (batch, _) =
                self.tenant
                    .log
                    .batch(from, &EventKind::ALL, boundary.min(history) - from);
            let message = self.message(&batch, &mut Vec::new());
            self.send(message).await?;
        }
        let piece = match self.shared.style.wire().chunk_bytes {
            0 => FIREHOSE_PIECE,
            size => size,
        };
        let mut bytes = 0;
        for segment in firehose.tail(boundary / batch_size) {
            bytes += segment.len();
            for part in wire::pieces(segment, piece) {
                self.send_piece(part).await?;
            }
        }
        self.position = history;
        self.batches += (history - from).div_ceil(batch_size) as u64;
        eprintln!(
            "simulator: firehose tenant={} events={} bytes={} first byte to last message: {:.3} s",
            self.tenant.name,
            history - from,
            bytes,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Sends `bytes`, in `chunk_bytes` pieces when the scenario asks for them.
    async fn send(&self, bytes: Bytes) -> Result<(), Gone> {
        for part in wire::pieces(bytes, self.shared.style.wire().chunk_bytes) {
            self.send_piece(part).await?;
        }
        Ok(())
    }

    async fn send_piece(&self, part: Bytes) -> Result<(), Gone> {
        tokio::select! {
            biased;
            _ = self.shared.cancel.cancelled() => Err(Gone),
            sent = self.tx.send(Piece::Data(part)) => sent.map_err(|_| Gone),
        }
    }

    /// Waits `duration` unless the reader goes away or the simulator shuts down.
    async fn wait(&self, duration: Duration) -> Result<(), Gone> {
        if duration.is_zero() {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = self.tx.closed() => Err(Gone),
            _ = self.shared.cancel.cancelled() => Err(Gone),
        }
    }

    /// Drops the connection without ending the body; with `reset`, as a TCP RST.
    async fn abort(&self, reset: bool) -> Result<(), Gone> {
        self.wait(FLUSH_GRACE).await?;
        if reset {
            self.conn.reset_on_close();
        }
        let _ = self.tx.send(Piece::Abort).await;
        Ok(())
    }
}
