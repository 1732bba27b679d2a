//! The connector's own log: tracing to stderr or to `--log-file`, info by default and
//! debug with `--verbose`, re-opened on SIGHUP for logrotate.
//!
//! Lines go through tracing-appender's background writer in **non-lossy** mode: when
//! the writer falls behind, logging callers wait rather than lines being dropped. The
//! file writer re-opens its path on request, so after logrotate renames the file a
//! SIGHUP makes the connector write to a fresh one with the same name.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines the background writer may hold before logging callers wait. Its queue is
/// allocated in full up front; tracing-appender's default (128,000 lines) takes 4 MB,
/// a quarter of the connector's whole footprint, for bursts a file absorbs anyway.
const BUFFERED_LINES: usize = 8_192;

/// Keeps the background writer alive (dropping it flushes the last lines) and re-opens
/// the log file.
pub struct LogHandle {
    _guard: WorkerGuard,
    file: Option<ReopenableFile>,
}

impl LogHandle {
    /// Re-opens the log file (SIGHUP). Without `--log-file` there is nothing to do.
    pub fn reopen(&self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.reopen(),
            None => Ok(()),
        }
    }
}

/// A file that can be re-opened under the same path while writers hold clones.
#[derive(Clone)]
struct ReopenableFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl ReopenableFile {
    fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(open_append(path)?)),
        })
    }

    fn reopen(&self) -> io::Result<()> {
        let fresh = open_append(&self.path)?;
        *self.file.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }
}

impl Write for ReopenableFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Installs the global subscriber. `RUST_LOG` overrides the level when set.
pub fn init(log_file: Option<&Path>, verbose: bool) -> io::Result<LogHandle> {
    let default_level = if verbose { "debug" } else { "info" };
    // Dependencies stay at warn even with --verbose: their debug output is noise to
    // an operator and could include request details.
    let default_filter = format!("warn,mrav2_syslog_connector={default_level}");
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (writer, guard, file) = match log_file {
        Some(path) => {
            let file = ReopenableFile::open(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open log file {}: {e}", path.display()),
                )
            })?;
            let (writer, guard) = NonBlockingBuilder::default()
                .lossy(false)
                .buffered_lines_limit(BUFFERED_LINES)
                .finish(file.clone());
            (writer, guard, Some(file))
        }
        None => {
            let (writer, guard) = NonBlockingBuilder::default()
                .lossy(false)
                .buffered_lines_limit(BUFFERED_LINES)
                .finish(io::stderr());
            (writer, guard, None)
        }
    };
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Plain text everywhere: log files, the journal and pipes take no colour codes.
        .with_ansi(false)
        .with_target(false)
        .try_init();
    if let Err(e) = installed {
        return Err(io::Error::other(format!("cannot install the logger: {e}")));
    }
    Ok(LogHandle {
        _guard: guard,
        file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_writes_to_a_fresh_file_after_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut file = ReopenableFile::open(&path).unwrap();
        file.write_all(b"one\n").unwrap();
        std::fs::rename(&path, dir.path().join("c.log.1")).unwrap();
        file.write_all(b"two\n").unwrap();
        file.reopen().unwrap();
        file.write_all(b"three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("c.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
    }
}
