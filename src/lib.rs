//! # mrav2-syslog-connector
//!
//! Moves mobile-threat events from the Lookout Mobile Risk API v2 into a SIEM over
//! syslog, without losing, duplicating or mangling them.
//!
//! Per tenant the pipeline is a straight line of values:
//!
//! ```text
//! bytes ─▶ sse::Frame ─▶ Batch(Vec<MraEvent>) ─▶ RenderedMessage ─▶ framed bytes ─▶ committed Position
//!  source::stream     source (decode)        format::{leef,splunk}   sink::{syslog,transport}   position
//! ```
//!
//! Modules in reading order:
//!
//! - [`cli`]: command-line syntax (clap types only).
//! - [`config`]: INI text → raw → validated [`config::Config`]; every problem collected.
//! - [`event`]: the words every stage shares: [`event::MraEvent`], [`event::Batch`],
//!   [`event::Position`].
//! - [`json`]: the borrowed JSON tree an event is decoded into for formatting.
//! - [`backoff`]: the reconnect delay arithmetic (pure), used by source and sink.
//! - [`source`]: token lifecycle, SSE parser, the authenticated stream that never gives up.
//! - [`mod@format`]: QRadar LEEF and Splunk renderers (pure).
//! - [`sink`]: syslog header and framing (pure) and the UDP/TCP/TLS/stdout transports.
//! - [`position`]: the per-tenant state file.
//! - [`dead_letter`]: what could not be decoded or formatted, kept on disk.
//! - [`observe`]: metrics registry, `/metrics` and `/health`.
//! - [`status`]: the `status` report, each tenant's saved position and its age.
//! - [`tenant`]: one tenant's task: source → format → sink → commit.
//! - [`logging`]: the connector's own log, re-opened on SIGHUP.
//! - [`app`]: process lifetime: signals, cancellation, tenants, grace deadline.
//! - [`simulator`]: the built-in MRA v2 simulator used by `demo`, tests and benchmarks.
//! - [`tls`]: the one rustls crypto provider and shared TLS helpers.
//! - [`untrusted`]: text from outside made safe to log and show (secrets redacted,
//!   control characters escaped, length bounded).
//! - [`open_files`]: the open-files limit, raised at start.
//! - [`state_lock`]: one instance per state directory.

pub mod app;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod dead_letter;
pub mod event;
pub mod format;
pub mod json;
pub mod logging;
pub mod observe;
pub mod open_files;
pub mod position;
pub mod simulator;
pub mod sink;
pub mod source;
pub mod state_lock;
pub mod status;
pub mod tenant;
pub mod tls;
pub mod untrusted;

/// `mrav2-syslog-connector/<version>`: the User-Agent of every API request.
pub const USER_AGENT: &str = concat!("mrav2-syslog-connector/", env!("CARGO_PKG_VERSION"));
