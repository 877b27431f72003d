//! An OCI image layout (a directory, or a tar of one) checked as
//! containerd and skopeo read it: oci-layout, index.json, then every blob
//! a descriptor names must exist with the descriptor's size and digest,
//! down to each layer's uncompressed content and its diff_id.
//!
//! Layouts hold more than images: buildx adds attestation manifests, OCI
//! 1.1 artifacts (`artifactType`, an empty config, a `subject`) sit beside
//! images, and an index may name media types nobody here knows. Artifacts
//! are checked blob by blob (size, digest, the subject they point at) but
//! not unpacked; an unknown media type is skipped with a note, its blob
//! still checked, because skopeo and containerd skip it too.

use super::{
    ArtifactSummary, Format, ImageSummary, Source, Summary, VerifyError, check_diff_id, diff_ids, display, hash_blob, hash_layer, layer_read_error,
    read_json, sha256_hex,
};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(super) const CONFIGS: [&str; 2] = ["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"];
/// What verify walks into from an index; anything else is only hashed.
pub(super) const DOCUMENTS: [&str; 4] = [INDEX, MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Indexes nest; a cycle of them (by digest) cannot, but depth is bounded anyway.
const MAX_DEPTH: usize = 8;

/// What buildx and docker mark an attestation manifest with, on its
/// descriptor in the index; the other names the manifest it attests.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
/// The sha256 of `{}`, the empty descriptor's only content.
const EMPTY_HEX: &str = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

pub(super) struct Dir {
    dir: PathBuf,
    image: String,
    cancel: super::Cancel,
}

impl Dir {
    pub fn new(dir: &Path, cancel: &super::Cancel) -> Result<Dir, VerifyError> {
        let image = display(dir);
        if !dir.is_dir() {
            return Err(VerifyError::Invalid { image, what: "not a directory (an OCI image layout)".into() });
        }
        Ok(Dir { dir: dir.into(), image, cancel: cancel.clone() })
    }
}

impl Source for Dir {
    fn image(&self) -> &str {
        &self.image
    }
    /// Neither the file nor a directory on its way may be a symlink: a
    /// layout whose blobs live elsewhere is not self-contained, and a link
    /// can point anywhere (copy refuses them too).
    fn open(&self, name: &str, what: &str) -> Result<(Box<dyn Read + '_>, u64), VerifyError> {
        let path = self.dir.join(name);
        let io_err = |source| VerifyError::Io { image: self.image.clone(), source };
        let invalid = |w: String| VerifyError::Invalid { image: self.image.clone(), what: w };
        let parts: Vec<&str> = name.split('/').filter(|c| !c.is_empty()).collect();
        let mut meta = None;
        for n in 1..=parts.len() {
            let prefix = parts[..n].join("/");
            let m = match std::fs::symlink_metadata(self.dir.join(&prefix)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(VerifyError::Missing { image: self.image.clone(), member: name.into(), why: format!(" ({what})") });
                }
                r => r.map_err(io_err)?,
            };
            let last = n == parts.len();
            if m.file_type().is_symlink() {
                let to = std::fs::read_link(self.dir.join(&prefix)).map(|t| format!(" (to {})", t.display())).unwrap_or_default();
                let kind = if last { "" } else { " directory" };
                return Err(invalid(format!("{name} ({what}): {prefix} is a symlink{kind}{to}; a layout's files must be regular files inside it")));
            }
            if !last && !m.is_dir() {
                return Err(invalid(format!("{name} ({what}): {prefix} is not a directory")));
            }
            meta = Some(m);
        }
        let meta = meta.ok_or_else(|| invalid(format!("{name:?} ({what}) names no file")))?;
        if !meta.is_file() {
            return Err(invalid(format!("{name} ({what}) is not a regular file")));
        }
        let f = std::fs::File::open(&path).map_err(io_err)?;
        let r = crate::stop::Cancellable { inner: f.take(meta.len()), cancel: &self.cancel };
        Ok((Box::new(BufReader::with_capacity(64 * 1024, r)), meta.len()))
    }
    fn cancel(&self) -> &std::sync::atomic::AtomicBool {
        &self.cancel
    }
}

struct Descriptor {
    media_type: String,
    hex: String,
    size: u64,
    annotations: serde_json::Map<String, Value>,
}

impl Descriptor {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).and_then(Value::as_str)
    }
    fn ref_name(&self) -> Option<&str> {
        self.annotation(REF_NAME)
    }
}

fn descriptor(image: &str, what: &str, v: &Value) -> Result<Descriptor, VerifyError> {
    let bad = |field: &str| VerifyError::Invalid { image: image.into(), what: format!("{what}: {field} is missing or of the wrong type") };
    if !v.is_object() {
        return Err(VerifyError::Invalid { image: image.into(), what: format!("{what} is missing or not a descriptor object") });
    }
    let media_type = v.get("mediaType").and_then(Value::as_str).ok_or_else(|| bad("mediaType"))?;
    let digest = v.get("digest").and_then(Value::as_str).ok_or_else(|| bad("digest"))?;
    let hex = sha256_hex(image, what, digest)?;
    let size = v.get("size").and_then(Value::as_u64).ok_or_else(|| bad("size (a non-negative integer)"))?;
    let annotations = match v.get("annotations") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(bad("annotations (an object)")),
    };
    Ok(Descriptor { media_type: media_type.into(), hex: hex.into(), size, annotations })
}

fn blob_name(d: &Descriptor) -> String {
    format!("blobs/sha256/{}", d.hex)
}

struct Walk<'a> {
    src: &'a dyn Source,
    images: Vec<ImageSummary>,
    artifacts: Vec<ArtifactSummary>,
    notes: Vec<String>,
    /// Layers already checked against a diff_id, and their content size:
    /// a layer shared by several images is read once.
    seen: HashMap<(String, String), u64>,
    /// Opaque blobs (artifact parts, subjects) already hashed.
    checked: std::collections::HashSet<String>,
    /// Image manifests walked (hex): subjects whose referrers belong to the walk.
    walked: std::collections::HashSet<String>,
}

pub(super) fn verify(src: &dyn Source, format: Format, reference: Option<&str>) -> Result<Summary, VerifyError> {
    let image = src.image();
    let invalid = |what: String| VerifyError::Invalid { image: image.into(), what };
    let (layout, _, _) = read_json(src, "oci-layout", "the layout marker")?;
    match layout.get("imageLayoutVersion").and_then(Value::as_str) {
        Some("1.0.0") => {}
        Some(v) => {
            return Err(invalid(format!("oci-layout says imageLayoutVersion {v:?}, not \"1.0.0\"")));
        }
        None => {
            return Err(invalid("oci-layout has no imageLayoutVersion string".into()));
        }
    }
    let (index, _, _) = read_json(src, "index.json", "the image index")?;
    // As for every other index: the image-index schema requires 2.
    match index.get("schemaVersion") {
        Some(v) if v.as_u64() == Some(2) => {}
        Some(v) => return Err(invalid(format!("index.json: schemaVersion is {v}, not 2"))),
        None => return Err(invalid("index.json has no schemaVersion (an image index's is 2)".into())),
    }
    let manifests =
        index.get("manifests").and_then(Value::as_array).ok_or_else(|| invalid("index.json: manifests is missing or not a list".into()))?;
    let mut walk = Walk::new(src);
    ambiguous_refs(image, manifests, reference, &mut walk.notes)?;
    let mut names = Vec::new();
    let mut unnamed = Vec::new();
    for (i, m) in manifests.iter().enumerate() {
        let what = format!("index.json manifests[{i}]");
        let d = descriptor(image, &what, m)?;
        names.extend(d.ref_name().map(str::to_string));
        if reference.is_none() || d.ref_name() == reference {
            walk.manifest(&d, &what, 0)?;
        } else if d.ref_name().is_none() && d.media_type == MANIFEST {
            unnamed.push((d, what));
        }
    }
    // The named image's referrers (artifacts whose subject it is) are part of it.
    for (d, what) in unnamed {
        let manifest = walk.json_blob(&d, &format!("the manifest of {what}"))?;
        let subject = manifest.pointer("/subject/digest").and_then(Value::as_str).and_then(|s| s.strip_prefix("sha256:"));
        if subject.is_some_and(|s| walk.walked.contains(s)) {
            walk.manifest(&d, &what, 0)?;
        }
    }
    if walk.images.is_empty() && walk.artifacts.is_empty() {
        return Err(invalid(match reference {
            Some(r) => format!("index.json has no manifest named {r:?} (names: {})", names.join(", ")),
            None if !walk.notes.is_empty() => format!("index.json lists no image manifest verify knows ({})", walk.notes.join("; ")),
            None => "index.json lists no image manifest".into(),
        }));
    }
    Ok(Summary { format, image: image.into(), images: walk.images, artifacts: walk.artifacts, notes: walk.notes })
}

/// A ref name given to two different manifests: skopeo and containerd
/// would each pick one, so `oci:DIR:REF` names no single image. Refused
/// when REF is that name; without a REF, a note.
fn ambiguous_refs(image: &str, manifests: &[Value], reference: Option<&str>, notes: &mut Vec<String>) -> Result<(), VerifyError> {
    let mut by_ref: Vec<(&str, Vec<&str>)> = Vec::new();
    for m in manifests {
        let (Some(name), Some(digest)) =
            (m.pointer("/annotations/org.opencontainers.image.ref.name").and_then(Value::as_str), m.get("digest").and_then(Value::as_str))
        else {
            continue;
        };
        match by_ref.iter_mut().find(|(r, _)| *r == name) {
            Some((_, digests)) if !digests.contains(&digest) => digests.push(digest),
            Some(_) => {}
            None => by_ref.push((name, vec![digest])),
        }
    }
    for (name, digests) in by_ref.into_iter().filter(|(_, d)| d.len() > 1) {
        let says = format!("index.json: ref {name:?} names {} images ({})", digests.len(), digests.join(", "));
        if reference == Some(name) {
            return Err(VerifyError::Invalid { image: image.into(), what: says });
        }
        notes.push(says);
    }
    Ok(())
}

/// One manifest named by `manifest` (a descriptor), as the `dir:`
/// transport holds it.
pub(super) fn verify_one(src: &dyn Source, format: Format, manifest: &Value) -> Result<Summary, VerifyError> {
    let mut walk = Walk::new(src);
    let d = descriptor(src.image(), "manifest.json", manifest)?;
    walk.manifest(&d, "manifest.json", 0)?;
    if walk.images.is_empty() && walk.artifacts.is_empty() {
        return Err(VerifyError::Invalid {
            image: src.image().into(),
            what: format!("manifest.json is no image manifest ({})", walk.notes.join("; ")),
        });
    }
    Ok(Summary { format, image: src.image().into(), images: walk.images, artifacts: walk.artifacts, notes: walk.notes })
}

impl<'a> Walk<'a> {
    fn new(src: &'a dyn Source) -> Walk<'a> {
        Walk {
            src,
            images: Vec::new(),
            artifacts: Vec::new(),
            notes: Vec::new(),
            seen: HashMap::new(),
            checked: Default::default(),
            walked: Default::default(),
        }
    }

    /// Reads a JSON blob, checking it against its descriptor.
    fn json_blob(&self, d: &Descriptor, what: &str) -> Result<Value, VerifyError> {
        let name = blob_name(d);
        let (value, digest, size) = read_json(self.src, &name, what)?;
        self.check(d, what, &name, size, &digest)?;
        Ok(value)
    }

    /// A manifest or index is a JSON object of schemaVersion 2 whose own
    /// mediaType, when it has one, is its descriptor's: a document of one
    /// kind named as another is read as the wrong thing by someone.
    fn agrees(&self, d: &Descriptor, what: &str, doc: &Value) -> Result<(), VerifyError> {
        let invalid = |w: String| VerifyError::Invalid { image: self.src.image().into(), what: format!("{what} ({}): {w}", blob_name(d)) };
        if !doc.is_object() {
            return Err(invalid("is not a JSON object".into()));
        }
        match doc.get("schemaVersion") {
            Some(v) if v.as_u64() == Some(2) => {}
            Some(v) => return Err(invalid(format!("schemaVersion is {v}, not 2"))),
            None => return Err(invalid("has no schemaVersion".into())),
        }
        match doc.get("mediaType") {
            None => Ok(()),
            Some(Value::String(t)) if *t == d.media_type => Ok(()),
            Some(t) => Err(invalid(format!("says mediaType {t}, but its descriptor says {:?}", d.media_type))),
        }
    }

    /// Checks a blob of any content against its descriptor, streamed;
    /// each blob is read once however often it is named.
    fn opaque_blob(&mut self, d: &Descriptor, what: &str) -> Result<(), VerifyError> {
        let name = blob_name(d);
        if self.checked.contains(&d.hex) {
            return Ok(());
        }
        let (r, size) = self.src.open(&name, what)?;
        if size != d.size {
            return self.check(d, what, &name, size, "");
        }
        let (digest, size) = hash_blob(r).map_err(|source| VerifyError::Io { image: self.src.image().into(), source })?;
        self.check(d, what, &name, size, &digest)?;
        self.checked.insert(d.hex.clone());
        Ok(())
    }

    fn check(&self, d: &Descriptor, what: &str, name: &str, size: u64, digest: &str) -> Result<(), VerifyError> {
        let image = self.src.image();
        if size != d.size {
            return Err(VerifyError::Size {
                image: image.into(),
                what: format!("blob {name} ({what})"),
                found: size,
                expected: d.size,
                named_by: "its descriptor".into(),
            });
        }
        if digest != d.hex {
            return Err(VerifyError::Digest {
                image: image.into(),
                what: format!("blob {name} ({what})"),
                found: digest.into(),
                expected: d.hex.clone(),
                named_by: "its descriptor".into(),
            });
        }
        Ok(())
    }

    fn manifest(&mut self, d: &Descriptor, what: &str, depth: usize) -> Result<(), VerifyError> {
        let image = self.src.image();
        let invalid = |what: String| VerifyError::Invalid { image: image.into(), what };
        if depth > MAX_DEPTH {
            return Err(invalid(format!("{what}: image indexes nest over {MAX_DEPTH} deep")));
        }
        match d.media_type.as_str() {
            INDEX | DOCKER_LIST => {
                let index = self.json_blob(d, what)?;
                self.agrees(d, what, &index)?;
                let list =
                    index.get("manifests").and_then(Value::as_array).ok_or_else(|| invalid(format!("{what}: manifests is missing or not a list")))?;
                for (i, m) in list.iter().enumerate() {
                    let inner = format!("{what} manifests[{i}]");
                    let child = descriptor(image, &inner, m)?;
                    self.manifest(&child, &inner, depth + 1)?;
                }
                Ok(())
            }
            MANIFEST | DOCKER_MANIFEST => {
                let manifest = self.json_blob(d, &format!("the manifest of {what}"))?;
                self.walked.insert(d.hex.clone());
                let mut what = format!("manifest {}", blob_name(d));
                self.agrees(d, &what, &manifest)?;
                if let Some(subject) = manifest.get("subject").filter(|s| !s.is_null()) {
                    self.subject(subject, &what)?;
                    // A referrer is named as one: whose, and what it holds.
                    let of = subject.get("digest").and_then(Value::as_str).unwrap_or_default();
                    let kind = manifest.get("artifactType").and_then(Value::as_str).map(|t| format!(" ({t})")).unwrap_or_default();
                    what = format!("referrer {what}{kind} of {of}");
                }
                let config = descriptor(image, &format!("{what} config"), manifest.get("config").unwrap_or(&Value::Null))?;
                let attestation = d.annotation(REFERENCE_TYPE) == Some("attestation-manifest");
                let artifact_type = manifest.get("artifactType").and_then(Value::as_str);
                if attestation || artifact_type.is_some() || !CONFIGS.contains(&config.media_type.as_str()) {
                    let kind = match (artifact_type, attestation) {
                        (Some(t), _) => t.to_string(),
                        (None, true) => "attestation-manifest".to_string(),
                        (None, false) => config.media_type.clone(),
                    };
                    return self.artifact(d, &what, &manifest, config, kind);
                }
                self.image(&what, &manifest, config)
            }
            other => {
                // Checked as a blob (a lie about it is still a lie), then
                // left alone, as skopeo and containerd leave it.
                self.opaque_blob(d, what)?;
                self.notes.push(format!("skipped {what} ({}): media type {other:?} is not an image, index or artifact manifest", blob_name(d)));
                Ok(())
            }
        }
    }

    /// A `subject` names the manifest an artifact (or image) refers to;
    /// in a layout it must be there, with that size and digest.
    fn subject(&mut self, subject: &Value, what: &str) -> Result<(), VerifyError> {
        let swhat = format!("{what} subject");
        let sd = descriptor(self.src.image(), &swhat, subject)?;
        self.opaque_blob(&sd, &swhat)
    }

    /// An artifact: every blob it names is checked; nothing is unpacked.
    fn artifact(&mut self, d: &Descriptor, what: &str, manifest: &Value, config: Descriptor, kind: String) -> Result<(), VerifyError> {
        let image = self.src.image();
        let invalid = |what: String| VerifyError::Invalid { image: image.into(), what };
        if let Some(target) = d.annotation(REFERENCE_DIGEST) {
            // buildx's subject: the manifest this attestation is about.
            let hex = sha256_hex(image, &format!("{what}'s {REFERENCE_DIGEST} annotation"), target)?;
            let name = format!("blobs/sha256/{hex}");
            let (r, _) = self.src.open(&name, &format!("the manifest {what} attests ({REFERENCE_DIGEST})"))?;
            let (digest, size) = hash_blob(r).map_err(|source| VerifyError::Io { image: image.into(), source })?;
            if digest != hex {
                return Err(VerifyError::Digest {
                    image: image.into(),
                    what: format!("blob {name} ({size} bytes)"),
                    found: digest,
                    expected: hex.into(),
                    named_by: format!("{what}'s {REFERENCE_DIGEST} annotation"),
                });
            }
        }
        let cwhat = format!("{what} config");
        self.opaque_blob(&config, &cwhat)?;
        if config.media_type == EMPTY_CONFIG && config.hex != EMPTY_HEX {
            return Err(invalid(format!(
                "{cwhat}: the empty descriptor ({EMPTY_CONFIG}) names the 2 bytes {{}}, sha256:{EMPTY_HEX}, not sha256:{}",
                config.hex
            )));
        }
        let layers = match manifest.get("layers") {
            None | Some(Value::Null) => &Vec::new(),
            Some(Value::Array(l)) => l,
            Some(_) => return Err(invalid(format!("{what}: layers is not a list"))),
        };
        for (n, l) in layers.iter().enumerate() {
            let lwhat = format!("layer {n} of {what}");
            let ld = descriptor(image, &lwhat, l)?;
            self.opaque_blob(&ld, &lwhat)?;
        }
        self.artifacts.push(ArtifactSummary { manifest: format!("sha256:{}", d.hex), kind, blobs: 1 + layers.len() });
        Ok(())
    }

    fn image(&mut self, what: &str, manifest: &Value, cd: Descriptor) -> Result<(), VerifyError> {
        let image = self.src.image();
        let invalid = |what: String| VerifyError::Invalid { image: image.into(), what };
        let config = self.json_blob(&cd, &format!("the config of {what}"))?;
        let config_name = format!("config {}", blob_name(&cd));
        let layers = manifest.get("layers").and_then(Value::as_array).ok_or_else(|| invalid(format!("{what}: layers is missing or not a list")))?;
        let diff_ids = diff_ids(image, &config_name, &config)?;
        if diff_ids.len() != layers.len() {
            return Err(invalid(format!("{what} lists {} layers but {config_name} has {} diff_ids", layers.len(), diff_ids.len())));
        }
        let mut layer_bytes = 0;
        for (n, (l, diff_id)) in layers.iter().zip(&diff_ids).enumerate() {
            let lwhat = format!("layer {n} of {what}");
            let ld = descriptor(image, &lwhat, l)?;
            let compression = crate::image::manifest::layer_compression(&ld.media_type).ok_or_else(|| VerifyError::MediaType {
                image: image.into(),
                what: lwhat.clone(),
                media_type: ld.media_type.clone(),
            })?;
            let name = blob_name(&ld);
            let (r, size) = self.src.open(&name, &lwhat)?;
            // The size first: a wrong one needs no read of the blob.
            if size != ld.size {
                self.check(&ld, &lwhat, &name, size, "")?;
            }
            if let Some(bytes) = self.seen.get(&(ld.hex.clone(), diff_id.clone())) {
                layer_bytes += bytes;
                continue;
            }
            let got = hash_layer(r, size, compression, self.src.cancel()).map_err(|e| layer_read_error(image, &format!("{lwhat} ({name})"), e))?;
            self.check(&ld, &lwhat, &name, got.stored.1, &got.stored.0)?;
            got.decoded(image, &format!("{lwhat} ({name})"))?;
            check_diff_id(image, &format!("{lwhat} ({name})"), &got, diff_id, &config_name)?;
            layer_bytes += got.content.1;
            self.seen.insert((ld.hex, diff_id.clone()), got.content.1);
        }
        self.images.push(ImageSummary { config: format!("sha256:{}", cd.hex), layers: layers.len(), layer_bytes });
        Ok(())
    }
}
