//! Replays every fuzz input kept in the repository through the same code
//! the fuzz targets run (fuzz/fuzz_targets/*.rs): the seed corpus and the
//! crashes found so far (fuzz/regressions/<target>/, one file per crash,
//! named after what it caught). Runs in the normal test suite, so a fixed
//! crash stays fixed without cargo-fuzz.

use layered_image::conf::Conf;
use layered_image::image::base::BaseImage;
use layered_image::plan::graph::{Graph, parse_raw, raw_nodes_from_value};
use layered_image::plan::layering::pipeline::{parse_pipeline, run_pipeline};
use layered_image::plan::layering::{auto_layer::auto_layer, popularity_paths};
use layered_image::time::DateTime;
use serde_json::Value;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        if let Ok(rd) = std::fs::read_dir(root.join(dir).join(target)) {
            files.extend(rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no inputs for {target}");
    files
}

fn each(target: &str, f: impl Fn(&Path, &[u8])) {
    for p in inputs(target) {
        let data = std::fs::read(&p).unwrap();
        eprintln!("{target}: {}", p.display());
        f(&p, &data);
    }
}

fn conf(data: &[u8]) {
    let _ = Conf::parse(data, Path::new("/fuzz/conf.json"), DateTime::from_unix_micros(1_700_000_000_000_000));
}

fn graph(data: &[u8]) {
    let Some((sel, text)) = data.split_first() else {
        return;
    };
    let key = if sel & 1 == 1 { Some("graph") } else { None };
    let Ok(raw) = parse_raw(text, key, "fuzz.json") else {
        return;
    };
    let Ok(g) = Graph::build(&raw, "fuzz.json") else {
        return;
    };
    let _ = popularity_paths(&g);
    let _ = auto_layer(&g, &HashSet::new(), i64::from(sel >> 1) - 8, false);
}

fn pipeline(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (Some(graph), Some(pipeline)) = (v.get("graph"), v.get("pipeline")) else {
        return;
    };
    let Ok(raw) = raw_nodes_from_value(graph, None, "fuzz.json") else {
        return;
    };
    let Ok(steps) = parse_pipeline(pipeline) else {
        return;
    };
    let exclude: HashSet<String> = v
        .get("exclude_paths")
        .and_then(Value::as_array)
        .map(|xs| xs.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let _ = run_pipeline(&raw, &exclude, &steps, "fuzz.json");
}

use layered_image::image::Quiet;

/// The fuzz target's conf: no store layers, an empty customisation layer.
fn empty_conf(dir: &Path) -> Conf {
    let custom = dir.join("custom");
    std::fs::create_dir_all(&custom).unwrap();
    std::fs::write(custom.join("layer.tar"), vec![0u8; 10240]).unwrap();
    std::fs::write(custom.join("checksum"), "84ff92691f909a05b224e1c56abb4864f01b4f8e3c854e4bb4c7baf1d3f6d652\n").unwrap();
    let text = serde_json::json!({
        "architecture": "amd64", "config": {}, "created": "1970-01-01T00:00:01Z", "uid": 0, "gid": 0,
        "uname": "root", "gname": "root", "store_dir": "/nix/store", "from_image": null,
        "store_layers": [], "customisation_layer": custom, "repo_tag": "fuzz:1"
    });
    Conf::parse(text.to_string().as_bytes(), Path::new("/fuzz/conf.json"), DateTime::from_unix_micros(0)).unwrap()
}

fn base_image(path: &Path, conf: &Conf) {
    let Ok(img) = BaseImage::open(path) else {
        return;
    };
    let mut buf = vec![0u8; 64 * 1024];
    for layer in &img.layers {
        let Ok(mut r) = img.layer_reader(layer) else {
            continue;
        };
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
    let _ =
        layered_image::dest::docker_archive::stream(conf, Some(&img), "fuzz:1", std::io::sink(), &Quiet, &std::sync::atomic::AtomicBool::new(false));
}

/// The verify target: verify never panics on the input, and whatever
/// stream builds on it as a base image verifies.
fn verify_input(path: &Path, conf: &Conf) {
    use layered_image::verify::{Target, verify};
    let _ = verify(&Target::Path(path.to_path_buf()));
    let Ok(base) = BaseImage::open(path) else { return };
    let mut out = tempfile::NamedTempFile::new().unwrap();
    if layered_image::dest::docker_archive::stream(conf, Some(&base), "fuzz:1", out.as_file_mut(), &Quiet, &std::sync::atomic::AtomicBool::new(false))
        .is_err()
    {
        return;
    }
    if let Err(e) = verify(&Target::DockerArchive { path: out.path().to_path_buf(), reference: None }) {
        panic!("{}: stream accepted it as a base image, but its output does not verify: {e}", path.display());
    }
}

#[test]
fn conf_inputs() {
    each("conf", |_, d| conf(d));
}

#[test]
fn graph_inputs() {
    each("graph", |_, d| graph(d));
}

#[test]
fn pipeline_inputs() {
    each("pipeline", |_, d| pipeline(d));
}

#[test]
fn base_image_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let conf = empty_conf(dir.path());
    each("base_image", |p, _| base_image(p, &conf));
}

#[test]
fn verify_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let conf = empty_conf(dir.path());
    // The base-image regressions are hostile archives for verify too.
    each("verify", |p, _| verify_input(p, &conf));
    each("base_image", |p, _| verify_input(p, &conf));
}
