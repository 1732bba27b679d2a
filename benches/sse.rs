//! Throughput of the event-stream parser (`source::sse`) on a realistic stream: the
//! example events in 100-event batches with a heartbeat every tenth batch, fed in
//! 16 KiB reads (hyper hands the body over in reads of about that size).
//!
//! `sse/parse/*` measures the parser alone: bytes in, frames out. `sse/batch/*` adds
//! what the source does next with every `events` frame: `source::decode::decode_batch`
//! splits its data into a `Batch` of `RawEvent`s (each event's JSON text and its id;
//! the objects themselves are decoded later, by the writer: see `benches/format.rs`).
//! Two ids per benchmark so that criterion reports both events/s
//! (`Throughput::Elements`) and MB/s of stream bytes consumed (`Throughput::Bytes`).

mod corpus;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mrav2_syslog_connector::source::decode::decode_batch;
use mrav2_syslog_connector::source::sse::{DEFAULT_MAX_EVENT_SIZE, Frame, Parser};

/// Events in the benchmarked stream: ten batches.
const EVENTS: usize = 1_000;
/// Bytes per `feed` call.
const READ_SIZE: usize = 16 * 1024;

fn parse_all(stream: &[u8], frames: &mut Vec<Frame>) -> usize {
    let mut parser = Parser::new(DEFAULT_MAX_EVENT_SIZE);
    let mut data_bytes = 0;
    for read in stream.chunks(READ_SIZE) {
        parser
            .feed_into(read, frames)
            .expect("the benchmark stream is within the size limit");
        for frame in frames.drain(..) {
            data_bytes += frame.data.map_or(0, |d| d.len());
        }
    }
    data_bytes
}

/// Parses the stream and splits every `events` frame into events; returns how many.
fn parse_and_decode(stream: &[u8], frames: &mut Vec<Frame>) -> usize {
    let mut parser = Parser::new(DEFAULT_MAX_EVENT_SIZE);
    let mut events = 0;
    for read in stream.chunks(READ_SIZE) {
        parser
            .feed_into(read, frames)
            .expect("the benchmark stream is within the size limit");
        for frame in frames.drain(..) {
            if frame.event != "events" {
                continue;
            }
            if let Some(data) = frame.data {
                let id = frame.id_field.then_some(&*frame.last_id);
                let (batch, _) = decode_batch(data, id);
                events += batch.events.len();
            }
        }
    }
    events
}

fn bench_sse(c: &mut Criterion) {
    let events = corpus::events(EVENTS);
    let stream = corpus::sse_stream(&events).into_bytes();
    let mut frames = Vec::new();
    assert!(parse_all(&stream, &mut frames) > 0, "the stream has data");
    assert_eq!(parse_and_decode(&stream, &mut frames), EVENTS);

    let mut group = c.benchmark_group("sse");
    for (id, throughput) in [
        ("parse/events", Throughput::Elements(EVENTS as u64)),
        ("parse/bytes", Throughput::Bytes(stream.len() as u64)),
    ] {
        group.throughput(throughput);
        group.bench_function(id, |b| {
            b.iter(|| parse_all(black_box(&stream), &mut frames));
        });
    }
    for (id, throughput) in [
        ("batch/events", Throughput::Elements(EVENTS as u64)),
        ("batch/bytes", Throughput::Bytes(stream.len() as u64)),
    ] {
        group.throughput(throughput);
        group.bench_function(id, |b| {
            b.iter(|| parse_and_decode(black_box(&stream), &mut frames));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_sse);
criterion_main!(benches);
