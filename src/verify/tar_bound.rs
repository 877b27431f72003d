//! How much a compressed layer (or a compressed archive) may decompress
//! to. A fixed ratio cannot tell a bomb from a valid, highly compressible
//! layer: 256 MiB of zeros is 8 KiB of zstd, 32768x. What bounds the work
//! instead:
//!
//! - the tar itself: the decompressed bytes are followed as a tar stream
//!   (headers, and the data sizes they declare), so a layer produces what
//!   its headers say it holds and no more. Past the end-of-archive marker
//!   only padding is expected: a few KiB (tar writers pad to a record of at
//!   most 1 MiB), never gigabytes of zeros.
//! - a ceiling per compressed byte: 32768, zstd's own (a 4-byte RLE block
//!   is the most one block can expand from), above deflate's ~1032 and
//!   xz's ~7000, so no valid gzip, zstd or xz stream reaches it; only bzip2
//!   (over a million for zeros) can, and is refused beyond it. Time spent
//!   hashing therefore stays proportional to the bytes on disk.
//! - content that is not a tar is held to the old rule: 1100x + 64 MiB.
//!
//! Memory is not at stake: every byte is streamed through a hasher.

/// Bytes allowed past the end-of-archive marker (two zero blocks and the
/// padding of a 1 MiB record, `tar -b 2048`).
const TRAILER_LIMIT: u64 = 1 << 20;
use crate::tar::reader;

/// The most a byte of any accepted compression may expand to.
const CEILING: u64 = 32768;
/// Every stream may produce this much beyond its ratio (small streams).
const SLACK: u64 = 64 << 20;
/// A pax header is read whole to find a `size` record; real ones are tiny.
const MAX_PAX: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Overrun {
    #[error("runs on for over {TRAILER_LIMIT} bytes past the end of its tar archive (at byte {end})")]
    PastEnd { end: u64 },
    #[error("decompresses to over {limit} bytes, over {CEILING} times its compressed size")]
    Ceiling { limit: u64 },
    #[error("is not a tar archive (byte {at} is no tar header) and decompresses to over {limit} bytes, over 1100 times its compressed size")]
    NotTar { at: u64, limit: u64 },
}

enum State {
    /// Filling the next 512-byte header.
    Header,
    /// Inside a member's data (and padding); `pax` collects an extended
    /// header's records.
    Data { left: u64, pax: Option<Vec<u8>> },
    /// After the end-of-archive marker, from byte `end`.
    End { end: u64 },
    /// Not a tar from byte `at` on.
    NotTar { at: u64 },
}

pub(crate) struct TarBound {
    state: State,
    header: [u8; 512],
    filled: usize,
    /// A pax `size` record for the next member.
    pax_size: Option<u64>,
    pos: u64,
    ceiling: u64,
    fallback: u64,
}

impl TarBound {
    pub(crate) fn new(compressed_len: u64) -> TarBound {
        TarBound {
            state: State::Header,
            header: [0; 512],
            filled: 0,
            pax_size: None,
            pos: 0,
            ceiling: compressed_len.saturating_mul(CEILING).saturating_add(SLACK),
            fallback: compressed_len.saturating_mul(1100).saturating_add(SLACK),
        }
    }

    /// Follows the next decompressed bytes.
    pub(crate) fn feed(&mut self, mut buf: &[u8]) -> Result<(), Overrun> {
        while !buf.is_empty() {
            let n = match &mut self.state {
                State::Header => {
                    let n = buf.len().min(512 - self.filled);
                    self.header[self.filled..self.filled + n].copy_from_slice(&buf[..n]);
                    self.filled += n;
                    if self.filled == 512 {
                        self.filled = 0;
                        self.state = self.next_state(self.pos + n as u64 - 512);
                    }
                    n
                }
                State::Data { left, pax } => {
                    let n = (*left).min(buf.len() as u64) as usize;
                    if let Some(p) = pax {
                        let want = (p.capacity() - p.len()).min(n);
                        p.extend_from_slice(&buf[..want]);
                    }
                    *left -= n as u64;
                    if *left == 0 {
                        if let Some(p) = pax.take() {
                            self.pax_size = pax_size(&p);
                        }
                        self.state = State::Header;
                    }
                    n
                }
                State::End { .. } | State::NotTar { .. } => buf.len(),
            };
            self.pos += n as u64;
            buf = &buf[n..];
        }
        match self.state {
            State::End { end } if self.pos - end > TRAILER_LIMIT => Err(Overrun::PastEnd { end }),
            State::NotTar { at } if self.pos > self.fallback => Err(Overrun::NotTar { at, limit: self.fallback }),
            _ if self.pos > self.ceiling => Err(Overrun::Ceiling { limit: self.ceiling }),
            _ => Ok(()),
        }
    }

    /// What follows the header just read, which began at `at`.
    fn next_state(&mut self, at: u64) -> State {
        let h = &self.header;
        if h.iter().all(|&b| b == 0) {
            return State::End { end: at };
        }
        let (Ok(true), Ok(size)) = (reader::checksum_matches(h), reader::size_field(h)) else {
            return State::NotTar { at };
        };
        let typeflag = h[156];
        let size = match typeflag {
            // Go's archive/tar and GNU tar read no data after these.
            b'1'..=b'6' => 0,
            b'x' | b'g' | b'L' | b'K' => size,
            _ => self.pax_size.take().unwrap_or(size),
        };
        if typeflag != b'x' {
            self.pax_size = None;
        }
        let pax = (typeflag == b'x').then(|| Vec::with_capacity(size.min(MAX_PAX) as usize));
        match size.div_ceil(512).checked_mul(512) {
            Some(0) => State::Header,
            Some(left) => State::Data { left, pax },
            None => State::NotTar { at },
        }
    }
}

/// The `size` record of a pax extended header, if whole and valid.
fn pax_size(data: &[u8]) -> Option<u64> {
    let mut records = Vec::new();
    reader::parse_pax(data, &mut records).ok()?;
    records.iter().rfind(|(k, _)| k == "size").and_then(|(_, v)| reader::decimal(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, u64)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, size) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(*size);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, std::io::repeat(0).take(*size)).unwrap();
        }
        b.into_inner().unwrap()
    }
    use std::io::Read;

    fn feed_all(t: &mut TarBound, bytes: &[u8], chunk: usize) -> Result<(), Overrun> {
        bytes.chunks(chunk).try_for_each(|c| t.feed(c))
    }

    #[test]
    fn a_tar_produces_what_its_headers_declare() {
        let bytes = tar_of(&[("a", 5000), ("b", 0), ("c", 70000)]);
        for chunk in [1, 511, 512, 4096, 1 << 20] {
            // 10 bytes compressed: far past any ratio, yet only what the
            // headers declare, so it passes.
            let mut t = TarBound { ceiling: u64::MAX, fallback: 10, ..TarBound::new(10) };
            feed_all(&mut t, &bytes, chunk).unwrap();
            assert!(matches!(t.state, State::End { .. }), "chunk {chunk}");
        }
    }

    #[test]
    fn zeros_past_the_end_are_refused_after_a_record() {
        let mut bytes = tar_of(&[("a", 100)]);
        let end = bytes.len() as u64 - 1024;
        bytes.resize(bytes.len() + (TRAILER_LIMIT as usize) - 2048, 0);
        let mut t = TarBound { ceiling: u64::MAX, ..TarBound::new(1) };
        feed_all(&mut t, &bytes, 65536).unwrap();
        assert_eq!(t.feed(&[0; 4096]), Err(Overrun::PastEnd { end }));
    }

    #[test]
    fn a_pax_size_is_followed() {
        // A pax header saying the next member holds 3000 bytes, whose
        // ustar size field says 0.
        let rec = b"13 size=3000\n";
        let mut h = tar::Header::new_ustar();
        h.set_path("pax").unwrap();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(rec.len() as u64);
        h.set_cksum();
        let mut raw = h.as_bytes().to_vec();
        raw.extend_from_slice(rec);
        raw.resize(1024, 0);
        let mut h = tar::Header::new_ustar();
        h.set_path("big").unwrap();
        h.set_size(0);
        h.set_cksum();
        raw.extend_from_slice(h.as_bytes());
        raw.extend(std::iter::repeat_n(7u8, 3072));
        raw.extend([0u8; 1024]);
        let mut t = TarBound::new(1);
        feed_all(&mut t, &raw, 100).unwrap();
        assert!(matches!(t.state, State::End { end } if end == raw.len() as u64 - 1024));
    }

    #[test]
    fn not_a_tar_falls_back_to_the_ratio() {
        let mut t = TarBound::new(1000);
        let junk = vec![1u8; 1 << 20];
        let mut r = Ok(());
        for _ in 0..70 {
            r = t.feed(&junk);
            if r.is_err() {
                break;
            }
        }
        assert_eq!(r, Err(Overrun::NotTar { at: 0, limit: 1000 * 1100 + SLACK }));
    }

    #[test]
    fn the_ceiling_holds_inside_a_member() {
        let mut t = TarBound::new(1);
        let bytes = tar_of(&[("a", 1 << 27)]);
        assert_eq!(feed_all(&mut t, &bytes, 1 << 20), Err(Overrun::Ceiling { limit: CEILING + SLACK }));
    }
}
