//! The digests a conf records ahead of time (`store_layer_digests`,
//! `customisation_layer_digest`), so that `stream` reads each layer once
//! and `copy` knows every blob before reading a byte.

use crate::blob::Discard;
use crate::blob::compress::Compression;
use crate::blob::produce::{self, LayerBlob, ProduceError};
use crate::conf::{Conf, LayerDigest};
use crate::image::Quiet;
use crate::image::base::BaseImage;
use std::sync::atomic::AtomicBool;

/// Each store layer's digest and the customisation layer's.
pub struct Recorded {
    pub store_layers: Vec<LayerDigest>,
    /// Only with a compression (its blob digests are recorded too).
    pub customisation: Option<LayerDigest>,
}

/// The tars' digests alone, or with `compression` their blobs' as well.
/// Digests of other compressions the conf recorded earlier stay where the
/// tar is unchanged; with `recompute`, recorded digests of this
/// compression are not trusted but made again.
pub fn record(
    conf: &Conf,
    base: Option<&BaseImage>,
    compression: Option<Compression>,
    jobs: usize,
    recompute: bool,
    cancel: &AtomicBool,
) -> Result<Recorded, ProduceError> {
    let Some(compression) = compression else {
        let store_layers = crate::dest::docker_archive::store_layer_digests(conf, cancel)?;
        return Ok(Recorded { store_layers, customisation: None });
    };
    let old = conf.store_layer_digests.clone();
    let old_custom = conf.customisation_layer_digest.clone();
    let mut conf = conf.clone();
    if recompute {
        conf.store_layer_digests.iter_mut().for_each(|d| *d = None);
        conf.customisation_layer_digest = None;
    }
    let opts = produce::Options { compression, jobs: jobs.max(1), retries: 1, blob_cache: None, keep_compression: false };
    // Into a store that keeps nothing and claims every blob: the layers
    // whose digests are known are not even read.
    let image = produce::write_image(&conf, base, &Discard, &opts, &Quiet, cancel)?;
    let key = compression.key();
    let merged = |l: &LayerBlob, before: Option<&LayerDigest>| {
        let mut d = before.filter(|b| b.digest == l.diff_id.digest).cloned().unwrap_or_default();
        d.digest = l.diff_id.digest;
        d.size = l.diff_id.size;
        d.compressed.insert(key.clone(), l.blob.digest);
        d
    };
    let skip = base.map_or(0, |b| b.layers.len());
    let n = conf.store_layers.len();
    let store_layers = image.layers[skip..skip + n].iter().zip(&old).map(|(l, before)| merged(l, before.as_ref())).collect();
    Ok(Recorded { store_layers, customisation: Some(merged(&image.layers[skip + n], old_custom.as_ref())) })
}
