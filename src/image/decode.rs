//! Layers and archives stored compressed: which compression their first
//! bytes announce (as `docker load` sniffs them), readers that undo it,
//! and the one decode-and-hash that yields a compressed layer's diff_id
//! while its stored bytes are copied somewhere else.

use crate::digest::{BlobDigest, Digest};
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    pub fn is_compressed(self) -> bool {
        self != Compression::None
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

/// The compression a stream's first bytes announce.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// A reader of what `r` decompresses to (`r` itself if uncompressed).
pub fn reader<'a, R: Read + 'a>(compression: Compression, r: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(super::gunzip::Reader::new(r)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
    })
}

/// [`reader`] if `head` announces a compression, else `None`.
pub fn decompressor<'a, R: Read + 'a>(head: &[u8], r: R) -> io::Result<Option<Box<dyn Read + 'a>>> {
    match sniff(head) {
        Compression::None => Ok(None),
        c => reader(c, r).map(Some),
    }
}

/// The head that [`sniff`] looks at: up to `buf.len()` bytes.
pub fn read_head(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    crate::input::read_full(r, buf)
}

/// Hashes and counts what it is given.
pub struct HashSink {
    hasher: Sha256,
    len: u64,
    /// Sees the bytes too, and may refuse them (a layer's tar check).
    check: Option<crate::blob::layer_check::Shared>,
}

impl HashSink {
    pub fn new() -> HashSink {
        HashSink { hasher: Sha256::new(), len: 0, check: None }
    }
    pub fn finish(self) -> BlobDigest {
        BlobDigest { digest: Digest::from_hasher(self.hasher), size: self.len }
    }
}

impl Default for HashSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for HashSink {
    fn write(&mut self, d: &[u8]) -> io::Result<usize> {
        if let Some(c) = &self.check {
            crate::stop::lock(c).feed(d).map_err(io::Error::other)?;
        }
        self.hasher.update(d);
        self.len += d.len() as u64;
        Ok(d.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compressed bytes in, the digest of what they decompress to out: fed
/// beside a copy of the stored bytes, so a compressed layer is read once.
pub enum ContentHasher {
    Gzip(Box<super::gunzip::Writer<HashSink>>),
    Zstd(zstd::stream::write::Decoder<'static, HashSink>),
    Xz(Box<xz2::write::XzDecoder<HashSink>>),
    Bzip2(Box<bzip2::write::BzDecoder<HashSink>>),
}

impl ContentHasher {
    /// `None` for uncompressed data, whose digest is its own.
    pub fn new(compression: Compression) -> io::Result<Option<ContentHasher>> {
        Self::checked(compression, None)
    }

    /// As [`Self::new`], the content also fed to `check`.
    pub fn checked(compression: Compression, check: Option<crate::blob::layer_check::Shared>) -> io::Result<Option<ContentHasher>> {
        let h = || HashSink { check: check.clone(), ..HashSink::new() };
        Ok(Some(match compression {
            Compression::None => return Ok(None),
            Compression::Gzip => ContentHasher::Gzip(Box::new(super::gunzip::Writer::new(h()))),
            Compression::Zstd => ContentHasher::Zstd(zstd::stream::write::Decoder::new(h())?),
            Compression::Xz => ContentHasher::Xz(Box::new(xz2::write::XzDecoder::new_multi_decoder(h()))),
            Compression::Bzip2 => ContentHasher::Bzip2(Box::new(bzip2::write::BzDecoder::new(h()))),
        }))
    }

    /// The decompressed content's digest and length; an error if the data
    /// was not a complete stream of its compression.
    pub fn finish(self) -> io::Result<BlobDigest> {
        let sink = match self {
            ContentHasher::Gzip(w) => w.finish()?,
            ContentHasher::Zstd(mut w) => {
                w.flush()?;
                w.into_inner()
            }
            ContentHasher::Xz(mut w) => w.finish()?,
            ContentHasher::Bzip2(mut w) => w.finish()?,
        };
        Ok(sink.finish())
    }
}

impl Write for ContentHasher {
    fn write(&mut self, d: &[u8]) -> io::Result<usize> {
        match self {
            ContentHasher::Gzip(w) => w.write(d),
            ContentHasher::Zstd(w) => w.write(d),
            ContentHasher::Xz(w) => w.write(d),
            ContentHasher::Bzip2(w) => w.write(d),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Copies every byte to `out` and, while they decode, to a
/// [`ContentHasher`]. A decoding failure is kept for the end: the bytes
/// are still copied, and the caller then refuses the layer.
pub struct Tee<W> {
    pub out: W,
    content: Option<ContentHasher>,
    broken: Option<io::Error>,
}

impl<W: Write> Tee<W> {
    pub fn new(out: W, content: Option<ContentHasher>) -> Tee<W> {
        Tee { out, content, broken: None }
    }

    /// The writer, and the content's digest if the bytes were compressed
    /// (`Some(Err)` if they did not decompress).
    pub fn finish(self) -> (W, Option<io::Result<BlobDigest>>) {
        let content = self.content.map(|c| match self.broken {
            Some(e) => Err(e),
            None => c.finish(),
        });
        (self.out, content)
    }
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.out.write_all(data)?;
        if let (Some(c), None) = (&mut self.content, &self.broken) {
            if let Err(e) = c.write_all(data) {
                self.broken = Some(e);
            }
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
