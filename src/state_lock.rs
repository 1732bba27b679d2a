//! One connector per state directory. Two instances on one directory would read the
//! same positions and deliver every event twice, and overwrite each other's state
//! files. The running connector holds an exclusive lock on `<state_dir>/.lock` for its
//! whole life, with or without `--daemon`; the lock goes with the process, however it
//! ends, so a crash never leaves a stale lock behind. The file holds the pid of the
//! holder, for the message a second instance prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = ".lock";

/// Why the state directory cannot be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another instance is running with state directory {dir} (pid {pid}, lock file {file}); \
         stop it first, or give this one another state_dir"
    )]
    Held {
        dir: PathBuf,
        file: PathBuf,
        pid: String,
    },
    #[error("cannot lock the state directory {dir} ({file}): {source}")]
    Io {
        dir: PathBuf,
        file: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct StateLock {
    file: File,
}

impl StateLock {
    /// Takes the lock on `dir` (which must exist) without waiting.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            dir: dir.to_path_buf(),
            file: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&path).unwrap_or_default();
                let pid = pid.trim();
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    file: path.clone(),
                    pid: if pid.is_empty() { "unknown" } else { pid }
                        .chars()
                        .take(20)
                        .collect(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut lock = Self { file };
        lock.record_pid().map_err(io)?;
        Ok(lock)
    }

    /// Writes this process's pid into the lock file (again after `--daemon` forked).
    pub fn record_pid(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        writeln!(self.file, "{}", std::process::id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, LockError::Held { .. }), "{text}");
        assert!(text.contains(&std::process::id().to_string()), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        drop(first);
        StateLock::acquire(dir.path()).unwrap();
    }
}
