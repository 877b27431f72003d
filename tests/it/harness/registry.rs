//! Debian's docker-registry on a loopback port for the tests that need a
//! plain one (its access log kept), started so that no other process can be
//! mistaken for it.

use super::require;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(120);

/// A registry of our own on loopback: plain HTTP, access log on; started
/// again on another port should the one chosen be taken before it binds.
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        require("docker-registry");
        let end = Instant::now() + DEADLINE;
        loop {
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let config = format!(
                "version: 0.1\nlog:\n  accesslog:\n    disabled: false\nstorage:\n  filesystem: {{rootdirectory: {}}}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            );
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
            let probe = format!("li-progress-probe-{}-{port}", std::process::id());
            loop {
                if child.try_wait().unwrap().is_some() {
                    // It could not bind (another test took the port): another port.
                    break;
                }
                // Ours answers, not another registry that took the port: its log names the probe.
                if answers_v2(port, &probe) && std::fs::read_to_string(dir.path().join("log")).unwrap_or_default().contains(&probe) {
                    return Registry { child, port, dir };
                }
                if Instant::now() >= end {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "docker-registry did not answer GET /v2/ on 127.0.0.1:{port} within {DEADLINE:?}; its log:\n{}",
                        std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
                    );
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
pub fn access_log_requests(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap().lines().filter(|l| l.contains("] \"") && l.contains(" HTTP/1.1\"")).map(str::to_string).collect()
}
