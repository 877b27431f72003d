//! `layered-image conf`: the contract the Nix side relies on.

use assert_cmd::Command;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

fn bin() -> Command {
    Command::cargo_bin("layered-image").unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

const A: &str = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app-1.0";
const B: &str = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib-2.0";
const C: &str = "/nix/store/cccccccccccccccccccccccccccccccc-libc-3.0";
const D: &str = "/nix/store/dddddddddddddddddddddddddddddddd-base.json";
const E: &str = "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-img-customisation-layer";

fn graph() -> Value {
    json!([
        {"path": E, "references": [A], "narSize": 10, "closureSize": 0},
        {"path": D, "references": [A], "narSize": 1},
        {"path": A, "references": [A, B, C], "narSize": 100},
        {"path": B, "references": [C], "narSize": 5000},
        {"path": C, "references": [], "narSize": 30000},
    ])
}

struct Setup {
    dir: tempfile::TempDir,
    graph: PathBuf,
    base: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let graph = write(dir.path(), "graph.json", graph().to_string().as_bytes());
    let base = write(dir.path(), "base.json", br#"{"config":{"Cmd":["/bin/app"],"Env":["A=1","B=\u00e9"]},"architecture":"amd64","os":"linux"}"#);
    Setup { dir, graph, base }
}

fn conf_cmd(s: &Setup, graph: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args(["conf", "--graph"]).arg(graph).arg("--base-json").arg(&s.base);
    c.args(["--customisation-layer", E, "--image-name", "my/img", "--image-tag", "v1", "--exclude", D, "--exclude", E]);
    c.args(extra);
    c
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The same conf made by jq with the filter of nixpkgs' conf derivation.
fn jq_conf(s: &Setup, layers: &Value, extra: &[(&str, &str)]) -> String {
    let layers_file = write(s.dir.path(), "layers.json", layers.to_string().as_bytes());
    let mut args: Vec<(String, String)> = [
        ("store_dir", "/nix/store"),
        ("customisation_layer", E),
        ("repo_tag", "my/img:v1"),
        ("created", "1970-01-01T00:00:01+00:00"),
        ("mtime", "1970-01-01T00:00:01+00:00"),
        ("uid", "0"),
        ("gid", "0"),
        ("uname", "root"),
        ("gname", "root"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        args.iter_mut().find(|(a, _)| a == k).unwrap().1 = v.to_string();
    }
    let mut cmd = std::process::Command::new("jq");
    cmd.arg(
        r#". + {
          "store_dir": $store_dir, "from_image": $from_image, "store_layers": $store_layers[0],
          "customisation_layer", $customisation_layer, "repo_tag": $repo_tag, "created": $created,
          "mtime": $mtime, "uid": $uid, "gid": $gid, "uname": $uname, "gname": $gname }"#,
    );
    cmd.args(["--argjson", "from_image", "null", "--slurpfile", "store_layers"]).arg(&layers_file);
    for (k, v) in &args {
        cmd.args(["--arg", k, v]);
    }
    let out = cmd.arg(&s.base).output().expect("jq is required by this test (tests/install-deps.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn same_bytes_as_the_jq_conf_derivation() {
    let s = setup();
    let text = run(&mut conf_cmd(&s, &s.graph, &["--layering", "popularity", "--max-layers", "3"]));
    let conf: Value = serde_json::from_str(&text).unwrap();
    // Popularity: libc, lib, app (helpers excluded after ranking); 2 store layers.
    assert_eq!(conf["store_layers"], json!([[C], [B, A]]));
    assert_eq!(text, jq_conf(&s, &conf["store_layers"], &[]));
    let keys: Vec<&str> = conf.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "config",
            "architecture",
            "os",
            "store_dir",
            "from_image",
            "store_layers",
            "customisation_layer",
            "repo_tag",
            "created",
            "mtime",
            "uid",
            "gid",
            "uname",
            "gname"
        ]
    );

    let text = run(&mut conf_cmd(
        &s,
        &s.graph,
        &[
            "--created",
            "2024-03-01T01:30:00+02:00",
            "--mtime",
            "now",
            "--uid",
            "1000",
            "--gid",
            "100",
            "--uname",
            "user",
            "--gname",
            "users",
            "--store-dir",
            "/nix/store",
        ],
    ));
    let conf: Value = serde_json::from_str(&text).unwrap();
    let expected = jq_conf(
        &s,
        &conf["store_layers"],
        &[("created", "2024-02-29T23:30:00+00:00"), ("mtime", "now"), ("uid", "1000"), ("gid", "100"), ("uname", "user"), ("gname", "users")],
    );
    assert_eq!(text, expected);
}

#[test]
fn auto_is_the_default_and_output_file_is_written() {
    let s = setup();
    let stdout = run(&mut conf_cmd(&s, &s.graph, &[]));
    let conf: Value = serde_json::from_str(&stdout).unwrap();
    // auto-layer: each large path its own layer; helpers never appear.
    assert_eq!(conf["store_layers"], json!([[C], [B], [A]]));
    let out = s.dir.path().join("conf.json");
    run(&mut conf_cmd(&s, &s.graph, &["-o", out.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), stdout);
    let conf: Value = serde_json::from_str(&run(&mut conf_cmd(&s, &s.graph, &["--max-layers", "3"]))).unwrap();
    assert_eq!(conf["store_layers"], json!([[C], [A, B]]));
}

#[test]
fn graph_input_forms() {
    let s = setup();
    let reference = run(&mut conf_cmd(&s, &s.graph, &[]));
    let forms = [
        ("attrs.json", json!({"graph": graph(), "exclude_paths": [D], "pipeline": []}), None),
        ("custom.json", json!({"closure": graph(), "other": [1]}), Some("closure")),
        ("only-list.json", json!({"closure": graph(), "name": "x"}), None),
    ];
    for (name, value, key) in forms {
        let f = write(s.dir.path(), name, value.to_string().as_bytes());
        let mut cmd = conf_cmd(&s, &f, &[]);
        if let Some(k) = key {
            cmd.args(["--graph-key", k]);
        }
        assert_eq!(run(&mut cmd), reference, "{name}");
    }
    // `nix path-info --json -r`: array form, and object form keyed by path (narSize may be missing).
    let info: Vec<Value> = graph()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| json!({"path": n["path"], "narSize": n["narSize"], "references": n["references"], "valid": true}))
        .collect();
    let f = write(s.dir.path(), "path-info.json", Value::Array(info.clone()).to_string().as_bytes());
    assert_eq!(run(&mut conf_cmd(&s, &f, &[])), reference);
    let mut object = serde_json::Map::new();
    for n in &info {
        object.insert(n["path"].as_str().unwrap().into(), json!({"narSize": n["narSize"], "references": n["references"]}));
    }
    let f = write(s.dir.path(), "path-info-object.json", Value::Object(object.clone()).to_string().as_bytes());
    assert_eq!(run(&mut conf_cmd(&s, &f, &[])), reference);
    for v in object.values_mut() {
        v.as_object_mut().unwrap().remove("narSize");
    }
    let f = write(s.dir.path(), "no-sizes.json", Value::Object(object).to_string().as_bytes());
    let conf: Value = serde_json::from_str(&run(&mut conf_cmd(&s, &f, &["--layering", "popularity"]))).unwrap();
    assert_eq!(conf["store_layers"], json!([[C], [B], [A]]));
}

fn docker_archive(layers: usize) -> Vec<u8> {
    let manifest = json!([{"Config": "c.json", "RepoTags": ["base:1"],
        "Layers": (0..layers).map(|i| format!("{i}/layer.tar")).collect::<Vec<_>>()}]);
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in [("c.json", "{}".to_string()), ("manifest.json", manifest.to_string())] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, data.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn from_image_layers_count_against_max_layers_in_any_compression() {
    let s = setup();
    let plain = docker_archive(3);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&plain).unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&plain).unwrap();
    let images = [
        ("base.tar", plain.clone()),
        ("base.tar.gz", gz.finish().unwrap()),
        ("base.tar.bz2", bz.finish().unwrap()),
        ("base.tar.xz", xz.finish().unwrap()),
        ("base.tar.zst", zstd::encode_all(&plain[..], 3).unwrap()),
    ];
    for (name, bytes) in images {
        let image = write(s.dir.path(), name, &bytes);
        let image = image.to_str().unwrap();
        // 6 - 3 base - 1 customisation = 2 store layers.
        let text = run(&mut conf_cmd(&s, &s.graph, &["--from-image", image, "--max-layers", "6", "--layering", "popularity"]));
        let conf: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(conf["store_layers"], json!([[C], [B, A]]), "{name}");
        assert_eq!(conf["from_image"], json!(image));
        let out = conf_cmd(&s, &s.graph, &["--from-image", image, "--max-layers", "4"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("usedLayers 4 layers"), "{name}");
    }
}

#[test]
fn pipeline_ignores_max_layers_and_from_image() {
    let s = setup();
    let pipeline = write(s.dir.path(), "p.json", br#"[["popularity_contest"], ["limit_layers", 2]]"#);
    let text = run(&mut conf_cmd(
        &s,
        &s.graph,
        &["--layering", "pipeline", "--pipeline", pipeline.to_str().unwrap(), "--max-layers", "1", "--from-image", "/nonexistent/base.tar"],
    ));
    let conf: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(conf["store_layers"], json!([[C], [B, A]]));
    assert_eq!(conf["from_image"], json!("/nonexistent/base.tar"));
    let wrapped = write(s.dir.path(), "w.json", br#"{"pipeline": [["popularity_contest"], ["reverse"], ["limit_layers", 2]]}"#);
    let text = run(&mut conf_cmd(&s, &s.graph, &["--layering", "pipeline", "--pipeline", wrapped.to_str().unwrap()]));
    let conf: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(conf["store_layers"], json!([[A], [B, C]]));
}

/// What nixpkgs users write for `created` and `mtime`: every form GNU
/// `date -d` reads. nixpkgs runs `date -Iseconds -d STR` in the build
/// (no TZ: UTC); ours must print the same.
const DATE_CORPUS: &[&str] = &[
    "1970-01-01T00:00:01Z",
    "2024-01-01",
    "2024-02-29",
    "2024-03-01T01:30:00+02:00",
    "2021-05-06 07:08:09",
    "2021-05-06T07:08:09.999Z",
    "1999-12-31T23:59:59-05:30",
    "2038-01-19T03:14:08Z",
    "2000-01-01T00:00",
    "1969-07-20T20:17:40Z",
    "@0",
    "@1700000000",
    "@-86400",
    "20240101",
    "20240101T1200",
    "Jan 1 2024",
    "January 1, 2024",
    "1 Jan 2024",
    "jan 1 2024 10:00",
    "Mon, 01 Jan 2024 12:00:00 +0100",
    "Tue, 15 Nov 1994 08:12:31 GMT",
    "Sat, 29 Feb 2020 23:59:59 -0800",
    "2024-01-01 12:00 UTC",
    "2024-01-01 12:00 GMT",
    "2024-01-01 12:00 Z",
    "2024-01-01 12:00:00 EST",
    "2024-07-01 12:00:00 PDT",
    "2024-01-01 12:00:00 CET",
    "2024-01-01T12:00:00+0530",
    "2024-01-01T12:00:00-08",
    "2024-01-01 12:00 UTC+3",
    "12/31/2023",
    "12/31/2023 23:59:59",
    "2024-01-01 1:02:03 pm",
    "2024-01-01 12:00am",
    "31 December 1999 23:59",
    "2024-06-15T10:20:30.123456789+01:00",
];

fn gnu_date(input: &str) -> Option<String> {
    let out = std::process::Command::new("date").env("TZ", "UTC").args(["-Iseconds", "-d", input]).output().expect("GNU date is required");
    out.status.success().then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
}

#[test]
fn dates_normalise_like_gnu_date_in_utc() {
    let mut wrong = Vec::new();
    for input in DATE_CORPUS {
        let ours = layered_image::plan::confgen::date::normalize(input).ok();
        let gnu = gnu_date(input);
        assert!(gnu.is_some(), "GNU date refuses corpus entry {input:?}");
        if ours != gnu {
            wrong.push(format!("{input:?}: GNU date {gnu:?}, ours {ours:?}"));
        }
    }
    // Refused by both.
    for input in ["2023-02-29", "not a date", "2024-13-01", "25:00", "1999-12-31 23:59:60"] {
        assert_eq!(gnu_date(input), None, "{input}");
        if let Ok(v) = layered_image::plan::confgen::date::normalize(input) {
            wrong.push(format!("{input:?}: GNU date refuses it, ours {v:?}"));
        }
    }
    assert!(wrong.is_empty(), "differences from GNU date:\n{}", wrong.join("\n"));
}

/// `layered-image conf --created/--mtime` (what the Nix wrapper calls) puts
/// GNU date's answer into the conf.
#[test]
fn conf_dates_are_gnu_dates() {
    let s = setup();
    for input in DATE_CORPUS {
        let text = run(&mut conf_cmd(&s, &s.graph, &["--created", input, "--mtime", input]));
        let conf: Value = serde_json::from_str(&text).unwrap();
        let gnu = gnu_date(input).unwrap();
        assert_eq!(conf["created"], json!(gnu), "created {input:?}");
        assert_eq!(conf["mtime"], json!(gnu), "mtime {input:?}");
    }
    let out = conf_cmd(&s, &s.graph, &["--created", "the day after never"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("created") && err.contains("the day after never"), "{err}");
}

/// nixpkgs' conf step takes any name and tag; so does `conf`, with one
/// warning line saying why Docker will refuse the name.
#[test]
fn image_names_and_tags_nixpkgs_accepts() {
    let s = setup();
    for (name, tag, needle) in [
        ("my//img", "v1", "invalid image name \"my//img\""),
        ("_foo", "v1", "invalid image name \"_foo\""),
        ("my/img", "bad tag", "invalid image tag \"bad tag\""),
        ("my/img", "1.0.0+build1", "invalid image tag \"1.0.0+build1\""),
        ("my/img", "feature/x", "invalid image tag \"feature/x\""),
        ("my/img", "", "invalid image tag \"\": it is empty"),
    ] {
        let mut c = bin();
        c.args(["conf", "--graph"]).arg(&s.graph).arg("--base-json").arg(&s.base);
        c.args(["--customisation-layer", E, "--image-name", name, "--image-tag", tag]);
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}:{tag}: {err}");
        let conf: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(conf["repo_tag"], json!(format!("{name}:{tag}")));
        let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
        assert_eq!(warnings.len(), 1, "{name}:{tag}: {err}");
        assert!(warnings[0].contains(needle) && warnings[0].contains("docker load"), "{name}:{tag}: {err}");
    }
    // registry hosts with ports and upper-case domains are names: no warning
    let mut c = bin();
    c.args(["conf", "--graph"]).arg(&s.graph).arg("--base-json").arg(&s.base);
    c.args(["--customisation-layer", E, "--image-name", "Registry.Example:5000/img", "--image-tag", "1.0"]);
    let out = c.output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"), "{}", String::from_utf8_lossy(&out.stderr));
    let conf: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(conf["repo_tag"], json!("Registry.Example:5000/img:1.0"));
}
