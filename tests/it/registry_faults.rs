//! `copy ... docker://` and `docker-daemon:` against registries and
//! engines that behave as real ones do when they are quirky, slow,
//! redirecting or hostile. A real registry (distribution 2.8) stores and
//! serves; tests/support/fault-proxy.py in front of it injects one
//! behaviour per case and logs every request's headers, over HTTP and
//! TLS. Each case asserts what the user sees, that no credential reached
//! another origin (from the proxy's log), that no tag names a broken
//! image (pulled back by skopeo and `verify`), and for waits how long
//! they took. skopeo 1.9 is run on the same proxy where it succeeds, so
//! a case it handles is one we handle too.

use crate::harness::faults::*;
use crate::harness::*;
use std::process::Command;
use std::time::Duration;

fn cert_flag(certs: &Certs) -> String {
    format!("--dest-cert-dir={}", certs.ca_dir().display())
}

/// Cases where a server asks for credentials somewhere they do not belong:
/// each fails with one error naming the origin refused, the proxy's log
/// shows credentials at the registry's own origin only, and no tag is
/// written.
#[test]
fn credentials_go_only_to_the_registrys_origin() {
    let upstream = Upstream::start(true);
    let certs = Certs::new();
    let case = Case::new();
    let cert = cert_flag(&certs);
    type Named<'a> = &'a dyn Fn(&Proxy) -> String;
    let cases: [(&str, Named); 4] = [
        // An HTTPS registry naming a token realm over plain HTTP.
        ("realm-http", &|p: &Proxy| format!("token service at http://127.0.0.1:{}", p.sink)),
        // An upload Location on the same host and port, but plain HTTP.
        ("location-http", &|p: &Proxy| format!("http://127.0.0.1:{}", p.main)),
        // A blob HEAD redirected to another origin, which asks for a token of a third.
        ("redirect-third", &|p: &Proxy| format!("https://127.0.0.1:{}", p.other)),
        // The blob commit PUT redirected (307) to another origin, which asks for credentials.
        ("redirect-put-other", &|p: &Proxy| format!("https://127.0.0.1:{}", p.other)),
    ];
    for (fault, named) in cases {
        let proxy = Proxy::start(&upstream, fault, Some(&certs));
        let out = copy_to(&case.conf(), &proxy.dest(&format!("li/{fault}:v1")), &[&cert, "--dest-creds", CREDS]);
        let err = out.error();
        assert!(err.contains(&named(&proxy)), "{fault}: the error names the origin refused: {err}");
        proxy.assert_no_leak();
        assert_eq!(proxy.manifest_puts(), 0, "{fault}: no tag was written");
        assert_eq!(upstream.digest_of(&format!("li/{fault}:v1")), None, "{fault}");
    }
}

/// With --dest-tls-verify=false, plain HTTP is tried only at the first
/// contact: a connection dropped mid-push (over TLS) is retried over TLS,
/// and credentials never travel in cleartext.
#[test]
fn a_dropped_connection_never_switches_to_plain_http() {
    let upstream = Upstream::start(true);
    let certs = Certs::new();
    let case = Case::new();
    let proxy = Proxy::start(&upstream, "drop-once", Some(&certs));
    copy_to(&case.conf(), &proxy.dest("li/drop:v1"), &["--dest-tls-verify=false", "--dest-creds", CREDS]).ok();
    let requests = proxy.requests();
    assert!(requests.iter().all(|r| r["scheme"] == "https"), "a request went over plain HTTP");
    assert!(requests.iter().filter(|r| r["method"] == "PATCH").count() >= 2, "the dropped PATCH was sent again");
    proxy.assert_no_leak();
    upstream.pull_and_verify("li/drop:v1", case.root());
    // A registry without TLS is still found at the first contact.
    let plain = Proxy::start(&upstream, "none", None);
    copy_to(&case.conf(), &plain.dest("li/drop:v2"), &["--dest-tls-verify=false", "--dest-creds", CREDS]).ok();
    upstream.pull_and_verify("li/drop:v2", case.root());
}

/// A registry that accepts connections and never answers: Ctrl-C ends the
/// copy within a second; untouched, it fails within about a minute with
/// one message naming the registry.
#[test]
fn a_silent_registry_is_bounded_and_ctrl_c_works() {
    let upstream = Upstream::start(false);
    let case = Case::new();
    let proxy = Proxy::start(&upstream, "hang-ping", None);
    for signal in ["INT", "TERM"] {
        let seen = proxy.requests().len();
        let (took, out, _) = interrupt_when(
            &mut copy_cmd(&case.conf(), &proxy.dest("li/silent:v1"), &["--dest-tls-verify=false"]),
            || proxy.requests().len() > seen,
            signal,
        );
        eprintln!("SIG{signal} while GET /v2/ hangs: exited after {took:?}");
        // Tens of ms here; the bound leaves room for a loaded CI machine and
        // still tells an interrupt from a timeout (30 s).
        assert!(took < Duration::from_secs(5), "SIG{signal} took {took:?}: {}", out.stderr);
        assert_ne!(out.code, Some(0));
    }
    let out = copy_to(&case.conf(), &proxy.dest("li/silent:v1"), &["--dest-tls-verify=false"]);
    let err = out.error();
    eprintln!("a silent registry failed after {:?}: {err}", out.took);
    assert!(out.took < Duration::from_secs(100) && out.took > Duration::from_secs(25), "took {:?}", out.took);
    assert!(err.contains(&format!("127.0.0.1:{}", proxy.main)) && err.contains("timed out: no answer for 30 s"), "{err}");
}

/// A registry that stops reading a PATCH body: Ctrl-C interrupts the
/// blocked upload within a second (not after the buffered megabytes
/// drain), memory stays flat, and the tag still names the old image.
#[test]
fn a_stalled_upload_is_interrupted_and_leaves_the_tag() {
    let upstream = Upstream::start(false);
    let case = Case::new();
    let tmp = tempfile::tempdir().unwrap();
    let root = make_fixture(&tmp.path().join("fx"), &["--bulk-mib", "64"]);
    let conf = root.join("conf-newest.json");
    // The tag names an older image first.
    let direct = format!("docker://127.0.0.1:{}/li/stall:v1", upstream.port);
    copy_to(&case.conf(), &direct, &["--dest-tls-verify=false"]).ok();
    let old = upstream.digest_of("li/stall:v1").unwrap();
    let proxy = Proxy::start(&upstream, "stall-patch", None);
    // Interrupted once the PATCH's bytes back up in the socket buffers
    // (the proxy reads none), so that the upload's write is blocked.
    let (took, out, peak_kib) = interrupt_when(
        &mut copy_cmd(&conf, &proxy.dest("li/stall:v1"), &["--dest-tls-verify=false", "-j", "2", "--no-blob-cache"]),
        || backed_up_to(proxy.main),
        "INT",
    );
    eprintln!("Ctrl-C during a stalled PATCH: exited after {took:?}; peak RSS {peak_kib} KiB");
    // Not after the buffered megabytes drain (15 s before), nor the timeout.
    assert!(took < Duration::from_secs(5), "took {took:?}: {}", out.stderr);
    assert!(out.stderr.lines().last().unwrap_or_default().contains("tag was not changed"), "{}", out.stderr);
    assert_eq!(proxy.manifest_puts(), 0);
    assert_eq!(upstream.digest_of("li/stall:v1").as_deref(), Some(old.as_str()));
    assert!(peak_kib < 200 * 1024, "peak RSS {peak_kib} KiB");
    // Untouched, the stalled upload times out (a short bound here) and fails.
    let out = outcome(
        copy_cmd(&conf, &proxy.dest("li/stall:v1"), &["--dest-tls-verify=false", "--no-blob-cache", "--retries", "2"])
            .env("LAYERED_IMAGE_IO_TIMEOUT", "2"),
    );
    let err = out.error();
    eprintln!("a stalled PATCH with a 2 s bound failed after {:?}: {err}", out.took);
    assert!(out.took < Duration::from_secs(40), "{:?}", out.took);
    assert_eq!(proxy.manifest_puts(), 0);
    assert_eq!(upstream.digest_of("li/stall:v1").as_deref(), Some(old.as_str()));
}

/// The registry's word is checked: a blob stored under another digest,
/// or a HEAD claiming another size, or a destination digest that is not
/// the manifest's, fails the push before any tag is written.
#[test]
fn the_registrys_word_is_checked_before_tagging() {
    let upstream = Upstream::start(false);
    let case = Case::new();
    for (fault, says) in [("digest-lie", "Docker-Content-Digest sha256:0000"), ("head-size-lie", "12345 bytes")] {
        let proxy = Proxy::start(&upstream, fault, None);
        let err = copy_to(&case.conf(), &proxy.dest(&format!("li/{fault}:v1")), &["--dest-tls-verify=false", "--no-blob-cache"]).error();
        assert!(err.contains(says), "{fault}: {err}");
        assert_eq!(proxy.manifest_puts(), 0, "{fault}");
        assert_eq!(upstream.digest_of(&format!("li/{fault}:v1")), None, "{fault}");
    }
    // REPO@DIGEST: pushed under the digest only when it is the manifest's.
    let digestfile = case.root().join("digest");
    copy_to(&case.conf(), &upstream.reference("li/bydigest:tmp"), &["--dest-tls-verify=false", "--digestfile", digestfile.to_str().unwrap()]).ok();
    let digest = std::fs::read_to_string(&digestfile).unwrap();
    copy_to(&case.conf(), &upstream.reference(&format!("li/bydigest@{digest}")), &["--dest-tls-verify=false"]).ok();
    let wrong = format!("sha256:{}", "1".repeat(64));
    let err = copy_to(&case.conf(), &upstream.reference(&format!("li/bydigest@{wrong}")), &["--dest-tls-verify=false"]).error();
    assert!(err.contains(&wrong) && err.contains(&digest), "{err}");
    let (skopeo_ok, _) = skopeo_push(&case.conf(), &upstream.reference(&format!("li/bydigest@{wrong}")), &["--dest-tls-verify=false"]);
    assert!(!skopeo_ok, "skopeo refuses it too");
}

/// Registries as real ones speak: relative Locations, 307 on the commit
/// PUT, 202 on a manifest PUT, OCI manifests refused, a connection reset
/// mid-PATCH, a token revoked mid-upload, a proxy capping request sizes.
/// Each push succeeds and reads back whole; skopeo, run on the same
/// proxy, is compared where it succeeds.
#[test]
fn protocol_quirks_of_real_registries() {
    let upstream = Upstream::start(true);
    let certs = Certs::new();
    let cert = cert_flag(&certs);
    let tmp = tempfile::tempdir().unwrap();
    let root = make_fixture(&tmp.path().join("fx"), &["--bulk-mib", "8"]);
    let conf = root.join("conf-newest.json");
    let skopeo_cert = format!("--dest-cert-dir={}", certs.ca_dir().display());
    let skopeo_creds = format!("--dest-creds={CREDS}");
    for fault in ["relative-location", "redirect-put", "manifest-202", "refuse-oci", "reset-patch", "patch-401-once", "cap", "cap-late", "expect-417"]
    {
        let proxy = Proxy::start_with(&upstream, fault, Some(&certs), &["--limit", "1048576"]);
        let repo_tag = format!("li/{fault}:v1");
        let out = copy_to(&conf, &proxy.dest(&repo_tag), &[&cert, "--dest-creds", CREDS, "--no-blob-cache"]);
        out.ok();
        proxy.assert_no_leak();
        let manifest = upstream.pull_and_verify(&repo_tag, &root);
        match fault {
            "refuse-oci" => {
                assert_eq!(manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
                assert!(out.stderr.contains("Docker schema 2") && out.stderr.contains("MANIFEST_INVALID"), "{}", out.stderr);
            }
            _ => assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json"),
        }
        if fault == "reset-patch" {
            // Reset after 2 MiB of the large layer's PATCH: the layer was produced and sent again.
            assert!(out.stderr.contains("trying again"), "{}", out.stderr);
        }
        if fault == "cap" || fault == "cap-late" {
            // The streamed PATCH was refused, before its body (cap: the
            // client asked first) or in the middle of it (cap-late), and
            // the 413 was read, not lost with the connection; then each
            // session got its bytes in contiguous ranges within the cap
            // (larger pieces were refused with 413 and sent again halved).
            assert!(out.stderr.contains("HTTP 413: <html>413 Request Entity Too Large</html>; sending it again in chunks"), "{}", out.stderr);
            let requests = proxy.requests();
            assert!(requests.iter().any(|r| r["method"] == "PATCH" && r["headers"]["transfer-encoding"] == "chunked"));
            let mut sessions: std::collections::BTreeMap<String, Vec<(u64, u64)>> = Default::default();
            for r in requests.iter().filter(|r| r["method"] == "PATCH" && r["headers"].get("content-range").is_some()) {
                let (a, b) = r["headers"]["content-range"].as_str().unwrap().split_once('-').unwrap();
                let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
                sessions.entry(r["path"].as_str().unwrap().split('?').next().unwrap().to_string()).or_default().push((a, b));
            }
            assert!(sessions.values().any(|ranges| ranges.iter().any(|(a, b)| b - a + 1 > 1 << 20)), "a piece over the cap was tried: {sessions:?}");
            for ranges in sessions.values() {
                let mut next = 0;
                for (a, b) in ranges.iter().filter(|(a, b)| b - a < 1 << 20) {
                    assert_eq!(*a, next, "{ranges:?}");
                    next = b + 1;
                }
            }
        }
        let (skopeo_ok, skopeo_err) = skopeo_push(&conf, &proxy.dest(&format!("li/{fault}:skopeo")), &[&skopeo_cert, &skopeo_creds]);
        eprintln!("{fault}: layered-image ok; skopeo 1.9 {}", if skopeo_ok { "ok".to_string() } else { format!("failed: {}", skopeo_err.trim()) });
    }
}

/// The registry's own error code and message reach the user.
#[test]
fn registry_errors_are_reported_with_their_code() {
    let upstream = Upstream::start(false);
    let case = Case::new();
    let proxy = Proxy::start(&upstream, "deny-post", None);
    let err = copy_to(&case.conf(), &proxy.dest("li/denied:v1"), &["--dest-tls-verify=false"]).error();
    assert!(err.contains("HTTP 403 DENIED: requested access to the resource is denied") && err.contains("li/denied"), "{err}");
    // A failing token service is named as the token service.
    let auth = Upstream::start(true);
    let proxy = Proxy::start(&auth, "token-500", None);
    let err = copy_to(&case.conf(), &proxy.dest("li/token:v1"), &["--dest-tls-verify=false", "--dest-creds", CREDS, "--retries", "1"]).error();
    assert!(err.contains(&format!("the token service http://127.0.0.1:{}/token answered HTTP 500", proxy.sink)), "{err}");
}

/// One push, several tags: blobs go up once; a tag naming the image
/// already is left alone. --dry-run writes nothing and says what a push
/// would do.
#[test]
fn additional_tags_and_dry_run() {
    let upstream = Upstream::start(false);
    let case = Case::new();
    let proxy = Proxy::start(&upstream, "none", None);
    let dest = proxy.dest("li/tags:v1");
    let dry = copy_to(&case.conf(), &dest, &["--dest-tls-verify=false", "--dry-run"]);
    dry.ok();
    let writes = |p: &Proxy| p.requests().iter().filter(|r| r["method"] != "GET" && r["method"] != "HEAD").count();
    assert_eq!(writes(&proxy), 0, "a dry run writes nothing");
    let plan: Vec<&str> = dry.stdout.lines().collect();
    assert_eq!(plan.iter().filter(|l| l.contains(" upload ")).count(), 3, "2 layers and the config: {}", dry.stdout);
    assert!(plan.last().unwrap().starts_with("manifest sha256:"), "{}", dry.stdout);
    let planned_digest = plan.last().unwrap().split(' ').nth(1).unwrap().to_string();

    let out = copy_to(&case.conf(), &dest, &["--dest-tls-verify=false", "--additional-tag", "v1.0", "--additional-tag", "latest"]);
    out.ok();
    let commits = proxy.requests().iter().filter(|r| r["method"] == "PUT" && r["path"].as_str().unwrap().contains("digest=")).count();
    assert_eq!(commits, 3, "each blob went up once");
    assert_eq!(proxy.manifest_puts(), 3, "one manifest PUT per tag");
    for tag in ["v1", "v1.0", "latest"] {
        assert_eq!(upstream.digest_of(&format!("li/tags:{tag}")).as_deref(), Some(planned_digest.as_str()), "{tag}");
    }
    upstream.pull_and_verify("li/tags:latest", case.root());
    // Again: the additional tags name the image already.
    let before = proxy.manifest_puts();
    let out = copy_to(&case.conf(), &dest, &["--dest-tls-verify=false", "--additional-tag", "v1.0", "--additional-tag", "v2"]);
    out.ok();
    assert_eq!(proxy.manifest_puts() - before, 2, "v1 and the new v2; v1.0 left alone: {}", out.stderr);
    assert!(out.stderr.contains("Tag v1.0 names"), "{}", out.stderr);
    let dry = copy_to(&case.conf(), &dest, &["--dest-tls-verify=false", "--dry-run"]);
    assert_eq!(dry.ok().stdout.lines().filter(|l| l.ends_with(" present")).count(), 3, "{}", dry.stdout);
    let err = copy_to(&case.conf(), &dest, &["--additional-tag", "bad/tag"]).error();
    assert!(err.contains("bad/tag"), "{err}");
}

/// The Engine API's failures: an errorDetail in a 200 stream, an empty
/// 200, an engine that never answers (Ctrl-C, and the idle bound).
#[test]
fn docker_engine_replies_are_checked_and_bounded() {
    let case = Case::new();
    let load = |engine: &FakeEngine| {
        let mut c = Command::new(bin());
        c.arg("copy").arg(case.conf()).arg("docker-daemon:li-fake:v1").env("DOCKER_HOST", engine.host()).env_remove("LAYERED_IMAGE_IO_TIMEOUT");
        c
    };
    let engine = FakeEngine::start("error-detail");
    let err = outcome(&mut load(&engine)).error();
    assert!(err.contains("no space left on device"), "{err}");
    let engine = FakeEngine::start("empty");
    let err = outcome(&mut load(&engine)).error();
    assert!(err.contains("without saying it loaded"), "{err}");
    let engine = FakeEngine::start("ok");
    outcome(&mut load(&engine)).ok();
    for mode in ["hang", "no-read"] {
        let engine = FakeEngine::start(mode);
        let start = std::time::Instant::now();
        let (took, out, _) = interrupt_when(&mut load(&engine), || start.elapsed() > Duration::from_secs(1), "INT");
        eprintln!("Ctrl-C while the engine ({mode}) is silent: exited after {took:?}");
        assert!(took < Duration::from_secs(5), "{mode}: {took:?} {}", out.stderr);
        assert_ne!(out.code, Some(0));
        let out = outcome(load(&engine).env("LAYERED_IMAGE_IO_TIMEOUT", "2"));
        let err = out.error();
        assert!(err.contains("neither read nor answered for 2 s"), "{mode}: {err}");
        assert!(out.took < Duration::from_secs(30), "{mode}: {:?}", out.took);
    }
}

/// A commit PUT redirected (307) to another origin, as to blob storage,
/// is followed there with its body and without credentials.
#[test]
fn a_redirect_to_another_origin_is_followed_without_credentials() {
    let upstream = Upstream::start(false);
    let case = Case::new();
    let proxy = Proxy::start(&upstream, "redirect-put-other", None);
    copy_to(&case.conf(), &proxy.dest("li/storage:v1"), &["--dest-tls-verify=false"]).ok();
    let at_other: Vec<_> = proxy.requests().into_iter().filter(|r| r["listener"] == "other").collect();
    assert_eq!(at_other.iter().filter(|r| r["method"] == "PUT").count(), 3, "2 layers and the config committed there: {at_other:?}");
    assert!(at_other.iter().all(|r| r["headers"].get("authorization").is_none()));
    upstream.pull_and_verify("li/storage:v1", case.root());
    let (skopeo_ok, err) = skopeo_push(&case.conf(), &proxy.dest("li/storage:skopeo"), &["--dest-tls-verify=false"]);
    eprintln!("redirect-put-other: skopeo 1.9 {}", if skopeo_ok { "ok".into() } else { err });
}

/// A registry refusing OCI manifests (400 MANIFEST_INVALID): an index goes
/// up as a Docker manifest list whose entries are the platforms' schema 2
/// manifests (same configs and layers), every tag naming it; uncompressed
/// layers take Docker's one layer type, as skopeo writes them; zstd
/// layers, which schema 2 cannot name, fail with one error naming the
/// registry, the refusal and the way out (skopeo 1.9 refuses them too).
#[test]
fn a_registry_refusing_oci_gets_docker_schema_2() {
    let upstream = Upstream::start(false);
    let case = Case::new();
    let proxy = Proxy::start(&upstream, "refuse-oci", None);
    let mut arm = case.conf_value();
    arm["architecture"] = "arm64".into();
    arm["variant"] = "v8".into();
    std::fs::write(case.root().join("arm64.json"), serde_json::to_vec(&arm).unwrap()).unwrap();
    let confs = [case.conf(), case.root().join("arm64.json")];
    let out = outcome(&mut copy_index_cmd(&confs, &proxy.dest("li/list:v1"), &["--dest-tls-verify=false", "--additional-tag", "v2"]));
    out.ok();
    assert!(out.stderr.contains("MANIFEST_INVALID") && out.stderr.contains("Docker manifest list"), "{}", out.stderr);
    let list = upstream.pull_all_and_verify("li/list:v1", case.root());
    assert_eq!(list["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json");
    let entries = list["manifests"].as_array().unwrap();
    let platforms: Vec<(&str, &str)> =
        entries.iter().map(|m| (m["platform"]["architecture"].as_str().unwrap(), m["platform"]["variant"].as_str().unwrap_or(""))).collect();
    assert_eq!(platforms, [("amd64", ""), ("arm64", "v8")]);
    for m in entries {
        assert_eq!(m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
        let image = upstream.raw(&format!("li/list@{}", m["digest"].as_str().unwrap()));
        assert_eq!(image["mediaType"], m["mediaType"]);
        assert_eq!(image["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
        assert!(image["layers"].as_array().unwrap().iter().all(|l| l["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"));
    }
    let arm_config = run(Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false", "--override-arch", "arm64", "--override-variant", "v8"])
        .arg(upstream.reference("li/list:v1")));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&arm_config.stdout).unwrap()["architecture"], "arm64");
    assert_eq!(upstream.digest_of("li/list:v2"), upstream.digest_of("li/list:v1"), "the additional tag names the list");

    // A registry that takes OCI manifests but refuses OCI indexes: the
    // platforms, put as OCI first, get their schema 2 forms, and the list
    // names those only.
    let index_only = Proxy::start(&upstream, "refuse-oci-index", None);
    outcome(&mut copy_index_cmd(&confs, &index_only.dest("li/list2:v1"), &["--dest-tls-verify=false"])).ok();
    let list2 = upstream.pull_all_and_verify("li/list2:v1", case.root());
    assert_eq!(list2["manifests"], list["manifests"], "the same Docker manifest list");

    // Uncompressed layers: Docker's layer type, its compression read from the bytes.
    copy_to(&case.conf(), &proxy.dest("li/plain:v1"), &["--dest-tls-verify=false", "--compress", "none"]).ok();
    let plain = upstream.pull_and_verify("li/plain:v1", case.root());
    assert_eq!(plain["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");

    // zstd: refused, as skopeo refuses it, and no tag is written.
    let err = copy_to(&case.conf(), &proxy.dest("li/zstd:v1"), &["--dest-tls-verify=false", "--compress", "zstd"]).error();
    let registry = format!("127.0.0.1:{}/li/zstd", proxy.main);
    assert!(err.contains(&registry) && err.contains("MANIFEST_INVALID") && err.contains("+zstd") && err.contains("--compress gzip"), "{err}");
    assert_eq!(upstream.digest_of("li/zstd:v1"), None);
    let layout = case.root().join("zstd-layout");
    run(Command::new(bin()).arg("copy").arg(case.conf()).arg(format!("oci:{}:z", layout.display())).args(["--compress", "zstd"]));
    // The zstd image as a source keeps its zstd without --compress: refused
    // the same way; with --compress gzip it goes up as schema 2.
    let source = std::path::PathBuf::from(format!("oci:{}:z", layout.display()));
    let err = copy_to(&source, &proxy.dest("li/zstd:v2"), &["--dest-tls-verify=false"]).error();
    assert!(err.contains("+zstd") && err.contains("--compress gzip"), "{err}");
    copy_to(&source, &proxy.dest("li/zstd:v3"), &["--dest-tls-verify=false", "--compress", "gzip"]).ok();
    assert_eq!(upstream.pull_and_verify("li/zstd:v3", case.root())["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    // A registry taking OCI gets the source's manifest byte for byte
    // (annotations and all): the digest is the source's.
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let blob = |d: &serde_json::Value| layout.join("blobs/sha256").join(d.as_str().unwrap().trim_start_matches("sha256:"));
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(blob(&index["manifests"][0]["digest"])).unwrap()).unwrap();
    manifest["annotations"] = serde_json::json!({"org.opencontainers.image.base.name": "busybox"});
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
    std::fs::write(blob(&serde_json::Value::from(digest.clone())), &bytes).unwrap();
    index["manifests"][0]["digest"] = digest.clone().into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    copy_to(&source, &upstream.reference("li/zstd:kept"), &["--dest-tls-verify=false"]).ok();
    assert_eq!(upstream.digest_of("li/zstd:kept").as_deref(), Some(digest.as_str()));
    let skopeo = Command::new("timeout")
        .args(["120", "skopeo", "copy", "--retry-times", "0", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:z", layout.display()))
        .arg(proxy.dest("li/zstd:skopeo"))
        .output()
        .unwrap();
    let skopeo_err = String::from_utf8_lossy(&skopeo.stderr);
    assert!(!skopeo.status.success() && skopeo_err.contains("zstd compression is not supported for docker images"), "{skopeo_err}");
}

/// A registry that resets every large PATCH mid-body, and every chunk
/// after it: the layer is tried `--retries` times in all, then the push
/// fails with one message naming the registry and the reset, and no tag
/// is written.
#[test]
fn resets_mid_patch_are_retried_within_the_budget() {
    let upstream = Upstream::start(false);
    let tmp = tempfile::tempdir().unwrap();
    let root = make_fixture(&tmp.path().join("fx"), &["--bulk-mib", "8"]);
    let conf = root.join("conf-newest.json");
    let proxy = Proxy::start(&upstream, "reset-always", None);
    let out = copy_to(&conf, &proxy.dest("li/resets:v1"), &["--dest-tls-verify=false", "--no-blob-cache", "-j", "1", "--retries", "3"]);
    let err = out.error();
    assert!(err.contains(&format!("127.0.0.1:{}", proxy.main)) && err.contains("reset"), "{err}");
    assert_eq!(out.stderr.matches("trying again").count(), 2, "three attempts in all: {}", out.stderr);
    assert_eq!(proxy.manifest_puts(), 0);
    assert_eq!(upstream.digest_of("li/resets:v1"), None);
}
