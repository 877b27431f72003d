//! Every case of the shared golden vectors (made by nixpkgs' own scripts),
//! run through the CLI.

use assert_cmd::Command;
use layered_image::plan::graph::{Graph, raw_nodes_from_value};
use layered_image::plan::layering::auto_layer;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/golden/layering.json");

fn golden() -> Vec<Value> {
    let text =
        std::fs::read(GOLDEN).unwrap_or_else(|e| panic!("golden vectors missing at {GOLDEN} ({e}); clone the shared material beside the repository"));
    serde_json::from_slice::<Value>(&text).unwrap().as_array().unwrap().clone()
}

fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(value).unwrap()).unwrap();
    p
}

fn bin() -> Command {
    Command::cargo_bin("layered-image").unwrap()
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn conf_layers(dir: &Path, graph: &Path, extra: &[&str]) -> Value {
    let base = write(dir, "base.json", &json!({"config": {}, "architecture": "amd64", "os": "linux"}));
    let text = stdout_of(
        bin()
            .args(["conf", "--graph"])
            .arg(graph)
            .arg("--base-json")
            .arg(&base)
            .args(["--customisation-layer", "/nix/store/cccc-custom", "--image-name", "x", "--image-tag", "y"])
            .args(extra),
    );
    let conf: Value = serde_json::from_str(&text).unwrap();
    conf["store_layers"].clone()
}

#[test]
fn popularity_matches_closure_graph_py() {
    let dir = tempfile::tempdir().unwrap();
    for case in golden() {
        let graph = write(dir.path(), "graph.json", &case["graph"]);
        let expected: Vec<&str> = case["popularity"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        let got = stdout_of(bin().arg("popularity").arg(&graph));
        assert_eq!(got, expected.join("\n") + "\n", "case {}", case["name"]);
        // Same through the structured-attrs form with an explicit key.
        let wrapped = write(dir.path(), "attrs.json", &json!({"graph": case["graph"], "other": []}));
        assert_eq!(stdout_of(bin().arg("popularity").arg(&wrapped).arg("graph")), got);
    }
}

#[test]
fn classic_split_matches_seed_jq_through_conf() {
    let dir = tempfile::tempdir().unwrap();
    for case in golden() {
        let graph = write(dir.path(), "graph.json", &case["graph"]);
        for split in case["classic_split"].as_array().unwrap() {
            let available = split["available_layers"].as_u64().unwrap();
            let max = (available + 1).to_string();
            let got = conf_layers(dir.path(), &graph, &["--layering", "popularity", "--max-layers", &max]);
            assert_eq!(got, split["layers"], "case {} available {available}", case["name"]);
        }
    }
}

/// Where auto-layer.py's order depends on the hash seed, only the set of
/// layers and the order of layers with distinct closure sizes are defined.
fn assert_auto_layers(graph_json: &Value, limit: i64, ignore: &HashSet<String>, got: &Value, expected: &Value, tie_free: bool, what: &str) {
    if tie_free {
        assert_eq!(got, expected, "{what}");
        return;
    }
    let raw = raw_nodes_from_value(graph_json, None, "golden").unwrap();
    let graph = Graph::build(&raw, "golden").unwrap();
    let size_of = |layer: &Value| -> u128 {
        let set: HashSet<&str> = layer.as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        auto_layer::layers(&graph, limit)
            .into_iter()
            .find(|l| {
                let kept: HashSet<&str> = l.paths.iter().map(|&v| graph.paths[v as usize].as_str()).filter(|p| !ignore.contains(*p)).collect();
                kept == set
            })
            .unwrap_or_else(|| panic!("{what}: layer {layer} not produced"))
            .closure_size
    };
    let (got, expected) = (got.as_array().unwrap(), expected.as_array().unwrap());
    assert_eq!(got.len(), expected.len(), "{what}");
    let mut a: Vec<String> = got.iter().map(Value::to_string).collect();
    let mut b: Vec<String> = expected.iter().map(Value::to_string).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "{what}: different layers");
    for (g, e) in got.iter().zip(expected) {
        if g != e {
            assert_eq!(size_of(g), size_of(e), "{what}: untied layers out of order");
        }
    }
}

#[test]
fn auto_layer_matches_auto_layer_py() {
    let dir = tempfile::tempdir().unwrap();
    let mut tied = 0;
    for case in golden() {
        let graph = write(dir.path(), "graph.json", &case["graph"]);
        for run in case["auto_layer"].as_array().unwrap() {
            let limit = run["limit"].as_i64().unwrap();
            let ignore: Vec<String> = run["ignore"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
            let ignore_file = dir.path().join("ignore");
            std::fs::write(&ignore_file, ignore.iter().map(|p| format!("{p}\n")).collect::<String>()).unwrap();
            let text = stdout_of(bin().arg("auto-layer").arg(&graph).arg(&ignore_file).arg(limit.to_string()));
            let tie_free = run["tie_free"].as_bool().unwrap();
            if tie_free {
                // Byte-exact json.dumps output.
                assert_eq!(text, layered_image::pyjson::dumps(&run["layers"], layered_image::pyjson::Style::DEFAULT) + "\n");
            } else {
                tied += 1;
            }
            let what = format!("case {} limit {limit} ignore {}", case["name"], ignore.len());
            let ignore_set: HashSet<String> = ignore.iter().cloned().collect();
            let got: Value = serde_json::from_str(&text).unwrap();
            assert_auto_layers(&case["graph"], limit, &ignore_set, &got, &run["layers"], tie_free, &what);
            // The conf generator gives the same layers: customisation layer counted, ignore = --exclude.
            let mut extra = vec!["--layering".to_string(), "auto".into(), "--max-layers".into(), (limit + 1).to_string()];
            for p in &ignore {
                extra.push("--exclude".into());
                extra.push(p.clone());
            }
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            let via_conf = conf_layers(dir.path(), &graph, &extra);
            assert_auto_layers(&case["graph"], limit, &ignore_set, &via_conf, &run["layers"], tie_free, &format!("conf {what}"));
        }
    }
    assert!(tied > 0, "the golden data should exercise tied layers");
}

#[test]
fn pipelines_match_flatten_references_graph() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for case in golden() {
        for p in case["pipelines"].as_array().unwrap() {
            let input =
                write(dir.path(), "input.json", &json!({"graph": case["graph"], "pipeline": p["pipeline"], "exclude_paths": p["exclude_paths"]}));
            let got = stdout_of(bin().arg("pipeline").arg(&input));
            let style = layered_image::pyjson::Style { sort_keys: true, ..layered_image::pyjson::Style::indent(2) };
            let expected = layered_image::pyjson::dumps(&p["layers"], style) + "\n";
            assert_eq!(got, expected, "case {} pipeline {}", case["name"], p["pipeline"]);

            // And through conf: the pipeline file, exclude_paths as --exclude.
            let graph = write(dir.path(), "graph.json", &case["graph"]);
            let pipeline = write(dir.path(), "pipeline.json", &p["pipeline"]);
            let mut extra = vec!["--layering".to_string(), "pipeline".into(), "--pipeline".into(), pipeline.display().to_string()];
            for x in p["exclude_paths"].as_array().unwrap() {
                extra.push("--exclude".into());
                extra.push(x.as_str().unwrap().into());
            }
            // maxLayers is ignored with a pipeline, as in nixpkgs.
            extra.extend(["--max-layers".into(), "2".into()]);
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            assert_eq!(conf_layers(dir.path(), &graph, &extra), p["layers"], "conf, case {}", case["name"]);
            n += 1;
        }
    }
    assert!(n > 0);
}

/// Graph from `name -> [children]` pairs; every node gets narSize 1.
fn small_graph(edges: &[(&str, &[&str])]) -> Value {
    Value::Array(edges.iter().map(|(p, refs)| json!({"path": p, "references": refs, "narSize": 1, "closureSize": 1})).collect())
}

fn run_pipeline(dir: &Path, graph: &Value, pipeline: Value, exclude: Value) -> Vec<Vec<String>> {
    let input = write(dir, "input.json", &json!({"graph": graph, "pipeline": pipeline, "exclude_paths": exclude}));
    serde_json::from_str(&stdout_of(bin().arg("pipeline").arg(&input))).unwrap()
}

fn as_sets(layers: Vec<Vec<String>>) -> Vec<std::collections::BTreeSet<String>> {
    layers.into_iter().map(|l| l.into_iter().collect()).collect()
}

fn sets(layers: &[&[&str]]) -> Vec<std::collections::BTreeSet<String>> {
    layers.iter().map(|l| l.iter().map(|s| s.to_string()).collect()).collect()
}

/// The expectations of flatten_references_graph's own unit tests
/// (pipe_test, popularity_contest_test, flatten_references_graph_test).
#[test]
fn flatten_references_graph_unit_test_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let g = small_graph(&[
        ("Root1", &["A"]),
        ("A", &["B", "C"]),
        ("B", &["D", "E", "G"]),
        ("E", &["F"]),
        ("Root2", &["B"]),
        ("Root3", &["C"]),
        ("C", &[]),
        ("D", &[]),
        ("F", &[]),
        ("G", &[]),
    ]);
    let p = json!([
        ["split_paths", ["B"]],
        ["over", "main", ["pipe", [["subcomponent_in", ["B"]], ["over", "rest", ["popularity_contest"]]]]],
        ["flatten"],
        ["map", ["remove_paths", "Root3"]],
        ["limit_layers", 5]
    ]);
    assert_eq!(as_sets(run_pipeline(d, &g, p, json!([]))), sets(&[&["B"], &["F"], &["D"], &["E"], &["Root1", "A", "C", "Root2", "G"]]));

    let g = small_graph(&[("Root1", &["A"]), ("A", &["B"]), ("B", &[]), ("Root2", &[])]);
    let strs = |v: &[&str]| v.iter().map(|s| vec![s.to_string()]).collect::<Vec<_>>();
    assert_eq!(run_pipeline(d, &g, json!([["popularity_contest"]]), json!([])), strs(&["B", "A", "Root1", "Root2"]));
    assert_eq!(
        as_sets(run_pipeline(d, &g, json!([["popularity_contest"], ["limit_layers", 3]]), json!([]))),
        sets(&[&["B"], &["A"], &["Root1", "Root2"]])
    );
    assert_eq!(
        as_sets(run_pipeline(d, &g, json!([["popularity_contest"], ["reverse"], ["limit_layers", 3]]), json!([]))),
        sets(&[&["Root2"], &["Root1"], &["A", "B"]])
    );

    let g = small_graph(&[
        ("Root1", &["A"]),
        ("A", &["B", "D"]),
        ("D", &["E"]),
        ("B", &["D", "F"]),
        ("Root2", &["B"]),
        ("Root3", &["C"]),
        ("C", &[]),
        ("E", &[]),
        ("F", &[]),
        ("X", &[]),
    ]);
    let f = write(d, "pc.json", &g);
    assert_eq!(stdout_of(bin().arg("popularity").arg(&f)), "E\nD\nF\nB\nA\nC\nRoot1\nRoot2\nRoot3\nX\n");

    let g = json!([
        {"path": "A", "references": ["A", "C"], "narSize": 2},
        {"path": "B", "references": ["C", "D"], "narSize": 4},
        {"path": "C", "references": ["C"], "narSize": 6},
        {"path": "D", "references": ["D"], "narSize": 8},
    ]);
    let owned = |v: &[&[&str]]| v.iter().map(|l| l.iter().map(|s| s.to_string()).collect()).collect::<Vec<Vec<String>>>();
    let split = json!([["split_paths", ["B"]]]);
    assert_eq!(run_pipeline(d, &g, split.clone(), json!([])), owned(&[&["B", "D"], &["C"], &["A"]]));
    let nested = json!([["split_paths", ["B"]], ["over", "main", ["subcomponent_in", ["B"]]]]);
    assert_eq!(run_pipeline(d, &g, nested, json!([])), owned(&[&["B"], &["D"], &["C"], &["A"]]));
    assert_eq!(run_pipeline(d, &g, split.clone(), json!(["A"])), owned(&[&["B", "C", "D"]]));
    assert_eq!(run_pipeline(d, &g, split, json!(["D"])), owned(&[&["B"], &["C"], &["A"]]));
    // children_of: B's children are split off; nothing else reaches them once
    // the edges into them are cut, so there is no common part.
    let children = json!([["split_paths", [{"children_of": "B"}]]]);
    assert_eq!(run_pipeline(d, &g, children, json!([])), owned(&[&["C", "D"], &["A", "B"]]));
}
