//! Closure graphs: the reference graph of a set of store paths, as Nix
//! exports it (`exportReferencesGraph`, structured attrs, `nix path-info
//! --json`), validated into an index-based DAG.

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("cannot read {file}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: invalid JSON")]
    Json { file: String, source: serde_json::Error },
    #[error("{file}: key {key:?} not found")]
    MissingKey { file: String, key: String },
    #[error("{file}: {what}")]
    Shape { file: String, what: String },
    #[error("{file}: entry {index}: {what}")]
    Entry { file: String, index: usize, what: String },
    #[error("{file}: path {path} is listed more than once")]
    Duplicate { file: String, path: String },
    #[error("{file}: {from} references {to}, which is not in the graph")]
    Dangling { file: String, from: String, to: String },
    #[error("{file}: reference cycle: {}", cycle.join(" -> "))]
    Cycle { file: String, cycle: Vec<String> },
}

/// One store path as found in the input, before validation.
#[derive(Debug, Clone)]
pub struct RawNode {
    pub path: String,
    /// As given, self-references and duplicates included.
    pub references: Vec<String>,
    pub nar_size: u64,
}

/// A validated closure graph: no duplicates, no dangling references, no
/// cycles other than self-references (which are dropped from `children`).
#[derive(Debug, Clone)]
pub struct Graph {
    pub paths: Vec<String>,
    pub nar_size: Vec<u64>,
    /// Non-self references, deduplicated, in first-occurrence order.
    pub children: Vec<Vec<u32>>,
    pub index: HashMap<String, u32>,
}

/// Reads a graph file: see [`raw_nodes_from_value`] for the accepted forms.
pub fn read_raw(file: &Path, key: Option<&str>) -> Result<Vec<RawNode>, GraphError> {
    let name = file.display().to_string();
    let text = crate::input::read_limited(file, crate::input::JSON_LIMIT).map_err(|source| GraphError::Read { file: name.clone(), source })?;
    parse_raw(&text, key, &name)
}

/// [`read_raw`] on bytes already read; `name` names them in messages.
pub fn parse_raw(text: &[u8], key: Option<&str>, name: &str) -> Result<Vec<RawNode>, GraphError> {
    if key.is_none() {
        if let Ok(entries) = serde_json::from_slice::<Vec<FastEntry>>(text) {
            return Ok(entries.into_iter().map(FastEntry::into_raw).collect());
        }
    }
    let value: Value = serde_json::from_slice(text).map_err(|source| GraphError::Json { file: name.to_string(), source })?;
    raw_nodes_from_value(&value, key, name)
}

/// The common case (an exportReferencesGraph list) parsed straight into
/// structs, skipping the generic JSON tree; anything unusual falls back to
/// the generic path, which also produces the precise error messages.
#[derive(serde::Deserialize)]
struct FastEntry {
    path: String,
    references: Vec<String>,
    #[serde(rename = "narSize", default)]
    nar_size: Option<u64>,
}

impl FastEntry {
    fn into_raw(self) -> RawNode {
        RawNode { path: self.path, references: self.references, nar_size: self.nar_size.unwrap_or(0) }
    }
}

/// Accepts a list of `{path, references, narSize?}` entries; an object
/// holding that list under `key` (default: `graph`, else its only
/// list-valued key); or `nix path-info --json` object form (path → info).
pub fn raw_nodes_from_value(value: &Value, key: Option<&str>, file: &str) -> Result<Vec<RawNode>, GraphError> {
    let shape = |what: &str| GraphError::Shape { file: file.to_string(), what: what.to_string() };
    match value {
        Value::Array(items) => parse_list(items, file),
        Value::Object(map) => {
            if let Some(key) = key {
                let inner = map.get(key).ok_or_else(|| GraphError::MissingKey { file: file.to_string(), key: key.to_string() })?;
                return match inner {
                    Value::Array(items) => parse_list(items, file),
                    _ => Err(shape(&format!("key {key:?} does not hold a list"))),
                };
            }
            if let Some(Value::Array(items)) = map.get("graph") {
                return parse_list(items, file);
            }
            let lists: Vec<_> = map.iter().filter(|(_, v)| v.is_array()).collect();
            if lists.len() == 1 {
                return parse_list(lists[0].1.as_array().unwrap(), file);
            }
            if !map.is_empty() && map.values().all(|v| v.is_object() || v.is_null()) {
                return parse_path_info_object(map, file);
            }
            if map.is_empty() {
                return Ok(Vec::new());
            }
            Err(shape(
                "expected a list of {path, references} entries, an object holding one (use a key), \
                 or `nix path-info --json` output",
            ))
        }
        _ => Err(shape("expected a JSON list or object")),
    }
}

fn parse_list(items: &[Value], file: &str) -> Result<Vec<RawNode>, GraphError> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let err = |what: String| GraphError::Entry { file: file.to_string(), index, what };
            let obj = item.as_object().ok_or_else(|| err("not an object".into()))?;
            let path = obj.get("path").and_then(Value::as_str).ok_or_else(|| err("missing string key \"path\"".into()))?;
            parse_entry(path.to_string(), obj, file, index)
        })
        .collect()
}

fn parse_path_info_object(map: &serde_json::Map<String, Value>, file: &str) -> Result<Vec<RawNode>, GraphError> {
    map.iter()
        .enumerate()
        .map(|(index, (path, info))| match info {
            Value::Object(obj) => parse_entry(path.clone(), obj, file, index),
            _ => Err(GraphError::Entry { file: file.to_string(), index, what: format!("{path}: no path info (invalid path?)") }),
        })
        .collect()
}

fn parse_entry(path: String, obj: &serde_json::Map<String, Value>, file: &str, index: usize) -> Result<RawNode, GraphError> {
    let err = |what: String| GraphError::Entry { file: file.to_string(), index, what: format!("{path}: {what}") };
    let references = match obj.get("references") {
        Some(Value::Array(refs)) => refs
            .iter()
            .map(|r| r.as_str().map(str::to_string).ok_or_else(|| err("a reference is not a string".into())))
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Null) | None => return Err(err("missing list key \"references\"".into())),
        Some(_) => return Err(err("\"references\" is not a list".into())),
    };
    let nar_size = match obj.get("narSize") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| err(format!("\"narSize\" {n} is not a non-negative integer")))?,
        Some(_) => return Err(err("\"narSize\" is not a number".into())),
    };
    Ok(RawNode { path, references, nar_size })
}

impl Graph {
    /// Validates raw nodes; `file` names the input in error messages.
    pub fn build(raw: &[RawNode], file: &str) -> Result<Graph, GraphError> {
        let mut index = HashMap::with_capacity(raw.len());
        for (i, node) in raw.iter().enumerate() {
            if index.insert(node.path.clone(), i as u32).is_some() {
                return Err(GraphError::Duplicate { file: file.to_string(), path: node.path.clone() });
            }
        }
        let mut children = Vec::with_capacity(raw.len());
        for (i, node) in raw.iter().enumerate() {
            let mut kids: Vec<u32> = Vec::with_capacity(node.references.len());
            for r in &node.references {
                let &j = index.get(r).ok_or_else(|| GraphError::Dangling { file: file.to_string(), from: node.path.clone(), to: r.clone() })?;
                if j as usize != i && !kids.contains(&j) {
                    kids.push(j);
                }
            }
            children.push(kids);
        }
        let graph =
            Graph { paths: raw.iter().map(|n| n.path.clone()).collect(), nar_size: raw.iter().map(|n| n.nar_size).collect(), children, index };
        if let Err(cycle) = topo_order(&graph.children) {
            return Err(GraphError::Cycle { file: file.to_string(), cycle: cycle.into_iter().map(|i| graph.paths[i as usize].clone()).collect() });
        }
        Ok(graph)
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    pub fn parents(&self) -> Vec<Vec<u32>> {
        parents_of(&self.children)
    }
}

pub fn parents_of(children: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let mut parents = vec![Vec::new(); children.len()];
    for (p, kids) in children.iter().enumerate() {
        for &c in kids {
            parents[c as usize].push(p as u32);
        }
    }
    parents
}

/// Parents-before-children order (Kahn), or one cycle as a node list.
pub fn topo_order(children: &[Vec<u32>]) -> Result<Vec<u32>, Vec<u32>> {
    let n = children.len();
    let mut indegree = vec![0u32; n];
    for kids in children {
        for &c in kids {
            indegree[c as usize] += 1;
        }
    }
    let mut order: Vec<u32> = (0..n as u32).filter(|&i| indegree[i as usize] == 0).collect();
    let mut head = 0;
    while head < order.len() {
        let v = order[head] as usize;
        head += 1;
        for &c in &children[v] {
            indegree[c as usize] -= 1;
            if indegree[c as usize] == 0 {
                order.push(c);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every node left has a parent left, so walking parents must loop.
    let left: Vec<bool> = indegree.iter().map(|&d| d > 0).collect();
    let parents = parents_of(children);
    let start = (0..n).find(|&i| left[i]).unwrap();
    let mut seen = vec![usize::MAX; n];
    let mut walk = Vec::new();
    let mut v = start;
    while seen[v] == usize::MAX {
        seen[v] = walk.len();
        walk.push(v as u32);
        v = *parents[v].iter().find(|&&p| left[p as usize]).unwrap() as usize;
    }
    let mut cycle: Vec<u32> = walk[seen[v]..].to_vec();
    cycle.reverse();
    cycle.push(cycle[0]);
    Err(cycle)
}

/// Everything reachable from `starts` along `edges`, starts included,
/// marking into `mark` with `stamp` (reused across calls to stay O(reach)).
pub fn reach(edges: &[Vec<u32>], starts: &[u32], mark: &mut [u32], stamp: u32, out: &mut Vec<u32>) {
    out.clear();
    for &s in starts {
        if mark[s as usize] != stamp {
            mark[s as usize] = stamp;
            out.push(s);
        }
    }
    let mut head = 0;
    while head < out.len() {
        let v = out[head] as usize;
        head += 1;
        for &c in &edges[v] {
            if mark[c as usize] != stamp {
                mark[c as usize] = stamp;
                out.push(c);
            }
        }
    }
}
