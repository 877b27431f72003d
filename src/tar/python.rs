//! The tar encoder: headers exactly as CPython's `tarfile` (3.9 and later)
//! writes them in its default PAX format, which is what nixpkgs' stream
//! script produces for every layer and for the outer archive.
//!
//! Only headers and padding are produced here; member data is copied by the
//! caller, so nothing of a file is ever held in memory.

use std::borrow::Cow;

pub const BLOCK: u64 = 512;
/// tarfile pads the finished archive to a multiple of its record size.
pub const RECORD: u64 = 10 * 1024;

pub const REGTYPE: u8 = b'0';
pub const LNKTYPE: u8 = b'1';
pub const SYMTYPE: u8 = b'2';
pub const CHRTYPE: u8 = b'3';
pub const BLKTYPE: u8 = b'4';
pub const DIRTYPE: u8 = b'5';
pub const FIFOTYPE: u8 = b'6';
const XHDTYPE: u8 = b'x';
const POSIX_MAGIC: &[u8; 8] = b"ustar\x0000";

/// One member's metadata, as `TarInfo.get_info()` would hold it.
#[derive(Debug, Clone, Default)]
pub struct Header<'a> {
    /// Raw name bytes; a directory's trailing `/` must already be present.
    pub name: Cow<'a, [u8]>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub typeflag: u8,
    pub linkname: Cow<'a, [u8]>,
    pub uname: Cow<'a, [u8]>,
    pub gname: Cow<'a, [u8]>,
    /// (major, minor), written only for character and block devices.
    pub device: Option<(u64, u64)>,
    /// Extended records the member already carried (a base image's), which
    /// take priority over computed ones, in their original order.
    pub pax: Vec<(String, Vec<u8>)>,
}

/// Bytes of padding after `len` bytes of member data.
pub fn padding(len: u64) -> u64 {
    (BLOCK - len % BLOCK) % BLOCK
}

/// What `TarFile.close()` writes after the last member of an archive that
/// is `offset` bytes long so far: two zero blocks, then zeros up to a
/// record boundary.
pub fn end_of_archive_len(offset: u64) -> u64 {
    let end = offset + 2 * BLOCK;
    end + (RECORD - end % RECORD) % RECORD - offset
}

/// Python decodes names with `surrogateescape` and the ustar fields encode
/// them with `ascii`/`replace`: every non-ASCII code point, and every byte
/// that is not valid UTF-8, becomes one `?`.
fn ascii_replace(bytes: &[u8]) -> Cow<'_, [u8]> {
    if bytes.is_ascii() {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            out.push(if c.is_ascii() { c as u8 } else { b'?' });
        }
        out.extend(std::iter::repeat_n(b'?', chunk.invalid().len()));
    }
    Cow::Owned(out)
}

/// The character count Python's `len(str)` gives for surrogate-escaped bytes.
fn py_len(bytes: &[u8]) -> usize {
    bytes.utf8_chunks().map(|c| c.valid().chars().count() + c.invalid().len()).sum()
}

fn put_str(buf: &mut [u8], at: usize, len: usize, s: &[u8]) {
    let s = ascii_replace(s);
    let n = s.len().min(len);
    buf[at..at + n].copy_from_slice(&s[..n]);
}

/// `itn()`: zero-padded octal in `digits - 1` places, then NUL.
fn put_octal(buf: &mut [u8], at: usize, digits: usize, mut v: u64) {
    // Written by hand: a header per file makes `format!` show in profiles.
    for i in (at..at + digits - 1).rev() {
        buf[i] = b'0' + (v & 7) as u8;
        v >>= 3;
    }
    buf[at + digits - 1] = 0;
}

fn ustar_block(h: &Header<'_>, uid: u64, gid: u64, size: u64, mtime: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    put_str(&mut b, 0, 100, &h.name);
    put_octal(&mut b, 100, 8, u64::from(h.mode & 0o7777));
    put_octal(&mut b, 108, 8, uid);
    put_octal(&mut b, 116, 8, gid);
    put_octal(&mut b, 124, 12, size);
    put_octal(&mut b, 136, 12, mtime);
    b[148..156].copy_from_slice(b"        ");
    b[156] = h.typeflag;
    put_str(&mut b, 157, 100, &h.linkname);
    b[257..265].copy_from_slice(POSIX_MAGIC);
    put_str(&mut b, 265, 32, &h.uname);
    put_str(&mut b, 297, 32, &h.gname);
    if let (Some((major, minor)), CHRTYPE | BLKTYPE) = (h.device, h.typeflag) {
        put_octal(&mut b, 329, 8, major);
        put_octal(&mut b, 337, 8, minor);
    }
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    put_octal(&mut b, 148, 7, u64::from(sum));
    b
}

/// `"%d %s=%s\n"` where the length counts its own digits.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let l = key.len() + value.len() + 3;
    let mut p = 0usize;
    loop {
        let n = l + p.to_string().len();
        if n == p {
            break;
        }
        p = n;
    }
    out.extend_from_slice(p.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Appends the member's header blocks (a PAX extended header first when
/// the ustar fields cannot hold a value) to `out`.
pub fn encode_header(h: &Header<'_>, out: &mut Vec<u8>) {
    let mut pax: Vec<(String, Vec<u8>)> = h.pax.clone();
    let has = |pax: &Vec<(String, Vec<u8>)>, k: &str| pax.iter().any(|(key, _)| key == k);
    for (value, key, limit) in [(&h.name, "path", 100), (&h.linkname, "linkpath", 100), (&h.uname, "uname", 32), (&h.gname, "gname", 32)] {
        if has(&pax, key) {
            continue;
        }
        if !value.is_ascii() || py_len(value) > limit {
            pax.push((key.to_string(), value.to_vec()));
        }
    }
    let mut numeric = |key: &str, v: i128, digits: u32| -> u64 {
        if (0..8i128.pow(digits - 1)).contains(&v) {
            v as u64
        } else {
            if !has(&pax, key) {
                pax.push((key.to_string(), v.to_string().into_bytes()));
            }
            0
        }
    };
    let uid = numeric("uid", i128::from(h.uid), 8);
    let gid = numeric("gid", i128::from(h.gid), 8);
    let size = numeric("size", i128::from(h.size), 12);
    let mtime = numeric("mtime", i128::from(h.mtime), 12);
    if !pax.is_empty() {
        let mut records = Vec::new();
        if pax.iter().any(|(_, v)| std::str::from_utf8(v).is_err()) {
            records.extend_from_slice(b"21 hdrcharset=BINARY\n");
        }
        for (k, v) in &pax {
            pax_record(&mut records, k, v);
        }
        let xh = Header { name: Cow::Borrowed(b"././@PaxHeader"), typeflag: XHDTYPE, size: records.len() as u64, ..Header::default() };
        out.extend_from_slice(&ustar_block(&xh, 0, 0, records.len() as u64, 0));
        let pad = padding(records.len() as u64) as usize;
        out.extend_from_slice(&records);
        out.resize(out.len() + pad, 0);
    }
    out.extend_from_slice(&ustar_block(h, uid, gid, size, mtime));
}

/// Length of [`encode_header`]'s output, for sizing a layer before writing it.
pub fn header_len(h: &Header<'_>) -> u64 {
    let mut v = Vec::with_capacity(1024);
    encode_header(h, &mut v);
    v.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_padding() {
        assert_eq!(end_of_archive_len(0), 10240);
        assert_eq!(end_of_archive_len(512), 9728);
        assert_eq!(end_of_archive_len(9216), 1024);
        assert_eq!(end_of_archive_len(9728), 10752);
    }

    #[test]
    fn pax_length_fixed_point() {
        let mut v = Vec::new();
        pax_record(&mut v, "uid", b"3000000");
        assert_eq!(v, b"15 uid=3000000\n");
        v.clear();
        pax_record(&mut v, "hdrcharset", b"BINARY");
        assert_eq!(v, b"21 hdrcharset=BINARY\n");
    }
}
