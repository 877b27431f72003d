//! Runs the binary the way the hostile tests need: under `timeout` (a hang
//! is a failure, not a stuck suite) and `/usr/bin/time` (peak RSS), and
//! checks the failure contract: exit 1, no panic, and exactly one error
//! line, the last one on stderr, naming what is at fault.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use super::*;

pub const TIMEOUT_SECS: u32 = 60;

pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// Peak resident set size of the binary, in KiB.
    pub rss_kib: u64,
}

/// `layered-image ARGS...` with a timeout and an RSS measurement.
pub fn li<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    li_with(args, |_| {})
}

pub fn li_with<I, S>(args: I, tweak: impl FnOnce(&mut Command)) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    require("timeout");
    assert!(Path::new("/usr/bin/time").exists(), "/usr/bin/time is missing; run tests/install-deps.sh (as root)");
    let rss = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("timeout");
    cmd.args(["-s", "KILL", &TIMEOUT_SECS.to_string(), "/usr/bin/time", "-f", "%M", "-o"]).arg(rss.path()).arg(bin()).args(args).stdin(Stdio::null());
    tweak(&mut cmd);
    let out = cmd.output().unwrap();
    let rss_kib = std::fs::read_to_string(rss.path()).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).next_back().unwrap_or(0);
    Outcome { code: out.status.code(), stdout: out.stdout, stderr: String::from_utf8_lossy(&out.stderr).into_owned(), rss_kib }
}

impl Outcome {
    /// The failure contract; returns the error line.
    pub fn fails(&self, needles: &[&str]) -> String {
        let err = &self.stderr;
        assert_ne!(self.code, Some(137), "killed after {TIMEOUT_SECS}s (a hang?); stderr:\n{err}");
        assert!(!err.contains("panicked"), "panic:\n{err}");
        assert_eq!(self.code, Some(1), "expected exit 1; stderr:\n{err}");
        let lines: Vec<&str> = err.lines().collect();
        let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("layered-image: error:")).collect();
        assert_eq!(errors.len(), 1, "expected one error line:\n{err}");
        let last = lines.last().copied().unwrap_or_default();
        assert!(last.starts_with("layered-image: error: "), "the error is not the last line:\n{err}");
        // No cause repeated (a message that shows its source, and the
        // source again from the error chain).
        let parts: Vec<&str> = last.split(": ").collect();
        for w in parts.windows(2) {
            assert!(w[0] != w[1] || w[0].len() < 12, "repeated cause in:\n{last}");
        }
        for n in needles {
            assert!(last.contains(n), "error line lacks {n:?}:\n{last}");
        }
        last.to_string()
    }

    pub fn succeeds(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success; stderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"));
        self
    }

    pub fn rss_below_mib(&self, mib: u64) -> &Self {
        assert!(self.rss_kib > 0, "no RSS measured");
        assert!(self.rss_kib < mib * 1024, "peak RSS {} KiB exceeds {mib} MiB", self.rss_kib);
        self
    }
}

pub fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// Makes `dir` and everything under it world-readable and writable, so
/// that a child running as nobody reaches what the test means it to.
pub fn open_up(dir: &Path) {
    run(Command::new("chmod").args(["-R", "a+rwX"]).arg(dir));
}

/// `layered-image ARGS...` as nobody (root reads everything), with the
/// timeout and RSS measurement of [`li`].
pub fn li_nobody<S: AsRef<OsStr>>(args: &[S]) -> Outcome {
    require("setpriv");
    let mut all: Vec<std::ffi::OsString> = ["--reuid=65534", "--regid=65534", "--clear-groups"].iter().map(Into::into).collect();
    all.push(bin().into());
    all.extend(args.iter().map(|a| a.as_ref().to_os_string()));
    run_under("setpriv", &all)
}

fn run_under(program: &str, args: &[std::ffi::OsString]) -> Outcome {
    require("timeout");
    assert!(Path::new("/usr/bin/time").exists(), "/usr/bin/time is missing; run tests/install-deps.sh (as root)");
    let rss = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("timeout")
        .args(["-s", "KILL", &TIMEOUT_SECS.to_string(), "/usr/bin/time", "-f", "%M", "-o"])
        .arg(rss.path())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let rss_kib = std::fs::read_to_string(rss.path()).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).next_back().unwrap_or(0);
    Outcome { code: out.status.code(), stdout: out.stdout, stderr: String::from_utf8_lossy(&out.stderr).into_owned(), rss_kib }
}

impl Case {
    /// `stream conf.json` to stdout and with `-o`: both fail the same way,
    /// leave no output or temporary file and write nothing that looks like
    /// an image. Returns the error line.
    pub fn stream_fails(&self, needles: &[&str]) -> String {
        let image = self.root().join("image.tar");
        let mut line = String::new();
        for to_file in [false, true] {
            let mut args: Vec<std::ffi::OsString> = vec!["stream".into(), self.conf().into()];
            if to_file {
                args.extend(["-o".into(), image.clone().into()]);
            }
            let out = li(args);
            line = out.fails(needles);
            assert_not_an_image(&out.stdout);
            assert!(!image.exists(), "a failed run left {}", image.display());
            let partial = std::fs::read_dir(self.root()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains(".partial"));
            assert!(!partial, "a failed run left a temporary file");
        }
        line
    }
}
