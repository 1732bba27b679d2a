//! Throughput of the renderers (`format`): QRadar LEEF 2.0 (TAB delimiter), Splunk
//! JSON and Splunk kv, over 1,000 events cycled from the spec's examples (the same
//! events as `benches/sse.rs`, already decoded).
//!
//! Each renderer has two ids: `<format>/events` reports events/s and `<format>/bytes`
//! reports MB/s of rendered message text (the bytes the renderer produces). The output
//! vector is reused across iterations, as the tenant task does.

mod corpus;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mrav2_syslog_connector::config::Format;
use mrav2_syslog_connector::event::MraEvent;
use mrav2_syslog_connector::format::{Formatter, RenderedMessage};

const EVENTS: usize = 1_000;

fn render_all(formatter: &Formatter, events: &[MraEvent], out: &mut Vec<RenderedMessage>) {
    out.clear();
    for event in events {
        formatter.render(event, out);
    }
}

fn bench_format(c: &mut Criterion) {
    let events = corpus::events(EVENTS);
    let mut group = c.benchmark_group("format");
    for (name, format) in [
        ("leef", Format::Leef { delimiter: '\t' }),
        ("splunk-json", Format::SplunkJson),
        ("splunk-kv", Format::SplunkKv),
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
