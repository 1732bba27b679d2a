//! Throughput of the syslog record writer (`sink::syslog`): header, `max_message_size`
//! check and framing, appended to one reused buffer, for the LEEF messages of 1,000
//! events cycled from the example events.
//!
//! Two destinations: the default (`rfc3164` header, TCP with LF framing, the QRadar
//! set-up) and `rfc5424` with octet counting (the TLS default). Each has two ids:
//! `<variant>/events` reports events/s and `<variant>/bytes` reports MB/s of framed
//! bytes written.

mod corpus;

use std::hint::black_box;
use std::path::Path;

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mrav2_syslog_connector::config::{Format, SyslogConfig, load_str};
use mrav2_syslog_connector::format::{Formatter, RenderedMessage};
use mrav2_syslog_connector::sink::syslog::RecordWriter;

const EVENTS: usize = 1_000;

/// The `[syslog]` section of a configuration whose other sections are a formality.
fn syslog_config(syslog: &str) -> SyslogConfig {
    let text = format!(
        "[lookout]\nentity_name = acme\napi_domain = https://api.lookout.com\n\
         api_key = bench\n\n[syslog]\nhost = 127.0.0.1\nhostname = mra-connector-01\n{syslog}\n"
    );
    let config = load_str(Path::new("bench.ini"), &text).expect("the benchmark config is valid");
    config.tenants[0].syslog.clone()
}

fn write_all(
    writer: &RecordWriter,
    messages: &[RenderedMessage],
    now: DateTime<Utc>,
    out: &mut Vec<u8>,
) {
    out.clear();
    for message in messages {
        writer.write(message, now, out);
    }
}

fn bench_syslog(c: &mut Criterion) {
    let events = corpus::events(EVENTS);
    let formatter = Formatter::new(Format::Leef { delimiter: '\t' }, "acme", None);
    let mut messages = Vec::new();
    for event in &events {
        let event = event.decode().expect("the example events are objects");
        formatter.render(&event, &mut messages);
    }
    let now = Utc::now();

    let mut group = c.benchmark_group("syslog");
    for (name, section) in [
        (
            "rfc3164-lf",
            "protocol = tcp\nsyslog_format = rfc3164\nframing = lf",
        ),
        (
            "rfc5424-octet",
            "protocol = tcp\nsyslog_format = rfc5424\nframing = octet-counting",
        ),
    ] {
        let writer = RecordWriter::new(&syslog_config(section));
        let mut out = Vec::with_capacity(4 << 20);
        write_all(&writer, &messages, now, &mut out);
        let bytes = out.len();
        for (unit, throughput) in [
            ("events", Throughput::Elements(EVENTS as u64)),
            ("bytes", Throughput::Bytes(bytes as u64)),
        ] {
            group.throughput(throughput);
            group.bench_function(format!("{name}/{unit}"), |b| {
                b.iter(|| write_all(&writer, black_box(&messages), now, &mut out));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_syslog);
criterion_main!(benches);
