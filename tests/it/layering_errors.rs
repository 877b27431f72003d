//! Bad input: a clear message naming the culprit, exit status 1, no panic.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn bin() -> Command {
    Command::cargo_bin("layered-image").unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs and returns stderr, asserting failure without a panic.
fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{cmd:?}: expected exit 1, stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{cmd:?} panicked: {stderr}");
    assert!(stderr.starts_with("layered-image: error: "), "{stderr}");
    assert!(out.stdout.is_empty(), "no data on failure");
    stderr
}

const DANGLING: &str = r#"[{"path":"/nix/store/a-app","references":["/nix/store/a-app","/nix/store/b-missing"],"narSize":1}]"#;
const CYCLE: &str = r#"[
 {"path":"/nix/store/a-app","references":["/nix/store/b-lib"],"narSize":1},
 {"path":"/nix/store/b-lib","references":["/nix/store/b-lib","/nix/store/c-dep"],"narSize":1},
 {"path":"/nix/store/c-dep","references":["/nix/store/b-lib"],"narSize":1}]"#;

#[test]
fn invalid_json_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "broken.json", "[{\"path\": ");
    for sub in ["popularity", "auto-layer", "pipeline"] {
        let err = fails(bin().arg(sub).arg(&f));
        assert!(err.contains("broken.json") && err.contains("invalid JSON"), "{sub}: {err}");
    }
    let err = fails(bin().arg("popularity").arg(dir.path().join("absent.json")));
    assert!(err.contains("cannot read") && err.contains("absent.json"), "{err}");
}

#[test]
fn malformed_entries_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "g.json", r#"[{"path":"/nix/store/a-x","references":"oops"}]"#);
    let err = fails(bin().arg("popularity").arg(&f));
    assert!(err.contains("entry 0") && err.contains("references"), "{err}");
    let f = write(dir.path(), "k.json", r#"{"graph": []}"#);
    let err = fails(bin().arg("popularity").arg(&f).arg("nope"));
    assert!(err.contains("\"nope\" not found"), "{err}");
}

#[test]
fn dangling_reference_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "g.json", DANGLING);
    for sub in ["popularity", "auto-layer"] {
        let err = fails(bin().arg(sub).arg(&f));
        assert!(err.contains("/nix/store/a-app references /nix/store/b-missing, which is not in the graph"), "{err}");
    }
    let p = write(dir.path(), "p.json", &format!(r#"{{"graph": {DANGLING}, "pipeline": [["popularity_contest"]]}}"#));
    let err = fails(bin().arg("pipeline").arg(&p));
    assert!(err.contains("b-missing"), "{err}");
}

#[test]
fn cycles_are_rejected_but_self_references_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "g.json", CYCLE);
    for sub in ["popularity", "auto-layer"] {
        let err = fails(bin().arg(sub).arg(&f));
        assert!(err.contains("reference cycle: /nix/store/c-dep -> /nix/store/b-lib -> /nix/store/c-dep"), "{err}");
    }
    let ok = write(dir.path(), "self.json", r#"[{"path":"/nix/store/a-app","references":["/nix/store/a-app"],"narSize":1}]"#);
    bin().arg("popularity").arg(&ok).assert().success().stdout("/nix/store/a-app\n");
}

#[test]
fn max_layers_too_small_uses_nixpkgs_wording() {
    let dir = tempfile::tempdir().unwrap();
    let g = write(dir.path(), "g.json", r#"[{"path":"/nix/store/a-app","references":[],"narSize":1}]"#);
    let base = write(dir.path(), "base.json", r#"{"config":{},"architecture":"amd64","os":"linux"}"#);
    for layering in ["auto", "popularity"] {
        let err = fails(bin().args(["conf", "--graph"]).arg(&g).arg("--base-json").arg(&base).args([
            "--customisation-layer",
            "/nix/store/c-custom",
            "--image-name",
            "x",
            "--image-tag",
            "y",
            "--max-layers",
            "1",
            "--layering",
            layering,
        ]));
        assert!(
            err.contains("usedLayers 1 layers to store 'fromImage' and 'extraCommands', but only maxLayers=1 were allowed. At least 1 layer is required to store contents."),
            "{err}"
        );
    }
}

#[test]
fn unreadable_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("secret")).unwrap();
    std::fs::write(root.join("secret/f"), "x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("secret"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = bin();
    cmd.arg("customisation-layer").arg(&root).arg(&out);
    if nix::unistd::geteuid().is_root() {
        // root reads everything: drop to nobody so the permission bites.
        use std::os::unix::process::CommandExt;
        let mut std_cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("layered-image"));
        std_cmd.arg("customisation-layer").arg(&root).arg(&out).uid(65534).gid(65534);
        cmd = Command::from_std(std_cmd);
    }
    let err = fails(&mut cmd);
    std::fs::set_permissions(root.join("secret"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(err.contains("secret") && err.contains("cannot open directory"), "{err}");
    assert!(!out.join("layer.tar").exists(), "no partial layer.tar");
    let err = fails(bin().arg("customisation-layer").arg(dir.path().join("absent")).arg(&out));
    assert!(err.contains("absent"), "{err}");
}

#[test]
fn unknown_pipeline_step_and_bad_arguments_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (r#"[["popularity_contest"], ["frobnicate", 3]]"#, r#"unknown step "frobnicate""#),
        (r#"[["limit_layers", 0]]"#, "pipeline step limit_layers: max count needs to be > 0"),
        (r#"[["split_every", "3"]]"#, "pipeline step split_every: expected a positive integer"),
        (r#"[["subcomponent_out", "/nix/store/a-app"]]"#, "pipeline step subcomponent_out: expected a list of store paths"),
        (r#"[["split_paths", [{"parents_of": "x"}]]]"#, "pipeline step split_paths: unexpected split path spec"),
        (r#"[["over", "main"]]"#, "pipeline step over: takes 2 argument(s), got 1"),
        (r#"[["subcomponent_out", []], ["over", "nope", ["reverse"]]]"#, r#"pipeline step over: key "nope" not found"#),
        (r#"[["reverse"]]"#, "pipeline step reverse: expects a list"),
        (r#"{"not": "a list"}"#, "expected a list of steps"),
    ];
    for (pipeline, message) in cases {
        let p = write(
            dir.path(),
            "p.json",
            &format!(r#"{{"graph": [{{"path":"/nix/store/a-app","references":[],"narSize":1}}], "pipeline": {pipeline}}}"#),
        );
        let err = fails(bin().arg("pipeline").arg(&p));
        assert!(err.contains(message), "{pipeline}: {err}");
    }
}

#[test]
fn bad_dates_and_base_json_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let g = write(dir.path(), "g.json", "[]");
    let base = write(dir.path(), "base.json", r#"{"config":{}}"#);
    let conf = |extra: &[&str], base: &Path| {
        let mut c = bin();
        c.args(["conf", "--graph"]).arg(&g).arg("--base-json").arg(base);
        c.args(["--customisation-layer", "/nix/store/c", "--image-name", "x", "--image-tag", "y"]).args(extra);
        c
    };
    let err = fails(&mut conf(&["--created", "the day after never"], &base));
    assert!(err.contains("invalid --created") && err.contains("the day after never"), "{err}");
    let err = fails(&mut conf(&["--mtime", "2023-02-30"], &base));
    assert!(err.contains("invalid --mtime"), "{err}");
    let list = write(dir.path(), "list.json", "[]");
    let err = fails(&mut conf(&[], &list));
    assert!(err.contains("base json") && err.contains("not a JSON object"), "{err}");
    let err = fails(&mut conf(&["--layering", "pipeline"], &base));
    assert!(err.contains("--pipeline"), "{err}");
    let err = fails(&mut conf(&["--from-image", "/nonexistent/image.tar"], &base));
    assert!(err.contains("fromImage /nonexistent/image.tar"), "{err}");
}
