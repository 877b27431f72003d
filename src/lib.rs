//! layered-image: container images from Nix store closures.
//!
//! Data flows one way: a closure graph is split into layers ([`plan`]),
//! the layers and the image settings make a conf ([`conf`]), each layer's
//! bytes are written as tar ([`layer`], [`tar`]), the image model
//! ([`image`]) adds base layers, the customisation layer, config and
//! manifest, layers become content-addressed blobs ([`blob`]), and a
//! destination ([`dest`]) receives them. Every step is byte-compatible with
//! nixpkgs' `dockerTools.streamLayeredImage` unless an option says otherwise.

pub mod blob;
pub mod conf;
pub mod dest;
pub mod diag;
pub mod digest;
pub mod explain;
pub mod image;
pub mod input;
pub mod layer;
pub mod output;
pub mod plan;
pub mod pyjson;
pub mod reference;
pub mod sbom;
pub mod source;
mod stop;
pub mod tar;
pub mod time;
pub mod verify;
