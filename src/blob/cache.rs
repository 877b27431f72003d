//! What layers compressed to, remembered across runs: skopeo's blob-info
//! cache, made exact by deterministic compression.
//!
//! A layer's compressed blob is a function of its tar and the encoder
//! format ([`Compression::key`]), so "the tar with diff_id D compresses to
//! blob B" stays true forever. With it, `copy` without precomputed digests
//! can still leave an unchanged layer alone: one read takes the diff_id,
//! the cache names the blob, and a destination that has the blob needs
//! nothing compressed or sent — where it would otherwise compress the whole
//! layer again to learn the blob's digest.
//!
//! One small file per layer, `<dir>/<key>@<version>/<diff_id hex>`, written
//! atomically; any process may read and add entries at once. Beside it, an
//! empty `names-<hex>` per store layer names the layer's member list: the
//! diff_id is only worth a read of the whole layer when a tar with the same
//! store paths was recorded, since equal tars have equal names. A first
//! copy of new layers then reads each layer once, not twice. The cache is
//! only ever advice: an entry that cannot be read or parsed is a miss, a
//! directory that cannot be written is silently not written (a Nix build
//! sandbox has no home), and a blob it names is used only if the
//! destination holds it.
//!
//! [`Compression::key`]: crate::blob::compress::Compression::key

use crate::digest::{BlobDigest, Digest};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the cache is, if anywhere.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
}

/// The largest entry read: two digests and two sizes fit in 200 bytes.
const ENTRY_LIMIT: u64 = 512;

impl BlobCache {
    pub fn at(dir: impl Into<PathBuf>) -> BlobCache {
        BlobCache { dir: dir.into() }
    }

    /// `$LAYERED_IMAGE_CACHE_DIR` (empty: no cache), else
    /// `$XDG_CACHE_HOME/layered-image`, else `~/.cache/layered-image`. None
    /// inside a Nix build: its home is a path that must never come to exist.
    pub fn from_env() -> Option<BlobCache> {
        if let Some(d) = std::env::var_os("LAYERED_IMAGE_CACHE_DIR") {
            return (!d.is_empty()).then(|| BlobCache { dir: d.into() });
        }
        if std::env::var_os("NIX_BUILD_TOP").is_some() {
            return None;
        }
        let existing = |v: &str| std::env::var_os(v).map(PathBuf::from).filter(|p| p.is_absolute() && p.is_dir());
        let dir = existing("XDG_CACHE_HOME").map(|d| d.join("layered-image")).or_else(|| existing("HOME").map(|h| h.join(".cache/layered-image")))?;
        Some(BlobCache { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key_dir(&self, key: &str) -> PathBuf {
        // A key names the encoder format, which Cargo.lock pins per
        // release; entries of another release are not trusted to match.
        self.dir.join(format!("{}@{}", key.replace('/', "-"), env!("CARGO_PKG_VERSION")))
    }

    /// Whether a store layer whose member list hashes to `names` was ever
    /// recorded under `key`: if not, its diff_id cannot be in the cache
    /// either, and reading the layer to look it up would be wasted.
    pub fn may_know(&self, key: &str, names: &Digest) -> bool {
        self.key_dir(key).join(format!("names-{}", names.hex())).is_file()
    }

    /// The blob the tar `diff_id` compresses to under `key`, if recorded.
    pub fn lookup(&self, key: &str, diff_id: &BlobDigest) -> Option<BlobDigest> {
        let text = crate::input::read_limited_string(&self.key_dir(key).join(diff_id.digest.hex()), ENTRY_LIMIT).ok()?;
        let mut fields = text.split_ascii_whitespace();
        let (tar, tar_size, blob, blob_size) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        let blob: Digest = blob.parse().ok()?;
        let blob_size: u64 = blob_size.parse().ok()?;
        let matches = tar.parse() == Ok(diff_id.digest) && tar_size.parse() == Ok(diff_id.size);
        (matches && fields.next().is_none()).then_some(BlobDigest { digest: blob, size: blob_size })
    }

    /// Records that `diff_id` compresses to `blob` under `key`, and for a
    /// store layer the digest of its member list (see [`BlobCache::may_know`]);
    /// best effort.
    pub fn record(&self, key: &str, diff_id: &BlobDigest, blob: &BlobDigest, names: Option<&Digest>) {
        let dir = self.key_dir(key);
        if let Some(names) = names {
            let hint = dir.join(format!("names-{}", names.hex()));
            if !hint.is_file() {
                let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(hint, b""));
            }
        }
        if self.lookup(key, diff_id).as_ref() == Some(blob) {
            return;
        }
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let mut tmp = tempfile::Builder::new().prefix(".entry-").tempfile_in(&dir)?;
            writeln!(tmp, "{} {} {} {}", diff_id.digest, diff_id.size, blob.digest, blob.size)?;
            tmp.persist(dir.join(diff_id.digest.hex())).map_err(|e| e.error)?;
            Ok(())
        };
        let _ = write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char, size: u64) -> BlobDigest {
        BlobDigest { digest: Digest::from_hex(&c.to_string().repeat(64)).unwrap(), size }
    }

    #[test]
    fn records_and_finds_only_exact_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlobCache::at(tmp.path().join("c"));
        assert_eq!(cache.lookup("gzip-2/m128-ld1.26", &d('a', 10)), None);
        cache.record("gzip-2/m128-ld1.26", &d('a', 10), &d('b', 4), None);
        assert_eq!(cache.lookup("gzip-2/m128-ld1.26", &d('a', 10)), Some(d('b', 4)));
        // Another size of the same digest, or another key, is a miss.
        assert_eq!(cache.lookup("gzip-2/m128-ld1.26", &d('a', 11)), None);
        assert_eq!(cache.lookup("zstd-3/mt", &d('a', 10)), None);
    }

    #[test]
    fn a_damaged_entry_is_a_miss() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlobCache::at(tmp.path());
        cache.record("k", &d('a', 10), &d('b', 4), None);
        let entry = cache.key_dir("k").join("a".repeat(64));
        for bad in ["", "garbage", "sha256:xyz 10 sha256:bb 4\n", &format!("sha256:{} 10 sha256:{} 4 extra\n", "a".repeat(64), "b".repeat(64))] {
            std::fs::write(&entry, bad).unwrap();
            assert_eq!(cache.lookup("k", &d('a', 10)), None, "{bad:?}");
        }
    }

    #[test]
    fn an_unwritable_cache_is_ignored() {
        let cache = BlobCache::at("/proc/no-such-cache");
        cache.record("k", &d('a', 10), &d('b', 4), Some(&d('c', 0).digest));
        assert_eq!(cache.lookup("k", &d('a', 10)), None);
        assert!(!cache.may_know("k", &d('c', 0).digest));
    }

    #[test]
    fn member_lists_are_known_once_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlobCache::at(tmp.path());
        cache.record("k", &d('a', 10), &d('b', 4), Some(&d('c', 0).digest));
        assert!(cache.may_know("k", &d('c', 0).digest));
        assert!(!cache.may_know("k", &d('e', 0).digest), "another member list");
        assert!(!cache.may_know("j", &d('c', 0).digest), "another key");
        assert_eq!(cache.lookup("k", &d('a', 10)), Some(d('b', 4)), "the entry itself as before");
    }
}
