//! What a layer read from another image must be before it is copied, as
//! `verify` holds it: a tar (its first block a tar header), bounded as
//! verify bounds it (see [`crate::verify::tar_bound`]), so a decompression
//! bomb stops as early there as here.

use crate::tar::reader;
use crate::verify::Overrun;
use crate::verify::tar_bound::TarBound;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, thiserror::Error)]
pub enum LayerCheckError {
    #[error("the first block is not a tar header ({0})")]
    NotTar(String),
    #[error("{0} (a decompression bomb?)")]
    Bomb(Overrun),
}

/// Follows a layer's content (decompressed) as it streams past.
pub struct TarCheck {
    bound: TarBound,
    first: Vec<u8>,
    failed: Option<LayerCheckError>,
}

impl TarCheck {
    /// `compressed_len`: the blob's size where known (the ratio bound).
    pub fn new(compressed_len: Option<u64>) -> TarCheck {
        TarCheck { bound: TarBound::new(compressed_len.unwrap_or(u64::MAX)), first: Vec::with_capacity(512), failed: None }
    }

    pub fn feed(&mut self, buf: &[u8]) -> Result<(), LayerCheckError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.first_block(buf).and_then(|()| self.bound.feed(buf).map_err(LayerCheckError::Bomb));
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn first_block(&mut self, buf: &[u8]) -> Result<(), LayerCheckError> {
        if self.first.len() == 512 {
            return Ok(());
        }
        let n = buf.len().min(512 - self.first.len());
        self.first.extend_from_slice(&buf[..n]);
        if self.first.len() < 512 {
            return Ok(());
        }
        let block: &[u8; 512] = self.first.as_slice().try_into().expect("512 bytes");
        // All zeros: an empty archive's end marker (the bound follows what comes after).
        if block.iter().all(|&b| b == 0) {
            return Ok(());
        }
        match reader::checksum_matches(block) {
            Ok(true) => Ok(()),
            Ok(false) => Err(LayerCheckError::NotTar("its checksum does not match".into())),
            Err(reason) => Err(LayerCheckError::NotTar(reason)),
        }
    }

    /// At the end of the content: what failed, or content too short to
    /// hold a tar header.
    pub fn finish(&mut self) -> Result<(), LayerCheckError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let n = self.first.len();
        if n > 0 && n < 512 {
            let e = LayerCheckError::NotTar(format!("the content is only {n} bytes"));
            self.failed = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    pub fn failure(&self) -> Option<LayerCheckError> {
        self.failed.clone()
    }
}

/// A check shared with a decoder that outlives the caller's borrow.
pub type Shared = Arc<Mutex<TarCheck>>;

pub fn shared(compressed_len: Option<u64>) -> Shared {
    Arc::new(Mutex::new(TarCheck::new(compressed_len)))
}

/// A reader of a layer's content that checks it as it is read.
pub struct Checked<'c, R> {
    pub inner: R,
    pub check: &'c Shared,
}

impl<R: Read> Read for Checked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut check = crate::stop::lock(self.check);
        let r = if n == 0 { check.finish() } else { check.feed(&buf[..n]) };
        r.map_err(io::Error::other)?;
        Ok(n)
    }
}
