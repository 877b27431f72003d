//! A tar archive indexed the way `docker load` sees it once unpacked:
//! member names are cleaned paths, a later member replaces an earlier one
//! of the same name, hard links bind to what their target was when they
//! were unpacked, and symlinks are resolved when a member is looked up.
//!
//! Only headers are read; data is read later, by offset, so the archive
//! must be seekable: a compressed one is first decompressed to a spool file.

use super::VerifyError;
use super::tar_bound::TarBound;
use crate::image::decode;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

#[derive(Debug, Clone)]
enum Node {
    File {
        offset: u64,
        size: u64,
    },
    Dir,
    Symlink(Vec<u8>),
    /// A hard link whose target was not a regular file when it was unpacked.
    BadHardlink {
        target: Vec<u8>,
        why: &'static str,
    },
    Other(&'static str),
}

pub(crate) struct Archive {
    pub image: String,
    file: File,
    _spool: Option<tempfile::NamedTempFile>,
    nodes: HashMap<Vec<u8>, Node>,
}

/// Names, link targets and extension headers kept while indexing.
const HEADER_BUDGET: usize = 16 << 20;
/// A pax header or GNU long name is read whole; real ones are tiny.
const MAX_EXTENSION: u64 = 1 << 20;
/// Linux gives up after 40 symlinks too (ELOOP).
const MAX_HOPS: usize = 40;

impl Archive {
    pub fn open(path: &Path) -> Result<Archive, VerifyError> {
        let image = path.display().to_string();
        let io_err = |source| VerifyError::Io { image: image.clone(), source };
        // Members are read out of order, and a FIFO would block forever.
        let meta = std::fs::metadata(path).map_err(io_err)?;
        if !meta.is_file() {
            return Err(VerifyError::Invalid { image, what: "not a regular file".into() });
        }
        let mut file = File::open(path).map_err(io_err)?;
        let mut head = [0u8; 8];
        let n = decode::read_head(&mut file, &mut head).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut spool = None;
        let source = BufReader::new(file.try_clone().map_err(io_err)?);
        if let Some(mut dec) = decode::decompressor(&head[..n], source).map_err(io_err)? {
            let mut tmp = tempfile::NamedTempFile::new().map_err(io_err)?;
            // The spool takes disk: it holds what the archive's tar declares.
            let mut bound = TarBound::new(meta.len());
            let mut buf = vec![0u8; 64 * 1024];
            let mut out = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
            loop {
                let n = match dec.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(VerifyError::NotTar { image, reason: format!("decompression failed: {e}") }),
                };
                if let Err(why) = bound.feed(&buf[..n]) {
                    return Err(VerifyError::Bomb { image, what: "the archive".into(), why });
                }
                out.write_all(&buf[..n]).map_err(io_err)?;
            }
            out.flush().map_err(io_err)?;
            drop(out);
            file = tmp.reopen().map_err(io_err)?;
            spool = Some(tmp);
        }
        let nodes = index(&image, &file)?;
        Ok(Archive { image, file, _spool: spool, nodes })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.nodes.contains_key(name.as_bytes())
    }

    /// The regular file `name` stands for, links followed; `what` says
    /// which member the caller wanted, for the error.
    pub fn open_member(&self, name: &str, what: &str) -> Result<(Box<dyn Read + '_>, u64), VerifyError> {
        let (offset, size, _) = self.resolve(name).map_err(|problem| match problem {
            Problem::Missing(m) if m == clean_lossy(name) => {
                VerifyError::Missing { image: self.image.clone(), member: format!("member {name}"), why: format!(" ({what})") }
            }
            problem => VerifyError::Link { image: self.image.clone(), member: format!("{what}, member {name},"), problem: problem.to_string() },
        })?;
        let mut f = &self.file;
        f.seek(SeekFrom::Start(offset)).map_err(|source| VerifyError::Io { image: self.image.clone(), source })?;
        Ok((Box::new(BufReader::with_capacity(64 * 1024, f.take(size))), size))
    }

    /// [`Self::open_member`] for readers on several threads at once.
    pub(crate) fn open_member_at(&self, name: &str) -> Option<crate::input::ReadAt<'_>> {
        let (offset, size, _) = self.resolve(name).ok()?;
        Some(crate::input::ReadAt::new(&self.file, offset, size))
    }

    /// The regular member `name` resolves to, when it does.
    pub fn resolved(&self, name: &str) -> Option<String> {
        self.resolve(name).ok().map(|(_, _, key)| String::from_utf8_lossy(&key).into_owned())
    }

    fn resolve(&self, name: &str) -> Result<(u64, u64, Vec<u8>), Problem> {
        let mut todo: VecDeque<Vec<u8>> = components(name.as_bytes()).collect();
        let mut cur: Vec<Vec<u8>> = Vec::new();
        let mut hops = 0;
        let mut last_link: Option<Vec<u8>> = None;
        while let Some(c) = todo.pop_front() {
            if c == b".." {
                if cur.pop().is_none() {
                    return Err(Problem::Outside(last_link.unwrap_or_default()));
                }
                continue;
            }
            cur.push(c);
            let key = cur.join(&b'/');
            match self.nodes.get(&key) {
                None => {
                    let whole: Vec<Vec<u8>> = cur.into_iter().chain(todo).collect();
                    return Err(Problem::Missing(String::from_utf8_lossy(&whole.join(&b'/')).into_owned()));
                }
                Some(Node::Symlink(target)) => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(Problem::Loop);
                    }
                    if target.starts_with(b"/") || target.is_empty() {
                        return Err(Problem::Outside(target.clone()));
                    }
                    cur.pop();
                    for t in components(target).collect::<Vec<_>>().into_iter().rev() {
                        todo.push_front(t);
                    }
                    last_link = Some(target.clone());
                }
                Some(Node::File { offset, size }) if todo.is_empty() => {
                    return Ok((*offset, *size, key));
                }
                Some(Node::File { .. }) => {
                    return Err(Problem::NotDir(String::from_utf8_lossy(&key).into_owned()));
                }
                Some(Node::Dir) if todo.is_empty() => {
                    return Err(Problem::Kind(String::from_utf8_lossy(&key).into_owned(), "a directory"));
                }
                Some(Node::Dir) => {}
                Some(Node::BadHardlink { target, why }) => {
                    return Err(Problem::Hardlink(String::from_utf8_lossy(&key).into_owned(), String::from_utf8_lossy(target).into_owned(), why));
                }
                Some(Node::Other(kind)) => {
                    return Err(Problem::Kind(String::from_utf8_lossy(&key).into_owned(), kind));
                }
            }
        }
        Err(Problem::Kind(".".into(), "the archive's root directory"))
    }
}

#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error("resolves to {0}, which is missing")]
    Missing(String),
    #[error("is a link to {:?}, which points outside the archive", String::from_utf8_lossy(.0))]
    Outside(Vec<u8>),
    #[error("is a symlink that loops (over 40 links followed)")]
    Loop,
    #[error("resolves through {0}, which is a file, not a directory")]
    NotDir(String),
    #[error("resolves to {0}, which is {1}, not a regular file")]
    Kind(String, &'static str),
    #[error("resolves to {0}, a hard link to {1}, which {2}")]
    Hardlink(String, String, &'static str),
}

fn components(name: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    name.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").map(<[u8]>::to_vec)
}

/// `a//b`, `./a/./b` and `/a/b` all name `a/b`; `..` is applied, and a
/// name that climbs out of the archive is `None` (docker refuses those).
fn clean(name: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in components(name) {
        if c == b".." {
            out.pop()?;
        } else {
            out.push(c);
        }
    }
    Some(out.join(&b'/'))
}

fn clean_lossy(name: &str) -> String {
    String::from_utf8_lossy(&clean(name.as_bytes()).unwrap_or_default()).into_owned()
}

/// What the next member's header is overridden with (pax `x`, GNU `L`/`K`).
/// Global pax headers (`g`) are skipped: Go's archive/tar, which docker
/// uses, does not apply them to later members either.
#[derive(Default)]
struct Pending {
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
}

fn index(image: &str, file: &File) -> Result<HashMap<Vec<u8>, Node>, VerifyError> {
    let io_err = |source| VerifyError::Io { image: image.into(), source };
    let len = file.metadata().map_err(io_err)?.len();
    let mut r = BufReader::with_capacity(64 * 1024, file);
    let mut pos = 0u64;
    let mut nodes: HashMap<Vec<u8>, Node> = HashMap::new();
    let mut retained = 0usize;
    let mut pending = Pending::default();
    loop {
        let at = pos;
        let corrupt = |reason: String| {
            if at == 0 {
                VerifyError::NotTar { image: image.into(), reason: format!("the first block is not a tar header ({reason})") }
            } else {
                VerifyError::Corrupt { image: image.into(), offset: at, reason }
            }
        };
        let mut block = [0u8; 512];
        let got = decode::read_head(&mut r, &mut block).map_err(io_err)?;
        if got == 0 && at > 0 {
            break;
        }
        if got < 512 {
            return Err(corrupt("the archive ends inside a header".into()));
        }
        pos += 512;
        if block.iter().all(|&b| b == 0) {
            if at == 0 {
                return Err(corrupt("it holds no members".into()));
            }
            break;
        }
        let unsigned: u64 = block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) }).sum();
        let signed: i64 = block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i64::from(b as i8) }).sum();
        let header = tar::Header::from_byte_slice(&block);
        let cksum = header.cksum().map_err(|e| corrupt(e.to_string()))?;
        if u64::from(cksum) != unsigned && i64::from(cksum) != signed {
            return Err(corrupt("header checksum mismatch".into()));
        }
        let size = match pending.size.take() {
            Some(s) => s,
            None => header.entry_size().map_err(|e| corrupt(e.to_string()))?,
        };
        let typeflag = block[156];
        // Links, devices, directories and FIFOs carry no data, whatever
        // their size field says.
        let has_data = !matches!(typeflag, b'1'..=b'6');
        let end = pos.checked_add(size).filter(|&e| e <= len);
        let Some(end) = end.filter(|_| has_data).or((!has_data).then_some(pos)) else {
            return Err(corrupt(format!("a member of {size} bytes runs past the end of the archive")));
        };
        let extension = |r: &mut BufReader<&File>| -> Result<Vec<u8>, VerifyError> {
            if size > MAX_EXTENSION {
                return Err(corrupt(format!("an extended header of {size} bytes is implausibly large")));
            }
            let mut v = vec![0u8; size as usize];
            r.read_exact(&mut v).map_err(io_err)?;
            Ok(v)
        };
        match typeflag {
            b'x' => {
                let data = extension(&mut r)?;
                retained += data.len();
                for rec in tar::PaxExtensions::new(&data) {
                    let rec = rec.map_err(|e| corrupt(format!("bad pax record: {e}")))?;
                    match rec.key_bytes() {
                        b"path" => pending.name = Some(rec.value_bytes().to_vec()),
                        b"linkpath" => pending.link = Some(rec.value_bytes().to_vec()),
                        b"size" => {
                            let v = std::str::from_utf8(rec.value_bytes()).ok().and_then(|s| s.parse().ok());
                            pending.size = Some(v.ok_or_else(|| corrupt("bad pax size record".into()))?);
                        }
                        _ => {}
                    }
                }
            }
            b'L' | b'K' => {
                let mut data = extension(&mut r)?;
                if let Some(nul) = data.iter().position(|&b| b == 0) {
                    data.truncate(nul);
                }
                retained += data.len();
                if typeflag == b'L' { pending.name = Some(data) } else { pending.link = Some(data) }
            }
            b'g' => {}
            _ => {
                let raw_name = pending.name.take().unwrap_or_else(|| header.path_bytes().into_owned());
                let link = pending.link.take().unwrap_or_else(|| header.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default());
                retained += 256 + raw_name.len() + link.len();
                let name = clean(&raw_name)
                    .ok_or_else(|| corrupt(format!("member {:?} climbs out of the archive with ..", String::from_utf8_lossy(&raw_name))))?;
                if !name.is_empty() {
                    let node = match typeflag {
                        0 if raw_name.ends_with(b"/") => Node::Dir,
                        b'0' | 0 | b'7' => Node::File { offset: pos, size },
                        b'5' => Node::Dir,
                        b'2' => Node::Symlink(link),
                        b'1' => hardlink(&nodes, &name, &link),
                        b'3' => Node::Other("a character device"),
                        b'4' => Node::Other("a block device"),
                        b'6' => Node::Other("a FIFO"),
                        b'S' => Node::Other("a GNU sparse file"),
                        _ => Node::Other("a member of an unknown type"),
                    };
                    // Unpacking creates parent directories that have no
                    // member of their own; a link may point at one.
                    let mut parent = &name[..];
                    while let Some(slash) = parent.iter().rposition(|&b| b == b'/') {
                        parent = &parent[..slash];
                        if nodes.contains_key(parent) {
                            break;
                        }
                        // Counted: a deep name makes one key per level.
                        retained += 64 + parent.len();
                        nodes.insert(parent.to_vec(), Node::Dir);
                    }
                    nodes.insert(name, node);
                }
            }
        }
        if retained > HEADER_BUDGET {
            return Err(corrupt(format!("its member headers hold more than {} MiB (a header bomb?)", HEADER_BUDGET >> 20)));
        }
        if matches!(typeflag, b'x' | b'L' | b'K') {
            // extension() read the data; skip only the padding.
            pos += size;
        }
        let next = if has_data { end.div_ceil(512).saturating_mul(512).min(len) } else { pos };
        r.seek_relative((next - pos) as i64).map_err(io_err)?;
        pos = next;
    }
    Ok(nodes)
}

/// Unpacking replaces `name` first, then links it to what its target is
/// at that moment (intermediate symlinks aside): a later member replacing
/// the target does not change the link.
fn hardlink(nodes: &HashMap<Vec<u8>, Node>, name: &[u8], target: &[u8]) -> Node {
    let bad = |why| Node::BadHardlink { target: target.to_vec(), why };
    let Some(t) = clean(target).filter(|t| !t.is_empty()) else {
        return bad("points outside the archive");
    };
    if t == name {
        return bad("is the link itself");
    }
    match nodes.get(&t) {
        Some(n @ (Node::File { .. } | Node::Symlink(_))) => n.clone(),
        Some(Node::Dir) => bad("is a directory"),
        Some(Node::BadHardlink { why, .. }) => bad(why),
        Some(Node::Other(kind)) => bad(kind),
        None => bad("is not an earlier member"),
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn names_are_cleaned_like_paths() {
        let c = |s: &str| clean(s.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(c("./a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(c("/a/b/").as_deref(), Some("a/b"));
        assert_eq!(c("a/x/../b").as_deref(), Some("a/b"));
        assert_eq!(c("./").as_deref(), Some(""));
        assert_eq!(c("a/../../b"), None);
    }
}
