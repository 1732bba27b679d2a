//! The input every micro-benchmark shares: the example events
//! (`tests/golden/events/*.json`, the formatter's copies), cycled into a realistic
//! stream of 100-event batches.
//!
//! Each copy gets its own time-ordered, UUID-shaped id so that the stream looks like
//! the API's (and the SSE `id:` line of a batch is its last event's id). A heartbeat
//! message follows every tenth batch, as the API sends one every 5 s whether or not
//! batches went out in between.

// Every benchmark binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

use mrav2_syslog_connector::event::RawEvent;
use serde_json::{Map, Value};

/// Events per `events` message, as in the issue (and the simulator's `--batch-size`).
pub const BATCH_SIZE: usize = 100;

/// The example events, in file-name order.
pub fn example_events() -> Vec<Map<String, Value>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/events");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no example events in {}", dir.display());
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("example event is readable");
            serde_json::from_str(&text).expect("example event is a JSON object")
        })
        .collect()
}

/// `count` events cycled from the examples, each with a fresh id, as the writer gets
/// them: compact JSON text and the id.
pub fn events(count: usize) -> Vec<RawEvent> {
    let examples = example_events();
    (0..count)
        .map(|n| {
            let mut fields = examples[n % examples.len()].clone();
            let id = event_id(n as u64);
            fields.insert("id".into(), Value::String(id.clone()));
            let json = serde_json::to_string(&fields).expect("a map serialises");
            RawEvent::new(&json, Some(&id))
        })
        .collect()
}

/// A UUIDv7-shaped id, strictly increasing with `n`.
pub fn event_id(n: u64) -> String {
    let ms = 0x019a_0000_0000u64 + n / 4096;
    let counter = n % 4096;
    format!(
        "{:08x}-{:04x}-7{:03x}-8000-{:012x}",
        ms >> 16,
        ms & 0xffff,
        counter,
        n
    )
}

/// The `text/event-stream` body carrying `events` in batches of [`BATCH_SIZE`], exactly
/// as the API writes it (`id:`, `event:events`, one `data:` line per batch).
pub fn sse_stream(events: &[RawEvent]) -> String {
    let mut out = String::new();
    for (n, batch) in events.chunks(BATCH_SIZE).enumerate() {
        let last = batch.last().and_then(RawEvent::id).unwrap_or("0");
        let _ = write!(out, "id:{last}\nevent:events\ndata:{{\"events\":[");
        for (i, event) in batch.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(event.json());
        }
        out.push_str("]}\n\n");
        if n % 10 == 9 {
            out.push_str("event:heartbeat\ndata:{}\n\n");
        }
    }
    out
}
