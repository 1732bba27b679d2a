//! The simulator's options: every flag of `simulate`
//! (`docs/event-stream.md#simulate-options`) as one value, with
//! their defaults. The clap flags live in `cli`; this module only holds the
//! values and checks them before anything is bound.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::generate::EventKind;
use super::scenario::Scenario;

/// Everything the simulator can be told.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Where to listen; port 0 picks a free port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Tenant name → Application Key. Default `demo` → `demo-key`.
    pub tenants: BTreeMap<String, String>,
    /// Lifetime of issued tokens. Default 7200 s.
    pub token_ttl: Duration,
    /// Heartbeat interval. Default 5 s.
    pub heartbeat: Duration,
    /// Generator seed. Default 1.
    pub seed: u64,
    /// History length per tenant. Default 1000.
    pub events: usize,
    /// `created_time` of the first history event. Default: start-up − 1 h.
    pub start_time: Option<DateTime<Utc>>,
    /// Where the history ends (exclusive). Default: start-up. Not a flag of `simulate`:
    /// pinning it (with `start_time`) makes two runs byte-identical, since the history
    /// is spread evenly between the two.
    pub history_end: Option<DateTime<Utc>>,
    /// Live events per second after the history; 0 = none. Default 1.
    pub rate: u32,
    /// Most events per `events` message, 1–1000. Default 10.
    pub batch_size: usize,
    /// Types to generate. Default all four.
    pub types: Vec<EventKind>,
    /// Meaning of `id=0`. Default oldest.
    pub id_zero: IdZero,
    /// Resume at the given id (re-sending it) instead of after it. Default off.
    pub resume_at_id: bool,
    /// PEM certificate chain; with `tls_key`, serve HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key; with `tls_cert`, serve HTTPS.
    pub tls_key: Option<PathBuf>,
    /// Pre-serialise the history and write it as fast as the socket takes it.
    pub firehose: bool,
    /// Wire style and scripted faults (`docs/event-stream.md#scenario-file`). Load a file
    /// with [`Scenario::from_file`].
    pub scenario: Scenario,
}

/// What `id=0` means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdZero {
    /// From the oldest retained event.
    #[default]
    Oldest,
    /// Only events generated after the request (live tail).
    Now,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tenants: BTreeMap::from([("demo".to_owned(), "demo-key".to_owned())]),
            token_ttl: Duration::from_secs(7200),
            heartbeat: Duration::from_millis(5000),
            seed: 1,
            events: 1000,
            start_time: None,
            history_end: None,
            rate: 1,
            batch_size: 10,
            types: EventKind::ALL.to_vec(),
            id_zero: IdZero::Oldest,
            resume_at_id: false,
            tls_cert: None,
            tls_key: None,
            firehose: false,
            scenario: Scenario::default(),
        }
    }
}

impl std::str::FromStr for IdZero {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "oldest" => Ok(IdZero::Oldest),
            "now" => Ok(IdZero::Now),
            other => Err(format!("unknown id-zero {other:?}; expected oldest or now")),
        }
    }
}

impl SimOptions {
    /// Checks the options that no type can rule out; the error says what to change.
    pub fn validate(&self) -> io::Result<()> {
        let invalid = |message: String| Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        if self.tenants.is_empty() {
            return invalid("simulator: no tenant; give at least one NAME=KEY".into());
        }
        if let Some((name, _)) = self
            .tenants
            .iter()
            .find(|(name, key)| name.is_empty() || key.is_empty())
        {
            return invalid(format!("simulator: tenant {name:?} needs a name and a key"));
        }
        let mut keys: Vec<&String> = self.tenants.values().collect();
        keys.sort();
        keys.dedup();
        if keys.len() != self.tenants.len() {
            return invalid("simulator: two tenants share an application key".into());
        }
        if !(1..=1000).contains(&self.batch_size) {
            return invalid(format!(
                "simulator: batch size {} is out of range; expected 1 to 1000",
                self.batch_size
            ));
        }
        if self.heartbeat.is_zero() {
            return invalid("simulator: the heartbeat interval must be above 0".into());
        }
        if self.types.is_empty() {
            return invalid("simulator: no event type enabled".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("simulator: give both --tls-cert and --tls-key, or neither".into());
        }
        if let (Some(start), Some(end)) = (self.start_time, self.history_end)
            && start > end
        {
            return invalid("simulator: the start time is after the history end".into());
        }
        Ok(())
    }
}
