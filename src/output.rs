//! Output files, written the way a shell redirection would write them, but
//! never leaving a file that looks complete before it is.
//!
//! Every command that writes a named file goes through [`OutputFile`]:
//!
//! - a path that does not exist, or a regular file, is replaced atomically:
//!   the data goes to a temporary file beside it, renamed into place once
//!   complete. A new file gets the mode a redirection gives it (0666 minus
//!   the umask); an existing one keeps its mode;
//! - a symlink is written through, never replaced: to the regular file it
//!   leads to (atomically, beside that file), or into the FIFO or device it
//!   leads to (`/dev/stdout`, `/dev/null`). A link to nothing is refused;
//! - a FIFO or character device is opened and written into, as `>` would;
//! - a socket, directory or block device is refused with a message naming it.
//!
//! [`commit_together`] publishes several files so that they appear together
//! or not at all (the customisation layer's `layer.tar` and `checksum`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{what} {path}: {source}")]
    Io { path: PathBuf, what: &'static str, source: io::Error },
    #[error("{path} is {kind}; refusing to write over it")]
    Refused { path: PathBuf, kind: &'static str },
}

enum Kind {
    /// A temporary file renamed to `dest` on commit.
    Atomic { tmp: tempfile::NamedTempFile, dest: PathBuf, keep_mode: Option<u32> },
    /// A FIFO or character device, written in place.
    Direct(File),
}

/// A file being written; see the module documentation.
pub struct OutputFile {
    path: PathBuf,
    kind: Kind,
}

/// What a target must be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Regular files (new or existing), FIFOs and character devices.
    Any,
    /// Regular files only: for outputs that must appear together.
    RegularOnly,
}

fn kind_name(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else {
        "not a regular file"
    }
}

impl OutputFile {
    /// Prepares writing `path` (see the module documentation).
    pub fn create(path: &Path, accept: Accept) -> Result<OutputFile, OutputError> {
        let io_err = |what, source| OutputError::Io { path: path.into(), what, source };
        let meta = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Self::atomic(path, path.to_path_buf(), None);
            }
            Err(e) => return Err(io_err("cannot stat", e)),
            Ok(m) => m,
        };
        if meta.file_type().is_file() {
            return Self::atomic(path, path.to_path_buf(), Some(meta.mode() & 0o7777));
        }
        let (target, via_link) = if meta.file_type().is_symlink() {
            match std::fs::metadata(path) {
                Ok(t) => (t, true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(OutputError::Refused { path: path.into(), kind: "a symlink to a missing file" });
                }
                Err(e) => return Err(io_err("cannot follow the symlink", e)),
            }
        } else {
            (meta, false)
        };
        let ft = target.file_type();
        if ft.is_file() {
            // Through a link: replace the file it leads to, never the link.
            // A /proc magic link (/dev/stdout onto a file) has no path to
            // rename over: written in place, as a redirection would.
            debug_assert!(via_link);
            return match std::fs::canonicalize(path) {
                Ok(real) if real.is_file() => Self::atomic(path, real, Some(target.mode() & 0o7777)),
                _ if accept == Accept::Any => {
                    let f = OpenOptions::new().write(true).truncate(true).open(path).map_err(|e| io_err("cannot open", e))?;
                    Ok(OutputFile { path: path.into(), kind: Kind::Direct(f) })
                }
                _ => Err(OutputError::Refused { path: path.into(), kind: "a link to a file with no path of its own" }),
            };
        }
        if accept == Accept::Any && (ft.is_fifo() || ft.is_char_device()) {
            // Opening a FIFO waits for a reader, as `>` does.
            let f = OpenOptions::new().write(true).custom_flags(libc::O_NOCTTY).open(path).map_err(|e| io_err("cannot open", e))?;
            return Ok(OutputFile { path: path.into(), kind: Kind::Direct(f) });
        }
        Err(OutputError::Refused { path: path.into(), kind: kind_name(ft) })
    }

    fn atomic(path: &Path, dest: PathBuf, keep_mode: Option<u32>) -> Result<OutputFile, OutputError> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Created 0666: open() applies the umask, as a redirection does.
        let tmp = tempfile::Builder::new()
            .prefix(".layered-image-")
            .suffix(".partial")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(&dir)
            .map_err(|source| OutputError::Io { path: dir.clone(), what: "cannot create a temporary file in", source })?;
        Ok(OutputFile { path: path.into(), kind: Kind::Atomic { tmp, dest, keep_mode } })
    }

    /// Where the data goes until commit.
    pub fn file(&self) -> &File {
        match &self.kind {
            Kind::Atomic { tmp, .. } => tmp.as_file(),
            Kind::Direct(f) => f,
        }
    }

    /// The temporary file, when there is one (to skip it when archiving
    /// the directory it is in).
    pub fn temp_path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Atomic { tmp, .. } => Some(tmp.path()),
            Kind::Direct(_) => None,
        }
    }

    /// The path as named on the command line.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the file its mode and, if `sync`, makes its data durable;
    /// what commit does before the rename.
    fn seal(&self, sync: bool) -> Result<(), OutputError> {
        let io_err = |what, source| OutputError::Io { path: self.path.clone(), what, source };
        if let Kind::Atomic { tmp, keep_mode, .. } = &self.kind {
            if let Some(mode) = keep_mode {
                tmp.as_file().set_permissions(std::fs::Permissions::from_mode(*mode)).map_err(|e| io_err("cannot set the mode of", e))?;
            }
            if sync {
                tmp.as_file().sync_all().map_err(|e| io_err("cannot write", e))?;
            }
        }
        Ok(())
    }

    /// Publishes the file: synced, then renamed into place (or, written in
    /// place, left as is).
    pub fn commit(self) -> Result<(), OutputError> {
        self.seal(true)?;
        self.publish().map(|_| ())
    }

    /// [`OutputFile::commit`] without the sync, for an image of gigabytes:
    /// the rename still shows it to readers only once complete, and no
    /// image tool (tar, cp, skopeo, docker save) syncs; a sync costs as
    /// long as writing the file to disk (`benches/stream.sh`: +1.0 s on
    /// 2.2 GiB, half the time of the stream). `--fsync` asks for it.
    pub fn commit_unsynced(self) -> Result<(), OutputError> {
        self.seal(false)?;
        self.publish().map(|_| ())
    }

    /// Renames into place; returns the path published, if one was.
    fn publish(self) -> Result<Option<PathBuf>, OutputError> {
        match self.kind {
            Kind::Atomic { tmp, dest, .. } => {
                tmp.persist(&dest).map_err(|e| OutputError::Io { path: self.path, what: "cannot create", source: e.error })?;
                Ok(Some(dest))
            }
            Kind::Direct(_) => Ok(None),
        }
    }
}

/// Publishes all `files`, or none: a rename that fails removes the files
/// already renamed into place.
pub fn commit_together(files: Vec<OutputFile>) -> Result<(), OutputError> {
    for f in &files {
        f.seal(true)?;
    }
    let mut done = Vec::new();
    for f in files {
        match f.publish() {
            Ok(p) => done.extend(p),
            Err(e) => {
                for p in done {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` through an [`OutputFile`].
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    use std::io::Write;
    let out = OutputFile::create(path, Accept::Any)?;
    out.file().write_all(bytes).map_err(|source| OutputError::Io { path: path.into(), what: "cannot write", source })?;
    out.commit()
}
