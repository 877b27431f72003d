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

/// Our layout of the busybox store, gzip, under `v1`.
fn our_layout(d: &Path) -> (BusyboxStore, std::path::PathBuf) {
    let store = busybox_store(0, 0);
    let a = d.join("a");
    run(Command::new(bin()).arg("copy").arg(store.dir.path().join("conf.json")).arg(format!("oci:{}:v1", a.display())));
    (store, a)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Stores `bytes` as a blob of `layout`; its descriptor digest.
fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

fn read_blob(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap()).unwrap()
}

/// A copy of `from` whose manifest (and config) `edit` changes; the index
/// names the new manifest under `v1`, with `entry`'s fields.
fn edited(from: &Path, to: &Path, edit: impl FnOnce(&Path, &mut Value, &mut Value)) -> String {
    run(Command::new("cp").arg("-r").arg(from).arg(to));
    let mut index = index(to);
    let mut manifest = read_blob(to, index["manifests"][0]["digest"].as_str().unwrap());
    let mut config = read_blob(to, manifest["config"]["digest"].as_str().unwrap());
    let before = config.clone();
    edit(to, &mut manifest, &mut config);
    if config != before {
        let config_bytes = serde_json::to_vec(&config).unwrap();
        manifest["config"]["digest"] = put_blob(to, &config_bytes).into();
        manifest["config"]["size"] = config_bytes.len().into();
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = put_blob(to, &bytes);
    index["manifests"][0]["digest"] = digest.clone().into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(to.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    digest
}

fn copy_refused(src: &Path, dest: &Path) -> String {
    let err = li_copy_fails(&format!("oci:{}:v1", src.display()), &format!("oci:{}:v1", dest.display()));
    assert!(!dest.join("index.json").exists() || index(dest)["manifests"].as_array().unwrap().is_empty(), "a broken image was tagged: {err}");
    err
}

fn verify_refuses(src: &Path) -> String {
    let out = Command::new(bin()).arg("verify").arg(format!("oci:{}:v1", src.display())).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "verify accepts {}", src.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn copy_refuses_what_verify_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_store, a) = our_layout(d);
    let dest = d.join("dest");

    // gzip data labelled zstd, and labelled uncompressed.
    for (case, media_type, says) in [
        ("zstd-label", "application/vnd.oci.image.layer.v1.tar+zstd", "zstd"),
        ("plain-label", "application/vnd.oci.image.layer.v1.tar", "uncompressed"),
    ] {
        let src = d.join(case);
        let mut layer = String::new();
        edited(&a, &src, |_, m, _| {
            m["layers"][1]["mediaType"] = media_type.into();
            layer = m["layers"][1]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
        });
        verify_refuses(&src);
        let err = copy_refused(&src, &dest);
        assert!(err.contains(&layer) && err.contains(media_type) && err.contains(&format!("says {says} data, but its bytes are gzip")), "{err}");
    }

    // A layer that is not a tar, its digests all true.
    let src = d.join("not-tar");
    let text = b"this is not a tar, only text\n".repeat(40);
    let hex = sha256_hex(&text);
    edited(&a, &src, |l, m, c| {
        put_blob(l, &text);
        m["layers"][1] =
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{hex}"), "size": text.len()});
        c["rootfs"]["diff_ids"][1] = format!("sha256:{hex}").into();
    });
    verify_refuses(&src);
    let err = copy_refused(&src, &dest);
    assert!(err.contains(&hex) && err.contains("the first block is not a tar header"), "{err}");

    // A zstd bomb (zeros, no tar) stops at verify's bound, not at its end.
    let src = d.join("bomb");
    let zeros = zstd::encode_all(std::io::Read::take(std::io::repeat(0), 256 << 20), 19).unwrap();
    edited(&a, &src, |l, m, _| {
        let digest = put_blob(l, &zeros);
        m["layers"][1] = serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": digest, "size": zeros.len()});
    });
    assert!(verify_refuses(&src).contains("past the end of its tar archive"));
    let err = copy_refused(&src, &dest);
    assert!(err.contains("past the end of its tar archive") && err.contains("decompression bomb"), "{err}");

    // The manifest: schema 1, or calling itself an index.
    for (case, key, value, want) in [
        ("schema1", "schemaVersion", Value::from(1), "schemaVersion is 1, not 2"),
        ("self-index", "mediaType", Value::from("application/vnd.oci.image.index.v1+json"), "says mediaType"),
    ] {
        let src = d.join(case);
        let digest = edited(&a, &src, |_, m, _| m[key] = value);
        verify_refuses(&src);
        let err = copy_refused(&src, &dest);
        assert!(err.contains(want) && err.contains(digest.trim_start_matches("sha256:")), "{err}");
    }

    // A config typed as a layer (verify reads the manifest as an artifact).
    let src = d.join("config-as-layer");
    edited(&a, &src, |_, m, _| m["config"]["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into());
    let err = copy_refused(&src, &dest);
    assert!(err.contains("its config has the media type \"application/vnd.oci.image.layer.v1.tar\""), "{err}");

    // A config that is not JSON is named as the config.
    let src = d.join("config-not-json");
    edited(&a, &src, |l, m, _| {
        let garbage = b"{\"architecture\": ";
        m["config"]["digest"] = put_blob(l, garbage).into();
        m["config"]["size"] = garbage.len().into();
    });
    let err = copy_refused(&src, &dest);
    assert!(err.contains("the config: blobs/sha256/") && err.contains("invalid JSON"), "{err}");

    // The layout marker: missing, another version, not JSON.
    for (case, marker, want) in [
        ("no-marker", None, "cannot read oci-layout"),
        ("marker-v2", Some(&br#"{"imageLayoutVersion":"2.0.0"}"#[..]), "imageLayoutVersion \"2.0.0\", not \"1.0.0\""),
        ("marker-garbage", Some(&b"garbage"[..]), "oci-layout: invalid JSON"),
    ] {
        let src = d.join(case);
        run(Command::new("cp").arg("-r").arg(&a).arg(&src));
        match marker {
            None => std::fs::remove_file(src.join("oci-layout")).unwrap(),
            Some(m) => std::fs::write(src.join("oci-layout"), m).unwrap(),
        }
        verify_refuses(&src);
        let err = copy_refused(&src, &dest);
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn a_manifest_whose_blobs_are_kept_is_copied_byte_for_byte() {
    require("skopeo");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_store, a) = our_layout(d);
    // Annotations as buildah writes them, on the manifest and a layer; the
    // index entry with a platform and one of its own.
    let src = d.join("annotated");
    let want = edited(&a, &src, |_, m, _| {
        m["annotations"] = serde_json::json!({"org.opencontainers.image.base.name": "busybox", "org.example.note": "kept"});
        m["layers"][0]["annotations"] = serde_json::json!({"org.example.layer": "base"});
    });
    let mut idx = index(&src);
    idx["manifests"][0]["annotations"]["org.opencontainers.image.created"] = "2026-12-03T00:00:00Z".into();
    idx["manifests"][0]["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux"});
    std::fs::write(src.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    let source_manifest = std::fs::read(src.join("blobs/sha256").join(want.trim_start_matches("sha256:"))).unwrap();

    let b = d.join("b");
    li_copy(&format!("oci:{}:v1", src.display()), &format!("oci:{}:w", b.display()), &[]);
    assert_eq!(manifest_digest(&b), want, "the manifest digest changed");
    assert_eq!(std::fs::read(b.join("blobs/sha256").join(want.trim_start_matches("sha256:"))).unwrap(), source_manifest);
    let entry = &index(&b)["manifests"][0];
    assert_eq!(entry["annotations"]["org.opencontainers.image.ref.name"], "w");
    assert_eq!(entry["annotations"]["org.opencontainers.image.created"], "2026-12-03T00:00:00Z");
    assert_eq!(entry["platform"]["architecture"], "amd64");
    verify_image(&format!("oci:{}:w", b.display()));
    let inspect = run(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:w", b.display())));
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspect["Digest"], want.as_str());

    // An oci-archive keeps it too.
    let e = d.join("e.tar");
    li_copy(&format!("oci:{}:v1", src.display()), &format!("oci-archive:{}:v1", e.display()), &[]);
    let f = d.join("f");
    li_copy(&format!("oci-archive:{}:v1", e.display()), &format!("oci:{}:v1", f.display()), &[]);
    assert_eq!(manifest_digest(&f), want);

    // Recompressed, the manifest is rebuilt with the annotations kept.
    let z = d.join("z");
    li_copy(&format!("oci:{}:v1", src.display()), &format!("oci:{}:v1", z.display()), &["--compress", "zstd"]);
    let rebuilt = read_blob(&z, &manifest_digest(&z));
    assert_ne!(manifest_digest(&z), want);
    assert_eq!(rebuilt["annotations"]["org.example.note"], "kept");
    assert_eq!(rebuilt["layers"][0]["annotations"]["org.example.layer"], "base");
    assert_eq!(rebuilt["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
    verify_image(&format!("oci:{}:v1", z.display()));
}

#[test]
fn an_image_keeps_its_compression_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = busybox_store(0, 0);
    let conf = store.dir.path().join("conf.json");
    let a = d.join("a");
    run(Command::new(bin()).arg("copy").arg(&conf).arg(format!("oci:{}:z", a.display())).args(["--compress", "zstd"]));
    let want = manifest_digest(&a);
    // No --compress: zstd stays zstd, the digest with it.
    let b = d.join("b");
    li_copy(&format!("oci:{}:z", a.display()), &format!("oci:{}:z", b.display()), &[]);
    assert_eq!(manifest_digest(&b), want);
    verify_image(&format!("oci:{}:z", b.display()));
    // An explicit --compress recompresses.
    let c = d.join("c");
    li_copy(&format!("oci:{}:z", a.display()), &format!("oci:{}:z", c.display()), &["--compress", "gzip"]);
    let m = read_blob(&c, &manifest_digest(&c));
    assert!(m["layers"].as_array().unwrap().iter().all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"), "{m}");
    verify_image(&format!("oci:{}:z", c.display()));
    // A docker-archive's uncompressed layers take the default, gzip.
    let tar = d.join("image.tar");
    run(Command::new(bin()).arg("stream").arg(&conf).arg("-o").arg(&tar));
    let e = d.join("e");
    li_copy(&format!("docker-archive:{}", tar.display()), &format!("oci:{}:v", e.display()), &[]);
    let m = read_blob(&e, &manifest_digest(&e));
    assert!(m["layers"].as_array().unwrap().iter().all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"), "{m}");
}

#[test]
fn sources_that_are_not_one_image_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (store, a) = our_layout(d);
    let dest = format!("oci:{}:v", d.join("dest").display());
    // dir: is verify's, not copy's.
    let err = li_copy_fails(&format!("dir:{}", a.display()), &dest);
    assert!(err.contains("dir: is not a copy source; use oci:"), "{err}");
    // A reference naming two different manifests is ambiguous.
    let two = d.join("two");
    run(Command::new(bin())
        .arg("copy")
        .arg(store.dir.path().join("conf.json"))
        .arg(format!("oci:{}:v1", two.display()))
        .args(["--compress", "zstd"]));
    let mut idx = index(&two);
    let gz = index(&a)["manifests"][0].clone();
    idx["manifests"].as_array_mut().unwrap().push(gz.clone());
    std::fs::write(two.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    for f in blob_files(&a).keys() {
        std::fs::copy(a.join("blobs/sha256").join(f), two.join("blobs/sha256").join(f)).unwrap();
    }
    let err = li_copy_fails(&format!("oci:{}:v1", two.display()), &dest);
    assert!(err.contains("names 2 images \"v1\"") && err.contains(gz["digest"].as_str().unwrap()), "{err}");
    // No reference, no image.
    std::fs::write(two.join("index.json"), br#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
    let err = li_copy_fails(&format!("oci:{}", two.display()), &dest);
    assert!(err.contains("index.json lists no image") && !err.contains("\"\""), "{err}");
    // A broken docker-archive is named as itself, not as a fromImage.
    let tar = d.join("image.tar");
    run(Command::new(bin()).arg("stream").arg(store.dir.path().join("conf.json")).arg("-o").arg(&tar));
    let bytes = std::fs::read(&tar).unwrap();
    std::fs::write(&tar, &bytes[..bytes.len() / 2]).unwrap();
    let err = li_copy_fails(&format!("docker-archive:{}", tar.display()), &dest);
    assert!(err.contains("docker-archive:") && !err.contains("fromImage"), "{err}");
    // A truncated oci-archive is named once.
    let oa = d.join("image-oci.tar");
    li_copy(&format!("oci:{}:v1", a.display()), &format!("oci-archive:{}:v1", oa.display()), &[]);
    let bytes = std::fs::read(&oa).unwrap();
    std::fs::write(&oa, &bytes[..bytes.len() / 2]).unwrap();
    let err = li_copy_fails(&format!("oci-archive:{}:v1", oa.display()), &dest);
    assert_eq!(err.matches(&oa.display().to_string()).count(), 1, "{err}");
}
