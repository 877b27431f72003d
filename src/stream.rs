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

use crate::base_image::{BaseImage, BaseLayer};
use crate::conf::Conf;
use crate::image_config::{self, ConfigError, LayerRecord};
use crate::layer::{self, LayerError, StorePath};
use crate::layer_pipe::{self, PipeError};
use crate::pyjson::py_repr_str_list;
use crate::stop::Cancelled;
use crate::tar::{self, Header};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("layer {index} (store paths {paths}): {source}")]
    Layer { index: usize, paths: String, source: LayerError },
    #[error(
        "layer {index} (store paths {paths}) changed between hashing and streaming: its bytes no longer match \
         sha256:{expected} ({detail}); the image written so far is incomplete"
    )]
    Changed { index: usize, paths: String, expected: String, detail: String },
    #[error("layer {index} (store paths {paths}) changed while it was being written ({detail}); the image written so far is incomplete")]
    ChangedWhileWritten { index: usize, paths: String, detail: String },
    #[error("customisation layer {dir}: {what}")]
    Customisation { dir: PathBuf, what: String },
    #[error("base layer {name} of {image}: {what}")]
    BaseLayer { image: PathBuf, name: String, what: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}", output_message(.0))]
    Output(#[source] io::Error),
    #[error("interrupted; the image written so far is incomplete")]
    Interrupted,
}

fn output_message(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::BrokenPipe {
        "the output was closed before the image was complete (did the reader, e.g. `docker load`, exit?)".into()
    } else {
        format!("cannot write the image: {e}")
    }
}

/// The most layers runtimes mount: Docker 20.10 loads 125 and refuses 126
/// ("max depth exceeded"); podman 4.3 loads 130 but cannot run them.
pub const RUNTIME_LAYER_LIMIT: usize = 125;

/// The warning `stream` and `conf` print for an image of `layers` layers.
pub fn layer_count_warning(layers: usize) -> Option<String> {
    (layers > RUNTIME_LAYER_LIMIT).then(|| {
        format!(
            "layered-image: warning: the image has {layers} layers; Docker refuses images of more than {RUNTIME_LAYER_LIMIT} \
             (\"max depth exceeded\") and podman cannot run them (lower maxLayers)"
        )
    })
}

/// Where progress goes: nixpkgs' lines on stderr, and a byte count when
/// stderr is a terminal.
pub trait Progress: Sync {
    fn line(&self, text: &str);
    fn advance(&self, _bytes: u64) {}
    /// `copy` makes layers several at a time: one starts (its tar's
    /// length, when known), advances, and is done.
    fn layer_started(&self, _index: usize, _size: Option<u64>) {}
    fn layer_advance(&self, _index: usize, _bytes: u64) {}
    fn layer_finished(&self, _index: usize) {}
}

/// The customisation layer as nixpkgs prepares it: `layer.tar` and the
/// `checksum` that `sha256sum` wrote beside it.
pub(crate) struct Customisation {
    pub(crate) as_written: String,
    pub(crate) tar_path: PathBuf,
    pub(crate) checksum: String,
    pub(crate) size: u64,
    mode: u32,
    uid: u64,
    gid: u64,
}

pub(crate) fn customisation(conf: &Conf) -> Result<Customisation, StreamError> {
    let (as_written, dir) = &conf.customisation_layer;
    let fail = |what: String| StreamError::Customisation { dir: dir.clone(), what };
    let checksum_path = dir.join("checksum");
    // A checksum is 65 bytes: a FIFO would block, a huge file fill memory.
    let text = crate::input::read_limited(&checksum_path, 1024).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => fail(format!("{} does not hold a sha256 (64 lowercase hex digits): it is {e}", checksum_path.display())),
        _ => fail(format!("cannot read {}: {e}", checksum_path.display())),
    })?;
    let checksum = String::from_utf8_lossy(&text).trim().to_string();
    if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        let shown: String = checksum.chars().take(80).collect();
        return Err(fail(format!("{} does not hold a sha256 (64 lowercase hex digits): {:?}", checksum_path.display(), shown)));
    }
    let tar_path = dir.join("layer.tar");
    let meta = std::fs::symlink_metadata(&tar_path).map_err(|e| fail(format!("cannot read {}: {e}", tar_path.display())))?;
    if !meta.file_type().is_file() {
        return Err(fail(format!("{} is not a regular file", tar_path.display())));
    }
    Ok(Customisation {
        as_written: as_written.clone(),
        tar_path,
        checksum,
        size: meta.len(),
        mode: meta.mode() & 0o7777,
        uid: u64::from(meta.uid()),
        gid: u64::from(meta.gid()),
    })
}

/// `gettarinfo` fills names from this machine's user and group databases.
fn account_names(uid: u64, gid: u64) -> (String, String) {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid as u32)).ok().flatten().map(|u| u.name);
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid as u32)).ok().flatten().map(|g| g.name);
    (user.unwrap_or_default(), group.unwrap_or_default())
}

/// The stream's stop: a signal, or the first failure of a hasher.
type Abort<'a> = crate::stop::Stop<'a, StreamError>;

/// A sink that hashes and counts what it is given.
struct HashSink<'a> {
    hasher: Sha256,
    len: u64,
    abort: &'a Abort<'a>,
}

impl Write for HashSink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.abort.stopped() {
            return Err(io::Error::other(Cancelled));
        }
        self.hasher.update(data);
        self.len += data.len() as u64;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

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

/// The image config's bytes for `conf`'s layers `records` on top of
/// `base` (whose Env it inherits): what `stream` writes, and so what
/// every destination of `copy` names the image by.
pub(crate) fn config_bytes(conf: &Conf, base: Option<&BaseImage>, records: &[LayerRecord]) -> Result<Vec<u8>, StreamError> {
    let config = match base {
        Some(base) => image_config::overlay_env(&base.config, conf.config.clone())?,
        None => conf.config.clone(),
    };
    Ok(image_config::image_config(&conf.created, &conf.architecture, conf.variant.as_deref(), config, records))
}

pub(crate) fn paths_repr(paths: &[StorePath]) -> String {
    py_repr_str_list(&paths.iter().map(|p| p.as_written.as_str()).collect::<Vec<_>>())
}

/// A layer's hex SHA-256 and length, and the hex BLAKE3 of the same bytes
/// when the first pass took it (the second pass then checks that instead).
type Digest32 = Result<(String, u64, Option<String>), StreamError>;

/// Runs `job(0..n)` on one worker per core, in index order. Every index is
/// handed to `job` exactly once, even after the stream stopped (`job` then
/// reports the stop instead of working), so that whoever waits for a
/// job's result always gets one.
fn spawn_hashers<'s, 'e: 's>(
    scope: &'s std::thread::Scope<'s, 'e>,
    n: usize,
    abort: &'s Abort<'s>,
    job: impl Fn(usize) -> Result<(), StreamError> + Send + Sync + 's,
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
fn hash_store_layer(conf: &Conf, layer: usize, index: usize, abort: &Abort<'_>) -> Digest32 {
    let paths = &conf.store_layers[layer];
    let stopped = || abort.stopped();
    let mut check = blake3::Hasher::new();
    let (sha256, len) = layer_pipe::run(paths, &conf.stamp, &stopped, |chunk| {
        check.update(chunk);
        Ok::<(), ()>(())
    })
    .map_err(|e| match e {
        PipeError::Layer(source) => StreamError::Layer { index, paths: paths_repr(paths), source },
        PipeError::Consumer(()) | PipeError::Stopped => StreamError::Interrupted,
    })?;
    Ok((sha256, len, Some(check.finalize().to_hex().to_string())))
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
) -> Result<(), StreamError> {
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
) -> Result<(), StreamError> {
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
) -> Result<(), StreamError> {
    let custom = customisation(conf)?;
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
                slots.put(job, Err(StreamError::Interrupted));
                return Err(StreamError::Interrupted);
            }
            let result = match (job < n_store).then(|| known(job)) {
                Some(Some(d)) => Ok((d.sha256.clone(), d.size, None)),
                // Taken in one pass by the writer.
                Some(None) if patch.is_some() => Ok((String::new(), 0, None)),
                Some(None) => hash_store_layer(conf, job, base_count + job + 1, &abort),
                None => hash_file(&custom, &mut HashSink { hasher: Sha256::new(), len: 0, abort: &abort }).map(|(d, n)| (d, n, None)),
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
                    slots.put(job, Err(StreamError::Interrupted));
                    Err(StreamError::Interrupted)
                }
            }
        });
        let result = write_archive(conf, base, repo_tag, out, patch, progress, &abort, &custom, &slots);
        // Stop the hashers either way; on failure their work is moot.
        abort.halt();
        result.map_err(|e| abort.take().unwrap_or(e))
    })
}

/// Each store layer's digest, computed in parallel: what
/// [`Conf::store_layer_digests`](crate::conf::Conf) records.
pub fn store_layer_digests(conf: &Conf, cancel: &AtomicBool) -> Result<Vec<crate::conf::LayerDigest>, StreamError> {
    let abort = Abort::new(cancel);
    let n = conf.store_layers.len();
    let slots: Vec<std::sync::Mutex<Option<crate::conf::LayerDigest>>> = (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        spawn_hashers(scope, n, &abort, |layer| {
            if abort.stopped() {
                return Err(StreamError::Interrupted);
            }
            let (sha256, size, _) = hash_store_layer(conf, layer, layer + 1, &abort)?;
            *slots[layer].lock().unwrap_or_else(|p| p.into_inner()) = Some(crate::conf::LayerDigest { sha256, size, ..Default::default() });
            Ok(())
        });
    });
    if let Some(e) = abort.take() {
        return Err(e);
    }
    slots.into_iter().map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()).ok_or(StreamError::Interrupted)).collect()
}

fn hash_file(custom: &Customisation, sink: &mut HashSink<'_>) -> Result<(String, u64), StreamError> {
    let fail = |what: String| StreamError::Customisation { dir: custom.tar_path.parent().unwrap_or(&custom.tar_path).into(), what };
    let mut f = File::open(&custom.tar_path).map_err(|e| fail(format!("cannot read {}: {e}", custom.tar_path.display())))?;
    let mut head = [0u8; 8];
    let n = f.read(&mut head).map_err(|e| fail(format!("cannot read {}: {e}", custom.tar_path.display())))?;
    if decoder_for(&head[..n]).is_some() {
        // docker would hash what it decompresses to; nixpkgs' checksum is
        // of the uncompressed tar it makes. Either way the layer would lie.
        return Err(fail(format!(
            "{} is compressed; the customisation layer must be the uncompressed tar its checksum names",
            custom.tar_path.display()
        )));
    }
    sink.write_all(&head[..n]).map_err(|e| fail(format!("cannot read {}: {e}", custom.tar_path.display())))?;
    io::copy(&mut f, sink).map_err(|e| fail(format!("cannot read {}: {e}", custom.tar_path.display())))?;
    let digest = hex::encode(sink.hasher.clone().finalize());
    if digest != custom.checksum {
        return Err(fail(format!(
            "layer.tar hashes to sha256:{digest}, but its checksum file says {}; rebuild the customisation layer",
            custom.checksum
        )));
    }
    Ok((digest, sink.len))
}

#[allow(clippy::too_many_arguments)]
fn write_archive<W: Write>(
    conf: &Conf,
    base: Option<&BaseImage>,
    repo_tag: &str,
    out: W,
    patch: Option<Patch<'_>>,
    progress: &dyn Progress,
    abort: &Abort<'_>,
    custom: &Customisation,
    digests: &Slots,
) -> Result<(), StreamError> {
    let mtime = conf.stamp.mtime;
    let mut out = Output { inner: out, offset: 0, abort };
    let mut head = Vec::with_capacity(2048);
    let mut records: Vec<LayerRecord> = Vec::new();
    let interrupted = |e: io::Error| {
        if abort.stopped() { StreamError::Interrupted } else { StreamError::Output(e) }
    };

    match base {
        None => progress.line("No 'fromImage' provided"),
        Some(base) => {
            for (num, layer) in base.layers.iter().enumerate() {
                copy_base_layer(base, layer, &mut out, &mut head, progress).map_err(|e| match e {
                    CopyError::Io(e) => interrupted(e),
                    CopyError::Stream(e) => e,
                })?;
                progress.line(&format!("Adding base layer {} from {}", num + 1, layer.name));
                records.push(LayerRecord { diff_id: layer.diff_id.clone(), member: layer.name.clone(), paths: vec![layer.name.clone()] });
            }
        }
    }

    for (i, paths) in conf.store_layers.iter().enumerate() {
        let index = records.len() + 1;
        progress.line(&format!("Creating layer {index} from paths: {}", paths_repr(paths)));
        let (known_digest, known_size, check) = digests.take(i, abort)?;
        let precomputed = conf.store_layer_digests[i].is_some();
        // Into a file, a layer whose digest is not known yet is read once:
        // its length comes from the files' metadata, its header goes out
        // with a placeholder name and is rewritten when the digest is known.
        let one_pass = patch.filter(|_| !precomputed);
        if one_pass.is_none() {
            refuse_shadowing(base, &known_digest, || format!("store layer {index}"))?;
        }
        let size = match one_pass {
            Some(_) => layer::layer_size(paths, &conf.stamp).map_err(|source| StreamError::Layer { index, paths: paths_repr(paths), source })?,
            None => known_size,
        };
        let header_at = out.offset;
        let named = if one_pass.is_some() { "0".repeat(64) } else { known_digest.clone() };
        head.clear();
        tar::encode_header(&outer_header(&format!("{named}/layer.tar"), size, mtime), &mut head);
        out.write_all(&head).map_err(interrupted)?;
        let mut left = size;
        let stopped = || abort.stopped();
        let hash = if check.is_some() && one_pass.is_none() { layer_pipe::Hash::Blake3 } else { layer_pipe::Hash::Sha256 };
        let streamed = layer_pipe::run_hashed(paths, &conf.stamp, &stopped, hash, |chunk| {
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
                Some(_) => StreamError::ChangedWhileWritten { index, paths: paths_repr(paths), detail },
                None => StreamError::Changed { index, paths: paths_repr(paths), expected: known_digest.clone(), detail },
            }
        };
        let digest = match streamed {
            Ok(_) if left != 0 => return Err(changed(format!("it came out {left} bytes shorter"))),
            Ok((got, _)) if one_pass.is_some() => got,
            Ok((got, _)) if check.as_ref().is_some_and(|c| *c != got) => {
                return Err(changed(format!("streamed bytes hash to blake3:{got}, not the hashed bytes' blake3:{}", check.as_deref().unwrap_or(""))));
            }
            Ok((got, _)) if check.is_none() && got != known_digest => {
                return Err(changed(format!("streamed bytes hash to sha256:{got}")));
            }
            Ok(_) => known_digest.clone(),
            Err(PipeError::Consumer(None)) => return Err(changed("it came out longer".into())),
            Err(PipeError::Consumer(Some(e))) => return Err(interrupted(e)),
            Err(PipeError::Stopped) => return Err(StreamError::Interrupted),
            Err(PipeError::Layer(LayerError::Changed { path, expected, actual })) => {
                return Err(changed(format!("{} changed size from {expected} to {actual}", path.display())));
            }
            Err(PipeError::Layer(source)) => {
                return Err(StreamError::Layer { index, paths: paths_repr(paths), source });
            }
        };
        let member = format!("{digest}/layer.tar");
        if let Some(p) = one_pass {
            refuse_shadowing(base, &digest, || format!("store layer {index}"))?;
            head.clear();
            tar::encode_header(&outer_header(&member, size, mtime), &mut head);
            out.flush().map_err(interrupted)?;
            use std::os::unix::fs::FileExt;
            p.file.write_all_at(&head, p.start + header_at).map_err(interrupted)?;
        }
        out.write_all(&vec![0u8; tar::padding(size) as usize]).map_err(interrupted)?;
        records.push(LayerRecord { diff_id: digest, member, paths: paths.iter().map(|p| p.as_written.clone()).collect() });
    }

    progress.line(&format!("Creating layer {} with customisation...", records.len() + 1));
    let (digest, _, _) = digests.take(conf.store_layers.len(), abort)?;
    refuse_shadowing(base, &digest, || "the customisation layer".into())?;
    copy_customisation(custom, &digest, mtime, &mut out, &mut head, progress).map_err(|e| match e {
        CopyError::Io(e) => interrupted(e),
        CopyError::Stream(e) => e,
    })?;
    records.push(LayerRecord { diff_id: digest.clone(), member: format!("{digest}/layer.tar"), paths: vec![custom.as_written.clone()] });

    progress.line("Adding manifests...");
    let config_json = config_bytes(conf, base, &records)?;
    let config_member = format!("{}.json", hex::encode(Sha256::digest(&config_json)));
    let manifest = image_config::manifest(&config_member, repo_tag, &records);
    for (name, bytes) in [(config_member.as_str(), &config_json), ("manifest.json", &manifest)] {
        head.clear();
        tar::encode_header(&outer_header(name, bytes.len() as u64, mtime), &mut head);
        head.extend_from_slice(bytes);
        head.resize(head.len() + tar::padding(bytes.len() as u64) as usize, 0);
        out.write_all(&head).map_err(interrupted)?;
    }
    let end = tar::end_of_archive_len(out.offset);
    layer::write_zeros(&mut out, end).map_err(interrupted)?;
    out.flush().map_err(interrupted)?;
    progress.line("Done.");
    Ok(())
}

/// A layer member named like a base layer of other content would make
/// `docker load` read one for the other.
pub(crate) fn refuse_shadowing(base: Option<&BaseImage>, digest: &str, what: impl Fn() -> String) -> Result<(), StreamError> {
    match base.and_then(|b| b.shadowed_by(digest).map(|l| (b, l))) {
        None => Ok(()),
        Some((b, l)) => Err(StreamError::BaseLayer {
            image: b.path.clone(),
            name: l.name.clone(),
            what: format!(
                "{} would be written under the same name (or a path inside it) with other content (its diff_id is sha256:{})",
                what(),
                l.diff_id
            ),
        }),
    }
}

/// Names what in `paths` changed (ctime) since `since`: the file that was
/// rewritten, or the directory a file vanished from. Only on the error path.
fn changed_since(paths: &[StorePath], since: std::time::SystemTime) -> String {
    // File times come from a coarse clock that may lag a few milliseconds.
    let since = since - std::time::Duration::from_millis(20);
    let mut found = Vec::new();
    for p in paths {
        for entry in crate::walk::Walk::new(&p.fs_path, p.member_name.clone()).flatten() {
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
    done: std::sync::Mutex<Vec<Option<Digest32>>>,
    ready: std::sync::Condvar,
}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots { done: std::sync::Mutex::new((0..n).map(|_| None).collect()), ready: std::sync::Condvar::new() }
    }

    fn put(&self, i: usize, result: Digest32) {
        self.done.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(result);
        self.ready.notify_all();
    }

    /// Job `i`'s result. Every job reports one, but a stop is also noticed
    /// while waiting, so no wait can outlast the stream.
    fn take(&self, i: usize, abort: &Abort<'_>) -> Result<(String, u64, Option<String>), StreamError> {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = done[i].take() {
                return r;
            }
            if abort.stopped() {
                return Err(StreamError::Interrupted);
            }
            done = self.ready.wait_timeout(done, std::time::Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

enum CopyError {
    Io(io::Error),
    Stream(StreamError),
}

impl From<io::Error> for CopyError {
    fn from(e: io::Error) -> Self {
        CopyError::Io(e)
    }
}

/// Copies `size` bytes from `src` to `out`, returning their sha256.
fn copy_hashed<W: Write>(
    src: &mut dyn Read,
    size: u64,
    out: &mut Output<W>,
    progress: &dyn Progress,
    mut also: Option<&mut dyn Write>,
) -> Result<Option<String>, CopyError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = src.read(&mut buf[..want])?;
        if n == 0 {
            return Ok(None);
        }
        out.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        if let Some(w) = also.as_mut() {
            // A decoder that fails just means "not that compression".
            let _ = w.write_all(&buf[..n]);
        }
        progress.advance(n as u64);
        left -= n as u64;
    }
    out.write_all(&vec![0u8; tar::padding(size) as usize])?;
    Ok(Some(hex::encode(hasher.finalize())))
}

/// A writer that hashes what a decompressor hands it.
pub(crate) struct HashWriter(pub(crate) Sha256);
impl Write for HashWriter {
    fn write(&mut self, d: &[u8]) -> io::Result<usize> {
        self.0.update(d);
        Ok(d.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn copy_base_layer<W: Write>(
    base: &BaseImage,
    layer: &BaseLayer,
    out: &mut Output<W>,
    head: &mut Vec<u8>,
    progress: &dyn Progress,
) -> Result<(), CopyError> {
    let fail = |what: String| CopyError::Stream(StreamError::BaseLayer { image: base.path.clone(), name: layer.name.clone(), what });
    head.clear();
    tar::encode_header(&layer.member.header(), head);
    out.write_all(head)?;
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
    let mut decoded = decoder_for(&first[..n]);
    let mut src = io::Cursor::new(first[..n].to_vec()).chain(reader);
    let got = copy_hashed(&mut src, layer.member.size, out, progress, decoded.as_mut().map(|d| d as &mut dyn Write))?
        .ok_or_else(|| fail("the archive ends inside this layer".into()))?;
    // docker hashes what the layer decompresses to: a compressed layer's
    // diff_id must be the digest of its content, never of its stored bytes.
    let Some(d) = decoded else {
        if got == layer.diff_id {
            return Ok(());
        }
        return Err(fail(format!("its content hashes to sha256:{got}, but the image config's diff_id is sha256:{}", layer.diff_id)));
    };
    let content = d.finish().map(|h| hex::encode(h.0.finalize()));
    match content {
        Ok(c) if c == layer.diff_id => Ok(()),
        _ if got == layer.diff_id => Err(fail(format!(
            "it is compressed, and its diff_id sha256:{got} is the digest of its compressed bytes; docker checks the digest of \
             what it decompresses to"
        ))),
        Ok(c) => {
            Err(fail(format!("it decompresses to content that hashes to sha256:{c}, but the image config's diff_id is sha256:{}", layer.diff_id)))
        }
        Err(e) => Err(fail(format!("it looks compressed but cannot be decompressed ({e}); its diff_id cannot be checked"))),
    }
}

/// Streaming decoders for a compressed base layer, feeding a hasher.
pub(crate) enum Decoder {
    Gzip(flate2::write::MultiGzDecoder<HashWriter>),
    Zstd(zstd::stream::write::Decoder<'static, HashWriter>),
    Xz(xz2::write::XzDecoder<HashWriter>),
    Bzip2(bzip2::write::BzDecoder<HashWriter>),
}

pub(crate) fn decoder_for(head: &[u8]) -> Option<Decoder> {
    use crate::base_image::{Compression, sniff};
    let h = || HashWriter(Sha256::new());
    match sniff(head) {
        Compression::None => None,
        Compression::Gzip => Some(Decoder::Gzip(flate2::write::MultiGzDecoder::new(h()))),
        Compression::Zstd => zstd::stream::write::Decoder::new(h()).ok().map(Decoder::Zstd),
        Compression::Xz => Some(Decoder::Xz(xz2::write::XzDecoder::new_multi_decoder(h()))),
        Compression::Bzip2 => Some(Decoder::Bzip2(bzip2::write::BzDecoder::new(h()))),
    }
}

impl Write for Decoder {
    fn write(&mut self, d: &[u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(w) => w.write(d),
            Decoder::Zstd(w) => w.write(d),
            Decoder::Xz(w) => w.write(d),
            Decoder::Bzip2(w) => w.write(d),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Decoder {
    pub(crate) fn finish(self) -> io::Result<HashWriter> {
        match self {
            Decoder::Gzip(w) => w.finish(),
            Decoder::Zstd(mut w) => {
                w.flush()?;
                Ok(w.into_inner())
            }
            Decoder::Xz(mut w) => w.finish(),
            Decoder::Bzip2(mut w) => w.finish(),
        }
    }
}

fn copy_customisation<W: Write>(
    custom: &Customisation,
    digest: &str,
    mtime: i64,
    out: &mut Output<W>,
    head: &mut Vec<u8>,
    progress: &dyn Progress,
) -> Result<(), CopyError> {
    let dir = custom.tar_path.parent().unwrap_or(&custom.tar_path).to_path_buf();
    let fail = |what: String| CopyError::Stream(StreamError::Customisation { dir: dir.clone(), what });
    let member = format!("{digest}/layer.tar");
    let (uname, gname) = account_names(custom.uid, custom.gid);
    let header = Header {
        name: Cow::Borrowed(member.as_bytes()),
        mode: custom.mode,
        uid: custom.uid,
        gid: custom.gid,
        size: custom.size,
        mtime,
        typeflag: tar::REGTYPE,
        uname: Cow::Borrowed(uname.as_bytes()),
        gname: Cow::Borrowed(gname.as_bytes()),
        ..Header::default()
    };
    head.clear();
    tar::encode_header(&header, head);
    out.write_all(head)?;
    let mut f = File::open(&custom.tar_path).map_err(|e| fail(format!("cannot read layer.tar: {e}")))?;
    let got = copy_hashed(&mut f, custom.size, out, progress, None)?.ok_or_else(|| fail("layer.tar shrank while being written".into()))?;
    if got != digest {
        return Err(fail(format!("layer.tar changed while being written (now sha256:{got})")));
    }
    Ok(())
}
