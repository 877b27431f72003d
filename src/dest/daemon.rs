//! A Docker engine (or podman's Docker-compatible service) as a
//! destination: the image is streamed into `POST /images/load` as the
//! docker-archive `stream` writes, over the engine's unix socket — no
//! docker CLI needed. An image the engine already has (same image ID, the
//! config digest) is only tagged.
//!
//! The Engine API is plain HTTP/1.1 on a unix socket; a few lines of it
//! are written here rather than pulling in an async HTTP stack.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long the engine may neither read nor answer: loading reports
/// progress per layer, so a healthy engine is never silent this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("DOCKER_HOST={0:?}: only unix:// sockets are supported")]
    Host(String),
    #[error("cannot connect to the Docker engine at {socket}: {source} (is it running? set DOCKER_HOST=unix:///path/to/docker.sock)")]
    Connect { socket: PathBuf, source: io::Error },
    #[error("the Docker engine at {socket}: {what}")]
    Api { socket: PathBuf, what: String },
}

pub struct Daemon {
    socket: PathBuf,
    idle: Duration,
}

/// An HTTP response, body read whole (the Engine's answers here are small).
struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Daemon {
    /// The engine `DOCKER_HOST` names, or the default socket.
    pub fn from_env() -> Result<Daemon, DaemonError> {
        match std::env::var("DOCKER_HOST") {
            Ok(h) if !h.is_empty() => match h.strip_prefix("unix://") {
                Some(p) => Ok(Daemon { socket: p.into(), idle: IDLE_TIMEOUT }),
                None => Err(DaemonError::Host(h)),
            },
            _ => Ok(Daemon { socket: "/var/run/docker.sock".into(), idle: IDLE_TIMEOUT }),
        }
    }

    pub fn at(socket: PathBuf) -> Daemon {
        Daemon { socket, idle: IDLE_TIMEOUT }
    }

    /// Another bound on a silent engine than [`IDLE_TIMEOUT`].
    pub fn with_idle_timeout(self, idle: Duration) -> Daemon {
        Daemon { idle, ..self }
    }

    fn api(&self, what: impl Into<String>) -> DaemonError {
        DaemonError::Api { socket: self.socket.clone(), what: what.into() }
    }

    /// A connection whose every read and write is bounded.
    fn connect(&self) -> Result<UnixStream, DaemonError> {
        let s = UnixStream::connect(&self.socket).map_err(|source| DaemonError::Connect { socket: self.socket.clone(), source })?;
        let bounded = s.set_read_timeout(Some(self.idle)).and_then(|()| s.set_write_timeout(Some(self.idle)));
        bounded.map_err(|source| DaemonError::Connect { socket: self.socket.clone(), source })?;
        Ok(s)
    }

    /// A failed exchange: a timeout says how long the engine was silent.
    fn io_failure(&self, what: &str, e: io::Error) -> DaemonError {
        if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            self.api(format!("{what}: the engine neither read nor answered for {} s", self.idle.as_secs()))
        } else {
            self.api(format!("{what}: {e}"))
        }
    }

    fn request(&self, method: &str, path: &str) -> Result<Reply, DaemonError> {
        let mut s = self.connect()?;
        let head = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        s.write_all(head.as_bytes()).map_err(|e| self.io_failure(&format!("{method} {path}"), e))?;
        read_reply(Deadline::new(s, self.idle * 2)).map_err(|e| self.io_failure(&format!("{method} {path}"), e))
    }

    /// The ID of the image `reference` names, if the engine has it.
    pub fn image_id(&self, reference: &str) -> Result<Option<String>, DaemonError> {
        let r = self.request("GET", &format!("/images/{}/json", path_escape(reference)))?;
        match r.status {
            200 => {
                let v: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| self.api(format!("image inspect: {e}")))?;
                Ok(v.get("Id").and_then(|i| i.as_str()).map(str::to_string))
            }
            404 => Ok(None),
            s => Err(self.api(format!("image inspect answered HTTP {s}: {}", String::from_utf8_lossy(&r.body).trim()))),
        }
    }

    /// Tags the image `id` as `reference` (`NAME:TAG`).
    pub fn tag(&self, id: &str, reference: &str) -> Result<(), DaemonError> {
        let (repo, tag) = match reference.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, t),
            _ => (reference, "latest"),
        };
        let r = self.request("POST", &format!("/images/{}/tag?repo={}&tag={}", path_escape(id), path_escape(repo), path_escape(tag)))?;
        match r.status {
            200 | 201 => Ok(()),
            s => Err(self.api(format!("tagging {id} as {reference} answered HTTP {s}: {}", String::from_utf8_lossy(&r.body).trim()))),
        }
    }

    /// Streams a docker-archive into `POST /images/load`: `write` writes
    /// the archive. Returns what the engine said it loaded. `cancel` (a
    /// signal) interrupts the exchange wherever it blocks, within a tenth
    /// of a second.
    pub fn load<E>(&self, cancel: &AtomicBool, write: impl FnOnce(&mut dyn Write) -> Result<(), E>) -> Result<Result<String, DaemonError>, E> {
        let mut s = match self.connect() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        // Progress (not quiet): a healthy engine reports each layer it
        // loads, so its silences stay far below the idle bound.
        let head = "POST /images/load HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n\
                    Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        if let Err(e) = s.write_all(head.as_bytes()) {
            return Ok(Err(self.io_failure("POST /images/load", e)));
        }
        let (reader, watched) = match (s.try_clone(), s.try_clone()) {
            (Ok(r), Ok(w)) => (r, w),
            (Err(e), _) | (_, Err(e)) => return Ok(Err(self.api(e.to_string()))),
        };
        let done = AtomicBool::new(false);
        let outcome = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    if cancel.load(Ordering::Relaxed) {
                        let _ = watched.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            let result = (|| {
                let mut body = Chunked { inner: io::BufWriter::with_capacity(1 << 20, s) };
                write(&mut body)?;
                let sent = body.finish();
                // Progress keeps a healthy engine talking; an answer
                // trickled byte by byte still ends.
                let reply = match read_reply(Deadline::new(reader, LOAD_REPLY_LIMIT)) {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(self.io_failure("POST /images/load", e))),
                };
                if let Err(e) = sent {
                    return Ok(Err(self.io_failure("POST /images/load", e)));
                }
                Ok(self.load_outcome(reply))
            })();
            done.store(true, Ordering::Relaxed);
            result
        });
        if cancel.load(Ordering::Relaxed) && !matches!(outcome, Ok(Ok(_))) {
            return Ok(Err(self.api("interrupted; the image was not loaded")));
        }
        outcome
    }

    /// The load answers 200 and then a JSON message stream, whose
    /// `errorDetail` (or older `error`) entries are the failures.
    fn load_outcome(&self, reply: Reply) -> Result<String, DaemonError> {
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        if reply.status != 200 {
            return Err(self.api(format!("POST /images/load answered HTTP {}: {}", reply.status, text.trim())));
        }
        let mut loaded = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            let detail = v.pointer("/errorDetail/message").and_then(|m| m.as_str());
            let error = detail.or_else(|| v.get("error").and_then(|e| e.as_str()));
            if let Some(e) = error.or_else(|| v.get("errorDetail").map(|_| "(no message)")) {
                return Err(self.api(format!("loading the image failed: {}", crate::diag::escape_controls(e.trim()))));
            }
            if let Some(s) = v.get("stream").and_then(|s| s.as_str()).filter(|s| s.contains("Loaded image")) {
                loaded.push(s.trim().to_string());
            }
        }
        if loaded.is_empty() {
            return Err(
                self.api(format!("POST /images/load answered without saying it loaded an image: {}", crate::diag::escape_controls(text.trim())))
            );
        }
        Ok(loaded.join("; "))
    }
}

/// An HTTP/1.1 chunked request body.
struct Chunked<W: Write> {
    inner: W,
}

impl<W: Write> Write for Chunked<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        write!(self.inner, "{:x}\r\n", data.len())?;
        self.inner.write_all(data)?;
        self.inner.write_all(b"\r\n")?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Chunked<W> {
    fn finish(mut self) -> io::Result<()> {
        self.inner.write_all(b"0\r\n\r\n")?;
        self.inner.flush()
    }
}

/// The longest an engine may take to answer a load once the archive is
/// sent (it reports progress meanwhile).
const LOAD_REPLY_LIMIT: Duration = Duration::from_secs(3600);

/// A reader that fails once its time is up, however the bytes trickle.
struct Deadline<R> {
    inner: R,
    end: std::time::Instant,
}

impl<R> Deadline<R> {
    fn new(inner: R, limit: Duration) -> Self {
        Deadline { inner, end: std::time::Instant::now() + limit }
    }
}

impl<R: Read> Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if std::time::Instant::now() > self.end {
            return Err(io::Error::other("the engine's answer took too long"));
        }
        self.inner.read(buf)
    }
}

fn read_reply(s: Deadline<UnixStream>) -> io::Result<Reply> {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // Lines are bounded too: a header line is never this long.
    let read_line = |r: &mut BufReader<Deadline<UnixStream>>, line: &mut String| (r).take(64 << 10).read_line(line);
    read_line(&mut r, &mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP answer: {:?}", line.trim())))?;
    let mut chunked = false;
    let mut length: Option<u64> = None;
    loop {
        line.clear();
        if read_line(&mut r, &mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse().ok();
            }
        }
    }
    // Answers here are small: bound what is read whatever the engine says.
    const LIMIT: u64 = 16 << 20;
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            read_line(&mut r, &mut line)?;
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).map_err(|_| io::Error::other("bad chunk size"))?;
            if size == 0 {
                break;
            }
            if body.len() as u64 + size > LIMIT {
                return Err(io::Error::other("answer too large"));
            }
            (&mut r).take(size).read_to_end(&mut body)?;
            line.clear();
            read_line(&mut r, &mut line)?;
        }
    } else {
        (&mut r).take(length.unwrap_or(LIMIT).min(LIMIT)).read_to_end(&mut body)?;
    }
    Ok(Reply { status, body })
}

/// An image reference (or ID) in an Engine API path or query.
fn path_escape(s: &str) -> String {
    crate::reference::percent_encode(s, b"/:")
}

/// The engine behind `docker-daemon:`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    /// `$DOCKER_HOST`, else /var/run/docker.sock.
    #[default]
    Docker,
    /// podman's Docker-compatible service (see [`super::podman_host`]).
    Podman,
}

/// `docker-daemon:NAME:TAG`: the engine `DOCKER_HOST` names.
pub struct Load<'a> {
    pub reference: &'a str,
}

impl super::Destination for Load<'_> {
    /// Streams the docker-archive into the engine, unless it has the image
    /// already (its ID, the config digest, is known when every layer digest
    /// is): then it is only tagged.
    fn write(&self, job: &super::Job<'_>) -> Result<super::Written, super::CopyError> {
        let (progress, cancel) = (job.progress, job.cancel);
        let source = job.single("a Docker engine")?;
        let (conf, base) = source.conf("a Docker engine's image")?;
        let reference = self.reference;
        let mut daemon = match job.opts.engine {
            Engine::Docker => Daemon::from_env()?,
            Engine::Podman => Daemon::at(super::podman_host::from_env()?),
        };
        if let Some(idle) = job.opts.registry.idle_timeout {
            daemon = daemon.with_idle_timeout(idle);
        }
        if let Some(config) = crate::blob::produce::known_config(conf, base)? {
            let id = crate::digest::Digest::of(&config).to_string();
            if daemon.image_id(&id)?.as_deref() == Some(id.as_str()) {
                daemon.tag(&id, reference)?;
                progress.line(&format!("The engine has image {id} already; tagged it {reference}"));
                return Ok(super::Written::default());
            }
        }
        let loaded = daemon.load(cancel, |w| super::docker_archive::stream(conf, base, reference, w, progress, cancel))??;
        progress.line(&format!("Loaded into the engine: {loaded}"));
        Ok(super::Written::default())
    }
}
