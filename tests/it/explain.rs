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

/// B: the conf of `store` with its script's store path rebuilt (new hash,
/// new content); the busybox layer is kept.
fn rebuilt_script_conf(store: &BusyboxStore) -> (PathBuf, String) {
    let root = store.dir.path();
    let script_b = store.script.replace("1f8ahcn0b9z7n0kw2a1x7dbh5rq4xk3p", "2g9bidn1c0a8o1lx3b2y8ecib6sr5yl4");
    run(Command::new("cp").arg("-a").arg(root.join(&store.script)).arg(root.join(&script_b)));
    run(Command::new("chmod").arg("u+w").arg(root.join(&script_b)));
    std::fs::write(root.join(&script_b).join("data.txt"), "other data, in a new build\n".repeat(50)).unwrap();
    let mut conf: Value = serde_json::from_slice(&std::fs::read(root.join("conf.json")).unwrap()).unwrap();
    conf["store_layers"] = json!([[store.busybox], [&script_b]]);
    (write(root, "conf-b.json", serde_json::to_vec(&conf).unwrap()), script_b)
}

/// Two builds of one image that differ in one store path: `diff` reports
/// that layer alone, and the bytes it says a push of B after A uploads are
/// what the registry's access log shows uploaded (blob sizes as stored).
#[test]
fn diff_reports_the_changed_layer_and_the_bytes_a_push_uploads() {
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    let a = root.join("conf.json");
    let (b, script_b) = rebuilt_script_conf(&store);
    let cache = root.join("cache");
    let li = |args: &[&std::ffi::OsStr]| {
        let mut c = Command::new(bin());
        c.args(args).env("LAYERED_IMAGE_CACHE_DIR", &cache);
        c
    };

    let d = {
        let out = run(&mut li(os!["diff", a, b, "--json"]));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let statuses: Vec<&str> = d["layers"].as_array().unwrap().iter().map(|l| l["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["kept", "changed", "kept"], "{d:#}");
    let changed = &d["layers"][1];
    assert_eq!(changed["paths_added"], json!([script_b]));
    assert_eq!(changed["paths_removed"], json!([store.script]));
    let eb = li_json(os!["explain", b, "--json", "--compress", "none"]);
    assert_eq!(changed["diff_id"], eb["layers"][1]["diff_id"]);

    let reg = Registry::start();
    let dest = reg.dest("li/app:t");
    run(&mut li(os!["copy", a, dest, "--dest-tls-verify=false"]));
    let before = reg.requests().len();
    run(&mut li(os!["copy", b, dest, "--dest-tls-verify=false"]));
    let uploaded = reg.uploaded_since(before);
    assert_eq!(uploaded.len(), 2, "the changed layer and the config: {uploaded:?}");
    let measured: u64 = uploaded.iter().map(|(_, s)| s).sum();
    assert_eq!(d["upload_bytes"], measured, "diff's upload_bytes against the registry's log: {uploaded:?}");
    assert_eq!(d["config_upload"], eb["config_size"]);
    assert!(uploaded.iter().any(|(hex, _)| format!("sha256:{hex}") == eb["image_id"]), "the config is uploaded");

    // In CI: a budget below what the push uploads fails with status 3, one at it passes.
    let up = measured.to_string();
    let under = (measured - 1).to_string();
    let out = li(os!["diff", a, b, "--fail-over", under]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("uploads {measured} bytes, over --fail-over {under}")));
    assert!(String::from_utf8_lossy(&out.stdout).contains("changed"), "the report is still printed");
    run(&mut li(os!["diff", a, b, "--fail-over", up]));
    // An identical image uploads nothing.
    let same = run(&mut li(os!["diff", a, a, "--json"]));
    assert_eq!(serde_json::from_slice::<Value>(&same.stdout).unwrap()["upload_bytes"], 0);
}

/// Where screenshots of the pages go, for a person to look at.
fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `page` in headless Chromium: a screenshot, and the console
/// messages (which must include the page's own "treemap" line and no error).
fn render(page: &Path, shot: &Path) -> String {
    require("chromium");
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .args(["120", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--window-size=1400,1000"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {err}");
    let console: Vec<&str> = err.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.iter().any(|l| l.contains("layered-image treemap:")), "the page's script did not run: {err}");
    let bad: Vec<&&str> = console.iter().filter(|l| l.contains("ERROR") || l.contains("Uncaught") || l.contains("Refused")).collect();
    assert!(bad.is_empty(), "console errors: {bad:?}");
    let png = std::fs::read(shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "{} is not a rendered page ({} bytes)", shot.display(), png.len());
    console.join("\n")
}

/// `--html` pages are self-contained (no URL to fetch), and render in a
/// real browser without console errors.
#[test]
fn html_pages_render_in_headless_chromium() {
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    let a = root.join("conf.json");
    let script_b = store.script.replace("1f8ahcn0b9z7n0kw2a1x7dbh5rq4xk3p", "2g9bidn1c0a8o1lx3b2y8ecib6sr5yl4");
    run(Command::new("cp").arg("-a").arg(root.join(&store.script)).arg(root.join(&script_b)));
    let mut conf: Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    conf["store_layers"] = json!([[store.busybox], [script_b]]);
    let b = write(root, "conf-b.json", serde_json::to_vec(&conf).unwrap());

    let page = root.join("explain.html");
    let out = run(Command::new(bin()).arg("explain").arg(&a).arg("--html").arg(&page));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("image "), "the text still goes to stdout");
    let html = std::fs::read_to_string(&page).unwrap();
    for external in ["http://", "https://", "src=", "href="] {
        assert!(!html.contains(external), "the page refers to something outside it: {external}");
    }
    let log = render(&page, &artefacts().join("explain.png"));
    assert!(log.contains("3 layers, 2 path tiles"), "{log}");

    let page = root.join("diff.html");
    run(Command::new(bin()).arg("diff").arg(&a).arg(&b).arg("--html").arg(&page));
    let log = render(&page, &artefacts().join("diff.png"));
    assert!(log.contains("3 layers, 2 path tiles"), "{log}");
}

/// Wrong layering flags, a graph of another closure, a missing store
/// path, a missing conf: one error naming the culprit, exit 1, nothing on stdout.
#[test]
fn bad_input_is_one_clear_error() {
    let case = golden().into_iter().find(|c| c["name"] == "synthetic-60").unwrap();
    let store = GoldenStore::new(&case);
    let e = store.explain(&["--layering".into(), "popularity".into(), "--max-layers".into(), "10".into()]);
    assert_eq!(store_layers(&e).len(), 9);
    let conf = store.dir.path().join("conf.json");
    let graph = store.graph.to_str().unwrap();
    let out = li(os!["explain", conf, "--graph", graph, "--layering", "popularity", "--max-layers", "11"]);
    let err = out.fails(&["the conf's store layers are not what --layering popularity --max-layers 11 makes of", "store layer 9 differs"]);
    assert!(out.stdout.is_empty(), "{err}");
    // Without --layering both are tried, and both named.
    li(os!["explain", conf, "--graph", graph]).fails(&["--layering auto --max-layers 100 or --layering popularity --max-layers 100"]);
    let other = write(store.dir.path(), "other.json", serde_json::to_vec(&json!([{"path": "/nix/store/x-y", "references": []}])).unwrap());
    li(os!["explain", conf, "--graph", other, "--layering", "popularity", "--max-layers", "10"]).fails(&["store layer 1 differs"]);
    li(os!["diff", conf, store.dir.path().join("missing.json")]).fails(&["missing.json"]);
    // A store path gone from the disk.
    let first = store_layers(&e)[0][0].0.clone();
    std::fs::remove_dir_all(store.dir.path().join(first.trim_start_matches('/'))).unwrap();
    li(os!["explain", conf]).fails(&[&first[1..]]);
}

/// A store path (spelt absolute), its size and member count.
type PathFacts = (String, Value, Value);

/// The per-layer facts explain reports of `e`: diff_id, tar size, files,
/// and each store path's.
fn layer_facts(e: &Value) -> Vec<(Value, Value, Value, Vec<PathFacts>)> {
    e["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let paths = l["paths"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (format!("/{}", p["path"].as_str().unwrap().trim_start_matches('/')), p["size"].clone(), p["files"].clone()))
                .collect();
            (l["diff_id"].clone(), l["size"].clone(), l["files"].clone(), paths)
        })
        .collect()
}

/// The layer blobs' digests and sizes an OCI layout's manifest names, and
/// each blob file's own length.
fn layout_blobs(dir: &Path) -> Vec<(String, u64)> {
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(&digest[7..])).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().unwrap().to_string();
            let len = std::fs::metadata(dir.join("blobs/sha256").join(&d[7..])).unwrap().len();
            assert_eq!(l["size"], len, "{d}: the descriptor's size is the file's");
            (d, len)
        })
        .collect()
}

/// An image written by `copy` (oci:, oci-archive:, docker-archive:) or by
/// skopeo explains as its conf does: the same diff_ids, tar sizes, member
/// counts, store paths and their sizes; the compressed sizes are the
/// blobs the image holds; "why" says honestly that an image does not tell.
#[test]
fn an_image_explains_as_its_conf() {
    require("skopeo");
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    let conf = root.join("conf.json");
    let from_conf = li_json(os!["explain", conf, "--json"]);
    let layout = root.join("layout");
    let oci = format!("oci:{}:t", layout.display());
    run(Command::new(bin()).arg("copy").arg(&conf).arg(&oci));
    verify_image(&oci);
    let archive = format!("oci-archive:{}:t", root.join("image-oci.tar").display());
    run(Command::new(bin()).arg("copy").arg(&conf).arg(&archive));
    let docker = root.join("image.tar");
    run(Command::new(bin()).arg("stream").arg(&conf).arg("-o").arg(&docker));
    // skopeo compresses the docker-archive's layers with its own gzip.
    let skopeo_dir = root.join("skopeo");
    run(Command::new("skopeo").arg("copy").arg(format!("docker-archive:{}", docker.display())).arg(format!("oci:{}:s", skopeo_dir.display())));
    let skopeo = format!("oci:{}:s", skopeo_dir.display());

    let want = layer_facts(&from_conf);
    assert_eq!(want.len(), 3);
    for image in [oci.clone(), archive, format!("docker-archive:{}", docker.display()), skopeo.clone()] {
        let e = li_json(os!["explain", image, "--json"]);
        // skopeo writes the config anew when it converts to OCI.
        if image != skopeo {
            assert_eq!(e["image_id"], from_conf["image_id"], "{image}");
        }
        assert_eq!(layer_facts(&e), want, "{image}");
        assert_eq!(e["size"], from_conf["size"], "{image}");
        for l in e["layers"].as_array().unwrap() {
            assert_eq!(l["origin"], "image", "{image}");
            for p in l["paths"].as_array().unwrap() {
                assert_eq!(p["why"], "unknown (image input)", "{image}");
            }
        }
    }
    // The compressed sizes are those of the blobs the layouts hold.
    for (dir, name) in [(&layout, oci.as_str()), (&skopeo_dir, "skopeo")] {
        let reference = if name == "skopeo" { format!("oci:{}:s", dir.display()) } else { name.to_string() };
        let e = li_json(os!["explain", reference, "--json"]);
        let blobs = layout_blobs(dir);
        for (l, (digest, len)) in e["layers"].as_array().unwrap().iter().zip(&blobs) {
            assert_eq!(l["blob"]["digest"], *digest, "{name}");
            assert_eq!(l["blob"]["size"], *len, "{name}");
        }
    }
    // Our gzip and skopeo's differ; the tars do not.
    assert_ne!(layout_blobs(&layout), layout_blobs(&skopeo_dir));

    let text = String::from_utf8(run(Command::new(bin()).arg("explain").arg(&oci)).stdout).unwrap();
    assert!(text.contains(&format!("/{}  unknown (image input)", store.busybox)), "{text}");
}

/// `diff` of an image and a conf (either way round) reports what `diff`
/// of the two confs reports: the same statuses, paths and upload bytes.
#[test]
fn diff_of_an_image_and_a_conf_is_that_of_the_confs() {
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    let a = root.join("conf.json");
    let (b, _) = rebuilt_script_conf(&store);
    let oci_a = format!("oci:{}:a", root.join("layout").display());
    let oci_b = format!("oci:{}:b", root.join("layout").display());
    run(Command::new(bin()).arg("copy").arg(&a).arg(&oci_a).env("LAYERED_IMAGE_CACHE_DIR", root.join("cache-copy")));
    run(Command::new(bin()).arg("copy").arg(&b).arg(&oci_b).env("LAYERED_IMAGE_CACHE_DIR", root.join("cache-copy")));
    let diff = |x: &dyn AsRef<std::ffi::OsStr>, y: &dyn AsRef<std::ffi::OsStr>| {
        let out = run(Command::new(bin()).arg("diff").arg(x).arg(y).arg("--json").env("LAYERED_IMAGE_CACHE_DIR", root.join("cache-diff")));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let layers: Vec<(Value, Value, Value)> = v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let abs = |k: &str| -> Value {
                    l[k].as_array().unwrap().iter().map(|p| Value::from(format!("/{}", p.as_str().unwrap().trim_start_matches('/')))).collect()
                };
                (l["status"].clone(), l["diff_id"].clone(), json!([abs("paths_added"), abs("paths_removed"), l["size"]]))
            })
            .collect();
        (layers, v["upload_bytes"].clone())
    };
    let confs = diff(&a, &b);
    assert_eq!(confs.0.iter().map(|l| l.0.as_str().unwrap()).collect::<Vec<_>>(), ["kept", "changed", "kept"], "{confs:?}");
    assert!(confs.1.as_u64().unwrap() > 0);
    assert_eq!(diff(&oci_a, &b), confs, "image A, conf B");
    assert_eq!(diff(&a, &oci_b), confs, "conf A, image B: B's blobs as the layout holds them");
    assert_eq!(diff(&oci_a, &oci_b), confs, "two images");

    // B as skopeo writes it (its own gzip, its own config): the upload is
    // skopeo's blob of the changed layer and skopeo's config, as the layout holds them.
    require("skopeo");
    let archive_b = root.join("b.tar");
    run(Command::new(bin()).arg("stream").arg(&b).arg("-o").arg(&archive_b).arg("-q"));
    let skopeo_dir = root.join("skopeo-b");
    run(Command::new("skopeo").arg("copy").arg(format!("docker-archive:{}", archive_b.display())).arg(format!("oci:{}:b", skopeo_dir.display())));
    let skopeo_b = format!("oci:{}:b", skopeo_dir.display());
    let out = run(Command::new(bin()).arg("diff").arg(&a).arg(&skopeo_b).arg("--json").env("LAYERED_IMAGE_CACHE_DIR", root.join("cache-diff")));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    let blobs = layout_blobs(&skopeo_dir);
    assert_eq!(d["layers"][1]["status"], "changed");
    assert_eq!(d["layers"][1]["upload"], blobs[1].1, "the changed layer's blob as skopeo wrote it");
    let index: Value = serde_json::from_slice(&std::fs::read(skopeo_dir.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(&std::fs::read(skopeo_dir.join("blobs/sha256").join(&m[7..])).unwrap()).unwrap();
    assert_eq!(d["config_upload"], manifest["config"]["size"]);
    assert_eq!(d["upload_bytes"], blobs[1].1 + manifest["config"]["size"].as_u64().unwrap());
    assert_ne!(d["upload_bytes"], confs.1, "skopeo's gzip is not ours");
}

/// Images that cannot be read: one error naming the image (and the layer
/// at fault), exit 1, nothing on stdout.
#[test]
fn a_bad_image_is_one_clear_error() {
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    let conf = root.join("conf.json");
    let missing = format!("oci:{}:t", root.join("nowhere").display());
    let out = li(os!["explain", missing]);
    let err = out.fails(&[&missing]);
    assert!(out.stdout.is_empty(), "{err}");
    li(os!["diff", conf, missing]).fails(&[&missing]);
    li(os!["explain", "docker://127.0.0.1:9/x:y"]).fails(&["docker://127.0.0.1:9/x:y", "oci:, oci-archive: and docker-archive:"]);
    // A layer whose bytes are not what the config's diff_id names.
    let layout = root.join("layout");
    let oci = format!("oci:{}:t", layout.display());
    run(Command::new(bin()).arg("copy").arg(&conf).arg(&oci).arg("--compress").arg("none"));
    // busybox's layer: its middle is the binary's data, not a tar header.
    let (digest, _) = layout_blobs(&layout)[0].clone();
    let blob = layout.join("blobs/sha256").join(&digest[7..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    run(Command::new("chmod").arg("u+w").arg(&blob));
    std::fs::write(&blob, bytes).unwrap();
    let out = li(os!["explain", oci]);
    let err = out.fails(&[&format!("layer blobs/sha256/{} of {oci}", &digest[7..]), "not the diff_id"]);
    assert!(out.stdout.is_empty(), "{err}");
    li(os!["explain", oci, "--graph", conf]).fails(&["--graph", &oci, "is an image"]);
}

/// An image's layers are read as streams: explaining one whose layer is
/// 40 MiB stays in a fraction of that, and every number is the archive's
/// own (each layer member's length and sha256, read with the tar crate).
#[test]
fn an_image_is_read_as_a_stream_and_measured_by_its_bytes() {
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    let data = "nix/store/3c0d8w1h5q2n8m4k6j7p9r0s2t4v6x8z-data";
    std::fs::create_dir_all(root.join(data)).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..(40 << 20) / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    std::fs::write(root.join(data).join("blob"), &bytes).unwrap();
    drop(bytes);
    let conf_path = root.join("conf.json");
    let mut conf: Value = serde_json::from_slice(&std::fs::read(&conf_path).unwrap()).unwrap();
    conf["store_layers"] = json!([[store.busybox], [data]]);
    std::fs::write(&conf_path, serde_json::to_vec(&conf).unwrap()).unwrap();
    let image = root.join("image.tar");
    run(Command::new(bin()).arg("stream").arg(&conf_path).arg("-o").arg(&image).arg("-q"));
    verify_image(image.to_str().unwrap());

    let name = format!("docker-archive:{}", image.display());
    let out = li(os!["explain", name, "--json"]);
    out.succeeds().rss_below_mib(24);
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = members(&image);
    let manifest: Value = serde_json::from_slice(&m["manifest.json"]).unwrap();
    let names = manifest[0]["Layers"].as_array().unwrap();
    assert_eq!(e["layers"].as_array().unwrap().len(), names.len());
    for (l, name) in e["layers"].as_array().unwrap().iter().zip(names) {
        let tar = &m[name.as_str().unwrap()];
        assert_eq!(l["size"], tar.len() as u64);
        assert_eq!(l["diff_id"], format!("sha256:{}", sha256_hex(tar)));
        let spans = member_spans(tar);
        assert_eq!(l["files"], spans.len() as u64);
        for p in l["paths"].as_array().unwrap() {
            let prefix = p["path"].as_str().unwrap();
            let mine: Vec<&(String, u64)> =
                spans.iter().filter(|(n, _)| n.trim_end_matches('/') == prefix || n.starts_with(&format!("{prefix}/"))).collect();
            assert!(!mine.is_empty(), "{prefix}");
            assert_eq!(p["size"], mine.iter().map(|(_, s)| s).sum::<u64>(), "{prefix}");
            assert_eq!(p["files"], mine.len() as u64, "{prefix}");
        }
        let sum: u64 = l["paths"].as_array().unwrap().iter().map(|p| p["size"].as_u64().unwrap()).sum();
        assert_eq!(sum + l["overhead"].as_u64().unwrap(), tar.len() as u64);
    }
    assert_eq!(e["layers"][1]["paths"][0]["path"], format!("/{data}"));
    assert!(e["layers"][1]["size"].as_u64().unwrap() > 40 << 20);
}
