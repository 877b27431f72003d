//! `oci-archive:PATH[:REF]`: an OCI layout as one tar, built in a
//! temporary layout beside PATH and archived into it once complete.

use super::CopyError;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

pub struct OciArchive<'a> {
    pub path: &'a Path,
    pub reference: Option<&'a str>,
}

impl super::Destination for OciArchive<'_> {
    fn write(&self, job: &super::Job<'_>) -> Result<super::Written, CopyError> {
        let parent = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new().prefix(".layered-image-").tempdir_in(&parent).map_err(|e| {
            CopyError::Store(crate::blob::StoreError::Io {
                target: format!("oci-archive:{}", self.path.display()),
                what: format!("cannot create a temporary directory in {}", parent.display()),
                source: e,
            })
        })?;
        let layout_dir = tmp.path().join("layout");
        let digest = super::oci_layout::write_layout(&layout_dir, self.reference, job)?;
        if job.cancelled() {
            return Err(CopyError::Interrupted(format!("{} was not written", self.path.display())));
        }
        write_archive(&layout_dir, self.path).map_err(|e| {
            CopyError::Store(crate::blob::StoreError::Io {
                target: format!("oci-archive:{}", self.path.display()),
                what: "cannot write it".into(),
                source: e,
            })
        })?;
        job.progress.line(&format!(
            "Wrote oci-archive:{}{} as {digest}",
            self.path.display(),
            self.reference.map(|r| format!(":{r}")).unwrap_or_default()
        ));
        Ok(super::Written { digest: Some(digest), plan: None })
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
