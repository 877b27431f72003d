//! layered-image: container images from Nix store closures.
//!
//! Data flows one way: a closure graph is split into layers
//! ([`layering`]), the layers and the image settings make a conf
//! ([`conf`]), and the conf is streamed as a docker-archive
//! ([`stream`]). Every step is byte-compatible with nixpkgs'
//! `dockerTools.streamLayeredImage` unless an option says otherwise.

pub mod pyjson;
pub mod confgen;
pub mod customisation_layer;
pub mod gnu_tar;
pub mod graph;
pub mod layering;
