//! What changes between two builds of an image, and what a push of the
//! second to a registry holding the first uploads.
//!
//! Compression is deterministic (the same tar gives the same blob on every
//! run and machine), so a layer of B whose diff_id A has is a blob the
//! registry has: only B's other layers, and its config if it differs, are
//! uploaded. Those layers are compressed here (or found in the blob cache
//! or the conf's recorded digests) to count their bytes.

use super::{ExplainError, Explained, LayerInfo, Origin, human};
use crate::blob::compress::{Compression, Encoder};
use crate::blob::produce;
use crate::blob::{Discard, Hashing};
use crate::conf::Conf;
use crate::digest::{BlobDigest, Digest};
use crate::image::Quiet;
use crate::image::base::BaseImage;
use crate::source::ImageSource;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, Read};
use std::sync::atomic::AtomicBool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Kept,
    Added,
    Removed,
    Changed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Kept => "kept",
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Changed => "changed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Change {
    pub status: Status,
    /// The layer's index in A and in B.
    pub a: Option<usize>,
    pub b: Option<usize>,
    /// B's layer (A's for a removed one).
    pub diff_id: BlobDigest,
    /// Compressed bytes a push of B after A sends for this layer.
    pub upload: u64,
    pub paths_added: Vec<String>,
    pub paths_removed: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Diff {
    pub a: Explained,
    pub b: Explained,
    pub changes: Vec<Change>,
    /// The config blob's bytes when it is new to the registry.
    pub config_upload: u64,
}

impl Diff {
    /// Compressed bytes a push of B to a registry holding A sends: B's new
    /// layer blobs and its config.
    pub fn upload_bytes(&self) -> u64 {
        self.changes.iter().map(|c| c.upload).sum::<u64>() + self.config_upload
    }
}

/// A store path's name without its hash: what stays when a package is rebuilt.
fn name_of(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split_once('-').map_or(base, |(_, n)| n)
}

fn same_kind(a: &Origin, b: &Origin) -> bool {
    matches!(
        (a, b),
        (Origin::Base { .. }, Origin::Base { .. })
            | (Origin::Store, Origin::Store)
            | (Origin::Customisation { .. }, Origin::Customisation { .. })
            // An image's layer may have been any of them: its paths decide.
            | (Origin::Image { .. }, _)
            | (_, Origin::Image { .. })
    )
}

/// How much two layers look like one changed layer: shared package names.
fn likeness(a: &LayerInfo, b: &LayerInfo) -> usize {
    match (&a.origin, &b.origin) {
        (Origin::Customisation { .. }, Origin::Customisation { .. }) => 1,
        (Origin::Base { .. }, Origin::Base { .. }) => usize::from(a.index == b.index),
        _ => {
            let names: HashSet<&str> = a.paths.iter().map(|p| name_of(&p.path)).collect();
            b.paths.iter().filter(|p| names.contains(name_of(&p.path))).count()
        }
    }
}

/// What B was explained from: it makes the blobs of B's new layers whose
/// compressed sizes nobody recorded.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    Conf(&'a Conf),
    Image(&'a ImageSource),
}

/// Compares A and B.
pub fn diff(a: Explained, mut b: Explained, input_b: Input<'_>, jobs: usize, cancel: &AtomicBool) -> Result<Diff, ExplainError> {
    let in_a: HashSet<Digest> = a.layers.iter().map(|l| l.diff_id.digest).collect();
    let in_b: HashSet<Digest> = b.layers.iter().map(|l| l.diff_id.digest).collect();
    fill_blobs(&mut b, input_b, &in_a, jobs, cancel)?;

    let mut a_free: Vec<bool> = a.layers.iter().map(|l| !in_b.contains(&l.diff_id.digest)).collect();
    let mut uploaded: HashSet<Digest> = HashSet::new();
    let mut changes = Vec::new();
    for lb in &b.layers {
        if in_a.contains(&lb.diff_id.digest) {
            let ia = a.layers.iter().position(|l| l.diff_id.digest == lb.diff_id.digest);
            changes.push(Change {
                status: Status::Kept,
                a: ia,
                b: Some(lb.index),
                diff_id: lb.diff_id,
                upload: 0,
                paths_added: vec![],
                paths_removed: vec![],
            });
            continue;
        }
        let upload = if uploaded.insert(lb.diff_id.digest) { lb.blob.map_or(0, |x| x.size) } else { 0 };
        let partner = a
            .layers
            .iter()
            .filter(|la| a_free[la.index] && same_kind(&la.origin, &lb.origin))
            .map(|la| (likeness(la, lb), la.index))
            .filter(|(score, _)| *score > 0)
            .max_by_key(|(score, i)| (*score, std::cmp::Reverse(*i)));
        let (status, ia, added, removed) = match partner {
            Some((_, ia)) => {
                a_free[ia] = false;
                let old: HashSet<&str> = a.layers[ia].paths.iter().map(|p| p.path.as_str()).collect();
                let new: HashSet<&str> = lb.paths.iter().map(|p| p.path.as_str()).collect();
                let added = lb.paths.iter().filter(|p| !old.contains(p.path.as_str())).map(|p| p.path.clone()).collect();
                let removed = a.layers[ia].paths.iter().filter(|p| !new.contains(p.path.as_str())).map(|p| p.path.clone()).collect();
                (Status::Changed, Some(ia), added, removed)
            }
            None => (Status::Added, None, lb.paths.iter().map(|p| p.path.clone()).collect(), vec![]),
        };
        changes.push(Change { status, a: ia, b: Some(lb.index), diff_id: lb.diff_id, upload, paths_added: added, paths_removed: removed });
    }
    for la in a.layers.iter().filter(|l| a_free[l.index]) {
        changes.push(Change {
            status: Status::Removed,
            a: Some(la.index),
            b: None,
            diff_id: la.diff_id,
            upload: 0,
            paths_added: vec![],
            paths_removed: la.paths.iter().map(|p| p.path.clone()).collect(),
        });
    }
    let config_upload = if a.image_id == b.image_id { 0 } else { b.config_size };
    Ok(Diff { a, b, changes, config_upload })
}

/// Gives every layer of B that A lacks its compressed blob.
fn fill_blobs(b: &mut Explained, input: Input<'_>, in_a: &HashSet<Digest>, jobs: usize, cancel: &AtomicBool) -> Result<(), ExplainError> {
    let compression = b.compression;
    let conf = match input {
        Input::Conf(conf) => Some(conf),
        Input::Image(_) => None,
    };
    let base = conf.and_then(|c| c.from_image.as_deref()).map(BaseImage::open).transpose()?;
    let foreign = match input {
        Input::Image(image) => image.layers(),
        Input::Conf(_) => Vec::new(),
    };
    let n_base = base.as_ref().map_or(0, |x| x.layers.len());
    let opts = produce::Options {
        compression,
        jobs: jobs.max(1),
        retries: 1,
        blob_cache: crate::blob::cache::BlobCache::from_env(),
        keep_compression: false,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| ExplainError::Read { what: "threads".into(), source: io::Error::other(e) })?;
    let mut done: HashMap<Digest, BlobDigest> = HashMap::new();
    for l in b.layers.iter_mut() {
        if l.blob.is_some() || in_a.contains(&l.diff_id.digest) {
            continue;
        }
        if let Some(&blob) = done.get(&l.diff_id.digest) {
            l.blob = Some(blob);
            continue;
        }
        let blob = match &l.origin {
            Origin::Store => {
                let conf = conf.expect("a store layer comes from a conf");
                let paths = &conf.store_layers[l.index - n_base];
                produce::store_layer_blob(paths, &conf.stamp, &Discard, &opts, &Quiet, cancel)?.blob.digest
            }
            Origin::Customisation { .. } => {
                let conf = conf.expect("the customisation layer comes from a conf");
                let tar = conf.customisation_layer.1.join("layer.tar");
                let f = std::fs::File::open(&tar).map_err(|source| ExplainError::Read { what: tar.display().to_string(), source })?;
                compressed(f, compression, &pool).map_err(|source| ExplainError::Read { what: tar.display().to_string(), source })?
            }
            Origin::Base { member, .. } => {
                let base = base.as_ref().expect("a base layer has a base image");
                let layer = base.source_of(&base.layers[l.index]);
                let mut r = base.layer_reader_at(layer);
                let mut head = [0u8; 8];
                let what = |source| ExplainError::Read { what: format!("base layer {member}"), source };
                let n = crate::image::decode::read_head(&mut r, &mut head).map_err(what)?;
                let whole = io::Cursor::new(head[..n].to_vec()).chain(r);
                let tar = crate::image::decode::reader(crate::image::decode::sniff(&head[..n]), whole).map_err(what)?;
                compressed(tar, compression, &pool).map_err(what)?
            }
            Origin::Image { label } => {
                let layer = &foreign[l.index];
                let what = |source| ExplainError::Read { what: format!("layer {} of {label}", layer.name), source };
                let mut r = (layer.open)().map_err(what)?;
                let mut head = [0u8; 8];
                let n = crate::image::decode::read_head(&mut r, &mut head).map_err(what)?;
                let whole = io::Cursor::new(head[..n].to_vec()).chain(r);
                let tar = crate::image::decode::reader(crate::image::decode::sniff(&head[..n]), whole).map_err(what)?;
                compressed(tar, compression, &pool).map_err(what)?
            }
        };
        done.insert(l.diff_id.digest, blob);
        l.blob = Some(blob);
    }
    Ok(())
}

/// The blob `tar` compresses to, as `copy` makes it.
fn compressed(mut tar: impl Read, compression: Compression, pool: &rayon::ThreadPool) -> io::Result<BlobDigest> {
    let mut enc = Encoder::new(compression, Hashing::new(io::sink()), pool, pool.current_num_threads())?;
    io::copy(&mut tar, &mut enc)?;
    Ok(enc.finish()?.finish().1)
}

/// `diff --json`.
pub fn json(d: &Diff) -> Value {
    json!({
        "a": {"image_id": d.a.image_id.to_string(), "size": d.a.size()},
        "b": {"image_id": d.b.image_id.to_string(), "size": d.b.size()},
        "compression": d.b.compression.key(),
        "layers": d.changes.iter().map(|c| json!({
            "status": c.status.name(),
            "index": c.b,
            "index_a": c.a,
            "diff_id": c.diff_id.digest.to_string(),
            "size": c.diff_id.size,
            "upload": c.upload,
            "paths_added": c.paths_added,
            "paths_removed": c.paths_removed,
        })).collect::<Vec<_>>(),
        "config_upload": d.config_upload,
        "upload_bytes": d.upload_bytes(),
    })
}

/// `diff`'s text.
pub fn text(d: &Diff) -> String {
    let mut out = String::new();
    let count = |s: Status| d.changes.iter().filter(|c| c.status == s).count();
    let _ = writeln!(
        out,
        "{} -> {}: {} -> {}; {} kept, {} changed, {} added, {} removed",
        d.a.image_id.short(),
        d.b.image_id.short(),
        human(d.a.size()),
        human(d.b.size()),
        count(Status::Kept),
        count(Status::Changed),
        count(Status::Added),
        count(Status::Removed)
    );
    let _ =
        writeln!(out, "a push of B to a registry holding A uploads {} ({} bytes, {})", human(d.upload_bytes()), d.upload_bytes(), d.b.compression);
    for c in &d.changes {
        let at = match (c.a, c.b) {
            (Some(a), Some(b)) if a != b => format!("layer {b} (was {a})"),
            (_, Some(b)) => format!("layer {b}"),
            (Some(a), None) => format!("layer {a} of A"),
            (None, None) => unreachable!("a change names a layer"),
        };
        let upload = if c.upload > 0 { format!(", uploads {}", human(c.upload)) } else { String::new() };
        let _ = writeln!(out, "  {:<8} {at} {} {}{upload}", c.status.name(), c.diff_id.digest.short(), human(c.diff_id.size));
        for p in &c.paths_added {
            let _ = writeln!(out, "             + {p}");
        }
        for p in &c.paths_removed {
            let _ = writeln!(out, "             - {p}");
        }
    }
    out
}
