//! An image as content-addressed blobs: each layer produced once (tar
//! bytes, compression, uncompressed and compressed digests in one pass)
//! into a [`BlobStore`], then the config and the manifest.
//!
//! Layers run in parallel, several at a time, and gzip or zstd spreads
//! each layer over every core as well. A layer whose blob digest is known
//! beforehand (the conf's precomputed digests) and already in the store is
//! not read at all; any layer that is produced is checked against what the
//! conf, the base image or the checksum file promised, and a mismatch
//! leaves nothing committed under a wrong name.

use crate::blob::cache::BlobCache;
use crate::blob::compress::{Budget, Compression, Encoder, GZIP_DEFAULT_LEVEL, ZSTD_DEFAULT_LEVEL};
use crate::blob::layer_check;
use crate::blob::{BlobStore, BlobWriter, Hashing, StoreError};
use crate::conf::{Conf, DIGESTS_KEY, LayerDigest};
use crate::digest::{BlobDigest, Digest};
use crate::image::base::{BaseImage, BaseLayer, check_diff_id};
use crate::image::config::LayerRecord;
use crate::image::customisation::Customisation;
use crate::image::decode::{self, ContentHasher, Tee};
use crate::image::manifest::{self, Blob};
use crate::image::users::{UsersLayer, users_layer};
use crate::image::{ImageError, Progress, config_bytes, paths_repr};
use crate::layer::pipe::{self, PipeError};
use crate::layer::{Stamp, StorePath};
use crate::stop::{Cancelled, lock};
use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start {0} compression threads: {1}")]
    Threads(usize, String),
}

/// How blobs are made.
#[derive(Debug, Clone)]
pub struct Options {
    pub compression: Compression,
    /// Threads for compression, and layers produced at once.
    pub jobs: usize,
    /// Attempts per layer when its store fails in a way that may pass.
    pub retries: u32,
    /// What layers compressed to in earlier runs (see [`crate::blob::cache`]).
    pub blob_cache: Option<BlobCache>,
    /// A layer copied from another image keeps its gzip or zstd as it
    /// is (skopeo's default); only an uncompressed one takes `compression`.
    pub keep_compression: bool,
}

/// What happened to a layer's blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Produced and stored.
    Written,
    /// Its digest was known and the store had it: not read at all.
    Present,
    /// Read once to take its diff_id, whose blob the blob cache knew and
    /// the store had: nothing compressed or written.
    Cached,
}

/// A layer of the image as a blob.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// The uncompressed tar: the image config's diff_id.
    pub diff_id: BlobDigest,
    pub blob: Blob,
    pub fate: Fate,
    /// What its history comment lists.
    pub paths: Vec<String>,
}

/// The image written: its layers, config and manifest.
#[derive(Debug, Clone)]
pub struct Image {
    pub layers: Vec<LayerBlob>,
    pub config: Blob,
    pub config_bytes: Vec<u8>,
    pub manifest: BlobDigest,
    pub manifest_bytes: Vec<u8>,
}

/// A layer of an image read from elsewhere (`copy SOURCE DEST`): its
/// blob as stored, and what the blob and its content must hash to.
pub struct Foreign<'a> {
    /// The source image, for messages.
    pub image: String,
    /// Its name in the source: the blob's file or member name.
    pub name: String,
    pub diff_id: Digest,
    /// The blob's digest and size, where the source's manifest names them.
    pub stored: Option<BlobDigest>,
    /// Its compression, when the manifest's media type says which.
    pub compression: Option<decode::Compression>,
    /// Its media type in the source's manifest.
    pub media_type: Option<String>,
    pub open: Box<dyn Fn() -> io::Result<Box<dyn Read + 'a>> + Sync + 'a>,
}

/// A layer of the image, in order, with what producing it needs.
enum Source<'a, 'f> {
    Image(&'a Foreign<'f>),
    Base(&'a BaseImage, &'a BaseLayer),
    Store { paths: &'a [StorePath], stamp: &'a Stamp, known: Option<&'a LayerDigest> },
    Customisation(&'a Customisation, Option<&'a LayerDigest>),
    Users(&'a UsersLayer),
}

type Stop<'a> = crate::stop::Stop<'a, ProduceError>;

/// The layers of `conf`'s image on top of `base`, in order.
fn sources<'a>(conf: &'a Conf, base: Option<&'a BaseImage>, custom: &'a Customisation, users: Option<&'a UsersLayer>) -> Vec<Source<'a, 'a>> {
    let mut sources: Vec<Source> = base.map(|b| b.layers.iter().map(|l| Source::Base(b, l)).collect()).unwrap_or_default();
    sources.extend(conf.store_layers.iter().zip(&conf.store_layer_digests).map(|(paths, known)| Source::Store {
        paths,
        stamp: &conf.stamp,
        known: known.as_ref(),
    }));
    sources.push(Source::Customisation(custom, conf.customisation_layer_digest.as_ref()));
    sources.extend(users.map(Source::Users));
    sources
}

/// Writes the image of `conf` (on top of `base`) into `store` and returns
/// what it wrote. Naming the image (a tag, an index entry) is the
/// destination's business, afterwards.
pub fn write_image(
    conf: &Conf,
    base: Option<&BaseImage>,
    store: &dyn BlobStore,
    opts: &Options,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Image, ProduceError> {
    let custom = Customisation::load(conf)?;
    let users = users_layer(conf, base, &custom)?;
    let layers = write_layers(&sources(conf, base, &custom, users.as_ref()), store, opts, progress, cancel)?;
    let records: Vec<LayerRecord> =
        layers.iter().map(|l| LayerRecord { diff_id: l.diff_id.digest, member: String::new(), paths: l.paths.clone() }).collect();
    // The very bytes the docker-archive holds, so the image ID is nixpkgs'.
    finish_image(config_bytes(conf, base, &records)?, layers, store)
}

/// Writes the image whose config is `config_bytes` and whose layers are
/// `layers` (read from another image) into `store`: blobs compressed as
/// asked are copied as they are, others decompressed and compressed anew,
/// every digest checked on the way.
pub fn copy_image(
    config_bytes: &[u8],
    layers: &[Foreign<'_>],
    store: &dyn BlobStore,
    opts: &Options,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Image, ProduceError> {
    let sources: Vec<Source> = layers.iter().map(Source::Image).collect();
    let layers = write_layers(&sources, store, opts, progress, cancel)?;
    finish_image(config_bytes.to_vec(), layers, store)
}

/// The config and manifest over `layers`; the config keeps its bytes, so
/// the image keeps its ID.
fn finish_image(config_bytes: Vec<u8>, layers: Vec<LayerBlob>, store: &dyn BlobStore) -> Result<Image, ProduceError> {
    let config = Blob::new(manifest::CONFIG_MEDIA_TYPE, store.put_blob(&config_bytes)?);
    let manifest_bytes = manifest::manifest(&config, &layers.iter().map(|l| l.blob.clone()).collect::<Vec<_>>());
    // Naming the image is the destination's: a layout keeps the manifest
    // as a blob, a registry under a tag.
    let manifest = BlobDigest { digest: Digest::of(&manifest_bytes), size: manifest_bytes.len() as u64 };
    Ok(Image { layers, config, config_bytes, manifest, manifest_bytes })
}

/// Produces `sources` into `store`, several layers at a time.
fn write_layers(
    sources: &[Source<'_, '_>],
    store: &dyn BlobStore,
    opts: &Options,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Vec<LayerBlob>, ProduceError> {
    let jobs = opts.jobs.max(1);
    let pool = compression_pool(jobs)?;
    let n = sources.len();
    let stop = Stop::new(cancel);
    let slots: Vec<Mutex<Option<LayerBlob>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let budget = Budget::new(opts.compression, jobs, n);
    let ctx = Ctx::new(store, opts, budget, &pool, &stop, progress);
    std::thread::scope(|s| {
        for _ in 0..budget.layers_in_flight {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || stop.stopped() {
                        break;
                    }
                    match ctx.layer_with_retries(i + 1, &sources[i]) {
                        Ok(blob) => {
                            progress.line(&layer_line(i + 1, n, &blob, store));
                            *lock(&slots[i]) = Some(blob);
                        }
                        Err(e) => {
                            stop.fail(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = stop.take() {
        return Err(e);
    }
    let layers: Vec<LayerBlob> = slots
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()).ok_or(ProduceError::Image(ImageError::Interrupted)))
        .collect::<Result<_, _>>()?;
    if cancel.load(Ordering::Relaxed) {
        return Err(ImageError::Interrupted.into());
    }

    Ok(layers)
}

/// The image config every destination writes, if every layer's digest is
/// known without reading a layer (precomputed digests, the customisation
/// layer's checksum, the base's diff_ids); its digest is the image ID.
pub fn known_config(conf: &Conf, base: Option<&BaseImage>) -> Result<Option<Vec<u8>>, ImageError> {
    let custom = Customisation::load(conf)?;
    let mut records: Vec<LayerRecord> = Vec::new();
    if let Some(b) = base {
        records.extend(b.layers.iter().map(|l| LayerRecord { diff_id: l.diff_id, member: String::new(), paths: vec![l.name.clone()] }));
    }
    for (paths, known) in conf.store_layers.iter().zip(&conf.store_layer_digests) {
        let Some(k) = known else { return Ok(None) };
        records.push(LayerRecord { diff_id: k.digest, member: String::new(), paths: paths.iter().map(|p| p.as_written.clone()).collect() });
    }
    records.push(LayerRecord { diff_id: custom.checksum, member: String::new(), paths: vec![custom.as_written.clone()] });
    if let Some(u) = users_layer(conf, base, &custom)? {
        records.push(LayerRecord { diff_id: u.digest, member: String::new(), paths: vec![UsersLayer::HISTORY.into()] });
    }
    Ok(Some(config_bytes(conf, base, &records)?))
}

fn compression_pool(jobs: usize) -> Result<rayon::ThreadPool, ProduceError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("compress-{i}"))
        .build()
        .map_err(|e| ProduceError::Threads(jobs, e.to_string()))
}

/// One store layer as a blob, outside any image: what a layer's own Nix
/// derivation (`buildLayer`) records.
pub fn store_layer_blob(
    paths: &[StorePath],
    stamp: &Stamp,
    store: &dyn BlobStore,
    opts: &Options,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<LayerBlob, ProduceError> {
    let pool = compression_pool(opts.jobs.max(1))?;
    let stop = Stop::new(cancel);
    let budget = Budget::new(opts.compression, opts.jobs, 1);
    Ctx::new(store, opts, budget, &pool, &stop, progress).store_layer(1, paths, stamp, None)
}

fn layer_line(index: usize, n: usize, l: &LayerBlob, store: &dyn BlobStore) -> String {
    let what = match l.fate {
        Fate::Written => "written".to_string(),
        Fate::Present => format!("{}, not read", store.presence(&l.blob.digest.digest)),
        Fate::Cached => format!("{}, blob known from the blob cache, not compressed", store.presence(&l.blob.digest.digest)),
    };
    // What a person reads at a glance; the full digests are in the
    // summary, `--digestfile` and the image itself.
    let (tar, blob) = (indicatif::HumanBytes(l.diff_id.size), indicatif::HumanBytes(l.blob.digest.size));
    if l.blob.digest == l.diff_id {
        format!("Layer {index}/{n} {} {tar}: {what}", l.diff_id.digest.short())
    } else {
        format!("Layer {index}/{n} {} {tar} -> {blob}: {what}", l.diff_id.digest.short())
    }
}

/// What producing layers needs.
struct Ctx<'a> {
    store: &'a dyn BlobStore,
    compression: Compression,
    pool: &'a rayon::ThreadPool,
    stop: &'a Stop<'a>,
    progress: &'a dyn Progress,
    retries: u32,
    budget: Budget,
    keep_compression: bool,
    /// The blob cache with this compression's key; none without compression
    /// (the tar is the blob).
    cache: Option<(&'a BlobCache, String)>,
}

/// The blob a layer compresses to, if the conf recorded it.
fn known_blob(known: &LayerDigest, c: Compression) -> Option<BlobDigest> {
    match c {
        Compression::None => Some(known.tar()),
        c => known.compressed.get(&c.key()).copied(),
    }
}

/// A blob being produced: a layer's tar in, compressed on all cores, the
/// compressed bytes hashed on their way into the store's writer. The tar's
/// own digest is taken here only when nobody else takes it: a store
/// layer's comes from its pipeline's hasher, and without compression the
/// tar is the blob.
struct Producer<'s, 'p> {
    input: Option<Hashing<io::Sink>>,
    enc: Encoder<'p, Hashing<Box<dyn BlobWriter + 's>>>,
    compressed: bool,
}

impl<'s, 'p> Producer<'s, 'p> {
    fn new(ctx: &Ctx<'s>, pool: &'p rayon::ThreadPool, hash_input: bool) -> Result<Self, ProduceError> {
        let (store, compression) = (ctx.store, ctx.compression);
        let w = store.new_blob()?;
        let enc = Encoder::new(compression, Hashing::new(w), pool, ctx.budget.share).map_err(|e| store.io_error("cannot start a compressor", e))?;
        let compressed = !compression.is_none();
        Ok(Producer { input: (hash_input && compressed).then(|| Hashing::new(io::sink())), enc, compressed })
    }

    /// Ends compression: the tar's digest (unless the caller took it), the
    /// blob's, and the writer to commit once the caller has checked them.
    fn finish(self) -> io::Result<(Option<BlobDigest>, BlobDigest, Box<dyn BlobWriter + 's>)> {
        let (mut w, blob) = self.enc.finish()?.finish();
        w.flush()?;
        let input = match self.input {
            Some(h) => Some(h.finish().1),
            None if !self.compressed => Some(blob),
            None => None,
        };
        Ok((input, blob, w))
    }
}

impl Write for Producer<'_, '_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.enc.write_all(data)?;
        if let Some(h) = &mut self.input {
            h.write_all(data)?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> Ctx<'a> {
    fn new(
        store: &'a dyn BlobStore,
        opts: &'a Options,
        budget: Budget,
        pool: &'a rayon::ThreadPool,
        stop: &'a Stop<'a>,
        progress: &'a dyn Progress,
    ) -> Ctx<'a> {
        Ctx {
            budget,
            store,
            compression: opts.compression,
            pool,
            stop,
            progress,
            retries: opts.retries,
            keep_compression: opts.keep_compression,
            cache: opts.blob_cache.as_ref().filter(|_| !opts.compression.is_none()).map(|c| (c, opts.compression.key())),
        }
    }

    /// A layer whose upload failed for a reason that may pass is produced
    /// and sent again from its start (its bytes are made as they are sent).
    fn layer_with_retries(&self, index: usize, source: &Source) -> Result<LayerBlob, ProduceError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.progress.layer_started(index, expected_size(source));
            let result = self.layer(index, source);
            self.progress.layer_finished(index);
            match result {
                Err(ProduceError::Store(e)) if e.is_transient() && attempt < self.retries && !self.stop.stopped() => {
                    self.progress.line(&format!("Layer {index}: {e}; trying again"));
                    // In slices: a Ctrl-C during the wait ends it.
                    let until = std::time::Instant::now() + std::time::Duration::from_millis(500 << attempt.min(5));
                    while std::time::Instant::now() < until && !self.stop.stopped() {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                }
                r => return r,
            }
        }
    }

    fn layer(&self, index: usize, source: &Source) -> Result<LayerBlob, ProduceError> {
        match source {
            Source::Store { paths, stamp, known } => self.store_layer(index, paths, stamp, *known),
            Source::Customisation(custom, known) => self.customisation_layer(index, custom, *known),
            Source::Base(base, layer) => self.base_layer(index, base, layer),
            Source::Image(layer) => self.image_layer(index, layer),
            Source::Users(users) => self.users_layer(users),
        }
    }

    fn media_type(&self) -> String {
        self.compression.layer_media_type().into()
    }

    /// Whether a layer stored with `kind` goes into blobs as it is.
    fn passes(&self, kind: decode::Compression) -> bool {
        as_is(kind, self.compression) || (self.keep_compression && matches!(kind, decode::Compression::Gzip | decode::Compression::Zstd))
    }

    /// A layer passed as it is, under the media type of its compression.
    fn passed(&self, kind: decode::Compression, diff_id: BlobDigest, blob: BlobDigest, fate: Fate, paths: Vec<String>) -> LayerBlob {
        // The level names only bytes we make; the media type does not carry it.
        let as_stored = match kind {
            decode::Compression::Zstd => Compression::Zstd { level: ZSTD_DEFAULT_LEVEL },
            _ => Compression::Gzip { level: GZIP_DEFAULT_LEVEL },
        };
        let media_type = as_stored.layer_media_type();
        LayerBlob { diff_id, blob: Blob::new(media_type, blob), fate, paths }
    }

    /// Whether the blob cache may know a store layer of these member names
    /// under this compression: only then is the layer read once more just
    /// to look it up.
    fn cache_may_know(&self, names: &Digest) -> bool {
        self.cache.as_ref().is_some_and(|(c, key)| c.may_know(key, names))
    }

    /// The blob the cache names for the tar `diff_id`, if the store has it.
    fn cached_blob(&self, diff_id: &BlobDigest) -> Result<Option<BlobDigest>, ProduceError> {
        let Some(blob) = self.cache.as_ref().and_then(|(c, key)| c.lookup(key, diff_id)) else { return Ok(None) };
        Ok(self.store.has_blob(&blob)?.then_some(blob))
    }

    /// Tells the cache what a tar of ours compressed to (and, for a store
    /// layer, its member names).
    fn remember(&self, diff_id: &BlobDigest, blob: &BlobDigest, names: Option<&Digest>) {
        if let Some((c, key)) = &self.cache {
            c.record(key, diff_id, blob, names);
        }
    }

    fn blob(&self, diff_id: BlobDigest, blob: BlobDigest, fate: Fate, paths: Vec<String>) -> LayerBlob {
        LayerBlob { diff_id, blob: Blob::new(self.media_type(), blob), fate, paths }
    }

    /// The recorded blob of a layer, if the store holds it already.
    fn present(&self, known: Option<&LayerDigest>) -> Result<Option<(BlobDigest, BlobDigest)>, ProduceError> {
        match known.and_then(|k| known_blob(k, self.compression).map(|b| (k.tar(), b))) {
            Some((tar, b)) if self.store.has_blob(&b)? => Ok(Some((tar, b))),
            _ => Ok(None),
        }
    }

    fn store_layer(&self, index: usize, paths: &[StorePath], stamp: &Stamp, known: Option<&LayerDigest>) -> Result<LayerBlob, ProduceError> {
        let history: Vec<String> = paths.iter().map(|p| p.as_written.clone()).collect();
        if let Some((tar, blob)) = self.present(known)? {
            return Ok(self.blob(tar, blob, Fate::Present, history));
        }
        let expected = known.and_then(|k| known_blob(k, self.compression));
        let stopped = || self.stop.stopped();
        let layer_err = |source| ProduceError::Image(ImageError::Layer { index, paths: paths_repr(paths), source });
        let names = member_names(paths);
        if expected.is_none() && self.cache_may_know(&names) {
            // A read without compressing is much cheaper than compressing
            // only to find the store already holds the result.
            let diff_id = match pipe::run(paths, stamp, &stopped, |_| Ok::<(), Infallible>(())) {
                Ok(d) => d,
                Err(PipeError::Stopped) => return Err(ImageError::Interrupted.into()),
                Err(PipeError::Consumer(never)) => match never {},
                Err(PipeError::Layer(source)) => return Err(layer_err(source)),
            };
            if let Some(blob) = self.cached_blob(&diff_id)? {
                return Ok(self.blob(diff_id, blob, Fate::Cached, history));
            }
        }
        let mut producer = Producer::new(self, self.pool, false)?;
        let streamed = pipe::run(paths, stamp, &stopped, |chunk| {
            producer.write_all(chunk)?;
            self.progress.advance(chunk.len() as u64);
            self.progress.layer_advance(index, chunk.len() as u64);
            Ok::<(), io::Error>(())
        });
        let diff_id = match streamed {
            Ok(d) => d,
            Err(PipeError::Stopped) => return Err(ImageError::Interrupted.into()),
            Err(PipeError::Consumer(e)) if self.stop.stopped() => return Err(interrupted_or(e, self.store)),
            Err(PipeError::Consumer(e)) => return Err(self.store.io_error("cannot write a blob", e).into()),
            Err(PipeError::Layer(source)) => return Err(layer_err(source)),
        };
        let (_, blob, w) = producer.finish().map_err(|e| interrupted_or(e, self.store))?;
        if let Some(k) = known {
            let stale = |what: String| {
                ProduceError::Image(ImageError::Changed {
                    index,
                    paths: paths_repr(paths),
                    expected: k.digest,
                    detail: format!("{what}; the conf's {DIGESTS_KEY} entry is stale"),
                })
            };
            if diff_id != k.tar() {
                return Err(stale(format!("its tar now hashes to {} ({} bytes)", diff_id.digest, diff_id.size)));
            }
            if let Some(b) = expected.filter(|b| *b != blob) {
                return Err(stale(format!("its {} blob is {} ({} bytes), not the recorded {}", self.compression, blob.digest, blob.size, b.digest)));
            }
        }
        w.commit(&blob.digest)?;
        self.remember(&diff_id, &blob, Some(&names));
        Ok(self.blob(diff_id, blob, Fate::Written, history))
    }

    fn customisation_layer(&self, index: usize, c: &Customisation, recorded: Option<&LayerDigest>) -> Result<LayerBlob, ProduceError> {
        let history = vec![c.as_written.clone()];
        let own = LayerDigest { digest: c.checksum, size: c.size, compressed: recorded.map(|d| d.compressed.clone()).unwrap_or_default() };
        if let Some((tar, blob)) = self.present(Some(&own))? {
            return Ok(self.blob(tar, blob, Fate::Present, history));
        }
        let expected = known_blob(&own, self.compression);
        if expected.is_none() {
            if let Some(b) = self.cached_blob(&c.promised())? {
                return Ok(self.blob(c.promised(), b, Fate::Present, history));
            }
        }
        let mut f = std::fs::File::open(&c.tar_path).map_err(|e| c.read_failed(e))?;
        let mut head = [0u8; 8];
        let n = decode::read_head(&mut f, &mut head).map_err(|e| c.read_failed(e))?;
        c.refuse_compressed(&head[..n])?;
        let mut producer = Producer::new(self, self.pool, true)?;
        producer.write_all(&head[..n]).map_err(|e| interrupted_or(e, self.store))?;
        self.copy(index, &mut f, &mut producer).map_err(|e| match e {
            CopyFail::Read(e) => c.read_failed(e).into(),
            CopyFail::Write(e) => interrupted_or(e, self.store),
        })?;
        let (diff_id, blob, w) = producer.finish().map_err(|e| interrupted_or(e, self.store))?;
        let diff_id = diff_id.unwrap_or_else(|| unreachable!("the producer was asked to hash the tar"));
        c.check(&diff_id.digest)?;
        if let Some(b) = expected.filter(|b| *b != blob) {
            return Err(c
                .fail(format!(
                    "its {} blob is {}, not the {} the conf's customisation_layer_digest records (stale)",
                    self.compression, blob.digest, b.digest
                ))
                .into());
        }
        w.commit(&blob.digest)?;
        self.remember(&diff_id, &blob, None);
        Ok(self.blob(diff_id, blob, Fate::Written, history))
    }

    /// The users layer, made in memory (a few KiB): compressed and stored.
    fn users_layer(&self, users: &UsersLayer) -> Result<LayerBlob, ProduceError> {
        let history = vec![UsersLayer::HISTORY.to_string()];
        let mut producer = Producer::new(self, self.pool, true)?;
        producer.write_all(&users.tar).map_err(|e| interrupted_or(e, self.store))?;
        let (diff_id, blob, w) = producer.finish().map_err(|e| interrupted_or(e, self.store))?;
        let diff_id = diff_id.unwrap_or_else(|| unreachable!("the producer was asked to hash the tar"));
        w.commit(&blob.digest)?;
        Ok(self.blob(diff_id, blob, Fate::Written, history))
    }

    /// A base layer already compressed as asked is copied as it is; any
    /// other is decompressed and compressed anew. Either way what it
    /// decompresses to must hash to the base config's diff_id.
    fn base_layer(&self, index: usize, base: &BaseImage, layer: &BaseLayer) -> Result<LayerBlob, ProduceError> {
        // A layer stored as a link is its target's blob (BaseImage::open
        // checked that the link leads to a layer of this diff_id).
        let reader = base.layer_reader_at(base.source_of(layer));
        let fail = |what: String| base.layer_error(layer, what);
        let size = Some(base.source_of(layer).member.size());
        self.foreign_layer(
            index,
            Box::new(reader),
            Expect { diff_id: &layer.diff_id, stored: None, declared: None, size },
            &fail,
            vec![layer.name.clone()],
        )
    }

    /// A layer of an image read from elsewhere, as [`Self::base_layer`];
    /// its stored bytes must also hash to the digest its manifest names.
    fn image_layer(&self, index: usize, layer: &Foreign<'_>) -> Result<LayerBlob, ProduceError> {
        let fail = |what: String| ImageError::SourceLayer { image: layer.image.clone(), name: layer.name.clone(), what };
        // Named by its digest and kept as it is: no need to read it.
        if let (Some(stored), Some(c)) = (layer.stored, layer.compression.filter(|c| self.passes(*c))) {
            if self.store.has_blob(&stored)? {
                return Ok(self.passed(c, BlobDigest { digest: layer.diff_id, size: 0 }, stored, Fate::Present, vec![layer.name.clone()]));
            }
        }
        let reader = (layer.open)().map_err(|e| fail(format!("cannot read it: {e}")))?;
        let declared = layer.media_type.as_deref().zip(layer.compression);
        let expect = Expect { diff_id: &layer.diff_id, stored: layer.stored.as_ref(), declared, size: layer.stored.map(|s| s.size) };
        self.foreign_layer(index, reader, expect, &fail, vec![layer.name.clone()])
    }

    fn foreign_layer(
        &self,
        index: usize,
        mut reader: Box<dyn Read + '_>,
        expect: Expect<'_>,
        fail: &dyn Fn(String) -> ImageError,
        history: Vec<String>,
    ) -> Result<LayerBlob, ProduceError> {
        let fail = |what: String| ProduceError::Image(fail(what));
        let mut head = [0u8; 8];
        let got = decode::read_head(&mut reader, &mut head).map_err(|e| fail(e.to_string()))?;
        let head = &head[..got];
        let kind = decode::sniff(head);
        // An OCI media type decides the compression for every reader: data
        // of another is what verify refuses, and copy will not label it anew.
        if let Some((media_type, declared)) = expect.declared.filter(|(_, d)| *d != kind) {
            return Err(fail(format!("its media type {media_type} says {} data, but its bytes are {}", declared.name(), kind.name())));
        }
        let check = layer_check::shared(expect.size);
        let checked = |e: String| match crate::stop::lock(&check).failure() {
            Some(c) => fail(c.to_string()),
            None => fail(e),
        };
        // The stored bytes are hashed on their way in, whatever happens to them.
        let mut whole = Hashing::new(io::sink());
        let mut whole_reader = HashingReader { inner: io::Cursor::new(head.to_vec()).chain(reader), hash: &mut whole };
        let read_fail = |e: CopyFail| match e {
            CopyFail::Read(e) => checked(format!("cannot read or decompress it: {e}")),
            CopyFail::Write(e) => interrupted_or(e, self.store),
        };
        let passes = self.passes(kind);
        let (diff_id, blob, w, content) = if passes {
            // Stored as is; a decoder beside the copy yields the diff_id.
            // The blob is what was read, hashed once on the way in.
            let content = ContentHasher::checked(kind, Some(check.clone())).map_err(|e| fail(format!("cannot decompress it: {e}")))?;
            let mut tee = Tee::new(self.store.new_blob()?, content);
            self.copy(index, &mut whole_reader, &mut tee).map_err(read_fail)?;
            let (mut w, content) = tee.finish();
            w.flush().map_err(|e| interrupted_or(e, self.store))?;
            if let Some(Ok(_)) = &content {
                crate::stop::lock(&check).finish().map_err(|e| fail(e.to_string()))?;
            }
            let diff_id = match &content {
                Some(Ok(d)) => Some(*d),
                _ => None,
            };
            (diff_id, None, w, content)
        } else {
            let mut producer = Producer::new(self, self.pool, true)?;
            let decoded = decode::reader(kind, &mut whole_reader).map_err(|e| fail(format!("cannot start its decompressor: {e}")))?;
            let mut src = layer_check::Checked { inner: decoded, check: &check };
            self.copy(index, &mut src, &mut producer).map_err(read_fail)?;
            drop(src);
            let (diff_id, blob, w) = producer.finish().map_err(|e| interrupted_or(e, self.store))?;
            (diff_id, Some(blob), w, None)
        };
        drop(whole_reader);
        let stored = whole.finish().1;
        let blob = blob.unwrap_or(stored);
        if let Some(s) = expect.stored.filter(|s| **s != stored) {
            return Err(fail(format!(
                "its blob hashes to {} ({} bytes), not the {} ({} bytes) its manifest names",
                stored.digest, stored.size, s.digest, s.size
            )));
        }
        if let Some(c) = crate::stop::lock(&check).failure() {
            return Err(fail(c.to_string()));
        }
        // Recompressed: the producer hashed the tar it was given.
        let recompressed = content.is_none() && diff_id.is_some();
        let checked = if recompressed {
            check_diff_id(expect.diff_id, &diff_id.map(|d| d.digest).unwrap_or_default(), None)
        } else {
            check_diff_id(expect.diff_id, &stored.digest, content)
        };
        checked.map_err(fail)?;
        let diff_id = diff_id.unwrap_or(BlobDigest { digest: *expect.diff_id, size: stored.size });
        w.commit(&blob.digest)?;
        if passes {
            return Ok(self.passed(kind, diff_id, blob, Fate::Written, history));
        }
        Ok(self.blob(diff_id, blob, Fate::Written, history))
    }

    /// Copies `src` to `dst` in 1 MiB pieces, stopping when the run stops.
    fn copy(&self, index: usize, src: &mut dyn Read, dst: &mut dyn Write) -> Result<(), CopyFail> {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            if self.stop.stopped() {
                return Err(CopyFail::Write(io::Error::other(Cancelled)));
            }
            let n = match src.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyFail::Read(e)),
            };
            dst.write_all(&buf[..n]).map_err(CopyFail::Write)?;
            self.progress.advance(n as u64);
            self.progress.layer_advance(index, n as u64);
        }
    }
}

/// A store layer's member names, in order: a function of its tar, so a
/// tar recorded in the blob cache has its names recorded too.
fn member_names(paths: &[StorePath]) -> Digest {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in paths {
        h.update(&p.member_name);
        h.update([0]);
    }
    Digest::from_hasher(h)
}

/// A layer's tar length, if known before it is made (for progress).
fn expected_size(source: &Source) -> Option<u64> {
    match source {
        Source::Store { known, .. } => known.map(|d| d.size),
        Source::Customisation(c, _) => Some(c.size),
        Source::Base(..) | Source::Image(_) => None,
        Source::Users(u) => Some(u.tar.len() as u64),
    }
}

/// Whether a layer stored with `kind` goes into blobs of `target` as it is.
fn as_is(kind: decode::Compression, target: Compression) -> bool {
    matches!((kind, target), (decode::Compression::Gzip, Compression::Gzip { .. }) | (decode::Compression::Zstd, Compression::Zstd { .. }))
}

/// What a layer from elsewhere must be.
struct Expect<'a> {
    /// What its content hashes to (the config's diff_id).
    diff_id: &'a Digest,
    /// The blob as its manifest names it.
    stored: Option<&'a BlobDigest>,
    /// Its media type, and the compression it says (an OCI type decides).
    declared: Option<(&'a str, decode::Compression)>,
    /// The blob's size, where known: what its content is bounded by.
    size: Option<u64>,
}

/// Hashes what is read through it.
struct HashingReader<'h, R> {
    inner: R,
    hash: &'h mut Hashing<io::Sink>,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }
}

enum CopyFail {
    Read(io::Error),
    Write(io::Error),
}

/// A write failure while the run is stopping is the stop, not a fault.
fn interrupted_or(e: io::Error, store: &dyn BlobStore) -> ProduceError {
    if e.get_ref().is_some_and(|i| i.is::<Cancelled>()) {
        return ImageError::Interrupted.into();
    }
    // A store's own failure (a registry's, which may be worth a retry)
    // passes through as it is.
    match e.downcast::<StoreError>() {
        Ok(s) => s.into(),
        Err(e) => store.io_error("cannot write a blob", e).into(),
    }
}
