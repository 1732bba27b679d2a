//! The connector's own log: tracing to stderr or to `--log-file`, info by default and
//! debug with `--verbose`, re-opened on SIGHUP for logrotate.
//!
//! Logging never holds up delivery or shutdown. A formatted line is handed to a
//! bounded queue and written by a thread of its own; when that thread cannot keep up
//! (stderr is a pipe nobody reads, the disk stalls), lines that do not fit in the queue
//! are **dropped and counted**, never waited for. Once the output takes lines again,
//! one line says how many were dropped; the total is also on `/metrics`
//! (`mrav2_log_lines_dropped_total`). At exit the queue gets a short deadline to drain
//! ([`FLUSH_DEADLINE`]) and is then abandoned, so a stuck output cannot stop the
//! process from exiting.
//!
//! Every line passes [`crate::untrusted::clean_log_line`] on its way out: text from
//! outside that reaches a log line cannot forge a second line, drive a terminal or
//! show a known secret.
//!
//! The file writer re-opens its path on request, so after logrotate renames the file a
//! SIGHUP makes the connector write to a fresh one with the same name.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Lines the queue holds before new ones are dropped. A burst of this many lines is
/// absorbed by a slow output without loss.
pub const BUFFERED_LINES: usize = 8_192;

/// How long the process waits at exit for queued lines to be written.
pub const FLUSH_DEADLINE: Duration = Duration::from_millis(500);

/// Lines dropped since the process started, because the log output did not keep up.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Log lines dropped so far because the output did not keep up (for `/metrics`).
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Keeps the log writer alive and re-opens the log file. Dropping it gives queued
/// lines [`FLUSH_DEADLINE`] to be written.
pub struct LogHandle {
    queue: LineQueue,
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

impl Drop for LogHandle {
    fn drop(&mut self) {
        self.queue.flush(FLUSH_DEADLINE);
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

/// What the writer thread is asked to do.
enum Job {
    Line(Vec<u8>),
    /// Answer once every line queued before this one was written.
    Flush(SyncSender<()>),
}

/// The sending side of the log queue: cheap to clone, never blocks.
#[derive(Clone)]
struct LineQueue {
    jobs: SyncSender<Job>,
    dropped: Arc<AtomicU64>,
}

impl LineQueue {
    /// A queue of `capacity` lines written to `out` by a thread of its own.
    fn start(out: impl Write + Send + 'static, capacity: usize) -> io::Result<Self> {
        let (jobs, queued) = sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(queued, out, &counted))?;
        Ok(Self { jobs, dropped })
    }

    /// Queues one line, or drops and counts it when the queue is full.
    fn push(&self, line: Vec<u8>) {
        match self.jobs.try_send(Job::Line(line)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits up to `within` for the lines queued so far to be written. It runs on no
    /// runtime thread (at exit, after the runtime stopped), so the blocking clock and
    /// sleep are the right ones here.
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    fn flush(&self, within: Duration) {
        let (done, finished) = sync_channel(1);
        let deadline = std::time::Instant::now() + within;
        let mut job = Job::Flush(done);
        // The queue may be full: retry until the deadline rather than wait on it.
        loop {
            match self.jobs.try_send(job) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(back)) => {
                    if std::time::Instant::now() >= deadline {
                        return;
                    }
                    job = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let _ = finished.recv_timeout(left);
    }
}

/// The writer thread: writes each line, and before the first line after a gap, one
/// line saying how many were dropped.
fn write_lines(queued: Receiver<Job>, mut out: impl Write, dropped: &AtomicU64) {
    let mut reported = 0u64;
    loop {
        let job = match queued.recv_timeout(Duration::from_secs(1)) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let now_dropped = dropped.load(Ordering::Relaxed);
        if now_dropped > reported {
            let note = format!(
                "{}  WARN log output fell behind: {} log lines were dropped (the output was not being read fast enough); delivery was not held up\n",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                now_dropped - reported
            );
            if out.write_all(note.as_bytes()).is_ok() {
                reported = now_dropped;
            }
        }
        match job {
            Some(Job::Line(line)) => {
                let line = crate::untrusted::clean_log_line(&line);
                // A failed write loses that line; there is nowhere to report it.
                let _ = out.write_all(&line);
                let _ = out.flush();
            }
            Some(Job::Flush(done)) => {
                let _ = out.flush();
                let _ = done.send(());
            }
            None => {}
        }
    }
}

/// Hands each formatted event to the queue (`tracing-subscriber` writes one event per
/// `write_all`; the buffer collects the pieces and is queued when dropped).
struct QueueWriter {
    queue: LineQueue,
    line: Vec<u8>,
}

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for QueueWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.queue.push(std::mem::take(&mut self.line));
        }
    }
}

impl<'a> MakeWriter<'a> for LineQueue {
    type Writer = QueueWriter;

    fn make_writer(&'a self) -> Self::Writer {
        QueueWriter {
            queue: self.clone(),
            line: Vec::new(),
        }
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides the level when set.
pub fn init(log_file: Option<&Path>, verbose: bool) -> io::Result<LogHandle> {
    let default_level = if verbose { "debug" } else { "info" };
    // Dependencies stay at warn even with --verbose: their debug output is noise to
    // an operator and could include request details.
    let default_filter = format!("warn,mrav2_syslog_connector={default_level}");
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (queue, file) = match log_file {
        Some(path) => {
            let file = ReopenableFile::open(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open log file {}: {e}", path.display()),
                )
            })?;
            (LineQueue::start(file.clone(), BUFFERED_LINES)?, Some(file))
        }
        None => (LineQueue::start(io::stderr(), BUFFERED_LINES)?, None),
    };
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(queue.clone())
        // Plain text everywhere: log files, the journal and pipes take no colour codes.
        .with_ansi(false)
        .with_target(false)
        .try_init();
    if let Err(e) = installed {
        return Err(io::Error::other(format!("cannot install the logger: {e}")));
    }
    Ok(LogHandle { queue, file })
}

#[cfg(test)]
// The writer is a plain thread; these tests measure it with the plain clock.
#[allow(clippy::disallowed_types)]
mod tests {
    use super::*;
    use std::sync::Condvar;

    /// Whether the gate is open, and what was written through it.
    type GateState = (Mutex<(bool, Vec<u8>)>, Condvar);

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

    /// An output that blocks every write until opened, like a pipe nobody reads.
    #[derive(Clone, Default)]
    struct Gate {
        state: Arc<GateState>,
    }

    impl Gate {
        fn open(&self) {
            let (lock, cv) = &*self.state;
            lock.lock().unwrap().0 = true;
            cv.notify_all();
        }
        fn written(&self) -> String {
            String::from_utf8(self.state.0.lock().unwrap().1.clone()).unwrap()
        }
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cv) = &*self.state;
            let mut state = cv.wait_while(lock.lock().unwrap(), |s| !s.0).unwrap();
            state.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_output_drops_and_counts_lines_and_says_so_once() {
        let gate = Gate::default();
        let queue = LineQueue::start(gate.clone(), 4).unwrap();
        let started = std::time::Instant::now();
        for i in 0..100 {
            queue.push(format!("line {i}\n").into_bytes());
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "pushing never waits for the output"
        );
        // The queue holds four, the writer one more once it has started: the rest are
        // dropped.
        let dropped = queue.dropped.load(Ordering::Relaxed);
        assert!((95..=96).contains(&dropped), "{dropped} dropped");
        // A flush against a stuck output gives up at its deadline.
        let flushing = std::time::Instant::now();
        queue.flush(Duration::from_millis(200));
        assert!(flushing.elapsed() < Duration::from_secs(1));

        gate.open();
        queue.flush(Duration::from_secs(5));
        queue.push(b"after\n".to_vec());
        queue.flush(Duration::from_secs(5));
        let written = gate.written();
        let notes: Vec<&str> = written
            .lines()
            .filter(|l| l.contains("log lines were dropped"))
            .collect();
        assert_eq!(notes.len(), 1, "{written}");
        assert!(
            notes[0].contains(&format!(" {dropped} log lines")),
            "{written}"
        );
        assert!(written.ends_with("after\n"), "{written}");
        let kept = written.lines().filter(|l| l.starts_with("line ")).count() as u64;
        assert_eq!(kept + dropped, 100, "{written}");
    }

    #[test]
    fn lines_are_cleaned_on_the_way_out() {
        let gate = Gate::default();
        gate.open();
        let queue = LineQueue::start(gate.clone(), 4).unwrap();
        queue.push(b"error=body\r\nforged \x1b[2J\n".to_vec());
        queue.flush(Duration::from_secs(5));
        assert_eq!(gate.written(), "error=body\\r\\nforged \\u{1b}[2J\n");
    }
}
