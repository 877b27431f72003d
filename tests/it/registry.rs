//! `copy ... docker://` against a real registry (Debian's docker-registry,
//! distribution 2.8) on loopback, over HTTP and over TLS with htpasswd
//! basic auth; and `copy ... docker-daemon:` into a real Docker engine and
//! podman's Docker-compatible service. What was uploaded is counted in the
//! registry's own access log; what was pushed is pulled back and run.

use crate::harness as common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// distribution's token auth, with tests/support/token-service.py as the
/// token service (killed on drop).
struct TokenService {
    child: std::process::Child,
    realm: String,
}

impl Drop for TokenService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A registry (HTTP) whose auth is bearer tokens from a token service.
fn start_with_tokens() -> (Registry, TokenService) {
    require("openssl");
    require("python3");
    // The registry reads the bundle as it runs: kept for the test's life.
    let k = tempfile::tempdir().unwrap().keep();
    let k = k.as_path();
    run(Command::new("openssl").current_dir(k).args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "token.key",
        "-out",
        "token.crt",
        "-days",
        "2",
        "-subj",
        "/CN=li-token",
    ]));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/token-service.py");
    #[allow(clippy::zombie_processes)] // reaped in Drop
    let child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(k.join("token.key"))
        .arg(k.join("token.crt"))
        .args(["bob", "t0ken-pass", "li-registry", "li-issuer"])
        .stderr(std::fs::File::create(k.join("token.log")).unwrap())
        .spawn()
        .unwrap();
    let realm = format!("http://127.0.0.1:{port}/token");
    let extra = format!(
        "auth:\n  token: {{realm: \"{realm}\", service: li-registry, issuer: li-issuer, rootcertbundle: {}}}\n",
        k.join("token.crt").display()
    );
    let reg = Registry::start_configured(false, false, &extra);
    let mut tokens = TokenService { child, realm };
    // Up once it accepts connections while still running (a token service that
    // could not bind has exited, whoever holds the port).
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || tokens.child.try_wait().unwrap().is_some() {
        assert!(
            tokens.child.try_wait().unwrap().is_none(),
            "the token service exited: {}",
            std::fs::read_to_string(k.join("token.log")).unwrap_or_default()
        );
        assert!(std::time::Instant::now() < end, "the token service did not listen on 127.0.0.1:{port}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (reg, tokens)
}

fn copy(conf: &Path, dest: &str, extra: &[&str]) -> Output {
    run(Command::new(bin()).arg("copy").arg(conf).arg(dest).args(extra))
}

fn copy_fails(conf: &Path, dest: &str, extra: &[&str]) -> String {
    let out = Command::new(bin()).arg("copy").arg(conf).arg(dest).args(extra).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "should fail: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = err.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("layered-image: error: "), "{err}");
    last
}

const INSECURE: &[&str] = &["--dest-tls-verify=false"];

/// The registry holds the image: skopeo reads its config, and it is the
/// image `stream` makes (same config bytes, so the same image ID).
fn assert_pushed(reg: &Registry, repo_tag: &str, conf: &Path, tls: &[&str]) -> Value {
    let src = reg.dest(repo_tag);
    let out = run(Command::new("skopeo").args(["inspect", "--raw"]).args(tls).arg(&src));
    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = run(Command::new("skopeo").args(["inspect", "--config"]).args(tls).arg(&src));
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    let archive = conf.with_file_name("streamed-for-check.tar");
    run(Command::new(bin()).arg("stream").arg(conf).arg("-o").arg(&archive));
    let out = run(Command::new("skopeo").args(["inspect", "--config"]).arg(format!("docker-archive:{}", archive.display())));
    let local: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config, local, "the registry's config is stream's");
    // And it reads back, every digest checked, as a layout.
    let layout = conf.with_file_name(format!("pulled-{}", repo_tag.replace(['/', ':'], "-")));
    run(Command::new("skopeo").arg("copy").args(tls.iter().map(|t| t.replace("dest-", "src-"))).arg(&src).arg(format!("oci:{}:x", layout.display())));
    verify_image(&format!("oci:{}:x", layout.display()));
    manifest
}

#[test]
fn push_pull_run_and_touch_only_what_changed() {
    require("skopeo");
    let reg = Registry::start();
    let store = busybox_store(0, 0);
    let conf = store.dir.path().join("conf.json");
    // First push: every blob is uploaded, streamed while it is made.
    let before = reg.requests().len();
    copy(&conf, &reg.dest("li/busybox:v1"), INSECURE);
    assert_eq!(reg.uploads_since(before).len(), 4, "3 layers and the config");
    assert_pushed(&reg, "li/busybox:v1", &conf, &["--tls-verify=false"]);

    // Docker and podman pull it back and run it.
    let host = docker_host();
    let image = format!("127.0.0.1:{}/li/busybox:v1", reg.port);
    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &host).args(args);
        c
    };
    run(docker(&["pull", &image]).stdout(Stdio::null()));
    let out = run(&mut docker(&["run", "--rm", "--network", "none", &image]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the store\n");
    run(&mut docker(&["rmi", &image]));
    require("podman");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root").arg(store.dir.path().join("podman-root")).arg("--runroot").arg(store.dir.path().join("podman-run"));
        c.args(["--storage-driver", "vfs", "--runtime", "runc"]).args(args);
        c
    };
    run(podman(&["pull", "--tls-verify=false", &image]).stdout(Stdio::null()));
    let out = run(&mut podman(&["run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", &image]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the store\n");

    // With precomputed digests, an unchanged image is pushed without
    // opening a store file (the store is moved away) or uploading a blob.
    let digests = store.dir.path().join("digests.json");
    run(Command::new(bin()).args(["digests", "--compress", "gzip"]).arg(&conf).arg("-o").arg(&digests));
    std::fs::rename(store.dir.path().join("nix"), store.dir.path().join("nix.away")).unwrap();
    let before = reg.requests().len();
    let out = copy(&digests, &reg.dest("li/busybox:v1"), &[&["--digestfile", store.dir.path().join("d").to_str().unwrap()], INSECURE].concat());
    assert_eq!(reg.uploads_since(before), Vec::<String>::new(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(reg.patches_since(before), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("(0 written, 3 already present)"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::rename(store.dir.path().join("nix.away"), store.dir.path().join("nix")).unwrap();
    let digest = std::fs::read_to_string(store.dir.path().join("d")).unwrap();
    let out = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"]).arg(reg.dest("li/busybox:v1")));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest, "--digestfile names the pushed manifest");

    // One changed layer: that layer and the config go up, nothing else.
    let script = store.dir.path().join(&store.script);
    run(Command::new("chmod").arg("-R").arg("u+w").arg(&script));
    std::fs::write(script.join("data.txt"), "other data\n").unwrap();
    run(Command::new(bin()).args(["digests", "--compress", "gzip", "--recompute"]).arg(&conf).arg("-o").arg(&digests));
    let before = reg.requests().len();
    copy(&digests, &reg.dest("li/busybox:v2"), INSECURE);
    assert_eq!(reg.uploads_since(before).len(), 2, "the changed layer and the config: {:?}", reg.uploads_since(before));
    assert_pushed(&reg, "li/busybox:v2", &conf, &["--tls-verify=false"]);

    // Another repository mounts the blobs instead of uploading them.
    let before = reg.requests().len();
    let out = copy(&digests, &reg.dest("li/other:v1"), &[&["--mount-from", "li/busybox"], INSECURE].concat());
    assert_eq!(reg.uploads_since(before), Vec::<String>::new());
    let mounts = reg.requests()[before..].iter().filter(|l| l.contains("mount=sha256") && l.contains("\" 201 ")).count();
    assert_eq!(mounts, 4, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mounted from li/busybox"));
}

/// Without precomputed digests the blob cache still spares unchanged
/// layers: each is read once for its diff_id, and the blob the cache names
/// is neither compressed nor uploaded when the repository has it. The
/// manifest is the one a fresh push makes (deterministic compression).
#[test]
fn the_blob_cache_spares_unchanged_layers_without_digests() {
    require("skopeo");
    let reg = Registry::start();
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    let conf = root.join("conf.json");
    let cache = root.join("cache");
    let push = |tag: &str, extra: &[&str]| {
        let digestfile = root.join(format!("digest-{tag}"));
        let out = run(Command::new(bin())
            .arg("copy")
            .arg(&conf)
            .arg(reg.dest(&format!("li/cached:{tag}")))
            .args(["--dest-tls-verify=false", "--digestfile"])
            .arg(&digestfile)
            .args(extra)
            .env("LAYERED_IMAGE_CACHE_DIR", &cache));
        (String::from_utf8_lossy(&out.stderr).into_owned(), std::fs::read_to_string(digestfile).unwrap())
    };
    let before = reg.requests().len();
    let (_, first) = push("v1", &[]);
    assert_eq!(reg.uploads_since(before).len(), 4, "3 layers and the config");

    let before = reg.requests().len();
    let (err, again) = push("v1-again", &[]);
    assert_eq!(reg.uploads_since(before), Vec::<String>::new(), "{err}");
    assert_eq!(reg.patches_since(before), 0, "{err}");
    assert_eq!(err.matches("blob known from the blob cache, not compressed").count(), 2, "both store layers: {err}");
    assert!(err.contains("(0 written, 3 already present)"), "the customisation layer by its checksum: {err}");
    assert_eq!(again, first, "the same manifest as the first push");

    // --no-blob-cache: every layer is compressed and sent again.
    let before = reg.requests().len();
    let (_, uncached) = push("v1-uncached", &["--no-blob-cache"]);
    assert_eq!(reg.uploads_since(before).len(), 3, "the 3 layers (the config is known)");
    assert_eq!(uncached, first);

    // A changed layer goes up with the config; the rest stays.
    let script = root.join(&store.script);
    run(Command::new("chmod").arg("-R").arg("u+w").arg(&script));
    std::fs::write(script.join("data.txt"), "other data\n").unwrap();
    let before = reg.requests().len();
    let (err, _) = push("v2", &[]);
    assert_eq!(reg.uploads_since(before).len(), 2, "the changed layer and the config: {err}");
    assert_eq!(err.matches("blob known from the blob cache").count(), 1, "{err}");
    assert_pushed(&reg, "li/cached:v2", &conf, &["--tls-verify=false"]);

    // Damaged entries are misses, never errors or wrong blobs.
    for key in std::fs::read_dir(&cache).unwrap() {
        for entry in std::fs::read_dir(key.unwrap().path()).unwrap() {
            std::fs::write(entry.unwrap().path(), "sha256:nonsense 1 sha256:nonsense 1\n").unwrap();
        }
    }
    let before = reg.requests().len();
    let (err, _) = push("v2-damaged", &[]);
    assert_eq!(err.matches("blob known from the blob cache").count(), 0, "{err}");
    assert_eq!(reg.uploads_since(before).len(), 3, "{err}");
    assert_pushed(&reg, "li/cached:v2-damaged", &conf, &["--tls-verify=false"]);
}

#[test]
fn a_store_file_changed_since_its_digests_fails_before_the_manifest() {
    let reg = Registry::start();
    let case = Case::new();
    let digests = case.root().join("digests.json");
    run(Command::new(bin()).args(["digests", "--compress", "gzip"]).arg(case.conf()).arg("-o").arg(&digests));
    // (A repository that has the recorded blobs gets them named without
    // a read: that image is the one the digests describe. A new one needs
    // the layer, and its bytes no longer match.)
    std::fs::write(case.root().join("nix/store/aaaa-pkg/bin/x"), "y\n").unwrap();
    let before = reg.requests().len();
    let err = copy_fails(&digests, &reg.dest("li/case:v1"), &["--dest-tls-verify=false", "--compress", "gzip"]);
    assert!(err.contains("layer 1 (store paths ['nix/store/aaaa-pkg'])") && err.contains("stale"), "{err}");
    let manifests = reg.requests()[before..].iter().filter(|l| l.contains("\"PUT ") && l.contains("/manifests/")).count();
    assert_eq!(manifests, 0, "no manifest was put");
}

#[test]
fn an_interrupted_push_leaves_the_tag_and_a_retry_completes() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = make_fixture(&tmp.path().join("fx"), &["--bulk-mib", "200"]);
    let conf = root.join("conf-newest.json");
    let small = Case::new();
    copy(&small.conf(), &reg.dest("li/big:v1"), INSECURE);
    let tag_digest = || {
        let out = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"]).arg(reg.dest("li/big:v1")));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let old = tag_digest();
    let before = reg.requests().len();
    let mut child = Command::new(bin())
        .arg("copy")
        .arg(&conf)
        .arg(reg.dest("li/big:v1"))
        .args(["--dest-tls-verify=false", "-j", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once an upload is under way.
    for _ in 0..200 {
        if reg.requests()[before..].iter().any(|l| l.contains("\"POST /v2/li/big/blobs/uploads/") && l.contains("\" 202 ")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    run(Command::new("kill").args(["-INT", &child.id().to_string()]));
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "interrupted push exited 0: {err}");
    assert!(err.lines().last().unwrap_or_default().contains("tag was not changed"), "{err}");
    assert_eq!(tag_digest(), old, "the tag still names the old image");
    copy(&conf, &reg.dest("li/big:v1"), INSECURE);
    assert_ne!(tag_digest(), old);
    assert_pushed(&reg, "li/big:v1", &conf, &["--tls-verify=false"]);
}

#[test]
fn tls_basic_auth_and_credentials_as_users_have_them() {
    require("skopeo");
    let reg = Registry::start_tls_auth();
    let certs = reg.certs.clone().unwrap();
    let case = Case::new();
    let conf = case.conf();
    let cert_dir = format!("--dest-cert-dir={}", certs.display());
    // No credentials: one clear error naming the registry and the status.
    let err = copy_fails(&conf, &reg.dest("li/auth:v1"), &[&cert_dir]);
    assert!(err.contains(&format!("127.0.0.1:{}", reg.port)) && err.contains("no credentials"), "{err}");
    let err = copy_fails(&conf, &reg.dest("li/auth:v1"), &[&cert_dir, "--dest-creds", "alice:wrong"]);
    assert!(err.contains("HTTP 401") && err.contains("li/auth"), "{err}");
    // An unknown CA is refused.
    let err = copy_fails(&conf, &reg.dest("li/auth:v1"), &["--dest-creds", "alice:s3cret"]);
    assert!(err.contains("cannot reach the registry"), "{err}");
    // --dest-creds; then an auth.json through $REGISTRY_AUTH_FILE and --dest-authfile.
    copy(&conf, &reg.dest("li/auth:v1"), &[&cert_dir, "--dest-creds", "alice:s3cret"]);
    let skopeo_tls = [format!("--cert-dir={}", certs.display()), "--creds=alice:s3cret".to_string()];
    let tls: Vec<&str> = skopeo_tls.iter().map(String::as_str).collect();
    let out = run(Command::new("skopeo").args(["inspect", "--config"]).args(&tls).arg(reg.dest("li/auth:v1")));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    use base64::Engine;
    let authfile = case.root().join("auth.json");
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(&authfile, format!(r#"{{"auths": {{"127.0.0.1:{}": {{"auth": "{auth}"}}}}}}"#, reg.port)).unwrap();
    run(Command::new(bin()).arg("copy").arg(&conf).arg(reg.dest("li/auth:v2")).arg(&cert_dir).env("REGISTRY_AUTH_FILE", &authfile));
    copy(&conf, &reg.dest("li/auth:v3"), &[&cert_dir, "--dest-authfile", authfile.to_str().unwrap()]);
    // Docker's config.json under $HOME.
    let home = case.root().join("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::copy(&authfile, home.join(".docker/config.json")).unwrap();
    run(Command::new(bin()).arg("copy").arg(&conf).arg(reg.dest("li/auth:v4")).arg(&cert_dir).env("HOME", &home).env_remove("REGISTRY_AUTH_FILE"));
    // A credential helper named by config.json's credHelpers (docker-credential-NAME on PATH).
    let bin_dir = case.root().join("helper-bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let helper = bin_dir.join("docker-credential-li-test");
    std::fs::write(&helper, "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}' \"$server\"\n").unwrap();
    run(Command::new("chmod").arg("+x").arg(&helper));
    let home2 = case.root().join("home2");
    std::fs::create_dir_all(home2.join(".docker")).unwrap();
    std::fs::write(home2.join(".docker/config.json"), format!(r#"{{"credHelpers": {{"127.0.0.1:{}": "li-test"}}}}"#, reg.port)).unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    run(Command::new(bin())
        .arg("copy")
        .arg(&conf)
        .arg(reg.dest("li/auth:v5"))
        .arg(&cert_dir)
        .env("HOME", &home2)
        .env("PATH", path)
        .env_remove("REGISTRY_AUTH_FILE"));
    for tag in ["v2", "v3", "v4", "v5"] {
        run(Command::new("skopeo").arg("inspect").args(&tls).arg(reg.dest(&format!("li/auth:{tag}"))));
    }
}

#[test]
fn a_multi_platform_index() {
    require("skopeo");
    let reg = Registry::start();
    let case = Case::new();
    let mut arm = case.conf_value();
    arm["architecture"] = "arm64".into();
    std::fs::write(case.root().join("arm64.json"), serde_json::to_vec(&arm).unwrap()).unwrap();
    let confs = [case.conf(), case.root().join("arm64.json")];
    run(Command::new(bin()).args(["copy", "--index"]).args(&confs).arg(reg.dest("li/multi:v1")).args(INSECURE));
    let out = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(reg.dest("li/multi:v1")));
    let index: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let archs: Vec<&str> = index["manifests"].as_array().unwrap().iter().map(|m| m["platform"]["architecture"].as_str().unwrap()).collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    for arch in ["amd64", "arm64"] {
        let out =
            run(Command::new("skopeo").args(["inspect", "--config", "--tls-verify=false", "--override-arch", arch]).arg(reg.dest("li/multi:v1")));
        assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["architecture"], arch);
    }
    // The same into an OCI layout.
    let layout = case.root().join("layout");
    run(Command::new(bin()).args(["copy", "--index"]).args(&confs).arg(format!("oci:{}:multi", layout.display())));
    verify_image(&format!("oci:{}:multi", layout.display()));
    run(Command::new("skopeo").args(["inspect", "--override-arch", "arm64"]).arg(format!("oci:{}:multi", layout.display())));
}

#[test]
fn docker_daemon_loads_and_skips_what_it_has() {
    let host = docker_host();
    let store = busybox_store(0, 0);
    let conf = store.dir.path().join("conf.json");
    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &host).args(args);
        c
    };
    let _ = docker(&["rmi", "-f", "li-daemon:v1", "li-daemon:v2"]).output();
    run(Command::new(bin()).arg("copy").arg(&conf).arg("docker-daemon:li-daemon:v1").env("DOCKER_HOST", &host));
    let out = run(&mut docker(&["run", "--rm", "--network", "none", "li-daemon:v1"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the store\n");
    // With every digest known, the engine's copy is recognised by its ID
    // and only tagged: no store file is read (the store is moved away).
    let digests = store.dir.path().join("digests.json");
    run(Command::new(bin()).arg("digests").arg(&conf).arg("-o").arg(&digests));
    std::fs::rename(store.dir.path().join("nix"), store.dir.path().join("nix.away")).unwrap();
    let out = run(Command::new(bin()).arg("copy").arg(&digests).arg("docker-daemon:li-daemon:v2").env("DOCKER_HOST", &host));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has image"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::rename(store.dir.path().join("nix.away"), store.dir.path().join("nix")).unwrap();
    let ids = run(&mut docker(&["inspect", "--format", "{{.Id}}", "li-daemon:v1", "li-daemon:v2"]));
    let ids = String::from_utf8_lossy(&ids.stdout);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids[0], ids[1]);
    run(&mut docker(&["rmi", "li-daemon:v1", "li-daemon:v2"]));
    // No engine there: one clear error.
    let out =
        Command::new(bin()).arg("copy").arg(&conf).arg("docker-daemon:li-daemon:v1").env("DOCKER_HOST", "unix:///nonexistent.sock").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to the Docker engine at /nonexistent.sock"));
}

#[test]
fn podman_service_loads_through_the_docker_api() {
    require("podman");
    let store = busybox_store(0, 0);
    let d = store.dir.path();
    let sock = d.join("podman.sock");
    let mut service = Command::new("podman")
        .arg("--root")
        .arg(d.join("podman-root"))
        .arg("--runroot")
        .arg(d.join("podman-run"))
        .args(["--storage-driver", "vfs", "--tmpdir"])
        .arg(d.join("podman-tmp"))
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", sock.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let result = Command::new(bin())
        .arg("copy")
        .arg(d.join("conf.json"))
        .arg("docker-daemon:li-podman:v1")
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .output();
    let images = Command::new("podman")
        .arg("--root")
        .arg(d.join("podman-root"))
        .arg("--runroot")
        .arg(d.join("podman-run"))
        .args(["--storage-driver", "vfs", "images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output();
    let _ = service.kill();
    let _ = service.wait();
    let result = result.unwrap();
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let images = String::from_utf8_lossy(&images.unwrap().stdout).into_owned();
    assert!(images.contains("li-podman:v1"), "{images}");
}

#[test]
fn bearer_tokens_from_the_registrys_token_service() {
    require("skopeo");
    let (reg, tokens) = start_with_tokens();
    let case = Case::new();
    let err = copy_fails(&case.conf(), &reg.dest("li/tok:v1"), &["--dest-tls-verify=false", "--dest-creds", "bob:wrong"]);
    assert!(err.contains(&tokens.realm) && err.contains("HTTP 401"), "{err}");
    let err = copy_fails(&case.conf(), &reg.dest("li/tok:v1"), &["--dest-tls-verify=false"]);
    assert!(err.contains("HTTP 401"), "anonymous: {err}");
    copy(&case.conf(), &reg.dest("li/tok:v1"), &["--dest-tls-verify=false", "--dest-creds", "bob:t0ken-pass"]);
    let out = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--creds", "bob:t0ken-pass", "--config"]).arg(reg.dest("li/tok:v1")));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    // A second repository mounting from the first: the token covers both.
    let digests = case.root().join("digests.json");
    run(Command::new(bin()).args(["digests", "--compress", "gzip"]).arg(case.conf()).arg("-o").arg(&digests));
    let before = reg.requests().len();
    copy(&digests, &reg.dest("li/tok2:v1"), &["--dest-tls-verify=false", "--dest-creds", "bob:t0ken-pass", "--mount-from", "li/tok"]);
    assert_eq!(reg.uploads_since(before).len(), 0, "mounted, not uploaded");
}
