//! `copy --sbom FORMAT --provenance`: documents attached as OCI 1.1
//! referrers, read back by real tools. Layouts are checked by `verify`,
//! image-spec's schemas and skopeo; registries are Debian's
//! docker-registry (distribution 2.8, no referrers API: the tag schema,
//! read with `skopeo inspect --raw`) and the same registry behind
//! tests/support/fault-proxy.py in its referrers-api modes (the API, as
//! registries of distribution-spec 1.1 have it). Every document is
//! validated by its official validator, the image's digest is compared
//! with the one a copy without referrers gives, and the image is pulled,
//! verified and run with its referrers beside it.

use crate::harness as common;
use crate::harness::faults::{Proxy, Upstream};
use crate::sbom::{validate_cyclonedx, validate_provenance, validate_spdx};
use common::{bin, busybox_store, require, run, sha256_hex, verify_image};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SPDX: &str = "application/spdx+json";
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";
const EMPTY_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// The busybox store's conf with the closure graph real Nix gives its
/// paths (`nix-hash`: the NAR hash; `nix-store --dump`: the NAR size),
/// as `conf --closure-graph` records it.
fn with_graph(store: &common::BusyboxStore) -> PathBuf {
    require("nix-hash");
    let root = store.dir.path();
    let node = |path: &str, references: &[&str]| {
        let hash = String::from_utf8(run(Command::new("nix-hash").args(["--type", "sha256"]).arg(root.join(path))).stdout).unwrap();
        let size = run(Command::new("nix-store").arg("--dump").arg(root.join(path))).stdout.len();
        serde_json::json!({"path": path, "narHash": format!("sha256:{}", hash.trim()), "narSize": size, "references": references})
    };
    let conf = root.join("conf.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    v["closure_graph"] = serde_json::json!([node(&store.busybox, &[]), node(&store.script, &[&store.busybox])]);
    let out = root.join("conf-graph.json");
    std::fs::write(&out, serde_json::to_vec(&v).unwrap()).unwrap();
    out
}

fn li(args: &[&str]) -> std::process::Output {
    run(Command::new(bin()).args(args).stdin(Stdio::null()))
}

/// `copy SRC DEST EXTRA...` (SRC a conf or an image); its messages.
fn copy(src: impl AsRef<std::ffi::OsStr>, dest: &str, extra: &[&str]) -> String {
    let out = run(Command::new(bin()).arg("copy").arg(src).arg(dest).args(extra).arg("--no-blob-cache").stdin(Stdio::null()));
    String::from_utf8(out.stderr).unwrap()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap())).unwrap()
}

/// The index.json entries that are referrers, and their manifests.
fn layout_referrers(layout: &Path) -> Vec<(Value, Value)> {
    let index = read_json(&layout.join("index.json"));
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d.get("artifactType").is_some())
        .map(|d| (d.clone(), serde_json::from_slice(&blob(layout, d["digest"].as_str().unwrap())).unwrap()))
        .collect()
}

/// The one document of an artifact manifest, written out for a validator.
fn document(layout: &Path, manifest: &Value, name: &str) -> PathBuf {
    let file = layout.with_file_name(name);
    std::fs::write(&file, blob(layout, manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
    file
}

fn digest_file(dir: &Path, name: &str) -> (String, Vec<String>) {
    let f = dir.join(name);
    (f.display().to_string(), vec!["--digestfile".into(), f.display().to_string()])
}

#[test]
fn layouts_hold_referrers_that_validate_and_leave_the_image_as_it_was() {
    require("skopeo");
    let store = busybox_store(0, 0);
    let d = store.dir.path();
    let conf = with_graph(&store);
    let conf_s = conf.to_str().unwrap();
    let (plain_file, plain_flag) = digest_file(d, "plain.digest");
    copy(&conf, &format!("oci:{}:v1", d.join("plain").display()), &plain_flag.iter().map(String::as_str).collect::<Vec<_>>());
    let (file, flag) = digest_file(d, "attached.digest");
    let layout = d.join("lay");
    let target = format!("oci:{}:v1", layout.display());
    let err = copy(&conf, &target, &[&["--sbom", "spdx", "--provenance"], &flag.iter().map(String::as_str).collect::<Vec<_>>()[..]].concat());
    let image_digest = std::fs::read_to_string(&file).unwrap();
    assert_eq!(image_digest, std::fs::read_to_string(&plain_file).unwrap(), "attaching changes no image byte");
    assert!(err.contains(&format!("Attached 2 referrer(s) to {image_digest}")), "{err}");

    // Two artifacts beside the image, each naming it, the empty config and its document.
    let refs = layout_referrers(&layout);
    assert_eq!(refs.iter().map(|(d, _)| d["artifactType"].as_str().unwrap()).collect::<Vec<_>>(), [SPDX, IN_TOTO]);
    for (desc, m) in &refs {
        assert_eq!(m["artifactType"], desc["artifactType"]);
        assert_eq!(m["subject"]["digest"], image_digest.as_str());
        assert_eq!(m["config"]["digest"], EMPTY_DIGEST);
        assert_eq!(m["layers"][0]["mediaType"], desc["artifactType"]);
    }
    // The SBOM is the one `sbom` writes, and pyspdxtools accepts it; the
    // provenance names the image's manifest and is a valid SLSA statement.
    let spdx = document(&layout, &refs[0].1, "attached.spdx.json");
    assert_eq!(std::fs::read(&spdx).unwrap(), li(&["sbom", conf_s]).stdout);
    validate_spdx(&spdx);
    let prov = document(&layout, &refs[1].1, "attached.intoto.json");
    validate_provenance(&prov);
    let statement = read_json(&prov);
    assert_eq!(format!("sha256:{}", statement["subject"][0]["digest"]["sha256"].as_str().unwrap()), image_digest);

    // verify reads the referrers (named or not), the schemas accept index.json and every manifest.
    verify_image(&target);
    let line = String::from_utf8(li(&["verify", &format!("oci:{}", layout.display())]).stdout).unwrap();
    assert!(line.trim_end().ends_with("; 2 artifacts (4 blobs checked)"), "{line}");
    // Real readers take the image out of the layout, referrers or not.
    run(Command::new("skopeo").arg("inspect").arg(&target));
    let skopeo_copy = d.join("skopeo-copy");
    run(Command::new("skopeo").args(["copy", "-q"]).arg(&target).arg(format!("oci:{}:v1", skopeo_copy.display())));
    verify_image(&format!("oci:{}:v1", skopeo_copy.display()));
    // Attached to the image in the layout skopeo wrote: its index.json kept, the referrers joined.
    copy(&conf, &format!("oci:{}:v1", skopeo_copy.display()), &["--sbom", "spdx"]);
    verify_image(&format!("oci:{}:v1", skopeo_copy.display()));
    let line = String::from_utf8(li(&["verify", &format!("oci:{}", skopeo_copy.display())]).stdout).unwrap();
    assert!(line.trim_end().ends_with("; 1 artifact (2 blobs checked)"), "{line}");

    // Attaching again lists nothing twice.
    let listed = || {
        let mut d: Vec<String> =
            read_json(&layout.join("index.json"))["manifests"].as_array().unwrap().iter().map(|m| m["digest"].to_string()).collect();
        d.sort();
        d
    };
    let before = listed();
    assert_eq!(before.len(), 3);
    copy(&conf, &target, &["--sbom", "spdx", "--provenance"]);
    assert_eq!(listed(), before);

    // A copy of the image carries its referrers, byte for byte, while its
    // manifest stays; recompressed, they are left behind with a note.
    let carried = d.join("carried");
    copy(&target, &format!("oci:{}:v2", carried.display()), &[]);
    let digests = |l: &Path| layout_referrers(l).iter().map(|(d, _)| d["digest"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(digests(&carried), digests(&layout));
    verify_image(&format!("oci:{}:v2", carried.display()));
    let recompressed = d.join("recompressed");
    let err = copy(&target, &format!("oci:{}:v2", recompressed.display()), &["--compress", "zstd"]);
    assert!(err.contains("2 referrer(s)") && err.contains("not carried"), "{err}");
    assert!(digests(&recompressed).is_empty());

    // oci-archive: the same, in one file; CycloneDX validated by its schema.
    let archive = d.join("image.tar");
    copy(&conf, &format!("oci-archive:{}:v1", archive.display()), &["--sbom", "cyclonedx"]);
    verify_image(&format!("oci-archive:{}:v1", archive.display()));
    let unpacked = d.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    run(Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(&unpacked));
    let refs = layout_referrers(&unpacked);
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].1["subject"]["digest"], image_digest.as_str());
    validate_cyclonedx(&document(&unpacked, &refs[0].1, "attached.cdx.json"));
    // An oci-archive source carries them too.
    let from_archive = d.join("from-archive");
    copy(format!("oci-archive:{}:v1", archive.display()), &format!("oci:{}:v1", from_archive.display()), &[]);
    assert_eq!(digests(&from_archive), digests(&unpacked));

    // A corrupt document is one clear error naming the referrer and the blob.
    let bad = d.join("bad");
    run(Command::new("cp").arg("-a").arg(&layout).arg(&bad));
    let doc_digest = refs_doc_digest(&layout);
    let doc_path = bad.join("blobs/sha256").join(doc_digest.strip_prefix("sha256:").unwrap());
    run(Command::new("chmod").arg("u+w").arg(&doc_path));
    let mut bytes = std::fs::read(&doc_path).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&doc_path, bytes).unwrap();
    let out = Command::new(bin()).arg("verify").arg(format!("oci:{}:v1", bad.display())).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("referrer manifest") && err.contains(SPDX) && err.contains(&doc_digest[7..]) && err.contains(&image_digest), "{err}");
}

/// The SPDX document's digest in a layout copy wrote.
fn refs_doc_digest(layout: &Path) -> String {
    let refs = layout_referrers(layout);
    let (_, m) = refs.iter().find(|(d, _)| d["artifactType"] == SPDX).unwrap();
    m["layers"][0]["digest"].as_str().unwrap().to_string()
}

/// A registry's blob, read through its API.
fn registry_blob(port: u16, repo: &str, digest: &str) -> Vec<u8> {
    let url = format!("http://127.0.0.1:{port}/v2/{repo}/blobs/{digest}");
    let out = common::run(Command::new("python3").args([
        "-c",
        "import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=60).read())",
        &url,
    ]));
    assert_eq!(sha256_hex(&out.stdout), digest.strip_prefix("sha256:").unwrap());
    out.stdout
}

fn skopeo_raw(reference: &str) -> Value {
    let out = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(reference));
    serde_json::from_slice(&out.stdout).unwrap()
}

const INSECURE: &[&str] = &["--dest-tls-verify=false"];

#[test]
fn registries_without_the_api_get_the_referrers_tag_merged_not_replaced() {
    require("skopeo");
    require("python3");
    let reg = Upstream::start(false);
    let store = busybox_store(0, 0);
    let d = store.dir.path();
    let conf = with_graph(&store);
    copy(&conf, &reg.reference("li/plain:v1"), INSECURE);
    let err = copy(&conf, &reg.reference("li/sbom:v1"), &[INSECURE, &["--sbom", "spdx"]].concat());
    let digest = reg.digest_of("li/sbom:v1").unwrap();
    assert_eq!(Some(&digest), reg.digest_of("li/plain:v1").as_ref(), "attaching changes no image byte");
    let tag = format!("sha256-{}", &digest[7..]);
    assert!(err.contains(&format!("listed under the referrers tag {tag}")), "{err}");

    // The tag holds an index of the referrers, as skopeo reads it.
    let index = skopeo_raw(&reg.reference(&format!("li/sbom:{tag}")));
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let listed = index["manifests"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["artifactType"], SPDX);
    let artifact = skopeo_raw(&reg.reference(&format!("li/sbom@{}", listed[0]["digest"].as_str().unwrap())));
    assert_eq!(artifact["subject"]["digest"], digest.as_str());
    let spdx = d.join("registry.spdx.json");
    std::fs::write(&spdx, registry_blob(reg.port, "li/sbom", artifact["layers"][0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(std::fs::read(&spdx).unwrap(), li(&["sbom", conf.to_str().unwrap()]).stdout);
    validate_spdx(&spdx);

    // Another push adds to the index: what was listed stays, nothing twice.
    copy(&conf, &reg.reference("li/sbom:v1"), &[INSECURE, &["--sbom", "spdx", "--provenance"]].concat());
    let index = skopeo_raw(&reg.reference(&format!("li/sbom:{tag}")));
    let types: Vec<&str> = index["manifests"].as_array().unwrap().iter().map(|m| m["artifactType"].as_str().unwrap()).collect();
    assert_eq!(types, [SPDX, IN_TOTO]);
    assert_eq!(index["manifests"][0], listed[0]);
    let err = copy(&conf, &reg.reference("li/sbom:v1"), &[INSECURE, &["--sbom", "spdx", "--provenance"]].concat());
    assert!(err.contains(&format!("listed under the referrers tag {tag} already")), "{err}");
    assert_eq!(skopeo_raw(&reg.reference(&format!("li/sbom:{tag}"))), index);

    // The image pulls, verifies and runs beside its referrers.
    let manifest = reg.pull_and_verify("li/sbom:v1", d);
    assert!(manifest.get("subject").is_none());
    require("podman");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root").arg(d.join("podman-root")).arg("--runroot").arg(d.join("podman-run"));
        c.args(["--storage-driver", "vfs", "--runtime", "runc"]).args(args);
        c
    };
    let image = format!("127.0.0.1:{}/li/sbom:v1", reg.port);
    run(podman(&["pull", "--tls-verify=false", &image]).stdout(Stdio::null()));
    let out = run(&mut podman(&["run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", &image]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the store\n");
}

#[test]
fn registries_with_the_referrers_api_list_them_there_and_get_no_tag() {
    require("skopeo");
    let reg = Upstream::start(false);
    let store = busybox_store(0, 0);
    let conf = with_graph(&store);
    for (mode, repo) in [("referrers-api", "li/api"), ("referrers-api-no-header", "li/api-get")] {
        let proxy = Proxy::start(&reg, mode, None);
        let err = copy(&conf, &proxy.dest(&format!("{repo}:v1")), &[INSECURE, &["--sbom", "cyclonedx", "--provenance"]].concat());
        assert!(err.contains("listed by the registry's referrers API"), "{mode}: {err}");
        let digest = reg.digest_of(&format!("{repo}:v1")).unwrap();
        let requests = proxy.requests();
        let paths: Vec<&str> = requests.iter().map(|r| r["path"].as_str().unwrap()).collect();
        assert!(!paths.iter().any(|p| p.contains("/manifests/sha256-")), "{mode}: no referrers tag: {paths:?}");
        // Only a registry that does not say OCI-Subject is asked.
        assert_eq!(paths.iter().any(|p| p.contains("/referrers/")), mode.ends_with("no-header"), "{mode}: {paths:?}");
        assert!(reg.digest_of(&format!("{repo}:sha256-{}", &digest[7..])).is_none());
        let url = format!("http://127.0.0.1:{}/v2/{repo}/referrers/{digest}", proxy.main);
        let out = run(Command::new("python3").args([
            "-c",
            "import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=60).read())",
            &url,
        ]));
        let index: Value = serde_json::from_slice(&out.stdout).unwrap();
        let listed = index["manifests"].as_array().unwrap();
        assert_eq!(listed.iter().map(|m| m["artifactType"].as_str().unwrap()).collect::<Vec<_>>(), [CYCLONEDX, IN_TOTO], "{mode}");
        for m in listed {
            // Each listed manifest is in the registry itself, naming the image.
            let artifact = skopeo_raw(&reg.reference(&format!("{repo}@{}", m["digest"].as_str().unwrap())));
            assert_eq!(artifact["subject"]["digest"], digest.as_str());
        }
        let cdx = store.dir.path().join(format!("{}.cdx.json", mode));
        let artifact = skopeo_raw(&reg.reference(&format!("{repo}@{}", listed[0]["digest"].as_str().unwrap())));
        std::fs::write(&cdx, registry_blob(reg.port, repo, artifact["layers"][0]["digest"].as_str().unwrap())).unwrap();
        validate_cyclonedx(&cdx);
    }
}

#[test]
fn index_pushes_attach_one_sbom_per_platform_image() {
    require("skopeo");
    let store = busybox_store(0, 0);
    let d = store.dir.path();
    let conf = with_graph(&store);
    let mut arm: Value = read_json(&conf);
    arm["architecture"] = "arm64".into();
    let arm_conf = d.join("conf-arm64.json");
    std::fs::write(&arm_conf, serde_json::to_vec(&arm).unwrap()).unwrap();
    let layout = d.join("multi");
    let out =
        run(Command::new(bin()).args(["copy", "--index", "--sbom", "spdx"]).arg(&conf).arg(&arm_conf).arg(format!("oci:{}:v1", layout.display())));
    assert!(out.status.success());
    let index = read_json(&layout.join("index.json"));
    let top = index["manifests"].as_array().unwrap().iter().find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "v1").unwrap();
    let platforms: Vec<String> = read_json(&layout.join("blobs/sha256").join(&top["digest"].as_str().unwrap()[7..]))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(platforms.len(), 2);
    let mut subjects: Vec<String> = layout_referrers(&layout).iter().map(|(_, m)| m["subject"]["digest"].as_str().unwrap().to_string()).collect();
    subjects.sort();
    let mut want = platforms.clone();
    want.sort();
    assert_eq!(subjects, want, "one SBOM per platform image");
    verify_image(&format!("oci:{}:v1", layout.display()));

    // And in a registry, each platform image gets its own referrers tag.
    let reg = Upstream::start(false);
    run(Command::new(bin())
        .args(["copy", "--index", "--sbom", "spdx", "--dest-tls-verify=false"])
        .arg(&conf)
        .arg(&arm_conf)
        .arg(reg.reference("li/multi:v1")));
    for p in &platforms {
        let listed = skopeo_raw(&reg.reference(&format!("li/multi:sha256-{}", &p[7..])));
        assert_eq!(listed["manifests"].as_array().unwrap().len(), 1, "{p}");
        assert_eq!(listed["manifests"][0]["artifactType"], SPDX);
    }
}

#[test]
fn what_cannot_be_attached_is_refused_naming_why() {
    let store = busybox_store(0, 0);
    let d = store.dir.path();
    let conf = d.join("conf.json");
    let fail = |args: &[&str]| {
        let out = Command::new(bin()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8(out.stderr).unwrap()
    };
    let dest = format!("oci:{}:v1", d.join("none").display());
    let e = fail(&["copy", conf.to_str().unwrap(), &dest, "--sbom", "spdx"]);
    assert!(e.contains("conf.json") && e.contains("closure_graph") && e.contains("--closure-graph"), "{e}");
    assert!(!d.join("none").exists(), "nothing written");
    let e = fail(&["copy", conf.to_str().unwrap(), &format!("docker-archive:{}", d.join("a.tar").display()), "--provenance"]);
    assert!(e.contains("--provenance") && e.contains("oci:"), "{e}");
    let graph = with_graph(&store);
    copy(&graph, &dest, &[]);
    let e = fail(&["copy", &dest, &format!("oci:{}:v1", d.join("other").display()), "--sbom", "spdx"]);
    assert!(e.contains("image source") && e.contains("carries"), "{e}");
}
