//! The last step of a push: the manifest, under each tag, only once the
//! registry's word on every blob it names has been checked, and never by
//! a push that was cancelled.

use super::{Body, Failure, Registry, errors, header, lock, manifest};
use crate::blob::StoreError;
use crate::digest::Digest;
use std::collections::HashMap;

/// What a push put where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's (or index's) digest as the registry stores it.
    pub digest: Digest,
    pub media_type: String,
    /// Tags (or the digest) the manifest was put under.
    pub written: Vec<String>,
    /// Additional tags that named this manifest already.
    pub unchanged: Vec<String>,
    /// Set when the registry refused OCI manifests and the image (or
    /// index) went up as Docker schema 2: why.
    pub converted: Option<String>,
}

const OCI_MANIFEST: &str = crate::image::manifest::MANIFEST_MEDIA_TYPE;
const OCI_INDEX: &str = crate::image::manifest::INDEX_MEDIA_TYPE;
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The platform manifests of an index pushed so far and, once the
/// registry refused an OCI manifest, their Docker schema 2 forms: a
/// Docker manifest list must name Docker manifests only.
#[derive(Default)]
pub struct Platforms {
    oci: Vec<(Digest, Vec<u8>)>,
    /// OCI manifest digest -> its Docker form's digest and size.
    docker: HashMap<Digest, (Digest, u64)>,
    /// The registry's refusal, once it refused an OCI manifest.
    refused: Option<Failure>,
}

/// The error codes with which registries refuse OCI media types.
fn refuses_oci(codes: &[String]) -> bool {
    codes.iter().any(|c| c == "MANIFEST_INVALID" || c == "UNSUPPORTED" || c == "UNSUPPORTED_MEDIA_TYPE")
}

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
        let want = Digest::of(bytes).to_string();
        if let Some(got) = header(&a.resp, "docker-content-digest") {
            if got != want {
                return Err((self.fail(format!("the registry stored the manifest as {got}, not {want}"), false), Vec::new()));
            }
        }
        Ok(())
    }

    /// Refuses a manifest naming a blob whose size the registry stated
    /// otherwise (a HEAD's Content-Length) or that was sent otherwise.
    fn check_sizes(&self, bytes: &[u8]) -> Result<(), Failure> {
        let sizes = lock(&self.sizes);
        for (digest, size) in manifest::blobs(bytes) {
            if let Some(&known) = sizes.get(&digest) {
                if known != size {
                    return Err(self.fail(
                    format!("the registry says blob sha256:{digest} has {known} bytes, the image needs {size}; no tag was written (a broken or lying registry)"),
                    false,
                ));
                }
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

    /// Whether a refusal may be answered with Docker schema 2: not when
    /// the destination names a digest, which the converted manifest
    /// would not have (skopeo keeps it too).
    fn may_convert(&self, codes: &[String]) -> bool {
        refuses_oci(codes) && self.target.digest.is_none()
    }

    /// Why the registry refused, without the request (said once).
    fn refusal(&self, f: &Failure) -> String {
        f.what.split_once("/manifests/").and_then(|(_, w)| w.split_once(": ")).map_or(f.what.clone(), |(_, w)| w.to_string())
    }

    /// A platform manifest of an index, put by its digest: as it is, or
    /// (once the registry refused OCI manifests) in its Docker form.
    pub fn put_platform(&self, platforms: &mut Platforms, bytes: &[u8]) -> Result<(), StoreError> {
        let digest = Digest::of(bytes);
        platforms.oci.push((digest, bytes.to_vec()));
        if platforms.refused.is_none() {
            match self.put_manifest_once(bytes, OCI_MANIFEST, &digest.to_string()) {
                Ok(()) => return Ok(()),
                Err((f, codes)) if self.may_convert(&codes) => platforms.refused = Some(f),
                Err((f, _)) => return Err(self.store_error(f)),
            }
        }
        self.convert_platforms(platforms).map_err(|f| self.store_error(f))
    }

    /// Puts the Docker form of each platform manifest that has none yet,
    /// by its digest (those put as OCI before the refusal too).
    fn convert_platforms(&self, platforms: &mut Platforms) -> Result<(), Failure> {
        let refused = platforms.refused.as_ref().expect("converted after a refusal");
        for (digest, bytes) in &platforms.oci {
            if platforms.docker.contains_key(digest) {
                continue;
            }
            let docker = self.docker_form(bytes, refused)?;
            let docker_digest = Digest::of(&docker);
            self.put_manifest_once(&docker, manifest::DOCKER_MANIFEST, &docker_digest.to_string())
                .map_err(|(f, _)| self.after_refusal(f, refused))?;
            platforms.docker.insert(*digest, (docker_digest, docker.len() as u64));
        }
        Ok(())
    }

    fn docker_form(&self, oci: &[u8], refused: &Failure) -> Result<Vec<u8>, Failure> {
        manifest::to_docker(oci).map_err(|e| {
            self.fail(format!("the registry refused the OCI manifest ({}), and it cannot be converted: {e}", self.refusal(refused)), false)
        })
    }

    fn after_refusal(&self, f: Failure, refused: &Failure) -> Failure {
        Failure { what: format!("{} (after the registry refused the OCI manifest: {})", f.what, self.refusal(refused)), ..f }
    }

    /// Tags the image (or index): its manifest under the destination's
    /// tag (or digest, which must be the manifest's), then under each
    /// additional tag that does not name it already. A registry refusing
    /// OCI manifests gets the image as Docker schema 2 (same config and
    /// layers), an index as a Docker manifest list of such manifests, as
    /// skopeo does. Nothing is tagged once cancelled.
    pub fn push_manifest(&self, bytes: &[u8], media_type: &str, additional_tags: &[String]) -> Result<Pushed, StoreError> {
        self.push_named(bytes, media_type, additional_tags, &mut Platforms::default())
    }

    /// [`Registry::push_manifest`] of an index whose platform manifests
    /// went up through [`Registry::put_platform`].
    pub fn push_named(&self, bytes: &[u8], media_type: &str, additional_tags: &[String], platforms: &mut Platforms) -> Result<Pushed, StoreError> {
        let digest = Digest::of(bytes);
        if let Some(want) = &self.target.digest {
            if *want != digest.to_string() {
                return Err(self.store_error(
                    self.fail(format!("the destination names {want}, but the image's manifest is {digest}; nothing was pushed under it"), false),
                ));
            }
        }
        let reference = self.target.reference().to_string();
        let mut pushed = Pushed { digest, media_type: media_type.to_string(), written: Vec::new(), unchanged: Vec::new(), converted: None };
        // What went up: the OCI manifest or index, or its Docker schema 2 form.
        let mut sent = bytes.to_vec();
        // An index whose platforms went up in Docker form is a list at once.
        let convert = if platforms.refused.is_some() && media_type == OCI_INDEX {
            true
        } else {
            match self.put_manifest_once(&sent, media_type, &reference) {
                Ok(()) => false,
                Err((f, codes)) if (media_type == OCI_MANIFEST || media_type == OCI_INDEX) && self.may_convert(&codes) => {
                    platforms.refused.get_or_insert(f);
                    true
                }
                Err((f, _)) => return Err(self.store_error(f)),
            }
        };
        if convert {
            let (docker, docker_type) = if media_type == OCI_INDEX {
                self.convert_platforms(platforms).map_err(|f| self.store_error(f))?;
                let list = manifest::to_docker_list(bytes, &platforms.docker).map_err(|e| self.store_error(self.fail(e, false)))?;
                (list, manifest::DOCKER_LIST)
            } else {
                let refused = platforms.refused.as_ref().expect("a refusal");
                (self.docker_form(bytes, refused).map_err(|f| self.store_error(f))?, manifest::DOCKER_MANIFEST)
            };
            let refused = platforms.refused.as_ref().expect("a refusal");
            self.put_manifest_once(&docker, docker_type, &reference).map_err(|(f, _)| self.store_error(self.after_refusal(f, refused)))?;
            pushed.converted = Some(self.refusal(refused));
            pushed.digest = Digest::of(&docker);
            pushed.media_type = docker_type.to_string();
            sent = docker;
        }
        pushed.written.push(reference.clone());
        for tag in additional_tags {
            if *tag == reference || pushed.written.contains(tag) || pushed.unchanged.contains(tag) {
                continue;
            }
            if self.tag_digest(tag).map_err(|f| self.store_error(f))?.as_deref() == Some(pushed.digest.to_string().as_str()) {
                pushed.unchanged.push(tag.clone());
                continue;
            }
            self.put_manifest_once(&sent, &pushed.media_type, tag).map_err(|(f, _)| self.store_error(f))?;
            pushed.written.push(tag.clone());
        }
        Ok(pushed)
    }
}

/// `docker://HOST/REPO[:TAG|@DIGEST]`: blobs first, each manifest of an
/// index by digest, the tags last, so that a tag never names an image
/// whose blobs did not all arrive.
pub struct Push<'a> {
    pub target: &'a super::Target,
}

impl crate::dest::Destination for Push<'_> {
    fn write(&self, job: &crate::dest::Job<'_>) -> Result<crate::dest::Written, crate::dest::CopyError> {
        use crate::dest::{CopyError, Written};
        let reg = Registry::new(self.target.clone(), &job.opts.registry)?;
        reg.ping()?;
        if job.opts.dry_run {
            return dry_run(&reg, job);
        }
        // With an index, each platform's manifest goes up by digest first.
        let mut platforms = Platforms::default();
        let named = crate::dest::write_images(job, &reg, &mut |image| {
            reg.put_platform(&mut platforms, &image.manifest_bytes)?;
            Ok(())
        })?;
        if job.cancelled() {
            return Err(CopyError::Interrupted("the manifest was not pushed".into()));
        }
        let referrers = job.referrers(&named)?;
        let pushed = reg.push_named(&named.bytes, named.media_type, &job.opts.additional_tags, &mut platforms)?;
        if !referrers.is_empty() {
            super::referrers::attach_all(&reg, &pushed, &named, &referrers, job.progress)?;
        }
        summary(&reg, job.progress);
        if let Some(why) = &pushed.converted {
            let what = if pushed.media_type == manifest::DOCKER_LIST {
                "the index as a Docker manifest list of schema 2 manifests"
            } else {
                "the image as Docker schema 2"
            };
            job.progress.line(&format!("The registry refused the OCI manifest ({why}); pushed {what} (same config and layers)"));
        }
        for t in &pushed.unchanged {
            job.progress.line(&format!("Tag {t} names {} already; left as it is", pushed.digest));
        }
        job.progress.line(&format!("Pushed {} as {} (tags: {})", self.target, pushed.digest, pushed.written.join(", ")));
        Ok(Written { digest: Some(pushed.digest), plan: None })
    }
}

/// `--dry-run`: the image produced into nothing, against the registry's
/// answers to reads; one line per blob, then the manifest.
fn dry_run(reg: &Registry, job: &crate::dest::Job<'_>) -> Result<crate::dest::Written, crate::dest::CopyError> {
    use super::dry_run::{DryRun, Plan};
    let store = DryRun::new(reg);
    let named = crate::dest::write_images(job, &store, &mut |_| Ok(()))?;
    let mut plan = String::new();
    for (digest, p) in store.plan() {
        job.progress.line(&format!("blob sha256:{digest}: {p}"));
        let what = match p {
            Plan::AlreadyThere => "present".to_string(),
            Plan::Mount(from) => format!("mount {from}"),
            Plan::Upload(size) => format!("upload {size}"),
        };
        plan.push_str(&format!("sha256:{digest} {what}\n"));
    }
    let digest = crate::digest::Digest::of(&named.bytes);
    plan.push_str(&format!("manifest {digest} {}\n", reg.target()));
    job.progress.line(&format!("Dry run: {} would name {digest}; nothing was written", reg.target()));
    Ok(crate::dest::Written { digest: None, plan: Some(plan) })
}

/// One line per blob: uploaded, already there, or mounted.
fn summary(reg: &Registry, progress: &dyn crate::image::Progress) {
    let mut outcomes: Vec<_> = reg.outcomes().into_iter().collect();
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    for (digest, o) in outcomes {
        let what = match o {
            super::BlobOutcome::Uploaded => "uploaded".to_string(),
            super::BlobOutcome::AlreadyThere => "already there".to_string(),
            super::BlobOutcome::Mounted(from) => format!("mounted from {from}"),
        };
        progress.line(&format!("blob sha256:{digest}: {what}"));
    }
}
