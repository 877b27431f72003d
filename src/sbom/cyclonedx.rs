//! CycloneDX 1.6 JSON: the image as the BOM's `container` component, its
//! layers as `file` components, one `library` component per store path
//! (the layer carrying it as a property), and the store paths' references
//! as the dependency graph.

use super::{Image, LayerKind, StorePathInfo, TOOL, TOOL_VERSION, content_uuid, nix_purl, render};
use serde_json::{Value, json};

pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// Property names: ours, namespaced by the tool.
const P_LAYER: &str = "layered-image:layer";
const P_KIND: &str = "layered-image:layer-kind";
const P_STORE_PATH: &str = "layered-image:nix-store-path";
const P_NAR_SIZE: &str = "layered-image:nix-nar-size";

/// The document's bytes.
pub fn document(image: &Image) -> Vec<u8> {
    let image_ref = format!("image:sha256:{}", image.image_id);
    let mut components: Vec<Value> = (0..image.layers.len()).map(|i| layer_component(image, i)).collect();
    components.extend(image.paths.iter().map(|p| path_component(image, p)));

    let mut dependencies = vec![json!({"ref": image_ref, "dependsOn": image.roots})];
    dependencies.extend(image.paths.iter().map(|p| json!({"ref": p.path, "dependsOn": p.references})));

    let mut container = json!({
        "type": "container",
        "bom-ref": image_ref,
        "name": image.name,
        "version": image.tag,
        "description": format!("Container image for {}, image ID sha256:{}", image.architecture, image.image_id),
        "hashes": [{"alg": "SHA-256", "content": image.image_id}],
        "properties": [
            {"name": "layered-image:image-id", "value": format!("sha256:{}", image.image_id)},
            {"name": "layered-image:architecture", "value": image.architecture},
        ],
    });
    if image.tag.is_empty() {
        container.as_object_mut().expect("an object").shift_remove("version");
    }
    let mut doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "",
        "version": 1,
        "metadata": {
            "timestamp": image.created,
            "tools": {"components": [{"type": "application", "name": TOOL, "version": TOOL_VERSION}]},
            "component": container,
        },
        "components": components,
        "dependencies": dependencies,
    });
    // Unique per document and the same whenever the document is.
    let uuid = content_uuid(&render(&doc));
    doc["serialNumber"] = Value::String(format!("urn:uuid:{uuid}"));
    render(&doc)
}

fn layer_ref(image: &Image, i: usize) -> String {
    format!("layer:{}:sha256:{}", i + 1, image.layers[i].diff_id)
}

fn layer_component(image: &Image, i: usize) -> Value {
    let l = &image.layers[i];
    let kind = match l.kind {
        LayerKind::Base { .. } => "base-image",
        LayerKind::Store { .. } => "store",
        LayerKind::Customisation { .. } => "customisation",
    };
    json!({
        "type": "file",
        "bom-ref": layer_ref(image, i),
        "name": format!("sha256:{}", l.diff_id),
        "description": image.layer_description(i),
        "hashes": [{"alg": "SHA-256", "content": l.diff_id}],
        "properties": [{"name": P_KIND, "value": kind}],
    })
}

fn path_component(image: &Image, p: &StorePathInfo) -> Value {
    let mut properties = vec![json!({"name": P_STORE_PATH, "value": p.path})];
    if let Some(size) = p.nar_size {
        properties.push(json!({"name": P_NAR_SIZE, "value": size.to_string()}));
    }
    properties.extend(p.layers.iter().map(|&l| json!({"name": P_LAYER, "value": format!("sha256:{}", image.layers[l].diff_id)})));
    let mut c = json!({
        "type": "library",
        "bom-ref": p.path,
        "name": p.name,
        "version": p.version,
        "description": format!("Nix store path {}; its SHA-256 is Nix's narHash, of the path's NAR serialisation", p.path),
        "hashes": p.nar_hash.as_ref().map_or(Value::Null, |h| json!([{"alg": "SHA-256", "content": h}])),
        "purl": nix_purl(p),
        "properties": properties,
    });
    let obj = c.as_object_mut().expect("an object");
    if let Some(d) = &p.description {
        obj.insert("description".into(), Value::String(format!("{d} (Nix store path {})", p.path)));
    }
    if let Some(l) = &p.license {
        obj.insert("licenses".into(), json!([{"expression": l}]));
    }
    if let Some(h) = &p.homepage {
        obj.insert("externalReferences".into(), json!([{"type": "website", "url": h}]));
    }
    if p.version.is_empty() {
        obj.shift_remove("version");
    }
    if p.nar_hash.is_none() {
        obj.shift_remove("hashes");
    }
    c
}
