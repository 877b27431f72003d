//! `verify` at the edges of what it reads: signals mid-read, layouts that
//! reach outside themselves, indexes of the wrong schema, layers as umoci
//! writes them, and refs that name more than one image.

use crate::harness::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A conf for one store path holding `mib` MiB that no compressor
/// shrinks (verify's work is then the reading and hashing, as for real
/// binaries), under `d`.
fn incompressible_conf(d: &Path, mib: usize) -> PathBuf {
    let path = "nix/store/7k2xq0hbq3fyg2y2gnvd0j1m3xv6fsk3-noise";
    std::fs::create_dir_all(d.join(path)).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(d.join(path).join("noise")).unwrap());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
    std::fs::create_dir_all(d.join("custom")).unwrap();
    custom_layer(&d.join("custom"), &d.join("custom-out"));
    let conf = serde_json::json!({
        "architecture": "amd64", "config": {}, "os": "linux", "store_dir": "nix/store", "from_image": null,
        "store_layers": [[path]], "customisation_layer": "custom-out", "repo_tag": "noise:latest",
        "created": "1970-01-01T00:00:01+00:00", "mtime": "1970-01-01T00:00:01+00:00",
        "uid": 0, "gid": 0, "uname": "root", "gname": "root",
    });
    std::fs::write(d.join("conf.json"), serde_json::to_vec(&conf).unwrap()).unwrap();
    d.join("conf.json")
}

/// Bytes `pid` has read so far (/proc/PID/io's rchar).
fn bytes_read(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("rchar: ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// Waits (bounded) until `started` says the child is well into its work;
/// the child must not have finished first.
fn wait_until(child: &mut Child, what: &str, started: impl Fn() -> bool) {
    let t = Instant::now();
    while !started() {
        assert!(child.try_wait().unwrap().is_none(), "verify ended before {what}");
        assert!(t.elapsed() < Duration::from_secs(120), "no {what} after 120 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Sends `sig` and waits (bounded) for the exit; returns its code and stderr.
fn signal_and_wait(mut child: Child, sig: &str) -> (Option<i32>, String) {
    run(Command::new("kill").args([sig, &child.id().to_string()]));
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "verify still running 30 s after {sig}");
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

/// BUG 1: verify stops on SIGINT, SIGTERM and SIGHUP as copy does: while
/// a compressed docker-archive is decompressed to its spool (which is
/// removed), and while an OCI layout's layer is hashed. One message,
/// "interrupted", and a non-zero exit; never "verified".
#[test]
fn signals_stop_verify_and_remove_its_spool() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = incompressible_conf(d, 256);
    let archive = d.join("noise.tar");
    run(Command::new(bin()).arg("copy").arg(&conf).arg(format!("docker-archive:{}", archive.display())).args(["-q", "--no-blob-cache"]));
    let compressed = d.join("noise.tar.zst");
    let mut enc = zstd::stream::write::Encoder::new(std::fs::File::create(&compressed).unwrap(), 1).unwrap();
    std::io::copy(&mut std::fs::File::open(&archive).unwrap(), &mut enc).unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(&archive).unwrap();
    let layout = d.join("layout");
    run(Command::new(bin()).arg("copy").arg(&conf).arg(format!("oci:{}:v", layout.display())).args(["-q", "--no-blob-cache", "--compress", "none"]));

    for sig in ["-INT", "-TERM", "-HUP"] {
        let tmp = tempfile::tempdir().unwrap();
        let child = Command::new(bin())
            .arg("verify")
            .arg(format!("docker-archive:{}", compressed.display()))
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = child;
        let spool_grown =
            || std::fs::read_dir(tmp.path()).unwrap().filter_map(|e| e.ok()).any(|e| e.metadata().map(|m| m.len() > (16 << 20)).unwrap_or(false));
        wait_until(&mut child, "a spool of 16 MiB", spool_grown);
        let (code, err) = signal_and_wait(child, sig);
        assert_eq!(code, Some(1), "{sig}: {err}");
        assert_eq!(err.lines().count(), 1, "{sig}: {err}");
        assert!(err.contains("interrupted") && !err.contains("verified"), "{sig}: {err}");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "{sig}: left in TMPDIR: {left:?}");
    }

    let mut child =
        Command::new(bin()).arg("verify").arg(format!("oci:{}:v", layout.display())).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    wait_until(&mut child, "32 MiB read", || bytes_read(pid) > (32 << 20));
    let (code, err) = signal_and_wait(child, "-INT");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("interrupted") && err.lines().count() == 1, "{err}");
}

fn verify(target: &str) -> std::process::Output {
    Command::new(bin()).arg("verify").arg(target).output().unwrap()
}

/// verify accepts `target`; returns stdout and stderr.
fn accepted(target: &str) -> (String, String) {
    let out = verify(target);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success() && stdout.starts_with("verified "), "{target}: {stdout}{stderr}");
    (stdout, stderr)
}

/// verify refuses `target` with one error holding every needle, and
/// prints nothing on stdout.
fn refused(target: &str, needles: &[&str]) -> String {
    let out = verify(target);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{target}: {err}");
    assert!(out.stdout.is_empty(), "{target}: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(err.lines().count(), 1, "{target}: {err}");
    for n in needles {
        assert!(err.contains(n), "{target}: {n:?} not in {err}");
    }
    err
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn write_json(p: &Path, v: &serde_json::Value) {
    std::fs::write(p, serde_json::to_vec(v).unwrap()).unwrap();
}

/// An OCI layout written by copy under `d/name`, its image tagged `r`.
fn layout(case: &Case, d: &Path, name: &str, r: &str) -> PathBuf {
    let dir = d.join(name);
    run(Command::new(bin()).arg("copy").arg(case.conf()).arg(format!("oci:{}:{r}", dir.display())).args(["-q", "--no-blob-cache"]));
    dir
}

/// The hex of the first index entry's manifest and of its first layer.
fn manifest_and_layer(dir: &Path) -> (String, String) {
    let index = read_json(&dir.join("index.json"));
    let m = index["manifests"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let manifest = read_json(&dir.join("blobs/sha256").join(&m));
    let l = manifest["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    (m, l)
}

/// BUG 4: an image index says schemaVersion 2; index.json is one too.
#[test]
fn index_json_of_another_schema_version_is_refused() {
    let case = Case::new();
    let d = tempfile::tempdir().unwrap();
    let dir = layout(&case, d.path(), "l", "v");
    let target = format!("oci:{}:v", dir.display());
    accepted(&target);
    let mut index = read_json(&dir.join("index.json"));
    index["schemaVersion"] = 1.into();
    write_json(&dir.join("index.json"), &index);
    refused(&target, &["index.json: schemaVersion is 1, not 2"]);
    index.as_object_mut().unwrap().remove("schemaVersion");
    write_json(&dir.join("index.json"), &index);
    refused(&target, &["index.json has no schemaVersion"]);
}

/// BUG 5: a layout's files must be regular files inside it. A blob, the
/// index or oci-layout that is a symlink (leading outside, or not), and a
/// symlinked blobs/ or blobs/sha256 directory are refused, named.
#[test]
fn symlinks_in_a_layout_are_refused() {
    use std::os::unix::fs::symlink;
    let case = Case::new();
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let fresh = |name: &str| layout(&case, d, name, "v");
    let target = |dir: &Path| format!("oci:{}:v", dir.display());

    // A blob linked to an identical copy outside: same bytes, still refused.
    let dir = fresh("abs");
    let (_, layer) = manifest_and_layer(&dir);
    let blob = dir.join("blobs/sha256").join(&layer);
    std::fs::copy(&blob, d.join("outside")).unwrap();
    std::fs::remove_file(&blob).unwrap();
    symlink(d.join("outside"), &blob).unwrap();
    refused(&target(&dir), &[&format!("blobs/sha256/{layer}"), "is a symlink", "outside"]);

    // Relative, climbing out of the layout.
    let dir = fresh("rel");
    let (_, layer) = manifest_and_layer(&dir);
    let blob = dir.join("blobs/sha256").join(&layer);
    std::fs::remove_file(&blob).unwrap();
    symlink("../../../outside", &blob).unwrap();
    refused(&target(&dir), &[&format!("blobs/sha256/{layer}"), "is a symlink"]);

    // A file that is no blob at all: named as a link, not by its size.
    let dir = fresh("passwd");
    let (manifest, _) = manifest_and_layer(&dir);
    let blob = dir.join("blobs/sha256").join(&manifest);
    std::fs::remove_file(&blob).unwrap();
    symlink("/etc/passwd", &blob).unwrap();
    refused(&target(&dir), &[&format!("blobs/sha256/{manifest}"), "is a symlink (to /etc/passwd)"]);

    for file in ["index.json", "oci-layout"] {
        let dir = fresh(&format!("link-{file}"));
        std::fs::rename(dir.join(file), d.join(format!("real-{file}"))).unwrap();
        symlink(d.join(format!("real-{file}")), dir.join(file)).unwrap();
        refused(&target(&dir), &[&format!("{file} ("), "is a symlink"]);
    }

    for sub in ["blobs", "blobs/sha256"] {
        let dir = fresh(&format!("dir-{}", sub.replace('/', "-")));
        let moved = d.join(format!("moved-{}", sub.replace('/', "-")));
        std::fs::rename(dir.join(sub), &moved).unwrap();
        symlink(&moved, dir.join(sub)).unwrap();
        refused(&target(&dir), &[&format!("{sub} is a symlink directory")]);
        // copy reads layouts the same way: nothing written from a linked blobs dir.
        let out = d.join(format!("copied-{}", sub.replace('/', "-")));
        let copied = Command::new(bin()).arg("copy").arg(target(&dir)).arg(format!("oci:{}:x", out.display())).output().unwrap();
        let err = String::from_utf8_lossy(&copied.stderr);
        assert_eq!(copied.status.code(), Some(1), "{err}");
        assert!(err.contains("is a symlink directory") && err.contains(sub), "{err}");
        assert!(!out.join("index.json").exists());
    }
}

/// A docker-archive of one layer (`layer`, as given), its diff_id that
/// layer's sha256.
fn docker_archive(path: &Path, layer: &[u8]) {
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(layer))]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": ["t:1"], "Layers": ["l/layer.tar"]}]);
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in [(config_name.as_str(), config), ("l/layer.tar", layer.to_vec()), ("manifest.json", serde_json::to_vec(&manifest).unwrap())] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

/// A layer tar of `members` (name, data), raw names kept.
fn layer_tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// BUG 6: umoci 0.4.7 ends a layer right after its last member's data
/// (no padding, no end-of-archive blocks); Go's archive/tar, and so umoci,
/// podman and containerd, read that as the end. verify does too. A layer
/// that ends inside a member's data is still truncated.
#[test]
fn layers_ending_right_after_their_data_verify() {
    require("umoci");
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let um = d.join("umoci");
    run(Command::new("umoci").args(["init", "--layout"]).arg(&um));
    run(Command::new("umoci").args(["new", "--image"]).arg(format!("{}:t", um.display())));
    // busybox's size is no multiple of 512: its padding is what umoci omits.
    assert_ne!(std::fs::metadata("/bin/busybox").unwrap().len() % 512, 0);
    run(Command::new("umoci").args(["insert", "--rootless", "--image"]).arg(format!("{}:t", um.display())).args(["/bin/busybox", "/bin/busybox"]));
    let (line, _) = accepted(&format!("oci:{}:t", um.display()));
    assert!(line.contains(": 1 layer, config sha256:"), "{line}");

    let data = vec![b'x'; 700];
    let whole = layer_tar(&[("a", b"hello"), ("b", &data)]);
    let data_end = 512 + 512 + 512 + 700;
    for (cut, ok) in [(data_end, true), (data_end + 300, true), (whole.len(), true), (data_end - 1, false), (data_end - 200, false)] {
        let path = d.join(format!("cut-{cut}.tar"));
        docker_archive(&path, &whole[..cut]);
        let target = format!("docker-archive:{}", path.display());
        if ok {
            accepted(&target);
        } else {
            refused(&target, &["layer 0 (l/layer.tar)", "ends inside a member"]);
        }
    }
}

/// BUG 7: an index entry of a media type verify does not know is skipped
/// with a note, its blob only hashed: not parsed, so it need not be JSON.
#[test]
fn unknown_media_types_are_only_hashed() {
    let case = Case::new();
    let d = tempfile::tempdir().unwrap();
    let dir = layout(&case, d.path(), "l", "v");
    let hello = b"hello";
    let hex = sha256_hex(hello);
    std::fs::write(dir.join("blobs/sha256").join(&hex), hello).unwrap();
    let mut index = read_json(&dir.join("index.json"));
    let entry = serde_json::json!({"mediaType": "application/x-unknown", "digest": format!("sha256:{hex}"), "size": 5});
    index["manifests"].as_array_mut().unwrap().push(entry);
    write_json(&dir.join("index.json"), &index);
    let (_, notes) = accepted(&format!("oci:{}", dir.display()));
    assert!(notes.contains("skipped index.json manifests[1]") && notes.contains(&hex) && !notes.contains("JSON"), "{notes}");
    // Its digest is still checked.
    std::fs::write(dir.join("blobs/sha256").join(&hex), b"hellO").unwrap();
    refused(&format!("oci:{}", dir.display()), &[&format!("blobs/sha256/{hex}"), "index.json manifests[1]", "but its descriptor says"]);
}

/// WEAK 1: a ref given to two different manifests names no one image:
/// `oci:DIR:REF` is refused naming both digests; without a REF, a note.
#[test]
fn a_ref_naming_two_images_is_refused() {
    let case = Case::new();
    let d = tempfile::tempdir().unwrap();
    let dir = layout(&case, d.path(), "l", "a");
    case.with("created", "2001-01-01T00:00:00+00:00".into());
    layout(&case, d.path(), "l", "b");
    let mut index = read_json(&dir.join("index.json"));
    let digests: Vec<String> = index["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap().to_string()).collect();
    assert_eq!(digests.len(), 2);
    assert_ne!(digests[0], digests[1]);
    for m in index["manifests"].as_array_mut().unwrap() {
        m["annotations"]["org.opencontainers.image.ref.name"] = "v".into();
    }
    write_json(&dir.join("index.json"), &index);
    refused(&format!("oci:{}:v", dir.display()), &["ref \"v\" names 2 images", &digests[0], &digests[1]]);
    let (line, notes) = accepted(&format!("oci:{}", dir.display()));
    assert!(line.contains("2 images"), "{line}");
    assert!(notes.contains("ref \"v\" names 2 images"), "{notes}");
}

/// WEAK 8: members whose `..` climbs out of the layer's root are warned
/// about, naming layer and member (`docker load` refuses such a layer).
/// Absolute names are not: nixpkgs writes `/nix/store/...`, and
/// unpackers join them to the root.
#[test]
fn members_outside_the_root_are_warned_about() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("evil.tar");
    docker_archive(&path, &layer_tar(&[("ok/../fine", b"1"), ("../../../etc/evil", b"2"), ("/abs/fine", b"3"), ("/../abs/evil", b"4")]));
    let (_, err) = accepted(&format!("docker-archive:{}", path.display()));
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(warnings[0].contains("layer 0 (l/layer.tar)") && warnings[0].contains("\"../../../etc/evil\" climbs out"), "{err}");
    assert!(warnings[1].contains("\"/../abs/evil\" climbs out"), "{err}");
}
