//! The built-in Lookout Mobile Risk API v2 simulator
//! (`docs/event-stream.md#the-built-in-simulator`), used in process by the
//! integration tests, as `mrav2-syslog-connector simulate`, and by `demo`.
//!
//! It is a real HTTP(S) server on a loopback (or chosen) port that issues tokens, serves
//! generated events as Server-Sent Events with the resume rules of the real API, and
//! misbehaves on cue (a scenario's wire style and scripted faults). It is written from the
//! documented API (`docs/event-stream.md`), not from the connector's parsing types, so that
//! a misunderstanding cannot pass on both sides.
//!
//! Reading order (private modules in plain text):
//! - [`options`]: [`SimOptions`], every flag of `simulate` with its default;
//! - [`scenario`]: the scenario file: wire style and faults;
//! - [`generate`], [`id`]: seeded events and their UUIDv7 ids;
//! - `event_log`, `live`, `firehose`: each tenant's events over time;
//! - `tokens`, [`requests`], `state`: what the endpoints share;
//! - `oauth`, `stream`, [`resume`], [`wire`], `body`: the two API endpoints;
//! - `server`: listener, TLS, connections and the `/_sim/*` endpoints.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mrav2_syslog_connector::simulator::{self, SimOptions};
//! let (addr, sim) = simulator::start(SimOptions::default()).await?;
//! println!("simulator at {} ({addr})", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod body;
mod event_log;
mod firehose;
pub mod generate;
pub mod id;
mod live;
mod oauth;
pub mod options;
pub mod requests;
pub mod resume;
pub mod scenario;
mod server;
mod state;
mod stream;
mod tokens;
pub mod wire;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::Utc;
use tokio::net::TcpListener;

pub use generate::EventKind;
pub use options::{IdZero, SimOptions};
pub use requests::{Auth, RequestRecord};
pub use scenario::{
    Action, Endpoint, Fault, LineEnding, RequestSelector, Scenario, Transfer, Wire,
};

use event_log::{EventLog, generate_history};
use firehose::Firehose;
use generate::Generator;
use state::{Shared, Tenant};
use wire::WireStyle;

/// A running simulator. Dropping it stops the simulator too (without waiting);
/// [`SimHandle::shutdown`] stops it and waits until every connection is closed.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    https: bool,
    shared: Arc<Shared>,
}

/// Starts a simulator on `options.listen`. Everything slow (checking the options,
/// loading the certificate, generating and, in firehose mode, serialising the
/// history) happens before the port is bound, so a client that can connect gets the
/// whole history at once.
pub async fn start(options: SimOptions) -> io::Result<(SocketAddr, SimHandle)> {
    options.validate()?;
    crate::tls::install_crypto_provider();
    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Some(server::tls_acceptor(cert, key)?),
        _ => None,
    };
    let style = WireStyle::new(options.scenario.wire.clone());
    let end = options.history_end.unwrap_or_else(Utc::now);
    let start = options
        .start_time
        .unwrap_or(end - chrono::Duration::hours(1));
    let (start_ms, end_ms) = (start.timestamp_millis(), end.timestamp_millis());

    // A million firehose events take a while; keep that off the runtime's threads.
    let build = {
        let options = options.clone();
        let style = style.clone();
        tokio::task::spawn_blocking(move || build_tenants(&options, &style, start_ms, end_ms))
    };
    let built = build.await.map_err(|error| {
        io::Error::other(format!("simulator: generating events failed: {error}"))
    })?;

    let listener = TcpListener::bind(options.listen).await.map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("simulator: cannot listen on {}: {error}", options.listen),
        )
    })?;
    let addr = listener.local_addr()?;
    let rate = if options.firehose { 0 } else { options.rate };
    let tenants: BTreeMap<String, Arc<Tenant>> = built
        .iter()
        .map(|(name, (tenant, _))| (name.clone(), tenant.clone()))
        .collect();
    let shared = Arc::new(Shared::new(options, style, tenants));
    for (tenant, generator) in built.into_values() {
        shared
            .tracker
            .spawn(live::run(tenant, generator, rate, shared.cancel.clone()));
    }
    shared
        .tracker
        .spawn(server::accept_loop(listener, tls.clone(), shared.clone()));
    let handle = SimHandle {
        addr,
        https: tls.is_some(),
        shared,
    };
    Ok((addr, handle))
}

/// Runs the simulator for the `simulate` command: prints `listening on <url>` as the
/// first line of stdout, serves until Ctrl-C or SIGTERM, then shuts down.
pub async fn run_until_ctrl_c(options: SimOptions) -> io::Result<()> {
    let (_, handle) = start(options).await?;
    println!("listening on {}", handle.base_url());
    wait_for_signal().await?;
    handle.shutdown().await;
    Ok(())
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>` or `https://<addr>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Every token and stream request so far (as `GET /_sim/requests`).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests.all()
    }

    /// The ids of every event generated so far for `tenant`, in order (as
    /// `GET /_sim/events`); empty for an unknown tenant.
    pub fn event_ids(&self, tenant: &str) -> Vec<String> {
        self.shared
            .tenants
            .get(tenant)
            .map(|tenant| tenant.log.ids())
            .unwrap_or_default()
    }

    /// Stops accepting, ends every stream, and waits for every task of the simulator
    /// (connections get a short grace period).
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        // Tasks hold the shared state; without this they would serve forever.
        self.shared.cancel.cancel();
    }
}

/// Builds every tenant's events (and firehose buffer) with its generator, which the
/// live task continues from.
fn build_tenants(
    options: &SimOptions,
    style: &WireStyle,
    start_ms: i64,
    end_ms: i64,
) -> BTreeMap<String, (Arc<Tenant>, Generator)> {
    options
        .tenants
        .iter()
        .map(|(name, key)| {
            let mut generator = Generator::new(options.seed, name, &options.types);
            let (history, firehose) = if options.firehose {
                let (firehose, events) = Firehose::build(
                    &mut generator,
                    style,
                    start_ms,
                    end_ms,
                    options.events,
                    options.batch_size,
                );
                (events, Some(firehose))
            } else {
                let events = generate_history(&mut generator, start_ms, end_ms, options.events);
                (events, None)
            };
            let tenant = Tenant {
                name: name.clone(),
                key: std::sync::Mutex::new(key.clone()),
                rotations: tokio::sync::watch::Sender::new(0),
                log: EventLog::new(history),
                firehose,
            };
            (name.clone(), (Arc::new(tenant), generator))
        })
        .collect()
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
async fn wait_for_signal() -> io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
