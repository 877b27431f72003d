//! gzip decoding that takes whole members at once where it can.
//!
//! Our own layers are series of small gzip members (see
//! [`crate::blob::compress`]); libdeflate inflates such a member in one call
//! about 1.8 times as fast as zlib-rs streams it, which is most of the CPU
//! of verifying an image or pushing an OCI layout (docs/oci.md "Speed").
//! Any other stream (one long member, as Go and pigz write, or anything
//! libdeflate refuses) goes on from the first member it could not take,
//! through flate2's multi-member decoder, so every byte, error and
//! trailing-garbage verdict is the one flate2 gives for the whole stream.

use libdeflate_sys::{libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor, libdeflate_gzip_decompress_ex};
use std::io::{self, Read, Write};
use std::ptr::NonNull;

/// Members whose compressed bytes are longer than this go the streaming way.
const MEMBER_IN: usize = 256 << 10;
/// Input held while looking for whole members.
const IN_BUF: usize = 4 * MEMBER_IN;
/// Members that inflate to more than this go the streaming way.
const MEMBER_OUT: usize = 1 << 20;

/// libdeflate's decompressor. The `libdeflater` crate wraps it but not
/// `libdeflate_gzip_decompress_ex`, the one call that says where a member
/// ends; this is that call and nothing more.
struct Inflater(NonNull<libdeflate_decompressor>);

// A decompressor is plain state with no thread affinity.
unsafe impl Send for Inflater {}

impl Inflater {
    fn new() -> Inflater {
        // SAFETY: allocation has no preconditions; null means out of memory.
        let p = unsafe { libdeflate_alloc_decompressor() };
        Inflater(NonNull::new(p).expect("libdeflate_alloc_decompressor: out of memory"))
    }

    /// Inflates the gzip member at the start of `input` into `out`: the
    /// bytes it took and made, or `None` if it is not a whole, valid member
    /// whose content fits `out`.
    fn member(&mut self, input: &[u8], out: &mut [u8]) -> Option<(usize, usize)> {
        let (mut taken, mut made) = (0usize, 0usize);
        // SAFETY: both buffers are valid for their lengths and libdeflate
        // neither keeps nor reads past them.
        let ret = unsafe {
            libdeflate_gzip_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut taken,
                &mut made,
            )
        };
        (ret == libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS && taken > 0 && taken <= input.len() && made <= out.len())
            .then_some((taken, made))
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

type Fallback<R> = flate2::read::MultiGzDecoder<io::Chain<io::Cursor<Vec<u8>>, R>>;

/// What a gzip stream read from `R` decompresses to, as
/// `flate2::read::MultiGzDecoder` yields it. Holds at most 1 MiB of input and
/// 1 MiB of output, whatever the stream (a bomb is read in pieces).
pub struct Reader<R: Read> {
    state: State<R>,
}

enum State<R: Read> {
    Members(Box<Members<R>>),
    Streaming(Box<Fallback<R>>),
    /// Only while switching.
    Gone,
}

struct Members<R> {
    inner: R,
    inflater: Inflater,
    input: Vec<u8>,
    start: usize,
    end: usize,
    at_eof: bool,
    out: Vec<u8>,
    out_start: usize,
    out_end: usize,
    members: u64,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            state: State::Members(Box::new(Members {
                inner,
                inflater: Inflater::new(),
                input: vec![0; IN_BUF],
                start: 0,
                end: 0,
                at_eof: false,
                out: vec![0; MEMBER_OUT],
                out_start: 0,
                out_end: 0,
                members: 0,
            })),
        }
    }

    /// From the first member libdeflate did not take, the streaming way.
    fn stream_on(&mut self) -> &mut Fallback<R> {
        if let State::Members(m) = std::mem::replace(&mut self.state, State::Gone) {
            let Members { inner, input, start, end, .. } = *m;
            self.state = State::Streaming(Box::new(flate2::read::MultiGzDecoder::new(io::Cursor::new(input[start..end].to_vec()).chain(inner))));
        }
        match &mut self.state {
            State::Streaming(s) => s,
            _ => unreachable!("switched above"),
        }
    }
}

impl<R: Read> Members<R> {
    /// Reads until a whole member of up to `MEMBER_IN` bytes is surely in
    /// the buffer, or the input ends.
    fn fill(&mut self) -> io::Result<()> {
        if self.end - self.start >= MEMBER_IN || self.at_eof {
            return Ok(());
        }
        self.input.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < IN_BUF {
            match self.inner.read(&mut self.input[self.end..]) {
                Ok(0) => {
                    self.at_eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Takes the next member; `false` if it must go the streaming way.
    fn next_member(&mut self) -> bool {
        match self.inflater.member(&self.input[self.start..self.end], &mut self.out) {
            Some((taken, made)) => {
                self.start += taken;
                (self.out_start, self.out_end) = (0, made);
                self.members += 1;
                true
            }
            None => false,
        }
    }
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let m = match &mut self.state {
                State::Members(m) => m,
                State::Streaming(s) => return s.read(buf),
                State::Gone => unreachable!("never left between calls"),
            };
            if m.out_start < m.out_end {
                let n = buf.len().min(m.out_end - m.out_start);
                buf[..n].copy_from_slice(&m.out[m.out_start..m.out_start + n]);
                m.out_start += n;
                return Ok(n);
            }
            m.fill()?;
            // A stream that ends at a member's end ends here; an empty one,
            // and anything libdeflate refuses, is flate2's to judge.
            if m.start == m.end && m.at_eof && m.members > 0 {
                return Ok(0);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            if !m.next_member() {
                return self.stream_on().read(buf);
            }
        }
    }
}

/// Compressed bytes in, what they decompress to written to `W`: the
/// [`Reader`]'s fast path for data that is pushed rather than pulled.
pub struct Writer<W: Write> {
    state: WState<W>,
}

enum WState<W: Write> {
    Members { out: W, inflater: Inflater, input: Vec<u8>, buf: Vec<u8>, members: u64 },
    Streaming(Box<flate2::write::MultiGzDecoder<W>>),
    Gone,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer { state: WState::Members { out, inflater: Inflater::new(), input: Vec::with_capacity(IN_BUF), buf: vec![0; MEMBER_OUT], members: 0 } }
    }

    /// Takes whole members while more than `keep` bytes are held (all of
    /// them at the end); the rest stays for the next write.
    fn drain(&mut self, keep: usize) -> io::Result<()> {
        let WState::Members { out, inflater, input, buf, members } = &mut self.state else { return Ok(()) };
        let mut start = 0;
        while input.len() - start > keep {
            match inflater.member(&input[start..], buf) {
                Some((taken, made)) => {
                    out.write_all(&buf[..made])?;
                    start += taken;
                    *members += 1;
                }
                None => return self.stream_on(start),
            }
        }
        input.drain(..start);
        Ok(())
    }

    fn stream_on(&mut self, from: usize) -> io::Result<()> {
        if let WState::Members { out, input, .. } = std::mem::replace(&mut self.state, WState::Gone) {
            let mut s = Box::new(flate2::write::MultiGzDecoder::new(out));
            s.write_all(&input[from..])?;
            self.state = WState::Streaming(s);
        }
        Ok(())
    }

    /// Ends the stream: the writer, or the error flate2 gives for the
    /// stream (truncated, corrupt, trailing garbage).
    pub fn finish(mut self) -> io::Result<W> {
        self.drain(0)?;
        match std::mem::replace(&mut self.state, WState::Gone) {
            WState::Members { out, members, .. } if members > 0 => Ok(out),
            // Nothing at all: flate2's verdict on an empty stream.
            WState::Members { out, .. } => flate2::write::MultiGzDecoder::new(out).finish(),
            WState::Streaming(s) => s.finish(),
            WState::Gone => unreachable!("never left between calls"),
        }
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.state {
            WState::Members { input, .. } => {
                // At most IN_BUF held: whole members are taken before more.
                let n = data.len().min(IN_BUF - input.len());
                input.extend_from_slice(&data[..n]);
                if input.len() >= IN_BUF {
                    self.drain(MEMBER_IN)?;
                }
                Ok(n)
            }
            WState::Streaming(s) => s.write(data),
            WState::Gone => unreachable!("never left between calls"),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip_members(parts: &[&[u8]]) -> Vec<u8> {
        let mut all = Vec::new();
        for p in parts {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(p).unwrap();
            all.extend(e.finish().unwrap());
        }
        all
    }

    fn flate2_read(data: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).map(|_| out).map_err(|e| e.to_string())
    }

    fn flate2_write(data: &[u8]) -> Result<Vec<u8>, String> {
        let mut w = flate2::write::MultiGzDecoder::new(Vec::new());
        for piece in data.chunks(77_777) {
            w.write_all(piece).map_err(|e| e.to_string())?;
        }
        w.finish().map_err(|e| e.to_string())
    }

    /// Reads in odd-sized pieces from a source that hands out odd-sized pieces.
    fn ours_read(data: &[u8]) -> Result<Vec<u8>, String> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.1 = (self.1 * 7 + 3) % 100_003 + 1;
                let n = buf.len().min(self.0.len()).min(self.1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = Reader::new(Trickle(data, 1));
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_521];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn ours_write(data: &[u8]) -> Result<Vec<u8>, String> {
        let mut w = Writer::new(Vec::new());
        for piece in data.chunks(77_777) {
            w.write_all(piece).map_err(|e| e.to_string())?;
        }
        w.finish().map_err(|e| e.to_string())
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if i % 3 == 0 { (x >> 33) as u8 } else { b'a' + (i % 7) as u8 }
            })
            .collect()
    }

    #[test]
    fn agrees_with_flate2_on_every_kind_of_stream() {
        let small: Vec<Vec<u8>> = (0..40).map(|i| noise(100_000 + i * 997, i as u64)).collect();
        let small_refs: Vec<&[u8]> = small.iter().map(|v| &v[..]).collect();
        let members = gzip_members(&small_refs);
        let zeros = vec![0u8; 3 << 20];
        let big_noise = noise(3 << 20, 9);
        let mut mixed = members.clone();
        mixed.extend(gzip_members(&[&zeros, &big_noise, b"tail"]));
        let mut garbage = members.clone();
        garbage.extend_from_slice(b"not gzip at all");
        let mut zero_pad = members.clone();
        zero_pad.extend_from_slice(&[0u8; 1024]);
        let mut bad_crc = members.clone();
        let second = gzip_members(&small_refs[..1]).len();
        bad_crc[second + 200] ^= 0x55;
        let truncated = &members[..members.len() - 3];
        let cut_mid = &members[..members.len() / 2];
        let (empty_member, long_member) = (gzip_members(&[b""]), gzip_members(&[&big_noise]));
        let cases: Vec<(&str, &[u8])> = vec![
            ("empty", b""),
            ("one byte", b"\x1f"),
            ("small members", &members),
            ("one empty member", &empty_member),
            ("members, then ones too large to take whole", &mixed),
            ("one long member", &long_member),
            ("trailing garbage", &garbage),
            ("trailing zeros", &zero_pad),
            ("a corrupt member", &bad_crc),
            ("truncated trailer", truncated),
            ("cut in the middle", cut_mid),
        ];
        for (what, data) in cases {
            assert_eq!(ours_read(data).map(Digest), flate2_read(data).map(Digest), "Reader: {what}");
            assert_eq!(ours_write(data).map(Digest), flate2_write(data).map(Digest), "Writer: {what}");
        }
    }

    /// Compares contents without printing megabytes.
    #[derive(PartialEq)]
    struct Digest(Vec<u8>);
    impl std::fmt::Debug for Digest {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} bytes, {}", self.0.len(), crate::digest::Digest::of(&self.0))
        }
    }

    #[test]
    fn small_members_are_taken_whole() {
        let parts: Vec<Vec<u8>> = (0..12).map(|i| noise(131_072, i)).collect();
        let refs: Vec<&[u8]> = parts.iter().map(|v| &v[..]).collect();
        let data = gzip_members(&refs);
        let mut r = Reader::new(&data[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, parts.concat());
        assert!(matches!(&r.state, State::Members(m) if m.members == 12));
        let mut w = Writer::new(Vec::new());
        w.write_all(&data).unwrap();
        assert!(matches!(&w.state, WState::Members { .. }));
        assert_eq!(w.finish().unwrap(), parts.concat());
    }
}
