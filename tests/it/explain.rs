//! `explain` and `diff`: sizes checked against the image's own bytes (read
//! back with the tar crate, an independent reader), every path's "why"
//! against the golden layering vectors made by nixpkgs' own scripts,
//! `diff`'s upload bytes against what a push to a real registry uploads,
//! and the HTML page loaded in a real headless Chromium.

use crate::harness::*;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/golden/layering.json");

fn li_json(args: &[&std::ffi::OsStr]) -> Value {
    let out = run(Command::new(bin()).args(args));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

macro_rules! os {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new(&$a)),*] };
}

/// A docker-archive's members by name.
fn members(archive: &Path) -> HashMap<String, Vec<u8>> {
    let mut ar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    let mut out = HashMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(name, data);
    }
    out
}

/// Each member of a layer tar with the bytes it takes (its headers, data
/// and padding), as the tar crate reads them.
fn member_spans(layer: &[u8]) -> Vec<(String, u64)> {
    let mut ar = tar::Archive::new(layer);
    let mut starts = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        // The first header of the member (a pax or GNU long-name header before it counts too).
        starts.push((e.path().unwrap().to_string_lossy().into_owned(), e.raw_header_position(), e.raw_file_position() + e.size()));
    }
    let mut out = Vec::new();
    let mut prev_end = 0u64;
    for (name, _, data_end) in &starts {
        let padded = data_end.div_ceil(512) * 512;
        out.push((name.clone(), padded - prev_end));
        prev_end = padded;
    }
    out
}

/// Explain's numbers are the image's: diff_ids and sizes as `stream`
/// wrote them, the image ID as the config's digest, each store path's size
/// as the bytes its members take in the layer tar, files as members.
#[test]
fn sizes_and_digests_agree_with_the_streamed_image() {
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    // A long name (a pax header in the tar) and two identical files in two store paths.
    let long = root.join(&store.script).join("x".repeat(120));
    std::fs::create_dir_all(root.join("nix/store/2a1b-dup-a")).unwrap();
    std::fs::create_dir_all(root.join("nix/store/2a1c-dup-b")).unwrap();
    let blob: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("nix/store/2a1b-dup-a/data"), &blob).unwrap();
    std::fs::write(root.join("nix/store/2a1c-dup-b/data"), &blob).unwrap();
    run(Command::new("chmod").args(["u+w"]).arg(root.join(&store.script)));
    std::fs::write(&long, "long\n").unwrap();
    let conf_path = root.join("conf.json");
    let mut conf: Value = serde_json::from_slice(&std::fs::read(&conf_path).unwrap()).unwrap();
    conf["store_layers"] = json!([[store.busybox], [store.script, "nix/store/2a1b-dup-a"], ["nix/store/2a1c-dup-b"]]);
    std::fs::write(&conf_path, serde_json::to_vec(&conf).unwrap()).unwrap();

    let e = li_json(os!["explain", conf_path, "--json"]);
    let image = root.join("image.tar");
    run(Command::new(bin()).arg("stream").arg(&conf_path).arg("-o").arg(&image));
    verify_image(image.to_str().unwrap());
    let m = members(&image);
    let manifest: Value = serde_json::from_slice(&m["manifest.json"]).unwrap();
    let config_name = manifest[0]["Config"].as_str().unwrap();
    let config: Value = serde_json::from_slice(&m[config_name]).unwrap();
    assert_eq!(e["image_id"], format!("sha256:{}", sha256_hex(&m[config_name])));
    let layers = e["layers"].as_array().unwrap();
    let names = manifest[0]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), names.len());
    assert_eq!(layers.len(), 4, "3 store layers and the customisation layer");
    let mut total = 0;
    for (i, (l, name)) in layers.iter().zip(names).enumerate() {
        let tar = &m[name.as_str().unwrap()];
        assert_eq!(l["index"], i);
        assert_eq!(l["diff_id"], config["rootfs"]["diff_ids"][i]);
        assert_eq!(l["diff_id"], format!("sha256:{}", sha256_hex(tar)));
        assert_eq!(l["size"], tar.len() as u64);
        total += tar.len() as u64;
        let spans = member_spans(tar);
        assert_eq!(l["files"], spans.len() as u64, "layer {i}");
        let paths = l["paths"].as_array().unwrap();
        let sum: u64 = paths.iter().map(|p| p["size"].as_u64().unwrap()).sum();
        assert_eq!(sum + l["overhead"].as_u64().unwrap(), tar.len() as u64, "layer {i}: paths + overhead = the tar");
        for p in paths {
            let prefix = format!("/{}", p["path"].as_str().unwrap());
            let mine: Vec<&(String, u64)> =
                spans.iter().filter(|(n, _)| n.trim_end_matches('/') == prefix || n.starts_with(&format!("{prefix}/"))).collect();
            assert_eq!(p["size"], mine.iter().map(|(_, s)| s).sum::<u64>(), "{prefix}");
            assert_eq!(p["files"], mine.len() as u64, "{prefix}");
        }
    }
    assert_eq!(layers[3]["origin"], "customisation");
    assert_eq!(layers[3]["paths"], json!([]));
    assert_eq!(e["size"], total);
    assert_eq!(e["duplicates"]["bytes"], blob.len() as u64, "{}", e["duplicates"]);
    assert_eq!(e["small_layers"], json!([1, 2, 3]), "only busybox's layer is over 100 KiB");
    assert_eq!(e["biggest"][0]["path"], store.busybox);

    // The text says the same, for a person.
    let text = String::from_utf8(run(Command::new(bin()).arg("explain").arg(&conf_path)).stdout).unwrap();
    assert!(text.starts_with(&format!("image {} (li-test-busybox:latest)", &e["image_id"].as_str().unwrap()[7..19])), "{text}");
    assert!(text.contains("duplicated: 39.1 KiB"), "{text}");
}

fn golden() -> Vec<Value> {
    serde_json::from_slice::<Value>(&std::fs::read(GOLDEN).unwrap_or_else(|e| panic!("{GOLDEN}: {e}"))).unwrap().as_array().unwrap().clone()
}

/// A store tree holding every path of a golden graph (one small file
/// each), a customisation layer, and the base json.
struct GoldenStore {
    dir: tempfile::TempDir,
    graph: PathBuf,
}

impl GoldenStore {
    fn new(case: &Value) -> GoldenStore {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for node in case["graph"].as_array().unwrap() {
            let p = root.join(node["path"].as_str().unwrap().trim_start_matches('/'));
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("f"), node["path"].as_str().unwrap()).unwrap();
        }
        let src = root.join("custom-src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("etc"), "x\n").unwrap();
        custom_layer(&src, &root.join("custom"));
        write(root, "base.json", serde_json::to_vec(&json!({"config": {}, "architecture": "amd64", "os": "linux"})).unwrap());
        let graph = write(root, "graph.json", serde_json::to_vec(&case["graph"]).unwrap());
        GoldenStore { dir, graph }
    }

    /// `conf` with `layering` options, its paths made relative to the
    /// store tree; then `explain --json` with the same options.
    fn explain(&self, layering: &[String]) -> Value {
        let root = self.dir.path();
        let out = run(Command::new(bin())
            .args(["conf", "--graph"])
            .arg(&self.graph)
            .arg("--base-json")
            .arg(root.join("base.json"))
            .args(["--customisation-layer", "custom", "--image-name", "golden", "--image-tag", "t"])
            .args(layering));
        let mut conf: Value = serde_json::from_slice(&out.stdout).unwrap();
        conf["store_dir"] = json!("nix/store");
        for layer in conf["store_layers"].as_array_mut().unwrap() {
            for p in layer.as_array_mut().unwrap() {
                *p = json!(p.as_str().unwrap().trim_start_matches('/'));
            }
        }
        let conf_path = write(root, "conf.json", serde_json::to_vec(&conf).unwrap());
        let out = run(Command::new(bin()).arg("explain").arg(&conf_path).arg("--graph").arg(&self.graph).args(layering).args([
            "--json",
            "--compress",
            "none",
        ]));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The store layers of an explain as `/nix/store/...` lists, with each path's reason.
fn store_layers(e: &Value) -> Vec<Vec<(String, Value)>> {
    e["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["origin"] == "store")
        .map(|l| l["paths"].as_array().unwrap().iter().map(|p| (format!("/{}", p["path"].as_str().unwrap()), p["reason"].clone())).collect())
        .collect()
}

fn paths_of(layers: &[Vec<(String, Value)>]) -> Vec<Vec<String>> {
    layers.iter().map(|l| l.iter().map(|(p, _)| p.clone()).collect()).collect()
}

fn golden_layers(v: &Value) -> Vec<Vec<String>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn excludes(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().flat_map(|p| ["--exclude".to_string(), p.as_str().unwrap().to_string()]).collect()
}

/// Every path's reason is the rule nixpkgs' scripts applied: its rank in
/// closure-graph.py's order and the classic split's cut; auto-layer.py's
/// grouping; the pipeline group that flatten_references_graph made.
#[test]
fn every_paths_why_agrees_with_the_golden_layering() {
    let (mut checked_paths, mut runs) = (0, 0);
    for case in golden() {
        let name = case["name"].as_str().unwrap();
        let store = GoldenStore::new(&case);
        let rank: HashMap<String, usize> =
            case["popularity"].as_array().unwrap().iter().enumerate().map(|(i, p)| (p.as_str().unwrap().to_string(), i + 1)).collect();

        for split in case["classic_split"].as_array().unwrap() {
            let available = split["available_layers"].as_u64().unwrap();
            let opts = vec!["--layering".into(), "popularity".into(), "--max-layers".into(), (available + 1).to_string()];
            let got = store_layers(&store.explain(&opts));
            let expected = golden_layers(&split["layers"]);
            assert_eq!(paths_of(&got), expected, "{name} popularity, {available} layers");
            let singles = (available as usize - 1).min(rank.len());
            for (k, layer) in got.iter().enumerate() {
                for (p, r) in layer {
                    assert_eq!(r["rule"], "popularity", "{name} {p}");
                    assert_eq!(r["rank"], rank[p], "{name} {p}: closure-graph.py's rank");
                    assert_eq!(r["of"], rank.len());
                    assert_eq!(r["single_layers"], singles);
                    // A rank within the cut has its own layer, in rank order; the rest share the last.
                    assert_eq!(rank[p] <= singles, k < singles, "{name} {p}: rank {} in layer {k}", rank[p]);
                    checked_paths += 1;
                }
            }
            runs += 1;
        }

        for auto in case["auto_layer"].as_array().unwrap() {
            let limit = auto["limit"].as_i64().unwrap();
            let mut opts = vec!["--layering".into(), "auto".into(), "--max-layers".into(), (limit + 1).to_string()];
            opts.extend(excludes(&auto["ignore"]));
            let e = store.explain(&opts);
            let got = store_layers(&e);
            let as_sets = |ls: Vec<Vec<String>>| ls.into_iter().map(|l| l.into_iter().collect::<BTreeSet<_>>()).collect::<BTreeSet<_>>();
            let expected = golden_layers(&auto["layers"]);
            if auto["tie_free"].as_bool().unwrap() {
                assert_eq!(paths_of(&got), expected, "{name} auto-layer limit {limit}");
            } else {
                assert_eq!(as_sets(paths_of(&got)), as_sets(expected), "{name} auto-layer limit {limit}");
            }
            for layer in &got {
                let claimed = &layer[0].1["claimed_by"];
                for (p, r) in layer {
                    assert_eq!(r["rule"], "auto-layer", "{name} {p}");
                    assert_eq!(r["limit"], limit);
                    assert_eq!(&r["claimed_by"], claimed, "{name}: a layer is the paths the same primaries claim");
                    if r["primary"] == true {
                        assert_eq!(r["claimed_by"], json!([p]), "{name}: a primary claims itself");
                    }
                    checked_paths += 1;
                }
            }
            runs += 1;
        }

        for pipeline in case["pipelines"].as_array().unwrap() {
            let file = write(store.dir.path(), "pipeline.json", serde_json::to_vec(&pipeline["pipeline"]).unwrap());
            let mut opts = vec!["--layering".into(), "pipeline".into(), "--pipeline".into(), file.display().to_string()];
            opts.extend(excludes(&pipeline["exclude_paths"]));
            let got = store_layers(&store.explain(&opts));
            assert_eq!(paths_of(&got), golden_layers(&pipeline["layers"]), "{name} pipeline {}", pipeline["pipeline"]);
            for (k, layer) in got.iter().enumerate() {
                for (p, r) in layer {
                    assert_eq!(r["rule"], "pipeline", "{name} {p}");
                    assert_eq!(r["group"], k + 1);
                    assert_eq!(r["of"], got.len());
                    checked_paths += 1;
                }
            }
            runs += 1;
        }
    }
    assert!(runs > 200 && checked_paths > 10_000, "{runs} runs, {checked_paths} paths");
}
