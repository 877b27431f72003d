//! Explicit layers (`layer`, Nix's buildLayer) and `conf --layer`: the
//! layers come first, nested ones before them, their paths are layered
//! nowhere else, and the digests their files carry are the ones the image
//! gets (so `copy` skips them unread), unless the image's owners or time
//! differ from the layer's.

use crate::harness as common;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    store: PathBuf,
}

fn store_path(f: &Fixture, name: &str) -> String {
    f.store.join(name).display().to_string()
}

/// A store of four paths: app -> lib -> libc, and tool; a graph of them
/// all, and a customisation layer.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let store = root.join("nix/store");
    for (name, body) in [("aaaa-libc", "libc\n"), ("bbbb-lib", "lib\n"), ("cccc-app", "app\n"), ("dddd-tool", "tool\n")] {
        std::fs::create_dir_all(store.join(name)).unwrap();
        std::fs::write(store.join(name).join("file"), body.repeat(1000)).unwrap();
    }
    let f = Fixture { _tmp: tmp, root, store };
    let node = |name: &str, refs: &[&str]| json!({"path": store_path(&f, name), "references": refs.iter().map(|r| store_path(&f, r)).collect::<Vec<_>>(), "narSize": 1000});
    let graph = json!({"graph": [
        node("aaaa-libc", &[]), node("bbbb-lib", &["aaaa-libc"]), node("cccc-app", &["bbbb-lib"]), node("dddd-tool", &[]),
    ]});
    write(&f.root.join("graph.json"), &graph);
    let sub = |names: &[&str]| json!({"graph": graph["graph"].as_array().unwrap().iter().filter(|n| names.iter().any(|x| n["path"].as_str().unwrap().ends_with(x))).cloned().collect::<Vec<_>>()});
    write(&f.root.join("libs-graph.json"), &sub(&["aaaa-libc", "bbbb-lib"]));
    write(&f.root.join("app-graph.json"), &sub(&["aaaa-libc", "bbbb-lib", "cccc-app"]));
    write(&f.root.join("base.json"), &json!({"architecture": "amd64", "config": {}, "os": "linux"}));
    std::fs::create_dir_all(f.root.join("custom-src")).unwrap();
    std::fs::write(f.root.join("custom-src/x"), "x").unwrap();
    custom_layer(&f.root.join("custom-src"), &f.root.join("custom"));
    f
}

fn write(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

fn read(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn layer(f: &Fixture, out: &str, graph: &str, args: &[&str]) -> PathBuf {
    let path = f.root.join(out);
    run(Command::new(bin()).arg("layer").arg("--graph").arg(f.root.join(graph)).arg("--store-dir").arg(&f.store).args(args).arg("-o").arg(&path));
    path
}

/// `layered-image conf` of the fixture's graph, with `args`.
fn conf_cmd(f: &Fixture, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("conf")
        .arg("--graph")
        .arg(f.root.join("graph.json"))
        .arg("--base-json")
        .arg(f.root.join("base.json"))
        .arg("--customisation-layer")
        .arg(f.root.join("custom"))
        .args(["--image-name", "explicit", "--image-tag", "t", "--store-dir"])
        .arg(&f.store)
        .args(args);
    c
}

fn conf(f: &Fixture, out: &str, args: &[&str]) -> PathBuf {
    let path = f.root.join(out);
    run(conf_cmd(f, args).arg("-o").arg(&path));
    path
}

#[test]
fn explicit_layers_come_first_with_their_digests() {
    let f = fixture();
    let libs = layer(&f, "libs.json", "libs-graph.json", &[]);
    let app = layer(&f, "app.json", "app-graph.json", &["--layer", libs.to_str().unwrap()]);
    let libs_v = read(&libs);
    let app_v = read(&app);
    assert_eq!(libs_v["paths"], json!([store_path(&f, "aaaa-libc"), store_path(&f, "bbbb-lib")]));
    assert_eq!(app_v["paths"], json!([store_path(&f, "cccc-app")]), "nested layers' paths are left out");

    let with = conf(&f, "conf-with.json", &["--layer", app.to_str().unwrap()]);
    let c = read(&with);
    let layers = c["store_layers"].as_array().unwrap();
    assert_eq!(layers[0], libs_v["paths"], "the nested layer comes first");
    assert_eq!(layers[1], app_v["paths"]);
    let rest: Vec<&Value> = layers[2..].iter().flat_map(|l| l.as_array().unwrap()).collect();
    assert_eq!(rest, vec![&json!(store_path(&f, "dddd-tool"))], "only the other paths are layered automatically");
    assert_eq!(c["store_layer_digests"][0], libs_v["digest"]);
    assert_eq!(c["store_layer_digests"][1], app_v["digest"]);
    assert!(c["store_layer_digests"][2].is_null());

    // The digests are the image's: stream (which checks them) makes the
    // same bytes with and without them, and copy skips those layers.
    let mut without = c.clone();
    without.as_object_mut().unwrap().remove("store_layer_digests");
    write(&f.root.join("conf-without.json"), &without);
    let a = run(Command::new(bin()).arg("stream").arg(&with)).stdout;
    let b = run(Command::new(bin()).arg("stream").arg(f.root.join("conf-without.json"))).stdout;
    assert!(a == b, "digests from layer files changed the image");
    let layout = f.root.join("layout");
    run(Command::new(bin()).arg("copy").arg(&with).arg(format!("oci:{}:t", layout.display())));
    verify_image(&format!("oci:{}:t", layout.display()));
    let digests = run(Command::new(bin()).args(["digests", "--compress", "gzip"]).arg(&with)).stdout;
    std::fs::write(f.root.join("conf-digests.json"), digests).unwrap();
    let again = run(Command::new(bin()).arg("copy").arg(f.root.join("conf-digests.json")).arg(format!("oci:{}:t", layout.display())));
    assert!(String::from_utf8_lossy(&again.stderr).contains("(0 written, 4 already present)"), "{}", String::from_utf8_lossy(&again.stderr));
}

#[test]
fn a_layer_made_with_other_owners_gets_no_digest() {
    let f = fixture();
    let libs = layer(&f, "libs.json", "libs-graph.json", &["--uid", "1000"]);
    let c = read(&conf(&f, "conf.json", &["--layer", libs.to_str().unwrap()]));
    assert_eq!(c["store_layers"][0], read(&libs)["paths"]);
    assert!(c.get("store_layer_digests").is_none(), "{c}");
    // With the same owners, it does.
    let c = read(&conf(&f, "conf-1000.json", &["--layer", libs.to_str().unwrap(), "--uid", "1000"]));
    assert_eq!(c["store_layer_digests"][0], read(&libs)["digest"]);
    let image = f.root.join("image.tar");
    run(Command::new(bin()).arg("stream").arg(f.root.join("conf-1000.json")).arg("-o").arg(&image));
    verify_image(image.to_str().unwrap());
}

#[test]
fn the_same_layer_file_twice_and_nesting_are_layered_once() {
    let f = fixture();
    let libs = layer(&f, "libs.json", "libs-graph.json", &[]);
    let app = layer(&f, "app.json", "app-graph.json", &["--layer", libs.to_str().unwrap()]);
    let c = read(&conf(&f, "conf.json", &["--layer", libs.to_str().unwrap(), "--layer", app.to_str().unwrap()]));
    let all: Vec<&Value> = c["store_layers"].as_array().unwrap().iter().flat_map(|l| l.as_array().unwrap()).collect();
    assert_eq!(all.len(), 4, "every path once: {c}");
}

fn fails(cmd: &mut Command, want: &str) {
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().last().unwrap_or_default().starts_with("layered-image: error:") && err.contains(want), "{err}");
}

#[test]
fn bad_layer_files_and_budgets_get_one_clear_error() {
    let f = fixture();
    let libs = layer(&f, "libs.json", "libs-graph.json", &[]);
    let conf_cmd = |extra: &[&str]| conf_cmd(&f, extra);
    std::fs::write(f.root.join("junk.json"), "{").unwrap();
    fails(&mut conf_cmd(&["--layer", f.root.join("junk.json").to_str().unwrap()]), "junk.json is not valid JSON");
    write(&f.root.join("other.json"), &json!({"paths": []}));
    fails(&mut conf_cmd(&["--layer", f.root.join("other.json").to_str().unwrap()]), "not a layer file");
    // A layer nesting itself.
    let mut v = read(&libs);
    v["layers"] = json!([f.root.join("self.json").display().to_string()]);
    write(&f.root.join("self.json"), &v);
    fails(&mut conf_cmd(&["--layer", f.root.join("self.json").to_str().unwrap()]), "nests itself");
    // maxLayers counts explicit layers.
    fails(&mut conf_cmd(&["--layer", libs.to_str().unwrap(), "--max-layers", "2"]), "explicit layers leave no layer");
    // A FIFO is not read (it would block).
    let fifo = f.root.join("fifo.json");
    run(Command::new("mkfifo").arg(&fifo));
    fails(&mut conf_cmd(&["--layer", fifo.to_str().unwrap()]), "not a regular file");
    fails(Command::new(bin()).args(["layer", "--mtime", "now", "--graph"]).arg(f.root.join("graph.json")), "\"now\"");
}
