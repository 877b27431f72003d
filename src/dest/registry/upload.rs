//! A blob sent to an upload session while it is produced.
//!
//! First as one PATCH whose body is the producer's output, passed through
//! a bounded channel (flat memory, no temporary file). Where that fails —
//! a proxy capping a request's size (413, often seen only as a reset
//! connection), a redirect, a dropped connection — the blob is produced
//! again (its bytes are deterministic, so the retry is exact) and sent in
//! PATCHes of bounded size with `Content-Range`, halved on each 413.

use super::{Answer, Body, Failure, Registry, errors, origin};
use crate::blob::{BlobWriter, StoreError};
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;

/// The first chunk size once chunked; each 413 halves it, down to
/// [`MIN_CHUNK`].
pub(super) const FIRST_CHUNK: usize = 16 << 20;
const MIN_CHUNK: usize = 64 << 10;
/// Pieces travelling from the producer to a streamed PATCH body.
const PIPE_PIECE: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

pub(super) struct Upload<'r> {
    registry: &'r Registry,
    /// The session's URL: the last Location the registry gave.
    location: String,
    mode: Mode,
    buf: Vec<u8>,
    /// Bytes written so far.
    size: u64,
}

enum Mode {
    Stream { tx: Option<crossbeam_channel::Sender<Vec<u8>>>, patch: Option<std::thread::JoinHandle<PatchEnd>> },
    Chunks { offset: u64 },
}

/// How a streamed PATCH ended, read on its own thread and judged on the
/// producer's.
enum PatchEnd {
    Transport(ureq::Error),
    Answer { status: u16, location: Option<String>, body: String },
}

impl<'r> Upload<'r> {
    pub(super) fn start(registry: &'r Registry, location: String) -> Upload<'r> {
        if registry.chunked.load(Ordering::Relaxed) {
            return Upload { registry, location, mode: Mode::Chunks { offset: 0 }, buf: Vec::new(), size: 0 };
        }
        let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(IN_FLIGHT);
        let url = location.clone();
        let agent = registry.agent.clone();
        let auth = registry.auth_for(&url);
        let patch = std::thread::spawn(move || {
            let mut body = ChannelReader { rx, current: Vec::new(), pos: 0 };
            // Asked first, so that a registry (or a proxy before it) that
            // refuses the upload says so before the body, and its answer
            // is read rather than lost with a reset connection.
            let mut req = agent.patch(&url).header("Content-Type", "application/octet-stream").header("Expect", "100-continue");
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            match req.send(ureq::SendBody::from_reader(&mut body)) {
                Err(e) => PatchEnd::Transport(e),
                Ok(mut r) => PatchEnd::Answer {
                    status: r.status().as_u16(),
                    location: super::location_of(&r),
                    body: r.body_mut().with_config().limit(64 << 10).read_to_string().unwrap_or_default(),
                },
            }
        });
        Upload { registry, location, mode: Mode::Stream { tx: Some(tx), patch: Some(patch) }, buf: Vec::with_capacity(PIPE_PIECE), size: 0 }
    }

    /// Why a streamed PATCH failed, as a failure the layer is retried on
    /// (in chunks) when that may help; or the session's next location.
    fn judge(&self, end: PatchEnd) -> Result<String, Failure> {
        let reg = self.registry;
        let here = origin::Origin::of(&self.location);
        let at = here.as_ref().map_or_else(String::new, |o| o.to_string());
        match end {
            PatchEnd::Transport(e) => {
                let f = reg.transport(here.as_ref().unwrap_or(&reg.origin()), e);
                if f.transient {
                    reg.chunked.store(true, Ordering::Relaxed);
                    return Err(Failure { what: format!("{} (uploading a blob; sending it again in chunks)", f.what), ..f });
                }
                Err(f)
            }
            PatchEnd::Answer { status, location, body } => {
                reg.answered();
                match status {
                    202 | 204 => Ok(location.map_or_else(|| self.location.clone(), |l| origin::resolve(&self.location, &l))),
                    401 if here.as_ref() == Some(&reg.origin()) => {
                        // A token expired or was revoked mid-upload: the
                        // blob starts again, and its first request meets
                        // the 401 that fetches fresh credentials.
                        reg.forget_auth(reg.auth_for(&self.location).as_deref());
                        Err(reg.fail("the registry refused the credentials mid-upload (HTTP 401 on PATCH); authenticating again", true))
                    }
                    401 => Err(reg.fail(
                        format!("the upload location at {at} asks for credentials; they are sent only to the registry, {}", reg.origin()),
                        false,
                    )),
                    // 417: a server or proxy that refuses to be asked first
                    // (Expect); the chunks are sent without asking.
                    413 | 417 | 301 | 302 | 303 | 307 | 308 => {
                        reg.chunked.store(true, Ordering::Relaxed);
                        Err(reg
                            .fail(format!("PATCH of a blob upload at {at}: {}; sending it again in chunks", errors::describe(status, &body)), true))
                    }
                    _ => {
                        Err(reg.fail(format!("PATCH of a blob upload at {at}: {}", errors::describe(status, &body)), status == 429 || status >= 500))
                    }
                }
            }
        }
    }

    fn write_failure(&self, f: Failure) -> io::Error {
        io::Error::other(self.registry.store_error(f))
    }

    /// Hands the buffered piece to the streamed PATCH.
    fn ship(&mut self) -> io::Result<()> {
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIPE_PIECE));
        let Mode::Stream { tx, patch } = &mut self.mode else { unreachable!("ship streams") };
        let tx = tx.as_ref().expect("not yet committed");
        if tx.send(piece).is_err() {
            // The request ended early: its end says why.
            let end = patch.take().map(|h| h.join());
            let f = match end {
                Some(Ok(end)) => match self.judge(end) {
                    Err(f) => f,
                    Ok(_) => self.registry.fail("the registry ended the upload before the blob did", true),
                },
                _ => self.registry.fail("the upload thread failed", true),
            };
            return Err(self.write_failure(f));
        }
        Ok(())
    }

    /// Sends `data` at the session's offset in PATCHes of at most the
    /// current chunk size; a 413 halves the size and sends the same
    /// bytes again (the proxy that refused them kept none).
    fn send_chunks(&mut self, data: &[u8]) -> Result<(), Failure> {
        let reg = self.registry;
        let Mode::Chunks { offset } = &mut self.mode else { unreachable!("chunks") };
        let mut pos = 0;
        while pos < data.len() {
            let size = reg.chunk.load(Ordering::Relaxed).min(data.len() - pos);
            let piece = &data[pos..pos + size];
            let range = format!("{}-{}", *offset, *offset + size as u64 - 1);
            let len = size.to_string();
            let headers = [("Content-Type", "application/octet-stream"), ("Content-Range", range.as_str()), ("Content-Length", len.as_str())];
            let a: Answer = reg.send_once("PATCH", &self.location, &headers, Body::Bytes(piece))?;
            match a.resp.status().as_u16() {
                202 | 204 => {
                    self.location = super::location_of(&a.resp).map_or_else(|| a.url.clone(), |l| origin::resolve(&a.url, &l));
                    *offset += size as u64;
                    pos += size;
                }
                413 if size > MIN_CHUNK => {
                    let _ = reg.chunk.compare_exchange(
                        reg.chunk.load(Ordering::Relaxed),
                        (size / 2).max(MIN_CHUNK),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                s => {
                    let mut f = reg.status_failure("PATCH", a);
                    // A range the session does not expect: start the blob again.
                    f.transient |= s == 416;
                    return Err(f);
                }
            }
        }
        Ok(())
    }
}

impl Write for Upload<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let cap = match self.mode {
            Mode::Stream { .. } => PIPE_PIECE,
            Mode::Chunks { .. } => self.registry.chunk.load(Ordering::Relaxed).max(MIN_CHUNK),
        };
        let n = data.len().min(cap.saturating_sub(self.buf.len()).max(1));
        self.buf.extend_from_slice(&data[..n]);
        self.size += n as u64;
        if self.buf.len() >= cap {
            match self.mode {
                Mode::Stream { .. } => self.ship()?,
                Mode::Chunks { .. } => {
                    let piece = std::mem::take(&mut self.buf);
                    self.send_chunks(&piece).map_err(|f| self.write_failure(f))?;
                }
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for Upload<'_> {
    fn commit(mut self: Box<Self>, digest: &crate::digest::Digest) -> Result<(), StoreError> {
        let sha256 = &digest.hex();
        let reg = self.registry;
        let as_store = |e: io::Error| match e.downcast::<StoreError>() {
            Ok(s) => s,
            Err(e) => StoreError::Remote { what: e.to_string(), transient: true },
        };
        match self.mode {
            Mode::Stream { .. } => {
                if !self.buf.is_empty() {
                    self.ship().map_err(as_store)?;
                }
                let Mode::Stream { tx, patch } = &mut self.mode else { unreachable!() };
                drop(tx.take());
                let end = patch.take().map(|h| h.join());
                self.location = match end {
                    Some(Ok(end)) => self.judge(end).map_err(|f| reg.store_error(f))?,
                    _ => return Err(StoreError::Remote { what: format!("{}: the upload thread failed", reg.target), transient: true }),
                };
            }
            Mode::Chunks { .. } => {
                let rest = std::mem::take(&mut self.buf);
                self.send_chunks(&rest).map_err(|f| reg.store_error(f))?;
            }
        }
        reg.finish_upload(&self.location, sha256, self.size, &[]).map_err(|f| reg.store_error(f))?;
        reg.record_size(sha256, self.size);
        reg.record(sha256, super::BlobOutcome::Uploaded);
        Ok(())
    }
}

impl Drop for Upload<'_> {
    fn drop(&mut self) {
        // Not committed: end the request body, so the PATCH ends; the
        // registry drops the unfinished session. The thread is not waited
        // for: a registry that stopped reading would hold a Ctrl-C until
        // its timeout.
        if let Mode::Stream { tx, .. } = &mut self.mode {
            drop(tx.take());
        }
    }
}

struct ChannelReader {
    rx: crossbeam_channel::Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.current = next;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
