//! The per-tenant state file: where the stream stands for events already **delivered**.
//!
//! `<state_dir>/<entity_name>.position.json` holds the position of the last batch the
//! syslog destination accepted, never one merely received; another destination NAME
//! (Splunk HEC) has `<entity_name>@<NAME>.position.json`, with `"destination":"NAME"`. It is replaced atomically
//! (temporary file, fsync, rename, fsync of the directory), so a crash leaves either the
//! old or the new file, never a torn one. When to commit is the tenant's decision, and
//! where to start is [`crate::source::StartPoint::resolve`]'s.

use crate::event::{BadPosition, Position, Untrusted};
use crate::small_file::{self, SmallFileError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPosition {
    /// The tenant, repeated for operators reading the file.
    pub entity_name: String,
    /// The position of the last delivered batch.
    pub position: String,
    /// When this position was written.
    pub saved_at: DateTime<Utc>,
    /// Events delivered since the state file was first created.
    pub delivered: u64,
    /// The destination it belongs to, for every destination but `syslog`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// A state-file problem. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: cannot read the state file: {source}")]
    Read {
        path: PathBuf,
        source: SmallFileError,
    },
    #[error(
        "{path}: the state file is corrupt ({reason}); fix or remove it to start from the configured position"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: the saved position \"{shown}\" cannot be sent to the api ({reason}); remove the file to start from the configured stream_position or start_time (or the beginning), or replace the position with the id of the last event your siem received"
    )]
    Unusable {
        path: PathBuf,
        /// The position as it may be logged (cut and escaped).
        shown: String,
        reason: BadPosition,
    },
    #[error("{path}: cannot write the state file: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state directory {path} is not writable: {source}")]
    DirectoryNotWritable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One tenant's state file.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file of `entity_name` in `state_dir`.
    pub fn new(state_dir: &Path, entity_name: &str) -> Self {
        Self {
            path: state_dir.join(format!("{entity_name}.position.json")),
        }
    }

    /// The state file of `entity_name`'s pair with `destination`: the tenant's own
    /// for `syslog`, `<entity_name>@<destination>.position.json` for any other, so
    /// that a destination added later starts from the tenant's start rules, not from
    /// where another destination stands.
    pub fn for_destination(state_dir: &Path, entity_name: &str, destination: &str) -> Self {
        if destination == "syslog" {
            return Self::new(state_dir, entity_name);
        }
        Self {
            path: state_dir.join(format!("{entity_name}@{destination}.position.json")),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the saved position. A missing or empty file is `None`; anything that is not
    /// a valid state file is an error naming the file (never silently replaced).
    pub fn load(&self) -> Result<Option<SavedPosition>, StateError> {
        let text = match small_file::read_to_string(&self.path, small_file::TEXT_LIMIT) {
            Ok(text) => text,
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        if text.trim().is_empty() {
            return Ok(None);
        }
        let saved: SavedPosition =
            serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        if saved.position.is_empty() {
            return Err(StateError::Corrupt {
                path: self.path.clone(),
                reason: "the position is empty".into(),
            });
        }
        // A position no request can carry would fail every reconnect: refuse it here,
        // where the operator is told which file to fix.
        if let Err(reason) = Position::parse(&saved.position) {
            return Err(StateError::Unusable {
                path: self.path.clone(),
                shown: Untrusted(&saved.position).to_string(),
                reason,
            });
        }
        Ok(Some(saved))
    }

    /// Replaces the file atomically: temporary file, fsync, rename, fsync of the
    /// directory (atomic-write-file does the last three on commit).
    pub fn save(&self, saved: &SavedPosition) -> Result<(), StateError> {
        let write_err = |source| StateError::Write {
            path: self.path.clone(),
            source,
        };
        let mut json = serde_json::to_vec(saved).map_err(|e| write_err(e.into()))?;
        json.push(b'\n');
        let mut file = atomic_write_file::AtomicWriteFile::open(&self.path).map_err(write_err)?;
        file.write_all(&json).map_err(write_err)?;
        file.commit().map_err(write_err)
    }
}

/// Creates `dir` if needed and proves it can be written (a probe file is created and
/// removed). Called once at start-up so an unwritable directory is an immediate, clear
/// error rather than a silent loss of positions later.
pub fn ensure_writable(dir: &Path) -> Result<(), StateError> {
    let not_writable = |source| StateError::DirectoryNotWritable {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(not_writable)?;
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(not_writable)?;
    std::fs::remove_file(&probe).map_err(not_writable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(position: &str, delivered: u64) -> SavedPosition {
        SavedPosition {
            destination: None,
            entity_name: "acme".into(),
            position: position.into(),
            saved_at: DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            delivered,
        }
    }

    #[test]
    fn save_then_load_round_trips_in_the_contract_layout() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path(), "acme");
        assert_eq!(file.load().unwrap(), None);
        let s = saved("0192b3e8-5a21-7c44-8e0f-6f1d2c3b4a59", 12345);
        file.save(&s).unwrap();
        assert_eq!(file.load().unwrap(), Some(s.clone()));
        let text = std::fs::read_to_string(dir.path().join("acme.position.json")).unwrap();
        assert_eq!(
            text,
            "{\"entity_name\":\"acme\",\"position\":\"0192b3e8-5a21-7c44-8e0f-6f1d2c3b4a59\",\"saved_at\":\"2026-11-22T12:00:00Z\",\"delivered\":12345}\n"
        );
        // A second save replaces the first and leaves no temporary file behind.
        file.save(&saved("next", 12346)).unwrap();
        assert_eq!(file.load().unwrap().unwrap().position, "next");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["acme.position.json"]);
    }

    #[test]
    fn an_empty_file_is_no_position_and_garbage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path(), "acme");
        std::fs::write(file.path(), "  \n").unwrap();
        assert_eq!(file.load().unwrap(), None);
        std::fs::write(file.path(), "{not json").unwrap();
        let err = file.load().unwrap_err().to_string();
        assert!(err.contains("acme.position.json"), "{err}");
        assert!(err.contains("corrupt"), "{err}");
        std::fs::write(
            file.path(),
            r#"{"entity_name":"acme","position":"","saved_at":"2026-11-22T12:00:00Z","delivered":1}"#,
        )
        .unwrap();
        assert!(file.load().is_err());
    }

    #[test]
    fn a_saved_position_no_request_can_carry_is_an_error_naming_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path(), "acme");
        let long = "7".repeat(300);
        for bad in [r"a\u0001b", "a b", r"caf\u00e9", long.as_str()] {
            std::fs::write(
                file.path(),
                format!(
                    r#"{{"entity_name":"acme","position":"{bad}","saved_at":"2026-11-22T12:00:00Z","delivered":1}}"#
                ),
            )
            .unwrap();
            let err = file.load().unwrap_err().to_string();
            assert!(err.contains("acme.position.json"), "{err}");
            assert!(err.contains("remove"), "the fix is named: {err}");
            assert!(err.len() < 600, "the bad value is not echoed whole: {err}");
        }
    }

    #[test]
    fn an_unwritable_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        // A directory below a regular file can never be created, whoever runs the test.
        let wanted = blocker.join("state");
        let err = ensure_writable(&wanted).unwrap_err().to_string();
        assert!(err.contains(&wanted.display().to_string()), "{err}");
        ensure_writable(&dir.path().join("new/state")).unwrap();
    }
}
