//! The slice of python-igraph that `flatten_references_graph` relies on:
//! vertices keep their relative order through every subgraph, which is
//! what orders store paths inside pipeline layers.

use crate::plan::graph::reach;

/// A directed graph over vertices named by global node ids (indices into
/// the pipeline's path table). Edges are local vertex indices.
#[derive(Debug, Clone, Default)]
pub struct VGraph {
    pub vs: Vec<u32>,
    pub succ: Vec<Vec<u32>>,
}

impl VGraph {
    pub fn single(node: u32) -> VGraph {
        VGraph { vs: vec![node], succ: vec![Vec::new()] }
    }

    pub fn len(&self) -> usize {
        self.vs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vs.is_empty()
    }

    /// First vertex carrying `node`, like `graph.vs.find(name)`.
    pub fn find(&self, node: u32) -> Option<u32> {
        self.vs.iter().position(|&v| v == node).map(|i| i as u32)
    }

    pub fn preds(&self) -> Vec<Vec<u32>> {
        crate::plan::graph::parents_of(&self.succ)
    }

    /// `induced_subgraph`: kept vertices in their original order.
    pub fn induced(&self, keep: &[bool]) -> VGraph {
        let mut local = vec![u32::MAX; self.len()];
        let mut out = VGraph::default();
        for (i, &k) in keep.iter().enumerate() {
            if k {
                local[i] = out.vs.len() as u32;
                out.vs.push(self.vs[i]);
            }
        }
        for (i, &k) in keep.iter().enumerate() {
            if k {
                out.succ.push(self.succ[i].iter().filter(|&&c| keep[c as usize]).map(|&c| local[c as usize]).collect());
            }
        }
        out
    }

    /// The subgraph induced by the vertex range `start..end`.
    pub fn range(&self, start: usize, end: usize) -> VGraph {
        let (lo, hi) = (start as u32, end as u32);
        VGraph {
            vs: self.vs[start..end].to_vec(),
            succ: self.succ[start..end].iter().map(|s| s.iter().filter(|&&c| c >= lo && c < hi).map(|&c| c - lo).collect()).collect(),
        }
    }

    /// `graph - vertices`.
    pub fn without(&self, drop: &[bool]) -> VGraph {
        let keep: Vec<bool> = drop.iter().map(|d| !d).collect();
        self.induced(&keep)
    }

    /// `subcomponent` of several vertices, as a membership mask.
    pub fn reach_mask(&self, edges: &[Vec<u32>], starts: &[u32]) -> Vec<bool> {
        let mut mark = vec![0u32; self.len()];
        let mut out = Vec::new();
        reach(edges, starts, &mut mark, 1, &mut out);
        mark.iter().map(|&m| m == 1).collect()
    }

    /// `a + b` for graphs: a disjoint union, `a`'s vertices first.
    pub fn append(&mut self, other: &VGraph) {
        let off = self.vs.len() as u32;
        self.vs.extend_from_slice(&other.vs);
        self.succ.extend(other.succ.iter().map(|s| s.iter().map(|&c| c + off).collect()));
    }
}
