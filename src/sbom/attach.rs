//! The documents `copy --sbom FORMAT --provenance` attaches to each image
//! it writes: made from the conf's closure graph once the image is
//! written, so that its layers are not read a second time (their diff_ids
//! come from the image) and the provenance names the manifest written.

use super::closure::{self, CLOSURE_GRAPH_KEY, Closure};
use super::provenance::{self, BuildInputs, Subject};
use super::{cyclonedx, describe, meta::Meta, spdx};
use crate::blob::produce::Image;
use crate::conf::Conf;
use crate::dest::CopyError;
use crate::dest::referrers::{Attachments, Document};
use crate::image::base::BaseImage;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Which SBOM format to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Spdx,
    CycloneDx,
}

/// One conf's image, and what its documents are made from.
pub struct Input<'a> {
    pub conf: &'a Conf,
    pub base: Option<&'a BaseImage>,
    pub closure: Closure,
    pub meta: Meta,
    /// What the provenance records of the build beyond the conf.
    pub build: BuildInputs,
}

/// The documents for every image of a copy, in the job's order (`None`
/// for an image source, which carries its own referrers).
pub struct Documents<'a> {
    pub sbom: Option<Format>,
    pub provenance: bool,
    pub inputs: Vec<Option<Input<'a>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("{file}: cannot read: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: invalid JSON: {source}")]
    Json { file: String, source: serde_json::Error },
    #[error(
        "{file}: no \"{CLOSURE_GRAPH_KEY}\" key, which --sbom and --provenance describe the image from: make the conf with `layered-image conf --closure-graph`"
    )]
    NoGraph { file: String },
    #[error(transparent)]
    Closure(#[from] closure::ClosureError),
}

/// The closure graph a conf file records (`conf --closure-graph`).
pub fn conf_closure(conf: &Path) -> Result<Closure, AttachError> {
    let file = conf.display().to_string();
    let text = crate::input::read_limited(conf, crate::input::JSON_LIMIT).map_err(|source| AttachError::Read { file: file.clone(), source })?;
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|source| AttachError::Json { file: file.clone(), source })?;
    let graph = value.get(CLOSURE_GRAPH_KEY).ok_or_else(|| AttachError::NoGraph { file: file.clone() })?;
    Ok(closure::from_value(graph, None, &format!("{file} key \"{CLOSURE_GRAPH_KEY}\""))?)
}

impl Attachments for Documents<'_> {
    fn documents(&self, source: usize, image: &Image) -> Result<Vec<Document>, CopyError> {
        let Some(Some(input)) = self.inputs.get(source) else { return Ok(Vec::new()) };
        // The store layers' diff_ids as just written: nothing is read again.
        let mut conf = input.conf.clone();
        let first_store = input.base.map_or(0, |b| b.layers.len());
        for (i, known) in conf.store_layer_digests.iter_mut().enumerate() {
            if known.is_none() {
                *known = image.layers.get(first_store + i).map(|l| crate::conf::LayerDigest {
                    digest: l.diff_id.digest,
                    size: l.diff_id.size,
                    compressed: Default::default(),
                });
            }
        }
        let described = describe(&conf, input.base, &input.closure, &input.meta, &AtomicBool::new(false))?;
        if described.image_id != image.config.digest.digest.hex() {
            return Err(CopyError::Unsupported(format!(
                "the SBOM describes image sha256:{}, but the image written is {}",
                described.image_id, image.config.digest.digest
            )));
        }
        let created = Some(described.created.clone());
        let mut docs = Vec::new();
        match self.sbom {
            Some(Format::Spdx) => {
                docs.push(Document { media_type: spdx::MEDIA_TYPE.into(), bytes: spdx::document(&described), created: created.clone() })
            }
            Some(Format::CycloneDx) => {
                docs.push(Document { media_type: cyclonedx::MEDIA_TYPE.into(), bytes: cyclonedx::document(&described), created: created.clone() })
            }
            None => {}
        }
        if self.provenance {
            let subject = Subject { name: described.name.clone(), manifest_sha256: image.manifest.digest.hex() };
            docs.push(Document {
                media_type: provenance::MEDIA_TYPE.into(),
                bytes: provenance::statement(&described, &[subject], &input.build),
                created,
            });
        }
        Ok(docs)
    }
}
