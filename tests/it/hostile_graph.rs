//! Hostile input for the graph commands (`popularity`, `auto-layer`,
//! `pipeline`, and `conf`, which reads the same graphs): every malformed
//! input gives one error line naming the file, key or path at fault, exit
//! 1, no panic, no hang; big inputs stay fast and small.

use crate::harness as hostile_support;
use hostile_support::*;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

const CMDS: [&str; 4] = ["popularity", "auto-layer", "pipeline", "conf"];

/// Runs graph-reading command `cmd` on graph file `g` (wrapping it as the
/// command needs: `pipeline` takes {graph, pipeline}, `conf` takes options).
fn on_graph(cmd: &str, dir: &Path, g: &Path) -> Outcome {
    match cmd {
        "pipeline" => {
            // The pipeline command embeds the graph: splice the raw bytes in.
            let raw = std::fs::read(g).unwrap();
            let mut text = b"{\"pipeline\": [[\"popularity_contest\"]], \"graph\": ".to_vec();
            text.extend_from_slice(&raw);
            text.push(b'}');
            let p = write(dir, "pipeline-input.json", text);
            li([OsString::from("pipeline"), p.into()])
        }
        "conf" => {
            let base = write(dir, "base.json", r#"{"config": {}, "architecture": "amd64", "os": "linux"}"#);
            let mut args: Vec<OsString> =
                ["conf", "--customisation-layer", "/c", "--image-name", "n", "--image-tag", "t", "--base-json"].iter().map(Into::into).collect();
            args.push(base.into());
            args.push("--graph".into());
            args.push(g.into());
            li(args)
        }
        _ => li([OsString::from(cmd), g.into()]),
    }
}

/// What names the input in the message: the pipeline command reports its
/// own file, the others the graph file.
fn culprit(cmd: &str) -> &'static str {
    if cmd == "pipeline" { "pipeline-input.json" } else { "g.json" }
}

fn each_cmd(graph: &str, needles: &[&str]) {
    for cmd in CMDS {
        let dir = tempfile::tempdir().unwrap();
        let g = write(dir.path(), "g.json", graph);
        let out = on_graph(cmd, dir.path(), &g);
        let mut all = vec![culprit(cmd)];
        all.extend_from_slice(needles);
        let line = out.fails(&all);
        assert!(out.stdout.is_empty(), "{cmd}: data on stdout after {line}");
    }
}

#[test]
fn truncated_and_invalid_json() {
    each_cmd(r#"[{"path": "/nix/store/a-x", "refer"#, &["invalid JSON"]);
    each_cmd("", &["invalid JSON"]);
    each_cmd("[1, 2,]", &["invalid JSON"]);
    each_cmd("[\"\u{1}\"]", &[]);
    // Not UTF-8 at all.
    for cmd in ["popularity", "auto-layer", "conf"] {
        let dir = tempfile::tempdir().unwrap();
        let g = write(dir.path(), "g.json", b"[{\"path\": \"/nix/store/\xff\xfe\", \"references\": []}]");
        on_graph(cmd, dir.path(), &g).fails(&["g.json", "invalid JSON"]);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(200_000);
    each_cmd(&deep, &["invalid JSON"]);
    let deep_obj = format!("{}1{}", "{\"graph\":".repeat(100_000), "}".repeat(100_000));
    each_cmd(&deep_obj, &["invalid JSON"]);
}

#[test]
fn wrong_types() {
    each_cmd("5", &["expected a JSON list or object"]);
    each_cmd("\"/nix/store/a-x\"", &["expected a JSON list or object"]);
    each_cmd("[1]", &["entry 0", "not an object"]);
    each_cmd(r#"[{"path": 5, "references": []}]"#, &["entry 0", "\"path\""]);
    each_cmd(r#"[{"path": "/nix/store/a-x", "references": "/nix/store/a-x"}]"#, &["entry 0", "/nix/store/a-x", "\"references\" is not a list"]);
    each_cmd(r#"[{"path": "/nix/store/a-x", "references": [7]}]"#, &["entry 0", "/nix/store/a-x", "not a string"]);
    each_cmd(r#"[{"path": "/nix/store/a-x", "references": [], "narSize": "12"}]"#, &["entry 0", "narSize"]);
    each_cmd(r#"{"graph": {"a": 1}, "other": 3}"#, &["expected a list"]);
}

#[test]
fn missing_keys() {
    each_cmd(r#"[{"references": []}]"#, &["entry 0", "missing string key \"path\""]);
    each_cmd(r#"[{"path": "/nix/store/a-x"}]"#, &["entry 0", "/nix/store/a-x", "missing list key \"references\""]);
    each_cmd(r#"[{"path": "/nix/store/a-x", "references": null}]"#, &["entry 0", "missing list key \"references\""]);
}

#[test]
fn huge_and_negative_numbers() {
    for n in ["18446744073709551616", "1e400", "-1", "1.5", "123456789012345678901234567890"] {
        let g = format!(r#"[{{"path": "/nix/store/a-x", "references": [], "narSize": {n}}}]"#);
        let shown = if n == "1e400" { "1e+400" } else { n };
        each_cmd(&g, &["entry 0", "/nix/store/a-x", "narSize", shown]);
    }
    // The largest valid size is fine (sums saturate or widen, no overflow).
    let g = r#"[{"path":"/nix/store/a-x","references":["/nix/store/b-y"],"narSize":18446744073709551615},
               {"path":"/nix/store/b-y","references":[],"narSize":18446744073709551615},
               {"path":"/nix/store/c-z","references":["/nix/store/b-y"],"narSize":18446744073709551615}]"#;
    for cmd in ["popularity", "auto-layer", "pipeline", "conf"] {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "g.json", g);
        on_graph(cmd, dir.path(), &f).succeeds();
    }
}

#[test]
fn duplicates_dangling_and_cycles() {
    each_cmd(
        r#"[{"path":"/nix/store/a-x","references":[]},{"path":"/nix/store/a-x","references":[]}]"#,
        &["path /nix/store/a-x is listed more than once"],
    );
    each_cmd(
        r#"[{"path":"/nix/store/a-x","references":["/nix/store/zz"]}]"#,
        &["/nix/store/a-x references /nix/store/zz, which is not in the graph"],
    );
    each_cmd(
        r#"[{"path":"/nix/store/a-x","references":["/nix/store/b-y"]},{"path":"/nix/store/b-y","references":["/nix/store/a-x"]}]"#,
        &["reference cycle:", "/nix/store/a-x", "/nix/store/b-y"],
    );
}

/// nixpkgs has no rule for an empty closure; an image of nothing but the
/// customisation layer is meaningful, so an empty graph is valid input
/// and yields no store layers.
#[test]
fn empty_graph_is_valid_and_empty() {
    for (graph, cmd, want) in
        [("[]", "popularity", "\n"), ("[]", "auto-layer", "[]\n"), ("{}", "popularity", "\n"), ("{\"graph\": []}", "auto-layer", "[]\n")]
    {
        let dir = tempfile::tempdir().unwrap();
        let g = write(dir.path(), "g.json", graph);
        let out = on_graph(cmd, dir.path(), &g);
        out.succeeds();
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{cmd} on {graph}");
    }
    let dir = tempfile::tempdir().unwrap();
    let g = write(dir.path(), "g.json", "[]");
    let out = on_graph("pipeline", dir.path(), &g);
    out.succeeds();
    let out = on_graph("conf", dir.path(), &g);
    out.succeeds();
    let conf: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(conf["store_layers"], serde_json::json!([]));
}

#[test]
fn unreadable_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Missing, a directory, a symlink loop, a non-UTF-8 name.
    let missing = d.join("absent.json");
    let loop_ = d.join("loop.json");
    std::os::unix::fs::symlink(&loop_, &loop_).unwrap();
    let odd = d.join(OsString::from_vec(b"odd-\xff.json".to_vec()));
    for cmd in ["popularity", "auto-layer", "pipeline"] {
        li([OsString::from(cmd), missing.clone().into()]).fails(&["cannot read", "absent.json", "No such file"]);
        li([OsString::from(cmd), d.into()]).fails(&["cannot read", "Is a directory"]);
        li([OsString::from(cmd), loop_.clone().into()]).fails(&["cannot read", "loop.json", "symbolic links"]);
        li([OsString::from(cmd), odd.clone().into()]).fails(&["cannot read", "odd-\u{fffd}.json"]);
    }
    on_graph("conf", d, &missing).fails(&["absent.json"]);
    on_graph("conf", d, &loop_).fails(&["loop.json", "symbolic links"]);
    // Permission denied: as nobody.
    let secret = write(d, "secret.json", "[]");
    open_up(d);
    run(std::process::Command::new("chmod").arg("0600").arg(&secret));
    for cmd in ["popularity", "auto-layer", "pipeline"] {
        li_nobody(&[OsString::from(cmd), secret.clone().into()]).fails(&["cannot read", "secret.json", "Permission denied"]);
    }
}

#[test]
fn non_utf8_file_names_work_when_valid() {
    let dir = tempfile::tempdir().unwrap();
    let odd: PathBuf = dir.path().join(OsString::from_vec(b"g-\xff.json".to_vec()));
    std::fs::write(&odd, r#"[{"path":"/nix/store/a-x","references":[]}]"#).unwrap();
    let out = li([OsString::from("popularity"), odd.clone().into()]);
    out.succeeds();
    assert_eq!(out.stdout, b"/nix/store/a-x\n");
    li([OsString::from("auto-layer"), odd.into()]).succeeds();
}

#[test]
fn auto_layer_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let g = write(dir.path(), "g.json", r#"[{"path":"/nix/store/a-x","references":[]}]"#);
    li([OsString::from("auto-layer"), g.clone().into(), dir.path().join("ignore-absent").into()])
        .fails(&["cannot read ignore file", "ignore-absent"]);
    // Limits nixpkgs' auto-layer.py accepts, however odd, do not crash.
    for limit in ["-5", "0", "1", "9223372036854775807", "-9223372036854775808"] {
        let empty = write(dir.path(), "ignore", "");
        li([OsString::from("auto-layer"), g.clone().into(), empty.into(), limit.into()]).succeeds();
    }
}

#[test]
fn pipeline_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let graph = r#"[{"path":"/nix/store/a-x","references":["/nix/store/b-y"],"narSize":1},{"path":"/nix/store/b-y","references":[],"narSize":2}]"#;
    let case = |body: &str, needles: &[&str]| {
        let p = write(d, "p.json", body);
        let mut all = vec!["p.json"];
        // Pipeline-step errors name the step; a pipeline file's, that file.
        if needles.iter().any(|n| n.starts_with("pipeline") || n.ends_with(".json")) {
            all.clear();
        }
        all.extend_from_slice(needles);
        li([OsString::from("pipeline"), p.into()]).fails(&all)
    };
    case(&format!(r#"{{"graph": {graph}}}"#), &["key \"pipeline\" not found"]);
    case(r#"{"pipeline": []}"#, &["key \"graph\" not found"]);
    case(&format!(r#"{{"graph": {graph}, "pipeline": 5}}"#), &["pipeline: expected a list of steps"]);
    case(&format!(r#"{{"graph": {graph}, "pipeline": [[]]}}"#), &["pipeline: a step must be a list"]);
    case(&format!(r#"{{"graph": {graph}, "pipeline": [[7]]}}"#), &["pipeline: step name must be a string"]);
    case(&format!(r#"{{"graph": {graph}, "pipeline": [["explode"]]}}"#), &["pipeline: unknown step \"explode\""]);
    case(&format!(r#"{{"graph": {graph}, "pipeline": [["flatten", 1]]}}"#), &["pipeline step flatten", "argument"]);
    for n in ["0", "-1", "1e400", "18446744073709551616", "2.5", "\"3\""] {
        let shown = if n == "1e400" { "1e+400" } else { n };
        case(&format!(r#"{{"graph": {graph}, "pipeline": [["limit_layers", {n}]]}}"#), &["pipeline step limit_layers", shown]);
    }
    case(&format!(r#"{{"graph": {graph}, "pipeline": [["popularity_contest"]], "exclude_paths": "x"}}"#), &["exclude_paths is not a list"]);
    case(&format!(r#"{{"graph": {graph}, "pipeline": [["popularity_contest"]], "exclude_paths": [1]}}"#), &["exclude_paths: not a string"]);
    case(&format!(r#"{{"graph": {graph}, "pipeline": "{}"}}"#, d.join("nope.json").display()), &["cannot read pipeline file", "nope.json"]);
    write(d, "bad-steps.json", "[[\"popularity_contest\"");
    case(&format!(r#"{{"graph": {graph}, "pipeline": "{}"}}"#, d.join("bad-steps.json").display()), &["bad-steps.json", "invalid JSON"]);
    // A huge limit is a valid limit.
    let p = write(d, "ok.json", format!(r#"{{"graph": {graph}, "pipeline": [["popularity_contest"], ["limit_layers", 18446744073709551615]]}}"#));
    li([OsString::from("pipeline"), p.into()]).succeeds();
    // Excluding every path leaves an empty graph: no layers.
    let p = write(
        d,
        "ok.json",
        format!(r#"{{"graph": {graph}, "pipeline": [["popularity_contest"]], "exclude_paths": ["/nix/store/a-x", "/nix/store/b-y"]}}"#),
    );
    let out = li([OsString::from("pipeline"), p.into()]);
    out.succeeds();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn conf_generator_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = write(d, "g.json", r#"[{"path":"/nix/store/a-x","references":[]}]"#);
    let good_base = write(d, "base.json", r#"{"config": {}, "architecture": "amd64", "os": "linux"}"#);
    let conf = |base: &Path, extra: &[&str]| {
        let mut args: Vec<OsString> =
            ["conf", "--customisation-layer", "/c", "--image-name", "n", "--image-tag", "t"].iter().map(Into::into).collect();
        args.extend(["--graph".into(), g.clone().into(), "--base-json".into(), base.into()]);
        args.extend(extra.iter().map(Into::into));
        li(args)
    };
    conf(&good_base, &[]).succeeds();
    conf(&d.join("nobase.json"), &[]).fails(&["cannot read base json", "nobase.json"]);
    conf(&write(d, "b1.json", "{\"config\": "), &[]).fails(&["base json", "b1.json", "invalid JSON"]);
    conf(&write(d, "b2.json", "[]"), &[]).fails(&["base json", "b2.json", "not a JSON object"]);
    conf(&good_base, &["--created", "not a date"]).fails(&["invalid --created"]);
    conf(&good_base, &["--mtime", "2024-13-01T00:00:00Z"]).fails(&["invalid --mtime"]);
    conf(&good_base, &["--layering", "pipeline"]).fails(&["--layering pipeline needs --pipeline FILE"]);
    conf(&good_base, &["--layering", "pipeline", "--pipeline", d.join("nopipe.json").to_str().unwrap()])
        .fails(&["cannot read pipeline file", "nopipe.json"]);
    write(d, "pipe.json", r#"{"steps": []}"#);
    conf(&good_base, &["--layering", "pipeline", "--pipeline", d.join("pipe.json").to_str().unwrap()]).fails(&["pipe.json", "no \"pipeline\" key"]);
    write(d, "pipe2.json", r#"[["nope"]]"#);
    conf(&good_base, &["--layering", "pipeline", "--pipeline", d.join("pipe2.json").to_str().unwrap()])
        .fails(&["pipe2.json", "unknown step \"nope\""]);
    conf(&good_base, &["--from-image", d.join("noimage.tar").to_str().unwrap()]).fails(&["fromImage", "noimage.tar"]);
    conf(&good_base, &["--from-image", write(d, "junk.tar", vec![b'j'; 2048]).to_str().unwrap()]).fails(&["fromImage", "junk.tar"]);
    conf(&good_base, &["-o", d.join("no/such/dir/conf.json").to_str().unwrap()]).fails(&["no/such/dir"]);
}

/// A 30,000-path closure (ten times a big real one): seconds, not
/// minutes, and bounded memory. Popularity is inherently superlinear (it
/// counts every path's dependents), so the graph is wide, not a long chain.
#[test]
fn big_graph_is_fast_and_small() {
    let dir = tempfile::tempdir().unwrap();
    let n: usize = 30_000;
    let mut text = String::from("[");
    for i in 0..n {
        if i > 0 {
            text.push(',');
        }
        // Each path references a few lower-numbered ones: a wide DAG.
        let refs: Vec<String> = [i / 2, i / 3, i / 5].iter().filter(|&&j| j < i).map(|j| format!("\"/nix/store/{j:032}-p\"")).collect();
        text.push_str(&format!(r#"{{"path":"/nix/store/{i:032}-p","references":[{}],"narSize":{}}}"#, refs.join(","), i * 7 % 1000));
    }
    text.push(']');
    let g = write(dir.path(), "g.json", &text);
    for cmd in ["popularity", "auto-layer"] {
        let t = std::time::Instant::now();
        let out = li([OsString::from(cmd), g.clone().into()]);
        out.succeeds();
        eprintln!("{cmd}: {:?}, peak RSS {} KiB", t.elapsed(), out.rss_kib);
        assert!(t.elapsed().as_secs() < 30, "{cmd} took {:?}", t.elapsed());
        // ~50 MiB measured for popularity; memory grows with the graph.
        out.rss_below_mib(64);
    }
}

/// `conf --from-image` reads the base image's manifest only to count its
/// layers; the same limits as `stream` apply: regular files only, no
/// oversized manifest, no decompression bomb, bounded memory.
#[test]
fn conf_generator_hostile_base_images() {
    require("zstd");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = write(d, "g.json", r#"[{"path":"/nix/store/a-x","references":[]}]"#);
    let base = write(d, "base.json", r#"{"config": {}, "architecture": "amd64", "os": "linux"}"#);
    let conf = |image: &Path| {
        let mut args: Vec<OsString> =
            ["conf", "--customisation-layer", "/c", "--image-name", "n", "--image-tag", "t"].iter().map(Into::into).collect();
        args.extend(["--graph".into(), g.clone().into(), "--base-json".into(), base.clone().into(), "--from-image".into(), image.into()]);
        li(args)
    };
    let sh = |cmd: &str| run(std::process::Command::new("sh").arg("-c").arg(cmd).current_dir(d));
    sh("mkfifo fifo.tar");
    conf(&d.join("fifo.tar")).fails(&["fromImage", "fifo.tar", "not a regular file"]);
    // A 200 MiB manifest.json (zeros: GNU tar stores them in full).
    sh("mkdir m && truncate -s 200M m/manifest.json && tar -C m -cf - manifest.json | zstd -q -c > bigmanifest.tar.zst && rm -r m");
    let out = conf(&d.join("bigmanifest.tar.zst"));
    out.fails(&["fromImage", "bigmanifest.tar.zst", "manifest.json", "implausibly large"]);
    out.rss_below_mib(64);
    // A GNU long name claiming 2 GiB (read whole into memory by a naive reader).
    let script = r#"
import sys
def hdr(name, size, typ):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b'0000644\x00'; h[108:116] = b'0000000\x00'; h[116:124] = b'0000000\x00'
    h[124:136] = ('%011o' % size).encode() + b'\x00'
    h[136:148] = b'00000000000\x00'; h[156:157] = typ; h[257:265] = b'ustar  \x00'
    h[148:156] = b'        '
    h[148:156] = ('%06o\x00 ' % sum(h)).encode()
    return bytes(h)
with open(sys.argv[1], 'wb') as f:
    f.write(hdr(b'././@LongLink', 2 << 30, b'L'))
    f.seek(512 + (2 << 30))
    f.write(b'\x00' * 1024)
"#;
    run(std::process::Command::new("python3").arg("-c").arg(script).arg(d.join("longname.tar")));
    sh("zstd -q -3 --rm longname.tar -o longname.tar.zst");
    let out = conf(&d.join("longname.tar.zst"));
    out.fails(&["fromImage", "longname.tar.zst"]);
    out.rss_below_mib(64);
    // A 2 GiB member of zeros before the manifest: a bomb, stopped after
    // ~1100x the compressed size instead of decompressing it all.
    sh(
        "mkdir b && truncate -s 2G b/big && echo '[{\"Layers\": []}]' > b/manifest.json && tar -C b -cf - big manifest.json | zstd -q -3 -c > bomb.zst && rm -r b",
    );
    let out = conf(&d.join("bomb.zst"));
    out.fails(&["fromImage", "bomb.zst", "decompression bomb"]);
    out.rss_below_mib(64);
}

/// Usage errors are one `layered-image: error:` line too (exit 2, like
/// argparse), naming the argument at fault; help still prints in full.
#[test]
fn usage_errors_are_one_line() {
    for (args, needle) in [
        (vec!["auto-layer", "g.json", "ignore", "many"], "many"),
        (vec!["auto-layer", "g.json", "ignore", "99999999999999999999"], "99999999999999999999"),
        (vec!["stream"], "<CONF>"),
        (vec!["customisation-layer", "dir"], "<OUTDIR>"),
        (vec!["customisation-layer", "dir", "out", "--mtime", "noon"], "noon"),
        (
            vec!["conf", "--graph", "g", "--base-json", "b", "--customisation-layer", "c", "--image-name", "n", "--image-tag", "t", "--uid", "-1"],
            "'-1'",
        ),
        (vec!["explode"], "explode"),
        (vec!["stream", "c.json", "--bogus"], "--bogus"),
    ] {
        let out = li(&args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", out.stderr);
        assert!(lines[0].starts_with("layered-image: error: ") && lines[0].contains(needle), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    let help = li(["--help"]);
    assert_eq!(help.code, Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("stream"));
    let version = li(["--version"]);
    assert_eq!(version.code, Some(0));
}
