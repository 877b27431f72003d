//! The `pipeline` command's input ({graph, pipeline, exclude_paths}) on
//! arbitrary bytes: parsed, validated and run.
#![no_main]
use layered_image::plan::graph::raw_nodes_from_value;
use layered_image::plan::layering::pipeline::{parse_pipeline, run_pipeline};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    let (Some(graph), Some(pipeline)) = (v.get("graph"), v.get("pipeline")) else { return };
    let Ok(raw) = raw_nodes_from_value(graph, None, "fuzz.json") else { return };
    let Ok(steps) = parse_pipeline(pipeline) else { return };
    let exclude: HashSet<String> = v
        .get("exclude_paths")
        .and_then(Value::as_array)
        .map(|xs| xs.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let _ = run_pipeline(&raw, &exclude, &steps, "fuzz.json");
});
