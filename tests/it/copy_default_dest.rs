//! `copy --default-dest DEST`: what Nix's copyIndex script passes (its
//! images' CONFs, then the user's DEST if one is given). The last argument
//! is the destination unless it names no transport at all.

use crate::harness as common;
use common::*;
use std::process::Command;

fn index_names(layout: &std::path::Path) -> Vec<String> {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn default_dest_when_the_last_argument_is_a_conf() {
    let c = Case::new();
    let default = c.root().join("default");
    let given = c.root().join("given");
    // no DEST: the default
    run(Command::new(bin()).args(["copy", "--index", "--default-dest"]).arg(format!("oci:{}:d", default.display())).arg(c.conf()).arg(c.conf()));
    verify_image(&format!("oci:{}:d", default.display()));
    assert_eq!(index_names(&default), ["d"]);
    // a DEST given after the CONFs wins
    run(Command::new(bin())
        .args(["copy", "--index", "--default-dest"])
        .arg(format!("oci:{}:d", default.display()))
        .arg(c.conf())
        .arg(format!("oci:{}:g", given.display())));
    verify_image(&format!("oci:{}:g", given.display()));
    assert_eq!(index_names(&given), ["g"]);
    assert_eq!(index_names(&default), ["d"], "the default was not written again");
}

#[test]
fn a_misspelt_destination_is_not_taken_for_a_conf() {
    let c = Case::new();
    let out = Command::new(bin()).args(["copy", "--default-dest", "oci:/nonexistent/x"]).arg(c.conf()).arg("ocii:somewhere").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("unknown transport \"ocii\""), "{err}");
    assert!(!std::path::Path::new("/nonexistent/x").exists());
}

#[test]
fn without_default_dest_a_lone_argument_is_refused() {
    let c = Case::new();
    let out = Command::new(bin()).arg("copy").arg(c.conf()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("copy takes a CONF and a DEST"), "{err}");
}
