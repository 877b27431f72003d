//! `docker://HOST/REPO[:TAG|@DIGEST]`: blobs first, each manifest of an
//! index by digest, the tag last, so that a tag never names an image whose
//! blobs did not all arrive.

use super::{BlobOutcome, Registry, Target};
use crate::dest::{CopyError, Destination, Job, Written};
use crate::digest::Digest;
use crate::image::Progress;
use crate::image::manifest::MANIFEST_MEDIA_TYPE;
use std::sync::atomic::Ordering;

pub struct Push<'a> {
    pub target: &'a Target,
}

impl Destination for Push<'_> {
    fn write(&self, job: &Job<'_>) -> Result<Written, CopyError> {
        let reg = Registry::new(self.target.clone(), &job.opts.registry)?;
        reg.ping()?;
        // With an index, each platform's manifest goes up by digest first.
        let named = crate::dest::write_images(job, &reg, &mut |image| {
            reg.put_manifest(&image.manifest_bytes, MANIFEST_MEDIA_TYPE, &image.manifest.digest.to_string())?;
            Ok(())
        })?;
        if job.cancel.load(Ordering::Relaxed) {
            return Err(CopyError::Interrupted("the manifest was not pushed".into()));
        }
        reg.put_manifest(&named.bytes, named.media_type, self.target.reference())?;
        let digest = Digest::of(&named.bytes);
        summary(&reg, job.progress);
        job.progress.line(&format!("Pushed {} as {digest}", self.target));
        Ok(Written { digest: Some(digest) })
    }
}

/// One line per blob: uploaded, already there, or mounted.
fn summary(reg: &Registry, progress: &dyn Progress) {
    let mut outcomes: Vec<_> = reg.outcomes().into_iter().collect();
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    for (digest, o) in outcomes {
        let what = match o {
            BlobOutcome::Uploaded => "uploaded".to_string(),
            BlobOutcome::AlreadyThere => "already there".to_string(),
            BlobOutcome::Mounted(from) => format!("mounted from {from}"),
        };
        progress.line(&format!("blob sha256:{digest}: {what}"));
    }
}
