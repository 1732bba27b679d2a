//! The connector's own log: tracing to stderr or to `--log-file`, info by default and
//! debug with `--verbose`, re-opened on SIGHUP for logrotate.
//!
//! Logging never holds up delivery or shutdown. Lines go through `tracing-appender`'s
//! non-blocking writer in lossy mode: a formatted line is put in a bounded channel of
//! [`BUFFERED_LINES`] and written by the writer's own thread; when that thread cannot
//! keep up (stderr is a pipe nobody reads, the disk stalls), lines that do not fit are
//! **dropped and counted** by its error counter, never waited for. The total is on
//! `/metrics` (`mrav2_log_lines_dropped_total`). The drop is reported in the log itself
//! when the output takes lines again: before the writer thread writes a line, it
//! compares the counter with what it has already reported and, if lines were lost
//! since, first writes one line saying how many. (Lines are only ever dropped while the
//! channel is full, so the output's next line comes straight from that backlog; no
//! periodic check is needed.)
//!
//! At exit, [`LogHandle`]'s drop waits up to [`FLUSH_DEADLINE`] for every line handed
//! over so far to be written. Only when they were (the writer thread is idle) does it
//! drop `tracing-appender`'s `WorkerGuard`, which then returns at once. Otherwise the
//! guard is leaked and the lines still queued are abandoned. The guard's own drop is
//! not trusted with a stuck output: it waits 100 ms to queue its shutdown message and
//! 1 s for the writer thread to take it, but when the channel is full (exactly the
//! case of an output nobody reads) it reports the timeout with `println!`, which writes
//! a stray line into stdout (the record stream with `protocol = stdout`) and blocks
//! forever when stdout is a full pipe too (`2>&1` into a pipe nobody reads).
//!
//! Every line passes [`crate::untrusted::clean_log_line`] on its way out (on the writer
//! thread): text from outside that reaches a log line cannot forge a second line, drive
//! a terminal or show a known secret.
//!
//! The file writer re-opens its path on request, so after logrotate renames the file a
//! SIGHUP makes the connector write to a fresh one with the same name.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Lines the channel holds before new ones are dropped. A burst of this many lines is
/// absorbed by a slow output without loss.
pub const BUFFERED_LINES: usize = 8_192;

/// How long the process waits at exit for handed-over lines to be written. The
/// `WorkerGuard` is dropped only after they were, and then returns at once; only an
/// output that stalls in that very moment makes it wait its own bounds (100 ms + 1 s).
/// The log's share of the exit is thus 500 ms with a stuck output and 1.6 s at most.
pub const FLUSH_DEADLINE: Duration = Duration::from_millis(500);

/// The installed logger's drop counter, for [`dropped_lines`].
static INSTALLED: OnceLock<Arc<Progress>> = OnceLock::new();

/// Log lines dropped so far because the output did not keep up (for `/metrics`).
pub fn dropped_lines() -> u64 {
    INSTALLED.get().map_or(0, |progress| progress.dropped())
}

/// Keeps the log writer alive and re-opens the log file. Dropping it gives handed-over
/// lines [`FLUSH_DEADLINE`] to be written.
pub struct LogHandle {
    /// Only dropped: the bounded flush at exit.
    _exit: ExitFlush,
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

/// Counts lines through the pipeline: handed over by the subscriber, dropped by
/// `tracing-appender` (its error counter) and written by its thread. What is neither
/// dropped nor written is still queued.
struct Progress {
    handed_over: AtomicU64,
    written: AtomicU64,
    /// Set right after the writer is built (the counter comes with it).
    dropped: OnceLock<ErrorCounter>,
}

impl Progress {
    fn dropped(&self) -> u64 {
        self.dropped
            .get()
            .map_or(0, |c| u64::try_from(c.dropped_lines()).unwrap_or(u64::MAX))
    }

    /// Lines handed over and neither written nor dropped yet. Read in the reverse order
    /// of a line's way, so that a line in flight is counted as queued, never as done.
    fn queued(&self) -> u64 {
        let written = self.written.load(Ordering::SeqCst);
        let dropped = self.dropped();
        let handed_over = self.handed_over.load(Ordering::SeqCst);
        handed_over.saturating_sub(written.saturating_add(dropped))
    }

    /// Waits up to `within` until no line is queued; whether none is. It runs on no
    /// runtime thread (at exit, after the runtime stopped), so the blocking clock and
    /// sleep are the right ones here.
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    fn wait_until_written(&self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        loop {
            if self.queued() == 0 {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The end of the pipeline, on `tracing-appender`'s thread: cleans each line, says how
/// many were dropped before the first line written after a loss, and counts what it
/// wrote. `tracing-appender` hands it one whole line per `write_all`.
struct Output<W> {
    out: W,
    progress: Arc<Progress>,
    reported: u64,
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, line: &[u8]) -> io::Result<()> {
        let dropped = self.progress.dropped();
        if dropped > self.reported {
            let note = format!(
                "{}  WARN log output fell behind: {} log lines were dropped (the output was not being read fast enough); delivery was not held up\n",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                dropped - self.reported
            );
            if self.out.write_all(note.as_bytes()).is_ok() {
                self.reported = dropped;
            }
        }
        let line = crate::untrusted::clean_log_line(line);
        // A failed write loses that line; there is nowhere to report it.
        let _ = self.out.write_all(&line);
        let _ = self.out.flush();
        self.progress.written.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The subscriber's side: `tracing-appender`'s writer, counting what it is handed
/// (`tracing-subscriber` writes each event with one `write_all`, which the lossy writer
/// queues or drops as one line).
#[derive(Clone)]
struct Lines {
    writer: NonBlocking,
    progress: Arc<Progress>,
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.progress.handed_over.fetch_add(1, Ordering::SeqCst);
        self.writer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The bounded flush at exit (see the module documentation).
struct ExitFlush {
    guard: Option<WorkerGuard>,
    progress: Arc<Progress>,
}

impl Drop for ExitFlush {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        if self.progress.wait_until_written(FLUSH_DEADLINE) {
            drop(guard);
        } else {
            // The output is stuck: the guard's drop would print into stdout and could
            // block there. The writer thread ends with the process.
            std::mem::forget(guard);
        }
    }
}

/// Starts `tracing-appender`'s lossy writer of `capacity` lines into `out`.
fn start(out: impl Write + Send + 'static, capacity: usize) -> (Lines, ExitFlush) {
    let progress = Arc::new(Progress {
        handed_over: AtomicU64::new(0),
        written: AtomicU64::new(0),
        dropped: OnceLock::new(),
    });
    let output = Output {
        out,
        progress: Arc::clone(&progress),
        reported: 0,
    };
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(capacity)
        .thread_name("log-writer")
        .finish(output);
    // Before any line can be handed over: nothing is dropped uncounted.
    let _ = progress.dropped.set(writer.error_counter());
    let lines = Lines {
        writer,
        progress: Arc::clone(&progress),
    };
    let exit = ExitFlush {
        guard: Some(guard),
        progress,
    };
    (lines, exit)
}

/// Installs the global subscriber. `RUST_LOG` overrides the level when set.
pub fn init(log_file: Option<&Path>, verbose: bool) -> io::Result<LogHandle> {
    let default_level = if verbose { "debug" } else { "info" };
    // Dependencies stay at warn even with --verbose: their debug output is noise to
    // an operator and could include request details.
    let default_filter = format!("warn,mrav2_syslog_connector={default_level}");
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let ((lines, exit), file) = match log_file {
        Some(path) => {
            let file = ReopenableFile::open(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open log file {}: {e}", path.display()),
                )
            })?;
            (start(file.clone(), BUFFERED_LINES), Some(file))
        }
        None => (start(io::stderr(), BUFFERED_LINES), None),
    };
    let progress = Arc::clone(&lines.progress);
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(lines)
        // Plain text everywhere: log files, the journal and pipes take no colour codes.
        .with_ansi(false)
        .with_target(false)
        .try_init();
    if let Err(e) = installed {
        return Err(io::Error::other(format!("cannot install the logger: {e}")));
    }
    let _ = INSTALLED.set(progress);
    Ok(LogHandle { _exit: exit, file })
}

#[cfg(test)]
// The writer is a plain thread; these tests measure and slow it with the plain clock.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
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

    /// Hands `line` over the way `tracing-subscriber` does: one `write_all` per event.
    fn hand_over(lines: &Lines, line: &[u8]) {
        lines.make_writer().write_all(line).unwrap();
    }

    #[test]
    fn a_stuck_output_drops_and_counts_lines_and_says_so_once() {
        let gate = Gate::default();
        let (lines, _exit) = start(gate.clone(), 4);
        let started = std::time::Instant::now();
        for i in 0..100 {
            hand_over(&lines, format!("line {i}\n").as_bytes());
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "handing over never waits for the output"
        );
        // The channel holds four, the writer thread one more once it has taken it: the
        // rest are dropped.
        let dropped = lines.progress.dropped();
        assert!((95..=96).contains(&dropped), "{dropped} dropped");
        // Waiting for a stuck output gives up at its deadline.
        let waiting = std::time::Instant::now();
        assert!(
            !lines
                .progress
                .wait_until_written(Duration::from_millis(200))
        );
        assert!(waiting.elapsed() < Duration::from_secs(1));

        gate.open();
        assert!(lines.progress.wait_until_written(Duration::from_secs(5)));
        hand_over(&lines, b"after\n");
        assert!(lines.progress.wait_until_written(Duration::from_secs(5)));
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
        let (lines, _exit) = start(gate.clone(), 4);
        hand_over(&lines, b"error=body\r\nforged \x1b[2J\n");
        assert!(lines.progress.wait_until_written(Duration::from_secs(5)));
        assert_eq!(gate.written(), "error=body\\r\\nforged \\u{1b}[2J\n");
    }

    /// An output that takes a millisecond per write, like a busy disk.
    #[derive(Clone, Default)]
    struct Slow(Arc<Mutex<Vec<u8>>>);

    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(Duration::from_millis(1));
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_exit_writes_the_lines_still_queued_for_a_slow_output() {
        let slow = Slow::default();
        let (lines, exit) = start(slow.clone(), 1_000);
        // 40 ms of writing, well inside the deadline even on a busy machine.
        for i in 0..40 {
            hand_over(&lines, format!("line {i}\n").as_bytes());
        }
        drop(exit);
        let written = String::from_utf8(slow.0.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count(), 40, "{written}");
        assert!(written.ends_with("line 39\n"), "{written}");
    }

    #[test]
    fn the_exit_gives_up_on_a_stuck_output_at_its_deadline() {
        let gate = Gate::default();
        let (lines, exit) = start(gate.clone(), 4);
        for i in 0..100 {
            hand_over(&lines, format!("line {i}\n").as_bytes());
        }
        let exiting = std::time::Instant::now();
        drop(exit);
        let took = exiting.elapsed();
        assert!(took >= FLUSH_DEADLINE, "gave up after {took:?}");
        assert!(
            took < FLUSH_DEADLINE + Duration::from_millis(300),
            "the exit took {took:?}"
        );
        // The writer thread is still stuck in its write; releasing it ends the test.
        gate.open();
    }
}
