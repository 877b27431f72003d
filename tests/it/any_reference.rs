//! Names and tags nixpkgs builds with but Docker refuses (`1.0.0+build1`,
//! `feature/x`, an empty tag, `_foo`): `stream` writes them as nixpkgs'
//! script does (byte for byte) with one warning line; only the
//! destinations Docker's grammar governs refuse them, before any work.

use crate::harness as common;
use common::*;
use std::process::Command;

const ODD: [(&str, &str); 4] = [
    ("x:1.0.0+build1", "invalid image tag \"1.0.0+build1\""),
    ("x:feature/x", "invalid image tag \"feature/x\""),
    ("x:", "invalid image tag \"\": it is empty"),
    ("_foo:1", "_foo\": each /-separated component"),
];

fn warnings(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr).lines().filter(|l| l.starts_with("warning: ")).map(str::to_string).collect()
}

/// The conf's own repo_tag and `-t`: written as nixpkgs' script writes
/// them (the reference streamer is the oracle), one warning line each.
#[test]
fn stream_writes_any_tag_as_nixpkgs_does() {
    require("python3");
    let tmp = tempfile::tempdir().unwrap();
    let root = make_fixture(&tmp.path().join("fx"), &[]);
    let conf = root.join("conf-newest.json");
    for (tag, why) in ODD {
        let out = run(Command::new(shared().join("parity/compare")).arg(&conf).args(["-t", tag, "--"]).arg(bin()).arg("stream"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("identical"), "{tag}: {text}");

        let image = tmp.path().join("image.tar");
        let out = run(Command::new(bin()).arg("stream").arg(&conf).args(["-t", tag, "-o"]).arg(&image));
        let w = warnings(&out.stderr);
        assert_eq!(w.len(), 1, "{tag}: {w:?}");
        assert!(w[0].contains(why) && w[0].contains("docker load"), "{tag}: {}", w[0]);
        verify_image(image.to_str().unwrap());
        let listed = run(Command::new("tar").arg("-xOf").arg(&image).arg("manifest.json")).stdout;
        let manifest: serde_json::Value = serde_json::from_slice(&listed).unwrap();
        assert_eq!(manifest[0]["RepoTags"][0], tag);
    }
    // the conf's repo_tag (what the Nix side writes), no -t
    let c = Case::new();
    c.with("repo_tag", serde_json::json!("x:feature/x"));
    let out = Command::new(bin()).arg("stream").arg(c.conf()).arg("-o").arg(c.root().join("i.tar")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(warnings(&out.stderr).len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    verify_image(c.root().join("i.tar").to_str().unwrap());
}

/// What the warning says is so: a real `docker load` refuses such a name.
#[test]
fn docker_load_refuses_what_the_warning_names() {
    let host = docker_host();
    let c = Case::new();
    c.with("repo_tag", serde_json::json!("x:1.0.0+build1"));
    let image = c.root().join("i.tar");
    run(Command::new(bin()).arg("stream").arg(c.conf()).arg("-o").arg(&image));
    let out = Command::new("docker").env("DOCKER_HOST", &host).arg("load").arg("-i").arg(&image).output().unwrap();
    assert!(!out.status.success(), "docker load took {}", String::from_utf8_lossy(&out.stdout));
    // the same image under a valid name loads
    run(Command::new(bin()).arg("stream").arg(c.conf()).args(["-t", "any-reference-test:ok", "-o"]).arg(&image));
    run(Command::new("docker").env("DOCKER_HOST", &host).arg("load").arg("-i").arg(&image));
    run(Command::new("docker").env("DOCKER_HOST", &host).args(["image", "rm", "any-reference-test:ok"]));
}

/// docker-daemon: and docker:// need a reference Docker accepts: one clear
/// error naming the destination and the rule, non-zero exit, nothing
/// contacted (the engine and registry named here do not exist).
#[test]
fn docker_destinations_refuse_with_the_reason() {
    let c = Case::new();
    for (tag, why) in ODD {
        for dest in [format!("docker-daemon:{tag}"), format!("docker://127.0.0.1:9/{tag}")] {
            let out =
                Command::new(bin()).env("DOCKER_HOST", "unix:///nonexistent/docker.sock").arg("copy").arg(c.conf()).arg(&dest).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{dest}");
            assert!(err.contains(&format!("{dest:?}")) && err.contains(why) && err.contains("needs a reference Docker accepts"), "{dest}: {err}");
            assert_eq!(err.lines().count(), 1, "{dest}: {err}");
        }
    }
}

/// An OCI layout takes the conf's tag as its ref name where the layout's
/// grammar allows it (`feature/x`, `1.0.0+build1`), and none otherwise.
#[test]
fn oci_layout_names_what_its_grammar_allows() {
    require("skopeo");
    for (tag, named) in [("x:feature/x", Some("feature/x")), ("x:1.0.0+build1", Some("1.0.0+build1")), ("x:", None)] {
        let c = Case::new();
        c.with("repo_tag", serde_json::json!(tag));
        let dir = c.root().join("oci");
        run(Command::new(bin()).arg("copy").arg(c.conf()).arg(format!("oci:{}", dir.display())));
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let got = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"].as_str();
        assert_eq!(got, named, "{tag}: {index}");
        match named {
            Some(n) => {
                verify_image(&format!("oci:{}:{n}", dir.display()));
                run(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:{n}", dir.display())));
            }
            None => verify_image(&format!("oci:{}", dir.display())),
        }
    }
}
