//! `oci-archive:PATH[:REF]`: an OCI layout as one tar. It is built as a
//! layout beside PATH and archived into it once complete; an archive
//! already at PATH is read back into that layout first, so that a second
//! image joins the first (as it does in `oci:DIR`) instead of replacing it.

use super::CopyError;
use crate::tar::reader::{Dialect, Reader, Streamed};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
        let tmp = tempfile::Builder::new().prefix(".layered-image-").tempdir_in(&parent).map_err(|e| ArchiveError::Io {
            path: self.path.into(),
            what: format!("cannot create a temporary directory in {}", parent.display()),
            source: e,
        })?;
        let layout_dir = tmp.path().join("layout");
        // As in oci:DIR, the images already there stay.
        if read_existing(self.path, &layout_dir, job.cancel)? {
            job.progress.line(&format!("Adding to the images already in {}", self.path.display()));
        }
        let digest = super::oci_layout::write_layout(&layout_dir, self.reference, job)?;
        write(&layout_dir, self.path, job.cancel)?;
        job.progress.line(&format!(
            "Wrote oci-archive:{}{} as {digest}",
            self.path.display(),
            self.reference.map(|r| format!(":{r}")).unwrap_or_default()
        ));
        Ok(super::Written { digest: Some(digest), plan: None })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error("{path}: {what}: {source}")]
    Io { path: PathBuf, what: String, source: io::Error },
    #[error("interrupted; {path} was not written")]
    Interrupted { path: PathBuf },
}

/// index.json and oci-layout are read whole; real ones are small.
const JSON_LIMIT: u64 = crate::image::base::JSON_MEMBER_LIMIT;

/// Unpacks the oci-archive at `path`, if there is one, into the (new,
/// empty) layout directory `dir`; returns whether there was. Only
/// `oci-layout`, `index.json` and `blobs/sha256/<hex>` are taken, each
/// blob checked to hash to its name: nothing else in the old archive can
/// reach the new one. A FIFO or device at `path` is written, not read.
pub fn read_existing(path: &Path, dir: &Path, cancel: &AtomicBool) -> Result<bool, ArchiveError> {
    let io_err = |what: &str, source| ArchiveError::Io { path: path.into(), what: what.into(), source };
    let invalid = |what: String| ArchiveError::Invalid { path: path.into(), what };
    let meta = match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        r => r.map_err(|e| io_err("cannot stat", e))?,
    };
    if !meta.is_file() || meta.len() == 0 {
        return Ok(false);
    }
    let file = File::open(path).map_err(|e| io_err("cannot open", e))?;
    let mut archive = Reader::new(Streamed(io::BufReader::with_capacity(1 << 20, file)), Dialect::Go);
    let not_archive = |why: String| invalid(format!("exists and is not an oci-archive ({why}); not overwritten"));
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| io_err("cannot create a layout beside it", e))?;
    let mut has_marker = false;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(ArchiveError::Interrupted { path: path.into() });
        }
        let Some(member_entry) = archive.next_entry().map_err(|e| not_archive(e.to_string()))? else { break };
        let name = String::from_utf8_lossy(member_entry.name()).into_owned();
        let name = name.trim_start_matches("./");
        if member_entry.typeflag() == crate::tar::python::DIRTYPE || name.is_empty() {
            continue;
        }
        let mut entry = archive.data(&member_entry);
        let member = |what: &str| invalid(format!("member {name} {what}; not overwritten"));
        let hex = name.strip_prefix("blobs/sha256/").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        if hex.is_none() && name != "oci-layout" && name != "index.json" {
            // Not part of an OCI layout: left out of the new archive.
            continue;
        }
        if !member_entry.is_regular() {
            return Err(member("is not a regular file"));
        }
        match hex {
            Some(hex) => {
                let mut out = BufWriter::with_capacity(1 << 20, File::create(blobs.join(hex)).map_err(|e| io_err("cannot unpack", e))?);
                let mut hash = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(ArchiveError::Interrupted { path: path.into() });
                    }
                    let n = match entry.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(io_err(&format!("cannot read member {name}"), e)),
                    };
                    hash.update(&buf[..n]);
                    out.write_all(&buf[..n]).map_err(|e| io_err("cannot unpack", e))?;
                }
                out.flush().map_err(|e| io_err("cannot unpack", e))?;
                let got = hex::encode(hash.finalize());
                if got != hex {
                    return Err(member(&format!("has sha256:{got}, not the digest its name says")));
                }
            }
            None => {
                if member_entry.size() > JSON_LIMIT {
                    return Err(member("is implausibly large"));
                }
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(|e| io_err(&format!("cannot read member {name}"), e))?;
                if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
                    return Err(member("is not JSON"));
                }
                has_marker |= name == "oci-layout";
                std::fs::write(dir.join(name), &bytes).map_err(|e| io_err("cannot unpack", e))?;
            }
        }
    }
    if !has_marker {
        return Err(not_archive("no oci-layout member".into()));
    }
    Ok(true)
}

/// Writes the layout at `dir` as one tar at `path`, members sorted, owners
/// and times zeroed, so that the same layout always gives the same bytes.
/// The file appears only once complete; `cancel` stops it within a read
/// of 1 MiB, leaving nothing at `path`.
pub fn write(dir: &Path, path: &Path, cancel: &AtomicBool) -> Result<(), ArchiveError> {
    let io_err = |what: &str, source| ArchiveError::Io { path: path.into(), what: what.into(), source };
    let out = crate::output::OutputFile::create(path, crate::output::Accept::Any)
        .map_err(|e| ArchiveError::Invalid { path: path.into(), what: e.to_string() })?;
    let mut tar = ::tar::Builder::new(BufWriter::with_capacity(1 << 20, out.file()));
    let mut entries = Vec::new();
    collect(dir, Path::new(""), &mut entries).map_err(|e| io_err("cannot read the layout", e))?;
    entries.sort();
    let stopped = || ArchiveError::Interrupted { path: path.into() };
    for rel in entries {
        if cancel.load(Ordering::Relaxed) {
            return Err(stopped());
        }
        let full = dir.join(&rel);
        let meta = std::fs::symlink_metadata(&full).map_err(|e| io_err("cannot read the layout", e))?;
        let mut h = ::tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let written = if meta.is_dir() {
            h.set_entry_type(::tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            tar.append_data(&mut h, format!("{}/", rel.display()), io::empty())
        } else {
            h.set_entry_type(::tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(meta.len());
            let f = File::open(&full).map_err(|e| io_err("cannot read the layout", e))?;
            tar.append_data(&mut h, &rel, crate::stop::Cancellable { inner: f, cancel })
        };
        match written {
            Err(_) if cancel.load(Ordering::Relaxed) => return Err(stopped()),
            r => r.map_err(|e| io_err("cannot write", e))?,
        }
    }
    let w = tar.into_inner().map_err(|e| io_err("cannot write", e))?;
    w.into_inner().map_err(|e| io_err("cannot write", e.into_error()))?;
    if cancel.load(Ordering::Relaxed) {
        return Err(stopped());
    }
    // Gigabytes, not synced, as `stream -o` (see OutputFile::commit_unsynced).
    out.commit_unsynced().map_err(|e| ArchiveError::Invalid { path: path.into(), what: e.to_string() })
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
