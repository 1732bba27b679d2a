//! The syslog destination: record header and framing (pure) and transports.

pub mod syslog;
pub mod transport;
