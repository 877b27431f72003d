//! nixpkgs' `auto-layer.py`: the largest store paths become layer
//! "primaries" one by one; every path is grouped by the set of primaries
//! that claim it, until one more primary would exceed the layer limit.
//!
//! The reference copies the whole split and rebuilds every set each round;
//! here a round touches only the new primary's dependencies, and the new
//! layer id of a dependency depends only on its old id, so it is computed
//! once per distinct old id.

use crate::plan::graph::{Graph, parents_of, reach};
use crate::pyjson;
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

/// `auto-layer.py`'s `path_key`: name after the first `-`, then the part
/// before it (the store hash).
pub fn path_key(path: &str) -> (&str, &str) {
    match path.split_once('-') {
        Some((hash, name)) => (name, hash),
        None => ("", path),
    }
}

fn cmp_path_key(a: &str, b: &str) -> Ordering {
    path_key(a).cmp(&path_key(b))
}

/// One output layer with the metadata the reference prints under `DEBUG`.
#[derive(Debug, Clone)]
pub struct Layer {
    pub used_by: Vec<u32>,
    pub paths: Vec<u32>,
    /// Sums of narSize: u128, since Python's ints do not overflow and a
    /// few paths near 2^64 bytes must neither wrap nor panic.
    pub layer_size: u128,
    pub closure_size: u128,
}

/// Layer ids are interned sets of primaries. Sets are hashed a lot, so a
/// cheap multiplicative hash replaces SipHash (no untrusted keys here).
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type Fx = BuildHasherDefault<FxHasher>;

struct Ids {
    sets: Vec<Rc<[u32]>>,
    lookup: HashMap<Rc<[u32]>, u32, Fx>,
    members: Vec<u32>,
    /// Per-round memo: old id -> new id, valid when the stamp matches.
    memo: Vec<(u32, u32)>,
}

impl Ids {
    fn intern(&mut self, set: &[u32]) -> u32 {
        if let Some(&id) = self.lookup.get(set) {
            return id;
        }
        let id = self.sets.len() as u32;
        let set: Rc<[u32]> = set.into();
        self.sets.push(set.clone());
        self.lookup.insert(set, id);
        self.members.push(0);
        self.memo.push((0, 0));
        id
    }

    /// Forgets an id nobody uses any more, so memory follows the live
    /// layers rather than every set ever seen.
    fn release(&mut self, id: u32) {
        if self.members[id as usize] == 0 && !self.sets[id as usize].is_empty() {
            let set = std::mem::replace(&mut self.sets[id as usize], Rc::from(Vec::new()));
            self.lookup.remove(&set);
        }
    }
}

/// The layers before `ignore` filtering, in output order.
///
/// Ties in closure size (where the reference falls back to CPython's set
/// iteration order) are broken by comparing the layers' sorted path lists
/// element-wise by `path_key`.
pub fn layers(graph: &Graph, layer_limit: i64) -> Vec<Layer> {
    let n = graph.len();
    if n == 0 {
        return Vec::new();
    }
    let children = &graph.children;
    let parents = parents_of(children);
    let mut by_size: Vec<u32> = (0..n as u32).collect();
    by_size.sort_by_key(|&v| graph.nar_size[v as usize]);

    let mut ids = Ids { sets: Vec::new(), lookup: HashMap::default(), members: Vec::new(), memo: Vec::new() };
    let empty = ids.intern(&[]);
    ids.members[empty as usize] = n as u32;
    let mut distinct: i64 = 1;
    let mut layer_of = vec![empty; n];

    let (mut dep_mark, mut user_mark) = (vec![0u32; n], vec![0u32; n]);
    let (mut deps, mut users) = (Vec::new(), Vec::new());
    let mut changes: Vec<(u32, u32, u32)> = Vec::new();
    let mut scratch: Vec<u32> = Vec::new();

    for (round, &primary) in by_size.iter().rev().enumerate() {
        let stamp = round as u32 + 1;
        reach(children, &[primary], &mut dep_mark, stamp, &mut deps);
        reach(&parents, &[primary], &mut user_mark, stamp, &mut users);
        changes.clear();
        let own = ids.intern(&[primary]);
        changes.push((primary, layer_of[primary as usize], own));
        for &dep in &deps[1..] {
            let old = layer_of[dep as usize];
            let new = match ids.memo[old as usize] {
                (s, id) if s == stamp => id,
                _ => {
                    scratch.clear();
                    scratch.extend(ids.sets[old as usize].iter().copied().filter(|&q| user_mark[q as usize] != stamp));
                    let claimed = scratch.iter().any(|&q| q != primary && dep_mark[q as usize] == stamp);
                    if !claimed {
                        let at = scratch.binary_search(&primary).unwrap_err();
                        scratch.insert(at, primary);
                    }
                    let id = ids.intern(&scratch);
                    ids.memo[old as usize] = (stamp, id);
                    id
                }
            };
            changes.push((dep, old, new));
        }
        let mut count = distinct;
        for &(_, old, new) in &changes {
            if old != new {
                count += apply_move(&mut ids.members, old, new);
            }
        }
        if count > layer_limit {
            for &(_, old, new) in &changes {
                if old != new {
                    apply_move(&mut ids.members, new, old);
                }
            }
            break;
        }
        distinct = count;
        for &(v, old, new) in &changes {
            layer_of[v as usize] = new;
            ids.release(old);
        }
    }

    let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
    for (v, &id) in layer_of.iter().enumerate() {
        groups.entry(id).or_default().push(v as u32);
    }
    let mut mark = vec![0u32; n];
    let mut closure = Vec::new();
    let mut out: Vec<Layer> = groups
        .into_iter()
        .enumerate()
        .map(|(i, (id, mut paths))| {
            paths.sort_by(|&a, &b| cmp_path_key(&graph.paths[a as usize], &graph.paths[b as usize]));
            let mut used_by = ids.sets[id as usize].to_vec();
            used_by.sort_by(|&a, &b| cmp_path_key(&graph.paths[a as usize], &graph.paths[b as usize]));
            reach(children, &paths, &mut mark, i as u32 + 1, &mut closure);
            Layer {
                layer_size: paths.iter().map(|&v| u128::from(graph.nar_size[v as usize])).sum(),
                closure_size: closure.iter().map(|&v| u128::from(graph.nar_size[v as usize])).sum(),
                used_by,
                paths,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        a.closure_size.cmp(&b.closure_size).then_with(|| {
            let ka = a.paths.iter().map(|&v| path_key(&graph.paths[v as usize]));
            let kb = b.paths.iter().map(|&v| path_key(&graph.paths[v as usize]));
            ka.cmp(kb)
        })
    });
    out
}

/// Moves one member from layer `from` to `to`; returns the change in the
/// number of non-empty layers.
fn apply_move(members: &mut [u32], from: u32, to: u32) -> i64 {
    let mut delta = 0;
    members[from as usize] -= 1;
    if members[from as usize] == 0 {
        delta -= 1;
    }
    if members[to as usize] == 0 {
        delta += 1;
    }
    members[to as usize] += 1;
    delta
}

/// The reference's output: layers as path lists with ignored paths
/// removed and layers left empty by that dropped. `debug` prints what the
/// reference prints under `DEBUG=1` to stderr.
pub fn auto_layer(graph: &Graph, ignore: &HashSet<String>, layer_limit: i64, debug: bool) -> Vec<Vec<String>> {
    let layers = layers(graph, layer_limit);
    if debug {
        crate::diag::raw(&pyjson::dumps(&debug_json(graph, &layers), pyjson::Style::indent(2)));
    }
    layers
        .iter()
        .map(|l| l.paths.iter().map(|&v| graph.paths[v as usize].clone()).filter(|p| !ignore.contains(p)).collect::<Vec<_>>())
        .filter(|l| !l.is_empty())
        .collect()
}

fn debug_json(graph: &Graph, layers: &[Layer]) -> Value {
    let names = |vs: &[u32]| vs.iter().map(|&v| Value::from(graph.paths[v as usize].clone())).collect::<Vec<_>>();
    Value::Array(
        layers
            .iter()
            .map(|l| {
                json!({
                    "usedBy": names(&l.used_by),
                    "paths": names(&l.paths),
                    "layerSize": l.layer_size,
                    "closureSize": l.closure_size,
                })
            })
            .collect(),
    )
}
