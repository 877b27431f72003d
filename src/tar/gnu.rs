//! Member headers exactly as GNU tar 1.34 writes them in its default
//! `gnu` format: `ustar  \0` magic, `././@LongLink` members for names
//! and link targets longer than 100 bytes, base-256 for numbers that do
//! not fit in octal, and 10240-byte records.

use std::io::{self, Write};

pub const BLOCK: usize = 512;
pub const RECORD: u64 = 10240;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
}

impl Kind {
    fn typeflag(self) -> u8 {
        match self {
            Kind::Regular => b'0',
            Kind::Symlink => b'2',
            Kind::CharDevice => b'3',
            Kind::BlockDevice => b'4',
            Kind::Directory => b'5',
            Kind::Fifo => b'6',
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    /// Full member name, e.g. `./bin/` (directories end in `/`).
    pub name: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub link: Vec<u8>,
    pub dev: (u64, u64),
}

/// GNU tar's `to_chars`: octal with a NUL if it fits, else base-256.
fn put_number(field: &mut [u8], value: i64) {
    let digits = field.len() - 1;
    if value >= 0 && (value as u128) < 1u128 << (3 * digits) {
        let text = format!("{:0width$o}", value, width = digits);
        field[..digits].copy_from_slice(text.as_bytes());
        field[digits] = 0;
    } else {
        let bytes = (value as i128).to_be_bytes();
        let n = field.len();
        field.copy_from_slice(&bytes[16 - n..]);
        field[0] = if value < 0 { 0xff } else { 0x80 };
    }
}

fn copy_truncated(field: &mut [u8], text: &[u8]) {
    let n = text.len().min(field.len());
    field[..n].copy_from_slice(&text[..n]);
}

fn header(name: &[u8], mode: u32, uid: u64, gid: u64, size: u64, mtime: i64, typeflag: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    copy_truncated(&mut h[0..100], name);
    put_number(&mut h[100..108], mode as i64);
    put_number(&mut h[108..116], uid as i64);
    put_number(&mut h[116..124], gid as i64);
    put_number(&mut h[124..136], size as i64);
    put_number(&mut h[136..148], mtime);
    h[156] = typeflag;
    h[257..265].copy_from_slice(b"ustar  \0");
    h
}

fn seal(h: &mut [u8; BLOCK]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let text = format!("{sum:06o}\0");
    h[148..155].copy_from_slice(text.as_bytes());
}

fn write_padded(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    out.write_all(data)?;
    let rem = data.len() % BLOCK;
    if rem != 0 {
        out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

fn long_link(out: &mut impl Write, typeflag: u8, text: &[u8]) -> io::Result<()> {
    let mut data = text.to_vec();
    data.push(0);
    // Without --numeric-owner GNU tar also writes "root" as owner names
    // here; nixpkgs always passes it, so they stay empty.
    let mut h = header(b"././@LongLink", 0o644, 0, 0, data.len() as u64, 0, typeflag);
    seal(&mut h);
    out.write_all(&h)?;
    write_padded(out, &data)
}

/// Writes the header block(s) of one member; the caller writes `size`
/// data bytes and then [`pad_data`].
pub fn write_header(out: &mut impl Write, m: &Member) -> io::Result<()> {
    if m.link.len() > 100 {
        long_link(out, b'K', &m.link)?;
    }
    if m.name.len() > 100 {
        long_link(out, b'L', &m.name)?;
    }
    let size = if m.kind == Kind::Regular { m.size } else { 0 };
    let mut h = header(&m.name, m.mode & 0o7777, m.uid, m.gid, size, m.mtime, m.kind.typeflag());
    copy_truncated(&mut h[157..257], &m.link);
    if matches!(m.kind, Kind::CharDevice | Kind::BlockDevice) {
        put_number(&mut h[329..337], m.dev.0 as i64);
        put_number(&mut h[337..345], m.dev.1 as i64);
    }
    seal(&mut h);
    out.write_all(&h)
}

/// Zero padding after `size` bytes of member data.
pub fn pad_data(out: &mut impl Write, size: u64) -> io::Result<()> {
    let rem = (size % BLOCK as u64) as usize;
    if rem != 0 {
        out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// End of archive: two zero blocks, then zeros up to a whole record.
pub fn finish(out: &mut impl Write, written: u64) -> io::Result<u64> {
    let with_end = written + 2 * BLOCK as u64;
    let total = with_end.div_ceil(RECORD) * RECORD;
    let zeros = vec![0u8; (total - written) as usize];
    out.write_all(&zeros)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_switch_to_base_256_when_octal_overflows() {
        let mut f = [0u8; 12];
        put_number(&mut f, 0o77777777777);
        assert_eq!(&f, b"77777777777\0");
        put_number(&mut f, 8 << 30);
        assert_eq!(f, [0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
        let mut f = [0u8; 8];
        put_number(&mut f, 2097152);
        assert_eq!(f, [0x80, 0, 0, 0, 0, 0x20, 0, 0]);
        put_number(&mut f, -1);
        assert_eq!(f, [0xff; 8]);
    }
}
