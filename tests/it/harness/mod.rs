//! The one harness of the integration tests. Every external tool a test
//! needs is required: a missing one fails the test with the install hint,
//! it is never skipped.
#![allow(dead_code)]

mod contract;
pub mod faults;
mod registry;
pub use contract::*;
pub use registry::{Registry, loopback_certs};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_layered-image"))
}

/// `../shared` beside the repository (CI clones it there).
pub fn shared() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    assert!(p.join("parity/reference-stream").exists(), "{} is missing: the tests need ../shared beside the repository", p.display());
    p
}

pub fn require(tool: &str) {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().map(|o| o.status.success()).unwrap_or(false);
    assert!(found, "required tool `{tool}` is not installed; run tests/install-deps.sh (as root)");
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(4000)]),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Builds `../shared/parity/make-fixture ROOT ARGS...` and returns ROOT.
pub fn make_fixture(root: &Path, args: &[&str]) -> PathBuf {
    run(Command::new(shared().join("parity/make-fixture")).arg(root).args(args));
    root.to_path_buf()
}

/// A tiny store with a static busybox and a script that uses it, laid out
/// with relative paths so the image holds them at /nix/store.
pub struct BusyboxStore {
    pub dir: tempfile::TempDir,
    pub busybox: String,
    pub script: String,
}

pub fn busybox_store(uid: u32, gid: u32) -> BusyboxStore {
    require("busybox");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let busybox = "nix/store/0c2jw3xkl6a1yq8wsw7i9cx9bv2lbq1d-busybox-static".to_string();
    let script = "nix/store/1f8ahcn0b9z7n0kw2a1x7dbh5rq4xk3p-hello-script".to_string();
    std::fs::create_dir_all(root.join(&busybox).join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join(&busybox).join("bin/busybox")).unwrap();
    std::fs::create_dir_all(root.join(&script).join("bin")).unwrap();
    std::fs::write(root.join(&script).join("bin/hello"), format!("#!/{busybox}/bin/busybox sh\necho hello from the store\n")).unwrap();
    std::fs::write(root.join(&script).join("data.txt"), "some data\n").unwrap();
    std::os::unix::fs::symlink("bin/hello", root.join(&script).join("hello-link")).unwrap();
    run(Command::new("chmod").args(["-R", "a-w,a+rX"]).arg(root.join("nix/store")));
    run(Command::new("chmod").args(["0555"]).arg(root.join(&busybox).join("bin/busybox")).arg(root.join(&script).join("bin/hello")));
    // Customisation layer: /bin/sh -> busybox, as a symlinkJoin would.
    let custom_src = root.join("custom-src");
    std::fs::create_dir_all(custom_src.join("bin")).unwrap();
    std::os::unix::fs::symlink(format!("/{busybox}/bin/busybox"), custom_src.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink(format!("/{script}/bin/hello"), custom_src.join("bin/hello")).unwrap();
    custom_layer(&custom_src, &root.join("custom"));
    let conf = serde_json::json!({
        "architecture": "amd64",
        "config": {"Cmd": ["/bin/hello"], "Env": ["PATH=/bin"]},
        "os": "linux",
        "store_dir": "nix/store",
        "from_image": null,
        "store_layers": [[busybox.clone()], [script.clone()]],
        "customisation_layer": "custom",
        "repo_tag": "li-test-busybox:latest",
        "created": "2024-05-06T07:08:09+00:00",
        "mtime": "1970-01-01T00:00:01+00:00",
        "uid": uid, "gid": gid, "uname": "user", "gname": "users",
    });
    std::fs::write(root.join("conf.json"), serde_json::to_vec_pretty(&conf).unwrap()).unwrap();
    BusyboxStore { dir, busybox, script }
}

/// layer.tar + checksum the way nixpkgs' customisation layer makes them.
pub fn custom_layer(src: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    run(Command::new("tar")
        .args(["--sort", "name", "--numeric-owner", "--mtime", "@315532800", "--hard-dereference", "-C"])
        .arg(src)
        .arg("-cf")
        .arg(out.join("layer.tar"))
        .arg("."));
    let digest = sha256_hex(&std::fs::read(out.join("layer.tar")).unwrap());
    std::fs::write(out.join("checksum"), format!("{digest}\n")).unwrap();
}

/// A private dockerd (started once, shared by the tests); returns DOCKER_HOST.
pub fn docker_host() -> String {
    require("dockerd");
    require("docker");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dockerd.sh");
    let out = run(Command::new(script).args(["start", "/tmp/layered-image-test-docker"]));
    let line = String::from_utf8(out.stdout).unwrap();
    line.trim().strip_prefix("DOCKER_HOST=").expect("dockerd.sh prints DOCKER_HOST=").to_string()
}

/// Rewrites the members of a tar that `which` selects with `f`, with the tar
/// crate (a writer independent of ours); the rest are copied as they are.
pub fn rewrite_members(tar_bytes: &[u8], which: impl Fn(&str) -> bool, f: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    use std::io::Read;
    let mut ar = tar::Archive::new(tar_bytes);
    let mut out = tar::Builder::new(Vec::new());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if which(&path) {
            data = f(&data);
        }
        let mut h = e.header().clone();
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.append_data(&mut h, &path, &data[..]).unwrap();
    }
    out.into_inner().unwrap()
}

/// A docker-archive whose layer members are gzip-compressed (as some
/// `docker save`s write them); `corrupt` flips a byte of each layer first.
pub fn gzip_layer_members(archive: &[u8], corrupt: bool) -> Vec<u8> {
    use std::io::Write;
    rewrite_members(
        archive,
        |name| name.ends_with("layer.tar"),
        |layer| {
            let mut data = layer.to_vec();
            if corrupt {
                data[600] ^= 1;
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&data).unwrap();
            gz.finish().unwrap()
        },
    )
}

/// A small valid stream case: one store path, a customisation layer made
/// by GNU tar, and conf.json (relative paths) in a temporary directory.
/// Test files add their own failure checks in `impl Case` blocks.
pub struct Case {
    pub dir: tempfile::TempDir,
}

impl Case {
    pub fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("nix/store/aaaa-pkg/bin")).unwrap();
        std::fs::write(root.join("nix/store/aaaa-pkg/bin/x"), "x\n").unwrap();
        let src = root.join("custom-src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("f"), "f\n").unwrap();
        custom_layer(&src, &root.join("custom"));
        let c = Case { dir };
        c.write_conf(&c.conf_value());
        c
    }
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn conf(&self) -> PathBuf {
        self.root().join("conf.json")
    }
    pub fn conf_value(&self) -> serde_json::Value {
        serde_json::json!({
            "architecture": "amd64", "config": {}, "os": "linux", "store_dir": "nix/store", "from_image": null,
            "store_layers": [["nix/store/aaaa-pkg"]], "customisation_layer": "custom", "repo_tag": "t:1",
            "created": "1970-01-01T00:00:01+00:00", "mtime": "1970-01-01T00:00:01+00:00",
            "uid": 0, "gid": 0, "uname": "root", "gname": "root"
        })
    }
    pub fn write_conf(&self, v: &serde_json::Value) {
        std::fs::write(self.conf(), serde_json::to_vec(v).unwrap()).unwrap();
    }
    /// The valid conf with `key` set to `v`.
    pub fn with(&self, key: &str, v: serde_json::Value) -> &Self {
        let mut c = self.conf_value();
        c[key] = v;
        self.write_conf(&c);
        self
    }
}

/// Whatever reached stdout is not a loadable image: no manifest.json.
pub fn assert_not_an_image(bytes: &[u8]) {
    let mut ar = tar::Archive::new(bytes);
    if let Ok(entries) = ar.entries() {
        for e in entries.flatten() {
            let name = e.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            assert_ne!(name, "manifest.json", "a failed stream wrote a complete image");
        }
    }
}

/// `layered-image verify` accepts the image (a path, or a target such as
/// `oci:DIR:TAG`): every digest checked the way its loader reads it.
pub fn verify_image(path_or_target: &str) {
    let out = run(Command::new(bin()).arg("verify").arg(path_or_target));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.starts_with("verified ") && out.stderr.is_empty(), "{path_or_target}: {line}{}", String::from_utf8_lossy(&out.stderr));
    // An OCI layout's JSON is also held to the official schemas.
    let head = line.split_once(": ").map_or("", |(h, _)| h);
    if let Some(path) = head.strip_prefix("verified oci ").or_else(|| head.strip_prefix("verified oci-archive ")) {
        assert_oci_schemas(&[Path::new(path)]);
    }
}

/// Validates the JSON of OCI layouts (directories or oci-archives) against
/// the official image-spec schemas in `../shared/oci-image-spec/schema`
/// (tests/support/oci_schema.py: Python jsonschema + referencing);
/// returns the number of documents validated. Any invalid one fails.
pub fn assert_oci_schemas(layouts: &[&Path]) -> usize {
    require("python3");
    let probe = Command::new("python3").args(["-c", "import jsonschema, referencing"]).output().map(|o| o.status.success()).unwrap_or(false);
    assert!(probe, "python3 lacks jsonschema/referencing; run tests/install-deps.sh (as root)");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/oci_schema.py");
    let schemas = shared().join("oci-image-spec/schema");
    let out = run(Command::new("python3").arg(script).arg(schemas).args(layouts));
    let text = String::from_utf8(out.stdout).unwrap();
    let valid = text.lines().filter(|l| l.starts_with("valid ")).count();
    assert!(valid >= 2 * layouts.len(), "too few documents validated:\n{text}");
    valid
}
