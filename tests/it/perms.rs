//! Non-root images: the conf's `perms` (per-path owners and modes, as
//! nix2container's) and `users` (passwd/group/shadow, homes, /tmp 1777).
//! Docker and podman run the image as the user; umoci unpacks it; what
//! they show is compared with what the conf asked for. Without the keys
//! the image stays the reference's, byte for byte.

use crate::harness::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The busybox store with `perms` on the script's store path (data.txt
/// becomes the user's and 0640; bin/ 0750 with the user's group) and the
/// user `app` (1000:1000) as the image's user.
fn perms_image() -> (BusyboxStore, PathBuf) {
    let store = busybox_store(0, 0);
    let conf_path = store.dir.path().join("conf.json");
    let mut conf: Value = serde_json::from_slice(&std::fs::read(&conf_path).unwrap()).unwrap();
    conf["perms"] = json!([
        {"path": store.script, "regex": "data\\.txt$", "mode": "0640", "uid": 1000, "gid": 1000, "uname": "app", "gname": "app"},
        {"path": store.script, "regex": "/bin$", "mode": "0750", "gid": 1000},
    ]);
    conf["users"] = json!([{"name": "app", "uid": 1000, "gid": 1000}]);
    conf["config"]["User"] = json!("app");
    std::fs::write(&conf_path, serde_json::to_vec_pretty(&conf).unwrap()).unwrap();
    let image = store.dir.path().join("image.tar");
    run(Command::new(bin()).arg("stream").arg(&conf_path).arg("-o").arg(&image));
    verify_image(image.to_str().unwrap());
    (store, image)
}

/// What the conf asks for, worked out from the store on disk: every
/// entry of the script's store path as `mode uid gid path` (what
/// `stat -c '%a %u %g %n'` prints), sorted.
fn expected_script_entries(store: &BusyboxStore) -> Vec<String> {
    let mut out = Vec::new();
    let top = store.dir.path().join(&store.script);
    let mut stack = vec![top.clone()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
        let name = format!("/{}", p.strip_prefix(store.dir.path()).unwrap().display());
        let (mode, uid, gid) = if name.ends_with("data.txt") {
            (0o640, 1000, 1000)
        } else if name.ends_with("/bin") {
            (0o750, 0, 1000)
        } else {
            (meta.mode() & 0o7777, 0, 0)
        };
        out.push(format!("{mode:o} {uid} {gid} {name}"));
    }
    out.sort();
    out
}

const INSIDE: &str = "id -u; id -g; echo $HOME; \
    touch $HOME/f && echo home-writable; touch /tmp/f && echo tmp-writable; \
    if touch /nix/store/f 2>/dev/null; then echo store-writable; else echo store-read-only; fi; \
    if touch /nix/store/*-hello-script/f 2>/dev/null; then echo path-writable; else echo path-read-only; fi; \
    stat -c '%a %u %g %n' /tmp /home/app /etc/passwd /etc/shadow; \
    ls -ln /nix/store/*-hello-script/data.txt; cat /nix/store/*-hello-script/data.txt; \
    find /nix/store/*-hello-script -exec stat -c '%a %u %g %n' {} + | sort";

fn check_inside(runtime: &str, out: &str, store: &BusyboxStore) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..12],
        [
            "1000",
            "1000",
            "/home/app",
            "home-writable",
            "tmp-writable",
            "store-read-only",
            "path-read-only",
            "1777 0 0 /tmp",
            "755 1000 1000 /home/app",
            "644 0 0 /etc/passwd",
            "640 0 0 /etc/shadow",
            lines[11],
        ],
        "{runtime}:\n{out}"
    );
    let ls: Vec<&str> = lines[11].split_whitespace().collect();
    assert_eq!((ls[0], ls[2], ls[3]), ("-rw-r-----", "1000", "1000"), "{runtime}: ls -ln: {}", lines[11]);
    assert_eq!(lines[12], "some data", "{runtime}: the user reads its own file");
    assert_eq!(lines[13..].to_vec(), expected_script_entries(store), "{runtime}: stat inside differs from the conf");
}

#[test]
fn docker_runs_a_perms_and_users_image_as_the_user() {
    let host = docker_host();
    let (store, image) = perms_image();
    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &host).args(args);
        c
    };
    run(docker(&["load", "-i"]).arg(&image));
    let tag = "li-test-busybox:latest";
    // The default command, as the config's user, through the 0750 bin/
    // that only the user's group may enter.
    let out = run(&mut docker(&["run", "--rm", "--network", "none", tag]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the store\n");
    let out = run(&mut docker(&["run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", tag, "-c", INSIDE]));
    check_inside("docker", &String::from_utf8_lossy(&out.stdout), &store);
    // Another user (nobody) cannot enter bin/ nor read data.txt.
    let out = run(&mut docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "65534:65534",
        "--entrypoint",
        "/bin/sh",
        tag,
        "-c",
        "cat /nix/store/*-hello-script/data.txt 2>/dev/null || echo denied; ls /nix/store/*-hello-script/bin 2>/dev/null || echo denied",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "denied\ndenied\n");
    run(&mut docker(&["rmi", tag]));
}

#[test]
fn podman_runs_a_perms_and_users_image_as_the_user() {
    require("podman");
    require("runc");
    let (store, image) = perms_image();
    let root = store.dir.path().join("podman-root");
    let runroot = store.dir.path().join("podman-run");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root").arg(&root).arg("--runroot").arg(&runroot).args(["--storage-driver", "vfs", "--runtime", "runc"]).args(args);
        c
    };
    run(podman(&["load", "-i"]).arg(&image));
    let tag = "localhost/li-test-busybox:latest";
    let limits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
    let out = run(podman(&["run", "--rm", "--network", "none"]).args(limits).arg(tag));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the store\n");
    let out = run(podman(&["run", "--rm", "--network", "none"]).args(limits).args(["--entrypoint", "/bin/sh", tag, "-c", INSIDE]));
    check_inside("podman", &String::from_utf8_lossy(&out.stdout), &store);
}

/// `(mode, uid, gid)` of a path in an unpacked rootfs.
fn owner(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

#[test]
fn umoci_unpacks_the_modes_and_owners_perms_and_users_ask_for() {
    require("skopeo");
    require("umoci");
    let (store, image) = perms_image();
    let layout = store.dir.path().join("oci");
    run(Command::new("skopeo").arg("copy").arg(format!("docker-archive:{}", image.display())).arg(format!("oci:{}:t", layout.display())));
    let bundle = store.dir.path().join("bundle");
    run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:t", layout.display())).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let mut got = Vec::new();
    let mut stack = vec![rootfs.join(&store.script)];
    while let Some(p) = stack.pop() {
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
        let (mode, uid, gid) = owner(&p);
        got.push(format!("{mode:o} {uid} {gid} /{}", p.strip_prefix(&rootfs).unwrap().display()));
    }
    got.sort();
    assert_eq!(got, expected_script_entries(&store));
    assert_eq!(owner(&rootfs.join("tmp")), (0o1777, 0, 0));
    assert_eq!(owner(&rootfs.join("home/app")), (0o755, 1000, 1000));
    assert_eq!(owner(&rootfs.join("etc/shadow")), (0o640, 0, 0));
    assert_eq!(owner(&rootfs.join("nix/store")), (0o755, 0, 0));
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.ends_with("app:x:1000:1000::/home/app:/bin/sh\n"), "{passwd}");
    let shadow = std::fs::read_to_string(rootfs.join("etc/shadow")).unwrap();
    assert!(shadow.lines().all(|l| l.split(':').nth(1) == Some("!")), "every account locked: {shadow}");
}

/// The fixture's confs with `"perms": []` stay the reference's bytes, and
/// an image without either key is unchanged by this feature (the parity
/// tests hold it to the reference on every conf).
#[test]
fn empty_perms_keep_the_reference_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let root = make_fixture(dir.path(), &[]);
    for name in ["conf-seed.json", "conf-newest.json", "conf-from.json"] {
        let mut conf: Value = serde_json::from_slice(&std::fs::read(root.join(name)).unwrap()).unwrap();
        conf["perms"] = json!([]);
        let with = root.join(format!("perms-{name}"));
        std::fs::write(&with, serde_json::to_vec(&conf).unwrap()).unwrap();
        let out = run(Command::new(shared().join("parity/compare")).arg(&with).arg("--").arg(bin()).arg("stream"));
        assert!(String::from_utf8_lossy(&out.stdout).contains("identical"), "{name}: {}", String::from_utf8_lossy(&out.stdout));
    }
}

/// A layer member's mode, uid, gid and data.
type Member = (u32, u64, u64, Vec<u8>);

/// Members of each layer of a docker-archive, by layer.
fn layer_members(image: &Path) -> Vec<BTreeMap<String, Member>> {
    use std::io::Read;
    let bytes = std::fs::read(image).unwrap();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        files.insert(name, data);
    }
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut members = BTreeMap::new();
            for e in tar::Archive::new(&files[l.as_str().unwrap()][..]).entries().unwrap() {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                members.insert(e.path().unwrap().display().to_string(), (h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap(), data));
            }
            members
        })
        .collect()
}

#[test]
fn users_extend_the_passwd_of_the_layers_below_and_the_layer_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let root = make_fixture(dir.path(), &[]);
    // conf-from: a base image, and a customisation layer holding /etc/passwd.
    let mut conf: Value = serde_json::from_slice(&std::fs::read(root.join("conf-from.json")).unwrap()).unwrap();
    conf["users"] = json!([{"name": "app", "uid": 1000, "gid": 1000}, {"name": "svc", "uid": 1001, "gid": 1000, "group": "app", "home": "/srv/svc"}]);
    let conf_path = root.join("conf-users.json");
    std::fs::write(&conf_path, serde_json::to_vec(&conf).unwrap()).unwrap();
    let (a, b) = (root.join("a.tar"), root.join("b.tar"));
    for out in [&a, &b] {
        run(Command::new(bin()).arg("stream").arg(&conf_path).arg("-o").arg(out));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "the same conf, the same bytes");
    verify_image(a.to_str().unwrap());
    let layers = layer_members(&a);
    let users = layers.last().unwrap();
    let below = std::fs::read_to_string(root.join("custom-src/etc/passwd")).unwrap();
    let passwd = String::from_utf8(users["etc/passwd"].3.clone()).unwrap();
    let mut expected = below.clone();
    if !expected.ends_with('\n') {
        expected.push('\n');
    }
    expected += "app:x:1000:1000::/home/app:/bin/sh\nsvc:x:1001:1000::/srv/svc:/bin/sh\n";
    assert_eq!(passwd, expected);
    let group = String::from_utf8(users["etc/group"].3.clone()).unwrap();
    assert_eq!(group.matches("app:x:1000:").count(), 1, "{group}");
    assert_eq!((users["home/app/"].0, users["home/app/"].1, users["home/app/"].2), (0o755, 1000, 1000));
    assert_eq!((users["srv/svc/"].1, users["srv/svc/"].2), (1001, 1000));
    assert_eq!(users["tmp/"].0, 0o1777);
    // nothing but the account files, the homes and /tmp
    assert_eq!(users.keys().cloned().collect::<Vec<_>>(), ["etc/group", "etc/passwd", "etc/shadow", "home/app/", "srv/svc/", "tmp/"]);
}

#[test]
fn bad_perms_and_users_are_one_error_naming_the_key() {
    let case = Case::new();
    let conf = case.conf();
    let base = case.conf_value();
    let path = base["store_layers"][0][0].clone();
    let try_conf = |key: &str, v: Value, needles: &[&str]| {
        let mut c = base.clone();
        c[key] = v;
        case.write_conf(&c);
        let out = case.root().join("out.tar");
        li(["stream".as_ref(), conf.as_os_str(), "-o".as_ref(), out.as_os_str()]).fails(needles);
        assert!(!out.exists());
    };
    try_conf("perms", json!([{"path": path, "regex": "("}]), &["conf.json", "perms[0].regex"]);
    try_conf("perms", json!([{"path": path, "mode": "999"}]), &["perms[0].mode", "\"999\""]);
    try_conf("perms", json!([{"path": "nix/store/zzzz-elsewhere"}]), &["perms[0].path", "no store layer"]);
    try_conf("perms", json!([{"path": "/etc"}]), &["perms[0].path", "not inside the store"]);
    try_conf("users", json!([{"name": "app"}]), &["users[0].uid"]);
    try_conf("users", json!([{"name": "root", "uid": 5}]), &["users: user \"root\" already exists", "defaults"]);
}

#[test]
fn a_users_clash_with_the_customisation_layers_passwd_names_it() {
    let case = Case::new();
    let src = case.root().join("custom-src");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/sh\n").unwrap();
    std::fs::remove_dir_all(case.root().join("custom")).unwrap();
    custom_layer(&src, &case.root().join("custom"));
    case.with("users", json!([{"name": "app", "uid": 1000}]));
    let out = case.root().join("out.tar");
    li(["stream".as_ref(), case.conf().as_os_str(), "-o".as_ref(), out.as_os_str()]).fails(&["uid 1000", "\"ubuntu\"", "customisation layer"]);
    assert!(!out.exists());
}

/// An image on a base made with other owners: both carry /nix and
/// /nix/store. `verify` warns, naming the layers, and umoci's unpacking
/// keeps the later layer's owner, as the warning says.
#[test]
fn verify_warns_about_directories_layers_shadow_and_unpacking_agrees() {
    require("skopeo");
    require("umoci");
    let store = busybox_store(0, 0);
    let conf = store.dir.path().join("conf.json");
    let base = store.dir.path().join("base.tar");
    run(Command::new(bin()).arg("stream").arg(&conf).arg("-o").arg(&base));
    let mut v: Value = serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    v["from_image"] = json!("base.tar");
    v["uid"] = json!(1000);
    v["gid"] = json!(100);
    v["store_layers"] = json!([[store.script]]);
    let on_base = store.dir.path().join("on-base.json");
    std::fs::write(&on_base, serde_json::to_vec(&v).unwrap()).unwrap();
    let image = store.dir.path().join("image.tar");
    run(Command::new(bin()).arg("stream").arg(&on_base).arg("-o").arg(&image));
    let out = run(Command::new(bin()).arg("verify").arg(&image));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("verified docker-archive"));
    let err = String::from_utf8_lossy(&out.stderr);
    for dir in ["/nix ", "/nix/store "] {
        let line = err.lines().find(|l| l.contains(&format!("directory {dir}"))).unwrap_or_else(|| panic!("no warning for {dir}:\n{err}"));
        assert!(
            line.starts_with("layered-image: warning: ")
                && line.contains("in layer 1 (uid 0, gid 0, mode 0755)")
                && line.contains("in layer 3 (uid 1000, gid 100, mode 0755)")
                && line.ends_with("unpacking keeps layer 3's"),
            "{line}"
        );
    }
    let layout = store.dir.path().join("oci");
    run(Command::new("skopeo").arg("copy").arg(format!("docker-archive:{}", image.display())).arg(format!("oci:{}:t", layout.display())));
    let bundle = store.dir.path().join("bundle");
    run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:t", layout.display())).arg(&bundle));
    assert_eq!(owner(&bundle.join("rootfs/nix/store")), (0o755, 1000, 100));
    // The base alone shadows nothing (its layers share one owner).
    verify_image(base.to_str().unwrap());
}

/// `copy` makes the same image as `stream` (the users layer included): its
/// config is `stream`'s very bytes, and its layers decompress to `stream`'s
/// tars; with digests precomputed by `digests` too.
#[test]
fn copy_to_an_oci_layout_is_the_streamed_image() {
    let (store, image) = perms_image();
    let conf = store.dir.path().join("conf.json");
    let with_digests = store.dir.path().join("conf-digests.json");
    run(Command::new(bin()).arg("digests").arg(&conf).arg("-o").arg(&with_digests).args(["--compress", "gzip"]));
    let streamed = layer_members(&image);
    let bytes = std::fs::read(&image).unwrap();
    let stream_config = tar::Archive::new(&bytes[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_string_lossy().ends_with(".json") && e.path().unwrap().to_string_lossy() != "manifest.json")
        .map(|mut e| {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            v
        })
        .unwrap();
    for (i, c) in [&conf, &with_digests].into_iter().enumerate() {
        let layout = store.dir.path().join(format!("oci-{i}"));
        let dest = format!("oci:{}:t", layout.display());
        run(Command::new(bin()).arg("copy").arg(c).arg(&dest).args(["--compress", "gzip"]));
        verify_image(&dest);
        let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let blob = |d: &Value| layout.join("blobs/sha256").join(d["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap());
        let manifest: Value = serde_json::from_slice(&std::fs::read(blob(&index["manifests"][0])).unwrap()).unwrap();
        assert_eq!(std::fs::read(blob(&manifest["config"])).unwrap(), stream_config, "copy's config is stream's");
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), streamed.len());
        let last = std::fs::read(blob(layers.last().unwrap())).unwrap();
        let mut tar_bytes = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&last[..]), &mut tar_bytes).unwrap();
        let mut names = Vec::new();
        for e in tar::Archive::new(&tar_bytes[..]).entries().unwrap() {
            names.push(e.unwrap().path().unwrap().display().to_string());
        }
        assert_eq!(names, streamed.last().unwrap().keys().cloned().collect::<Vec<_>>());
    }
}

/// A store of two paths (lib, app) under a temporary root, the graph of
/// both, lib's own graph, a base json and a customisation layer: what
/// `layer` (buildLayer) and `conf --layer` read.
struct LayerFixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    store: PathBuf,
    lib: String,
}

fn layer_fixture() -> LayerFixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let store = root.join("nix/store");
    for name in ["aaaa-lib", "bbbb-app"] {
        std::fs::create_dir_all(store.join(name).join("share")).unwrap();
        std::fs::write(store.join(name).join("file"), name.repeat(500)).unwrap();
        std::fs::write(store.join(name).join("share/data"), "data\n").unwrap();
    }
    let path = |n: &str| store.join(n).display().to_string();
    let lib = path("aaaa-lib");
    let node = |n: &str, refs: &[&str]| json!({"path": path(n), "references": refs.iter().map(|r| path(r)).collect::<Vec<_>>(), "narSize": 1000});
    let write = |name: &str, v: Value| std::fs::write(root.join(name), serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    write("graph.json", json!({"graph": [node("aaaa-lib", &[]), node("bbbb-app", &["aaaa-lib"])]}));
    write("lib-graph.json", json!({"graph": [node("aaaa-lib", &[])]}));
    write("base.json", json!({"architecture": "amd64", "config": {}, "os": "linux"}));
    std::fs::create_dir_all(root.join("custom-src")).unwrap();
    std::fs::write(root.join("custom-src/x"), "x").unwrap();
    custom_layer(&root.join("custom-src"), &root.join("custom"));
    LayerFixture { _tmp: tmp, root, store, lib }
}

impl LayerFixture {
    fn json(&self, name: &str, v: &Value) -> PathBuf {
        let p = self.root.join(name);
        std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
        p
    }

    fn read(&self, p: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }

    /// `layered-image layer` of lib, with `args`.
    fn layer(&self, out: &str, args: &[&str]) -> PathBuf {
        let p = self.root.join(out);
        run(Command::new(bin())
            .arg("layer")
            .arg("--graph")
            .arg(self.root.join("lib-graph.json"))
            .arg("--store-dir")
            .arg(&self.store)
            .args(args)
            .arg("-o")
            .arg(&p));
        p
    }

    /// `layered-image conf` of the whole graph on `base`, lib's layer file first.
    fn conf(&self, out: &str, base: &Path, layer: &Path) -> PathBuf {
        let p = self.root.join(out);
        run(Command::new(bin())
            .arg("conf")
            .arg("--graph")
            .arg(self.root.join("graph.json"))
            .arg("--base-json")
            .arg(base)
            .arg("--customisation-layer")
            .arg(self.root.join("custom"))
            .args(["--image-name", "perms-layer", "--image-tag", "t", "--store-dir"])
            .arg(&self.store)
            .arg("--layer")
            .arg(layer)
            .arg("-o")
            .arg(&p));
        p
    }

    fn stream(&self, conf: &Path) -> Vec<u8> {
        run(Command::new(bin()).arg("stream").arg(conf)).stdout
    }

    /// The manifest digest `copy` writes into a fresh OCI layout (verified).
    fn copy(&self, conf: &Path, name: &str) -> String {
        let layout = self.root.join(name);
        let dest = format!("oci:{}:t", layout.display());
        run(Command::new(bin()).arg("copy").arg(conf).arg(&dest).args(["--compress", "gzip"]));
        verify_image(&dest);
        let index = self.read(&layout.join("index.json"));
        index["manifests"][0]["digest"].as_str().unwrap().to_string()
    }
}

/// `perms` on the paths of an explicit layer (`layer`, Nix's buildLayer):
/// a layer made without them gets no recorded digest in the image (it
/// would be stale), a layer made with them (`layer --perms`) keeps its
/// digests and brings its rules into the conf; every way of making the
/// image gives the same bytes, streamed or copied, with the owners and
/// modes the rules ask for.
#[test]
fn perms_on_explicit_layers_keep_the_recorded_digests_right() {
    let f = layer_fixture();
    let rules = json!([{"path": f.lib, "regex": "/share/data$", "mode": "0600", "uid": 1000, "gid": 1000, "uname": "app", "gname": "app"}]);
    let base = f.read(&f.root.join("base.json"));
    let mut base_perms = base.clone();
    base_perms["perms"] = rules.clone();
    let base_perms = f.json("base-perms.json", &base_perms);
    let base_plain = f.root.join("base.json");

    // 1. A layer made without perms, an image whose perms reach it.
    let plain = f.layer("plain.json", &[]);
    let c1 = f.conf("conf-1.json", &base_perms, &plain);
    let v1 = f.read(&c1);
    assert!(v1.get("store_layer_digests").is_none(), "the plain layer's digest would be stale: {v1}");
    let image = f.stream(&c1);
    // What recording it would do: stream and copy refuse the stale digest.
    let mut stale = v1.clone();
    let n = stale["store_layers"].as_array().unwrap().len();
    stale["store_layer_digests"] =
        Value::Array(std::iter::once(f.read(&plain)["digest"].clone()).chain(std::iter::repeat_n(Value::Null, n - 1)).collect());
    let stale = f.json("conf-stale.json", &stale);
    let out = f.root.join("stale.tar");
    li(["stream".as_ref(), stale.as_os_str(), "-o".as_ref(), out.as_os_str()]).fails(&["store_layer_digests", "stale"]);

    // 2. The layer made with the rules (a file holding the list, and Nix's
    // attrs-file shape), the image without perms of its own.
    let rules_file = f.json("rules.json", &rules);
    let with = f.layer("with.json", &["--perms", rules_file.to_str().unwrap()]);
    let attrs = f.json("attrs.json", &json!({"graph": [], "perms": rules}));
    let with_attrs = f.layer("with-attrs.json", &["--perms", attrs.to_str().unwrap()]);
    let spec = f.read(&with);
    assert_eq!(spec, f.read(&with_attrs), "both shapes of --perms make one layer file");
    assert_eq!(spec["perms"], rules);
    assert_ne!(spec["digest"], f.read(&plain)["digest"], "the rules change the layer's bytes");
    let c2 = f.conf("conf-2.json", &base_plain, &with);
    let v2 = f.read(&c2);
    assert_eq!(v2["perms"], rules, "the layer's rules are the image's");
    assert_eq!(v2["store_layer_digests"][0], spec["digest"], "the layer keeps its digests");
    assert_eq!(f.stream(&c2), image, "stream checks the recorded digest and makes the same image");

    // 3. The same layer, the image's own rules reaching it too: its digest
    // is no longer the image's.
    let c3 = f.conf("conf-3.json", &base_perms, &with);
    let v3 = f.read(&c3);
    assert_eq!(v3["perms"].as_array().unwrap().len(), 2);
    assert!(v3.get("store_layer_digests").is_none(), "{v3}");
    assert_eq!(f.stream(&c3), image);

    // 4. Without the recorded digests, and with digests precomputed by
    // `digests`: the same image; `copy` writes one manifest for all.
    let mut v4 = v2.clone();
    v4.as_object_mut().unwrap().remove("store_layer_digests");
    let c4 = f.json("conf-4.json", &v4);
    assert_eq!(f.stream(&c4), image);
    let c5 = f.root.join("conf-5.json");
    run(Command::new(bin()).arg("digests").arg(&c1).args(["--compress", "gzip"]).arg("-o").arg(&c5));
    assert_eq!(f.read(&c5)["store_layer_digests"][0]["sha256"], spec["digest"]["sha256"], "digests computes what layer --perms recorded");
    let manifest = f.copy(&c1, "oci-1");
    for (c, name) in [(&c2, "oci-2"), (&c3, "oci-3"), (&c4, "oci-4"), (&c5, "oci-5")] {
        assert_eq!(f.copy(c, name), manifest, "{}", c.display());
    }

    // The rules are in the image: lib's layer is the first.
    let tar_path = f.root.join("image.tar");
    std::fs::write(&tar_path, &image).unwrap();
    verify_image(tar_path.to_str().unwrap());
    let layers = layer_members(&tar_path);
    let data = layers[0].iter().find(|(k, _)| k.ends_with("aaaa-lib/share/data")).map(|(_, m)| m).unwrap();
    assert_eq!((data.0, data.1, data.2), (0o600, 1000, 1000));
    let share = layers[0].iter().find(|(k, _)| k.ends_with("aaaa-lib/share/")).map(|(_, m)| m).unwrap();
    assert_eq!((share.1, share.2), (0, 0), "the regex matched only the file");
}

#[test]
fn layer_perms_on_a_path_of_no_store_path_of_the_layer_is_one_error() {
    let f = layer_fixture();
    let app = f.store.join("bbbb-app").display().to_string();
    let rules = f.json("rules.json", &json!([{"path": app, "mode": "0700"}]));
    let out = f.root.join("bad.json");
    li([
        "layer".as_ref(),
        "--graph".as_ref(),
        f.root.join("lib-graph.json").as_os_str(),
        "--store-dir".as_ref(),
        f.store.as_os_str(),
        "--perms".as_ref(),
        rules.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ])
    .fails(&["rules.json", "perms[0].path", "bbbb-app"]);
    assert!(!out.exists());
}

/// `users` on a base image (`from_image`) whose own layers hold the
/// accounts, the customisation layer holding none: the users layer's files
/// are the base's plus the users (extended, not replaced), and Docker,
/// resolving the config's user through them, runs as the user and still
/// knows the base's accounts.
#[test]
fn users_extend_the_base_images_passwd() {
    let host = docker_host();
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    let conf: Value = serde_json::from_slice(&std::fs::read(root.join("conf.json")).unwrap()).unwrap();
    // The base: busybox, /bin/sh and its own accounts.
    let src = root.join("base-src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::os::unix::fs::symlink(format!("/{}/bin/busybox", store.busybox), src.join("bin/sh")).unwrap();
    let (passwd, group) = ("root:x:0:0:root:/root:/bin/sh\nbase:x:900:900::/srv/base:/bin/sh\n", "root:x:0:\nbase:x:900:\n");
    std::fs::write(src.join("etc/passwd"), passwd).unwrap();
    std::fs::write(src.join("etc/group"), group).unwrap();
    custom_layer(&src, &root.join("base-custom"));
    let mut base = conf.clone();
    base["store_layers"] = json!([[store.busybox]]);
    base["customisation_layer"] = json!("base-custom");
    base["repo_tag"] = json!("li-test-users-base:latest");
    std::fs::write(root.join("base.json"), serde_json::to_vec(&base).unwrap()).unwrap();
    run(Command::new(bin()).arg("stream").arg(root.join("base.json")).arg("-o").arg(root.join("base.tar")));
    // On it: the script, a customisation layer without accounts, the user.
    let mut on = conf;
    on["from_image"] = json!("base.tar");
    on["store_layers"] = json!([[store.script]]);
    on["users"] = json!([{"name": "app", "uid": 1000}]);
    on["config"]["User"] = json!("app");
    on["repo_tag"] = json!("li-test-users-on-base:latest");
    let on_path = root.join("on-base.json");
    std::fs::write(&on_path, serde_json::to_vec(&on).unwrap()).unwrap();
    let image = root.join("image.tar");
    run(Command::new(bin()).arg("stream").arg(&on_path).arg("-o").arg(&image));
    verify_image(image.to_str().unwrap());
    let layers = layer_members(&image);
    let users = layers.last().unwrap();
    let text = |k: &str| String::from_utf8(users[k].3.clone()).unwrap();
    assert_eq!(text("etc/passwd"), format!("{passwd}app:x:1000:1000::/home/app:/bin/sh\n"));
    assert_eq!(text("etc/group"), format!("{group}app:x:1000:\n"));
    assert_eq!(text("etc/shadow"), "root:!:::::::\nbase:!:::::::\napp:!:::::::\n", "every account below gets a locked entry");

    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &host).args(args);
        c
    };
    run(docker(&["load", "-i"]).arg(&image));
    let tag = "li-test-users-on-base:latest";
    let out = run(&mut docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        tag,
        "-c",
        "id -u; id -un; echo $HOME; touch $HOME/f && echo home-writable; cut -d: -f1 /etc/passwd | tr '\\n' ' '",
    ]));
    run(&mut docker(&["rmi", tag]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1000\napp\n/home/app\nhome-writable\nroot base app ");
}
