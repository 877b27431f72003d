//! The tar encoders read back by three independent readers: GNU tar
//! (listing and extraction), Python's tarfile and the Rust `tar` crate.
//! Every entry of every layer must agree with what is on disk (and with
//! the conf's owner and time) on name, type, mode, uid/gid, uname/gname,
//! mtime, size, link target and content: for the store-layer encoder
//! (`stream`, layers read out of the image) and for `customisation-layer`.
//! The awkward cases are all there: names of exactly 100, 101 and 255
//! bytes and longer, non-ASCII and invalid UTF-8 names, link targets over
//! 100 bytes, uid/gid over 2^21, owner names over 32 bytes, an mtime past
//! 2242 (11 octal digits), and a sparse file over 8 GiB (hashed, never held
//! in memory).

use crate::harness as hostile_support;
use hostile_support::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One tar entry as every reader must see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    uname: Vec<u8>,
    gname: Vec<u8>,
    mtime: i64,
    size: u64,
    link: Vec<u8>,
    /// sha256 of the content (regular files only).
    sha: String,
}

type Listing = BTreeMap<Vec<u8>, Rec>;

/// Readers differ on a leading `/`, `./` and a directory's trailing `/`.
fn norm(name: &[u8]) -> Vec<u8> {
    let mut n = name;
    while let Some(rest) = n.strip_prefix(b"/") {
        n = rest;
    }
    while n.len() > 1 && n.ends_with(b"/") {
        n = &n[..n.len() - 1];
    }
    n.to_vec()
}

fn insert(list: &mut Listing, name: Vec<u8>, rec: Rec) {
    let name = norm(&name);
    assert!(list.insert(name.clone(), rec).is_none(), "{} listed twice", String::from_utf8_lossy(&name));
}

fn sha_reader(mut r: impl Read) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

// ---- readers ---------------------------------------------------------------

/// The Rust tar crate, with pax records applied by hand (it leaves
/// uid/gid/uname/gname/mtime overrides to the caller).
fn rust_listing(layer: impl Read) -> Listing {
    let mut list = Listing::new();
    let mut ar = tar::Archive::new(layer);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path_bytes().into_owned();
        let h = e.header().clone();
        let mut rec = Rec {
            kind: match h.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => '-',
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Fifo => 'p',
                tar::EntryType::Char => 'c',
                tar::EntryType::Block => 'b',
                tar::EntryType::Link => 'h',
                other => panic!("unexpected entry type {other:?}"),
            },
            mode: h.mode().unwrap() & 0o7777,
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            gname: h.groupname_bytes().unwrap_or_default().to_vec(),
            mtime: h.mtime().unwrap() as i64,
            size: e.size(),
            link: e.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default(),
            sha: String::new(),
        };
        if let Some(pax) = e.pax_extensions().unwrap() {
            for x in pax {
                let x = x.unwrap();
                let v = x.value_bytes();
                let num = || std::str::from_utf8(v).unwrap().parse::<u64>().unwrap();
                match x.key().unwrap() {
                    "uid" => rec.uid = num(),
                    "gid" => rec.gid = num(),
                    "uname" => rec.uname = v.to_vec(),
                    "gname" => rec.gname = v.to_vec(),
                    "mtime" => rec.mtime = std::str::from_utf8(v).unwrap().parse::<f64>().unwrap() as i64,
                    _ => {}
                }
            }
        }
        if rec.kind == '-' {
            rec.sha = sha_reader(&mut e);
        }
        insert(&mut list, name, rec);
    }
    list
}

const PY_READER: &str = r#"
import hashlib, json, sys, tarfile
def emit(t):
    for m in t:
        kind = {tarfile.REGTYPE: '-', tarfile.AREGTYPE: '-', tarfile.DIRTYPE: 'd', tarfile.SYMTYPE: 'l',
                tarfile.FIFOTYPE: 'p', tarfile.CHRTYPE: 'c', tarfile.BLKTYPE: 'b', tarfile.LNKTYPE: 'h'}[m.type]
        sha = ''
        if kind == '-':
            h = hashlib.sha256()
            f = t.extractfile(m)
            while True:
                b = f.read(1 << 20)
                if not b: break
                h.update(b)
            sha = h.hexdigest()
        enc = lambda s: s.encode('utf-8', 'surrogateescape').hex()
        print(json.dumps([enc(m.name), kind, m.mode & 0o7777, m.uid, m.gid, enc(m.uname), enc(m.gname),
                          int(m.mtime), m.size, enc(m.linkname), sha]), flush=True)
outer = tarfile.open(sys.argv[1])
if sys.argv[2] == 'image':
    for m in outer:
        if m.name.endswith('/layer.tar'):
            print(json.dumps(['layer', m.name]))
            emit(tarfile.open(fileobj=outer.extractfile(m), mode='r:'))
else:
    emit(outer)
"#;

/// Python's tarfile: one listing per layer of an image (keyed by the layer
/// member's name), or of a plain layer (key "").
fn python_listings(file: &Path, image: bool) -> BTreeMap<String, Listing> {
    require("python3");
    let out = run(Command::new("python3").arg("-c").arg(PY_READER).arg(file).arg(if image { "image" } else { "layer" }));
    let mut all: BTreeMap<String, Listing> = BTreeMap::new();
    let mut current = String::new();
    for line in out.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let a = v.as_array().unwrap();
        if a[0] == "layer" {
            current = a[1].as_str().unwrap().to_string();
            continue;
        }
        let hx = |i: usize| hex::decode(a[i].as_str().unwrap()).unwrap();
        let rec = Rec {
            kind: a[1].as_str().unwrap().chars().next().unwrap(),
            mode: a[2].as_u64().unwrap() as u32,
            uid: a[3].as_u64().unwrap(),
            gid: a[4].as_u64().unwrap(),
            uname: hx(5),
            gname: hx(6),
            mtime: a[7].as_i64().unwrap(),
            size: a[8].as_u64().unwrap(),
            link: hx(9),
            sha: a[10].as_str().unwrap().to_string(),
        };
        // A duplicate (seen in base layers, which are not compared) is kept
        // under a marked name, so that it fails any layer that is compared.
        let list = all.entry(current.clone()).or_default();
        let mut name = norm(&hx(0));
        while list.contains_key(&name) {
            name.extend_from_slice(b" (again)");
        }
        list.insert(name, rec);
    }
    all
}

/// GNU tar's verbose listing (numeric and named owners), parsed. Content
/// is not in a listing: GNU tar's content is checked by extraction.
fn gnu_listing(layer: &Path) -> Listing {
    require("tar");
    let list = |numeric: bool| {
        let mut cmd = Command::new("tar");
        cmd.env("TZ", "UTC").args(["--quoting-style=literal", "--full-time", "-tvf"]).arg(layer);
        if numeric {
            cmd.arg("--numeric-owner");
        }
        run(&mut cmd).stdout
    };
    let (numeric, named) = (list(true), list(false));
    let mut out = Listing::new();
    for (nl, tl) in numeric.split(|&b| b == b'\n').zip(named.split(|&b| b == b'\n')) {
        if nl.is_empty() {
            continue;
        }
        // mode owner size date time name[ -> link]
        let fields = |l: &[u8]| -> (Vec<Vec<u8>>, Vec<u8>) {
            let mut parts = Vec::new();
            let mut rest = l;
            for _ in 0..5 {
                while rest.first() == Some(&b' ') {
                    rest = &rest[1..];
                }
                let end = rest.iter().position(|&b| b == b' ').unwrap();
                parts.push(rest[..end].to_vec());
                rest = &rest[end + 1..];
            }
            (parts, rest.to_vec())
        };
        let (nf, rest) = fields(nl);
        let (tf, _) = fields(tl);
        let modestr = String::from_utf8(nf[0].clone()).unwrap();
        let kind = modestr.chars().next().unwrap();
        let (name, link) = match kind {
            'l' => {
                let i = rest.windows(4).position(|w| w == b" -> ").unwrap();
                (rest[..i].to_vec(), rest[i + 4..].to_vec())
            }
            'h' => {
                let i = rest.windows(9).position(|w| w == b" link to ").unwrap();
                (rest[..i].to_vec(), rest[i + 9..].to_vec())
            }
            _ => (rest.clone(), Vec::new()),
        };
        let owner = String::from_utf8(nf[1].clone()).unwrap();
        let (uid, gid) = owner.split_once('/').unwrap();
        let (uname, gname) = {
            let i = tf[1].iter().rposition(|&b| b == b'/').unwrap();
            (tf[1][..i].to_vec(), tf[1][i + 1..].to_vec())
        };
        // With no name recorded, GNU tar shows the number instead.
        let uname = if uname == uid.as_bytes() { Vec::new() } else { uname };
        let gname = if gname == gid.as_bytes() { Vec::new() } else { gname };
        let date = format!("{} {}", String::from_utf8_lossy(&nf[3]), String::from_utf8_lossy(&nf[4]));
        let mtime = String::from_utf8(run(Command::new("date").env("TZ", "UTC").args(["-d", &date, "+%s"])).stdout).unwrap().trim().parse().unwrap();
        let size = if matches!(kind, 'c' | 'b') { 0 } else { String::from_utf8(nf[2].clone()).unwrap().parse().unwrap() };
        let rec = Rec {
            kind,
            mode: mode_bits(&modestr),
            uid: uid.parse().unwrap(),
            gid: gid.parse().unwrap(),
            uname,
            gname,
            mtime,
            size,
            link,
            sha: String::new(),
        };
        insert(&mut out, name, rec);
    }
    out
}

/// `-rwsr-xr-t` to 0o5755.
fn mode_bits(s: &str) -> u32 {
    let c: Vec<char> = s.chars().collect();
    let mut m = 0;
    for (i, bit) in [(1, 0o400), (2, 0o200), (4, 0o40), (5, 0o20), (7, 0o4), (8, 0o2)] {
        if c[i] != '-' {
            m |= bit;
        }
    }
    for (i, x, special) in [(3, 0o100, 0o4000), (6, 0o10, 0o2000), (9, 0o1, 0o1000)] {
        match c[i] {
            'x' => m |= x,
            's' | 't' => m |= x | special,
            'S' | 'T' => m |= special,
            _ => {}
        }
    }
    m
}

/// The disk's view of a tree: what a faithful archive of it holds.
/// uid, gid, uname, gname, mtime for an entry found on disk.
type Owner<'a> = &'a dyn Fn(&std::fs::Metadata) -> (u64, u64, Vec<u8>, Vec<u8>, i64);

fn disk_listing(root: &Path, prefix: &[u8], out: &mut Listing, owner: Owner) {
    let meta = std::fs::symlink_metadata(root).unwrap();
    let ft = meta.file_type();
    use std::os::unix::fs::FileTypeExt;
    let (kind, size, link, sha) = if ft.is_dir() {
        ('d', 0, Vec::new(), String::new())
    } else if ft.is_symlink() {
        ('l', 0, std::fs::read_link(root).unwrap().into_os_string().into_vec(), String::new())
    } else if ft.is_fifo() {
        ('p', 0, Vec::new(), String::new())
    } else if ft.is_char_device() {
        ('c', 0, Vec::new(), String::new())
    } else {
        ('-', meta.len(), Vec::new(), sha_reader(std::fs::File::open(root).unwrap()))
    };
    let (uid, gid, uname, gname, mtime) = owner(&meta);
    insert(out, prefix.to_vec(), Rec { kind, mode: meta.mode() & 0o7777, uid, gid, uname, gname, mtime, size, link, sha });
    if ft.is_dir() {
        for e in std::fs::read_dir(root).unwrap() {
            let e = e.unwrap();
            let mut name = prefix.to_vec();
            if !name.is_empty() && !name.ends_with(b"/") {
                name.push(b'/');
            }
            name.extend_from_slice(e.file_name().as_bytes());
            disk_listing(&e.path(), &name, out, owner);
        }
    }
}

/// Extracts `layer` with GNU tar (as root: owners and modes kept) and reads
/// the result back from disk.
fn gnu_extracted(layer: &Path) -> Listing {
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("tar").args(["--same-owner", "--same-permissions", "--numeric-owner", "-xf"]).arg(layer).arg("-C").arg(dir.path()));
    let mut out = Listing::new();
    let owner = |m: &std::fs::Metadata| (u64::from(m.uid()), u64::from(m.gid()), Vec::new(), Vec::new(), m.mtime());
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let e = e.unwrap();
        disk_listing(&e.path(), e.file_name().as_bytes(), &mut out, &owner);
    }
    out
}

// ---- comparison ------------------------------------------------------------

/// Two listings agree on every entry; `mask` blanks what a reader cannot know.
fn agree(what: &str, a: &Listing, b: &Listing, mask: impl Fn(&mut Rec)) {
    let a_names: Vec<_> = a.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    let b_names: Vec<_> = b.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    assert_eq!(a_names, b_names, "{what}: different entries");
    for (name, ra) in a {
        let mut ra = ra.clone();
        let mut rb = b[name].clone();
        mask(&mut ra);
        mask(&mut rb);
        assert_eq!(ra, rb, "{what}: entry {:?} differs", String::from_utf8_lossy(name));
    }
}

// ---- fixtures --------------------------------------------------------------

/// A store path holding every awkward name, link and mode.
fn awkward_tree(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mk = |rel: &[u8], data: &[u8], mode: u32| {
        let p = dir.join(OsString::from_vec(rel.to_vec()));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    mk(b"plain", b"plain\n", 0o444);
    mk(b"exec", b"#!/bin/sh\n", 0o555);
    mk(b"setuid", b"s", 0o4755);
    mk(b"empty", b"", 0o644);
    mk("caf\u{e9}-\u{2603}-\u{65e5}\u{672c}".as_bytes(), b"unicode", 0o644);
    mk(b"bad-\xff\xfe-utf8", b"latin1", 0o644);
    mk(b"dir with space/f", b"sp", 0o644);
    std::fs::create_dir_all(dir.join("emptydir")).unwrap();
    std::fs::create_dir_all(dir.join("sticky")).unwrap();
    std::fs::set_permissions(dir.join("sticky"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::hard_link(dir.join("plain"), dir.join("hardlink")).unwrap();
    std::os::unix::fs::symlink("plain", dir.join("short-link")).unwrap();
    std::os::unix::fs::symlink("t".repeat(150), dir.join("long-link-150")).unwrap();
    std::os::unix::fs::symlink(format!("/{}", "u/".repeat(200)), dir.join("long-link-401")).unwrap();
    std::os::unix::fs::symlink("caf\u{e9}/\u{2603}", dir.join("unicode-link")).unwrap();
    std::os::unix::fs::symlink(OsString::from_vec(b"bad-\xff-target".to_vec()), dir.join("bad-utf8-link")).unwrap();
    run(Command::new("mkfifo").arg(dir.join("fifo")));
    run(Command::new("mknod").arg(dir.join("devnull")).args(["c", "1", "3"]));
}

/// Adds files whose member names (as `prefix` + relative name, without a
/// leading `/`) are exactly the given lengths.
fn names_of_length(dir: &Path, member_prefix_len: usize, lengths: &[usize]) {
    for &len in lengths {
        // Components stay under 255 bytes: split into directories.
        let mut rel = String::new();
        let want = len - member_prefix_len;
        let mut left = want;
        let mut i = 0;
        while left > 0 {
            let comp = if left > 200 { 100 } else { left };
            if !rel.is_empty() {
                rel.push('/');
                left -= 1;
            }
            let comp = comp.min(left);
            if comp == 0 {
                break;
            }
            let ch = (b'a' + (i % 26) as u8) as char;
            rel.push_str(&ch.to_string().repeat(comp));
            left -= comp;
            i += 1;
        }
        assert_eq!(rel.len(), want);
        let p = dir.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("{len}")).unwrap();
    }
}

fn stream_conf(root: &Path, layers: serde_json::Value, uid: u64, gid: u64, uname: &str, gname: &str, mtime: &str) -> PathBuf {
    let src = root.join("custom-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "f\n").unwrap();
    custom_layer(&src, &root.join("custom"));
    let conf = json!({
        "architecture": "amd64", "config": {}, "os": "linux", "store_dir": "nix/store", "from_image": null,
        "store_layers": layers, "customisation_layer": "custom", "repo_tag": "t:1",
        "created": "1970-01-01T00:00:01+00:00", "mtime": mtime,
        "uid": uid, "gid": gid, "uname": uname, "gname": gname
    });
    let p = root.join("conf.json");
    std::fs::write(&p, serde_json::to_vec(&conf).unwrap()).unwrap();
    p
}

/// The store layers of `image` written out as files, by member name.
fn split_layers(image: &Path, into: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(std::fs::File::open(image).unwrap());
    for (i, e) in ar.entries().unwrap().enumerate() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name.ends_with("/layer.tar") {
            let p = into.join(format!("layer{i}.tar"));
            std::io::copy(&mut e, &mut std::fs::File::create(&p).unwrap()).unwrap();
            out.insert(name, p);
        }
    }
    out
}

/// What the store layer must hold for store paths under `root`: `/nix`,
/// `/nix/store` and each path's tree, owned and timed by the conf.
fn expected_store_layer(root: &Path, paths: &[String], uid: u64, gid: u64, uname: &str, gname: &str, mtime: i64) -> Listing {
    let owner = move |_: &std::fs::Metadata| (uid, gid, uname.as_bytes().to_vec(), gname.as_bytes().to_vec(), mtime);
    let mut l = Listing::new();
    let dir =
        Rec { kind: 'd', mode: 0o755, uid, gid, uname: uname.into(), gname: gname.into(), mtime, size: 0, link: Vec::new(), sha: String::new() };
    insert(&mut l, b"nix".to_vec(), dir.clone());
    insert(&mut l, b"nix/store".to_vec(), dir);
    for p in paths {
        disk_listing(&root.join(p), p.as_bytes(), &mut l, &owner);
    }
    l
}

/// Owner and time of a conf's store layers (numbers or strings; the seed
/// schema has no mtime, so files get `created`).
struct Stamp {
    uid: u64,
    gid: u64,
    uname: String,
    gname: String,
    mtime: i64,
}

#[allow(clippy::too_many_arguments)]
fn check_store_layers(root: &Path, layers: &[&[&str]], uid: u64, gid: u64, uname: &str, gname: &str, mtime_s: &str, mtime: i64) {
    let conf = stream_conf(root, json!(layers), uid, gid, uname, gname, mtime_s);
    let layers: Vec<Vec<String>> = layers.iter().map(|l| l.iter().map(|p| p.to_string()).collect()).collect();
    let stamp = Stamp { uid, gid, uname: uname.into(), gname: gname.into(), mtime };
    check_image(&conf, root, &layers, &stamp);
}

/// Streams `conf` and checks each store layer (whose paths, relative to
/// `fs_root`, are also their member names) with every reader.
fn check_image(conf: &Path, fs_root: &Path, layers: &[Vec<String>], st: &Stamp) {
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("image.tar");
    li(["stream".into(), conf.as_os_str().to_owned(), "-o".into(), image.clone().into_os_string()]).succeeds();
    verify_image(image.to_str().unwrap());
    let py = python_listings(&image, true);
    let files = split_layers(&image, work.path());
    let mut ar = tar::Archive::new(std::fs::File::open(&image).unwrap());
    let order: Vec<String> =
        ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).filter(|n| n.ends_with("/layer.tar")).collect();
    // Base layers, then the store layers in conf order, then the customisation layer.
    assert!(order.len() > layers.len(), "{order:?}");
    let n_base = order.len() - layers.len() - 1;
    for (paths, member) in layers.iter().zip(&order[n_base..]) {
        let want = expected_store_layer(fs_root, paths, st.uid, st.gid, &st.uname, &st.gname, st.mtime);
        let file = &files[member];
        let rust = rust_listing(std::fs::File::open(file).unwrap());
        agree(&format!("{member}: tar crate vs disk"), &rust, &want, |_| {});
        agree(&format!("{member}: tarfile vs disk"), &py[member], &want, |_| {});
        let gnu = gnu_listing(file);
        agree(&format!("{member}: GNU tar -tv vs disk"), &gnu, &want, |r| r.sha.clear());
        // Extraction: GNU tar applies the archive's owners, modes and times.
        // The parents of the store paths that are not members (e.g. /tmp of
        // a store under /tmp/x/nix/store) are made by tar, not compared.
        let mut ext = gnu_extracted(file);
        let mut want_ext = want.clone();
        for k in [&b"nix"[..], b"nix/store"] {
            ext.remove(k);
            want_ext.remove(k);
        }
        for p in paths {
            for (i, _) in p.match_indices('/') {
                if !want_ext.contains_key(&p.as_bytes()[..i]) {
                    ext.remove(&p.as_bytes()[..i]);
                }
            }
        }
        agree(&format!("{member}: GNU tar -x vs disk"), &ext, &want_ext, |r| {
            r.uname.clear();
            r.gname.clear();
            // Directories' times change as entries land in them after
            // their header is applied.
            if r.kind == 'd' {
                r.mtime = 0;
            }
        });
        eprintln!("{member}: {} entries agree", want.len());
    }
}

/// The parity fixtures (../shared/parity/make-fixture, with bulk copied
/// from /usr) in all three conf schemas, fromImage included.
#[test]
fn parity_fixtures_read_back_by_three_readers() {
    let dir = tempfile::tempdir().unwrap();
    let root = make_fixture(dir.path(), &["--bulk-mib", "8"]);
    for name in ["conf-seed.json", "conf-newest.json", "conf-from.json"] {
        let conf_path = root.join(name);
        let conf: serde_json::Value = serde_json::from_slice(&std::fs::read(&conf_path).unwrap()).unwrap();
        let id = |k: &str| match &conf[k] {
            serde_json::Value::String(s) => s.parse().unwrap(),
            v => v.as_u64().unwrap(),
        };
        let when = conf.get("mtime").unwrap_or(&conf["created"]).as_str().unwrap().to_string();
        let mtime = String::from_utf8(run(Command::new("date").args(["-u", "-d", &when, "+%s"])).stdout).unwrap().trim().parse().unwrap();
        let stamp = Stamp {
            uid: id("uid"),
            gid: id("gid"),
            uname: conf["uname"].as_str().unwrap().into(),
            gname: conf["gname"].as_str().unwrap().into(),
            mtime,
        };
        let layers: Vec<Vec<String>> = conf["store_layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_array().unwrap().iter().map(|p| p.as_str().unwrap().trim_start_matches('/').to_string()).collect())
            .collect();
        eprintln!("{name}: {} store layers", layers.len());
        check_image(&conf_path, Path::new("/"), &layers, &stamp);
    }
}

#[test]
fn store_layers_read_back_by_three_readers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = root.join("nix/store");
    awkward_tree(&store.join("aaaa-awkward"));
    // Names of exactly 100, 101, 255 bytes and longer (member names start
    // with "nix/store/bbbb-names/").
    let prefix = "nix/store/bbbb-names/".len();
    names_of_length(&store.join("bbbb-names"), prefix, &[99, 100, 101, 155, 156, 254, 255, 256, 400, 1000]);
    std::fs::write(store.join("cccc-file"), "a store path that is a file\n").unwrap();
    std::os::unix::fs::symlink("aaaa-awkward", store.join("dddd-link")).unwrap();
    let layers: &[&[&str]] = &[&["nix/store/aaaa-awkward"], &["nix/store/bbbb-names", "nix/store/cccc-file", "nix/store/dddd-link"]];
    // Ordinary owner and time.
    check_store_layers(root, layers, 0, 0, "root", "root", "1970-01-01T00:00:01+00:00", 1);
}

#[test]
fn store_layers_with_extreme_owner_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    awkward_tree(&root.join("nix/store/aaaa-awkward"));
    // uid/gid beyond 2^21 (7 octal digits), names beyond 32 bytes, an mtime
    // beyond 8^11 seconds: all need pax records.
    let long_user = "u".repeat(40);
    let long_group = "g\u{e9}".repeat(20);
    let mtime = 10_000_000_000i64; // 2286-11-20T17:46:40Z
    check_store_layers(root, &[&["nix/store/aaaa-awkward"]], 4_000_000_000, 2_097_152, &long_user, &long_group, "2286-11-20T17:46:40+00:00", mtime);
}

/// A sparse file over 8 GiB (past the 11-octal-digit size field), with
/// data at both ends, uid/gid past 2^21: hashed by every reader as it
/// streams, never held in memory; the streamer's memory stays small.
#[test]
fn eight_gib_sparse_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pkg = root.join("nix/store/eeee-huge");
    std::fs::create_dir_all(&pkg).unwrap();
    let size: u64 = (8 << 30) + 4097;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(pkg.join("huge")).unwrap();
        f.write_all(b"head of the huge file").unwrap();
        f.seek(SeekFrom::Start(size - 9)).unwrap();
        f.write_all(b"tail end\n").unwrap();
    }
    let want_sha = sha_reader(std::fs::File::open(pkg.join("huge")).unwrap());
    let conf = stream_conf(root, json!([["nix/store/eeee-huge"]]), 3_000_000, 3_000_001, "big", "big", "1970-01-01T00:00:01+00:00");
    let image = root.join("image.tar");
    let out = li(["stream".into(), conf.into_os_string(), "-o".into(), image.clone().into_os_string()]);
    out.succeeds().rss_below_mib(64);
    li(["verify".into(), image.clone().into_os_string()]).succeeds().rss_below_mib(64);
    let check = |who: &str, l: &Listing| {
        let r = &l[&b"nix/store/eeee-huge/huge"[..]];
        assert_eq!((r.size, r.uid, r.gid), (size, 3_000_000, 3_000_001), "{who}: {r:?}");
        if !r.sha.is_empty() {
            assert_eq!(r.sha, want_sha, "{who}");
        }
    };
    let py = python_listings(&image, true);
    let (member, pyl) = py.iter().find(|(_, l)| l.contains_key(&b"nix/store/eeee-huge/huge"[..])).expect("no layer holds the huge file");
    check("tarfile", pyl);
    // The tar crate and GNU tar read the layer straight out of the image.
    let mut ar = tar::Archive::new(std::fs::File::open(&image).unwrap());
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == *member {
            check("tar crate", &rust_listing(e));
            break;
        }
    }
    let sh = |cmd: String| String::from_utf8(run(Command::new("sh").arg("-c").arg(cmd)).stdout).unwrap();
    let img = image.display();
    let listing = sh(format!("tar -xOf {img} {member} | tar --numeric-owner --wildcards -tvf - '*eeee-huge/huge'"));
    assert!(listing.contains(&format!(" 3000000/3000001 {size} ")), "{listing}");
    let gnu_sha = sh(format!("tar -xOf {img} {member} | tar --wildcards -xOf - '*eeee-huge/huge' | sha256sum"));
    assert!(gnu_sha.starts_with(&want_sha), "{gnu_sha}");
    std::fs::remove_file(&image).unwrap();
}

#[test]
fn customisation_layer_read_back_by_three_readers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let src = root.join("src");
    awkward_tree(&src);
    // GNU tar names members "./..."; lengths count that prefix.
    names_of_length(&src, 2, &[99, 100, 101, 155, 156, 254, 255, 256, 400]);
    run(Command::new("chown").args(["-h", "3000000:2097152"]).arg(src.join("plain")));
    run(Command::new("chown").args(["-h", "4000000000:4000000001"]).arg(src.join("short-link")));
    let outdir = root.join("out");
    let mtime = 9_999_999_999i64;
    li([OsString::from("customisation-layer"), src.clone().into(), outdir.clone().into(), "--mtime".into(), mtime.to_string().into()]).succeeds();
    let layer = outdir.join("layer.tar");
    let sum = std::fs::read_to_string(outdir.join("checksum")).unwrap();
    assert_eq!(sum.trim(), sha_reader(std::fs::File::open(&layer).unwrap()));
    // GNU tar --numeric-owner records numbers only; hard links stay files
    // (--hard-dereference); every member gets the given mtime.
    let owner = |m: &std::fs::Metadata| (u64::from(m.uid()), u64::from(m.gid()), Vec::new(), Vec::new(), mtime);
    let mut want = Listing::new();
    disk_listing(&src, b".", &mut want, &owner);
    let rust = rust_listing(std::fs::File::open(&layer).unwrap());
    agree("customisation layer: tar crate vs disk", &rust, &want, |_| {});
    let py = python_listings(&layer, false);
    agree("customisation layer: tarfile vs disk", &py[""], &want, |_| {});
    let gnu = gnu_listing(&layer);
    agree("customisation layer: GNU tar -tv vs disk", &gnu, &want, |r| r.sha.clear());
    let mut ext = gnu_extracted(&layer);
    let mut want_ext = want.clone();
    // Extracting `.` lands in the target directory itself.
    want_ext.remove(&b"."[..]);
    ext.retain(|k, _| k != b".");
    let strip = |l: Listing| -> Listing { l.into_iter().map(|(k, v)| (k.strip_prefix(b"./").map(<[u8]>::to_vec).unwrap_or(k), v)).collect() };
    agree("customisation layer: GNU tar -x vs disk", &strip(ext), &strip(want_ext), |r| {
        if r.kind == 'd' {
            r.mtime = 0;
        }
    });
}
