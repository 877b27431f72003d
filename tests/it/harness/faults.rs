//! A real registry (Debian's docker-registry, distribution 2.8) behind
//! tests/support/fault-proxy.py, which injects one quirky or hostile
//! behaviour and logs every request's headers; and a fake Engine API
//! socket (tests/support/fake-engine.py) for daemon replies.
#![allow(dead_code)]

use super::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CREDS: &str = "alice:s3cret";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How long a server of ours may take to listen on a loaded CI machine.
const START_BOUND: Duration = Duration::from_secs(60);

/// Waits until `port` takes connections, or `child` exits (then: None, so
/// that the caller may try another port), within [`START_BOUND`].
fn wait_listening(child: &mut Child, port: u16, what: &str) -> Option<()> {
    let deadline = Instant::now() + START_BOUND;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(());
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(Instant::now() < deadline, "{what} did not listen on 127.0.0.1:{port} within {START_BOUND:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The registry that stores and serves: plain HTTP on loopback, with
/// htpasswd basic auth (alice:s3cret) when `auth`.
pub struct Upstream {
    _registry: Registry,
    pub port: u16,
    pub auth: bool,
}

impl Upstream {
    pub fn start(auth: bool) -> Upstream {
        let registry = Registry::start_configured(false, auth, "");
        Upstream { port: registry.port, _registry: registry, auth }
    }

    /// skopeo's flags to read the registry directly.
    pub fn skopeo_flags(&self) -> Vec<String> {
        let mut f = vec!["--tls-verify=false".to_string()];
        if self.auth {
            f.push(format!("--creds={CREDS}"));
        }
        f
    }

    pub fn reference(&self, repo_tag: &str) -> String {
        format!("docker://127.0.0.1:{}/{repo_tag}", self.port)
    }

    /// The digest `repo_tag` names, read from the registry itself.
    pub fn digest_of(&self, repo_tag: &str) -> Option<String> {
        let out = Command::new("skopeo")
            .args(["inspect", "--format", "{{.Digest}}"])
            .args(self.skopeo_flags())
            .arg(self.reference(repo_tag))
            .output()
            .unwrap();
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The image `repo_tag` names, pulled back by skopeo into a layout and
    /// checked by `layered-image verify`; returns its raw manifest.
    pub fn pull_and_verify(&self, repo_tag: &str, work: &Path) -> Value {
        require("skopeo");
        let layout = work.join(format!("pulled-{}", repo_tag.replace(['/', ':', '@'], "-")));
        let src_flags: Vec<String> =
            self.skopeo_flags().iter().map(|f| f.replace("--tls-verify", "--src-tls-verify").replace("--creds", "--src-creds")).collect();
        run(Command::new("skopeo").arg("copy").args(&src_flags).arg(self.reference(repo_tag)).arg(format!("oci:{}:x", layout.display())));
        verify_image(&format!("oci:{}:x", layout.display()));
        let out = run(Command::new("skopeo").args(["inspect", "--raw"]).args(self.skopeo_flags()).arg(self.reference(repo_tag)));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        loopback_certs(dir.path(), "li-proxy-ca");
        Certs { dir }
    }
    /// For --dest-cert-dir / --cert-dir.
    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }
}

/// The proxy, stopped on drop.
pub struct Proxy {
    child: Child,
    pub main: u16,
    pub other: u16,
    pub sink: u16,
    pub tls: bool,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxy {
    pub fn start(upstream: &Upstream, fault: &str, certs: Option<&Certs>) -> Proxy {
        Proxy::start_with(upstream, fault, certs, &[])
    }

    pub fn start_with(upstream: &Upstream, fault: &str, certs: Option<&Certs>, extra: &[&str]) -> Proxy {
        require("python3");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let ports_file = dir.path().join("ports.json");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fault-proxy.py");
        let mut cmd = Command::new("python3");
        // Port 0: the proxy binds free ports itself and names them.
        cmd.arg(script)
            .args(["--upstream", &upstream.port.to_string(), "--main", "0", "--other", "0", "--sink", "0", "--fault", fault, "--log"])
            .arg(&log)
            .arg("--ports")
            .arg(&ports_file)
            .args(extra)
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap());
        if let Some(c) = certs {
            cmd.arg("--cert").arg(c.dir.path().join("srv.crt")).arg("--key").arg(c.dir.path().join("srv.key"));
        }
        #[allow(clippy::zombie_processes)] // reaped in Drop
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + START_BOUND;
        let ports: Value = loop {
            if let Ok(text) = std::fs::read_to_string(&ports_file) {
                break serde_json::from_str(&text).unwrap();
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("fault-proxy.py did not start: {}", std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let port = |name: &str| ports[name].as_u64().and_then(|p| u16::try_from(p).ok()).expect("a port");
        let (main, other, sink) = (port("main"), port("other"), port("sink"));
        Proxy { child, main, other, sink, tls: certs.is_some(), log, _dir: dir }
    }

    pub fn dest(&self, repo_tag: &str) -> String {
        format!("docker://127.0.0.1:{}/{repo_tag}", self.main)
    }

    /// The registry's own origin, as the client should see it.
    pub fn origin(&self) -> String {
        format!("{}://127.0.0.1:{}", if self.tls { "https" } else { "http" }, self.main)
    }

    /// Every request the proxy saw, in order.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Origins (`scheme://127.0.0.1:port`) that received an Authorization header.
    pub fn origins_given_credentials(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .requests()
            .iter()
            .filter(|r| r["headers"].get("authorization").is_some())
            .map(|r| {
                let port = match r["listener"].as_str().unwrap() {
                    "main" => self.main,
                    "other" => self.other,
                    _ => self.sink,
                };
                format!("{}://127.0.0.1:{port}", r["scheme"].as_str().unwrap())
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// No credential reached any origin but the registry's own.
    pub fn assert_no_leak(&self) {
        let given = self.origins_given_credentials();
        assert!(given.iter().all(|o| *o == self.origin()), "credentials reached {given:?}; only {} may have them", self.origin());
    }

    pub fn manifest_puts(&self) -> usize {
        self.requests().iter().filter(|r| r["method"] == "PUT" && r["path"].as_str().unwrap().contains("/manifests/")).count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished `layered-image copy`, timed.
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Outcome {
    /// The one error line of a failed copy.
    pub fn error(&self) -> String {
        assert_eq!(self.code, Some(1), "should fail: {}", self.stderr);
        let last = self.stderr.lines().last().unwrap_or_default().to_string();
        assert!(last.starts_with("layered-image: error: "), "{}", self.stderr);
        last
    }
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "should succeed: {}", self.stderr);
        self
    }
}

pub fn copy_cmd(conf: &Path, dest: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("copy").arg(conf).arg(dest).args(extra).env_remove("LAYERED_IMAGE_IO_TIMEOUT").env("HOME", conf.parent().unwrap());
    c.stdin(Stdio::null());
    c
}

pub fn copy_to(conf: &Path, dest: &str, extra: &[&str]) -> Outcome {
    outcome(&mut copy_cmd(conf, dest, extra))
}

pub fn outcome(cmd: &mut Command) -> Outcome {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

/// Runs `cmd`, waits until `ready` holds, sends SIGINT and returns how
/// long the process took to exit after it, its outcome, and its peak
/// resident memory (KiB) read just before the signal.
pub fn interrupt_when(cmd: &mut Command, ready: impl Fn() -> bool, signal: &str) -> (Duration, Outcome, u64) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "the situation to interrupt never came");
        assert!(child.try_wait().unwrap().is_none(), "the copy ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let peak_kib =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0);
    run(Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()));
    let sent = Instant::now();
    let mut stderr = String::new();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    (took, Outcome { code: status.code(), stdout, stderr, took }, peak_kib)
}

/// skopeo 1.9 copying the same image (a docker-archive `stream` wrote) to
/// `dest` through the same proxy: whether it succeeded, and its stderr.
pub fn skopeo_push(conf: &Path, dest: &str, flags: &[&str]) -> (bool, String) {
    require("skopeo");
    let archive = conf.with_file_name("for-skopeo.tar");
    if !archive.exists() {
        run(Command::new(bin()).arg("stream").arg(conf).arg("-o").arg(&archive));
    }
    let mut c = Command::new("timeout");
    c.args(["120", "skopeo", "copy", "--retry-times", "0"]).args(flags).arg(format!("docker-archive:{}", archive.display())).arg(dest);
    let out = c.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A fake Docker Engine API on a unix socket, answering `/images/load`
/// as `mode` says (tests/support/fake-engine.py).
pub struct FakeEngine {
    child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeEngine {
    pub fn start(mode: &str) -> FakeEngine {
        require("python3");
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("engine.sock");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake-engine.py");
        #[allow(clippy::zombie_processes)] // reaped in Drop
        let child = Command::new("python3").arg(script).arg(&socket).arg(mode).spawn().unwrap();
        for _ in 0..200 {
            if socket.exists() {
                return FakeEngine { child, socket, _dir: dir };
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("fake-engine.py did not create {}", socket.display());
    }
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `copy --index CONF... DEST`, as [`copy_cmd`] runs `copy`.
pub fn copy_index_cmd(confs: &[PathBuf], dest: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(["copy", "--index"]).args(confs).arg(dest).args(extra).env_remove("LAYERED_IMAGE_IO_TIMEOUT");
    c.env("HOME", confs[0].parent().unwrap()).stdin(Stdio::null());
    c
}

impl Upstream {
    /// Every image of the index (or list) `repo_tag` names, pulled back by
    /// `skopeo copy --all` into a layout and checked by `verify`; returns
    /// the raw index.
    pub fn pull_all_and_verify(&self, repo_tag: &str, work: &Path) -> Value {
        require("skopeo");
        let layout = work.join(format!("pulled-all-{}", repo_tag.replace(['/', ':', '@'], "-")));
        let src_flags: Vec<String> =
            self.skopeo_flags().iter().map(|f| f.replace("--tls-verify", "--src-tls-verify").replace("--creds", "--src-creds")).collect();
        run(Command::new("skopeo").args(["copy", "--all"]).args(&src_flags).arg(self.reference(repo_tag)).arg(format!("oci:{}:x", layout.display())));
        verify_image(&format!("oci:{}:x", layout.display()));
        let out = run(Command::new("skopeo").args(["inspect", "--raw"]).args(self.skopeo_flags()).arg(self.reference(repo_tag)));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The raw manifest `reference` (`REPO:TAG` or `REPO@DIGEST`) names.
    pub fn raw(&self, reference: &str) -> Value {
        let out = run(Command::new("skopeo").args(["inspect", "--raw"]).args(self.skopeo_flags()).arg(self.reference(reference)));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// Whether a loopback connection to `port` is backed up: the server side
/// holds bytes it has not read and the client side has bytes the server's
/// window would not take (its writes block), read from /proc/net/tcp.
pub fn backed_up_to(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port_of = |addr: &str| addr.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    let queues = |q: &str| q.split_once(':').map(|(t, r)| (u64::from_str_radix(t, 16).unwrap_or(0), u64::from_str_radix(r, 16).unwrap_or(0)));
    let (mut client_unsent, mut server_unread) = (false, false);
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl, local, remote, state (01: established), tx_queue:rx_queue
        if f.len() < 5 || f[3] != "01" {
            continue;
        }
        let Some((tx, rx)) = queues(f[4]) else { continue };
        client_unsent |= port_of(f[2]) == Some(port) && tx > 0;
        server_unread |= port_of(f[1]) == Some(port) && rx > 0;
    }
    client_unsent && server_unread
}
