//! The audit log's writer: requests append finished lines to a shared buffer (a short lock, no
//! system call, no thread wake-up per line) and one thread writes the buffer out in batches,
//! like nginx's `access_log ... buffer=64k flush=1s`.
//!
//! The buffer holds at most `limit_lines` lines; beyond that a line is dropped and counted,
//! so a stalled sink (full disk, blocked pipe) costs memory up to the bound and never a
//! request's time. A batch goes out when it reaches [`FLUSH_BYTES`] or has waited
//! [`FLUSH_INTERVAL`], and on [`BatchWriter::close`].

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

/// A batch is written once it holds this many bytes...
pub const FLUSH_BYTES: usize = 64 * 1024;
/// ...or once its first line has waited this long.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// The requests' side of the writer thread.
pub struct BatchWriter {
    shared: Arc<Shared>,
    finished: Mutex<Option<mpsc::Receiver<()>>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    limit_lines: usize,
    /// Lines lost since start (full buffer or failed writes).
    dropped: AtomicU64,
    /// Lines lost since the last line that reported them. Changed only under `state`'s lock.
    unreported: AtomicU64,
}

#[derive(Default)]
struct State {
    buffer: Vec<u8>,
    lines: usize,
    closing: bool,
}

impl BatchWriter {
    /// Starts the writer thread over `sink`.
    pub fn start(sink: Box<dyn Write + Send>, limit_lines: usize, thread_name: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            limit_lines: limit_lines.max(1),
            dropped: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
        });
        let (finished_sender, finished) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new().name(thread_name.to_string()).spawn(move || {
            write_batches(&thread_shared, sink);
            let _ = finished_sender.send(());
        })?;
        Ok(Self { shared, finished: Mutex::new(Some(finished)) })
    }

    /// Lines dropped since the last line that carried the count (what the next line reports).
    pub fn unreported_drops(&self) -> u64 {
        self.shared.unreported.load(Ordering::Relaxed)
    }

    /// Lines dropped since start.
    pub fn dropped_total(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Queues `line` (newline included). `reports_drops` is the drop count the line carries,
    /// which stops being "unreported" once the line is queued. Returns whether it was queued.
    pub fn push(&self, line: &[u8], reports_drops: u64) -> bool {
        let mut state = self.shared.lock();
        if state.closing || state.lines >= self.shared.limit_lines {
            self.shared.count_dropped(1);
            return false;
        }
        let was_empty = state.buffer.is_empty();
        state.buffer.extend_from_slice(line);
        state.lines += 1;
        let crossed_flush = state.buffer.len() >= FLUSH_BYTES && state.buffer.len() - line.len() < FLUSH_BYTES;
        if reports_drops > 0 {
            self.shared.unreported.fetch_sub(reports_drops, Ordering::Relaxed);
        }
        drop(state);
        // The writer sleeps until the first line of a batch and wakes itself for the rest,
        // so only two lines per batch pay for a wake-up.
        if was_empty || crossed_flush {
            self.shared.wake.notify_one();
        }
        true
    }

    /// Counts a line that never reached [`push`](Self::push) (it could not be serialised).
    pub fn count_lost_line(&self) {
        let _state = self.shared.lock();
        self.shared.count_dropped(1);
    }

    /// Writes what is queued and stops the thread, waiting at most `wait` for the sink.
    pub fn close(&self, wait: Duration) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        let finished = self.finished.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(finished) = finished {
            let _ = finished.recv_timeout(wait);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent buffer: keep writing.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Call with the state lock held (or from the writer thread, which alone loses batches).
    fn count_dropped(&self, lines: u64) {
        self.dropped.fetch_add(lines, Ordering::Relaxed);
        self.unreported.fetch_add(lines, Ordering::Relaxed);
    }
}

fn write_batches(shared: &Shared, mut sink: Box<dyn Write + Send>) {
    let mut batch = Vec::with_capacity(FLUSH_BYTES);
    let mut reported_error = false;
    loop {
        let mut state = shared.lock();
        while state.buffer.is_empty() && !state.closing {
            state = shared.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        if state.buffer.is_empty() {
            return; // closing, and everything is written
        }
        let deadline = Instant::now() + FLUSH_INTERVAL;
        while !state.closing && state.buffer.len() < FLUSH_BYTES {
            let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|left| !left.is_zero()) else {
                break;
            };
            state = shared.wake.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        std::mem::swap(&mut state.buffer, &mut batch);
        let lines = std::mem::take(&mut state.lines);
        drop(state);
        if let Err(error) = sink.write_all(&batch).and_then(|()| sink.flush()) {
            let _lock = shared.lock();
            shared.count_dropped(lines as u64);
            if !reported_error {
                reported_error = true;
                tracing::error!(%error, "Cannot write the audit log; its lines are dropped and counted");
            }
        }
        batch.clear();
        // A burst may have grown the batch: give the memory back.
        batch.shrink_to(FLUSH_BYTES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read, and block.
    #[derive(Clone, Default)]
    struct Sink {
        written: Arc<Mutex<Vec<u8>>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            let _open = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            self.written.lock().expect("lock").extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn queued_lines_are_written_in_order_by_close() {
        let sink = Sink::default();
        let writer = BatchWriter::start(Box::new(sink.clone()), 100, "audit-test").expect("start");
        for n in 0..50 {
            assert!(writer.push(format!("line {n}\n").as_bytes(), 0));
        }
        writer.close(Duration::from_secs(5));
        let written = String::from_utf8(sink.written.lock().expect("lock").clone()).expect("utf-8");
        let expected: String = (0..50).map(|n| format!("line {n}\n")).collect();
        assert_eq!(written, expected);
        assert!(!writer.push(b"late\n", 0), "nothing is queued after close");
    }

    #[test]
    fn lines_arrive_without_close_after_the_flush_interval() {
        let sink = Sink::default();
        let writer = BatchWriter::start(Box::new(sink.clone()), 100, "audit-test").expect("start");
        writer.push(b"one\n", 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.written.lock().expect("lock").is_empty() {
            assert!(Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(sink.written.lock().expect("lock").as_slice(), b"one\n");
    }

    #[test]
    fn a_stalled_sink_drops_beyond_the_bound_and_counts_until_reported() {
        let sink = Sink::default();
        let gate = sink.gate.lock().expect("gate");
        let writer = BatchWriter::start(Box::new(sink.clone()), 4, "audit-test").expect("start");
        // The first batch is taken by the (blocked) writer; then 4 fit and the rest drop.
        for _ in 0..200 {
            writer.push(b"x\n", 0);
            if writer.dropped_total() > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(writer.dropped_total() > 0, "the bound was never reached");
        let dropped = writer.dropped_total();
        assert_eq!(writer.unreported_drops(), dropped);
        drop(gate);
        // Like `emit`, each attempt carries the count; the first line queued clears it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !writer.push(b"report\n", writer.unreported_drops()) {
            assert!(Instant::now() < deadline, "the writer never drained");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(writer.unreported_drops(), 0);
        assert!(writer.dropped_total() >= dropped);
        writer.close(Duration::from_secs(5));
    }
}
