//! The customisation layer's `layer.tar` and `checksum`, byte for byte
//! what nixpkgs gets from `tar --sort name --numeric-owner --mtime
//! @$SOURCE_DATE_EPOCH --hard-dereference -cf layer.tar .` (GNU tar 1.34).
//!
//! Ownership and modes come from glibc's `lstat`, not Rust's `statx`
//! syscall, so `fakeroot`'s LD_PRELOAD view (chown inside fakeroot) is
//! what lands in the archive, as it does with GNU tar.

use crate::tar::gnu::{self, Kind, Member};
use sha2::{Digest, Sha256};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// nixpkgs stdenv's default `SOURCE_DATE_EPOCH` (1980-01-01).
pub const DEFAULT_EPOCH: i64 = 315532800;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{path}: {what}")]
    Io { path: String, what: &'static str, source: io::Error },
    #[error("{path}: file changed size while being archived ({expected} bytes expected)")]
    Shrank { path: String, expected: u64 },
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error(transparent)]
    Output(crate::output::OutputError),
}

pub struct Options {
    pub mtime: i64,
    /// GNU tar `--exclude` patterns (fnmatch, unanchored, `*` matches `/`).
    pub exclude: Vec<String>,
}

/// Result of writing a layer: its sha256 (lowercase hex) and size.
pub struct Written {
    pub sha256: String,
    pub size: u64,
}

struct Sink<W: Write> {
    inner: W,
    hash: Sha256,
    count: u64,
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Io { path: path.display().to_string(), what, source }
}

struct Stat {
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    rdev: u64,
    dev: u64,
    ino: u64,
}

// File types as u32 on every unix (mode_t is u16 on Darwin).
#[allow(clippy::unnecessary_cast)]
const S_IFMT: u32 = libc::S_IFMT as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFREG: u32 = libc::S_IFREG as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFDIR: u32 = libc::S_IFDIR as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFLNK: u32 = libc::S_IFLNK as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFIFO: u32 = libc::S_IFIFO as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFCHR: u32 = libc::S_IFCHR as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFBLK: u32 = libc::S_IFBLK as u32;
// stat's fields are narrower on Darwin (u16 mode, i32 devices): the casts
// are no-ops only on Linux.
#[allow(clippy::unnecessary_cast)]
fn lstat(path: &Path) -> io::Result<Stat> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and st is a valid out pointer.
    if unsafe { libc::lstat(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Stat {
        mode: st.st_mode as u32,
        uid: st.st_uid as u64,
        gid: st.st_gid as u64,
        size: st.st_size as u64,
        rdev: st.st_rdev as u64,
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
    })
}

fn excluded(patterns: &[CString], name: &[u8]) -> bool {
    if patterns.is_empty() {
        return false;
    }
    let name = name.strip_suffix(b"/").unwrap_or(name);
    // Unanchored: the pattern may match the name or any suffix of it that
    // starts after a `/`.
    let mut starts = vec![0];
    starts.extend(name.iter().enumerate().filter(|(_, b)| **b == b'/').map(|(i, _)| i + 1));
    starts.into_iter().any(|s| {
        let Ok(text) = CString::new(&name[s..]) else {
            return false;
        };
        patterns.iter().any(|p| {
            // SAFETY: both are NUL-terminated C strings.
            unsafe { libc::fnmatch(p.as_ptr(), text.as_ptr(), 0) == 0 }
        })
    })
}

struct Walker<'a, W: Write> {
    out: Sink<W>,
    opts: &'a Options,
    patterns: Vec<CString>,
    skip: Vec<(u64, u64)>,
}

impl<W: Write> Walker<'_, W> {
    fn member(&mut self, path: &Path, name: Vec<u8>) -> Result<(), LayerError> {
        if excluded(&self.patterns, &name) {
            return Ok(());
        }
        let st = lstat(path).map_err(io_err(path, "cannot stat"))?;
        if self.skip.contains(&(st.dev, st.ino)) {
            return Ok(());
        }
        let kind = match st.mode & S_IFMT {
            S_IFREG => Kind::Regular,
            S_IFDIR => Kind::Directory,
            S_IFLNK => Kind::Symlink,
            S_IFIFO => Kind::Fifo,
            S_IFCHR => Kind::CharDevice,
            S_IFBLK => Kind::BlockDevice,
            _ => {
                crate::diag::line(&format!("layered-image: {}: socket ignored", String::from_utf8_lossy(&name)));
                return Ok(());
            }
        };
        let mut member = Member {
            name,
            kind,
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
            size: st.size,
            mtime: self.opts.mtime,
            link: Vec::new(),
            dev: (libc::major(st.rdev as libc::dev_t) as u64, libc::minor(st.rdev as libc::dev_t) as u64),
        };
        match kind {
            Kind::Directory => {
                // Read the directory before writing its header, so an
                // unreadable one fails cleanly instead of half-written.
                let mut entries: Vec<OsString> = std::fs::read_dir(path)
                    .map_err(io_err(path, "cannot open directory"))?
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<Result<_, _>>()
                    .map_err(io_err(path, "cannot read directory"))?;
                entries.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                let mut dir_name = member.name.clone();
                if !dir_name.ends_with(b"/") {
                    dir_name.push(b'/');
                }
                member.name = dir_name.clone();
                gnu::write_header(&mut self.out, &member).map_err(io_err(path, "cannot write"))?;
                for entry in entries {
                    let mut child = dir_name.clone();
                    child.extend_from_slice(entry.as_bytes());
                    self.member(&path.join(&entry), child)?;
                }
            }
            Kind::Symlink => {
                member.link = std::fs::read_link(path).map_err(io_err(path, "cannot read link"))?.into_os_string().into_vec();
                gnu::write_header(&mut self.out, &member).map_err(io_err(path, "cannot write"))?;
            }
            Kind::Regular => {
                let mut file = File::open(path).map_err(io_err(path, "cannot open"))?;
                gnu::write_header(&mut self.out, &member).map_err(io_err(path, "cannot write"))?;
                let copied = io::copy(&mut (&mut file).take(st.size), &mut self.out).map_err(io_err(path, "cannot read"))?;
                if copied != st.size {
                    return Err(LayerError::Shrank { path: path.display().to_string(), expected: st.size });
                }
                gnu::pad_data(&mut self.out, st.size).map_err(io_err(path, "cannot write"))?;
            }
            _ => gnu::write_header(&mut self.out, &member).map_err(io_err(path, "cannot write"))?,
        }
        Ok(())
    }
}

/// Archives the contents of `dir` (as `.`) into `out`.
pub fn write_layer<W: Write>(dir: &Path, out: W, opts: &Options, skip: &[(u64, u64)]) -> Result<Written, LayerError> {
    let st = lstat(dir).map_err(io_err(dir, "cannot stat"))?;
    if st.mode & S_IFMT != S_IFDIR {
        return Err(LayerError::NotADirectory { path: dir.display().to_string() });
    }
    let patterns = opts.exclude.iter().filter_map(|p| CString::new(p.as_bytes()).ok()).collect();
    let mut walker = Walker { out: Sink { inner: out, hash: Sha256::new(), count: 0 }, opts, patterns, skip: skip.to_vec() };
    walker.member(dir, b"./".to_vec())?;
    let count = walker.out.count;
    gnu::finish(&mut walker.out, count).map_err(io_err(dir, "cannot write"))?;
    walker.out.flush().map_err(io_err(dir, "cannot write"))?;
    Ok(Written { sha256: hex::encode(walker.out.hash.finalize()), size: walker.out.count })
}

/// Writes `outdir/layer.tar` and `outdir/checksum`: both appear, complete,
/// or neither does. Either may be a regular file or a link to one
/// ([`crate::output`]); anything else is refused before the tar is made.
pub fn build(dir: &Path, outdir: &Path, opts: &Options) -> Result<Written, LayerError> {
    use crate::output::{Accept, OutputFile};
    std::fs::create_dir_all(outdir).map_err(io_err(outdir, "cannot create directory"))?;
    let out_err = |e: crate::output::OutputError| LayerError::Output(e);
    let layer = OutputFile::create(&outdir.join("layer.tar"), Accept::RegularOnly).map_err(out_err)?;
    let sum = OutputFile::create(&outdir.join("checksum"), Accept::RegularOnly).map_err(out_err)?;
    // The temporary files may be inside the directory archived.
    let skip: Vec<(u64, u64)> = [&layer, &sum].iter().filter_map(|o| o.temp_path()).filter_map(|p| lstat(p).ok()).map(|s| (s.dev, s.ino)).collect();
    let written = write_layer(dir, BufWriter::new(layer.file()), opts, &skip)?;
    writeln!(sum.file(), "{}", written.sha256).map_err(io_err(outdir, "cannot write checksum"))?;
    crate::output::commit_together(vec![layer, sum]).map_err(out_err)?;
    Ok(written)
}

/// `--mtime` default: `SOURCE_DATE_EPOCH`, else nixpkgs' 1980-01-01.
pub fn default_mtime(env: Option<&OsStr>) -> Result<i64, String> {
    match env {
        None => Ok(DEFAULT_EPOCH),
        Some(v) => v.to_str().and_then(|s| s.trim().parse().ok()).ok_or_else(|| format!("SOURCE_DATE_EPOCH={:?} is not an integer", v)),
    }
}
