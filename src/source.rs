//! Images as what `copy` reads, besides confs: an OCI layout
//! (`oci:DIR[:REF]`), an oci-archive, a docker-archive. Only the manifest
//! and config are read up front; each layer's blob is read once, while it
//! is copied, and checked there against the digest its manifest names and
//! the diff_id its config names (see [`crate::blob::produce::copy_image`]).

use crate::blob::produce::{Foreign, Image};
use crate::dest::Name;
use crate::dest::referrers::Referrer;
use crate::digest::{BlobDigest, Digest};
use crate::image::ImageError;
use crate::image::base::{BaseImage, JSON_MEMBER_LIMIT};
use crate::image::decode::Compression;
use crate::image::manifest::Blob;
use crate::verify::archive::Archive;
use serde_json::Value;
use std::io::{self, Read};
use std::path::PathBuf;

/// An image opened for copying.
pub struct ImageSource {
    /// How messages name it (`oci:DIR:REF`, ...).
    pub label: String,
    /// The config as stored: the image keeps its ID.
    pub config_bytes: Vec<u8>,
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    /// The reference the source was named with, if any (a destination
    /// without one of its own names the image by it).
    pub reference: Option<String>,
    /// The image's manifest in a layout (a docker-archive has none).
    pub manifest: Option<BlobDigest>,
    /// That manifest as stored, and the descriptors it names (config,
    /// then layers): written as it is when every blob is kept as it is.
    pub manifest_bytes: Option<Vec<u8>>,
    pub named: Vec<Blob>,
    /// The index.json entry that named the image: its annotations and
    /// platform go to the destination's entry.
    pub entry: Option<Value>,
    /// The layout's other index.json entries: where its referrers are.
    others: Vec<Value>,
    layers: Vec<Layer>,
    reader: Reader,
}

struct Layer {
    /// Its file or member name in the source.
    name: String,
    media_type: Option<String>,
    diff_id: Digest,
    stored: Option<BlobDigest>,
    compression: Option<Compression>,
}

enum Reader {
    Dir(PathBuf),
    Archive(Archive),
    Docker(BaseImage),
}

/// Referrers' blobs (SBOMs, statements) are read whole to be copied.
const REFERRER_BLOB_LIMIT: u64 = 256 << 20;

const INDEX_TYPES: [&str; 2] = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];
const MANIFEST_TYPES: [&str; 2] = [crate::image::manifest::MANIFEST_MEDIA_TYPE, "application/vnd.docker.distribution.manifest.v2+json"];
const CONFIG_TYPES: [&str; 2] = [crate::image::manifest::CONFIG_MEDIA_TYPE, "application/vnd.docker.container.image.v1+json"];

impl ImageSource {
    /// The image `name` names; `None` for a name that is not an image
    /// source (`docker://`, `docker-daemon:`).
    pub fn open(name: &Name) -> Result<Option<ImageSource>, ImageError> {
        let label = name.to_string();
        let fail = |what: String| ImageError::Source { image: label.clone(), what };
        match name {
            Name::DockerArchive { path, reference } => {
                if reference.is_some() {
                    return Err(fail("a docker-archive source is read as its first image; name no reference".into()));
                }
                let base = BaseImage::open(path).map_err(|e| fail(e.detail()))?;
                let config: Value = serde_json::from_slice(&base.config_bytes).map_err(|e| fail(format!("its config is not valid JSON: {e}")))?;
                let layers = base
                    .layers
                    .iter()
                    .map(|l| Layer { name: l.name.clone(), media_type: None, diff_id: l.diff_id, stored: None, compression: None })
                    .collect();
                Ok(Some(ImageSource {
                    config_bytes: base.config_bytes.clone(),
                    architecture: string(&config, "architecture").unwrap_or("amd64").into(),
                    os: string(&config, "os").unwrap_or("linux").into(),
                    variant: string(&config, "variant").map(str::to_string),
                    reference: None,
                    manifest: None,
                    manifest_bytes: None,
                    named: Vec::new(),
                    entry: None,
                    others: Vec::new(),
                    layers,
                    reader: Reader::Docker(base),
                    label,
                }))
            }
            Name::Oci { dir, reference } => Self::layout(label, Reader::Dir(dir.clone()), reference.clone()).map(Some),
            Name::OciArchive { path, reference } => {
                // verify's errors lead with the path, which the label already names.
                let archive = Archive::open(path).map_err(|e| {
                    let text = e.to_string();
                    let lead = format!("{}: ", path.display());
                    fail(text.strip_prefix(&lead).map_or(text.clone(), str::to_string))
                })?;
                Self::layout(label, Reader::Archive(archive), reference.clone()).map(Some)
            }
            Name::Registry(_) | Name::DockerDaemon { .. } => Ok(None),
        }
    }

    fn layout(label: String, reader: Reader, reference: Option<String>) -> Result<ImageSource, ImageError> {
        let fail = |what: String| ImageError::Source { image: label.clone(), what };
        // What verify refuses, copy refuses: a reader that trusts the
        // marker would read something else.
        let (marker, _) = reader.json("oci-layout", None).map_err(|w| fail(format!("the layout marker: {w}")))?;
        match marker.get("imageLayoutVersion").and_then(Value::as_str) {
            Some("1.0.0") => {}
            Some(v) => return Err(fail(format!("oci-layout says imageLayoutVersion {v:?}, not \"1.0.0\""))),
            None => return Err(fail("oci-layout has no imageLayoutVersion string".into())),
        }
        let (index, _) = reader.json("index.json", None).map_err(&fail)?;
        let manifests = index.get("manifests").and_then(Value::as_array).ok_or_else(|| fail("index.json has no manifests list".into()))?;
        let desc = choose(manifests, reference.as_deref()).map_err(|w| fail(format!("index.json {w}")))?;
        let entry = desc.clone();
        let others: Vec<Value> = manifests.iter().filter(|d| !std::ptr::eq(*d, desc)).cloned().collect();
        let desc = descriptor(desc).map_err(|w| fail(format!("index.json: {w}")))?;
        if INDEX_TYPES.contains(&desc.0.as_str()) {
            return Err(fail("it names a multi-platform index; copy reads one platform's image".into()));
        }
        let manifest_name = blob_name(&desc.1.digest);
        let (manifest, manifest_bytes) = reader.json(&manifest_name, Some(&desc.1)).map_err(&fail)?;
        agrees(&manifest, &desc.0).map_err(|w| fail(format!("manifest {manifest_name}: {w}")))?;
        let config_desc = manifest.get("config").ok_or_else(|| fail("its manifest has no config".into()))?;
        let (config_type, config) = descriptor(config_desc).map_err(|w| fail(format!("the manifest's config: {w}")))?;
        if !CONFIG_TYPES.contains(&config_type.as_str()) {
            return Err(fail(format!(
                "manifest {manifest_name}: its config has the media type {config_type:?}, not an image config's (verify reads it as an artifact)"
            )));
        }
        let config_name = blob_name(&config.digest);
        let (config_value, config_bytes) = reader.json(&config_name, Some(&config)).map_err(|w| fail(format!("the config: {w}")))?;
        let diff_ids: Vec<Digest> = config_value
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .ok_or_else(|| fail("its config has no rootfs.diff_ids".into()))?
            .iter()
            .map(|d| d.as_str().and_then(|d| d.parse().ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| fail("its config's rootfs.diff_ids holds something other than sha256 digests".into()))?;
        let layer_descs = manifest.get("layers").and_then(Value::as_array).ok_or_else(|| fail("its manifest has no layers list".into()))?;
        if layer_descs.len() != diff_ids.len() {
            return Err(fail(format!("its manifest lists {} layers but its config {} diff_ids", layer_descs.len(), diff_ids.len())));
        }
        let mut layers = Vec::new();
        let mut named = vec![Blob::new(config_type, config)];
        for (i, (d, diff_id)) in layer_descs.iter().zip(diff_ids).enumerate() {
            let (media_type, stored) = descriptor(d).map_err(|w| fail(format!("the manifest's layers[{i}]: {w}")))?;
            let compression = crate::image::manifest::layer_compression(&media_type)
                .ok_or_else(|| fail(format!("layers[{i}] has the media type {media_type:?}, not a layer's")))?;
            named.push(Blob::new(media_type.clone(), stored));
            layers.push(Layer { name: blob_name(&stored.digest), media_type: Some(media_type), diff_id, stored: Some(stored), compression });
        }
        Ok(ImageSource {
            config_bytes,
            architecture: string(&config_value, "architecture").unwrap_or("amd64").into(),
            os: string(&config_value, "os").unwrap_or("linux").into(),
            variant: string(&config_value, "variant").map(str::to_string),
            reference,
            manifest: Some(desc.1),
            // An OCI destination labels the manifest as an OCI one.
            manifest_bytes: (desc.0 == crate::image::manifest::MANIFEST_MEDIA_TYPE).then_some(manifest_bytes),
            named,
            entry: Some(entry),
            others,
            layers,
            reader,
            label,
        })
    }

    /// The layout's referrers of the image: artifact manifests whose
    /// `subject` is its manifest, with their blobs, each checked against
    /// its descriptor.
    pub fn referrers(&self) -> Result<Vec<Referrer>, ImageError> {
        let Some(subject) = self.manifest else { return Ok(Vec::new()) };
        let fail = |what: String| ImageError::Source { image: self.label.clone(), what };
        let mut out = Vec::new();
        for d in &self.others {
            let Ok((media_type, digest)) = descriptor(d) else { continue };
            if media_type != crate::image::manifest::MANIFEST_MEDIA_TYPE {
                continue;
            }
            let name = blob_name(&digest.digest);
            let (manifest, bytes) = self.reader.json(&name, Some(&digest)).map_err(&fail)?;
            let names_subject = manifest.pointer("/subject/digest").and_then(Value::as_str) == Some(subject.digest.to_string().as_str());
            if !names_subject {
                continue;
            }
            let what = |w: String| fail(format!("its referrer {name}: {w}"));
            let config = manifest.get("config").map(descriptor).transpose().map_err(&what)?.ok_or_else(|| what("no config".into()))?;
            let mut blobs = vec![self.reader.bytes(&blob_name(&config.1.digest), &config.1).map_err(&what)?];
            for l in manifest.get("layers").and_then(Value::as_array).into_iter().flatten() {
                let (_, l) = descriptor(l).map_err(&what)?;
                blobs.push(self.reader.bytes(&blob_name(&l.digest), &l).map_err(&what)?);
            }
            let artifact_type = string(&manifest, "artifactType").unwrap_or(&config.0).to_string();
            let annotations = manifest.get("annotations").and_then(Value::as_object).cloned().unwrap_or_default();
            out.push(Referrer { manifest: bytes, digest, artifact_type, annotations, blobs });
        }
        Ok(out)
    }

    /// The manifest naming `image` (the copy): the source's own bytes when
    /// the copy names every blob as the source does (same digests, same
    /// media types), so the manifest digest survives, annotations,
    /// `subject` and `artifactType` with it, as skopeo copies. Otherwise
    /// the rebuilt manifest keeps the source's manifest annotations and
    /// each layer's annotations (they describe content, not its
    /// compression); `subject`, `artifactType`, layer `urls` and any other
    /// field are dropped, since the blobs they went with changed.
    pub fn own_manifest(&self, mut image: Image) -> Image {
        let Some(bytes) = &self.manifest_bytes else { return image };
        let copied: Vec<&Blob> = std::iter::once(&image.config).chain(image.layers.iter().map(|l| &l.blob)).collect();
        let same = copied.len() == self.named.len() && copied.iter().zip(&self.named).all(|(a, b)| **a == *b);
        if same {
            image.manifest_bytes = bytes.clone();
            image.manifest = BlobDigest { digest: Digest::of(bytes), size: bytes.len() as u64 };
            return image;
        }
        let (Ok(source), Ok(mut rebuilt)) = (serde_json::from_slice::<Value>(bytes), serde_json::from_slice::<Value>(&image.manifest_bytes)) else {
            return image;
        };
        let mut changed = false;
        if let (Some(a), Some(m)) = (source.get("annotations").filter(|a| a.is_object()), rebuilt.as_object_mut()) {
            m.insert("annotations".into(), a.clone());
            changed = true;
        }
        let source_layers = source.get("layers").and_then(Value::as_array).cloned().unwrap_or_default();
        if let Some(layers) = rebuilt.get_mut("layers").and_then(Value::as_array_mut) {
            for (l, s) in layers.iter_mut().zip(&source_layers) {
                if let (Some(a), Some(l)) = (s.get("annotations").filter(|a| a.is_object()), l.as_object_mut()) {
                    l.insert("annotations".into(), a.clone());
                    changed = true;
                }
            }
        }
        if changed {
            let bytes = serde_json::to_vec(&rebuilt).expect("a manifest serialises");
            image.manifest = BlobDigest { digest: Digest::of(&bytes), size: bytes.len() as u64 };
            image.manifest_bytes = bytes;
        }
        image
    }

    /// The layers as [`Foreign`] layers to copy.
    pub fn layers(&self) -> Vec<Foreign<'_>> {
        self.layers
            .iter()
            .map(|l| Foreign {
                image: self.label.clone(),
                name: l.name.clone(),
                diff_id: l.diff_id,
                stored: l.stored,
                compression: l.compression,
                media_type: l.media_type.clone(),
                open: Box::new(move || self.reader.open(&l.name)),
            })
            .collect()
    }
}

impl Reader {
    fn open(&self, name: &str) -> io::Result<Box<dyn Read + '_>> {
        match self {
            Reader::Dir(dir) => {
                // Neither the file nor a directory on its way may be a symlink:
                // a layout whose blobs live elsewhere is not self-contained
                // (verify refuses the same).
                let mut path = dir.clone();
                let parts: Vec<&str> = name.split('/').filter(|c| !c.is_empty()).collect();
                for (n, part) in parts.iter().enumerate() {
                    path.push(part);
                    let meta = std::fs::symlink_metadata(&path)?;
                    let last = n + 1 == parts.len();
                    if meta.file_type().is_symlink() {
                        let to = std::fs::read_link(&path).map(|t| format!(" (to {})", t.display())).unwrap_or_default();
                        let kind = if last { "" } else { " directory" };
                        return Err(io::Error::other(format!(
                            "{} is a symlink{kind}{to}; a layout's files must be regular files inside it",
                            path.display()
                        )));
                    }
                    if last && !meta.is_file() {
                        return Err(io::Error::other(format!("{} is not a regular file", path.display())));
                    }
                }
                Ok(Box::new(io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?)))
            }
            Reader::Archive(a) => match a.open_member_at(name) {
                Some(r) => Ok(Box::new(io::BufReader::with_capacity(1 << 20, r))),
                None => Err(io::Error::other(format!("the archive has no regular member {name}"))),
            },
            Reader::Docker(base) => {
                let layer = base.layers.iter().find(|l| l.name == name).ok_or_else(|| io::Error::other(format!("no layer {name}")))?;
                Ok(Box::new(base.layer_reader_at(base.source_of(layer))))
            }
        }
    }

    /// A referrer's blob (a document), bounded, checked against its descriptor.
    fn bytes(&self, name: &str, expect: &BlobDigest) -> Result<Vec<u8>, String> {
        if expect.size > REFERRER_BLOB_LIMIT {
            return Err(format!("{name} is {} bytes, over the {REFERRER_BLOB_LIMIT} a document is read to", expect.size));
        }
        let mut bytes = Vec::new();
        self.open(name).and_then(|r| r.take(expect.size + 1).read_to_end(&mut bytes)).map_err(|e| format!("cannot read {name}: {e}"))?;
        let got = BlobDigest { digest: Digest::of(&bytes), size: bytes.len() as u64 };
        if got != *expect {
            return Err(format!(
                "{name} hashes to {} ({} bytes), not the {} ({} bytes) its descriptor names",
                got.digest, got.size, expect.digest, expect.size
            ));
        }
        Ok(bytes)
    }

    /// A small JSON document, bounded before it is parsed and, when a
    /// descriptor names it, checked against the descriptor's digest and size.
    fn json(&self, name: &str, expect: Option<&BlobDigest>) -> Result<(Value, Vec<u8>), String> {
        let mut bytes = Vec::new();
        self.open(name).and_then(|r| r.take(JSON_MEMBER_LIMIT + 1).read_to_end(&mut bytes)).map_err(|e| format!("cannot read {name}: {e}"))?;
        if bytes.len() as u64 > JSON_MEMBER_LIMIT {
            return Err(format!("{name} is implausibly large"));
        }
        if let Some(d) = expect {
            let got = BlobDigest { digest: Digest::of(&bytes), size: bytes.len() as u64 };
            if got != *d {
                return Err(format!(
                    "{name} hashes to {} ({} bytes), not the {} ({} bytes) its descriptor names",
                    got.digest, got.size, d.digest, d.size
                ));
            }
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| format!("{name}: invalid JSON: {e}"))?;
        Ok((value, bytes))
    }
}

/// The index entry `reference` names (or, without one, the one image
/// besides referrers); several entries of one digest are one image.
fn choose<'v>(manifests: &'v [Value], reference: Option<&str>) -> Result<&'v Value, String> {
    let named = |d: &&Value| d.pointer("/annotations/org.opencontainers.image.ref.name").and_then(Value::as_str) == reference;
    // Referrers (artifacts beside the image) are not what a layout without a name is read as.
    let chosen: Vec<&Value> = match reference {
        Some(_) => manifests.iter().filter(named).collect(),
        None => manifests.iter().filter(|d| d.get("artifactType").is_none()).collect(),
    };
    let mut digests: Vec<&str> = chosen.iter().map(|d| d.get("digest").and_then(Value::as_str).unwrap_or("(no digest)")).collect();
    digests.dedup();
    match (chosen.first(), digests.len(), reference) {
        (Some(one), 1, _) => Ok(*one),
        (None, _, Some(r)) => Err(format!("names no image {r:?}")),
        (None, _, None) => Err("lists no image".into()),
        (_, n, Some(r)) => Err(format!("names {n} images {r:?} ({}); the reference is ambiguous", digests.join(", "))),
        (_, n, None) => Err(format!("holds {n} images; name one (oci:DIR:REF)")),
    }
}

/// A manifest is a JSON object of schemaVersion 2 whose own mediaType,
/// when it has one, is its descriptor's (as verify checks it).
fn agrees(manifest: &Value, media_type: &str) -> Result<(), String> {
    if !manifest.is_object() {
        return Err("is not a JSON object".into());
    }
    match manifest.get("schemaVersion") {
        Some(v) if v.as_u64() == Some(2) => {}
        Some(v) => return Err(format!("schemaVersion is {v}, not 2")),
        None => return Err("has no schemaVersion".into()),
    }
    match manifest.get("mediaType") {
        None => {}
        Some(Value::String(t)) if t == media_type => {}
        Some(t) => return Err(format!("says mediaType {t}, but its descriptor says {media_type:?}")),
    }
    if !MANIFEST_TYPES.contains(&media_type) {
        return Err(format!("has the media type {media_type:?}, not an image manifest's"));
    }
    Ok(())
}

fn string<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// A descriptor's media type, digest and size.
fn descriptor(v: &Value) -> Result<(String, BlobDigest), String> {
    let media_type = string(v, "mediaType").ok_or("mediaType is missing")?;
    let digest: Digest = string(v, "digest").ok_or("digest is missing")?.parse().map_err(|e| format!("{e}"))?;
    let size = v.get("size").and_then(Value::as_u64).ok_or("size is missing or not a non-negative integer")?;
    Ok((media_type.to_string(), BlobDigest { digest, size }))
}
