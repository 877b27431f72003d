//! A store layer produced, hashed and consumed on three threads.
//!
//! SHA-256 cannot be split across cores, so one layer's speed is bound by
//! one core's hashing. Walking the tree, reading files and writing the
//! output are moved off that core: the tar bytes travel in fixed-size
//! chunks through bounded channels, so memory stays a few MiB whatever the
//! layer's size, and the hasher never waits on I/O.

use crate::digest::{BlobDigest, Digest};
use crate::layer::{self, LayerError, LayerSink, SinkRead, Stamp, StorePath};
use crossbeam_channel::{Receiver, Sender, bounded};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::Read;
use std::io::{self, Write};

const CHUNK: usize = 512 * 1024;
const IN_FLIGHT: usize = 6;

/// A chunk buffer is always `CHUNK` bytes long (zeroed once, then reused),
/// so files can be read into it directly; `filled` says how much is data.
enum Msg {
    Chunk(Vec<u8>, usize),
    Done(Result<u64, LayerError>),
}

/// Collects the producer's writes into chunks.
struct ChunkWriter<'a> {
    buf: Vec<u8>,
    filled: usize,
    tx: Sender<Msg>,
    pool: &'a Receiver<Vec<u8>>,
    stop: &'a (dyn Fn() -> bool + Sync),
}

/// The consumer went away (or the stream was stopped): not an I/O error of
/// the layer, just the end of its production.
#[derive(Debug, thiserror::Error)]
#[error("stopped")]
struct Gone;

impl ChunkWriter<'_> {
    fn ship(&mut self) -> io::Result<()> {
        if (self.stop)() {
            return Err(io::Error::other(Gone));
        }
        let fresh = self.pool.recv().map_err(|_| io::Error::other(Gone))?;
        let full = std::mem::replace(&mut self.buf, fresh);
        let filled = std::mem::take(&mut self.filled);
        self.tx.send(Msg::Chunk(full, filled)).map_err(|_| io::Error::other(Gone))
    }
}

impl LayerSink for ChunkWriter<'_> {
    fn read_file(&mut self, f: &mut File, max: usize) -> Result<usize, SinkRead> {
        let end = CHUNK.min(self.filled + max);
        let n = loop {
            match f.read(&mut self.buf[self.filled..end]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r.map_err(SinkRead::File)?,
            }
        };
        self.filled += n;
        if self.filled == CHUNK {
            self.ship().map_err(SinkRead::Sink)?;
        }
        Ok(n)
    }
}

impl Write for ChunkWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.filled);
        self.buf[self.filled..self.filled + n].copy_from_slice(&data[..n]);
        self.filled += n;
        if self.filled == CHUNK {
            self.ship()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a pipelined layer ended badly.
pub enum PipeError<E> {
    Layer(LayerError),
    Consumer(E),
    Stopped,
}

/// What the hasher thread computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sum {
    Sha256(Digest),
    Blake3(blake3::Hash),
}

/// What the hasher thread computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256: a layer's name.
    Sha256,
    /// BLAKE3: several times cheaper than SHA-256 (and as collision
    /// resistant), for checking that a second production of a layer is
    /// the first's bytes.
    Blake3,
}

impl Hash {
    fn start(self) -> Hasher {
        match self {
            Hash::Sha256 => Hasher::Sha256(Box::new(Sha256::new())),
            Hash::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }
}

enum Hasher {
    Sha256(Box<Sha256>),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Blake3(h) => {
                h.update(data);
            }
        }
    }
    fn finish(self) -> Sum {
        match self {
            Hasher::Sha256(h) => Sum::Sha256(Digest::from_hasher(*h)),
            Hasher::Blake3(h) => Sum::Blake3(h.finalize()),
        }
    }
}

/// A layer this small is built, hashed and consumed on the calling
/// thread: two threads and a dozen chunk buffers per layer would cost more
/// than the layer (32,000 empty layers once took 44 s).
const INLINE_LIMIT: u64 = 1 << 20;

/// Whether `paths` make a small layer: no directories, little data.
fn small(paths: &[StorePath]) -> bool {
    let mut total = 0u64;
    for p in paths {
        match std::fs::symlink_metadata(&p.fs_path) {
            Ok(m) if !m.is_dir() => total += m.len(),
            // A directory, or an error the producer will report.
            _ => return false,
        }
        if total > INLINE_LIMIT {
            return false;
        }
    }
    true
}

/// The single-threaded pipeline: a buffer hashed and consumed when full.
struct Inline<'a, E, F: FnMut(&[u8]) -> Result<(), E>> {
    buf: Vec<u8>,
    filled: usize,
    hasher: Hasher,
    consume: F,
    failed: Option<E>,
    stop: &'a (dyn Fn() -> bool + Sync),
}

impl<E, F: FnMut(&[u8]) -> Result<(), E>> Inline<'_, E, F> {
    fn ship(&mut self) -> io::Result<()> {
        if (self.stop)() {
            return Err(io::Error::other(Gone));
        }
        self.hasher.update(&self.buf[..self.filled]);
        if let Err(e) = (self.consume)(&self.buf[..self.filled]) {
            self.failed = Some(e);
            return Err(io::Error::other(Gone));
        }
        self.filled = 0;
        Ok(())
    }
}

impl<E, F: FnMut(&[u8]) -> Result<(), E>> Write for Inline<'_, E, F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.buf.len() - self.filled);
        self.buf[self.filled..self.filled + n].copy_from_slice(&data[..n]);
        self.filled += n;
        if self.filled == self.buf.len() {
            self.ship()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<E, F: FnMut(&[u8]) -> Result<(), E>> LayerSink for Inline<'_, E, F> {
    fn read_file(&mut self, f: &mut File, max: usize) -> Result<usize, SinkRead> {
        let end = self.buf.len().min(self.filled + max);
        let n = loop {
            match f.read(&mut self.buf[self.filled..end]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r.map_err(SinkRead::File)?,
            }
        };
        self.filled += n;
        if self.filled == self.buf.len() {
            self.ship().map_err(SinkRead::Sink)?;
        }
        Ok(n)
    }
}

fn run_inline<E>(
    paths: &[StorePath],
    stamp: &Stamp,
    stop: &(dyn Fn() -> bool + Sync),
    hash: Hash,
    consume: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(Sum, u64), PipeError<E>> {
    let mut w = Inline { buf: vec![0u8; 64 << 10], filled: 0, hasher: hash.start(), consume, failed: None, stop };
    let mut result = layer::write_layer(paths, stamp, &mut w);
    if result.is_ok() && w.filled > 0 {
        if let Err(e) = w.ship() {
            result = Err(LayerError::Write(e));
        }
    }
    match result {
        Ok(len) => Ok((w.hasher.finish(), len)),
        Err(_) if w.failed.is_some() => Err(PipeError::Consumer(w.failed.take().expect("checked"))),
        Err(LayerError::Write(e)) if e.get_ref().is_some_and(|i| i.is::<Gone>()) => Err(PipeError::Stopped),
        Err(e) => Err(PipeError::Layer(e)),
    }
}

/// Builds the layer of `paths` and passes its bytes, in order, to
/// `consume` (on the calling thread) after they were hashed on another.
/// Returns the layer's digest and length: its diff_id.
pub fn run<E>(
    paths: &[StorePath],
    stamp: &Stamp,
    stop: &(dyn Fn() -> bool + Sync),
    consume: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<BlobDigest, PipeError<E>> {
    match run_hashed(paths, stamp, stop, Hash::Sha256, consume)? {
        (Sum::Sha256(digest), size) => Ok(BlobDigest { digest, size }),
        (Sum::Blake3(_), _) => unreachable!("asked for SHA-256"),
    }
}

/// [`run`] with the hash of the caller's choice.
pub fn run_hashed<E>(
    paths: &[StorePath],
    stamp: &Stamp,
    stop: &(dyn Fn() -> bool + Sync),
    hash: Hash,
    mut consume: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(Sum, u64), PipeError<E>> {
    if small(paths) {
        return run_inline(paths, stamp, stop, hash, consume);
    }
    let (to_hash, hash_rx) = bounded::<Msg>(IN_FLIGHT);
    let (to_consume, consume_rx) = bounded::<Msg>(IN_FLIGHT);
    let (recycle, pool) = bounded::<Vec<u8>>(IN_FLIGHT * 2 + 2);
    for _ in 0..IN_FLIGHT * 2 {
        let _ = recycle.send(vec![0u8; CHUNK]);
    }
    std::thread::scope(|s| {
        let pool = &pool;
        s.spawn(move || {
            let mut w = ChunkWriter { buf: vec![0u8; CHUNK], filled: 0, tx: to_hash.clone(), pool, stop };
            let mut result = layer::write_layer(paths, stamp, &mut w);
            if result.is_ok() && w.filled > 0 {
                if let Err(e) = w.ship() {
                    result = Err(LayerError::Write(e));
                }
            }
            let _ = to_hash.send(Msg::Done(result));
        });
        let hasher = s.spawn(move || {
            let mut h = hash.start();
            for msg in hash_rx {
                let last = matches!(msg, Msg::Done(_));
                if let Msg::Chunk(c, filled) = &msg {
                    h.update(&c[..*filled]);
                }
                if to_consume.send(msg).is_err() || last {
                    break;
                }
            }
            h.finish()
        });
        let mut outcome = Err(PipeError::Stopped);
        for msg in consume_rx.iter() {
            match msg {
                Msg::Chunk(c, filled) => {
                    if let Err(e) = consume(&c[..filled]) {
                        outcome = Err(PipeError::Consumer(e));
                        break;
                    }
                    let _ = recycle.send(c);
                }
                Msg::Done(Ok(len)) => {
                    outcome = Ok(len);
                    break;
                }
                Msg::Done(Err(LayerError::Write(e))) if e.get_ref().is_some_and(|i| i.is::<Gone>()) => {
                    break;
                }
                Msg::Done(Err(e)) => {
                    outcome = Err(PipeError::Layer(e));
                    break;
                }
            }
        }
        // Unblock and end the other two, whatever happened here.
        drop(consume_rx);
        drop(recycle);
        let digest = hasher.join().expect("the hasher thread does not panic");
        outcome.map(|len| (digest, len))
    })
}
