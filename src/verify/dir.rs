//! skopeo's `dir:` transport (`podman save --format docker-dir` or
//! `oci-dir`'s sibling): `version`, `manifest.json` (an image manifest,
//! Docker v2s2 or OCI), and every blob in a file named by its sha256 hex.
//! Read as an OCI layout whose index names `manifest.json`: the same
//! checks, one naming scheme apart.

use super::oci::Dir;
use super::{Source, VerifyError, read_json};
use serde_json::Value;
use std::io::Read;
use std::path::Path;

pub(super) struct DirTransport {
    files: Dir,
    /// manifest.json's digest: the blob name that stands for it.
    manifest_hex: String,
}

/// What `version` says in the directories containers/image writes.
const VERSION_PREFIX: &str = "Directory Transport Version: 1.";

impl DirTransport {
    /// Opens `dir`; returns it with the descriptor of its manifest.
    pub fn open(dir: &Path, cancel: &super::Cancel) -> Result<(DirTransport, Value), VerifyError> {
        let files = Dir::new(dir, cancel)?;
        let image = files.image().to_string();
        let (r, size) = files.open("version", "the dir: transport's version file")?;
        let mut version = String::new();
        r.take(size.min(256)).read_to_string(&mut version).map_err(|source| VerifyError::Io { image: image.clone(), source })?;
        if !version.starts_with(VERSION_PREFIX) {
            return Err(VerifyError::Invalid { image, what: format!("version says {:?}, not \"{VERSION_PREFIX}x\"", version.trim_end()) });
        }
        let (manifest, hex, size) = read_json(&files, "manifest.json", "the manifest")?;
        let media_type = manifest.get("mediaType").and_then(Value::as_str).unwrap_or("application/vnd.oci.image.manifest.v1+json");
        let descriptor = serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": size});
        Ok((DirTransport { files, manifest_hex: hex }, descriptor))
    }
}

impl Source for DirTransport {
    fn image(&self) -> &str {
        self.files.image()
    }
    fn open(&self, name: &str, what: &str) -> Result<(Box<dyn Read + '_>, u64), VerifyError> {
        match name.strip_prefix("blobs/sha256/") {
            Some(hex) if hex == self.manifest_hex => self.files.open("manifest.json", what),
            Some(hex) => self.files.open(hex, what),
            None => self.files.open(name, what),
        }
    }
    fn cancel(&self) -> &std::sync::atomic::AtomicBool {
        self.files.cancel()
    }
}
