//! The closure graph as the SBOM needs it: beyond what layering reads
//! (paths, references, narSize), each path's narHash. Read from the same
//! inputs as [`crate::plan::graph`] (exportReferencesGraph, structured attrs,
//! `nix path-info --json`), or from a conf's `closure_graph` key, which
//! `conf --closure-graph` fills with exactly these entries.

use super::nar_hash;
use crate::plan::graph::{self, GraphError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The conf key holding the closure graph (our extension; nixpkgs' script
/// ignores it).
pub const CLOSURE_GRAPH_KEY: &str = "closure_graph";

#[derive(Debug, thiserror::Error)]
pub enum ClosureError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("{file}: {path}: {source}")]
    NarHash { file: String, path: String, source: nar_hash::NarHashError },
}

/// One store path of the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    /// The narHash as Nix wrote it (kept for `closure_graph`).
    pub nar_hash_as_written: Option<String>,
    /// Hex SHA-256 of the path's NAR serialisation.
    pub nar_hash: Option<String>,
    pub nar_size: Option<u64>,
    /// As given, self-references included.
    pub references: Vec<String>,
}

/// Store path → what the graph says of it.
pub type Closure = BTreeMap<String, PathInfo>;

/// Reads a graph file in any form [`graph::read_raw`] accepts.
pub fn read(file: &Path, key: Option<&str>) -> Result<Closure, ClosureError> {
    let name = file.display().to_string();
    let text = crate::input::read_limited(file, crate::input::JSON_LIMIT).map_err(|source| GraphError::Read { file: name.clone(), source })?;
    let value: Value = serde_json::from_slice(&text).map_err(|source| GraphError::Json { file: name.clone(), source })?;
    from_value(&value, key, &name)
}

/// The closure in `value`; `file` names it in messages.
pub fn from_value(value: &Value, key: Option<&str>, file: &str) -> Result<Closure, ClosureError> {
    // The layering reader checks the shape and gives the precise messages;
    // the entries it accepted are then found again for their narHash.
    let raw = graph::raw_nodes_from_value(value, key, file)?;
    let objects = entry_objects(value, key);
    let mut closure = Closure::new();
    for (node, obj) in raw.into_iter().zip(objects) {
        let as_written = obj.and_then(|o| o.get("narHash")).and_then(Value::as_str).map(str::to_string);
        let nar_hash = match &as_written {
            Some(h) => Some(nar_hash::to_hex(h).map_err(|source| ClosureError::NarHash { file: file.into(), path: node.path.clone(), source })?),
            None => None,
        };
        let nar_size = obj.and_then(|o| o.get("narSize")).and_then(Value::as_u64);
        if closure.contains_key(&node.path) {
            return Err(GraphError::Duplicate { file: file.into(), path: node.path }.into());
        }
        closure.insert(node.path, PathInfo { nar_hash_as_written: as_written, nar_hash, nar_size, references: node.references });
    }
    Ok(closure)
}

/// The entry objects of a graph value, in the order
/// [`graph::raw_nodes_from_value`] returns its nodes (which has already
/// accepted the value's shape).
fn entry_objects<'a>(value: &'a Value, key: Option<&str>) -> Vec<Option<&'a Map<String, Value>>> {
    let list = |items: &'a [Value]| items.iter().map(Value::as_object).collect();
    match value {
        Value::Array(items) => list(items),
        Value::Object(map) => {
            if let Some(Value::Array(items)) = key.and_then(|k| map.get(k)) {
                return list(items);
            }
            if key.is_none() {
                if let Some(Value::Array(items)) = map.get("graph") {
                    return list(items);
                }
                let lists: Vec<&Vec<Value>> = map.values().filter_map(Value::as_array).collect();
                if lists.len() == 1 {
                    return list(lists[0]);
                }
            }
            map.values().map(Value::as_object).collect()
        }
        _ => Vec::new(),
    }
}

/// The `closure_graph` value for the paths in `keep`: an
/// exportReferencesGraph-style list sorted by path, narHash as Nix wrote it.
pub fn to_json(closure: &Closure, keep: impl Fn(&str) -> bool) -> Value {
    let entries = closure
        .iter()
        .filter(|(path, _)| keep(path))
        .map(|(path, info)| {
            let mut e = Map::new();
            e.insert("path".into(), Value::String(path.clone()));
            if let Some(h) = &info.nar_hash_as_written {
                e.insert("narHash".into(), Value::String(h.clone()));
            }
            if let Some(s) = info.nar_size {
                e.insert("narSize".into(), Value::from(s));
            }
            e.insert("references".into(), info.references.iter().cloned().map(Value::String).collect());
            Value::Object(e)
        })
        .collect();
    Value::Array(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const H: &str = "sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s";
    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn every_graph_form_gives_the_hash() {
        let entry = json!({"path": "/nix/store/a-x", "narHash": H, "narSize": 5, "references": ["/nix/store/a-x"]});
        let forms = [
            (json!([entry]), None),
            (json!({"graph": [entry], "other": 1}), None),
            (json!({"g2": [entry]}), Some("g2")),
            (json!({"/nix/store/a-x": {"narHash": H, "narSize": 5, "references": ["/nix/store/a-x"]}}), None),
        ];
        for (v, key) in forms {
            let c = from_value(&v, key, "g.json").unwrap();
            let info = &c["/nix/store/a-x"];
            assert_eq!(info.nar_hash.as_deref(), Some(HEX), "{v}");
            assert_eq!(info.nar_size, Some(5));
            assert_eq!(to_json(&c, |_| true), json!([entry]));
        }
    }

    #[test]
    fn errors_name_the_file_and_path() {
        let bad = json!([{"path": "/nix/store/a-x", "narHash": "sha256:nope", "references": []}]);
        let e = from_value(&bad, None, "g.json").unwrap_err().to_string();
        assert!(e.contains("g.json") && e.contains("/nix/store/a-x") && e.contains("sha256:nope"), "{e}");
        let dup = json!([{"path": "/nix/store/a-x", "references": []}, {"path": "/nix/store/a-x", "references": []}]);
        assert!(from_value(&dup, None, "g.json").unwrap_err().to_string().contains("more than once"));
    }
}
