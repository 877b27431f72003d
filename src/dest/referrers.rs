//! OCI 1.1 referrers beside the images a destination writes: documents
//! (SBOMs, provenance) made for an image of a conf, or the referrers an
//! image source held for the image being copied. Each destination stores
//! a [`Referrer`]'s blobs and manifest and names it as its kind of storage
//! does (a layout's index.json, a registry's referrers API or tag); the
//! listing every one of them shares, an index of referrer descriptors, is
//! built and merged here.

use super::{CopyError, Input, Job};
use crate::blob::produce::Image;
use crate::digest::BlobDigest;
use crate::image::manifest::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::sbom::referrer::{self, EMPTY_CONFIG};
use serde_json::{Map, Value, json};

/// A document to attach to an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The document's media type: the artifact manifest's `artifactType`.
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// RFC 3339: the artifact's created annotation (the image's own time,
    /// so that the bytes are the same on every run).
    pub created: Option<String>,
}

/// What to attach to each image made from a conf.
pub trait Attachments: Sync {
    /// The documents for the image of `job.images[source]`, written as `image`.
    fn documents(&self, source: usize, image: &Image) -> Result<Vec<Document>, CopyError>;
}

/// An artifact manifest referring to an image, with every blob it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub manifest: Vec<u8>,
    pub digest: BlobDigest,
    pub artifact_type: String,
    /// The manifest's annotations, which a referrers listing repeats.
    pub annotations: Map<String, Value>,
    /// Its config's and layers' bytes, to store before the manifest.
    pub blobs: Vec<Vec<u8>>,
}

impl Referrer {
    /// The artifact manifest attaching `doc` to the image manifest `subject`.
    pub fn of_document(doc: &Document, subject: &BlobDigest) -> Referrer {
        let a = referrer::artifact_manifest(&doc.bytes, &doc.media_type, subject, doc.created.as_deref());
        let mut annotations = Map::new();
        if let Some(c) = &doc.created {
            annotations.insert(referrer::CREATED_ANNOTATION.into(), Value::String(c.clone()));
        }
        Referrer {
            digest: a.digest,
            manifest: a.manifest,
            artifact_type: doc.media_type.clone(),
            annotations,
            blobs: vec![EMPTY_CONFIG.to_vec(), doc.bytes.clone()],
        }
    }

    /// How a referrers listing (an index) names it.
    pub fn descriptor(&self) -> Value {
        let mut d = json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": self.digest.digest.to_string(),
            "size": self.digest.size,
            "artifactType": self.artifact_type,
        });
        if !self.annotations.is_empty() {
            d["annotations"] = Value::Object(self.annotations.clone());
        }
        d
    }
}

/// The referrers to write beside `image`, the image of `job.images[source]`:
/// documents made for a conf's image; for an image source, the referrers
/// it holds for the image, when the copy kept its manifest digest (a
/// recompressed image has another manifest, which the old referrers do
/// not describe: a provenance statement names the old digest inside its
/// signed-to-be bytes, so they are left behind with a note).
pub fn for_image(job: &Job<'_>, attach: Option<&dyn Attachments>, source: usize, image: &Image) -> Result<Vec<Referrer>, CopyError> {
    let subject = image.manifest;
    match &job.images[source].input {
        Input::Conf { .. } => {
            let docs = match attach {
                Some(a) => a.documents(source, image)?,
                None => Vec::new(),
            };
            Ok(docs.iter().map(|d| Referrer::of_document(d, &subject)).collect())
        }
        Input::Image(i) => {
            let carried = i.referrers()?;
            if carried.is_empty() {
                return Ok(carried);
            }
            let from = i.manifest.map(|m| m.digest.to_string()).unwrap_or_default();
            if from != subject.digest.to_string() {
                job.progress.line(&format!(
                    "Note: {} referrer(s) of {} not carried: the copy's manifest is {}, not the source's {} (layers recompressed); \
                     copy with the source's compression to keep them",
                    carried.len(),
                    i.label,
                    subject.digest,
                    from
                ));
                return Ok(Vec::new());
            }
            Ok(carried)
        }
    }
}

/// A referrers listing: an OCI index of referrer descriptors.
pub fn index(descriptors: &[Value]) -> Vec<u8> {
    let v = json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": descriptors});
    serde_json::to_vec(&v).expect("an index serialises")
}

/// `existing` (a referrers index, if there is one) with `add` merged in:
/// descriptors of a digest already listed are not listed twice, and
/// whatever else the index says is kept. `None` when nothing changes.
pub fn merge(existing: Option<&[u8]>, add: &[Value]) -> Result<Option<Vec<u8>>, String> {
    let mut index: Value = match existing {
        None => return Ok(Some(index(add))),
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| format!("the referrers index is not JSON: {e}"))?,
    };
    let list = index.get_mut("manifests").and_then(Value::as_array_mut).ok_or("the referrers index has no manifests list")?;
    let mut changed = false;
    for d in add {
        if !list.iter().any(|e| e.get("digest") == d.get("digest")) {
            list.push(d.clone());
            changed = true;
        }
    }
    Ok(changed.then(|| serde_json::to_vec(&index).expect("an index serialises")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn referrer(doc: &[u8]) -> Referrer {
        let subject = BlobDigest { digest: Digest::from_hex(&"ab".repeat(32)).unwrap(), size: 10 };
        Referrer::of_document(
            &Document { media_type: "application/spdx+json".into(), bytes: doc.to_vec(), created: Some("1970-01-01T00:00:01Z".into()) },
            &subject,
        )
    }

    #[test]
    fn merging_keeps_what_is_there_and_lists_each_digest_once() {
        let (a, b) = (referrer(b"a").descriptor(), referrer(b"b").descriptor());
        let other = json!({"mediaType": MANIFEST_MEDIA_TYPE, "digest": format!("sha256:{}", "cd".repeat(32)), "size": 3, "artifactType": "x/y"});
        let first = merge(None, std::slice::from_ref(&a)).unwrap().unwrap();
        let mut existing: Value = serde_json::from_slice(&first).unwrap();
        existing["manifests"].as_array_mut().unwrap().push(other.clone());
        existing["annotations"] = json!({"k": "v"});
        let existing = serde_json::to_vec(&existing).unwrap();
        assert_eq!(merge(Some(&existing), std::slice::from_ref(&a)).unwrap(), None, "nothing new: nothing to write");
        let merged: Value = serde_json::from_slice(&merge(Some(&existing), &[b.clone(), a.clone()]).unwrap().unwrap()).unwrap();
        assert_eq!(merged["manifests"], json!([a, other, b]));
        assert_eq!(merged["annotations"]["k"], "v");
        assert!(merge(Some(b"{}"), &[b]).is_err());
    }

    #[test]
    fn a_descriptor_names_the_artifact_type_and_the_created_time() {
        let r = referrer(b"doc");
        let d = r.descriptor();
        assert_eq!(d["artifactType"], "application/spdx+json");
        assert_eq!(d["digest"], r.digest.digest.to_string());
        assert_eq!(d["annotations"][referrer::CREATED_ANNOTATION], "1970-01-01T00:00:01Z");
        assert_eq!(r.blobs, vec![b"{}".to_vec(), b"doc".to_vec()]);
    }
}
