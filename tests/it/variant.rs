//! `variant` (newer nixpkgs' argument, from GOARM: `v7` on 32-bit ARM, `""`
//! elsewhere) reaches the conf through the base json; a non-empty one is
//! written into the image config and an index's platform, an empty one
//! changes no byte.

use crate::harness as common;
use common::*;
use std::process::Command;

fn conf_with(c: &Case, architecture: &str, variant: &str) -> std::path::PathBuf {
    let mut v = c.conf_value();
    v["architecture"] = serde_json::json!(architecture);
    v["variant"] = serde_json::json!(variant);
    let path = c.root().join(format!("conf-{architecture}-{variant}.json"));
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    path
}

/// `variant = ""` (nixpkgs' default off ARM): byte-identical to the
/// reference streamer, which ignores the key.
#[test]
fn empty_variant_is_nixpkgs_bytes() {
    require("python3");
    let tmp = tempfile::tempdir().unwrap();
    let root = make_fixture(&tmp.path().join("fx"), &[]);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("conf-newest.json")).unwrap()).unwrap();
    v["variant"] = serde_json::json!("");
    let conf = root.join("conf-variant.json");
    std::fs::write(&conf, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = run(Command::new(shared().join("parity/compare")).arg(&conf).arg("--").arg(bin()).arg("stream"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("identical"), "{text}");
}

/// skopeo and a Docker engine read the variant of a streamed image.
#[test]
fn variant_in_the_image_config() {
    require("skopeo");
    let c = Case::new();
    let conf = conf_with(&c, "arm", "v7");
    let image = c.root().join("arm.tar");
    run(Command::new(bin()).arg("stream").arg(&conf).args(["-t", "variant-test:v7", "-o"]).arg(&image));
    verify_image(image.to_str().unwrap());
    let out = run(Command::new("skopeo").args(["inspect", "--config"]).arg(format!("docker-archive:{}", image.display())));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((config["architecture"].as_str(), config["variant"].as_str()), (Some("arm"), Some("v7")), "{config}");

    let host = docker_host();
    run(Command::new("docker").env("DOCKER_HOST", &host).arg("load").arg("-i").arg(&image));
    let out = run(Command::new("docker").env("DOCKER_HOST", &host).args([
        "image",
        "inspect",
        "--format",
        "{{.Architecture}}/{{.Variant}}",
        "variant-test:v7",
    ]));
    run(Command::new("docker").env("DOCKER_HOST", &host).args(["image", "rm", "variant-test:v7"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "arm/v7");
}

/// An index names each platform with its variant; one without a variant
/// has none.
#[test]
fn variant_in_an_index_platform() {
    require("skopeo");
    let c = Case::new();
    let arm = conf_with(&c, "arm", "v7");
    let amd = conf_with(&c, "amd64", "");
    let layout = c.root().join("oci");
    let target = format!("oci:{}:multi", layout.display());
    run(Command::new(bin()).args(["copy", "--index"]).arg(&arm).arg(&amd).arg(&target));
    verify_image(&target);
    let out = run(Command::new("skopeo").args(["inspect", "--raw"]).arg(&target));
    let index: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let platforms: Vec<(String, Option<String>)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["platform"]["architecture"].as_str().unwrap().to_string(), m["platform"]["variant"].as_str().map(str::to_string)))
        .collect();
    assert_eq!(platforms, [("arm".to_string(), Some("v7".to_string())), ("amd64".to_string(), None)], "{index}");
    // skopeo picks the arm/v7 image by its platform
    let out = run(Command::new("skopeo").args(["--override-arch", "arm", "--override-variant", "v7", "inspect", "--config"]).arg(&target));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["variant"], "v7", "{config}");
}

/// A variant that is not a string is refused, naming the key.
#[test]
fn variant_must_be_a_string() {
    let c = Case::new();
    c.with("variant", serde_json::json!(7));
    let out = Command::new(bin()).arg("stream").arg(c.conf()).arg("-o").arg(c.root().join("x.tar")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("\"variant\" must be a string"), "{err}");
    assert!(!c.root().join("x.tar").exists());
}
