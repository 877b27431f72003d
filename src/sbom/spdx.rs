//! SPDX 2.3 JSON: the image as a CONTAINER package that CONTAINS its
//! layers, each layer CONTAINS the store paths it carries, and every store
//! path DEPENDS_ON the store paths it references.

use super::{Image, LayerKind, StorePathInfo, TOOL, TOOL_VERSION, content_uuid, nix_purl, render};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

pub const MEDIA_TYPE: &str = "application/spdx+json";

const IMAGE_ID: &str = "SPDXRef-Image";

/// The document's bytes.
pub fn document(image: &Image) -> Vec<u8> {
    let mut packages = vec![image_package(image)];
    let mut relationships = vec![rel("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)];
    for i in 0..image.layers.len() {
        packages.push(layer_package(image, i));
        relationships.push(rel(IMAGE_ID, "CONTAINS", &layer_id(i)));
    }
    for p in &image.paths {
        packages.push(path_package(image, p));
        for &l in &p.layers {
            relationships.push(rel(&layer_id(l), "CONTAINS", &path_id(p)));
        }
    }
    let ids: HashMap<&str, String> = image.paths.iter().map(|p| (p.path.as_str(), path_id(p))).collect();
    for p in &image.paths {
        for r in &p.references {
            relationships.push(rel(&ids[p.path.as_str()], "DEPENDS_ON", &ids[r.as_str()]));
        }
    }
    let name = format!("{}:{}", image.name, image.tag);
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": "",
        "creationInfo": {
            "created": image.created,
            "creators": [format!("Tool: {TOOL}-{TOOL_VERSION}")],
            "comment": "Made from the image's Nix closure graph: one package per store path, its checksum the \
                        SHA-256 of the path's NAR serialisation (Nix's narHash). Created is the image's creation time.",
        },
        "packages": packages,
        "relationships": relationships,
    });
    let refs = license_refs(image);
    if !refs.is_empty() {
        // SPDX requires every LicenseRef a package declares to be defined
        // in the document; Nix knows only its name.
        let infos: Vec<Value> = refs
            .iter()
            .map(|r| json!({"licenseId": r, "extractedText": "NOASSERTION", "name": r.trim_start_matches("LicenseRef-"), "comment": "Named by the package's Nix meta.license; its text is not known here."}))
            .collect();
        doc.as_object_mut().expect("an object").insert("hasExtractedLicensingInfos".into(), Value::Array(infos));
    }
    // The namespace must be unique per document, and the same whenever the
    // document is: derived from everything else in it.
    let uuid = content_uuid(&render(&doc));
    doc["documentNamespace"] = Value::String(format!("https://spdx.org/spdxdocs/{}-{uuid}", sanitize(&name)));
    render(&doc)
}

/// The `LicenseRef-…` ids the packages' licenses use, sorted.
fn license_refs(image: &Image) -> BTreeSet<String> {
    image
        .paths
        .iter()
        .filter_map(|p| p.license.as_deref())
        .flat_map(|l| l.split(|c: char| c.is_whitespace() || c == '(' || c == ')'))
        .filter(|t| t.starts_with("LicenseRef-"))
        .map(|t| t.trim_end_matches('+').to_string())
        .collect()
}

fn rel(from: &str, kind: &str, to: &str) -> Value {
    json!({"spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to})
}

fn layer_id(i: usize) -> String {
    format!("SPDXRef-Layer-{}", i + 1)
}

fn path_id(p: &StorePathInfo) -> String {
    let base = p.path.rsplit('/').next().unwrap_or(&p.path);
    format!("SPDXRef-StorePath-{}", sanitize(base))
}

/// SPDX identifiers allow letters, digits, `.` and `-` only.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect()
}

fn sha256(hex: &str) -> Value {
    json!([{"algorithm": "SHA256", "checksumValue": hex}])
}

fn image_package(image: &Image) -> Value {
    let mut p = json!({
        "SPDXID": IMAGE_ID,
        "name": image.name,
        "versionInfo": image.tag,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "checksums": sha256(&image.image_id),
        "primaryPackagePurpose": "CONTAINER",
        "comment": format!(
            "Container image for {}; its checksum is the image ID (the SHA-256 of its config, sha256:{}); {} layers.",
            image.architecture,
            image.image_id,
            image.layers.len()
        ),
    });
    if image.tag.is_empty() {
        p.as_object_mut().expect("an object").shift_remove("versionInfo");
    }
    p
}

fn layer_package(image: &Image, i: usize) -> Value {
    let l = &image.layers[i];
    let what = match l.kind {
        LayerKind::Base { .. } => "base-image-layer",
        LayerKind::Store { .. } => "store-layer",
        LayerKind::Customisation { .. } => "customisation-layer",
    };
    let size = l.size.map(|s| format!(", {s} bytes")).unwrap_or_default();
    json!({
        "SPDXID": layer_id(i),
        "name": format!("layer-{}-{what}", i + 1),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "checksums": sha256(&l.diff_id),
        "primaryPackagePurpose": "ARCHIVE",
        "comment": format!("{}; diff_id sha256:{} (the uncompressed tar{size}).", image.layer_description(i), l.diff_id),
    })
}

fn path_package(image: &Image, p: &StorePathInfo) -> Value {
    let layers: Vec<String> = p.layers.iter().map(|&l| format!("layer {} (diff_id sha256:{})", l + 1, image.layers[l].diff_id)).collect();
    let mut comment = format!("Nix store path {}, in {}", p.path, layers.join(" and "));
    if let Some(size) = p.nar_size {
        comment.push_str(&format!("; narSize {size} bytes"));
    }
    match &p.nar_hash {
        Some(h) => comment.push_str(&format!("; narHash sha256:{h} (checksum of its NAR serialisation)")),
        None => comment.push_str("; the closure graph gives no narHash for it"),
    }
    comment.push('.');
    let mut pkg = json!({
        "SPDXID": path_id(p),
        "name": p.name,
        "versionInfo": p.version,
        "packageFileName": p.path,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "checksums": p.nar_hash.as_deref().map_or(Value::Null, sha256),
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": nix_purl(p)}],
        "comment": comment,
    });
    let obj = pkg.as_object_mut().expect("an object");
    // What Nix's meta says (direct contents only); nothing is claimed for
    // the rest, whose licenses Nix does not export.
    if let Some(h) = &p.homepage {
        obj.insert("homepage".into(), Value::String(h.clone()));
    }
    if let Some(l) = &p.license {
        obj.insert("licenseDeclared".into(), Value::String(l.clone()));
    }
    if let Some(d) = &p.description {
        obj.insert("description".into(), Value::String(d.clone()));
    }
    if p.version.is_empty() {
        obj.shift_remove("versionInfo");
    }
    if p.nar_hash.is_none() {
        obj.shift_remove("checksums");
    }
    pkg
}
