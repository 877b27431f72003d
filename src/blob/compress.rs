//! Deterministic, parallel layer compression.
//!
//! A compressed layer's digest is only worth precomputing if the same
//! bytes come out on every machine and at every core count. gzip: the
//! input is cut into fixed-size blocks, each compressed by libdeflate into
//! a gzip member of its own, and the members are joined in order. The
//! output depends on the block size, the level and libdeflate's version
//! (all three in [`Compression::key`]), never on which thread did what.
//! zstd runs in its multi-threaded mode with at least one
//! worker, whose output does not depend on the worker count
//! (`tests/compress.rs` proves both against the real gzip and zstd tools).

use std::collections::VecDeque;
use std::io::{self, Write};

/// How layer blobs are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip { level: u32 },
    Zstd { level: i32 },
}

#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    #[error("unknown compression {0:?} (expected none, gzip or zstd)")]
    Unknown(String),
    #[error("compression level {level} is out of range for {algorithm} ({range})")]
    Level { algorithm: &'static str, level: i64, range: &'static str },
}

/// libdeflate's level 2 is the fastest whose layers are no larger than
/// skopeo's (klauspost's gzip at its default level) on the bulk fixture;
/// level 1 is 3% larger (docs/oci.md "Speed").
pub const GZIP_DEFAULT_LEVEL: u32 = 2;

/// The libdeflate whose bytes the cache keys name: another version may
/// match differently (the pinned digest in the tests catches it).
const LIBDEFLATE: &str = "ld1.26";
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

impl Compression {
    /// `none`, `gzip` or `zstd`, at `level` or the algorithm's default.
    pub fn parse(name: &str, level: Option<i64>) -> Result<Compression, CompressionError> {
        let bad = |algorithm, range| CompressionError::Level { algorithm, level: level.unwrap_or_default(), range };
        match name {
            "none" | "uncompressed" => match level {
                None => Ok(Compression::None),
                Some(_) => Err(bad("none", "none takes no level")),
            },
            "gzip" => match level {
                None => Ok(Compression::Gzip { level: GZIP_DEFAULT_LEVEL }),
                Some(l @ 1..=9) => Ok(Compression::Gzip { level: l as u32 }),
                Some(_) => Err(bad("gzip", "1-9")),
            },
            "zstd" => match level {
                None => Ok(Compression::Zstd { level: ZSTD_DEFAULT_LEVEL }),
                Some(l @ 1..=19) => Ok(Compression::Zstd { level: l as i32 }),
                Some(_) => Err(bad("zstd", "1-19")),
            },
            other => Err(CompressionError::Unknown(other.into())),
        }
    }

    /// The OCI media type of a layer blob compressed this way.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip { .. } => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd { .. } => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// Names the bytes this setting produces: the key under which a
    /// precomputed compressed digest is recorded. The encoder's format
    /// version is part of it, so a digest made by an encoder that cuts
    /// blocks differently is never taken for this one's.
    pub fn key(self) -> String {
        match self {
            Compression::None => "none".into(),
            Compression::Gzip { level } => format!("gzip-{level}/m{}-{LIBDEFLATE}", GZIP_BLOCK >> 10),
            Compression::Zstd { level } => format!("zstd-{level}/mt"),
        }
    }

    pub fn is_none(self) -> bool {
        self == Compression::None
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Gzip { level } => write!(f, "gzip (level {level})"),
            Compression::Zstd { level } => write!(f, "zstd (level {level})"),
        }
    }
}

/// pigz's block size: large enough that starting each member afresh
/// costs little ratio, small enough to spread a modest layer over every
/// core.
pub const GZIP_BLOCK: usize = 128 << 10;

/// zstd's multi-threaded mode holds a few 8 MiB jobs of input and output
/// per layer (55-80 MiB at level 3, measured with `benches/memory.sh`) and
/// about 9 MiB more per worker: at most this many workers across all
/// layers at once, and at most [`ZSTD_LAYERS`] layers, keep a whole `copy`
/// near 200 MiB at any `-j` on any machine (four layers reached 274 MiB,
/// three 237 MiB, on the 2418 MiB fixture in 97 layers).
pub const ZSTD_WORKERS: usize = 4;

/// zstd layers compressed at once.
pub const ZSTD_LAYERS: usize = 2;

/// gzip layers compressed at once, sharing the pool's threads.
pub const GZIP_LAYERS: usize = 6;

/// How layers share the compression threads and memory: how many are
/// compressed at once, and each one's share. Neither changes any byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub layers_in_flight: usize,
    pub share: usize,
}

impl Budget {
    /// For `layers` layers on `jobs` threads.
    pub fn new(compression: Compression, jobs: usize, layers: usize) -> Budget {
        let jobs = jobs.max(1);
        let (threads, layers_in_flight) = match compression {
            Compression::Zstd { .. } => (jobs.min(ZSTD_WORKERS), jobs.min(ZSTD_LAYERS)),
            // Each layer in flight holds its pipe's chunks (~7 MiB) besides its
            // blocks: a few layers keep every thread busy.
            Compression::Gzip { .. } => (jobs, jobs.min(GZIP_LAYERS)),
            Compression::None => (jobs, jobs),
        };
        let layers_in_flight = layers_in_flight.min(layers).max(1);
        Budget { layers_in_flight, share: (threads / layers_in_flight).max(1) }
    }
}

/// A compressing writer over `inner`; [`Encoder::finish`] ends the stream
/// and hands `inner` back.
pub enum Encoder<'p, W: Write> {
    None(W),
    Gzip(GzipEncoder<'p, W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<'p, W: Write> Encoder<'p, W> {
    /// `pool` runs the gzip blocks; `share` is this encoder's part of the
    /// memory budget (see [`Budget`]): gzip blocks in flight, zstd workers
    /// (at least one: zstd's single-threaded mode writes other bytes than
    /// its multi-threaded one, whose bytes do not depend on the count).
    pub fn new(compression: Compression, inner: W, pool: &'p rayon::ThreadPool, share: usize) -> io::Result<Encoder<'p, W>> {
        let share = share.max(1);
        Ok(match compression {
            Compression::None => Encoder::None(inner),
            Compression::Gzip { level } => Encoder::Gzip(GzipEncoder::new(inner, level, pool, share)),
            Compression::Zstd { level } => {
                let mut e = zstd::stream::write::Encoder::new(inner, level)?;
                e.multithread(share.min(ZSTD_WORKERS) as u32)?;
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(g) => g.finish(),
            Encoder::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(data),
            Encoder::Gzip(g) => g.write(data),
            Encoder::Zstd(z) => z.write(data),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        // A flush would end a zstd job or a deflate block early and so
        // change the bytes: only `finish` ends anything.
        Ok(())
    }
}

type Pending = crossbeam_channel::Receiver<io::Result<Vec<u8>>>;

/// gzip as a series of members, one per block, deflated in parallel on a
/// rayon pool. libdeflate compresses a whole buffer at once, about twice
/// as fast as zlib at the same ratio, but cannot be primed with the
/// previous block's window nor end a block mid-stream, so each block is a
/// gzip member of its own (RFC 1952 allows any number; Go's, zlib's,
/// Python's and containerd's readers read them all). The members cost 18
/// bytes per 128 KiB and what priming would have saved; libdeflate's
/// better matching more than makes up for it (docs/oci.md "Speed").
pub struct GzipEncoder<'p, W: Write> {
    inner: W,
    pool: &'p rayon::ThreadPool,
    level: libdeflater::CompressionLvl,
    block: Vec<u8>,
    pending: VecDeque<Pending>,
    /// Bounds memory: at most this many blocks in flight.
    max_pending: usize,
    members: u64,
}

impl<'p, W: Write> GzipEncoder<'p, W> {
    /// `share`: the pool threads this encoder may keep busy.
    pub fn new(inner: W, level: u32, pool: &'p rayon::ThreadPool, share: usize) -> Self {
        GzipEncoder {
            inner,
            pool,
            // Compression::parse admits 1-9, all within libdeflate's 0-12.
            level: libdeflater::CompressionLvl::new(level as i32).unwrap_or_default(),
            block: Vec::with_capacity(GZIP_BLOCK),
            pending: VecDeque::new(),
            max_pending: share * 2 + 2,
            members: 0,
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        let input = std::mem::replace(&mut self.block, Vec::with_capacity(GZIP_BLOCK));
        let (tx, rx) = crossbeam_channel::bounded(1);
        let level = self.level;
        self.pool.spawn(move || {
            let _ = tx.send(gzip_member(level, &input));
        });
        self.members += 1;
        self.pending.push_back(rx);
        while self.pending.len() >= self.max_pending {
            self.drain_one()?;
        }
        Ok(())
    }

    fn drain_one(&mut self) -> io::Result<()> {
        let Some(rx) = self.pending.pop_front() else {
            return Ok(());
        };
        let member = rx.recv().map_err(|_| io::Error::other("a compression worker vanished"))??;
        self.inner.write_all(&member)
    }

    pub fn finish(mut self) -> io::Result<W> {
        // An empty layer is still a gzip stream: one empty member.
        if !self.block.is_empty() || self.members == 0 {
            self.submit()?;
        }
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        Ok(self.inner)
    }
}

impl<W: Write> Write for GzipEncoder<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(GZIP_BLOCK - self.block.len());
        self.block.extend_from_slice(&data[..n]);
        if self.block.len() == GZIP_BLOCK {
            self.submit()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// A compressor per thread and level: libdeflate keeps no state from
    /// one call to the next, so reusing one changes no byte, only spares
    /// its allocation per block.
    static COMPRESSORS: std::cell::RefCell<Vec<(i32, libdeflater::Compressor)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One gzip member holding `input`. libdeflate's header carries no name,
/// no time and the "unknown" OS, so nothing of the machine gets in.
fn gzip_member(level: libdeflater::CompressionLvl, input: &[u8]) -> io::Result<Vec<u8>> {
    COMPRESSORS.with(|cell| {
        let mut compressors = cell.borrow_mut();
        let key: i32 = level.into();
        let at = match compressors.iter().position(|(l, _)| *l == key) {
            Some(at) => at,
            None => {
                compressors.push((key, libdeflater::Compressor::new(level)));
                compressors.len() - 1
            }
        };
        let compressor = &mut compressors[at].1;
        let mut out = vec![0; compressor.gzip_compress_bound(input.len())];
        let n = compressor.gzip_compress(input, &mut out).map_err(|e| io::Error::other(format!("gzip: {e}")))?;
        out.truncate(n);
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap()
    }

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivially: a text-like pattern with noise.
        let mut x: u32 = 12345;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 7 == 0 { (x >> 24) as u8 } else { b"the quick brown fox "[i % 20] }
            })
            .collect()
    }

    fn encode(c: Compression, data: &[u8], threads: usize, piece: usize) -> Vec<u8> {
        let p = pool(threads);
        let mut e = Encoder::new(c, Vec::new(), &p, p.current_num_threads()).unwrap();
        for chunk in data.chunks(piece.max(1)) {
            e.write_all(chunk).unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn gzip_round_trips_and_ignores_thread_count_and_write_sizes() {
        for len in [0, 1, GZIP_BLOCK - 1, GZIP_BLOCK, GZIP_BLOCK + 1, 5 * GZIP_BLOCK + 777] {
            let data = sample(len);
            let c = Compression::Gzip { level: 6 };
            let one = encode(c, &data, 1, 4096);
            assert_eq!(one, encode(c, &data, 3, 100_000), "len {len}");
            assert_eq!(one, encode(c, &data, 2, 1), "len {len}");
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "len {len}");
        }
    }

    #[test]
    fn gzip_blocks_do_not_depend_on_what_a_thread_did_before() {
        let (a, b) = (sample(3 * GZIP_BLOCK + 5), sample(2 * GZIP_BLOCK + 9).into_iter().rev().collect::<Vec<_>>());
        let c = Compression::Gzip { level: 6 };
        let alone = encode(c, &a, 2, 65536);
        let p = pool(2);
        let after_other = std::thread::scope(|s| {
            let other = s.spawn(|| {
                let mut e = Encoder::new(c, Vec::new(), &p, p.current_num_threads()).unwrap();
                e.write_all(&b).unwrap();
                e.finish().unwrap()
            });
            let mut e = Encoder::new(c, Vec::new(), &p, p.current_num_threads()).unwrap();
            e.write_all(&a).unwrap();
            let out = e.finish().unwrap();
            other.join().unwrap();
            out
        });
        assert_eq!(alone, after_other);
    }

    #[test]
    fn zstd_round_trips_and_ignores_thread_count() {
        let data = sample(9 << 20);
        let c = Compression::Zstd { level: 3 };
        let one = encode(c, &data, 1, 512 << 10);
        assert_eq!(one, encode(c, &data, 4, 100_000));
        assert_eq!(zstd::decode_all(&one[..]).unwrap(), data);
    }

    #[test]
    fn gzip_bytes_are_pinned_to_the_cache_key() {
        // A libdeflate that matches differently makes other bytes under the
        // same key: this digest changes first, and LIBDEFLATE with it.
        let c = Compression::Gzip { level: GZIP_DEFAULT_LEVEL };
        let out = encode(c, &sample(3 * GZIP_BLOCK + 123), 2, 10_000);
        assert_eq!(c.key(), "gzip-2/m128-ld1.26");
        assert_eq!(crate::digest::Digest::of(&out).to_string(), "sha256:3ea24609c1148d6768d0c1655e92881e183be7808b11ca1e46f1dc77d58ec945");
        // Four members, each a complete gzip stream.
        assert!(out.windows(3).filter(|w| *w == [0x1f, 0x8b, 8]).count() >= 4);
        let empty = encode(c, &[], 1, 1);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&empty[..]).read_to_end(&mut back).unwrap();
        assert!(back.is_empty() && empty.len() < 32, "an empty layer is one empty member");
    }

    #[test]
    fn levels_are_checked() {
        assert!(Compression::parse("gzip", Some(0)).is_err());
        assert!(Compression::parse("zstd", Some(20)).is_err());
        assert!(Compression::parse("lz4", None).is_err());
        assert_eq!(Compression::parse("gzip", None).unwrap(), Compression::Gzip { level: 2 });
    }

    #[test]
    fn the_budget_bounds_zstd_workers_and_gzip_blocks_whatever_the_jobs() {
        for jobs in [1, 2, 3, 16, 64, 256] {
            for layers in [1, 2, 5, 97] {
                let z = Budget::new(Compression::Zstd { level: 3 }, jobs, layers);
                assert!(z.layers_in_flight * z.share.min(ZSTD_WORKERS) <= ZSTD_WORKERS.max(z.layers_in_flight), "{jobs} {layers} {z:?}");
                assert!(z.layers_in_flight <= ZSTD_LAYERS);
                let g = Budget::new(Compression::Gzip { level: 6 }, jobs, layers);
                // Blocks in flight over all layers grow with the threads, not with their square.
                assert!(g.layers_in_flight * (2 * g.share + 2) <= 4 * jobs.max(1), "{jobs} {layers} {g:?}");
            }
        }
        assert_eq!(Budget::new(Compression::Zstd { level: 3 }, 16, 1).share, ZSTD_WORKERS);
    }
}
