//! The conf.json schema that nixpkgs' stream script reads, in both the seed
//! form (no `mtime`: files get `created`) and the newest one (`mtime`,
//! uid/gid as numbers or strings, `"now"` meaning one instant for both).

use crate::digest::{BlobDigest, Digest};
use crate::layer::{Stamp, StorePath};
use crate::time::{self, DateTime, TimeError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{path}: the conf must be a JSON object")]
    NotObject { path: PathBuf },
    #[error("{path}: missing key \"{key}\"")]
    Missing { path: PathBuf, key: &'static str },
    #[error("{path}: key \"{key}\" must be {expected}, found {found}")]
    Type { path: PathBuf, key: String, expected: &'static str, found: String },
    #[error("{path}: key \"{key}\": {source}")]
    Time { path: PathBuf, key: &'static str, source: TimeError },
    #[error("{path}: key \"{key}\": {value} is not a valid id (0..=4294967295)")]
    Id { path: PathBuf, key: &'static str, value: String },
    #[error("{path}: {source}")]
    Perms { path: PathBuf, source: crate::layer::perms::PermsError },
    #[error("{path}: {source}")]
    Users { path: PathBuf, source: crate::image::users::UsersError },
    #[error("{path}: store path {store_path:?} {problem} (store_dir is {store_dir:?})")]
    StorePath { path: PathBuf, store_path: String, store_dir: String, problem: &'static str },
}

/// A parsed, validated conf.
#[derive(Debug, Clone)]
pub struct Conf {
    pub architecture: Value,
    /// The CPU variant (`v7` for 32-bit ARM), from the base json's
    /// `variant` as newer nixpkgs writes it; `""` (its default off ARM)
    /// and an absent key are none.
    pub variant: Option<String>,
    pub config: Map<String, Value>,
    pub created: DateTime,
    pub stamp: Stamp,
    pub store_dir: String,
    pub from_image: Option<PathBuf>,
    pub store_layers: Vec<Vec<StorePath>>,
    /// As written (history comment) and resolved (to read).
    pub customisation_layer: (String, PathBuf),
    pub repo_tag: String,
    /// Our extension, `store_layer_digests`: each store layer's sha256 and
    /// length, computed earlier (e.g. at build time) so that streaming
    /// reads every layer once. Still verified while streaming. nixpkgs'
    /// script ignores the key.
    /// One entry per store layer; `null` where a layer's digest is not
    /// known (yet).
    pub store_layer_digests: Vec<Option<LayerDigest>>,
    /// Our extension, `customisation_layer_digest`: the customisation
    /// layer's compressed digests (its own digest is in its checksum file),
    /// so that `copy` knows every blob before reading one.
    pub customisation_layer_digest: Option<LayerDigest>,
    /// Our extension `users`: accounts written in one more layer, after
    /// the customisation layer (see [`crate::image::users`]).
    pub users: Option<crate::image::users::Users>,
}

/// A layer's identity: the sha256 and length of its tar, and of the blobs
/// it compresses to, keyed by [`Compression::key`](crate::blob::compress::Compression::key).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayerDigest {
    pub digest: Digest,
    pub size: u64,
    pub compressed: BTreeMap<String, BlobDigest>,
}

impl LayerDigest {
    /// The uncompressed tar's digest and length: the layer's diff_id.
    pub fn tar(&self) -> BlobDigest {
        BlobDigest { digest: self.digest, size: self.size }
    }

    pub fn to_json(&self) -> Value {
        let mut obj = serde_json::json!({"sha256": self.digest.hex(), "size": self.size});
        if !self.compressed.is_empty() {
            let blobs: Map<String, Value> =
                self.compressed.iter().map(|(k, b)| (k.clone(), serde_json::json!({"sha256": b.digest.hex(), "size": b.size}))).collect();
            obj["compressed"] = Value::Object(blobs);
        }
        obj
    }
}

/// The conf key of [`Conf::store_layer_digests`].
pub const DIGESTS_KEY: &str = "store_layer_digests";
/// The conf key of [`Conf::customisation_layer_digest`].
pub const CUSTOMISATION_DIGEST_KEY: &str = "customisation_layer_digest";

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

struct Reader<'a> {
    path: &'a Path,
    obj: &'a Map<String, Value>,
}

impl Reader<'_> {
    fn get(&self, key: &'static str) -> Result<&Value, ConfError> {
        self.obj.get(key).ok_or(ConfError::Missing { path: self.path.into(), key })
    }
    fn type_err(&self, key: &str, expected: &'static str, found: &Value) -> ConfError {
        ConfError::Type { path: self.path.into(), key: key.into(), expected, found: describe(found) }
    }
    fn string(&self, key: &'static str) -> Result<&str, ConfError> {
        let v = self.get(key)?;
        v.as_str().ok_or_else(|| self.type_err(key, "a string", v))
    }
    fn time(&self, key: &'static str, now: DateTime) -> Result<DateTime, ConfError> {
        time::parse_conf_time(self.string(key)?, now).map_err(|source| ConfError::Time { path: self.path.into(), key, source })
    }
    /// Python's `int(x)` on a JSON number or a decimal string.
    fn id(&self, key: &'static str) -> Result<u64, ConfError> {
        let v = self.get(key)?;
        let text = match v {
            // int() of an integral float is that integer; a fraction is
            // surely a mistake here.
            Value::Number(n) => match n.to_string().parse::<f64>() {
                Ok(f) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) && n.to_string().contains(['.', 'e', 'E']) => {
                    format!("{f:.0}")
                }
                _ => n.to_string(),
            },
            Value::String(s) => s.trim().trim_start_matches('+').replace('_', ""),
            other => return Err(self.type_err(key, "a number or a numeric string", other)),
        };
        text.parse::<u32>().map(u64::from).map_err(|_| ConfError::Id { path: self.path.into(), key, value: v.to_string() })
    }
}

/// pathlib's normalisation: repeated slashes and `.` components vanish.
fn components(s: &str) -> Vec<&str> {
    s.split('/').filter(|c| !c.is_empty() && *c != ".").collect()
}

impl Conf {
    /// Reads and validates a conf file. Relative paths in it are taken
    /// relative to the conf's own directory (nixpkgs only writes absolute
    /// ones); `now` is the instant `"now"` stands for.
    pub fn load(path: &Path, now: DateTime) -> Result<Conf, ConfError> {
        let text = crate::input::read_limited(path, crate::input::JSON_LIMIT).map_err(|source| ConfError::Read { path: path.into(), source })?;
        Conf::parse(&text, path, now)
    }

    /// [`Conf::load`] on bytes already read: `path` names the conf in
    /// messages and anchors its relative paths. Touches no file (the fuzz
    /// target relies on that).
    pub fn parse(text: &[u8], path: &Path, now: DateTime) -> Result<Conf, ConfError> {
        let value: Value = serde_json::from_slice(text).map_err(|source| ConfError::Json { path: path.into(), source })?;
        let obj = value.as_object().ok_or(ConfError::NotObject { path: path.into() })?;
        let r = Reader { path, obj };
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() { p.to_path_buf() } else { base_dir.join(p) }
        };

        let architecture = r.get("architecture")?.clone();
        let variant = match obj.get("variant") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(r.type_err("variant", "a string", other)),
        };
        let config = match r.get("config")? {
            Value::Object(m) => m.clone(),
            other => return Err(r.type_err("config", "an object", other)),
        };
        let created = r.time("created", now)?;
        // The seed schema has no "mtime": files get the creation time.
        let mtime = if obj.contains_key("mtime") { r.time("mtime", now)? } else { created };
        let mut stamp = Stamp {
            uid: r.id("uid")?,
            gid: r.id("gid")?,
            uname: r.string("uname")?.to_string(),
            gname: r.string("gname")?.to_string(),
            mtime: mtime.timestamp(),
            perms: Default::default(),
        };
        let store_dir = r.string("store_dir")?.to_string();
        let from_image = match r.get("from_image")? {
            Value::Null => None,
            Value::String(s) => Some(resolve(s)),
            other => return Err(r.type_err("from_image", "null or a string", other)),
        };
        let layers = match r.get("store_layers")? {
            Value::Array(a) => a,
            other => {
                return Err(r.type_err("store_layers", "a list of lists of store paths", other));
            }
        };
        let mut store_layers = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            let key = format!("store_layers[{i}]");
            let items = layer.as_array().ok_or_else(|| r.type_err(&key, "a list of store paths", layer))?;
            let mut paths = Vec::with_capacity(items.len());
            for (j, item) in items.iter().enumerate() {
                let s = item.as_str().ok_or_else(|| r.type_err(&format!("{key}[{j}]"), "a string", item))?;
                paths.push(store_path(path, &store_dir, s, resolve(s))?);
            }
            store_layers.push(paths);
        }
        // Our extensions `perms` and `users` (docs/perms.md); absent, the
        // image is nixpkgs'.
        if let Some(v) = obj.get("perms") {
            let names: std::collections::HashSet<&[u8]> = store_layers.iter().flatten().map(|p: &StorePath| &p.member_name[..]).collect();
            let in_image = |m: &[u8]| names.contains(m);
            let member_name = |s: &str| store_path(path, &store_dir, s, PathBuf::new()).map(|p| p.member_name).map_err(|e| e.to_string());
            stamp.perms = crate::layer::perms::parse(v, member_name, in_image).map_err(|source| ConfError::Perms { path: path.into(), source })?;
        }
        let users = match obj.get("users") {
            None => None,
            Some(v) => Some(crate::image::users::Users::parse(v).map_err(|source| ConfError::Users { path: path.into(), source })?),
        };
        let custom = r.string("customisation_layer")?.to_string();
        let custom_path = resolve(&custom);
        Ok(Conf {
            architecture,
            variant,
            config,
            created,
            stamp,
            store_dir,
            from_image,
            store_layers,
            customisation_layer: (custom, custom_path),
            users,
            repo_tag: r.string("repo_tag")?.to_string(),
            store_layer_digests: digests(&r, layers.len())?,
            customisation_layer_digest: match obj.get(CUSTOMISATION_DIGEST_KEY) {
                None => None,
                Some(v) => Some(layer_digest(&r, CUSTOMISATION_DIGEST_KEY.into(), v, LAYER_DIGEST_SHAPE)?),
            },
        })
    }
}

const LAYER_DIGEST_SHAPE: &str = "{\"sha256\": \"<64 hex>\", \"size\": N, \"compressed\": {KEY: {\"sha256\": \"<64 hex>\", \"size\": N}}}";

fn digests(r: &Reader<'_>, n_layers: usize) -> Result<Vec<Option<LayerDigest>>, ConfError> {
    let Some(v) = r.obj.get(DIGESTS_KEY) else {
        return Ok(vec![None; n_layers]);
    };
    let expected = "a list of {\"sha256\": \"<64 hex>\", \"size\": N} or null, one per store layer";
    let items = v.as_array().filter(|a| a.len() == n_layers).ok_or_else(|| r.type_err(DIGESTS_KEY, expected, v))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Null => Ok(None),
            item => layer_digest(r, format!("{DIGESTS_KEY}[{i}]"), item, expected).map(Some),
        })
        .collect()
}

/// A layer digest as [`LayerDigest::to_json`] writes it.
pub fn parse_layer_digest(v: &Value) -> Option<LayerDigest> {
    let own = blob_digest(v)?;
    let mut compressed = BTreeMap::new();
    match v.get("compressed") {
        None => {}
        Some(Value::Object(blobs)) => {
            for (k, b) in blobs {
                compressed.insert(k.clone(), blob_digest(b)?);
            }
        }
        Some(_) => return None,
    }
    Some(LayerDigest { digest: own.digest, size: own.size, compressed })
}

fn blob_digest(v: &Value) -> Option<BlobDigest> {
    let digest = Digest::from_hex(v.get("sha256").and_then(Value::as_str)?).ok()?;
    Some(BlobDigest { digest, size: v.get("size").and_then(Value::as_u64)? })
}

fn layer_digest(r: &Reader<'_>, key: String, item: &Value, expected: &'static str) -> Result<LayerDigest, ConfError> {
    let bad = |key: &str, found: &Value| r.type_err(key, expected, found);
    let own = blob_digest(item).ok_or_else(|| bad(&key, item))?;
    let mut compressed = BTreeMap::new();
    match item.get("compressed") {
        None => {}
        Some(Value::Object(blobs)) => {
            for (k, b) in blobs {
                compressed.insert(k.clone(), blob_digest(b).ok_or_else(|| bad(&format!("{key}.compressed.{k}"), b))?);
            }
        }
        Some(other) => return Err(bad(&format!("{key}.compressed"), other)),
    }
    Ok(LayerDigest { digest: own.digest, size: own.size, compressed })
}

/// nixpkgs only asserts `path.startswith(store_dir)`; that lets
/// `/nix/store-evil` and `/nix/store/../../etc` through, so the check here
/// is by path components.
pub fn store_path(conf: &Path, store_dir: &str, s: &str, fs_path: PathBuf) -> Result<StorePath, ConfError> {
    let fail = |problem| ConfError::StorePath { path: conf.into(), store_path: s.into(), store_dir: store_dir.into(), problem };
    if Path::new(s).components().any(|c| c == Component::ParentDir) {
        return Err(fail("contains '..'"));
    }
    let dir = components(store_dir);
    let parts = components(s);
    if s.starts_with('/') != store_dir.starts_with('/') || parts.len() <= dir.len() || parts[..dir.len()] != dir[..] {
        return Err(fail("is not inside the store directory"));
    }
    let mut member_name = Vec::with_capacity(s.len() + 1);
    for part in &parts {
        member_name.push(b'/');
        member_name.extend_from_slice(part.as_bytes());
    }
    Ok(StorePath { as_written: s.to_string(), fs_path, member_name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_paths_are_checked_by_component() {
        let conf = Path::new("conf.json");
        let ok = store_path(conf, "/nix/store", "/nix//store/./abc-x/", PathBuf::new()).unwrap();
        assert_eq!(ok.member_name, b"/nix/store/abc-x");
        for bad in ["/nix/store-evil/x", "/nix/store", "/nix/store/../etc", "nix/store/abc", "/etc/passwd"] {
            assert!(store_path(conf, "/nix/store", bad, PathBuf::new()).is_err(), "{bad}");
        }
    }
}
