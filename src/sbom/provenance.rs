//! An in-toto Statement v1 with a SLSA Provenance v1 predicate for an
//! image: the subjects are its manifest digests; the resolved
//! dependencies are every store path of its closure (by narHash), the base
//! image's and customisation layers (by diff_id), and what Nix knows of
//! the build (the image's derivation, the conf, the nixpkgs revision). No
//! signature: that is a separate envelope.

use super::{Image, LayerKind, TOOL, TOOL_VERSION, render};
use serde_json::{Map, Value, json};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The in-toto media type of a statement, as attached to an image.
pub const MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// What this build type's parameters mean: an image made from a Nix
/// closure by layered-image (the conf and its closure graph).
pub const BUILD_TYPE: &str = "urn:layered-image:buildtype:nix-closure-image:v1";
pub const DEFAULT_BUILDER_ID: &str = "urn:layered-image:builder:local";
/// A digest of a store path is of its NAR serialisation.
const NAR_MEDIA_TYPE: &str = "application/x-nix-nar";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// An image manifest the statement is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub name: String,
    /// Hex sha256 of the manifest bytes.
    pub manifest_sha256: String,
}

/// What the caller knows of the build beyond the conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInputs {
    /// The image's derivation (`.drv` store path).
    pub derivation: Option<String>,
    /// The conf's store path.
    pub conf: Option<String>,
    /// The nixpkgs git revision the image was evaluated from.
    pub nixpkgs_revision: Option<String>,
    pub builder_id: String,
}

/// The statement's bytes.
pub fn statement(image: &Image, subjects: &[Subject], inputs: &BuildInputs) -> Vec<u8> {
    let subject: Vec<Value> = subjects.iter().map(|s| json!({"name": s.name, "digest": {"sha256": s.manifest_sha256}})).collect();

    let mut external = Map::new();
    external.insert("image".into(), json!({"name": image.name, "tag": image.tag, "architecture": image.architecture, "created": image.created}));
    if let Some(d) = &inputs.derivation {
        external.insert("derivation".into(), Value::String(d.clone()));
    }
    if let Some(c) = &inputs.conf {
        external.insert("conf".into(), Value::String(c.clone()));
    }
    if let Some(r) = &inputs.nixpkgs_revision {
        external.insert("nixpkgsRevision".into(), Value::String(r.clone()));
    }

    let mut deps: Vec<Value> = Vec::new();
    if let Some(d) = &inputs.derivation {
        deps.push(json!({"name": "derivation", "uri": file_uri(d)}));
    }
    if let Some(r) = &inputs.nixpkgs_revision {
        let mut nixpkgs = json!({"name": "nixpkgs", "uri": "git+https://github.com/NixOS/nixpkgs"});
        if r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()) {
            nixpkgs["digest"] = json!({"gitCommit": r.to_ascii_lowercase()});
        } else {
            nixpkgs["annotations"] = json!({"revision": r});
        }
        deps.push(nixpkgs);
    }
    for (i, l) in image.layers.iter().enumerate() {
        let name = match &l.kind {
            LayerKind::Base { member } => format!("base image layer {member}"),
            LayerKind::Customisation { path } => format!("customisation layer {path}"),
            LayerKind::Store { .. } => continue,
        };
        deps.push(json!({"name": name, "digest": {"sha256": l.diff_id}, "mediaType": LAYER_MEDIA_TYPE, "annotations": {"layer": i + 1}}));
    }
    for p in &image.paths {
        let mut d = Map::new();
        d.insert("name".into(), Value::String(p.path.clone()));
        if p.path.starts_with('/') {
            d.insert("uri".into(), Value::String(file_uri(&p.path)));
        }
        if let Some(h) = &p.nar_hash {
            d.insert("digest".into(), json!({"sha256": h}));
            d.insert("mediaType".into(), Value::String(NAR_MEDIA_TYPE.into()));
        }
        deps.push(Value::Object(d));
    }

    let doc = json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": inputs.builder_id, "version": {TOOL: TOOL_VERSION}},
                "byproducts": [{
                    "name": "image config",
                    "digest": {"sha256": image.image_id},
                    "mediaType": crate::image::manifest::CONFIG_MEDIA_TYPE,
                }],
            },
        },
    });
    render(&doc)
}

/// A `file:` URI for an absolute path (store paths need no escaping
/// beyond what percent-encoding of the few odd characters gives).
fn file_uri(path: &str) -> String {
    format!("file://{}", crate::reference::percent_encode(path, b"/+="))
}
