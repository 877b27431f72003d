//! `verify`: an image read the way its consumers read it (`docker load`
//! for a docker-archive; containerd and skopeo for an OCI layout or
//! oci-archive), with every digest checked. The first discrepancy is the
//! error; nothing is trusted because a name or a list says so.
//!
//! Layers are streamed through the hashers, never held in memory; JSON
//! documents are read with the same bounds as a base image's.

pub(crate) mod archive;
mod dir;
mod docker;
mod oci;
pub(crate) mod tar_bound;

pub use tar_bound::Overrun;
pub mod shadow;

use crate::image::base::{JSON_MEMBER_LIMIT, json_too_big};
use crate::image::decode::{Compression, sniff};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Target(String),
    #[error("{image}: {source}")]
    Io { image: String, source: io::Error },
    #[error("{image} is not a tar archive (nor a gzip, bzip2, xz or zstd compressed one): {reason}")]
    NotTar { image: String, reason: String },
    #[error("{image}: corrupt tar header at byte {offset}: {reason}")]
    Corrupt { image: String, offset: u64, reason: String },
    #[error("{image}: {what} {why} (a decompression bomb?)")]
    Bomb { image: String, what: String, why: Overrun },
    #[error("{image} has no {member}{why}")]
    Missing { image: String, member: String, why: String },
    #[error("{image}: {member} {problem}")]
    Link { image: String, member: String, problem: String },
    #[error("{image}: {member} is not valid JSON: {source}")]
    Json { image: String, member: String, source: serde_json::Error },
    #[error("{image}: {what} has sha256:{found}, but {named_by} says sha256:{expected}")]
    Digest { image: String, what: String, found: String, expected: String, named_by: String },
    #[error("{image}: {what} is {found} bytes, but {named_by} says {expected}")]
    Size { image: String, what: String, found: u64, expected: u64, named_by: String },
    #[error("{image}: {what} has media type {media_type:?}, which is not an image manifest, index, config or layer type verify knows")]
    MediaType { image: String, what: String, media_type: String },
    #[error("{image}: {what} has digest {digest:?}; only sha256 digests are supported")]
    Algorithm { image: String, what: String, digest: String },
    #[error("{image}: {what}")]
    Invalid { image: String, what: String },
    /// A signal stopped the work: whatever failed after it is its consequence.
    #[error("{image}: interrupted")]
    Interrupted { image: String },
}

/// An image as skopeo names it: `docker-archive:PATH[:REF]`,
/// `oci:DIR[:REF]`, `oci-archive:PATH[:REF]`, `dir:DIR`, or a bare path
/// whose kind is found when it is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// REF picks the manifest.json entry whose RepoTags holds it, or `@N`
    /// the Nth entry; without it every entry is verified.
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
    /// REF picks the index.json manifests annotated with that
    /// `org.opencontainers.image.ref.name`; without it, all are verified.
    OciLayout {
        dir: PathBuf,
        reference: Option<String>,
    },
    OciArchive {
        path: PathBuf,
        reference: Option<String>,
    },
    /// skopeo's `dir:DIR` (`podman save --format docker-dir`).
    Dir(PathBuf),
    /// A directory holding `oci-layout`, a tar holding `oci-layout`, or
    /// else a docker-archive.
    Path(PathBuf),
}

impl Target {
    /// skopeo splits at the first colon after the transport, so a path
    /// with a colon needs the bare form (and a reference may hold colons).
    pub fn parse(text: &str) -> Result<Target, VerifyError> {
        let split = |rest: &str| -> Result<(PathBuf, Option<String>), VerifyError> {
            let (path, reference) = crate::reference::split_path_ref(rest);
            let reference = reference.filter(|r| !r.is_empty()).map(str::to_string);
            if path.is_empty() {
                return Err(VerifyError::Target(format!("{text:?} names no path")));
            }
            Ok((PathBuf::from(path), reference))
        };
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (path, reference) = split(rest)?;
            Ok(Target::DockerArchive { path, reference })
        } else if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (path, reference) = split(rest)?;
            Ok(Target::OciArchive { path, reference })
        } else if let Some(rest) = text.strip_prefix("dir:") {
            if rest.is_empty() {
                return Err(VerifyError::Target(format!("{text:?} names no path")));
            }
            Ok(Target::Dir(PathBuf::from(rest)))
        } else if let Some(rest) = text.strip_prefix("oci:") {
            let (dir, reference) = split(rest)?;
            Ok(Target::OciLayout { dir, reference })
        } else if let Some((transport, _)) = text.split_once(':').filter(|(t, _)| OTHER_TRANSPORTS.contains(t)) {
            Err(VerifyError::Target(format!("transport {transport}: is not one verify reads (docker-archive:, oci:, oci-archive:, dir:)")))
        } else if text.is_empty() {
            Err(VerifyError::Target("no image named".into()))
        } else {
            Ok(Target::Path(PathBuf::from(text)))
        }
    }
}

/// skopeo's transports for images that are not files verify can read.
const OTHER_TRANSPORTS: [&str; 6] = ["docker", "docker-daemon", "containers-storage", "ostree", "sif", "tarball"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    OciLayout,
    OciArchive,
    Dir,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::DockerArchive => "docker-archive",
            Format::OciLayout => "oci",
            Format::OciArchive => "oci-archive",
            Format::Dir => "dir",
        })
    }
}

/// One verified image (a manifest.json entry, or an OCI image manifest).
#[derive(Debug, Clone)]
pub struct ImageSummary {
    /// `sha256:<hex>` of the image config.
    pub config: String,
    pub layers: usize,
    /// The layers' uncompressed size, all of which was hashed.
    pub layer_bytes: u64,
}

/// One OCI artifact (an OCI 1.1 artifact manifest, or a buildx
/// attestation manifest): its blobs were checked, not unpacked.
#[derive(Debug, Clone)]
pub struct ArtifactSummary {
    /// `sha256:<hex>` of the artifact's manifest.
    pub manifest: String,
    /// Its `artifactType`, else its config's media type.
    pub kind: String,
    /// Config and layer blobs, each checked for size and digest.
    pub blobs: usize,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub format: Format,
    pub image: String,
    pub images: Vec<ImageSummary>,
    pub artifacts: Vec<ArtifactSummary>,
    /// What was skipped and why (unknown media types): for stderr, not
    /// part of the verdict.
    pub notes: Vec<String>,
}

impl fmt::Display for Summary {
    /// `verified docker-archive hello.tar: 3 layers, config sha256:..., 12.3 MiB`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "verified {} {}: ", self.format, self.image)?;
        if self.images.is_empty() {
            return write_artifacts(f, &self.artifacts, "");
        }
        if self.images.len() != 1 {
            write!(f, "{} images; ", self.images.len())?;
        }
        for (i, s) in self.images.iter().enumerate() {
            let plural = if s.layers == 1 { "" } else { "s" };
            write!(f, "{}{} layer{plural}, config {}", if i > 0 { "; " } else { "" }, s.layers, s.config)?;
        }
        let bytes: u64 = self.images.iter().map(|s| s.layer_bytes).sum();
        match bytes {
            0..1024 => write!(f, ", {bytes} bytes")?,
            1024..0x10_0000 => write!(f, ", {:.1} KiB", bytes as f64 / 1024.0)?,
            _ => write!(f, ", {:.1} MiB", bytes as f64 / (1024.0 * 1024.0))?,
        }
        write_artifacts(f, &self.artifacts, "; ")
    }
}

/// `1 artifact (2 blobs checked)`, after `sep`; nothing without artifacts.
fn write_artifacts(f: &mut fmt::Formatter<'_>, artifacts: &[ArtifactSummary], sep: &str) -> fmt::Result {
    if artifacts.is_empty() {
        return Ok(());
    }
    let blobs: usize = artifacts.iter().map(|a| a.blobs).sum();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    write!(f, "{sep}{} artifact{} ({blobs} blob{} checked)", artifacts.len(), plural(artifacts.len()), plural(blobs))
}

pub fn verify(target: &Target) -> Result<Summary, VerifyError> {
    verify_until(target, &Cancel::default())
}

/// [`verify`], stopped by `cancel` (a signal handler's flag): every read
/// checks it, so a verify of gigabytes stops within one buffer, and the
/// spool of a compressed archive is removed on the way out.
pub fn verify_until(target: &Target, cancel: &Cancel) -> Result<Summary, VerifyError> {
    cancel.outcome(target, verify_target(target, cancel))
}

/// The flag a signal handler sets; shared with the readers verify opens.
pub type Cancel = std::sync::Arc<std::sync::atomic::AtomicBool>;

trait Outcome {
    fn outcome<T>(&self, target: &Target, r: Result<T, VerifyError>) -> Result<T, VerifyError>;
}

impl Outcome for Cancel {
    /// Once the flag is set, the error (or the half-read success) is the
    /// signal's doing: "interrupted" is the one message.
    fn outcome<T>(&self, target: &Target, r: Result<T, VerifyError>) -> Result<T, VerifyError> {
        if !self.load(std::sync::atomic::Ordering::Relaxed) {
            return r;
        }
        let image = match target {
            Target::DockerArchive { path, .. } | Target::OciArchive { path, .. } | Target::Dir(path) | Target::Path(path) => display(path),
            Target::OciLayout { dir, .. } => display(dir),
        };
        Err(VerifyError::Interrupted { image })
    }
}

fn verify_target(target: &Target, cancel: &Cancel) -> Result<Summary, VerifyError> {
    match target {
        Target::DockerArchive { path, reference } => docker::verify(&archive::Archive::open_until(path, cancel)?, reference.as_deref()),
        Target::OciArchive { path, reference } => {
            let a = archive::Archive::open_until(path, cancel)?;
            oci::verify(&a, Format::OciArchive, reference.as_deref())
        }
        Target::OciLayout { dir, reference } => oci::verify(&oci::Dir::new(dir, cancel)?, Format::OciLayout, reference.as_deref()),
        Target::Dir(dir) => {
            let (src, manifest) = dir::DirTransport::open(dir, cancel)?;
            oci::verify_one(&src, Format::Dir, &manifest)
        }
        Target::Path(path) if path.is_dir() && !path.join("oci-layout").exists() && path.join("version").is_file() => {
            let (src, manifest) = dir::DirTransport::open(path, cancel)?;
            oci::verify_one(&src, Format::Dir, &manifest)
        }
        Target::Path(path) if path.is_dir() => {
            if !path.join("oci-layout").exists() {
                let image = path.display().to_string();
                return Err(VerifyError::Invalid { image, what: "a directory without an oci-layout file is not an OCI image layout".into() });
            }
            oci::verify(&oci::Dir::new(path, cancel)?, Format::OciLayout, None)
        }
        Target::Path(path) => {
            let a = archive::Archive::open_until(path, cancel)?;
            if a.contains("oci-layout") { oci::verify(&a, Format::OciArchive, None) } else { docker::verify(&a, None) }
        }
    }
}

/// Where the named files of an image live: members of an archive, or
/// files under an OCI layout directory.
trait Source {
    fn image(&self) -> &str;
    /// A reader over the regular file `name` and its size; `what` says
    /// what the caller wanted it for (for the error).
    fn open(&self, name: &str, what: &str) -> Result<(Box<dyn Read + '_>, u64), VerifyError>;
    /// Set by a signal: the readers [`Source::open`] returns fail then.
    fn cancel(&self) -> &std::sync::atomic::AtomicBool;
}

impl Source for archive::Archive {
    fn image(&self) -> &str {
        &self.image
    }
    fn open(&self, name: &str, what: &str) -> Result<(Box<dyn Read + '_>, u64), VerifyError> {
        self.open_member(name, what)
    }
    fn cancel(&self) -> &std::sync::atomic::AtomicBool {
        &self.cancel
    }
}

/// A JSON document (manifest, index, config), bounded before it is parsed;
/// also returns its bytes' sha256, which names it in most formats.
fn read_json(src: &dyn Source, name: &str, what: &str) -> Result<(Value, String, u64), VerifyError> {
    let image = || src.image().to_string();
    let (r, size) = src.open(name, what)?;
    if size > JSON_MEMBER_LIMIT {
        return Err(VerifyError::Invalid { image: image(), what: format!("{what} ({name}) of {size} bytes is implausibly large") });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    r.take(size).read_to_end(&mut bytes).map_err(|source| VerifyError::Io { image: image(), source })?;
    if bytes.len() as u64 != size {
        return Err(VerifyError::Invalid { image: image(), what: format!("{what} ({name}) ends early") });
    }
    if let Some(why) = json_too_big(&bytes) {
        return Err(VerifyError::Invalid { image: image(), what: format!("{what} ({name}) {why}") });
    }
    let value = serde_json::from_slice(&bytes).map_err(|source| VerifyError::Json { image: image(), member: format!("{what} ({name})"), source })?;
    Ok((value, hex::encode(Sha256::digest(&bytes)), size))
}

/// The hex of a `sha256:<64 lowercase hex>` digest; any other algorithm,
/// or a malformed one, is an error naming `what`.
fn sha256_hex<'a>(image: &str, what: &str, digest: &'a str) -> Result<&'a str, VerifyError> {
    match digest.split_once(':') {
        Some(("sha256", hex)) if is_hex64(hex) => Ok(hex),
        Some((alg, _)) if alg != "sha256" && !alg.is_empty() => {
            Err(VerifyError::Algorithm { image: image.into(), what: what.into(), digest: digest.into() })
        }
        _ => Err(VerifyError::Invalid { image: image.into(), what: format!("{what} {digest:?} is not \"sha256:<64 hex digits>\"") }),
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Passes bytes through while hashing and counting them.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The sha256 and length of a blob read whole, streamed (an artifact's
/// blobs are opaque: nothing is decompressed).
fn hash_blob(r: Box<dyn Read + '_>) -> io::Result<(String, u64)> {
    let mut h = Hashing { inner: r, hash: Sha256::new(), count: 0 };
    io::copy(&mut h, &mut io::sink())?;
    Ok((hex::encode(h.hash.finalize()), h.count))
}

/// What streaming a layer found.
struct LayerDigests {
    /// sha256 and length of the bytes as stored.
    stored: (String, u64),
    /// sha256 and length after decompression (the diff_id's subject).
    content: (String, u64),
    compression: Compression,
    /// Why the data did not decompress. The stored bytes are still all
    /// hashed: a blob whose digest is wrong is reported as that.
    undecodable: Option<String>,
}

impl LayerDigests {
    fn decoded(&self, image: &str, what: &str) -> Result<(), VerifyError> {
        match &self.undecodable {
            None => Ok(()),
            Some(why) => Err(VerifyError::Invalid {
                image: image.into(),
                what: format!("{what}: {} data is corrupt: {why}", compression_name(self.compression)),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum LayerReadError {
    #[error("{0}")]
    Io(io::Error),
    #[error("{0}")]
    Bomb(tar_bound::Overrun),
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "uncompressed",
        Compression::Gzip => "gzip",
        Compression::Bzip2 => "bzip2",
        Compression::Xz => "xz",
        Compression::Zstd => "zstd",
    }
}

/// Streams a layer through both hashers: the stored bytes, and what they
/// decompress to. `expect` forces a compression (an OCI media type says
/// which); `None` sniffs the magic, as `docker load` does.
/// A small compressed input can inflate for seconds without another read,
/// so `cancel` is checked per decompressed buffer too.
fn hash_layer(
    r: Box<dyn Read + '_>,
    size: u64,
    expect: Option<Compression>,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<LayerDigests, LayerReadError> {
    let hashing = Hashing { inner: r, hash: Sha256::new(), count: 0 };
    let mut stored = BufReader::with_capacity(64 * 1024, hashing);
    let mut head = [0u8; 8];
    let avail = stored.fill_buf().map_err(LayerReadError::Io)?;
    let n = avail.len().min(8);
    head[..n].copy_from_slice(&avail[..n]);
    let compression = expect.unwrap_or_else(|| sniff(&head[..n]));
    if compression == Compression::None {
        // The stored bytes are the content: hashed once.
        io::copy(&mut stored, &mut io::sink()).map_err(LayerReadError::Io)?;
        let h = stored.into_inner();
        let digest = (hex::encode(h.hash.finalize()), h.count);
        return Ok(LayerDigests { stored: digest.clone(), content: digest, compression, undecodable: None });
    }
    let mut undecodable = None;
    // Decompressing on this thread, the content hashed and bounded on
    // another: the two halves of the work take about as long.
    let (content, count) = std::thread::scope(|s| {
        let (tx, rx) = crossbeam_channel::bounded::<(Vec<u8>, usize)>(4);
        let (spare_tx, spare) = crossbeam_channel::bounded::<Vec<u8>>(6);
        let worker = s.spawn(move || {
            let (mut content, mut count, mut bound) = (Sha256::new(), 0u64, tar_bound::TarBound::new(size));
            for (buf, n) in rx {
                content.update(&buf[..n]);
                count += n as u64;
                bound.feed(&buf[..n])?;
                let _ = spare_tx.try_send(buf);
            }
            Ok::<_, tar_bound::Overrun>((content, count))
        });
        let dec: io::Result<Box<dyn Read>> = match compression {
            Compression::None => unreachable!("returned above"),
            Compression::Gzip => Ok(Box::new(crate::image::gunzip::Reader::new(&mut stored))),
            Compression::Bzip2 => Ok(Box::new(bzip2::read::MultiBzDecoder::new(&mut stored))),
            Compression::Xz => Ok(Box::new(xz2::read::XzDecoder::new_multi_decoder(&mut stored))),
            Compression::Zstd => zstd::stream::read::Decoder::with_buffer(&mut stored).map(|d| Box::new(d) as Box<dyn Read>),
        };
        match dec {
            Err(e) => undecodable = Some(e.to_string()),
            Ok(mut dec) => loop {
                if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                    undecodable = Some(crate::stop::Cancelled.to_string());
                    break;
                }
                let mut buf = spare.try_recv().unwrap_or_else(|_| vec![0u8; 256 << 10]);
                let n = match dec.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        undecodable = Some(e.to_string());
                        break;
                    }
                };
                // Refused only once the worker stopped on a bomb.
                if tx.send((buf, n)).is_err() {
                    break;
                }
            },
        }
        drop(tx);
        worker.join().expect("the content hasher does not panic").map_err(LayerReadError::Bomb)
    })?;
    // Bytes after the compressed stream still belong to the blob's digest.
    io::copy(&mut stored, &mut io::sink()).map_err(LayerReadError::Io)?;
    let h = stored.into_inner();
    Ok(LayerDigests {
        stored: (hex::encode(h.hash.finalize()), h.count),
        content: (hex::encode(content.finalize()), count),
        compression,
        undecodable,
    })
}

/// The config's `rootfs.diff_ids`, as hex, checked to be sha256 digests.
fn diff_ids(image: &str, config_name: &str, config: &Value) -> Result<Vec<String>, VerifyError> {
    let list = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| VerifyError::Invalid { image: image.into(), what: format!("{config_name}: rootfs.diff_ids is missing or not a list") })?;
    list.iter()
        .enumerate()
        .map(|(i, d)| {
            let what = format!("{config_name}: rootfs.diff_ids[{i}]");
            let s = d.as_str().ok_or_else(|| VerifyError::Invalid { image: image.into(), what: format!("{what} is not a string") })?;
            sha256_hex(image, &what, s).map(str::to_string)
        })
        .collect()
}

/// Checks a streamed layer's content against its diff_id.
fn check_diff_id(image: &str, what: &str, got: &LayerDigests, diff_id: &str, config_name: &str) -> Result<(), VerifyError> {
    if got.content.0 == diff_id {
        return Ok(());
    }
    let named_by = format!("{config_name}'s diff_id");
    if !matches!(got.compression, Compression::None) {
        let c = compression_name(got.compression);
        if got.stored.0 == diff_id {
            return Err(VerifyError::Invalid {
                image: image.into(),
                what: format!(
                    "{what} is {c}-compressed and {named_by} sha256:{diff_id} is the digest of its compressed bytes; \
                     a diff_id names the uncompressed tar, which has sha256:{}",
                    got.content.0
                ),
            });
        }
        let what = format!("{what} ({c}-compressed), uncompressed,");
        return Err(VerifyError::Digest { image: image.into(), what, found: got.content.0.clone(), expected: diff_id.into(), named_by });
    }
    Err(VerifyError::Digest { image: image.into(), what: what.into(), found: got.content.0.clone(), expected: diff_id.into(), named_by })
}

fn layer_read_error(image: &str, what: &str, e: LayerReadError) -> VerifyError {
    match e {
        LayerReadError::Io(source) => VerifyError::Io { image: image.into(), source },
        LayerReadError::Bomb(why) => VerifyError::Bomb { image: image.into(), what: what.into(), why },
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_as_skopeo_spells_them() {
        let p = |s: &str| Target::parse(s).unwrap();
        let some = |s: &str| Some(s.to_string());
        assert_eq!(p("docker-archive:a.tar"), Target::DockerArchive { path: "a.tar".into(), reference: None });
        assert_eq!(p("docker-archive:a.tar:n:t"), Target::DockerArchive { path: "a.tar".into(), reference: some("n:t") });
        assert_eq!(p("oci:/d:tag"), Target::OciLayout { dir: "/d".into(), reference: some("tag") });
        assert_eq!(p("oci:/d:"), Target::OciLayout { dir: "/d".into(), reference: None });
        assert_eq!(p("oci-archive:x.tar:r"), Target::OciArchive { path: "x.tar".into(), reference: some("r") });
        assert_eq!(p("./img:1.tar"), Target::Path("./img:1.tar".into()));
        assert_eq!(p("dir:/d:x"), Target::Dir("/d:x".into()));
        assert!(matches!(Target::parse("dir:"), Err(VerifyError::Target(_))));
        assert!(matches!(Target::parse("containers-storage:x"), Err(VerifyError::Target(_))));
        assert!(matches!(Target::parse("oci::tag"), Err(VerifyError::Target(_))));
        assert!(matches!(Target::parse("docker://busybox"), Err(VerifyError::Target(_))));
        assert!(matches!(Target::parse(""), Err(VerifyError::Target(_))));
    }

    #[test]
    fn only_sha256_digests() {
        let hex = "ab".repeat(32);
        assert_eq!(sha256_hex("i", "w", &format!("sha256:{hex}")).unwrap(), hex);
        assert!(matches!(sha256_hex("i", "w", "sha512:00"), Err(VerifyError::Algorithm { .. })));
        assert!(matches!(sha256_hex("i", "w", "sha256:AB"), Err(VerifyError::Invalid { .. })));
        assert!(matches!(sha256_hex("i", "w", "nocolon"), Err(VerifyError::Invalid { .. })));
    }
}
