//! The docker-archive writer: base layers, store layers, the customisation
//! layer, the image config and the manifest, in nixpkgs' order and bytes.
//!
//! A layer's member name is its sha256, so the digest must be known before
//! its first byte is written. Worker threads build every layer once into a
//! hasher, in order and ahead of the writer; the writer builds each layer
//! again straight into the output and hashes what it writes, so a file
//! that changed in between is caught (and the archive left incomplete)
//! instead of producing an image whose digests lie. Both passes run the
//! tar producer, the hash and the consumer on separate threads
//! ([`layer_pipe`]).

use super::CopyError;
use crate::conf::Conf;
use crate::digest::{BlobDigest, Digest};
use crate::image::base::{BaseImage, BaseLayer};
use crate::image::config::{self, LayerRecord};
use crate::image::customisation::Customisation;
use crate::image::decode::{self, ContentHasher, HashSink, Tee};
use crate::image::users::UsersLayer;
use crate::image::{ImageError, Progress, config_bytes, paths_repr, refuse_shadowing};
use crate::layer::pipe::{self, PipeError, Sum};
use crate::layer::{self, LayerError, StorePath};
use crate::output::{Accept, OutputFile};
use crate::stop::{Cancelled, lock};
use crate::tar::python::{self as tar, Header};
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The stream's stop: a signal, or the first failure of a hasher.
type Abort<'a> = crate::stop::Stop<'a, ImageError>;

/// The outer archive: counts its offset for the final padding and checks
/// for interruption between writes.
struct Output<'a, W: Write> {
    inner: W,
    offset: u64,
    abort: &'a Abort<'a>,
}

impl<W: Write> Write for Output<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.abort.stopped() {
            return Err(io::Error::other(Cancelled));
        }
        let n = self.inner.write(data)?;
        self.offset += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn outer_header(name: &str, size: u64, mtime: i64) -> Header<'_> {
    Header { name: Cow::Borrowed(name.as_bytes()), mode: 0o644, size, mtime, typeflag: tar::REGTYPE, ..Header::default() }
}

/// A layer's digest and length, and the BLAKE3 of the same bytes when
/// the first pass took it (the second pass then checks that instead).
type Hashed = Result<(BlobDigest, Option<blake3::Hash>), ImageError>;

/// Runs `job(0..n)` on one worker per core, in index order. Every index is
/// handed to `job` exactly once, even after the stream stopped (`job` then
/// reports the stop instead of working), so that whoever waits for a
/// job's result always gets one.
fn spawn_hashers<'s, 'e: 's>(
    scope: &'s std::thread::Scope<'s, 'e>,
    n: usize,
    abort: &'s Abort<'s>,
    job: impl Fn(usize) -> Result<(), ImageError> + Send + Sync + 's,
) {
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let job = std::sync::Arc::new(job);
    let workers = std::thread::available_parallelism().map_or(2, |c| c.get()).min(n).max(1);
    for _ in 0..workers {
        let (next, job) = (next.clone(), job.clone());
        scope.spawn(move || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if let Err(e) = job(i) {
                    abort.fail(e);
                }
            }
        });
    }
}

/// The first pass over a store layer: its digest and length, and its
/// BLAKE3 (taken on this otherwise idle thread while another takes the
/// SHA-256), which the second pass checks at a fraction of the cost.
fn hash_store_layer(conf: &Conf, layer: usize, index: usize, abort: &Abort<'_>) -> Hashed {
    let paths = &conf.store_layers[layer];
    let stopped = || abort.stopped();
    let mut check = blake3::Hasher::new();
    let tar = pipe::run(paths, &conf.stamp, &stopped, |chunk| {
        check.update(chunk);
        Ok::<(), ()>(())
    })
    .map_err(|e| match e {
        PipeError::Layer(source) => ImageError::Layer { index, paths: paths_repr(paths), source },
        PipeError::Consumer(()) | PipeError::Stopped => ImageError::Interrupted,
    })?;
    Ok((tar, Some(check.finalize())))
}

/// The customisation layer's digest, checked against its checksum file.
fn hash_customisation(custom: &Customisation, abort: &Abort<'_>) -> Result<BlobDigest, ImageError> {
    let mut f = File::open(&custom.tar_path).map_err(|e| custom.read_failed(e))?;
    let mut head = [0u8; 8];
    let n = decode::read_head(&mut f, &mut head).map_err(|e| custom.read_failed(e))?;
    custom.refuse_compressed(&head[..n])?;
    let mut sink = HashSink::new();
    sink.write_all(&head[..n]).map_err(|e| custom.read_failed(e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if abort.stopped() {
            return Err(ImageError::Interrupted);
        }
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => sink.write_all(&buf[..k]).map_err(|e| custom.read_failed(e))?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(custom.read_failed(e)),
        }
    }
    let digest = sink.finish();
    custom.check(&digest.digest)?;
    Ok(digest)
}

/// Streams the image described by `conf` (on top of `base`, if any) into
/// `out` as an uncompressed docker-archive.
pub fn stream<W: Write>(
    conf: &Conf,
    base: Option<&BaseImage>,
    repo_tag: &str,
    out: W,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(), ImageError> {
    stream_impl(conf, base, repo_tag, out, None, progress, cancel)
}

/// Where a layer's header can be rewritten once its digest is known: the
/// regular file the archive goes to, and the file offset the archive
/// starts at.
#[derive(Clone, Copy)]
pub struct Patch<'f> {
    pub file: &'f File,
    pub start: u64,
}

/// [`stream`] into a regular file, written through `out` (a buffer over
/// that file): each store layer whose digest is not precomputed is read
/// once, its header written with a placeholder name and rewritten in
/// place when the digest is known. The bytes are the same as [`stream`]'s.
pub fn stream_seekable<W: Write>(
    conf: &Conf,
    base: Option<&BaseImage>,
    repo_tag: &str,
    out: W,
    patch: Patch<'_>,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(), ImageError> {
    stream_impl(conf, base, repo_tag, out, Some(patch), progress, cancel)
}

fn stream_impl<W: Write>(
    conf: &Conf,
    base: Option<&BaseImage>,
    repo_tag: &str,
    out: W,
    patch: Option<Patch<'_>>,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(), ImageError> {
    let custom = Customisation::load(conf)?;
    let users = crate::image::users::users_layer(conf, base, &custom)?;
    let n_store = conf.store_layers.len();
    let slots = Slots::new(n_store + 1);
    // A hasher's failure stops everything, and its error is the one reported.
    let abort = Abort::new(cancel);
    let base_count = base.map_or(0, |b| b.layers.len());
    // Layers whose digest the conf already carries skip the hashing pass.
    let known = |layer: usize| conf.store_layer_digests[layer].as_ref();

    std::thread::scope(|scope| {
        // Job i < n_store hashes store layer i; job n_store checks the
        // customisation layer against its checksum file.
        spawn_hashers(scope, n_store + 1, &abort, |job| {
            if abort.stopped() {
                slots.put(job, Err(ImageError::Interrupted));
                return Err(ImageError::Interrupted);
            }
            let result = match (job < n_store).then(|| known(job)) {
                Some(Some(d)) => Ok((d.tar(), None)),
                // Taken in one pass by the writer.
                Some(None) if patch.is_some() => Ok((BlobDigest::default(), None)),
                Some(None) => hash_store_layer(conf, job, base_count + job + 1, &abort),
                None => hash_customisation(&custom, &abort).map(|d| (d, None)),
            };
            match result {
                Ok(digest) => {
                    slots.put(job, Ok(digest));
                    Ok(())
                }
                Err(e) => {
                    // Recorded before the writer can see the failure, so
                    // that the writer reports this error, not its own.
                    abort.fail(e);
                    slots.put(job, Err(ImageError::Interrupted));
                    Err(ImageError::Interrupted)
                }
            }
        });
        let mut w = Writer {
            conf,
            base,
            patch,
            progress,
            abort: &abort,
            digests: &slots,
            out: Output { inner: out, offset: 0, abort: &abort },
            head: Vec::with_capacity(2048),
            records: Vec::new(),
        };
        let result = w.write(repo_tag, &custom, users.as_ref());
        // Stop the hashers either way; on failure their work is moot.
        abort.halt();
        result.map_err(|e| abort.take().unwrap_or(e))
    })
}

/// Each store layer's digest, computed in parallel: what
/// [`Conf::store_layer_digests`](crate::conf::Conf) records.
pub fn store_layer_digests(conf: &Conf, cancel: &AtomicBool) -> Result<Vec<crate::conf::LayerDigest>, ImageError> {
    let abort = Abort::new(cancel);
    let n = conf.store_layers.len();
    let slots: Vec<std::sync::Mutex<Option<crate::conf::LayerDigest>>> = (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        spawn_hashers(scope, n, &abort, |layer| {
            if abort.stopped() {
                return Err(ImageError::Interrupted);
            }
            let (tar, _) = hash_store_layer(conf, layer, layer + 1, &abort)?;
            *lock(&slots[layer]) = Some(crate::conf::LayerDigest { digest: tar.digest, size: tar.size, ..Default::default() });
            Ok(())
        });
    });
    if let Some(e) = abort.take() {
        return Err(e);
    }
    slots.into_iter().map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()).ok_or(ImageError::Interrupted)).collect()
}

/// The archive being written, member by member, in nixpkgs' order.
struct Writer<'a, W: Write> {
    conf: &'a Conf,
    base: Option<&'a BaseImage>,
    patch: Option<Patch<'a>>,
    progress: &'a dyn Progress,
    abort: &'a Abort<'a>,
    digests: &'a Slots,
    out: Output<'a, W>,
    /// A reused buffer for headers and small members.
    head: Vec<u8>,
    records: Vec<LayerRecord>,
}

impl<W: Write> Writer<'_, W> {
    fn write(&mut self, repo_tag: &str, custom: &Customisation, users: Option<&UsersLayer>) -> Result<(), ImageError> {
        match self.base {
            None => self.progress.line("No 'fromImage' provided"),
            Some(base) => {
                for (num, layer) in base.layers.iter().enumerate() {
                    self.base_layer(base, layer)?;
                    self.progress.line(&format!("Adding base layer {} from {}", num + 1, layer.name));
                    self.records.push(LayerRecord { diff_id: layer.diff_id, member: layer.name.clone(), paths: vec![layer.name.clone()] });
                }
            }
        }
        for i in 0..self.conf.store_layers.len() {
            self.store_layer(i)?;
        }
        self.customisation_layer(custom)?;
        if let Some(u) = users {
            self.users_layer(u)?;
        }
        self.manifests(repo_tag)
    }

    /// The conf's `users` layer, made in memory: after the customisation
    /// layer, so that its account files win over (and extend) those below.
    fn users_layer(&mut self, users: &UsersLayer) -> Result<(), ImageError> {
        self.progress.line(&format!("Creating layer {} with users...", self.records.len() + 1));
        refuse_shadowing(self.base, &users.digest, || "the users layer".into())?;
        let member = format!("{}/layer.tar", users.digest.hex());
        self.head.clear();
        tar::encode_header(&outer_header(&member, users.tar.len() as u64, self.conf.stamp.mtime), &mut self.head);
        self.head.extend_from_slice(&users.tar);
        self.head.resize(self.head.len() + tar::padding(users.tar.len() as u64) as usize, 0);
        self.out.write_all(&self.head).map_err(|e| self.interrupted(e))?;
        self.progress.advance(users.tar.len() as u64);
        self.records.push(LayerRecord { diff_id: users.digest, member, paths: vec![UsersLayer::HISTORY.into()] });
        Ok(())
    }

    /// A write failure while stopping is the stop; otherwise the output's.
    fn interrupted(&self, e: io::Error) -> ImageError {
        if self.abort.stopped() { ImageError::Interrupted } else { ImageError::Output(e) }
    }

    fn put_header(&mut self, h: &Header<'_>) -> Result<(), ImageError> {
        self.head.clear();
        tar::encode_header(h, &mut self.head);
        self.out.write_all(&self.head).map_err(|e| self.interrupted(e))
    }

    fn pad(&mut self, size: u64) -> Result<(), ImageError> {
        self.out.write_all(&vec![0u8; tar::padding(size) as usize]).map_err(|e| self.interrupted(e))
    }

    fn store_layer(&mut self, i: usize) -> Result<(), ImageError> {
        let (conf, base, abort) = (self.conf, self.base, self.abort);
        let paths = &conf.store_layers[i];
        let mtime = conf.stamp.mtime;
        let index = self.records.len() + 1;
        self.progress.line(&format!("Creating layer {index} from paths: {}", paths_repr(paths)));
        let (known, check) = self.digests.take(i, abort)?;
        let precomputed = conf.store_layer_digests[i].is_some();
        // Into a file, a layer whose digest is not known yet is read once:
        // its length comes from the files' metadata, its header goes out
        // with a placeholder name and is rewritten when the digest is known.
        let one_pass = self.patch.filter(|_| !precomputed);
        if one_pass.is_none() {
            refuse_shadowing(base, &known.digest, || format!("store layer {index}"))?;
        }
        let size = match one_pass {
            Some(_) => layer::layer_size(paths, &conf.stamp).map_err(|source| ImageError::Layer { index, paths: paths_repr(paths), source })?,
            None => known.size,
        };
        let header_at = self.out.offset;
        let named = if one_pass.is_some() { "0".repeat(64) } else { known.digest.hex() };
        self.put_header(&outer_header(&format!("{named}/layer.tar"), size, mtime))?;
        let mut left = size;
        let stopped = || abort.stopped();
        let hash = if check.is_some() && one_pass.is_none() { pipe::Hash::Blake3 } else { pipe::Hash::Sha256 };
        let out = &mut self.out;
        let progress = self.progress;
        let streamed = pipe::run_hashed(paths, &conf.stamp, &stopped, hash, |chunk| {
            if chunk.len() as u64 > left {
                return Err(None);
            }
            out.write_all(chunk).map_err(Some)?;
            left -= chunk.len() as u64;
            progress.advance(chunk.len() as u64);
            Ok(())
        });
        let changed = |detail: String| {
            let mut detail = detail + &changed_since(paths, abort.started);
            if precomputed {
                detail += &format!("; the conf's {} entry is stale", crate::conf::DIGESTS_KEY);
            }
            match one_pass {
                Some(_) => ImageError::ChangedWhileWritten { index, paths: paths_repr(paths), detail },
                None => ImageError::Changed { index, paths: paths_repr(paths), expected: known.digest, detail },
            }
        };
        let digest = match streamed {
            Ok(_) if left != 0 => return Err(changed(format!("it came out {left} bytes shorter"))),
            Ok((Sum::Sha256(got), _)) if one_pass.is_some() => got,
            Ok((Sum::Blake3(got), _)) if check.is_some_and(|c| c != got) => {
                return Err(changed(format!(
                    "streamed bytes hash to blake3:{}, not the hashed bytes' blake3:{}",
                    got.to_hex(),
                    check.map(|c| c.to_hex().to_string()).unwrap_or_default()
                )));
            }
            Ok((Sum::Sha256(got), _)) if got != known.digest => {
                return Err(changed(format!("streamed bytes hash to {got}")));
            }
            Ok(_) => known.digest,
            Err(PipeError::Consumer(None)) => return Err(changed("it came out longer".into())),
            Err(PipeError::Consumer(Some(e))) => return Err(self.interrupted(e)),
            Err(PipeError::Stopped) => return Err(ImageError::Interrupted),
            Err(PipeError::Layer(LayerError::Changed { path, expected, actual })) => {
                return Err(changed(format!("{} changed size from {expected} to {actual}", path.display())));
            }
            Err(PipeError::Layer(source)) => {
                return Err(ImageError::Layer { index, paths: paths_repr(paths), source });
            }
        };
        let member = format!("{}/layer.tar", digest.hex());
        if let Some(p) = one_pass {
            refuse_shadowing(base, &digest, || format!("store layer {index}"))?;
            self.head.clear();
            tar::encode_header(&outer_header(&member, size, mtime), &mut self.head);
            self.out.flush().map_err(|e| self.interrupted(e))?;
            use std::os::unix::fs::FileExt;
            p.file.write_all_at(&self.head, p.start + header_at).map_err(|e| self.interrupted(e))?;
        }
        self.pad(size)?;
        self.records.push(LayerRecord { diff_id: digest, member, paths: paths.iter().map(|p| p.as_written.clone()).collect() });
        Ok(())
    }

    /// Copies `size` bytes from `src` to the output, returning their
    /// digest, or `None` if `src` ends early. `also` sees every byte too.
    fn copy_hashed(&mut self, src: &mut dyn Read, size: u64, also: &mut dyn Write) -> Result<Option<Digest>, CopyFail> {
        let mut hash = HashSink::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = src.read(&mut buf[..want]).map_err(CopyFail::Read)?;
            if n == 0 {
                return Ok(None);
            }
            self.out.write_all(&buf[..n]).map_err(CopyFail::Write)?;
            hash.write_all(&buf[..n]).map_err(CopyFail::Write)?;
            // A decoder that fails just means "not that compression".
            let _ = also.write_all(&buf[..n]);
            self.progress.advance(n as u64);
            left -= n as u64;
        }
        self.out.write_all(&vec![0u8; tar::padding(size) as usize]).map_err(CopyFail::Write)?;
        Ok(Some(hash.finish().digest))
    }

    fn base_layer(&mut self, base: &BaseImage, layer: &BaseLayer) -> Result<(), ImageError> {
        let fail = |what: String| base.layer_error(layer, what);
        self.put_header(&layer.member.python_header())?;
        if !layer.member.is_regular() {
            // A symlinked layer (older `docker save` dedups that way): tarfile
            // writes the link and no data.
            return Ok(());
        }
        let mut reader = base.layer_reader(layer).map_err(|e| fail(e.to_string()))?;
        // The diff_id is the digest of the uncompressed layer; a layer stored
        // compressed is checked through a decoder running alongside.
        let mut first = [0u8; 8];
        let n = reader.read(&mut first).map_err(|e| fail(e.to_string()))?;
        let content = ContentHasher::new(decode::sniff(&first[..n])).ok().flatten();
        let mut also = Tee::new(io::sink(), content);
        let mut src = io::Cursor::new(first[..n].to_vec()).chain(reader);
        let stored = match self.copy_hashed(&mut src, layer.member.size(), &mut also) {
            Ok(Some(d)) => d,
            Ok(None) => return Err(fail("the archive ends inside this layer".into())),
            Err(CopyFail::Read(e)) => return Err(fail(e.to_string())),
            Err(CopyFail::Write(e)) => return Err(self.interrupted(e)),
        };
        base.check_layer(layer, &stored, also.finish().1)
    }

    fn customisation_layer(&mut self, custom: &Customisation) -> Result<(), ImageError> {
        self.progress.line(&format!("Creating layer {} with customisation...", self.records.len() + 1));
        let (promised, _) = self.digests.take(self.conf.store_layers.len(), self.abort)?;
        let digest = promised.digest;
        refuse_shadowing(self.base, &digest, || "the customisation layer".into())?;
        let member = format!("{}/layer.tar", digest.hex());
        let (uname, gname) = custom.account_names();
        self.put_header(&Header {
            name: Cow::Borrowed(member.as_bytes()),
            mode: custom.mode,
            uid: custom.uid,
            gid: custom.gid,
            size: custom.size,
            mtime: self.conf.stamp.mtime,
            typeflag: tar::REGTYPE,
            uname: Cow::Borrowed(uname.as_bytes()),
            gname: Cow::Borrowed(gname.as_bytes()),
            ..Header::default()
        })?;
        let mut f = File::open(&custom.tar_path).map_err(|e| custom.fail(format!("cannot read layer.tar: {e}")))?;
        let got = match self.copy_hashed(&mut f, custom.size, &mut io::sink()) {
            Ok(Some(got)) => got,
            Ok(None) => return Err(custom.fail("layer.tar shrank while being written".into())),
            Err(CopyFail::Read(e)) => return Err(custom.fail(format!("cannot read layer.tar: {e}"))),
            Err(CopyFail::Write(e)) => return Err(self.interrupted(e)),
        };
        if got != digest {
            return Err(custom.fail(format!("layer.tar changed while being written (now {got})")));
        }
        self.records.push(LayerRecord { diff_id: digest, member, paths: vec![custom.as_written.clone()] });
        Ok(())
    }

    fn manifests(&mut self, repo_tag: &str) -> Result<(), ImageError> {
        self.progress.line("Adding manifests...");
        let config_json = config_bytes(self.conf, self.base, &self.records)?;
        let config_member = format!("{}.json", Digest::of(&config_json).hex());
        let manifest = config::manifest(&config_member, repo_tag, &self.records);
        let mtime = self.conf.stamp.mtime;
        for (name, bytes) in [(config_member.as_str(), &config_json), ("manifest.json", &manifest)] {
            self.head.clear();
            tar::encode_header(&outer_header(name, bytes.len() as u64, mtime), &mut self.head);
            self.head.extend_from_slice(bytes);
            self.head.resize(self.head.len() + tar::padding(bytes.len() as u64) as usize, 0);
            self.out.write_all(&self.head).map_err(|e| self.interrupted(e))?;
        }
        let end = tar::end_of_archive_len(self.out.offset);
        layer::write_zeros(&mut self.out, end).map_err(|e| self.interrupted(e))?;
        self.out.flush().map_err(|e| self.interrupted(e))?;
        self.progress.line("Done.");
        Ok(())
    }
}

enum CopyFail {
    Read(io::Error),
    Write(io::Error),
}

/// Names what in `paths` changed (ctime) since `since`: the file that was
/// rewritten, or the directory a file vanished from. Only on the error path.
fn changed_since(paths: &[StorePath], since: std::time::SystemTime) -> String {
    // File times come from a coarse clock that may lag a few milliseconds.
    let since = since - std::time::Duration::from_millis(20);
    let mut found = Vec::new();
    for p in paths {
        for entry in crate::layer::walk::Walk::new(&p.fs_path, p.member_name.clone()).flatten() {
            let Ok(meta) = std::fs::symlink_metadata(&entry.path) else {
                continue;
            };
            let ctime = std::time::UNIX_EPOCH + std::time::Duration::new(meta.ctime().max(0) as u64, meta.ctime_nsec().clamp(0, 999_999_999) as u32);
            if ctime >= since {
                found.push(entry.path.display().to_string());
            }
            if found.len() > 3 {
                break;
            }
        }
    }
    match found.len() {
        0 => String::new(),
        _ => format!("; changed since the stream began: {}", found.join(", ")),
    }
}

/// The hashers' results, one slot per job: a few bytes each, where a
/// channel per layer cost a kilobyte (32,000 layers, 32 MiB).
struct Slots {
    done: std::sync::Mutex<Vec<Option<Hashed>>>,
    ready: std::sync::Condvar,
}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots { done: std::sync::Mutex::new((0..n).map(|_| None).collect()), ready: std::sync::Condvar::new() }
    }

    fn put(&self, i: usize, result: Hashed) {
        lock(&self.done)[i] = Some(result);
        self.ready.notify_all();
    }

    /// Job `i`'s result. Every job reports one, but a stop is also noticed
    /// while waiting, so no wait can outlast the stream.
    fn take(&self, i: usize, abort: &Abort<'_>) -> Hashed {
        let mut done = lock(&self.done);
        loop {
            if let Some(r) = done[i].take() {
                return r;
            }
            if abort.stopped() {
                return Err(ImageError::Interrupted);
            }
            done = self.ready.wait_timeout(done, std::time::Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

/// `docker-archive:PATH[:NAME:TAG]`: what `stream -o` writes.
pub struct DockerArchive<'a> {
    pub path: &'a std::path::Path,
    pub reference: Option<&'a str>,
}

impl super::Destination for DockerArchive<'_> {
    fn write(&self, job: &super::Job<'_>) -> Result<super::Written, CopyError> {
        let source = job.single("a docker-archive")?;
        let (conf, base) = source.conf("a docker-archive")?;
        let tag = self.reference.map(str::to_string).or_else(|| job.repo_tag(source)).unwrap_or_else(|| conf.repo_tag.clone());
        if let Some(w) = crate::reference::refusal_warning(&tag) {
            job.progress.line(&w);
        }
        write_file(self.path, conf, base, &tag, job.opts.fsync, job.progress, job.cancel)?;
        Ok(super::Written::default())
    }
}

/// The image goes to `path` through [`OutputFile`]: a regular file appears
/// only once the image is complete; a FIFO or device is written into.
pub fn write_file(
    path: &std::path::Path,
    conf: &Conf,
    base: Option<&BaseImage>,
    repo_tag: &str,
    fsync: bool,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(), CopyError> {
    let out = OutputFile::create(path, Accept::Any)?;
    let mut w = io::BufWriter::with_capacity(64 << 10, out.file());
    let named = |source| CopyError::Write { target: path.display().to_string(), source };
    // A new file (not a FIFO or device written into) takes each layer in
    // one pass, its header rewritten in place.
    match out.temp_path() {
        Some(_) => stream_seekable(conf, base, repo_tag, &mut w, Patch { file: out.file(), start: 0 }, progress, cancel),
        None => stream(conf, base, repo_tag, &mut w, progress, cancel),
    }
    .map_err(named)?;
    w.flush().map_err(|e| named(ImageError::Output(e)))?;
    drop(w);
    if fsync {
        out.commit()?
    } else {
        out.commit_unsynced()?
    }
    Ok(())
}

/// The image into an open file (stdout): a regular file it may write at
/// offsets of takes each layer in one pass; a pipe gets two.
pub fn write_into(
    file: &File,
    what: &str,
    conf: &Conf,
    base: Option<&BaseImage>,
    repo_tag: &str,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(), CopyError> {
    // Smaller than a layer chunk, so chunks go straight to a pipe.
    let w = io::BufWriter::with_capacity(64 << 10, file);
    match seekable_at(file) {
        Some(start) => stream_seekable(conf, base, repo_tag, w, Patch { file, start }, progress, cancel),
        None => stream(conf, base, repo_tag, w, progress, cancel),
    }
    .map_err(|source| CopyError::Write { target: what.into(), source })
}

/// Where the archive starts, if `file` is a regular file we may write at
/// offsets of (not opened for appending: pwrite would append there).
fn seekable_at(file: &File) -> Option<u64> {
    use std::io::Seek;
    let meta = file.metadata().ok()?;
    let flags = nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_GETFL).ok()?;
    if !meta.is_file() || flags & libc::O_APPEND != 0 {
        return None;
    }
    (&*file).stream_position().ok()
}
