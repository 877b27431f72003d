//! The integration tests: one binary (one link for any change), a module
//! per area, one harness. Every test runs the real binary and real tools.

mod harness;

mod any_reference;
mod base_image;
mod conf_cli;
mod copy_default_dest;
mod customisation_layer;
mod explain;
mod explicit_layers;
mod hostile_customisation;
mod hostile_faults;
mod hostile_fuzz_regressions;
mod hostile_graph;
mod hostile_stream;
mod hostile_tar;
mod hostile_trust;
mod layering_errors;
mod layering_golden;
mod layering_props;
mod load;
mod oci;
mod parity;
mod perms;
mod progress;
mod referrers;
mod registry;
mod registry_faults;
mod sbom;
mod sources;
mod stream_errors;
mod variant;
mod verify;
mod verify_edges;
