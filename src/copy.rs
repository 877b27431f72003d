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

use crate::base_image::{self, BaseImage, BaseLayer};
use crate::blob::{BlobStore, BlobWriter, Hashing, StoreError};
use crate::blob_cache::BlobCache;
use crate::compress::{Compression, Encoder};
use crate::conf::{BlobDigest, Conf, DIGESTS_KEY, LayerDigest};
use crate::image_config::LayerRecord;
use crate::layer::{Stamp, StorePath};
use crate::layer_pipe::{self, PipeError};
use crate::oci::{self, Blob};
use crate::stop::Cancelled;
use crate::stream::{self, Progress, StreamError, paths_repr};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Stream(#[from] StreamError),
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
    /// What layers compressed to in earlier runs (see [`crate::blob_cache`]).
    pub blob_cache: Option<BlobCache>,
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

/// A layer of the image, in order.
enum Source<'a> {
    Base(&'a BaseLayer),
    Store(usize),
    Customisation,
}

type Stop<'a> = crate::stop::Stop<'a, CopyError>;

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
) -> Result<Image, CopyError> {
    let custom = stream::customisation(conf)?;
    let jobs = opts.jobs.max(1);
    let pool = compression_pool(jobs)?;
    let mut sources: Vec<Source> = base.map(|b| b.layers.iter().map(Source::Base).collect()).unwrap_or_default();
    sources.extend((0..conf.store_layers.len()).map(Source::Store));
    sources.push(Source::Customisation);

    let n = sources.len();
    let stop = Stop::new(cancel);
    let slots: Vec<Mutex<Option<LayerBlob>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let ctx = Ctx { conf: Some(conf), base, custom: Some(&custom), ..Ctx::new(store, opts, &pool, &stop, progress) };
    std::thread::scope(|s| {
        for _ in 0..jobs.min(n) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || stop.stopped() {
                        break;
                    }
                    match ctx.layer_with_retries(i + 1, &sources[i]) {
                        Ok(blob) => {
                            progress.line(&layer_line(i + 1, n, &blob, store));
                            *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(blob);
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
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()).ok_or(CopyError::Stream(StreamError::Interrupted)))
        .collect::<Result<_, _>>()?;
    if cancel.load(Ordering::Relaxed) {
        return Err(StreamError::Interrupted.into());
    }

    let records: Vec<LayerRecord> =
        layers.iter().map(|l| LayerRecord { diff_id: l.diff_id.sha256.clone(), member: String::new(), paths: l.paths.clone() }).collect();
    // The very bytes `stream` writes, so the image ID is nixpkgs'.
    let config_bytes = stream::config_bytes(conf, base, &records)?;
    let config = Blob { media_type: oci::CONFIG_MEDIA_TYPE.into(), digest: store.put_blob(&config_bytes)? };
    let manifest_bytes = oci::manifest(&config, &layers.iter().map(|l| l.blob.clone()).collect::<Vec<_>>());
    // Naming the image is the destination's: a layout keeps the manifest
    // as a blob, a registry under a tag.
    let manifest = BlobDigest { sha256: hex::encode(Sha256::digest(&manifest_bytes)), size: manifest_bytes.len() as u64 };
    Ok(Image { layers, config, config_bytes, manifest, manifest_bytes })
}

/// The image config `stream` would write, if every layer's digest is
/// known without reading a layer (precomputed digests, the customisation
/// layer's checksum, the base's diff_ids); its digest is the image ID.
pub fn known_config(conf: &Conf, base: Option<&BaseImage>) -> Result<Option<Vec<u8>>, CopyError> {
    let custom = stream::customisation(conf)?;
    let mut records: Vec<LayerRecord> = Vec::new();
    if let Some(b) = base {
        records.extend(b.layers.iter().map(|l| LayerRecord { diff_id: l.diff_id.clone(), member: String::new(), paths: vec![l.name.clone()] }));
    }
    for (paths, known) in conf.store_layers.iter().zip(&conf.store_layer_digests) {
        let Some(k) = known else { return Ok(None) };
        records.push(LayerRecord { diff_id: k.sha256.clone(), member: String::new(), paths: paths.iter().map(|p| p.as_written.clone()).collect() });
    }
    records.push(LayerRecord { diff_id: custom.checksum.clone(), member: String::new(), paths: vec![custom.as_written.clone()] });
    Ok(Some(stream::config_bytes(conf, base, &records)?))
}

fn compression_pool(jobs: usize) -> Result<rayon::ThreadPool, CopyError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("compress-{i}"))
        .build()
        .map_err(|e| CopyError::Threads(jobs, e.to_string()))
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
) -> Result<LayerBlob, CopyError> {
    let pool = compression_pool(opts.jobs.max(1))?;
    let stop = Stop::new(cancel);
    Ctx::new(store, opts, &pool, &stop, progress).store_layer(1, paths, stamp, None)
}

fn layer_line(index: usize, n: usize, l: &LayerBlob, store: &dyn BlobStore) -> String {
    let what = match l.fate {
        Fate::Written => "written".to_string(),
        Fate::Present => format!("{}, not read", store.presence(&l.blob.digest.sha256)),
        Fate::Cached => format!("{}, blob known from the blob cache, not compressed", store.presence(&l.blob.digest.sha256)),
    };
    format!(
        "Layer {index}/{n} sha256:{} ({} bytes, {} as sha256:{}) {what}",
        l.diff_id.sha256, l.diff_id.size, l.blob.digest.size, l.blob.digest.sha256
    )
}

/// What producing layers needs; `conf` and `custom` are there for a whole
/// image, not for a lone layer.
struct Ctx<'a> {
    conf: Option<&'a Conf>,
    base: Option<&'a BaseImage>,
    store: &'a dyn BlobStore,
    compression: Compression,
    pool: &'a rayon::ThreadPool,
    stop: &'a Stop<'a>,
    custom: Option<&'a stream::Customisation>,
    progress: &'a dyn Progress,
    retries: u32,
    /// The blob cache with this compression's key; none without compression
    /// (the tar is the blob).
    cache: Option<(&'a BlobCache, String)>,
}

impl<'a> Ctx<'a> {
    /// A context for lone layers; a whole image adds its conf, base and
    /// customisation layer.
    fn new(store: &'a dyn BlobStore, opts: &'a Options, pool: &'a rayon::ThreadPool, stop: &'a Stop<'a>, progress: &'a dyn Progress) -> Ctx<'a> {
        Ctx {
            conf: None,
            base: None,
            store,
            compression: opts.compression,
            pool,
            stop,
            custom: None,
            progress,
            retries: opts.retries,
            cache: opts.blob_cache.as_ref().filter(|_| !opts.compression.is_none()).map(|c| (c, opts.compression.key())),
        }
    }
}

/// The blob a layer compresses to, if the conf recorded it.
fn known_blob(known: &LayerDigest, c: Compression) -> Option<BlobDigest> {
    match c {
        Compression::None => Some(BlobDigest { sha256: known.sha256.clone(), size: known.size }),
        c => known.compressed.get(&c.key()).cloned(),
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
    fn new(store: &'s dyn BlobStore, compression: Compression, pool: &'p rayon::ThreadPool, hash_input: bool) -> Result<Self, CopyError> {
        let w = store.new_blob()?;
        let enc = Encoder::new(compression, Hashing::new(w), pool).map_err(|e| store.io_error("cannot start a compressor", e))?;
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
            None if !self.compressed => Some(blob.clone()),
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

impl Ctx<'_> {
    /// A layer whose upload failed for a reason that may pass is produced
    /// and sent again from its start (its bytes are made as they are sent).
    fn layer_with_retries(&self, index: usize, source: &Source) -> Result<LayerBlob, CopyError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.progress.layer_started(index, self.expected_size(source));
            let result = self.layer(index, source);
            self.progress.layer_finished(index);
            match result {
                Err(CopyError::Store(e)) if e.is_transient() && attempt < self.retries && !self.stop.stopped() => {
                    self.progress.line(&format!("Layer {index}: {e}; trying again"));
                    std::thread::sleep(std::time::Duration::from_millis(500 << attempt.min(5)));
                }
                r => return r,
            }
        }
    }

    /// A layer's tar length, if known before it is made (for progress).
    fn expected_size(&self, source: &Source) -> Option<u64> {
        match source {
            Source::Store(i) => self.conf.and_then(|c| c.store_layer_digests[*i].as_ref()).map(|d| d.size),
            Source::Customisation => self.custom.map(|c| c.size),
            Source::Base(_) => None,
        }
    }

    fn layer(&self, index: usize, source: &Source) -> Result<LayerBlob, CopyError> {
        match source {
            Source::Store(i) => {
                let conf = self.conf.expect("store layers come from a conf");
                self.store_layer(index, &conf.store_layers[*i], &conf.stamp, conf.store_layer_digests[*i].as_ref())
            }
            Source::Customisation => self.customisation_layer(index),
            Source::Base(layer) => self.base_layer(index, layer),
        }
    }

    fn media_type(&self) -> String {
        self.compression.layer_media_type().into()
    }

    /// Whether the blob cache has entries for this compression: only then
    /// is a layer read once more just to look it up.
    fn cache_knows(&self) -> bool {
        self.cache.as_ref().is_some_and(|(c, key)| c.knows(key))
    }

    /// The blob the cache names for the tar `diff_id`, if the store has it.
    fn cached_blob(&self, diff_id: &BlobDigest) -> Result<Option<BlobDigest>, CopyError> {
        let Some(blob) = self.cache.as_ref().and_then(|(c, key)| c.lookup(key, diff_id)) else { return Ok(None) };
        Ok(self.store.has_blob_sized(&blob)?.then_some(blob))
    }

    /// Tells the cache what a tar of ours compressed to.
    fn remember(&self, diff_id: &BlobDigest, blob: &BlobDigest) {
        if let Some((c, key)) = &self.cache {
            c.record(key, diff_id, blob);
        }
    }

    fn present(&self, diff_id: BlobDigest, blob: BlobDigest, paths: Vec<String>) -> LayerBlob {
        LayerBlob { diff_id, blob: Blob { media_type: self.media_type(), digest: blob }, fate: Fate::Present, paths }
    }

    fn store_layer(&self, index: usize, paths: &[StorePath], stamp: &Stamp, known: Option<&LayerDigest>) -> Result<LayerBlob, CopyError> {
        let history: Vec<String> = paths.iter().map(|p| p.as_written.clone()).collect();
        let expected = known.and_then(|k| known_blob(k, self.compression));
        if let (Some(k), Some(b)) = (known, &expected)
            && self.store.has_blob_sized(b)?
        {
            return Ok(self.present(BlobDigest { sha256: k.sha256.clone(), size: k.size }, b.clone(), history));
        }
        let stopped = || self.stop.stopped();
        let layer_err = |source| CopyError::Stream(StreamError::Layer { index, paths: paths_repr(paths), source });
        if expected.is_none() && self.cache_knows() {
            // A read without compressing is much cheaper than compressing
            // only to find the store already holds the result.
            let (sha256, size) = match layer_pipe::run(paths, stamp, &stopped, |_| Ok::<(), Infallible>(())) {
                Ok(d) => d,
                Err(PipeError::Stopped) => return Err(StreamError::Interrupted.into()),
                Err(PipeError::Consumer(never)) => match never {},
                Err(PipeError::Layer(source)) => return Err(layer_err(source)),
            };
            let diff_id = BlobDigest { sha256, size };
            if let Some(blob) = self.cached_blob(&diff_id)? {
                return Ok(LayerBlob { diff_id, blob: Blob { media_type: self.media_type(), digest: blob }, fate: Fate::Cached, paths: history });
            }
        }
        let mut producer = Producer::new(self.store, self.compression, self.pool, false)?;
        let streamed = layer_pipe::run(paths, stamp, &stopped, |chunk| {
            producer.write_all(chunk)?;
            self.progress.advance(chunk.len() as u64);
            self.progress.layer_advance(index, chunk.len() as u64);
            Ok::<(), io::Error>(())
        });
        let (sha256, size) = match streamed {
            Ok(d) => d,
            Err(PipeError::Stopped) => return Err(StreamError::Interrupted.into()),
            Err(PipeError::Consumer(e)) if self.stop.stopped() => {
                return Err(interrupted_or(e, self.store));
            }
            Err(PipeError::Consumer(e)) => {
                return Err(self.store.io_error("cannot write a blob", e).into());
            }
            Err(PipeError::Layer(source)) => return Err(layer_err(source)),
        };
        let (_, blob, w) = producer.finish().map_err(|e| interrupted_or(e, self.store))?;
        let diff_id = BlobDigest { sha256, size };
        if let Some(k) = known {
            let stale = |what: String| {
                CopyError::Stream(StreamError::Changed {
                    index,
                    paths: paths_repr(paths),
                    expected: k.sha256.clone(),
                    detail: format!("{what}; the conf's {DIGESTS_KEY} entry is stale"),
                })
            };
            if diff_id.sha256 != k.sha256 || diff_id.size != k.size {
                return Err(stale(format!("its tar now hashes to sha256:{} ({} bytes)", diff_id.sha256, diff_id.size)));
            }
            if let Some(b) = expected
                && b != blob
            {
                return Err(stale(format!(
                    "its {} blob is sha256:{} ({} bytes), not the recorded sha256:{}",
                    self.compression, blob.sha256, blob.size, b.sha256
                )));
            }
        }
        w.commit(&blob.sha256)?;
        self.remember(&diff_id, &blob);
        Ok(LayerBlob { diff_id, blob: Blob { media_type: self.media_type(), digest: blob }, fate: Fate::Written, paths: history })
    }

    fn customisation_layer(&self, index: usize) -> Result<LayerBlob, CopyError> {
        let c = self.custom.expect("the customisation layer comes with a conf");
        let conf = self.conf.expect("the customisation layer comes with a conf");
        let dir = c.tar_path.parent().unwrap_or(&c.tar_path).to_path_buf();
        let fail = |what: String| CopyError::Stream(StreamError::Customisation { dir: dir.clone(), what });
        let history = vec![c.as_written.clone()];
        let own = LayerDigest {
            sha256: c.checksum.clone(),
            size: c.size,
            compressed: conf.customisation_layer_digest.as_ref().map(|d| d.compressed.clone()).unwrap_or_default(),
        };
        if let Some(b) = known_blob(&own, self.compression)
            && self.store.has_blob_sized(&b)?
        {
            return Ok(self.present(BlobDigest { sha256: own.sha256, size: own.size }, b, history));
        }
        let own_diff_id = BlobDigest { sha256: own.sha256.clone(), size: own.size };
        if known_blob(&own, self.compression).is_none()
            && let Some(b) = self.cached_blob(&own_diff_id)?
        {
            return Ok(self.present(own_diff_id, b, history));
        }
        let mut f = std::fs::File::open(&c.tar_path).map_err(|e| fail(format!("cannot read {}: {e}", c.tar_path.display())))?;
        let mut producer = Producer::new(self.store, self.compression, self.pool, true)?;
        self.copy(index, &mut f, &mut producer).map_err(|e| match e {
            CopyFail::Read(e) => fail(format!("cannot read {}: {e}", c.tar_path.display())),
            CopyFail::Write(e) => interrupted_or(e, self.store),
        })?;
        let (diff_id, blob, w) = producer.finish().map_err(|e| interrupted_or(e, self.store))?;
        let diff_id = diff_id.expect("the producer hashed the tar");
        if diff_id.sha256 != c.checksum {
            return Err(fail(format!(
                "layer.tar hashes to sha256:{}, but its checksum file says {}; rebuild the customisation layer",
                diff_id.sha256, c.checksum
            )));
        }
        if let Some(b) = known_blob(&own, self.compression)
            && b != blob
        {
            return Err(fail(format!(
                "its {} blob is sha256:{}, not the sha256:{} the conf's customisation_layer_digest records (stale)",
                self.compression, blob.sha256, b.sha256
            )));
        }
        w.commit(&blob.sha256)?;
        self.remember(&diff_id, &blob);
        Ok(LayerBlob { diff_id, blob: Blob { media_type: self.media_type(), digest: blob }, fate: Fate::Written, paths: history })
    }

    /// A base layer already compressed as asked is copied as it is; any
    /// other is decompressed and compressed anew. Either way what it
    /// decompresses to must hash to the base config's diff_id.
    fn base_layer(&self, index: usize, layer: &BaseLayer) -> Result<LayerBlob, CopyError> {
        let base = self.base.expect("base layers come from a base image");
        let fail = |what: String| CopyError::Stream(StreamError::BaseLayer { image: base.path.clone(), name: layer.name.clone(), what });
        // A layer stored as a link is its target's blob (BaseImage::open
        // checked that the link leads to a layer of this diff_id).
        let target = base.source_of(layer);
        let mut reader = base.layer_reader_at(target);
        let mut head = [0u8; 8];
        let mut got = 0;
        while got < head.len() {
            match reader.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        let head = &head[..got];
        let whole = io::Cursor::new(head.to_vec()).chain(reader);
        let kind = base_image::sniff(head);
        let as_is = matches!(
            (kind, self.compression),
            (base_image::Compression::Gzip, Compression::Gzip { .. }) | (base_image::Compression::Zstd, Compression::Zstd { .. })
        );
        let read_fail = |e: CopyFail| match e {
            CopyFail::Read(e) => fail(format!("cannot read or decompress it: {e}")),
            CopyFail::Write(e) => interrupted_or(e, self.store),
        };
        let (diff_id, blob, w) = if as_is {
            // Stored as is; a decoder beside the copy yields the diff_id.
            let decoder = match kind {
                base_image::Compression::Gzip => LayerDecoder::Gzip(Box::new(flate2::write::MultiGzDecoder::new(Hashing::new(io::sink())))),
                _ => LayerDecoder::Zstd(
                    zstd::stream::write::Decoder::new(Hashing::new(io::sink())).map_err(|e| fail(format!("cannot decompress it: {e}")))?,
                ),
            };
            let mut tee = Tee { blob: Hashing::new(self.store.new_blob()?), decoder, broken: None };
            self.copy(index, &mut { whole }, &mut tee).map_err(read_fail)?;
            let Tee { blob, decoder, broken } = tee;
            let decoded = match broken {
                Some(e) => Err(e),
                None => decoder.finish(),
            }
            .map_err(|e| fail(format!("cannot decompress it: {e}")))?;
            let (mut w, blob) = blob.finish();
            w.flush().map_err(|e| interrupted_or(e, self.store))?;
            (decoded, blob, w)
        } else {
            let mut producer = Producer::new(self.store, self.compression, self.pool, true)?;
            let mut src: Box<dyn Read> = match kind {
                base_image::Compression::None => Box::new(whole),
                _ => base_image::decompressor(head, whole).ok().flatten().ok_or_else(|| fail("cannot start its decompressor".into()))?,
            };
            self.copy(index, &mut src, &mut producer).map_err(read_fail)?;
            let (diff_id, blob, w) = producer.finish().map_err(|e| interrupted_or(e, self.store))?;
            (diff_id.expect("the producer hashed the tar"), blob, w)
        };
        if diff_id.sha256 != layer.diff_id {
            return Err(fail(format!("its content hashes to sha256:{}, but the image config's diff_id is sha256:{}", diff_id.sha256, layer.diff_id)));
        }
        w.commit(&blob.sha256)?;
        let media_type = self.media_type();
        Ok(LayerBlob { diff_id, blob: Blob { media_type, digest: blob }, fate: Fate::Written, paths: vec![layer.name.clone()] })
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

enum CopyFail {
    Read(io::Error),
    Write(io::Error),
}

/// A write failure while the run is stopping is the stop, not a fault.
fn interrupted_or(e: io::Error, store: &dyn BlobStore) -> CopyError {
    if e.get_ref().is_some_and(|i| i.is::<Cancelled>()) { StreamError::Interrupted.into() } else { store.io_error("cannot write a blob", e).into() }
}

/// The blob's bytes go to the store as they are, and through a decoder
/// of their compression to a hasher. A decoding failure is kept for the
/// end: the bytes are still copied, and the layer then refused.
struct Tee<'s> {
    blob: Hashing<Box<dyn BlobWriter + 's>>,
    decoder: LayerDecoder,
    broken: Option<io::Error>,
}

enum LayerDecoder {
    Gzip(Box<flate2::write::MultiGzDecoder<Hashing<io::Sink>>>),
    Zstd(zstd::stream::write::Decoder<'static, Hashing<io::Sink>>),
}

impl LayerDecoder {
    fn finish(self) -> io::Result<BlobDigest> {
        let h = match self {
            LayerDecoder::Gzip(d) => d.finish()?,
            LayerDecoder::Zstd(mut d) => {
                d.flush()?;
                d.into_inner()
            }
        };
        Ok(h.finish().1)
    }
}

impl Write for Tee<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.blob.write_all(data)?;
        if self.broken.is_none() {
            let r = match &mut self.decoder {
                LayerDecoder::Gzip(d) => d.write_all(data),
                LayerDecoder::Zstd(d) => d.write_all(data),
            };
            if let Err(e) = r {
                self.broken = Some(e);
            }
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
