//! Reading an input file named on the command line or inside another
//! input: a regular file only (a FIFO would block forever, a device could
//! be endless), and no more than a limit, so a hostile input cannot make
//! us hang or fill memory. `/dev/null` reads as an empty file (nixpkgs
//! passes it as auto-layer's ignore file).

use std::io::{self, Read};
use std::path::Path;

/// JSON inputs a build writes itself (conf, graph, pipeline): large
/// closures make big ones, but not this big.
pub const JSON_LIMIT: u64 = 256 << 20;
/// A JSON input named inside another (a base json, a pipeline file).
pub const SMALL_JSON_LIMIT: u64 = 64 << 20;

fn is_dev_null(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    // By the device itself, not Linux's number for it (1,3; Darwin's is 3,2).
    meta.file_type().is_char_device() && std::fs::metadata("/dev/null").is_ok_and(|null| null.rdev() == meta.rdev())
}

/// Reads up to `buf.len()` bytes, fewer only at the end of `r`.
pub fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The whole of the regular file at `path`, if it holds at most `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = f.metadata()?;
    if is_dev_null(&meta) {
        return Ok(Vec::new());
    }
    if meta.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > limit {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than {limit} bytes")));
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    f.take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("grew past {limit} bytes while being read")));
    }
    Ok(out)
}

/// [`read_limited`] as text; invalid UTF-8 is an error.
pub fn read_limited_string(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_limited(path, limit)?).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"))
}

/// A reader over `len` bytes of `file` from `offset` that leaves the
/// file's shared position alone, so that members of one archive can be
/// read on several threads at once.
pub struct ReadAt<'a> {
    file: &'a std::fs::File,
    pos: u64,
    end: u64,
}

impl<'a> ReadAt<'a> {
    pub fn new(file: &'a std::fs::File, offset: u64, len: u64) -> ReadAt<'a> {
        ReadAt { file, pos: offset, end: offset.saturating_add(len) }
    }
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
