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
