//! Images load for real: skopeo, umoci and a Docker engine consume what
//! `layered-image stream` writes.

use crate::harness as common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

fn stream_to_file(store: &BusyboxStore) -> std::path::PathBuf {
    let image = store.dir.path().join("image.tar");
    run(Command::new(bin()).arg("stream").arg(store.dir.path().join("conf.json")).arg("-o").arg(&image));
    verify_image(image.to_str().unwrap());
    image
}

#[test]
fn skopeo_inspects_and_umoci_unpacks_the_store_content() {
    require("skopeo");
    require("umoci");
    let store = busybox_store(1000, 100);
    let image = stream_to_file(&store);
    let out = run(Command::new("skopeo").args(["inspect", "--raw"]).arg(format!("docker-archive:{}", image.display())));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = run(Command::new("skopeo").args(["inspect", "--config"]).arg(format!("docker-archive:{}", image.display())));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Two store layers and the customisation layer; each digest matches.
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids.len(), 3, "{config}");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{manifest}");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["config"]["Cmd"][0], "/bin/hello");

    let layout = store.dir.path().join("oci");
    run(Command::new("skopeo").arg("copy").arg(format!("docker-archive:{}", image.display())).arg(format!("oci:{}:t", layout.display())));
    verify_image(&format!("oci:{}:t", layout.display()));
    let bundle = store.dir.path().join("bundle");
    run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:t", layout.display())).arg(&bundle));
    let rootfs = bundle.join("rootfs");

    // Every store entry is in the rootfs with its content and mode, owned
    // by the conf's uid/gid; /nix and /nix/store are 0755.
    let mut checked = 0;
    for top in [&store.busybox, &store.script] {
        for entry in walk(&store.dir.path().join(top)) {
            let rel = entry.strip_prefix(store.dir.path()).unwrap();
            let got = rootfs.join(rel);
            let (a, b) =
                (std::fs::symlink_metadata(&entry).unwrap(), std::fs::symlink_metadata(&got).unwrap_or_else(|e| panic!("{}: {e}", got.display())));
            assert_eq!(a.mode() & 0o7777, b.mode() & 0o7777, "{}", rel.display());
            assert_eq!((b.uid(), b.gid()), (1000, 100), "{}", rel.display());
            assert_eq!(a.file_type(), b.file_type(), "{}", rel.display());
            if a.is_file() {
                assert_eq!(std::fs::read(&entry).unwrap(), std::fs::read(&got).unwrap(), "{}", rel.display());
            }
            if a.file_type().is_symlink() {
                assert_eq!(std::fs::read_link(&entry).unwrap(), std::fs::read_link(&got).unwrap());
            }
            checked += 1;
        }
    }
    assert!(checked >= 7, "{checked}");
    for d in ["nix", "nix/store"] {
        let m = std::fs::metadata(rootfs.join(d)).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o755, "{d}");
        assert_eq!((m.uid(), m.gid()), (1000, 100), "{d}");
    }
    // The customisation layer keeps GNU tar's numeric owner (root here).
    let sh = std::fs::symlink_metadata(rootfs.join("bin/sh")).unwrap();
    assert!(sh.file_type().is_symlink());
    assert_eq!(std::fs::read_link(rootfs.join("bin/sh")).unwrap(), Path::new(&format!("/{}/bin/busybox", store.busybox)));
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if std::fs::symlink_metadata(p).unwrap().is_dir() {
        let mut kids: Vec<_> = std::fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect();
        kids.sort();
        for k in kids {
            out.extend(walk(&k));
        }
    }
    out
}

#[test]
fn docker_loads_and_runs_the_image() {
    let host = docker_host();
    let store = busybox_store(0, 0);
    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &host).args(args);
        c
    };
    // Stream straight into `docker load`, as users do with ./result.
    let mut stream = Command::new(bin())
        .arg("stream")
        .arg(store.dir.path().join("conf.json"))
        .args(["-t", "li-test-busybox:streamed"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let load = docker(&["load"]).stdin(stream.stdout.take().unwrap()).output().unwrap();
    let status = stream.wait().unwrap();
    assert!(status.success() && load.status.success(), "load: {}", String::from_utf8_lossy(&load.stderr));
    assert!(String::from_utf8_lossy(&load.stdout).contains("li-test-busybox:streamed"), "{}", String::from_utf8_lossy(&load.stdout));

    let out = run(&mut docker(&["run", "--rm", "--network", "none", "li-test-busybox:streamed"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the store\n");
    let out = run(&mut docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "65534:65534",
        "--entrypoint",
        "/bin/sh",
        "li-test-busybox:streamed",
        "-c",
        "stat -c '%a %u:%g' /nix /nix/store && cat /nix/store/*-hello-script/data.txt && readlink /nix/store/*-hello-script/hello-link",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "755 0:0\n755 0:0\nsome data\nbin/hello\n");
    let out = run(&mut docker(&["inspect", "--format", "{{len .RootFS.Layers}} {{.Created}} {{.Architecture}}", "li-test-busybox:streamed"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3 2024-05-06T07:08:09Z amd64");
    run(&mut docker(&["rmi", "li-test-busybox:streamed"]));
}

/// A private registry on 127.0.0.1 (never all interfaces), stopped on drop.
struct Registry {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        require("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem: {{rootdirectory: {}}}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        #[allow(clippy::zombie_processes)] // reaped in Drop
        let child = Command::new("docker-registry").arg("serve").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Registry { child, port, _dir: dir };
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("docker-registry did not listen on 127.0.0.1:{port}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CI's path: stream, push to a registry with skopeo, pull the manifest back.
#[test]
fn skopeo_pushes_to_a_registry() {
    require("skopeo");
    let store = busybox_store(0, 0);
    let image = stream_to_file(&store);
    let reg = Registry::start();
    let dest = format!("docker://127.0.0.1:{}/li/busybox:pushed", reg.port);
    run(Command::new("skopeo").args(["copy", "--dest-tls-verify=false"]).arg(format!("docker-archive:{}", image.display())).arg(&dest));
    let out = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--config"]).arg(&dest));
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = run(Command::new("skopeo").args(["inspect", "--config"]).arg(format!("docker-archive:{}", image.display())));
    let local: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pushed["rootfs"], local["rootfs"], "the registry holds the same layers");
}

#[test]
fn podman_loads_the_image() {
    require("podman");
    let store = busybox_store(0, 0);
    let image = stream_to_file(&store);
    let root = store.dir.path().join("podman-root");
    let runroot = store.dir.path().join("podman-run");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root").arg(&root).arg("--runroot").arg(&runroot).args(["--storage-driver", "vfs"]).args(args);
        c
    };
    let out = run(&mut podman(&["load", "-i", image.to_str().unwrap()]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("li-test-busybox:latest"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = run(&mut podman(&["image", "inspect", "--format", "{{len .RootFS.Layers}}", "li-test-busybox:latest"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
}
