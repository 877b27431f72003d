//! Splitting a closure graph into image layers, the ways nixpkgs does it.

pub mod auto_layer;
pub mod classic;
pub mod pipeline;
pub mod popularity;

use crate::plan::graph::Graph;

/// Paths of a whole graph, most popular first (`closure-graph.py`).
pub fn popularity_paths(graph: &Graph) -> Vec<String> {
    let paths: Vec<&str> = graph.paths.iter().map(String::as_str).collect();
    popularity::popularity_order(&graph.children, &paths).into_iter().map(|v| graph.paths[v as usize].clone()).collect()
}
