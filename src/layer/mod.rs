//! A store layer's tar, as `archive_paths_to` in nixpkgs' stream script
//! writes it: `/nix/` and `/nix/store/` first, then each store path's
//! entries in pathlib order, owners and mtimes from the conf, hard links as
//! full regular files, and the archive padded to tarfile's record size.

pub mod customisation;
pub mod perms;
pub mod pipe;
pub mod walk;

use crate::layer::walk::{Entry, Kind, Walk, WalkError};
use crate::tar::python::{self as tar, Header};
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} changed while the image was being written (size {expected} became {actual})")]
    Changed { path: PathBuf, expected: u64, actual: u64 },
    #[error("writing the image failed: {0}")]
    Write(#[source] io::Error),
}

/// Owner and time applied to every member of a store layer.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub mtime: i64,
    /// The conf's `perms`: per-path owners and modes (empty: nixpkgs' bytes).
    pub perms: perms::Perms,
}

/// A store path of a layer: where it is on disk and how it is named.
#[derive(Debug, Clone)]
pub struct StorePath {
    /// The string as the conf wrote it (history comments repeat it).
    pub as_written: String,
    /// Where to read it (relative conf paths are resolved by the caller).
    pub fs_path: PathBuf,
    /// `/` + the pathlib-normalised path: the member name.
    pub member_name: Vec<u8>,
}

/// Where a layer's bytes go. File contents are read straight into the
/// sink's own memory rather than through an intermediate buffer: the copy
/// saved is a sizeable part of the CPU time of a layer.
pub trait LayerSink: Write {
    /// Appends at most `max` (> 0) bytes read from `f`; returns how many (0 at end of file).
    fn read_file(&mut self, f: &mut File, max: usize) -> Result<usize, SinkRead>;
}

/// Whose failure a [`LayerSink::read_file`] error is.
#[derive(Debug)]
pub enum SinkRead {
    File(io::Error),
    Sink(io::Error),
}

fn header_for<'a>(name: &'a [u8], mode: u32, kind: &'a Kind, stamp: &'a Stamp) -> Header<'a> {
    let mut name = Cow::Borrowed(name);
    let (typeflag, size, linkname, device) = match kind {
        Kind::Regular { size } => (tar::REGTYPE, *size, &[][..], None),
        Kind::Directory => {
            name.to_mut().push(b'/');
            (tar::DIRTYPE, 0, &[][..], None)
        }
        Kind::Symlink { target } => (tar::SYMTYPE, 0, &target[..], None),
        Kind::Fifo => (tar::FIFOTYPE, 0, &[][..], None),
        Kind::CharDevice { major, minor } => (tar::CHRTYPE, 0, &[][..], Some((*major, *minor))),
        Kind::BlockDevice { major, minor } => (tar::BLKTYPE, 0, &[][..], Some((*major, *minor))),
    };
    let base = perms::Applied { mode, uid: stamp.uid, gid: stamp.gid, uname: &stamp.uname, gname: &stamp.gname };
    let owner = if stamp.perms.is_empty() { base } else { stamp.perms.apply(&name[..name.len() - usize::from(typeflag == tar::DIRTYPE)], base) };
    Header {
        name,
        mode: owner.mode,
        uid: owner.uid,
        gid: owner.gid,
        size,
        mtime: stamp.mtime,
        typeflag,
        linkname: Cow::Borrowed(linkname),
        uname: Cow::Borrowed(owner.uname.as_bytes()),
        gname: Cow::Borrowed(owner.gname.as_bytes()),
        device,
        pax: Vec::new(),
    }
}

/// Writes the layer tar of `paths` to `out` and returns its length.
pub fn write_layer<W: LayerSink>(paths: &[StorePath], stamp: &Stamp, out: &mut W) -> Result<u64, LayerError> {
    let mut w = Counting { inner: out, written: 0 };
    let mut head = Vec::with_capacity(2048);
    for name in [&b"/nix"[..], b"/nix/store"] {
        head.clear();
        tar::encode_header(&header_for(name, 0o755, &Kind::Directory, stamp), &mut head);
        w.write_all(&head).map_err(LayerError::Write)?;
    }
    for path in paths {
        for entry in Walk::new(&path.fs_path, path.member_name.clone()) {
            let entry = entry?;
            head.clear();
            tar::encode_header(&header_for(&entry.name, entry.mode, &entry.kind, stamp), &mut head);
            w.write_all(&head).map_err(LayerError::Write)?;
            if let Kind::Regular { size } = entry.kind {
                copy_file(&entry, size, &mut w)?;
            }
        }
    }
    let end = tar::end_of_archive_len(w.written);
    write_zeros(&mut w, end).map_err(LayerError::Write)?;
    Ok(w.written)
}

/// The length [`write_layer`] will write for `paths`, from their metadata
/// alone (no file is opened): what lets a seekable output take a layer in
/// one pass, its header written before its digest is known. A file that
/// changes size afterwards makes the layer come out another length, which
/// the writer catches.
pub fn layer_size(paths: &[StorePath], stamp: &Stamp) -> Result<u64, LayerError> {
    let mut head = Vec::with_capacity(2048);
    let mut total = 0u64;
    for name in [&b"/nix"[..], b"/nix/store"] {
        head.clear();
        tar::encode_header(&header_for(name, 0o755, &Kind::Directory, stamp), &mut head);
        total += head.len() as u64;
    }
    for path in paths {
        member_sizes(path, stamp, |_, n| total += n)?;
    }
    Ok(total + tar::end_of_archive_len(total))
}

/// Calls `f` with each member of `path` in layer order and the bytes it
/// takes in the layer tar (header, data, padding): what `explain` adds up
/// per store path. From metadata alone; no file is opened.
pub fn member_sizes(path: &StorePath, stamp: &Stamp, mut f: impl FnMut(&Entry, u64)) -> Result<(), LayerError> {
    let mut head = Vec::with_capacity(2048);
    for entry in Walk::new(&path.fs_path, path.member_name.clone()) {
        let entry = entry?;
        head.clear();
        tar::encode_header(&header_for(&entry.name, entry.mode, &entry.kind, stamp), &mut head);
        let data = match entry.kind {
            Kind::Regular { size } => size + tar::padding(size),
            _ => 0,
        };
        f(&entry, head.len() as u64 + data);
    }
    Ok(())
}

/// Copies exactly `size` bytes of the file plus block padding. A file whose
/// size no longer matches what the walk saw has changed under us.
fn copy_file<W: LayerSink>(entry: &Entry, size: u64, w: &mut Counting<W>) -> Result<(), LayerError> {
    let read_err = |source| LayerError::Read { path: entry.path.clone(), source };
    // No fstat here: a file that shrank ends early (caught below), and the
    // second pass's hash catches any other change.
    let mut f = File::open(&entry.path).map_err(read_err)?;
    let mut left = size;
    while left > 0 {
        let want = left.min(1 << 30) as usize;
        let n = w.read_file(&mut f, want).map_err(|e| match e {
            SinkRead::File(e) => read_err(e),
            SinkRead::Sink(e) => LayerError::Write(e),
        })?;
        if n == 0 {
            return Err(LayerError::Changed { path: entry.path.clone(), expected: size, actual: size - left });
        }
        left -= n as u64;
    }
    write_zeros(w, tar::padding(size)).map_err(LayerError::Write)
}

pub(crate) fn write_zeros<W: Write>(w: &mut W, mut n: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        w.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

struct Counting<'a, W> {
    inner: &'a mut W,
    written: u64,
}

impl<W: LayerSink> LayerSink for Counting<'_, W> {
    fn read_file(&mut self, f: &mut File, max: usize) -> Result<usize, SinkRead> {
        let n = self.inner.read_file(f, max)?;
        self.written += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
