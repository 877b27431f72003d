//! OCI image layouts (`oci:DIR[:REF]`) and their one-file form
//! (`oci-archive:PATH[:REF]`): a blob store on disk, plus the manifest and
//! the `index.json` entry that name an image in it.

use super::CopyError;
use crate::blob::{BlobStore, BlobWriter, StoreError};
use crate::digest::{BlobDigest, Digest};
use crate::image::manifest::{Blob, REF_NAME};
use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// An OCI image layout directory.
pub struct OciLayout {
    dir: PathBuf,
    blobs: PathBuf,
}

impl OciLayout {
    /// Opens the layout at `dir`, creating it (and its `oci-layout` file)
    /// if it does not exist. Images already in it stay.
    pub fn open_or_create(dir: &Path) -> Result<OciLayout, StoreError> {
        let target = format!("oci:{}", dir.display());
        let io_err = |what: String, source| StoreError::Io { target: target.clone(), what, source };
        match std::fs::symlink_metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(StoreError::Invalid { target, what: "exists and is not a directory".into() });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create the directory".into(), e))?;
            }
            Err(e) => return Err(io_err("cannot read".into(), e)),
        }
        let marker = dir.join("oci-layout");
        match std::fs::read(&marker) {
            Ok(text) => {
                let v: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
                if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
                    return Err(StoreError::Invalid { target, what: "oci-layout does not say imageLayoutVersion 1.0.0".into() });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let is_empty = std::fs::read_dir(dir).map_err(|e| io_err("cannot read".into(), e))?.next().is_none();
                if !is_empty {
                    return Err(StoreError::Invalid {
                        target,
                        what: "is a directory that holds files but no oci-layout: not an OCI layout, not overwritten".into(),
                    });
                }
                write_atomically(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(|e| io_err("cannot write oci-layout".into(), e))?;
            }
            Err(e) => return Err(io_err("cannot read oci-layout".into(), e)),
        }
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| io_err("cannot create blobs/sha256".into(), e))?;
        Ok(OciLayout { dir: dir.into(), blobs })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores the manifest (or image index) and names it `reference` in
    /// `index.json` (replacing an image of that name, keeping all others);
    /// without a reference the manifest is added unnamed. `like`, the
    /// index entry that named a copied image in its source, lends the new
    /// entry its platform and annotations (the ref name is ours).
    pub fn tag(
        &self,
        manifest_bytes: &[u8],
        media_type: &str,
        reference: Option<&str>,
        like: Option<&serde_json::Value>,
    ) -> Result<BlobDigest, StoreError> {
        let manifest = self.put_blob(manifest_bytes)?;
        let index_path = self.dir.join("index.json");
        let mut index = match std::fs::metadata(&index_path) {
            Ok(_) => ImageIndex::from_file(&index_path)
                .map_err(|e| StoreError::Invalid { target: self.describe(), what: format!("index.json cannot be read: {e}") })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => ImageIndexBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::ImageIndex)
                .manifests(Vec::new())
                .build()
                .expect("every required index field is set"),
            Err(e) => return Err(self.io_error("cannot read index.json", e)),
        };
        let mut desc = Blob::new(media_type, manifest).descriptor();
        let mut annotations: HashMap<String, String> = HashMap::new();
        if let Some(like) = like {
            desc.set_platform(like.get("platform").and_then(|p| serde_json::from_value(p.clone()).ok()));
            if let Some(a) = like.get("annotations").and_then(serde_json::Value::as_object) {
                annotations.extend(a.iter().filter(|(k, _)| *k != REF_NAME).filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))));
            }
        }
        let mut manifests: Vec<Descriptor> = index.manifests().clone();
        if let Some(r) = reference {
            manifests.retain(|d| d.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str) != Some(r));
            annotations.insert(REF_NAME.to_string(), r.to_string());
        } else {
            manifests.retain(|d| d.annotations().as_ref().is_some_and(|a| a.contains_key(REF_NAME)) || d.digest() != desc.digest());
        }
        if !annotations.is_empty() {
            desc.set_annotations(Some(annotations));
        }
        manifests.push(desc);
        index.set_manifests(manifests);
        let bytes = sorted_annotations(serde_json::to_value(&index).expect("an index serialises"));
        write_atomically(&index_path, &bytes).map_err(|e| self.io_error("cannot write index.json", e))?;
        Ok(manifest)
    }
}

impl OciLayout {
    /// Stores each referrer's blobs and manifest, then lists the manifests
    /// in `index.json` unnamed, with their artifactType (as skopeo and
    /// oras keep referrers in a layout): a reader finds them by the
    /// `subject` their manifests name. One already listed is not listed twice.
    pub fn add_referrers(&self, referrers: &[super::referrers::Referrer]) -> Result<(), StoreError> {
        for r in referrers {
            for b in &r.blobs {
                self.put_blob(b)?;
            }
            self.put_blob(&r.manifest)?;
        }
        let index_path = self.dir.join("index.json");
        let bytes = std::fs::read(&index_path).map_err(|e| self.io_error("cannot read index.json", e))?;
        let descriptors: Vec<serde_json::Value> = referrers.iter().map(super::referrers::Referrer::descriptor).collect();
        let merged = super::referrers::merge(Some(&bytes), &descriptors)
            .map_err(|what| StoreError::Invalid { target: self.describe(), what: format!("index.json: {what}") })?;
        if let Some(merged) = merged {
            write_atomically(&index_path, &merged).map_err(|e| self.io_error("cannot write index.json", e))?;
        }
        Ok(())
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it.
/// The index's bytes with each entry's annotations in key order (they
/// are a hash map in memory): the same copy writes the same index.json.
fn sorted_annotations(mut index: serde_json::Value) -> Vec<u8> {
    for entry in index.get_mut("manifests").and_then(serde_json::Value::as_array_mut).into_iter().flatten() {
        if let Some(a) = entry.get_mut("annotations").and_then(serde_json::Value::as_object_mut) {
            a.sort_keys();
        }
    }
    serde_json::to_vec(&index).expect("an index serialises")
}

pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".layered-image-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    set_public(tmp.as_file())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Blobs and layout files are read by other users' tools (a registry, a
/// runtime): rw-r--r--, not the private mode of a temporary file.
pub(super) fn set_public(f: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))
}

impl BlobStore for OciLayout {
    /// A file of the right name and size. Not re-hashed: reading every
    /// blob of a layout to skip writing it would cost what writing costs;
    /// the size catches truncated and emptied files, and `verify` hashes.
    fn has_blob(&self, blob: &BlobDigest) -> Result<bool, StoreError> {
        let hex = blob.digest.hex();
        match std::fs::symlink_metadata(self.blobs.join(&hex)) {
            Ok(m) => Ok(m.is_file() && m.len() == blob.size),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_error(&format!("cannot read blobs/sha256/{hex}"), e)),
        }
    }

    /// A config or manifest is small: one already there is compared byte
    /// for byte, and replaced unless identical.
    fn put_blob(&self, bytes: &[u8]) -> Result<BlobDigest, StoreError> {
        let digest = BlobDigest { digest: Digest::of(bytes), size: bytes.len() as u64 };
        let path = self.blobs.join(digest.digest.hex());
        let same = self.has_blob(&digest)? && std::fs::read(&path).map_err(|e| self.io_error("cannot read a blob", e))? == bytes;
        if !same {
            let mut w = self.new_blob()?;
            w.write_all(bytes).map_err(|e| self.io_error("cannot write a blob", e))?;
            w.commit(&digest.digest)?;
        }
        Ok(digest)
    }

    fn new_blob(&self) -> Result<Box<dyn BlobWriter + '_>, StoreError> {
        let tmp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&self.blobs)
            .map_err(|e| self.io_error("cannot create a blob in blobs/sha256", e))?;
        Ok(Box::new(FileBlob { layout: self, file: BufWriter::with_capacity(1 << 20, tmp) }))
    }

    fn describe(&self) -> String {
        format!("oci:{}", self.dir.display())
    }
}

struct FileBlob<'a> {
    layout: &'a OciLayout,
    file: BufWriter<tempfile::NamedTempFile>,
}

impl Write for FileBlob<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.file.write(data)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter for FileBlob<'_> {
    fn commit(self: Box<Self>, digest: &Digest) -> Result<(), StoreError> {
        let layout = self.layout;
        let sha256 = digest.hex();
        let fail = |e| layout.io_error(&format!("cannot write blobs/sha256/{sha256}"), e);
        let tmp = self.file.into_inner().map_err(|e| fail(e.into_error()))?;
        // Durable before it is named: index.json must never name a blob
        // that a crash could leave short.
        tmp.as_file().sync_all().map_err(fail)?;
        set_public(tmp.as_file()).map_err(fail)?;
        tmp.persist(layout.blobs.join(&sha256)).map_err(|e| fail(e.error))?;
        Ok(())
    }
}

/// `oci:DIR[:REF]`: images kept, blobs shared, `index.json` naming them.
pub struct Layout<'a> {
    pub dir: &'a Path,
    pub reference: Option<&'a str>,
}

impl super::Destination for Layout<'_> {
    fn write(&self, job: &super::Job<'_>) -> Result<super::Written, CopyError> {
        let digest = write_layout(self.dir, self.reference, job)?;
        job.progress.line(&format!("Wrote oci:{}{} as {digest}", self.dir.display(), self.reference.map(|r| format!(":{r}")).unwrap_or_default()));
        Ok(super::Written { digest: Some(digest), plan: None })
    }
}

/// Writes `images` into the layout at `dir` (created if need be) and names
/// them `reference`, else the tag of their NAME:TAG.
pub(super) fn write_layout(dir: &Path, reference: Option<&str>, job: &super::Job<'_>) -> Result<Digest, CopyError> {
    let first = job.images.first().ok_or_else(|| CopyError::Unsupported("no image to write".into()))?;
    let tag = job.repo_tag(first);
    let own = match &first.input {
        super::Input::Image(i) => i.reference.as_deref(),
        super::Input::Conf { .. } => None,
    };
    // A tag the layout's grammar refuses names nothing (nixpkgs' tags may be anything).
    let name = reference.or_else(|| tag.as_deref().and_then(crate::reference::tag_of).filter(|t| crate::reference::is_oci_ref_name(t))).or(own);
    let layout = OciLayout::open_or_create(dir)?;
    // With an index, a layout keeps each platform's manifest as a blob.
    let named = super::write_images(job, &layout, &mut |image| {
        layout.put_blob(&image.manifest_bytes)?;
        Ok(())
    })?;
    if job.cancelled() {
        return Err(CopyError::Interrupted(format!("oci:{} was not named", dir.display())));
    }
    let referrers = job.referrers(&named)?;
    let like = match job.images {
        [super::Source { input: super::Input::Image(i), .. }] => i.entry.as_ref(),
        _ => None,
    };
    let digest = layout.tag(&named.bytes, named.media_type, name, like)?.digest;
    for (i, r) in &referrers {
        layout.add_referrers(r)?;
        job.progress.line(&format!("Attached {} referrer(s) to {}", r.len(), named.images[*i].manifest.digest));
    }
    Ok(digest)
}
