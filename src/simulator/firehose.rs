//! Firehose mode (spec §8.3): the whole history pre-serialised, before listening, into
//! one buffer of back-to-back `events` messages.
//!
//! Serving is then a matter of handing out slices of that buffer: no per-event work
//! and no per-event allocation while the socket is being filled. The events of the
//! tenant's [`EventLog`](super::event_log::EventLog) point into the same buffer, so the
//! JSON is held once.

use std::ops::Range;

use bytes::Bytes;

use super::event_log::history_time;
use super::generate::{Generator, SimEvent};
use super::id;
use super::wire::WireStyle;

/// The pre-serialised history of one tenant.
#[derive(Debug)]
pub struct Firehose {
    blob: Bytes,
    /// Offset of each message in `blob`, plus the end of the last one.
    starts: Vec<usize>,
    batch_size: usize,
}

impl Firehose {
    /// Generates `count` events spread over `[start_ms, end_ms)` and serialises them
    /// in batches of `batch_size` (at least 1). Returns the buffer and the events,
    /// whose JSON are slices of it.
    pub fn build(
        generator: &mut Generator,
        style: &WireStyle,
        start_ms: i64,
        end_ms: i64,
        count: usize,
        batch_size: usize,
    ) -> (Firehose, Vec<SimEvent>) {
        let batch_size = batch_size.max(1);
        let mut blob = Vec::new();
        let mut starts = Vec::with_capacity(count / batch_size + 2);
        let mut events = Vec::with_capacity(count);
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(count);
        let mut first = 0;
        while first < count {
            let last = (first + batch_size).min(count);
            let batch: Vec<SimEvent> = (first..last)
                .map(|index| generator.next_event(history_time(start_ms, end_ms, index, count)))
                .collect();
            let batch_id = batch
                .last()
                .map(|event| id::format(event.id))
                .unwrap_or_default();
            let json: Vec<&[u8]> = batch.iter().map(|event| &event.json[..]).collect();
            starts.push(blob.len());
            style.events_into(&mut blob, &batch_id, &json, Some(&mut ranges));
            events.extend(batch.into_iter().map(|event| SimEvent {
                json: Bytes::new(),
                ..event
            }));
            first = last;
        }
        starts.push(blob.len());
        blob.shrink_to_fit();
        let blob = Bytes::from(blob);
        for (event, range) in events.iter_mut().zip(ranges) {
            event.json = blob.slice(range);
        }
        (
            Firehose {
                blob,
                starts,
                batch_size,
            },
            events,
        )
    }

    /// Events per pre-serialised message.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Every message from message number `batch` to the end, as one slice.
    pub fn tail(&self, batch: usize) -> Bytes {
        let start = self.starts.get(batch).copied().unwrap_or(self.blob.len());
        self.blob.slice(start..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::generate::EventKind;
    use crate::simulator::scenario::Wire;

    #[test]
    fn the_buffer_is_the_messages_of_the_normal_path() {
        let style = WireStyle::new(Wire::default());
        let mut generator = Generator::new(1, "demo", &EventKind::ALL);
        let (firehose, events) = Firehose::build(&mut generator, &style, 0, 100_000, 25, 10);
        let mut expected = Vec::new();
        for batch in events.chunks(10) {
            let json: Vec<&[u8]> = batch.iter().map(|event| &event.json[..]).collect();
            let last = batch
                .last()
                .map(|event| id::format(event.id))
                .unwrap_or_default();
            expected.extend(style.events(&last, &json));
        }
        assert_eq!(&firehose.tail(0)[..], &expected[..]);
        assert!(firehose.tail(3).is_empty());
        // Same events as the normal generator.
        let mut again = Generator::new(1, "demo", &EventKind::ALL);
        for (index, event) in events.iter().enumerate() {
            let normal = again.next_event(history_time(0, 100_000, index, 25));
            assert_eq!((normal.id, &normal.json), (event.id, &event.json));
        }
    }
}
