//! Explaining an image read from elsewhere (`oci:`, `oci-archive:`,
//! `docker-archive:`, as `copy` reads them) rather than from its conf.
//!
//! Each layer is read once, as a stream: decompressed as its first bytes
//! say (as `copy` and `docker load` do), hashed (its diff_id must be the
//! one the config names) and walked member by member, each member counted
//! with the bytes it takes in the tar and given to the store path it lies
//! under. Memory follows the number of store paths in a layer, not its bytes.
//!
//! An image does not record why a path is where it is: whether a layer
//! came from `fromImage`, the closure or the customisation layer cannot
//! be told from the bytes alone, and the report says so.

use super::{ExplainError, Explained, LayerInfo, Options, Origin, PathInfo};
use crate::blob::compress::Compression;
use crate::blob::produce::Foreign;
use crate::digest::{BlobDigest, Digest};
use crate::image::ImageError;
use crate::image::decode::{self, HashSink};
use crate::source::ImageSource;
use crate::tar::reader::{Dialect, Reader, Streamed};
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Explains `image`; the store paths of each layer are those its tar
/// holds under `/nix/store`.
pub fn explain_image(image: &ImageSource, opts: &Options, cancel: &AtomicBool) -> Result<Explained, ExplainError> {
    let layers = image.layers();
    let key = opts.compression.key();
    let read: Vec<Result<LayerInfo, ExplainError>> = layers
        .par_iter()
        .enumerate()
        .map(|(index, layer)| {
            let read = read_layer(layer, cancel)?;
            let blob = if opts.compression.is_none() {
                Some(read.tar)
            } else {
                // As the image has it when a copy keeps it as it is (same
                // compression), else what the blob cache remembers.
                layer
                    .stored
                    .filter(|_| same_compression(read.kind, opts.compression))
                    .or_else(|| opts.blob_cache.as_ref().and_then(|c| c.lookup(&key, &read.tar)))
            };
            Ok(LayerInfo {
                index,
                origin: Origin::Image { label: image.label.clone() },
                diff_id: read.tar,
                blob,
                files: Some(read.files),
                paths: read.paths,
            })
        })
        .collect();
    let layers = read.into_iter().collect::<Result<Vec<_>, _>>()?;
    let mut all: Vec<(&PathInfo, usize)> = layers.iter().flat_map(|l| l.paths.iter().map(move |p| (p, l.index))).collect();
    all.sort_by(|a, b| b.0.size.cmp(&a.0.size).then_with(|| a.0.path.cmp(&b.0.path)));
    let biggest =
        all.into_iter().take(super::BIGGEST).map(|(p, layer)| super::Big { path: p.path.clone(), size: p.size, layer, chain: Vec::new() }).collect();
    Ok(Explained {
        image_id: Digest::of(&image.config_bytes),
        repo_tag: image.reference.clone().unwrap_or_else(|| image.label.clone()),
        compression: opts.compression,
        layers,
        config_size: image.config_bytes.len() as u64,
        biggest,
        // Finding equal files needs their contents side by side; an image
        // is read one member at a time.
        duplicates: Vec::new(),
    })
}

/// Whether `copy` keeps a layer stored as `kind` as it is for `target`.
fn same_compression(kind: decode::Compression, target: Compression) -> bool {
    matches!((kind, target), (decode::Compression::Gzip, Compression::Gzip { .. }) | (decode::Compression::Zstd, Compression::Zstd { .. }))
}

struct LayerRead {
    kind: decode::Compression,
    tar: BlobDigest,
    files: u64,
    paths: Vec<PathInfo>,
}

fn read_layer(layer: &Foreign<'_>, cancel: &AtomicBool) -> Result<LayerRead, ExplainError> {
    let fail = |what: String| ExplainError::Produce(ImageError::SourceLayer { image: layer.image.clone(), name: layer.name.clone(), what }.into());
    let mut r = (layer.open)().map_err(|e| fail(format!("cannot read it: {e}")))?;
    let mut head = [0u8; 8];
    let n = decode::read_head(&mut r, &mut head).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let kind = decode::sniff(&head[..n]);
    let whole = io::Cursor::new(head[..n].to_vec()).chain(r);
    let tar = decode::reader(kind, whole).map_err(|e| fail(format!("cannot start its {} decoder: {e}", kind.name())))?;
    let mut hashed = Hashed { inner: tar, sink: HashSink::new() };
    let mut by_path: HashMap<String, usize> = HashMap::new();
    let mut paths: Vec<PathInfo> = Vec::new();
    let mut files = 0u64;
    {
        // As docker unpacks it (Go's archive/tar).
        let mut ar = Reader::new(Streamed(&mut hashed), Dialect::Go);
        let mut end_of_last = 0u64;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(ExplainError::Produce(ImageError::Interrupted.into()));
            }
            let Some(entry) = ar.next_entry().map_err(|e| fail(format!("member {}: {e}", files + 1)))? else { break };
            // A member takes the bytes from the end of the one before
            // (its own extension headers included) to the end of its
            // data, padded to a block.
            let data = if entry.has_data() { entry.size() } else { 0 };
            let end = (entry.data_offset + data).div_ceil(512) * 512;
            let span = end.saturating_sub(end_of_last);
            end_of_last = end;
            files += 1;
            let Some(store_path) = store_path_of(entry.name()) else { continue };
            let i = *by_path.entry(store_path.clone()).or_insert_with(|| {
                paths.push(PathInfo { path: store_path, size: 0, files: 0, why: None });
                paths.len() - 1
            });
            paths[i].size += span;
            paths[i].files += 1;
        }
    }
    // The end-of-archive blocks and whatever pads the tar count too.
    io::copy(&mut hashed, &mut io::sink()).map_err(|e| fail(format!("cannot read or decompress it: {e}")))?;
    let tar = hashed.sink.finish();
    if tar.digest != layer.diff_id {
        return Err(fail(format!("its tar hashes to {}, not the diff_id {} its config names", tar.digest, layer.diff_id)));
    }
    Ok(LayerRead { kind, tar, files, paths })
}

/// `/nix/store/HASH-NAME` for a member at or under it, whichever way the
/// archive spells it (`/nix/store`, `nix/store`, `./nix/store`).
fn store_path_of(name: &[u8]) -> Option<String> {
    let name = String::from_utf8_lossy(name);
    let rest = name.trim_start_matches("./").trim_start_matches('/').strip_prefix("nix/store/")?;
    let first = rest.split('/').next().filter(|s| !s.is_empty())?;
    Some(format!("/nix/store/{first}"))
}

/// Hashes and counts the tar as it is read.
struct Hashed<R> {
    inner: R,
    sink: HashSink,
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::store_path_of;

    #[test]
    fn store_paths_whichever_way_spelt() {
        for name in ["/nix/store/abc-x/bin/sh", "nix/store/abc-x/", "./nix/store/abc-x", "nix/store/abc-x/a/b"] {
            assert_eq!(store_path_of(name.as_bytes()).as_deref(), Some("/nix/store/abc-x"), "{name}");
        }
        for name in ["nix/store/", "/nix/", "etc/passwd", "bin/nix/store/abc-x"] {
            assert_eq!(store_path_of(name.as_bytes()), None, "{name}");
        }
    }
}
