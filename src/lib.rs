//! layered-image: container images from Nix store closures.
//!
//! Data flows one way: a closure graph is split into layers, the layers and
//! the image settings make a conf ([`conf`]), and the conf is streamed as a
//! docker-archive ([`stream`]). Every step is byte-compatible with nixpkgs'
//! `dockerTools.streamLayeredImage` unless an option says otherwise.

pub mod base_image;
pub mod blob;
pub mod blob_cache;
pub mod compress;
pub mod conf;
pub mod confgen;
pub mod copy;
pub mod customisation_layer;
pub mod daemon;
pub mod destination;
pub mod diag;
pub mod gnu_tar;
pub mod graph;
pub mod image_config;
pub mod input;
pub mod layer;
pub mod layer_pipe;
pub mod layer_spec;
pub mod layering;
pub mod oci;
pub mod output;
pub mod podman_host;
pub mod pyjson;
pub mod reference;
pub mod registry;
mod stop;
pub mod stream;
pub mod tar;
pub mod time;
pub mod verify;
pub mod walk;
