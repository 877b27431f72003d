//! Content-addressed blobs and the stores that receive them.
//!
//! A layer is produced once — tar bytes, compression, both digests in the
//! same pass — into a [`BlobWriter`] that some [`BlobStore`] handed out;
//! the store decides where the bytes go (a file in an OCI layout, an
//! upload to a registry) and makes the blob visible only under the digest
//! it was committed with.

pub mod cache;
pub mod compress;
pub mod layer_check;
pub mod produce;
pub mod record;

use crate::digest::{BlobDigest, Digest};
use sha2::{Digest as _, Sha256};
use std::io::{self, Write};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{target}: {what}: {source}")]
    Io { target: String, what: String, source: io::Error },
    #[error("{target}: {what}")]
    Invalid { target: String, what: String },
    /// A remote store's failure; `transient` ones (connection errors, 429,
    /// 5xx) are worth trying again.
    #[error("{what}")]
    Remote { what: String, transient: bool },
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Remote { transient: true, .. })
    }
}

/// Where blobs go.
pub trait BlobStore: Sync {
    /// Whether the store already holds the blob: such a blob need not be
    /// produced at all. The size is what the caller expects; a store that
    /// can tell holds another size under that name does not have it.
    fn has_blob(&self, blob: &BlobDigest) -> Result<bool, StoreError>;
    /// A writer for a new blob whose digest is not known yet.
    fn new_blob(&self) -> Result<Box<dyn BlobWriter + '_>, StoreError>;
    /// Stores a small blob (a config, a manifest) held in memory.
    fn put_blob(&self, bytes: &[u8]) -> Result<BlobDigest, StoreError> {
        let digest = BlobDigest { digest: Digest::of(bytes), size: bytes.len() as u64 };
        if !self.has_blob(&digest)? {
            let mut w = self.new_blob()?;
            w.write_all(bytes).map_err(|e| self.io_error("cannot write a blob", e))?;
            w.commit(&digest.digest)?;
        }
        Ok(digest)
    }
    /// Names the store in messages.
    fn describe(&self) -> String;
    /// How a blob the store has came to be there, for progress lines.
    fn presence(&self, _blob: &Digest) -> String {
        "already present".into()
    }
    fn io_error(&self, what: &str, source: io::Error) -> StoreError {
        StoreError::Io { target: self.describe(), what: what.into(), source }
    }
}

/// A blob being written. Dropped without [`BlobWriter::commit`], it leaves
/// nothing behind.
pub trait BlobWriter: Write + Send {
    /// Makes the blob visible as `digest`: the caller hashed what it wrote
    /// and vouches for the digest.
    fn commit(self: Box<Self>, digest: &Digest) -> Result<(), StoreError>;
}

/// A writer that hashes and counts what passes through it.
pub struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing { inner, hasher: Sha256::new(), len: 0 }
    }
    pub fn finish(self) -> (W, BlobDigest) {
        (self.inner, BlobDigest { digest: Digest::from_hasher(self.hasher), size: self.len })
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.hasher.update(&data[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A store that keeps nothing and claims every blob: producing an image
/// into it yields every digest (what `digests` records) without writing a
/// byte, and leaves out the layers whose digests are known already.
pub struct Discard;

impl BlobStore for Discard {
    fn has_blob(&self, _: &BlobDigest) -> Result<bool, StoreError> {
        Ok(true)
    }
    fn new_blob(&self) -> Result<Box<dyn BlobWriter + '_>, StoreError> {
        Ok(Box::new(io::sink()))
    }
    fn describe(&self) -> String {
        "digests".into()
    }
}

impl BlobWriter for io::Sink {
    fn commit(self: Box<Self>, _: &Digest) -> Result<(), StoreError> {
        Ok(())
    }
}
