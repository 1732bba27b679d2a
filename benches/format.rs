//! Throughput of what the tenant's writer does with each event before the syslog
//! header: decoding its JSON text into an `MraEvent` (`format/decode`), then rendering
//! it (`format/leef`, QRadar LEEF 2.0 with the TAB delimiter; `format/splunk-json`;
//! `format/splunk-kv`; `format/cef`; `format/ocsf`), over 1,000 events cycled from the
//! example events (the same events as `benches/sse.rs`). The renderers get events
//! decoded beforehand.
//!
//! Each has two ids: `…/events` reports events/s and `…/bytes` reports MB/s: of JSON
//! text read for `decode`, of rendered message text written for the renderers. The
//! output vector is reused across iterations, as the writer does.

mod corpus;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mrav2_syslog_connector::config::Format;
use mrav2_syslog_connector::event::{MraEvent, RawEvent};
use mrav2_syslog_connector::format::{Formatter, RenderedMessage};

const EVENTS: usize = 1_000;

fn render_all(formatter: &Formatter, events: &[MraEvent<'_>], out: &mut Vec<RenderedMessage>) {
    out.clear();
    for event in events {
        formatter.render(event, out);
    }
}

fn decode_all(raw: &[RawEvent]) -> usize {
    raw.iter()
        .map(|event| {
            event
                .decode()
                .expect("the example events are objects")
                .fields
                .len()
        })
        .sum()
}

fn bench_format(c: &mut Criterion) {
    let raw = corpus::events(EVENTS);
    let events: Vec<MraEvent<'_>> = raw
        .iter()
        .map(|event| event.decode().expect("the example events are objects"))
        .collect();
    let mut group = c.benchmark_group("format");

    let json_bytes: usize = raw.iter().map(|event| event.json().len()).sum();
    for (unit, throughput) in [
        ("events", Throughput::Elements(EVENTS as u64)),
        ("bytes", Throughput::Bytes(json_bytes as u64)),
    ] {
        group.throughput(throughput);
        group.bench_function(format!("decode/{unit}"), |b| {
            b.iter(|| decode_all(black_box(&raw)));
        });
    }

    for (name, format) in [
        ("leef", Format::Leef { delimiter: '\t' }),
        ("splunk-json", Format::SplunkJson),
        ("splunk-kv", Format::SplunkKv),
        ("cef", Format::Cef),
        ("ocsf", Format::Ocsf),
    ] {
        let formatter = Formatter::new(format, "acme", None);
        let mut out = Vec::with_capacity(EVENTS * 2);
        render_all(&formatter, &events, &mut out);
        let bytes: usize = out.iter().map(|m| m.text.len()).sum();
        for (unit, throughput) in [
            ("events", Throughput::Elements(EVENTS as u64)),
            ("bytes", Throughput::Bytes(bytes as u64)),
        ] {
            group.throughput(throughput);
            group.bench_function(format!("{name}/{unit}"), |b| {
                b.iter(|| render_all(&formatter, black_box(&events), &mut out));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_format);
criterion_main!(benches);
