//! # mrav2-syslog-connector
//!
//! Moves mobile-threat events from the Lookout Mobile Risk API v2 into a SIEM over
//! syslog, without losing, duplicating or mangling them.
//!
//! Per tenant, a reader task and a writer task joined by a queue of 2 batches move a
//! straight line of values:
//!
//! ```text
//! HTTP bytes                        source::stream   one authenticated GET, read under sse_timeout
//!  ─▶ sse::Frame                    source::sse      the event-stream parser (pure)
//!  ─▶ Batch                         source::decode   position, Vec<RawEvent>, dead letters
//!  ─▶ queue of 2 batches            tenant           reader → writer
//!  ─▶ MraEvent, one at a time       event, json      a JSON tree borrowing the event's text
//!  ─▶ RenderedMessage               format           LEEF, Splunk json or kv (pure)
//!  ─▶ framed bytes, ~32 KB pieces   sink::syslog     header, size cut, framing (pure)
//!  ─▶ delivered                     sink::transport  written, flushed, connection still open
//!  ─▶ committed Position            position         the state file, written atomically
//! ```
//!
//! The operator's and engineer's reference is `docs/` in the repository
//! (`docs/README.md`); `ARCHITECTURE.md` has the codemap and the invariants.
//!
//! Modules in reading order:
//!
//! - [`cli`]: command-line syntax (clap types only).
//! - [`config`]: INI text → raw → validated [`config::Config`]; every problem collected.
//! - [`event`]: the words every stage shares: [`event::RawEvent`], [`event::MraEvent`],
//!   [`event::Batch`], [`event::Position`].
//! - [`json`]: the borrowed JSON tree an event is decoded into for formatting.
//! - [`backoff`]: the reconnect delay arithmetic (pure), used by source and sink.
//! - [`source`]: token lifecycle, SSE parser, the authenticated stream that never gives up.
//! - [`mod@format`]: QRadar LEEF and Splunk renderers (pure).
//! - [`sink`]: the destinations and when each counts a record delivered (plain syslog,
//!   RELP); syslog header and framing (pure); the UDP/TCP/TLS/stdout transports; RELP
//!   frames (pure) and sessions.
//! - [`position`]: the per-tenant state file.
//! - [`rate_limit`]: `max_events_per_second`, the token bucket of a destination (pure).
//! - [`dead_letter`]: what could not be decoded or formatted, kept on disk.
//! - [`observe`]: metrics registry, `/metrics` and `/health`.
//! - [`status`]: the `status` report, each tenant's saved position and its age.
//! - [`tenant`]: one tenant's task: source → format → sink → receipts → ledger → commit.
//! - [`logging`]: the connector's own log, re-opened on SIGHUP.
//! - [`pairs`]: the (tenant, destination) pairs a configuration asks for, and what a
//!   reload changes among them (pure).
//! - [`app`]: process lifetime: signals, cancellation, tenants, reload, grace deadline.
//! - [`resend`]: a time window of one tenant sent again through its real pipeline,
//!   without touching saved positions.
//! - [`simulator`]: the built-in MRA v2 simulator used by `demo`, tests and benchmarks.
//! - [`tls`]: the one rustls crypto provider and shared TLS helpers.
//! - [`small_file`]: reading the small files the connector is given: regular files of
//!   bounded size only.
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
pub mod pairs;
pub mod position;
pub mod rate_limit;
pub mod resend;
pub mod simulator;
pub mod sink;
pub mod small_file;
pub mod source;
pub mod state_lock;
pub mod status;
pub mod tenant;
pub mod tls;
pub mod untrusted;

/// `mrav2-syslog-connector/<version>`: the User-Agent of every API request.
pub const USER_AGENT: &str = concat!("mrav2-syslog-connector/", env!("CARGO_PKG_VERSION"));
