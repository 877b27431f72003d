//! OCI 1.1 referrer artifacts: a document (an SBOM, a provenance
//! statement) attached to an image manifest as a manifest of its own whose
//! `subject` is the image, `artifactType` the document's media type, its
//! config the empty descriptor, and its one layer the document.
//!
//! Pure: the caller stores [`EMPTY_CONFIG`], the document and the returned
//! manifest as blobs (or pushes them), and names the manifest in a
//! layout's index.json, the registry's referrers API or a
//! `sha256-<hex>` referrers tag.

use crate::digest::{BlobDigest, Digest};
use crate::image::manifest::MANIFEST_MEDIA_TYPE;
use serde_json::{Map, Value, json};

/// The empty config every artifact manifest names (image-spec's
/// "empty descriptor"): the two bytes `{}`.
pub const EMPTY_CONFIG: &[u8] = b"{}";
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The annotation referrers listings carry for ordering.
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// An artifact manifest, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub manifest: Vec<u8>,
    pub digest: BlobDigest,
    /// The document blob the manifest's layer names.
    pub document: BlobDigest,
}

/// The artifact manifest attaching `document` (of `media_type`) to the
/// image manifest `subject`. `created` (RFC 3339), when given, becomes the
/// created annotation; pass the image's own time to keep the bytes
/// reproducible.
pub fn artifact_manifest(document: &[u8], media_type: &str, subject: &BlobDigest, created: Option<&str>) -> Artifact {
    let doc = digest_of(document);
    let empty = digest_of(EMPTY_CONFIG);
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": media_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": empty.digest.to_string(),
            "size": empty.size,
            "data": "e30=",
        },
        "layers": [{
            "mediaType": media_type,
            "digest": doc.digest.to_string(),
            "size": doc.size,
        }],
        "subject": {
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": subject.digest.to_string(),
            "size": subject.size,
        },
    });
    if let Some(c) = created {
        let mut a = Map::new();
        a.insert(CREATED_ANNOTATION.into(), Value::String(c.to_string()));
        m["annotations"] = Value::Object(a);
    }
    let manifest = serde_json::to_vec(&m).expect("a manifest serialises");
    Artifact { digest: digest_of(&manifest), manifest, document: doc }
}

fn digest_of(bytes: &[u8]) -> BlobDigest {
    BlobDigest { digest: Digest::of(bytes), size: bytes.len() as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> BlobDigest {
        BlobDigest { digest: Digest::from_hex(&"ab".repeat(32)).unwrap(), size: 1234 }
    }

    #[test]
    fn names_the_document_the_subject_and_the_empty_config() {
        let a = artifact_manifest(b"{\"spdxVersion\":\"SPDX-2.3\"}\n", "application/spdx+json", &subject(), Some("1970-01-01T00:00:01Z"));
        let m: Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["artifactType"], "application/spdx+json");
        assert_eq!(m["subject"]["digest"], format!("sha256:{}", "ab".repeat(32)));
        assert_eq!(m["subject"]["size"], 1234);
        // The empty descriptor's digest as image-spec gives it.
        assert_eq!(m["config"]["digest"], "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert_eq!(m["layers"][0]["digest"], a.document.digest.to_string());
        assert_eq!(m["layers"][0]["size"], 27);
        assert_eq!(a.digest.digest, Digest::of(&a.manifest));
        assert_eq!(a, artifact_manifest(b"{\"spdxVersion\":\"SPDX-2.3\"}\n", "application/spdx+json", &subject(), Some("1970-01-01T00:00:01Z")));
    }
}
