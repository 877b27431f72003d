//! fromImage in the forms users have: plain, compressed as a whole (what
//! `buildLayeredImage` outputs), and with compressed layer members.

use crate::harness as common;
use common::*;
use std::process::Command;

fn compress(cmd: &str, src: &std::path::Path, dst: &std::path::Path) {
    require(cmd);
    let out = run(Command::new(cmd).arg("-c").arg(src));
    std::fs::write(dst, out.stdout).unwrap();
}

/// gzip, bzip2 and xz archives are read as Python's tarfile reads them
/// (checked against the reference); zstd, which Python cannot read, gives
/// the same image as the plain archive.
#[test]
fn compressed_base_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let root = make_fixture(&tmp.path().join("fx"), &[]);
    let conf: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("conf-from.json")).unwrap()).unwrap();
    let plain = run(Command::new(bin()).arg("stream").arg(root.join("conf-from.json"))).stdout;
    for (tool, ext) in [("gzip", "gz"), ("bzip2", "bz2"), ("xz", "xz"), ("zstd", "zst")] {
        let packed = root.join(format!("base.tar.{ext}"));
        compress(tool, &root.join("base.tar"), &packed);
        verify_image(packed.to_str().unwrap());
        let mut c = conf.clone();
        c["from_image"] = packed.to_string_lossy().into_owned().into();
        let path = root.join(format!("conf-from-{ext}.json"));
        std::fs::write(&path, serde_json::to_vec(&c).unwrap()).unwrap();
        let ours = run(Command::new(bin()).arg("stream").arg(&path)).stdout;
        assert!(ours == plain, "{ext}: differs from the plain base's image");
        std::fs::write(root.join("ours.tar"), &ours).unwrap();
        verify_image(root.join("ours.tar").to_str().unwrap());
        if ext != "zst" {
            let out = run(Command::new(shared().join("parity/compare")).arg(&path).arg("--").arg(bin()).arg("stream"));
            assert!(String::from_utf8_lossy(&out.stdout).starts_with("identical"), "{ext}: {}", String::from_utf8_lossy(&out.stdout));
        }
    }
}

/// Some docker-archives hold gzip-compressed layer members; their diff_id
/// is the digest of the uncompressed tar, and it is verified as such.
#[test]
fn compressed_layer_members_are_verified_uncompressed() {
    let host = docker_host();
    let store = busybox_store(0, 0);
    let base = store.dir.path().join("base.tar");
    run(Command::new(bin()).arg("stream").arg(store.dir.path().join("conf.json")).arg("-o").arg(&base));
    let bytes = std::fs::read(&base).unwrap();
    let rewrite = |corrupt: bool| gzip_layer_members(&bytes, corrupt);
    let mut conf: serde_json::Value = serde_json::from_slice(&std::fs::read(store.dir.path().join("conf.json")).unwrap()).unwrap();
    conf["from_image"] = "gz-members.tar".into();
    conf["repo_tag"] = "li-test-on-gz-base:latest".into();
    std::fs::write(store.dir.path().join("conf-on-base.json"), serde_json::to_vec(&conf).unwrap()).unwrap();

    std::fs::write(store.dir.path().join("gz-members.tar"), rewrite(false)).unwrap();
    let image = store.dir.path().join("on-base.tar");
    verify_image(store.dir.path().join("gz-members.tar").to_str().unwrap());
    run(Command::new(bin()).arg("stream").arg(store.dir.path().join("conf-on-base.json")).arg("-o").arg(&image));
    verify_image(image.to_str().unwrap());
    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &host).args(args);
        c
    };
    run(docker(&["load", "-i", image.to_str().unwrap()]).stdout(std::process::Stdio::null()));
    let out = run(&mut docker(&["run", "--rm", "--network", "none", "li-test-on-gz-base:latest"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the store\n");
    run(&mut docker(&["rmi", "li-test-on-gz-base:latest"]));

    std::fs::write(store.dir.path().join("gz-members.tar"), rewrite(true)).unwrap();
    let out = Command::new(bin()).arg("stream").arg(store.dir.path().join("conf-on-base.json")).arg("-o").arg(&image).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("but the image config's diff_id is"), "{err}");
}
