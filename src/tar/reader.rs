//! The one tar header reader: every archive this crate reads (a fromImage,
//! an image being verified, a docker-archive's manifest) goes through it,
//! so the hardening (checksums, strict numbers, bounded extension headers,
//! sizes that must fit the file) lives in one place.
//!
//! Two readers' policies are matched, as a [`Dialect`]: Python's
//! `tarfile`, which nixpkgs' stream script reads a fromImage with (global
//! pax records apply, every pax field overrides its ustar one, GNU sparse
//! files are refused), and Go's `archive/tar`, which `docker load` and
//! containerd unpack with (global records are skipped). Only headers are
//! read; member data is skipped, or read by the caller through
//! [`Reader::read_data`] before the next header.

use super::python::{BLOCK, DIRTYPE, Header, REGTYPE};
use std::borrow::Cow;
use std::io::{self, BufReader, Read};

/// Whose reading of an archive to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// CPython's `tarfile.open()`.
    Python,
    /// Go's `archive/tar` (docker, containerd).
    Go,
}

impl Dialect {
    /// A pax header or GNU long name is read whole; no real one is this big.
    fn max_extension(self) -> u64 {
        match self {
            Dialect::Python => 64 << 20,
            Dialect::Go => 1 << 20,
        }
    }
}

/// What the member headers a caller keeps may add up to; past it an
/// archive is taken for a header bomb.
pub const HEADER_BUDGET: usize = 16 << 20;

/// A member as its dialect reads it: extension headers applied, the name
/// with its ustar prefix, a directory's trailing `/` dropped; `header.pax`
/// holds the pax records that applied to it (Python: globals included).
#[derive(Debug, Clone)]
pub struct Entry {
    pub header: Header<'static>,
    /// Where its own header block starts (extension headers come before).
    pub header_offset: u64,
    pub data_offset: u64,
}

impl Entry {
    /// The header `tarfile.addfile` writes for this member in PAX format.
    pub fn python_header(&self) -> Header<'_> {
        let h = &self.header;
        let mut name = Cow::Borrowed(&h.name[..]);
        if h.typeflag == DIRTYPE && !name.ends_with(b"/") {
            name.to_mut().push(b'/');
        }
        Header {
            name,
            linkname: Cow::Borrowed(&h.linkname),
            uname: Cow::Borrowed(&h.uname),
            gname: Cow::Borrowed(&h.gname),
            pax: h.pax.clone(),
            ..*h
        }
    }

    pub fn name(&self) -> &[u8] {
        &self.header.name
    }

    pub fn size(&self) -> u64 {
        self.header.size
    }

    pub fn typeflag(&self) -> u8 {
        self.header.typeflag
    }

    pub fn is_regular(&self) -> bool {
        matches!(self.header.typeflag, REGTYPE | 0 | b'7')
    }

    /// Links, devices, directories and FIFOs carry no data, whatever their
    /// size field says; every other type's data is skipped by its size (both
    /// tarfile and archive/tar).
    pub fn has_data(&self) -> bool {
        !matches!(self.header.typeflag, b'1'..=b'6')
    }

    /// The bytes a caller keeping this entry holds, for [`HEADER_BUDGET`].
    pub fn retained(&self) -> usize {
        let h = &self.header;
        256 + h.name.len() + h.linkname.len() + h.uname.len() + h.gname.len() + h.pax.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("{0}")]
    Io(#[source] io::Error),
    /// The very first block is not a tar header.
    #[error("the first block is not a tar header ({0})")]
    NotTar(String),
    #[error("corrupt tar header at byte {offset}: {reason}")]
    BadHeader { offset: u64, reason: String },
    #[error("{what} (at byte {offset})")]
    Truncated { offset: u64, what: String },
    #[error("{what}")]
    TooLarge { offset: u64, what: String },
}

/// Where the archive comes from: a file whose members are later read by
/// offset (data skipped by seeking), or a stream read once.
pub trait Input: Read {
    fn skip(&mut self, n: u64) -> io::Result<()>;
    /// The archive's length, where known: a member must fit in it.
    fn total_len(&self) -> Option<u64>;
}

pub struct Seekable<'f> {
    r: BufReader<&'f std::fs::File>,
    len: u64,
}

impl<'f> Seekable<'f> {
    pub fn new(file: &'f std::fs::File) -> io::Result<Self> {
        Ok(Seekable { len: file.metadata()?.len(), r: BufReader::with_capacity(64 * 1024, file) })
    }
}

impl Read for Seekable<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.r.read(buf)
    }
}

impl Input for Seekable<'_> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let n = i64::try_from(n).map_err(io::Error::other)?;
        self.r.seek_relative(n)
    }
    fn total_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

pub struct Streamed<R>(pub R);

impl<R: Read> Read for Streamed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Input for Streamed<R> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.0).take(n), &mut io::sink())?;
        if copied < n {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive ends inside a member"));
        }
        Ok(())
    }
    fn total_len(&self) -> Option<u64> {
        None
    }
}

pub struct Reader<I> {
    input: I,
    dialect: Dialect,
    pos: u64,
    /// Where the next header starts, once the current member is passed.
    next: u64,
    /// Where the current member's data ends (its padding follows).
    data_end: u64,
    globals: Vec<(String, Vec<u8>)>,
    done: bool,
}

impl<I: Input> Reader<I> {
    pub fn new(input: I, dialect: Dialect) -> Self {
        Reader { input, dialect, pos: 0, next: 0, data_end: 0, globals: Vec::new(), done: false }
    }

    /// Reads up to `limit` bytes of the current member's data (which must
    /// be read before the next header); errors past `limit`.
    pub fn read_data(&mut self, entry: &Entry, limit: u64) -> Result<Vec<u8>, TarError> {
        if entry.size() > limit {
            return Err(TarError::TooLarge {
                offset: entry.header_offset,
                what: format!("{} of {} bytes is implausibly large", String::from_utf8_lossy(entry.name()), entry.size()),
            });
        }
        if self.pos != entry.data_offset {
            return Err(TarError::Io(io::Error::other("member data read out of order")));
        }
        let mut v = vec![0; entry.size() as usize];
        self.input.read_exact(&mut v).map_err(TarError::Io)?;
        self.pos += entry.size();
        Ok(v)
    }

    /// The current member's data as a stream (to be read before the next
    /// header; what is left unread is skipped).
    pub fn data(&mut self, entry: &Entry) -> Data<'_, I> {
        let left = if self.pos == entry.data_offset && entry.has_data() { entry.size() } else { 0 };
        Data { reader: self, left }
    }

    fn read_block(&mut self, buf: &mut [u8; 512]) -> Result<usize, TarError> {
        let got = crate::input::read_full(&mut self.input, buf).map_err(TarError::Io)?;
        self.pos += got as u64;
        Ok(got)
    }

    /// An extension header's data, read whole.
    fn extension(&mut self, at: u64, size: u64) -> Result<Vec<u8>, TarError> {
        if size > self.dialect.max_extension() {
            return Err(TarError::BadHeader { offset: at, reason: format!("an extended header of {size} bytes is implausibly large") });
        }
        let mut v = vec![0u8; size.div_ceil(BLOCK).saturating_mul(BLOCK) as usize];
        let got = crate::input::read_full(&mut self.input, &mut v).map_err(TarError::Io)?;
        self.pos += got as u64;
        if got != v.len() {
            return Err(TarError::Truncated { offset: at, what: "an extended header ends early".into() });
        }
        v.truncate(size as usize);
        Ok(v)
    }

    /// The next member, or `None` at the end of the archive (its zero
    /// block, or the end of the input: both readers accept a missing
    /// end-of-archive marker).
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        if self.done {
            return Ok(None);
        }
        if self.next > self.pos {
            let end = self.input.total_len().map_or(self.next, |len| self.next.min(len));
            let data = self.data_end.min(end).saturating_sub(self.pos);
            self.input.skip(data).map_err(TarError::Io)?;
            self.pos += data;
            // umoci 0.4.7 ends a layer right after its last member's data:
            // no padding, no end-of-archive blocks. Go's archive/tar (umoci,
            // podman, containerd) reads that as the end of the archive.
            let pad = end.saturating_sub(self.pos);
            let got = io::copy(&mut (&mut self.input).take(pad), &mut io::sink()).map_err(TarError::Io)?;
            self.pos += got;
            if got < pad {
                if self.dialect == Dialect::Go {
                    self.done = true;
                    return Ok(None);
                }
                return Err(TarError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive ends inside a member's padding")));
            }
        }
        let mut pending: Option<Vec<(String, Vec<u8>)>> = None;
        let (mut long_name, mut long_link): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
        loop {
            let at = self.pos;
            let mut buf = [0u8; 512];
            let got = self.read_block(&mut buf)?;
            if got == 0 {
                self.done = true;
                return Ok(None);
            }
            if got < 512 && at == 0 {
                return Err(TarError::NotTar(format!("the input is {got} bytes, less than one header")));
            }
            if got < 512 {
                return Err(TarError::Truncated { offset: at, what: "a header is cut short".into() });
            }
            if buf.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            let bad = |reason: String| if at == 0 { TarError::NotTar(reason) } else { TarError::BadHeader { offset: at, reason } };
            if !checksum_matches(&buf).map_err(bad)? {
                return Err(bad("header checksum mismatch".into()));
            }
            let num = |r: std::ops::Range<usize>| nti(&buf[r]).map_err(bad);
            let typeflag = buf[156];
            let size = size_field(&buf).map_err(bad)?;
            match typeflag {
                b'x' | b'g' => {
                    let data = self.extension(at, size)?;
                    if typeflag == b'g' && self.dialect == Dialect::Go {
                        continue;
                    }
                    let target = if typeflag == b'g' { &mut self.globals } else { pending.get_or_insert_with(|| self.globals.clone()) };
                    parse_pax(&data, target).map_err(|e| TarError::BadHeader { offset: at, reason: e })?;
                    continue;
                }
                b'L' | b'K' => {
                    let data = self.extension(at, size)?;
                    let v = nts(&data).to_vec();
                    if typeflag == b'L' {
                        long_name = Some(v)
                    } else {
                        long_link = Some(v)
                    }
                    continue;
                }
                b'S' if self.dialect == Dialect::Python => {
                    return Err(bad("GNU sparse members are not supported in a base image".into()));
                }
                _ => {}
            }
            let owned = |field: &[u8]| Cow::Owned(nts(field).to_vec());
            let mut h = Header {
                name: owned(&buf[0..100]),
                mode: (num(100..108)? & 0o7777_7777) as u32,
                uid: num(108..116)?.max(0) as u64,
                gid: num(116..124)?.max(0) as u64,
                size,
                mtime: num(136..148)? as i64,
                typeflag,
                linkname: owned(&buf[157..257]),
                uname: owned(&buf[265..297]),
                gname: owned(&buf[297..329]),
                device: Some((num(329..337)?.max(0) as u64, num(337..345)?.max(0) as u64)),
                pax: Vec::new(),
            };
            // Old V7 archives mark a directory by a trailing slash alone.
            if h.typeflag == 0 && h.name.ends_with(b"/") {
                h.typeflag = DIRTYPE;
            }
            if h.typeflag == DIRTYPE {
                trim_slashes(h.name.to_mut());
            }
            let prefix = nts(&buf[345..500]);
            // Go reads the prefix field only in ustar and pax headers (GNU
            // ones keep times there); Python whenever it is set.
            let ustar = &buf[257..263] == b"ustar\0";
            let prefixed = match self.dialect {
                Dialect::Python => !matches!(typeflag, b'D' | b'K' | b'L' | b'M' | b'N' | b'S' | b'V'),
                Dialect::Go => ustar,
            };
            if !prefix.is_empty() && prefixed {
                let mut full = prefix.to_vec();
                full.push(b'/');
                full.extend_from_slice(&h.name);
                h.name = Cow::Owned(full);
            }
            if let Some(n) = long_name.take() {
                h.name = Cow::Owned(n);
                if h.typeflag == DIRTYPE {
                    trim_slashes(h.name.to_mut());
                }
            }
            if let Some(l) = long_link.take() {
                h.linkname = Cow::Owned(l);
            }
            let pax = match self.dialect {
                Dialect::Python => pending.take().unwrap_or_else(|| self.globals.clone()),
                Dialect::Go => pending.take().unwrap_or_default(),
            };
            if !pax.is_empty() {
                apply_pax(&mut h, &pax, self.dialect).map_err(|reason| TarError::BadHeader { offset: at, reason })?;
            }
            let e = Entry { header: h, header_offset: at, data_offset: self.pos };
            self.next = self.pos;
            self.data_end = self.pos;
            if e.has_data() {
                // checked: a pax size of up to 2^64-1 must not wrap around.
                let fits = match (e.data_offset.checked_add(e.size()), self.input.total_len()) {
                    (None, _) => false,
                    (Some(end), Some(len)) => end <= len,
                    // A stream finds out when it reads.
                    (Some(_), None) => true,
                };
                if !fits {
                    return Err(TarError::Truncated {
                        offset: at,
                        what: format!("member {} needs {} bytes, the file ends first", String::from_utf8_lossy(e.name()), e.size()),
                    });
                }
                self.data_end = e.data_offset.saturating_add(e.size());
                self.next = e.data_offset + e.size().div_ceil(BLOCK).saturating_mul(BLOCK);
            }
            return Ok(Some(e));
        }
    }
}

/// Whether a header block's checksum field matches its bytes, summed as
/// unsigned or (as old tars did) signed bytes.
pub fn checksum_matches(block: &[u8; 512]) -> Result<bool, String> {
    let chk = nti(&block[148..156])?;
    let unsigned: i128 = block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i128::from(b) }).sum();
    let signed: i128 = block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i128::from(b as i8) }).sum();
    Ok(chk == unsigned || chk == signed)
}

/// A header block's size field.
pub fn size_field(block: &[u8; 512]) -> Result<u64, String> {
    u64::try_from(nti(&block[124..136])?).map_err(|_| "negative size".into())
}

/// A member's data, read in place: see [`Reader::data`].
pub struct Data<'r, I> {
    reader: &'r mut Reader<I>,
    left: u64,
}

impl<I: Input> Read for Data<'_, I> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.reader.input.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive ends inside a member"));
        }
        self.left -= n as u64;
        self.reader.pos += n as u64;
        Ok(n)
    }
}

fn trim_slashes(name: &mut Vec<u8>) {
    while name.ends_with(b"/") {
        name.pop();
    }
}

/// `nti()`: octal text up to the first NUL, or GNU base-256.
pub fn nti(field: &[u8]) -> Result<i128, String> {
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

/// pax records `"%d key=value\n"`; later keys replace earlier values in place.
pub fn parse_pax(data: &[u8], into: &mut Vec<(String, Vec<u8>)>) -> Result<(), String> {
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
pub fn decimal(text: &[u8]) -> Option<u64> {
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
fn apply_pax(e: &mut Header<'static>, pax: &[(String, Vec<u8>)], dialect: Dialect) -> Result<(), String> {
    if let Some(format) = sparse_format(pax).filter(|_| dialect == Dialect::Python) {
        return Err(format!(
            "member {} is a GNU sparse file (pax format {format}), which docker would read differently; repack it without --sparse",
            String::from_utf8_lossy(&e.name)
        ));
    }
    for (k, v) in pax {
        match k.as_str() {
            "path" => {
                e.name = Cow::Owned(v.clone());
                trim_slashes(e.name.to_mut());
            }
            "linkpath" => e.linkname = Cow::Owned(v.clone()),
            "uname" => e.uname = Cow::Owned(v.clone()),
            "gname" => e.gname = Cow::Owned(v.clone()),
            "uid" | "gid" | "size" => {
                let n = decimal(v).ok_or_else(|| format!("pax record {k}={:?} is not a decimal number", String::from_utf8_lossy(v)))?;
                match k.as_str() {
                    "uid" => e.uid = n,
                    "gid" => e.gid = n,
                    _ => e.size = n,
                }
            }
            "mtime" => {
                // A float in Python; the ustar field gets round() of it.
                let f = pax_time(v).ok_or_else(|| format!("pax record mtime={:?} is not a decimal time", String::from_utf8_lossy(v)))?;
                e.mtime = f.round_ties_even() as i64;
            }
            _ => {}
        }
    }
    e.pax = pax.to_vec();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, typeflag: u8, size: u64) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..107].copy_from_slice(b"0000644");
        b[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        b[156] = typeflag;
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        b[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        b
    }

    fn archive(members: &[([u8; 512], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (h, data) in members {
            out.extend_from_slice(h);
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0; 1024]);
        out
    }

    fn names(bytes: &[u8], dialect: Dialect) -> Vec<String> {
        let mut r = Reader::new(Streamed(bytes), dialect);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            out.push(String::from_utf8(e.name().to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn global_pax_records_apply_in_python_only() {
        let g = b"13 path=glob\n";
        let bytes = archive(&[(header("g", b'g', g.len() as u64), g), (header("a", b'0', 3), b"abc"), (header("d/", b'5', 0), b"")]);
        assert_eq!(names(&bytes, Dialect::Python), ["glob", "glob"]);
        assert_eq!(names(&bytes, Dialect::Go), ["a", "d"]);
    }

    #[test]
    fn data_is_read_in_place_and_skipped_otherwise() {
        let bytes = archive(&[(header("a", b'0', 3), b"abc"), (header("b", b'0', 600), &[7; 600]), (header("c", b'0', 2), b"hi")]);
        let mut r = Reader::new(Streamed(&bytes[..]), Dialect::Go);
        let a = r.next_entry().unwrap().unwrap();
        assert_eq!(r.read_data(&a, 10).unwrap(), b"abc");
        let b = r.next_entry().unwrap().unwrap();
        assert!(r.read_data(&b, 10).is_err(), "over the limit");
        let c = r.next_entry().unwrap().unwrap();
        assert_eq!((c.name(), c.data_offset), (&b"c"[..], 512 + 512 + 512 + 1024 + 512));
        assert_eq!(r.read_data(&c, 10).unwrap(), b"hi");
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn a_bad_checksum_or_number_is_named_with_its_offset() {
        let mut bad = header("b", b'0', 1);
        bad[148] = b'7';
        let bytes = archive(&[(header("a", b'0', 1), b"a"), (bad, b"b")]);
        let mut r = Reader::new(Streamed(&bytes[..]), Dialect::Python);
        r.next_entry().unwrap();
        assert!(matches!(r.next_entry(), Err(TarError::BadHeader { offset: 1024, .. })));
        let mut first = header("a", b'0', 1);
        first[124] = b'9';
        assert!(matches!(Reader::new(Streamed(&archive(&[(first, b"a")])[..]), Dialect::Go).next_entry(), Err(TarError::NotTar(_))));
    }

    #[test]
    fn go_reads_a_stream_cut_after_the_last_members_data_as_its_end() {
        let whole = archive(&[(header("a", b'0', 3), b"abc"), (header("b", b'0', 600), &[7; 600])]);
        let data_end = 512 + 512 + 512 + 600;
        for cut in [data_end, data_end + 1, data_end + 423] {
            let all = |bytes: &[u8], dialect| {
                let mut r = Reader::new(Streamed(bytes), dialect);
                let mut n = 0;
                while r.next_entry()?.is_some() {
                    n += 1;
                }
                Ok::<_, TarError>(n)
            };
            assert_eq!(all(&whole[..cut], Dialect::Go).unwrap(), 2, "cut at {cut}");
            assert!(all(&whole[..cut], Dialect::Python).is_err(), "cut at {cut}");
            // Data read in place, then the cut padding.
            let mut r = Reader::new(Streamed(&whole[..cut]), Dialect::Go);
            r.next_entry().unwrap();
            let b = r.next_entry().unwrap().unwrap();
            assert_eq!(r.read_data(&b, 1000).unwrap(), [7; 600]);
            assert!(r.next_entry().unwrap().is_none());
        }
        // Cut inside the data: truncated, in both.
        let mut r = Reader::new(Streamed(&whole[..data_end - 1]), Dialect::Go);
        r.next_entry().unwrap();
        r.next_entry().unwrap();
        assert!(r.next_entry().is_err());
    }
}
