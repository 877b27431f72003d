//! The base image (`fromImage`): a docker-archive read the way Python's
//! `tarfile.open()` reads it, so that its layer members can be re-emitted
//! with the very headers nixpkgs' script would write for them.
//!
//! Compressed archives (gzip, bzip2, xz, and zstd, which Python cannot
//! read) are decompressed once into a temporary file: the members are
//! needed in manifest order, not archive order, and a layer is never held
//! in memory.

use super::{ImageError, decode};
use crate::digest::{BlobDigest, Digest};
use crate::tar::python::{self as tar, Header};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BaseImageError {
    #[error("fromImage {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("fromImage {path} is not a tar archive (nor a gzip, bzip2, xz or zstd compressed one): {reason}")]
    NotTar { path: PathBuf, reason: String },
    #[error("fromImage {path} is truncated: {what}")]
    Truncated { path: PathBuf, what: String },
    #[error("fromImage {path}: corrupt tar header at byte {offset}: {reason}")]
    BadHeader { path: PathBuf, offset: u64, reason: String },
    #[error("fromImage {path}: decompressed size exceeds {limit} bytes, over 1100 times the compressed size (a decompression bomb?)")]
    Bomb { path: PathBuf, limit: u64 },
    #[error("fromImage {path} has no member {member:?}{why}")]
    MissingMember { path: PathBuf, member: String, why: &'static str },
    #[error("fromImage {path}: {member} is not valid JSON: {source}")]
    Json { path: PathBuf, member: String, source: serde_json::Error },
    #[error("fromImage {path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

/// A member header as Python's `TarInfo` holds it after reading.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub typeflag: u8,
    pub linkname: Vec<u8>,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub device: (u64, u64),
    pub pax: Vec<(String, Vec<u8>)>,
    pub data_offset: u64,
}

impl Member {
    /// The header `tarfile.addfile` writes for this member in PAX format.
    pub fn header(&self) -> Header<'_> {
        let mut name = Cow::Borrowed(&self.name[..]);
        if self.typeflag == tar::DIRTYPE && !name.ends_with(b"/") {
            name.to_mut().push(b'/');
        }
        Header {
            name,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            size: self.size,
            mtime: self.mtime,
            typeflag: self.typeflag,
            linkname: Cow::Borrowed(&self.linkname),
            uname: Cow::Borrowed(&self.uname),
            gname: Cow::Borrowed(&self.gname),
            device: Some(self.device),
            pax: self.pax.clone(),
        }
    }

    pub fn is_regular(&self) -> bool {
        matches!(self.typeflag, tar::REGTYPE | 0 | b'7')
    }
}

/// One layer of the base image, in manifest order.
#[derive(Debug, Clone)]
pub struct BaseLayer {
    pub member: Member,
    /// The manifest's name for it (also its history comment).
    pub name: String,
    /// The uncompressed layer's digest, from `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// For a layer stored as a link: the index (in `layers`) of the regular
    /// layer member a reader of the output gets through it.
    pub source: Option<usize>,
}

pub struct BaseImage {
    pub path: PathBuf,
    file: File,
    _spool: Option<tempfile::NamedTempFile>,
    pub layers: Vec<BaseLayer>,
    /// The image config's `config` object (only its Env is inherited).
    pub config: serde_json::Map<String, Value>,
    /// The image config as stored: what names the image (its ID).
    pub config_bytes: Vec<u8>,
}

/// How many layers the first image of a docker-archive has: what nixpkgs'
/// conf derivation reads with `tar -xOf IMAGE manifest.json | jq '.[0].Layers
/// | length'`. One streaming pass; nothing is spooled.
pub fn manifest_layer_count(path: &Path) -> Result<usize, BaseImageError> {
    let io_err = |source| BaseImageError::Io { path: path.into(), source };
    let not_tar = |e: io::Error| BaseImageError::NotTar { path: path.into(), reason: e.to_string() };
    let (mut file, compressed_len) = open_regular(path)?;
    let mut head = [0u8; 8];
    let n = file.read(&mut head).map_err(io_err)?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let limit = bomb_limit(compressed_len);
    let reader: Box<dyn Read> = match decode::decompressor(&head[..n], BufReader::new(file.try_clone().map_err(io_err)?)).map_err(io_err)? {
        Some(d) => Box::new(Bounded { inner: d, left: limit }),
        None => Box::new(BufReader::new(file)),
    };
    let mut archive = ::tar::Archive::new(reader);
    // Raw entries: the tar crate would read a GNU long name or a pax header
    // whole into memory, whatever size it claims; manifest.json needs
    // neither, and skipped entries are streamed past.
    let entries = archive.entries().map_err(not_tar)?.raw(true);
    for entry in entries {
        let mut entry = entry.map_err(|e| bomb_or(path, limit, e, not_tar))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(not_tar)?.into_owned();
        if name == Path::new("manifest.json") || name == Path::new("./manifest.json") {
            if entry.size() > JSON_MEMBER_LIMIT {
                return Err(BaseImageError::Invalid {
                    path: path.into(),
                    what: format!("manifest.json of {} bytes is implausibly large", entry.size()),
                });
            }
            let mut text = Vec::new();
            entry.read_to_end(&mut text).map_err(|e| bomb_or(path, limit, e, io_err))?;
            let manifest = parse_json(path, "manifest.json", &text)?;
            return manifest
                .get(0)
                .and_then(|m| m.get("Layers"))
                .and_then(Value::as_array)
                .map(Vec::len)
                .ok_or_else(|| BaseImageError::Invalid { path: path.into(), what: "manifest.json[0].Layers is missing or not a list".into() });
        }
    }
    Err(BaseImageError::MissingMember { path: path.into(), member: "manifest.json".into(), why: " (not a docker-archive?)" })
}

/// Pax records and GNU long names are read whole; no real one is this big.
const MAX_METADATA: u64 = 64 << 20;

/// More than ~1100x expansion (gzip's ceiling) is a decompression bomb.
pub(crate) fn bomb_limit(compressed_len: u64) -> u64 {
    compressed_len.saturating_mul(1100).saturating_add(64 << 20)
}

/// Members are read out of order, so the image must be a seekable file;
/// and opening a FIFO would block until someone writes to it.
fn open_regular(path: &Path) -> Result<(File, u64), BaseImageError> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: the check is on what was opened, so nothing swapped in
    // between (a FIFO) can block the open.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| BaseImageError::Io { path: path.into(), source })?;
    let meta = file.metadata().map_err(|source| BaseImageError::Io { path: path.into(), source })?;
    if !meta.is_file() {
        return Err(BaseImageError::Invalid { path: path.into(), what: "not a regular file".into() });
    }
    Ok((file, meta.len()))
}

/// Fails the read once more than the limit of decompressed bytes went through.
struct Bounded<R> {
    inner: R,
    left: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("decompressed size over the limit")]
struct TooBig;

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| io::Error::other(TooBig))?;
        Ok(n)
    }
}

fn bomb_or(path: &Path, limit: u64, e: io::Error, other: impl Fn(io::Error) -> BaseImageError) -> BaseImageError {
    if e.get_ref().is_some_and(|i| i.is::<TooBig>()) { BaseImageError::Bomb { path: path.into(), limit } } else { other(e) }
}

/// `nti()`: octal text up to the first NUL, or GNU base-256.
fn nti(field: &[u8]) -> Result<i128, String> {
    if matches!(field.first(), Some(0o200) | Some(0o377)) {
        let mut n: i128 = 0;
        for &b in &field[1..] {
            n = n.checked_mul(256).ok_or("number overflows")? + i128::from(b);
        }
        if field[0] == 0o377 {
            n -= 256i128.pow(field.len() as u32 - 1);
        }
        return Ok(n);
    }
    let s = nts(field);
    let s = std::str::from_utf8(s).map_err(|_| "non-ASCII number field".to_string())?.trim_matches(|c| c == ' ');
    if s.is_empty() {
        return Ok(0);
    }
    // Octal digits only: `from_str_radix` would take a sign, Python an `_`.
    if !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!("bad number field {s:?}"));
    }
    i128::from_str_radix(s, 8).map_err(|_| format!("bad number field {s:?}"))
}

fn nts(field: &[u8]) -> &[u8] {
    field.iter().position(|&b| b == 0).map_or(field, |i| &field[..i])
}

fn blocks(size: u64) -> u64 {
    size.div_ceil(tar::BLOCK).saturating_mul(tar::BLOCK)
}

/// pax records `"%d key=value\n"`; later keys replace earlier values in place.
fn parse_pax(data: &[u8], into: &mut Vec<(String, Vec<u8>)>) -> Result<(), String> {
    let mut pos = 0;
    while pos < data.len() && data[pos] != 0 {
        let sp = data[pos..].iter().position(|&b| b == b' ').ok_or("pax record without length")? + pos;
        let len: usize = decimal(&data[pos..sp]).and_then(|n| usize::try_from(n).ok()).ok_or("bad pax record length")?;
        let end = pos.checked_add(len).filter(|&e| e <= data.len() && e > sp + 1).ok_or("pax record overruns its header")?;
        let rec = &data[sp + 1..end - 1];
        let eq = rec.iter().position(|&b| b == b'=').ok_or("pax record without '='")?;
        let key = String::from_utf8_lossy(&rec[..eq]).into_owned();
        let value = rec[eq + 1..].to_vec();
        match into.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => into.push((key, value)),
        }
        pos = end;
    }
    Ok(())
}

/// A POSIX decimal number: digits only (no sign, space, `_` or `0x`).
fn decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A pax time: `[-]digits[.digits]`, in seconds.
fn pax_time(text: &[u8]) -> Option<f64> {
    let t = text.strip_prefix(b"-").unwrap_or(text);
    let (int, frac) = match t.iter().position(|&b| b == b'.') {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// GNU tar's sparse files in pax form (0.0, 0.1, 1.0) keep their map
/// in `GNU.sparse.*` records, which readers that do not know them
/// (docker among them) read as a different file.
fn sparse_format(pax: &[(String, Vec<u8>)]) -> Option<String> {
    if !pax.iter().any(|(k, _)| k.starts_with("GNU.sparse.")) {
        return None;
    }
    let get = |key: &str| pax.iter().find(|(k, _)| k == key).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    Some(match (get("GNU.sparse.major"), get("GNU.sparse.minor")) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ if get("GNU.sparse.map").is_some() => "0.1".into(),
        _ => "0.0".into(),
    })
}

/// `_apply_pax_info`: extended records override the ustar fields. Numbers
/// are read strictly: a value another reader would take differently is
/// an error, never passed on.
fn apply_pax(m: &mut Member, pax: &[(String, Vec<u8>)]) -> Result<(), String> {
    if let Some(format) = sparse_format(pax) {
        return Err(format!(
            "member {} is a GNU sparse file (pax format {format}), which docker would read differently; repack it without --sparse",
            String::from_utf8_lossy(&m.name)
        ));
    }
    for (k, v) in pax {
        match k.as_str() {
            "path" => {
                let mut name = v.clone();
                while name.ends_with(b"/") {
                    name.pop();
                }
                m.name = name;
            }
            "linkpath" => m.linkname = v.clone(),
            "uname" => m.uname = v.clone(),
            "gname" => m.gname = v.clone(),
            "uid" | "gid" | "size" => {
                let n = decimal(v).ok_or_else(|| format!("pax record {k}={:?} is not a decimal number", String::from_utf8_lossy(v)))?;
                match k.as_str() {
                    "uid" => m.uid = n,
                    "gid" => m.gid = n,
                    _ => m.size = n,
                }
            }
            "mtime" => {
                // A float in Python; the ustar field gets round() of it.
                let f = pax_time(v).ok_or_else(|| format!("pax record mtime={:?} is not a decimal time", String::from_utf8_lossy(v)))?;
                m.mtime = f.round_ties_even() as i64;
            }
            _ => {}
        }
    }
    m.pax = pax.to_vec();
    Ok(())
}

struct Scanner<'a> {
    path: &'a Path,
    r: BufReader<&'a File>,
    offset: u64,
}

impl Scanner<'_> {
    fn read_exact_at_most(&mut self, buf: &mut [u8]) -> Result<usize, BaseImageError> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(BaseImageError::Io { path: self.path.into(), source });
                }
            }
        }
        Ok(got)
    }
    fn data(&mut self, size: u64, what: &str) -> Result<Vec<u8>, BaseImageError> {
        if size > MAX_METADATA {
            return Err(BaseImageError::Invalid { path: self.path.into(), what: format!("{what} of {size} bytes is implausibly large") });
        }
        let mut v = vec![0u8; blocks(size) as usize];
        if self.read_exact_at_most(&mut v)? != v.len() {
            return Err(BaseImageError::Truncated { path: self.path.into(), what: format!("{what} ends early") });
        }
        self.offset += v.len() as u64;
        v.truncate(size as usize);
        Ok(v)
    }
    fn skip(&mut self, n: u64) -> Result<(), BaseImageError> {
        self.r.seek_relative(n as i64).map_err(|source| BaseImageError::Io { path: self.path.into(), source })?;
        self.offset += n;
        Ok(())
    }
}

/// What the member headers kept in memory may add up to.
const HEADER_BUDGET: usize = 16 << 20;

/// Reads every member header (not the data) of a plain tar.
fn scan(path: &Path, file: &File) -> Result<Vec<Member>, BaseImageError> {
    let len = file.metadata().map_err(|source| BaseImageError::Io { path: path.into(), source })?.len();
    let mut s = Scanner { path, r: BufReader::with_capacity(64 * 1024, file), offset: 0 };
    let mut members = Vec::new();
    let mut retained = 0usize;
    let mut globals: Vec<(String, Vec<u8>)> = Vec::new();
    let mut pending_pax: Option<Vec<(String, Vec<u8>)>> = None;
    let (mut long_name, mut long_link): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    loop {
        let at = s.offset;
        let mut buf = [0u8; 512];
        let got = s.read_exact_at_most(&mut buf)?;
        if got == 0 {
            break; // No end-of-archive blocks: Python accepts that too.
        }
        if got < 512 {
            return Err(BaseImageError::Truncated { path: path.into(), what: format!("a header at byte {at} is cut short") });
        }
        s.offset += 512;
        if buf.iter().all(|&b| b == 0) {
            break;
        }
        let bad = |reason: String| {
            if at == 0 {
                BaseImageError::NotTar { path: path.into(), reason: format!("the first block is not a tar header ({reason})") }
            } else {
                BaseImageError::BadHeader { path: path.into(), offset: at, reason }
            }
        };
        let chk = nti(&buf[148..156]).map_err(bad)?;
        let unsigned: i128 = buf.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i128::from(b) }).sum();
        let signed: i128 = buf.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i128::from(b as i8) }).sum();
        if chk != unsigned && chk != signed {
            return Err(bad("checksum mismatch".into()));
        }
        let num = |r: std::ops::Range<usize>| nti(&buf[r]).map_err(bad);
        let typeflag = buf[156];
        let size = u64::try_from(num(124..136)?).map_err(|_| bad("negative size".into()))?;
        match typeflag {
            b'x' | b'g' => {
                let data = s.data(size, "a pax header")?;
                let target = if typeflag == b'g' { &mut globals } else { pending_pax.get_or_insert_with(|| globals.clone()) };
                parse_pax(&data, target).map_err(|e| bad(e.to_string()))?;
                continue;
            }
            b'L' | b'K' => {
                let data = s.data(size, "a GNU long name")?;
                let v = nts(&data).to_vec();
                if typeflag == b'L' {
                    long_name = Some(v)
                } else {
                    long_link = Some(v)
                }
                continue;
            }
            b'S' => {
                return Err(bad("GNU sparse members are not supported in a base image".into()));
            }
            _ => {}
        }
        let mut m = Member {
            name: nts(&buf[0..100]).to_vec(),
            mode: (num(100..108)? & 0o7777_7777) as u32,
            uid: num(108..116)?.max(0) as u64,
            gid: num(116..124)?.max(0) as u64,
            size,
            mtime: num(136..148)? as i64,
            typeflag,
            linkname: nts(&buf[157..257]).to_vec(),
            uname: nts(&buf[265..297]).to_vec(),
            gname: nts(&buf[297..329]).to_vec(),
            device: (num(329..337)?.max(0) as u64, num(337..345)?.max(0) as u64),
            pax: Vec::new(),
            data_offset: 0,
        };
        if m.typeflag == 0 && m.name.ends_with(b"/") {
            m.typeflag = tar::DIRTYPE;
        }
        if m.typeflag == tar::DIRTYPE {
            while m.name.ends_with(b"/") {
                m.name.pop();
            }
        }
        let prefix = nts(&buf[345..500]);
        if !prefix.is_empty() && !matches!(typeflag, b'D' | b'K' | b'L' | b'M' | b'N' | b'S' | b'V') {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&m.name);
            m.name = full;
        }
        if let Some(n) = long_name.take() {
            m.name = n;
            if m.typeflag == tar::DIRTYPE {
                while m.name.ends_with(b"/") {
                    m.name.pop();
                }
            }
        }
        if let Some(l) = long_link.take() {
            m.linkname = l;
        }
        let pax = pending_pax.take().unwrap_or_else(|| globals.clone());
        if !pax.is_empty() {
            apply_pax(&mut m, &pax).map_err(|e| BaseImageError::BadHeader { path: path.into(), offset: at, reason: e })?;
        }
        // Every member keeps its own copy of the global pax records and its
        // names: a small compressed archive of many members after one big
        // global header would otherwise take gigabytes.
        retained += 256 + m.name.len() + m.linkname.len() + m.uname.len() + m.gname.len();
        retained += m.pax.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if retained > HEADER_BUDGET {
            return Err(BaseImageError::Invalid {
                path: path.into(),
                what: format!("its member headers hold more than {} MiB (a header bomb?)", HEADER_BUDGET >> 20),
            });
        }
        m.data_offset = s.offset;
        // tarfile skips data only for regular files and unknown types.
        let supported = matches!(m.typeflag, b'0' | 0 | b'1' | b'2' | b'3' | b'4' | b'5' | b'6' | b'7');
        if m.is_regular() || !supported {
            // checked: a pax size of up to 2^64-1 must not wrap around.
            if m.data_offset.checked_add(m.size).is_none_or(|end| end > len) {
                return Err(BaseImageError::Truncated {
                    path: path.into(),
                    what: format!("member {} needs {} bytes, the file ends first", String::from_utf8_lossy(&m.name), m.size),
                });
            }
            let skip = blocks(m.size);
            s.skip(skip.min(len - m.data_offset))?;
        }
        members.push(m);
    }
    Ok(members)
}

fn read_member(path: &Path, file: &File, m: &Member, what: &str) -> Result<Vec<u8>, BaseImageError> {
    if m.size > JSON_MEMBER_LIMIT {
        return Err(BaseImageError::Invalid { path: path.into(), what: format!("{what} of {} bytes is implausibly large", m.size) });
    }
    let mut f = file;
    f.seek(SeekFrom::Start(m.data_offset)).map_err(|source| BaseImageError::Io { path: path.into(), source })?;
    let mut v = vec![0u8; m.size as usize];
    f.read_exact(&mut v).map_err(|_| BaseImageError::Truncated { path: path.into(), what: format!("{what} ends early") })?;
    Ok(v)
}

/// The manifest's names are copied into the output as member names; one
/// that is absolute or climbs with `..` would make `docker load` refuse the
/// image (or write outside its directory), so it is refused here, early.
fn plain_member_name(path: &Path, name: &str) -> Result<(), BaseImageError> {
    let parts: Vec<&str> = name.split('/').collect();
    if name.is_empty() || name.starts_with('/') || parts.contains(&"..") || name.contains('\0') {
        return Err(BaseImageError::Invalid {
            path: path.into(),
            what: format!("manifest.json names {name:?}, which is not a plain relative member name"),
        });
    }
    Ok(())
}

/// `a//b`, `./a/./b`, `x/../a/b` and `a/b/` all name `a/b` for docker,
/// which cleans every name as it unpacks; `None` for a name climbing out.
fn clean_name(name: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join(&b'/'))
}

/// Where a link layer leads, as a reader of the output resolves it: a
/// symlink from its own directory, a hard link from the archive root.
/// The target is taken lexically, so it may climb only before it names
/// anything (`../<id>/layer.tar`): in the output, no member but the
/// layers exists to climb through.
fn link_target(name: &str, member: &Member) -> Result<String, String> {
    let target = &member.linkname;
    let shown = String::from_utf8_lossy(target);
    let kind = if member.typeflag == tar::SYMTYPE { "symlink" } else { "hard link" };
    let mut parts: Vec<&[u8]> = Vec::new();
    if member.typeflag == tar::SYMTYPE {
        if target.starts_with(b"/") {
            return Err(format!("is a symlink to {shown:?}, an absolute path, outside the archive"));
        }
        parts = name.as_bytes().split(|&b| b == b'/').collect();
        parts.pop();
    }
    let mut named = false;
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if !named => {
                if parts.pop().is_none() {
                    return Err(format!("is a {kind} to {shown:?}, which points outside the archive"));
                }
            }
            b".." => return Err(format!("is a {kind} to {shown:?}, which climbs back with '..' after naming a member")),
            c => {
                named = true;
                parts.push(c);
            }
        }
    }
    if parts.is_empty() {
        return Err(format!("is a {kind} to {shown:?}, the archive's root directory"));
    }
    Ok(String::from_utf8_lossy(&parts.join(&b'/')).into_owned())
}

/// Names the image writes itself: a base layer stored under one of them
/// would be shadowed by (or shadow) the output's own member.
/// A member inside `manifest.json/` or a config's name would be unpacked
/// as a directory the output's own file replaces.
fn output_name(name: &str) -> bool {
    let hex = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let first = name.split('/').next().unwrap_or(name);
    first == "manifest.json" || first.strip_suffix(".json").is_some_and(hex)
}

/// The regular layer a link layer leads to in the output, followed as
/// docker does once the output is unpacked: symlink chains through other
/// layers, a hard link only to a regular layer written before it. The
/// target's content is checked against its own diff_id as it is copied,
/// so the two diff_ids must be the same.
fn resolve_layer_link(layers: &[BaseLayer], i: usize) -> Result<Option<usize>, String> {
    let mut cur = i;
    let mut hops = 0;
    while !layers[cur].member.is_regular() {
        let m = &layers[cur].member;
        if m.size != 0 {
            return Err(format!("is a link that claims {} bytes of data", m.size));
        }
        let target = link_target(&layers[cur].name, m)?;
        let found = layers.iter().position(|l| l.name == target).ok_or_else(|| {
            format!(
                "is a {} to {:?}, which is not a layer member of this image (a link may only lead to another layer)",
                if m.typeflag == tar::SYMTYPE { "symlink" } else { "hard link" },
                String::from_utf8_lossy(&m.linkname)
            )
        })?;
        if m.typeflag == tar::LNKTYPE && (found >= cur || !layers[found].member.is_regular()) {
            return Err(format!("is a hard link to {target}, which is not a regular layer written before it (docker unpacks hard links in order)"));
        }
        hops += 1;
        if found == cur || hops > 40 {
            return Err(format!("is a link that loops (to {target})"));
        }
        cur = found;
    }
    if cur == i {
        return Ok(None);
    }
    if layers[cur].diff_id != layers[i].diff_id {
        return Err(format!(
            "is a link to {}, whose content is {}, but its own diff_id is {}",
            layers[cur].name, layers[cur].diff_id, layers[i].diff_id
        ));
    }
    Ok(Some(cur))
}

/// Largest manifest.json or image config read. Real ones are kilobytes,
/// but the config of an image of 32,000 layers (which `stream` makes) is
/// 6.7 MB; the element cap ([`json_too_big`]) bounds the memory.
pub const JSON_MEMBER_LIMIT: u64 = 16 << 20;

/// A parsed JSON value takes up to ~100 bytes per element: 60 MiB of
/// `[0,0,...` (60 KiB gzip'd) would take gigabytes. Elements are bounded
/// by counting the separators outside strings first.
pub fn json_too_big(bytes: &[u8]) -> Option<String> {
    const MAX_ELEMENTS: usize = 1 << 18;
    // Separators outside strings (a history comment is full of commas).
    let (mut n, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b'[' | b'{' | b':' => n += 1,
                _ => {}
            }
        }
    }
    (n > MAX_ELEMENTS).then(|| format!("has over {n} JSON elements, implausibly many (a JSON bomb?)"))
}

fn parse_json(path: &Path, member: &str, bytes: &[u8]) -> Result<Value, BaseImageError> {
    if let Some(why) = json_too_big(bytes) {
        return Err(BaseImageError::Invalid { path: path.into(), what: format!("{member} {why}") });
    }
    serde_json::from_slice(bytes).map_err(|source| BaseImageError::Json { path: path.into(), member: member.into(), source })
}

impl BaseImage {
    pub fn open(path: &Path) -> Result<BaseImage, BaseImageError> {
        let io_err = |source| BaseImageError::Io { path: path.into(), source };
        let (mut file, compressed_len) = open_regular(path)?;
        let mut head = [0u8; 8];
        let n = file.read(&mut head).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut spool = None;
        let source = file.try_clone().map_err(io_err)?;
        if let Some(mut dec) = decode::decompressor(&head[..n], BufReader::new(source)).map_err(io_err)? {
            let mut tmp = tempfile::NamedTempFile::new().map_err(io_err)?;
            let limit = bomb_limit(compressed_len);
            let copied = io::copy(&mut (&mut dec).take(limit + 1), tmp.as_file_mut())
                .map_err(|e| BaseImageError::NotTar { path: path.into(), reason: format!("decompression failed: {e}") })?;
            if copied > limit {
                return Err(BaseImageError::Bomb { path: path.into(), limit });
            }
            drop(dec);
            file = tmp.reopen().map_err(io_err)?;
            spool = Some(tmp);
        }
        let members = scan(path, &file)?;
        if members.is_empty() {
            return Err(BaseImageError::NotTar { path: path.into(), reason: "it holds no members".into() });
        }
        // docker load cleans every member name and the last member of a
        // name wins; tarfile's getmember() matches the name as written.
        // They agree unless one name is spelled two ways (`a`, `./a`):
        // such a name is refused when used, so nothing shadows anything.
        let mut index: HashMap<Vec<u8>, (&Member, Option<&[u8]>)> = HashMap::new();
        for m in &members {
            let Some(key) = clean_name(&m.name) else { continue };
            let other = index.get(&key).and_then(|(prev, other)| if prev.name != m.name { Some(&prev.name[..]) } else { *other });
            index.insert(key, (m, other));
        }
        let get = |name: &str, why: &'static str| {
            plain_member_name(path, name)?;
            let key = clean_name(name.as_bytes()).unwrap_or_default();
            match index.get(&key) {
                None => Err(BaseImageError::MissingMember { path: path.into(), member: name.into(), why }),
                Some((m, Some(other))) => Err(BaseImageError::Invalid {
                    path: path.into(),
                    what: format!(
                        "members {:?} and {:?} both name {name}{why}; readers disagree on which one counts",
                        String::from_utf8_lossy(other),
                        String::from_utf8_lossy(&m.name)
                    ),
                }),
                Some((m, None)) => Ok((*m, String::from_utf8_lossy(&key).into_owned())),
            }
        };
        let (manifest_member, _) = get("manifest.json", "")?;
        let manifest = parse_json(path, "manifest.json", &read_member(path, &file, manifest_member, "manifest.json")?)?;
        let invalid = |what: String| BaseImageError::Invalid { path: path.into(), what };
        let entry = manifest.get(0).ok_or_else(|| invalid("manifest.json is not a non-empty list".into()))?;
        let config_name =
            entry.get("Config").and_then(Value::as_str).ok_or_else(|| invalid("manifest.json[0].Config is missing or not a string".into()))?;
        let layer_names =
            entry.get("Layers").and_then(Value::as_array).ok_or_else(|| invalid("manifest.json[0].Layers is missing or not a list".into()))?;
        let (config_member, _) = get(config_name, " (named by manifest.json's Config)")?;
        let config_bytes = read_member(path, &file, config_member, config_name)?;
        let image = parse_json(path, config_name, &config_bytes)?;
        let diff_ids = image
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid(format!("{config_name}: rootfs.diff_ids is missing or not a list")))?;
        if diff_ids.len() != layer_names.len() {
            return Err(invalid(format!("manifest.json lists {} layers but {config_name} has {} diff_ids", layer_names.len(), diff_ids.len())));
        }
        let config = match image.get("config") {
            Some(Value::Object(m)) => m.clone(),
            Some(Value::Null) | None => serde_json::Map::new(),
            Some(_) => return Err(invalid(format!("{config_name}: config is not an object"))),
        };
        let mut layers: Vec<BaseLayer> = Vec::with_capacity(layer_names.len());
        for (i, (name, diff_id)) in layer_names.iter().zip(diff_ids).enumerate() {
            let name = name.as_str().ok_or_else(|| invalid(format!("manifest.json[0].Layers[{i}] is not a string")))?;
            let diff_id = diff_id
                .as_str()
                .and_then(|d| d.parse::<Digest>().ok())
                .ok_or_else(|| invalid(format!("{config_name}: rootfs.diff_ids[{i}] is not \"sha256:<64 hex digits>\"")))?;
            let (member, clean) = get(name, " (listed in manifest.json's Layers)")?;
            if output_name(&clean) {
                return Err(invalid(format!("layer member {clean} has a name the output image uses for its own manifest or config")));
            }
            let mut member = member.clone();
            // Written under its clean name (the same for every archive
            // tarfile reads), so the output means one thing to all readers.
            member.name = clean.clone().into_bytes();
            if !member.is_regular() && !matches!(member.typeflag, tar::SYMTYPE | tar::LNKTYPE) {
                return Err(invalid(format!("layer member {clean} is neither a file nor a symlink nor a hard link")));
            }
            layers.push(BaseLayer { member, name: clean, diff_id, source: None });
        }
        for i in 0..layers.len() {
            let source = resolve_layer_link(&layers, i).map_err(|why| invalid(format!("layer member {} {why}", layers[i].name)))?;
            layers[i].source = source;
        }
        Ok(BaseImage { path: path.into(), file, _spool: spool, layers, config, config_bytes })
    }

    /// The regular layer whose content a reader gets for `layer`.
    pub fn source_of<'a>(&'a self, layer: &'a BaseLayer) -> &'a BaseLayer {
        layer.source.map_or(layer, |i| &self.layers[i])
    }

    /// Whether a store or customisation layer of this digest may be added
    /// after these base layers: it must not replace a base layer of the
    /// same name but other content.
    pub fn shadowed_by(&self, digest: &Digest) -> Option<&BaseLayer> {
        let hex = digest.hex();
        let name = format!("{hex}/layer.tar");
        // Also a file where that layer's directory goes, or a member
        // inside that directory: unpacking one replaces the other.
        self.layers
            .iter()
            .find(|l| (l.name == name && l.diff_id != *digest) || l.name == hex || (l.name.starts_with(&format!("{hex}/")) && l.name != name))
    }

    /// A base layer's error, naming the image and the member.
    pub fn layer_error(&self, layer: &BaseLayer, what: String) -> ImageError {
        ImageError::BaseLayer { image: self.path.clone(), name: layer.name.clone(), what }
    }

    /// Checks a base layer as docker loads it (see [`check_diff_id`]).
    pub fn check_layer(&self, layer: &BaseLayer, stored: &Digest, content: Option<io::Result<BlobDigest>>) -> Result<(), ImageError> {
        check_diff_id(&layer.diff_id, stored, content).map_err(|what| self.layer_error(layer, what))
    }

    /// A reader over a layer member's data that leaves the archive's
    /// shared file position alone, so that layers can be read in parallel.
    pub fn layer_reader_at(&self, layer: &BaseLayer) -> impl Read + '_ {
        crate::input::ReadAt::new(&self.file, layer.member.data_offset, layer.member.size)
    }

    /// A reader over a layer member's data.
    pub fn layer_reader(&self, layer: &BaseLayer) -> io::Result<impl Read + '_> {
        let mut f = &self.file;
        f.seek(SeekFrom::Start(layer.member.data_offset))?;
        Ok(f.take(layer.member.size))
    }
}

/// Checks a layer as docker loads it: what it decompresses to must hash to
/// its diff_id `want`. `stored` is the digest of its bytes as stored;
/// `content` that of what they decompress to, if compressed.
pub fn check_diff_id(want: &Digest, stored: &Digest, content: Option<io::Result<BlobDigest>>) -> Result<(), String> {
    match content {
        None if stored == want => Ok(()),
        None => Err(format!("its content hashes to {stored}, but the image config's diff_id is {want}")),
        Some(Ok(c)) if c.digest == *want => Ok(()),
        // A compressed layer's diff_id must be the digest of its content,
        // never of its stored bytes.
        _ if stored == want => Err(format!(
            "it is compressed, and its diff_id {stored} is the digest of its compressed bytes; docker checks the digest of \
             what it decompresses to"
        )),
        Some(Ok(c)) => Err(format!("it decompresses to content that hashes to {}, but the image config's diff_id is {want}", c.digest)),
        Some(Err(e)) => Err(format!("it looks compressed but cannot be decompressed ({e}); its diff_id cannot be checked")),
    }
}
