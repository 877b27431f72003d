//! The OCI manifest and image index bytes every OCI destination writes
//! (layouts, archives, registries), and the media types they use.

use crate::digest::{BlobDigest, Digest};
use crate::image::decode::Compression;
use oci_spec::image::{Descriptor, ImageIndexBuilder, ImageManifestBuilder, MediaType, Sha256Digest};
use std::str::FromStr;

/// The annotation that names an image in a layout, as skopeo and umoci
/// read it.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// A blob as a manifest names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: BlobDigest,
}

impl Blob {
    pub fn new(media_type: impl Into<String>, digest: BlobDigest) -> Blob {
        Blob { media_type: media_type.into(), digest }
    }

    /// The blob as an OCI descriptor.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(MediaType::from(self.media_type.as_str()), self.digest.size, oci_digest(&self.digest.digest))
    }
}

/// A [`Digest`] is valid sha256 by construction, which is all oci-spec checks.
fn oci_digest(d: &Digest) -> Sha256Digest {
    Sha256Digest::from_str(&d.hex()).unwrap_or_else(|_| unreachable!("a Digest is 64 lowercase hex digits"))
}

/// The image manifest's bytes: OCI media types, config then layers, in
/// the order the image config's diff_ids list them.
pub fn manifest(config: &Blob, layers: &[Blob]) -> Vec<u8> {
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor())
        .layers(layers.iter().map(Blob::descriptor).collect::<Vec<_>>())
        .build()
        .expect("every required manifest field is set");
    serde_json::to_vec(&m).expect("a manifest serialises")
}

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// A manifest of a multi-platform image, and the platform it is for.
pub struct PlatformManifest {
    pub manifest: BlobDigest,
    pub architecture: String,
    pub os: String,
    /// The CPU variant (`v7`), where the image has one.
    pub variant: Option<String>,
}

/// An image index naming one manifest per platform.
pub fn image_index(manifests: &[PlatformManifest]) -> Vec<u8> {
    let descriptors: Vec<Descriptor> = manifests
        .iter()
        .map(|m| {
            let mut d = Blob::new(MANIFEST_MEDIA_TYPE, m.manifest).descriptor();
            let mut platform = oci_spec::image::PlatformBuilder::default()
                .architecture(oci_spec::image::Arch::from(m.architecture.as_str()))
                .os(oci_spec::image::Os::from(m.os.as_str()))
                .build()
                .expect("every required platform field is set");
            platform.set_variant(m.variant.clone());
            d.set_platform(Some(platform));
            d
        })
        .collect();
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(descriptors)
        .build()
        .expect("every required index field is set");
    serde_json::to_vec(&index).expect("an index serialises")
}

/// How a layer media type says its blob is stored: `Some(Some(c))` for
/// an OCI layer type, which decides; `Some(None)` for a Docker one, whose
/// compression is found by its magic, as docker and containers/image find
/// it (podman's docker-dir labels uncompressed layers `.tar.gzip`);
/// `None` for a media type that is not an image layer.
pub fn layer_compression(media_type: &str) -> Option<Option<Compression>> {
    let oci = media_type
        .strip_prefix("application/vnd.oci.image.layer.v1.")
        .or_else(|| media_type.strip_prefix("application/vnd.oci.image.layer.nondistributable.v1."));
    let docker = media_type
        .strip_prefix("application/vnd.docker.image.rootfs.diff.")
        .or_else(|| media_type.strip_prefix("application/vnd.docker.image.rootfs.foreign.diff."));
    match (oci, docker) {
        (Some("tar"), _) => Some(Some(Compression::None)),
        (Some("tar+gzip"), _) => Some(Some(Compression::Gzip)),
        (Some("tar+zstd"), _) => Some(Some(Compression::Zstd)),
        (_, Some("tar" | "tar.gzip" | "tar.zstd")) => Some(None),
        _ => None,
    }
}
