//! Directories that several layers of one image carry with different
//! owners or modes. Unpacking (Docker, containerd, podman, umoci) applies
//! layers in order and the last one's metadata wins, so a lower layer's
//! `/nix/store` of mode 0755 owned by root silently becomes a later
//! layer's 0700 owned by uid 1000, or the other way round — the conflict
//! nix2container's users meet with `perms`. Not an error (the image is
//! well formed): `verify` prints these as warnings.

use super::archive::Archive;
use super::oci::{CONFIGS as IMAGE_CONFIGS, DOCUMENTS, Dir};
use super::{Cancel, Outcome, Source, Target, VerifyError, read_json};
use crate::image::decode;
use crate::tar::python::DIRTYPE;
use crate::tar::reader::{Dialect, Reader, Streamed, TarError};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{self, Read};

/// At most this many shadowed directories are named, then a count.
const SHOWN: usize = 20;

/// The shadowed directories of every image in `target`, one line each.
pub fn warnings(target: &Target) -> Result<Vec<String>, VerifyError> {
    warnings_until(target, &Cancel::default())
}

/// [`warnings`], stopped by `cancel` as [`super::verify_until`] is.
pub fn warnings_until(target: &Target, cancel: &Cancel) -> Result<Vec<String>, VerifyError> {
    cancel.outcome(target, scan(target, cancel))
}

fn scan(target: &Target, cancel: &Cancel) -> Result<Vec<String>, VerifyError> {
    let mut out = Vec::new();
    match target {
        Target::DockerArchive { path, .. } => docker(&Archive::open_until(path, cancel)?, &mut out)?,
        Target::OciArchive { path, .. } => oci(&Archive::open_until(path, cancel)?, &mut out)?,
        Target::OciLayout { dir, .. } => oci(&Dir::new(dir, cancel)?, &mut out)?,
        Target::Path(path) if path.is_dir() && path.join("oci-layout").exists() => oci(&Dir::new(path, cancel)?, &mut out)?,
        // skopeo's dir: layouts (and any other directory) are not checked for shadowing.
        Target::Dir(_) => {}
        Target::Path(path) if path.is_dir() => {}
        Target::Path(path) => {
            let a = Archive::open_until(path, cancel)?;
            if a.contains("oci-layout") { oci(&a, &mut out)? } else { docker(&a, &mut out)? }
        }
    }
    Ok(out)
}

fn docker(a: &Archive, out: &mut Vec<String>) -> Result<(), VerifyError> {
    let (manifest, _, _) = read_json(a, "manifest.json", "the manifest")?;
    for (i, entry) in manifest.as_array().into_iter().flatten().enumerate() {
        let layers: Vec<String> =
            entry.get("Layers").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
        image(a, &format!("manifest.json[{i}]"), &layers, out)?;
    }
    Ok(())
}

fn oci(src: &dyn Source, out: &mut Vec<String>) -> Result<(), VerifyError> {
    let (index, _, _) = read_json(src, "index.json", "the index")?;
    oci_index(src, &index, "index.json", 0, out)
}

fn blob(v: &Value) -> Option<String> {
    let hex = v.get("digest")?.as_str()?.strip_prefix("sha256:")?;
    Some(format!("blobs/sha256/{hex}"))
}

fn oci_index(src: &dyn Source, index: &Value, what: &str, depth: usize, out: &mut Vec<String>) -> Result<(), VerifyError> {
    for (i, d) in index.get("manifests").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let Some(name) = blob(d) else { continue };
        // verify skips (and only hashes) entries of other media types.
        let media_type = d.get("mediaType").and_then(Value::as_str).unwrap_or_default();
        if !DOCUMENTS.contains(&media_type) {
            continue;
        }
        let (doc, _, _) = read_json(src, &name, &format!("{what}.manifests[{i}]"))?;
        if doc.get("manifests").is_some() && depth < 4 {
            oci_index(src, &doc, &name, depth + 1, out)?;
        } else if let Some(layers) = doc.get("layers").and_then(Value::as_array) {
            // Artifacts (attestations, SBOMs) carry documents, not filesystems.
            let config_type = doc.pointer("/config/mediaType").and_then(Value::as_str).unwrap_or_default();
            if doc.get("artifactType").is_some() || !IMAGE_CONFIGS.contains(&config_type) {
                continue;
            }
            let tar_layer =
                |l: &&Value| l.get("mediaType").and_then(Value::as_str).is_some_and(|t| t.contains("layer.v1.tar") || t.contains("rootfs.diff.tar"));
            let layers: Vec<String> = layers.iter().filter(tar_layer).filter_map(blob).collect();
            image(src, &format!("manifest {name}"), &layers, out)?;
        }
    }
    Ok(())
}

/// A directory as one layer carries it.
#[derive(Clone, PartialEq, Eq)]
struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
}

fn image(src: &dyn Source, which: &str, layers: &[String], out: &mut Vec<String>) -> Result<(), VerifyError> {
    let mut dirs: HashMap<String, (usize, Meta)> = HashMap::new();
    let mut found = Vec::new();
    let mut escaping = Vec::new();
    for (n, name) in layers.iter().enumerate() {
        let io_err = |e: io::Error| VerifyError::Invalid { image: src.image().into(), what: format!("layer {n} ({name}): {e}") };
        let (r, _) = src.open(name, &format!("layer {n} of {which}"))?;
        let mut r = io::BufReader::new(r);
        let mut head = [0u8; 8];
        let got = decode::read_head(&mut r, &mut head).map_err(io_err)?;
        let whole = io::Cursor::new(head[..got].to_vec()).chain(r);
        let decoded = decode::reader(decode::sniff(&head[..got]), whole).map_err(io_err)?;
        let mut archive = Reader::new(Streamed(decoded), Dialect::Go);
        let tar_err = |e: TarError| VerifyError::Invalid { image: src.image().into(), what: format!("layer {n} ({name}): {e}") };
        while let Some(entry) = archive.next_entry().map_err(tar_err)? {
            if let Some(why) = escapes(entry.name()) {
                escaping.push(format!("{which}: layer {n} ({name}): member {:?} {why}", String::from_utf8_lossy(entry.name())));
            }
            if entry.typeflag() != DIRTYPE {
                continue;
            }
            let path = String::from_utf8_lossy(entry.name()).split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/");
            let meta = Meta { uid: entry.header.uid, gid: entry.header.gid, mode: entry.header.mode & 0o7777 };
            match dirs.insert(path.clone(), (n, meta.clone())) {
                Some((m, before)) if m != n && before != meta => found.push(format!(
                    "{which}: directory /{path} is in layer {m} (uid {}, gid {}, mode {:04o}) and in layer {n} (uid {}, gid {}, mode {:04o}); \
                     unpacking keeps layer {n}'s",
                    before.uid, before.gid, before.mode, meta.uid, meta.gid, meta.mode
                )),
                _ => {}
            }
        }
    }
    let more = escaping.len().saturating_sub(SHOWN);
    out.extend(escaping.into_iter().take(SHOWN));
    if more > 0 {
        out.push(format!("{which}: and {more} more members named outside the root"));
    }
    let more = found.len().saturating_sub(SHOWN);
    out.extend(found.into_iter().take(SHOWN));
    if more > 0 {
        out.push(format!("{which}: and {more} more shadowed directories"));
    }
    Ok(())
}

/// Why a member's name reaches outside the layer's root, if it does:
/// `docker load` refuses a `..` that climbs out ("breakout"). An absolute
/// name is not one: nixpkgs' streamLayeredImage writes `/nix/store/...`,
/// and every unpacker joins it to the root.
fn escapes(name: &[u8]) -> Option<&'static str> {
    let mut depth = 0usize;
    for c in name.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".") {
        if c == b".." {
            if depth == 0 {
                return Some("climbs out of the root with .. (docker load refuses such a layer)");
            }
            depth -= 1;
        } else {
            depth += 1;
        }
    }
    None
}
