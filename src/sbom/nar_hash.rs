//! Nix's `narHash` in any of the spellings Nix writes it, as the lowercase
//! hex SPDX, CycloneDX and in-toto want: `sha256:<nix32>` (structured
//! `exportReferencesGraph`, `nix-store --query --hash`), `sha256-<base64>`
//! (SRI: `nix path-info --json`), and `sha256:<hex>` / `sha256:<base64>`.

use base64::Engine;

#[derive(Debug, thiserror::Error)]
#[error("narHash {value:?}: {problem}")]
pub struct NarHashError {
    pub value: String,
    pub problem: &'static str,
}

/// Nix's base-32 alphabet (no e, o, u, t).
const NIX32: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";
const SHA256_LEN: usize = 32;

/// The hex SHA-256 a narHash names.
pub fn to_hex(value: &str) -> Result<String, NarHashError> {
    let fail = |problem| NarHashError { value: value.to_string(), problem };
    let (algo, body, sri) = if let Some((a, b)) = value.split_once(':') {
        (a, b, false)
    } else if let Some((a, b)) = value.split_once('-') {
        (a, b, true)
    } else {
        return Err(fail("is neither <algo>:<hash> nor an SRI hash <algo>-<base64>"));
    };
    if algo != "sha256" {
        return Err(fail("is not a sha256 hash (Nix records NAR hashes as sha256)"));
    }
    let bytes = if sri {
        base64(body).ok_or_else(|| fail("has an SRI hash whose base64 is not 32 bytes"))?
    } else {
        match body.len() {
            64 => hex::decode(body).ok().filter(|_| body.bytes().all(|b| !b.is_ascii_uppercase())).ok_or_else(|| fail("is not lowercase hex"))?,
            52 => nix32(body).ok_or_else(|| fail("is not valid Nix base-32"))?,
            44 => base64(body).ok_or_else(|| fail("is not valid base64"))?,
            _ => return Err(fail("has a sha256 of the wrong length (64 hex, 52 Nix base-32 or 44 base64 characters)")),
        }
    };
    Ok(hex::encode(bytes))
}

fn base64(body: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(body).ok().filter(|b| b.len() == SHA256_LEN)
}

/// Nix's base-32 decoding: the last character holds the lowest 5 bits, and
/// bits beyond the hash's length must be zero.
fn nix32(s: &str) -> Option<Vec<u8>> {
    let mut out = vec![0u8; SHA256_LEN];
    for (n, c) in s.bytes().rev().enumerate() {
        let digit = NIX32.iter().position(|&a| a == c)? as u16;
        let bit = n * 5;
        let (i, j) = (bit / 8, bit % 8);
        out[i] |= (digit << j) as u8;
        let carry = digit >> (8 - j);
        if i + 1 < SHA256_LEN {
            out[i + 1] |= carry as u8;
        } else if carry != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three spellings `nix hash file --type sha256 --base32/--sri/--base16`
    /// (Nix 2.8) print for the bytes "abc".
    const ABC_HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn every_spelling_nix_writes() {
        for v in [
            "sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
            "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
            "sha256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
            &format!("sha256:{ABC_HEX}"),
        ] {
            assert_eq!(to_hex(v).unwrap(), ABC_HEX, "{v}");
        }
    }

    #[test]
    fn bad_hashes_are_named() {
        for v in [
            "sha1:abc",
            "md5-xxxx",
            "sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5e", // 'e' is not Nix base-32
            "sha256:zb8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s", // overflows 256 bits
            "sha256-ungWv48=",
            "sha256:ABCD",
            "sha256",
            &format!("sha256:{}", ABC_HEX.to_uppercase()),
        ] {
            let e = to_hex(v).unwrap_err();
            assert!(e.to_string().contains(v), "{e}");
        }
    }
}
