//! Explicit layers, known when Nix evaluates (`buildLayer`, as
//! nix2container's): a JSON file naming a layer's store paths, the owners
//! and time its tar was made with, its digests, and the layers nested in
//! it (whose paths it leaves out). Each is built by a derivation of its
//! own, so Nix and its caches keep its digests, and an image that uses it
//! puts it first, before the rest of its closure is layered.

use crate::conf::LayerDigest;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LayerSpecError {
    #[error("cannot read layer file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("layer file {path} is not valid JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("layer file {path}: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error("layer file {path} nests itself (through {through})")]
    Cycle { path: PathBuf, through: PathBuf },
}

/// The owners and time a layer's tar was made with: its digests are only
/// valid for an image that uses the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub uid: u32,
    pub gid: u32,
    pub uname: String,
    pub gname: String,
    /// As `date -Iseconds` prints it in UTC (what the conf records).
    pub mtime: String,
}

#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub file: PathBuf,
    pub paths: Vec<String>,
    pub nested: Vec<PathBuf>,
    pub stamp: Stamp,
    /// The `perms` rules its tar was made with, as given (the conf's
    /// shape): an image that uses the layer applies them too.
    pub perms: Vec<Value>,
    pub digest: Option<LayerDigest>,
}

/// A layer file's format version: a layer file written by another
/// version is refused rather than misread.
const VERSION: u64 = 1;

impl LayerSpec {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "layered-image-layer": VERSION,
            "paths": self.paths,
            "layers": self.nested.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "uid": self.stamp.uid,
            "gid": self.stamp.gid,
            "uname": self.stamp.uname,
            "gname": self.stamp.gname,
            "mtime": self.stamp.mtime,
            "digest": self.digest.as_ref().map_or(Value::Null, LayerDigest::to_json),
        });
        // Absent without rules: the file of a layer without perms stays as it was.
        if !self.perms.is_empty() {
            v["perms"] = Value::Array(self.perms.clone());
        }
        v
    }

    pub fn read(path: &Path) -> Result<LayerSpec, LayerSpecError> {
        let text = crate::input::read_limited(path, 64 << 20).map_err(|source| LayerSpecError::Read { path: path.into(), source })?;
        let v: Value = serde_json::from_slice(&text).map_err(|source| LayerSpecError::Json { path: path.into(), source })?;
        let bad = |what: &str| LayerSpecError::Invalid { path: path.into(), what: what.into() };
        if v.get("layered-image-layer").and_then(Value::as_u64) != Some(VERSION) {
            return Err(bad("not a layer file of this version of layered-image (key \"layered-image-layer\" must be 1)"));
        }
        let strings = |key: &str| -> Result<Vec<String>, LayerSpecError> {
            v.get(key)
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
                .ok_or_else(|| bad(&format!("key \"{key}\" must be a list of strings")))
        };
        let id = |key: &str| -> Result<u32, LayerSpecError> {
            v.get(key).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| bad(&format!("key \"{key}\" must be an id")))
        };
        let text = |key: &str| -> Result<String, LayerSpecError> {
            v.get(key).and_then(Value::as_str).map(str::to_string).ok_or_else(|| bad(&format!("key \"{key}\" must be a string")))
        };
        let digest = match v.get("digest") {
            None | Some(Value::Null) => None,
            Some(d) => Some(crate::conf::parse_layer_digest(d).ok_or_else(|| bad("key \"digest\" is not a layer digest"))?),
        };
        let perms = match v.get("perms") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(rules)) if rules.iter().all(Value::is_object) => rules.clone(),
            Some(_) => return Err(bad("key \"perms\" must be a list of rule objects")),
        };
        let dir = path.parent().unwrap_or(Path::new(""));
        Ok(LayerSpec {
            file: path.into(),
            paths: strings("paths")?,
            // Relative to the file that names them, as every path inside a JSON input.
            nested: strings("layers")?.into_iter().map(|p| dir.join(p)).collect(),
            stamp: Stamp { uid: id("uid")?, gid: id("gid")?, uname: text("uname")?, gname: text("gname")?, mtime: text("mtime")? },
            perms,
            digest,
        })
    }
}

/// The layers `files` name, each preceded by the layers nested in it
/// (depth first), each layer file once.
pub fn flatten(files: &[PathBuf]) -> Result<Vec<LayerSpec>, LayerSpecError> {
    let mut out = Vec::new();
    let mut done = HashSet::new();
    for f in files {
        visit(f, &mut Vec::new(), &mut done, &mut out)?;
    }
    Ok(out)
}

fn visit(file: &Path, stack: &mut Vec<PathBuf>, done: &mut HashSet<PathBuf>, out: &mut Vec<LayerSpec>) -> Result<(), LayerSpecError> {
    let key = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    if done.contains(&key) {
        return Ok(());
    }
    if let Some(first) = stack.iter().position(|p| *p == key) {
        return Err(LayerSpecError::Cycle { path: file.into(), through: stack[first..].last().cloned().unwrap_or_default() });
    }
    let spec = LayerSpec::read(file)?;
    stack.push(key.clone());
    for nested in &spec.nested {
        visit(nested, stack, done, out)?;
    }
    stack.pop();
    done.insert(key);
    out.push(spec);
    Ok(())
}
