//! The base image (`fromImage`): a docker-archive read the way Python's
//! `tarfile.open()` reads it, so that its layer members can be re-emitted
//! with the very headers nixpkgs' script would write for them.
//!
//! Compressed archives (gzip, bzip2, xz, and zstd, which Python cannot
//! read) are decompressed once into a temporary file: the members are
//! needed in manifest order, not archive order, and a layer is never held
//! in memory.

use super::{ImageError, decode};
use crate::digest::{BlobDigest, Digest};
use crate::tar::python as tar;
use crate::tar::reader::{Dialect, Entry, HEADER_BUDGET, Reader, Seekable, Streamed, TarError};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BaseImageError {
    #[error("fromImage {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("fromImage {path} is not a tar archive (nor a gzip, bzip2, xz or zstd compressed one): {reason}")]
    NotTar { path: PathBuf, reason: String },
    #[error("fromImage {path} is truncated: {what}")]
    Truncated { path: PathBuf, what: String },
    #[error("fromImage {path}: corrupt tar header at byte {offset}: {reason}")]
    BadHeader { path: PathBuf, offset: u64, reason: String },
    #[error("fromImage {path}: decompressed size exceeds {limit} bytes, over 1100 times the compressed size (a decompression bomb?)")]
    Bomb { path: PathBuf, limit: u64 },
    #[error("fromImage {path} has no member {member:?}{why}")]
    MissingMember { path: PathBuf, member: String, why: &'static str },
    #[error("fromImage {path}: {member} is not valid JSON: {source}")]
    Json { path: PathBuf, member: String, source: serde_json::Error },
    #[error("fromImage {path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

impl BaseImageError {
    /// The message without its `fromImage PATH` lead, for a caller that
    /// names the archive its own way (a docker-archive copied as an image).
    pub fn detail(&self) -> String {
        let text = self.to_string();
        let path = match self {
            BaseImageError::Io { path, .. }
            | BaseImageError::NotTar { path, .. }
            | BaseImageError::Truncated { path, .. }
            | BaseImageError::BadHeader { path, .. }
            | BaseImageError::Bomb { path, .. }
            | BaseImageError::MissingMember { path, .. }
            | BaseImageError::Json { path, .. }
            | BaseImageError::Invalid { path, .. } => path,
        };
        let lead = format!("fromImage {}", path.display());
        match text.strip_prefix(&lead) {
            Some(rest) => rest.strip_prefix(": ").map(str::to_string).unwrap_or_else(|| format!("it{rest}")),
            None => text,
        }
    }
}

/// A member header as Python's `TarInfo` holds it after reading.
pub type Member = Entry;

/// One layer of the base image, in manifest order.
#[derive(Debug, Clone)]
pub struct BaseLayer {
    pub member: Member,
    /// The manifest's name for it (also its history comment).
    pub name: String,
    /// The uncompressed layer's digest, from `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// For a layer stored as a link: the index (in `layers`) of the regular
    /// layer member a reader of the output gets through it.
    pub source: Option<usize>,
}

pub struct BaseImage {
    pub path: PathBuf,
    file: File,
    _spool: Option<tempfile::NamedTempFile>,
    pub layers: Vec<BaseLayer>,
    /// The image config's `config` object (only its Env is inherited).
    pub config: serde_json::Map<String, Value>,
    /// The image config as stored: what names the image (its ID).
    pub config_bytes: Vec<u8>,
}

/// How many layers the first image of a docker-archive has: what nixpkgs'
/// conf derivation reads with `tar -xOf IMAGE manifest.json | jq '.[0].Layers
/// | length'`. One streaming pass; nothing is spooled.
pub fn manifest_layer_count(path: &Path) -> Result<usize, BaseImageError> {
    let io_err = |source| BaseImageError::Io { path: path.into(), source };
    let not_tar = |e: io::Error| BaseImageError::NotTar { path: path.into(), reason: e.to_string() };
    let (mut file, compressed_len) = open_regular(path)?;
    let mut head = [0u8; 8];
    let n = file.read(&mut head).map_err(io_err)?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let limit = bomb_limit(compressed_len);
    let reader: Box<dyn Read> = match decode::decompressor(&head[..n], BufReader::new(file.try_clone().map_err(io_err)?)).map_err(io_err)? {
        Some(d) => Box::new(Bounded { inner: d, left: limit }),
        None => Box::new(BufReader::new(file)),
    };
    // Streamed: skipped members are read past, never held.
    let mut archive = Reader::new(Streamed(reader), Dialect::Python);
    let fail = |e: TarError| match e {
        TarError::Io(e) => bomb_or(path, limit, e, not_tar),
        e => tar_error(path, e),
    };
    while let Some(entry) = archive.next_entry().map_err(fail)? {
        if entry.is_regular() && (entry.name() == b"manifest.json" || entry.name() == b"./manifest.json") {
            let text = archive.read_data(&entry, JSON_MEMBER_LIMIT).map_err(fail)?;
            let manifest = parse_json(path, "manifest.json", &text)?;
            return manifest
                .get(0)
                .and_then(|m| m.get("Layers"))
                .and_then(Value::as_array)
                .map(Vec::len)
                .ok_or_else(|| BaseImageError::Invalid { path: path.into(), what: "manifest.json[0].Layers is missing or not a list".into() });
        }
    }
    Err(BaseImageError::MissingMember { path: path.into(), member: "manifest.json".into(), why: " (not a docker-archive?)" })
}

/// More than ~1100x expansion (gzip's ceiling) is a decompression bomb.
pub(crate) fn bomb_limit(compressed_len: u64) -> u64 {
    compressed_len.saturating_mul(1100).saturating_add(64 << 20)
}

/// Members are read out of order, so the image must be a seekable file;
/// and opening a FIFO would block until someone writes to it.
fn open_regular(path: &Path) -> Result<(File, u64), BaseImageError> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: the check is on what was opened, so nothing swapped in
    // between (a FIFO) can block the open.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| BaseImageError::Io { path: path.into(), source })?;
    let meta = file.metadata().map_err(|source| BaseImageError::Io { path: path.into(), source })?;
    if !meta.is_file() {
        return Err(BaseImageError::Invalid { path: path.into(), what: "not a regular file".into() });
    }
    Ok((file, meta.len()))
}

/// Fails the read once more than the limit of decompressed bytes went through.
struct Bounded<R> {
    inner: R,
    left: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("decompressed size over the limit")]
struct TooBig;

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| io::Error::other(TooBig))?;
        Ok(n)
    }
}

fn bomb_or(path: &Path, limit: u64, e: io::Error, other: impl Fn(io::Error) -> BaseImageError) -> BaseImageError {
    if e.get_ref().is_some_and(|i| i.is::<TooBig>()) { BaseImageError::Bomb { path: path.into(), limit } } else { other(e) }
}

fn tar_error(path: &Path, e: TarError) -> BaseImageError {
    match e {
        TarError::Io(source) => BaseImageError::Io { path: path.into(), source },
        TarError::NotTar(reason) => BaseImageError::NotTar { path: path.into(), reason: format!("the first block is not a tar header ({reason})") },
        TarError::BadHeader { offset, reason } => BaseImageError::BadHeader { path: path.into(), offset, reason },
        TarError::Truncated { offset, what } => BaseImageError::Truncated { path: path.into(), what: format!("{what} (at byte {offset})") },
        TarError::TooLarge { what, .. } => BaseImageError::Invalid { path: path.into(), what },
    }
}

/// Reads every member header (not the data) of a plain tar, as tarfile does.
fn scan(path: &Path, file: &File) -> Result<Vec<Member>, BaseImageError> {
    let input = Seekable::new(file).map_err(|source| BaseImageError::Io { path: path.into(), source })?;
    let mut reader = Reader::new(input, Dialect::Python);
    let mut members = Vec::new();
    let mut retained = 0usize;
    while let Some(m) = reader.next_entry().map_err(|e| tar_error(path, e))? {
        // Every member keeps its own copy of the global pax records and its
        // names: a small compressed archive of many members after one big
        // global header would otherwise take gigabytes.
        retained += m.retained();
        if retained > HEADER_BUDGET {
            return Err(BaseImageError::Invalid {
                path: path.into(),
                what: format!("its member headers hold more than {} MiB (a header bomb?)", HEADER_BUDGET >> 20),
            });
        }
        members.push(m);
    }
    Ok(members)
}

fn read_member(path: &Path, file: &File, m: &Member, what: &str) -> Result<Vec<u8>, BaseImageError> {
    if m.size() > JSON_MEMBER_LIMIT {
        return Err(BaseImageError::Invalid { path: path.into(), what: format!("{what} of {} bytes is implausibly large", m.size()) });
    }
    let mut f = file;
    f.seek(SeekFrom::Start(m.data_offset)).map_err(|source| BaseImageError::Io { path: path.into(), source })?;
    let mut v = vec![0u8; m.size() as usize];
    f.read_exact(&mut v).map_err(|_| BaseImageError::Truncated { path: path.into(), what: format!("{what} ends early") })?;
    Ok(v)
}

/// The manifest's names are copied into the output as member names; one
/// that is absolute or climbs with `..` would make `docker load` refuse the
/// image (or write outside its directory), so it is refused here, early.
fn plain_member_name(path: &Path, name: &str) -> Result<(), BaseImageError> {
    let parts: Vec<&str> = name.split('/').collect();
    if name.is_empty() || name.starts_with('/') || parts.contains(&"..") || name.contains('\0') {
        return Err(BaseImageError::Invalid {
            path: path.into(),
            what: format!("manifest.json names {name:?}, which is not a plain relative member name"),
        });
    }
    Ok(())
}

/// `a//b`, `./a/./b`, `x/../a/b` and `a/b/` all name `a/b` for docker,
/// which cleans every name as it unpacks; `None` for a name climbing out.
fn clean_name(name: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join(&b'/'))
}

/// Where a link layer leads, as a reader of the output resolves it: a
/// symlink from its own directory, a hard link from the archive root.
/// The target is taken lexically, so it may climb only before it names
/// anything (`../<id>/layer.tar`): in the output, no member but the
/// layers exists to climb through.
fn link_target(name: &str, member: &Member) -> Result<String, String> {
    let target = &member.header.linkname;
    let shown = String::from_utf8_lossy(target);
    let kind = if member.typeflag() == tar::SYMTYPE { "symlink" } else { "hard link" };
    let mut parts: Vec<&[u8]> = Vec::new();
    if member.typeflag() == tar::SYMTYPE {
        if target.starts_with(b"/") {
            return Err(format!("is a symlink to {shown:?}, an absolute path, outside the archive"));
        }
        parts = name.as_bytes().split(|&b| b == b'/').collect();
        parts.pop();
    }
    let mut named = false;
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if !named => {
                if parts.pop().is_none() {
                    return Err(format!("is a {kind} to {shown:?}, which points outside the archive"));
                }
            }
            b".." => return Err(format!("is a {kind} to {shown:?}, which climbs back with '..' after naming a member")),
            c => {
                named = true;
                parts.push(c);
            }
        }
    }
    if parts.is_empty() {
        return Err(format!("is a {kind} to {shown:?}, the archive's root directory"));
    }
    Ok(String::from_utf8_lossy(&parts.join(&b'/')).into_owned())
}

/// Names the image writes itself: a base layer stored under one of them
/// would be shadowed by (or shadow) the output's own member.
/// A member inside `manifest.json/` or a config's name would be unpacked
/// as a directory the output's own file replaces.
fn output_name(name: &str) -> bool {
    let hex = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let first = name.split('/').next().unwrap_or(name);
    first == "manifest.json" || first.strip_suffix(".json").is_some_and(hex)
}

/// The regular layer a link layer leads to in the output, followed as
/// docker does once the output is unpacked: symlink chains through other
/// layers, a hard link only to a regular layer written before it. The
/// target's content is checked against its own diff_id as it is copied,
/// so the two diff_ids must be the same.
fn resolve_layer_link(layers: &[BaseLayer], i: usize) -> Result<Option<usize>, String> {
    let mut cur = i;
    let mut hops = 0;
    while !layers[cur].member.is_regular() {
        let m = &layers[cur].member;
        if m.size() != 0 {
            return Err(format!("is a link that claims {} bytes of data", m.size()));
        }
        let target = link_target(&layers[cur].name, m)?;
        let found = layers.iter().position(|l| l.name == target).ok_or_else(|| {
            format!(
                "is a {} to {:?}, which is not a layer member of this image (a link may only lead to another layer)",
                if m.typeflag() == tar::SYMTYPE { "symlink" } else { "hard link" },
                String::from_utf8_lossy(&m.header.linkname)
            )
        })?;
        if m.typeflag() == tar::LNKTYPE && (found >= cur || !layers[found].member.is_regular()) {
            return Err(format!("is a hard link to {target}, which is not a regular layer written before it (docker unpacks hard links in order)"));
        }
        hops += 1;
        if found == cur || hops > 40 {
            return Err(format!("is a link that loops (to {target})"));
        }
        cur = found;
    }
    if cur == i {
        return Ok(None);
    }
    if layers[cur].diff_id != layers[i].diff_id {
        return Err(format!(
            "is a link to {}, whose content is {}, but its own diff_id is {}",
            layers[cur].name, layers[cur].diff_id, layers[i].diff_id
        ));
    }
    Ok(Some(cur))
}

/// Largest manifest.json or image config read. Real ones are kilobytes,
/// but the config of an image of 32,000 layers (which `stream` makes) is
/// 6.7 MB; the element cap ([`json_too_big`]) bounds the memory.
pub const JSON_MEMBER_LIMIT: u64 = 16 << 20;

/// A parsed JSON value takes up to ~100 bytes per element: 60 MiB of
/// `[0,0,...` (60 KiB gzip'd) would take gigabytes. Elements are bounded
/// by counting the separators outside strings first.
pub fn json_too_big(bytes: &[u8]) -> Option<String> {
    const MAX_ELEMENTS: usize = 1 << 18;
    // Separators outside strings (a history comment is full of commas).
    let (mut n, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b'[' | b'{' | b':' => n += 1,
                _ => {}
            }
        }
    }
    (n > MAX_ELEMENTS).then(|| format!("has over {n} JSON elements, implausibly many (a JSON bomb?)"))
}

fn parse_json(path: &Path, member: &str, bytes: &[u8]) -> Result<Value, BaseImageError> {
    if let Some(why) = json_too_big(bytes) {
        return Err(BaseImageError::Invalid { path: path.into(), what: format!("{member} {why}") });
    }
    serde_json::from_slice(bytes).map_err(|source| BaseImageError::Json { path: path.into(), member: member.into(), source })
}

impl BaseImage {
    pub fn open(path: &Path) -> Result<BaseImage, BaseImageError> {
        let io_err = |source| BaseImageError::Io { path: path.into(), source };
        let (mut file, compressed_len) = open_regular(path)?;
        let mut head = [0u8; 8];
        let n = file.read(&mut head).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut spool = None;
        let source = file.try_clone().map_err(io_err)?;
        if let Some(mut dec) = decode::decompressor(&head[..n], BufReader::new(source)).map_err(io_err)? {
            let mut tmp = tempfile::NamedTempFile::new().map_err(io_err)?;
            let limit = bomb_limit(compressed_len);
            let copied = io::copy(&mut (&mut dec).take(limit + 1), tmp.as_file_mut())
                .map_err(|e| BaseImageError::NotTar { path: path.into(), reason: format!("decompression failed: {e}") })?;
            if copied > limit {
                return Err(BaseImageError::Bomb { path: path.into(), limit });
            }
            drop(dec);
            file = tmp.reopen().map_err(io_err)?;
            spool = Some(tmp);
        }
        let members = scan(path, &file)?;
        if members.is_empty() {
            return Err(BaseImageError::NotTar { path: path.into(), reason: "it holds no members".into() });
        }
        // docker load cleans every member name and the last member of a
        // name wins; tarfile's getmember() matches the name as written.
        // They agree unless one name is spelled two ways (`a`, `./a`):
        // such a name is refused when used, so nothing shadows anything.
        let mut index: HashMap<Vec<u8>, (&Member, Option<&[u8]>)> = HashMap::new();
        for m in &members {
            let Some(key) = clean_name(m.name()) else { continue };
            let other = index.get(&key).and_then(|(prev, other)| if prev.name() != m.name() { Some(prev.name()) } else { *other });
            index.insert(key, (m, other));
        }
        let get = |name: &str, why: &'static str| {
            plain_member_name(path, name)?;
            let key = clean_name(name.as_bytes()).unwrap_or_default();
            match index.get(&key) {
                None => Err(BaseImageError::MissingMember { path: path.into(), member: name.into(), why }),
                Some((m, Some(other))) => Err(BaseImageError::Invalid {
                    path: path.into(),
                    what: format!(
                        "members {:?} and {:?} both name {name}{why}; readers disagree on which one counts",
                        String::from_utf8_lossy(other),
                        String::from_utf8_lossy(m.name())
                    ),
                }),
                Some((m, None)) => Ok((*m, String::from_utf8_lossy(&key).into_owned())),
            }
        };
        let (manifest_member, _) = get("manifest.json", "")?;
        let manifest = parse_json(path, "manifest.json", &read_member(path, &file, manifest_member, "manifest.json")?)?;
        let invalid = |what: String| BaseImageError::Invalid { path: path.into(), what };
        let entry = manifest.get(0).ok_or_else(|| invalid("manifest.json is not a non-empty list".into()))?;
        let config_name =
            entry.get("Config").and_then(Value::as_str).ok_or_else(|| invalid("manifest.json[0].Config is missing or not a string".into()))?;
        let layer_names =
            entry.get("Layers").and_then(Value::as_array).ok_or_else(|| invalid("manifest.json[0].Layers is missing or not a list".into()))?;
        let (config_member, _) = get(config_name, " (named by manifest.json's Config)")?;
        let config_bytes = read_member(path, &file, config_member, config_name)?;
        let image = parse_json(path, config_name, &config_bytes)?;
        let diff_ids = image
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid(format!("{config_name}: rootfs.diff_ids is missing or not a list")))?;
        if diff_ids.len() != layer_names.len() {
            return Err(invalid(format!("manifest.json lists {} layers but {config_name} has {} diff_ids", layer_names.len(), diff_ids.len())));
        }
        let config = match image.get("config") {
            Some(Value::Object(m)) => m.clone(),
            Some(Value::Null) | None => serde_json::Map::new(),
            Some(_) => return Err(invalid(format!("{config_name}: config is not an object"))),
        };
        let mut layers: Vec<BaseLayer> = Vec::with_capacity(layer_names.len());
        for (i, (name, diff_id)) in layer_names.iter().zip(diff_ids).enumerate() {
            let name = name.as_str().ok_or_else(|| invalid(format!("manifest.json[0].Layers[{i}] is not a string")))?;
            let diff_id = diff_id
                .as_str()
                .and_then(|d| d.parse::<Digest>().ok())
                .ok_or_else(|| invalid(format!("{config_name}: rootfs.diff_ids[{i}] is not \"sha256:<64 hex digits>\"")))?;
            let (member, clean) = get(name, " (listed in manifest.json's Layers)")?;
            if output_name(&clean) {
                return Err(invalid(format!("layer member {clean} has a name the output image uses for its own manifest or config")));
            }
            let mut member = member.clone();
            // Written under its clean name (the same for every archive
            // tarfile reads), so the output means one thing to all readers.
            member.header.name = std::borrow::Cow::Owned(clean.clone().into_bytes());
            if !member.is_regular() && !matches!(member.typeflag(), tar::SYMTYPE | tar::LNKTYPE) {
                return Err(invalid(format!("layer member {clean} is neither a file nor a symlink nor a hard link")));
            }
            layers.push(BaseLayer { member, name: clean, diff_id, source: None });
        }
        for i in 0..layers.len() {
            let source = resolve_layer_link(&layers, i).map_err(|why| invalid(format!("layer member {} {why}", layers[i].name)))?;
            layers[i].source = source;
        }
        Ok(BaseImage { path: path.into(), file, _spool: spool, layers, config, config_bytes })
    }

    /// The regular layer whose content a reader gets for `layer`.
    pub fn source_of<'a>(&'a self, layer: &'a BaseLayer) -> &'a BaseLayer {
        layer.source.map_or(layer, |i| &self.layers[i])
    }

    /// Whether a store or customisation layer of this digest may be added
    /// after these base layers: it must not replace a base layer of the
    /// same name but other content.
    pub fn shadowed_by(&self, digest: &Digest) -> Option<&BaseLayer> {
        let hex = digest.hex();
        let name = format!("{hex}/layer.tar");
        // Also a file where that layer's directory goes, or a member
        // inside that directory: unpacking one replaces the other.
        self.layers
            .iter()
            .find(|l| (l.name == name && l.diff_id != *digest) || l.name == hex || (l.name.starts_with(&format!("{hex}/")) && l.name != name))
    }

    /// A base layer's error, naming the image and the member.
    pub fn layer_error(&self, layer: &BaseLayer, what: String) -> ImageError {
        ImageError::BaseLayer { image: self.path.clone(), name: layer.name.clone(), what }
    }

    /// Checks a base layer as docker loads it (see [`check_diff_id`]).
    pub fn check_layer(&self, layer: &BaseLayer, stored: &Digest, content: Option<io::Result<BlobDigest>>) -> Result<(), ImageError> {
        check_diff_id(&layer.diff_id, stored, content).map_err(|what| self.layer_error(layer, what))
    }

    /// A reader over a layer member's data that leaves the archive's
    /// shared file position alone, so that layers can be read in parallel.
    pub fn layer_reader_at(&self, layer: &BaseLayer) -> impl Read + '_ {
        crate::input::ReadAt::new(&self.file, layer.member.data_offset, layer.member.size())
    }

    /// A reader over a layer member's data.
    pub fn layer_reader(&self, layer: &BaseLayer) -> io::Result<impl Read + '_> {
        let mut f = &self.file;
        f.seek(SeekFrom::Start(layer.member.data_offset))?;
        Ok(f.take(layer.member.size()))
    }
}

/// Checks a layer as docker loads it: what it decompresses to must hash to
/// its diff_id `want`. `stored` is the digest of its bytes as stored;
/// `content` that of what they decompress to, if compressed.
pub fn check_diff_id(want: &Digest, stored: &Digest, content: Option<io::Result<BlobDigest>>) -> Result<(), String> {
    match content {
        None if stored == want => Ok(()),
        None => Err(format!("its content hashes to {stored}, but the image config's diff_id is {want}")),
        Some(Ok(c)) if c.digest == *want => Ok(()),
        // A compressed layer's diff_id must be the digest of its content,
        // never of its stored bytes.
        _ if stored == want => Err(format!(
            "it is compressed, and its diff_id {stored} is the digest of its compressed bytes; docker checks the digest of \
             what it decompresses to"
        )),
        Some(Ok(c)) => Err(format!("it decompresses to content that hashes to {}, but the image config's diff_id is {want}", c.digest)),
        Some(Err(e)) => Err(format!("it looks compressed but cannot be decompressed ({e}); its diff_id cannot be checked")),
    }
}
