//! Faults around `stream` and the other writers, beyond
//! tests/stream_errors.rs: a full disk under `-o` (a 1 MiB tmpfs), stdout
//! that is full or closed, files vanishing or growing between hashing and
//! streaming, and SIGINT/SIGTERM/SIGHUP at several points. Each ends with
//! one error line, a non-zero exit, and nothing left that looks like a
//! complete image (no output file, no temporary file).

use crate::harness as hostile_support;
use hostile_support::*;
use serde_json::json;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A small tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        require("mount");
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir.path()));
        Tmpfs { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn names(&self) -> Vec<String> {
        std::fs::read_dir(self.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A conf with a store path of `mib` MiB of data.
fn store(mib: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("nix/store/aaaa-pkg")).unwrap();
    let data: Vec<u8> = (0..mib << 20).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("nix/store/aaaa-pkg/blob"), data).unwrap();
    let src = root.join("custom-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "f\n").unwrap();
    custom_layer(&src, &root.join("custom"));
    let conf = root.join("conf.json");
    std::fs::write(
        &conf,
        serde_json::to_vec(&json!({
            "architecture": "amd64", "config": {}, "os": "linux", "store_dir": "nix/store", "from_image": null,
            "store_layers": [["nix/store/aaaa-pkg"]], "customisation_layer": "custom", "repo_tag": "t:1",
            "created": "1970-01-01T00:00:01+00:00", "uid": 0, "gid": 0, "uname": "root", "gname": "root"
        }))
        .unwrap(),
    )
    .unwrap();
    (dir, conf)
}

#[test]
fn disk_full_under_dash_o() {
    let fs = Tmpfs::new("1m");
    let (_d, conf) = store(3);
    let image = fs.path().join("image.tar");
    li([OsString::from("stream"), conf.into(), "-o".into(), image.clone().into()]).fails(&["image.tar", "No space left on device"]);
    assert!(fs.names().is_empty(), "left behind: {:?}", fs.names());
}

#[test]
fn disk_full_for_conf_and_customisation_layer() {
    let fs = Tmpfs::new("1m");
    // customisation-layer: a 3 MiB tree into a 1 MiB OUTDIR.
    let (d, conf) = store(3);
    let out = fs.path().join("custom");
    li([OsString::from("customisation-layer"), d.path().join("nix").into(), out.clone().into()]).fails(&["No space left on device"]);
    let left: Vec<_> = std::fs::read_dir(&out).map(|r| r.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    // conf -o on a disk that is already full.
    let filler = fs.path().join("filler");
    let _ = Command::new("dd").args(["if=/dev/zero", "bs=64k", "count=64"]).arg(format!("of={}", filler.display())).stderr(Stdio::null()).status();
    let g = write(d.path(), "g.json", format!(r#"[{{"path":"/nix/store/{}-p","references":[]}}]"#, "a".repeat(32)));
    let base = write(d.path(), "base.json", r#"{"config": {"Env": ["X=1"]}, "architecture": "amd64", "os": "linux"}"#);
    let target = fs.path().join("conf.json");
    li([
        OsString::from("conf"),
        "--graph".into(),
        g.into(),
        "--base-json".into(),
        base.into(),
        "--customisation-layer".into(),
        "/c".into(),
        "--image-name".into(),
        "n".into(),
        "--image-tag".into(),
        "t".into(),
        "-o".into(),
        target.clone().into(),
    ])
    .fails(&["conf.json", "No space left on device"]);
    let mut names = fs.names();
    names.retain(|n| n != "filler" && n != "custom");
    assert!(names.is_empty(), "left behind: {names:?}");
    let _ = conf;
}

/// stdout that cannot take the data: full, or not open at all.
#[test]
fn stdout_full_or_closed() {
    let (d, conf) = store(2);
    let g = write(d.path(), "g.json", r#"[{"path":"/nix/store/a-x","references":[]}]"#);
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    for args in [
        vec![OsString::from("stream"), conf.clone().into()],
        vec!["popularity".into(), g.clone().into()],
        vec!["auto-layer".into(), g.clone().into()],
    ] {
        li_with(&args, |c| {
            c.stdout(full());
        })
        .fails(&["No space left on device"]);
    }
    li_with(["stream".into(), conf.clone().into_os_string()], |c| {
        c.stdout(full());
    })
    .fails(&["writing stdout", "No space left on device"]);
    // fd 1 closed outright (`>&-`): Rust's runtime opens /dev/null in its
    // place before main, so this is `> /dev/null`, a successful stream.
    let out = Command::new("sh").arg("-c").arg(format!("exec timeout 60 {} stream {} >&-", bin().display(), conf.display())).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// Spawns `stream CONF` with stdout piped and unread, so the writer blocks
/// in the first (big) layer while the hashers finish the later ones.
fn blocked_stream(conf: &Path) -> std::process::Child {
    Command::new(bin()).arg("stream").arg(conf).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn finish(mut child: std::process::Child) -> (Option<i32>, String, Vec<u8>) {
    let mut sink = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut sink).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), sink)
}

fn two_layer_case() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (d, conf) = store(0);
    let root = d.path();
    std::fs::create_dir_all(root.join("nix/store/bbbb-big")).unwrap();
    std::fs::write(root.join("nix/store/bbbb-big/blob"), vec![1u8; 16 << 20]).unwrap();
    std::fs::write(root.join("nix/store/aaaa-pkg/victim"), "victim\n").unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    v["store_layers"] = json!([["nix/store/bbbb-big"], ["nix/store/aaaa-pkg"]]);
    std::fs::write(&conf, serde_json::to_vec(&v).unwrap()).unwrap();
    let victim = root.join("nix/store/aaaa-pkg/victim");
    // Setup is over well before the stream starts (changes are told apart
    // by time).
    std::thread::sleep(Duration::from_millis(100));
    (d, conf, victim)
}

fn assert_no_manifest(bytes: &[u8]) {
    let mut ar = tar::Archive::new(bytes);
    if let Ok(entries) = ar.entries() {
        for e in entries.flatten() {
            assert_ne!(e.path().unwrap().to_string_lossy(), "manifest.json", "a complete image was written");
        }
    }
}

#[test]
fn file_vanishing_between_hashing_and_streaming() {
    let (_d, conf, victim) = two_layer_case();
    let child = blocked_stream(&conf);
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::remove_file(&victim).unwrap();
    let (code, err, out) = finish(child);
    assert_eq!(code, Some(1), "{err}");
    let last = err.lines().last().unwrap();
    assert!(last.contains("layer 2 (store paths ['nix/store/aaaa-pkg']) changed between hashing and streaming"), "{err}");
    // The directory it vanished from is named.
    assert!(last.contains(&format!("changed since the stream began: {}", victim.parent().unwrap().display())), "{err}");
    assert!(!err.contains("panicked"));
    assert_no_manifest(&out);
}

#[test]
fn file_growing_between_hashing_and_streaming() {
    let (_d, conf, victim) = two_layer_case();
    let child = blocked_stream(&conf);
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(&victim, "victim, now longer\n").unwrap();
    let (code, err, out) = finish(child);
    assert_eq!(code, Some(1), "{err}");
    let last = err.lines().last().unwrap();
    assert!(last.contains("layer 2 (store paths ['nix/store/aaaa-pkg']) changed between hashing and streaming"), "{err}");
    assert!(last.contains(&format!("changed since the stream began: {}", victim.display())), "{err}");
    assert_no_manifest(&out);
}

/// Same size, other bytes: only the hash tells, and the file is named.
#[test]
fn file_rewritten_between_hashing_and_streaming_is_named() {
    let (_d, conf, victim) = two_layer_case();
    let child = blocked_stream(&conf);
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(&victim, "VICTIM\n").unwrap();
    let (code, err, out) = finish(child);
    assert_eq!(code, Some(1), "{err}");
    let last = err.lines().last().unwrap();
    assert!(last.contains("streamed bytes hash to blake3:"), "{err}");
    assert!(last.ends_with(&format!("changed since the stream began: {}); the image written so far is incomplete", victim.display())), "{err}");
    assert_no_manifest(&out);
}

/// Each signal, to stdout and to `-o`: "interrupted", exit 1, no file.
#[test]
fn signals_stop_cleanly() {
    for sig in ["INT", "TERM", "HUP"] {
        for to_file in [false, true] {
            let d = tempfile::tempdir().unwrap();
            let root = d.path();
            let (_s, conf) = store(0);
            // A sparse 4 GiB file keeps the stream busy.
            std::fs::File::create(conf.parent().unwrap().join("nix/store/aaaa-pkg/sparse")).unwrap().set_len(4 << 30).unwrap();
            let image = root.join("image.tar");
            let mut cmd = Command::new(bin());
            cmd.arg("stream").arg(&conf).stderr(Stdio::piped()).stdout(Stdio::piped());
            if to_file {
                cmd.arg("-o").arg(&image);
            }
            let mut child = cmd.spawn().unwrap();
            // Drain stdout so the writer is busy writing, not blocked.
            let mut stdout = child.stdout.take().unwrap();
            let drain = std::thread::spawn(move || {
                let mut n = 0u64;
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(k) = stdout.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    n += k as u64;
                }
                n
            });
            std::thread::sleep(Duration::from_millis(700));
            run(Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()));
            let start = std::time::Instant::now();
            let out = child.wait_with_output().unwrap();
            assert!(start.elapsed() < Duration::from_secs(10), "SIG{sig}: took {:?} to stop", start.elapsed());
            drain.join().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "SIG{sig} -o={to_file}: {err}");
            let last = err.lines().last().unwrap();
            assert!(last.starts_with("layered-image: error: ") && last.contains("interrupted"), "SIG{sig}: {err}");
            let left: Vec<_> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert!(left.is_empty(), "SIG{sig}: left behind {left:?}");
        }
    }
}

/// A signal while a compressed fromImage is being decompressed: the spool
/// file in TMPDIR goes away with the process.
#[test]
fn signal_during_base_image_decompression_leaves_no_spool() {
    require("gzip");
    let (d, conf) = store(0);
    let root = d.path();
    let base = root.join("base.tar.gz");
    // A real (if useless) archive: 600 MiB of one member, gzip'd.
    run(Command::new("sh").arg("-c").arg(format!(
        "cd {} && truncate -s 600M big && tar -cf - big | gzip -1 > {} && rm big",
        root.display(),
        base.display()
    )));
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    v["from_image"] = json!("base.tar.gz");
    std::fs::write(&conf, serde_json::to_vec(&v).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let image = root.join("image.tar");
    let child = Command::new(bin()).env("TMPDIR", tmp.path()).arg("stream").arg(&conf).arg("-o").arg(&image).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "spool left in TMPDIR: {left:?}");
    assert!(!image.exists());
}

/// Into a file, a layer is read once: its header is written before its
/// digest is known, its length taken from the files' metadata. The bytes
/// written are the bytes hashed, so the image cannot lie (a file changed
/// meanwhile is archived as it is read, consistently); one whose length
/// changes by more than the tar's record padding makes the layer another
/// length than its header says, which is caught and named, and no file
/// appears.
#[test]
fn file_growing_while_its_layer_is_written_into_a_file() {
    let (d, conf, _) = two_layer_case();
    let root = d.path();
    // One layer: a big file first (pathlib order), the victim after it.
    std::fs::create_dir_all(root.join("nix/store/cccc-victim")).unwrap();
    let victim = root.join("nix/store/cccc-victim/victim");
    std::fs::write(&victim, "victim\n").unwrap();
    std::fs::write(root.join("nix/store/bbbb-big/blob"), vec![1u8; 512 << 20]).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    v["store_layers"] = json!([["nix/store/bbbb-big", "nix/store/cccc-victim"]]);
    std::fs::write(&conf, serde_json::to_vec(&v).unwrap()).unwrap();
    let out_dir = root.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let child = Command::new(bin()).arg("stream").arg(&conf).arg("-o").arg(out_dir.join("image.tar")).stderr(Stdio::piped()).spawn().unwrap();
    // Once the big file is being written, the victim grows.
    let partial_size = || std::fs::read_dir(&out_dir).unwrap().flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).max().unwrap_or(0);
    for _ in 0..2000 {
        if partial_size() > 16 << 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::write(&victim, "a victim more than a tar record longer\n".repeat(4000)).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap();
    assert!(last.contains("layer 1 (store paths ['nix/store/bbbb-big', 'nix/store/cccc-victim']) changed while it was being written"), "{err}");
    assert!(last.contains(&victim.display().to_string()), "{err}");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "nothing left in the output directory");
}

/// One pass into a file (-o, `> FILE`, a file already holding other
/// bytes), or two passes into a pipe: the same bytes.
#[test]
fn one_pass_into_a_file_writes_the_piped_bytes() {
    let (d, conf, _) = two_layer_case();
    let root = d.path();
    let piped = Command::new(bin()).arg("stream").arg(&conf).stderr(Stdio::null()).output().unwrap().stdout;
    assert!(!piped.is_empty());
    run(Command::new(bin()).arg("stream").arg(&conf).arg("-o").arg(root.join("o.tar")));
    assert!(std::fs::read(root.join("o.tar")).unwrap() == piped, "-o differs from the pipe");
    let redirected = std::fs::File::create(root.join("r.tar")).unwrap();
    run(Command::new(bin()).arg("stream").arg(&conf).stdout(redirected));
    assert!(std::fs::read(root.join("r.tar")).unwrap() == piped, "> FILE differs from the pipe");
    // A file that already holds bytes before the archive: headers are
    // rewritten at the archive's offsets, not the file's.
    let mut prefixed = std::fs::File::create(root.join("p.tar")).unwrap();
    std::io::Write::write_all(&mut prefixed, b"prefix").unwrap();
    run(Command::new(bin()).arg("stream").arg(&conf).stdout(prefixed));
    assert!(std::fs::read(root.join("p.tar")).unwrap()[6..] == piped[..], "> FILE after a prefix differs");
    verify_image(root.join("o.tar").to_str().unwrap());
}
