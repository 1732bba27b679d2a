//! RELP, rsyslog's Reliable Event Logging Protocol (version 0, as librelp and rsyslog's
//! `imrelp` speak it): every record is answered, so a record counts as delivered when
//! the receiver's `200` for it arrived, and nothing else does.
//!
//! - [`frame`]: frames, transaction numbers and answers on the wire (pure).
//! - [`session`]: one session over TCP or TLS: `open`, a window of `syslog` commands,
//!   their answers, `close` (I/O).
//!
//! Resending what a broken session left unanswered is not done here: the caller (the
//! tenant's sink) knows which records those were and sends them again on a new session.

pub mod frame;
pub mod session;

pub use frame::Txnr;
pub use session::{Answer, RelpSession};
