//! Closure graph parsing, validation and both layerings on arbitrary bytes.
#![no_main]
use layered_image::plan::graph::{Graph, parse_raw};
use layered_image::plan::layering::{auto_layer::auto_layer, popularity_paths};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the key form and the layer limit.
    let (sel, text) = match data.split_first() {
        Some((s, t)) => (*s, t),
        None => return,
    };
    let key = if sel & 1 == 1 { Some("graph") } else { None };
    let Ok(raw) = parse_raw(text, key, "fuzz.json") else { return };
    let Ok(graph) = Graph::build(&raw, "fuzz.json") else { return };
    let _ = popularity_paths(&graph);
    let _ = auto_layer(&graph, &HashSet::new(), i64::from(sel >> 1) - 8, false);
});
