//! The single integration-test binary: one module per theme. Tests spawn the real
//! binary, the built-in simulator and (where they say so) a real rsyslog.

mod checklist;
mod config;
mod kit;
mod operations;
mod output;
mod pipeline;
mod proxy;
mod receiver;
mod rsyslog;
mod secrets;
mod simulator;
mod source;
