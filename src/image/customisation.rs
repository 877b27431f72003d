//! The customisation layer as nixpkgs prepares it: `layer.tar` and the
//! `checksum` that `sha256sum` wrote beside it. Every writer checks the tar
//! against that checksum while copying it, with the same words.

use super::ImageError;
use crate::conf::Conf;
use crate::digest::{BlobDigest, Digest};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub struct Customisation {
    /// The directory as the conf spells it (its history comment).
    pub as_written: String,
    pub tar_path: PathBuf,
    pub checksum: Digest,
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl Customisation {
    /// Reads the checksum file and the tar's metadata; the tar's bytes are
    /// checked while a writer copies them.
    pub fn load(conf: &Conf) -> Result<Customisation, ImageError> {
        let (as_written, dir) = &conf.customisation_layer;
        let fail = |what: String| ImageError::Customisation { dir: dir.clone(), what };
        let checksum_path = dir.join("checksum");
        // A checksum is 65 bytes: a FIFO would block, a huge file fill memory.
        let text = crate::input::read_limited(&checksum_path, 1024).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => fail(format!("{} does not hold a sha256 (64 lowercase hex digits): it is {e}", checksum_path.display())),
            _ => fail(format!("cannot read {}: {e}", checksum_path.display())),
        })?;
        let text = String::from_utf8_lossy(&text).trim().to_string();
        let checksum = Digest::from_hex(&text).map_err(|_| {
            let shown: String = text.chars().take(80).collect();
            fail(format!("{} does not hold a sha256 (64 lowercase hex digits): {:?}", checksum_path.display(), shown))
        })?;
        let tar_path = dir.join("layer.tar");
        let meta = std::fs::symlink_metadata(&tar_path).map_err(|e| fail(format!("cannot read {}: {e}", tar_path.display())))?;
        if !meta.file_type().is_file() {
            return Err(fail(format!("{} is not a regular file", tar_path.display())));
        }
        Ok(Customisation {
            as_written: as_written.clone(),
            tar_path,
            checksum,
            size: meta.len(),
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
        })
    }

    /// The layer's diff_id and length as the checksum file promises them.
    pub fn promised(&self) -> BlobDigest {
        BlobDigest { digest: self.checksum, size: self.size }
    }

    pub fn dir(&self) -> &Path {
        self.tar_path.parent().unwrap_or(&self.tar_path)
    }

    pub fn fail(&self, what: String) -> ImageError {
        ImageError::Customisation { dir: self.dir().to_path_buf(), what }
    }

    pub fn read_failed(&self, e: io::Error) -> ImageError {
        self.fail(format!("cannot read {}: {e}", self.tar_path.display()))
    }

    /// docker would hash what a compressed tar decompresses to; nixpkgs'
    /// checksum is of the uncompressed tar it makes. Either way the layer
    /// would lie, so a compressed `layer.tar` is refused from its first bytes.
    pub fn refuse_compressed(&self, head: &[u8]) -> Result<(), ImageError> {
        if super::decode::sniff(head).is_compressed() {
            return Err(self.fail(format!(
                "{} is compressed; the customisation layer must be the uncompressed tar its checksum names",
                self.tar_path.display()
            )));
        }
        Ok(())
    }

    /// The tar's bytes, as a writer hashed them, against the checksum file.
    pub fn check(&self, got: &Digest) -> Result<(), ImageError> {
        if *got != self.checksum {
            return Err(
                self.fail(format!("layer.tar hashes to {got}, but its checksum file says {}; rebuild the customisation layer", self.checksum.hex()))
            );
        }
        Ok(())
    }

    /// `gettarinfo` fills the member's owner names from this machine's user
    /// and group databases.
    pub fn account_names(&self) -> (String, String) {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(self.uid as u32)).ok().flatten().map(|u| u.name);
        let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(self.gid as u32)).ok().flatten().map(|g| g.name);
        (user.unwrap_or_default(), group.unwrap_or_default())
    }
}
