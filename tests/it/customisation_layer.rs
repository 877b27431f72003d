//! `customisation-layer` against real GNU tar (the command nixpkgs runs)
//! on real directories: the bytes must be identical.

use assert_cmd::Command;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

fn bin() -> Command {
    Command::cargo_bin("layered-image").unwrap()
}

fn need(tool: &str) {
    let found = std::process::Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is required by this test (tests/install-deps.sh installs it)");
}

fn gnu_tar(dir: &Path, mtime: i64, extra: &[&str]) -> Vec<u8> {
    need("tar");
    let out = std::process::Command::new("tar")
        .current_dir(dir)
        .args(["--sort", "name", "--numeric-owner", "--mtime", &format!("@{mtime}"), "--hard-dereference"])
        .args(extra)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "tar failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn ours(dir: &Path, outdir: &Path, args: &[&str]) -> Vec<u8> {
    bin().arg("customisation-layer").arg(dir).arg(outdir).args(args).assert().success();
    std::fs::read(outdir.join("layer.tar")).unwrap()
}

fn file(path: PathBuf, content: &[u8], mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn assert_same(dir: &Path, mtime: i64) {
    let expected = gnu_tar(dir, mtime, &[]);
    let out = tempfile::tempdir().unwrap();
    let got = ours(dir, out.path(), &["--mtime", &mtime.to_string()]);
    assert_eq!(got.len(), expected.len(), "archive sizes differ");
    if let Some(i) = got.iter().zip(&expected).position(|(a, b)| a != b) {
        panic!(
            "first difference at byte {i} (block {}): ours {:?}, tar {:?}",
            i / 512,
            String::from_utf8_lossy(&got[i / 512 * 512..i / 512 * 512 + 160]),
            String::from_utf8_lossy(&expected[i / 512 * 512..i / 512 * 512 + 160])
        );
    }
    let checksum = std::fs::read_to_string(out.path().join("checksum")).unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&expected))
    };
    assert_eq!(checksum, format!("{sha}\n"), "checksum is `sha256sum | cut -f1 -d' '` of the tar");
}

#[test]
fn modes_links_and_special_files() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    file(r.join("bin/hello"), b"#!/bin/sh\necho hi\n", 0o755);
    file(r.join("bin/suid"), b"x", 0o4755);
    file(r.join("bin/sgid"), b"x", 0o2711);
    file(r.join("etc/readonly"), b"ro", 0o444);
    file(r.join("etc/empty-file"), b"", 0o644);
    file(r.join("etc/block"), &[7u8; 512], 0o600);
    file(r.join("etc/big"), &(0..70_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(), 0o644);
    std::fs::create_dir_all(r.join("empty/nested/dirs")).unwrap();
    std::fs::create_dir_all(r.join("tmp")).unwrap();
    std::fs::set_permissions(r.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::create_dir_all(r.join("locked")).unwrap();
    std::fs::set_permissions(r.join("locked"), std::fs::Permissions::from_mode(0o555)).unwrap();
    symlink("/nix/store/00000000000000000000000000000000-hello-2.12/bin/hello", r.join("bin/hello-link")).unwrap();
    symlink("../etc/readonly", r.join("bin/relative")).unwrap();
    symlink("dangling-target", r.join("dangling")).unwrap();
    symlink("bin", r.join("dir-link")).unwrap();
    std::fs::hard_link(r.join("bin/hello"), r.join("hard-a")).unwrap();
    std::fs::hard_link(r.join("bin/hello"), r.join("etc/hard-b")).unwrap();
    // Sorting is by bytes: upper case, dots and dashes before letters.
    for name in ["Zeta", "alpha", "alpha-1", "alpha.1", "alpha_1", "a b", ".hidden"] {
        file(r.join("sort").join(name), name.as_bytes(), 0o644);
    }
    file(r.join("unicode/café"), b"cafe", 0o644);
    file(r.join("unicode/日本語/ファイル"), b"jp", 0o644);
    file(r.join("unicode").join(OsStr::from_bytes(b"bad\xffname")), b"latin1", 0o644);
    nix::unistd::mkfifo(&r.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(r.join("socket")).unwrap();
    // Permission bits must not depend on the umask of whoever runs the test.
    std::fs::set_permissions(r, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_same(r, 315532800);

    // Sockets are skipped with a warning, like GNU tar's "socket ignored".
    let out = tempfile::tempdir().unwrap();
    let run = bin().arg("customisation-layer").arg(r).arg(out.path()).output().unwrap();
    assert!(run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("./socket: socket ignored"));
    std::fs::set_permissions(r.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn long_names_and_long_link_targets() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    // Member names "./" + k (+ "/" for directories) around the 100-byte field.
    for k in 95..=103 {
        file(r.join("f".repeat(k)), b"f", 0o644);
        std::fs::create_dir_all(r.join("d".repeat(k - 1))).unwrap();
    }
    for k in 97..=103 {
        symlink("t".repeat(k), r.join(format!("link{k}"))).unwrap();
        symlink("u".repeat(k), r.join(format!("{}{k}", "l".repeat(100)))).unwrap();
    }
    let mut deep = r.join("deep");
    for i in 0..12 {
        deep = deep.join(format!("level-{i}-{}", "x".repeat(30)));
    }
    file(deep.join("leaf.txt"), b"leaf", 0o644);
    file(deep.join("ünïcödé-".repeat(10)), b"u", 0o644);
    assert_same(r, 1);
}

#[test]
fn ownership_under_fakeroot() {
    need("fakeroot");
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("root");
    file(r.join("x"), b"owned", 0o644);
    file(r.join("dir/y"), b"y", 0o600);
    let out = d.path().join("out");
    let exe = assert_cmd::cargo::cargo_bin("layered-image");
    let script = format!(
        "chown 1000 {r}/x && chown 1234:5678 {r}/dir && chown 3000000:4000000 {r}/dir/y && {exe} customisation-layer {r} {out} --mtime 1 && \
         cd {r} && tar --sort name --numeric-owner --mtime @1 --hard-dereference -cf {out}/gnu.tar .",
        r = r.display(),
        out = out.display(),
        exe = exe.display()
    );
    let status = std::process::Command::new("fakeroot").args(["sh", "-c", &script]).status().unwrap();
    assert!(status.success());
    let ours = std::fs::read(out.join("layer.tar")).unwrap();
    assert_eq!(ours, std::fs::read(out.join("gnu.tar")).unwrap());
    let mut archive = tar::Archive::new(&ours[..]);
    let owners: Vec<(String, u64, u64)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().unwrap().display().to_string(), e.header().uid().unwrap(), e.header().gid().unwrap())
        })
        .collect();
    assert!(owners.contains(&("./x".to_string(), 1000, 0)), "{owners:?}");
    assert!(owners.contains(&("./dir/".to_string(), 1234, 5678)), "{owners:?}");
    // Beyond 7 octal digits GNU tar switches to base-256.
    assert!(owners.contains(&("./dir/y".to_string(), 3000000, 4000000)), "{owners:?}");
}

#[test]
fn excludes_like_the_fakechroot_variant() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    for p in [
        "proc/1/status",
        "sys/kernel/x",
        "nix/store/abc-foo/bin/foo",
        "etc/passwd",
        "opt/proc",
        "var/log/a.log",
        "var/cache/x",
        "srv/cache",
        "cachet/x",
        "a.log.1",
    ] {
        file(r.join(p), p.as_bytes(), 0o644);
    }
    std::fs::set_permissions(r, std::fs::Permissions::from_mode(0o755)).unwrap();
    let patterns = ["./proc", "./sys", "./nix/store", "*.log", "cache", "./srv/*", "./e?c/pass[vw]d"];
    let tar_args: Vec<String> = patterns.iter().map(|p| format!("--exclude={p}")).collect();
    let tar_args: Vec<&str> = tar_args.iter().map(String::as_str).collect();
    let expected = gnu_tar(r, 315532800, &tar_args);
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["--mtime", "315532800"];
    for p in &patterns {
        args.extend(["--exclude", p]);
    }
    assert_eq!(ours(r, out.path(), &args), expected);
}

#[test]
fn mtime_defaults_to_source_date_epoch_then_1980() {
    let d = tempfile::tempdir().unwrap();
    file(d.path().join("a"), b"a", 0o644);
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = tempfile::tempdir().unwrap();
    bin().env("SOURCE_DATE_EPOCH", "12345").arg("customisation-layer").arg(d.path()).arg(out.path()).assert().success();
    assert_eq!(std::fs::read(out.path().join("layer.tar")).unwrap(), gnu_tar(d.path(), 12345, &[]));
    bin().env_remove("SOURCE_DATE_EPOCH").arg("customisation-layer").arg(d.path()).arg(out.path()).assert().success();
    assert_eq!(std::fs::read(out.path().join("layer.tar")).unwrap(), gnu_tar(d.path(), 315532800, &[]));
    let checksum = std::fs::read_to_string(out.path().join("checksum")).unwrap();
    assert_eq!(checksum.len(), 65);
    assert!(checksum[..64].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
}
