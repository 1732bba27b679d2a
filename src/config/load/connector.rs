//! `[connector]` → [`ConnectorConfig`]: the process-wide settings.
//!
//! This module owns `state_dir`, `metrics_listen` and `commit_interval_ms` as written in
//! the file. Where the state directory finally is (the command line and
//! `$STATE_DIRECTORY` take part) is [`ConnectorConfig::resolve_state_dir`]'s business.

use super::value::parse_uint;
use super::{Check, entry};
use crate::config::ConnectorConfig;
use crate::config::raw::RawSection;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The keys of `[connector]`.
pub const CONNECTOR_KEYS: &[&str] = &["state_dir", "metrics_listen", "commit_interval_ms"];

impl Check<'_, '_> {
    pub(super) fn connector(&mut self, section: Option<&RawSection>) -> Option<ConnectorConfig> {
        let state_dir = entry(section, "state_dir", false).map(|e| PathBuf::from(e.value));
        let metrics_listen = self.parse(
            entry(section, "metrics_listen", false),
            None,
            |v| v.parse::<SocketAddr>().ok().map(Some),
            "not an address and port; expected e.g. 127.0.0.1:9100 or [::1]:9100",
        );
        let commit_interval = self.parse(
            entry(section, "commit_interval_ms", false),
            1000,
            |v| parse_uint(v).filter(|n| (1..=3_600_000).contains(n)),
            "not a number of milliseconds from 1 to 3600000",
        );
        Some(ConnectorConfig {
            state_dir,
            metrics_listen: metrics_listen?,
            commit_interval: Duration::from_millis(commit_interval?),
        })
    }
}
