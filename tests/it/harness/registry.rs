//! Debian's docker-registry on a loopback port for the tests that need a
//! plain one (its access log kept), started so that no other process can be
//! mistaken for it.

use super::{require, run};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(120);

/// A registry of our own on 127.0.0.1 (never all interfaces), access log
/// on, deletes enabled; started again on another port should the one
/// chosen be taken before it binds. Stopped on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    /// With TLS: the CA directory for `--dest-cert-dir`.
    pub certs: Option<PathBuf>,
}

impl Registry {
    /// Plain HTTP, no auth.
    pub fn start() -> Registry {
        Registry::start_configured(false, false, "")
    }

    /// TLS with a private CA and htpasswd basic auth (alice / s3cret).
    pub fn start_tls_auth() -> Registry {
        Registry::start_configured(true, true, "")
    }

    /// With TLS (a private CA's certificate for 127.0.0.1) and/or htpasswd
    /// basic auth (alice / s3cret); `extra` is appended to the configuration
    /// (an `auth:` section of another kind).
    pub fn start_configured(tls: bool, htpasswd: bool, extra: &str) -> Registry {
        require("docker-registry");
        let end = Instant::now() + DEADLINE;
        loop {
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut config = format!(
                "version: 0.1\nlog:\n  accesslog:\n    disabled: false\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            );
            let certs = tls.then(|| tls_config(dir.path(), &mut config));
            if htpasswd {
                htpasswd_config(dir.path(), &mut config);
            }
            config.push_str(extra);
            std::fs::write(dir.path().join("config.yml"), config).unwrap();
            let log = std::fs::File::create(dir.path().join("log")).unwrap();
            #[allow(clippy::zombie_processes)] // reaped in Drop, or below
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(dir.path().join("config.yml"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let probe = format!("li-probe-{}-{port}", std::process::id());
            let listening = format!("listening on 127.0.0.1:{port}");
            loop {
                if child.try_wait().unwrap().is_some() {
                    // It could not bind (another test took the port): another port.
                    break;
                }
                // Ours has bound the port (its own log says so while it runs), and a
                // plain one answers the API, its log naming our probe.
                let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
                let answers = tls || htpasswd || !extra.is_empty() || (answers_v2(port, &probe) && log.contains(&probe));
                if log.contains(&listening) && answers && child.try_wait().unwrap().is_none() {
                    return Registry { child, port, dir, certs };
                }
                if Instant::now() >= end {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("docker-registry did not start on 127.0.0.1:{port} within {DEADLINE:?}; its log:\n{log}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                Instant::now() < end,
                "docker-registry never started; its last log:\n{}",
                std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
            );
        }
    }

    pub fn dest(&self, repo_tag: &str) -> String {
        format!("docker://127.0.0.1:{}/{repo_tag}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    pub fn requests(&self) -> Vec<String> {
        access_log_requests(&self.dir.path().join("log"))
    }

    /// Blob uploads completed since `from` requests (a PUT that ends one).
    pub fn uploads_since(&self, from: usize) -> Vec<String> {
        self.requests()[from..].iter().filter(|l| l.contains("\"PUT ") && l.contains("/blobs/uploads/") && l.contains("\" 201 ")).cloned().collect()
    }

    pub fn patches_since(&self, from: usize) -> usize {
        self.requests()[from..].iter().filter(|l| l.contains("\"PATCH ")).count()
    }

    /// The blobs whose uploads completed after request `from` (the PUT
    /// that ends an upload names the digest), with their sizes as the
    /// registry stored them.
    pub fn uploaded_since(&self, from: usize) -> Vec<(String, u64)> {
        self.requests()[from..]
            .iter()
            .filter(|l| l.contains("\"PUT ") && l.contains("/blobs/uploads/") && l.contains("\" 201 "))
            .map(|l| {
                let hex =
                    l.split("digest=sha256%3A").nth(1).or_else(|| l.split("digest=sha256:").nth(1)).unwrap_or_else(|| panic!("no digest in {l}"));
                let hex: String = hex.chars().take(64).collect();
                let data = self.dir.path().join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
                (hex, std::fs::metadata(&data).unwrap_or_else(|e| panic!("{}: {e}", data.display())).len())
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA and a certificate for 127.0.0.1 signed by it, in `d`:
/// `srv.crt` and `srv.key` for the server, the CA alone in `d/ca` (for
/// `--dest-cert-dir`), which is returned.
pub fn loopback_certs(d: &Path, ca_name: &str) -> PathBuf {
    require("openssl");
    let ossl = |args: &[&str]| run(Command::new("openssl").current_dir(d).args(args));
    let subject = format!("/CN={ca_name}");
    ossl(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", &subject]);
    ossl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1"]);
    std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    let ca = d.join("ca");
    std::fs::create_dir_all(&ca).unwrap();
    std::fs::copy(d.join("ca.crt"), ca.join("ca.crt")).unwrap();
    ca
}

/// TLS with [`loopback_certs`] in `d`, named in `config`; the CA's directory.
fn tls_config(d: &Path, config: &mut String) -> PathBuf {
    let ca = loopback_certs(d, "li-test-ca");
    config.push_str(&format!("  tls: {{certificate: {0}/srv.crt, key: {0}/srv.key}}\n", d.display()));
    ca
}

/// An htpasswd file (alice / s3cret) in `d`, named in `config`.
fn htpasswd_config(d: &Path, config: &mut String) {
    require("htpasswd");
    let out = run(Command::new("htpasswd").args(["-Bbn", "alice", "s3cret"]));
    std::fs::write(d.join("htpasswd"), out.stdout).unwrap();
    config.push_str(&format!("auth:\n  htpasswd: {{realm: li-test, path: {}/htpasswd}}\n", d.display()));
}

/// Whether a registry answers `GET /v2/` on `port` with 200 and its API header.
fn answers_v2(port: u16, agent: &str) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {agent}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") && answer.to_ascii_lowercase().contains("docker-distribution-api-version: registry/2.0")
}

/// The request lines (combined format) of a docker-registry access log.
fn access_log_requests(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap().lines().filter(|l| l.contains("] \"") && l.contains(" HTTP/1.1\"")).map(str::to_string).collect()
}
