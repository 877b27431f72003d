//! The image every destination writes: base layers, store layers, the
//! customisation layer, then the config and manifest. What is shared by
//! all writers lives here, so that a docker-archive, an OCI layout and a
//! registry push name the same image by the same config bytes.

pub mod base;
pub mod config;
pub mod customisation;
pub mod decode;
pub mod gunzip;
pub mod manifest;
pub mod users;

use crate::conf::Conf;
use crate::digest::Digest;
use crate::layer::{LayerError, StorePath};
use base::BaseImage;
use config::{ConfigError, LayerRecord};
use std::io;
use std::path::PathBuf;

/// Why an image could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("layer {index} (store paths {paths}): {source}")]
    Layer { index: usize, paths: String, source: LayerError },
    #[error(
        "layer {index} (store paths {paths}) changed between hashing and streaming: its bytes no longer match \
         {expected} ({detail}); the image written so far is incomplete"
    )]
    Changed { index: usize, paths: String, expected: Digest, detail: String },
    #[error("layer {index} (store paths {paths}) changed while it was being written ({detail}); the image written so far is incomplete")]
    ChangedWhileWritten { index: usize, paths: String, detail: String },
    #[error("customisation layer {dir}: {what}")]
    Customisation { dir: PathBuf, what: String },
    #[error("base layer {name} of {image}: {what}")]
    BaseLayer { image: PathBuf, name: String, what: String },
    #[error("{image}: {what}")]
    Source { image: String, what: String },
    #[error("layer {name} of {image}: {what}")]
    SourceLayer { image: String, name: String, what: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Users(#[from] users::UsersError),
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

/// Where progress goes: nixpkgs' lines on stderr, and byte counts for a
/// terminal's bars.
pub trait Progress: Sync {
    fn line(&self, text: &str);
    fn advance(&self, _bytes: u64) {}
    /// Layers made several at a time: one starts (its tar's length, when
    /// known), advances, and is done.
    fn layer_started(&self, _index: usize, _size: Option<u64>) {}
    fn layer_advance(&self, _index: usize, _bytes: u64) {}
    fn layer_finished(&self, _index: usize) {}
}

/// Progress nobody reads.
pub struct Quiet;

impl Progress for Quiet {
    fn line(&self, _: &str) {}
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

/// The image config's bytes for `conf`'s layers `records` on top of
/// `base` (whose Env it inherits): what every destination names the image
/// by, so that its ID is nixpkgs'.
pub fn config_bytes(conf: &Conf, base: Option<&BaseImage>, records: &[LayerRecord]) -> Result<Vec<u8>, ImageError> {
    let config = match base {
        Some(base) => config::overlay_env(&base.config, conf.config.clone())?,
        None => conf.config.clone(),
    };
    Ok(config::image_config(&conf.created, &conf.architecture, conf.variant.as_deref(), config, records))
}

/// Store paths as nixpkgs' progress lines and errors list them.
pub fn paths_repr(paths: &[StorePath]) -> String {
    crate::pyjson::py_repr_str_list(&paths.iter().map(|p| p.as_written.as_str()).collect::<Vec<_>>())
}

/// A layer member named like a base layer of other content would make
/// `docker load` read one for the other.
pub fn refuse_shadowing(base: Option<&BaseImage>, digest: &Digest, what: impl Fn() -> String) -> Result<(), ImageError> {
    match base.and_then(|b| b.shadowed_by(digest).map(|l| (b, l))) {
        None => Ok(()),
        Some((b, l)) => Err(ImageError::BaseLayer {
            image: b.path.clone(),
            name: l.name.clone(),
            what: format!("{} would be written under the same name (or a path inside it) with other content (its diff_id is {})", what(), l.diff_id),
        }),
    }
}
