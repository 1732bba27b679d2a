//! The single integration-test binary: one module per theme. Tests spawn the real
//! binary, the built-in simulator and (where they say so) a real rsyslog.

// A failed unwrap in a test is a test failure with a backtrace, which is what we want;
// the crate-wide `unwrap_used` lint is for production code.
#![allow(clippy::unwrap_used)]

mod acknowledged;
mod checklist;
mod config;
mod demo;
mod destinations;
mod docs;
mod fixture;
mod golden;
mod hec;
mod hermetic;
mod hostile_input;
mod hostile_server;
mod kit;
mod many_tenants;
mod metrics_listen;
mod monitoring;
mod operations;
mod output;
mod packaging;
mod pipeline;
mod process;
mod proxy;
mod rate_limit;
mod receiver;
mod reload;
mod relp;
mod resend;
mod rotation;
mod rsyslog;
mod secrets;
mod setup;
mod simulator;
mod source;
mod systemd;
