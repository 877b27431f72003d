//! Byte parity with nixpkgs' stream script (../shared/parity/reference-stream).

use crate::harness as common;
use common::*;
use std::process::Command;

fn compare(conf: &std::path::Path, extra: &[&str]) {
    require("python3");
    let out = run(Command::new(shared().join("parity/compare")).arg(conf).args(extra).arg("--").arg(bin()).arg("stream"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("identical"), "{}: {text}", conf.display());
    let image = conf.with_extension("verify.tar");
    run(Command::new(bin()).arg("stream").arg(conf).args(extra).arg("-o").arg(&image));
    verify_image(image.to_str().unwrap());
    std::fs::remove_file(&image).unwrap();
}

/// Live comparison on a fresh fixture with real files from /usr as bulk.
#[test]
fn identical_to_reference_on_fixture_with_bulk() {
    let tmp = tempfile::tempdir().unwrap();
    let root = make_fixture(&tmp.path().join("fx"), &["--bulk-mib", "24"]);
    for conf in ["conf-seed.json", "conf-newest.json", "conf-from.json"] {
        compare(&root.join(conf), &[]);
    }
    compare(&root.join("conf-newest.json"), &["-t", "other/name:tag"]);
    compare(&root.join("conf-seed.json"), &["--repo_tag", "x:y"]);
    // Precomputed digests change nothing in the output (and nixpkgs'
    // script, which ignores the key, agrees).
    for conf in ["conf-newest.json", "conf-from.json"] {
        let with = root.join(format!("digests-{conf}"));
        run(Command::new(bin()).arg("digests").arg(root.join(conf)).arg("-o").arg(&with));
        compare(&with, &[]);
    }
}

/// Digests produced by the reference script on the seed-1 fixture at a
/// fixed root (member names include the root), as root with umask 022.
#[test]
fn pinned_reference_digests() {
    let root = std::path::Path::new("/tmp/layered-image-pinned-fixture");
    make_fixture(root, &[]);
    for (conf, extra, want) in [
        ("conf-seed.json", None, "514f097b1d6ced7f3505a3e764dd0bf1972fc07d54ca417391d987796f84da47"),
        ("conf-newest.json", None, "600a4bfb01bdc32de78b72060c0f009ac6d1a893b081cb420f31b712273ef7bd"),
        ("conf-from.json", None, "80bd27d2b7e7af931add4fb5b1d45b798b4243ec3071cdfba35298f324ee0455"),
        ("conf-newest.json", Some("pinned:v1"), "a571b95066f9e32b50cfc7fc9806e95e49214810247cf901e564fd806eec4272"),
    ] {
        let mut cmd = Command::new(bin());
        cmd.arg("stream").arg(root.join(conf));
        if let Some(tag) = extra {
            cmd.args(["-t", tag]);
        }
        let image = run(&mut cmd).stdout;
        let ours = sha256_hex(&image);
        let file = root.join(format!("{conf}.verify.tar"));
        std::fs::write(&file, &image).unwrap();
        verify_image(file.to_str().unwrap());
        std::fs::remove_file(&file).unwrap();
        if ours != want {
            let mut r = Command::new(shared().join("parity/reference-stream"));
            r.arg(root.join(conf));
            if let Some(tag) = extra {
                r.args(["-t", tag]);
            }
            let reference = sha256_hex(&run(&mut r).stdout);
            panic!(
                "{conf}: ours {ours}, pinned {want}, reference here {reference} (if the reference also differs, this machine's umask/user differ from the pinning run)"
            );
        }
    }
}
