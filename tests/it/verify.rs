//! `verify` reads what `stream` writes, what skopeo re-saves from it, and
//! refuses every lie an edited archive can tell, naming the culprit.

use crate::harness as common;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One tar member, kept raw so that names and links are written exactly
/// as a test sets them.
#[derive(Clone)]
struct M {
    name: String,
    typeflag: u8,
    link: String,
    data: Vec<u8>,
}

impl M {
    fn file(name: &str, data: Vec<u8>) -> M {
        M { name: name.into(), typeflag: b'0', link: String::new(), data }
    }
    fn link(name: &str, typeflag: u8, target: &str) -> M {
        M { name: name.into(), typeflag, link: target.into(), data: Vec::new() }
    }
}

fn read_members(bytes: &[u8]) -> Vec<M> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let link = e.link_name_bytes().map(|l| String::from_utf8(l.into_owned()).unwrap()).unwrap_or_default();
        let typeflag = e.header().entry_type().as_byte();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(M { name, typeflag, link, data });
    }
    out
}

/// Raw ustar headers: the name and link bytes are not cleaned up.
fn write_members(ms: &[M]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in ms {
        let mut h = tar::Header::new_ustar();
        assert!(m.name.len() < 100 && m.link.len() < 100, "{}", m.name);
        h.as_old_mut().name[..m.name.len()].copy_from_slice(m.name.as_bytes());
        h.as_old_mut().linkname[..m.link.len()].copy_from_slice(m.link.as_bytes());
        h.set_entry_type(tar::EntryType::new(m.typeflag));
        h.set_mode(if m.typeflag == b'5' { 0o755 } else { 0o644 });
        h.set_size(m.data.len() as u64);
        h.set_cksum();
        b.append(&h, &m.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn verify(target: &str) -> std::process::Output {
    Command::new("timeout").args(["-s", "KILL", "60"]).arg(bin()).arg("verify").arg(target).output().unwrap()
}

/// Exit 1, nothing on stdout, exactly one error line holding every needle.
fn refused(target: &str, needles: &[&str]) -> String {
    let out = verify(target);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{target}: {err}");
    assert!(out.stdout.is_empty(), "{target}: stdout {:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(err.lines().count(), 1, "{target}: {err}");
    assert!(err.starts_with("layered-image: error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{target}: {n:?} not in {err}");
    }
    eprintln!("{err}");
    err
}

struct Image {
    store: BusyboxStore,
    path: PathBuf,
    members: Vec<M>,
}

fn streamed() -> Image {
    let store = busybox_store(0, 0);
    let path = store.dir.path().join("image.tar");
    run(Command::new(bin()).arg("stream").arg(store.dir.path().join("conf.json")).arg("-o").arg(&path));
    let members = read_members(&std::fs::read(&path).unwrap());
    Image { store, path, members }
}

impl Image {
    fn dir(&self) -> &Path {
        self.store.dir.path()
    }
    fn manifest(&self) -> Value {
        let m = self.members.iter().find(|m| m.name == "manifest.json").unwrap();
        serde_json::from_slice(&m.data).unwrap()
    }
    fn layer_names(&self) -> Vec<String> {
        self.manifest()[0]["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
    }
    fn config_name(&self) -> String {
        self.manifest()[0]["Config"].as_str().unwrap().to_string()
    }
    fn get(&mut self, name: &str) -> &mut M {
        self.members.iter_mut().find(|m| m.name == name).unwrap()
    }
    /// Edits the config, and renames it after its new digest as a
    /// consistent forger would.
    fn edit_config(&mut self, f: impl FnOnce(&mut Value)) {
        let old = self.config_name();
        let mut config: Value = serde_json::from_slice(&self.get(&old).data).unwrap();
        f(&mut config);
        let data = serde_json::to_vec(&config).unwrap();
        let new = format!("{}.json", sha256_hex(&data));
        *self.get(&old) = M::file(&new, data);
        let mut manifest = self.manifest();
        manifest[0]["Config"] = new.into();
        self.get("manifest.json").data = serde_json::to_vec(&manifest).unwrap();
    }
    /// Writes the edited archive; returns its path.
    fn save(&self, file: &str) -> String {
        let p = self.dir().join(file);
        std::fs::write(&p, write_members(&self.members)).unwrap();
        p.to_string_lossy().into_owned()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn ok(target: &str) -> String {
    let out = run(Command::new(bin()).arg("verify").arg(target));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8(out.stdout).unwrap();
    assert_eq!(line.lines().count(), 1, "{line}");
    line
}

#[test]
fn streamed_images_verify_plain_and_compressed_whole() {
    let img = streamed();
    let plain = ok(&img.path.to_string_lossy());
    let config = img.config_name().trim_end_matches(".json").to_string();
    assert!(plain.starts_with("verified docker-archive "), "{plain}");
    assert!(plain.contains(&format!(": 3 layers, config sha256:{config}, ")), "{plain}");
    let tail = plain.split_once(": ").unwrap().1.to_string();
    for (tool, ext) in [("gzip", "gz"), ("zstd", "zst"), ("xz", "xz"), ("bzip2", "bz2")] {
        require(tool);
        let packed = img.dir().join(format!("image.tar.{ext}"));
        let out = run(Command::new(tool).arg("-c").arg(&img.path));
        std::fs::write(&packed, out.stdout).unwrap();
        for target in [packed.to_string_lossy().into_owned(), format!("docker-archive:{}", packed.display())] {
            let line = ok(&target);
            assert_eq!(line.split_once(": ").unwrap().1, tail, "{ext}");
        }
    }
    // A tag picks the manifest entry; an absent one is an error.
    ok(&format!("docker-archive:{}:li-test-busybox:latest", img.path.display()));
    ok(&format!("docker-archive:{}:@0", img.path.display()));
    refused(&format!("docker-archive:{}:other:tag", img.path.display()), &["no entry tagged other:tag"]);
}

#[test]
fn skopeo_copies_verify_as_oci() {
    require("skopeo");
    let img = streamed();
    let src = format!("docker-archive:{}", img.path.display());
    let layout = img.dir().join("oci");
    let archive = img.dir().join("oci.tar");
    let zstd = img.dir().join("oci-zstd");
    let gz = img.dir().join("oci-gzip");
    run(Command::new("skopeo").args(["copy", "-q"]).arg(&src).arg(format!("oci:{}:tag", layout.display())));
    run(Command::new("skopeo").args(["copy", "-q"]).arg(&src).arg(format!("oci-archive:{}:tag", archive.display())));
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-compress", "--dest-compress-format", "zstd"])
        .arg(&src)
        .arg(format!("oci:{}:z", zstd.display())));
    run(Command::new("skopeo").args(["copy", "-q", "--dest-compress"]).arg(&src).arg(format!("oci:{}:g", gz.display())));
    let zstd_manifest = std::fs::read_to_string(blob_of_index(&zstd)).unwrap();
    assert!(zstd_manifest.contains("tar+zstd"), "{zstd_manifest}");
    for (target, kind) in [
        (format!("oci:{}:tag", layout.display()), "oci"),
        (format!("oci:{}", layout.display()), "oci"),
        (layout.to_string_lossy().into_owned(), "oci"),
        (format!("oci-archive:{}:tag", archive.display()), "oci-archive"),
        (archive.to_string_lossy().into_owned(), "oci-archive"),
        (format!("oci:{}:z", zstd.display()), "oci"),
        (format!("oci:{}:g", gz.display()), "oci"),
    ] {
        let line = ok(&target);
        assert!(line.starts_with(&format!("verified {kind} ")) && line.contains(": 3 layers, config sha256:"), "{line}");
    }
    refused(&format!("oci:{}:nope", layout.display()), &["no manifest named \"nope\"", "tag"]);
}

/// The manifest blob index.json's first descriptor names.
fn blob_of_index(layout: &Path) -> PathBuf {
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap())
}

#[test]
fn docker_archive_lies_are_named() {
    let base = streamed();
    let layers = base.layer_names();
    let dir0 = layers[0].trim_end_matches("/layer.tar").to_string();
    let dir1 = layers[1].trim_end_matches("/layer.tar").to_string();

    // The writer is faithful: an unedited copy verifies.
    ok(&base.save("copy.tar"));

    let mut img = streamed();
    img.get(&layers[0]).data[600] ^= 1;
    refused(&img.save("flipped.tar"), &["layer 0", &layers[0], "diff_id says sha256:"]);

    let mut img = streamed();
    let config = img.config_name();
    let wrong = format!("{}.json", "a".repeat(64));
    img.get(&config).name = wrong.clone();
    let mut manifest = img.manifest();
    manifest[0]["Config"] = wrong.clone().into();
    img.get("manifest.json").data = serde_json::to_vec(&manifest).unwrap();
    refused(&img.save("config-name.tar"), &[&format!("config {wrong}"), "but its name says"]);

    let mut img = streamed();
    img.edit_config(|c| {
        c["rootfs"]["diff_ids"].as_array_mut().unwrap().pop();
    });
    refused(&img.save("count.tar"), &["lists 3 layers", "2 diff_ids"]);

    // A later member of the same name wins, as when docker unpacks it;
    // `./` and `//` make no difference to the name.
    let mut img = streamed();
    let other = img.get(&layers[0]).data.clone();
    img.members.push(M::file(&format!("./{dir1}//layer.tar"), other));
    refused(&img.save("shadowed.tar"), &["layer 1", &layers[1], "diff_id says"]);

    let symlinked = |target: &str, file: &str, needles: &[&str]| {
        let mut img = streamed();
        *img.get(&layers[0]) = M::link(&layers[0], b'2', target);
        refused(&img.save(file), needles);
    };
    symlinked(&format!("../{config}"), "to-config.tar", &["layer 0", &format!("-> {config})"), "diff_id says"]);
    symlinked(&format!("../{dir1}"), "to-dir.tar", &[&layers[0], &format!("{dir1}, which is a directory")]);
    symlinked("../nothere/layer.tar", "to-missing.tar", &[&layers[0], "nothere/layer.tar, which is missing"]);
    symlinked("layer.tar", "to-itself.tar", &[&layers[0], "loops"]);
    symlinked("../../etc/passwd", "outside.tar", &[&layers[0], "outside the archive"]);
    symlinked("/etc/passwd", "absolute.tar", &[&layers[0], "outside the archive"]);
    let mut img = streamed();
    *img.get(&layers[1]) = M::link(&layers[1], b'1', &dir0);
    refused(&img.save("hardlink-dir.tar"), &[&layers[1], "is a directory"]);
    let mut img = streamed();
    *img.get(&layers[0]) = M::link(&layers[0], b'1', "nothere");
    refused(&img.save("hardlink-missing.tar"), &[&layers[0], "is not an earlier member"]);

    // Links that resolve to the right bytes are what docker save writes.
    let mut img = streamed();
    let data = std::mem::take(&mut img.get(&layers[0]).data);
    img.members.insert(0, M::file("shared/blob.tar", data));
    *img.get(&layers[0]) = M::link(&layers[0], b'2', "../shared/./blob.tar");
    let data = std::mem::take(&mut img.get(&layers[2]).data);
    img.members.insert(0, M::file("./shared//x/../blob2.tar", data));
    *img.get(&layers[2]) = M::link(&layers[2], b'2', &format!("../{dir0}/../shared/blob2.tar"));
    ok(&img.save("symlinks-ok.tar"));
    let mut img = streamed();
    let data = std::mem::take(&mut img.get(&layers[0]).data);
    img.members.insert(0, M::file("shared/blob.tar", data));
    *img.get(&layers[0]) = M::link(&layers[0], b'1', "shared/blob.tar");
    ok(&img.save("hardlink-ok.tar"));

    // Compressed layer members are hashed uncompressed, like docker load.
    let mut img = streamed();
    for l in &layers {
        let m = img.get(l);
        m.data = gzip(&m.data);
    }
    ok(&img.save("gz-members.tar"));
    let compressed = sha256_hex(&img.get(&layers[0]).data);
    img.edit_config(|c| c["rootfs"]["diff_ids"][0] = format!("sha256:{compressed}").into());
    refused(&img.save("gz-diff-id.tar"), &["layer 0", "gzip-compressed", "digest of its compressed bytes"]);

    // Not an archive at all, and no such file.
    let junk = base.dir().join("junk");
    std::fs::write(&junk, b"not a tar").unwrap();
    refused(&junk.to_string_lossy(), &["is not a tar archive"]);
    refused(&base.dir().join("absent.tar").to_string_lossy(), &["absent.tar"]);
    refused("docker://busybox", &["transport docker:"]);
}

#[test]
fn oci_lies_are_named() {
    require("skopeo");
    let img = streamed();
    let layout = img.dir().join("oci");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-compress"])
        .arg(format!("docker-archive:{}", img.path.display()))
        .arg(format!("oci:{}:tag", layout.display())));
    let manifest_path = blob_of_index(&layout);
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let layer_hex = manifest["layers"][1]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let copy = |name: &str| {
        let dst = img.dir().join(name);
        run(Command::new("cp").arg("-a").arg(&layout).arg(&dst));
        dst
    };
    let target = |d: &Path| format!("oci:{}", d.display());

    let d = copy("longer");
    std::fs::OpenOptions::new().append(true).open(d.join("blobs/sha256").join(&layer_hex)).unwrap().write_all(b"x").unwrap();
    refused(&target(&d), &[&format!("blobs/sha256/{layer_hex}"), "layer 1", "but its descriptor says"]);

    let d = copy("flipped");
    let blob = d.join("blobs/sha256").join(&layer_hex);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    refused(&target(&d), &[&format!("blobs/sha256/{layer_hex}"), "layer 1", "but its descriptor says sha256:"]);

    let d = copy("missing");
    std::fs::remove_file(d.join("blobs/sha256").join(&layer_hex)).unwrap();
    refused(&target(&d), &[&format!("has no blobs/sha256/{layer_hex}"), "layer 1"]);

    // A consistent forger: the manifest is rewritten and re-named.
    let forged = |name: &str, f: &dyn Fn(&mut Value)| {
        let d = copy(name);
        let mut m = manifest.clone();
        f(&mut m);
        let bytes = serde_json::to_vec(&m).unwrap();
        let hex = sha256_hex(&bytes);
        std::fs::write(d.join("blobs/sha256").join(&hex), &bytes).unwrap();
        let mut index: Value = serde_json::from_slice(&std::fs::read(d.join("index.json")).unwrap()).unwrap();
        index["manifests"][0]["digest"] = format!("sha256:{hex}").into();
        index["manifests"][0]["size"] = bytes.len().into();
        std::fs::write(d.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        d
    };
    let d = forged("media-type", &|m| m["layers"][1]["mediaType"] = "application/vnd.example.layer".into());
    refused(&target(&d), &["layer 1", "\"application/vnd.example.layer\""]);
    let d = forged("uncompressed-type", &|m| m["layers"][1]["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into());
    refused(&target(&d), &["layer 1", "diff_id says"]);
    let d = forged("sha512", &|m| m["layers"][0]["digest"] = format!("sha512:{}", "0".repeat(128)).into());
    refused(&target(&d), &["layer 0", "sha512:", "only sha256"]);
    let d = forged("layer-count", &|m| {
        m["layers"].as_array_mut().unwrap().pop();
    });
    refused(&target(&d), &["lists 2 layers", "3 diff_ids"]);

    let d = copy("index-size");
    let mut index: Value = serde_json::from_slice(&std::fs::read(d.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["size"] = 1.into();
    std::fs::write(d.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    refused(&target(&d), &["index.json manifests[0]", "but its descriptor says 1"]);

    let d = copy("layout-version");
    std::fs::write(d.join("oci-layout"), r#"{"imageLayoutVersion": "2.0.0"}"#).unwrap();
    refused(&target(&d), &["imageLayoutVersion", "2.0.0"]);

    // An oci-archive is read by its members: a missing blob is named too.
    let archive = img.dir().join("oci.tar");
    run(Command::new("tar").arg("-cf").arg(&archive).arg("-C").arg(img.dir().join("missing")).arg("."));
    refused(&format!("oci-archive:{}", archive.display()), &[&format!("has no member blobs/sha256/{layer_hex}")]);
    refused(&archive.to_string_lossy(), &[&format!("has no member blobs/sha256/{layer_hex}")]);
}

/// Writes `bytes` as a blob of the layout; returns its descriptor.
fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let hex = sha256_hex(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn write_json(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_vec(v).unwrap()).unwrap()
}

fn cp_a(from: &Path, to: &Path) -> PathBuf {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
    to.to_path_buf()
}

/// Verified, with what verify noted on stderr.
fn ok_noted(target: &str) -> (String, String) {
    let out = run(Command::new(bin()).arg("verify").arg(target));
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Layouts as skopeo (--format v2s2 too), podman, buildah and umoci write
/// them: each verifies, its JSON is valid against the image-spec schemas,
/// and the layers are really decompressed (the uncompressed byte count is
/// the docker-archive's).
#[test]
fn what_the_ecosystem_writes_verifies() {
    for tool in ["skopeo", "podman", "buildah", "umoci"] {
        require(tool);
    }
    let img = streamed();
    let d = img.dir();
    let src = format!("docker-archive:{}", img.path.display());
    let tail = |line: &str| line.rsplit_once(", ").unwrap().1.to_string();
    let plain = ok(&img.path.to_string_lossy());
    let config = img.config_name().trim_end_matches(".json").to_string();

    // skopeo --format v2s2: Docker media types inside an OCI layout.
    run(Command::new("skopeo").args(["copy", "-q", "--format", "v2s2"]).arg(&src).arg(format!("oci:{}:v2", d.join("v2s2").display())));
    run(Command::new("skopeo").args(["copy", "-q", "--format", "v2s2"]).arg(&src).arg(format!("oci-archive:{}:v2", d.join("v2s2.tar").display())));
    let m = std::fs::read_to_string(blob_of_index(&d.join("v2s2"))).unwrap();
    assert!(m.contains("application/vnd.docker.image.rootfs.diff.tar.gzip"), "{m}");
    for t in [format!("oci:{}:v2", d.join("v2s2").display()), format!("oci-archive:{}:v2", d.join("v2s2.tar").display())] {
        let line = ok(&t);
        assert!(line.contains(&format!(": 3 layers, config sha256:{config}, ")), "{line}");
        assert_eq!(tail(&line), tail(&plain), "{t}: the layers were not read uncompressed");
    }

    // podman save and buildah push, from their own store.
    let root = d.join("containers");
    let store = |tool: &str| {
        let mut c = Command::new(tool);
        c.arg("--root").arg(root.join("root")).arg("--runroot").arg(root.join("run")).args(["--storage-driver", "vfs"]);
        c
    };
    run(store("podman").args(["load", "-q", "-i"]).arg(&img.path));
    let name = "li-test-busybox:latest";
    run(store("podman").args(["save", "-q", "--format", "oci-dir", "-o"]).arg(d.join("podman-dir")).arg(name));
    run(store("podman").args(["save", "-q", "--format", "oci-archive", "-o"]).arg(d.join("podman.tar")).arg(name));
    run(store("podman").args(["save", "-q", "--format", "docker-dir", "-o"]).arg(d.join("podman-docker-dir")).arg(name));
    run(store("buildah").args(["push", "-q", name]).arg(format!("oci:{}:b", d.join("buildah").display())));
    run(store("buildah").args(["push", "-q", name]).arg(format!("oci-archive:{}:b", d.join("buildah.tar").display())));
    for t in [
        format!("dir:{}", d.join("podman-docker-dir").display()),
        d.join("podman-docker-dir").display().to_string(),
        d.join("podman-dir").display().to_string(),
        d.join("podman.tar").display().to_string(),
        format!("oci:{}:b", d.join("buildah").display()),
        format!("oci-archive:{}:b", d.join("buildah.tar").display()),
    ] {
        let line = ok(&t);
        assert!(line.contains(": 3 layers, config sha256:"), "{line}");
        assert_eq!(tail(&line), tail(&plain), "{t}");
    }

    assert!(ok(&d.join("podman-docker-dir").display().to_string()).starts_with("verified dir "));
    // In skopeo's dir: transport a blob is named by its hex alone.
    let dd = cp_a(&d.join("podman-docker-dir"), &d.join("docker-dir-flipped"));
    let manifest = read_json(&dd.join("manifest.json"));
    let hex = manifest["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let mut bytes = std::fs::read(dd.join(&hex)).unwrap();
    bytes[40] ^= 1;
    std::fs::write(dd.join(&hex), bytes).unwrap();
    refused(&format!("dir:{}", dd.display()), &["layer 0 of manifest", &hex, "but its descriptor says sha256:"]);
    std::fs::write(dd.join("version"), "Directory Transport Version: 9.0\n").unwrap();
    refused(&format!("dir:{}", dd.display()), &["version says", "9.0"]);

    // umoci builds an image of its own.
    let um = d.join("umoci");
    run(Command::new("umoci").args(["init", "--layout"]).arg(&um));
    run(Command::new("umoci").args(["new", "--image"]).arg(format!("{}:u", um.display())));
    run(Command::new("umoci").args(["insert", "--rootless", "--image"]).arg(format!("{}:u", um.display())).arg(&img.path).arg("/image.tar"));
    let line = ok(&format!("oci:{}:u", um.display()));
    assert!(line.contains(": 1 layer, config sha256:"), "{line}");

    let n = assert_oci_schemas(&[
        &d.join("v2s2"),
        &d.join("v2s2.tar"),
        &d.join("podman-dir"),
        &d.join("podman.tar"),
        &d.join("buildah"),
        &d.join("buildah.tar"),
        &um,
    ]);
    assert!(n >= 7 * 2 + 5 * 2, "{n}");

    // A Docker-typed layer is checked as closely as an OCI one.
    let v2 = cp_a(&d.join("v2s2"), &d.join("v2s2-flipped"));
    let manifest = read_json(&blob_of_index(&v2));
    let hex = manifest["layers"][1]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let blob = v2.join("blobs/sha256").join(&hex);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    refused(&format!("oci:{}", v2.display()), &["layer 1", &hex, "but its descriptor says sha256:"]);
}

/// A layout as `docker buildx build --output type=oci` writes it (no buildx
/// here: built by hand following buildkit's attestation-storage format):
/// index.json names an image index holding the image manifest and an
/// attestation manifest (platform unknown/unknown, an in-toto layer).
fn buildx_layout(img: &Image) -> PathBuf {
    let d = img.dir();
    let layout = d.join("buildx");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-compress"])
        .arg(format!("docker-archive:{}", img.path.display()))
        .arg(format!("oci:{}:tmp", layout.display())));
    let index = read_json(&layout.join("index.json"));
    let mut image = index["manifests"][0].clone();
    image.as_object_mut().unwrap().remove("annotations");
    image["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux"});
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": "_", "digest": {"sha256": image["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap()}}],
        "predicate": {"builder": {"id": ""}},
    });
    let mut layer = put_blob(&layout, "application/vnd.in-toto+json", &serde_json::to_vec(&statement).unwrap());
    layer["annotations"] = serde_json::json!({"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"});
    let config = serde_json::json!({"architecture": "unknown", "os": "unknown", "config": {}, "rootfs": {"type": "layers", "diff_ids": [layer["digest"].clone()]}});
    let config = put_blob(&layout, "application/vnd.oci.image.config.v1+json", &serde_json::to_vec(&config).unwrap());
    let att = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": [layer]});
    let mut att = put_blob(&layout, "application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&att).unwrap());
    att["annotations"] =
        serde_json::json!({"vnd.docker.reference.digest": image["digest"].clone(), "vnd.docker.reference.type": "attestation-manifest"});
    att["platform"] = serde_json::json!({"architecture": "unknown", "os": "unknown"});
    let nested = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [image, att]});
    let mut nested = put_blob(&layout, "application/vnd.oci.image.index.v1+json", &serde_json::to_vec(&nested).unwrap());
    nested["annotations"] =
        serde_json::json!({"io.containerd.image.name": "docker.io/library/app:latest", "org.opencontainers.image.ref.name": "latest"});
    write_json(
        &layout.join("index.json"),
        &serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [nested]}),
    );
    layout
}

#[test]
fn buildx_layouts_with_attestations_verify() {
    require("skopeo");
    let img = streamed();
    let layout = buildx_layout(&img);
    let target = format!("oci:{}:latest", layout.display());
    let line = ok(&target);
    assert!(line.contains(": 3 layers, config sha256:") && line.ends_with("; 1 artifact (2 blobs checked)\n"), "{line}");
    assert_oci_schemas(&[&layout]);
    // skopeo reads the layout too: it picks the amd64 image out of the
    // index, and what it copies out verifies.
    let out = img.dir().join("from-buildx.tar");
    run(Command::new("skopeo").args(["copy", "-q"]).arg(&target).arg(format!("docker-archive:{}:x:y", out.display())));
    ok(&out.to_string_lossy());

    // The attestation's blobs are checked: one flipped byte is named.
    let nested = read_json(&blob_of_index(&layout));
    let att = read_json(&layout.join("blobs/sha256").join(nested["manifests"][1]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap()));
    let hex = att["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let d = cp_a(&layout, &img.dir().join("flipped"));
    let p = d.join("blobs/sha256").join(&hex);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[3] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    refused(&format!("oci:{}", d.display()), &["layer 0 of manifest", &hex, "but its descriptor says sha256:"]);
    // And the manifest it attests must be there.
    let d = cp_a(&layout, &img.dir().join("no-subject"));
    let image_hex = nested["manifests"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let mut n = nested.clone();
    n["manifests"].as_array_mut().unwrap().remove(0);
    std::fs::remove_file(d.join("blobs/sha256").join(&image_hex)).unwrap();
    let desc = put_blob(&d, "application/vnd.oci.image.index.v1+json", &serde_json::to_vec(&n).unwrap());
    write_json(&d.join("index.json"), &serde_json::json!({"schemaVersion": 2, "manifests": [desc]}));
    refused(&format!("oci:{}", d.display()), &[&format!("has no blobs/sha256/{image_hex}"), "vnd.docker.reference.digest"]);
}

/// An OCI 1.1 artifact (artifactType, the empty config, a subject) beside
/// an image, and a media type nobody knows: the image is verified, the
/// artifact checked blob by blob, the unknown one skipped with a note.
#[test]
fn artifacts_and_unknown_media_types_beside_an_image() {
    require("skopeo");
    let img = streamed();
    let layout = img.dir().join("art");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-compress"])
        .arg(format!("docker-archive:{}", img.path.display()))
        .arg(format!("oci:{}:app", layout.display())));
    let mut index = read_json(&layout.join("index.json"));
    let image = index["manifests"][0].clone();
    let mut subject = image.clone();
    subject.as_object_mut().unwrap().remove("annotations");
    let empty = put_blob(&layout, "application/vnd.oci.empty.v1+json", b"{}");
    let sbom = put_blob(&layout, "application/vnd.example.sbom+json", br#"{"packages": ["busybox"]}"#);
    let artifact = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sbom", "config": empty, "layers": [sbom], "subject": subject,
    });
    let mut artifact = put_blob(&layout, "application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&artifact).unwrap());
    artifact["artifactType"] = "application/vnd.example.sbom".into();
    let unknown = put_blob(&layout, "application/vnd.example.thing.v1+json", br#"{"thing": 1}"#);
    index["manifests"].as_array_mut().unwrap().extend([artifact.clone(), unknown.clone()]);
    write_json(&layout.join("index.json"), &index);

    let (line, notes) = ok_noted(&format!("oci:{}", layout.display()));
    assert!(line.contains(": 3 layers, config sha256:") && line.ends_with("; 1 artifact (2 blobs checked)\n"), "{line}");
    assert_eq!(notes.lines().count(), 1, "{notes}");
    assert!(
        notes.starts_with("layered-image: note: skipped index.json manifests[2]") && notes.contains("application/vnd.example.thing.v1+json"),
        "{notes}"
    );
    // With a reference, only what it names (and its referrers) is read: no note.
    assert!(ok(&format!("oci:{}:app", layout.display())).contains(": 3 layers"));
    assert_oci_schemas(&[&layout]);
    // Real readers take the image out of the same layout.
    run(Command::new("skopeo").args(["inspect"]).arg(format!("oci:{}:app", layout.display())));

    let edited = |name: &str, f: &dyn Fn(&Path, &mut Value)| {
        let d = cp_a(&layout, &img.dir().join(name));
        let mut index = read_json(&d.join("index.json"));
        f(&d, &mut index);
        write_json(&d.join("index.json"), &index);
        format!("oci:{}", d.display())
    };
    // The subject must be in the layout.
    let artifact_with = |d: &Path, index: &mut Value, subject: Value, layers: Value| {
        let a = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.sbom", "config": empty, "layers": layers, "subject": subject,
        });
        index["manifests"][1] = put_blob(d, "application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&a).unwrap());
    };
    let missing = format!("sha256:{}", "e".repeat(64));
    let t = edited("no-subject", &|d, index| {
        let mut s = subject.clone();
        s["digest"] = missing.clone().into();
        artifact_with(d, index, s, serde_json::json!([sbom]));
    });
    refused(&t, &["subject", &format!("has no blobs/sha256/{}", "e".repeat(64))]);
    let t = edited("subject-size", &|d, index| {
        let mut s = subject.clone();
        s["size"] = 7.into();
        artifact_with(d, index, s, serde_json::json!([sbom]));
    });
    refused(&t, &["subject", "but its descriptor says 7"]);
    let t = edited("layer-size", &|d, index| {
        let mut l = sbom.clone();
        l["size"] = 3.into();
        artifact_with(d, index, subject.clone(), serde_json::json!([l]));
    });
    refused(&t, &["layer 0 of referrer manifest", "but its descriptor says 3"]);
    // An unknown media type is skipped, but not its blob's lies.
    let t = edited("unknown-missing", &|_, index| index["manifests"][2]["digest"] = missing.clone().into());
    refused(&t, &["index.json manifests[2]", &format!("has no blobs/sha256/{}", "e".repeat(64))]);
    // A layout holding nothing verify knows is refused, naming what it skipped.
    let t = edited("only-unknown", &|_, index| {
        let u = index["manifests"][2].clone();
        index["manifests"] = serde_json::json!([u]);
    });
    refused(&t, &["lists no image manifest verify knows", "application/vnd.example.thing.v1+json"]);
}

/// A manifest must be what its descriptor calls it (mediaType,
/// schemaVersion 2), and the empty descriptor must name `{}`.
#[test]
fn documents_agree_with_their_descriptors() {
    require("skopeo");
    let img = streamed();
    let layout = img.dir().join("oci");
    run(Command::new("skopeo").args(["copy", "-q"]).arg(format!("docker-archive:{}", img.path.display())).arg(format!("oci:{}:t", layout.display())));
    let manifest = read_json(&blob_of_index(&layout));
    let forged = |name: &str, m: &Value| {
        let d = cp_a(&layout, &img.dir().join(name));
        let mut index = read_json(&d.join("index.json"));
        let desc = put_blob(&d, "application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(m).unwrap());
        index["manifests"][0]["digest"] = desc["digest"].clone();
        index["manifests"][0]["size"] = desc["size"].clone();
        write_json(&d.join("index.json"), &index);
        format!("oci:{}", d.display())
    };
    let mut m = manifest.clone();
    m["mediaType"] = "application/vnd.oci.image.index.v1+json".into();
    refused(&forged("media-type", &m), &["says mediaType \"application/vnd.oci.image.index.v1+json\"", "its descriptor says"]);
    let mut m = manifest.clone();
    m["schemaVersion"] = 1.into();
    refused(&forged("schema-version", &m), &["schemaVersion is 1, not 2"]);
    // Without a mediaType of its own (allowed), it verifies.
    let mut m = manifest.clone();
    m.as_object_mut().unwrap().remove("mediaType");
    ok(&forged("no-media-type", &m));
    // An artifact whose "empty" config is not {}.
    let d = cp_a(&layout, &img.dir().join("empty"));
    let not_empty = put_blob(&d, "application/vnd.oci.empty.v1+json", b"[]");
    let layer = put_blob(&d, "application/vnd.example.data", b"data");
    let a = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": "application/vnd.example", "config": not_empty, "layers": [layer]});
    let desc = put_blob(&d, "application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&a).unwrap());
    let mut index = read_json(&d.join("index.json"));
    index["manifests"].as_array_mut().unwrap().push(desc);
    write_json(&d.join("index.json"), &index);
    refused(&format!("oci:{}", d.display()), &["the empty descriptor", "names the 2 bytes {}"]);
}
