//! The delivery ledger: from the sink's receipts, which stream position may be
//! committed and from where the source must read again after a loss.
//!
//! The writer hands records to its sink in pieces. Each piece gets a [`Ticket`] from
//! the ledger when it is sent; each batch ends with a boundary that carries the batch's
//! stream position. The sink later answers for every ticket with a [`Receipt`]: the
//! piece was *delivered* (by whatever that sink counts as delivered: written, settled,
//! acknowledged), or it was *lost* together with every ticket issued after it.
//!
//! From that the ledger keeps one invariant: **a position is confirmed only when every
//! piece issued before its boundary was delivered.** Receipts may arrive in any order;
//! confirmation always moves front to back. After a loss the ledger forgets every
//! entry from the first unreceipted piece on (including pieces delivered after it,
//! which will be sent again: duplicates are possible, gaps are not) and answers where
//! the source must re-read from: the last confirmed position before that piece.
//! Receipts for tickets issued before a loss are stale and ignored.
//!
//! Pure: no I/O, no clock, no async. The writer (`tenant/writer.rs`) owns the sink, the
//! state file and the rewind channel; this module only does the bookkeeping, and is
//! tested against a simple model.

use crate::event::Position;
use std::collections::VecDeque;
use std::time::Duration;

/// Names one piece handed to a sink. Tickets are issued in increasing order and never
/// reused within a pipeline run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

/// A sink's answer about a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// The piece reached the destination.
    Delivered(Ticket),
    /// The piece, and every piece issued after it, may not have reached the
    /// destination and must be sent again.
    Lost(Ticket),
}

/// The bookkeeping of one pipeline run (see the module documentation).
#[derive(Debug)]
pub struct Ledger {
    /// Pieces and batch boundaries in the order they were issued, from the first one
    /// not yet confirmed.
    entries: VecDeque<Entry>,
    /// The number of the next ticket.
    next: u64,
    /// Tickets below this number were issued before the latest loss: stale.
    floor: u64,
    /// The last position whose events were all delivered.
    confirmed: Option<Position>,
    /// Pieces issued and not yet receipted (delivered or forgotten).
    outstanding: usize,
}

/// What became delivered since the last [`Ledger::advance`]: for the metrics, the
/// progress line and the state file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advance {
    /// Events whose pieces (and batch) were delivered.
    pub events: u64,
    /// The lag reported with the newest delivered piece that had one.
    pub lag: Option<Duration>,
    /// The newest position confirmed, if one was.
    pub position: Option<Position>,
}

/// Where the source must read again after a loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewind {
    /// The last confirmed position (`None`: the run's start position).
    pub from: Option<Position>,
    /// Events that had been sent and are now to be read and sent again.
    pub resent_events: u64,
}

#[derive(Debug)]
enum Entry {
    Piece {
        ticket: Ticket,
        events: u64,
        lag: Option<Duration>,
        delivered: bool,
    },
    /// The end of a batch: its position, and events of it that produced no piece
    /// (undecodable ones, kept as dead letters). Confirmed as soon as every piece before
    /// it is.
    Boundary {
        position: Option<Position>,
        events: u64,
    },
}

impl Ledger {
    /// A ledger for a run that starts after `confirmed` (the committed position, or
    /// `None` at the very start).
    pub fn new(confirmed: Option<Position>) -> Self {
        Self {
            entries: VecDeque::new(),
            next: 0,
            floor: 0,
            confirmed,
            outstanding: 0,
        }
    }

    /// Issues the ticket for a piece of `events` events about to be sent.
    pub fn issue(&mut self, events: u64, lag: Option<Duration>) -> Ticket {
        let ticket = Ticket(self.next);
        self.next += 1;
        self.outstanding += 1;
        self.entries.push_back(Entry::Piece {
            ticket,
            events,
            lag,
            delivered: false,
        });
        ticket
    }

    /// Ends the current batch: `position` is confirmed once every piece issued so far
    /// is delivered. `events` counts the batch's events that were in no piece.
    pub fn end_batch(&mut self, position: Option<Position>, events: u64) {
        self.entries.push_back(Entry::Boundary { position, events });
    }

    /// Applies one receipt. Returns where to re-read from when it reported a loss that
    /// is not stale.
    pub fn apply(&mut self, receipt: Receipt) -> Option<Rewind> {
        match receipt {
            Receipt::Delivered(ticket) => {
                self.delivered(ticket);
                None
            }
            Receipt::Lost(ticket) => self.lost_from(ticket),
        }
    }

    /// Records that the piece `ticket` was delivered. A stale or unknown ticket is
    /// ignored.
    pub fn delivered(&mut self, ticket: Ticket) {
        if !self.is_current(ticket) {
            return;
        }
        // Entries are in ticket order; the piece is found by a binary search over the
        // pieces' tickets (boundaries sit between them).
        let found = self.find(ticket);
        if let Some(Entry::Piece { delivered, .. }) = found.and_then(|i| self.entries.get_mut(i))
            && !*delivered
        {
            *delivered = true;
            self.outstanding -= 1;
        }
    }

    /// Records that `ticket` and every later ticket may be lost. Forgets every entry
    /// from the first piece not delivered (which is at or before `ticket`), so that
    /// what the source reads again is sent again; returns where to read from. `None`
    /// when the ticket is stale (an earlier loss already covered it) or unknown.
    pub fn lost_from(&mut self, ticket: Ticket) -> Option<Rewind> {
        if !self.is_current(ticket) {
            return None;
        }
        Some(self.forget_unreceipted())
    }

    /// Forgets every entry from the first piece not delivered on, as after a loss of
    /// everything outstanding (a sink error). Returns where to read from.
    pub fn forget_unreceipted(&mut self) -> Rewind {
        let keep = self
            .entries
            .iter()
            .position(|e| {
                matches!(
                    e,
                    Entry::Piece {
                        delivered: false,
                        ..
                    }
                )
            })
            .unwrap_or(self.entries.len());
        let resent_events = self
            .entries
            .range(keep..)
            .map(|e| match e {
                Entry::Piece { events, .. } | Entry::Boundary { events, .. } => *events,
            })
            .sum();
        self.entries.truncate(keep);
        self.outstanding = 0;
        self.floor = self.next;
        let from = self
            .entries
            .iter()
            .rev()
            .find_map(|e| match e {
                Entry::Boundary {
                    position: Some(p), ..
                } => Some(p.clone()),
                _ => None,
            })
            .or_else(|| self.confirmed.clone());
        Rewind {
            from,
            resent_events,
        }
    }

    /// Takes the delivered entries off the front: the events they carried and the
    /// newest position they confirm.
    pub fn advance(&mut self) -> Advance {
        let mut advance = Advance::default();
        while let Some(entry) = self.entries.front() {
            match entry {
                Entry::Piece {
                    delivered: false, ..
                } => break,
                Entry::Piece { events, lag, .. } => {
                    advance.events += events;
                    if lag.is_some() {
                        advance.lag = *lag;
                    }
                }
                Entry::Boundary { position, events } => {
                    advance.events += events;
                    if let Some(p) = position {
                        advance.position = Some(p.clone());
                    }
                }
            }
            self.entries.pop_front();
        }
        if let Some(p) = &advance.position {
            self.confirmed = Some(p.clone());
        }
        advance
    }

    /// The last confirmed position.
    pub fn confirmed(&self) -> Option<&Position> {
        self.confirmed.as_ref()
    }

    /// Every piece issued was delivered and every batch end confirmed (nothing is
    /// waiting for a receipt or for [`Ledger::advance`]).
    pub fn is_settled(&self) -> bool {
        self.entries.is_empty()
    }

    /// Pieces sent and not yet receipted.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// The oldest piece not yet receipted.
    pub fn oldest_outstanding(&self) -> Option<Ticket> {
        self.entries.iter().find_map(|e| match e {
            Entry::Piece {
                ticket,
                delivered: false,
                ..
            } => Some(*ticket),
            _ => None,
        })
    }

    fn is_current(&self, ticket: Ticket) -> bool {
        ticket.0 >= self.floor && ticket.0 < self.next
    }

    /// The index of the piece `ticket` among the entries, if it is still there.
    fn find(&self, ticket: Ticket) -> Option<usize> {
        // Pieces are few per batch and entries are short (a batch or two); searching
        // back from the newest finds recent receipts at once.
        self.entries.iter().rposition(|e| match e {
            Entry::Piece { ticket: t, .. } => *t == ticket,
            Entry::Boundary { .. } => false,
        })
    }
}

impl Ticket {
    /// The ticket's number, for log lines and tests.
    pub fn number(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pos(n: u32) -> Option<Position> {
        Position::new(format!("p{n}"))
    }

    #[test]
    fn a_batch_is_confirmed_only_when_all_its_pieces_are_delivered() {
        let mut ledger = Ledger::new(pos(0));
        let a = ledger.issue(3, None);
        let b = ledger.issue(2, Some(Duration::from_secs(7)));
        ledger.end_batch(pos(1), 0);
        ledger.delivered(b);
        assert_eq!(ledger.advance(), Advance::default());
        assert_eq!(ledger.confirmed(), pos(0).as_ref());
        ledger.delivered(a);
        assert_eq!(
            ledger.advance(),
            Advance {
                events: 5,
                lag: Some(Duration::from_secs(7)),
                position: pos(1)
            }
        );
        assert_eq!(ledger.confirmed(), pos(1).as_ref());
        assert_eq!(ledger.outstanding(), 0);
    }

    #[test]
    fn a_loss_rewinds_to_the_last_boundary_before_the_first_unreceipted_piece() {
        let mut ledger = Ledger::new(pos(0));
        let a = ledger.issue(1, None);
        ledger.end_batch(pos(1), 0);
        let b = ledger.issue(1, None);
        ledger.end_batch(pos(2), 0);
        let c = ledger.issue(1, None);
        ledger.end_batch(pos(3), 0);
        ledger.delivered(a);
        ledger.delivered(c);
        // c was delivered after b, but b is lost: everything from b is sent again.
        let rewind = ledger.lost_from(b).expect("current ticket");
        assert_eq!(rewind.from, pos(1));
        assert_eq!(rewind.resent_events, 2);
        assert_eq!(ledger.advance().position, pos(1));
        assert_eq!(ledger.outstanding(), 0);
        // Receipts for tickets from before the loss are ignored.
        ledger.delivered(b);
        assert_eq!(ledger.lost_from(c), None);
        assert_eq!(ledger.advance(), Advance::default());
    }

    #[test]
    fn a_loss_of_a_later_ticket_still_rewinds_from_the_first_unreceipted() {
        let mut ledger = Ledger::new(None);
        let _a = ledger.issue(1, None);
        ledger.end_batch(pos(1), 0);
        let b = ledger.issue(1, None);
        let rewind = ledger.lost_from(b).expect("current ticket");
        assert_eq!(rewind.from, None, "nothing was confirmed in this run");
    }

    #[test]
    fn boundaries_without_pieces_confirm_at_once_and_count_their_events() {
        let mut ledger = Ledger::new(None);
        ledger.end_batch(pos(1), 4);
        assert_eq!(
            ledger.advance(),
            Advance {
                events: 4,
                lag: None,
                position: pos(1)
            }
        );
    }

    #[test]
    fn unknown_tickets_are_ignored() {
        let mut ledger = Ledger::new(None);
        ledger.delivered(Ticket(5));
        assert_eq!(ledger.lost_from(Ticket(5)), None);
        let a = ledger.issue(1, None);
        ledger.delivered(a);
        ledger.delivered(a);
        assert_eq!(ledger.outstanding(), 0);
    }

    /// One step of a run, as the writer and a sink could interleave them.
    #[derive(Debug, Clone)]
    enum Op {
        /// Send a piece of this many events.
        Piece(u64),
        /// End the batch (its position is the next number).
        EndBatch(u64),
        /// Deliver the n-th (mod count) ticket ever issued in this run.
        Deliver(usize),
        /// Report the n-th ticket lost.
        Lose(usize),
        /// Take what was delivered.
        Advance,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1u64..4).prop_map(Op::Piece),
            2 => (0u64..2).prop_map(Op::EndBatch),
            4 => any::<usize>().prop_map(Op::Deliver),
            1 => any::<usize>().prop_map(Op::Lose),
            2 => Just(Op::Advance),
        ]
    }

    /// The model: the events of the stream in order, each either receipted or not,
    /// with batch ends (positions) between them. A loss forgets everything from the
    /// first unreceipted event; re-reading appends those events again.
    #[derive(Debug, Default)]
    struct Model {
        /// Per ticket issued in the current generation: receipted?
        tickets: Vec<(Ticket, bool)>,
        /// Every event sent, in order: (event number in the stream, ticket).
        events: Vec<(u64, Ticket)>,
        /// Events receipted (by stream number), across generations.
        receipted: std::collections::BTreeSet<u64>,
        /// Batch ends: (position number, number of stream events before it).
        ends: Vec<(u32, u64)>,
        /// Stream events read so far (the stream's read cursor).
        cursor: u64,
    }

    proptest! {
        #[test]
        fn never_confirms_an_unreceipted_event_and_rewinds_to_the_first(ops in prop::collection::vec(op(), 0..120)) {
            let mut ledger = Ledger::new(None);
            let mut model = Model::default();
            let mut issued: Vec<Ticket> = Vec::new();
            let mut next_pos = 1u32;
            // Stream events per position, to translate a rewind position into a cursor.
            let mut cursor_at: std::collections::HashMap<u32, u64> = Default::default();
            cursor_at.insert(0, 0);
            let mut confirmed_pos = 0u32;
            for op in ops {
                match op {
                    Op::Piece(n) => {
                        let t = ledger.issue(n, None);
                        issued.push(t);
                        model.tickets.push((t, false));
                        for _ in 0..n {
                            model.events.push((model.cursor, t));
                            model.cursor += 1;
                        }
                    }
                    Op::EndBatch(extra) => {
                        // `extra` events without a piece (dead letters): receipted at once.
                        for _ in 0..extra {
                            model.receipted.insert(model.cursor);
                            model.cursor += 1;
                        }
                        ledger.end_batch(Position::new(format!("{next_pos}")), extra);
                        model.ends.push((next_pos, model.cursor));
                        cursor_at.insert(next_pos, model.cursor);
                        next_pos += 1;
                    }
                    Op::Deliver(i) if !issued.is_empty() => {
                        let t = issued[i % issued.len()];
                        ledger.delivered(t);
                        if let Some(entry) = model.tickets.iter_mut().find(|(x, _)| *x == t) {
                            entry.1 = true;
                            for (e, _) in model.events.iter().filter(|(_, x)| *x == t) {
                                model.receipted.insert(*e);
                            }
                        }
                    }
                    Op::Lose(i) if !issued.is_empty() => {
                        let t = issued[i % issued.len()];
                        let current = model.tickets.iter().any(|(x, _)| *x == t);
                        let rewind = ledger.lost_from(t);
                        prop_assert_eq!(rewind.is_some(), current, "stale tickets are ignored");
                        if let Some(rewind) = rewind {
                            let from = rewind.from.map(|p| p.as_str().parse::<u32>().expect("numbered"));
                            let from_cursor = cursor_at[&from.unwrap_or(0)];
                            // Every event before the re-read point was receipted...
                            for e in 0..from_cursor {
                                prop_assert!(model.receipted.contains(&e), "re-read starts after unreceipted event {}", e);
                            }
                            // ...and it is the last batch end (not before the confirmed
                            // one) at or before the first unreceipted event sent.
                            let first_unreceipted = model.events.iter()
                                .filter(|(_, t)| model.tickets.iter().any(|(x, _)| x == t))
                                .map(|(e, _)| *e)
                                .find(|e| !model.receipted.contains(e));
                            if let Some(first) = first_unreceipted {
                                let expected = model.ends.iter().rev()
                                    .find(|(_, c)| *c <= first)
                                    .map_or(0, |(_, c)| *c)
                                    .max(cursor_at[&confirmed_pos]);
                                prop_assert_eq!(from_cursor, expected);
                            }
                            // The stream is read again from there: a new generation.
                            model.tickets.clear();
                            model.events.retain(|(e, _)| *e < from_cursor);
                            model.ends.retain(|(_, c)| *c <= from_cursor);
                            let _resent = model.receipted.split_off(&from_cursor);
                            model.cursor = from_cursor;
                        }
                    }
                    Op::Advance => {
                        let advance = ledger.advance();
                        if let Some(p) = advance.position {
                            let n: u32 = p.as_str().parse().expect("numbered");
                            let upto = cursor_at[&n];
                            for e in 0..upto {
                                prop_assert!(model.receipted.contains(&e), "position {} confirmed with event {} unreceipted", n, e);
                            }
                            confirmed_pos = n;
                        }
                    }
                    _ => {}
                }
            }
            let outstanding = model.tickets.iter().filter(|(_, d)| !d).count();
            prop_assert_eq!(ledger.outstanding(), outstanding);
        }
    }
}
