//! What a manifest names, and its Docker schema 2 form for registries
//! that refuse OCI manifests.

use serde_json::{Value, json};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

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
/// and gzip layers, Docker's media types. Other layer compressions have
/// no Docker media type.
pub fn to_docker(oci: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(oci).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let descriptor = |d: &Value, media_type: &str| json!({"mediaType": media_type, "size": d["size"], "digest": d["digest"]});
    let mut layers = Vec::new();
    for l in v.get("layers").and_then(|l| l.as_array()).ok_or("the manifest has no layers")? {
        match l.get("mediaType").and_then(|m| m.as_str()) {
            Some(OCI_LAYER_GZIP) => layers.push(descriptor(l, DOCKER_LAYER_GZIP)),
            other => {
                return Err(format!("layers of media type {} have no Docker schema 2 form (push with --compress gzip)", other.unwrap_or("(none)")));
            }
        }
    }
    let config = v.get("config").ok_or("the manifest has no config")?;
    let m = json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": descriptor(config, DOCKER_CONFIG), "layers": layers});
    Ok(serde_json::to_vec(&m).expect("a manifest serialises"))
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
        let zstd = String::from_utf8(oci).unwrap().replace("+gzip", "+zstd");
        assert!(to_docker(zstd.as_bytes()).unwrap_err().contains("--compress gzip"));
    }
}
