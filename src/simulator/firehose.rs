//! Firehose mode (`docs/event-stream.md#firehose-mode`): the whole history pre-serialised,
//! before listening, into one buffer of back-to-back `events` messages.
//!
//! Serving is then a matter of handing out slices of that buffer: no per-event work
//! and no per-event allocation while the socket is being filled. The events of the
//! tenant's [`EventLog`](super::event_log::EventLog) point into the same buffer, so the
//! JSON is held once. The buffer is a list of segments of about 8 MiB rather than one
//! vector, so that building a million events never needs a second, doubled copy.

use std::ops::Range;

use bytes::Bytes;

use super::event_log::history_time;
use super::generate::{Generator, SimEvent};
use super::id;
use super::wire::WireStyle;

/// The pre-serialised history of one tenant.
#[derive(Debug)]
pub struct Firehose {
    segments: Vec<Bytes>,
    /// (segment, offset) of the start of each message. Messages never straddle
    /// segments.
    starts: Vec<(usize, usize)>,
    batch_size: usize,
}

/// Segment size: large enough for few, large writes; small enough that the build's
/// spare capacity stays negligible.
const SEGMENT: usize = 8 << 20;

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
        Firehose::build_in_segments(
            generator, style, start_ms, end_ms, count, batch_size, SEGMENT,
        )
    }

    /// [`Firehose::build`] with a chosen segment size (tests use small ones).
    fn build_in_segments(
        generator: &mut Generator,
        style: &WireStyle,
        start_ms: i64,
        end_ms: i64,
        count: usize,
        batch_size: usize,
        segment_size: usize,
    ) -> (Firehose, Vec<SimEvent>) {
        let batch_size = batch_size.max(1);
        let mut segments: Vec<Bytes> = Vec::new();
        let mut current: Vec<u8> = Vec::with_capacity(segment_size.min(count * 1024 + 1024));
        let mut starts = Vec::with_capacity(count / batch_size + 1);
        let mut events = Vec::with_capacity(count);
        // Per event: the segment and the byte range of its JSON in it.
        let mut places: Vec<(usize, Range<usize>)> = Vec::with_capacity(count);
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(batch_size);
        let mut first = 0;
        while first < count {
            if current.len() >= segment_size {
                segments.push(Bytes::from(std::mem::replace(
                    &mut current,
                    Vec::with_capacity(segment_size + segment_size / 8),
                )));
            }
            let last = (first + batch_size).min(count);
            let batch: Vec<SimEvent> = (first..last)
                .map(|index| generator.next_event(history_time(start_ms, end_ms, index, count)))
                .collect();
            let batch_id = batch
                .last()
                .map(|event| id::format(event.id))
                .unwrap_or_default();
            let json: Vec<&[u8]> = batch.iter().map(|event| &event.json[..]).collect();
            starts.push((segments.len(), current.len()));
            ranges.clear();
            style.events_into(&mut current, &batch_id, &json, Some(&mut ranges));
            places.extend(ranges.drain(..).map(|range| (segments.len(), range)));
            events.extend(batch.into_iter().map(|event| SimEvent {
                json: Bytes::new(),
                ..event
            }));
            first = last;
        }
        current.shrink_to_fit();
        segments.push(Bytes::from(current));
        for (event, (segment, range)) in events.iter_mut().zip(places) {
            event.json = segments[segment].slice(range);
        }
        (
            Firehose {
                segments,
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

    /// Every message from message number `batch` to the end, as a few large slices.
    pub fn tail(&self, batch: usize) -> Vec<Bytes> {
        let Some(&(segment, offset)) = self.starts.get(batch) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(self.segments.len() - segment);
        out.push(self.segments[segment].slice(offset..));
        out.extend(self.segments[segment + 1..].iter().cloned());
        out
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
        // Small segments, so that messages land in several of them.
        let (firehose, events) =
            Firehose::build_in_segments(&mut generator, &style, 0, 100_000, 25, 10, 4096);
        assert!(firehose.segments.len() > 1);
        let mut expected = Vec::new();
        for batch in events.chunks(10) {
            let json: Vec<&[u8]> = batch.iter().map(|event| &event.json[..]).collect();
            let last = batch
                .last()
                .map(|event| id::format(event.id))
                .unwrap_or_default();
            expected.extend(style.events(&last, &json));
        }
        assert_eq!(firehose.tail(0).concat(), expected);
        assert!(firehose.tail(3).is_empty());
        assert_eq!(
            firehose.tail(1).concat(),
            expected[expected.len() - firehose.tail(1).concat().len()..]
        );
        // Same events as the normal generator.
        let mut again = Generator::new(1, "demo", &EventKind::ALL);
        for (index, event) in events.iter().enumerate() {
            let normal = again.next_event(history_time(0, 100_000, index, 25));
            assert_eq!((normal.id, &normal.json), (event.id, &event.json));
        }
    }
}
