//! Content digests as OCI names them (`sha256:<64 lowercase hex>`),
//! validated once where they enter and carried as values after that.

use sha2::Sha256;
use std::fmt;
use std::str::FromStr;

/// A SHA-256 digest: a layer's diff_id, a blob's name, an image ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("{0:?} is not \"sha256:<64 lowercase hex digits>\"")]
    Malformed(String),
    #[error("{0:?} uses the algorithm {1:?}; only sha256 is supported")]
    Algorithm(String, String),
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest(Sha256::digest(bytes).into())
    }

    /// A finished hasher's digest.
    pub fn from_hasher(h: Sha256) -> Digest {
        use sha2::Digest as _;
        Digest(h.finalize().into())
    }

    /// From 64 lowercase hex digits, as conf files and blob file names hold them.
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        let bad = || DigestError::Malformed(hex.to_string());
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).map_err(|_| bad())?;
        Ok(Digest(out))
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex digits, as `docker images` shows an ID.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    /// `sha256:<hex>`; any other algorithm is named in the error.
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        match s.split_once(':') {
            Some(("sha256", hex)) => Digest::from_hex(hex).map_err(|_| DigestError::Malformed(s.to_string())),
            Some((alg, _)) if !alg.is_empty() && alg.bytes().all(|b| b.is_ascii_alphanumeric() || b"+._-".contains(&b)) => {
                Err(DigestError::Algorithm(s.to_string(), alg.to_string()))
            }
            _ => Err(DigestError::Malformed(s.to_string())),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A blob's digest and length: what a descriptor names it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlobDigest {
    pub digest: Digest,
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_oci_digests() {
        let d = Digest::of(b"");
        let text = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(d.to_string(), text);
        assert_eq!(text.parse::<Digest>().unwrap(), d);
        assert_eq!(Digest::from_hex(&d.hex()).unwrap(), d);
        assert_eq!(d.short(), "e3b0c44298fc");
        for bad in ["", "sha256:", "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "e3b0", "sha256:xyz"] {
            assert!(matches!(bad.parse::<Digest>(), Err(DigestError::Malformed(_))), "{bad}");
        }
        assert!(matches!("sha512:abcd".parse::<Digest>(), Err(DigestError::Algorithm(_, a)) if a == "sha512"));
    }
}
