//! Why concurrent work stops early: a signal, or the first failure of one
//! of its threads, whose error (not its consequences in the others) is
//! the one reported.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

pub(crate) struct Stop<'a, E> {
    flag: AtomicBool,
    signal: &'a AtomicBool,
    first: Mutex<Option<E>>,
    /// When the work began: what changed after it is what broke a layer.
    pub(crate) started: std::time::SystemTime,
}

impl<'a, E> Stop<'a, E> {
    pub(crate) fn new(signal: &'a AtomicBool) -> Self {
        Stop { flag: AtomicBool::new(false), signal, first: Mutex::new(None), started: std::time::SystemTime::now() }
    }
    pub(crate) fn stopped(&self) -> bool {
        self.flag.load(Ordering::Relaxed) || self.signal.load(Ordering::Relaxed)
    }
    /// Records `e` unless an earlier failure was, and stops the rest.
    pub(crate) fn fail(&self, e: E) {
        lock(&self.first).get_or_insert(e);
        self.halt();
    }
    /// Stops the rest without a failure of its own.
    pub(crate) fn halt(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }
    pub(crate) fn take(&self) -> Option<E> {
        lock(&self.first).take()
    }
}

/// A write refused because the work is stopping. Not
/// `ErrorKind::Interrupted`: `write_all` retries those forever.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub(crate) struct Cancelled;

/// A reader that fails once the work is told to stop, so that every loop
/// reading through it stops within one buffer (at most 1 MiB) of a signal.
pub(crate) struct Cancellable<'a, R> {
    pub(crate) inner: R,
    pub(crate) cancel: &'a AtomicBool,
}

impl<R: std::io::Read> std::io::Read for Cancellable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other(Cancelled));
        }
        let n = buf.len().min(1 << 20);
        self.inner.read(&mut buf[..n])
    }
}

/// A lock whose holder panicked still guards consistent data here (every
/// critical section is a single assignment or read), so poisoning is
/// ignored rather than spreading the panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
