//! Shared test kit: free ports, polling with deadlines, the real binary.

use std::process::Command;

/// The real binary, with an empty environment (so a developer's `MRAV2_API_KEY` or
/// proxy variables cannot change the outcome); add variables with `.env(…)`.
#[allow(dead_code)]
pub fn connector() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mrav2-syslog-connector"));
    cmd.env_clear();
    cmd
}
