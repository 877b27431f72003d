//! The last step of a push: the manifest, under each tag, only once the
//! registry's word on every blob it names has been checked, and never by
//! a push that was cancelled.

use super::{Body, Failure, Registry, errors, header, lock, manifest};
use crate::blob::StoreError;
use sha2::Digest;

/// What a push put where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest (`sha256:...`) as the registry stores it.
    pub digest: String,
    pub media_type: String,
    /// Tags (or the digest) the manifest was put under.
    pub written: Vec<String>,
    /// Additional tags that named this manifest already.
    pub unchanged: Vec<String>,
    /// Set when the registry refused the OCI manifest and the image went
    /// up as Docker schema 2: why.
    pub converted: Option<String>,
}

const OCI_MANIFEST: &str = crate::oci::MANIFEST_MEDIA_TYPE;
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

impl Registry {
    /// Puts a manifest (or an index) under `reference` (a tag or a
    /// digest). The registry's answer is any 2xx (older Quay says 202)
    /// naming the same digest.
    pub fn put_manifest(&self, bytes: &[u8], media_type: &str, reference: &str) -> Result<(), StoreError> {
        self.put_manifest_once(bytes, media_type, reference).map_err(|(f, _)| self.store_error(f))
    }

    /// The failure and, for a refusal, the registry's error codes.
    fn put_manifest_once(&self, bytes: &[u8], media_type: &str, reference: &str) -> Result<(), (Failure, Vec<String>)> {
        if self.cancelled() {
            return Err((self.interrupted(), Vec::new()));
        }
        self.check_sizes(bytes).map_err(|f| (f, Vec::new()))?;
        let path = format!("/v2/{}/manifests/{reference}", self.target.repo);
        let len = bytes.len().to_string();
        let mut a =
            self.send("PUT", &path, &[("Content-Type", media_type), ("Content-Length", &len)], Body::Bytes(bytes)).map_err(|f| (f, Vec::new()))?;
        let status = a.resp.status();
        if !status.is_success() {
            let body = a.resp.body_mut().with_config().limit(64 << 10).read_to_string().unwrap_or_default();
            let f = self.fail(format!("PUT /v2/{}/manifests/{reference}: {}", self.target.repo, errors::describe(status.as_u16(), &body)), false);
            let mut codes = errors::codes(&body);
            if status.as_u16() == 415 {
                codes.push("UNSUPPORTED_MEDIA_TYPE".into());
            }
            return Err((f, codes));
        }
        let want = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        if let Some(got) = header(&a.resp, "docker-content-digest")
            && got != want
        {
            return Err((self.fail(format!("the registry stored the manifest as {got}, not {want}"), false), Vec::new()));
        }
        Ok(())
    }

    /// Refuses a manifest naming a blob whose size the registry stated
    /// otherwise (a HEAD's Content-Length) or that was sent otherwise.
    fn check_sizes(&self, bytes: &[u8]) -> Result<(), Failure> {
        let sizes = lock(&self.sizes);
        for (digest, size) in manifest::blobs(bytes) {
            if let Some(&known) = sizes.get(&digest)
                && known != size
            {
                return Err(self.fail(
                    format!("the registry says blob sha256:{digest} has {known} bytes, the image needs {size}; no tag was written (a broken or lying registry)"),
                    false,
                ));
            }
        }
        Ok(())
    }

    /// The digest `tag` names now, if any.
    fn tag_digest(&self, tag: &str) -> Result<Option<String>, Failure> {
        let a = self.send("HEAD", &format!("/v2/{}/manifests/{tag}", self.target.repo), &[("Accept", ACCEPT)], Body::Empty)?;
        match a.resp.status().as_u16() {
            200 => Ok(header(&a.resp, "docker-content-digest").map(str::to_string)),
            404 => Ok(None),
            _ => Err(self.status_failure("HEAD", a)),
        }
    }

    /// Tags the image: its manifest under the destination's tag (or
    /// digest, which must be the manifest's), then under each additional
    /// tag that does not name it already. A registry refusing OCI
    /// manifests gets the image as Docker schema 2 (same config and
    /// layers), as skopeo does. Nothing is tagged once cancelled.
    pub fn push_manifest(&self, bytes: &[u8], media_type: &str, additional_tags: &[String]) -> Result<Pushed, StoreError> {
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        if let Some(want) = &self.target.digest
            && *want != digest
        {
            return Err(self.store_error(
                self.fail(format!("the destination names {want}, but the image's manifest is {digest}; nothing was pushed under it"), false),
            ));
        }
        let reference = self.target.reference().to_string();
        let mut pushed = Pushed { digest, media_type: media_type.to_string(), written: Vec::new(), unchanged: Vec::new(), converted: None };
        // What went up: the OCI manifest, or its Docker schema 2 form.
        let mut sent = bytes.to_vec();
        match self.put_manifest_once(&sent, media_type, &reference) {
            Ok(()) => {}
            Err((f, codes))
                if media_type == OCI_MANIFEST
                    && codes.iter().any(|c| c == "MANIFEST_INVALID" || c == "UNSUPPORTED" || c == "UNSUPPORTED_MEDIA_TYPE")
                    && self.target.digest.is_none() =>
            {
                sent = manifest::to_docker(bytes).map_err(|e| self.store_error(self.fail(format!("{}; {e}", f.what), false)))?;
                self.put_manifest_once(&sent, manifest::DOCKER_MANIFEST, &reference).map_err(|(f2, _)| {
                    self.store_error(Failure { what: format!("{} (after the registry refused the OCI manifest: {})", f2.what, f.what), ..f2 })
                })?;
                pushed.converted = Some(f.what.split_once(&format!("/manifests/{reference}: ")).map_or(f.what.clone(), |(_, w)| w.to_string()));
                pushed.digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&sent)));
                pushed.media_type = manifest::DOCKER_MANIFEST.to_string();
            }
            Err((f, _)) => return Err(self.store_error(f)),
        }
        pushed.written.push(reference.clone());
        for tag in additional_tags {
            if *tag == reference || pushed.written.contains(tag) || pushed.unchanged.contains(tag) {
                continue;
            }
            if self.tag_digest(tag).map_err(|f| self.store_error(f))?.as_deref() == Some(pushed.digest.as_str()) {
                pushed.unchanged.push(tag.clone());
                continue;
            }
            self.put_manifest_once(&sent, &pushed.media_type, tag).map_err(|(f, _)| self.store_error(f))?;
            pushed.written.push(tag.clone());
        }
        Ok(pushed)
    }
}
