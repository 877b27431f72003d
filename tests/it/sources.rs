//! `copy SOURCE DEST` with images as sources: OCI layouts, oci-archives
//! and docker-archives (ours and skopeo's), blobs passed through as they
//! are when the destination takes their compression, every digest checked.

use crate::harness::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn li_copy(src: &str, dest: &str, extra: &[&str]) -> String {
    let out = run(Command::new(bin()).arg("copy").arg(src).arg(dest).args(extra));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn li_copy_fails(src: &str, dest: &str) -> String {
    let out = Command::new(bin()).arg("copy").arg(src).arg(dest).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "should fail: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = err.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("layered-image: error: "), "{err}");
    last
}

fn index(layout: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap()
}

fn manifest_digest(layout: &Path) -> String {
    index(layout)["manifests"][0]["digest"].as_str().unwrap().to_string()
}

fn blob_files(layout: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn layouts_and_archives_copy_to_the_same_image() {
    require("skopeo");
    require("umoci");
    let store = busybox_store(0, 0);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf_path = store.dir.path().join("conf.json");
    let conf = conf_path.as_path();
    let a = d.join("a");
    run(Command::new(bin()).arg("copy").arg(conf).arg(format!("oci:{}:v1", a.display())));
    let want = manifest_digest(&a);

    // Layout to layout: the blobs are the very files, the manifest the same.
    let b = d.join("b");
    li_copy(&format!("oci:{}:v1", a.display()), &format!("oci:{}:v1", b.display()), &[]);
    assert_eq!(manifest_digest(&b), want);
    assert_eq!(blob_files(&b), blob_files(&a));
    verify_image(&format!("oci:{}:v1", b.display()));

    // Again: every layer is there already and is not read.
    let err = li_copy(&format!("oci:{}:v1", a.display()), &format!("oci:{}:v1", b.display()), &[]);
    assert!(err.contains("(0 written, 3 already present)"), "{err}");

    // A docker-archive (stream's) gives the same image as the conf.
    let tar = d.join("image.tar");
    run(Command::new(bin()).arg("stream").arg(conf).arg("-o").arg(&tar));
    let c = d.join("c");
    li_copy(&format!("docker-archive:{}", tar.display()), &format!("oci:{}:v1", c.display()), &[]);
    assert_eq!(manifest_digest(&c), want);
    verify_image(&format!("oci:{}:v1", c.display()));

    // skopeo's own layouts (Docker v2s2 media types included) and oci-archives read too.
    let s = d.join("s");
    run(Command::new("skopeo")
        .args(["copy", "--format", "v2s2"])
        .arg(format!("docker-archive:{}", tar.display()))
        .arg(format!("oci:{}:x", s.display())));
    let e = d.join("e.tar");
    li_copy(&format!("oci:{}:x", s.display()), &format!("oci-archive:{}:v1", e.display()), &[]);
    verify_image(&format!("oci-archive:{}:v1", e.display()));
    let f = d.join("f");
    li_copy(&format!("oci-archive:{}:v1", e.display()), &format!("oci:{}:v1", f.display()), &["--compress", "zstd"]);
    verify_image(&format!("oci:{}:v1", f.display()));
    // The image ID (config digest) survives every route.
    // (skopeo's oci: transport does not read back its own v2s2 layouts; the files do.)
    let config = |l: &Path, r: &str| {
        let index = index(l);
        let d = index["manifests"].as_array().unwrap().iter().find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == r).unwrap();
        let m: Value =
            serde_json::from_slice(&std::fs::read(l.join("blobs/sha256").join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"))).unwrap())
                .unwrap();
        m["config"]["digest"].as_str().unwrap().to_string()
    };
    assert_eq!(config(&f, "v1"), config(&a, "v1"));
    assert_eq!(config(&s, "x"), config(&a, "v1"));
    // A real reader unpacks the copy: the store is in it.
    let bundle = d.join("bundle");
    run(Command::new("umoci").args(["unpack", "--rootless", "--image"]).arg(format!("{}:v1", c.display())).arg(&bundle));
    assert!(bundle.join("rootfs/nix/store").is_dir());
}

#[test]
fn a_source_whose_blob_lies_is_refused_and_names_it() {
    let store = busybox_store(0, 0);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = d.join("a");
    run(Command::new(bin()).arg("copy").arg(store.dir.path().join("conf.json")).arg(format!("oci:{}:v1", a.display())));
    let m: Value =
        serde_json::from_slice(&std::fs::read(a.join("blobs/sha256").join(manifest_digest(&a).trim_start_matches("sha256:"))).unwrap()).unwrap();
    let layer = m["layers"][1]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let path = a.join("blobs/sha256").join(&layer);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let b = d.join("b");
    let err = li_copy_fails(&format!("oci:{}:v1", a.display()), &format!("oci:{}:v1", b.display()));
    assert!(err.contains(&layer), "the error names the blob: {err}");
    // Nothing names a broken image.
    assert!(!b.join("index.json").exists() || index(&b)["manifests"].as_array().unwrap().is_empty(), "a tag names a broken image");

    // A config that is not what the manifest names is refused before any layer.
    let err = li_copy_fails(&format!("oci:{}:nope", a.display()), &format!("oci:{}:v1", b.display()));
    assert!(err.contains("names no image \"nope\""), "{err}");
}

#[test]
fn images_go_only_where_blobs_go() {
    let store = busybox_store(0, 0);
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    run(Command::new(bin()).arg("copy").arg(store.dir.path().join("conf.json")).arg(format!("oci:{}:v1", a.display())));
    let err = li_copy_fails(&format!("oci:{}:v1", a.display()), &format!("docker-archive:{}", dir.path().join("x.tar").display()));
    assert!(err.contains("is an image") && err.contains("oci:"), "{err}");
    assert!(!dir.path().join("x.tar").exists());
}
