//! Software bills of materials and provenance for an image, from the
//! exact closure graph Nix exports: one component per store path, with its
//! narHash, narSize, references and the layer that carries it.
//!
//! [`describe`] gathers what the documents say (the image ID, every
//! layer's diff_id, every store path); [`spdx`], [`cyclonedx`] and
//! [`provenance`] render it. Rendering is pure: the same conf and graph
//! give the same bytes on every run and machine (no clock: times come from
//! the conf; namespaces and serial numbers are derived from the content).

pub mod attach;
pub mod closure;
pub mod cyclonedx;
pub mod meta;
pub mod nar_hash;
pub mod nix_name;
pub mod provenance;
pub mod referrer;
pub mod spdx;

use crate::conf::Conf;
use crate::image::base::BaseImage;
use crate::time::DateTime;
use closure::Closure;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;

/// The tool named as the documents' creator.
pub const TOOL: &str = "layered-image";
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Produce(#[from] crate::blob::produce::ProduceError),
    #[error(transparent)]
    BaseImage(#[from] crate::image::base::BaseImageError),
    #[error(transparent)]
    Closure(#[from] closure::ClosureError),
}

/// Where a layer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerKind {
    /// A layer of the base image (`fromImage`), by its member name there.
    Base { member: String },
    /// A layer of store paths (`store_layers[index]`).
    Store { index: usize },
    /// The customisation layer (contents' links, extraCommands, fakeRootCommands).
    Customisation { path: String },
}

/// One layer of the image, in the image config's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Hex sha256 of the uncompressed tar.
    pub diff_id: String,
    /// Length of the uncompressed tar, where known without reading it.
    pub size: Option<u64>,
    pub kind: LayerKind,
}

/// One store path of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePathInfo {
    pub path: String,
    /// The store path's hash part (its base name up to the first dash).
    pub hash_part: String,
    /// `pname` and `version` as `builtins.parseDrvName` splits the name.
    pub name: String,
    pub version: String,
    /// Hex sha256 of its NAR serialisation, if the graph gives it.
    pub nar_hash: Option<String>,
    pub nar_size: Option<u64>,
    /// Other store paths of the image it references, sorted.
    pub references: Vec<String>,
    /// Indices into [`Image::layers`] of the layers holding it (one, unless
    /// a hand-written conf lists it twice).
    pub layers: Vec<usize>,
    /// What Nix's `meta` says, for the direct contents it was given for.
    pub license: Option<String>,
    pub homepage: Option<String>,
    pub description: Option<String>,
}

/// Everything the documents say about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `repo_tag` split into its name and tag.
    pub name: String,
    pub tag: String,
    /// Hex sha256 of the image config: the image ID.
    pub image_id: String,
    /// The conf's `created`, in UTC to the second (`YYYY-MM-DDTHH:MM:SSZ`).
    pub created: String,
    pub architecture: String,
    pub layers: Vec<Layer>,
    /// Sorted by path.
    pub paths: Vec<StorePathInfo>,
    /// Store paths of the image that no other store path of it
    /// references: what the image was asked to contain.
    pub roots: Vec<String>,
}

/// Gathers the facts about the image of `conf` (on `base`), its store
/// paths described by `closure` (and, where Nix knew more, by `meta`).
/// Layers whose digest the conf does not record are read to take it;
/// `cancel` stops that.
pub fn describe(conf: &Conf, base: Option<&BaseImage>, closure: &Closure, meta: &meta::Meta, cancel: &AtomicBool) -> Result<Image, SbomError> {
    let mut conf = conf.clone();
    if conf.store_layer_digests.iter().any(Option::is_none) {
        let computed = crate::dest::docker_archive::store_layer_digests(&conf, cancel)?;
        conf.store_layer_digests = computed.into_iter().map(Some).collect();
    }
    let custom = crate::image::customisation::Customisation::load(&conf)?;
    let config = crate::blob::produce::known_config(&conf, base)?.expect("every layer digest is known now");
    let mut layers: Vec<Layer> = Vec::new();
    if let Some(b) = base {
        layers.extend(b.layers.iter().map(|l| Layer { diff_id: l.diff_id.hex(), size: None, kind: LayerKind::Base { member: l.name.clone() } }));
    }
    let first_store = layers.len();
    for (index, d) in conf.store_layer_digests.iter().enumerate() {
        let d = d.as_ref().expect("filled above");
        layers.push(Layer { diff_id: d.digest.hex(), size: Some(d.size), kind: LayerKind::Store { index } });
    }
    layers.push(Layer {
        diff_id: custom.checksum.hex(),
        size: Some(custom.size),
        kind: LayerKind::Customisation { path: custom.as_written.clone() },
    });

    let mut holders: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, paths) in conf.store_layers.iter().enumerate() {
        for p in paths {
            let list = holders.entry(p.as_written.clone()).or_default();
            if !list.contains(&(first_store + i)) {
                list.push(first_store + i);
            }
        }
    }
    let paths = store_paths(holders, closure, meta);
    let referenced: BTreeSet<&str> = paths.iter().flat_map(|p| p.references.iter().map(String::as_str)).collect();
    let roots = paths.iter().filter(|p| !referenced.contains(p.path.as_str())).map(|p| p.path.clone()).collect();
    let (name, tag) = split_repo_tag(&conf.repo_tag);
    Ok(Image {
        name,
        tag,
        image_id: hex::encode(Sha256::digest(&config)),
        created: utc_seconds(&conf.created),
        architecture: conf.architecture.as_str().map_or_else(|| conf.architecture.to_string(), str::to_string),
        layers,
        paths,
        roots,
    })
}

/// The store paths the layers hold, with what the closure says of each.
/// References leaving the image (helper paths the conf excluded) are not
/// followed; a path the graph lacks is listed without hash and size.
fn store_paths(holders: BTreeMap<String, Vec<usize>>, closure: &Closure, meta: &meta::Meta) -> Vec<StorePathInfo> {
    holders
        .iter()
        .map(|(path, layers)| {
            let info = closure.get(path);
            let store_name = nix_name::store_name(path);
            let (hash_part, full_name) = store_name.unwrap_or(("", path.rsplit('/').next().unwrap_or(path)));
            let (name, version) = nix_name::parse_drv_name(full_name);
            // `-1.0` parses to an empty name; the whole name says more.
            let name = if name.is_empty() { full_name } else { name };
            let mut references: Vec<String> =
                info.map(|i| i.references.iter().filter(|r| *r != path && holders.contains_key(*r)).cloned().collect()).unwrap_or_default();
            references.sort();
            references.dedup();
            let m = meta.get(path).cloned().unwrap_or_default();
            StorePathInfo {
                path: path.clone(),
                hash_part: hash_part.to_string(),
                name: m.pname.unwrap_or_else(|| name.to_string()),
                version: m.version.unwrap_or_else(|| version.to_string()),
                license: m.license,
                homepage: m.homepage,
                description: m.description,
                nar_hash: info.and_then(|i| i.nar_hash.clone()),
                nar_size: info.and_then(|i| i.nar_size),
                references,
                layers: layers.clone(),
            }
        })
        .collect()
}

/// `name:tag` → (name, tag); a colon before the last slash is a port.
fn split_repo_tag(repo_tag: &str) -> (String, String) {
    let slash = repo_tag.rfind('/').map_or(0, |i| i + 1);
    match repo_tag[slash..].rfind(':') {
        Some(i) => (repo_tag[..slash + i].to_string(), repo_tag[slash + i + 1..].to_string()),
        None => (repo_tag.to_string(), String::new()),
    }
}

/// RFC 3339 in UTC to the second: the one form SPDX accepts.
fn utc_seconds(t: &DateTime) -> String {
    let u = DateTime::from_unix_micros(t.unix_micros().div_euclid(1_000_000) * 1_000_000);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", u.year, u.month, u.day, u.hour, u.minute, u.second)
}

/// A UUID made from content (RFC 9562 version 8: custom, here the first
/// 128 bits of a SHA-256), so that a document's identity is the same
/// whenever its content is.
pub fn content_uuid(content: &[u8]) -> String {
    let h = Sha256::digest(content);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..])
}

/// `pkg:nix/<name>@<version>`: the package URL Nix SBOM tools use for a
/// store path (there is no registered `nix` purl type yet).
pub fn nix_purl(p: &StorePathInfo) -> String {
    let mut purl = format!("pkg:nix/{}", crate::reference::percent_encode(&p.name, b""));
    if !p.version.is_empty() {
        purl.push('@');
        purl.push_str(&crate::reference::percent_encode(&p.version, b""));
    }
    purl
}

/// A document as pretty JSON with a final newline.
fn render(value: &serde_json::Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("a JSON value serialises");
    bytes.push(b'\n');
    bytes
}

impl Image {
    /// The layer's position counted from 1, as the image config lists it.
    pub fn layer_number(&self, index: usize) -> usize {
        index + 1
    }

    /// A sentence naming what a layer is.
    pub fn layer_description(&self, index: usize) -> String {
        let l = &self.layers[index];
        let n = self.layers.len();
        match &l.kind {
            LayerKind::Base { member } => format!("layer {} of {n}: base image (fromImage) layer {member}", index + 1),
            LayerKind::Store { index: s } => {
                let count = self.paths.iter().filter(|p| p.layers.contains(&index)).count();
                format!("layer {} of {n}: store layer {} holding {count} store path{}", index + 1, s + 1, if count == 1 { "" } else { "s" })
            }
            LayerKind::Customisation { path } => format!("layer {} of {n}: customisation layer {path}", index + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags_split_at_the_tag_colon() {
        assert_eq!(split_repo_tag("hello:latest"), ("hello".into(), "latest".into()));
        assert_eq!(split_repo_tag("localhost:5000/a/b:1.0"), ("localhost:5000/a/b".into(), "1.0".into()));
        assert_eq!(split_repo_tag("localhost:5000/a"), ("localhost:5000/a".into(), String::new()));
    }

    #[test]
    fn times_are_utc_seconds() {
        let t = crate::time::parse_iso("2024-05-06T07:08:09.5+02:00").unwrap();
        assert_eq!(utc_seconds(&t), "2024-05-06T05:08:09Z");
        assert_eq!(utc_seconds(&crate::time::parse_iso("1970-01-01T00:00:01Z").unwrap()), "1970-01-01T00:00:01Z");
    }

    #[test]
    fn content_uuids_are_rfc_9562_version_8() {
        let u = content_uuid(b"x");
        assert_eq!(u, content_uuid(b"x"));
        assert_ne!(u, content_uuid(b"y"));
        let re = regex::Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$").unwrap();
        assert!(re.is_match(&u), "{u}");
    }
}
