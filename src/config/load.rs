//! (in progress)
use super::Config;
use std::path::Path;

/// One configuration problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem(pub String);

/// Every problem found in a configuration file.
#[derive(Debug, thiserror::Error)]
#[error("configuration has problems")]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

/// Loads and validates a file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let _ = path;
    unimplemented!()
}

/// Loads and validates text.
pub fn load_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let _ = (path, text);
    unimplemented!()
}
