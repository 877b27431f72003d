//! The entries of a store path in the order nixpkgs archives them:
//! `sorted([path, *path.rglob("*")])` — a pre-order walk with siblings in
//! Python's code-point order, never following symlinks.
//!
//! The walk is lazy (one sorted sibling list per open directory), so memory
//! follows the tree's depth, not its size.

use std::cmp::Ordering;
use std::fs::{self, Metadata};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("store path {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is a socket; container layers cannot hold sockets")]
    Socket { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Regular { size: u64 },
    Directory,
    Symlink { target: Vec<u8> },
    Fifo,
    CharDevice { major: u64, minor: u64 },
    BlockDevice { major: u64, minor: u64 },
}

/// One member of a layer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where to read it.
    pub path: PathBuf,
    /// Its member name: `/` + the path as written in the conf, normalised
    /// like `pathlib`, plus the child components; no trailing `/` yet.
    pub name: Vec<u8>,
    pub kind: Kind,
    /// `st_mode & 0o7777`.
    pub mode: u32,
}

/// Python compares `str` by code point; names that are not valid UTF-8 are
/// decoded with `surrogateescape` (byte `b` -> U+DC00+b), which orders
/// differently from raw bytes against characters above U+DC80.
pub fn py_name_cmp(a: &[u8], b: &[u8]) -> Ordering {
    match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(_), Ok(_)) => a.cmp(b),
        _ => code_points(a).cmp(code_points(b)),
    }
}

fn code_points(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes.utf8_chunks().flat_map(|chunk| chunk.valid().chars().map(u32::from).chain(chunk.invalid().iter().map(|&b| 0xDC00 + u32::from(b))))
}

fn device_numbers(rdev: u64) -> (u64, u64) {
    // glibc's gnu_dev_major/minor, which Python's os.major/minor call.
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

fn entry_of(path: PathBuf, name: Vec<u8>, meta: &Metadata) -> Result<Entry, WalkError> {
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        Kind::Regular { size: meta.len() }
    } else if ft.is_dir() {
        Kind::Directory
    } else if ft.is_symlink() {
        let target = fs::read_link(&path).map_err(|source| WalkError::Io { path: path.clone(), source })?;
        Kind::Symlink { target: target.into_os_string().into_vec() }
    } else if ft.is_fifo() {
        Kind::Fifo
    } else if ft.is_char_device() {
        let (major, minor) = device_numbers(meta.rdev());
        Kind::CharDevice { major, minor }
    } else if ft.is_block_device() {
        let (major, minor) = device_numbers(meta.rdev());
        Kind::BlockDevice { major, minor }
    } else {
        return Err(WalkError::Socket { path });
    };
    Ok(Entry { path, name, kind, mode: meta.mode() & 0o7777 })
}

/// A directory's entry names, sorted, packed into fixed-size slabs: a
/// directory of 300,000 names costs their bytes plus 8 per name, with no
/// `OsString` per name and no buffer doubling (and copying) as it grows.
struct Names {
    slabs: Vec<Vec<u8>>,
    /// (slab << 40 | offset << 16 | length), sorted by name.
    spans: Vec<u64>,
    next: usize,
}

/// Names longer than a slab get a slab of their own.
const SLAB: usize = 256 << 10;

impl Names {
    fn new() -> Names {
        Names { slabs: Vec::new(), spans: Vec::new(), next: 0 }
    }

    fn push(&mut self, name: &[u8]) {
        let fits = self.slabs.last().is_some_and(|s| s.capacity() - s.len() >= name.len());
        if !fits {
            self.slabs.push(Vec::with_capacity(SLAB.max(name.len())));
        }
        let slab = self.slabs.len() - 1;
        let buf = &mut self.slabs[slab];
        let at = buf.len();
        buf.extend_from_slice(name);
        // A name is at most 255 bytes (NAME_MAX) and a slab 256 KiB, or one name.
        self.spans.push((slab as u64) << 40 | (at as u64) << 16 | name.len() as u64);
    }

    fn get(&self, span: u64) -> &[u8] {
        let (slab, at, len) = ((span >> 40) as usize, ((span >> 16) & 0xff_ffff) as usize, (span & 0xffff) as usize);
        &self.slabs[slab][at..at + len]
    }

    fn sort(&mut self) {
        let mut spans = std::mem::take(&mut self.spans);
        spans.sort_by(|&a, &b| py_name_cmp(self.get(a), self.get(b)));
        spans.shrink_to_fit();
        self.spans = spans;
    }

    fn next(&mut self) -> Option<&[u8]> {
        let &span = self.spans.get(self.next)?;
        self.next += 1;
        Some(self.get(span))
    }
}

struct OpenDir {
    path: PathBuf,
    name: Vec<u8>,
    children: Names,
}

/// Iterator over one store path's entries.
pub struct Walk {
    first: Option<Result<Entry, WalkError>>,
    stack: Vec<OpenDir>,
}

impl Walk {
    /// `fs_path` is where the store path is on disk; `name` its member name.
    pub fn new(fs_path: &Path, name: Vec<u8>) -> Walk {
        let first = match fs::symlink_metadata(fs_path) {
            Ok(meta) => entry_of(fs_path.to_path_buf(), name, &meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(WalkError::Missing(fs_path.to_path_buf())),
            Err(source) => Err(WalkError::Io { path: fs_path.to_path_buf(), source }),
        };
        Walk { first: Some(first), stack: Vec::new() }
    }

    fn open(&mut self, entry: &Entry) -> Result<(), WalkError> {
        let io = |source| WalkError::Io { path: entry.path.clone(), source };
        let mut names = Names::new();
        // Python's rglob silently skips unreadable directories; an image
        // missing files without a word is worse than an error.
        for child in fs::read_dir(&entry.path).map_err(io)? {
            let child = child.map_err(io)?;
            if names.slabs.len() >= 1 << 23 {
                return Err(io(std::io::Error::other("directory listing over 2 TiB")));
            }
            names.push(child.file_name().as_bytes());
        }
        names.sort();
        self.stack.push(OpenDir { path: entry.path.clone(), name: entry.name.clone(), children: names });
        Ok(())
    }

    fn visit(&mut self, entry: Entry) -> Result<Entry, WalkError> {
        if entry.kind == Kind::Directory {
            self.open(&entry)?;
        }
        Ok(entry)
    }
}

impl Iterator for Walk {
    type Item = Result<Entry, WalkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(first) = self.first.take() {
            return Some(first.and_then(|e| self.visit(e)));
        }
        loop {
            let top = self.stack.last_mut()?;
            let Some(child) = top.children.next() else {
                self.stack.pop();
                continue;
            };
            let path = top.path.join(std::ffi::OsStr::from_bytes(child));
            let mut name = top.name.clone();
            name.push(b'/');
            name.extend_from_slice(child);
            let entry = fs::symlink_metadata(&path)
                .map_err(|source| WalkError::Io { path: path.clone(), source })
                .and_then(|meta| entry_of(path, name, &meta));
            return Some(entry.and_then(|e| self.visit(e)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_order_differs_from_bytes_for_invalid_utf8() {
        // U+E000 (EE 80 80) vs the lone byte FF (-> U+DCFF): bytes say
        // EE < FF, Python's code points say E000 > DCFF.
        assert_eq!(py_name_cmp("\u{e000}".as_bytes(), b"\xff"), Ordering::Greater);
        assert_eq!(py_name_cmp(b"a", b"a-b"), Ordering::Less);
        assert_eq!(py_name_cmp(b"Deep", b"deep"), Ordering::Less);
    }

    #[test]
    fn names_span_slabs_in_python_order() {
        let mut names = Names::new();
        let mut want: Vec<Vec<u8>> = (0..20_000u32).map(|i| format!("{:0>255}", i.wrapping_mul(2_654_435_761) % 100_000).into_bytes()).collect();
        want.push(b"\xff".to_vec());
        want.push("\u{e000}".as_bytes().to_vec());
        for n in &want {
            names.push(n);
        }
        assert!(names.slabs.len() > 1);
        names.sort();
        want.sort_by(|a, b| py_name_cmp(a, b));
        let mut got = Vec::new();
        while let Some(n) = names.next() {
            got.push(n.to_vec());
        }
        assert_eq!(got, want);
    }
}
