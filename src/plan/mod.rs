//! From a closure graph to a conf: the graph as Nix exports it, nixpkgs'
//! layering strategies, explicit layer files, and the conf generator.

pub mod confgen;
pub mod graph;
pub mod layer_spec;
pub mod layering;
