//! What a manifest names, and the Docker schema 2 form of a manifest or
//! an index for registries that refuse OCI ones.

use crate::digest::Digest;
use serde_json::{Value, json};
use std::collections::HashMap;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// The blobs a manifest needs: (hex sha256, size), config first.
pub fn blobs(manifest: &[u8]) -> Vec<(String, u64)> {
    let Ok(v) = serde_json::from_slice::<Value>(manifest) else { return Vec::new() };
    let descriptor = |d: &Value| -> Option<(String, u64)> {
        let digest = d.get("digest")?.as_str()?.strip_prefix("sha256:")?.to_string();
        Some((digest, d.get("size")?.as_u64()?))
    };
    let mut out: Vec<(String, u64)> = v.get("config").and_then(descriptor).into_iter().collect();
    if let Some(layers) = v.get("layers").and_then(|l| l.as_array()) {
        out.extend(layers.iter().filter_map(descriptor));
    }
    out
}

/// The same image as a Docker schema 2 manifest: the same config bytes
/// and layers, Docker's media types. Docker has one layer type and reads
/// the compression from the bytes, so uncompressed layers take it too (as
/// containers/image writes them); zstd has no place in schema 2, and
/// skopeo refuses it too.
pub fn to_docker(oci: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(oci).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let descriptor = |d: &Value, media_type: &str| json!({"mediaType": media_type, "size": d["size"], "digest": d["digest"]});
    let mut layers = Vec::new();
    for l in v.get("layers").and_then(|l| l.as_array()).ok_or("the manifest has no layers")? {
        match l.get("mediaType").and_then(|m| m.as_str()) {
            Some(OCI_LAYER_GZIP | OCI_LAYER) => layers.push(descriptor(l, DOCKER_LAYER_GZIP)),
            other => {
                return Err(format!("Docker schema 2 has no layers of media type {} (push with --compress gzip)", other.unwrap_or("(none)")));
            }
        }
    }
    let config = v.get("config").ok_or("the manifest has no config")?;
    let m = json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": descriptor(config, DOCKER_CONFIG), "layers": layers});
    Ok(serde_json::to_vec(&m).expect("a manifest serialises"))
}

/// An OCI index as a Docker manifest list: each entry names the Docker
/// form (`forms`: OCI manifest digest -> its Docker form's digest and
/// size) of the manifest it named, with the same platform.
pub fn to_docker_list(index: &[u8], forms: &HashMap<Digest, (Digest, u64)>) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(index).map_err(|e| format!("the index is not JSON: {e}"))?;
    let mut manifests = Vec::new();
    for m in v.get("manifests").and_then(|m| m.as_array()).ok_or("the index names no manifests")? {
        let oci = m.get("digest").and_then(|d| d.as_str()).and_then(|d| d.parse::<Digest>().ok());
        let Some((digest, size)) = oci.and_then(|d| forms.get(&d)) else {
            return Err(format!("the index names {}, which has no Docker schema 2 form", m.get("digest").unwrap_or(&Value::Null)));
        };
        let mut entry = json!({"mediaType": DOCKER_MANIFEST, "size": size, "digest": digest.to_string()});
        if let Some(p) = m.get("platform") {
            entry["platform"] = p.clone();
        }
        manifests.push(entry);
    }
    let list = json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": manifests});
    Ok(serde_json::to_vec(&list).expect("a manifest list serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_form() {
        let d = |c: &str| crate::digest::Digest::from_hex(&c.repeat(64)).unwrap();
        let cfg = crate::digest::BlobDigest { digest: d("a"), size: 10 };
        let layer = crate::digest::BlobDigest { digest: d("b"), size: 20 };
        let oci = crate::image::manifest::manifest(
            &crate::image::manifest::Blob { media_type: crate::image::manifest::CONFIG_MEDIA_TYPE.into(), digest: cfg },
            &[crate::image::manifest::Blob { media_type: OCI_LAYER_GZIP.into(), digest: layer }],
        );
        assert_eq!(blobs(&oci), vec![("a".repeat(64), 10), ("b".repeat(64), 20)]);
        let d: Value = serde_json::from_slice(&to_docker(&oci).unwrap()).unwrap();
        assert_eq!(d["mediaType"], DOCKER_MANIFEST);
        assert_eq!(d["config"]["mediaType"], DOCKER_CONFIG);
        assert_eq!(d["layers"][0]["mediaType"], DOCKER_LAYER_GZIP);
        assert_eq!(d["layers"][0]["digest"], format!("sha256:{}", "b".repeat(64)));
        let text = String::from_utf8(oci.clone()).unwrap();
        assert!(to_docker(text.replace("+gzip", "+zstd").as_bytes()).unwrap_err().contains("+zstd (push with --compress gzip)"));
        let plain: Value = serde_json::from_slice(&to_docker(text.replace("+gzip", "").as_bytes()).unwrap()).unwrap();
        assert_eq!(plain["layers"][0]["mediaType"], DOCKER_LAYER_GZIP);

        let platform = crate::image::manifest::PlatformManifest {
            manifest: crate::digest::BlobDigest { digest: crate::digest::Digest::of(&oci), size: oci.len() as u64 },
            architecture: "arm".into(),
            os: "linux".into(),
            variant: Some("v7".into()),
        };
        let index = crate::image::manifest::image_index(&[platform]);
        let docker = to_docker(&oci).unwrap();
        let forms = HashMap::from([(Digest::of(&oci), (Digest::of(&docker), docker.len() as u64))]);
        let list: Value = serde_json::from_slice(&to_docker_list(&index, &forms).unwrap()).unwrap();
        assert_eq!(list["mediaType"], DOCKER_LIST);
        assert_eq!(list["manifests"][0]["mediaType"], DOCKER_MANIFEST);
        assert_eq!(list["manifests"][0]["digest"], Digest::of(&docker).to_string());
        assert_eq!(list["manifests"][0]["size"], docker.len());
        assert_eq!(list["manifests"][0]["platform"], json!({"architecture": "arm", "os": "linux", "variant": "v7"}));
        assert!(to_docker_list(&index, &HashMap::new()).unwrap_err().contains("no Docker schema 2 form"));
    }
}
