//! Layer count of a `fromImage` docker-archive, as the conf derivation
//! reads it: `tar -xOf IMAGE manifest.json | jq '.[0].Layers | length'`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("fromImage {file}: {what}")]
pub struct BaseImageError {
    pub file: String,
    pub what: String,
}

/// Same limits as the streamer's reader (crate::base_image): a manifest
/// over 4 MiB is not plausible, and more than ~1100x expansion is a bomb.
const MANIFEST_LIMIT: u64 = crate::base_image::JSON_MEMBER_LIMIT;

fn decompressed(file: &Path) -> std::io::Result<Box<dyn Read>> {
    // Opening a FIFO would block until someone writes to it.
    let meta = std::fs::metadata(file)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut magic = [0u8; 6];
    let mut f = File::open(file)?;
    let got = f.read(&mut magic)?;
    let f = BufReader::new(File::open(file)?);
    let m = &magic[..got];
    Ok(if m.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else if m.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(f))
    } else if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(xz2::read::XzDecoder::new_multi_decoder(f))
    } else if m.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(f)?)
    } else {
        Box::new(f)
    })
}

/// Number of layers of the first image in the archive's `manifest.json`.
pub fn layer_count(file: &Path) -> Result<usize, BaseImageError> {
    let err = |what: String| BaseImageError { file: file.display().to_string(), what };
    let reader = decompressed(file).map_err(|e| err(e.to_string()))?;
    let compressed = std::fs::metadata(file).map_or(0, |m| m.len());
    let limit = compressed.saturating_mul(1100).saturating_add(64 << 20);
    let reader = Bounded { inner: reader, left: limit, limit };
    let mut archive = tar::Archive::new(reader);
    // Raw entries: the tar crate would read a GNU long name or pax header
    // whole into memory, whatever size it claims; manifest.json needs
    // neither, and skipped entries are streamed past.
    for entry in archive.entries().map_err(|e| err(format!("not a tar archive: {e}")))?.raw(true) {
        let mut entry = entry.map_err(|e| err(format!("reading tar: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|e| err(e.to_string()))?.into_owned();
        if path == Path::new("manifest.json") || path == Path::new("./manifest.json") {
            if entry.size() > MANIFEST_LIMIT {
                return Err(err(format!("manifest.json of {} bytes is implausibly large", entry.size())));
            }
            let mut text = Vec::new();
            entry.read_to_end(&mut text).map_err(|e| err(format!("reading manifest.json: {e}")))?;
            if let Some(why) = crate::base_image::json_too_big(&text) {
                return Err(err(format!("manifest.json {why}")));
            }
            let manifest: serde_json::Value =
                serde_json::from_slice(&text).map_err(|e| err(format!("manifest.json: invalid JSON: {e}")))?;
            return manifest
                .get(0)
                .and_then(|m| m.get("Layers"))
                .and_then(|l| l.as_array())
                .map(|l| l.len())
                .ok_or_else(|| err("manifest.json has no .[0].Layers list".into()));
        }
    }
    Err(err("no manifest.json in the archive (not a docker-archive?)".into()))
}

/// Fails the read once more than `limit` decompressed bytes went through.
struct Bounded {
    inner: Box<dyn Read>,
    left: u64,
    limit: u64,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::other(format!(
                "decompressed size exceeds {} bytes, over 1100 times the compressed size (a decompression bomb?)",
                self.limit
            ))
        })?;
        Ok(n)
    }
}
