//! `--dry-run`: what a push would do, blob by blob, found with reads
//! only (HEADs); layers the registry lacks are produced into nothing, to
//! learn their digest and size.

use super::{Body, Registry, header, lock};
use crate::blob::{BlobStore, BlobWriter, Hashing, StoreError};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Mutex;

/// What the push would do with one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    AlreadyThere,
    Mount(String),
    Upload(u64),
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Plan::AlreadyThere => write!(f, "already there"),
            Plan::Mount(from) => write!(f, "would be mounted from {from}"),
            Plan::Upload(size) => write!(f, "would be uploaded ({size} bytes)"),
        }
    }
}

/// A blob store that asks the registry and writes nothing.
pub struct DryRun<'r> {
    registry: &'r Registry,
    plan: Mutex<BTreeMap<String, Plan>>,
}

impl<'r> DryRun<'r> {
    pub fn new(registry: &'r Registry) -> DryRun<'r> {
        DryRun { registry, plan: Mutex::new(BTreeMap::new()) }
    }

    /// Each blob (hex digest) and what would become of it.
    pub fn plan(&self) -> BTreeMap<String, Plan> {
        lock(&self.plan).clone()
    }

    fn head(&self, repo: &str, sha256: &str) -> Result<bool, StoreError> {
        let reg = self.registry;
        let a = reg.send("HEAD", &format!("/v2/{repo}/blobs/sha256:{sha256}"), &[], Body::Empty).map_err(|f| reg.store_error(f))?;
        match a.resp.status().as_u16() {
            200 => Ok(header(&a.resp, "docker-content-digest").is_none_or(|d| d == format!("sha256:{sha256}"))),
            404 => Ok(false),
            _ => Err(reg.store_error(reg.status_failure("HEAD", a))),
        }
    }
}

impl BlobStore for DryRun<'_> {
    fn has_blob(&self, blob: &crate::digest::BlobDigest) -> Result<bool, StoreError> {
        let sha256 = &blob.digest.hex();
        // A blob already planned (an upload too) is one the push would not send twice.
        if lock(&self.plan).contains_key(sha256) {
            return Ok(true);
        }
        let plan = if self.head(&self.registry.target.repo, sha256)? {
            Plan::AlreadyThere
        } else {
            let mut from = None;
            for repo in &self.registry.mount_from {
                if self.head(repo, sha256)? {
                    from = Some(repo.clone());
                    break;
                }
            }
            match from {
                Some(r) => Plan::Mount(r),
                None => return Ok(false),
            }
        };
        lock(&self.plan).insert(sha256.to_string(), plan);
        Ok(true)
    }

    fn new_blob(&self) -> Result<Box<dyn BlobWriter + '_>, StoreError> {
        Ok(Box::new(Counted { store: self, inner: Hashing::new(io::sink()) }))
    }

    fn describe(&self) -> String {
        format!("{} (dry run)", self.registry.target)
    }

    fn presence(&self, blob: &crate::digest::Digest) -> String {
        lock(&self.plan).get(&blob.hex()).map_or_else(|| "already there".into(), |p| p.to_string())
    }
}

struct Counted<'s, 'r> {
    store: &'s DryRun<'r>,
    inner: Hashing<io::Sink>,
}

impl Write for Counted<'_, '_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.inner.write(data)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for Counted<'_, '_> {
    fn commit(self: Box<Self>, blob: &crate::digest::Digest) -> Result<(), StoreError> {
        let (_, digest) = self.inner.finish();
        lock(&self.store.plan).insert(blob.hex(), Plan::Upload(digest.size));
        Ok(())
    }
}
