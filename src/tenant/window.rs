//! A time window of a tenant's stream, for `resend`: which events of a batch were
//! created in `[from, to)`, and whether the batch reached `to`.
//!
//! The stream is read with `start_time = from`, and the API's `start_time` has whole
//! seconds, so the first batches may hold events created a little before `from`: they
//! are dropped here. The first event created at or after `to` ends the window: it and
//! everything after it are dropped, and the reader stops reading. An event whose
//! `created_time` is missing or unreadable cannot be placed in time; it is kept (the
//! stream is in creation order, so it belongs where it arrived) and never ends the
//! window.
//!
//! Pure: no I/O, no clock. The reader (`tenant/mod.rs`) applies it to each batch.

use crate::event::{Batch, RawEvent};
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

/// `[from, to)` by `created_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// How far delivery has got through the window: about the `created_time` of the
/// newest event delivered, shared with whoever shows progress.
#[derive(Debug, Default)]
pub struct Reached(AtomicI64);

impl Window {
    /// Keeps the events of `batch` created in the window, in order. Returns true when
    /// the batch held an event created at or after `to` (the window is read); its
    /// position is then cleared, because the events after the cut are not delivered
    /// and the message's position must not be confirmed for them.
    pub fn cut(&self, batch: &mut Batch) -> bool {
        let mut ends_window = false;
        let mut keep = Vec::with_capacity(batch.events.len());
        for event in batch.events.drain(..) {
            match created(&event) {
                Some(t) if t >= self.to => {
                    ends_window = true;
                    break;
                }
                Some(t) if t < self.from => {}
                Some(_) | None => keep.push(event),
            }
        }
        batch.events = keep;
        if ends_window {
            batch.position = None;
        }
        ends_window
    }

    /// The share of the window before `t`, from 0 to 1.
    pub fn fraction(&self, t: DateTime<Utc>) -> f64 {
        let whole = (self.to - self.from).num_milliseconds().max(1) as f64;
        let done = (t - self.from).num_milliseconds() as f64;
        (done / whole).clamp(0.0, 1.0)
    }
}

impl Reached {
    /// Records that events up to `t` were delivered.
    pub fn set(&self, t: DateTime<Utc>) {
        self.0.fetch_max(t.timestamp_millis(), Ordering::Relaxed);
    }

    /// The newest `created_time` delivered, if any.
    pub fn get(&self) -> Option<DateTime<Utc>> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ms => DateTime::from_timestamp_millis(ms),
        }
    }
}

/// The event's `created_time`, when it is present and an ISO-8601 instant.
fn created(event: &RawEvent) -> Option<DateTime<Utc>> {
    let decoded = event.decode().ok()?;
    let text = decoded.created_time()?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| crate::config::load::parse_timestamp(text).map(|(t, _)| t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Position;
    use proptest::prelude::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_793_866_000_000 + ms).unwrap()
    }

    fn event(id: &str, created: Option<DateTime<Utc>>) -> RawEvent {
        let json = match created {
            Some(t) => format!(
                r#"{{"id":"{id}","created_time":"{}"}}"#,
                t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
            ),
            None => format!(r#"{{"id":"{id}"}}"#),
        };
        RawEvent::new(&json, Some(id))
    }

    fn ids(batch: &Batch) -> Vec<&str> {
        batch.events.iter().filter_map(RawEvent::id).collect()
    }

    fn window() -> Window {
        Window {
            from: at(1000),
            to: at(2000),
        }
    }

    #[test]
    fn events_before_from_are_dropped_and_from_is_inside() {
        let mut batch = Batch {
            position: Position::new("p1"),
            events: vec![
                event("a", Some(at(999))),
                event("b", Some(at(1000))),
                event("c", Some(at(1500))),
            ],
            dead_letters: vec![],
        };
        assert!(!window().cut(&mut batch));
        assert_eq!(ids(&batch), ["b", "c"]);
        assert_eq!(batch.position, Position::new("p1"));
    }

    #[test]
    fn the_first_event_at_to_ends_the_window_and_drops_the_rest() {
        let mut batch = Batch {
            position: Position::new("p2"),
            events: vec![
                event("a", Some(at(1999))),
                event("b", Some(at(2000))),
                // Out of order after the end: still not sent, the window is read.
                event("c", Some(at(1998))),
            ],
            dead_letters: vec![],
        };
        assert!(window().cut(&mut batch));
        assert_eq!(ids(&batch), ["a"]);
        assert_eq!(batch.position, None);
    }

    #[test]
    fn an_event_without_a_readable_time_is_kept_and_does_not_end_the_window() {
        let mut batch = Batch {
            position: None,
            events: vec![
                event("a", None),
                RawEvent::new(r#"{"id":"b","created_time":"yesterday"}"#, Some("b")),
            ],
            dead_letters: vec![],
        };
        assert!(!window().cut(&mut batch));
        assert_eq!(ids(&batch), ["a", "b"]);
    }

    #[test]
    fn other_offsets_are_compared_as_instants() {
        // 2026-11-05T10:00:01+02:00 is 08:00:01 UTC.
        let w = Window {
            from: "2026-11-05T08:00:00Z".parse().unwrap(),
            to: "2026-11-05T08:00:02Z".parse().unwrap(),
        };
        let mut batch = Batch {
            position: None,
            events: vec![RawEvent::new(
                r#"{"id":"a","created_time":"2026-11-05T10:00:01+02:00"}"#,
                Some("a"),
            )],
            dead_letters: vec![],
        };
        assert!(!w.cut(&mut batch));
        assert_eq!(ids(&batch), ["a"]);
    }

    #[test]
    fn fraction_and_reached() {
        let w = window();
        assert_eq!(w.fraction(at(0)), 0.0);
        assert_eq!(w.fraction(at(1500)), 0.5);
        assert_eq!(w.fraction(at(9000)), 1.0);
        let reached = Reached::default();
        assert_eq!(reached.get(), None);
        reached.set(at(1500));
        reached.set(at(1200));
        assert_eq!(reached.get(), Some(at(1500)));
    }

    proptest! {
        /// Whatever the times, exactly the events before the first one at or after
        /// `to` that are not before `from` are kept, in order.
        #[test]
        fn keeps_exactly_the_window(times in proptest::collection::vec(0i64..3000, 0..40)) {
            let events: Vec<_> = times
                .iter()
                .enumerate()
                .map(|(i, &ms)| event(&format!("e{i}"), Some(at(ms))))
                .collect();
            let mut batch = Batch { position: Position::new("p"), events, dead_letters: vec![] };
            let ends = window().cut(&mut batch);
            let end = times.iter().position(|&ms| ms >= 2000);
            let expected: Vec<String> = times[..end.unwrap_or(times.len())]
                .iter()
                .enumerate()
                .filter(|&(_, &ms)| ms >= 1000)
                .map(|(i, _)| format!("e{i}"))
                .collect();
            prop_assert_eq!(ids(&batch), expected.iter().map(String::as_str).collect::<Vec<_>>());
            prop_assert_eq!(ends, end.is_some());
            prop_assert_eq!(batch.position.is_none(), end.is_some());
        }
    }
}
