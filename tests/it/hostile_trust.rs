//! Issue 8: an image never lies about what `docker load` reads, an output
//! never clobbers what is not a regular file, and nothing panics.
//!
//! Base images are written by Python's tarfile (an independent writer),
//! member by member, so that each case is exactly the archive it names.
//! Every image a case accepts goes through `verify`; every refusal is one
//! error line and leaves nothing that looks like an image.

use crate::harness as hostile_support;

use hostile_support::*;
use serde_json::{Value, json};
use sha2::Digest;
use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

impl Case {
    fn refused(&self, needles: &[&str]) -> String {
        self.stream_fails(needles)
    }

    /// `stream -o`: succeeds and the image verifies; returns it and stderr.
    fn accepted(&self) -> (Vec<u8>, String) {
        let image = self.root().join("accepted.tar");
        let out = li(["stream".into(), self.conf().into_os_string(), "-o".into(), image.clone().into_os_string()]);
        out.succeeds();
        verify_image(image.to_str().unwrap());
        let bytes = std::fs::read(&image).unwrap();
        std::fs::remove_file(&image).unwrap();
        (bytes, out.stderr)
    }

    fn with_base(&self, members: &Value) {
        write_tar(&self.root().join("base.tar"), members);
        self.with("from_image", json!("base.tar"));
    }
}

/// Writes a tar with Python's tarfile (PAX format): each member is
/// `{name, type: file|sym|hard|dir, hex, link, pax}`.
fn write_tar(out: &Path, members: &Value) {
    require("python3");
    let script = r#"
import io, json, sys, tarfile
out, spec = sys.argv[1], json.loads(sys.argv[2])
types = {"file": tarfile.REGTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE}
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for m in spec:
        ti = tarfile.TarInfo(m["name"])
        ti.type = types[m.get("type", "file")]
        ti.linkname = m.get("link", "")
        ti.pax_headers = m.get("pax", {})
        data = bytes.fromhex(m.get("hex", ""))
        if ti.type == tarfile.REGTYPE:
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        else:
            t.addfile(ti)
"#;
    run(Command::new("python3").arg("-c").arg(script).arg(out).arg(members.to_string()));
}

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// A small layer tar holding one file with `text`.
fn layer(text: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "etc/hello", text.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

fn file(name: &str, data: &[u8]) -> Value {
    json!({"name": name, "hex": hex::encode(data)})
}

fn link(name: &str, kind: &str, target: &str) -> Value {
    json!({"name": name, "type": kind, "link": target})
}

/// The layer members, then the config `c.json` (with `diff_ids` and
/// `config`) and manifest.json listing `layers`.
fn image(mut members: Vec<Value>, layers: &[&str], diff_ids: &[String], config: Value) -> Value {
    let cfg = json!({"config": config, "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| format!("sha256:{d}")).collect::<Vec<_>>()}});
    let man = json!([{"Config": "c.json", "RepoTags": null, "Layers": layers}]);
    members.push(file("c.json", cfg.to_string().as_bytes()));
    members.push(file("manifest.json", man.to_string().as_bytes()));
    Value::Array(members)
}

/// The outer member names of an image, in order.
fn outer_names(image: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(image);
    ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn base_layers_stored_as_links_lead_to_layers_only() {
    let c = Case::new();
    let (a, b) = (layer("a\n"), layer("b\n"));
    let (da, db) = (sha(&a), sha(&b));
    // docker save's dedup: a symlink to an earlier (or later) layer, and a
    // hard link to an earlier one: followed, and checked as the reader
    // of the output gets them.
    for (members, layers, diffs) in [
        (vec![file("l/layer.tar", &a), link("m/layer.tar", "sym", "../l/layer.tar")], ["l/layer.tar", "m/layer.tar"], [&da, &da]),
        (vec![link("m/layer.tar", "sym", "../l/layer.tar"), file("l/layer.tar", &a)], ["m/layer.tar", "l/layer.tar"], [&da, &da]),
        (vec![file("l/layer.tar", &a), link("m/layer.tar", "hard", "l/layer.tar")], ["l/layer.tar", "m/layer.tar"], [&da, &da]),
    ] {
        c.with_base(&image(members, &layers, &[diffs[0].clone(), diffs[1].clone()], json!({})));
        c.accepted();
    }
    let config = file("x.json", b"{}");
    let dir = json!({"name": "d", "type": "dir"});
    // (members besides l/layer.tar, the link layer's target, what the error says)
    let cases: Vec<(Vec<Value>, &str, &str, &str)> = vec![
        (vec![link("m/layer.tar", "sym", "../c.json")], "m/layer.tar", "../c.json", "not a layer member"),
        (vec![link("m/layer.tar", "sym", "../manifest.json")], "m/layer.tar", "../manifest.json", "not a layer member"),
        (vec![config.clone(), link("m/layer.tar", "sym", "../x.json")], "m/layer.tar", "../x.json", "not a layer member"),
        (vec![link("m/layer.tar", "sym", "layer.tar")], "m/layer.tar", "layer.tar", "loops"),
        (vec![dir.clone(), link("m/layer.tar", "sym", "../d")], "m/layer.tar", "../d", "not a layer member"),
        (vec![link("m/layer.tar", "sym", "../missing/layer.tar")], "m/layer.tar", "../missing/layer.tar", "not a layer member"),
        (vec![link("m/layer.tar", "hard", "c.json")], "m/layer.tar", "c.json", "not a layer member"),
        (vec![link("m/layer.tar", "hard", "m/layer.tar")], "m/layer.tar", "m/layer.tar", "hard link"),
        (vec![link("m/layer.tar", "sym", "../l/../l/layer.tar")], "m/layer.tar", "../l/../l/layer.tar", "climbs back"),
    ];
    for (extra, name, target, why) in cases {
        let mut members = vec![file("l/layer.tar", &a)];
        members.extend(extra);
        c.with_base(&image(members, &["l/layer.tar", name], &[da.clone(), da.clone()], json!({})));
        c.refused(&["fromImage", "base.tar", name, target, why]);
    }
    // A hard link to a layer written after it: docker cannot unpack it.
    c.with_base(&image(
        vec![link("m/layer.tar", "hard", "l/layer.tar"), file("l/layer.tar", &a)],
        &["m/layer.tar", "l/layer.tar"],
        &[da.clone(), da.clone()],
        json!({}),
    ));
    c.refused(&["m/layer.tar", "hard link", "written before it"]);
    // A link to a layer of other content than its own diff_id says.
    c.with_base(&image(
        vec![file("l/layer.tar", &a), file("n/layer.tar", &b), link("m/layer.tar", "sym", "../n/layer.tar")],
        &["l/layer.tar", "n/layer.tar", "m/layer.tar"],
        &[da.clone(), db.clone(), da.clone()],
        json!({}),
    ));
    c.refused(&["m/layer.tar", "n/layer.tar", &db]);
}

#[test]
fn base_member_names_spelled_two_ways_are_refused() {
    let c = Case::new();
    let (a, b) = (layer("a\n"), layer("b\n"));
    let da = sha(&a);
    for (first, second) in
        [("l/layer.tar", "./l/layer.tar"), ("l/layer.tar", "l//layer.tar"), ("l/layer.tar", "l/./layer.tar"), ("l/layer.tar", "x/../l/layer.tar")]
    {
        c.with_base(&image(vec![file(first, &a), file(second, &b)], &["l/layer.tar"], std::slice::from_ref(&da), json!({})));
        c.refused(&["fromImage", "both name l/layer.tar"]);
    }
    // The manifest itself, spelled twice.
    let mut members = image(vec![file("l/layer.tar", &a)], &["l/layer.tar"], std::slice::from_ref(&da), json!({}));
    members.as_array_mut().unwrap().push(file("./manifest.json", b"[]"));
    c.with_base(&members);
    c.refused(&["both name manifest.json"]);
}

#[test]
fn base_archive_repacked_with_dot_slash_names_is_accepted() {
    let c = Case::new();
    let a = layer("a\n");
    let da = sha(&a);
    let members = image(vec![file("l/layer.tar", &a)], &["l/layer.tar"], std::slice::from_ref(&da), json!({"Env": ["A=1"]}));
    let dotted: Vec<Value> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m["name"] = json!(format!("./{}", m["name"].as_str().unwrap()));
            m
        })
        .collect();
    c.with_base(&Value::Array(dotted));
    let (bytes, _) = c.accepted();
    // Written under the clean name, which the new manifest uses too.
    assert_eq!(outer_names(&bytes)[0], "l/layer.tar");
    // A manifest spelling a layer `l//layer.tar` names the same member.
    c.with_base(&image(vec![file("l/layer.tar", &a)], &["l//layer.tar"], std::slice::from_ref(&da), json!({})));
    c.accepted();
}

#[test]
fn base_layer_names_that_the_output_uses_are_refused() {
    let c = Case::new();
    // The store layer's and the customisation layer's names in the output.
    let (plain, _) = c.accepted();
    let names = outer_names(&plain);
    let (store, custom) = (names[0].clone(), names[1].clone());
    let a = layer("a\n");
    let da = sha(&a);
    let store_dir = store.trim_end_matches("/layer.tar").to_string();
    let inside = format!("{store_dir}/x/layer.tar");
    for name in [store.as_str(), custom.as_str(), store_dir.as_str(), inside.as_str()] {
        c.with_base(&image(vec![file(name, &a)], &[name], std::slice::from_ref(&da), json!({})));
        c.refused(&["base.tar", name, "same name"]);
    }
    let config_like = format!("{}.json", "ab".repeat(32));
    let inside_config = format!("{config_like}/layer.tar");
    for name in ["manifest.json", "./manifest.json", config_like.as_str(), inside_config.as_str(), "manifest.json/layer.tar"] {
        let mut members = vec![file(name, &a)];
        if name.ends_with("manifest.json") {
            // The layer is the base's own manifest.json.
            members.clear();
        }
        c.with_base(&image(members, &[name], std::slice::from_ref(&da), json!({})));
        c.refused(&["fromImage", "a name the output image uses"]);
    }
    // The same layer in the base and in the store (a nixpkgs-built base):
    // same name, same content, harmless.
    let store_layer = {
        let mut ar = tar::Archive::new(&plain[..]);
        let mut e = ar.entries().unwrap().next().unwrap().unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut v).unwrap();
        v
    };
    c.with_base(&image(vec![file(&store, &store_layer)], &[store.as_str()], &[sha(&store_layer)], json!({})));
    c.accepted();
}

#[test]
fn compressed_layers_must_match_their_uncompressed_digest() {
    require("gzip");
    let c = Case::new();
    let a = layer("a\n");
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&a).unwrap();
        e.finish().unwrap()
    };
    c.with_base(&image(vec![file("l/layer.tar", &gz)], &["l/layer.tar"], &[sha(&gz)], json!({})));
    c.refused(&["base.tar", "l/layer.tar", "digest of its compressed bytes"]);
    c.with_base(&image(vec![file("l/layer.tar", &gz)], &["l/layer.tar"], &[sha(&a)], json!({})));
    c.accepted();
    // A customisation layer.tar stored compressed, its checksum of the
    // compressed bytes: docker would hash what it decompresses to.
    let c = Case::new();
    let custom = c.root().join("custom");
    let tar_bytes = std::fs::read(custom.join("layer.tar")).unwrap();
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&tar_bytes).unwrap();
        e.finish().unwrap()
    };
    std::fs::write(custom.join("layer.tar"), &gz).unwrap();
    std::fs::write(custom.join("checksum"), format!("{}\n", sha(&gz))).unwrap();
    c.refused(&["customisation layer", "layer.tar is compressed"]);
}

#[test]
fn pax_numbers_are_parsed_strictly() {
    let c = Case::new();
    let a = layer("a\n");
    let da = sha(&a);
    for (key, value) in [("uid", "1_0"), ("uid", "0x10"), ("gid", "+3"), ("uid", " 3"), ("mtime", "1e3"), ("mtime", "0x10")] {
        let mut m = file("l/layer.tar", &a);
        m["pax"] = json!({ key: value });
        c.with_base(&image(vec![m], &["l/layer.tar"], std::slice::from_ref(&da), json!({})));
        c.refused(&["fromImage", "pax record", key, value]);
    }
    // Well-formed records still pass (and are kept).
    let mut m = file("l/layer.tar", &a);
    m["pax"] = json!({"uid": "12", "mtime": "1700000000.5"});
    c.with_base(&image(vec![m], &["l/layer.tar"], std::slice::from_ref(&da), json!({})));
    c.accepted();
}

#[test]
fn gnu_sparse_members_are_refused() {
    require("tar");
    require("truncate");
    let c = Case::new();
    let a = layer("a\n");
    let da = sha(&a);
    let sparse_dir = c.root().join("sp");
    std::fs::create_dir_all(&sparse_dir).unwrap();
    run(Command::new("truncate").args(["-s", "8M"]).arg(sparse_dir.join("holes")));
    std::fs::write(sparse_dir.join("data"), "x").unwrap();
    run(Command::new("sh").arg("-c").arg(format!("dd if={0}/data of={0}/holes bs=1 seek=4M conv=notrunc 2>/dev/null", sparse_dir.display())));
    // GNU tar writes the whole base, the sparse member among the others.
    let members = image(vec![file("l/layer.tar", &a)], &["l/layer.tar"], std::slice::from_ref(&da), json!({}));
    for m in members.as_array().unwrap() {
        let path = sparse_dir.join(m["name"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, hex::decode(m["hex"].as_str().unwrap()).unwrap()).unwrap();
    }
    std::fs::remove_file(sparse_dir.join("data")).unwrap();
    for version in ["0.0", "0.1", "1.0"] {
        run(Command::new("tar")
            .args(["--format=pax", "--sparse", &format!("--sparse-version={version}"), "-C"])
            .arg(&sparse_dir)
            .arg("-cf")
            .arg(c.root().join("base.tar"))
            .args(["l/layer.tar", "holes", "c.json", "manifest.json"]));
        c.with("from_image", json!("base.tar"));
        c.refused(&["fromImage", "GNU sparse", &format!("pax format {version}")]);
    }
}

#[test]
fn base_config_env_null_is_no_env() {
    let c = Case::new();
    let a = layer("a\n");
    let mut conf = c.conf_value();
    conf["config"] = json!({"Env": ["B=2"]});
    c.write_conf(&conf);
    write_tar(&c.root().join("base.tar"), &image(vec![file("l/layer.tar", &a)], &["l/layer.tar"], &[sha(&a)], json!({"Env": null})));
    conf["from_image"] = json!("base.tar");
    c.write_conf(&conf);
    let (bytes, _) = c.accepted();
    let config = config_of(&bytes);
    assert_eq!(config["config"]["Env"], json!(["B=2"]));
}

/// The image config of a docker-archive.
fn config_of(image: &[u8]) -> Value {
    let mut ar = tar::Archive::new(image);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".json") && name != "manifest.json" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            return serde_json::from_slice(&v).unwrap();
        }
    }
    panic!("no config");
}

#[test]
fn control_characters_are_escaped_in_progress_lines() {
    let c = Case::new();
    let a = layer("a\n");
    let name = "l\nlayered-image: error: forged\u{1b}[2J/layer.tar";
    c.with_base(&image(vec![file(name, &a)], &[name], &[sha(&a)], json!({})));
    let (_, stderr) = c.accepted();
    assert!(stderr.lines().all(|l| !l.starts_with("layered-image: error")), "a forged line:\n{stderr}");
    assert!(!stderr.contains('\u{1b}'), "an escape sequence reached stderr:\n{stderr}");
    assert!(stderr.contains("Adding base layer 1 from l\\nlayered-image"), "{stderr}");
}

#[test]
fn json_numbers_overflowing_a_double_keep_their_text() {
    let c = Case::new();
    let mut text = serde_json::to_string(&c.conf_value()).unwrap();
    text = text.replacen("\"config\":{}", "\"config\":{\"Big\":1e400,\"Neg\":-1E+400,\"Tiny\":1e-400}", 1);
    std::fs::write(c.conf(), &text).unwrap();
    let (bytes, _) = c.accepted();
    let mut ar = tar::Archive::new(&bytes[..]);
    let raw = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find_map(|mut e| {
            let name = e.path().unwrap().to_string_lossy().into_owned();
            (name.ends_with(".json") && name != "manifest.json").then(|| {
                let mut v = String::new();
                std::io::Read::read_to_string(&mut e, &mut v).unwrap();
                v
            })
        })
        .unwrap();
    assert!(!raw.contains("Infinity") && !raw.contains("NaN"), "{raw}");
    // The exact number, in serde_json's spelling of its exponent.
    assert!(raw.contains("\"Big\": 1e+400") && raw.contains("\"Neg\": -1e+400") && raw.contains("\"Tiny\": 0.0"), "{raw}");
}

/// Runs `sh -c SCRIPT` (with $LI the binary) under the hostile timeout.
fn sh(script: &str) -> Outcome {
    li_with::<[&str; 0], &str>([], |cmd| {
        // Replace the binary by a shell that runs it as told.
        let args: Vec<OsString> = cmd.get_args().map(|a| a.to_os_string()).collect();
        let mut new = Command::new("timeout");
        let n = args.len();
        new.args(&args[..n - 1]).arg("sh").arg("-c").arg(script).arg("sh");
        new.env("LI", bin());
        *cmd = new;
    })
}

#[test]
fn output_paths_are_written_like_a_redirection() {
    require("mkfifo");
    require("python3");
    let c = Case::new();
    let root = c.root();
    let conf = c.conf();
    let q = |p: &Path| format!("'{}'", p.display());
    // A FIFO is written into; it stays a FIFO.
    let fifo = root.join("fifo");
    run(Command::new("mkfifo").arg(&fifo));
    let got = root.join("from-fifo.tar");
    let out = sh(&format!("cat {} > {} & \"$LI\" stream {} -o {}; s=$?; wait; exit $s", q(&fifo), q(&got), q(&conf), q(&fifo)));
    out.succeeds();
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    verify_image(got.to_str().unwrap());
    // /dev/null and /dev/stdout stay what they are.
    for cmd in
        [format!("\"$LI\" stream {} -o /dev/null", q(&conf)), format!("\"$LI\" conf --help >/dev/null; \"$LI\" digests {} -o /dev/null", q(&conf))]
    {
        sh(&cmd).succeeds();
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }
    let to_stdout = root.join("via-stdout.tar");
    sh(&format!("\"$LI\" stream {} -o /dev/stdout > {}", q(&conf), q(&to_stdout))).succeeds();
    assert!(std::fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink());
    verify_image(to_stdout.to_str().unwrap());
    let piped = sh(&format!("\"$LI\" stream {} -o /dev/stdout | cat > {}", q(&conf), q(&to_stdout)));
    piped.succeeds();
    verify_image(to_stdout.to_str().unwrap());
    // A symlink is written through: the link stays, its target gets the image.
    let target = root.join("target.tar");
    std::fs::write(&target, "old").unwrap();
    let lnk = root.join("link.tar");
    std::os::unix::fs::symlink("target.tar", &lnk).unwrap();
    li(["stream".into(), conf.clone().into_os_string(), "-o".into(), lnk.clone().into_os_string()]).succeeds();
    assert!(std::fs::symlink_metadata(&lnk).unwrap().file_type().is_symlink());
    verify_image(target.to_str().unwrap());
    // A link to nothing, a socket, a directory: refused, left as they are.
    let dangling = root.join("dangling.tar");
    std::os::unix::fs::symlink("nowhere/x.tar", &dangling).unwrap();
    let sock = root.join("sock");
    run(Command::new("python3").arg("-c").arg("import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])").arg(&sock));
    let dir = root.join("adir");
    std::fs::create_dir(&dir).unwrap();
    for (path, why) in [(&dangling, "a symlink to a missing file"), (&sock, "is a socket"), (&dir, "is a directory")] {
        for cmd in ["stream", "digests"] {
            let out = li([cmd.into(), conf.clone().into_os_string(), "-o".into(), path.clone().into_os_string()]);
            out.fails(&[path.to_str().unwrap(), why]);
        }
    }
    assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    assert!(std::fs::symlink_metadata(&sock).unwrap().file_type().is_socket());
    // A new file gets 0666 & ~umask, as `>` gives it; an existing one keeps its mode.
    let fresh = root.join("fresh.tar");
    sh(&format!("umask 027; \"$LI\" stream {} -o {}", q(&conf), q(&fresh))).succeeds();
    assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o640);
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o600)).unwrap();
    li(["stream".into(), conf.clone().into_os_string(), "-o".into(), fresh.clone().into_os_string()]).succeeds();
    assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o600);
    // copy's destinations go the same way.
    let out = li(["copy".into(), conf.clone().into_os_string(), format!("docker-archive:{}", sock.display()).into()]);
    out.fails(&["is a socket"]);
    let out = li(["copy".into(), conf.clone().into_os_string(), format!("oci-archive:{}", dangling.display()).into()]);
    out.fails(&["a symlink to a missing file"]);
}

#[test]
fn customisation_layer_outputs_appear_together_or_not_at_all() {
    let c = Case::new();
    let root = c.root();
    let src = root.join("custom-src");
    for blocker in ["layer.tar", "checksum"] {
        let outdir = root.join(format!("out-{blocker}"));
        std::fs::create_dir_all(outdir.join(blocker)).unwrap();
        let out = li(["customisation-layer".into(), src.clone().into_os_string(), outdir.clone().into_os_string()]);
        out.fails(&[blocker, "is a directory"]);
        let left: Vec<String> = std::fs::read_dir(&outdir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(left, vec![blocker.to_string()], "{blocker}: left {left:?}");
    }
    // A FIFO as layer.tar: refused without blocking (both must be files).
    let outdir = root.join("out-fifo");
    std::fs::create_dir_all(&outdir).unwrap();
    run(Command::new("mkfifo").arg(outdir.join("layer.tar")));
    li(["customisation-layer".into(), src.clone().into_os_string(), outdir.clone().into_os_string()]).fails(&["layer.tar", "FIFO"]);
    assert!(!outdir.join("checksum").exists());
    // Both appear, with a redirection's mode.
    let outdir = root.join("out-ok");
    sh(&format!("umask 077; \"$LI\" customisation-layer '{}' '{}'", src.display(), outdir.display())).succeeds();
    for f in ["layer.tar", "checksum"] {
        assert_eq!(std::fs::metadata(outdir.join(f)).unwrap().permissions().mode() & 0o777, 0o600, "{f}");
    }
}

#[test]
fn inputs_are_regular_files_and_never_block() {
    require("mkfifo");
    let c = Case::new();
    let root = c.root();
    let fifo = root.join("fifo.json");
    run(Command::new("mkfifo").arg(&fifo));
    let graph = write(root, "graph.json", r#"[{"path": "/nix/store/aaaa-a", "narSize": 1, "references": []}]"#);
    let base_json = write(root, "base.json", r#"{"architecture": "amd64", "config": {}}"#);
    let conf_args = |graph: &Path, base: &Path| -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["conf".into(), "--graph".into(), graph.into(), "--base-json".into(), base.into()];
        v.extend(
            ["--customisation-layer", "/nix/store/cccc-custom", "--image-name", "x", "--image-tag", "y", "--store-dir", "/nix/store"]
                .map(OsString::from),
        );
        v
    };
    li(conf_args(&graph, &base_json)).succeeds();
    for args in [
        vec!["stream".into(), fifo.clone().into_os_string()],
        vec!["digests".into(), fifo.clone().into_os_string()],
        vec!["popularity".into(), fifo.clone().into_os_string()],
        vec!["auto-layer".into(), graph.clone().into_os_string(), fifo.clone().into_os_string()],
        vec!["pipeline".into(), fifo.clone().into_os_string()],
        conf_args(&fifo, &base_json),
        conf_args(&graph, &fifo),
    ] {
        li(args).fails(&["fifo.json", "not a regular file"]);
    }
    // A pipeline file named inside a pipeline JSON: relative to that JSON,
    // and a FIFO there is refused too.
    let sub = root.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    write(&sub, "steps.json", r#"[["popularity_contest"]]"#);
    let graph_v: Value = serde_json::from_str(&std::fs::read_to_string(&graph).unwrap()).unwrap();
    let p = write(&sub, "p.json", json!({"graph": graph_v, "pipeline": "steps.json"}).to_string());
    li(["pipeline".into(), p.clone().into_os_string()]).succeeds();
    std::os::unix::fs::symlink(&fifo, sub.join("fifo-steps.json")).unwrap();
    let p = write(&sub, "p2.json", json!({"graph": graph_v, "pipeline": "fifo-steps.json"}).to_string());
    li(["pipeline".into(), p.into_os_string()]).fails(&["fifo-steps.json", "not a regular file"]);
    // auto-layer's ignore file may be /dev/null (nixpkgs passes it).
    li(["auto-layer".into(), graph.into_os_string(), "/dev/null".into()]).succeeds();
    // A customisation checksum that is a FIFO.
    let custom = root.join("custom");
    std::fs::remove_file(custom.join("checksum")).unwrap();
    run(Command::new("mkfifo").arg(custom.join("checksum")));
    c.refused(&["checksum", "not a regular file"]);
}

#[test]
fn a_failing_stderr_never_panics() {
    let c = Case::new();
    let conf = c.conf();
    let image = c.root().join("image.tar");
    // Progress to /dev/full: the image is still made, exit 0.
    let out = sh(&format!("\"$LI\" stream '{}' -o '{}' 2>/dev/full", conf.display(), image.display()));
    out.succeeds();
    verify_image(image.to_str().unwrap());
    // An error to /dev/full: exit 1, no panic (exit 101).
    let out = sh(&format!("\"$LI\" stream '{}/missing.json' 2>/dev/full; echo \"status $?\" >&2", c.root().display()));
    assert!(out.stderr.contains("status 1"), "{}", out.stderr);
    // stderr a pipe whose reader is gone (EPIPE): same.
    std::fs::remove_file(&image).unwrap();
    let status = c.root().join("status");
    let out =
        sh(&format!("{{ sleep 0.5; \"$LI\" stream '{}' -o '{}'; echo $? > '{}'; }} 2>&1 | true", conf.display(), image.display(), status.display()));
    out.succeeds();
    assert_eq!(std::fs::read_to_string(&status).unwrap().trim(), "0");
    verify_image(image.to_str().unwrap());
}

#[test]
fn many_layers_warn_and_stay_cheap() {
    let c = Case::new();
    let mut conf = c.conf_value();
    conf["store_layers"] = json!(vec![vec!["nix/store/aaaa-pkg"]; 124]);
    c.write_conf(&conf);
    let (_, stderr) = c.accepted();
    assert!(!stderr.contains("warning"), "125 layers need no warning:\n{stderr}");
    conf["store_layers"] = json!(vec![vec!["nix/store/aaaa-pkg"]; 125]);
    c.write_conf(&conf);
    let (_, stderr) = c.accepted();
    assert!(stderr.contains("layered-image: warning: the image has 126 layers"), "{stderr}");
    // 32,000 empty layers: no thread or chunk buffers per layer.
    std::fs::write(c.root().join("nix/store/empty"), "").unwrap();
    conf["store_layers"] =
        json!(vec![Vec::<String>::new(); 16000].into_iter().chain(vec![vec!["nix/store/empty".to_string()]; 16000]).collect::<Vec<_>>());
    c.write_conf(&conf);
    let out = li(["stream".into(), c.conf().into_os_string(), "-o".into(), c.root().join("many.tar").into_os_string()]);
    out.succeeds().rss_below_mib(64);
    assert!(out.stderr.contains("32001 layers"));
    verify_image(c.root().join("many.tar").to_str().unwrap());
    // conf warns too.
    let graph: Vec<Value> = (0..200).map(|i| json!({"path": format!("/nix/store/{i:04}-p"), "narSize": 1, "references": []})).collect();
    let g = write(c.root(), "graph.json", Value::Array(graph).to_string());
    let base_json = write(c.root(), "base.json", r#"{"architecture": "amd64", "config": {}}"#);
    let mut args: Vec<OsString> = vec!["conf".into(), "--graph".into(), g.into(), "--base-json".into(), base_json.into()];
    args.extend(
        [
            "--customisation-layer",
            "/nix/store/cccc-custom",
            "--image-name",
            "x",
            "--image-tag",
            "y",
            "--store-dir",
            "/nix/store",
            "--max-layers",
            "200",
        ]
        .map(OsString::from),
    );
    let out = li(args);
    out.succeeds();
    assert!(out.stderr.contains("layered-image: warning: the image has 200 layers"), "{}", out.stderr);
}

#[test]
fn one_directory_of_300000_entries_in_bounded_memory() {
    require("python3");
    let c = Case::new();
    let dir = c.root().join("nix/store/bbbb-many");
    run(Command::new("python3")
        .arg("-c")
        .arg("import os, sys\nd = sys.argv[1]\nos.makedirs(d)\nfor i in range(300000): open(os.path.join(d, 'entry-with-a-longish-name-%06d' % i), 'w').close()")
        .arg(&dir));
    c.with("store_layers", json!([["nix/store/bbbb-many"]]));
    let image = c.root().join("many.tar");
    let out = li(["stream".into(), c.conf().into_os_string(), "-o".into(), image.clone().into_os_string()]);
    out.succeeds().rss_below_mib(64);
    verify_image(image.to_str().unwrap());
}

/// 10,000 diamonds in a chain: path counts of 10,000 bits.
#[test]
fn popularity_on_a_chain_of_diamonds_is_exact_and_bounded() {
    use num_bigint::BigUint;
    const K: usize = 10_000;
    let name = |k: usize, t: char| format!("/nix/store/{k:05}{t}-p{k}{t}");
    let mut nodes = Vec::new();
    for k in 0..K {
        nodes.push(json!({"path": name(k, 'a'), "narSize": 1, "references": [name(k, 'b'), name(k, 'c')]}));
        for t in ['b', 'c'] {
            nodes.push(json!({"path": name(k, t), "narSize": 1, "references": [name(k + 1, 'a')]}));
        }
    }
    nodes.push(json!({"path": name(K, 'a'), "narSize": 1, "references": []}));
    let dir = tempfile::tempdir().unwrap();
    let g = write(dir.path(), "graph.json", Value::Array(nodes).to_string());
    let out = li(["popularity".into(), g.clone().into_os_string()]);
    out.succeeds().rss_below_mib(100);
    // Deepest first; b before c on equal scores (by name).
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    let mut expected = vec![name(K, 'a')];
    for k in (0..K).rev() {
        expected.extend([name(k, 'b'), name(k, 'c'), name(k, 'a')]);
    }
    assert_eq!(lines, expected);
    // The exact scores: S(top_k) = 4·2^k - 3, S(b_k) = S(c_k) = 5·2^k - 3.
    let raw = layered_image::plan::graph::read_raw(&g, None).unwrap();
    let graph = layered_image::plan::graph::Graph::build(&raw, "graph.json").unwrap();
    let scores = layered_image::plan::layering::popularity::scores(&graph.children);
    let two = |k: usize| BigUint::from(1u32) << k;
    for k in [0, 1, 63, 64, 65, 4999, K - 1, K] {
        let top = graph.index[&name(k, 'a')] as usize;
        assert_eq!(scores.to_biguint(top), two(k) * 4u32 - 3u32, "top {k}");
        if k < K {
            let b = graph.index[&name(k, 'b')] as usize;
            assert_eq!(scores.to_biguint(b), two(k) * 5u32 - 3u32, "b {k}");
        }
    }
}

/// Where nixpkgs' script accepts a base (links between layers, pax
/// records, a gzip layer with its uncompressed diff_id), the image is
/// byte-identical to its output.
#[test]
fn accepted_bases_stay_identical_to_nixpkgs() {
    let c = Case::new();
    let a = layer("a\n");
    let da = sha(&a);
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&layer("g\n")).unwrap();
        e.finish().unwrap()
    };
    let mut paxed = file("p/layer.tar", &a);
    paxed["pax"] = json!({"uid": "12", "mtime": "1700000000.5", "comment": "kept"});
    c.with_base(&image(
        vec![
            file("l/layer.tar", &a),
            link("m/layer.tar", "sym", "../l/layer.tar"),
            link("n/layer.tar", "hard", "l/layer.tar"),
            paxed,
            file("g/layer.tar", &gz),
        ],
        &["l/layer.tar", "m/layer.tar", "n/layer.tar", "p/layer.tar", "g/layer.tar"],
        &[da.clone(), da.clone(), da.clone(), da.clone(), sha(&layer("g\n"))],
        json!({"Env": ["A=1"]}),
    ));
    c.accepted();
    let out = run(Command::new(shared().join("parity/compare")).arg("conf.json").arg("--").arg(bin()).arg("stream").current_dir(c.root()));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("identical"), "{}", String::from_utf8_lossy(&out.stdout));
}

/// Signals while the hash-ahead workers take and finish thousands of tiny
/// jobs: every job taken reports, so the writer never waits forever.
#[test]
fn signals_among_many_small_layers_never_hang() {
    let c = Case::new();
    let mut conf = c.conf_value();
    conf["store_layers"] = json!(vec![vec!["nix/store/aaaa-pkg/bin/x"]; 20000]);
    c.write_conf(&conf);
    let image = c.root().join("image.tar");
    for (i, delay) in ["0.05", "0.2", "0.4", "0.7", "1.0"].iter().enumerate() {
        let sig = ["TERM", "INT", "HUP"][i % 3];
        let out = sh(&format!(
            "\"$LI\" stream '{}' -o '{}' & pid=$!; sleep {delay}; kill -{sig} $pid; wait $pid; echo \"status $?\" >&2",
            c.conf().display(),
            image.display()
        ));
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        let done = out.stderr.contains("status 0");
        assert!(done || (out.stderr.contains("status 1") && out.stderr.contains("interrupted")), "SIG{sig} after {delay}s:\n{}", out.stderr);
        if done {
            verify_image(image.to_str().unwrap());
            std::fs::remove_file(&image).unwrap();
        } else {
            assert!(!image.exists());
        }
    }
}

/// A store of one path holding `size` bytes of zeros, and its conf.
fn zeros_store(dir: &Path, size: u64) -> std::path::PathBuf {
    let path = "nix/store/2zkyrwq6grs8m3y9mpdf2nqbcds1v0xs-zeros";
    std::fs::create_dir_all(dir.join(path)).unwrap();
    std::fs::File::create(dir.join(path).join("z")).unwrap().set_len(size).unwrap();
    std::fs::create_dir_all(dir.join("custom")).unwrap();
    custom_layer(&dir.join("custom"), &dir.join("custom-out"));
    let conf = json!({
        "architecture": "amd64", "config": {}, "os": "linux", "store_dir": "nix/store", "from_image": null,
        "store_layers": [[path]], "customisation_layer": "custom-out", "repo_tag": "zeros:latest",
        "created": "1970-01-01T00:00:01+00:00", "mtime": "1970-01-01T00:00:01+00:00",
        "uid": 0, "gid": 0, "uname": "root", "gname": "root",
    });
    write(dir, "conf.json", serde_json::to_vec(&conf).unwrap())
}

/// Replaces layer 0 of the layout's (only) image by `blob`, as a consistent
/// forger would: manifest and index.json renamed after it.
fn replace_layer0(layout: &Path, blob: &[u8]) {
    let read = |p: &Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let mut index = read(&layout.join("index.json"));
    let mhex = index["manifests"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let mut manifest = read(&layout.join("blobs/sha256").join(&mhex));
    let hex = sha(blob);
    std::fs::write(layout.join("blobs/sha256").join(&hex), blob).unwrap();
    manifest["layers"][0]["digest"] = format!("sha256:{hex}").into();
    manifest["layers"][0]["size"] = blob.len().into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    std::fs::write(layout.join("blobs/sha256").join(sha(&bytes)), &bytes).unwrap();
    index["manifests"][0]["digest"] = format!("sha256:{}", sha(&bytes)).into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Issue 22: a valid layer of 256 MiB of zeros (8 KiB of zstd, 32768x) is
/// no bomb and verifies; what is one still fails, quickly and in little
/// memory: zeros past the tar's end, a bzip2 stream beyond zstd's ratio
/// ceiling, and data that is no tar beyond 1100x.
#[test]
fn compressible_layers_verify_and_bombs_do_not() {
    require("skopeo");
    require("zstd");
    require("bzip2");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = zeros_store(d, 256 << 20);
    let image = d.join("image.tar");
    li(["stream".into(), conf.into_os_string(), "-o".into(), image.clone().into_os_string()]).succeeds();
    let layout = d.join("zl");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-compress-format", "zstd"])
        .arg(format!("docker-archive:{}", image.display()))
        .arg(format!("oci:{}:z", layout.display())));
    let target = format!("oci:{}:z", layout.display());
    let out = li(["verify", &target]);
    out.succeeds().rss_below_mib(64);
    // The same layer at zstd -19: 8 KiB.
    let read = |p: &Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let index = read(&layout.join("index.json"));
    let manifest = read(&layout.join("blobs/sha256").join(index["manifests"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap()));
    let l0 = layout.join("blobs/sha256").join(manifest["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap());
    let tar = run(Command::new("zstd").args(["-d", "-q", "-c"]).arg(&l0)).stdout;
    assert_eq!(tar.len() as u64 / (1 << 20), 256);
    let small = d.join("small");
    run(Command::new("cp").arg("-a").arg(&layout).arg(&small));
    let z19 = run(Command::new("sh").arg("-c").arg(format!("zstd -d -q -c {} | zstd -19 -q -c", l0.display()))).stdout;
    assert!(z19.len() < 16 << 10, "{} bytes", z19.len());
    replace_layer0(&small, &z19);
    let out = li(["verify".to_string(), format!("oci:{}", small.display())]);
    out.succeeds().rss_below_mib(64);
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(line.contains("256.0 MiB"), "{line}");
    verify_image(&format!("oci:{}", small.display()));
    // skopeo reads it back (decompresses it to recompress it as gzip;
    // umoci 0.4 has no zstd) and what it writes holds the same layer.
    let back = d.join("back");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-compress", "--dest-compress-format", "gzip"])
        .arg(format!("oci:{}:z", small.display()))
        .arg(format!("oci:{}:z", back.display())));
    let out = li(["verify".to_string(), format!("oci:{}:z", back.display())]);
    let back_line = String::from_utf8_lossy(&out.succeeds().stdout).into_owned();
    assert_eq!(back_line.rsplit_once(": ").unwrap().1, line.rsplit_once(": ").unwrap().1);
    std::fs::remove_dir_all(&back).unwrap();
    // A whole docker-archive at zstd -19 is spooled and verified too.
    let zst = d.join("image.tar.zst");
    run(Command::new("zstd").args(["-19", "-q", "-o"]).arg(&zst).arg(&image));
    li(["verify".into(), zst.clone().into_os_string()]).succeeds().rss_below_mib(64);
    std::fs::remove_file(&image).unwrap();

    // 2 GiB of zeros: an empty tar, then zeros far past its end.
    let bomb = d.join("bomb");
    run(Command::new("cp").arg("-a").arg(&layout).arg(&bomb));
    let zeros = run(Command::new("sh").arg("-c").arg("head -c 2147483648 /dev/zero | zstd -3 -q -c")).stdout;
    replace_layer0(&bomb, &zeros);
    let t0 = std::time::Instant::now();
    let out = li(["verify".to_string(), format!("oci:{}", bomb.display())]);
    out.fails(&["layer 0 of manifest", "past the end of its tar archive (at byte 0)", "decompression bomb"]);
    out.rss_below_mib(64);
    assert!(t0.elapsed().as_secs() < 10, "{:?}", t0.elapsed());

    // Not a tar: held to 1100x.
    let junk = run(Command::new("sh").arg("-c").arg("head -c 1073741824 /dev/zero | tr '\\0' a | zstd -3 -q -c")).stdout;
    replace_layer0(&bomb, &junk);
    let out = li(["verify".to_string(), format!("oci:{}", bomb.display())]);
    out.fails(&["layer 0 of manifest", "is not a tar archive (byte 0 is no tar header)", "1100 times", "decompression bomb"]);
    out.rss_below_mib(64);

    // bzip2 passes zstd's ceiling: a tar of 256 MiB of zeros in 1-2 KiB,
    // as a docker-archive layer (docker load reads bzip2).
    let script = r#"
import bz2, io, json, sys, tarfile, hashlib
out = sys.argv[1]
inner = tarfile.TarInfo("z"); inner.size = 256 << 20
head = inner.tobuf(format=tarfile.USTAR_FORMAT)
comp = bz2.BZ2Compressor(1); parts = [comp.compress(head)]
chunk = bytes(1 << 20)
for _ in range(256): parts.append(comp.compress(chunk))
parts.append(comp.compress(bytes(1024))); parts.append(comp.flush())
layer = b"".join(parts)
cfg = json.dumps({"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
cname = hashlib.sha256(cfg).hexdigest() + ".json"
man = json.dumps([{"Config": cname, "RepoTags": ["b:b"], "Layers": ["l/layer.tar"]}]).encode()
with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as t:
    for name, data in [("l/layer.tar", layer), (cname, cfg), ("manifest.json", man)]:
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
print(len(layer))
"#;
    let bz = d.join("bz.tar");
    let size = run(Command::new("python3").arg("-c").arg(script).arg(&bz)).stdout;
    let size: u64 = String::from_utf8_lossy(&size).trim().parse().unwrap();
    assert!(size < 4096, "{size}");
    let out = li(["verify".into(), bz.clone().into_os_string()]);
    out.fails(&["layer 0 (l/layer.tar)", "over 32768 times its compressed size", "decompression bomb"]);
    out.rss_below_mib(64);
}
