//! What a person sees while `copy` works: the binary run in a tmux pane of
//! a fixed size, the screen read with `tmux capture-pane` while it runs and
//! when it is done; what a CI log (not a terminal) gets; and `--quiet`.
//!
//! Every wait polls with a bounded deadline; the registry is waited for
//! until it answers `GET /v2/` itself (its access log names our probe).

use crate::harness::*;
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Long enough for a loaded 2-core CI machine; only reached on a hang.
const DEADLINE: Duration = Duration::from_secs(120);
const WIDTH: usize = 150;
const HEIGHT: usize = 45;

/// A tmux server of its own (its socket in a temporary directory), one
/// pane of WIDTH x HEIGHT running `script`; killed on drop.
struct Pane {
    dir: tempfile::TempDir,
}

impl Pane {
    fn start(script: &str) -> Pane {
        require("tmux");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.sh");
        // The pane stays (sleeping) after the command so that its last
        // screen can be read; the server's end kills it.
        std::fs::write(&file, format!("#!/bin/sh\n{script}\necho \"exit=$?\"\nexec sleep 3600\n")).unwrap();
        run(Command::new("chmod").arg("+x").arg(&file));
        let pane = Pane { dir };
        run(pane.tmux().args(["new-session", "-d", "-x", &WIDTH.to_string(), "-y", &HEIGHT.to_string()]).arg(&file).env("TERM", "xterm-256color"));
        pane
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        // A server of its own even when the tests run inside tmux.
        c.arg("-S").arg(self.dir.path().join("socket")).args(["-f", "/dev/null"]).env_remove("TMUX");
        c
    }

    /// The screen, row by row (trailing blanks trimmed). Not joined: the
    /// bars fill their rows, and tmux would join them to the next.
    fn screen(&self) -> String {
        String::from_utf8(run(self.tmux().args(["capture-pane", "-p"])).stdout).unwrap()
    }

    /// Every distinct screen until the command is done, and its exit status.
    fn watch(&self) -> (Vec<String>, i32) {
        let end = Instant::now() + DEADLINE;
        let mut screens: Vec<String> = Vec::new();
        loop {
            let s = self.screen();
            if screens.last() != Some(&s) {
                screens.push(s.clone());
            }
            if let Some(code) = s.lines().find_map(|l| l.strip_prefix("exit=")) {
                return (screens, code.trim().parse().unwrap());
            }
            assert!(Instant::now() < end, "the command did not finish within {DEADLINE:?}; its screen:\n{s}");
            std::thread::sleep(Duration::from_millis(40));
        }
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").stderr(Stdio::null()).status();
    }
}

/// A byte stream no compressor shrinks (xorshift), so that compressing it
/// takes a while and the bar can be seen moving.
fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// busybox_store with a third store layer of `data_len` incompressible bytes.
fn store_with_data(data_len: usize) -> BusyboxStore {
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    let data = "nix/store/3c0d8w1h5q2n8m4k6j7p9r0s2t4v6x8z-data";
    std::fs::create_dir_all(root.join(data)).unwrap();
    std::fs::write(root.join(data).join("blob"), incompressible(data_len)).unwrap();
    let conf_path = root.join("conf.json");
    let mut conf: Value = serde_json::from_slice(&std::fs::read(&conf_path).unwrap()).unwrap();
    conf["store_layers"] = json!([[store.busybox], [store.script], [data]]);
    std::fs::write(&conf_path, serde_json::to_vec(&conf).unwrap()).unwrap();
    store
}

/// indicatif's HumanBytes, which the bar and the layer lines use.
fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2} {}", UNITS[u])
}

/// The image's layers as `explain` reads them from the layout: short
/// diff_id and tar size.
fn layers_of(image: &str) -> Vec<(String, u64)> {
    let out = run(Command::new(bin()).args(["explain", image, "--json", "--compress", "none"]));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    e["layers"].as_array().unwrap().iter().map(|l| (l["diff_id"].as_str().unwrap()[7..19].to_string(), l["size"].as_u64().unwrap())).collect()
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// The command line a pane runs: the binary with a private HOME and blob cache.
fn li_line(root: &Path, args: &str) -> String {
    format!(
        "HOME={home} LAYERED_IMAGE_CACHE_DIR={cache} {bin} {args} 2>&1",
        home = shell_quote(root),
        cache = shell_quote(&root.join("cache")),
        bin = shell_quote(&bin())
    )
}

/// Whether `screen` shows `text`, whichever rows a long line wrapped over
/// (compared without blanks: a row ending in one is trimmed).
fn shows(screen: &str, text: &str) -> bool {
    let flat: String = screen.lines().collect::<String>().chars().filter(|c| *c != ' ').collect();
    flat.contains(&text.replace(' ', ""))
}

/// Lines of the form "Layer I/N SHORT SIZE[ -> SIZE]: WHAT".
fn layer_lines(screen: &str) -> Vec<&str> {
    screen.lines().filter(|l| l.starts_with("Layer ")).collect()
}

fn assert_short_layer_lines(screen: &str, layers: &[(String, u64)], what: &str) {
    let lines = layer_lines(screen);
    assert_eq!(lines.len(), layers.len(), "one line per layer:\n{screen}");
    let n = layers.len();
    for (i, (short, size)) in layers.iter().enumerate() {
        let head = format!("Layer {}/{n} {short} {}", i + 1, human(*size));
        let line = lines.iter().find(|l| l.starts_with(&head)).unwrap_or_else(|| panic!("no line {head:?}:\n{screen}"));
        assert!(line.len() <= 120, "a layer line of {} characters: {line}", line.len());
        assert!(line.ends_with(what), "{line:?} does not say {what:?}");
        // No full digest, no unformatted byte count.
        assert!(!line.contains("sha256:"), "{line}");
        assert!(!line.contains(&size.to_string()) || *size < 1024, "{line}");
    }
}

/// On a terminal: one overall bar (bytes done of the total, rate, time
/// left) while the layers are made, one short line per layer as it ends,
/// the summary with the full digests at the end, and no bar left over.
#[test]
fn on_a_terminal_copy_shows_one_bar_short_layer_lines_and_a_summary() {
    let store = store_with_data(24 << 20);
    let root = store.dir.path();
    let layout = root.join("layout");
    let dest = format!("oci:{}:t", layout.display());
    // One thread at the highest level: the big layer takes a while.
    let line = format!(
        "cd {} && {}",
        shell_quote(root),
        li_line(root, &format!("copy conf.json {} -j 1 --compress-level 9", shell_quote(Path::new(&dest))))
    );
    let pane = Pane::start(&line);
    let (screens, code) = pane.watch();
    let last = screens.last().unwrap();
    assert_eq!(code, 0, "{last}");
    verify_image(&dest);
    let layers = layers_of(&dest);
    let total: u64 = layers.iter().map(|l| l.1).sum();

    // The bar: "[===>   ] 7.90 MiB/23.99 MiB read (11.70 MiB/s, 3s left)".
    let of_total = format!("/{} read (", human(total));
    let bars: Vec<&str> = screens.iter().flat_map(|s| s.lines()).filter(|l| l.starts_with('[') && l.contains(&of_total)).collect();
    assert!(!bars.is_empty(), "no overall bar of {} seen in {} screens; the last:\n{last}", human(total), screens.len());
    for bar in &bars {
        assert!(bar.contains("/s, ") && bar.ends_with(" left)"), "a bar without rate or time left: {bar:?}");
        assert!(bar.len() <= WIDTH, "{bar}");
    }
    for s in &screens {
        let n = s.lines().filter(|l| l.starts_with('[') && l.contains(" read (")).count();
        assert!(n <= 1, "more than one overall bar:\n{s}");
    }

    // The end: a line per layer, the summary, no bar.
    assert_short_layer_lines(last, &layers, ": written");
    assert!(!last.contains(" read ("), "a bar is left on the screen:\n{last}");
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"].as_str().unwrap();
    let n = layers.len();
    assert!(shows(last, &format!("manifest {manifest}, {n} layers ({n} written, 0 already present)")), "{last}");
    assert!(shows(last, &format!("Wrote {dest} as {manifest}")), "{last}");
}

/// To a registry on a terminal: the layer lines say what happened to each
/// (uploaded; on a second push, already there, not compressed again), a
/// line per blob and the pushed digest end it; skopeo reads the image back.
#[test]
fn on_a_terminal_a_push_says_what_happened_to_each_layer() {
    require("skopeo");
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    let reg = Registry::start();
    let dest = reg.dest("li/progress:t");
    let line = format!("cd {} && {}", shell_quote(root), li_line(root, &format!("copy conf.json {dest} --dest-tls-verify=false")));
    let (screens, code) = Pane::start(&line).watch();
    let first = screens.last().unwrap().clone();
    assert_eq!(code, 0, "{first}\nregistry log:\n{}", reg.log());
    let digest = String::from_utf8(
        run(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"]).arg(&dest).env("HOME", root)).stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    assert!(shows(&first, &format!("Pushed {dest} as {digest} (tags: t)")), "{first}");
    // A line per blob, with its full digest (a row and a bit).
    let blobs = first.lines().filter(|l| l.starts_with("blob sha256:")).count();
    assert_eq!(blobs, 4, "three layers and the config:\n{first}");
    assert_eq!(first.matches(": uploaded").count(), 4, "three layers and the config uploaded:\n{first}");
    assert_eq!(layer_lines(&first).len(), 3, "{first}");
    for l in layer_lines(&first) {
        assert!(l.len() <= 120 && l.ends_with(": written"), "{l}");
    }

    // Again: the blob cache knows each layer's blob, the registry has it.
    let (screens, code) = Pane::start(&line).watch();
    let again = screens.last().unwrap();
    assert_eq!(code, 0, "{again}");
    for l in layer_lines(again) {
        assert!(l.len() <= 120 && l.contains(": already in the repository, "), "{l}\n{again}");
        assert!(l.ends_with("not compressed") || l.ends_with("not read"), "{l}\n{again}");
    }
    assert!(shows(again, &format!("Pushed {dest} as {digest}")), "{again}");
}

/// Not on a terminal (a CI log): no bar, no escape sequences, a line per
/// layer and a progress line every $LAYERED_IMAGE_PROGRESS_EVERY seconds
/// while bytes flow, not none and not one per write.
#[test]
fn in_a_log_a_line_every_few_seconds() {
    let store = store_with_data(24 << 20);
    let root = store.dir.path();
    let dest = format!("oci:{}:t", root.join("layout").display());
    let start = Instant::now();
    let out = Command::new(bin())
        .args(["copy", "conf.json", &dest, "-j", "1", "--compress-level", "9", "--no-blob-cache"])
        .current_dir(root)
        .env("LAYERED_IMAGE_PROGRESS_EVERY", "0.1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = start.elapsed();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{err}");
    assert!(out.stdout.is_empty());
    assert!(!err.contains('\x1b') && !err.contains('\r'), "terminal control in a log:\n{err:?}");
    let layers = layers_of(&dest);
    assert_short_layer_lines(&err, &layers, ": written");
    let periodic: Vec<&str> = err.lines().filter(|l| l.starts_with("layered-image: ") && l.contains(" read (")).collect();
    // The first line comes a tenth of a second in; compressing 24 MiB at
    // level 9 on one thread takes several times that anywhere.
    assert!(!periodic.is_empty(), "no progress line in {took:?}:\n{err}");
    let at_most = (took.as_secs_f64() / 0.1).ceil() as usize + 1;
    assert!(periodic.len() <= at_most, "{} progress lines in {took:?}:\n{err}", periodic.len());
    for l in &periodic {
        // "layered-image: 1.90 MiB read (6.98 MiB/s)"; with the total
        // known (recorded digests), "... of 25.92 MiB read (..., 3s left)".
        assert!(l.ends_with("/s)") || l.ends_with(" left)"), "{l}");
    }
    verify_image(&dest);
}

/// `--quiet`: nothing on stderr (on a terminal: nothing on the screen) but
/// errors; the image is the same.
#[test]
fn quiet_copy_and_stream_print_only_errors() {
    let store = busybox_store(0, 0);
    let root = store.dir.path();
    let conf = root.join("conf.json");
    let dest = format!("oci:{}:t", root.join("quiet").display());
    let out = li([OsStr::new("copy"), conf.as_os_str(), OsStr::new(&dest), OsStr::new("--quiet")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "", "--quiet copy printed");
    assert!(out.stdout.is_empty());
    verify_image(&dest);
    let loud = format!("oci:{}:t", root.join("loud").display());
    run(Command::new(bin()).arg("copy").arg(&conf).arg(&loud));
    let digest = |d: &str| {
        let dir = d.strip_prefix("oci:").unwrap().strip_suffix(":t").unwrap();
        std::fs::read_to_string(PathBuf::from(dir).join("index.json")).unwrap()
    };
    assert_eq!(digest(&dest), digest(&loud), "--quiet changes no byte");

    let image = root.join("image.tar");
    let out = li([OsStr::new("stream"), conf.as_os_str(), OsStr::new("-o"), image.as_os_str(), OsStr::new("-q")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "", "--quiet stream printed");
    verify_image(image.to_str().unwrap());

    // Errors still go out: one line naming the culprit.
    let missing = root.join("missing.json");
    li([OsStr::new("copy"), missing.as_os_str(), OsStr::new(&dest), OsStr::new("--quiet")]).fails(&["missing.json"]);
    li([OsStr::new("stream"), missing.as_os_str(), OsStr::new("-o"), image.as_os_str(), OsStr::new("--quiet")]).fails(&["missing.json"]);

    // On a terminal too: the screen holds nothing but the exit status.
    let line = format!("cd {} && {}", shell_quote(root), li_line(root, &format!("copy conf.json oci:{}:t --quiet", shell_quote(&root.join("tty")))));
    let (screens, code) = Pane::start(&line).watch();
    assert_eq!(code, 0, "{}", screens.last().unwrap());
    for s in &screens {
        assert!(["", "exit=0"].contains(&s.trim()), "--quiet drew on the terminal:\n{s}");
    }
}
