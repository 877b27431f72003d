//! See an image: what each layer holds and why, what is big and what
//! pulls it in, and what changes between two builds ([`diff`]), as text,
//! JSON and a self-contained HTML page ([`html`]).
//!
//! Every number comes from the image's own bytes: a store path's size is
//! what its members take in the layer tar (headers, data, padding), so a
//! layer's paths plus its `overhead` (`/nix/`, `/nix/store/`, end of
//! archive) add up to the layer tar's length, which is its diff_id's.

pub mod diff;
pub mod html;
pub mod image;
mod report;
pub mod why;

use crate::blob::cache::BlobCache;
use crate::blob::compress::Compression;
use crate::blob::produce::{self, ProduceError};
use crate::conf::Conf;
use crate::digest::{BlobDigest, Digest};
use crate::image::Quiet;
use crate::image::base::{BaseImage, BaseImageError};
use crate::layer::{LayerError, StorePath};
use crate::plan::graph::Graph;
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
pub use why::{Decision, Reason};

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Produce(#[from] ProduceError),
    #[error(transparent)]
    Base(#[from] BaseImageError),
    #[error("store path {path}: {source}")]
    Layer { path: String, source: LayerError },
    #[error(transparent)]
    Why(#[from] why::WhyError),
    #[error(transparent)]
    Graph(#[from] crate::plan::graph::GraphError),
    #[error("cannot read {what}: {source}")]
    Read { what: String, source: std::io::Error },
    #[error(
        "layer {index}: its store paths take {paths} bytes of tar and the layer {size}: \
         a store file changed while it was being explained"
    )]
    Inconsistent { index: usize, paths: u64, size: u64 },
}

/// Where a layer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A layer of `fromImage`, by its member name there.
    Base { image: PathBuf, member: String },
    /// Store paths of the closure (explicit layers included).
    Store,
    /// The customisation layer: contents, extraCommands, fakeRootCommands.
    Customisation { dir: String },
    /// A layer of an image read as it is (`oci:`, `docker-archive:`, ...),
    /// which does not say which of the above it was.
    Image { label: String },
}

#[derive(Debug, Clone)]
pub struct PathInfo {
    pub path: String,
    /// Bytes its members take in the layer tar.
    pub size: u64,
    pub files: u64,
    pub why: Option<Reason>,
}

#[derive(Debug, Clone)]
pub struct LayerInfo {
    /// 0-based, in image order.
    pub index: usize,
    pub origin: Origin,
    /// The layer tar's digest and length.
    pub diff_id: BlobDigest,
    /// Its compressed blob, where known (recorded digests, the blob cache,
    /// or computed by `diff`).
    pub blob: Option<BlobDigest>,
    /// Members of the layer tar, where counted.
    pub files: Option<u64>,
    pub paths: Vec<PathInfo>,
}

impl LayerInfo {
    /// Tar bytes outside the store paths' own members.
    pub fn overhead(&self) -> u64 {
        self.diff_id.size - self.paths.iter().map(|p| p.size).sum::<u64>()
    }

    pub fn why(&self) -> String {
        match &self.origin {
            Origin::Base { image, member } => format!("from fromImage {} ({member})", image.display()),
            Origin::Customisation { dir } => format!("the customisation layer {dir}: contents, extraCommands, fakeRootCommands"),
            Origin::Image { label } => {
                format!("unknown (image input {label}: base, store and customisation layers look alike in an image)")
            }
            Origin::Store => match self.paths.first().and_then(|p| p.why.as_ref()) {
                Some(r) => match r {
                    Reason::Explicit { file } => format!("explicit layer (buildLayer) {}", file.display()),
                    Reason::Popularity { .. } => "popularity layering".into(),
                    Reason::Auto { .. } => "auto-layer".into(),
                    Reason::Pipeline { group, of, .. } => format!("layeringPipeline group {group} of {of}"),
                },
                None => "store paths of the conf".into(),
            },
        }
    }
}

/// A path among the biggest, and the references that pull it in.
#[derive(Debug, Clone)]
pub struct Big {
    pub path: String,
    pub size: u64,
    pub layer: usize,
    /// From a root of the closure (a path nothing else references) down to
    /// the path; empty without a closure graph.
    pub chain: Vec<String>,
}

/// Regular files of the same content in several store paths.
#[derive(Debug, Clone)]
pub struct Duplicate {
    pub size: u64,
    pub files: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Explained {
    pub image_id: Digest,
    pub repo_tag: String,
    pub compression: Compression,
    pub layers: Vec<LayerInfo>,
    pub config_size: u64,
    pub biggest: Vec<Big>,
    pub duplicates: Vec<Duplicate>,
}

impl Explained {
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.diff_id.size).sum()
    }
    pub fn duplicated_bytes(&self) -> u64 {
        self.duplicates.iter().map(|d| d.size * (d.files.len() as u64 - 1)).sum()
    }
    /// Compressed bytes of the image (layers and config), if every blob is known.
    pub fn compressed_size(&self) -> Option<u64> {
        self.layers.iter().map(|l| l.blob.map(|b| b.size)).sum::<Option<u64>>().map(|s| s + self.config_size)
    }
}

/// Layers under this are worth merging: each costs a request and a mount.
pub const SMALL_LAYER: u64 = 100 << 10;
/// How many of the biggest paths are listed.
pub const BIGGEST: usize = 10;
/// Files smaller than this are not looked at for duplicates: hashing many
/// small files costs more than what sharing them would save.
pub const DUPLICATE_MIN: u64 = 16 << 10;

pub struct Options {
    pub compression: Compression,
    pub jobs: usize,
    pub blob_cache: Option<BlobCache>,
    pub decision: Option<Decision>,
}

/// Explains the image of `conf`. Layer digests the conf records are taken
/// as they are (`stream` checks them); the others are computed by reading
/// the layer once.
pub fn explain_conf(conf: &Conf, opts: &Options, cancel: &AtomicBool) -> Result<Explained, ExplainError> {
    let base = conf.from_image.as_deref().map(BaseImage::open).transpose()?;
    let produce_opts =
        produce::Options { compression: Compression::None, jobs: opts.jobs.max(1), retries: 1, blob_cache: None, keep_compression: false };
    let image = produce::write_image(conf, base.as_ref(), &crate::blob::Discard, &produce_opts, &Quiet, cancel)?;
    let n_base = base.as_ref().map_or(0, |b| b.layers.len());
    let key = opts.compression.key();
    let cached = |diff_id: &BlobDigest| opts.blob_cache.as_ref().and_then(|c| c.lookup(&key, diff_id));

    let reasons: Option<Vec<Vec<Reason>>> = match &opts.decision {
        Some(d) => {
            let names: Vec<Vec<String>> =
                conf.store_layers.iter().map(|l| l.iter().map(|p| why::normal(&String::from_utf8_lossy(&p.member_name))).collect()).collect();
            Some(why::explain_layers(d, &names)?)
        }
        None => None,
    };

    let mut layers = Vec::with_capacity(image.layers.len());
    let mut big_files: Vec<(u64, PathBuf, usize)> = Vec::new();
    let mut all_paths: Vec<(String, u64, usize)> = Vec::new();
    for (index, blob) in image.layers.iter().enumerate() {
        let diff_id = blob.diff_id;
        let mut info = LayerInfo { index, origin: Origin::Store, diff_id, blob: None, files: None, paths: Vec::new() };
        if let Some(b) = base.as_ref().filter(|_| index < n_base) {
            let layer = &b.layers[index];
            info.origin = Origin::Base { image: b.path.clone(), member: layer.name.clone() };
            let src = b.source_of(layer);
            info.files = count_base_members(b.layer_reader_at(src)).ok();
            info.blob = cached(&diff_id);
        } else if index < n_base + conf.store_layers.len() {
            let s = index - n_base;
            let paths = &conf.store_layers[s];
            info.paths = measure(paths, conf, reasons.as_ref().map(|r| &r[s][..]), index, &mut big_files)?;
            info.files = Some(info.paths.iter().map(|p| p.files).sum::<u64>() + 2);
            let sum: u64 = info.paths.iter().map(|p| p.size).sum();
            if sum > diff_id.size {
                return Err(ExplainError::Inconsistent { index, paths: sum, size: diff_id.size });
            }
            info.blob = conf.store_layer_digests[s].as_ref().and_then(|d| d.compressed.get(&key).copied()).or_else(|| cached(&diff_id));
            all_paths.extend(info.paths.iter().map(|p| (p.path.clone(), p.size, index)));
        } else {
            info.origin = Origin::Customisation { dir: conf.customisation_layer.0.clone() };
            let tar = conf.customisation_layer.1.join("layer.tar");
            let f = std::fs::File::open(&tar).map_err(|source| ExplainError::Read { what: tar.display().to_string(), source })?;
            info.files = count_members(f).ok();
            info.blob = conf.customisation_layer_digest.as_ref().and_then(|d| d.compressed.get(&key).copied()).or_else(|| cached(&diff_id));
        }
        if opts.compression.is_none() {
            info.blob = Some(diff_id);
        }
        layers.push(info);
    }

    all_paths.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all_paths.truncate(BIGGEST);
    let graph = match &opts.decision {
        Some(d) => Some(Graph::build(&d.raw, &d.graph_file)?),
        None => None,
    };
    let biggest = all_paths
        .into_iter()
        .map(|(path, size, layer)| {
            let chain = graph.as_ref().map(|g| chain_to(g, &path)).unwrap_or_default();
            Big { path, size, layer, chain }
        })
        .collect();
    Ok(Explained {
        image_id: image.config.digest.digest,
        repo_tag: conf.repo_tag.clone(),
        compression: opts.compression,
        layers,
        config_size: image.config_bytes.len() as u64,
        biggest,
        duplicates: duplicates(big_files),
    })
}

/// A store path measured, and its files big enough to check for duplicates.
type Measured = (PathInfo, Vec<(u64, PathBuf)>);

/// Each store path's tar bytes and member count, and the files worth
/// checking for duplicates.
fn measure(
    paths: &[StorePath],
    conf: &Conf,
    reasons: Option<&[Reason]>,
    layer: usize,
    big_files: &mut Vec<(u64, PathBuf, usize)>,
) -> Result<Vec<PathInfo>, ExplainError> {
    let measured: Vec<Result<Measured, ExplainError>> = paths
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let (mut size, mut files, mut big) = (0u64, 0u64, Vec::new());
            crate::layer::member_sizes(p, &conf.stamp, |entry, n| {
                size += n;
                files += 1;
                if let crate::layer::walk::Kind::Regular { size } = entry.kind {
                    if size >= DUPLICATE_MIN {
                        big.push((size, entry.path.clone()));
                    }
                }
            })
            .map_err(|source| ExplainError::Layer { path: p.as_written.clone(), source })?;
            let why = reasons.map(|r| r[i].clone());
            Ok((PathInfo { path: p.as_written.clone(), size, files, why }, big))
        })
        .collect();
    let mut out = Vec::with_capacity(paths.len());
    for (k, m) in measured.into_iter().enumerate() {
        let (info, big) = m?;
        // Store paths are numbered image-wide so that duplicates inside
        // one path are told from duplicates across paths.
        let id = layer << 32 | k;
        big_files.extend(big.into_iter().map(|(s, p)| (s, p, id)));
        out.push(info);
    }
    Ok(out)
}

/// Files of equal size in different store paths, hashed to find those of
/// equal content.
fn duplicates(mut files: Vec<(u64, PathBuf, usize)>) -> Vec<Duplicate> {
    files.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut candidates: Vec<&[(u64, PathBuf, usize)]> = Vec::new();
    for group in files.chunk_by(|a, b| a.0 == b.0) {
        if group.iter().any(|f| f.2 != group[0].2) {
            candidates.push(group);
        }
    }
    let mut out: Vec<Duplicate> = candidates
        .par_iter()
        .flat_map_iter(|group| {
            let mut by_hash: HashMap<[u8; 32], Vec<&(u64, PathBuf, usize)>> = HashMap::new();
            for f in group.iter() {
                if let Ok(h) = blake3_file(&f.1) {
                    by_hash.entry(h).or_default().push(f);
                }
            }
            let mut found: Vec<Duplicate> = by_hash
                .into_values()
                .filter(|fs| fs.iter().any(|f| f.2 != fs[0].2))
                .map(|fs| Duplicate { size: fs[0].0, files: fs.iter().map(|f| f.1.display().to_string()).collect() })
                .collect();
            found.sort_by(|a, b| a.files.cmp(&b.files));
            found
        })
        .collect();
    out.sort_by(|a, b| (b.size * (b.files.len() as u64 - 1)).cmp(&(a.size * (a.files.len() as u64 - 1))).then_with(|| a.files.cmp(&b.files)));
    out
}

fn blake3_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path)?)?;
    Ok(*h.finalize().as_bytes())
}

/// A base layer member may be compressed; its tar is what counts.
fn count_base_members(mut r: impl Read) -> std::io::Result<u64> {
    use crate::image::decode;
    let mut head = [0u8; 8];
    let n = decode::read_head(&mut r, &mut head)?;
    let whole = std::io::Cursor::new(head[..n].to_vec()).chain(r);
    count_members(decode::reader(decode::sniff(&head[..n]), whole)?)
}

fn count_members(r: impl Read) -> std::io::Result<u64> {
    use crate::tar::reader::{Dialect, Reader, Streamed};
    let mut ar = Reader::new(Streamed(r), Dialect::Go);
    let mut n = 0;
    while ar.next_entry().map_err(std::io::Error::other)?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// The shortest reference chain from a root of the closure to `path`.
fn chain_to(graph: &Graph, path: &str) -> Vec<String> {
    let Some(&target) = graph.index.get(path).or_else(|| graph.index.get(&why::normal(path))) else {
        return Vec::new();
    };
    let parents = graph.parents();
    let mut came_from: HashMap<u32, u32> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([target]);
    let mut root = target;
    while let Some(v) = queue.pop_front() {
        if parents[v as usize].is_empty() {
            root = v;
            break;
        }
        for &p in &parents[v as usize] {
            if p != target && !came_from.contains_key(&p) {
                came_from.insert(p, v);
                queue.push_back(p);
            }
        }
    }
    let mut chain = vec![graph.paths[root as usize].clone()];
    let mut v = root;
    while v != target {
        v = came_from[&v];
        chain.push(graph.paths[v as usize].clone());
    }
    chain
}

/// Human byte counts: 1.2 MiB.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

pub use report::{json, text, write_json};
