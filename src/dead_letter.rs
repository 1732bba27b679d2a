//! Dead letters: what could not be formatted or decoded, kept instead of lost.
//!
//! `<state_dir>/dead-letter/<entity_name>.jsonl` gets one JSON object per line with the
//! tenant, the time, the reason and the raw data, and `destination` (its name) when a
//! destination refused the record (a Splunk HEC per-event error). The stream position then moves past
//! the item; the operator can inspect and replay the file by hand. Appends are rare
//! (only for malformed input), so each one opens, appends and syncs the file.
//!
//! Two rules keep a hostile stream from filling the disk or writing elsewhere:
//!
//! - the file has a size limit ([`MAX_BYTES`]). Once it holds that much, no more is
//!   appended, and the tenant stops *before* the batch that needs the room (its
//!   position is not committed) until an operator moves the file away; see
//!   `docs/limits.md` for why it stops rather than rotates. One append may take the
//!   file past the limit by at most one message's dead letters;
//! - neither the `dead-letter` directory nor the file may be a symbolic link, and the
//!   file must be a regular file: a link planted in the state directory cannot make
//!   the connector append to a file elsewhere.

use crate::event::DeadLetter;
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The size at which a tenant's dead-letter file takes no more: 256 MiB.
pub const MAX_BYTES: u64 = 256 * 1024 * 1024;

/// One tenant's dead-letter file.
#[derive(Debug, Clone)]
pub struct DeadLetterFile {
    entity_name: String,
    path: PathBuf,
    limit: u64,
}

/// Why dead letters were not written.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The file holds [`MAX_BYTES`] or more.
    #[error(
        "the dead-letter file {path} holds {size} bytes, the limit is {limit}; move it away (or compress and remove it) and the tenant goes on by itself from its last delivered position"
    )]
    Full {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    /// The directory or the file is a symbolic link, or the file is not a regular file.
    #[error(
        "{path} is {what}; dead letters are only written to a regular file in the state directory, so remove it"
    )]
    NotPlain { path: PathBuf, what: &'static str },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Serialize)]
struct Line<'a> {
    tenant: &'a str,
    time: String,
    reason: &'a str,
    raw: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a str>,
}

impl DeadLetterFile {
    /// The file of `entity_name` below `state_dir`, limited to [`MAX_BYTES`].
    pub fn new(state_dir: &Path, entity_name: &str) -> Self {
        Self {
            entity_name: entity_name.to_string(),
            path: state_dir
                .join("dead-letter")
                .join(format!("{entity_name}.jsonl")),
            limit: MAX_BYTES,
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails with [`DeadLetterError::Full`] when the file has reached its limit.
    /// Nothing is created, and any other problem (no file yet, a directory in the way)
    /// is left to [`DeadLetterFile::append`] to report.
    pub fn check_room(&self) -> Result<(), DeadLetterError> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.len() >= self.limit => Err(self.full(meta.len())),
            _ => Ok(()),
        }
    }

    /// Appends the letters, one line each, and syncs the file.
    pub fn append(&self, letters: &[DeadLetter]) -> Result<(), DeadLetterError> {
        if letters.is_empty() {
            return Ok(());
        }
        let mut file = self.open()?;
        let size = file.metadata().map_err(|e| self.io(e))?.len();
        if size >= self.limit {
            return Err(self.full(size));
        }
        let time = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut text = Vec::new();
        for letter in letters {
            let line = Line {
                tenant: &self.entity_name,
                time: time.clone(),
                reason: &letter.reason,
                raw: &letter.raw,
                destination: letter.destination.as_deref(),
            };
            serde_json::to_writer(&mut text, &line).map_err(|e| self.io(e.into()))?;
            text.push(b'\n');
        }
        file.write_all(&text).map_err(|e| self.io(e))?;
        file.sync_data().map_err(|e| self.io(e))
    }

    /// Opens the file for appending, creating it and its directory if needed, and
    /// refusing links and anything but a regular file.
    fn open(&self) -> Result<File, DeadLetterError> {
        if let Some(dir) = self.path.parent() {
            match std::fs::symlink_metadata(dir) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(self.not_plain(dir, "a symbolic link"));
                }
                Ok(meta) if !meta.is_dir() => return Err(self.not_plain(dir, "not a directory")),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
                }
                Err(e) => return Err(self.io(e)),
            }
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // No link is followed, and a FIFO fails at once instead of blocking.
            options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        }
        let file = match options.open(&self.path) {
            Ok(file) => file,
            Err(e) if is_link_refused(&e, &self.path) => {
                return Err(self.not_plain(&self.path, "a symbolic link"));
            }
            Err(e) => return Err(self.io(e)),
        };
        let meta = file.metadata().map_err(|e| self.io(e))?;
        if !meta.is_file() {
            return Err(self.not_plain(&self.path, "not a regular file"));
        }
        Ok(file)
    }

    fn full(&self, size: u64) -> DeadLetterError {
        DeadLetterError::Full {
            path: self.path.clone(),
            size,
            limit: self.limit,
        }
    }

    fn not_plain(&self, path: &Path, what: &'static str) -> DeadLetterError {
        DeadLetterError::NotPlain {
            path: path.to_path_buf(),
            what,
        }
    }

    fn io(&self, source: std::io::Error) -> DeadLetterError {
        DeadLetterError::Io {
            path: self.path.clone(),
            source,
        }
    }

    #[cfg(test)]
    fn with_limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }
}

/// Whether opening failed because `path` is a symbolic link (`ELOOP` with
/// `O_NOFOLLOW`; checked again, since `ELOOP` has other causes).
fn is_link_refused(e: &std::io::Error, path: &Path) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    }
    let _ = (e, path);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter() -> DeadLetter {
        DeadLetter {
            reason: "invalid json".into(),
            raw: "{".into(),
            destination: None,
        }
    }

    #[test]
    fn a_symbolic_link_out_of_the_state_directory_is_never_followed() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, "precious\n").unwrap();
        // The file itself is a link.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dead-letter")).unwrap();
        let file = DeadLetterFile::new(dir.path(), "acme");
        std::os::unix::fs::symlink(&target, file.path()).unwrap();
        let err = file.append(&[letter()]).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(err.contains("acme.jsonl"), "{err}");
        // The directory is a link.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("dead-letter")).unwrap();
        let file = DeadLetterFile::new(dir.path(), "victim");
        let err = file.append(&[letter()]).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[test]
    fn a_full_file_takes_no_more_and_says_how_to_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let file = DeadLetterFile::new(dir.path(), "acme").with_limit(100);
        file.check_room().unwrap();
        file.append(&[letter()]).unwrap();
        file.check_room().unwrap();
        // One append may pass the limit; the next finds the file full.
        file.append(&[letter(), letter()]).unwrap();
        let size = std::fs::metadata(file.path()).unwrap().len();
        assert!(size >= 100, "{size}");
        let err = file.check_room().unwrap_err().to_string();
        assert!(
            err.contains("acme.jsonl") && err.contains("move it away"),
            "{err}"
        );
        assert!(matches!(
            file.append(&[letter()]),
            Err(DeadLetterError::Full { limit: 100, .. })
        ));
        assert_eq!(std::fs::metadata(file.path()).unwrap().len(), size);
        // Moved away: room again.
        std::fs::rename(file.path(), dir.path().join("old.jsonl")).unwrap();
        file.check_room().unwrap();
        file.append(&[letter()]).unwrap();
    }

    #[test]
    fn a_fifo_in_place_of_the_file_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = DeadLetterFile::new(dir.path(), "acme");
        std::fs::create_dir(dir.path().join("dead-letter")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(file.path())
            .status()
            .unwrap();
        assert!(made.success());
        assert!(file.append(&[letter()]).is_err());
    }

    #[test]
    fn appends_one_json_line_per_letter() {
        let dir = tempfile::tempdir().unwrap();
        let file = DeadLetterFile::new(dir.path(), "acme");
        let letter = DeadLetter {
            reason: "invalid json: expected value".into(),
            raw: "{not json\n".into(),
            destination: None,
        };
        file.append(std::slice::from_ref(&letter)).unwrap();
        file.append(&[letter]).unwrap();
        let text = std::fs::read_to_string(dir.path().join("dead-letter/acme.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["tenant"], "acme");
        assert_eq!(lines[0]["reason"], "invalid json: expected value");
        assert_eq!(lines[0]["raw"], "{not json\n");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
