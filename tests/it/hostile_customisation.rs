//! Hostile input for `customisation-layer DIR OUTDIR`: missing, odd or
//! unreadable directories, bad options, special files, deep and big trees.
//! Same contract as the other hostile tests, and no half-written
//! `layer.tar` or `checksum` left in OUTDIR after a failure.

use crate::harness as hostile_support;
use hostile_support::*;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Command;

fn cl(dir: &Path, out: &Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<OsString> = vec!["customisation-layer".into(), dir.into(), out.into()];
    args.extend(extra.iter().map(Into::into));
    li(args)
}

fn assert_no_outputs(out: &Path) {
    let left: Vec<_> = std::fs::read_dir(out).map(|r| r.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "left in OUTDIR: {left:?}");
}

#[test]
fn bad_directories() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    cl(&d.path().join("absent"), &out, &[]).fails(&["absent", "No such file"]);
    assert_no_outputs(&out);
    let file = write(d.path(), "file", "x");
    cl(&file, &out, &[]).fails(&["file", "not a directory"]);
    assert_no_outputs(&out);
    std::os::unix::fs::symlink("loop", d.path().join("loop")).unwrap();
    cl(&d.path().join("loop"), &out, &[]).fails(&["loop"]);
    assert_no_outputs(&out);
    let odd = d.path().join(OsString::from_vec(b"odd-\xff".to_vec()));
    cl(&odd, &out, &[]).fails(&["odd-\u{fffd}"]);
    // OUTDIR is a file.
    let src = d.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), "f").unwrap();
    cl(&src, &file, &[]).fails(&["file", "cannot create directory"]);
}

#[test]
fn permission_denied_is_named() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("locked")).unwrap();
    std::fs::write(src.join("locked/f"), "f").unwrap();
    std::fs::write(src.join("secret"), "s").unwrap();
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    open_up(d.path());
    run(Command::new("chmod").arg("0700").arg(src.join("locked")));
    let args = |o: &Path| vec![OsString::from("customisation-layer"), src.clone().into(), o.into()];
    li_nobody(&args(&out)).fails(&["src/locked", "Permission denied"]);
    assert_no_outputs(&out);
    run(Command::new("chmod").arg("0755").arg(src.join("locked")));
    run(Command::new("chmod").arg("0600").arg(src.join("secret")));
    li_nobody(&args(&out)).fails(&["src/secret", "Permission denied"]);
    assert_no_outputs(&out);
    run(Command::new("chmod").arg("0644").arg(src.join("secret")));
    run(Command::new("chmod").arg("0555").arg(&out));
    li_nobody(&args(&out)).fails(&["out", "Permission denied"]);
    run(Command::new("chmod").arg("0777").arg(&out));
    li_nobody(&args(&out)).succeeds();
}

#[test]
fn bad_options() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let out = d.path().join("out");
    li_with([OsString::from("customisation-layer"), src.clone().into(), out.clone().into()], |c| {
        c.env("SOURCE_DATE_EPOCH", "yesterday");
    })
    .fails(&["SOURCE_DATE_EPOCH", "yesterday", "not an integer"]);
    assert_no_outputs(&out);
    // Extreme but valid times, and odd exclude patterns, are not errors.
    for m in ["-9223372036854775808", "9223372036854775807", "-1", "0"] {
        cl(&src, &out, &["--mtime", m]).succeeds();
    }
    for p in ["[", "\\", "*", "[!]"] {
        cl(&src, &out, &["--exclude", p]).succeeds();
    }
}

#[test]
fn special_files_and_loops() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir(&src).unwrap();
    run(Command::new("mkfifo").arg(src.join("fifo")));
    run(Command::new("mknod").arg(src.join("null")).args(["c", "1", "3"]));
    std::os::unix::fs::symlink("loop", src.join("loop")).unwrap();
    std::os::unix::fs::symlink("/", src.join("root")).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let out = d.path().join("out");
    // Never opened (a FIFO would block), links never followed, sockets
    // skipped with GNU tar's warning.
    let o = cl(&src, &out, &[]);
    o.succeeds();
    assert!(o.stderr.contains("./sock: socket ignored"), "{}", o.stderr);
    let listing = String::from_utf8(run(Command::new("tar").arg("-tvf").arg(out.join("layer.tar"))).stdout).unwrap();
    assert!(listing.contains("./fifo") && listing.contains("./loop -> loop") && listing.contains("./root -> /"), "{listing}");
    assert!(!listing.contains("./sock") && !listing.contains("./root/"), "{listing}");
}

/// Past PATH_MAX the tree cannot be walked by path: a clear error, no
/// stack overflow, for both walkers (customisation layer and store layer).
#[test]
fn very_deep_trees() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir(&src).unwrap();
    // Relative mkdir/chdir steps: no single path is ever too long.
    require("python3");
    run(Command::new("python3")
        .arg("-c")
        .arg("import os,sys\nos.chdir(sys.argv[1])\nfor _ in range(3000):\n    os.mkdir('d'); os.chdir('d')\nopen('f','w').write('deep')")
        .arg(&src));
    let out = d.path().join("out");
    let o = cl(&src, &out, &[]);
    if o.code != Some(0) {
        o.fails(&["File name too long"]);
        assert_no_outputs(&out);
    }
    // The same tree as a store path.
    let root = d.path();
    std::fs::create_dir_all(root.join("nix/store")).unwrap();
    std::fs::rename(&src, root.join("nix/store/aaaa-deep")).unwrap();
    let csrc = root.join("c");
    std::fs::create_dir(&csrc).unwrap();
    custom_layer(&csrc, &root.join("custom"));
    let conf = write(
        root,
        "conf.json",
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "config": {}, "store_dir": "nix/store", "from_image": null,
            "store_layers": [["nix/store/aaaa-deep"]], "customisation_layer": "custom", "repo_tag": "t:1",
            "created": "1970-01-01T00:00:01+00:00", "uid": 0, "gid": 0, "uname": "root", "gname": "root"
        }))
        .unwrap(),
    );
    let o = li([OsString::from("stream"), conf.into(), "-o".into(), root.join("img.tar").into()]);
    if o.code != Some(0) {
        o.fails(&["File name too long"]);
        assert!(!root.join("img.tar").exists());
    }
}

/// A big tree streams through: memory stays small.
#[test]
fn big_files_in_bounded_memory() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::File::create(src.join("sparse")).unwrap().set_len(2 << 30).unwrap();
    for i in 0..2000 {
        std::fs::write(src.join(format!("small-{i}")), format!("{i}")).unwrap();
    }
    let out = d.path().join("out");
    cl(&src, &out, &[]).succeeds().rss_below_mib(64);
}
