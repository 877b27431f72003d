//! Referrers in a registry (distribution-spec 1.1): each artifact manifest
//! goes up by digest; a registry with the referrers API lists it by its
//! `subject` itself (it says so with `OCI-Subject`, or answers
//! `GET /v2/<name>/referrers/<digest>` with an index). Any other registry
//! gets the referrers tag schema: the tag `sha256-<hex>` of the subject
//! holds an index of its referrers, which is read, merged (nothing listed
//! twice, nothing else dropped) and put back.

use super::{Body, Registry, header};
use crate::blob::{BlobStore, StoreError};
use crate::dest::referrers::{self, Referrer};
use crate::digest::BlobDigest;
use crate::image::manifest::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

/// How the registry came to list the referrers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// By its referrers API.
    Api,
    /// Under this tag (the referrers tag schema); `false`: it listed them already.
    Tag(String, bool),
}

/// The referrers index, as large as any registry lets a manifest be.
const INDEX_LIMIT: u64 = 4 << 20;

impl Registry {
    /// Puts `refs` (whose subject is the manifest `subject`) and has the
    /// registry list them.
    pub fn attach_referrers(&self, subject: &BlobDigest, refs: &[Referrer]) -> Result<Listed, StoreError> {
        let mut api_said = true;
        for r in refs {
            for b in &r.blobs {
                self.put_blob(b)?;
            }
            api_said &= self.put_referrer(r, subject)?;
        }
        if api_said || self.has_referrers_api(subject)? {
            return Ok(Listed::Api);
        }
        let tag = format!("sha256-{}", subject.digest.hex());
        let existing = self.get_index(&tag)?;
        let descriptors: Vec<serde_json::Value> = refs.iter().map(Referrer::descriptor).collect();
        let merged = referrers::merge(existing.as_deref(), &descriptors)
            .map_err(|what| self.store_error(self.fail(format!("the referrers tag {tag}: {what}; not replaced"), false)))?;
        match merged {
            Some(bytes) => {
                self.put_manifest(&bytes, INDEX_MEDIA_TYPE, &tag)?;
                Ok(Listed::Tag(tag, true))
            }
            None => Ok(Listed::Tag(tag, false)),
        }
    }

    /// Puts an artifact manifest by its digest; whether the registry
    /// answered that it lists it under `subject` (the `OCI-Subject` header).
    fn put_referrer(&self, r: &Referrer, subject: &BlobDigest) -> Result<bool, StoreError> {
        let path = format!("/v2/{}/manifests/{}", self.target.repo, r.digest.digest);
        let len = r.manifest.len().to_string();
        let a = self
            .send("PUT", &path, &[("Content-Type", MANIFEST_MEDIA_TYPE), ("Content-Length", &len)], Body::Bytes(&r.manifest))
            .map_err(|f| self.store_error(f))?;
        if !a.resp.status().is_success() {
            return Err(self.store_error(self.status_failure("PUT", a)));
        }
        Ok(header(&a.resp, "oci-subject") == Some(subject.digest.to_string().as_str()))
    }

    /// A registry with the referrers API answers its endpoint with an
    /// index; one without says 404 (or, behind some proxies, 400/405).
    fn has_referrers_api(&self, subject: &BlobDigest) -> Result<bool, StoreError> {
        let path = format!("/v2/{}/referrers/{}", self.target.repo, subject.digest);
        let mut a = self.send("GET", &path, &[("Accept", INDEX_MEDIA_TYPE)], Body::Empty).map_err(|f| self.store_error(f))?;
        match a.resp.status().as_u16() {
            200 => {
                let body = a.resp.body_mut().with_config().limit(INDEX_LIMIT).read_to_vec().unwrap_or_default();
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                Ok(v.get("manifests").is_some_and(serde_json::Value::is_array))
            }
            400 | 404 | 405 => Ok(false),
            _ => Err(self.store_error(self.status_failure("GET", a))),
        }
    }

    /// The index `tag` names, if it names anything.
    fn get_index(&self, tag: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = format!("/v2/{}/manifests/{tag}", self.target.repo);
        let mut a = self.send("GET", &path, &[("Accept", INDEX_MEDIA_TYPE)], Body::Empty).map_err(|f| self.store_error(f))?;
        match a.resp.status().as_u16() {
            200 => {
                let body = a
                    .resp
                    .body_mut()
                    .with_config()
                    .limit(INDEX_LIMIT)
                    .read_to_vec()
                    .map_err(|e| self.store_error(self.fail(format!("reading the referrers tag {tag}: {e}"), true)))?;
                Ok(Some(body))
            }
            404 => Ok(None),
            _ => Err(self.store_error(self.status_failure("GET", a))),
        }
    }
}

/// After the push: the referrers of each image written, beside it.
pub(super) fn attach_all(
    reg: &Registry,
    pushed: &super::Pushed,
    named: &crate::dest::Named,
    refs: &[(usize, Vec<Referrer>)],
    progress: &dyn crate::image::Progress,
) -> Result<(), crate::dest::CopyError> {
    if let Some(why) = &pushed.converted {
        return Err(crate::dest::CopyError::Unsupported(format!(
            "{}: the image went up as Docker schema 2 ({why}); OCI referrers need an OCI manifest as their subject, and none were attached",
            reg.target
        )));
    }
    for (i, r) in refs {
        let subject = named.images[*i].manifest;
        let how = match reg.attach_referrers(&subject, r)? {
            Listed::Api => "listed by the registry's referrers API".to_string(),
            Listed::Tag(tag, true) => format!("listed under the referrers tag {tag}"),
            Listed::Tag(tag, false) => format!("listed under the referrers tag {tag} already"),
        };
        progress.line(&format!("Attached {} referrer(s) to {}: {how}", r.len(), subject.digest));
    }
    Ok(())
}
