//! Where podman's Docker-compatible service listens, found as podman's own
//! clients find it: `$CONTAINER_HOST`, else the user's socket
//! (`$XDG_RUNTIME_DIR/podman/podman.sock`) when it exists, else the
//! system's (`/run/podman/podman.sock`). `copy --engine podman` uses it
//! for `docker-daemon:` instead of `$DOCKER_HOST`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PodmanHostError {
    #[error("CONTAINER_HOST={0:?}: only unix:// sockets are supported")]
    NotUnix(String),
}

/// The socket, from the process's environment.
pub fn from_env() -> Result<PathBuf, PodmanHostError> {
    resolve(|k| std::env::var_os(k), is_socket)
}

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// The rule, over an environment and a socket test (so tests need not
/// change the process's environment).
fn resolve(var: impl Fn(&str) -> Option<OsString>, socket: impl Fn(&Path) -> bool) -> Result<PathBuf, PodmanHostError> {
    if let Some(host) = var("CONTAINER_HOST").filter(|h| !h.is_empty()) {
        let host = host.to_string_lossy().into_owned();
        return match host.strip_prefix("unix://") {
            Some(p) => Ok(PathBuf::from(p)),
            None => Err(PodmanHostError::NotUnix(host)),
        };
    }
    if let Some(runtime) = var("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        let user = Path::new(&runtime).join("podman/podman.sock");
        if socket(&user) {
            return Ok(user);
        }
    }
    Ok(PathBuf::from("/run/podman/podman.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(env: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let env: HashMap<String, OsString> = env.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        move |k| env.get(k).cloned()
    }

    #[test]
    fn container_host_then_the_users_socket_then_the_systems() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("podman")).unwrap();
        let runtime = dir.path().to_str().unwrap();
        // no user socket yet: the system's
        assert_eq!(resolve(with(&[("XDG_RUNTIME_DIR", runtime)]), is_socket).unwrap(), Path::new("/run/podman/podman.sock"));
        // a real listening socket there: the user's
        let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("podman/podman.sock")).unwrap();
        assert_eq!(resolve(with(&[("XDG_RUNTIME_DIR", runtime)]), is_socket).unwrap(), dir.path().join("podman/podman.sock"));
        // CONTAINER_HOST wins over both
        let env = with(&[("XDG_RUNTIME_DIR", runtime), ("CONTAINER_HOST", "unix:///x/p.sock")]);
        assert_eq!(resolve(env, is_socket).unwrap(), Path::new("/x/p.sock"));
        // empty variables count as unset
        assert_eq!(resolve(with(&[("CONTAINER_HOST", ""), ("XDG_RUNTIME_DIR", "")]), is_socket).unwrap(), Path::new("/run/podman/podman.sock"));
    }

    #[test]
    fn a_file_that_is_not_a_socket_is_not_the_users_socket() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("podman")).unwrap();
        std::fs::write(dir.path().join("podman/podman.sock"), "").unwrap();
        let env = with(&[("XDG_RUNTIME_DIR", dir.path().to_str().unwrap())]);
        assert_eq!(resolve(env, is_socket).unwrap(), Path::new("/run/podman/podman.sock"));
    }

    #[test]
    fn remote_hosts_are_refused_by_name() {
        let e = resolve(with(&[("CONTAINER_HOST", "ssh://core@host/run/podman/podman.sock")]), is_socket).unwrap_err();
        assert_eq!(e.to_string(), "CONTAINER_HOST=\"ssh://core@host/run/podman/podman.sock\": only unix:// sockets are supported");
    }
}
