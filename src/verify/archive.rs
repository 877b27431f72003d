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
use crate::tar::reader::{Dialect, HEADER_BUDGET, Reader, Seekable, TarError};
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
    pub(super) cancel: super::Cancel,
}

/// Linux gives up after 40 symlinks too (ELOOP).
const MAX_HOPS: usize = 40;

impl Archive {
    pub fn open(path: &Path) -> Result<Archive, VerifyError> {
        Archive::open_until(path, &super::Cancel::default())
    }

    /// [`Self::open`], stopped by `cancel`: the decompression to the spool
    /// and every member read later check it.
    pub fn open_until(path: &Path, cancel: &super::Cancel) -> Result<Archive, VerifyError> {
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
        let source = BufReader::new(crate::stop::Cancellable { inner: file.try_clone().map_err(io_err)?, cancel });
        if let Some(mut dec) = decode::decompressor(&head[..n], source).map_err(io_err)? {
            let mut tmp = tempfile::NamedTempFile::new().map_err(io_err)?;
            // The spool takes disk: it holds what the archive's tar declares.
            let mut bound = TarBound::new(meta.len());
            let mut buf = vec![0u8; 64 * 1024];
            let mut out = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
            loop {
                // A small archive can inflate for long without another read.
                if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(VerifyError::Interrupted { image });
                }
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
        Ok(Archive { image, file, _spool: spool, nodes, cancel: cancel.clone() })
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
        let r = crate::stop::Cancellable { inner: f.take(size), cancel: &self.cancel };
        Ok((Box::new(BufReader::with_capacity(64 * 1024, r)), size))
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

fn index(image: &str, file: &File) -> Result<HashMap<Vec<u8>, Node>, VerifyError> {
    let io_err = |source| VerifyError::Io { image: image.into(), source };
    // Go's archive/tar, as docker and containerd read it: global pax
    // records are not applied to later members.
    let mut reader = Reader::new(Seekable::new(file).map_err(io_err)?, Dialect::Go);
    let mut nodes: HashMap<Vec<u8>, Node> = HashMap::new();
    let mut retained = 0usize;
    let mut members = 0usize;
    loop {
        let entry = reader.next_entry().map_err(|e| match e {
            TarError::Io(source) => VerifyError::Io { image: image.into(), source },
            TarError::NotTar(reason) => {
                VerifyError::NotTar { image: image.into(), reason: format!("the first block is not a tar header ({reason})") }
            }
            TarError::BadHeader { offset, reason } => VerifyError::Corrupt { image: image.into(), offset, reason },
            TarError::Truncated { offset, what } | TarError::TooLarge { offset, what } => {
                VerifyError::Corrupt { image: image.into(), offset, reason: what }
            }
        })?;
        let Some(e) = entry else { break };
        members += 1;
        let corrupt = |reason: String| VerifyError::Corrupt { image: image.into(), offset: e.header_offset, reason };
        retained += 256 + e.name().len() + e.header.linkname.len();
        let name =
            clean(e.name()).ok_or_else(|| corrupt(format!("member {:?} climbs out of the archive with ..", String::from_utf8_lossy(e.name()))))?;
        if !name.is_empty() {
            let node = match e.typeflag() {
                b'0' | 0 | b'7' => Node::File { offset: e.data_offset, size: e.size() },
                b'5' => Node::Dir,
                b'2' => Node::Symlink(e.header.linkname.into_owned()),
                b'1' => hardlink(&nodes, &name, &e.header.linkname),
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
        if retained > HEADER_BUDGET {
            return Err(corrupt(format!("its member headers hold more than {} MiB (a header bomb?)", HEADER_BUDGET >> 20)));
        }
    }
    if members == 0 {
        return Err(VerifyError::NotTar { image: image.into(), reason: "it holds no members".into() });
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
