//! One tenant's events: the history generated at start-up plus the live events added
//! since, in id order, with the lookups the resume rules of
//! `docs/event-stream.md#simulator-endpoints` need.
//!
//! Readers (stream connections) wait for growth on a `watch` channel carrying the
//! length, so a live event wakes every connection of the tenant.

use std::sync::{PoisonError, RwLock};

use tokio::sync::watch;

use super::generate::{EventKind, Generator, SimEvent};

/// The events of one tenant, oldest first.
#[derive(Debug)]
pub struct EventLog {
    events: RwLock<Vec<SimEvent>>,
    len: watch::Sender<usize>,
}

impl EventLog {
    /// A log holding `history`, which must be in id order.
    pub fn new(history: Vec<SimEvent>) -> EventLog {
        let (len, _) = watch::channel(history.len());
        EventLog {
            events: RwLock::new(history),
            len,
        }
    }

    /// Appends a live event and wakes waiting connections.
    pub fn push(&self, event: SimEvent) {
        let len = {
            let mut events = self.events.write().unwrap_or_else(PoisonError::into_inner);
            events.push(event);
            events.len()
        };
        self.len.send_replace(len);
    }

    /// How many events exist.
    pub fn len(&self) -> usize {
        *self.len.borrow()
    }

    /// True before the first event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A receiver that changes whenever an event is added.
    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.len.subscribe()
    }

    /// Every id, in order, as text.
    pub fn ids(&self) -> Vec<String> {
        let events = self.events.read().unwrap_or_else(PoisonError::into_inner);
        events
            .iter()
            .map(|event| super::id::format(event.id))
            .collect()
    }

    /// The event at `index`.
    pub fn get(&self, index: usize) -> Option<SimEvent> {
        let events = self.events.read().unwrap_or_else(PoisonError::into_inner);
        events.get(index).cloned()
    }

    /// The index to serve from when resuming with `id`: the first event after it, or
    /// (`inclusive`) the event itself. An id never issued is placed by UUID order,
    /// which is time order for UUIDv7.
    pub fn position_of_id(&self, id: u128, inclusive: bool) -> usize {
        let events = self.events.read().unwrap_or_else(PoisonError::into_inner);
        if inclusive {
            events.partition_point(|event| event.id < id)
        } else {
            events.partition_point(|event| event.id <= id)
        }
    }

    /// The index of the first event with `created_time >= ms`.
    pub fn position_of_time(&self, ms: i64) -> usize {
        let events = self.events.read().unwrap_or_else(PoisonError::into_inner);
        events.partition_point(|event| event.created_ms < ms)
    }

    /// Up to `max` events of the wanted kinds from index `from` on, and the index
    /// after the last one looked at.
    pub fn batch(&self, from: usize, kinds: &[EventKind], max: usize) -> (Vec<SimEvent>, usize) {
        let events = self.events.read().unwrap_or_else(PoisonError::into_inner);
        let mut batch = Vec::with_capacity(max.min(64));
        let mut next = from;
        while next < events.len() && batch.len() < max {
            let event = &events[next];
            if kinds.contains(&event.kind) {
                batch.push(event.clone());
            }
            next += 1;
        }
        (batch, next)
    }
}

/// The `created_time` of history event `index` of `count`, spread evenly over
/// `[start_ms, end_ms)`.
pub fn history_time(start_ms: i64, end_ms: i64, index: usize, count: usize) -> i64 {
    let span = i128::from(end_ms.saturating_sub(start_ms).max(0));
    let offset = span * index as i128 / count.max(1) as i128;
    start_ms.saturating_add(i64::try_from(offset).unwrap_or(i64::MAX))
}

/// Generates `count` history events spread over `[start_ms, end_ms)`.
pub fn generate_history(
    generator: &mut Generator,
    start_ms: i64,
    end_ms: i64,
    count: usize,
) -> Vec<SimEvent> {
    (0..count)
        .map(|index| generator.next_event(history_time(start_ms, end_ms, index, count)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> EventLog {
        let mut generator = Generator::new(1, "demo", &EventKind::ALL);
        EventLog::new(generate_history(&mut generator, 1_000_000, 1_100_000, 50))
    }

    #[test]
    fn resume_positions_follow_id_order() {
        let log = log();
        let third = log.get(2).expect("event");
        assert_eq!(log.position_of_id(third.id, false), 3);
        assert_eq!(log.position_of_id(third.id, true), 2);
        // An invented id between the third and fourth event.
        assert_eq!(log.position_of_id(third.id + 1, false), 3);
        assert_eq!(log.position_of_id(0, false), 0);
        assert_eq!(log.position_of_id(u128::MAX, false), 50);
        assert_eq!(log.position_of_time(third.created_ms), 2);
        assert_eq!(log.position_of_time(third.created_ms + 1), 3);
    }

    #[test]
    fn history_is_spread_evenly_from_the_start() {
        assert_eq!(history_time(1000, 2000, 0, 10), 1000);
        assert_eq!(history_time(1000, 2000, 5, 10), 1500);
        assert_eq!(history_time(1000, 2000, 9, 10), 1900);
    }

    #[test]
    fn batches_filter_by_kind_and_stop_at_the_limit() {
        let log = log();
        let (batch, next) = log.batch(0, &[EventKind::Threat], 3);
        assert_eq!(batch.len(), 3);
        assert!(batch.iter().all(|e| e.kind == EventKind::Threat));
        assert!(next >= 3);
        let (rest, end) = log.batch(45, &EventKind::ALL, 10);
        assert_eq!((rest.len(), end), (5, 50));
    }
}
