//! One configuration problem and the error that carries them all.
//!
//! This module owns how a problem is recorded and shown: its place (file, section, key,
//! value), its message, and the masking that keeps secrets out of every message (a value
//! under a secret-looking key is stored as `***`, a password inside a URL as `***`, and
//! control characters are escaped so each problem stays on one line). It does not decide
//! what is a problem; the INI syntax step ([`super::raw`]) and validation
//! ([`super::load`]) do, and both report through [`Problem`].

use std::fmt;
use std::path::{Path, PathBuf};

/// One configuration problem, rendered as
/// `FILE: [section] key = "value": what is wrong; what is accepted`.
///
/// Parts that do not apply are left out (`FILE: [section] key: missing; …`,
/// `FILE: [section]: …`, `FILE: …`). A secret value is stored (and shown) as `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The configuration file.
    pub file: PathBuf,
    /// The section, without brackets.
    pub section: Option<String>,
    /// The key.
    pub key: Option<String>,
    /// The value as written, or `***` for a secret.
    pub value: Option<String>,
    /// `what is wrong; what is accepted`, lowercase, no trailing period.
    pub message: String,
}

/// Every problem found in a configuration file. Its `Display` prints one problem per
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl Problem {
    /// A problem with the file as a whole.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            section: None,
            key: None,
            value: None,
            message: message.into(),
        }
    }

    /// A problem with a whole section.
    pub fn section(file: &Path, section: &str, message: impl Into<String>) -> Self {
        Self {
            section: Some(section.to_string()),
            ..Self::file(file, message)
        }
    }

    /// A key that is needed and not set.
    pub fn missing(file: &Path, section: &str, key: &str, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.to_string()),
            ..Self::section(file, section, message)
        }
    }

    /// A value that is wrong. Secrets (judged by the key name) are stored as `***`, and
    /// a password inside a URL is masked.
    pub fn value(
        file: &Path,
        section: &str,
        key: &str,
        value: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            value: Some(shown_value(key, value)),
            ..Self::missing(file, section, key, message)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        let mut place = String::new();
        if let Some(section) = &self.section {
            place.push_str(&format!("[{}]", printable(section)));
        }
        if let Some(key) = &self.key {
            if !place.is_empty() {
                place.push(' ');
            }
            place.push_str(&printable(key));
        }
        if let Some(value) = &self.value {
            place.push_str(&format!(" = \"{}\"", printable(value)));
        }
        if !place.is_empty() {
            write!(f, ": {place}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Whether a key name looks like it holds a secret (so its value is never shown).
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key.ends_with("_file") || key.ends_with("log_identifier_key") {
        return false;
    }
    ["key", "pass", "secret", "token", "cred"]
        .iter()
        .any(|w| key.contains(w))
}

fn shown_value(key: &str, value: &str) -> String {
    if is_secret_key(key) {
        return "***".to_string();
    }
    mask_url_password(value)
}

/// `scheme://user:secret@host` → `scheme://user:***@host`; anything else unchanged.
fn mask_url_password(value: &str) -> String {
    let Some(start) = value.find("://").map(|i| i + 3) else {
        return value.to_string();
    };
    let rest = &value[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return value.to_string();
    };
    let Some(colon) = authority[..at].find(':') else {
        return value.to_string();
    };
    format!(
        "{}{}:***{}",
        &value[..start],
        &authority[..colon],
        &value[start + at..]
    )
}

/// Control characters shown as escapes, so every problem stays on one line.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
