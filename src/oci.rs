//! OCI image layouts (`oci:DIR[:REF]`) and their one-file form
//! (`oci-archive:PATH[:REF]`): a blob store on disk, plus the manifest and
//! the `index.json` entry that name an image in it.

use crate::blob::{BlobStore, BlobWriter, StoreError};
use crate::conf::BlobDigest;
use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, ImageManifestBuilder, MediaType, Sha256Digest};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The annotation that names an image in a layout, as skopeo and umoci
/// read it.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// A blob as a manifest names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: BlobDigest,
}

fn descriptor(b: &Blob) -> Result<Descriptor, String> {
    let digest = Sha256Digest::from_str(&b.digest.sha256).map_err(|e| format!("bad digest {}: {e}", b.digest.sha256))?;
    Ok(Descriptor::new(MediaType::from(b.media_type.as_str()), b.digest.size, digest))
}

/// The image manifest's bytes: OCI media types, config then layers, in
/// the order the image config's diff_ids list them.
pub fn manifest(config: &Blob, layers: &[Blob]) -> Vec<u8> {
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(config).expect("digests made here are valid"))
        .layers(layers.iter().map(|l| descriptor(l).expect("digests made here are valid")).collect::<Vec<_>>())
        .build()
        .expect("every required manifest field is set");
    serde_json::to_vec(&m).expect("a manifest serialises")
}

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// A manifest of a multi-platform image, and the platform it is for.
pub struct PlatformManifest {
    pub manifest: BlobDigest,
    pub architecture: String,
    pub os: String,
    /// The CPU variant (`v7`), where the image has one.
    pub variant: Option<String>,
}

/// An image index naming one manifest per platform.
pub fn image_index(manifests: &[PlatformManifest]) -> Vec<u8> {
    let descriptors: Vec<Descriptor> = manifests
        .iter()
        .map(|m| {
            let mut d =
                descriptor(&Blob { media_type: MANIFEST_MEDIA_TYPE.into(), digest: m.manifest.clone() }).expect("digests made here are valid");
            let mut platform = oci_spec::image::PlatformBuilder::default()
                .architecture(oci_spec::image::Arch::from(m.architecture.as_str()))
                .os(oci_spec::image::Os::from(m.os.as_str()))
                .build()
                .expect("every required platform field is set");
            platform.set_variant(m.variant.clone());
            d.set_platform(Some(platform));
            d
        })
        .collect();
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(descriptors)
        .build()
        .expect("every required index field is set");
    serde_json::to_vec(&index).expect("an index serialises")
}

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
    /// without a reference the manifest is added unnamed.
    pub fn tag(&self, manifest_bytes: &[u8], media_type: &str, reference: Option<&str>) -> Result<BlobDigest, StoreError> {
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
        let mut desc = descriptor(&Blob { media_type: media_type.into(), digest: manifest.clone() })
            .map_err(|what| StoreError::Invalid { target: self.describe(), what })?;
        let mut manifests: Vec<Descriptor> = index.manifests().clone();
        if let Some(r) = reference {
            manifests.retain(|d| d.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str) != Some(r));
            desc.set_annotations(Some(HashMap::from([(REF_NAME.to_string(), r.to_string())])));
        } else {
            manifests.retain(|d| d.annotations().as_ref().is_some_and(|a| a.contains_key(REF_NAME)) || d.digest() != desc.digest());
        }
        manifests.push(desc);
        index.set_manifests(manifests);
        let bytes = serde_json::to_vec(&index).expect("an index serialises");
        write_atomically(&index_path, &bytes).map_err(|e| self.io_error("cannot write index.json", e))?;
        Ok(manifest)
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
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
fn set_public(f: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))
}

impl BlobStore for OciLayout {
    fn has_blob(&self, sha256: &str) -> Result<bool, StoreError> {
        match std::fs::symlink_metadata(self.blobs.join(sha256)) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_error(&format!("cannot read blobs/sha256/{sha256}"), e)),
        }
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
    fn commit(self: Box<Self>, sha256: &str) -> Result<(), StoreError> {
        let layout = self.layout;
        let fail = |e| layout.io_error(&format!("cannot write blobs/sha256/{sha256}"), e);
        let tmp = self.file.into_inner().map_err(|e| fail(e.into_error()))?;
        // Durable before it is named: index.json must never name a blob
        // that a crash could leave short.
        tmp.as_file().sync_all().map_err(fail)?;
        set_public(tmp.as_file()).map_err(fail)?;
        tmp.persist(layout.blobs.join(sha256)).map_err(|e| fail(e.error))?;
        Ok(())
    }
}

/// Writes the layout at `dir` as one tar at `path`, members sorted, owners
/// and times zeroed, so that the same layout always gives the same bytes.
/// The file appears only once complete.
pub fn write_archive(dir: &Path, path: &Path) -> io::Result<()> {
    let out = crate::output::OutputFile::create(path, crate::output::Accept::Any).map_err(io::Error::other)?;
    let mut tar = ::tar::Builder::new(BufWriter::with_capacity(1 << 20, out.file()));
    let mut entries = Vec::new();
    collect(dir, Path::new(""), &mut entries)?;
    entries.sort();
    for rel in entries {
        let full = dir.join(&rel);
        let meta = std::fs::symlink_metadata(&full)?;
        let mut h = ::tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        if meta.is_dir() {
            h.set_entry_type(::tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            tar.append_data(&mut h, format!("{}/", rel.display()), io::empty())?;
        } else {
            h.set_entry_type(::tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(meta.len());
            tar.append_data(&mut h, &rel, File::open(&full)?)?;
        }
    }
    let w = tar.into_inner()?;
    w.into_inner().map_err(|e| e.into_error())?;
    // Gigabytes, not synced, as `stream -o` (see OutputFile::commit_unsynced).
    out.commit_unsynced().map_err(io::Error::other)
}

/// Regular files and directories under `dir`, as paths relative to it;
/// temporary files of an interrupted run are left out.
fn collect(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir.join(rel))? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = rel.join(&name);
        let ty = entry.file_type()?;
        if ty.is_dir() {
            out.push(path.clone());
            collect(dir, &path, out)?;
        } else if ty.is_file() {
            out.push(path);
        }
    }
    Ok(())
}
