//! Hostile input for `stream` beyond tests/stream_errors.rs: truncated and
//! odd JSON, huge numbers, control characters and NULs in paths, special
//! files, permissions, symlink loops, and hostile base images (members
//! named `../x` or absolute, missing members, lying diff_ids, bombs).
//!
//! Semantics decided here where nixpkgs has none:
//! - a store path listed twice (in one layer or two) is archived each time,
//!   as nixpkgs' script does; the image is valid, only bigger;
//! - symlinks (a store path that is one, or one inside) are archived as
//!   links and never followed, so nothing outside the store leaks in;
//! - FIFOs and device nodes in a store path are archived as such, never
//!   opened; sockets are refused (tar has no type for them);
//! - a fromImage must be a regular file (it is read out of order), and the
//!   names its manifest uses must be plain relative member names: an
//!   absolute name or one with a `..` component is refused before anything
//!   is written, since `docker load` would refuse (or worse, honour) it.

use crate::harness as hostile_support;
use hostile_support::*;
use serde_json::{Value, json};
use sha2::Digest;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Command;

impl Case {
    fn fails(&self, needles: &[&str]) -> String {
        self.stream_fails(needles)
    }
    /// Streams and returns the image's bytes.
    fn image(&self) -> Vec<u8> {
        let out = li(["stream".into(), self.conf().into_os_string()]);
        out.succeeds();
        let image = self.root().join("streamed-for-verify.tar");
        std::fs::write(&image, &out.stdout).unwrap();
        verify_image(image.to_str().unwrap());
        std::fs::remove_file(&image).unwrap();
        out.stdout
    }
}

/// (name, type, mode, size, link) of every entry in the store layers of an
/// image, read with the tar crate.
fn layer_entries(image: &[u8]) -> Vec<(String, tar::EntryType, u32, u64, String)> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(image);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if !name.ends_with("/layer.tar") {
            continue;
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let mut inner = tar::Archive::new(&data[..]);
        for ie in inner.entries().unwrap() {
            let ie = ie.unwrap();
            let h = ie.header();
            out.push((
                ie.path().unwrap().to_string_lossy().trim_start_matches('/').trim_end_matches('/').to_string(),
                h.entry_type(),
                h.mode().unwrap(),
                h.size().unwrap(),
                ie.link_name().unwrap().map(|l| l.to_string_lossy().into_owned()).unwrap_or_default(),
            ));
        }
    }
    out
}

#[test]
fn truncated_and_invalid_conf_json() {
    let c = Case::new();
    let full = serde_json::to_string(&c.conf_value()).unwrap();
    for cut in [1, full.len() / 2, full.len() - 1] {
        std::fs::write(c.conf(), &full[..cut]).unwrap();
        c.fails(&["conf.json", "is not valid JSON"]);
    }
    std::fs::write(c.conf(), b"{\"architecture\": \"\xff\"}").unwrap();
    c.fails(&["conf.json", "is not valid JSON"]);
    std::fs::write(c.conf(), "").unwrap();
    c.fails(&["conf.json", "is not valid JSON"]);
    std::fs::write(c.conf(), "[".repeat(100_000)).unwrap();
    c.fails(&["conf.json", "is not valid JSON", "recursion limit"]);
    std::fs::write(c.conf(), "null").unwrap();
    c.fails(&["conf.json", "must be a JSON object"]);
}

#[test]
fn wrong_types_everywhere() {
    let c = Case::new();
    for (key, v, needle) in [
        ("store_dir", json!(7), "key \"store_dir\" must be a string"),
        ("repo_tag", json!(["a"]), "key \"repo_tag\" must be a string"),
        ("customisation_layer", json!(null), "key \"customisation_layer\" must be a string"),
        ("uname", json!(0), "key \"uname\" must be a string"),
        ("gname", json!({}), "key \"gname\" must be a string"),
        ("gid", json!([0]), "key \"gid\" must be a number or a numeric string"),
        ("gid", json!(true), "key \"gid\" must be a number or a numeric string"),
        ("mtime", json!(null), "key \"mtime\" must be a string"),
        ("store_layers", json!({"0": []}), "key \"store_layers\" must be a list"),
        ("store_layers", json!(["nix/store/aaaa-pkg"]), "key \"store_layers[0]\" must be a list"),
        ("store_layers", json!([[], [null]]), "key \"store_layers[1][0]\" must be a string"),
    ] {
        c.with(key, v).fails(&["conf.json", needle]);
    }
    for key in ["uname", "gname", "mtime"] {
        // mtime is optional (the seed schema), the names are not.
        let mut v = c.conf_value();
        v.as_object_mut().unwrap().remove(key);
        c.write_conf(&v);
        if key == "mtime" {
            c.image();
        } else {
            c.fails(&["conf.json", &format!("missing key \"{key}\"")]);
        }
    }
}

#[test]
fn huge_numbers() {
    let c = Case::new();
    for v in [json!(4294967296u64), json!(18446744073709551616.0), json!("99999999999999999999999999"), json!(-0.5), json!("0x10"), json!("")] {
        c.with("uid", v.clone()).fails(&["conf.json", "key \"uid\"", "not a valid id"]);
    }
    // With arbitrary precision the literal is kept verbatim: 1e400 is no
    // infinity and no overflow, just not an id.
    std::fs::write(c.conf(), serde_json::to_string(&c.conf_value()).unwrap().replace("\"gid\":0", "\"gid\":1e400")).unwrap();
    c.fails(&["conf.json", "key \"gid\"", "1e+400"]);
    // The largest id is valid (GNU tar needs base-256 for it).
    c.with("uid", json!(4294967295u64)).image();
    // Times far out of range are errors, not overflows.
    c.with("created", json!("99999-01-01T00:00:00Z")).fails(&["conf.json", "key \"created\""]);
    c.with("mtime", json!("9999-12-31T23:59:59+23:59")).image();
}

/// One line per error, whatever bytes the culprit's name holds: control
/// characters are escaped, so a name cannot forge or split lines.
#[test]
fn control_characters_and_nul_in_paths() {
    let c = Case::new();
    let line = c.with("store_layers", json!([["nix/store/evil\nlayered-image: error: forged"]])).fails(&["does not exist"]);
    assert!(line.contains("evil\\nlayered-image"), "{line}");
    c.with("store_layers", json!([["nix/store/a\u{0}b"]])).fails(&["nix/store/a"]);
    c.with("customisation_layer", json!("cus\u{1b}[2Jtom")).fails(&["\\u{1b}"]);
    c.with("from_image", json!("base\u{0}.tar")).fails(&["fromImage"]);
}

#[test]
fn store_paths_escaping_the_store() {
    let c = Case::new();
    let root = c.root().display().to_string();
    for (p, needle) in [
        (format!("{root}/nix/store/aaaa-pkg"), "is not inside the store directory"),
        ("nix/store/aaaa-pkg/../../../etc".into(), "contains '..'"),
        ("nix/store/..".into(), "contains '..'"),
        ("nix/store/.".into(), "is not inside the store directory"),
        ("nix/storex/aaaa-pkg".into(), "is not inside the store directory"),
        ("".into(), "is not inside the store directory"),
    ] {
        c.with("store_layers", json!([[p]])).fails(&["conf.json", needle]);
    }
    let mut v = c.conf_value();
    v["store_dir"] = json!("/");
    c.write_conf(&v);
    c.fails(&["conf.json", "is not inside the store directory"]);
}

/// Symlinks that point out of the store are archived as links and never
/// followed: /etc/passwd's content never reaches the image.
#[test]
fn symlinks_out_of_the_store_are_not_followed() {
    let c = Case::new();
    let store = c.root().join("nix/store");
    std::os::unix::fs::symlink("/etc", store.join("bbbb-etc-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", store.join("aaaa-pkg/passwd")).unwrap();
    std::os::unix::fs::symlink("/", store.join("aaaa-pkg/root")).unwrap();
    std::os::unix::fs::symlink("loop", store.join("aaaa-pkg/loop")).unwrap();
    let mut v = c.conf_value();
    v["store_layers"] = json!([["nix/store/aaaa-pkg"], ["nix/store/bbbb-etc-link"]]);
    c.write_conf(&v);
    let image = c.image();
    let entries = layer_entries(&image);
    let get = |n: &str| entries.iter().find(|e| e.0 == n).unwrap_or_else(|| panic!("{n} missing: {entries:?}")).clone();
    assert_eq!(get("nix/store/bbbb-etc-link").1, tar::EntryType::Symlink);
    assert_eq!(get("nix/store/aaaa-pkg/passwd").4, "/etc/passwd");
    assert_eq!(get("nix/store/aaaa-pkg/root").1, tar::EntryType::Symlink);
    assert_eq!(get("nix/store/aaaa-pkg/loop").4, "loop");
    assert!(entries.iter().all(|e| !e.0.starts_with("etc") && !e.0.contains("root/")), "{entries:?}");
    let passwd = std::fs::read("/etc/passwd").unwrap();
    assert!(!image.windows(passwd.len().min(64)).any(|w| w == &passwd[..passwd.len().min(64)]), "passwd content leaked");
}

#[test]
fn duplicate_store_paths_are_archived_each_time() {
    let c = Case::new();
    c.with("store_layers", json!([["nix/store/aaaa-pkg", "nix//store/aaaa-pkg/"], ["nix/store/aaaa-pkg"]]));
    let entries = layer_entries(&c.image());
    let n = entries.iter().filter(|e| e.0 == "nix/store/aaaa-pkg/bin/x").count();
    assert_eq!(n, 3, "{entries:?}");
}

#[test]
fn special_files() {
    let c = Case::new();
    let pkg = c.root().join("nix/store/aaaa-pkg");
    run(Command::new("mkfifo").arg(pkg.join("fifo")));
    run(Command::new("mknod").arg(pkg.join("null")).args(["c", "1", "3"]));
    run(Command::new("mkfifo").arg(c.root().join("nix/store/cccc-fifo")));
    c.with("store_layers", json!([["nix/store/aaaa-pkg", "nix/store/cccc-fifo"]]));
    // Never opened (a FIFO would block): archived by type.
    let entries = layer_entries(&c.image());
    let kind = |n: &str| entries.iter().find(|e| e.0 == n).map(|e| e.1).unwrap_or_else(|| panic!("{n}: {entries:?}"));
    assert_eq!(kind("nix/store/aaaa-pkg/fifo"), tar::EntryType::Fifo);
    assert_eq!(kind("nix/store/aaaa-pkg/null"), tar::EntryType::Char);
    assert_eq!(kind("nix/store/cccc-fifo"), tar::EntryType::Fifo);

    // The customisation layer's files must be regular: a FIFO would hang.
    let c = Case::new();
    let custom = c.root().join("custom");
    std::fs::remove_file(custom.join("checksum")).unwrap();
    run(Command::new("mkfifo").arg(custom.join("checksum")));
    c.fails(&["checksum", "not a regular file"]);
    // So must a fromImage (it is read out of order).
    let c = Case::new();
    run(Command::new("mkfifo").arg(c.root().join("base.fifo")));
    c.with("from_image", json!("base.fifo")).fails(&["fromImage", "base.fifo", "not a regular file"]);
    c.with("from_image", json!("/dev/null")).fails(&["fromImage", "/dev/null", "not a regular file"]);
    c.with("from_image", json!(".")).fails(&["fromImage", "not a regular file"]);
}

#[test]
fn permission_denied_is_named() {
    let c = Case::new();
    let root = c.root();
    open_up(root);
    let run_nobody = || li_nobody(&[OsString::from("stream"), c.conf().into(), "-o".into(), root.join("img.tar").into()]);
    // An unreadable directory inside a store path.
    let locked = root.join("nix/store/aaaa-pkg/locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("f"), "f").unwrap();
    run(Command::new("chmod").arg("0700").arg(&locked));
    run_nobody().fails(&["cannot read", "aaaa-pkg/locked", "Permission denied"]);
    run(Command::new("chmod").arg("0755").arg(&locked));
    run_nobody().succeeds();
    verify_image(root.join("img.tar").to_str().unwrap());
    std::fs::remove_file(root.join("img.tar")).unwrap();
    // The conf itself.
    run(Command::new("chmod").arg("0600").arg(c.conf()));
    run_nobody().fails(&["cannot read", "conf.json", "Permission denied"]);
    run(Command::new("chmod").arg("0644").arg(c.conf()));
    // The checksum, layer.tar, the fromImage.
    for f in ["custom/checksum", "custom/layer.tar"] {
        run(Command::new("chmod").arg("0600").arg(root.join(f)));
        run_nobody().fails(&[f, "Permission denied"]);
        run(Command::new("chmod").arg("0644").arg(root.join(f)));
    }
    let base = root.join("base.tar");
    li(["stream".into(), c.conf().into_os_string(), "-o".into(), base.clone().into()]).succeeds();
    verify_image(base.to_str().unwrap());
    run(Command::new("chmod").arg("0600").arg(&base));
    c.with("from_image", json!("base.tar"));
    run_nobody().fails(&["fromImage", "base.tar", "Permission denied"]);
    // An output directory nobody cannot write to.
    run(Command::new("chmod").arg("0644").arg(&base));
    let ro = root.join("ro");
    std::fs::create_dir(&ro).unwrap();
    run(Command::new("chmod").arg("0755").arg(&ro));
    li_nobody(&[OsString::from("stream"), c.conf().into(), "-o".into(), ro.join("img.tar").into()]).fails(&[
        "cannot create a temporary file in",
        "ro",
        "Permission denied",
    ]);
    assert!(!root.join("img.tar").exists());
}

#[test]
fn symlink_loops() {
    let c = Case::new();
    let root = c.root();
    std::os::unix::fs::symlink("loop.json", root.join("loop.json")).unwrap();
    li(["stream".into(), root.join("loop.json").into_os_string()]).fails(&["cannot read", "loop.json", "symbolic links"]);
    std::os::unix::fs::symlink("loop.tar", root.join("loop.tar")).unwrap();
    c.with("from_image", json!("loop.tar")).fails(&["fromImage", "loop.tar", "symbolic links"]);
    std::os::unix::fs::symlink("cloop", root.join("cloop")).unwrap();
    c.with("customisation_layer", json!("cloop")).fails(&["cloop", "symbolic links"]);
    // A store path that is a looping symlink is just a symlink.
    std::os::unix::fs::symlink("dddd-loop", root.join("nix/store/dddd-loop")).unwrap();
    c.with("store_layers", json!([["nix/store/dddd-loop"]])).image();
}

#[test]
fn non_utf8_conf_and_store_names_work() {
    let c = Case::new();
    let odd = c.root().join(OsString::from_vec(b"conf-\xff.json".to_vec()));
    std::fs::copy(c.conf(), &odd).unwrap();
    std::fs::write(c.root().join("nix/store/aaaa-pkg").join(OsString::from_vec(b"bad-\xfe\xff".to_vec())), "z").unwrap();
    let out = li(["stream".into(), odd.clone().into_os_string()]);
    out.succeeds();
    std::fs::write(c.root().join("odd.tar"), &out.stdout).unwrap();
    verify_image(c.root().join("odd.tar").to_str().unwrap());
    let missing = c.root().join(OsString::from_vec(b"absent-\xff.json".to_vec()));
    li(["stream".into(), missing.into_os_string()]).fails(&["cannot read", "absent-\u{fffd}.json"]);
}

// ---- hostile base images -------------------------------------------------

/// Writes a tar with Python's tarfile (an independent writer that lets any
/// name through): members are (name, data) or (name, None) for a directory.
fn py_tar(out: &Path, members: &[(&str, Option<&[u8]>)]) {
    require("python3");
    let spec: Vec<Value> = members.iter().map(|(n, d)| json!([n, d.map(hex::encode)])).collect();
    let script = r#"
import io, json, sys, tarfile
spec = json.load(open(sys.argv[2]))
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for name, data in spec:
        ti = tarfile.TarInfo(name)
        if data is None:
            ti.type = tarfile.DIRTYPE
            t.addfile(ti)
        else:
            b = bytes.fromhex(data)
            ti.size = len(b)
            t.addfile(ti, io.BytesIO(b))
"#;
    let spec_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(spec_file.path(), serde_json::to_vec(&spec).unwrap()).unwrap();
    run(Command::new("python3").arg("-c").arg(script).arg(out).arg(spec_file.path()));
}

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// A small layer: one file, written by the tar crate.
fn small_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "etc/hello", &b"hi\n"[..]).unwrap();
    b.into_inner().unwrap()
}

/// A docker-archive whose manifest names `layer_name` and `config_name`,
/// with members stored under `member_layer` and `member_config`.
fn base_with(out: &Path, layer_name: &str, member_layer: &str, config_name: &str, member_config: &str, diff_id: Option<&str>) {
    let layer = small_layer();
    let diff = diff_id.map(str::to_string).unwrap_or_else(|| sha(&layer));
    let config =
        serde_json::to_vec(&json!({"config": {"Env": ["A=1"]}, "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff}")]}})).unwrap();
    let manifest = serde_json::to_vec(&json!([{"Config": config_name, "RepoTags": ["b:1"], "Layers": [layer_name]}])).unwrap();
    py_tar(out, &[(member_layer, Some(&layer)), (member_config, Some(&config)), ("manifest.json", Some(&manifest))]);
}

#[test]
fn base_image_sanity_check_of_the_helpers() {
    let c = Case::new();
    base_with(&c.root().join("ok.tar"), "l/layer.tar", "l/layer.tar", "c.json", "c.json", None);
    c.with("from_image", json!("ok.tar"));
    let entries = layer_entries(&c.image());
    assert!(entries.iter().any(|e| e.0 == "etc/hello"), "{entries:?}");
}

#[test]
fn base_image_member_names_must_be_plain() {
    let c = Case::new();
    for (name, needle) in [
        ("../x/layer.tar", "\"../x/layer.tar\""),
        ("/abs/layer.tar", "\"/abs/layer.tar\""),
        ("a/../../layer.tar", "\"a/../../layer.tar\""),
        ("", "\"\""),
    ] {
        let f = c.root().join("evil.tar");
        base_with(&f, name, name, "c.json", "c.json", None);
        c.with("from_image", json!("evil.tar")).fails(&["fromImage", "evil.tar", needle, "not a plain relative member name"]);
        base_with(&f, "l/layer.tar", "l/layer.tar", name, name, None);
        if !name.is_empty() {
            c.with("from_image", json!("evil.tar")).fails(&["fromImage", "evil.tar", needle, "not a plain relative member name"]);
        }
    }
    // An unreferenced member with an evil name is never copied: harmless.
    let f = c.root().join("extra.tar");
    let layer = small_layer();
    let config = serde_json::to_vec(&json!({"rootfs": {"diff_ids": [format!("sha256:{}", sha(&layer))]}})).unwrap();
    let manifest = serde_json::to_vec(&json!([{"Config": "c.json", "Layers": ["l/layer.tar"]}])).unwrap();
    py_tar(&f, &[("../../etc/evil", Some(b"x")), ("l/layer.tar", Some(&layer)), ("c.json", Some(&config)), ("manifest.json", Some(&manifest))]);
    c.with("from_image", json!("extra.tar"));
    let image = c.image();
    let mut ar = tar::Archive::new(&image[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        assert!(!e.path_bytes().starts_with(b".."), "evil member copied");
    }
}

#[test]
fn base_image_missing_and_lying_members() {
    let c = Case::new();
    let f = c.root().join("b.tar");
    base_with(&f, "l/layer.tar", "other/layer.tar", "c.json", "c.json", None);
    c.with("from_image", json!("b.tar")).fails(&["fromImage", "b.tar", "has no member \"l/layer.tar\""]);
    base_with(&f, "l/layer.tar", "l/layer.tar", "c.json", "cfg.json", None);
    c.with("from_image", json!("b.tar")).fails(&["fromImage", "b.tar", "has no member \"c.json\""]);
    py_tar(&f, &[("x", Some(b"x"))]);
    c.with("from_image", json!("b.tar")).fails(&["fromImage", "b.tar", "has no member \"manifest.json\""]);
    py_tar(&f, &[("manifest.json", Some(b"{\"Config\":"))]);
    c.with("from_image", json!("b.tar")).fails(&["fromImage", "b.tar", "manifest.json is not valid JSON"]);
    py_tar(&f, &[("manifest.json", Some(b"[]"))]);
    c.with("from_image", json!("b.tar")).fails(&["fromImage", "b.tar", "manifest.json"]);
    py_tar(&f, &[("manifest.json", Some(b"[{\"Config\": 5, \"Layers\": []}]"))]);
    c.with("from_image", json!("b.tar")).fails(&["fromImage", "b.tar", "Config"]);
    // A layer that is a directory.
    let config = serde_json::to_vec(&json!({"rootfs": {"diff_ids": [format!("sha256:{}", "0".repeat(64))]}})).unwrap();
    let manifest = serde_json::to_vec(&json!([{"Config": "c.json", "Layers": ["d"]}])).unwrap();
    py_tar(&f, &[("d", None), ("c.json", Some(&config)), ("manifest.json", Some(&manifest))]);
    c.with("from_image", json!("b.tar")).fails(&["fromImage", "layer member d is neither a file nor a symlink"]);
    // diff_ids that do not match the layer's content.
    base_with(&f, "l/layer.tar", "l/layer.tar", "c.json", "c.json", Some(&"ab".repeat(32)));
    c.with("from_image", json!("b.tar")).fails(&["base layer l/layer.tar", "b.tar", &format!("sha256:{}", "ab".repeat(32))]);
    base_with(&f, "l/layer.tar", "l/layer.tar", "c.json", "c.json", Some("nothex"));
    c.with("from_image", json!("b.tar")).fails(&["fromImage", "rootfs.diff_ids[0]"]);
}

/// A tar whose headers promise more than the file holds, or numbers that
/// overflow, is refused without reading or allocating what it claims.
#[test]
fn base_image_lying_headers() {
    let c = Case::new();
    let f = c.root().join("h.tar");
    // A pax header claiming a 2^63-byte member.
    let mut pax = Vec::new();
    let rec = "size=9223372036854775807\n";
    let len = rec.len() + 3;
    pax.extend_from_slice(format!("{len} {rec}").as_bytes());
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_size(pax.len() as u64);
    h.set_cksum();
    b.append_data(&mut h, "pax", &pax[..]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(1);
    h.set_cksum();
    b.append_data(&mut h, "manifest.json", &b"["[..]).unwrap();
    std::fs::write(&f, b.into_inner().unwrap()).unwrap();
    c.with("from_image", json!("h.tar")).fails(&["fromImage", "h.tar"]);
    // A pax size of 2^64-1 (the largest u64: arithmetic on it must not wrap).
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/base_image/pax-size-u64-max.tar"), &f).unwrap();
    c.with("from_image", json!("h.tar")).fails(&["fromImage", "h.tar", "member l/layer.tar needs 18446744073709551615 bytes, the file ends first"]);
    // Base-256 size of 2^95 in a plain header.
    let mut block = [0u8; 512];
    block[..13].copy_from_slice(b"manifest.json");
    block[100..107].copy_from_slice(b"0000644");
    block[124] = 0x80;
    block[124] |= 0;
    for b in &mut block[125..136] {
        *b = 0xff;
    }
    block[156] = b'0';
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut bytes = block.to_vec();
    bytes.extend_from_slice(&[0u8; 1024]);
    std::fs::write(&f, bytes).unwrap();
    c.with("from_image", json!("h.tar")).fails(&["fromImage", "h.tar"]);
}

/// Decompression bombs: refused, or read through a bounded spool, with
/// small memory and in seconds.
#[test]
fn decompression_bombs() {
    require("zstd");
    require("gzip");
    let c = Case::new();
    let root = c.root();
    // 2 GiB of zeros in zstd is ~100 KiB; the ratio limit stops
    // it after ~1100x the compressed size.
    let sh = |cmd: &str| run(Command::new("sh").arg("-c").arg(cmd).current_dir(root));
    sh("head -c 2147483648 /dev/zero | zstd -q -3 -c > bomb.zst");
    let mut v = c.conf_value();
    v["from_image"] = json!("bomb.zst");
    c.write_conf(&v);
    let out = li(["stream".into(), c.conf().into_os_string(), "-o".into(), root.join("img.tar").into_os_string()]);
    out.fails(&["fromImage", "bomb.zst", "decompression bomb"]);
    out.rss_below_mib(64);
    // A gzip bomb cannot beat gzip's ~1030x ratio, so it is spooled (on
    // disk, not in memory) and then found to hold no image.
    sh("head -c 536870912 /dev/zero | gzip -1 -c > bomb.gz");
    v["from_image"] = json!("bomb.gz");
    c.write_conf(&v);
    let out = li(["stream".into(), c.conf().into_os_string(), "-o".into(), root.join("img.tar").into_os_string()]);
    out.fails(&["fromImage", "bomb.gz"]);
    out.rss_below_mib(64);
    // A layer inside the base image that is a gzip bomb is only hashed
    // through a streaming decoder; its diff_id is wrong, which is named.
    sh("head -c 268435456 /dev/zero | gzip -1 -c > layer.gz");
    let layer = std::fs::read(root.join("layer.gz")).unwrap();
    let config = serde_json::to_vec(&json!({"rootfs": {"diff_ids": [format!("sha256:{}", "0".repeat(64))]}})).unwrap();
    let manifest = serde_json::to_vec(&json!([{"Config": "c.json", "Layers": ["l/layer.tar"]}])).unwrap();
    py_tar(&root.join("lb.tar"), &[("l/layer.tar", Some(&layer)), ("c.json", Some(&config)), ("manifest.json", Some(&manifest))]);
    v["from_image"] = json!("lb.tar");
    c.write_conf(&v);
    let out = li(["stream".into(), c.conf().into_os_string(), "-o".into(), root.join("img.tar").into_os_string()]);
    out.fails(&["base layer l/layer.tar", "diff_id"]);
    out.rss_below_mib(64);
    // A truncated compressed image.
    sh("head -c 300 bomb.gz > cut.gz");
    v["from_image"] = json!("cut.gz");
    c.write_conf(&v);
    c.fails(&["fromImage", "cut.gz"]);
}

/// A plain fromImage with a 2 GiB (sparse) layer is copied through, not
/// loaded: memory stays small.
#[test]
fn big_base_layer_in_bounded_memory() {
    let c = Case::new();
    let root = c.root();
    std::fs::File::create(root.join("nix/store/aaaa-pkg/sparse")).unwrap().set_len(2 << 30).unwrap();
    let base = root.join("base.tar");
    li(["stream".into(), c.conf().into_os_string(), "-o".into(), base.clone().into_os_string()]).succeeds();
    // verify streams the 2 GiB layer through its hashers too.
    li(["verify".into(), base.clone().into_os_string()]).succeeds().rss_below_mib(64);
    std::fs::remove_file(root.join("nix/store/aaaa-pkg/sparse")).unwrap();
    c.with("from_image", json!("base.tar"));
    let out = li_with(["stream".into(), c.conf().into_os_string()], |cmd| {
        cmd.stdout(std::process::Stdio::null());
    });
    out.succeeds().rss_below_mib(64);
    std::fs::remove_file(&base).unwrap();
}

/// A layer stored as a symlink (older `docker save` dedups that way) is
/// copied as a link: its target must stay inside the archive.
#[test]
fn base_image_symlinked_layers() {
    require("python3");
    let c = Case::new();
    let root = c.root();
    let layer = small_layer();
    let diff = sha(&layer);
    for (target, ok) in [("../l/layer.tar", true), ("../../etc/passwd", false), ("/etc/passwd", false), ("../../../x", false)] {
        let script = r#"
import io, json, sys, tarfile
out, target, layer_hex, diff = sys.argv[1:5]
layer = bytes.fromhex(layer_hex)
cfg = json.dumps({"rootfs": {"diff_ids": ["sha256:" + diff, "sha256:" + diff]}}).encode()
man = json.dumps([{"Config": "c.json", "Layers": ["l/layer.tar", "m/layer.tar"]}]).encode()
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for name, data in [("l/layer.tar", layer), ("c.json", cfg), ("manifest.json", man)]:
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    ti = tarfile.TarInfo("m/layer.tar"); ti.type = tarfile.SYMTYPE; ti.linkname = target; t.addfile(ti)
"#;
        run(Command::new("python3").arg("-c").arg(script).arg(root.join("sym.tar")).arg(target).arg(hex::encode(&layer)).arg(&diff));
        c.with("from_image", json!("sym.tar"));
        if ok {
            c.image();
        } else {
            c.fails(&["fromImage", "sym.tar", "layer member m/layer.tar is a symlink to", target, "outside the archive"]);
        }
    }
}

/// Header bombs: one big global pax header (or long names) repeated in
/// memory for every member. 18 KiB of gzip once took 3.3 GiB.
#[test]
fn base_image_header_bombs() {
    require("python3");
    let c = Case::new();
    let root = c.root();
    let script = r#"
import gzip, io, sys, tarfile
out, kind = sys.argv[1:3]
buf = io.BytesIO()
pax = {'comment': 'a' * (16 << 20)} if kind == 'pax' else {}
t = tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT if kind == 'pax' else tarfile.GNU_FORMAT, pax_headers=pax)
for i in range(200):
    name = f'f{i}' if kind == 'pax' else ('n' * (1 << 20)) + str(i)
    ti = tarfile.TarInfo(name); ti.size = 0; t.addfile(ti)
m = b'[]'
ti = tarfile.TarInfo('manifest.json'); ti.size = len(m); t.addfile(ti, io.BytesIO(m))
t.close()
open(out, 'wb').write(gzip.compress(buf.getvalue(), 9))
"#;
    for kind in ["pax", "names"] {
        let f = root.join(format!("{kind}.tar.gz"));
        run(Command::new("python3").arg("-c").arg(script).arg(&f).arg(kind));
        c.with("from_image", json!(format!("{kind}.tar.gz")));
        let out = li(["stream".into(), c.conf().into_os_string(), "-o".into(), root.join("img.tar").into_os_string()]);
        out.fails(&["fromImage", &format!("{kind}.tar.gz"), "header bomb"]);
        out.rss_below_mib(64);
    }
}

/// JSON bombs: a manifest or config that is small compressed but parses
/// into gigabytes (60 KiB of gzip once took 3.2 GiB and 10 s).
#[test]
fn base_image_json_bombs() {
    require("python3");
    let c = Case::new();
    let root = c.root();
    let script = r#"
import gzip, io, json, sys, tarfile
out, which, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
bomb = b'[' + b'0,' * (size // 2) + b'0]'
cfg = bomb if which == 'config' else b'{"rootfs": {"diff_ids": []}}'
man = bomb if which == 'manifest' else json.dumps([{"Config": "c.json", "Layers": []}]).encode()
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w') as t:
    for name, data in [("c.json", cfg), ("manifest.json", man)]:
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
open(out, 'wb').write(gzip.compress(buf.getvalue(), 9))
"#;
    for (which, size, needle) in [("config", 60 << 20, "implausibly large"), ("config", 3 << 20, "JSON bomb"), ("manifest", 3 << 20, "JSON bomb")] {
        let f = root.join("jb.tar.gz");
        run(Command::new("python3").arg("-c").arg(script).arg(&f).arg(which).arg(size.to_string()));
        c.with("from_image", json!("jb.tar.gz"));
        let out = li(["stream".into(), c.conf().into_os_string(), "-o".into(), root.join("img.tar").into_os_string()]);
        out.fails(&["fromImage", "jb.tar.gz", needle]);
        out.rss_below_mib(64);
    }
}

/// A huge checksum file is not read whole (1 GiB once took 6 GiB of memory,
/// 48 s, and a gigabyte-long error line).
#[test]
fn huge_checksum_file() {
    let c = Case::new();
    let sum = c.root().join("custom/checksum");
    let good = std::fs::read_to_string(&sum).unwrap();
    std::fs::File::options().append(true).open(&sum).unwrap().set_len(1 << 30).unwrap();
    let line = c.fails(&["checksum", "does not hold a sha256"]);
    assert!(line.len() < 1000, "{} bytes of error", line.len());
    let out = li(["stream".into(), c.conf().into_os_string(), "-o".into(), c.root().join("i.tar").into_os_string()]);
    out.rss_below_mib(64);
    assert!(good.len() < 100);
}
