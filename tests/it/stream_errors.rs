//! Bad input and faults for `stream`: a clear message naming what is
//! wrong, a non-zero exit, no panic, nothing on stdout that looks like an
//! image, and no output file left behind.

use crate::harness as common;
use common::*;
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

impl Case {
    fn without(&self, key: &str) -> &Self {
        let mut c = self.conf_value();
        c.as_object_mut().unwrap().remove(key);
        self.write_conf(&c);
        self
    }
    /// Runs `stream conf.json -o image.tar` and stdout variant; both must
    /// fail with `needle` in the message.
    fn fails_with(&self, needle: &str) {
        let out_file = self.root().join("image.tar");
        for to_file in [false, true] {
            let mut cmd = Command::new(bin());
            cmd.arg("stream").arg(self.root().join("conf.json"));
            if to_file {
                cmd.arg("-o").arg(&out_file);
            }
            let out = cmd.output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "expected failure for {needle:?}; stderr: {err}");
            assert!(!err.contains("panicked"), "panic: {err}");
            assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
            assert!(err.contains("error:"), "{err}");
            assert!(!out_file.exists(), "a failed run left {}", out_file.display());
            let leftovers: Vec<_> = std::fs::read_dir(self.root())
                .unwrap()
                .filter_map(|e| {
                    let n = e.unwrap().file_name().to_string_lossy().into_owned();
                    n.contains(".partial").then_some(n)
                })
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
            assert_not_an_image(&out.stdout);
        }
    }
}

#[test]
fn conf_file_problems() {
    let c = Case::new();
    std::fs::write(c.root().join("conf.json"), "{not json").unwrap();
    c.fails_with("is not valid JSON");
    std::fs::write(c.root().join("conf.json"), "[1,2]").unwrap();
    c.fails_with("must be a JSON object");
    std::fs::remove_file(c.root().join("conf.json")).unwrap();
    c.fails_with("cannot read");
}

#[test]
fn missing_and_mistyped_keys() {
    let c = Case::new();
    for key in ["created", "uid", "store_dir", "store_layers", "customisation_layer", "repo_tag", "config", "architecture", "from_image"] {
        c.without(key).fails_with(&format!("missing key \"{key}\""));
    }
    c.with("store_layers", json!("nix/store/aaaa-pkg")).fails_with("key \"store_layers\" must be a list");
    c.with("store_layers", json!([["nix/store/aaaa-pkg", 7]])).fails_with("key \"store_layers[0][1]\" must be a string");
    c.with("uid", json!("root")).fails_with("key \"uid\"");
    c.with("uid", json!(-1)).fails_with("not a valid id");
    c.with("uid", json!(1e30)).fails_with("not a valid id");
    c.with("config", json!(["Cmd"])).fails_with("key \"config\" must be an object");
    c.with("from_image", json!(3)).fails_with("key \"from_image\" must be null or a string");
}

#[test]
fn bad_times() {
    let c = Case::new();
    c.with("created", json!("yesterday")).fails_with("key \"created\": invalid time \"yesterday\"");
    c.with("mtime", json!("2024-02-30T00:00:00Z")).fails_with("key \"mtime\": invalid time");
    c.with("created", json!(0)).fails_with("key \"created\" must be a string");
}

#[test]
fn store_path_problems() {
    let c = Case::new();
    c.with("store_layers", json!([["nix/store/missing-pkg"]])).fails_with("does not exist");
    c.with("store_layers", json!([["nix/other/aaaa-pkg"]])).fails_with("is not inside the store directory");
    c.with("store_layers", json!([["nix/store/../../etc"]])).fails_with("contains '..'");
    c.with("store_layers", json!([["nix/store"]])).fails_with("is not inside the store directory");
    // A socket has no tar representation.
    let sock = c.root().join("nix/store/aaaa-pkg/sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    c.with("store_layers", json!([["nix/store/aaaa-pkg"]])).fails_with("is a socket");
}

#[test]
fn unreadable_file_is_named() {
    require("setpriv");
    let c = Case::new();
    let secret = c.root().join("nix/store/aaaa-pkg/secret");
    std::fs::write(&secret, "s").unwrap();
    run(Command::new("chmod").args(["0400"]).arg(&secret));
    run(Command::new("chmod").args(["-R", "a+rX"]).arg(c.root().join("custom")).arg(c.root().join("conf.json")));
    run(Command::new("chmod").args(["a+rwx"]).arg(c.root()));
    // Root reads everything, so the stream runs as nobody.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin())
        .arg("stream")
        .arg(c.root().join("conf.json"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot read") && err.contains("aaaa-pkg/secret") && err.contains("ermission denied"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn customisation_layer_problems() {
    let c = Case::new();
    let custom = c.root().join("custom");
    std::fs::write(custom.join("checksum"), "abc\n").unwrap();
    c.fails_with("does not hold a sha256");
    std::fs::write(custom.join("checksum"), format!("{}\n", "0".repeat(64))).unwrap();
    c.fails_with("but its checksum file says");
    std::fs::remove_file(custom.join("layer.tar")).unwrap();
    c.fails_with("layer.tar");
    std::fs::remove_file(custom.join("checksum")).unwrap();
    c.fails_with("checksum");
}

fn base_image(c: &Case) -> PathBuf {
    // A real base image: our own stream of the valid conf.
    let base = c.root().join("base.tar");
    run(Command::new(bin()).arg("stream").arg(c.root().join("conf.json")).arg("-o").arg(&base));
    base
}

#[test]
fn from_image_problems() {
    let c = Case::new();
    let base = base_image(&c);
    let bytes = std::fs::read(&base).unwrap();
    c.with("from_image", json!("nope.tar")).fails_with("fromImage");
    std::fs::write(c.root().join("junk.tar"), vec![b'j'; 4096]).unwrap();
    c.with("from_image", json!("junk.tar")).fails_with("is not a tar archive");
    std::fs::write(c.root().join("cut.tar"), &bytes[..bytes.len() / 3]).unwrap();
    c.with("from_image", json!("cut.tar")).fails_with("truncated");
    std::fs::write(c.root().join("gz.tar"), b"\x1f\x8b\x08\x00garbage").unwrap();
    c.with("from_image", json!("gz.tar")).fails_with("fromImage");

    // manifest.json lists fewer layers than the config has diff_ids.
    let edited = rewrite_members(
        &bytes,
        |name| name == "manifest.json",
        |m| {
            let mut v: Value = serde_json::from_slice(m).unwrap();
            v[0]["Layers"].as_array_mut().unwrap().pop();
            serde_json::to_vec(&v).unwrap()
        },
    );
    std::fs::write(c.root().join("disagree.tar"), edited).unwrap();
    c.with("from_image", json!("disagree.tar")).fails_with("lists 1 layers but");

    // A manifest naming a member that is not there.
    let edited = rewrite_members(
        &bytes,
        |name| name == "manifest.json",
        |m| {
            let mut v: Value = serde_json::from_slice(m).unwrap();
            v[0]["Layers"][0] = json!("nothere/layer.tar");
            serde_json::to_vec(&v).unwrap()
        },
    );
    std::fs::write(c.root().join("missing.tar"), edited).unwrap();
    c.with("from_image", json!("missing.tar")).fails_with("has no member \"nothere/layer.tar\"");
}

#[test]
fn stdout_closed_early() {
    let c = Case::new();
    // Enough data that the writer is still busy when the reader goes away.
    let big = c.root().join("nix/store/aaaa-pkg/big");
    std::fs::write(&big, vec![7u8; 32 << 20]).unwrap();
    let mut child = Command::new(bin()).arg("stream").arg(c.root().join("conf.json")).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 4096];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("output was closed before the image was complete"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn file_changed_between_hashing_and_streaming_is_caught() {
    let c = Case::new();
    // Layer 1 is big enough to block the writer on a full pipe; layer 2 is
    // hashed meanwhile, then changed before the writer reaches it.
    std::fs::create_dir_all(c.root().join("nix/store/bbbb-big")).unwrap();
    std::fs::write(c.root().join("nix/store/bbbb-big/blob"), vec![1u8; 16 << 20]).unwrap();
    let victim = c.root().join("nix/store/aaaa-pkg/bin/x");
    let mut conf = c.conf_value();
    conf["store_layers"] = json!([["nix/store/bbbb-big"], ["nix/store/aaaa-pkg"]]);
    c.write_conf(&conf);
    let mut child = Command::new(bin()).arg("stream").arg(c.root().join("conf.json")).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::write(&victim, "y\n").unwrap(); // same size, other bytes
    let mut sink = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut sink).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("layer 2 (store paths ['nix/store/aaaa-pkg']) changed between hashing and streaming"), "{err}");
    assert_not_an_image(&sink);
}

#[test]
fn sigterm_leaves_no_output_file() {
    let c = Case::new();
    let out_file = c.root().join("image.tar");
    // A sparse 4 GiB file keeps the stream busy for a while.
    let f = std::fs::File::create(c.root().join("nix/store/aaaa-pkg/sparse")).unwrap();
    f.set_len(4 << 30).unwrap();
    let child = Command::new(bin()).arg("stream").arg(c.root().join("conf.json")).arg("-o").arg(&out_file).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(!out_file.exists());
    let leftovers: Vec<_> =
        std::fs::read_dir(c.root()).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().contains("partial")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn stale_precomputed_digests_are_caught() {
    let c = Case::new();
    let with = c.root().join("conf-digests.json");
    run(Command::new(bin()).arg("digests").arg(c.root().join("conf.json")).arg("-o").arg(&with));
    let ok = Command::new(bin()).arg("stream").arg(&with).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    std::fs::write(c.root().join("nix/store/aaaa-pkg/bin/x"), "z\n").unwrap();
    let out = Command::new(bin()).arg("stream").arg(&with).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("layer 1 (store paths ['nix/store/aaaa-pkg']) changed") && err.contains("store_layer_digests entry is stale"), "{err}");
    assert_not_an_image(&out.stdout);
}

#[test]
fn bad_precomputed_digests() {
    let c = Case::new();
    c.with("store_layer_digests", json!([])).fails_with("key \"store_layer_digests\" must be a list of");
    c.with("store_layer_digests", json!([{"sha256": "ab", "size": 1}])).fails_with("key \"store_layer_digests[0]\"");
    c.with("mtime", json!("now"));
    let out = Command::new(bin()).arg("digests").arg(c.root().join("conf.json")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("mtimes are \"now\""), "{err}");
}

#[test]
fn refuses_to_write_an_image_to_a_terminal() {
    require("script");
    let c = Case::new();
    let cmd = format!("{} stream {}", bin().display(), c.root().join("conf.json").display());
    let out = Command::new("script").args(["-qec", &cmd, "/dev/null"]).stdin(Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("refusing to write an image to a terminal"), "{text}");
}
